/* SPDX-License-Identifier: BSD-3-Clause */
#include "bitmap.h"

/* Word @w of the bitmap with the bits at and beyond nbits cleared. */
static inline uint64_t rct_bitmap_word(const uint64_t *bits, uint64_t nbits, uint64_t w)
{
	uint64_t v = bits[w];
	unsigned tail = nbits % 64;

	if (tail && w == nbits / 64)
		v &= (1ull << tail) - 1;
	return v;
}

bool rct_bitmap_next_run(const uint64_t *bits, uint64_t nbits, uint64_t start, uint64_t max_len,
			 uint64_t *first_p, uint64_t *len_p)
{
	uint64_t nwords = rct_bitmap_words(nbits);
	uint64_t w, v, first, end, limit;

	if (start >= nbits || !max_len)
		return false;

	/* Find the first set bit at or after start. */
	w = start / 64;
	v = rct_bitmap_word(bits, nbits, w) & (~0ull << (start % 64));
	while (!v) {
		if (++w >= nwords)
			return false;
		v = rct_bitmap_word(bits, nbits, w);
	}
	first = w * 64 + (uint64_t)__builtin_ctzll(v);

	/* Find the first clear bit after it, stopping at max_len or nbits. */
	limit = nbits - first < max_len ? nbits : first + max_len;
	v = ~rct_bitmap_word(bits, nbits, w) & (~0ull << (first % 64));
	while (!v) {
		if (++w >= nwords || w * 64 >= limit) {
			end = limit;
			goto out;
		}
		v = ~rct_bitmap_word(bits, nbits, w);
	}
	end = w * 64 + (uint64_t)__builtin_ctzll(v);
	if (end > limit)
		end = limit;
out:
	*first_p = first;
	*len_p = end - first;
	return true;
}

uint64_t rct_bitmap_count(const uint64_t *bits, uint64_t nbits)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < rct_bitmap_words(nbits); w++)
		n += (uint64_t)__builtin_popcountll(rct_bitmap_word(bits, nbits, w));
	return n;
}

void rct_bitmap_or(uint64_t *dst, const uint64_t *src, uint64_t nbits)
{
	uint64_t nwords = rct_bitmap_words(nbits);

	for (uint64_t w = 0; w < nwords; w++)
		dst[w] |= src[w];
	if (nbits % 64)
		dst[nwords - 1] &= (1ull << (nbits % 64)) - 1;
}

void rct_bitmap_fill(uint64_t *bits, uint64_t nbits)
{
	uint64_t nwords = rct_bitmap_words(nbits);

	for (uint64_t w = 0; w < nwords; w++)
		bits[w] = ~0ull;
	if (nbits % 64)
		bits[nwords - 1] = (1ull << (nbits % 64)) - 1;
}
