/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One client connection: read a request, validate it whole, act, reply; on a
 * secondary, drive the session between requests and forward its events.
 *
 * Two kinds of failure are kept apart.  A request that is well formed but
 * cannot be done now (wrong state, unknown region, transport error) gets an
 * error reply and the connection goes on.  A request that breaks the
 * protocol (bad header, wrong size, missing descriptors, unterminated string,
 * unknown type) gets an error reply naming what was wrong and the connection
 * is closed; the session it owned is destroyed.  Either way the daemon and
 * every other connection keep running.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "guard.h"

int reply_fail(struct reply *r, int err, rct_status_t detail, const char *fmt, ...)
{
	va_list ap;

	r->status = err;
	r->detail = detail;
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
	return err;
}

int reply_rct(struct reply *r, rct_status_t st, const char *op)
{
	if (st == RCT_OK)
		return 0;
	return reply_fail(r, ipc_errno_of(st), st, "%s: %s", op, rct_status_str(st));
}

void conn_set_state(struct rctd_conn *c, enum rctd_sess_state s)
{
	pthread_mutex_lock(&c->d->lock);
	c->state = s;
	pthread_mutex_unlock(&c->d->lock);
}

static int conn_send_event(struct rctd_conn *c, const struct rct_event *ev)
{
	struct ipc_msg m = {.type = RCT_IPC_EVENT, .flags = RCT_IPC_FLAG_EVENT};
	union ipc_body b = {.event = *ev};
	uint8_t w[sizeof(struct rct_ipc_event)];
	int len = ipc_encode(RCT_IPC_EVENT, IPC_REQUEST, &b, w, sizeof(w));

	return len < 0 ? len : ipc_send(c->fd, &m, w, (size_t)len);
}

/*
 * rctd is stopping: its client hears so before the connection closes, never
 * waiting on it (a client that does not read loses the notice, not rctd's
 * bound on stopping).
 */
static void conn_tell_stopping(struct rctd_conn *c)
{
	const struct rct_event ev = {.type = RCT_EVENT_RCTD_STOPPING,
				     .status = RCT_ERR_ABORTED,
				     .epoch = UINT64_MAX,
				     .discarded = UINT64_MAX};
	int fl = fcntl(c->fd, F_GETFL);

	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0 || conn_send_event(c, &ev))
		rctd_info("client %" PRIu64 " (pid %d): could not be told that rctd is stopping",
			  c->id, (int)c->pid);
}

/* Forward the session's pending events to the client. */
static int conn_drain_events(struct rctd_conn *c)
{
	struct rct_event ev = {0};
	int rc;

	while (c->sess && rct_session_event_next(c->sess, &ev) == RCT_OK) {
		if (ev.type == RCT_EVENT_CKPT_READY) {
			pthread_mutex_lock(&c->d->lock);
			c->ready_pending = true;
			c->ready_epoch = ev.epoch;
			pthread_mutex_unlock(&c->d->lock);
		} else if (ev.type == RCT_EVENT_PEER_LOST) {
			bool closed = rct_session_peer_closed(c->sess);

			pthread_mutex_lock(&c->d->lock);
			c->lost_epoch = ev.epoch;
			c->lost_status = ev.status;
			c->peer_closed = closed;
			pthread_mutex_unlock(&c->d->lock);
			/* A peer that said GOODBYE stopped on purpose, and so did a
			 * session stopped here: not a warning. */
			if (c->stopped_by)
				rctd_info("session %s: stopped on this host (%s); last image: "
					  "epoch %" PRId64 "%s",
					  c->name,
					  c->stopped_by == 1 + RCT_GOODBYE_FAILOVER ? "failover"
					  : c->stopped_by == 1 + RCT_GOODBYE_DEMOTE ? "demote"
										    : "abort",
					  (int64_t)ev.epoch,
					  ev.epoch == UINT64_MAX ? " (none: not in sync)" : "");
			else if (closed)
				rctd_info("session %s: the %s closed the session; last image: "
					  "epoch %" PRId64 "%s",
					  c->name,
					  c->role == RCT_ROLE_SECONDARY ? "primary" : "secondary",
					  (int64_t)ev.epoch,
					  ev.epoch == UINT64_MAX ? " (none: not in sync)" : "");
			else if (c->role == RCT_ROLE_SECONDARY)
				rctd_warn("session %s: primary lost (%s); failover image: "
					  "epoch %" PRId64 "%s",
					  c->name, rct_status_str(ev.status), (int64_t)ev.epoch,
					  ev.epoch == UINT64_MAX ? " (none: not in sync)" : "");
			else
				rctd_warn("session %s: secondary lost (%s); the guest runs "
					  "unprotected until a secondary joins",
					  c->name, rct_status_str(ev.status));
			conn_set_state(c, RCTD_SESS_FAILED);
		}
		rc = conn_send_event(c, &ev);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Local stalls, as the liveness channel measured them: this process did not
 * run (stopped, starved of CPU, waiting on memory), or this session was not
 * driven (its thread was held by a client request or a long operation).  Both
 * are reported as what they are, never as the peer's loss.
 */
static void conn_watch_stalls(struct rctd_conn *c)
{
	struct rct_liveness_stats ls = {0};
	const struct rct_liveness_stats *old = &c->live;

	if (!c->sess || rct_session_liveness(c->sess, &ls) != RCT_OK)
		return;
	if (ls.local_stalls > old->local_stalls)
		rctd_warn("rctd stalled %" PRIu64
			  " ms: session %s: the process did not run (stopped, "
			  "starved of CPU or waiting on memory); heartbeats went out that much "
			  "late and the peer's silence meanwhile was not counted",
			  ls.local_stall_last_ns / 1000000, c->name);
	if (ls.session_gaps > old->session_gaps)
		rctd_warn("rctd stalled %" PRIu64 " ms: session %s was not driven (its thread was "
			  "busy with a client request or a long operation); the liveness thread "
			  "kept the peer informed",
			  ls.session_gap_last_ns / 1000000, c->name);
	if (ls.local_stalls == old->local_stalls && ls.session_gaps == old->session_gaps &&
	    ls.beats_received == old->beats_received)
		return;
	pthread_mutex_lock(&c->d->lock);
	c->live = ls;
	c->m.stalls_process = ls.local_stalls;
	c->m.stalls_session = ls.session_gaps;
	c->m.stall_max_ns_process = ls.local_stall_max_ns;
	c->m.stall_max_ns_session = ls.session_gap_max_ns;
	pthread_mutex_unlock(&c->d->lock);
}

/* A fatal transport status fails the session (the client learns it from the reply). */
void conn_check_fatal(struct rctd_conn *c, rct_status_t st)
{
	if (rct_status_is_fatal(st) && c->state != RCTD_SESS_FAILED) {
		/* A lost peer is reported with its PEER_LOST event. */
		if (st != RCT_ERR_PEER_LOST)
			rctd_warn("session %s failed: %s", c->name, rct_status_str(st));
		conn_set_state(c, RCTD_SESS_FAILED);
	}
}

/* ----------------------------------------------------------------- dispatch */

#define ST(s)	    (1u << RCTD_SESS_##s)
#define ANY_SESSION (ST(OPEN) | ST(LISTENING) | ST(CONNECTED) | ST(FAILED))

/*
 * What each request needs before its handler runs.  @states: the session
 * states it is allowed in (0: the handler decides, no session needed);
 * @role: the session's role (0: either); @when: what a request in another
 * state is told.  The payload's size and descriptors are the codec's table.
 */
struct conn_op {
	conn_handler_fn *fn;
	unsigned states;
	enum rct_role role;
	const char *when;
};

static const struct conn_op conn_ops[RCT_IPC_TYPE_MAX + 1] = {
	[RCT_IPC_HELLO] = {h_hello},
	[RCT_IPC_SESSION_OPEN] = {h_session_open},
	[RCT_IPC_SESSION_CLOSE] = {h_session_close, ANY_SESSION},
	[RCT_IPC_SESSION_PAIRING] = {h_pairing, ST(OPEN), 0,
				     "SESSION_PAIRING comes after SESSION_OPEN and before LISTEN "
				     "or CONNECT"},
	[RCT_IPC_REGION_ADD] = {h_region_add, ST(OPEN) | ST(LISTENING), 0,
				"regions are added before the session connects"},
	[RCT_IPC_REGION_REMOVE] = {h_region_remove, ST(OPEN) | ST(LISTENING), 0,
				   "regions of a connected session stay until it closes"},
	[RCT_IPC_LISTEN] = {h_listen, ST(OPEN), RCT_ROLE_SECONDARY},
	[RCT_IPC_ACCEPT] = {h_accept, ST(LISTENING), RCT_ROLE_SECONDARY},
	[RCT_IPC_CONNECT] = {h_connect, ST(OPEN), RCT_ROLE_PRIMARY},
	[RCT_IPC_CKPT_BEGIN] = {h_begin, ST(CONNECTED), RCT_ROLE_PRIMARY},
	[RCT_IPC_CKPT_DIRTY] = {h_dirty, ST(CONNECTED), RCT_ROLE_PRIMARY},
	[RCT_IPC_CKPT_STREAM] = {h_dirty, ST(CONNECTED), RCT_ROLE_PRIMARY},
	[RCT_IPC_CKPT_DEVSTATE] = {h_devstate, ST(CONNECTED), RCT_ROLE_PRIMARY},
	[RCT_IPC_CKPT_COMMIT] = {h_commit, ST(CONNECTED), RCT_ROLE_PRIMARY},
	/* A secondary's flush and device state stay available after its primary
	 * is lost: the committed checkpoint is the image a failover resumes from. */
	[RCT_IPC_CKPT_FLUSH] = {h_flush, ST(CONNECTED) | ST(FAILED), RCT_ROLE_SECONDARY},
	[RCT_IPC_DEVSTATE_GET] = {h_devstate_get, ST(CONNECTED) | ST(FAILED), RCT_ROLE_SECONDARY},
	[RCT_IPC_CKPT_REFUSE] = {h_refuse, ST(CONNECTED) | ST(FAILED), RCT_ROLE_SECONDARY},
	[RCT_IPC_STATUS] = {h_query},
	[RCT_IPC_SESSIONS] = {h_query},
	[RCT_IPC_STATS] = {h_query},
	[RCT_IPC_PAIRING_CTL] = {h_pairing_ctl},
};

static const char *role_str(enum rct_role role)
{
	return role == RCT_ROLE_PRIMARY ? "primary" : "secondary";
}

/* Whether the session is in a state (and role) @op allows; the reply says why not. */
static int conn_gate(struct rctd_conn *c, const struct conn_op *op, unsigned type, struct reply *r)
{
	bool allowed = !op->states || (op->states & (1u << c->state));

	if (!allowed && c->state == RCTD_SESS_NONE)
		return reply_fail(r, -ENOENT, RCT_ERR_STATE, "no session on this connection");
	if (op->role && c->state != RCTD_SESS_NONE && c->role != op->role)
		return reply_fail(r, -EBUSY, RCT_ERR_STATE, "only a %s session can do %s",
				  role_str(op->role), ipc_type_str(type));
	if (allowed)
		return 0;
	if (c->state == RCTD_SESS_FAILED)
		return reply_fail(r, -ECONNRESET, RCT_ERR_PEER_LOST,
				  "session %s has failed; close it", c->name);
	return reply_fail(r, -EBUSY, RCT_ERR_STATE, "session %s is %s: %s", c->name,
			  rctd_sess_state_str(c->state),
			  op->when			? op->when
			  : op->states == ST(OPEN)	? "this comes before LISTEN or CONNECT"
			  : op->states == ST(LISTENING) ? "this comes after LISTEN"
							: "this needs a connected session");
}

/* Decode, gate and handle one request; the reply's payload is encoded into c->buf. */
static void conn_handle(struct rctd_conn *c, struct ipc_msg *m, struct reply *r,
			union ipc_body *out)
{
	const struct conn_op *op = m->type <= RCT_IPC_TYPE_MAX ? &conn_ops[m->type] : NULL;
	union ipc_body in;
	char what[sizeof(r->what)];

	if (m->flags) {
		reply_bad(r, "%s: a request carries no flags (0x%x)", ipc_type_str(m->type),
			  m->flags);
		return;
	}
	if (!c->allowed) {
		r->fatal = true;
		reply_fail(r, -EACCES, RCT_OK, "uid %u gid %u is not allowed", (unsigned)c->uid,
			   (unsigned)c->gid);
		return;
	}
	if (!c->hello && m->type != RCT_IPC_HELLO) {
		reply_bad(r, "%s before HELLO", ipc_type_str(m->type));
		return;
	}
	if (!op || !op->fn) {
		reply_bad(r, "unknown message type %u", m->type);
		return;
	}
	if (ipc_decode(m->type, IPC_REQUEST, c->buf, m->length, m->nfds, &in, what, sizeof(what))) {
		reply_bad(r, "%s", what);
		return;
	}
	if (!conn_gate(c, op, m->type, r))
		op->fn(c, m, &in, out, r);
	/* A pairing key goes no further than its handler. */
	explicit_bzero(&in, sizeof(in));
	if (m->type == RCT_IPC_SESSION_PAIRING)
		explicit_bzero(c->buf, m->length);
}

/* Handle one request.  Returns 0 to go on, -1 to close the connection. */
static int conn_request(struct rctd_conn *c, struct ipc_msg *m)
{
	struct reply r = {0};
	union ipc_body out;
	struct ipc_msg rm = {
		.type = m->type, .flags = RCT_IPC_FLAG_REPLY, .request_id = m->request_id};
	const void *data = NULL;
	size_t len = 0;
	int rc;

	memset(&out, 0, sizeof(out));
	conn_handle(c, m, &r, &out);
	ipc_msg_close_fds(m);
	if (!r.status && r.has_body) {
		rc = ipc_encode(m->type, IPC_REPLY, &out, c->buf, RCT_IPC_MAX_PAYLOAD);
		if (rc < 0)
			reply_fail(&r, rc, RCT_ERR_SYSTEM, "%s: encoding the reply: %s",
				   ipc_type_str(m->type), strerror(-rc));
		else
			data = c->buf, len = (size_t)rc;
	}
	if (r.status) {
		rctd_log(r.fatal ? RCTD_LOG_WARN : RCTD_LOG_INFO,
			 "client %" PRIu64 " (pid %d) %s: %s%s", c->id, (int)c->pid,
			 ipc_type_str(m->type), r.what, r.fatal ? "; disconnecting" : "");
		/* The error text is the reply's payload, for the client to show. */
		data = r.what;
		len = strlen(r.what);
	}
	rm.status = r.status;
	rm.detail = r.detail;
	rc = ipc_send(c->fd, &rm, data, len);
	free(r.text);
	if (rc || r.fatal)
		return -1;
	return conn_drain_events(c) ? -1 : 0;
}

/* A message the codec rejected: answer what can be answered, then close. */
/* Answer request @m with status @rc and text @what; ipc_send()'s status. */
static int conn_answer_error(struct rctd_conn *c, const struct ipc_msg *m, int rc, const char *what)
{
	struct ipc_msg rm = {.type = m->type,
			     .flags = RCT_IPC_FLAG_REPLY,
			     .request_id = m->request_id,
			     .status = rc};

	return ipc_send(c->fd, &rm, what, strlen(what));
}

static void conn_reject(struct rctd_conn *c, const struct ipc_msg *m, int rc, const char *what)
{
	rctd_warn("client %" PRIu64 " (pid %d): %s; disconnecting", c->id, (int)c->pid,
		  what[0] ? what : strerror(-rc));
	if (rc != -ESHUTDOWN && rc != -ECONNRESET && rc != -EPIPE)
		conn_answer_error(c, m, rc, what);
}

static void conn_cleanup(struct rctd_conn *c)
{
	if (c->sess && c->state != RCTD_SESS_NONE)
		rctd_info("session %s: client %" PRIu64 " gone; closing the session", c->name,
			  c->id);
	conn_session_close(c);
	free(c->buf);
	free(c->devbuf);
	conn_uncharge(c, c->devcap, 0);
	c->buf = NULL;
	c->devbuf = NULL;
	c->devcap = 0;
	close(c->fd);
	pthread_mutex_lock(&c->d->lock);
	c->fd = -1;
	close(c->wake_fd);
	c->wake_fd = -1;
	if (c->stop_req) { /* the session is gone: that stop is served */
		c->stop_req = false;
		pthread_cond_broadcast(&c->d->cond);
	}
	c->finished = true;
	pthread_mutex_unlock(&c->d->lock);
}

/*
 * A stop another connection asked for (PAIRING_CTL): end the session on
 * purpose, tell the client (its PEER_LOST event), and say it is done.
 */
static int conn_serve_stop(struct rctd_conn *c)
{
	uint64_t n;
	uint32_t reason;
	bool req;
	int rc = 0;

	if (read(c->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		rctd_warn("client %" PRIu64 ": reading its wake-up: %s", c->id, strerror(errno));
	pthread_mutex_lock(&c->d->lock);
	req = c->stop_req;
	reason = c->stop_reason;
	pthread_mutex_unlock(&c->d->lock);
	if (!req)
		return 0;
	if (c->sess && c->state != RCTD_SESS_NONE && c->state != RCTD_SESS_FAILED) {
		rct_session_abort(c->sess, reason);
		pthread_mutex_lock(&c->d->lock);
		c->stopped_by = 1 + reason;
		pthread_mutex_unlock(&c->d->lock);
		rc = conn_drain_events(c);
		conn_set_state(c, RCTD_SESS_FAILED);
	}
	pthread_mutex_lock(&c->d->lock);
	c->stop_req = false;
	pthread_cond_broadcast(&c->d->cond);
	pthread_mutex_unlock(&c->d->lock);
	return rc;
}

/* What the connection thread runs under the SIGBUS guard (guard.c). */
struct conn_step {
	struct rctd_conn *c;
	struct ipc_msg *m; /* a request, or NULL: drive the session */
	bool slices;
};

static int conn_step_run(void *arg)
{
	struct conn_step *st = arg;
	struct rctd_conn *c = st->c;

	if (st->m)
		return conn_request(c, st->m);
	conn_check_fatal(c, rct_session_progress(c->sess, st->slices ? 5 : 0));
	conn_watch_stalls(c);
	return conn_drain_events(c);
}

/* A step under the guard; a SIGBUS in it ends the session and the connection. */
static int conn_step(struct rctd_conn *c, struct ipc_msg *m, bool slices)
{
	struct conn_step st = {.c = c, .m = m, .slices = slices};
	void *addr = NULL;
	int rc = rctd_guarded(conn_step_run, &st, &addr);

	if (rc != RCTD_GUARD_TRIPPED)
		return rc;
	for (unsigned i = 0; i < c->nregions; i++) {
		const struct rctd_region *g = &c->regions[i];

		if ((uint8_t *)addr >= (uint8_t *)g->ram &&
		    (uint8_t *)addr < (uint8_t *)g->ram + g->size)
			rctd_warn(
				"session %s: region %u%s%s%s: its guest RAM file shrank under rctd "
				"(SIGBUS at offset %zu); ending the session and the connection",
				c->name, g->id, g->name[0] ? " (" : "", g->name,
				g->name[0] ? ")" : "",
				(size_t)((uint8_t *)addr - (uint8_t *)g->ram));
	}
	rctd_warn("session %s: SIGBUS at %p while %s; client %" PRIu64 " disconnected", c->name,
		  addr, m ? ipc_type_str(m->type) : "driving the session", c->id);
	if (m)
		ipc_msg_close_fds(m);
	return -1;
}

void *rctd_conn_main(void *arg)
{
	struct rctd_conn *c = arg;
	const struct rctd_cfg *cfg = &c->d->cfg;
	struct timeval tv = {cfg->msg_timeout_ms / 1000, (cfg->msg_timeout_ms % 1000) * 1000};
	char what[200];

	c->buf = malloc(RCT_IPC_MAX_PAYLOAD);
	if (!c->buf || setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		rctd_err("client %" PRIu64 ": set-up failed: %s", c->id, strerror(errno));
		conn_cleanup(c);
		return NULL;
	}
	c->t_active = rctd_now_ns();
	while (!c->d->stopping) {
		bool drive = c->state == RCTD_SESS_CONNECTED && c->sess, slices = false;
		uint64_t idle_ms = (rctd_now_ns() - c->t_active) / 1000000;
		/* A secondary between checkpoints sleeps on its client and its
		 * session's descriptor together, for as long as the keepalive allows.
		 * Any other connected session is driven at least four times per
		 * heartbeat interval, whatever the client does: the peer takes
		 * silence for loss.  Without a connected session the thread sleeps on
		 * the client. */
		int wait = !drive ? 200
			   : c->role == RCT_ROLE_SECONDARY && !c->ready_pending
				   ? -1
				   : (c->d->cfg.heartbeat_ms + 3) / 4;
		struct pollfd pfd[3] = {{.fd = c->fd, .events = POLLIN},
					{.fd = -1},
					{.fd = c->wake_fd, .events = POLLIN}};
		int n;

		if (drive) {
			int ms = -1;
			rct_status_t st = rct_session_arm(c->sess, &ms);

			if (st == RCT_OK) {
				pfd[1] = (struct pollfd){.fd = rct_session_fd(c->sess),
							 .events = POLLIN};
				if (ms >= 0 && (wait < 0 || ms < wait))
					wait = ms;
			} else if (st == RCT_ERR_UNSUPPORTED) {
				/* A backend without notifications: progress waits in
				 * slices of 5 ms between looks at the client. */
				slices = true;
				if (wait < 0)
					wait = 0;
			} else {
				/* Work now (RCT_ERR_AGAIN), or the session failed:
				 * progress says so and its events go out. */
				wait = 0;
			}
		}
		if (wait < 0) /* a look at c->d->stopping now and then */
			wait = 200;
		/* Silent connections hold a slot of RCTD_MAX_CONNS: no HELLO within
		 * the message deadline, or no session and nothing said for the idle
		 * timeout, and they go. */
		if (!c->hello && idle_ms >= (uint64_t)cfg->msg_timeout_ms) {
			rctd_warn("client %" PRIu64
				  " (pid %d): no HELLO within %d ms of connecting; "
				  "disconnecting",
				  c->id, (int)c->pid, cfg->msg_timeout_ms);
			break;
		}
		if (c->hello && c->state == RCTD_SESS_NONE &&
		    idle_ms >= (uint64_t)cfg->idle_timeout_ms) {
			rctd_info("client %" PRIu64 " (pid %d): no session and silent for %d ms; "
				  "disconnecting",
				  c->id, (int)c->pid, cfg->idle_timeout_ms);
			break;
		}
		/* A session opened and never taken further (no LISTEN, no
		 * CONNECT) holds its name, its memory and its pairing: silent
		 * for the idle timeout, it goes with its connection.  A failed
		 * one stays: its hypervisor reads its loss when it will. */
		if (c->hello && c->state == RCTD_SESS_OPEN &&
		    idle_ms >= (uint64_t)cfg->idle_timeout_ms) {
			rctd_info("session %s: opened, never listened or connected, and its client "
				  "(pid %d) silent for %d ms; closing it and disconnecting",
				  c->name, (int)c->pid, cfg->idle_timeout_ms);
			break;
		}
		if (c->state == RCTD_SESS_NONE || c->state == RCTD_SESS_OPEN) {
			uint64_t left = (uint64_t)(c->hello ? cfg->idle_timeout_ms
							    : cfg->msg_timeout_ms) -
					idle_ms + 1;

			if (left < (uint64_t)wait)
				wait = (int)left;
		}
		n = poll(pfd, 3, wait);

		if (n < 0 && errno != EINTR) {
			rctd_err("client %" PRIu64 ": poll: %s", c->id, strerror(errno));
			break;
		}
		if (n > 0 && pfd[2].revents && conn_serve_stop(c))
			break;
		if (n > 0 && pfd[0].revents) {
			struct ipc_msg m;
			int rc = ipc_recv_within(c->fd, &m, c->buf, RCT_IPC_MAX_PAYLOAD,
						 cfg->msg_timeout_ms, what, sizeof(what));

			c->t_active = rctd_now_ns();
			if (rc == -ESHUTDOWN || rc == -ECONNRESET)
				break;
			if (rc == -EMFILE) {
				/* rctd's own shortage, not the client's fault: the
				 * request was read whole, so it is answered and the
				 * connection stays. */
				snprintf(what, sizeof(what),
					 "rctd is out of descriptors (RLIMIT_NOFILE %u): the "
					 "request's descriptors were lost; nothing of it was done",
					 c->d->nofile);
				rctd_err("client %" PRIu64 " (pid %d): %s", c->id, (int)c->pid,
					 what);
				if (conn_answer_error(c, &m, -EMFILE, what))
					break;
				continue;
			}
			if (rc) {
				conn_reject(c, &m, rc, what);
				break;
			}
			if (conn_step(c, &m, false))
				break;
			/* A busy client keeps the loop here: look at the stalls too. */
			conn_watch_stalls(c);
			conn_persist(c);
			continue;
		}
		if (drive && conn_step(c, NULL, slices))
			break;
	}
	if (c->d->stopping && c->hello)
		conn_tell_stopping(c);
	conn_cleanup(c);
	return NULL;
}
