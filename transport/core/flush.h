/* SPDX-License-Identifier: BSD-3-Clause */
/* flush.c: the secondary's flush (colo cache -> guest RAM) on several threads. */
#ifndef RCT_FLUSH_H
#define RCT_FLUSH_H

#include <stdint.h>

#include "session.h"

/* Bytes a flush copies between two keepalive checks: ~2 ms at memcpy speed. */
#define RCT_FLUSH_STEP (8ull << 20)

/* Helper threads a session flushes with when its parameters do not say:
 * one per online core beyond the first (the caller's thread is the first). */
unsigned rct_flush_threads_default(void);

/*
 * Copy every page set in each region's dirty map from the cache into guest
 * RAM, in address order within each thread's share: the caller's thread and
 * s->flush_threads helpers (started at the first flush that needs them) split
 * the pages evenly.  A region with r->flush_alone set is copied by the
 * caller's thread only.  The caller's thread keeps the session ticking.
 * Returns the pages copied.
 */
uint64_t rct_flush_copy(struct rct_session *s);

/* Pages the session's helpers copied so far (tests, debugging). */
uint64_t rct_flush_helped(const struct rct_session *s);

/* Stop and join the helpers (session teardown).  NULL-safe. */
void rct_flush_pool_destroy(struct rct_flush_pool *p);

#endif /* RCT_FLUSH_H */
