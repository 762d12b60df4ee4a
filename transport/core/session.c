/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sessions: creation and teardown, the event queue, failure, the control
 * lane's send, and the poll loop that dispatches what arrives.  Beside it:
 * handshake.c (listen, accept, connect, HELLO, REGION), keepalive.c
 * (heartbeats and the liveness channel), region.c (guest regions), auth.c,
 * and the checkpoint engine in ckpt_primary.c and ckpt_secondary.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "ckpt.h"
#include "flush.h"
#include "keepalive.h"
#include "liveness.h"
#include "log.h"
#include "region.h"
#include "session.h"
#include "util.h"

#define RCT_DEFAULT_LANES	 4
#define RCT_DEFAULT_PAGE_SIZE	 4096
#define RCT_DEFAULT_MAX_PUT	 (1ull << 20)
#define RCT_DEFAULT_TIMEOUT_MS	 RCT_SESSION_TIMEOUT_DEFAULT_MS
#define RCT_DEFAULT_STAGING_SIZE RCT_STAGING_SIZE_DEFAULT

rct_status_t rct_session_create_ops(const struct rct_session_params *params,
				    const struct rct_backend_ops *ops,
				    struct rct_session **session_p)
{
	struct rct_be_params be_params;
	struct rct_session *s;
	rct_status_t status;

	rct_log_init();
	if (!params || !session_p || !(params->field_mask & RCT_SESSION_PARAM_FIELD_ROLE) ||
	    (params->role != RCT_ROLE_PRIMARY && params->role != RCT_ROLE_SECONDARY)) {
		rct_error("session: a role (primary or secondary) is required");
		return RCT_ERR_INVALID_PARAM;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return RCT_ERR_NO_MEMORY;
	s->ops = ops;
	s->wait.epfd = -1;
	s->role = params->role;
	s->state = RCT_SESSION_NEW;
	s->ckpt = RCT_CKPT_IDLE;
	s->last_committed = RCT_NO_EPOCH;
	s->last_consistent = RCT_NO_EPOCH;
	s->pri.flushed = true;
	s->ka.interval_ns = (uint64_t)RCT_HEARTBEAT_DEFAULT_MS * 1000000;
	s->lanes = RCT_DEFAULT_LANES;
	s->page_size = RCT_DEFAULT_PAGE_SIZE;
	s->max_put = RCT_DEFAULT_MAX_PUT;
	s->timeout_ms = RCT_DEFAULT_TIMEOUT_MS;
	s->staging_size = RCT_DEFAULT_STAGING_SIZE;
	s->devstate_slot = -1;
	s->flush_threads = rct_flush_threads_default();

	status = RCT_ERR_INVALID_PARAM;
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_LANES) {
		if (params->lanes < 1 || params->lanes > RCT_MAX_LANES) {
			rct_error("session: %u lanes asked, 1..%d allowed", params->lanes,
				  RCT_MAX_LANES);
			goto out_free;
		}
		s->lanes = params->lanes;
	}
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_PAGE_SIZE) {
		if (!rct_is_pow2(params->page_size) || params->page_size < RCT_PAGE_SIZE_MIN ||
		    params->page_size > RCT_PAGE_SIZE_MAX) {
			rct_error("session: page size %u is not a power of two from %d to %u",
				  params->page_size, RCT_PAGE_SIZE_MIN, RCT_PAGE_SIZE_MAX);
			goto out_free;
		}
		s->page_size = params->page_size;
	}
	s->page_shift = (unsigned)__builtin_ctz(s->page_size);
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_MAX_PUT) {
		if (params->max_put < s->page_size) {
			rct_error("session: max put %llu is below the page size %u",
				  (unsigned long long)params->max_put, s->page_size);
			goto out_free;
		}
		s->max_put = params->max_put;
	}
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_TIMEOUT) {
		if (params->timeout_ms <= 0) {
			rct_error("session: timeout %d ms must be positive", params->timeout_ms);
			goto out_free;
		}
		s->timeout_ms = params->timeout_ms;
	}
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_STAGING_SIZE) {
		if (!params->staging_size || params->staging_size > RCT_STAGING_MAX) {
			rct_error("session: staging size must be 1 byte to 1 GiB");
			goto out_free;
		}
		s->staging_size = params->staging_size;
	}

	if (params->field_mask & RCT_SESSION_PARAM_FIELD_HEARTBEAT) {
		if (params->heartbeat_ms < 1 || params->heartbeat_ms > 60000) {
			rct_error("session: heartbeat interval %d ms, 1..60000 allowed",
				  params->heartbeat_ms);
			goto out_free;
		}
		s->ka.interval_ns = (uint64_t)params->heartbeat_ms * 1000000;
	}
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_GENERATION)
		s->generation = params->generation;
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_LIVENESS) {
		if (params->liveness & ~(unsigned)(RCT_LIVENESS_THREAD | RCT_LIVENESS_RT) ||
		    params->liveness == RCT_LIVENESS_RT) {
			rct_error("session: liveness flags 0x%x: RCT_LIVENESS_THREAD, optionally "
				  "with RCT_LIVENESS_RT",
				  params->liveness);
			goto out_free;
		}
		s->ka.liveness = params->liveness;
	}

	if (params->field_mask & RCT_SESSION_PARAM_FIELD_PSK) {
		if (!params->psk) {
			rct_error("session: the pre-shared key field is set but NULL");
			goto out_free;
		}
		status = rct_auth_init();
		if (status != RCT_OK)
			goto out_free;
		memcpy(s->auth.psk, params->psk, RCT_PSK_LEN);
		memcpy(s->auth.host_psk, params->psk, RCT_PSK_LEN);
		s->auth.has_psk = s->auth.has_host_psk = true;
		status = RCT_ERR_INVALID_PARAM;
	}

	if (params->field_mask & RCT_SESSION_PARAM_FIELD_THREADS) {
		if (params->threads > RCT_MAX_LANES) {
			rct_error("session: %u helper threads asked, at most %d", params->threads,
				  RCT_MAX_LANES);
			goto out_free;
		}
		be_params.threads = params->threads;
	} else {
		be_params.threads = 0;
	}
	if (params->field_mask & RCT_SESSION_PARAM_FIELD_FLUSH_THREADS) {
		if (params->flush_threads > RCT_FLUSH_THREADS_MAX) {
			rct_error("session: %u flush threads asked, at most %d",
				  params->flush_threads, RCT_FLUSH_THREADS_MAX);
			goto out_free;
		}
		s->flush_threads = params->flush_threads;
	}
	be_params.timeout_ms = s->timeout_ms;
	/* In-band beats share the control lane with the transport's retransmission;
	 * the liveness thread's do not. */
	be_params.loss_ns = s->ka.liveness & RCT_LIVENESS_THREAD
				    ? 0
				    : s->ka.interval_ns * RCT_HEARTBEAT_MISSES;
	be_params.max_put = s->max_put;
	be_params.ctrl_max = RCT_MSG_MAX;
	be_params.keepalive = rct_session_keepalive;
	be_params.keepalive_arg = s;
	status = ops->ctx_create(&be_params, &s->ctx);
	if (status != RCT_OK)
		goto out_free;

	*session_p = s;
	return RCT_OK;

out_free:
	free(s);
	return status;
}

rct_status_t rct_session_create(const struct rct_session_params *params,
				struct rct_session **session_p)
{
	const struct rct_backend_ops *ops;
	const char *name = "tcp";

	rct_log_init();
	if (params && (params->field_mask & RCT_SESSION_PARAM_FIELD_BACKEND) && params->backend)
		name = params->backend;
	ops = rct_backend_find(name);
	if (!ops) {
		rct_error("session: backend '%s' is not in this build (have: %s)", name,
			  rct_backend_names());
		return RCT_ERR_NOT_FOUND;
	}
	return rct_session_create_ops(params, ops, session_p);
}

void rct_session_destroy(struct rct_session *s)
{
	if (!s)
		return;
	/* Gone before the GOODBYE below: a send that fails fails the session,
	 * which stops the liveness thread, and must find none (it was freed). */
	rct_live_destroy(s->ka.live);
	s->ka.live = NULL;
	rct_flush_pool_destroy(s->flush_pool);
	rct_secondary_prefault_stop(s);
	if (s->state == RCT_SESSION_CONNECTED) {
		struct rct_msg bye = {.type = RCT_MSG_GOODBYE};

		/* Best effort: the kernel or the NIC delivers what is queued. */
		if (rct_session_send(s, &bye) == RCT_OK)
			s->ops->progress(s->ctx, 0);
	}
	/* Remote keys, then the lanes, then memory: an endpoint may still
	 * reference a key, and a lane may still reference memory. */
	for (unsigned i = 0; i < s->nregions; i++) {
		if (s->regions[i]->rkey)
			s->ops->rkey_destroy(s->ctx, s->regions[i]->rkey);
		s->regions[i]->rkey = NULL;
	}
	if (s->staging_rkey)
		s->ops->rkey_destroy(s->ctx, s->staging_rkey);
	s->ops->disconnect(s->ctx);
	for (unsigned i = 0; i < s->nregions; i++)
		rct_region_free(s, s->regions[i]);
	free(s->regions);
	if (s->staging)
		s->ops->mem_unmap(s->ctx, s->staging);
	for (unsigned i = 0; i < RCT_MAX_LANES; i++)
		free(s->pri.lane[i].runs);
	s->ops->ctx_destroy(s->ctx);
	explicit_bzero(s->auth.psk, sizeof(s->auth.psk));
	explicit_bzero(s->auth.host_psk, sizeof(s->auth.host_psk));
	if (s->wait.epfd >= 0)
		close(s->wait.epfd);
	free(s);
}

const char *rct_session_backend(const struct rct_session *s)
{
	return s ? s->ops->name : NULL;
}

const char *rct_session_transport(const struct rct_session *s)
{
	return s && s->ctx ? s->ctx->transport : "";
}

unsigned rct_session_lanes(const struct rct_session *s)
{
	return s && s->state == RCT_SESSION_CONNECTED ? s->lanes : 0;
}

uint64_t rct_session_last_committed(const struct rct_session *s)
{
	return s ? s->last_committed : RCT_NO_EPOCH;
}

void rct_session_sync_progress(const struct rct_session *s, struct rct_sync_progress *p)
{
	struct rct_sync_progress full = {.field_mask = RCT_SYNC_PROGRESS_FIELDS_ALL};
	uint64_t t0, t1;

	if (!p)
		return;
	if (s) {
		full.active = atomic_load_explicit(&s->pri.sync_active, memory_order_relaxed);
		full.pages_total = atomic_load_explicit(&s->pri.sync_total, memory_order_relaxed);
		full.pages_done = atomic_load_explicit(&s->pri.sync_done, memory_order_relaxed);
		t0 = atomic_load_explicit(&s->pri.sync_t0, memory_order_relaxed);
		t1 = full.active ? rct_now_ns()
				 : atomic_load_explicit(&s->pri.sync_t1, memory_order_relaxed);
		full.elapsed_ns = t0 && t1 > t0 ? t1 - t0 : 0;
	}
	rct_sync_progress_copy(p, &full);
}

void rct_session_event_push(struct rct_session *s, enum rct_event_type type, uint64_t epoch,
			    rct_status_t status)
{
	struct rct_event *ev;

	if (s->ev_count == RCT_EVENT_RING) {
		/* Cannot happen with the protocol's one-checkpoint-at-a-time rule;
		 * keep the newest, which carries the session's current truth. */
		rct_warn("session: event ring full, dropping the oldest event");
		s->ev_head = (s->ev_head + 1) % RCT_EVENT_RING;
		s->ev_count--;
	}
	ev = &s->events[(s->ev_head + s->ev_count) % RCT_EVENT_RING];
	ev->field_mask = RCT_EVENT_FIELDS_ALL;
	ev->type = type;
	ev->epoch = epoch;
	ev->status = status;
	/* The failover contract (rct.h): a checkpoint begun and never committed
	 * is discarded, and the event says which. */
	ev->discarded = type == RCT_EVENT_PEER_LOST && s->role == RCT_ROLE_SECONDARY &&
					s->ckpt == RCT_CKPT_RECEIVING
				? s->epoch
				: RCT_NO_EPOCH;
	s->ev_count++;
}

rct_status_t rct_session_event_next(struct rct_session *s, struct rct_event *event_p)
{
	if (!s || !event_p)
		return RCT_ERR_INVALID_PARAM;
	if (!s->ev_count)
		return RCT_ERR_AGAIN;
	rct_event_copy(event_p, &s->events[s->ev_head]);
	s->ev_head = (s->ev_head + 1) % RCT_EVENT_RING;
	s->ev_count--;
	return RCT_OK;
}

int rct_session_peer_closed(const struct rct_session *s)
{
	return s && s->state == RCT_SESSION_FAILED && s->goodbye;
}

rct_status_t rct_session_abort(struct rct_session *s, uint32_t reason)
{
	if (!s)
		return RCT_ERR_INVALID_PARAM;
	if (s->state == RCT_SESSION_FAILED)
		return s->fail_status;
	if (s->state == RCT_SESSION_CONNECTED) {
		struct rct_msg bye = {.type = RCT_MSG_GOODBYE, .goodbye.reason = reason};

		/* Best effort, as at destroy: a peer that does not hear it finds
		 * the silence instead. */
		if (rct_session_send(s, &bye) == RCT_OK)
			s->ops->progress(s->ctx, 0);
	}
	rct_info("session: ended on purpose (%s)", reason == RCT_GOODBYE_FAILOVER
							   ? "failover: the secondary takes over"
						   : reason == RCT_GOODBYE_DEMOTE ? "demoted"
										  : "aborted");
	snprintf(s->fail_text, sizeof(s->fail_text), "ended on purpose by this host (%s)",
		 reason == RCT_GOODBYE_FAILOVER ? "failover"
		 : reason == RCT_GOODBYE_DEMOTE ? "demote"
						: "abort");
	return rct_session_fail(s, RCT_ERR_ABORTED);
}

uint64_t rct_session_generation(const struct rct_session *s)
{
	return s ? s->generation : 0;
}

rct_status_t rct_session_fail(struct rct_session *s, rct_status_t status)
{
	if (s->state == RCT_SESSION_FAILED)
		return s->fail_status;
	/* The one rule (rct.h): a failed session reports a fatal code.  A
	 * deadline that passed while the peer should have answered is a peer
	 * that stopped answering. */
	if (!rct_status_is_fatal(status)) {
		rct_debug("session: %s ends the session: reported as peer lost",
			  rct_status_str(status));
		status = RCT_ERR_PEER_LOST;
	}
	/* A primary that has not proved itself ends nothing but its own try:
	 * rct_session_accept() turns it away and listens on. */
	if (s->state == RCT_SESSION_ADMITTING)
		return status;
	if (s->goodbye)
		rct_info("session: closed by the peer");
	else if (status == RCT_ERR_ABORTED)
		rct_info("session: stopped (last committed epoch %lld)",
			 s->last_committed == RCT_NO_EPOCH ? -1ll : (long long)s->last_committed);
	else
		rct_error("session: failed: %s (last committed epoch %lld, consistent %lld)",
			  rct_status_str(status),
			  s->last_committed == RCT_NO_EPOCH ? -1ll : (long long)s->last_committed,
			  s->last_consistent == RCT_NO_EPOCH ? -1ll
							     : (long long)s->last_consistent);
	s->state = RCT_SESSION_FAILED;
	s->fail_status = status;
	/* A failed session is not alive for its peer either. */
	rct_live_stop(s->ka.live);
	if (s->role == RCT_ROLE_SECONDARY && s->ckpt == RCT_CKPT_RECEIVING)
		rct_warn("session: epoch %llu was in flight: discarded, never applied",
			 (unsigned long long)s->epoch);
	rct_session_event_push(s, RCT_EVENT_PEER_LOST, s->last_consistent, status);
	return status;
}

rct_status_t rct_session_send(struct rct_session *s, const struct rct_msg *msg)
{
	rct_status_t status;
	size_t len;

	status = rct_msg_encode(msg, s->msgbuf, sizeof(s->msgbuf), &len);
	if (status != RCT_OK) {
		rct_error("session: cannot encode %s: %s", rct_msg_type_str(msg->type),
			  rct_status_str(status));
		return status;
	}
	status = s->ops->ctrl_send(s->ctx, s->msgbuf, len);
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	s->ka.t_tx_last = rct_now_ns();
	return RCT_OK;
}

rct_status_t rct_session_proto_error(struct rct_session *s, rct_status_t code, const char *text)
{
	struct rct_msg m = {.type = RCT_MSG_ERROR};
	size_t len = strlen(text);

	if (s->state == RCT_SESSION_ADMITTING) {
		rct_warn("session: a connecting primary: %s", text);
	} else {
		rct_error("session: %s", text);
		snprintf(s->fail_text, sizeof(s->fail_text), "%s", text);
	}
	if (s->state == RCT_SESSION_CONNECTED || s->state == RCT_SESSION_ADMITTING) {
		m.error.code = code;
		m.error.text_len = (uint16_t)RCT_MIN(len, RCT_ERROR_TEXT_MAX);
		m.error.text = text;
		if (rct_session_send(s, &m) == RCT_OK)
			s->ops->progress(s->ctx, 0);
	}
	return rct_session_fail(s, code);
}

/* A message every role handles the same way, after the handshake. */
rct_status_t rct_session_dispatch(struct rct_session *s, const struct rct_msg *m)
{
	char text[RCT_ERROR_TEXT_MAX + 1];

	switch (m->type) {
	case RCT_MSG_HEARTBEAT:
		return RCT_OK;
	case RCT_MSG_ERROR:
		memcpy(text, m->error.text, m->error.text_len);
		text[m->error.text_len] = '\0';
		snprintf(s->fail_text, sizeof(s->fail_text), "the peer: %s", text);
		rct_log(s->state == RCT_SESSION_ADMITTING ? RCT_LOG_WARN : RCT_LOG_ERROR,
			"session: peer reported an error (%s): %s",
			rct_status_str((rct_status_t)m->error.code), text);
		/* A disagreement is reported as such on both sides. */
		if (m->error.code == RCT_ERR_AUTH || m->error.code == RCT_ERR_MISMATCH ||
		    m->error.code == RCT_ERR_VERSION)
			return rct_session_fail(s, (rct_status_t)m->error.code);
		return rct_session_fail(s, RCT_ERR_PEER_LOST);
	case RCT_MSG_GOODBYE:
		rct_info("session: the peer ended the session (%s)",
			 m->goodbye.reason == RCT_GOODBYE_FAILOVER
				 ? "failover: the secondary took over"
			 : m->goodbye.reason == RCT_GOODBYE_DEMOTE ? "the primary was demoted"
			 : m->goodbye.reason == RCT_GOODBYE_ABORT  ? "aborted by its host"
								   : "closed");
		s->goodbye = true;
		return rct_session_fail(s, RCT_ERR_PEER_LOST);
	}
	if (s->role == RCT_ROLE_PRIMARY)
		return rct_primary_dispatch(s, m);
	return rct_secondary_dispatch(s, m);
}

/* Receive and decode one control message, if one is there. */
rct_status_t rct_session_recv_one(struct rct_session *s, struct rct_msg *msg_p)
{
	const char *why = NULL;
	const void *buf;
	rct_status_t status;
	size_t len;
	char text[160];

	status = s->ops->ctrl_recv(s->ctx, &buf, &len);
	if (status == RCT_ERR_AGAIN)
		return status;
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	s->ka.t_rx_last = rct_now_ns();
	s->ka.peer_seen = s->ka.armed;
	status = rct_msg_decode(buf, len, msg_p, &why);
	if (status != RCT_OK) {
		snprintf(text, sizeof(text), "malformed control message (%zu bytes): %s", len, why);
		return rct_session_proto_error(s, status, text);
	}
	rct_debug("session: received %s", rct_msg_type_str(msg_p->type));
	return RCT_OK;
}

rct_status_t rct_session_poll(struct rct_session *s, int timeout_ms)
{
	rct_status_t status, pstatus;
	struct rct_msg m;

	if (s->state == RCT_SESSION_FAILED)
		return s->fail_status;
	if (s->ka.live)
		rct_live_set_committed(s->ka.live, s->last_committed);
	status = rct_session_tick(s);
	if (status != RCT_OK)
		return status;
	pstatus = s->ops->progress(s->ctx, rct_session_hb_ms(s, timeout_ms));
	/* Dispatch what the control lane holds even when a lane failed: a
	 * GOODBYE or an ERROR there says why the lane went down. */
	for (;;) {
		status = rct_session_recv_one(s, &m);
		if (status == RCT_ERR_AGAIN)
			break;
		if (status != RCT_OK)
			return pstatus != RCT_OK ? rct_session_fail(s, pstatus) : status;
		status = rct_session_dispatch(s, &m);
		if (status != RCT_OK)
			return status;
	}
	if (pstatus != RCT_OK)
		return rct_session_fail(s, pstatus);
	if (s->ka.live) {
		status = rct_session_live_check(s);
		if (status != RCT_OK)
			return status;
	}
	/* Silence is judged only after draining what arrived, so a stall of our
	 * own (a long flush, a descheduled thread) is not taken for the peer's. */
	else if (s->ka.armed && rct_now_ns() > s->ka.t_rx_last + rct_session_silence_ns(s)) {
		rct_error("session: nothing from the %s for %llu ms (heartbeat every %llu ms, "
			  "%d missed): peer lost",
			  s->role == RCT_ROLE_PRIMARY ? "secondary" : "primary",
			  (unsigned long long)((rct_now_ns() - s->ka.t_rx_last) / 1000000),
			  (unsigned long long)(s->ka.interval_ns / 1000000), RCT_HEARTBEAT_MISSES);
		return rct_session_fail(s, RCT_ERR_PEER_LOST);
	}
	status = rct_session_tick(s);
	if (status != RCT_OK)
		return status;
	if (s->role == RCT_ROLE_SECONDARY && s->sec.commit_seen)
		return rct_secondary_try_complete(s);
	return RCT_OK;
}

rct_status_t rct_session_wait_flag(struct rct_session *s, const bool *flag, uint64_t deadline_ns,
				   const char *what)
{
	rct_status_t status;

	while (!*flag) {
		if (rct_now_ns() >= deadline_ns) {
			rct_error("session: timed out after %d ms waiting for %s", s->timeout_ms,
				  what);
			return RCT_ERR_TIMED_OUT;
		}
		status = rct_session_poll(s, RCT_MIN(rct_ms_left(deadline_ns), 100));
		if (status != RCT_OK)
			return status;
	}
	return RCT_OK;
}

rct_status_t rct_session_progress(struct rct_session *s, int timeout_ms)
{
	if (!s)
		return RCT_ERR_INVALID_PARAM;
	if (s->state == RCT_SESSION_FAILED)
		return s->fail_status;
	if (s->state != RCT_SESSION_CONNECTED)
		return RCT_ERR_STATE;
	return rct_session_poll(s, timeout_ms);
}

const char *rct_session_fail_text(const struct rct_session *s)
{
	return s ? s->fail_text : "";
}
