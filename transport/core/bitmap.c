/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------ summarized */

int rct_dmap_init(struct rct_dmap *d, uint64_t nbits)
{
	memset(d, 0, sizeof(*d));
	d->nbits = nbits;
	d->nwords = rct_bitmap_words(nbits);
	d->nsum = rct_bitmap_words(d->nwords);
	d->bits = calloc(d->nwords ? d->nwords : 1, sizeof(uint64_t));
	d->sum = calloc(d->nsum ? d->nsum : 1, sizeof(uint64_t));
	if (!d->bits || !d->sum) {
		rct_dmap_free(d);
		return -1;
	}
	return 0;
}

void rct_dmap_free(struct rct_dmap *d)
{
	free(d->bits);
	free(d->sum);
	d->bits = d->sum = NULL;
}

uint64_t rct_dmap_or_bitmap(struct rct_dmap *d, const uint64_t *src)
{
	uint64_t n = 0, w = 0;

	/* Eight words at a time: a mostly zero bitmap is read at memory speed. */
	for (; w + 8 <= d->nwords; w += 8) {
		uint64_t any = 0;

		for (unsigned i = 0; i < 8; i++)
			any |= src[w + i];
		if (!any)
			continue;
		for (unsigned i = 0; i < 8; i++)
			if (src[w + i]) {
				rct_dmap_or_word(d, w + i, src[w + i]);
				n++;
			}
	}
	for (; w < d->nwords; w++)
		if (src[w]) {
			rct_dmap_or_word(d, w, src[w]);
			n++;
		}
	return n;
}

uint64_t rct_dmap_or_bitmap_summary(struct rct_dmap *d, const uint64_t *src,
				    const uint64_t *src_sum)
{
	uint64_t n = 0;

	for (uint64_t s = 0; s < d->nsum; s++) {
		uint64_t sum = src_sum[s];

		/* Bits past the last word are ignored, as bits past nbits are. */
		if (s == d->nsum - 1 && d->nwords % 64)
			sum &= (1ull << (d->nwords % 64)) - 1;
		for (; sum; sum &= sum - 1) {
			uint64_t w = s * 64 + (uint64_t)__builtin_ctzll(sum), v = src[w];

			if (v) {
				rct_dmap_or_word(d, w, v);
				n++;
			}
		}
	}
	return n;
}

void rct_dmap_or(struct rct_dmap *dst, const struct rct_dmap *src)
{
	for (uint64_t s = 0; s < src->nsum; s++) {
		uint64_t m = src->sum[s];

		while (m) {
			uint64_t w = s * 64 + (uint64_t)__builtin_ctzll(m);

			rct_dmap_or_word(dst, w, src->bits[w]);
			m &= m - 1;
		}
	}
}

void rct_dmap_clear(struct rct_dmap *d)
{
	for (uint64_t s = 0; s < d->nsum; s++) {
		uint64_t m = d->sum[s];

		if (!m)
			continue;
		while (m) {
			d->bits[s * 64 + (uint64_t)__builtin_ctzll(m)] = 0;
			m &= m - 1;
		}
		d->sum[s] = 0;
	}
}

void rct_dmap_fill(struct rct_dmap *d)
{
	rct_bitmap_fill(d->bits, d->nbits);
	rct_bitmap_fill(d->sum, d->nwords);
}

uint64_t rct_dmap_count(const struct rct_dmap *d)
{
	uint64_t n = 0;

	for (uint64_t s = 0; s < d->nsum; s++) {
		uint64_t m = d->sum[s];

		while (m) {
			n += (uint64_t)__builtin_popcountll(
				d->bits[s * 64 + (uint64_t)__builtin_ctzll(m)]);
			m &= m - 1;
		}
	}
	return n;
}

bool rct_dmap_next_word(const struct rct_dmap *d, uint64_t w, uint64_t *w_p)
{
	uint64_t s = w / 64, m;

	if (w >= d->nwords)
		return false;
	m = d->sum[s] & (~0ull << (w % 64));
	while (!m) {
		if (++s >= d->nsum)
			return false;
		m = d->sum[s];
	}
	*w_p = s * 64 + (uint64_t)__builtin_ctzll(m);
	return true;
}

bool rct_dmap_next_run(const struct rct_dmap *d, uint64_t start, uint64_t max_len,
		       uint64_t *first_p, uint64_t *len_p)
{
	uint64_t w = start / 64;

	if (start >= d->nbits || !max_len)
		return false;
	/* Skip to the first word that holds a set bit at or after start; the
	 * plain search then finds it in that word and follows the run. */
	for (;;) {
		uint64_t v;

		if (!rct_dmap_next_word(d, w, &w))
			return false;
		v = d->bits[w];
		if (w == start / 64)
			v &= ~0ull << (start % 64);
		if (v)
			break;
		w++;
	}
	if (w * 64 > start)
		start = w * 64;
	return rct_bitmap_next_run(d->bits, d->nbits, start, max_len, first_p, len_p);
}
