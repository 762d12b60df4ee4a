/* SPDX-License-Identifier: BSD-3-Clause */
/* librct-client: see include/rct/rct_client.h and docs/ipc.md. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "../ipc/ipc.h"

#define CLIENT_EVENTS 64 /* queued events a client has not read yet */

struct rct_client {
	int fd;
	bool broken;	  /* the connection failed; every call fails */
	bool has_session; /* closed explicitly by rct_client_close() */
	uint64_t next_id;
	uint64_t caps;
	uint8_t *buf; /* RCT_IPC_MAX_PAYLOAD + 1 */
	uint32_t reply_len;
	char error[256];
	rct_status_t detail;
	struct rct_event events[CLIENT_EVENTS];
	unsigned ev_head, ev_count;
	int put_fd, get_fd; /* memfds for large device-state blobs, made on first use */
	void *dev;
	size_t devcap;
};

static void client_event_push(struct rct_client *c, const struct ipc_msg *m)
{
	struct rct_ipc_event w;
	struct rct_event *ev;

	if (m->length != sizeof(w))
		return;
	memcpy(&w, c->buf, sizeof(w));
	if (c->ev_count == CLIENT_EVENTS) { /* a client that never reads: keep the newest */
		c->ev_head = (c->ev_head + 1) % CLIENT_EVENTS;
		c->ev_count--;
	}
	ev = &c->events[(c->ev_head + c->ev_count++) % CLIENT_EVENTS];
	ev->type = (enum rct_event_type)le32toh(w.type);
	ev->status = (rct_status_t)(int32_t)le32toh(w.status);
	ev->epoch = le64toh(w.epoch);
	ev->discarded = le64toh(w.discarded);
}

static int client_broken(struct rct_client *c, int rc, const char *what)
{
	c->broken = true;
	snprintf(c->error, sizeof(c->error), "connection to rctd: %s",
		 what && *what ? what : strerror(-rc));
	return rc == -ESHUTDOWN ? -ECONNRESET : rc;
}

/*
 * Read one message; events are queued.  Returns 0 (a reply in c->buf), 1 (an
 * event), -errno.  A reply with request id 0 is rctd refusing the connection
 * (not allowed, too many connections: docs/ipc.md): its status and text.
 */
static int client_read(struct rct_client *c, struct ipc_msg *m)
{
	char what[200];
	int rc = ipc_recv(c->fd, m, c->buf, RCT_IPC_MAX_PAYLOAD, what, sizeof(what));

	if (rc)
		return client_broken(c, rc, what);
	if ((m->flags & RCT_IPC_FLAG_REPLY) && m->request_id == 0 && m->status < 0) {
		ipc_msg_close_fds(m);
		c->buf[m->length] = '\0';
		client_broken(c, m->status, NULL);
		snprintf(c->error, sizeof(c->error), "rctd refused the connection: %s",
			 (char *)c->buf);
		return m->status;
	}
	if (m->flags & RCT_IPC_FLAG_EVENT) {
		ipc_msg_close_fds(m);
		client_event_push(c, m);
		return 1;
	}
	return 0;
}

/*
 * One request and its reply.  The reply payload is left in c->buf
 * (c->reply_len bytes, NUL-terminated); it must be @want bytes unless @want
 * is SIZE_MAX (any length).
 */
static int client_call(struct rct_client *c, uint16_t type, const void *req, size_t len,
		       const int *fds, unsigned nfds, size_t want)
{
	struct ipc_msg m = {.type = type, .request_id = ++c->next_id, .nfds = nfds};
	int rc;

	c->error[0] = '\0';
	c->detail = RCT_OK;
	if (c->broken)
		return -ECONNRESET;
	for (unsigned i = 0; i < nfds; i++)
		m.fds[i] = fds[i];
	rc = ipc_send(c->fd, &m, req, len);
	/* rctd may have refused and closed before our first request: its
	 * reason is waiting in the socket (the read cannot block: EOF follows). */
	if (rc == -EPIPE || rc == -ECONNRESET) {
		struct ipc_msg r;
		int rrc = client_read(c, &r);

		return rrc < 0 ? rrc : client_broken(c, rc, NULL);
	}
	if (rc)
		return client_broken(c, rc, NULL);
	for (;;) {
		struct ipc_msg r;

		rc = client_read(c, &r);
		if (rc < 0)
			return rc;
		if (rc == 1)
			continue;
		ipc_msg_close_fds(&r);
		if (!(r.flags & RCT_IPC_FLAG_REPLY) || r.request_id != m.request_id ||
		    r.type != type)
			return client_broken(c, -EPROTO, "a reply to another request");
		c->reply_len = r.length;
		c->buf[r.length] = '\0';
		if (r.status) {
			c->detail = (rct_status_t)r.detail;
			snprintf(c->error, sizeof(c->error), "%s", (char *)c->buf);
			return r.status < 0 ? r.status : -EPROTO;
		}
		if (want != SIZE_MAX && r.length != want)
			return client_broken(c, -EPROTO, "a reply of the wrong size");
		return 0;
	}
}

/* Why this thread's last rct_client_open() failed (there is no handle to ask). */
static __thread char client_open_error[512];

const char *rct_client_open_error(void)
{
	return client_open_error;
}

int rct_client_open(const char *socket_path, const char *name, struct rct_client **client_p)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct rct_ipc_hello h = {.version_min = htole16(RCT_IPC_VERSION),
				  .version_max = htole16(RCT_IPC_VERSION)};
	struct rct_ipc_hello_reply hr;
	struct rct_client *c;
	int rc;

	if (!socket_path || strlen(socket_path) >= sizeof(sun.sun_path) ||
	    ipc_str_put(h.name, sizeof(h.name), name ? name : "rct-client"))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->put_fd = c->get_fd = -1;
	c->buf = malloc(RCT_IPC_MAX_PAYLOAD + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!c->buf || c->fd < 0) {
		rc = c->buf ? -errno : -ENOMEM;
		goto fail;
	}
	memcpy(sun.sun_path, socket_path, strlen(socket_path));
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun))) {
		rc = -errno;
		goto fail;
	}
	rc = client_call(c, RCT_IPC_HELLO, &h, sizeof(h), NULL, 0, sizeof(hr));
	if (rc)
		goto fail;
	memcpy(&hr, c->buf, sizeof(hr));
	if (le16toh(hr.version) != RCT_IPC_VERSION) {
		rc = -EPROTONOSUPPORT;
		goto fail;
	}
	c->caps = le64toh(hr.caps);
	client_open_error[0] = '\0';
	*client_p = c;
	return 0;
fail:
	snprintf(client_open_error, sizeof(client_open_error), "%.100s: %.300s", socket_path,
		 c->error[0] ? c->error : strerror(-rc));
	rct_client_close(c);
	return rc;
}

void rct_client_close(struct rct_client *c)
{
	if (!c)
		return;
	/* Close the session first, so that it is gone from rctd (and its name free) when
	 * this returns; a dead connection is simply dropped. */
	if (c->has_session && !c->broken)
		rct_client_session_close(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->put_fd >= 0)
		close(c->put_fd);
	if (c->get_fd >= 0)
		close(c->get_fd);
	free(c->dev);
	free(c->buf);
	free(c);
}

int rct_client_fd(const struct rct_client *c)
{
	return c->fd;
}

uint64_t rct_client_caps(const struct rct_client *c)
{
	return c->caps;
}

const char *rct_client_error(const struct rct_client *c)
{
	return c->error;
}

rct_status_t rct_client_detail(const struct rct_client *c)
{
	return c->detail;
}

int rct_client_session_open(struct rct_client *c, const struct rct_client_session *p,
			    uint64_t *session_id_p)
{
	struct rct_ipc_session_open w = {0};
	struct rct_ipc_session_open_reply r;
	int rc;

	if (!p || p->lanes > UINT16_MAX || p->threads > UINT16_MAX || p->timeout_ms < 0 ||
	    ipc_str_put(w.backend, sizeof(w.backend), p->backend) ||
	    ipc_str_put(w.name, sizeof(w.name), p->name))
		return -EINVAL;
	w.role = htole16((uint16_t)p->role);
	w.lanes = htole16((uint16_t)p->lanes);
	w.threads = htole16((uint16_t)p->threads);
	w.page_size = htole32(p->page_size);
	w.timeout_ms = htole32((uint32_t)p->timeout_ms);
	w.staging_size = htole64(p->staging_size);
	rc = client_call(c, RCT_IPC_SESSION_OPEN, &w, sizeof(w), NULL, 0, sizeof(r));
	if (rc)
		return rc;
	c->has_session = true;
	memcpy(&r, c->buf, sizeof(r));
	if (session_id_p)
		*session_id_p = le64toh(r.session_id);
	return 0;
}

int rct_client_session_pairing(struct rct_client *c, const struct rct_client_pairing *p,
			       struct rct_client_pairing_state *state_p)
{
	struct rct_ipc_session_pairing w = {0};
	struct rct_ipc_session_pairing_reply r;
	int rc;

	if (!c || !p || !p->id || ipc_str_put(w.id, sizeof(w.id), p->id))
		return -EINVAL;
	if (p->key) {
		w.flags |= RCT_IPC_PAIRING_KEY;
		memcpy(w.key, p->key, sizeof(w.key));
	}
	if (p->has_generation) {
		w.flags |= RCT_IPC_PAIRING_GENERATION;
		w.generation = htole64(p->generation);
	}
	w.flags = htole32(w.flags);
	rc = client_call(c, RCT_IPC_SESSION_PAIRING, &w, sizeof(w), NULL, 0, sizeof(r));
	explicit_bzero(&w, sizeof(w));
	if (rc)
		return rc;
	memcpy(&r, c->buf, sizeof(r));
	if (state_p) {
		state_p->generation = le64toh(r.generation);
		state_p->last_committed = le64toh(r.last_committed);
	}
	return 0;
}

int rct_client_session_close(struct rct_client *c)
{
	int rc = client_call(c, RCT_IPC_SESSION_CLOSE, NULL, 0, NULL, 0, 0);

	if (!rc || rc == -ENOENT)
		c->has_session = false;
	return rc;
}

int rct_client_region_add(struct rct_client *c, uint32_t id, int memfd, uint64_t offset,
			  uint64_t size, int bitmap_fd, uint64_t bitmap_offset, uint64_t *pages_p)
{
	struct rct_ipc_region_add w = {.id = htole32(id),
				       .offset = htole64(offset),
				       .size = htole64(size),
				       .bitmap_offset = htole64(bitmap_offset)};
	struct rct_ipc_region_add_reply r;
	int fds[2] = {memfd, bitmap_fd};
	int rc;

	if (memfd < 0 || bitmap_fd < 0)
		return -EBADF;
	rc = client_call(c, RCT_IPC_REGION_ADD, &w, sizeof(w), fds, 2, sizeof(r));
	if (rc)
		return rc;
	memcpy(&r, c->buf, sizeof(r));
	if (pages_p)
		*pages_p = le64toh(r.pages);
	return 0;
}

int rct_client_region_remove(struct rct_client *c, uint32_t id)
{
	struct rct_ipc_region_ref w = {.id = htole32(id)};

	return client_call(c, RCT_IPC_REGION_REMOVE, &w, sizeof(w), NULL, 0, 0);
}

static int client_peer(struct rct_client *c, uint16_t type, const char *addr, uint16_t port,
		       size_t want)
{
	struct rct_ipc_peer w = {.port = htole16(port)};

	if (ipc_str_put(w.addr, sizeof(w.addr), addr))
		return -EINVAL;
	return client_call(c, type, &w, sizeof(w), NULL, 0, want);
}

int rct_client_listen(struct rct_client *c, const char *addr, uint16_t port, uint16_t *port_p)
{
	struct rct_ipc_listen_reply r;
	int rc = client_peer(c, RCT_IPC_LISTEN, addr, port, sizeof(r));

	if (rc)
		return rc;
	memcpy(&r, c->buf, sizeof(r));
	if (port_p)
		*port_p = le16toh(r.port);
	return 0;
}

static void client_lanes(struct rct_client *c, unsigned *lanes_p)
{
	struct rct_ipc_connected r;

	memcpy(&r, c->buf, sizeof(r));
	if (lanes_p)
		*lanes_p = le32toh(r.lanes);
}

int rct_client_accept(struct rct_client *c, unsigned *lanes_p)
{
	int rc = client_call(c, RCT_IPC_ACCEPT, NULL, 0, NULL, 0, sizeof(struct rct_ipc_connected));

	if (!rc)
		client_lanes(c, lanes_p);
	return rc;
}

int rct_client_connect(struct rct_client *c, const char *addr, uint16_t port, unsigned *lanes_p)
{
	int rc = client_peer(c, RCT_IPC_CONNECT, addr, port, sizeof(struct rct_ipc_connected));

	if (!rc)
		client_lanes(c, lanes_p);
	return rc;
}

int rct_client_ckpt_begin(struct rct_client *c, uint64_t epoch, unsigned flags)
{
	struct rct_ipc_ckpt_begin w = {.epoch = htole64(epoch), .flags = htole32(flags)};

	return client_call(c, RCT_IPC_CKPT_BEGIN, &w, sizeof(w), NULL, 0, 0);
}

int rct_client_ckpt_dirty(struct rct_client *c, uint32_t id)
{
	struct rct_ipc_region_ref w = {.id = htole32(id)};

	return client_call(c, RCT_IPC_CKPT_DIRTY, &w, sizeof(w), NULL, 0, 0);
}

static int client_memfd(int *fd_p, const char *name)
{
	if (*fd_p < 0)
		*fd_p = memfd_create(name, MFD_CLOEXEC);
	return *fd_p < 0 ? -errno : 0;
}

int rct_client_ckpt_devstate(struct rct_client *c, const void *buf, size_t len)
{
	struct rct_ipc_devstate w = {.length = htole64(len)};
	size_t done = 0;
	int rc;

	if (!buf && len)
		return -EINVAL;
	if (len <= RCT_IPC_MAX_PAYLOAD - sizeof(w)) {
		uint8_t *msg = malloc(sizeof(w) + len);

		if (!msg)
			return -ENOMEM;
		memcpy(msg, &w, sizeof(w));
		if (len)
			memcpy(msg + sizeof(w), buf, len);
		rc = client_call(c, RCT_IPC_CKPT_DEVSTATE, msg, sizeof(w) + len, NULL, 0, 0);
		free(msg);
		return rc;
	}
	/* Large: through a memfd rctd reads with pread. */
	rc = client_memfd(&c->put_fd, "rct-devstate-put");
	if (rc)
		return rc;
	while (done < len) {
		ssize_t n = pwrite(c->put_fd, (const uint8_t *)buf + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EIO;
		done += (size_t)n;
	}
	return client_call(c, RCT_IPC_CKPT_DEVSTATE, &w, sizeof(w), &c->put_fd, 1, 0);
}

static int client_stats(struct rct_client *c, struct rct_ckpt_stats *stats_p)
{
	struct rct_ipc_ckpt_stats w;

	if (stats_p) {
		memcpy(&w, c->buf, sizeof(w));
		ipc_stats_decode(&w, stats_p);
	}
	return 0;
}

int rct_client_ckpt_commit(struct rct_client *c, struct rct_ckpt_stats *stats_p)
{
	int rc = client_call(c, RCT_IPC_CKPT_COMMIT, NULL, 0, NULL, 0,
			     sizeof(struct rct_ipc_ckpt_stats));

	return rc ? rc : client_stats(c, stats_p);
}

int rct_client_event_next(struct rct_client *c, int timeout_ms, struct rct_event *ev_p)
{
	while (!c->ev_count) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		struct ipc_msg m;
		int n, rc;

		if (c->broken)
			return -ECONNRESET;
		n = poll(&pfd, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EAGAIN;
		rc = client_read(c, &m);
		if (rc < 0)
			return rc;
		if (rc == 0) { /* a reply with no request outstanding */
			ipc_msg_close_fds(&m);
			return client_broken(c, -EPROTO, "a reply nobody asked for");
		}
	}
	*ev_p = c->events[c->ev_head];
	c->ev_head = (c->ev_head + 1) % CLIENT_EVENTS;
	c->ev_count--;
	return 0;
}

int rct_client_ckpt_flush(struct rct_client *c, uint64_t epoch, unsigned flags,
			  struct rct_ckpt_stats *stats_p)
{
	struct rct_ipc_ckpt_flush w = {.epoch = htole64(epoch), .flags = htole32(flags)};
	int rc = client_call(c, RCT_IPC_CKPT_FLUSH, &w, sizeof(w), NULL, 0,
			     sizeof(struct rct_ipc_ckpt_stats));

	return rc ? rc : client_stats(c, stats_p);
}

int rct_client_devstate_get(struct rct_client *c, uint64_t epoch, const void **buf_p, size_t *len_p)
{
	struct rct_ipc_devstate_get w = {.epoch = htole64(epoch)};
	struct rct_ipc_devstate_get_reply r;
	size_t len, done = 0;
	int rc;

	rc = client_memfd(&c->get_fd, "rct-devstate-get");
	if (rc)
		return rc;
	rc = client_call(c, RCT_IPC_DEVSTATE_GET, &w, sizeof(w), &c->get_fd, 1, sizeof(r));
	if (rc)
		return rc;
	memcpy(&r, c->buf, sizeof(r));
	len = (size_t)le64toh(r.length);
	if (len > c->devcap) {
		void *p = realloc(c->dev, len);

		if (!p)
			return -ENOMEM;
		c->dev = p;
		c->devcap = len;
	}
	while (done < len) {
		ssize_t n = pread(c->get_fd, (uint8_t *)c->dev + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EIO;
		done += (size_t)n;
	}
	*buf_p = c->dev;
	*len_p = len;
	return 0;
}

int rct_client_query(struct rct_client *c, enum rct_ipc_type type, uint32_t scope, char **json_p)
{
	struct rct_ipc_stats w = {.scope = htole32(scope)};
	int rc;

	if (type != RCT_IPC_STATUS && type != RCT_IPC_SESSIONS && type != RCT_IPC_STATS)
		return -EINVAL;
	rc = client_call(c, (uint16_t)type, type == RCT_IPC_STATS ? &w : NULL,
			 type == RCT_IPC_STATS ? sizeof(w) : 0, NULL, 0, SIZE_MAX);
	if (rc)
		return rc;
	*json_p = strdup((char *)c->buf);
	return *json_p ? 0 : -ENOMEM;
}
