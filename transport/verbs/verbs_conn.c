/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verbs backend: connections over rdma_cm.  The primary resolves, connects
 * and waits for each of its N + 1 QPs in turn (lane 0 is the control QP); the
 * secondary accepts connect requests until every lane of one primary (same
 * cookie) is established.  Every wait is bounded by the caller's deadline.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "verbs.h"

#define RCT_VERBS_RESOLVE_MS 2000

/* Next rdma_cm event before @deadline_ns (the channel is non-blocking). */
static rct_status_t rct_verbs_cm_next(struct rct_verbs_ctx *v, uint64_t deadline_ns,
				      struct rdma_cm_event **ev_p)
{
	struct pollfd pfd = {.fd = v->ec->fd, .events = POLLIN};

	for (;;) {
		if (!rdma_get_cm_event(v->ec, ev_p))
			return RCT_OK;
		if (errno != EAGAIN && errno != EINTR) {
			rct_error("verbs: rdma_get_cm_event: %m");
			return RCT_ERR_SYSTEM;
		}
		if (rct_now_ns() >= deadline_ns)
			return RCT_ERR_TIMED_OUT;
		poll(&pfd, 1, rct_ms_left(deadline_ns));
	}
}

/* Turn a primary's control lane away because one is connected: it says so. */
static void rct_verbs_refuse_busy(struct rdma_cm_id *id)
{
	struct rct_verbs_wire_reject r = {
		.magic = htole32(RCT_VERBS_MAGIC),
		.version = htole16(RCT_VERBS_VERSION),
		.reason = htole16(RCT_VERBS_REJECT_BUSY),
	};

	rct_warn("verbs: rejecting a connection for lane 0: a primary is connected");
	rdma_reject(id, &r, sizeof(r));
}

/* A REJECTED event whose private data says the secondary has a primary. */
static bool rct_verbs_reject_busy(const struct rdma_cm_event *ev)
{
	struct rct_verbs_wire_reject r;

	if (!ev->param.conn.private_data || ev->param.conn.private_data_len < sizeof(r))
		return false;
	memcpy(&r, ev->param.conn.private_data, sizeof(r));
	return le32toh(r.magic) == RCT_VERBS_MAGIC && le16toh(r.version) == RCT_VERBS_VERSION &&
	       le16toh(r.reason) == RCT_VERBS_REJECT_BUSY;
}

/* Wait for event @want on @id; any other event on it is a failure. */
static rct_status_t rct_verbs_cm_wait(struct rct_verbs_ctx *v, struct rdma_cm_id *id,
				      enum rdma_cm_event_type want, uint64_t deadline_ns,
				      struct rct_verbs_wire_conn *priv_p)
{
	struct rdma_cm_event *ev;
	rct_status_t status;

	for (;;) {
		status = rct_verbs_cm_next(v, deadline_ns, &ev);
		if (status != RCT_OK) {
			rct_error("verbs: waiting for %s: %s", rdma_event_str(want),
				  rct_status_str(status));
			return status;
		}
		if (ev->id != id) { /* not ours (a late event of an old id): drop */
			rct_debug("verbs: ignoring %s on another id", rdma_event_str(ev->event));
			rdma_ack_cm_event(ev);
			continue;
		}
		if (ev->event == RDMA_CM_EVENT_REJECTED && rct_verbs_reject_busy(ev)) {
			rct_error("verbs: the secondary refused this primary: it has one");
			rdma_ack_cm_event(ev);
			return RCT_ERR_REFUSED;
		}
		if (ev->event != want) {
			rct_error("verbs: expected %s, got %s (status %d)", rdma_event_str(want),
				  rdma_event_str(ev->event), ev->status);
			status = ev->event == RDMA_CM_EVENT_REJECTED ||
						 ev->event == RDMA_CM_EVENT_UNREACHABLE
					 ? RCT_ERR_PEER_LOST
					 : RCT_ERR_IO;
			rdma_ack_cm_event(ev);
			return status;
		}
		if (priv_p) {
			memset(priv_p, 0, sizeof(*priv_p));
			if (ev->param.conn.private_data &&
			    ev->param.conn.private_data_len >= sizeof(*priv_p))
				memcpy(priv_p, ev->param.conn.private_data, sizeof(*priv_p));
		}
		rdma_ack_cm_event(ev);
		return RCT_OK;
	}
}

/* RC retransmission timing on @id's QP (verbs.h); a failure is logged, not fatal. */
static void rct_verbs_set_timeouts(struct rdma_cm_id *id, unsigned lane)
{
	uint8_t t = RCT_VERBS_ACK_TIMEOUT;

	if (rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &t, sizeof(t)))
		rct_warn("verbs: lane %u: setting the ACK timeout: %m (the device's default "
			 "applies)",
			 lane);
}

static void rct_verbs_conn_fill(struct rct_verbs_wire_conn *w, unsigned lane, unsigned nlanes,
				uint64_t cookie)
{
	memset(w, 0, sizeof(*w));
	w->magic = htole32(RCT_VERBS_MAGIC);
	w->version = htole16(RCT_VERBS_VERSION);
	w->lane = htole16((uint16_t)lane);
	w->nlanes = htole16((uint16_t)nlanes);
	w->ctrl_depth = htole16(RCT_VERBS_CTRL_DEPTH);
	w->cookie = htole64(cookie);
}

static rct_status_t rct_verbs_conn_check(const struct rct_verbs_wire_conn *w, const char **why_p)
{
	if (le32toh(w->magic) != RCT_VERBS_MAGIC) {
		*why_p = "private data is not an rct lane";
		return RCT_ERR_PROTO;
	}
	if (le16toh(w->version) != RCT_VERBS_VERSION) {
		*why_p = "unsupported lane version (this build speaks 1)";
		return RCT_ERR_VERSION;
	}
	if (w->reserved || !w->nlanes || le16toh(w->nlanes) > RCT_MAX_LANES ||
	    le16toh(w->lane) > le16toh(w->nlanes) || !w->ctrl_depth) {
		*why_p = "private data out of range";
		return RCT_ERR_PROTO;
	}
	return RCT_OK;
}

static rct_status_t rct_verbs_lanes_alloc(struct rct_verbs_ctx *v, unsigned nlanes)
{
	v->lanes = calloc(nlanes, sizeof(*v->lanes));
	if (!v->lanes)
		return RCT_ERR_NO_MEMORY;
	v->nlanes = nlanes;
	v->ctrl.index = 0;
	for (unsigned i = 0; i < nlanes; i++)
		v->lanes[i].index = i + 1;
	return RCT_OK;
}

rct_status_t rct_verbs_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			      uint16_t *port_p)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	struct sockaddr_storage ss;
	rct_status_t status;
	unsigned sl;

	status = rct_sockaddr_resolve("verbs", addr, port, true, &ss, &sl);
	if (status != RCT_OK)
		return status;
	if (rdma_create_id(v->ec, &v->listen_id, v, RDMA_PS_TCP)) {
		rct_error("verbs: rdma_create_id: %m");
		return rct_verbs_errno(errno);
	}
	if (rdma_bind_addr(v->listen_id, (struct sockaddr *)&ss) ||
	    rdma_listen(v->listen_id, 2 * RCT_MAX_LANES)) {
		rct_error("verbs: cannot listen on %s:%u: %m (is there an RDMA device with that "
			  "address? rdma link show)",
			  addr, port);
		return rct_verbs_errno(errno);
	}
	/* Bound to a device's address: register the regions now, not at accept. */
	if (v->listen_id->verbs) {
		status = rct_verbs_device_open(v, v->listen_id->verbs);
		if (status != RCT_OK)
			return status;
	}
	if (port_p)
		*port_p = ntohs(rdma_get_src_port(v->listen_id));
	return RCT_OK;
}

/*
 * A connect request (@id with the private data @w): make its QP and accept
 * it.  Lane 0 starts a primary: only while none is held (@open false and no
 * control lane).  A data lane is taken only once open_lanes() runs (@open),
 * and only the held primary's (same cookie).  Anything else is rejected with
 * a warning; RCT_OK unless our own resources failed.
 */
static rct_status_t rct_verbs_on_request(struct rct_verbs_ctx *v, struct rdma_cm_id *id,
					 const struct rct_verbs_wire_conn *w, bool open)
{
	struct rct_verbs_wire_conn mine;
	struct rdma_conn_param cp;
	struct rct_verbs_lane *l;
	unsigned lane = le16toh(w->lane);
	const char *why = NULL;
	rct_status_t status;

	if (!lane && (open || v->ctrl.id)) {
		rct_verbs_refuse_busy(id);
		return RCT_OK;
	}
	if (lane && !open)
		why = "a data lane before its primary was authenticated";
	else if (lane && (le64toh(w->cookie) != v->cookie || le16toh(w->nlanes) != v->nlanes))
		why = "lane of another primary";
	else if (lane && v->lanes[lane - 1].id)
		why = "duplicate lane";
	if (why) {
		rct_warn("verbs: rejecting a connection for lane %u: %s", lane, why);
		rdma_reject(id, NULL, 0);
		return RCT_OK;
	}
	if (!lane) {
		status = rct_verbs_lanes_alloc(v, le16toh(w->nlanes));
		if (status != RCT_OK) {
			rdma_reject(id, NULL, 0);
			return status;
		}
		v->cookie = le64toh(w->cookie);
	}
	l = lane ? &v->lanes[lane - 1] : &v->ctrl;
	status = rct_verbs_device_open(v, id->verbs);
	if (status == RCT_OK)
		status = rct_verbs_lane_create(v, l, id);
	if (status == RCT_OK && !lane) {
		v->peer_depth = le16toh(w->ctrl_depth);
		status = rct_verbs_ctrl_setup(v); /* receives posted before the accept */
	}
	if (status != RCT_OK) {
		rdma_reject(id, NULL, 0);
		return status;
	}
	rct_verbs_set_timeouts(id, lane);
	rct_verbs_conn_fill(&mine, lane, v->nlanes, v->cookie);
	memset(&cp, 0, sizeof(cp));
	cp.private_data = &mine;
	cp.private_data_len = sizeof(mine);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.rnr_retry_count = 7;
	if (rdma_accept(id, &cp)) {
		rct_error("verbs: lane %u: rdma_accept: %m", lane);
		return rct_verbs_errno(errno);
	}
	return RCT_OK;
}

/* A CONNECT_REQUEST event: its private data checked, then as above. */
static rct_status_t rct_verbs_request_event(struct rct_verbs_ctx *v, struct rdma_cm_event *ev,
					    bool open)
{
	struct rct_verbs_wire_conn w;
	const char *why = "private data too short";
	rct_status_t status = RCT_ERR_PROTO;

	if (ev->param.conn.private_data_len >= sizeof(w)) {
		memcpy(&w, ev->param.conn.private_data, sizeof(w));
		status = rct_verbs_conn_check(&w, &why);
	}
	if (status != RCT_OK) {
		rct_warn("verbs: rejecting a connection: %s", why);
		rdma_reject(ev->id, NULL, 0);
		return RCT_OK; /* keep waiting for the real lanes */
	}
	/* Another primary's control lane while one is being authenticated:
	 * it waits its turn (rct_verbs_reject() takes the next one). */
	if (!le16toh(w.lane) && !open && v->ctrl.id && v->nwaiting < RCT_VERBS_WAITING) {
		v->waiting[v->nwaiting] = ev->id;
		v->waiting_conn[v->nwaiting++] = w;
		return RCT_OK;
	}
	return rct_verbs_on_request(v, ev->id, &w, open);
}

static struct rct_verbs_lane *rct_verbs_lane_of(struct rct_verbs_ctx *v, struct rdma_cm_id *id)
{
	if (v->ctrl.id == id)
		return &v->ctrl;
	for (unsigned i = 0; i < v->nlanes; i++)
		if (v->lanes[i].id == id)
			return &v->lanes[i];
	return NULL;
}

/*
 * Secondary: handle connection events until @want lanes are established
 * (the control lane at accept, every data lane at open_lanes).  At accept a
 * primary's control lane must be asked for by @come_by (else RCT_ERR_AGAIN,
 * quietly); it, and data lanes, have until @deadline.
 */
static rct_status_t rct_verbs_establish(struct rct_verbs_ctx *v, bool open, unsigned want,
					uint64_t come_by, uint64_t deadline, int timeout_ms)
{
	struct rdma_cm_event *ev;
	struct rct_verbs_lane *l;
	unsigned have = 0;
	rct_status_t status;

	while (have < want) {
		status = rct_verbs_cm_next(v, open || v->ctrl.id ? deadline : come_by, &ev);
		if (status == RCT_ERR_TIMED_OUT && !open && !v->ctrl.id)
			return RCT_ERR_AGAIN; /* nobody came */
		if (status != RCT_OK) {
			if (open)
				rct_error(
					"verbs: %u of the primary's %u data lanes up within %d ms",
					have, want, timeout_ms);
			else
				rct_error("verbs: a primary's control lane not up within %d ms",
					  timeout_ms);
			return status;
		}
		switch (ev->event) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			status = rct_verbs_request_event(v, ev, open);
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			l = rct_verbs_lane_of(v, ev->id);
			if (l && !l->established && (open ? l->index != 0 : l->index == 0)) {
				l->established = true;
				have++;
			}
			status = RCT_OK;
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_CONNECT_ERROR:
			if (!rct_verbs_lane_of(v, ev->id)) { /* a lane we turned away */
				status = RCT_OK;
				break;
			}
			/* fall through */
		default:
			rct_error("verbs: while accepting: %s (status %d)",
				  rdma_event_str(ev->event), ev->status);
			status = RCT_ERR_PEER_LOST;
			break;
		}
		rdma_ack_cm_event(ev);
		if (status != RCT_OK)
			return status;
	}
	return RCT_OK;
}

/* The control lane of the next primary (one that waited its turn first). */
rct_status_t rct_verbs_accept(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms,
			      unsigned *lanes_p)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	uint64_t now = rct_now_ns();
	uint64_t deadline = now + (uint64_t)timeout_ms * 1000000;
	uint64_t come_by = RCT_MIN(deadline, now + (uint64_t)wait_ms * 1000000);
	rct_status_t status;

	if (!v->listen_id || v->ctrl.id)
		return RCT_ERR_STATE;
	while (v->nwaiting && !v->ctrl.id) {
		struct rct_verbs_wire_conn w = v->waiting_conn[0];
		struct rdma_cm_id *id = v->waiting[0];

		memmove(v->waiting, v->waiting + 1, --v->nwaiting * sizeof(v->waiting[0]));
		memmove(v->waiting_conn, v->waiting_conn + 1,
			v->nwaiting * sizeof(v->waiting_conn[0]));
		status = rct_verbs_on_request(v, id, &w, false);
		if (status != RCT_OK)
			return status;
	}
	status = rct_verbs_establish(v, false, 1, come_by, deadline, timeout_ms);
	if (status != RCT_OK)
		return status;
	v->receiver = true;
	v->credits = v->peer_depth - 1; /* one kept for credit updates */
	*lanes_p = v->nlanes;
	return RCT_OK;
}

/* Tear down lanes and the control ring state of one peer; the listener stays. */
static void rct_verbs_lanes_free(struct rct_verbs_ctx *v)
{
	for (unsigned i = 0; i <= v->nlanes; i++) {
		struct rct_verbs_lane *l = i ? &v->lanes[i - 1] : &v->ctrl;

		if (l->id && l->established)
			rdma_disconnect(l->id);
	}
	for (unsigned i = 0; i <= v->nlanes; i++)
		rct_verbs_lane_destroy(v, i ? &v->lanes[i - 1] : &v->ctrl);
	rct_verbs_ctrl_teardown(v);
}

/* Back to no lane at all (the context can connect or accept again). */
static void rct_verbs_forget(struct rct_verbs_ctx *v)
{
	rct_verbs_lanes_free(v);
	free(v->lanes);
	v->lanes = NULL;
	v->nlanes = 0;
	memset(&v->ctrl, 0, sizeof(v->ctrl));
	v->super.failed = RCT_OK;
	v->receiver = false;
	v->peer_depth = v->credits = v->to_return = 0;
	v->tx_next = v->tx_busy = v->rx_head = v->rx_count = 0;
	v->rx_handed = -1;
}

/* The held primary did not prove itself: drop its control lane. */
void rct_verbs_reject(struct rct_be_ctx *ctx)
{
	rct_verbs_forget(rct_verbs(ctx));
}

static rct_status_t rct_verbs_connect_one(struct rct_verbs_ctx *v, struct rct_verbs_lane *l,
					  uint64_t deadline)
{
	struct rct_verbs_wire_conn mine, theirs;
	struct rdma_conn_param cp;
	struct rdma_cm_id *id;
	rct_status_t status;
	const char *why;

	if (rdma_create_id(v->ec, &id, v, RDMA_PS_TCP)) {
		rct_error("verbs: lane %u: rdma_create_id: %m", l->index);
		return rct_verbs_errno(errno);
	}
	if (rdma_resolve_addr(id, NULL, (struct sockaddr *)&v->peer, RCT_VERBS_RESOLVE_MS)) {
		rct_error("verbs: lane %u: rdma_resolve_addr: %m", l->index);
		rdma_destroy_id(id);
		return rct_verbs_errno(errno);
	}
	status = rct_verbs_cm_wait(v, id, RDMA_CM_EVENT_ADDR_RESOLVED, deadline, NULL);
	if (status == RCT_OK)
		status = rct_verbs_device_open(v, id->verbs);
	if (status == RCT_OK && rdma_resolve_route(id, RCT_VERBS_RESOLVE_MS)) {
		rct_error("verbs: lane %u: rdma_resolve_route: %m", l->index);
		status = rct_verbs_errno(errno);
	}
	if (status == RCT_OK)
		status = rct_verbs_cm_wait(v, id, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline, NULL);
	if (status == RCT_OK)
		status = rct_verbs_lane_create(v, l, id);
	if (status != RCT_OK) {
		if (!l->id)
			rdma_destroy_id(id);
		return status;
	}
	if (!l->index) {
		status = rct_verbs_ctrl_setup(v);
		if (status != RCT_OK)
			return status;
	}
	rct_verbs_set_timeouts(id, l->index);
	rct_verbs_conn_fill(&mine, l->index, v->nlanes, v->cookie);
	memset(&cp, 0, sizeof(cp));
	cp.private_data = &mine;
	cp.private_data_len = sizeof(mine);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.retry_count = RCT_VERBS_RETRY;
	cp.rnr_retry_count = 7;
	if (rdma_connect(id, &cp)) {
		rct_error("verbs: lane %u: rdma_connect: %m", l->index);
		return rct_verbs_errno(errno);
	}
	status = rct_verbs_cm_wait(v, id, RDMA_CM_EVENT_ESTABLISHED, deadline, &theirs);
	if (status != RCT_OK)
		return status;
	if (rct_verbs_conn_check(&theirs, &why) != RCT_OK) {
		rct_error("verbs: lane %u: the secondary's private data: %s", l->index, why);
		return RCT_ERR_PROTO;
	}
	if (!l->index)
		v->peer_depth = le16toh(theirs.ctrl_depth);
	l->established = true;
	return RCT_OK;
}

/* The control QP; the data QPs follow in open_lanes(). */
rct_status_t rct_verbs_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			       unsigned lanes, int timeout_ms)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	rct_status_t status;
	unsigned sl;

	if (v->nlanes || lanes < 1 || lanes > RCT_MAX_LANES)
		return RCT_ERR_STATE;
	v->cookie = rct_random64();
	status = rct_sockaddr_resolve("verbs", addr, port, false, &v->peer, &sl);
	if (status == RCT_OK)
		status = rct_verbs_lanes_alloc(v, lanes);
	if (status == RCT_OK)
		status = rct_verbs_connect_one(v, &v->ctrl, deadline);
	if (status == RCT_OK) {
		v->credits = v->peer_depth - 1; /* one kept for credit updates */
		return RCT_OK;
	}
	rct_error("verbs: cannot connect to %s:%u: %s", addr, port, rct_status_str(status));
	rct_verbs_forget(v); /* a refused primary may try again */
	return status;
}

rct_status_t rct_verbs_open_lanes(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	rct_status_t status = RCT_OK;

	if (!v->ctrl.established || v->lanes_open)
		return RCT_ERR_STATE;
	v->lanes_open = true;
	if (v->receiver) {
		/* Whoever waited behind the proved primary: turned away now. */
		while (v->nwaiting) {
			rct_verbs_refuse_busy(v->waiting[--v->nwaiting]);
			rdma_destroy_id(v->waiting[v->nwaiting]);
		}
		return rct_verbs_establish(v, true, v->nlanes, deadline, deadline, timeout_ms);
	}
	for (unsigned i = 0; i < v->nlanes && status == RCT_OK; i++)
		status = rct_verbs_connect_one(v, &v->lanes[i], deadline);
	return status;
}

/* Events after connection: a disconnect or a device removal ends the session. */
rct_status_t rct_verbs_cm_poll(struct rct_verbs_ctx *v)
{
	struct rdma_cm_event *ev;

	while (!rdma_get_cm_event(v->ec, &ev)) {
		switch (ev->event) {
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_TIMEWAIT_EXIT:
			if (!rct_verbs_lane_of(v, ev->id))
				break; /* a connection we turned away */
			rct_info("verbs: lane disconnected by the peer");
			rct_be_fail(&v->super, RCT_ERR_PEER_LOST);
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			rct_error("verbs: the RDMA device was removed");
			rct_be_fail(&v->super, RCT_ERR_NO_DEVICE);
			break;
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			if (rct_verbs_request_event(v, ev, v->lanes_open) != RCT_OK)
				rct_be_fail(&v->super, RCT_ERR_NO_MEMORY);
			break;
		default:
			rct_debug("verbs: %s", rdma_event_str(ev->event));
			break;
		}
		rdma_ack_cm_event(ev);
	}
	return v->super.failed;
}

void rct_verbs_disconnect(struct rct_be_ctx *ctx)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);

	if (v->super.failed == RCT_OK && v->ctrl.id) {
		/* Let what the control QP holds (a GOODBYE) leave first. */
		uint64_t deadline = rct_now_ns() + 500ull * 1000000;
		bool any;

		while (v->tx_busy && rct_now_ns() < deadline && v->super.failed == RCT_OK) {
			any = false;
			rct_verbs_poll(v, &any);
		}
	}
	for (unsigned i = 0; i < v->nlanes; i++) {
		if (v->lanes[i].posts)
			rct_info("verbs: lane %u: %llu ibv_post_send, %llu signalled completions",
				 v->lanes[i].index, (unsigned long long)v->lanes[i].posts,
				 (unsigned long long)v->lanes[i].signaled);
		v->lanes[i].posts = v->lanes[i].signaled = 0;
	}
	rct_verbs_lanes_free(v);
	while (v->nwaiting) {
		rdma_reject(v->waiting[--v->nwaiting], NULL, 0);
		rdma_destroy_id(v->waiting[v->nwaiting]);
	}
}
