/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers shared by the core and the backends. */
#ifndef RCT_UTIL_H
#define RCT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RCT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define rct_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define RCT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RCT_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline uint64_t rct_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Milliseconds left until @deadline_ns, clamped to [0, INT32_MAX]. */
static inline int rct_ms_left(uint64_t deadline_ns)
{
	uint64_t now = rct_now_ns();
	uint64_t ms;

	if (now >= deadline_ns)
		return 0;
	ms = (deadline_ns - now + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static inline int rct_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* 64 random bits (getrandom; the clock if that fails): cookies and key tags. */
uint64_t rct_random64(void);

/* Anonymous memory, pre-faulted (MADV_POPULATE_WRITE, else touched); NULL on failure. */
void *rct_mem_alloc(size_t len);
/*
 * Anonymous zero memory, not populated and not counted against overcommit
 * (MAP_NORESERVE): pages are faulted in as they are first written.  NULL on failure.
 */
void *rct_mem_alloc_sparse(size_t len);
/* rct_mem_alloc_sparse() when @sparse, else rct_mem_alloc(). */
static inline void *rct_mem_alloc_as(size_t len, bool sparse)
{
	return sparse ? rct_mem_alloc_sparse(len) : rct_mem_alloc(len);
}
/* Whether @len bytes at @p (8-byte aligned, @len a multiple of 64) are all zero. */
bool rct_mem_is_zero(const void *p, size_t len);
void rct_mem_free(void *addr, size_t len);

#endif /* RCT_UTIL_H */
