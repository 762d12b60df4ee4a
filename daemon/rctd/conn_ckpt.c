/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A connection's session meeting its peer (LISTEN, ACCEPT, CONNECT) and its
 * checkpoints: the primary's BEGIN, DIRTY, DEVSTATE, COMMIT and the
 * secondary's FLUSH and DEVSTATE_GET.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"

static void connected_reply(struct rctd_conn *c, struct reply *r, union ipc_body *out)
{
	out->connected.lanes = rct_session_lanes(c->sess);
	snprintf(out->connected.backend, sizeof(out->connected.backend), "%s",
		 rct_session_backend(c->sess));
	pthread_mutex_lock(&c->d->lock);
	c->lanes = rct_session_lanes(c->sess);
	snprintf(c->transport, sizeof(c->transport), "%s", rct_session_transport(c->sess));
	c->state = RCTD_SESS_CONNECTED;
	c->in_sync = false;
	c->lost_status = RCT_OK;
	c->lost_epoch = UINT64_MAX;
	c->peer_closed = false;
	pthread_mutex_unlock(&c->d->lock);
	r->has_body = true;
}

/* LISTEN and CONNECT take a numeric IPv4 or IPv6 address (docs/ipc.md): no
 * name is looked up inside a request (a resolver can hang for seconds). */
static int addr_check(const char *addr, struct reply *r)
{
	struct in6_addr a;

	if (inet_pton(AF_INET, addr, &a) == 1 || inet_pton(AF_INET6, addr, &a) == 1)
		return 0;
	return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
			  "address '%.64s': a numeric IPv4 or IPv6 address", addr);
}

/* A failed status as the reply, with the session's own words when it failed. */
static int conn_reply_failed(struct rctd_conn *c, struct reply *r, rct_status_t st, const char *op)
{
	const char *why = rct_session_fail_text(c->sess);

	if (st == RCT_OK)
		return 0;
	if (!why[0])
		return reply_rct(r, st, op);
	return reply_fail(r, ipc_errno_of(st), st, "%s: %s: %s", op, rct_status_str(st), why);
}

int h_listen(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	     union ipc_body *out, struct reply *r)
{
	const char *addr = in->peer.addr[0] ? in->peer.addr : "127.0.0.1";
	uint16_t port = 0;
	rct_status_t st;

	(void)m;
	if (conn_need_pairing(c, r) || addr_check(addr, r))
		return r->status;
	/* The colo caches are made (allocated, pre-faulted) now, before any
	 * primary can know the port: on a slow host populating 2 GiB takes
	 * longer than the primary's handshake deadline (it timed out waiting
	 * for AUTH while the cache was made at ACCEPT).  Regions added after
	 * LISTEN are registered at ACCEPT. */
	if (c->nregions && conn_register_regions(c, r))
		return r->status;
	st = rct_session_listen(c->sess, addr, in->peer.port, &port);
	if (reply_rct(r, st, "listen"))
		return r->status;
	pthread_mutex_lock(&c->d->lock);
	snprintf(c->peer, sizeof(c->peer), "listening %s:%u", addr, port);
	c->state = RCTD_SESS_LISTENING;
	pthread_mutex_unlock(&c->d->lock);
	out->peer.port = port;
	r->has_body = true;
	return 0;
}

int h_accept(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	     union ipc_body *out, struct reply *r)
{
	rct_status_t st;
	uint64_t end;

	(void)m;
	(void)in;
	if (conn_register_regions(c, r))
		return r->status;
	/* In slices, so that a stopping rctd ends it within one: a primary
	 * that came meanwhile still gets the whole session timeout. */
	end = rctd_now_ns() + (uint64_t)c->timeout_ms * 1000000;
	do {
		if (c->d->stopping)
			return reply_fail(r, -ESHUTDOWN, RCT_ERR_ABORTED,
					  "accept: rctd is stopping; no primary was accepted");
		st = rct_session_accept_within(c->sess, RCTD_ACCEPT_SLICE_MS);
	} while (st == RCT_ERR_TIMED_OUT && rctd_now_ns() < end);
	if (st == RCT_ERR_TIMED_OUT && !rct_session_fail_text(c->sess)[0])
		return reply_fail(r, -ETIMEDOUT, st,
				  "accept: no primary connected and proved itself within %d ms",
				  c->timeout_ms);
	conn_check_fatal(c, st);
	if (conn_reply_failed(c, r, st, "accept") || conn_pairing_proved(c, r))
		return r->status;
	connected_reply(c, r, out);
	rctd_info("session %s: primary connected, %u lanes", c->name, c->lanes);
	return 0;
}

int h_connect(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	      union ipc_body *out, struct reply *r)
{
	const struct ipc_peer *w = &in->peer;
	rct_status_t st;

	(void)m;
	if (!w->addr[0] || !w->port)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "CONNECT needs the secondary's address and port");
	if (addr_check(w->addr, r) || conn_need_pairing(c, r) || conn_register_regions(c, r))
		return r->status;
	st = rct_session_connect(c->sess, w->addr, w->port);
	conn_check_fatal(c, st);
	if (conn_reply_failed(c, r, st, "connect") || conn_pairing_proved(c, r))
		return r->status;
	pthread_mutex_lock(&c->d->lock);
	snprintf(c->peer, sizeof(c->peer), "%s:%u", w->addr, w->port);
	pthread_mutex_unlock(&c->d->lock);
	connected_reply(c, r, out);
	rctd_info("session %s: connected to %s:%u, %u lanes", c->name, w->addr, w->port, c->lanes);
	return 0;
}

int h_begin(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	    union ipc_body *out, struct reply *r)
{
	rct_status_t st;

	(void)m;
	(void)out;
	if (conn_regions_check(c, r))
		return r->status;
	st = rct_ckpt_begin(c->sess, in->ckpt.epoch, in->ckpt.flags);
	conn_check_fatal(c, st);
	if (st == RCT_OK)
		c->ckpt_flags = in->ckpt.flags;
	return reply_rct(r, st, "begin");
}

int h_dirty(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	    union ipc_body *out, struct reply *r)
{
	struct rctd_region *g = conn_region(c, in->take.region_id);
	bool stream = m->type == RCT_IPC_CKPT_STREAM;
	rct_status_t st;

	(void)out;
	if (!g)
		return reply_fail(r, -ENOENT, RCT_ERR_NOT_FOUND, "no region %u",
				  in->take.region_id);
	if ((in->take.flags & RCT_IPC_TAKE_SUMMARY) && !g->sum)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "region %u: %s with a summary, but its bitmap file held none "
				  "after the bitmap when the region was added",
				  g->id, stream ? "stream" : "dirty");
	/* CKPT_STREAM: the same bitmap, while the guest runs (rct_ckpt_stream()). */
	st = rct_ckpt_take(
		c->sess, g->rr, g->bits, (in->take.flags & RCT_IPC_TAKE_SUMMARY) ? g->sum : NULL,
		g->pages,
		(stream ? RCT_TAKE_STREAM : 0) |
			((in->take.flags & RCT_IPC_TAKE_ZERO_PAGES) ? RCT_TAKE_ZERO_PAGES : 0));
	conn_check_fatal(c, st);
	return reply_rct(r, st, stream ? "stream" : "dirty");
}

static int devbuf_reserve(struct rctd_conn *c, size_t len, struct reply *r)
{
	void *p;

	if (len <= c->devcap)
		return 0;
	if (conn_charge(c, len - c->devcap, 0, "device state", r))
		return r->status;
	p = realloc(c->devbuf, len);
	if (!p) {
		conn_uncharge(c, len - c->devcap, 0);
		return reply_fail(r, -ENOMEM, RCT_ERR_NO_MEMORY,
				  "no memory for %zu bytes of device state", len);
	}
	c->devbuf = p;
	c->devcap = len;
	return 0;
}

/*
 * A blob too large to go inline, from the client's file: pread, not mmap, so
 * that a file the client truncates cannot fault the daemon.  Straight into
 * the session's staging buffer when it fits (rct_ckpt_devstate_buffer(): the
 * file is the only copy before the put), else into a buffer of ours, whose
 * put then says why it does not fit.  *@blob_p: where the bytes are.
 */
static int devstate_read(struct rctd_conn *c, int fd, uint64_t len, const void **blob_p,
			 struct reply *r)
{
	size_t got = 0, cap = 0;
	uint8_t *dst = NULL;
	void *staging;

	if (rct_ckpt_devstate_buffer(c->sess, &staging, &cap) == RCT_OK && len <= cap) {
		dst = staging;
	} else {
		if (devbuf_reserve(c, len ? len : 1, r))
			return r->status;
		dst = c->devbuf;
	}
	*blob_p = dst;
	while (got < len) {
		ssize_t n = pread(fd, dst + got, len - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return reply_fail(r, n ? -errno : -EINVAL, RCT_ERR_INVALID_PARAM,
					  "device-state file: %s after %zu of %" PRIu64 " bytes",
					  n ? strerror(errno) : "end of file", got, len);
		got += (size_t)n;
	}
	return 0;
}

int h_devstate(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	       union ipc_body *out, struct reply *r)
{
	const struct ipc_devstate *w = &in->devstate;
	const void *blob = w->bytes;
	rct_status_t st;

	(void)out;
	if (w->length > RCTD_DEVSTATE_MAX)
		return reply_fail(r, -ENOSPC, RCT_ERR_NO_SPACE,
				  "device state of %" PRIu64 " bytes exceeds the limit of %llu MiB",
				  w->length, RCTD_DEVSTATE_MAX >> 20);
	if (m->nfds == 1 && devstate_read(c, m->fds[0], w->length, &blob, r))
		return r->status;
	st = rct_ckpt_devstate_put(c->sess, blob, w->length);
	conn_check_fatal(c, st);
	return reply_rct(r, st, "device state");
}

int h_commit(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	     union ipc_body *out, struct reply *r)
{
	struct rct_ckpt_stats *st = &out->stats;
	rct_status_t s;

	(void)m;
	(void)in;
	s = rct_ckpt_commit(c->sess, st);
	conn_check_fatal(c, s);
	pthread_mutex_lock(&c->d->lock);
	if (s == RCT_OK) {
		c->m.checkpoints++;
		c->m.pages += st->pages;
		c->m.bytes += st->bytes;
		c->m.devstate_bytes += st->devstate_bytes;
		c->m.last_epoch = st->epoch;
		c->in_sync = !(c->ckpt_flags & RCT_CKPT_LIVE);
		rctd_hist_add(&c->m.transfer, st->transfer_ns);
		rctd_hist_add(&c->m.commit_rtt, st->commit_ns);
	} else {
		c->m.failures++;
	}
	pthread_mutex_unlock(&c->d->lock);
	if (reply_rct(r, s, "commit"))
		return r->status;
	r->has_body = true;
	return 0;
}

int h_flush(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	    union ipc_body *out, struct reply *r)
{
	struct rct_ckpt_stats *st = &out->stats;
	bool summary = in->ckpt.flags & RCT_IPC_FLUSH_LOCAL_SUMMARY;
	rct_status_t s = RCT_OK;
	char mark_was[RCTD_FLUSH_MARK_LEN];

	(void)m;
	if (conn_regions_check(c, r))
		return r->status;
	if (summary && !(in->ckpt.flags & RCT_IPC_FLUSH_LOCAL_DIRTY))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "flush: LOCAL_SUMMARY without LOCAL_DIRTY");
	for (unsigned i = 0; summary && i < c->nregions; i++)
		if (!c->regions[i].sum)
			return reply_fail(
				r, -EINVAL, RCT_ERR_INVALID_PARAM,
				"region %u: flush with summaries, but its bitmap file held "
				"none after the bitmap when the region was added",
				c->regions[i].id);
	for (unsigned i = 0;
	     s == RCT_OK && (in->ckpt.flags & RCT_IPC_FLUSH_LOCAL_DIRTY) && i < c->nregions; i++) {
		const struct rctd_region *g = &c->regions[i];

		s = summary ? rct_ckpt_local_dirty_summary(c->sess, g->rr, g->bits, g->sum,
							   g->pages)
			    : rct_ckpt_local_dirty(c->sess, g->rr, g->bits, g->pages);
	}
	/*
	 * Guest RAM holds no whole epoch from the first page copied until the
	 * last: the flush mark says so meanwhile, in a file that outlives rctd.
	 * rct_ckpt_flush() fails only before it copies anything, and then the
	 * mark goes back to what it said.
	 */
	if (c->pair.flush_mark) {
		pthread_mutex_lock(&c->d->lock);
		c->pair.flush_seq++;
		pthread_mutex_unlock(&c->d->lock);
		memcpy(mark_was, c->pair.flush_mark, sizeof(mark_was));
		rctd_flush_mark_set(c->pair.flush_mark, true, in->ckpt.epoch);
	}
	if (s == RCT_OK)
		s = rct_ckpt_flush(c->sess, in->ckpt.epoch, st);
	if (c->pair.flush_mark) {
		if (s == RCT_OK)
			rctd_flush_mark_set(c->pair.flush_mark, false, in->ckpt.epoch);
		else
			memcpy(c->pair.flush_mark, mark_was, sizeof(mark_was));
		pthread_mutex_lock(&c->d->lock);
		c->pair.flush_seq++;
		pthread_mutex_unlock(&c->d->lock);
	}
	conn_check_fatal(c, s);
	if (reply_rct(r, s, "flush"))
		return r->status;
	c->ready_pending = false;
	pthread_mutex_lock(&c->d->lock);
	c->m.checkpoints++;
	c->m.flushed_pages += st->flush_pages;
	c->in_sync = c->state == RCTD_SESS_CONNECTED;
	c->m.last_epoch = in->ckpt.epoch;
	rctd_hist_add(&c->m.flush, st->flush_ns);
	pthread_mutex_unlock(&c->d->lock);
	r->has_body = true;
	return 0;
}

int h_refuse(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	     union ipc_body *out, struct reply *r)
{
	char reason[RCT_IPC_REASON_MAX + 1];
	rct_status_t st;

	(void)m;
	(void)out;
	/* The reason is the hypervisor's text: printable bytes only in the log. */
	for (size_t i = 0; i < in->refuse.len; i++) {
		char ch = in->refuse.reason[i];

		reason[i] = ch >= ' ' && ch <= '~' ? ch : '?';
	}
	reason[in->refuse.len] = '\0';
	st = rct_ckpt_refuse(c->sess, in->refuse.epoch, reason);
	if (reply_rct(r, st, "refuse"))
		return r->status;
	c->ready_pending = false;
	rctd_warn("session %s: the hypervisor refused checkpoint %" PRIu64
		  " (%s); guest RAM stays at the last flushed epoch",
		  c->name, in->refuse.epoch, reason[0] ? reason : "no reason given");
	pthread_mutex_lock(&c->d->lock);
	c->m.refused++;
	pthread_mutex_unlock(&c->d->lock);
	return 0;
}

int h_devstate_get(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
		   union ipc_body *out, struct reply *r)
{
	const void *blob;
	size_t len, done = 0;
	rct_status_t st;

	st = rct_ckpt_devstate_get(c->sess, in->epoch, &blob, &len);
	if (reply_rct(r, st, "device state"))
		return r->status;
	if (ftruncate(m->fds[0], (off_t)len))
		return reply_fail(r, -errno, RCT_ERR_INVALID_PARAM,
				  "cannot size the client's device-state file to %zu bytes: %s",
				  len, strerror(errno));
	while (done < len) {
		ssize_t n = pwrite(m->fds[0], (const uint8_t *)blob + done, len - done,
				   (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return reply_fail(r, n ? -errno : -EIO, RCT_ERR_SYSTEM,
					  "writing the device state: %s",
					  n ? strerror(errno) : "short write");
		done += (size_t)n;
	}
	out->length = len;
	r->has_body = true;
	return 0;
}
