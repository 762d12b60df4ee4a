/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty bitmaps: bit i of word i/64 is page i.  Runs are found in address
 * order (scattered copies in random order are ~3x slower on these machines).
 * Bits at and beyond nbits in the last word are ignored everywhere.
 */
#ifndef RCT_BITMAP_H
#define RCT_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

static inline uint64_t rct_bitmap_words(uint64_t nbits)
{
	return (nbits + 63) / 64;
}

/*
 * Find the next run of set bits at or after @start, at most @max_len bits long.
 * Returns false when no bit in [start, nbits) is set; otherwise writes the
 * run's first bit and length.  A longer run continues at first + len.
 */
bool rct_bitmap_next_run(const uint64_t *bits, uint64_t nbits, uint64_t start, uint64_t max_len,
			 uint64_t *first_p, uint64_t *len_p);

/* Number of set bits in [0, nbits). */
uint64_t rct_bitmap_count(const uint64_t *bits, uint64_t nbits);

/* dst |= src over [0, nbits); bits past nbits in dst's last word are cleared. */
void rct_bitmap_or(uint64_t *dst, const uint64_t *src, uint64_t nbits);

/* Set bits [0, nbits); bits past nbits in the last word are cleared. */
void rct_bitmap_fill(uint64_t *bits, uint64_t nbits);

static inline void rct_bitmap_set(uint64_t *bits, uint64_t i)
{
	bits[i / 64] |= 1ull << (i % 64);
}

static inline bool rct_bitmap_test(const uint64_t *bits, uint64_t i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

/*
 * A bitmap with a summary, so that its cost follows what is set, not its size:
 * bit w of @sum is set when word w of @bits may be non-zero (a non-zero word
 * always has its summary bit).  Counting, union, clearing and finding runs
 * read the summary (one bit per 64 pages: 512 KiB per TiB of 4 KiB pages) and
 * the words it names only.
 */
struct rct_dmap {
	uint64_t *bits;
	uint64_t *sum;
	uint64_t nbits, nwords, nsum;
};

/* Allocate an empty map of @nbits bits.  Returns 0 or -1 (no memory). */
int rct_dmap_init(struct rct_dmap *d, uint64_t nbits);
void rct_dmap_free(struct rct_dmap *d);

/* Word @w |= @v (bits past nbits in the last word are dropped). */
static inline void rct_dmap_or_word(struct rct_dmap *d, uint64_t w, uint64_t v)
{
	if (w == d->nwords - 1 && d->nbits % 64)
		v &= (1ull << (d->nbits % 64)) - 1;
	if (!v)
		return;
	d->bits[w] |= v;
	d->sum[w / 64] |= 1ull << (w % 64);
}

/*
 * d |= @src, a plain bitmap of nbits bits: one read of @src, which is all
 * this costs when @src is mostly zero.  Returns the number of non-zero words.
 */
uint64_t rct_dmap_or_bitmap(struct rct_dmap *d, const uint64_t *src);
/*
 * The same through the caller's summary @src_sum, in the layout of d->sum: a
 * clear bit w says word w of @src is zero, and that word is not read.  What
 * this costs follows the summary's set bits (8 bytes read per 4096 words
 * without one), not the map's size.  Returns the number of non-zero words.
 */
uint64_t rct_dmap_or_bitmap_summary(struct rct_dmap *d, const uint64_t *src,
				    const uint64_t *src_sum);
/* dst |= src (same size): touches src's set words only. */
void rct_dmap_or(struct rct_dmap *dst, const struct rct_dmap *src);
/* Clear every bit: touches the set words only. */
void rct_dmap_clear(struct rct_dmap *d);
/* Set every bit. */
void rct_dmap_fill(struct rct_dmap *d);
/* Number of set bits. */
uint64_t rct_dmap_count(const struct rct_dmap *d);
/* The first word at or after @w whose summary bit is set; false if none. */
bool rct_dmap_next_word(const struct rct_dmap *d, uint64_t w, uint64_t *w_p);
/* rct_bitmap_next_run() over the map, skipping unset words through the summary. */
bool rct_dmap_next_run(const struct rct_dmap *d, uint64_t start, uint64_t max_len,
		       uint64_t *first_p, uint64_t *len_p);

#endif /* RCT_BITMAP_H */
