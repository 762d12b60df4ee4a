/* SPDX-License-Identifier: BSD-3-Clause */
#include <criterion/criterion.h>
#include <stdlib.h>
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

/* The summarized map against the plain bitmap: same runs, counts, union, clear. */
Test(bitmap, dmap_matches_plain_bitmap)
{
	const uint64_t nbits = 64 * 64 * 3 + 37; /* three summary words and a tail */
	uint64_t nwords = rct_bitmap_words(nbits), st = 99;
	uint64_t *plain = calloc(nwords, 8), *other = calloc(nwords, 8);
	struct rct_dmap d, e;

	cr_assert_eq(rct_dmap_init(&d, nbits), 0);
	cr_assert_eq(rct_dmap_init(&e, nbits), 0);
	for (int round = 0; round < 200; round++) {
		unsigned density = 1 + round % 7; /* from a few bits to most words */
		uint64_t pf, pl, df, dl, next = 0, max = 1 + round % 90;

		memset(plain, 0, nwords * 8);
		memset(other, 0, nwords * 8);
		rct_dmap_clear(&d);
		rct_dmap_clear(&e);
		for (uint64_t i = 0; i < nbits; i++) {
			st = st * 6364136223846793005ull + 1442695040888963407ull;
			if ((st >> 33) % 997 < density * density * 3)
				rct_bitmap_set(plain, i);
			if ((st >> 13) % 1009 < density)
				rct_bitmap_set(other, i);
		}
		plain[nwords - 1] |= ~0ull << (nbits % 64); /* past the end: ignored */
		cr_assert_eq(rct_dmap_or_bitmap(&d, plain) <= nwords, true);
		plain[nwords - 1] &= (1ull << (nbits % 64)) - 1;
		cr_assert_eq(rct_dmap_count(&d), rct_bitmap_count(plain, nbits));
		for (;;) {
			bool p = rct_bitmap_next_run(plain, nbits, next, max, &pf, &pl);
			bool q = rct_dmap_next_run(&d, next, max, &df, &dl);

			cr_assert_eq(p, q, "round %d at %llu", round, (unsigned long long)next);
			if (!p)
				break;
			cr_assert_eq(pf, df);
			cr_assert_eq(pl, dl);
			next = pf + pl + (round % 3); /* starts inside gaps and words too */
		}
		rct_dmap_or_bitmap(&e, other);
		rct_dmap_or(&d, &e);
		rct_bitmap_or(plain, other, nbits);
		cr_assert_eq(rct_dmap_count(&d), rct_bitmap_count(plain, nbits));
		cr_assert_arr_eq(d.bits, plain, nwords * 8);
		for (uint64_t w = 0; w < nwords; w++)
			cr_assert_eq(!!plain[w], !!(d.sum[w / 64] >> (w % 64) & 1),
				     "word %llu and its summary bit", (unsigned long long)w);
	}
	rct_dmap_clear(&d);
	cr_assert_eq(rct_dmap_count(&d), 0);
	for (uint64_t w = 0; w < d.nsum; w++)
		cr_assert_eq(d.sum[w], 0);
	{
		uint64_t f, l;

		cr_assert_not(rct_dmap_next_run(&d, 0, 1, &f, &l));
	}
	rct_dmap_fill(&d);
	cr_assert_eq(rct_dmap_count(&d), nbits);
	rct_dmap_free(&d);
	rct_dmap_free(&e);
	free(plain);
	free(other);
}

/*
 * A bitmap handed in with its summary: the words the summary names are read,
 * those it leaves out are not (a clear summary bit promises a zero word), and
 * summary bits over zero words or past the last word change nothing.
 */
Test(bitmap, or_through_a_summary_reads_only_the_words_it_names)
{
	const uint64_t nbits = 64 * 64 * 5 + 100; /* five summary words and a partial one */
	uint64_t nwords = rct_bitmap_words(nbits), nsum = rct_bitmap_words(nwords);
	uint64_t *src = calloc(nwords, 8), *sum = calloc(nsum, 8), *want = calloc(nwords, 8);
	struct rct_dmap d;

	cr_assert(src && sum && want);
	cr_assert_eq(rct_dmap_init(&d, nbits), 0);
	for (uint64_t w = 0; w < nwords; w += 37) {
		src[w] = 0x9e3779b97f4a7c15ull ^ w;
		sum[w / 64] |= 1ull << (w % 64);
		want[w] = src[w];
	}
	want[nwords - 1] &= (1ull << (nbits % 64)) - 1;
	src[5] = 0xff;	     /* data the summary does not name: a broken promise, not read */
	sum[2] |= 1ull << 9; /* a summary bit over a zero word */
	sum[nsum - 1] |= ~0ull << (nwords % 64); /* past the last word: ignored */
	cr_assert_eq(rct_dmap_or_bitmap_summary(&d, src, sum), (nwords + 36) / 37);
	cr_assert_arr_eq(d.bits, want, nwords * 8);
	for (uint64_t w = 0; w < nwords; w++)
		cr_assert_eq(!!want[w], !!(d.sum[w / 64] >> (w % 64) & 1), "word %llu",
			     (unsigned long long)w);
	cr_assert_eq(rct_dmap_count(&d), rct_bitmap_count(want, nbits));
	rct_dmap_free(&d);
	free(src);
	free(sum);
	free(want);
}
