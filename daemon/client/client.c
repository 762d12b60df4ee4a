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
#include "../ipc/payload.h"

#define CLIENT_EVENTS 64 /* queued events a client has not read yet */

struct rct_client {
	int fd;
	bool broken;	    /* the connection failed; every call fails */
	bool rctd_stopping; /* rctd said it stops (RCT_EVENT_RCTD_STOPPING) */
	bool has_session;   /* closed explicitly by rct_client_close() */
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
	union ipc_body b;
	char what[160];

	/* An event this version cannot read is dropped, not fatal: rctd may be newer. */
	if (ipc_decode(RCT_IPC_EVENT, IPC_REQUEST, c->buf, m->length, 0, &b, what, sizeof(what)))
		return;
	if (c->ev_count == CLIENT_EVENTS) { /* a client that never reads: keep the newest */
		c->ev_head = (c->ev_head + 1) % CLIENT_EVENTS;
		c->ev_count--;
	}
	c->events[(c->ev_head + c->ev_count++) % CLIENT_EVENTS] = b.event;
	if (b.event.type == RCT_EVENT_RCTD_STOPPING)
		c->rctd_stopping = true;
}

static int client_broken(struct rct_client *c, int rc, const char *what)
{
	c->broken = true;
	if (c->rctd_stopping)
		snprintf(c->error, sizeof(c->error),
			 "connection to rctd: rctd stopped (it was told to stop); this "
			 "connection's session ended on this host");
	else
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
 * One request, @req (NULL: an empty payload) with @nfds descriptors, and its
 * reply, decoded into @reply (NULL: none expected).  Pointers in a decoded
 * reply point into c->buf, NUL-terminated, valid until the next call.
 */
static int client_call(struct rct_client *c, uint16_t type, const union ipc_body *req,
		       const int *fds, unsigned nfds, union ipc_body *reply)
{
	struct ipc_msg m = {.type = type, .request_id = ++c->next_id, .nfds = nfds};
	union ipc_body none, scratch;
	char what[200];
	int rc, len;

	c->error[0] = '\0';
	c->detail = RCT_OK;
	if (c->broken)
		return -ECONNRESET;
	memset(&none, 0, sizeof(none));
	len = ipc_encode(type, IPC_REQUEST, req ? req : &none, c->buf, RCT_IPC_MAX_PAYLOAD);
	if (len < 0) {
		snprintf(c->error, sizeof(c->error), "%s: cannot encode the request: %s",
			 ipc_type_str(type), strerror(-len));
		return len;
	}
	for (unsigned i = 0; i < nfds; i++)
		m.fds[i] = fds[i];
	rc = ipc_send(c->fd, &m, c->buf, (size_t)len);
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
		if (ipc_decode(type, IPC_REPLY, c->buf, r.length, 0, reply ? reply : &scratch, what,
			       sizeof(what)))
			return client_broken(c, -EPROTO, what);
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
	union ipc_body h = {
		.hello = {.version_min = RCT_IPC_VERSION, .version_max = RCT_IPC_VERSION}};
	union ipc_body hr;
	struct rct_client *c;
	int rc;

	if (!client_p || !socket_path || strlen(socket_path) >= sizeof(sun.sun_path) ||
	    ipc_str_put(h.hello.name, sizeof(h.hello.name), name ? name : "rct-client"))
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
	rc = client_call(c, RCT_IPC_HELLO, &h, NULL, 0, &hr);
	if (rc)
		goto fail;
	if (hr.hello_reply.version != RCT_IPC_VERSION) {
		rc = -EPROTONOSUPPORT;
		goto fail;
	}
	c->caps = hr.hello_reply.caps;
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
	return c ? c->fd : -EBADF;
}

int rct_client_arm(const struct rct_client *c)
{
	if (!c)
		return -EINVAL;
	if (c->ev_count)
		return -EAGAIN;
	return c->broken ? -ECONNRESET : 0;
}

int rct_client_alive(const struct rct_client *c)
{
	return c && !c->broken;
}

uint64_t rct_client_caps(const struct rct_client *c)
{
	return c ? c->caps : 0;
}

const char *rct_client_error(const struct rct_client *c)
{
	return c ? c->error : "no client (NULL)";
}

rct_status_t rct_client_detail(const struct rct_client *c)
{
	return c ? c->detail : RCT_ERR_INVALID_PARAM;
}

/* Whether input field @bit of a struct with @mask is given (0: every V1 field is). */
#define CLIENT_GIVEN(mask, bit) (!(mask) || ((mask) & (bit)))

int rct_client_session_open(struct rct_client *c, const struct rct_client_session *p,
			    uint64_t *session_id_p)
{
	union ipc_body w = {0}, r;
	uint64_t m;
	int rc;

	if (!c || !p || (p->field_mask & ~(uint64_t)RCT_CLIENT_SESSION_FIELDS_V1))
		return -EINVAL;
	m = p->field_mask;
	if (!CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_ROLE) || p->role > UINT16_MAX)
		return -EINVAL;
	w.open.role = (uint16_t)p->role;
	if (CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_BACKEND) &&
	    ipc_str_put(w.open.backend, sizeof(w.open.backend), p->backend))
		return -EINVAL;
	if (CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_NAME) &&
	    ipc_str_put(w.open.name, sizeof(w.open.name), p->name))
		return -EINVAL;
	if (CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_LANES)) {
		if (p->lanes > UINT16_MAX)
			return -EINVAL;
		w.open.lanes = (uint16_t)p->lanes;
	}
	if (CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_THREADS)) {
		if (p->threads > UINT16_MAX)
			return -EINVAL;
		w.open.threads = (uint16_t)p->threads;
	}
	if (CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_PAGE_SIZE))
		w.open.page_size = p->page_size;
	if (CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_TIMEOUT)) {
		if (p->timeout_ms < 0)
			return -EINVAL;
		w.open.timeout_ms = (uint32_t)p->timeout_ms;
	}
	if (CLIENT_GIVEN(m, RCT_CLIENT_SESSION_FIELD_STAGING_SIZE))
		w.open.staging_size = p->staging_size;
	rc = client_call(c, RCT_IPC_SESSION_OPEN, &w, NULL, 0, &r);
	if (rc)
		return rc;
	c->has_session = true;
	if (session_id_p)
		*session_id_p = r.session_id;
	return 0;
}

int rct_client_session_pairing(struct rct_client *c, const struct rct_client_pairing *p,
			       struct rct_client_pairing_state *state_p)
{
	union ipc_body w = {0}, r;
	uint64_t m;
	int rc;

	if (!c || !p || (p->field_mask & ~(uint64_t)RCT_CLIENT_PAIRING_FIELDS_V1))
		return -EINVAL;
	m = p->field_mask;
	if (!CLIENT_GIVEN(m, RCT_CLIENT_PAIRING_FIELD_ID) || !p->id ||
	    ipc_str_put(w.pairing.id, sizeof(w.pairing.id), p->id))
		return -EINVAL;
	if (CLIENT_GIVEN(m, RCT_CLIENT_PAIRING_FIELD_KEY) && p->key) {
		w.pairing.flags |= RCT_IPC_PAIRING_KEY;
		memcpy(w.pairing.key, p->key, sizeof(w.pairing.key));
	}
	if (CLIENT_GIVEN(m, RCT_CLIENT_PAIRING_FIELD_GENERATION) && p->has_generation) {
		w.pairing.flags |= RCT_IPC_PAIRING_GENERATION;
		w.pairing.generation = p->generation;
	}
	rc = client_call(c, RCT_IPC_SESSION_PAIRING, &w, NULL, 0, &r);
	explicit_bzero(&w, sizeof(w));
	if (rc)
		return rc;
	if (state_p) {
		uint64_t want = (state_p->field_mask ? state_p->field_mask
						     : RCT_CLIENT_PAIRING_STATE_FIELDS_V1) &
				RCT_CLIENT_PAIRING_STATE_FIELDS_ALL;

		if (want & RCT_CLIENT_PAIRING_STATE_FIELD_GENERATION)
			state_p->generation = r.pairing_reply.generation;
		if (want & RCT_CLIENT_PAIRING_STATE_FIELD_LAST_COMMITTED)
			state_p->last_committed = r.pairing_reply.last_committed;
		state_p->field_mask = want;
	}
	return 0;
}

int rct_client_session_close(struct rct_client *c)
{
	int rc;

	if (!c)
		return -EINVAL;
	rc = client_call(c, RCT_IPC_SESSION_CLOSE, NULL, NULL, 0, NULL);
	if (!rc || rc == -ENOENT)
		c->has_session = false;
	return rc;
}

int rct_client_region_register(struct rct_client *c, const struct rct_client_region *params,
			       uint64_t *pages_p)
{
	uint64_t m = params && params->field_mask ? params->field_mask
						  : RCT_CLIENT_REGION_FIELDS_V1;
	union ipc_body w, r;
	int fds[2];
	int rc;

	if (!c || !params || (m & ~(uint64_t)RCT_CLIENT_REGION_FIELDS_V1) ||
	    (m & RCT_CLIENT_REGION_FIELDS_REQUIRED) != RCT_CLIENT_REGION_FIELDS_REQUIRED)
		return -EINVAL;
	if (params->memfd < 0 || params->bitmap_fd < 0)
		return -EBADF;
	memset(&w, 0, sizeof(w));
	w.region_add.id = params->id;
	w.region_add.size = params->size;
	if (m & RCT_CLIENT_REGION_FIELD_OFFSET)
		w.region_add.offset = params->offset;
	if (m & RCT_CLIENT_REGION_FIELD_BITMAP_OFFSET)
		w.region_add.bitmap_offset = params->bitmap_offset;
	if ((m & RCT_CLIENT_REGION_FIELD_NAME) && params->name) {
		if (strlen(params->name) >= sizeof(w.region_add.name))
			return -ENAMETOOLONG;
		strcpy(w.region_add.name, params->name);
	}
	fds[0] = params->memfd;
	fds[1] = params->bitmap_fd;
	rc = client_call(c, RCT_IPC_REGION_ADD, &w, fds, 2, &r);
	if (rc)
		return rc;
	if (pages_p)
		*pages_p = r.pages;
	return 0;
}

int rct_client_region_add(struct rct_client *c, uint32_t id, int memfd, uint64_t offset,
			  uint64_t size, int bitmap_fd, uint64_t bitmap_offset, uint64_t *pages_p)
{
	struct rct_client_region p = {.field_mask = RCT_CLIENT_REGION_FIELDS_V1 &
						    ~(uint64_t)RCT_CLIENT_REGION_FIELD_NAME,
				      .id = id,
				      .memfd = memfd,
				      .offset = offset,
				      .size = size,
				      .bitmap_fd = bitmap_fd,
				      .bitmap_offset = bitmap_offset};

	return rct_client_region_register(c, &p, pages_p);
}

int rct_client_region_remove(struct rct_client *c, uint32_t id)
{
	union ipc_body w = {.region_id = id};

	return c ? client_call(c, RCT_IPC_REGION_REMOVE, &w, NULL, 0, NULL) : -EINVAL;
}

static int client_peer(struct rct_client *c, uint16_t type, const char *addr, uint16_t port,
		       union ipc_body *r)
{
	union ipc_body w = {.peer = {.port = port}};

	if (!c || ipc_str_put(w.peer.addr, sizeof(w.peer.addr), addr))
		return -EINVAL;
	return client_call(c, type, &w, NULL, 0, r);
}

int rct_client_listen(struct rct_client *c, const char *addr, uint16_t port, uint16_t *port_p)
{
	union ipc_body r;
	int rc = client_peer(c, RCT_IPC_LISTEN, addr, port, &r);

	if (rc)
		return rc;
	if (port_p)
		*port_p = r.peer.port;
	return 0;
}

int rct_client_accept(struct rct_client *c, unsigned *lanes_p)
{
	union ipc_body r;
	int rc = c ? client_call(c, RCT_IPC_ACCEPT, NULL, NULL, 0, &r) : -EINVAL;

	if (!rc && lanes_p)
		*lanes_p = r.connected.lanes;
	return rc;
}

int rct_client_connect(struct rct_client *c, const char *addr, uint16_t port, unsigned *lanes_p)
{
	union ipc_body r;
	int rc = client_peer(c, RCT_IPC_CONNECT, addr, port, &r);

	if (!rc && lanes_p)
		*lanes_p = r.connected.lanes;
	return rc;
}

int rct_client_ckpt_begin(struct rct_client *c, uint64_t epoch, unsigned flags)
{
	union ipc_body w = {.ckpt = {.epoch = epoch, .flags = flags}};

	return c ? client_call(c, RCT_IPC_CKPT_BEGIN, &w, NULL, 0, NULL) : -EINVAL;
}

int rct_client_ckpt_dirty_flags(struct rct_client *c, uint32_t id, unsigned flags)
{
	union ipc_body w = {.take = {.region_id = id, .flags = flags}};

	return c ? client_call(c, RCT_IPC_CKPT_DIRTY, &w, NULL, 0, NULL) : -EINVAL;
}

int rct_client_ckpt_dirty(struct rct_client *c, uint32_t id)
{
	return rct_client_ckpt_dirty_flags(c, id, 0);
}

int rct_client_ckpt_stream_flags(struct rct_client *c, uint32_t id, unsigned flags)
{
	union ipc_body w = {.take = {.region_id = id, .flags = flags}};

	return c ? client_call(c, RCT_IPC_CKPT_STREAM, &w, NULL, 0, NULL) : -EINVAL;
}

int rct_client_ckpt_stream(struct rct_client *c, uint32_t id)
{
	return rct_client_ckpt_stream_flags(c, id, 0);
}

static int client_memfd(int *fd_p, const char *name)
{
	if (*fd_p < 0)
		*fd_p = memfd_create(name, MFD_CLOEXEC);
	return *fd_p < 0 ? -errno : 0;
}

int rct_client_ckpt_devstate(struct rct_client *c, const void *buf, size_t len)
{
	union ipc_body w = {.devstate = {.length = len, .bytes = buf}};
	size_t done = 0;
	int rc;

	if (!c || (!buf && len))
		return -EINVAL;
	if (len <= RCT_IPC_MAX_PAYLOAD - sizeof(struct rct_ipc_devstate))
		return client_call(c, RCT_IPC_CKPT_DEVSTATE, &w, NULL, 0, NULL);
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
	w.devstate.bytes = NULL;
	return client_call(c, RCT_IPC_CKPT_DEVSTATE, &w, &c->put_fd, 1, NULL);
}

int rct_client_ckpt_commit(struct rct_client *c, struct rct_ckpt_stats *stats_p)
{
	union ipc_body r;
	int rc = c ? client_call(c, RCT_IPC_CKPT_COMMIT, NULL, NULL, 0, &r) : -EINVAL;

	if (!rc && stats_p)
		rct_ckpt_stats_copy(stats_p, &r.stats);
	return rc;
}

int rct_client_event_next(struct rct_client *c, int timeout_ms, struct rct_event *ev_p)
{
	if (!c || !ev_p)
		return -EINVAL;
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
	rct_event_copy(ev_p, &c->events[c->ev_head]);
	c->ev_head = (c->ev_head + 1) % CLIENT_EVENTS;
	c->ev_count--;
	return 0;
}

int rct_client_ckpt_flush(struct rct_client *c, uint64_t epoch, unsigned flags,
			  struct rct_ckpt_stats *stats_p)
{
	union ipc_body w = {.ckpt = {.epoch = epoch, .flags = flags}}, r;
	int rc = c ? client_call(c, RCT_IPC_CKPT_FLUSH, &w, NULL, 0, &r) : -EINVAL;

	if (!rc && stats_p)
		rct_ckpt_stats_copy(stats_p, &r.stats);
	return rc;
}

int rct_client_ckpt_refuse(struct rct_client *c, uint64_t epoch, const char *reason)
{
	union ipc_body w = {.refuse = {.epoch = epoch, .reason = reason}};

	if (!c)
		return -EINVAL;
	w.refuse.len = reason ? strlen(reason) : 0;
	if (w.refuse.len > RCT_IPC_REASON_MAX)
		w.refuse.len = RCT_IPC_REASON_MAX; /* for the logs: the start says enough */
	return client_call(c, RCT_IPC_CKPT_REFUSE, &w, NULL, 0, NULL);
}

int rct_client_devstate_get(struct rct_client *c, uint64_t epoch, const void **buf_p, size_t *len_p)
{
	union ipc_body w = {.epoch = epoch}, r;
	size_t len, done = 0;
	int rc;

	if (!c || !buf_p || !len_p)
		return -EINVAL;
	rc = client_memfd(&c->get_fd, "rct-devstate-get");
	if (rc)
		return rc;
	rc = client_call(c, RCT_IPC_DEVSTATE_GET, &w, &c->get_fd, 1, &r);
	if (rc)
		return rc;
	len = (size_t)r.length;
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
	union ipc_body w = {.scope = scope}, r;
	int rc;

	if (!c || !json_p ||
	    (type != RCT_IPC_STATUS && type != RCT_IPC_SESSIONS && type != RCT_IPC_STATS))
		return -EINVAL;
	rc = client_call(c, (uint16_t)type, &w, NULL, 0, &r);
	if (rc)
		return rc;
	*json_p = strndup(r.text.text, r.text.len);
	return *json_p ? 0 : -ENOMEM;
}

int rct_client_pairing_ctl(struct rct_client *c, uint32_t op, const char *id,
			   uint64_t min_generation, uint64_t min_epoch, char **json_p)
{
	union ipc_body w = {.pairing_ctl = {.op = op,
					    .min_generation = min_generation,
					    .min_epoch = min_epoch}},
		       r;
	int rc;

	if (!c || !id || !json_p || strlen(id) >= sizeof(w.pairing_ctl.id))
		return -EINVAL;
	memcpy(w.pairing_ctl.id, id, strlen(id) + 1);
	rc = client_call(c, RCT_IPC_PAIRING_CTL, &w, NULL, 0, &r);
	if (rc)
		return rc;
	*json_p = strndup(r.text.text, r.text.len);
	return *json_p ? 0 : -ENOMEM;
}
