/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP backend: connections.  The secondary listens; the primary connects its
 * control lane, then one socket per data lane, each introduced by a lane
 * hello (tcp.h) that the secondary checks within RCT_TCP_HELLO_NS.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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

#define RCT_TCP_HELLO_NS (2000ull * 1000000) /* a lane hello must come within 2 s */

static void rct_tcp_sock_opts(int fd)
{
	int one = 1;

	/* Without TCP_NODELAY the small COMMIT behind a page stream stalls ~40 ms. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		rct_warn("tcp: fd %d: TCP_NODELAY: %m", fd);
}

rct_status_t rct_tcp_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			    uint16_t *port_p)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	struct sockaddr_storage ss, bound;
	socklen_t sl = sizeof(bound);
	rct_status_t status;
	int fd, one = 1;
	unsigned len;

	status = rct_sockaddr_resolve("tcp", addr, port, true, &ss, &len);
	if (status != RCT_OK)
		return status;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rct_error("tcp: socket: %m");
		return RCT_ERR_SYSTEM;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 2 * RCT_MAX_LANES)) {
		rct_error("tcp: cannot listen on %s:%u: %m", addr, port);
		status = errno == EADDRINUSE ? RCT_ERR_ADDR_IN_USE : RCT_ERR_SYSTEM;
		goto out_close;
	}
	if (getsockname(fd, (struct sockaddr *)&bound, &sl)) {
		rct_error("tcp: getsockname: %m");
		status = RCT_ERR_SYSTEM;
		goto out_close;
	}
	if (port_p)
		*port_p = ntohs(bound.ss_family == AF_INET6
					? ((struct sockaddr_in6 *)&bound)->sin6_port
					: ((struct sockaddr_in *)&bound)->sin_port);
	t->cands = calloc(RCT_TCP_CANDIDATES, sizeof(*t->cands));
	if (!t->cands) {
		status = RCT_ERR_NO_MEMORY;
		goto out_close;
	}
	t->ncands = 0;
	t->listen_fd = fd;
	return RCT_OK;

out_close:
	close(fd);
	return status;
}

static rct_status_t rct_tcp_wait_fd(int fd, short events, uint64_t deadline_ns)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int rc;

	for (;;) {
		rc = poll(&pfd, 1, rct_ms_left(deadline_ns));
		if (rc > 0)
			return RCT_OK;
		if (rc == 0)
			return RCT_ERR_TIMED_OUT;
		if (errno != EINTR) {
			rct_error("tcp: poll: %m");
			return RCT_ERR_SYSTEM;
		}
	}
}

static rct_status_t rct_tcp_lanes_alloc(struct rct_tcp_ctx *t, unsigned nlanes)
{
	t->lanes = calloc(nlanes, sizeof(*t->lanes));
	t->pfds = calloc(nlanes + 1, sizeof(*t->pfds));
	if (!t->lanes || !t->pfds)
		return RCT_ERR_NO_MEMORY;
	t->nlanes = nlanes;
	for (unsigned i = 0; i < nlanes; i++) {
		t->lanes[i].fd = -1;
		t->lanes[i].index = i + 1;
		t->lanes[i].rx_state = RCT_TCP_RX_HDR;
		t->lanes[i].rx_need = sizeof(t->lanes[i].rx_hdr);
	}
	return RCT_OK;
}

void rct_tcp_unlisten(struct rct_tcp_ctx *t)
{
	for (unsigned i = 0; i < t->ncands; i++)
		close(t->cands[i].fd);
	t->ncands = 0;
	free(t->cands);
	t->cands = NULL;
	rct_tcp_close(&t->listen_fd);
}

static const char *rct_tcp_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[NI_MAXHOST];

	if (getnameinfo((const struct sockaddr *)ss, sizeof(*ss), host, sizeof(host), NULL, 0,
			NI_NUMERICHOST))
		snprintf(host, sizeof(host), "?");
	snprintf(buf, len, "%s", host);
	return buf;
}

static bool rct_tcp_same_source(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

static void rct_tcp_cand_drop(struct rct_tcp_ctx *t, unsigned i, const char *why)
{
	char from[NI_MAXHOST];

	if (why)
		rct_warn("tcp: closing a connection from %s: %s",
			 rct_tcp_addr_str(&t->cands[i].from, from, sizeof(from)), why);
	close(t->cands[i].fd);
	/* Kept in arrival order: the oldest first. */
	memmove(&t->cands[i], &t->cands[i + 1], (t->ncands - i - 1) * sizeof(t->cands[0]));
	t->ncands--;
}

/* Read what candidate @i has sent of its lane hello; false when it is gone. */
static bool rct_tcp_cand_read(struct rct_tcp_ctx *t, unsigned i)
{
	struct rct_tcp_cand *c = &t->cands[i];
	ssize_t n;

	while (c->got < sizeof(c->buf)) {
		n = read(c->fd, c->buf + c->got, sizeof(c->buf) - c->got);
		if (n > 0) {
			c->got += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		rct_tcp_cand_drop(t, i, "connection closed or failed before its lane hello");
		return false;
	}
	return true;
}

/*
 * Whether candidate @c is ready to be taken: a whole lane hello and, for a
 * control lane, the first bytes of its first message behind it (a primary
 * sends its HELLO at once), so that a connection that says a lane hello and
 * then nothing is not admitted, one at a time, before the others.  -1: it
 * is no rct lane, or closed: drop it.
 */
static int rct_tcp_cand_ready(struct rct_tcp_cand *c, const char **why)
{
	uint8_t b;
	ssize_t n;

	if (c->got < sizeof(c->buf))
		return 0;
	if (!c->valid) {
		c->why = "not an rct lane hello";
		c->valid = rct_tcp_lane_hello_decode(c->buf, &c->hello, &c->why) == RCT_OK ? 1 : -1;
	}
	if (c->valid < 0) {
		*why = c->why; /* every call says why, not only the one that decoded */
		return -1;
	}
	if (c->hello.lane)
		return 1;
	n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	*why = "closed after its lane hello";
	return -1;
}

/* Take every connection waiting on the listener into the candidates. */
static rct_status_t rct_tcp_take_arrivals(struct rct_tcp_ctx *t)
{
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		unsigned silent = 0, oldest = UINT32_MAX, oldest_any = UINT32_MAX;
		int fd = accept4(t->listen_fd, (struct sockaddr *)&from, &fl,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return RCT_OK;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			rct_error("tcp: accept: %m");
			return RCT_ERR_SYSTEM;
		}
		for (unsigned i = 0; i < t->ncands; i++) {
			const char *why = NULL;

			if (rct_tcp_cand_ready(&t->cands[i], &why))
				continue; /* ready (or to be dropped): not silent */
			if (oldest_any == UINT32_MAX)
				oldest_any = i;
			if (rct_tcp_same_source(&t->cands[i].from, &from)) {
				silent++;
				if (oldest == UINT32_MAX)
					oldest = i;
			}
		}
		if (silent >= RCT_TCP_SILENT_PER_SOURCE)
			rct_tcp_cand_drop(t, oldest,
					  "a newer connection from its address came while its lane "
					  "hello was awaited");
		else if (t->ncands == RCT_TCP_CANDIDATES && oldest_any != UINT32_MAX)
			rct_tcp_cand_drop(t, oldest_any,
					  "the listener's candidates are full; the oldest silent "
					  "one goes");
		if (t->ncands == RCT_TCP_CANDIDATES) {
			rct_warn("tcp: closing an incoming connection: %d lane hellos wait already",
				 RCT_TCP_CANDIDATES);
			close(fd);
			continue;
		}
		t->cands[t->ncands] = (struct rct_tcp_cand){.fd = fd, .since = rct_now_ns()};
		memcpy(&t->cands[t->ncands].from, &from, sizeof(from));
		t->ncands++;
		rct_tcp_cand_read(t, t->ncands - 1);
	}
}

/*
 * The next connection on the listener that opens with a lane hello (a
 * control lane only when @ctrl_only), by @come_by (RCT_ERR_TIMED_OUT, the
 * candidates kept for the next call).
 * Every connection is heard at once and has RCT_TCP_HELLO_NS from its
 * arrival; one that is not an rct lane, or silent that long, is closed with
 * a warning and the wait goes on: a port scan or a silent neighbour must not
 * break or delay the pairing.
 */
static rct_status_t rct_tcp_next_lane(struct rct_tcp_ctx *t, uint64_t come_by, bool ctrl_only,
				      struct rct_tcp_lane_hello *h_p, int *fd_p)
{
	struct pollfd pfd[1 + RCT_TCP_CANDIDATES];
	rct_status_t status;
	const char *why = "not an rct lane";

	for (;;) {
		uint64_t now = rct_now_ns(), wake = come_by;
		unsigned n = 0;

		for (unsigned i = 0; i < t->ncands;) {
			struct rct_tcp_cand *c = &t->cands[i];

			int ready = rct_tcp_cand_ready(c, &why);

			/* A data lane before its control lane was authenticated
			 * waits here, never read, for its primary's open_lanes(). */
			if (ready > 0 && ctrl_only && c->hello.lane)
				ready = 0;
			if (ready > 0) {
				*h_p = c->hello;
				*fd_p = c->fd;
				rct_tcp_sock_opts(c->fd);
				memmove(c, c + 1, (t->ncands - i - 1) * sizeof(*c));
				t->ncands--;
				return RCT_OK;
			}
			if (ready < 0) {
				rct_tcp_cand_drop(t, i, why);
				continue;
			}
			if (now >= c->since + RCT_TCP_HELLO_NS) {
				rct_tcp_cand_drop(
					t, i,
					c->got < sizeof(c->buf) ? "silent for 2 s: no lane hello"
					: c->hello.lane ? "a data lane whose primary was not "
							  "authenticated within 2 s"
							: "a lane hello, then nothing for 2 s");
				continue;
			}
			wake = RCT_MIN(wake, c->since + RCT_TCP_HELLO_NS);
			i++;
		}
		if (now >= come_by)
			return RCT_ERR_TIMED_OUT;
		pfd[n++] = (struct pollfd){.fd = t->listen_fd, .events = POLLIN};
		for (unsigned i = 0; i < t->ncands; i++)
			pfd[n++] = (struct pollfd){.fd = t->cands[i].fd, .events = POLLIN};
		if (poll(pfd, n, rct_ms_left(wake)) < 0 && errno != EINTR) {
			rct_error("tcp: poll: %m");
			return RCT_ERR_SYSTEM;
		}
		/* Those that spoke first (indices still match: nothing dropped yet). */
		for (unsigned i = t->ncands; i-- > 0;)
			if (pfd[1 + i].revents)
				rct_tcp_cand_read(t, i);
		if (pfd[0].revents) {
			status = rct_tcp_take_arrivals(t);
			if (status != RCT_OK)
				return status;
		}
	}
}

/* The control lane of the next primary; its data lanes wait for open_lanes(). */
rct_status_t rct_tcp_accept(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms, unsigned *lanes_p)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	uint64_t now = rct_now_ns();
	uint64_t deadline = now + (uint64_t)timeout_ms * 1000000;
	uint64_t come_by = RCT_MIN(deadline, now + (uint64_t)wait_ms * 1000000);
	struct rct_tcp_lane_hello h;
	rct_status_t status;
	int fd;

	if (t->listen_fd < 0 || t->nlanes)
		return RCT_ERR_STATE;
	for (;;) {
		status = rct_tcp_next_lane(t, come_by, true, &h, &fd);
		if (status == RCT_ERR_TIMED_OUT)
			return RCT_ERR_AGAIN; /* nobody came */
		if (status != RCT_OK)
			return status;
		if (!h.lane)
			break;
		/* A data lane whose control lane is not in, let alone
		 * authenticated: never read. */
		rct_warn("tcp: closing data lane %u of a primary whose control lane is not "
			 "authenticated",
			 h.lane);
		close(fd);
	}
	status = rct_tcp_lanes_alloc(t, h.nlanes);
	if (status != RCT_OK) {
		close(fd);
		return status;
	}
	t->ctrl_fd = fd;
	t->cookie = h.cookie;
	t->receiver = true;
	*lanes_p = t->nlanes;
	return RCT_OK;
}

/* The primary whose control lane we hold did not prove itself: let it go. */
void rct_tcp_reject(struct rct_be_ctx *ctx)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);

	if (t->ctrl_fd >= 0 && t->super.failed == RCT_OK)
		rct_tcp_ctrl_flush(t); /* the ERROR that says why, if it fits */
	rct_tcp_close(&t->ctrl_fd);
	/* Its data lanes that came already go with it. */
	for (unsigned i = 0; i < t->ncands;) {
		const struct rct_tcp_cand *c = &t->cands[i];

		if (c->valid > 0 && c->hello.lane && c->hello.cookie == t->cookie)
			rct_tcp_cand_drop(t, i, "a data lane of a primary turned away");
		else
			i++;
	}
	free(t->lanes);
	free(t->pfds);
	t->lanes = NULL;
	t->pfds = NULL;
	t->nlanes = 0;
	t->receiver = false;
	t->super.failed = RCT_OK;
	t->tx_len = t->tx_off = 0;
	t->rx_len = t->rx_consumed = 0;
}

static rct_status_t rct_tcp_connect_one(const struct sockaddr_storage *ss, unsigned sl,
					unsigned lane, unsigned nlanes, uint64_t cookie,
					uint64_t deadline, int *fd_p)
{
	struct rct_tcp_wire_lane_hello w = {
		.magic = htole32(RCT_TCP_LANE_MAGIC),
		.version = htole16(RCT_TCP_VERSION),
		.lane = htole16((uint16_t)lane),
		.nlanes = htole16((uint16_t)nlanes),
		.cookie = htole64(cookie),
	};
	socklen_t len = sizeof(int);
	rct_status_t status;
	int fd, err = 0;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rct_error("tcp: socket: %m");
		return RCT_ERR_SYSTEM;
	}
	if (connect(fd, (const struct sockaddr *)ss, sl) && errno != EINPROGRESS) {
		err = errno;
	} else {
		status = rct_tcp_wait_fd(fd, POLLOUT, deadline);
		if (status != RCT_OK) {
			rct_error("tcp: lane %u: connect timed out", lane);
			close(fd);
			return status;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	}
	if (err) {
		rct_error("tcp: lane %u: connect: %s", lane, strerror(err));
		close(fd);
		return err == ECONNREFUSED && !lane ? RCT_ERR_REFUSED : RCT_ERR_PEER_LOST;
	}
	rct_tcp_sock_opts(fd);
	/* A fresh socket's send buffer always takes 24 bytes. */
	if (send(fd, &w, sizeof(w), MSG_NOSIGNAL) != (ssize_t)sizeof(w)) {
		rct_error("tcp: lane %u: sending the lane hello: %m", lane);
		close(fd);
		return RCT_ERR_PEER_LOST;
	}
	*fd_p = fd;
	return RCT_OK;
}

/* The control lane; the data lanes follow in open_lanes(). */
rct_status_t rct_tcp_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			     unsigned lanes, int timeout_ms)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	rct_status_t status;

	if (t->nlanes || lanes < 1 || lanes > RCT_MAX_LANES)
		return RCT_ERR_STATE;
	t->cookie = rct_random64();
	status = rct_sockaddr_resolve("tcp", addr, port, false, &t->peer, &t->peer_len);
	if (status != RCT_OK)
		return status;
	status = rct_tcp_lanes_alloc(t, lanes);
	if (status == RCT_OK)
		status = rct_tcp_connect_one(&t->peer, t->peer_len, 0, lanes, t->cookie, deadline,
					     &t->ctrl_fd);
	if (status != RCT_OK) {
		rct_error("tcp: cannot connect to %s:%u: %s", addr, port, rct_status_str(status));
		rct_tcp_reject(ctx); /* nothing held: it may connect again */
	}
	return status;
}

/* The secondary: every data lane of the primary whose control lane we hold. */
static rct_status_t rct_tcp_accept_lanes(struct rct_tcp_ctx *t, uint64_t deadline)
{
	struct rct_tcp_lane_hello h;
	unsigned have = 0;
	rct_status_t status;
	int fd, *slot;

	while (have < t->nlanes) {
		status = rct_tcp_next_lane(t, deadline, false, &h, &fd);
		if (status != RCT_OK) {
			rct_error("tcp: %u of the primary's %u data lanes in: %s", have, t->nlanes,
				  rct_status_str(status));
			return status;
		}
		slot = h.lane ? &t->lanes[h.lane - 1].fd : NULL;
		if (h.cookie != t->cookie || h.nlanes != t->nlanes || !slot || *slot >= 0) {
			rct_warn("tcp: closing lane %u of another connection (a primary is "
				 "paired)",
				 h.lane);
			close(fd);
			continue;
		}
		*slot = fd;
		have++;
	}
	return RCT_OK;
}

rct_status_t rct_tcp_open_lanes(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct rct_tcp_ctx *t = rct_tcp_ctx(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	rct_status_t status = RCT_OK;

	if (t->ctrl_fd < 0 || !t->nlanes || t->lanes[0].fd >= 0)
		return RCT_ERR_STATE;
	if (t->receiver) {
		status = rct_tcp_accept_lanes(t, deadline);
		/* One primary per session: another one that comes now is
		 * refused by the kernel at once, not left in the backlog until
		 * its handshake times out (it read as the peer lost). */
		if (status == RCT_OK)
			rct_tcp_unlisten(t);
		return status;
	}
	for (unsigned i = 0; i < t->nlanes && status == RCT_OK; i++)
		status = rct_tcp_connect_one(&t->peer, t->peer_len, i + 1, t->nlanes, t->cookie,
					     deadline, &t->lanes[i].fd);
	return status;
}
