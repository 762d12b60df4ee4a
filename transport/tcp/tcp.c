/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP backend: the context, the control lane, progress and the ops table
 * (connections: tcp_conn.c; memory, keys and puts: tcp_data.c).  See tcp.h
 * for the wire format.  All sockets are non-blocking after the lane handshake; every
 * wait is a poll() bounded by the caller's deadline.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "tcp.h"

#define RCT_TCP_FRAME_HDR sizeof(struct rct_tcp_wire_frame)
#define RCT_TCP_RX_CAP(t) (4 * (RCT_TCP_FRAME_HDR + (t)->super.params.ctrl_max))

static rct_status_t rct_tcp_ctx_create(const struct rct_be_params *params,
				       struct rct_be_ctx **ctx_p)
{
	struct rct_tcp_ctx *t;

	t = calloc(1, sizeof(*t));
	if (!t)
		return RCT_ERR_NO_MEMORY;
	t->super.ops = &rct_tcp_ops;
	t->super.params = *params;
	t->listen_fd = -1;
	t->ctrl_fd = -1;
	t->rx_buf = malloc(RCT_TCP_RX_CAP(t));
	if (!t->rx_buf) {
		free(t);
		return RCT_ERR_NO_MEMORY;
	}
	*ctx_p = &t->super;
	return RCT_OK;
}

void rct_tcp_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void rct_tcp_disconnect(struct rct_be_ctx *ctx)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);

	/* Best effort: what the control lane still holds (a GOODBYE). */
	if (t->ctrl_fd >= 0 && t->super.failed == RCT_OK)
		rct_tcp_ctrl_flush(t);
	for (unsigned i = 0; i < t->nlanes; i++) {
		rct_tcp_lane_drop(t, &t->lanes[i]);
		rct_tcp_close(&t->lanes[i].fd);
	}
	rct_tcp_close(&t->ctrl_fd);
	rct_tcp_unlisten(t);
}

static void rct_tcp_ctx_destroy(struct rct_be_ctx *ctx)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);

	rct_tcp_disconnect(ctx);
	/* Memory is unmapped by its owner (the core) before the context goes. */
	for (unsigned i = 0; i < t->nmems; i++)
		if (t->mems[i])
			rct_warn("tcp: memory %u still mapped at context destroy", i + 1);
	free(t->mems);
	free(t->lanes);
	free(t->pfds);
	free(t->tx_buf);
	free(t->rx_buf);
	free(t);
}

/* ------------------------------------------------------------- control lane */

rct_status_t rct_tcp_ctrl_flush(struct rct_tcp_ctx *t)
{
	ssize_t n;

	while (t->tx_off < t->tx_len) {
		n = send(t->ctrl_fd, t->tx_buf + t->tx_off, t->tx_len - t->tx_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return RCT_OK;
			if (errno == EPIPE || errno == ECONNRESET) {
				rct_error("tcp: control lane: peer closed the connection (%m)");
				return rct_be_fail(&t->super, RCT_ERR_PEER_LOST);
			}
			rct_error("tcp: control lane: send: %m");
			return rct_be_fail(&t->super, RCT_ERR_IO);
		}
		t->tx_off += (size_t)n;
	}
	t->tx_off = t->tx_len = 0;
	return RCT_OK;
}

static rct_status_t rct_tcp_ctrl_send(struct rct_be_ctx *ctx, const void *buf, size_t len)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	struct rct_tcp_wire_frame f = {.length = htole32((uint32_t)len)};
	size_t need;

	if (t->super.failed != RCT_OK)
		return t->super.failed;
	if (t->ctrl_fd < 0)
		return RCT_ERR_STATE;
	if (len > t->super.params.ctrl_max)
		return RCT_ERR_INVALID_PARAM;
	if (t->tx_off) { /* compact what is still to be written */
		memmove(t->tx_buf, t->tx_buf + t->tx_off, t->tx_len - t->tx_off);
		t->tx_len -= t->tx_off;
		t->tx_off = 0;
	}
	need = t->tx_len + sizeof(f) + len;
	if (need > t->tx_cap) {
		size_t cap = RCT_MAX(need, 2 * t->tx_cap);
		uint8_t *p = realloc(t->tx_buf, cap);

		if (!p)
			return RCT_ERR_NO_MEMORY;
		t->tx_buf = p;
		t->tx_cap = cap;
	}
	memcpy(t->tx_buf + t->tx_len, &f, sizeof(f));
	memcpy(t->tx_buf + t->tx_len + sizeof(f), buf, len);
	t->tx_len += sizeof(f) + len;
	return rct_tcp_ctrl_flush(t);
}

/* Length of the complete frame at the head of the receive buffer, or 0. */
static size_t rct_tcp_ctrl_frame(struct rct_tcp_ctx *t, rct_status_t *status_p)
{
	struct rct_tcp_wire_frame f;
	size_t avail = t->rx_len - t->rx_consumed;
	uint32_t len;

	*status_p = RCT_OK;
	if (avail < sizeof(f))
		return 0;
	memcpy(&f, t->rx_buf + t->rx_consumed, sizeof(f));
	len = le32toh(f.length);
	if (len > t->super.params.ctrl_max || f.reserved) {
		rct_error("tcp: control lane: bad frame (length %u, reserved 0x%x)", len,
			  le32toh(f.reserved));
		*status_p = rct_be_fail(&t->super, RCT_ERR_PROTO);
		return 0;
	}
	return avail >= sizeof(f) + len ? sizeof(f) + len : 0;
}

static rct_status_t rct_tcp_ctrl_recv(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	rct_status_t status;
	size_t frame;
	ssize_t n;

	/* No check of t->super.failed: after a data lane failed, what the control lane
	 * still holds (a GOODBYE, an ERROR) tells the core why. */
	if (t->ctrl_fd < 0)
		return RCT_ERR_STATE;
	for (;;) {
		frame = rct_tcp_ctrl_frame(t, &status);
		if (status != RCT_OK)
			return status;
		if (frame)
			break;
		if (t->rx_consumed) { /* make room: drop what was returned before */
			memmove(t->rx_buf, t->rx_buf + t->rx_consumed, t->rx_len - t->rx_consumed);
			t->rx_len -= t->rx_consumed;
			t->rx_consumed = 0;
		}
		n = read(t->ctrl_fd, t->rx_buf + t->rx_len, RCT_TCP_RX_CAP(t) - t->rx_len);
		if (n > 0) {
			t->rx_len += (size_t)n;
			continue;
		}
		if (n == 0) {
			rct_info("tcp: control lane: peer closed the connection");
			return rct_be_fail(&t->super, RCT_ERR_PEER_LOST);
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return RCT_ERR_AGAIN;
		rct_error("tcp: control lane: receive: %m");
		return rct_be_fail(&t->super, RCT_ERR_IO);
	}
	*buf_p = t->rx_buf + t->rx_consumed + RCT_TCP_FRAME_HDR;
	*len_p = frame - RCT_TCP_FRAME_HDR;
	t->rx_consumed += frame;
	return RCT_OK;
}

/* ------------------------------------------------------------- progress */

/* A sender's data lane must stay silent: anything but EOF is a protocol error. */
static rct_status_t rct_tcp_sender_lane_readable(struct rct_tcp_ctx *t, struct rct_tcp_lane *l)
{
	char c;
	ssize_t n = read(l->fd, &c, 1);

	if (n == 0) {
		rct_info("tcp: lane %u: peer closed the connection", l->index);
		return rct_be_fail(&t->super, RCT_ERR_PEER_LOST);
	}
	if (n > 0) {
		rct_error("tcp: lane %u: unexpected data from the receiver", l->index);
		return rct_be_fail(&t->super, RCT_ERR_PROTO);
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return RCT_OK;
	rct_error("tcp: lane %u: receive: %m", l->index);
	return rct_be_fail(&t->super, RCT_ERR_IO);
}

/*
 * What progress() does before it would sleep: push what is queued and fill
 * t->pfds (the control lane and every data lane, POLLOUT where a queue
 * waits).  *news_p: there is news already (puts completed just now, which
 * the caller waits for exactly; or a whole control message is buffered), so
 * nobody should sleep.  Sleeping there cost a full timeout per checkpoint.
 */
static rct_status_t rct_tcp_prepare(struct rct_tcp_ctx *t, bool *news_p)
{
	unsigned n = t->nlanes;
	size_t pending = t->pending;
	rct_status_t status, ignore;

	if (t->super.failed != RCT_OK)
		return t->super.failed;
	if (t->ctrl_fd < 0)
		return RCT_ERR_STATE;
	status = rct_tcp_ctrl_flush(t);
	for (unsigned i = 0; i < n && status == RCT_OK; i++)
		status = rct_tcp_lane_send(t, &t->lanes[i]);
	if (status != RCT_OK)
		return status;
	*news_p = t->pending < pending || rct_tcp_ctrl_frame(t, &ignore);
	t->pfds[0].fd = t->ctrl_fd;
	t->pfds[0].events = POLLIN | (t->tx_len > t->tx_off ? POLLOUT : 0);
	for (unsigned i = 0; i < n; i++) {
		t->pfds[i + 1].fd = t->lanes[i].fd;
		t->pfds[i + 1].events = POLLIN | (t->lanes[i].tx_head ? POLLOUT : 0);
	}
	return RCT_OK;
}

static rct_status_t rct_tcp_arm(struct rct_be_ctx *ctx, struct pollfd *fds, unsigned cap,
				unsigned *n_p)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	bool news;
	rct_status_t status = rct_tcp_prepare(t, &news);

	if (status != RCT_OK)
		return status;
	if (news)
		return RCT_ERR_AGAIN;
	if (cap < t->nlanes + 1)
		return RCT_ERR_NO_SPACE;
	memcpy(fds, t->pfds, (t->nlanes + 1) * sizeof(*fds));
	*n_p = t->nlanes + 1;
	return RCT_OK;
}

static rct_status_t rct_tcp_progress(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	rct_status_t status;
	unsigned n = t->nlanes;
	bool news;
	int rc;

	status = rct_tcp_prepare(t, &news);
	if (status != RCT_OK)
		return status;
	if (news)
		timeout_ms = 0;
	rc = poll(t->pfds, n + 1, timeout_ms);
	if (rc < 0) {
		if (errno == EINTR)
			return RCT_OK;
		rct_error("tcp: poll: %m");
		return rct_be_fail(&t->super, RCT_ERR_SYSTEM);
	}
	if (rc == 0)
		return RCT_OK;

	if (t->pfds[0].revents & (POLLOUT | POLLERR)) {
		status = rct_tcp_ctrl_flush(t);
		if (status != RCT_OK)
			return status;
	}
	/* POLLIN on the control lane is left to ctrl_recv(), which reads it. */
	for (unsigned i = 0; i < n; i++) {
		struct rct_tcp_lane *l = &t->lanes[i];
		short re = t->pfds[i + 1].revents;

		if (re & (POLLOUT | POLLERR)) {
			status = rct_tcp_lane_send(t, l);
			if (status != RCT_OK)
				return status;
		}
		if (re & (POLLIN | POLLHUP | POLLERR)) {
			status = t->receiver ? rct_tcp_lane_recv(t, l)
					     : rct_tcp_sender_lane_readable(t, l);
			if (status != RCT_OK)
				return status;
		}
	}
	return RCT_OK;
}

const struct rct_backend_ops rct_tcp_ops = {
	.name = "tcp",
	.source_read_only = true, /* the socket reads it */
	.ctx_create = rct_tcp_ctx_create,
	.ctx_destroy = rct_tcp_ctx_destroy,
	.listen = rct_tcp_listen,
	.accept = rct_tcp_accept,
	.reject = rct_tcp_reject,
	.connect = rct_tcp_connect,
	.open_lanes = rct_tcp_open_lanes,
	.disconnect = rct_tcp_disconnect,
	.mem_map = rct_tcp_mem_map,
	.mem_unmap = rct_tcp_mem_unmap,
	.mem_pack = rct_tcp_mem_pack,
	.rkey_unpack = rct_tcp_rkey_unpack,
	.rkey_destroy = rct_tcp_rkey_destroy,
	.put = rct_tcp_put,
	.fence = rct_tcp_fence,
	.pending = rct_tcp_pending,
	.fenced = rct_tcp_fenced,
	.ctrl_send = rct_tcp_ctrl_send,
	.ctrl_recv = rct_tcp_ctrl_recv,
	.progress = rct_tcp_progress,
	.arm = rct_tcp_arm,
};
