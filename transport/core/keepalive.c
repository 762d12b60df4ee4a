/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Keepalive: arming it at the end of the handshake, in-band heartbeats, the
 * liveness channel's set-up (agreed in HELLO, offered and joined after AUTH)
 * and its verdict, and the hook a backend's long wait calls (docs/protocol.md,
 * "Liveness channel").
 */

#include <string.h>

#include "auth.h"
#include "handshake.h"
#include "keepalive.h"
#include "liveness.h"
#include "log.h"
#include "session.h"
#include "util.h"

rct_status_t rct_keepalive_start(struct rct_session *s)
{
	uint64_t now = rct_now_ns();
	rct_status_t status;

	/* The first heartbeat goes out at once: the peer may have finished its
	 * side of the handshake long ago. */
	s->ka.t_rx_last = now;
	s->ka.t_tx_last = now - s->ka.interval_ns;
	s->ka.peer_seen = false;
	s->ka.armed = true;
	s->ka.t_driven = now;
	if (!s->ka.live)
		return RCT_OK;
	rct_live_set_committed(s->ka.live, s->last_committed);
	status = rct_live_start(s->ka.live);
	return status == RCT_OK ? RCT_OK : rct_session_fail(s, status);
}

/* The liveness channel's verdict, acted on by the session thread. */
rct_status_t rct_session_live_check(struct rct_session *s)
{
	uint64_t silence;

	if (!rct_live_lost(s->ka.live, &silence))
		return RCT_OK;
	rct_error("session: nothing from the %s for %llu ms on the liveness channel (heartbeat "
		  "every %llu ms, %d missed): peer lost",
		  s->role == RCT_ROLE_PRIMARY ? "secondary" : "primary",
		  (unsigned long long)(silence / 1000000),
		  (unsigned long long)(s->ka.interval_ns / 1000000), RCT_HEARTBEAT_MISSES);
	return rct_session_fail(s, RCT_ERR_PEER_LOST);
}

rct_status_t rct_session_liveness(const struct rct_session *s, struct rct_liveness_stats *stats_p)
{
	if (!s || !stats_p)
		return RCT_ERR_INVALID_PARAM;
	if (!s->ka.live || !s->ka.armed)
		return RCT_ERR_STATE;
	rct_live_stats(s->ka.live, stats_p);
	return RCT_OK;
}

/* Silence after which the peer is lost: 3 intervals once it has spoken after
 * the handshake; until then the handshake's own deadline (the peer may still
 * be importing keys or mapping memory). */
uint64_t rct_session_silence_ns(const struct rct_session *s)
{
	return s->ka.peer_seen ? RCT_HEARTBEAT_MISSES * s->ka.interval_ns
			       : RCT_MAX(RCT_HEARTBEAT_MISSES * s->ka.interval_ns,
					 (uint64_t)s->timeout_ms * 1000000);
}

/* Queue a heartbeat when one is due.  *sent_p: whether one was. */
static rct_status_t rct_session_heartbeat(struct rct_session *s, bool *sent_p)
{
	struct rct_msg m = {.type = RCT_MSG_HEARTBEAT};

	*sent_p = false;
	if (s->ka.live || !s->ka.armed || s->state != RCT_SESSION_CONNECTED ||
	    rct_now_ns() < s->ka.t_tx_last + s->ka.interval_ns)
		return RCT_OK;
	m.heartbeat.seq = ++s->ka.seq;
	m.heartbeat.last_committed = s->last_committed;
	*sent_p = true;
	return rct_session_send(s, &m);
}

rct_status_t rct_session_tick(struct rct_session *s)
{
	rct_status_t status;
	bool sent;

	if (s->ka.live && s->ka.armed) {
		uint64_t now = rct_now_ns();

		/* Not driven for longer than in-band heartbeats would survive:
		 * recorded, so that the caller can report its own stall. */
		if (now - s->ka.t_driven > RCT_HEARTBEAT_MISSES * s->ka.interval_ns)
			rct_live_note_gap(s->ka.live, now - s->ka.t_driven);
		s->ka.t_driven = now;
	}
	status = rct_session_heartbeat(s, &sent);
	if (status != RCT_OK || !sent)
		return status;
	status = s->ops->progress(s->ctx, 0);
	return status == RCT_OK ? RCT_OK : rct_session_fail(s, status);
}

/* The backend's long waits (rct_be_params.keepalive): queue only, we are
 * inside a call of it; the session fails when that call returns the status. */
rct_status_t rct_session_keepalive(void *arg)
{
	struct rct_session *s = arg;
	bool sent;

	if (s->ka.live && s->ka.armed && rct_live_lost(s->ka.live, NULL))
		return RCT_ERR_PEER_LOST;
	return rct_session_heartbeat(s, &sent);
}

/* Milliseconds (rounded up) until the keepalive needs attention: the next
 * heartbeat to send or the loss deadline, whichever comes first. */
int rct_session_hb_ms(const struct rct_session *s, int timeout_ms)
{
	uint64_t now = rct_now_ns(), due, ms;

	if (!s->ka.armed)
		return timeout_ms;
	/* The liveness thread keeps time; look at its verdict once an interval. */
	if (s->ka.live)
		return timeout_ms < 0 || (uint64_t)timeout_ms * 1000000 > s->ka.interval_ns
			       ? (int)(s->ka.interval_ns / 1000000)
			       : timeout_ms;
	due = RCT_MIN(s->ka.t_tx_last + s->ka.interval_ns,
		      s->ka.t_rx_last + rct_session_silence_ns(s) + 1000000);
	ms = due > now ? (due - now + 999999) / 1000000 : 0;
	return timeout_ms < 0 || (uint64_t)timeout_ms > ms ? (int)ms : timeout_ms;
}

/* Both sides must run the liveness channel, or neither: heartbeats judged on
 * one channel and sent on the other would read as silence. */
rct_status_t rct_session_live_agree(struct rct_session *s, const struct rct_msg *hello)
{
	bool mine = s->ka.liveness & RCT_LIVENESS_THREAD;

	if (mine == !!(hello->hello.flags & RCT_HELLO_LIVENESS))
		return RCT_OK;
	return rct_session_proto_error(
		s, RCT_ERR_MISMATCH,
		mine ? "the peer sends heartbeats on the control lane, this side on its liveness "
		       "channel (RCT_LIVENESS_THREAD): configure both alike"
		     : "the peer sends heartbeats on its liveness channel (RCT_LIVENESS_THREAD), "
		       "this side on the control lane: configure both alike");
}

static rct_status_t rct_session_live_open(struct rct_session *s, const char *bind_addr)
{
	struct rct_live_params lp = {
		.role = s->role,
		.interval_ns = s->ka.interval_ns,
		.misses = RCT_HEARTBEAT_MISSES,
		.first_allow_ns = (uint64_t)s->timeout_ms * 1000000,
		.rt = s->ka.liveness & RCT_LIVENESS_RT,
	};

	return rct_live_open(&lp, bind_addr, &s->ka.live);
}

/* Key the liveness channel to this session (after AUTH) and give it its token. */
static void rct_session_live_bind(struct rct_session *s, uint64_t token)
{
	uint8_t tx[RCT_LIVE_KEY_LEN], rx[RCT_LIVE_KEY_LEN];

	if (s->auth.has_psk)
		rct_auth_live_keys(s, tx, rx);
	rct_live_bind(s->ka.live, token, s->auth.has_psk ? tx : NULL, s->auth.has_psk ? rx : NULL);
	explicit_bzero(tx, sizeof(tx));
	explicit_bzero(rx, sizeof(rx));
}

/* Secondary: open its liveness socket and tell the primary where it is. */
rct_status_t rct_session_live_offer(struct rct_session *s)
{
	struct rct_msg m = {.type = RCT_MSG_LIVENESS};
	rct_status_t status;

	status = rct_session_live_open(s, s->ka.listen_addr);
	if (status != RCT_OK)
		return rct_session_proto_error(s, status, "cannot open the liveness channel");
	m.liveness.port = rct_live_port(s->ka.live);
	m.liveness.token = rct_random64();
	rct_session_live_bind(s, m.liveness.token);
	return rct_session_send(s, &m);
}

/* Primary: the secondary's LIVENESS message. */
rct_status_t rct_session_live_join(struct rct_session *s, const char *addr, uint64_t deadline)
{
	struct rct_msg m;
	rct_status_t status;

	status = rct_session_wait_msg(s, deadline, RCT_MSG_LIVENESS, &m);
	if (status != RCT_OK)
		return status;
	status = rct_session_live_open(s, NULL);
	if (status == RCT_OK)
		status = rct_live_set_peer(s->ka.live, addr, m.liveness.port);
	if (status != RCT_OK)
		return rct_session_proto_error(s, status, "cannot open the liveness channel");
	rct_session_live_bind(s, m.liveness.token);
	return RCT_OK;
}
