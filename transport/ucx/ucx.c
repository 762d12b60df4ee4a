/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UCX backend.  One UCP worker per session; the control lane is one endpoint
 * (tag send/receive), the N data lanes are N more endpoints to the same peer
 * worker, and a put is a ucp_put_nbx() into memory the peer allocated with
 * ucp_mem_map(UCP_MEM_MAP_ALLOCATE): on one host UCX then maps the target and
 * the put is a real one-sided store; into ordinary memory it would only be
 * emulated, with the receiver's CPU doing the copy.
 *
 * Connection: the secondary listens (ucp_listener); the primary creates the
 * control endpoint from the socket address; the secondary sends WELCOME on
 * it (a connection cookie it chose), and the primary LANE_HELLO (lane count).
 * Every later tag carries the cookie, so that what a turned-away primary
 * still sends is never matched by the next one's receives.  Only after AUTH
 * (open_lanes) does the secondary send its worker address, from which the
 * primary creates the N data endpoints.  The secondary needs no endpoint per
 * data lane: nothing is ever sent to the primary on them.
 *
 * Completion: a put completes locally; ucp_ep_flush_nbx() on every data
 * endpoint (fence) completes remotely, so fenced() is UINT64_MAX and the core
 * sends COMMIT after the flushes completed.
 *
 * Every wait is a poll() on the worker's event fd bounded by the caller's
 * deadline; a peer failure (error handler, PEER mode) fails the context.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <ucp/api/ucp.h>
#include <ucs/debug/log_def.h>

#include "../core/backend.h"
#include "../core/log.h"
#include "../core/util.h"

#define RCT_UCX_MAGIC	0x55544352u /* "RCTU" */
#define RCT_UCX_VERSION 2
/* Tags: "RCT", the message type, then the connection's cookie. */
#define RCT_UCX_TAG_WELCOME 0x5243540100000000ull
#define RCT_UCX_TAG_HELLO   0x5243540200000000ull
#define RCT_UCX_TAG_ADDRESS 0x5243540300000000ull
#define RCT_UCX_TAG_CTRL    0x5243540400000000ull
#define RCT_UCX_TAG_MASK    0xffffffffffffffffull
#define RCT_UCX_TAG_TYPE    0xffffffff00000000ull
#define RCT_UCX_WAITING	    4	/* connection requests queued behind one being authenticated */
#define RCT_UCX_INFLIGHT    512 /* puts in flight before the poster waits */
#define RCT_UCX_CLOSE_NS    (2000ull * 1000000)

/* Secondary -> primary, first on a new control endpoint. */
struct rct_ucx_wire_welcome {
	__le32 magic;
	__le16 version;
	__le16 reserved;
	__le32 cookie;
	__le32 reserved2;
};

/* Backend hello, primary -> secondary on the control endpoint. */
struct rct_ucx_wire_hello {
	__le32 magic;
	__le16 version;
	__le16 lanes;
	__le64 reserved;
};

/* Packed key: where the memory is on the peer, then UCX's packed rkey. */
struct rct_ucx_wire_key {
	__le64 raddr;
	__le64 size;
};

_Static_assert(sizeof(struct rct_ucx_wire_hello) == 16, "ucx hello");
_Static_assert(sizeof(struct rct_ucx_wire_welcome) == 16, "ucx welcome");
_Static_assert(sizeof(struct rct_ucx_wire_key) == 16, "ucx key");

struct rct_ucx_mem {
	struct rct_be_mem super;
	ucp_mem_h memh;
	unsigned access;
};

struct rct_ucx_rkey {
	struct rct_be_rkey super; /* the peer memory's size */
	uint64_t raddr;
	void *lptr; /* the target mapped into this process (ucp_rkey_ptr), or NULL */
	unsigned n;
	ucp_rkey_h rkeys[]; /* one per data lane: an rkey belongs to an endpoint */
};

/* Runs for a copier thread: direct stores into a target mapped here. */
struct rct_ucx_job {
	struct rct_ucx_job *next;
	const char *src;
	char *dst;
	size_t n;
	struct rct_run runs[];
};

/*
 * A helper thread that stores runs into the mapped target.  Only when the
 * session asked for threads (params.threads): on one host a put into a mapped
 * target is a CPU copy, and one thread is the limit of one lane.
 * lock guards head, tail and stop; done is written by the thread (release)
 * and read by the poster (acquire).
 */
struct rct_ucx_copier {
	struct rct_ucx_ctx *u;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rct_ucx_job *head, *tail;
	bool stop;
};

struct rct_ucx_ctx {
	struct rct_be_ctx super;	/* ops, params, the sticky failure */
	struct rct_ucx_copier *copiers; /* params.threads of them, started at connect */
	unsigned ncopiers;
	uint64_t jobs_posted; /* poster only */
	uint64_t jobs_done;   /* copiers, atomically */
	int wake_fd;	      /* eventfd: a copier finished a job */
	ucp_context_h context;
	ucp_worker_h worker;
	int efd;
	ucp_listener_h listener;
	/* Secondary: connection requests waiting while one primary is
	 * authenticated; refused once its data lanes are open. */
	ucp_conn_request_h conn_waiting[RCT_UCX_WAITING];
	unsigned nwaiting;
	bool lanes_open;
	bool receiver;
	uint32_t cookie; /* in every tag of this connection */
	ucp_ep_h ctrl_ep;
	ucp_ep_h *lanes;
	unsigned nlanes;
	size_t pending; /* puts and flushes not complete */
	size_t sends;	/* control sends not complete */

	/* The one posted control receive. */
	void *rx_req;
	bool rx_done;
	bool rx_handed; /* rx_buf was returned by ctrl_recv(): repost next time */
	size_t rx_len;
	ucs_status_t rx_status;
	uint8_t *rx_buf; /* params.ctrl_max bytes */
};

static inline struct rct_ucx_ctx *rct_ucx(struct rct_be_ctx *ctx)
{
	assert(ctx->ops == &rct_ucx_ops); /* a context of another backend */
	return rct_container_of(ctx, struct rct_ucx_ctx, super);
}

static inline struct rct_ucx_rkey *rct_ucx_rkey(struct rct_be_rkey *rkey)
{
	return rct_container_of(rkey, struct rct_ucx_rkey, super);
}

static rct_status_t rct_ucx_status(ucs_status_t st)
{
	switch (st) {
	case UCS_OK:
		return RCT_OK;
	case UCS_ERR_NO_MEMORY:
	case UCS_ERR_NO_RESOURCE:
		return RCT_ERR_NO_MEMORY;
	case UCS_ERR_TIMED_OUT:
		return RCT_ERR_TIMED_OUT;
	case UCS_ERR_UNREACHABLE:
	case UCS_ERR_CONNECTION_RESET:
	case UCS_ERR_REJECTED:
	case UCS_ERR_CANCELED:
	case UCS_ERR_ENDPOINT_TIMEOUT:
	case UCS_ERR_NOT_CONNECTED:
		return RCT_ERR_PEER_LOST;
	case UCS_ERR_NO_DEVICE:
		return RCT_ERR_NO_DEVICE;
	case UCS_ERR_UNSUPPORTED:
		return RCT_ERR_UNSUPPORTED;
	case UCS_ERR_INVALID_PARAM:
		return RCT_ERR_INVALID_PARAM;
	default:
		return RCT_ERR_IO;
	}
}

static void rct_ucx_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
	struct rct_ucx_ctx *u = arg;

	/* Info only: after a GOODBYE this is the normal end; the core logs a
	 * failure when the session did not expect one. */
	rct_info("ucx: endpoint %p failed: %s", (void *)ep, ucs_status_string(st));
	rct_be_fail(&u->super, rct_ucx_status(st) == RCT_ERR_IO ? RCT_ERR_IO : RCT_ERR_PEER_LOST);
}

static void rct_ucx_conn_handler(ucp_conn_request_h req, void *arg)
{
	struct rct_ucx_ctx *u = arg;

	if (u->lanes_open || u->nwaiting == RCT_UCX_WAITING) {
		/* One primary per session: later requests are turned away. */
		rct_warn("ucx: rejecting a connection request: %s",
			 u->lanes_open ? "a primary is connected" : "too many waiting");
		ucp_listener_reject(u->listener, req);
		return;
	}
	u->conn_waiting[u->nwaiting++] = req;
}

static ucp_tag_t rct_ucx_tag(const struct rct_ucx_ctx *u, ucp_tag_t type)
{
	return type | u->cookie;
}

/*
 * UCX's own messages.  By default UCX prints them on stdout, which broke
 * every `--json` of a program that starts rctd (185 lines of "UCX WARN ..."
 * before the object in one bench run).  This handler, pushed once per process
 * before the first UCX context, sends them through rct's log (stderr, or the
 * embedding program's log) instead, and stops UCX's default handler.
 */
__attribute__((format(printf, 6, 0))) static ucs_log_func_rc_t rct_ucx_log(
	const char *file, unsigned line, const char *function, ucs_log_level_t level,
	const ucs_log_component_config_t *comp, const char *fmt, va_list ap)
{
	const char *base = strrchr(file, '/');
	enum rct_log_level lvl = level <= UCS_LOG_LEVEL_ERROR  ? RCT_LOG_ERROR
				 : level == UCS_LOG_LEVEL_WARN ? RCT_LOG_WARN
				 : level <= UCS_LOG_LEVEL_INFO ? RCT_LOG_INFO
							       : RCT_LOG_DEBUG;
	char msg[400];

	(void)function;
	if (level > comp->log_level && level != UCS_LOG_LEVEL_PRINT)
		return UCS_LOG_FUNC_RC_STOP;
	if ((int)lvl > rct_log_level_cur)
		return UCS_LOG_FUNC_RC_STOP;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	rct_log(lvl, "ucx: %s %s:%u %s", comp->name, base ? base + 1 : file, line, msg);
	return UCS_LOG_FUNC_RC_STOP;
}

static void rct_ucx_log_install(void)
{
	ucs_log_push_handler(rct_ucx_log);
}

static rct_status_t rct_ucx_ctx_create(const struct rct_be_params *params,
				       struct rct_be_ctx **ctx_p)
{
	static pthread_once_t log_once = PTHREAD_ONCE_INIT;
	ucp_params_t cp = {
		.field_mask = UCP_PARAM_FIELD_FEATURES,
		.features = UCP_FEATURE_RMA | UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP,
	};
	ucp_worker_params_t wp = {
		.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
		.thread_mode = UCS_THREAD_MODE_SINGLE,
	};
	struct rct_ucx_ctx *u;
	ucp_config_t *config;
	ucs_status_t st;

	pthread_once(&log_once, rct_ucx_log_install);
	u = calloc(1, sizeof(*u));
	if (!u)
		return RCT_ERR_NO_MEMORY;
	u->super.ops = &rct_ucx_ops;
	u->super.params = *params;
	u->efd = -1;
	u->rx_buf = malloc(params->ctrl_max);
	if (!u->rx_buf) {
		free(u);
		return RCT_ERR_NO_MEMORY;
	}
	u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->wake_fd < 0) {
		rct_error("ucx: eventfd: %m");
		free(u->rx_buf);
		free(u);
		return RCT_ERR_SYSTEM;
	}
	st = ucp_config_read(NULL, NULL, &config);
	if (st != UCS_OK) {
		rct_error("ucx: reading the UCX configuration: %s", ucs_status_string(st));
		goto out_free;
	}
	st = ucp_init(&cp, config, &u->context);
	ucp_config_release(config);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_init: %s", ucs_status_string(st));
		goto out_free;
	}
	st = ucp_worker_create(u->context, &wp, &u->worker);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_worker_create: %s", ucs_status_string(st));
		goto out_cleanup;
	}
	st = ucp_worker_get_efd(u->worker, &u->efd);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_worker_get_efd: %s", ucs_status_string(st));
		goto out_worker;
	}
	*ctx_p = &u->super;
	return RCT_OK;

out_worker:
	ucp_worker_destroy(u->worker);
out_cleanup:
	ucp_cleanup(u->context);
out_free:
	close(u->wake_fd);
	free(u->rx_buf);
	free(u);
	return rct_ucx_status(st);
}

/* Drive the worker until nothing more happens; returns how much happened. */
static unsigned rct_ucx_drain(struct rct_ucx_ctx *u)
{
	unsigned n, total = 0;

	while ((n = ucp_worker_progress(u->worker)))
		total += n;
	return total;
}

static uint64_t rct_ucx_jobs_pending(struct rct_ucx_ctx *u)
{
	return u->jobs_posted - __atomic_load_n(&u->jobs_done, __ATOMIC_ACQUIRE);
}

/* Progress, and sleep on the event fds up to @timeout_ms if nothing happened. */
static void rct_ucx_wait(struct rct_ucx_ctx *u, int timeout_ms)
{
	struct pollfd pfd[2] = {{.fd = u->efd, .events = POLLIN},
				{.fd = u->wake_fd, .events = POLLIN}};
	uint64_t jobs = rct_ucx_jobs_pending(u), v;
	ucs_status_t st;

	if (rct_ucx_drain(u) || timeout_ms <= 0 || u->rx_done || u->super.failed != RCT_OK)
		return;
	st = ucp_worker_arm(u->worker);
	if (st == UCS_OK && (!jobs || rct_ucx_jobs_pending(u) == jobs))
		poll(pfd, u->wake_fd >= 0 ? 2 : 1, timeout_ms);
	else if (st != UCS_OK && st != UCS_ERR_BUSY)
		rct_warn("ucx: ucp_worker_arm: %s", ucs_status_string(st));
	if (u->wake_fd >= 0 && (pfd[1].revents & POLLIN) && read(u->wake_fd, &v, sizeof(v)) < 0)
		rct_debug("ucx: reading the copier eventfd: %m");
	rct_ucx_drain(u);
}

static void *rct_ucx_copier_main(void *arg)
{
	struct rct_ucx_copier *c = arg;
	struct rct_ucx_job *job;
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->head && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		job = c->head;
		if (!job)
			break; /* stop, and nothing left */
		c->head = job->next;
		if (!c->head)
			c->tail = NULL;
		pthread_mutex_unlock(&c->lock);
		for (size_t i = 0; i < job->n; i++)
			memcpy(job->dst + job->runs[i].roff, job->src + job->runs[i].loff,
			       job->runs[i].len);
		free(job);
		/* Release: the stores above are visible before the count says so. */
		__atomic_add_fetch(&c->u->jobs_done, 1, __ATOMIC_RELEASE);
		if (write(c->u->wake_fd, &one, sizeof(one)) < 0)
			rct_debug("ucx: waking the poster: %m");
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/*
 * Drop every queued job and wait for the ones being copied: after this no
 * copier touches a remote mapping or a source buffer until new jobs come.
 * Called before a remote key goes (its mapping goes with it: a queued store
 * would land in unmapped memory) and at disconnect.  Dropped stores are
 * never acknowledged, so no epoch that needed them can commit.
 */
static void rct_ucx_copiers_quiesce(struct rct_ucx_ctx *u)
{
	uint64_t dropped = 0, v;

	for (unsigned i = 0; i < u->ncopiers; i++) {
		struct rct_ucx_copier *c = &u->copiers[i];
		struct rct_ucx_job *job;

		pthread_mutex_lock(&c->lock);
		while ((job = c->head)) {
			c->head = job->next;
			free(job);
			dropped++;
		}
		c->tail = NULL;
		pthread_mutex_unlock(&c->lock);
	}
	__atomic_add_fetch(&u->jobs_done, dropped, __ATOMIC_RELEASE);
	/* A job in a copier's hands is a bounded memcpy: wait it out. */
	while (rct_ucx_jobs_pending(u)) {
		struct pollfd pfd = {.fd = u->wake_fd, .events = POLLIN};

		if (poll(&pfd, 1, 10) > 0 && read(u->wake_fd, &v, sizeof(v)) < 0)
			rct_debug("ucx: reading the copier eventfd: %m");
	}
	if (dropped)
		rct_debug("ucx: %llu queued copier jobs dropped", (unsigned long long)dropped);
}

static void rct_ucx_copiers_stop(struct rct_ucx_ctx *u)
{
	rct_ucx_copiers_quiesce(u);
	for (unsigned i = 0; i < u->ncopiers; i++) {
		struct rct_ucx_copier *c = &u->copiers[i];

		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
	}
	free(u->copiers);
	u->copiers = NULL;
	u->ncopiers = 0;
}

static rct_status_t rct_ucx_copiers_start(struct rct_ucx_ctx *u, unsigned n)
{
	u->copiers = calloc(n, sizeof(*u->copiers));
	if (!u->copiers)
		return RCT_ERR_NO_MEMORY;
	for (unsigned i = 0; i < n; i++) {
		struct rct_ucx_copier *c = &u->copiers[i];

		c->u = u;
		pthread_mutex_init(&c->lock, NULL);
		pthread_cond_init(&c->cond, NULL);
		if (pthread_create(&c->thread, NULL, rct_ucx_copier_main, c)) {
			rct_error("ucx: cannot start copier thread %u: %m", i);
			pthread_cond_destroy(&c->cond);
			pthread_mutex_destroy(&c->lock);
			return RCT_ERR_SYSTEM;
		}
		u->ncopiers = i + 1;
	}
	return RCT_OK;
}

/* Wait for request @req (NULL: done already) to complete, before @deadline_ns. */
static rct_status_t rct_ucx_wait_req(struct rct_ucx_ctx *u, void *req, uint64_t deadline_ns,
				     const char *what)
{
	ucs_status_t st;

	if (req == NULL)
		return RCT_OK;
	if (UCS_PTR_IS_ERR(req)) {
		rct_error("ucx: %s: %s", what, ucs_status_string(UCS_PTR_STATUS(req)));
		return rct_ucx_status(UCS_PTR_STATUS(req));
	}
	while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS) {
		if (rct_now_ns() >= deadline_ns) {
			rct_error("ucx: %s: timed out", what);
			ucp_request_cancel(u->worker, req);
			rct_ucx_drain(u);
			ucp_request_free(req);
			return RCT_ERR_TIMED_OUT;
		}
		rct_ucx_wait(u, RCT_MIN(rct_ms_left(deadline_ns), 100));
	}
	ucp_request_free(req);
	if (st != UCS_OK) {
		rct_error("ucx: %s: %s", what, ucs_status_string(st));
		return rct_ucx_status(st);
	}
	return RCT_OK;
}

/*
 * The control endpoint (PEER error mode) is closed with FORCE: a flushing close
 * waits for the peer to answer, and a peer that already left (or stopped
 * progressing after our GOODBYE) never does; the control sends were waited
 * for before, so nothing we said is lost.  Data endpoints have no error mode,
 * where UCX allows only a flushing close; they talk to shared memory.
 */
static void rct_ucx_close_ep(struct rct_ucx_ctx *u, ucp_ep_h *ep, bool force)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
		.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
	};

	if (!*ep)
		return;
	rct_ucx_wait_req(u, ucp_ep_close_nbx(*ep, &p), rct_now_ns() + RCT_UCX_CLOSE_NS,
			 "closing an endpoint");
	*ep = NULL;
}

static void rct_ucx_disconnect(struct rct_be_ctx *ctx)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t deadline = rct_now_ns() + RCT_UCX_CLOSE_NS;

	rct_ucx_copiers_stop(u); /* drops what they hold, waits for what they copy */
	/* Let what the control lane holds (a GOODBYE) leave first. */
	while (u->sends && u->super.failed == RCT_OK && rct_now_ns() < deadline)
		rct_ucx_wait(u, 10);
	if (u->rx_req) {
		ucp_request_cancel(u->worker, u->rx_req);
		rct_ucx_drain(u);
		ucp_request_free(u->rx_req);
		u->rx_req = NULL;
	}
	for (unsigned i = 0; u->lanes && i < u->nlanes; i++)
		rct_ucx_close_ep(u, &u->lanes[i], false);
	rct_ucx_close_ep(u, &u->ctrl_ep, true);
	while (u->listener && u->nwaiting)
		ucp_listener_reject(u->listener, u->conn_waiting[--u->nwaiting]);
	if (u->listener) {
		ucp_listener_destroy(u->listener);
		u->listener = NULL;
	}
}

/*
 * Receive and drop whatever tag messages arrived and were never asked for (a
 * peer's last control messages, its GOODBYE): UCX warns about each one left
 * unmatched when the worker goes ("unexpected tag-receive descriptor ... was
 * not matched").  Bounded by RCT_UCX_CLOSE_NS.
 */
static void rct_ucx_drop_unexpected(struct rct_ucx_ctx *u)
{
	uint64_t deadline = rct_now_ns() + RCT_UCX_CLOSE_NS;
	ucp_request_param_t p = {.op_attr_mask = 0};
	ucp_tag_recv_info_t info;
	ucp_tag_message_h msg;
	unsigned n = 0;

	rct_ucx_drain(u);
	while ((msg = ucp_tag_probe_nb(u->worker, 0, 0, 1, &info)) && rct_now_ns() < deadline) {
		/* Truncated into rx_buf if larger: still consumed. */
		void *req = ucp_tag_msg_recv_nbx(u->worker, u->rx_buf, u->super.params.ctrl_max,
						 msg, &p);

		if (rct_ucx_wait_req(u, req, deadline, "dropping an unasked message") != RCT_OK)
			break;
		n++;
	}
	if (n)
		rct_debug("ucx: %u messages nobody asked for dropped at close", n);
}

static void rct_ucx_ctx_destroy(struct rct_be_ctx *ctx)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);

	rct_ucx_disconnect(ctx);
	rct_ucx_drop_unexpected(u);
	free(u->lanes);
	ucp_worker_destroy(u->worker);
	ucp_cleanup(u->context);
	close(u->wake_fd);
	free(u->rx_buf);
	free(u);
}

static rct_status_t rct_ucx_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
				   uint16_t *port_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_listener_params_t lp = {
		.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
			      UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.conn_handler = {.cb = rct_ucx_conn_handler, .arg = u},
	};
	ucp_listener_attr_t attr = {.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR};
	struct sockaddr_storage ss;
	rct_status_t status;
	ucs_status_t st;
	unsigned len;

	status = rct_sockaddr_resolve("ucx", addr, port, true, &ss, &len);
	if (status != RCT_OK)
		return status;
	lp.sockaddr.addr = (struct sockaddr *)&ss;
	lp.sockaddr.addrlen = len;
	st = ucp_listener_create(u->worker, &lp, &u->listener);
	if (st != UCS_OK) {
		rct_error("ucx: cannot listen on %s:%u: %s", addr, port, ucs_status_string(st));
		return rct_ucx_status(st);
	}
	st = ucp_listener_query(u->listener, &attr);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_listener_query: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	if (port_p)
		*port_p = ntohs(attr.sockaddr.ss_family == AF_INET6
					? ((struct sockaddr_in6 *)&attr.sockaddr)->sin6_port
					: ((struct sockaddr_in *)&attr.sockaddr)->sin_port);
	return RCT_OK;
}

static ucp_ep_params_t rct_ucx_ep_params(struct rct_ucx_ctx *u)
{
	ucp_ep_params_t ep = {
		.field_mask = UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
		.err_mode = UCP_ERR_HANDLING_MODE_PEER,
		.err_handler = {.cb = rct_ucx_ep_error, .arg = u},
	};

	return ep;
}

/* Blocking tag send of a small handshake message. */
static rct_status_t rct_ucx_send_sync(struct rct_ucx_ctx *u, const void *buf, size_t len,
				      ucp_tag_t type, uint64_t deadline, const char *what)
{
	ucp_request_param_t p = {.op_attr_mask = 0};

	return rct_ucx_wait_req(u, ucp_tag_send_nbx(u->ctrl_ep, buf, len, rct_ucx_tag(u, type), &p),
				deadline, what);
}

/* Blocking tag receive of a handshake message into @buf (@cap bytes). */
static rct_status_t rct_ucx_recv_sync(struct rct_ucx_ctx *u, void *buf, size_t cap, ucp_tag_t tag,
				      ucp_tag_t mask, uint64_t deadline, size_t *len_p,
				      const char *what)
{
	/* Always a request back, even when the message is already here (else NULL,
	 * and the length would be lost). */
	ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FLAG_NO_IMM_CMPL};
	ucp_tag_recv_info_t info;
	rct_status_t status;
	void *req;

	req = ucp_tag_recv_nbx(u->worker, buf, cap, tag, mask, &p);
	if (UCS_PTR_IS_ERR(req)) {
		rct_error("ucx: %s: %s", what, ucs_status_string(UCS_PTR_STATUS(req)));
		return rct_ucx_status(UCS_PTR_STATUS(req));
	}
	while (ucp_tag_recv_request_test(req, &info) == UCS_INPROGRESS) {
		if (u->super.failed != RCT_OK || rct_now_ns() >= deadline)
			break;
		rct_ucx_wait(u, RCT_MIN(rct_ms_left(deadline), 100));
	}
	if (ucp_request_check_status(req) == UCS_INPROGRESS) {
		ucp_request_cancel(u->worker, req);
		rct_ucx_drain(u);
		ucp_request_free(req);
		rct_error("ucx: %s: %s", what,
			  u->super.failed != RCT_OK ? rct_status_str(u->super.failed)
						    : "timed out");
		return u->super.failed != RCT_OK ? u->super.failed : RCT_ERR_TIMED_OUT;
	}
	status = rct_ucx_status(ucp_request_check_status(req));
	ucp_tag_recv_request_test(req, &info);
	ucp_request_free(req);
	if (status != RCT_OK) {
		rct_error("ucx: %s: %s", what, rct_status_str(status));
		return status;
	}
	*len_p = info.length;
	return RCT_OK;
}

/* The control endpoint of the next primary that asked, with its lane hello. */
static rct_status_t rct_ucx_accept(struct rct_be_ctx *ctx, int timeout_ms, unsigned *lanes_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	ucp_ep_params_t ep = rct_ucx_ep_params(u);
	struct rct_ucx_wire_welcome w = {
		.magic = htole32(RCT_UCX_MAGIC),
		.version = htole16(RCT_UCX_VERSION),
	};
	struct rct_ucx_wire_hello h;
	rct_status_t status;
	ucs_status_t st;
	unsigned lanes;
	size_t len;

	if (!u->listener || u->ctrl_ep)
		return RCT_ERR_STATE;
	while (!u->nwaiting) {
		if (rct_now_ns() >= deadline) {
			rct_error("ucx: no primary connected within %d ms", timeout_ms);
			return RCT_ERR_TIMED_OUT;
		}
		rct_ucx_wait(u, RCT_MIN(rct_ms_left(deadline), 100));
	}
	ep.field_mask |= UCP_EP_PARAM_FIELD_CONN_REQUEST;
	ep.conn_request = u->conn_waiting[0];
	memmove(u->conn_waiting, u->conn_waiting + 1, --u->nwaiting * sizeof(u->conn_waiting[0]));
	st = ucp_ep_create(u->worker, &ep, &u->ctrl_ep);
	if (st != UCS_OK) {
		rct_error("ucx: accepting the control endpoint: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	u->receiver = true;
	do
		u->cookie = (uint32_t)rct_random64();
	while (!u->cookie);
	w.cookie = htole32(u->cookie);
	status = rct_ucx_send_sync(u, &w, sizeof(w), RCT_UCX_TAG_WELCOME, deadline,
				   "sending the welcome");
	if (status == RCT_OK)
		status = rct_ucx_recv_sync(u, &h, sizeof(h), rct_ucx_tag(u, RCT_UCX_TAG_HELLO),
					   RCT_UCX_TAG_MASK,
					   RCT_MIN(deadline, rct_now_ns() + RCT_UCX_CLOSE_NS), &len,
					   "waiting for the lane hello");
	if (status != RCT_OK)
		return status;
	lanes = le16toh(h.lanes);
	if (len != sizeof(h) || le32toh(h.magic) != RCT_UCX_MAGIC || h.reserved || lanes < 1 ||
	    lanes > RCT_MAX_LANES) {
		rct_error("ucx: malformed lane hello (%zu bytes)", len);
		return rct_be_fail(&u->super, RCT_ERR_PROTO);
	}
	if (le16toh(h.version) != RCT_UCX_VERSION) {
		rct_error("ucx: lane hello version %u, this build speaks %d", le16toh(h.version),
			  RCT_UCX_VERSION);
		return rct_be_fail(&u->super, RCT_ERR_VERSION);
	}
	u->nlanes = lanes;
	*lanes_p = lanes;
	return RCT_OK;
}

/* The held primary did not prove itself: close its endpoint, forget its cookie. */
static void rct_ucx_reject(struct rct_be_ctx *ctx)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);

	if (u->rx_req) {
		ucp_request_cancel(u->worker, u->rx_req);
		rct_ucx_drain(u);
		ucp_request_free(u->rx_req);
		u->rx_req = NULL;
	}
	u->rx_done = u->rx_handed = false;
	rct_ucx_close_ep(u, &u->ctrl_ep, true);
	rct_ucx_drop_unexpected(u);
	u->cookie = 0;
	u->nlanes = 0;
	u->receiver = false;
	u->super.failed = RCT_OK;
}

/* The control endpoint, the secondary's welcome and our lane hello. */
static rct_status_t rct_ucx_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
				    unsigned lanes, int timeout_ms)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	struct rct_ucx_wire_hello h = {
		.magic = htole32(RCT_UCX_MAGIC),
		.version = htole16(RCT_UCX_VERSION),
		.lanes = htole16((uint16_t)lanes),
	};
	ucp_ep_params_t ep = rct_ucx_ep_params(u);
	struct rct_ucx_wire_welcome w;
	struct sockaddr_storage ss;
	rct_status_t status;
	ucs_status_t st;
	unsigned sl;
	size_t len;

	if (u->ctrl_ep || lanes < 1 || lanes > RCT_MAX_LANES)
		return RCT_ERR_STATE;
	status = rct_sockaddr_resolve("ucx", addr, port, false, &ss, &sl);
	if (status != RCT_OK)
		return status;
	u->lanes = calloc(lanes, sizeof(*u->lanes));
	if (!u->lanes)
		return RCT_ERR_NO_MEMORY;
	u->nlanes = lanes;

	ep.field_mask |= UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
	ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
	ep.sockaddr.addr = (struct sockaddr *)&ss;
	ep.sockaddr.addrlen = sl;
	st = ucp_ep_create(u->worker, &ep, &u->ctrl_ep);
	if (st != UCS_OK) {
		rct_error("ucx: connecting to %s:%u: %s", addr, port, ucs_status_string(st));
		status = rct_ucx_status(st);
		goto out;
	}
	status = rct_ucx_recv_sync(u, &w, sizeof(w), RCT_UCX_TAG_WELCOME, RCT_UCX_TAG_TYPE,
				   deadline, &len, "waiting for the secondary's welcome");
	if (status == RCT_OK &&
	    (len != sizeof(w) || le32toh(w.magic) != RCT_UCX_MAGIC || !w.cookie)) {
		rct_error("ucx: malformed welcome (%zu bytes)", len);
		status = RCT_ERR_PROTO;
	}
	if (status == RCT_OK && le16toh(w.version) != RCT_UCX_VERSION) {
		rct_error("ucx: the secondary speaks version %u, this build %d", le16toh(w.version),
			  RCT_UCX_VERSION);
		status = RCT_ERR_VERSION;
	}
	if (status != RCT_OK)
		goto out;
	u->cookie = le32toh(w.cookie);
	status = rct_ucx_send_sync(u, &h, sizeof(h), RCT_UCX_TAG_HELLO, deadline,
				   "sending the lane hello");
out:
	if (status != RCT_OK)
		rct_error("ucx: cannot connect to %s:%u: %s", addr, port, rct_status_str(status));
	return status;
}

/* Secondary: our worker address, now that the primary proved itself. */
static rct_status_t rct_ucx_offer_address(struct rct_ucx_ctx *u, uint64_t deadline)
{
	ucp_worker_attr_t wa = {.field_mask = UCP_WORKER_ATTR_FIELD_ADDRESS};
	rct_status_t status;
	ucs_status_t st;

	while (u->nwaiting) {
		rct_warn("ucx: rejecting a connection request: a primary is connected");
		ucp_listener_reject(u->listener, u->conn_waiting[--u->nwaiting]);
	}
	st = ucp_worker_query(u->worker, &wa);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_worker_query: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	status = rct_ucx_send_sync(u, wa.address, wa.address_length, RCT_UCX_TAG_ADDRESS, deadline,
				   "sending the worker address");
	ucp_worker_release_address(u->worker, wa.address);
	return status;
}

/* Primary: the data endpoints, from the secondary's worker address. */
static rct_status_t rct_ucx_lanes_create(struct rct_ucx_ctx *u, uint64_t deadline)
{
	ucp_request_param_t p = {.op_attr_mask = 0};
	ucp_ep_params_t ep;
	rct_status_t status;
	unsigned lanes = u->nlanes;
	ucs_status_t st;
	uint8_t *waddr;
	size_t len;

	waddr = malloc(u->super.params.ctrl_max);
	if (!waddr)
		return RCT_ERR_NO_MEMORY;
	status = rct_ucx_recv_sync(u, waddr, u->super.params.ctrl_max,
				   rct_ucx_tag(u, RCT_UCX_TAG_ADDRESS), RCT_UCX_TAG_MASK, deadline,
				   &len, "waiting for the peer's worker address");
	if (status != RCT_OK)
		goto out;
	/*
	 * Data lanes with peer error handling too, so that a dead peer is an
	 * error callback and never UCX's own abort.  In UCX 1.13 PEER mode keeps
	 * no shared-memory transport for the endpoint's lanes (tcp instead of
	 * sysv/posix/cma here), but that is not the data path on one host: the
	 * peer's cache is still mapped through ucp_rkey_ptr() and the puts are
	 * stores into it (measured: same GB/s as without an error mode, see
	 * docs/benchmarks.md); across hosts the RDMA transports keep PEER mode.
	 */
	ep = rct_ucx_ep_params(u);
	ep.field_mask |= UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
	ep.address = (ucp_address_t *)waddr;
	for (unsigned i = 0; i < lanes; i++) {
		st = ucp_ep_create(u->worker, &ep, &u->lanes[i]);
		if (st != UCS_OK) {
			rct_error("ucx: lane %u: ucp_ep_create: %s", i + 1, ucs_status_string(st));
			status = rct_ucx_status(st);
			goto out;
		}
	}
	/* Finish wire-up now rather than on the first checkpoint's critical path. */
	for (unsigned i = 0; i < lanes && status == RCT_OK; i++)
		status = rct_ucx_wait_req(u, ucp_ep_flush_nbx(u->lanes[i], &p), deadline,
					  "connecting a data lane");
	if (status == RCT_OK && u->super.params.threads)
		status = rct_ucx_copiers_start(u, RCT_MIN(u->super.params.threads, lanes));
	/* Which transports UCX chose for the data lanes (RCT_LOG=debug). */
	if (status == RCT_OK && rct_log_level_cur >= RCT_LOG_DEBUG)
		ucp_ep_print_info(u->lanes[0], stderr);
out:
	free(waddr);
	return status;
}

static rct_status_t rct_ucx_open_lanes(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;

	if (!u->ctrl_ep || u->lanes_open)
		return RCT_ERR_STATE;
	u->lanes_open = true;
	return u->receiver ? rct_ucx_offer_address(u, deadline) : rct_ucx_lanes_create(u, deadline);
}

/* ------------------------------------------------------------- memory */

static rct_status_t rct_ucx_mem_map(struct rct_be_ctx *ctx, void *addr, size_t len, unsigned access,
				    struct rct_be_mem **mem_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_mem_map_params_t mp = {
		.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
			      UCP_MEM_MAP_PARAM_FIELD_FLAGS,
		.address = addr,
		.length = len,
		/* A target UCX allocates can be mapped by the peer: real one-sided
		 * stores on one host.  Into plain memory, put is only emulated. */
		.flags = addr ? 0 : UCP_MEM_MAP_ALLOCATE,
	};
	ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS |
					     UCP_MEM_ATTR_FIELD_LENGTH};
	struct rct_ucx_mem *m;
	ucs_status_t st;

	m = calloc(1, sizeof(*m));
	if (!m)
		return RCT_ERR_NO_MEMORY;
	st = ucp_mem_map(u->context, &mp, &m->memh);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_mem_map of %zu bytes%s: %s", len, addr ? "" : " (allocate)",
			  ucs_status_string(st));
		free(m);
		return rct_ucx_status(st);
	}
	st = ucp_mem_query(m->memh, &attr);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_mem_query: %s", ucs_status_string(st));
		ucp_mem_unmap(u->context, m->memh);
		free(m);
		return rct_ucx_status(st);
	}
	if (!addr && madvise(attr.address, len, MADV_POPULATE_WRITE))
		memset(attr.address, 0, len); /* pre-fault the colo cache */
	m->super.addr = attr.address;
	m->super.len = len;
	m->access = access;
	*mem_p = &m->super;
	return RCT_OK;
}

static void rct_ucx_mem_unmap(struct rct_be_ctx *ctx, struct rct_be_mem *mem)
{
	struct rct_ucx_mem *m = rct_container_of(mem, struct rct_ucx_mem, super);
	ucs_status_t st = ucp_mem_unmap(rct_ucx(ctx)->context, m->memh);

	if (st != UCS_OK)
		rct_warn("ucx: ucp_mem_unmap: %s", ucs_status_string(st));
	free(m);
}

static rct_status_t rct_ucx_mem_pack(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf,
				     size_t cap, size_t *len_p)
{
	struct rct_ucx_mem *m = rct_container_of(mem, struct rct_ucx_mem, super);
	struct rct_ucx_wire_key w;
	void *rkey_buf;
	size_t rkey_len;
	ucs_status_t st;

	if (!(m->access & RCT_MEM_REMOTE_WRITE))
		return RCT_ERR_INVALID_PARAM;
	st = ucp_rkey_pack(rct_ucx(ctx)->context, m->memh, &rkey_buf, &rkey_len);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_rkey_pack: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	if (sizeof(w) + rkey_len > cap) {
		rct_error("ucx: packed key of %zu bytes exceeds %zu", rkey_len, cap - sizeof(w));
		ucp_rkey_buffer_release(rkey_buf);
		return RCT_ERR_NO_SPACE;
	}
	w.raddr = htole64((uintptr_t)mem->addr);
	w.size = htole64(mem->len);
	memcpy(buf, &w, sizeof(w));
	memcpy((char *)buf + sizeof(w), rkey_buf, rkey_len);
	ucp_rkey_buffer_release(rkey_buf);
	*len_p = sizeof(w) + rkey_len;
	return RCT_OK;
}

static void rct_ucx_rkey_destroy(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey)
{
	struct rct_ucx_rkey *k = rct_ucx_rkey(rkey);

	/* ucp_rkey_destroy unmaps k->lptr: no copier may still store there. */
	if (k->lptr)
		rct_ucx_copiers_quiesce(rct_ucx(ctx));
	for (unsigned i = 0; i < k->n; i++)
		ucp_rkey_destroy(k->rkeys[i]);
	free(k);
}

static rct_status_t rct_ucx_rkey_unpack(struct rct_be_ctx *ctx, const void *buf, size_t len,
					struct rct_be_rkey **rkey_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	struct rct_ucx_wire_key w;
	struct rct_ucx_rkey *k;
	void *ptr, *prev = NULL;
	ucs_status_t st;

	if (len <= sizeof(w) || !u->nlanes) {
		rct_error("ucx: remote key of %zu bytes (or no data lanes)", len);
		return RCT_ERR_PROTO;
	}
	memcpy(&w, buf, sizeof(w));
	k = calloc(1, sizeof(*k) + u->nlanes * sizeof(ucp_rkey_h));
	if (!k)
		return RCT_ERR_NO_MEMORY;
	k->raddr = le64toh(w.raddr);
	k->super.size = le64toh(w.size);
	if (k->raddr + k->super.size < k->raddr) {
		free(k);
		rct_error("ucx: remote key: address + size wraps around");
		return RCT_ERR_PROTO;
	}
	for (unsigned i = 0; i < u->nlanes; i++) {
		st = ucp_ep_rkey_unpack(u->lanes[i], (const char *)buf + sizeof(w), &k->rkeys[i]);
		if (st != UCS_OK) {
			rct_error("ucx: lane %u: ucp_ep_rkey_unpack: %s", i + 1,
				  ucs_status_string(st));
			rct_ucx_rkey_destroy(ctx, &k->super);
			return rct_ucx_status(st);
		}
		k->n = i + 1;
	}
	/* Where the target is mapped into this process (shared memory), fault the
	 * mapping in now: first-touch faults (~2 us a page here) would otherwise
	 * be paid by the puts.  Each lane's rkey may attach a mapping of its own. */
	for (unsigned i = 0; i < k->n; i++) {
		st = ucp_rkey_ptr(k->rkeys[i], k->raddr, &ptr);
		if (st != UCS_OK) {
			rct_info("ucx: lane %u: remote memory of %llu bytes not mapped here (%s): "
				 "puts go through the transport",
				 i + 1, (unsigned long long)k->super.size, ucs_status_string(st));
			continue;
		}
		if (!k->lptr)
			k->lptr = ptr;
		if (i && ptr == prev)
			continue;
		prev = ptr;
		if (madvise(ptr, k->super.size, MADV_POPULATE_WRITE))
			rct_warn(
				"ucx: lane %u: pre-faulting %llu bytes of mapped remote memory: %m",
				i + 1, (unsigned long long)k->super.size);
		else
			rct_debug("ucx: lane %u: remote memory mapped at %p, pre-faulted", i + 1,
				  ptr);
	}
	*rkey_p = &k->super;
	return RCT_OK;
}

/* ------------------------------------------------------------- data path */

static void rct_ucx_op_done(void *req, ucs_status_t st, void *arg)
{
	struct rct_ucx_ctx *u = arg;

	u->pending--;
	if (st != UCS_OK) {
		rct_error("ucx: put or flush failed: %s", ucs_status_string(st));
		rct_be_fail(&u->super, rct_ucx_status(st));
	}
	ucp_request_free(req);
}

/* Account for the result of a non-blocking RMA call. */
static rct_status_t rct_ucx_track(struct rct_ucx_ctx *u, void *req, unsigned lane, const char *what)
{
	if (req == NULL)
		return RCT_OK;
	if (UCS_PTR_IS_ERR(req)) {
		rct_error("ucx: lane %u: %s: %s", lane, what,
			  ucs_status_string(UCS_PTR_STATUS(req)));
		return rct_be_fail(&u->super, rct_ucx_status(UCS_PTR_STATUS(req)));
	}
	u->pending++;
	return RCT_OK;
}

static rct_status_t rct_ucx_post_job(struct rct_ucx_ctx *u, struct rct_ucx_copier *c,
				     struct rct_be_mem *mem, struct rct_ucx_rkey *k,
				     const struct rct_run *runs, size_t n)
{
	struct rct_ucx_job *job = malloc(sizeof(*job) + n * sizeof(*runs));

	if (!job)
		return RCT_ERR_NO_MEMORY;
	job->next = NULL;
	job->src = mem->addr;
	job->dst = k->lptr;
	job->n = n;
	memcpy(job->runs, runs, n * sizeof(*runs));
	u->jobs_posted++;
	pthread_mutex_lock(&c->lock);
	if (c->tail)
		c->tail->next = job;
	else
		c->head = job;
	c->tail = job;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return RCT_OK;
}

/*
 * Wait for one of the RCT_UCX_INFLIGHT request slots.  A peer that stops
 * taking data (a cut link UCX has not noticed yet) would otherwise hold the
 * caller here until UCX itself gives up: the session's heartbeats go out
 * meanwhile (keepalive), its liveness channel's verdict or else the session
 * timeout ends the wait, and the wait sleeps on the worker's fd rather than
 * spinning.
 */
static rct_status_t rct_ucx_put_room(struct rct_ucx_ctx *u, unsigned lane)
{
	uint64_t deadline = rct_now_ns() + (uint64_t)u->super.params.timeout_ms * 1000000;

	while (u->pending >= RCT_UCX_INFLIGHT && u->super.failed == RCT_OK) {
		if (rct_now_ns() >= deadline) {
			rct_error("ucx: lane %u: %zu puts in flight and none completed for %d ms: "
				  "the secondary takes no data",
				  lane, u->pending, u->super.params.timeout_ms);
			return rct_be_fail(&u->super, RCT_ERR_PEER_LOST);
		}
		if (u->super.params.keepalive) {
			rct_status_t status = u->super.params.keepalive(
				u->super.params.keepalive_arg);

			if (status != RCT_OK) {
				rct_error("ucx: lane %u: %zu puts in flight when the session lost "
					  "the peer: %s",
					  lane, u->pending, rct_status_str(status));
				return rct_be_fail(&u->super, status);
			}
		}
		rct_ucx_wait(u, 1);
	}
	return u->super.failed;
}

static rct_status_t rct_ucx_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
				struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	struct rct_ucx_mem *m = rct_container_of(mem, struct rct_ucx_mem, super);
	struct rct_ucx_rkey *k = rct_ucx_rkey(rkey);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FIELD_MEMH,
		.cb.send = rct_ucx_op_done,
		.user_data = u,
		.memh = m->memh,
	};
	rct_status_t status;

	if (u->super.failed != RCT_OK)
		return u->super.failed;
	if (lane >= u->nlanes)
		return RCT_ERR_INVALID_PARAM;
	status = rct_runs_check(runs, n, mem->len, k->super.size, "ucx", lane + 1);
	if (status != RCT_OK)
		return status;
	/*
	 * The caller and the copier threads share the lanes evenly: lane l is
	 * stored by thread l % (copiers + 1), 0 being the caller.  (The core
	 * balances bytes across lanes, so each thread gets an equal share; with
	 * 4 lanes and one copier, "lanes 1..3 to the copier" gave it 3/4 of the
	 * bytes and left the caller waiting.)
	 */
	if (k->lptr && u->ncopiers && lane % (u->ncopiers + 1))
		return rct_ucx_post_job(u, &u->copiers[lane % (u->ncopiers + 1) - 1], mem, k, runs,
					n);
	for (size_t i = 0; i < n; i++) {
		const struct rct_run *r = &runs[i];

		/*
		 * The target is mapped here (shared memory, ucp_rkey_ptr): store into
		 * it directly.  This is what UCX's put does on that transport, minus
		 * ~1 us of per-call overhead that dominates 4 KiB puts.
		 */
		if (k->lptr) {
			memcpy((char *)k->lptr + r->roff, (char *)mem->addr + r->loff, r->len);
			continue;
		}
		/* Bound the requests in flight: each holds UCX resources. */
		status = rct_ucx_put_room(u, lane + 1);
		if (status != RCT_OK)
			return status;
		status = rct_ucx_track(u,
				       ucp_put_nbx(u->lanes[lane], (char *)mem->addr + r->loff,
						   r->len, k->raddr + r->roff, k->rkeys[lane], &p),
				       lane + 1, "ucp_put_nbx");
		if (status != RCT_OK)
			return status;
	}
	return u->super.failed;
}

static rct_status_t rct_ucx_fence(struct rct_be_ctx *ctx, uint64_t token)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
		.cb.send = rct_ucx_op_done,
		.user_data = u,
	};
	rct_status_t status = u->super.failed;

	(void)token;
	/* Direct stores into a mapped target: ordered before what follows. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	/* A flush completes when every put before it is complete at the target. */
	for (unsigned i = 0; i < u->nlanes && status == RCT_OK; i++)
		status = rct_ucx_track(u, ucp_ep_flush_nbx(u->lanes[i], &p), i + 1,
				       "ucp_ep_flush_nbx");
	return status;
}

static size_t rct_ucx_pending(struct rct_be_ctx *ctx)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);

	return u->pending + rct_ucx_jobs_pending(u);
}

static uint64_t rct_ucx_fenced(struct rct_be_ctx *ctx)
{
	(void)ctx;
	return UINT64_MAX; /* flushed puts are placed: the sender's flush says so */
}

/* ------------------------------------------------------------- control lane */

/* A control message in flight: it must outlive the call if UCX queues it. */
struct rct_ucx_send {
	struct rct_ucx_ctx *u;
	uint8_t data[];
};

static void rct_ucx_send_done(void *req, ucs_status_t st, void *arg)
{
	struct rct_ucx_send *s = arg;

	s->u->sends--;
	if (st != UCS_OK) {
		rct_error("ucx: control send failed: %s", ucs_status_string(st));
		rct_be_fail(&s->u->super, rct_ucx_status(st));
	}
	free(s);
	ucp_request_free(req);
}

static rct_status_t rct_ucx_ctrl_send(struct rct_be_ctx *ctx, const void *buf, size_t len)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
		.cb.send = rct_ucx_send_done,
	};
	struct rct_ucx_send *s;
	void *req;

	if (u->super.failed != RCT_OK)
		return u->super.failed;
	if (!u->ctrl_ep)
		return RCT_ERR_STATE;
	s = malloc(sizeof(*s) + len);
	if (!s)
		return RCT_ERR_NO_MEMORY;
	s->u = u;
	memcpy(s->data, buf, len);
	p.user_data = s;
	req = ucp_tag_send_nbx(u->ctrl_ep, s->data, len, rct_ucx_tag(u, RCT_UCX_TAG_CTRL), &p);
	if (req == NULL) {
		free(s);
		return RCT_OK;
	}
	if (UCS_PTR_IS_ERR(req)) {
		free(s);
		rct_error("ucx: control send: %s", ucs_status_string(UCS_PTR_STATUS(req)));
		return rct_be_fail(&u->super, rct_ucx_status(UCS_PTR_STATUS(req)));
	}
	u->sends++;
	return RCT_OK;
}

static void rct_ucx_recv_done(void *req, ucs_status_t st, const ucp_tag_recv_info_t *info,
			      void *arg)
{
	struct rct_ucx_ctx *u = arg;

	(void)req;
	u->rx_done = true;
	u->rx_status = st;
	u->rx_len = st == UCS_OK ? info->length : 0;
}

static rct_status_t rct_ucx_ctrl_recv(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FLAG_NO_IMM_CMPL,
		.cb.recv = rct_ucx_recv_done,
		.user_data = u,
	};

	if (!u->ctrl_ep)
		return RCT_ERR_STATE;
	if (u->rx_handed) { /* the previous message was consumed: receive the next */
		ucp_request_free(u->rx_req);
		u->rx_req = NULL;
		u->rx_handed = false;
		u->rx_done = false;
	}
	if (!u->rx_req) {
		u->rx_req = ucp_tag_recv_nbx(u->worker, u->rx_buf, u->super.params.ctrl_max,
					     rct_ucx_tag(u, RCT_UCX_TAG_CTRL), RCT_UCX_TAG_MASK,
					     &p);
		if (UCS_PTR_IS_ERR(u->rx_req)) {
			ucs_status_t st = UCS_PTR_STATUS(u->rx_req);

			u->rx_req = NULL;
			rct_error("ucx: control receive: %s", ucs_status_string(st));
			return rct_be_fail(&u->super, rct_ucx_status(st));
		}
		rct_ucx_drain(u);
	}
	if (!u->rx_done)
		return u->super.failed != RCT_OK ? u->super.failed : RCT_ERR_AGAIN;
	if (u->rx_status != UCS_OK) {
		rct_error("ucx: control receive: %s", ucs_status_string(u->rx_status));
		return rct_be_fail(&u->super, rct_ucx_status(u->rx_status));
	}
	u->rx_handed = true;
	*buf_p = u->rx_buf;
	*len_p = u->rx_len;
	return RCT_OK;
}

static rct_status_t rct_ucx_progress(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);

	if (u->super.failed != RCT_OK)
		return u->super.failed;
	rct_ucx_wait(u, timeout_ms);
	return u->super.failed;
}

const struct rct_backend_ops rct_ucx_ops = {
	.name = "ucx",
	.ctx_create = rct_ucx_ctx_create,
	.ctx_destroy = rct_ucx_ctx_destroy,
	.listen = rct_ucx_listen,
	.accept = rct_ucx_accept,
	.reject = rct_ucx_reject,
	.connect = rct_ucx_connect,
	.open_lanes = rct_ucx_open_lanes,
	.disconnect = rct_ucx_disconnect,
	.mem_map = rct_ucx_mem_map,
	.mem_unmap = rct_ucx_mem_unmap,
	.mem_pack = rct_ucx_mem_pack,
	.rkey_unpack = rct_ucx_rkey_unpack,
	.rkey_destroy = rct_ucx_rkey_destroy,
	.put = rct_ucx_put,
	.fence = rct_ucx_fence,
	.pending = rct_ucx_pending,
	.fenced = rct_ucx_fenced,
	.ctrl_send = rct_ucx_ctrl_send,
	.ctrl_recv = rct_ucx_ctrl_recv,
	.progress = rct_ucx_progress,
};
