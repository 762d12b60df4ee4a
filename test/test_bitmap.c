/* SPDX-License-Identifier: BSD-3-Clause */
#include <criterion/criterion.h>
#include <string.h>

#include "core/bitmap.h"

/* Collect every run of @bits into @first/@len; returns the count. */
static unsigned runs(const uint64_t *bits, uint64_t nbits, uint64_t max_len, uint64_t *first,
		     uint64_t *len, unsigned cap)
{
	uint64_t next = 0, f, l;
	unsigned n = 0;

	while (n < cap && rct_bitmap_next_run(bits, nbits, next, max_len, &f, &l)) {
		first[n] = f;
		len[n] = l;
		n++;
		next = f + l;
	}
	return n;
}

Test(bitmap, empty)
{
	uint64_t bits[4] = {0}, f[4], l[4];

	cr_assert_eq(runs(bits, 256, UINT64_MAX, f, l, 4), 0);
	cr_assert_eq(rct_bitmap_count(bits, 256), 0);
	cr_assert_eq(runs(bits, 0, UINT64_MAX, f, l, 4), 0);
}

Test(bitmap, full)
{
	uint64_t bits[4], f[8], l[8];

	memset(bits, 0xff, sizeof(bits));
	cr_assert_eq(runs(bits, 256, UINT64_MAX, f, l, 8), 1);
	cr_assert_eq(f[0], 0);
	cr_assert_eq(l[0], 256);
	cr_assert_eq(rct_bitmap_count(bits, 256), 256);
}

Test(bitmap, one_page)
{
	uint64_t bits[4] = {0}, f[4], l[4];

	rct_bitmap_set(bits, 130);
	cr_assert_eq(runs(bits, 256, UINT64_MAX, f, l, 4), 1);
	cr_assert_eq(f[0], 130);
	cr_assert_eq(l[0], 1);
	cr_assert(rct_bitmap_test(bits, 130));
	cr_assert_not(rct_bitmap_test(bits, 129));
}

Test(bitmap, run_across_words)
{
	uint64_t bits[4] = {0}, f[4], l[4];

	for (int i = 60; i < 140; i++)
		rct_bitmap_set(bits, (uint64_t)i);
	rct_bitmap_set(bits, 200);
	cr_assert_eq(runs(bits, 256, UINT64_MAX, f, l, 4), 2);
	cr_assert_eq(f[0], 60);
	cr_assert_eq(l[0], 80);
	cr_assert_eq(f[1], 200);
	cr_assert_eq(l[1], 1);
}

Test(bitmap, run_capped_by_max_len)
{
	uint64_t bits[4], f[16], l[16];

	memset(bits, 0xff, sizeof(bits));
	cr_assert_eq(runs(bits, 256, 100, f, l, 16), 3);
	cr_assert_eq(f[0], 0);
	cr_assert_eq(l[0], 100);
	cr_assert_eq(f[1], 100);
	cr_assert_eq(l[1], 100);
	cr_assert_eq(f[2], 200);
	cr_assert_eq(l[2], 56);
}

Test(bitmap, partial_last_word_ignores_bits_beyond_nbits)
{
	uint64_t bits[2], f[4], l[4];

	/* 70 pages: bits 70..127 are garbage the caller left set. */
	memset(bits, 0xff, sizeof(bits));
	cr_assert_eq(runs(bits, 70, UINT64_MAX, f, l, 4), 1);
	cr_assert_eq(f[0], 0);
	cr_assert_eq(l[0], 70);
	cr_assert_eq(rct_bitmap_count(bits, 70), 70);

	memset(bits, 0, sizeof(bits));
	bits[1] = ~0ull << 6; /* only bits 70.. set: all beyond nbits */
	cr_assert_eq(runs(bits, 70, UINT64_MAX, f, l, 4), 0);
	rct_bitmap_set(bits, 69);
	cr_assert_eq(runs(bits, 70, UINT64_MAX, f, l, 4), 1);
	cr_assert_eq(f[0], 69);
	cr_assert_eq(l[0], 1);
}

Test(bitmap, start_in_the_middle_of_a_run)
{
	uint64_t bits[1] = {0xf0}, f, l;

	cr_assert(rct_bitmap_next_run(bits, 64, 6, UINT64_MAX, &f, &l));
	cr_assert_eq(f, 6);
	cr_assert_eq(l, 2);
	cr_assert_not(rct_bitmap_next_run(bits, 64, 8, UINT64_MAX, &f, &l));
	cr_assert_not(rct_bitmap_next_run(bits, 64, 64, UINT64_MAX, &f, &l));
}

Test(bitmap, alternating_pages_are_separate_runs)
{
	uint64_t bits[2] = {0x5555555555555555ull, 0x5555555555555555ull}, f[80], l[80];

	cr_assert_eq(runs(bits, 128, UINT64_MAX, f, l, 80), 64);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(f[i], (uint64_t)(2 * i));
		cr_assert_eq(l[i], 1);
	}
}

Test(bitmap, or_masks_the_tail)
{
	uint64_t dst[2] = {1, 0}, src[2] = {2, ~0ull};

	rct_bitmap_or(dst, src, 70);
	cr_assert_eq(dst[0], 3);
	cr_assert_eq(dst[1], 0x3f);
}
