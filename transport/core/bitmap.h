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

#endif /* RCT_BITMAP_H */
