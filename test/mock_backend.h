/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fault-injecting backend for engine unit tests (never for end-to-end
 * tests, which run over real sockets).  Two contexts in one process are paired
 * through a table of fake ports; the control lane is a SOCK_SEQPACKET
 * socketpair; a put is a memcpy straight into the peer's memory, complete at
 * once, like an RDMA WRITE whose completion means placement (so fenced()
 * returns UINT64_MAX).
 *
 * Faults: mock_fault_lane(L, N) makes lane L fail with RCT_ERR_IO after N more
 * runs were placed; every later call on that context reports the failure.
 */
#ifndef RCT_TEST_MOCK_BACKEND_H
#define RCT_TEST_MOCK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "core/backend.h"

extern const struct rct_backend_ops mock_ops;

/* Arm a lane failure on every mock context created from now on (-1: none). */
void mock_fault_lane(int lane, long after_runs);

/* Send raw bytes on @ctx's control lane, as a misbehaving peer would. */
rct_status_t mock_ctrl_inject(struct rct_be_ctx *ctx, const void *buf, size_t len);

/* Puts and fences of contexts created from now on complete one per progress()
 * call instead of at once. */
void mock_deferred_completion(bool on);

/* Puts and fences still pending when the last COMMIT was sent (-1: none sent),
 * and how many fences had been issued by then. */
long mock_pending_at_commit(unsigned long *fences_p);

/* Runs placed by puts so far on all mock contexts. */
unsigned long mock_runs_placed(void);

#endif
