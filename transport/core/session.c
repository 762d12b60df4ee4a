/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sessions: creation, regions, the connection handshake and the event loop.
 * The checkpoint engine itself lives in ckpt_primary.c and ckpt_secondary.c.
 *
 * Handshake (docs/protocol.md): after the backend connected the lanes, the
 * primary sends HELLO; the secondary checks it and answers HELLO followed by
 * one REGION per guest region and one for the device-state staging buffer,
 * each with its packed remote key.  The primary checks that both sides
 * registered the same region ids with the same sizes before it imports a key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "liveness.h"
#include "log.h"
#include "session.h"
#include "util.h"

#define RCT_DEFAULT_LANES	 4
#define RCT_DEFAULT_PAGE_SIZE	 4096
#define RCT_DEFAULT_MAX_PUT	 (1ull << 20)
#define RCT_DEFAULT_TIMEOUT_MS	 10000
#define RCT_DEFAULT_STAGING_SIZE (16ull << 20)

static rct_status_t rct_session_keepalive(void *arg);

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
	s->role = params->role;
	s->state = RCT_SESSION_NEW;
	s->ckpt = RCT_CKPT_IDLE;
	s->last_committed = RCT_NO_EPOCH;
	s->last_consistent = RCT_NO_EPOCH;
	s->flushed = true;
	s->hb_ns = (uint64_t)RCT_HEARTBEAT_DEFAULT_MS * 1000000;
	s->lanes = RCT_DEFAULT_LANES;
	s->page_size = RCT_DEFAULT_PAGE_SIZE;
	s->max_put = RCT_DEFAULT_MAX_PUT;
	s->timeout_ms = RCT_DEFAULT_TIMEOUT_MS;
	s->staging_size = RCT_DEFAULT_STAGING_SIZE;

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
		if (!rct_is_pow2(params->page_size) || params->page_size < 512) {
			rct_error("session: page size %u is not a power of two >= 512",
				  params->page_size);
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
		s->hb_ns = (uint64_t)params->heartbeat_ms * 1000000;
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
		s->liveness = params->liveness;
	}

	if (params->field_mask & RCT_SESSION_PARAM_FIELD_PSK) {
		if (!params->psk) {
			rct_error("session: the pre-shared key field is set but NULL");
			goto out_free;
		}
		status = rct_auth_init();
		if (status != RCT_OK)
			goto out_free;
		memcpy(s->psk, params->psk, RCT_PSK_LEN);
		memcpy(s->host_psk, params->psk, RCT_PSK_LEN);
		s->has_psk = s->has_host_psk = true;
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
	be_params.timeout_ms = s->timeout_ms;
	/* In-band beats share the control lane with the transport's retransmission;
	 * the liveness thread's do not. */
	be_params.loss_ns = s->liveness & RCT_LIVENESS_THREAD ? 0 : s->hb_ns * RCT_HEARTBEAT_MISSES;
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

static void rct_region_free(struct rct_session *s, struct rct_region *r)
{
	if (r->rkey)
		s->ops->rkey_destroy(s->ctx, r->rkey);
	if (r->mem)
		s->ops->mem_unmap(s->ctx, r->mem);
	free(r->bitmap);
	free(r->local_dirty);
	free(r);
}

void rct_session_destroy(struct rct_session *s)
{
	if (!s)
		return;
	rct_live_destroy(s->live);
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
		free(s->lane_runs[i]);
	rct_mem_free(s->devstate_buf, s->devstate_cap);
	s->ops->ctx_destroy(s->ctx);
	explicit_bzero(s->psk, sizeof(s->psk));
	explicit_bzero(s->host_psk, sizeof(s->host_psk));
	free(s);
}

const char *rct_session_backend(const struct rct_session *s)
{
	return s->ops->name;
}

unsigned rct_session_lanes(const struct rct_session *s)
{
	return s->state == RCT_SESSION_CONNECTED ? s->lanes : 0;
}

uint64_t rct_session_last_committed(const struct rct_session *s)
{
	return s->last_committed;
}

void rct_session_sync_progress(const struct rct_session *s, struct rct_sync_progress *p)
{
	uint64_t t0, t1;

	memset(p, 0, sizeof(*p));
	if (!s)
		return;
	p->active = atomic_load_explicit(&s->sync_active, memory_order_relaxed);
	p->pages_total = atomic_load_explicit(&s->sync_total, memory_order_relaxed);
	p->pages_done = atomic_load_explicit(&s->sync_done, memory_order_relaxed);
	t0 = atomic_load_explicit(&s->sync_t0, memory_order_relaxed);
	t1 = p->active ? rct_now_ns() : atomic_load_explicit(&s->sync_t1, memory_order_relaxed);
	p->elapsed_ns = t0 && t1 > t0 ? t1 - t0 : 0;
}

struct rct_region *rct_session_region(struct rct_session *s, uint32_t id)
{
	for (unsigned i = 0; i < s->nregions; i++)
		if (s->regions[i]->id == id)
			return s->regions[i];
	return NULL;
}

uint64_t rct_region_pages(const struct rct_region *r)
{
	return r->npages;
}

rct_status_t rct_region_register(struct rct_session *s, uint32_t id, void *addr, size_t size,
				 struct rct_region **region_p)
{
	struct rct_region **regions, *r;
	rct_status_t status;

	if (!s || !addr || !region_p)
		return RCT_ERR_INVALID_PARAM;
	if (s->state != RCT_SESSION_NEW && s->state != RCT_SESSION_LISTENING) {
		rct_error("region %u: regions are registered before connect/accept", id);
		return RCT_ERR_STATE;
	}
	if (!size || size % s->page_size || (uintptr_t)addr % s->page_size) {
		rct_error(
			"region %u: address %p and size %zu must be multiples of the page size %u",
			id, addr, size, s->page_size);
		return RCT_ERR_INVALID_PARAM;
	}
	if (rct_session_region(s, id)) {
		rct_error("region %u: id already registered", id);
		return RCT_ERR_EXISTS;
	}
	if (s->nregions >= RCT_MAX_REGIONS) {
		rct_error("region %u: at most %d regions per session", id, RCT_MAX_REGIONS);
		return RCT_ERR_NO_SPACE;
	}

	r = calloc(1, sizeof(*r));
	if (!r)
		return RCT_ERR_NO_MEMORY;
	r->session = s;
	r->id = id;
	r->ram = addr;
	r->size = size;
	r->npages = size >> s->page_shift;
	r->nwords = rct_bitmap_words(r->npages);
	status = RCT_ERR_NO_MEMORY;
	r->bitmap = calloc(r->nwords, sizeof(uint64_t));
	if (!r->bitmap)
		goto out_free;
	if (s->role == RCT_ROLE_SECONDARY) {
		r->local_dirty = calloc(r->nwords, sizeof(uint64_t));
		if (!r->local_dirty)
			goto out_free;
		/* The colo cache: allocated and pre-faulted by the backend, so that
		 * no first-touch fault lands on the checkpoint's critical path. */
		status = s->ops->mem_map(s->ctx, NULL, size, RCT_MEM_REMOTE_WRITE, &r->mem);
	} else {
		status = s->ops->mem_map(s->ctx, addr, size, RCT_MEM_LOCAL, &r->mem);
	}
	if (status != RCT_OK) {
		rct_error("region %u: mapping %zu bytes with backend %s failed: %s", id, size,
			  s->ops->name, rct_status_str(status));
		/* A local resource failed (fatal range): the session with it. */
		if (rct_status_is_fatal(status))
			status = rct_session_fail(s, status);
		goto out_free;
	}

	regions = realloc(s->regions, (s->nregions + 1) * sizeof(*regions));
	if (!regions) {
		status = RCT_ERR_NO_MEMORY;
		goto out_free;
	}
	s->regions = regions;
	s->regions[s->nregions++] = r;
	*region_p = r;
	return RCT_OK;

out_free:
	rct_region_free(s, r);
	return status;
}

/* ------------------------------------------------------------ events, errors */

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
	*event_p = s->events[s->ev_head];
	s->ev_head = (s->ev_head + 1) % RCT_EVENT_RING;
	s->ev_count--;
	return RCT_OK;
}

int rct_session_peer_closed(const struct rct_session *s)
{
	return s && s->state == RCT_SESSION_FAILED && s->goodbye;
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
	else
		rct_error("session: failed: %s (last committed epoch %lld, consistent %lld)",
			  rct_status_str(status),
			  s->last_committed == RCT_NO_EPOCH ? -1ll : (long long)s->last_committed,
			  s->last_consistent == RCT_NO_EPOCH ? -1ll
							     : (long long)s->last_consistent);
	s->state = RCT_SESSION_FAILED;
	s->fail_status = status;
	/* A failed session is not alive for its peer either. */
	rct_live_stop(s->live);
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
	s->t_tx_last = rct_now_ns();
	return RCT_OK;
}

rct_status_t rct_session_arm(struct rct_session *s)
{
	uint64_t now = rct_now_ns();
	rct_status_t status;

	/* The first heartbeat goes out at once: the peer may have finished its
	 * side of the handshake long ago. */
	s->t_rx_last = now;
	s->t_tx_last = now - s->hb_ns;
	s->hb_peer_seen = false;
	s->hb_armed = true;
	s->t_driven = now;
	if (!s->live)
		return RCT_OK;
	rct_live_set_committed(s->live, s->last_committed);
	status = rct_live_start(s->live);
	return status == RCT_OK ? RCT_OK : rct_session_fail(s, status);
}

/* The liveness channel's verdict, acted on by the session thread. */
static rct_status_t rct_session_live_check(struct rct_session *s)
{
	uint64_t silence;

	if (!rct_live_lost(s->live, &silence))
		return RCT_OK;
	rct_error("session: nothing from the %s for %llu ms on the liveness channel (heartbeat "
		  "every %llu ms, %d missed): peer lost",
		  s->role == RCT_ROLE_PRIMARY ? "secondary" : "primary",
		  (unsigned long long)(silence / 1000000), (unsigned long long)(s->hb_ns / 1000000),
		  RCT_HEARTBEAT_MISSES);
	return rct_session_fail(s, RCT_ERR_PEER_LOST);
}

rct_status_t rct_session_liveness(const struct rct_session *s, struct rct_liveness_stats *stats_p)
{
	if (!s || !stats_p)
		return RCT_ERR_INVALID_PARAM;
	if (!s->live || !s->hb_armed)
		return RCT_ERR_STATE;
	rct_live_stats(s->live, stats_p);
	return RCT_OK;
}

/* Silence after which the peer is lost: 3 intervals once it has spoken after
 * the handshake; until then the handshake's own deadline (the peer may still
 * be importing keys or mapping memory). */
static uint64_t rct_session_silence_ns(const struct rct_session *s)
{
	return s->hb_peer_seen ? RCT_HEARTBEAT_MISSES * s->hb_ns
			       : RCT_MAX(RCT_HEARTBEAT_MISSES * s->hb_ns,
					 (uint64_t)s->timeout_ms * 1000000);
}

/* Queue a heartbeat when one is due.  *sent_p: whether one was. */
static rct_status_t rct_session_heartbeat(struct rct_session *s, bool *sent_p)
{
	struct rct_msg m = {.type = RCT_MSG_HEARTBEAT};

	*sent_p = false;
	if (s->live || !s->hb_armed || s->state != RCT_SESSION_CONNECTED ||
	    rct_now_ns() < s->t_tx_last + s->hb_ns)
		return RCT_OK;
	m.heartbeat.seq = ++s->hb_seq;
	m.heartbeat.last_committed = s->last_committed;
	*sent_p = true;
	return rct_session_send(s, &m);
}

rct_status_t rct_session_tick(struct rct_session *s)
{
	rct_status_t status;
	bool sent;

	if (s->live && s->hb_armed) {
		uint64_t now = rct_now_ns();

		/* Not driven for longer than in-band heartbeats would survive:
		 * recorded, so that the caller can report its own stall. */
		if (now - s->t_driven > RCT_HEARTBEAT_MISSES * s->hb_ns)
			rct_live_note_gap(s->live, now - s->t_driven);
		s->t_driven = now;
	}
	status = rct_session_heartbeat(s, &sent);
	if (status != RCT_OK || !sent)
		return status;
	status = s->ops->progress(s->ctx, 0);
	return status == RCT_OK ? RCT_OK : rct_session_fail(s, status);
}

/* The backend's long waits (rct_be_params.keepalive): queue only, we are
 * inside a call of it; the session fails when that call returns the status. */
static rct_status_t rct_session_keepalive(void *arg)
{
	struct rct_session *s = arg;
	bool sent;

	if (s->live && s->hb_armed && rct_live_lost(s->live, NULL))
		return RCT_ERR_PEER_LOST;
	return rct_session_heartbeat(s, &sent);
}

/* Milliseconds (rounded up) until the keepalive needs attention: the next
 * heartbeat to send or the loss deadline, whichever comes first. */
static int rct_session_hb_ms(const struct rct_session *s, int timeout_ms)
{
	uint64_t now = rct_now_ns(), due, ms;

	if (!s->hb_armed)
		return timeout_ms;
	/* The liveness thread keeps time; look at its verdict once an interval. */
	if (s->live)
		return timeout_ms < 0 || (uint64_t)timeout_ms * 1000000 > s->hb_ns
			       ? (int)(s->hb_ns / 1000000)
			       : timeout_ms;
	due = RCT_MIN(s->t_tx_last + s->hb_ns, s->t_rx_last + rct_session_silence_ns(s) + 1000000);
	ms = due > now ? (due - now + 999999) / 1000000 : 0;
	return timeout_ms < 0 || (uint64_t)timeout_ms > ms ? (int)ms : timeout_ms;
}

rct_status_t rct_session_proto_error(struct rct_session *s, rct_status_t code, const char *text)
{
	struct rct_msg m = {.type = RCT_MSG_ERROR};
	size_t len = strlen(text);

	if (s->state == RCT_SESSION_ADMITTING)
		rct_warn("session: a connecting primary: %s", text);
	else
		rct_error("session: %s", text);
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
static rct_status_t rct_session_dispatch(struct rct_session *s, const struct rct_msg *m)
{
	char text[RCT_ERROR_TEXT_MAX + 1];

	switch (m->type) {
	case RCT_MSG_HEARTBEAT:
		return RCT_OK;
	case RCT_MSG_ERROR:
		memcpy(text, m->error.text, m->error.text_len);
		text[m->error.text_len] = '\0';
		rct_log(s->state == RCT_SESSION_ADMITTING ? RCT_LOG_WARN : RCT_LOG_ERROR,
			"session: peer reported an error (%s): %s",
			rct_status_str((rct_status_t)m->error.code), text);
		/* A disagreement is reported as such on both sides. */
		if (m->error.code == RCT_ERR_AUTH || m->error.code == RCT_ERR_MISMATCH ||
		    m->error.code == RCT_ERR_VERSION)
			return rct_session_fail(s, (rct_status_t)m->error.code);
		return rct_session_fail(s, RCT_ERR_PEER_LOST);
	case RCT_MSG_GOODBYE:
		rct_debug("session: peer said goodbye (reason %u)", m->goodbye.reason);
		s->goodbye = true;
		return rct_session_fail(s, RCT_ERR_PEER_LOST);
	}
	if (s->role == RCT_ROLE_PRIMARY)
		return rct_primary_dispatch(s, m);
	return rct_secondary_dispatch(s, m);
}

/* Receive and decode one control message, if one is there. */
static rct_status_t rct_session_recv_one(struct rct_session *s, struct rct_msg *msg_p)
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
	s->t_rx_last = rct_now_ns();
	s->hb_peer_seen = s->hb_armed;
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
	if (s->live)
		rct_live_set_committed(s->live, s->last_committed);
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
	if (s->live) {
		status = rct_session_live_check(s);
		if (status != RCT_OK)
			return status;
	}
	/* Silence is judged only after draining what arrived, so a stall of our
	 * own (a long flush, a descheduled thread) is not taken for the peer's. */
	else if (s->hb_armed && rct_now_ns() > s->t_rx_last + rct_session_silence_ns(s)) {
		rct_error("session: nothing from the %s for %llu ms (heartbeat every %llu ms, "
			  "%d missed): peer lost",
			  s->role == RCT_ROLE_PRIMARY ? "secondary" : "primary",
			  (unsigned long long)((rct_now_ns() - s->t_rx_last) / 1000000),
			  (unsigned long long)(s->hb_ns / 1000000), RCT_HEARTBEAT_MISSES);
		return rct_session_fail(s, RCT_ERR_PEER_LOST);
	}
	status = rct_session_tick(s);
	if (status != RCT_OK)
		return status;
	if (s->role == RCT_ROLE_SECONDARY && s->commit_seen)
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

/* ------------------------------------------------------------ handshake */

rct_status_t rct_session_wait_msg(struct rct_session *s, uint64_t deadline_ns, unsigned type,
				  struct rct_msg *msg_p)
{
	rct_status_t status;
	char text[128];

	for (;;) {
		status = rct_session_recv_one(s, msg_p);
		if (status == RCT_OK)
			break;
		if (status != RCT_ERR_AGAIN)
			return status;
		if (rct_now_ns() >= deadline_ns) {
			rct_error("session: timed out waiting for %s from the peer",
				  rct_msg_type_str(type));
			return rct_session_fail(s, RCT_ERR_TIMED_OUT);
		}
		status = s->ops->progress(s->ctx, RCT_MIN(rct_ms_left(deadline_ns), 100));
		if (status != RCT_OK)
			return rct_session_fail(s, status);
	}
	if (msg_p->type == RCT_MSG_ERROR || msg_p->type == RCT_MSG_GOODBYE)
		return rct_session_dispatch(s, msg_p);
	if (msg_p->type != type) {
		snprintf(text, sizeof(text), "handshake: expected %s, got %s",
			 rct_msg_type_str(type), rct_msg_type_str(msg_p->type));
		return rct_session_proto_error(s, RCT_ERR_PROTO, text);
	}
	return RCT_OK;
}

static rct_status_t rct_session_staging_map(struct rct_session *s, size_t size, unsigned access)
{
	rct_status_t status;

	/* Round up to the page size so that allocation backends are happy. */
	size = (size + s->page_size - 1) & ~((size_t)s->page_size - 1);
	status = s->ops->mem_map(s->ctx, NULL, size, access, &s->staging);
	if (status != RCT_OK)
		rct_error("session: device-state staging of %zu bytes: %s", size,
			  rct_status_str(status));
	return status;
}

static rct_status_t rct_session_send_region(struct rct_session *s, uint32_t id, uint16_t kind,
					    struct rct_be_mem *mem, uint64_t size)
{
	uint8_t key[RCT_KEY_MAX];
	struct rct_msg m = {.type = RCT_MSG_REGION};
	rct_status_t status;
	size_t key_len;

	status = s->ops->mem_pack(s->ctx, mem, key, sizeof(key), &key_len);
	if (status != RCT_OK) {
		rct_error("region %u: packing its remote key failed: %s", id,
			  rct_status_str(status));
		return rct_session_fail(s, status);
	}
	m.region.id = id;
	m.region.kind = kind;
	m.region.size = size;
	m.region.key_len = (uint16_t)key_len;
	m.region.key = key;
	return rct_session_send(s, &m);
}

/* Both sides must run the liveness channel, or neither: heartbeats judged on
 * one channel and sent on the other would read as silence. */
static rct_status_t rct_session_live_agree(struct rct_session *s, const struct rct_msg *hello)
{
	bool mine = s->liveness & RCT_LIVENESS_THREAD;

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
		.interval_ns = s->hb_ns,
		.misses = RCT_HEARTBEAT_MISSES,
		.first_allow_ns = (uint64_t)s->timeout_ms * 1000000,
		.rt = s->liveness & RCT_LIVENESS_RT,
	};

	return rct_live_open(&lp, bind_addr, &s->live);
}

/* Key the liveness channel to this session (after AUTH) and give it its token. */
static void rct_session_live_bind(struct rct_session *s, uint64_t token)
{
	uint8_t tx[RCT_LIVE_KEY_LEN], rx[RCT_LIVE_KEY_LEN];

	if (s->has_psk)
		rct_auth_live_keys(s, tx, rx);
	rct_live_bind(s->live, token, s->has_psk ? tx : NULL, s->has_psk ? rx : NULL);
	explicit_bzero(tx, sizeof(tx));
	explicit_bzero(rx, sizeof(rx));
}

/* Secondary: open its liveness socket and tell the primary where it is. */
static rct_status_t rct_session_live_offer(struct rct_session *s)
{
	struct rct_msg m = {.type = RCT_MSG_LIVENESS};
	rct_status_t status;

	status = rct_session_live_open(s, s->listen_addr);
	if (status != RCT_OK)
		return rct_session_proto_error(s, status, "cannot open the liveness channel");
	m.liveness.port = rct_live_port(s->live);
	m.liveness.token = rct_random64();
	rct_session_live_bind(s, m.liveness.token);
	return rct_session_send(s, &m);
}

/* Primary: the secondary's LIVENESS message. */
static rct_status_t rct_session_live_join(struct rct_session *s, const char *addr,
					  uint64_t deadline)
{
	struct rct_msg m;
	rct_status_t status;

	status = rct_session_wait_msg(s, deadline, RCT_MSG_LIVENESS, &m);
	if (status != RCT_OK)
		return status;
	status = rct_session_live_open(s, NULL);
	if (status == RCT_OK)
		status = rct_live_set_peer(s->live, addr, m.liveness.port);
	if (status != RCT_OK)
		return rct_session_proto_error(s, status, "cannot open the liveness channel");
	rct_session_live_bind(s, m.liveness.token);
	return RCT_OK;
}

static void rct_session_hello(const struct rct_session *s, struct rct_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = RCT_MSG_HELLO;
	m->hello.role = (uint16_t)s->role;
	m->hello.lanes = (uint16_t)s->lanes;
	m->hello.page_size = s->page_size;
	m->hello.nregions = s->nregions;
	m->hello.max_put = s->max_put;
	m->hello.flags = (s->has_psk ? RCT_HELLO_AUTH : 0) |
			 (s->liveness & RCT_LIVENESS_THREAD ? RCT_HELLO_LIVENESS : 0);
	m->hello.generation = s->generation;
}

rct_status_t rct_session_set_pairing(struct rct_session *s, const char *id, const uint8_t *key,
				     uint64_t generation)
{
	size_t n;

	if (!s || !id)
		return RCT_ERR_INVALID_PARAM;
	if (s->state != RCT_SESSION_NEW) {
		rct_error("session: the pairing is set before listen or connect");
		return RCT_ERR_STATE;
	}
	n = strlen(id);
	if (!n || n >= RCT_PAIRING_ID_MAX ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		       "0123456789-_.:") != n) {
		rct_error("session: pairing identity '%.64s': 1..%d of letters, digits, - _ . :",
			  id, RCT_PAIRING_ID_MAX - 1);
		return RCT_ERR_INVALID_PARAM;
	}
	if (!key && !s->has_host_psk) {
		rct_error("pairing %s: neither a pre-shared key nor a pairing key to prove it with",
			  id);
		return RCT_ERR_INVALID_PARAM;
	}
	if (rct_auth_init() != RCT_OK)
		return RCT_ERR_SYSTEM;
	rct_auth_pairing_key(s, id, key, s->psk);
	s->has_psk = true;
	s->generation = generation;
	snprintf(s->pairing_id, sizeof(s->pairing_id), "%s", id);
	return RCT_OK;
}

rct_status_t rct_session_listen(struct rct_session *s, const char *addr, uint16_t port,
				uint16_t *port_p)
{
	rct_status_t status;

	if (!s || !addr)
		return RCT_ERR_INVALID_PARAM;
	if (s->role != RCT_ROLE_SECONDARY || s->state != RCT_SESSION_NEW)
		return RCT_ERR_STATE;
	if (strlen(addr) >= sizeof(s->listen_addr)) {
		rct_error("session: listen address '%.64s...' longer than %zu bytes", addr,
			  sizeof(s->listen_addr) - 1);
		return RCT_ERR_INVALID_PARAM;
	}
	status = s->ops->listen(s->ctx, addr, port, port_p);
	if (status == RCT_OK) {
		snprintf(s->listen_addr, sizeof(s->listen_addr), "%s", addr);
		s->state = RCT_SESSION_LISTENING;
	}
	return status;
}

/*
 * Secondary: the HELLO and AUTH of the primary whose control lane is in
 * (state ADMITTING).  Nothing of the session's memory is reachable by it yet:
 * its data lanes are not taken and no remote key has gone out.
 */
static rct_status_t rct_session_admit(struct rct_session *s, unsigned lanes, uint64_t deadline)
{
	struct rct_msg m;
	rct_status_t status;
	char text[160];

	status = rct_session_wait_msg(s, deadline, RCT_MSG_HELLO, &m);
	if (status != RCT_OK)
		return status;
	if (m.hello.role != RCT_ROLE_PRIMARY || m.hello.lanes != lanes) {
		snprintf(text, sizeof(text), "HELLO: expected a primary with %u lanes", lanes);
		return rct_session_proto_error(s, RCT_ERR_PROTO, text);
	}
	if (m.hello.page_size != s->page_size || m.hello.nregions != s->nregions) {
		snprintf(text, sizeof(text),
			 "HELLO: primary has page size %u and %u regions, secondary %u and %u",
			 m.hello.page_size, m.hello.nregions, s->page_size, s->nregions);
		return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
	}
	if (m.hello.generation < s->generation) {
		snprintf(text, sizeof(text),
			 "HELLO: the primary's generation %llu is older than this pairing's %llu "
			 "(a stale primary)",
			 (unsigned long long)m.hello.generation, (unsigned long long)s->generation);
		return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
	}
	/* Authentication before anything about our memory is said. */
	if (s->has_psk != !!(m.hello.flags & RCT_HELLO_AUTH))
		return rct_session_proto_error(
			s, RCT_ERR_AUTH,
			s->has_psk ? "the primary holds no pre-shared key; this secondary "
				     "requires one, so no remote key was advertised"
				   : "the primary requires a pre-shared key; this secondary holds "
				     "none");
	if (s->has_psk) {
		status = rct_auth_bind_hello(s, &m);
		if (status == RCT_OK)
			status = rct_auth_secondary(s, deadline);
		if (status != RCT_OK)
			return status;
	}
	status = rct_session_live_agree(s, &m);
	if (status == RCT_OK)
		s->generation = m.hello.generation; /* proved, or no key to prove it */
	return status;
}

rct_status_t rct_session_accept(struct rct_session *s)
{
	uint64_t deadline = rct_now_ns() + (uint64_t)s->timeout_ms * 1000000;
	rct_status_t status, why = RCT_OK;
	unsigned lanes, away = 0;
	struct rct_msg m;

	if (!s)
		return RCT_ERR_INVALID_PARAM;
	if (s->role != RCT_ROLE_SECONDARY || s->state != RCT_SESSION_LISTENING)
		return RCT_ERR_STATE;
	/* A primary that fails HELLO or AUTH is turned away and the next one is
	 * heard: whoever can reach the port must not end this VM's pairing. */
	for (;;) {
		status = s->ops->accept(s->ctx, rct_ms_left(deadline), &lanes);
		if (status != RCT_OK) {
			if (away)
				rct_error(
					"session: no primary proved itself within %d ms (%u turned "
					"away, the last: %s)",
					s->timeout_ms, away, rct_status_str(why));
			return status;
		}
		s->lanes = lanes;
		s->state = RCT_SESSION_ADMITTING;
		status = rct_session_admit(s, lanes,
					   RCT_MIN(deadline, rct_now_ns() + RCT_ADMIT_NS));
		if (status == RCT_OK)
			break;
		why = status;
		away++;
		s->turned_away++;
		rct_warn("session: turned a connecting primary away (%s); listening on",
			 rct_status_str(status));
		s->ops->reject(s->ctx);
		s->state = RCT_SESSION_LISTENING;
	}
	s->state = RCT_SESSION_CONNECTED;

	status = rct_session_staging_map(s, s->staging_size, RCT_MEM_REMOTE_WRITE);
	if (status != RCT_OK)
		return rct_session_proto_error(s, status, "cannot map device-state staging");
	/* Where a committed device state is kept; pre-faulted, since first-touch
	 * faults would otherwise sit between the last byte and the ACK. */
	s->devstate_buf = rct_mem_alloc(s->staging->len);
	if (!s->devstate_buf)
		return rct_session_proto_error(s, RCT_ERR_NO_MEMORY,
					       "no memory for the committed device state");
	s->devstate_cap = s->staging->len;

	rct_session_hello(s, &m);
	status = rct_session_send(s, &m);
	if (status == RCT_OK && (s->liveness & RCT_LIVENESS_THREAD))
		status = rct_session_live_offer(s);
	/* The proved primary's data lanes, and only now. */
	if (status == RCT_OK) {
		status = s->ops->open_lanes(s->ctx, rct_ms_left(deadline));
		if (status != RCT_OK)
			return rct_session_fail(s, status);
	}
	for (unsigned i = 0; status == RCT_OK && i < s->nregions; i++)
		status = rct_session_send_region(s, s->regions[i]->id, RCT_REGION_GUEST,
						 s->regions[i]->mem, s->regions[i]->size);
	if (status == RCT_OK)
		status = rct_session_send_region(s, 0, RCT_REGION_STAGING, s->staging,
						 s->staging_size);
	if (status == RCT_OK)
		status = rct_session_arm(s);
	if (status != RCT_OK)
		return status;
	rct_info("session: accepted a primary with %u data lanes over %s (generation %llu)", lanes,
		 s->ops->name, (unsigned long long)s->generation);
	return RCT_OK;
}

/* Primary: import the remote key in REGION message @m. */
static rct_status_t rct_session_import(struct rct_session *s, const struct rct_msg *m)
{
	struct rct_be_rkey **slot;
	struct rct_region *r;
	rct_status_t status;
	char text[160];

	if (m->region.kind == RCT_REGION_STAGING) {
		if (!m->region.size || m->region.size > RCT_STAGING_MAX) {
			snprintf(text, sizeof(text),
				 "staging region of %llu bytes (1..%llu allowed)",
				 (unsigned long long)m->region.size,
				 (unsigned long long)RCT_STAGING_MAX);
			return rct_session_proto_error(s, RCT_ERR_PROTO, text);
		}
		slot = &s->staging_rkey;
		s->remote_staging_size = m->region.size;
	} else {
		r = rct_session_region(s, m->region.id);
		if (!r || r->size != m->region.size) {
			snprintf(text, sizeof(text),
				 "region %u: secondary has %llu bytes, primary %s", m->region.id,
				 (unsigned long long)m->region.size,
				 r ? "a different size" : "no such region");
			return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
		}
		slot = &r->rkey;
	}
	if (*slot) {
		snprintf(text, sizeof(text), "region %u advertised twice", m->region.id);
		return rct_session_proto_error(s, RCT_ERR_PROTO, text);
	}
	status = s->ops->rkey_unpack(s->ctx, m->region.key, m->region.key_len, slot);
	if (status != RCT_OK) {
		snprintf(text, sizeof(text), "region %u: cannot import its remote key: %s",
			 m->region.id, rct_status_str(status));
		return rct_session_proto_error(s, status, text);
	}
	return RCT_OK;
}

rct_status_t rct_session_connect(struct rct_session *s, const char *addr, uint16_t port)
{
	uint64_t deadline = rct_now_ns() + (uint64_t)s->timeout_ms * 1000000;
	struct rct_msg m;
	rct_status_t status;
	char text[160];

	if (!s || !addr)
		return RCT_ERR_INVALID_PARAM;
	if (s->role != RCT_ROLE_PRIMARY || s->state != RCT_SESSION_NEW)
		return RCT_ERR_STATE;

	status = s->ops->connect(s->ctx, addr, port, s->lanes, s->timeout_ms);
	if (status != RCT_OK)
		return status;
	s->state = RCT_SESSION_CONNECTED;

	rct_session_hello(s, &m);
	status = rct_session_send(s, &m);
	if (status == RCT_OK && s->has_psk) {
		status = rct_auth_bind_hello(s, &m);
		if (status == RCT_OK)
			status = rct_auth_primary(s, deadline);
	}
	if (status != RCT_OK)
		return status;
	status = rct_session_wait_msg(s, deadline, RCT_MSG_HELLO, &m);
	if (status != RCT_OK)
		return status;
	if (!s->has_psk && (m.hello.flags & RCT_HELLO_AUTH))
		return rct_session_proto_error(s, RCT_ERR_AUTH,
					       "the secondary requires a pre-shared key; this "
					       "primary holds none");
	if (m.hello.role != RCT_ROLE_SECONDARY || m.hello.nregions != s->nregions ||
	    m.hello.page_size != s->page_size) {
		snprintf(text, sizeof(text),
			 "HELLO: peer is not a secondary with page size %u and %u regions",
			 s->page_size, s->nregions);
		return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
	}
	status = rct_session_live_agree(s, &m);
	if (status == RCT_OK && (s->liveness & RCT_LIVENESS_THREAD))
		status = rct_session_live_join(s, addr, deadline);
	if (status != RCT_OK)
		return status;
	/* The secondary proved itself (or neither side holds a key): data lanes. */
	status = s->ops->open_lanes(s->ctx, rct_ms_left(deadline));
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	/* One REGION per guest region plus the staging buffer. */
	for (unsigned i = 0; i <= s->nregions; i++) {
		status = rct_session_wait_msg(s, deadline, RCT_MSG_REGION, &m);
		if (status == RCT_OK)
			status = rct_session_import(s, &m);
		if (status != RCT_OK)
			return status;
	}
	for (unsigned i = 0; i < s->nregions; i++)
		if (!s->regions[i]->rkey)
			return rct_session_proto_error(s, RCT_ERR_MISMATCH,
						       "a region was not advertised by the peer");
	if (!s->staging_rkey)
		return rct_session_proto_error(s, RCT_ERR_PROTO, "no staging region advertised");

	/* The largest blob we can send: our own limit or the peer's, the smaller. */
	status = rct_session_staging_map(s, RCT_MIN(s->staging_size, s->remote_staging_size),
					 RCT_MEM_LOCAL);
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	for (unsigned i = 0; i < s->lanes; i++) {
		s->lane_runs[i] = malloc(RCT_LANE_BATCH * sizeof(struct rct_run));
		if (!s->lane_runs[i])
			return rct_session_fail(s, RCT_ERR_NO_MEMORY);
	}
	status = rct_session_arm(s);
	if (status != RCT_OK)
		return status;
	rct_info("session: connected to %s:%u with %u data lanes over %s", addr, port, s->lanes,
		 s->ops->name);
	return RCT_OK;
}
