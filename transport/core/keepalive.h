/* SPDX-License-Identifier: BSD-3-Clause */
/* keepalive.c: heartbeats, the liveness channel, a backend wait's hook. */
#ifndef RCT_KEEPALIVE_H
#define RCT_KEEPALIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

/* Send a HEARTBEAT if nothing went to the peer for an interval, and push it out.
 * Long loops call it between steps. */
rct_status_t rct_session_tick(struct rct_session *s);

/* Arm the keepalive (end of the handshake): starts the liveness thread if any. */
rct_status_t rct_keepalive_start(struct rct_session *s);

/* The liveness channel's verdict, acted on by the session thread. */
rct_status_t rct_session_live_check(struct rct_session *s);

/* Silence after which the peer is lost: 3 intervals once it has spoken after
 * the handshake; until then the handshake's own deadline (the peer may still
 * be importing keys or mapping memory). */
uint64_t rct_session_silence_ns(const struct rct_session *s);

/* The backend's long waits (rct_be_params.keepalive): queue only, we are
 * inside a call of it; the session fails when that call returns the status. */
rct_status_t rct_session_keepalive(void *arg);

/* Milliseconds (rounded up) until the keepalive needs attention: the next
 * heartbeat to send or the loss deadline, whichever comes first. */
int rct_session_hb_ms(const struct rct_session *s, int timeout_ms);

/* Both sides must run the liveness channel, or neither: heartbeats judged on
 * one channel and sent on the other would read as silence. */
rct_status_t rct_session_live_agree(struct rct_session *s, const struct rct_msg *hello);

/* Secondary: open its liveness socket and tell the primary where it is. */
rct_status_t rct_session_live_offer(struct rct_session *s);

/* Primary: the secondary's LIVENESS message. */
rct_status_t rct_session_live_join(struct rct_session *s, const char *addr, uint64_t deadline);

#endif /* RCT_KEEPALIVE_H */
