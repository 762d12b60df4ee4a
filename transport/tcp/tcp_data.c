/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP backend: memory, keys and the data lanes.  A put becomes a header with
 * the runs' remote offsets followed by the payload; the receiver checks every
 * run against the target memory before it reads a byte of payload, then
 * readv()s the payload straight into place (no bounce buffer).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "tcp.h"

#define RCT_TCP_RECV_BUDGET (8u << 20) /* bytes read per lane per progress call */
/*
 * Bytes sent per lane per call.  Without it a sender whose receiver keeps up
 * sent a 2 GiB checkpoint in one call (~0.6 s), heartbeats stopped and both
 * sides declared the other lost after 150 ms.
 */
#define RCT_TCP_SEND_BUDGET (8u << 20)

#define RCT_TCP_FAIL(_why)                                                                         \
	do {                                                                                       \
		if (why_p)                                                                         \
			*why_p = (_why);                                                           \
		return RCT_ERR_PROTO;                                                              \
	} while (0)

rct_status_t rct_tcp_lane_hello_decode(const void *buf, struct rct_tcp_lane_hello *h_p,
				       const char **why_p)
{
	struct rct_tcp_wire_lane_hello w;
	struct rct_tcp_lane_hello h;

	memcpy(&w, buf, sizeof(w));
	if (le32toh(w.magic) != RCT_TCP_LANE_MAGIC)
		RCT_TCP_FAIL("lane hello: bad magic (not an rct peer)");
	if (le16toh(w.version) != RCT_TCP_VERSION) {
		if (why_p)
			*why_p = "lane hello: unsupported version (this build speaks 1)";
		return RCT_ERR_VERSION;
	}
	if (w.reserved0 || w.reserved1)
		RCT_TCP_FAIL("lane hello: nonzero reserved field");
	h.lane = le16toh(w.lane);
	h.nlanes = le16toh(w.nlanes);
	h.cookie = le64toh(w.cookie);
	if (h.nlanes < 1 || h.nlanes > RCT_MAX_LANES)
		RCT_TCP_FAIL("lane hello: lane count not in 1..64");
	if (h.lane > h.nlanes)
		RCT_TCP_FAIL("lane hello: lane index above the lane count");
	*h_p = h;
	return RCT_OK;
}

rct_status_t rct_tcp_put_decode(const void *buf, struct rct_tcp_put_hdr *h_p, const char **why_p)
{
	struct rct_tcp_wire_put w;
	struct rct_tcp_put_hdr h;

	memcpy(&w, buf, sizeof(w));
	if (le32toh(w.magic) != RCT_TCP_DATA_MAGIC)
		RCT_TCP_FAIL("put: bad magic");
	if (le16toh(w.version) != RCT_TCP_VERSION) {
		if (why_p)
			*why_p = "put: unsupported version (this build speaks 1)";
		return RCT_ERR_VERSION;
	}
	if (w.reserved)
		RCT_TCP_FAIL("put: nonzero reserved field");
	h.type = le16toh(w.type);
	h.nruns = le32toh(w.nruns);
	h.key_id = le32toh(w.key_id);
	h.key_tag = le32toh(w.key_tag);
	h.token = le64toh(w.token);
	switch (h.type) {
	case RCT_TCP_PUT:
		if (h.nruns < 1 || h.nruns > RCT_TCP_BATCH_RUNS)
			RCT_TCP_FAIL("put: run count not in 1..256");
		if (h.token)
			RCT_TCP_FAIL("put: nonzero token");
		break;
	case RCT_TCP_FENCE:
		if (h.nruns || h.key_id || h.key_tag)
			RCT_TCP_FAIL("fence: carries runs or a key");
		break;
	default:
		RCT_TCP_FAIL("put: unknown type");
	}
	*h_p = h;
	return RCT_OK;
}

rct_status_t rct_tcp_run_check(uint64_t offset, uint64_t length, uint64_t size, const char **why_p)
{
	if (!length)
		RCT_TCP_FAIL("run: zero length");
	if (offset >= size || length > size - offset)
		RCT_TCP_FAIL("run: beyond the end of the target memory");
	return RCT_OK;
}

/* ------------------------------------------------------------- memory */

rct_status_t rct_tcp_mem_map(struct rct_be_ctx *ctx, void *addr, size_t len, unsigned access,
			     struct rct_be_mem **mem_p)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	struct rct_tcp_mem *m, **mems;
	unsigned slot;

	m = calloc(1, sizeof(*m));
	if (!m)
		return RCT_ERR_NO_MEMORY;
	if (!addr) {
		addr = rct_mem_alloc_as(len, access & RCT_MEM_SPARSE);
		if (!addr) {
			free(m);
			return RCT_ERR_NO_MEMORY;
		}
		m->owned = true;
	}
	m->super.addr = addr;
	m->super.len = len;
	m->access = access;
	m->tag = (uint32_t)rct_random64();

	for (slot = 0; slot < t->nmems && t->mems[slot]; slot++)
		;
	if (slot == t->nmems) {
		mems = realloc(t->mems, (t->nmems + 1) * sizeof(*mems));
		if (!mems) {
			if (m->owned)
				rct_mem_free(addr, len);
			free(m);
			return RCT_ERR_NO_MEMORY;
		}
		t->mems = mems;
		t->nmems++;
	}
	t->mems[slot] = m;
	m->id = slot + 1;
	*mem_p = &m->super;
	return RCT_OK;
}

void rct_tcp_mem_unmap(struct rct_be_ctx *ctx, struct rct_be_mem *mem)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	struct rct_tcp_mem *m = rct_container_of(mem, struct rct_tcp_mem, super);

	t->mems[m->id - 1] = NULL;
	if (m->owned)
		rct_mem_free(m->super.addr, m->super.len);
	free(m);
}

rct_status_t rct_tcp_mem_pack(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf, size_t cap,
			      size_t *len_p)
{
	struct rct_tcp_mem *m = rct_container_of(mem, struct rct_tcp_mem, super);
	struct rct_tcp_wire_key w;

	(void)ctx;
	if (!(m->access & RCT_MEM_REMOTE_WRITE))
		return RCT_ERR_INVALID_PARAM;
	if (cap < sizeof(w))
		return RCT_ERR_NO_SPACE;
	w.id = htole32(m->id);
	w.tag = htole32(m->tag);
	w.size = htole64(m->super.len);
	memcpy(buf, &w, sizeof(w));
	*len_p = sizeof(w);
	return RCT_OK;
}

rct_status_t rct_tcp_rkey_unpack(struct rct_be_ctx *ctx, const void *buf, size_t len,
				 struct rct_be_rkey **rkey_p)
{
	struct rct_tcp_wire_key w;
	struct rct_tcp_rkey *k;

	(void)ctx;
	if (len != sizeof(w)) {
		rct_error("tcp: remote key of %zu bytes, expected %zu", len, sizeof(w));
		return RCT_ERR_PROTO;
	}
	memcpy(&w, buf, sizeof(w));
	k = malloc(sizeof(*k));
	if (!k)
		return RCT_ERR_NO_MEMORY;
	k->id = le32toh(w.id);
	k->tag = le32toh(w.tag);
	k->super.size = le64toh(w.size);
	*rkey_p = &k->super;
	return RCT_OK;
}

void rct_tcp_rkey_destroy(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey)
{
	(void)ctx;
	free(rct_tcp_rkey(rkey));
}

/* ------------------------------------------------------------- sender */

static void rct_tcp_enqueue(struct rct_tcp_ctx *t, struct rct_tcp_lane *l, struct rct_tcp_batch *b)
{
	b->next = NULL;
	if (l->tx_tail)
		l->tx_tail->next = b;
	else
		l->tx_head = b;
	l->tx_tail = b;
	t->pending++;
}

/* A batch with room for @nruns runs; its header buffer follows the iov array. */
static struct rct_tcp_batch *rct_tcp_batch_alloc(uint32_t nruns, uint8_t **hdr_p)
{
	size_t hdr_len = sizeof(struct rct_tcp_wire_put) + nruns * sizeof(struct rct_tcp_wire_run);
	struct rct_tcp_batch *b;

	b = malloc(sizeof(*b) + (1 + nruns) * sizeof(struct iovec) + hdr_len);
	if (!b)
		return NULL;
	*hdr_p = (uint8_t *)&b->iov[1 + nruns];
	b->iovcnt = 1 + (int)nruns;
	b->iov_idx = 0;
	b->iov[0].iov_base = *hdr_p;
	b->iov[0].iov_len = hdr_len;
	return b;
}

static void rct_tcp_put_hdr_fill(uint8_t *hdr, uint16_t type, uint32_t nruns, uint32_t key_id,
				 uint32_t key_tag, uint64_t token)
{
	struct rct_tcp_wire_put w = {
		.magic = htole32(RCT_TCP_DATA_MAGIC),
		.version = htole16(RCT_TCP_VERSION),
		.type = htole16(type),
		.nruns = htole32(nruns),
		.key_id = htole32(key_id),
		.key_tag = htole32(key_tag),
		.reserved = 0,
		.token = htole64(token),
	};

	memcpy(hdr, &w, sizeof(w));
}

rct_status_t rct_tcp_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			 struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	struct rct_tcp_rkey *k = rct_tcp_rkey(rkey);
	struct rct_tcp_lane *l;
	struct rct_tcp_batch *b;
	uint8_t *hdr;

	if (t->super.failed != RCT_OK)
		return t->super.failed;
	if (lane >= t->nlanes)
		return RCT_ERR_INVALID_PARAM;
	l = &t->lanes[lane];

	for (size_t done = 0; done < n;) {
		uint32_t nb = (uint32_t)RCT_MIN(n - done, RCT_TCP_BATCH_RUNS);
		struct rct_tcp_wire_run w;

		b = rct_tcp_batch_alloc(nb, &hdr);
		if (!b)
			return RCT_ERR_NO_MEMORY;
		rct_tcp_put_hdr_fill(hdr, RCT_TCP_PUT, nb, k->id, k->tag, 0);
		if (rct_runs_check(&runs[done], nb, mem->len, k->super.size, "tcp", l->index) !=
		    RCT_OK) {
			free(b);
			return RCT_ERR_INVALID_PARAM;
		}
		for (uint32_t i = 0; i < nb; i++) {
			const struct rct_run *r = &runs[done + i];

			w.offset = htole64(r->roff);
			w.length = htole64(r->len);
			memcpy(hdr + sizeof(struct rct_tcp_wire_put) + i * sizeof(w), &w,
			       sizeof(w));
			b->iov[1 + i].iov_base = (char *)mem->addr + r->loff;
			b->iov[1 + i].iov_len = r->len;
		}
		rct_tcp_enqueue(t, l, b);
		done += nb;
	}
	return rct_tcp_lane_send(t, l);
}

rct_status_t rct_tcp_fence(struct rct_be_ctx *ctx, uint64_t token)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	struct rct_tcp_batch *b;
	rct_status_t status;
	uint8_t *hdr;

	if (t->super.failed != RCT_OK)
		return t->super.failed;
	for (unsigned i = 0; i < t->nlanes; i++) {
		b = rct_tcp_batch_alloc(0, &hdr);
		if (!b)
			return RCT_ERR_NO_MEMORY;
		rct_tcp_put_hdr_fill(hdr, RCT_TCP_FENCE, 0, 0, 0, token);
		rct_tcp_enqueue(t, &t->lanes[i], b);
		status = rct_tcp_lane_send(t, &t->lanes[i]);
		if (status != RCT_OK)
			return status;
	}
	return RCT_OK;
}

size_t rct_tcp_pending(struct rct_be_ctx *ctx)
{
	return rct_tcp_ctx(ctx)->pending;
}

uint64_t rct_tcp_fenced(struct rct_be_ctx *ctx)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	uint64_t min = UINT64_MAX;

	for (unsigned i = 0; i < t->nlanes; i++)
		min = RCT_MIN(min, t->lanes[i].fenced);
	return min;
}

/* Advance @iov (in place) past @n written or read bytes; returns the new first index. */
static int rct_tcp_iov_advance(struct iovec *iov, int idx, int cnt, size_t n)
{
	while (n && idx < cnt) {
		if (n >= iov[idx].iov_len) {
			n -= iov[idx].iov_len;
			iov[idx].iov_len = 0;
			idx++;
		} else {
			iov[idx].iov_base = (char *)iov[idx].iov_base + n;
			iov[idx].iov_len -= n;
			n = 0;
		}
	}
	while (idx < cnt && !iov[idx].iov_len)
		idx++;
	return idx;
}

static rct_status_t rct_tcp_io_error(struct rct_tcp_ctx *t, unsigned lane, const char *op)
{
	if (errno == EPIPE || errno == ECONNRESET) {
		rct_error("tcp: lane %u: %s: peer closed the connection (%m)", lane, op);
		return rct_be_fail(&t->super, RCT_ERR_PEER_LOST);
	}
	rct_error("tcp: lane %u: %s: %m", lane, op);
	return rct_be_fail(&t->super, RCT_ERR_IO);
}

rct_status_t rct_tcp_lane_send(struct rct_tcp_ctx *t, struct rct_tcp_lane *l)
{
	size_t budget = RCT_TCP_SEND_BUDGET;
	struct rct_tcp_batch *b;
	struct msghdr mh;
	ssize_t n;

	while ((b = l->tx_head) && budget) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &b->iov[b->iov_idx];
		mh.msg_iovlen = (size_t)RCT_MIN(b->iovcnt - b->iov_idx, 1024);
		n = sendmsg(l->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return RCT_OK;
			return rct_tcp_io_error(t, l->index, "send");
		}
		budget -= RCT_MIN(budget, (size_t)n);
		b->iov_idx = rct_tcp_iov_advance(b->iov, b->iov_idx, b->iovcnt, (size_t)n);
		if (b->iov_idx < b->iovcnt)
			continue;
		l->tx_head = b->next;
		if (!l->tx_head)
			l->tx_tail = NULL;
		free(b);
		t->pending--;
	}
	return RCT_OK;
}

void rct_tcp_lane_drop(struct rct_tcp_ctx *t, struct rct_tcp_lane *l)
{
	struct rct_tcp_batch *b;

	while ((b = l->tx_head)) {
		l->tx_head = b->next;
		free(b);
		t->pending--;
	}
	l->tx_tail = NULL;
}

/* ------------------------------------------------------------- receiver */

/* Look up the remote-writable memory a PUT header names. */
static struct rct_tcp_mem *rct_tcp_mem_find(struct rct_tcp_ctx *t, uint32_t id, uint32_t tag)
{
	struct rct_tcp_mem *m;

	if (!id || id > t->nmems)
		return NULL;
	m = t->mems[id - 1];
	if (!m || m->tag != tag || !(m->access & RCT_MEM_REMOTE_WRITE))
		return NULL;
	return m;
}

static rct_status_t rct_tcp_bad_put(struct rct_tcp_ctx *t, struct rct_tcp_lane *l,
				    rct_status_t status, const char *why, uint32_t run)
{
	rct_error("tcp: lane %u: rejected data from the peer: %s (run %u, key %u); nothing of "
		  "this put was written",
		  l->index, why, run, l->rx_put.key_id);
	return rct_be_fail(&t->super, status);
}

/* A PUT's run list is complete: check every run, then aim the iovs into place. */
static rct_status_t rct_tcp_rx_runs_done(struct rct_tcp_ctx *t, struct rct_tcp_lane *l)
{
	const char *why = "no such remote-writable memory";
	struct rct_tcp_mem *m;

	m = rct_tcp_mem_find(t, l->rx_put.key_id, l->rx_put.key_tag);
	if (!m)
		return rct_tcp_bad_put(t, l, RCT_ERR_PROTO, why, 0);
	for (uint32_t i = 0; i < l->rx_put.nruns; i++) {
		uint64_t off = le64toh(l->rx_runs[i].offset);
		uint64_t len = le64toh(l->rx_runs[i].length);

		if (rct_tcp_run_check(off, len, m->super.len, &why) != RCT_OK)
			return rct_tcp_bad_put(t, l, RCT_ERR_PROTO, why, i);
		l->rx_iov[i].iov_base = (char *)m->super.addr + off;
		l->rx_iov[i].iov_len = len;
	}
	l->rx_iovcnt = (int)l->rx_put.nruns;
	l->rx_iov_idx = 0;
	l->rx_state = RCT_TCP_RX_DATA;
	return RCT_OK;
}

static rct_status_t rct_tcp_rx_hdr_done(struct rct_tcp_ctx *t, struct rct_tcp_lane *l)
{
	const char *why = NULL;
	rct_status_t status;

	status = rct_tcp_put_decode(l->rx_hdr, &l->rx_put, &why);
	if (status != RCT_OK)
		return rct_tcp_bad_put(t, l, status, why, 0);
	if (l->rx_put.type == RCT_TCP_FENCE) {
		if (l->rx_put.token < l->fenced)
			return rct_tcp_bad_put(t, l, RCT_ERR_PROTO, "fence token went backwards",
					       0);
		l->fenced = l->rx_put.token;
		l->rx_got = 0;
		l->rx_need = sizeof(l->rx_hdr);
		return RCT_OK;
	}
	l->rx_state = RCT_TCP_RX_RUNS;
	l->rx_got = 0;
	l->rx_need = l->rx_put.nruns * sizeof(struct rct_tcp_wire_run);
	return RCT_OK;
}

rct_status_t rct_tcp_lane_recv(struct rct_tcp_ctx *t, struct rct_tcp_lane *l)
{
	size_t budget = RCT_TCP_RECV_BUDGET;
	rct_status_t status = RCT_OK;
	ssize_t n;

	while (budget && status == RCT_OK) {
		if (l->rx_state == RCT_TCP_RX_DATA) {
			n = readv(l->fd, &l->rx_iov[l->rx_iov_idx],
				  RCT_MIN(l->rx_iovcnt - l->rx_iov_idx, 1024));
		} else {
			uint8_t *dst = l->rx_state == RCT_TCP_RX_HDR ? l->rx_hdr
								     : (uint8_t *)l->rx_runs;

			n = read(l->fd, dst + l->rx_got, l->rx_need - l->rx_got);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return RCT_OK;
			return rct_tcp_io_error(t, l->index, "receive");
		}
		if (n == 0) {
			rct_info("tcp: lane %u: peer closed the connection", l->index);
			return rct_be_fail(&t->super, RCT_ERR_PEER_LOST);
		}
		budget -= RCT_MIN(budget, (size_t)n);

		switch (l->rx_state) {
		case RCT_TCP_RX_DATA:
			l->rx_iov_idx = rct_tcp_iov_advance(l->rx_iov, l->rx_iov_idx, l->rx_iovcnt,
							    (size_t)n);
			if (l->rx_iov_idx == l->rx_iovcnt) {
				l->rx_state = RCT_TCP_RX_HDR;
				l->rx_got = 0;
				l->rx_need = sizeof(l->rx_hdr);
			}
			break;
		case RCT_TCP_RX_HDR:
			l->rx_got += (size_t)n;
			if (l->rx_got == l->rx_need)
				status = rct_tcp_rx_hdr_done(t, l);
			break;
		case RCT_TCP_RX_RUNS:
			l->rx_got += (size_t)n;
			if (l->rx_got == l->rx_need)
				status = rct_tcp_rx_runs_done(t, l);
			break;
		}
	}
	return status;
}
