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
#include "ucx.h"

rct_status_t rct_ucx_status(ucs_status_t st)
{
	switch (st) {
	case UCS_OK:
		return RCT_OK;
	case UCS_ERR_NO_MEMORY:
	case UCS_ERR_NO_RESOURCE:
		return RCT_ERR_NO_MEMORY;
	case UCS_ERR_TIMED_OUT:
		return RCT_ERR_TIMED_OUT;
	case UCS_ERR_REJECTED: /* a listener turned the connection request away */
		return RCT_ERR_REFUSED;
	case UCS_ERR_UNREACHABLE:
	case UCS_ERR_CONNECTION_RESET:
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

void rct_ucx_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
	struct rct_ucx_ctx *u = arg;
	rct_status_t status = rct_ucx_status(st);

	/* Info only: after a GOODBYE this is the normal end; the core logs a
	 * failure when the session did not expect one.  A rejected connection
	 * request is a refusal (the secondary has its primary), not a loss. */
	rct_info("ucx: endpoint %p failed: %s", (void *)ep, ucs_status_string(st));
	rct_be_fail(&u->super,
		    status == RCT_ERR_IO || status == RCT_ERR_REFUSED ? status : RCT_ERR_PEER_LOST);
}

ucp_tag_t rct_ucx_tag(const struct rct_ucx_ctx *u, ucp_tag_t type)
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
unsigned rct_ucx_drain(struct rct_ucx_ctx *u)
{
	unsigned n, total = 0;

	while ((n = ucp_worker_progress(u->worker)))
		total += n;
	return total;
}

/* Progress, and sleep on the event fds up to @timeout_ms if nothing happened. */
void rct_ucx_wait(struct rct_ucx_ctx *u, int timeout_ms)
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

/* Wait for request @req (NULL: done already) to complete, before @deadline_ns. */
rct_status_t rct_ucx_wait_req(struct rct_ucx_ctx *u, void *req, uint64_t deadline_ns,
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

/* progress()'s wait (rct_ucx_wait()) split for the caller's event loop. */
static rct_status_t rct_ucx_arm(struct rct_be_ctx *ctx, struct pollfd *fds, unsigned cap,
				unsigned *n_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t jobs, v;
	ucs_status_t st;

	if (u->super.failed != RCT_OK)
		return u->super.failed;
	if (cap < 2)
		return RCT_ERR_NO_SPACE;
	/* The copiers' wake-ups are consumed here: progress(ctx, 0) does not. */
	while (u->wake_fd >= 0 && read(u->wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
	jobs = rct_ucx_jobs_pending(u);
	if (rct_ucx_drain(u) || u->rx_done || u->super.failed != RCT_OK)
		return u->super.failed != RCT_OK ? u->super.failed : RCT_ERR_AGAIN;
	st = ucp_worker_arm(u->worker);
	if (st == UCS_ERR_BUSY || (jobs && rct_ucx_jobs_pending(u) != jobs))
		return RCT_ERR_AGAIN;
	if (st != UCS_OK) {
		rct_warn("ucx: ucp_worker_arm: %s", ucs_status_string(st));
		return RCT_ERR_AGAIN;
	}
	fds[0] = (struct pollfd){.fd = u->efd, .events = POLLIN};
	fds[1] = (struct pollfd){.fd = u->wake_fd, .events = POLLIN};
	*n_p = u->wake_fd >= 0 ? 2 : 1;
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
	/* UCX 1.13 registers IB memory with full access whatever protection
	 * it is asked for: a read-only mapping fails with EFAULT. */
	.source_read_only = false,
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
	.arm = rct_ucx_arm,
};
