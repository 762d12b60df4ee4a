/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The liveness channel: heartbeats sent and judged by a thread of their own,
 * over a UDP socket of their own, so that whether the peer is alive never
 * depends on the data path making progress (docs/protocol.md, "Liveness").
 *
 * One per session.  The session thread opens it, learns or gives the peer's
 * address during the handshake, starts it, and afterwards only reads its
 * verdict (rct_live_lost) and its figures: every field the thread writes is an
 * atomic, everything else is written before rct_live_start() and read-only
 * after it.
 */
#ifndef RCT_LIVENESS_H
#define RCT_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

#include <rct/rct.h>

#define RCT_LIVE_KEY_LEN 32

struct rct_live;

struct rct_live_params {
	enum rct_role role;	 /* this side */
	uint64_t interval_ns;	 /* one beat per interval */
	unsigned misses;	 /* intervals of silence that mean loss */
	uint64_t first_allow_ns; /* secondary: silence allowed before the primary's first beat */
	bool rt;		 /* ask for SCHED_FIFO (logs once where refused) */
};

/*
 * Open the channel's socket.  Secondary: bound to @bind_addr, any port (the
 * port is then rct_live_port()).  Primary: @bind_addr NULL, the socket is made
 * by rct_live_set_peer().
 */
rct_status_t rct_live_open(const struct rct_live_params *params, const char *bind_addr,
			   struct rct_live **live_p);

/* The bound UDP port (secondary). */
uint16_t rct_live_port(const struct rct_live *lv);

/*
 * Bind the channel to this pairing before it starts: @token is the
 * secondary's random session token carried in every beat; @tx_key and
 * @rx_key (RCT_LIVE_KEY_LEN bytes each, or NULL for an unauthenticated pair)
 * key the MAC of the beats this side sends and of those it accepts.
 */
void rct_live_bind(struct rct_live *lv, uint64_t token, const uint8_t *tx_key,
		   const uint8_t *rx_key);

/* Primary: the secondary's address (as given to connect) and its liveness port. */
rct_status_t rct_live_set_peer(struct rct_live *lv, const char *addr, uint16_t port);

/* Start the thread.  The secondary sends once the primary's first beat told it where. */
rct_status_t rct_live_start(struct rct_live *lv);

/* The epoch this side announces in its beats (any thread). */
void rct_live_set_committed(struct rct_live *lv, uint64_t epoch);

/* Whether the thread declared the peer lost; *silence_ns_p: the silence it saw. */
bool rct_live_lost(const struct rct_live *lv, uint64_t *silence_ns_p);

/* The session was not driven for @ns (longer than the loss threshold). */
void rct_live_note_gap(struct rct_live *lv, uint64_t ns);

/* The figures of rct_session_liveness() (any thread). */
void rct_live_stats(const struct rct_live *lv, struct rct_liveness_stats *stats);

/* Stop the thread (no more beats go out); the figures stay readable.  NULL-safe. */
void rct_live_stop(struct rct_live *lv);

/* Stop the thread, close the socket.  NULL-safe. */
void rct_live_destroy(struct rct_live *lv);

#endif /* RCT_LIVENESS_H */
