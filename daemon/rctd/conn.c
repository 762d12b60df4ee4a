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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ipc/ipc.h"
#include "rctd.h"

/* What a handler answers. */
struct reply {
	int status; /* 0 or -errno */
	rct_status_t detail;
	bool fatal;	  /* protocol violation: close after replying */
	const void *data; /* payload */
	size_t len;
	char what[200]; /* logged with the failure */
};

static int reply_fail(struct reply *r, int err, rct_status_t detail, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int reply_fail(struct reply *r, int err, rct_status_t detail, const char *fmt, ...)
{
	va_list ap;

	r->status = err;
	r->detail = detail;
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
	return err;
}

/* A protocol violation. */
#define reply_bad(r, ...) ((r)->fatal = true, reply_fail((r), -EPROTO, RCT_OK, __VA_ARGS__))

static int reply_rct(struct reply *r, rct_status_t st, const char *op)
{
	if (st == RCT_OK)
		return 0;
	return reply_fail(r, ipc_errno_of(st), st, "%s: %s", op, rct_status_str(st));
}

/* The payload must be exactly one @size struct and carry @nfds descriptors. */
static bool want(struct reply *r, const struct ipc_msg *m, size_t size, unsigned nfds)
{
	if (m->length != size) {
		reply_bad(r, "%s payload is %u bytes, expected %zu", ipc_type_str(m->type),
			  m->length, size);
		return false;
	}
	if (m->nfds != nfds) {
		reply_bad(r, "%s carries %u descriptors, expected %u", ipc_type_str(m->type),
			  m->nfds, nfds);
		return false;
	}
	return true;
}

static void conn_set_state(struct rctd_conn *c, enum rctd_sess_state s)
{
	pthread_mutex_lock(&c->d->lock);
	c->state = s;
	pthread_mutex_unlock(&c->d->lock);
}

static struct rctd_region *conn_region(struct rctd_conn *c, uint32_t id)
{
	for (unsigned i = 0; i < c->nregions; i++)
		if (c->regions[i].id == id)
			return &c->regions[i];
	return NULL;
}

static void region_unmap(struct rctd_conn *c, struct rctd_region *g)
{
	if (g->ram)
		munmap(g->ram, g->size);
	if (g->bmap)
		munmap(g->bmap, g->bmap_len);
	if (g->reserved) {
		pthread_mutex_lock(&c->d->lock);
		c->d->registered -= g->size;
		pthread_mutex_unlock(&c->d->lock);
	}
	memset(g, 0, sizeof(*g));
}

/*
 * Count @g's size against rctd's registered-memory limit, before anything is
 * mapped: what a client asks for becomes pinned guest RAM on the primary
 * (verbs) and an equal, populated colo cache on the secondary.
 */
static int region_reserve(struct rctd_conn *c, struct rctd_region *g, struct reply *r)
{
	struct rctd *d = c->d;
	uint64_t max = d->cfg.max_registered, used;

	pthread_mutex_lock(&d->lock);
	used = d->registered;
	if (g->size <= max && used <= max - g->size) {
		d->registered += g->size;
		g->reserved = true;
	}
	pthread_mutex_unlock(&d->lock);
	if (g->reserved)
		return 0;
	return reply_fail(r, -ENOMEM, RCT_ERR_NO_MEMORY,
			  "region %u: %" PRIu64
			  " MiB would bring what this rctd registers to %" PRIu64
			  " MiB, above its limit of %" PRIu64 " MiB (--max-registered)",
			  g->id, g->size >> 20, (used + g->size) >> 20, max >> 20);
}

/* The session and its regions (the session first: it may still read them). */
static void conn_session_close(struct rctd_conn *c)
{
	struct rct_session *sess;

	/* Detached under the lock: status readers look at c->sess. */
	pthread_mutex_lock(&c->d->lock);
	sess = c->sess;
	c->sess = NULL;
	c->state = RCTD_SESS_NONE;
	pthread_mutex_unlock(&c->d->lock);
	rct_session_destroy(sess);
	for (unsigned i = 0; i < c->nregions; i++)
		region_unmap(c, &c->regions[i]);
	c->nregions = 0;
	c->ready_pending = false;
}

static int conn_send_event(struct rctd_conn *c, const struct rct_event *ev)
{
	struct rct_ipc_event w = {
		.type = htole32((uint32_t)ev->type),
		.status = htole32((uint32_t)ev->status),
		.epoch = htole64(ev->epoch),
		.discarded = htole64(ev->discarded),
	};
	struct ipc_msg m = {.type = RCT_IPC_EVENT, .flags = RCT_IPC_FLAG_EVENT};

	return ipc_send(c->fd, &m, &w, sizeof(w));
}

/* Forward the session's pending events to the client. */
static int conn_drain_events(struct rctd_conn *c)
{
	struct rct_event ev;
	int rc;

	while (c->sess && rct_session_event_next(c->sess, &ev) == RCT_OK) {
		if (ev.type == RCT_EVENT_CKPT_READY) {
			c->ready_pending = true;
		} else if (ev.type == RCT_EVENT_PEER_LOST) {
			bool closed = rct_session_peer_closed(c->sess);

			pthread_mutex_lock(&c->d->lock);
			c->lost_epoch = ev.epoch;
			c->lost_status = ev.status;
			c->peer_closed = closed;
			pthread_mutex_unlock(&c->d->lock);
			/* A peer that said GOODBYE stopped on purpose: not a warning. */
			if (closed)
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
	struct rct_liveness_stats ls;
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
static void conn_check_fatal(struct rctd_conn *c, rct_status_t st)
{
	if (rct_status_is_fatal(st) && c->state != RCTD_SESS_FAILED) {
		/* A lost peer is reported with its PEER_LOST event. */
		if (st != RCT_ERR_PEER_LOST)
			rctd_warn("session %s failed: %s", c->name, rct_status_str(st));
		conn_set_state(c, RCTD_SESS_FAILED);
	}
}

/* ----------------------------------------------------------------- handlers */

static int h_hello(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		   struct rct_ipc_hello_reply *out)
{
	struct rct_ipc_hello h;
	unsigned lo, hi;

	if (!want(r, m, sizeof(h), 0))
		return r->status;
	memcpy(&h, c->buf, sizeof(h));
	lo = le16toh(h.version_min);
	hi = le16toh(h.version_max);
	if (!ipc_str_ok(h.name, sizeof(h.name)) || h.reserved)
		return reply_bad(r, "HELLO: unterminated name or reserved field set");
	if (lo > RCT_IPC_VERSION || hi < RCT_IPC_VERSION) {
		r->fatal = true;
		return reply_fail(r, -EPROTONOSUPPORT, RCT_ERR_VERSION,
				  "client speaks versions %u..%u, rctd speaks %u", lo, hi,
				  RCT_IPC_VERSION);
	}
	pthread_mutex_lock(&c->d->lock);
	memcpy(c->client, h.name, sizeof(c->client));
	pthread_mutex_unlock(&c->d->lock);
	c->hello = true;
	memset(out, 0, sizeof(*out));
	out->version = htole16(RCT_IPC_VERSION);
	out->max_payload = htole32(RCT_IPC_MAX_PAYLOAD);
	out->caps = htole64(c->d->caps);
	out->pid = htole32((uint32_t)getpid());
	r->data = out;
	r->len = sizeof(*out);
	rctd_info("client %" PRIu64 " '%s' (pid %d uid %u) connected", c->id, c->client,
		  (int)c->pid, (unsigned)c->uid);
	return 0;
}

/* Session names go into logs and metric labels: a conservative alphabet. */
static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.' || *s == ':'))
			return false;
	return true;
}

static int h_session_open(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
			  struct rct_ipc_session_open_reply *out)
{
	struct rct_ipc_session_open w;
	struct rct_session_params p = {0};
	unsigned role;
	rct_status_t st;

	if (!want(r, m, sizeof(w), 0))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	if (!ipc_str_ok(w.backend, sizeof(w.backend)) || !ipc_str_ok(w.name, sizeof(w.name)) ||
	    w.reserved)
		return reply_bad(r, "SESSION_OPEN: unterminated string or reserved field set");
	if (c->state != RCTD_SESS_NONE)
		return reply_fail(r, -EEXIST, RCT_ERR_EXISTS,
				  "this connection already has session '%s'", c->name);
	role = le16toh(w.role);
	if (role != RCT_ROLE_PRIMARY && role != RCT_ROLE_SECONDARY)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM, "role %u is neither 1 nor 2",
				  role);
	if (w.name[0] && !name_ok(w.name))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "session name '%s': use letters, digits and - _ . :", w.name);
	p.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_BACKEND |
		       RCT_SESSION_PARAM_FIELD_HEARTBEAT;
	p.heartbeat_ms = c->d->cfg.heartbeat_ms;
	if (!c->d->cfg.inband) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_LIVENESS;
		p.liveness = RCT_LIVENESS_THREAD | RCT_LIVENESS_RT;
	}
	if (c->d->has_psk) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_PSK;
		p.psk = c->d->psk;
	}
	p.role = (enum rct_role)role;
	p.backend = w.backend[0] ? w.backend : "tcp";
	if (w.lanes) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_LANES;
		p.lanes = le16toh(w.lanes);
	}
	if (w.threads) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_THREADS;
		p.threads = le16toh(w.threads);
	}
	if (w.page_size) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_PAGE_SIZE;
		p.page_size = le32toh(w.page_size);
	}
	if (w.timeout_ms) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_TIMEOUT;
		p.timeout_ms = (int)(le32toh(w.timeout_ms) > 3600000 ? 3600000
								     : le32toh(w.timeout_ms));
	}
	if (w.staging_size) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_STAGING_SIZE;
		p.staging_size = le64toh(w.staging_size);
	}
	st = rct_session_create(&p, &c->sess);
	if (st != RCT_OK)
		return reply_fail(r, ipc_errno_of(st), st, "cannot create a %s session on '%s': %s",
				  role == RCT_ROLE_PRIMARY ? "primary" : "secondary", p.backend,
				  rct_status_str(st));
	pthread_mutex_lock(&c->d->lock);
	/* Names label metrics and logs: one session per name on this daemon. */
	for (struct rctd_conn *o = c->d->conns; w.name[0] && o; o = o->next) {
		if (o != c && o->state != RCTD_SESS_NONE && !strcmp(o->name, w.name)) {
			pthread_mutex_unlock(&c->d->lock);
			rct_session_destroy(c->sess);
			c->sess = NULL;
			return reply_fail(r, -EEXIST, RCT_ERR_EXISTS,
					  "a session named '%s' exists on this rctd", w.name);
		}
	}
	c->session_id = c->id;
	c->role = p.role;
	c->page_size = p.page_size ? p.page_size : 4096;
	if (w.name[0])
		snprintf(c->name, sizeof(c->name), "%s", w.name);
	else
		snprintf(c->name, sizeof(c->name), "session-%" PRIu64, c->id);
	snprintf(c->backend, sizeof(c->backend), "%s", p.backend);
	memset(&c->m, 0, sizeof(c->m));
	memset(&c->live, 0, sizeof(c->live));
	c->paired = false;
	c->pairing[0] = '\0';
	c->generation = 0;
	c->saved_epoch = UINT64_MAX;
	c->persist_failed = false;
	c->m.last_epoch = UINT64_MAX;
	c->state = RCTD_SESS_OPEN;
	pthread_mutex_unlock(&c->d->lock);
	rctd_info("session %s: %s over %s for client %" PRIu64, c->name,
		  c->role == RCT_ROLE_PRIMARY ? "primary" : "secondary", c->backend, c->id);
	out->session_id = htole64(c->session_id);
	r->data = out;
	r->len = sizeof(*out);
	return 0;
}

/*
 * SESSION_PAIRING: the VM identity and the secret its management layer gave
 * both hypervisors, and the generation.  rctd records the generation and the
 * last committed epoch per pairing across its restarts; a client asking for
 * a generation older than the recorded one is stale.
 */
static int h_pairing(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		     struct rct_ipc_session_pairing_reply *out)
{
	struct rct_ipc_session_pairing w;
	struct rctd_pairing_state ps;
	uint32_t flags;
	uint64_t gen;
	rct_status_t st;
	int rc;

	if (!want(r, m, sizeof(w), 0))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	flags = le32toh(w.flags);
	if (!ipc_str_ok(w.id, sizeof(w.id)) || w.reserved ||
	    (flags & ~(uint32_t)(RCT_IPC_PAIRING_KEY | RCT_IPC_PAIRING_GENERATION)))
		return reply_bad(r,
				 "SESSION_PAIRING: unterminated identity, unknown flags 0x%x or "
				 "reserved field set",
				 flags);
	if (c->state != RCTD_SESS_OPEN)
		return reply_fail(r, c->state == RCTD_SESS_NONE ? -ENOENT : -EBUSY, RCT_ERR_STATE,
				  "SESSION_PAIRING comes after SESSION_OPEN and before LISTEN or "
				  "CONNECT");
	if (c->paired)
		return reply_fail(r, -EEXIST, RCT_ERR_EXISTS, "session %s is paired as %s already",
				  c->name, c->pairing);
	if (!rctd_pairing_id_ok(w.id))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "pairing identity '%.64s': 1..%d of letters, digits, - _ . : "
				  "(not starting with .)",
				  w.id, RCT_IPC_PAIRING_ID_MAX - 1);
	if (c->d->has_psk && !(flags & RCT_IPC_PAIRING_KEY))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "pairing %s: no pairing key; with a host key every client could "
				  "claim any identity (docs/security.md)",
				  w.id);
	rc = rctd_state_read(c->d, w.id, &ps);
	if (rc)
		return reply_fail(r, rc, RCT_ERR_SYSTEM, "pairing %s: reading its state in %s: %s",
				  w.id, c->d->cfg.state_dir, strerror(-rc));
	gen = flags & RCT_IPC_PAIRING_GENERATION ? le64toh(w.generation) : ps.generation;
	if (gen < ps.generation)
		return reply_fail(r, -ESTALE, RCT_ERR_MISMATCH,
				  "pairing %s is at generation %" PRIu64
				  " on this host; generation %" PRIu64 " is stale",
				  w.id, ps.generation, gen);
	st = rct_session_set_pairing(c->sess, w.id, flags & RCT_IPC_PAIRING_KEY ? w.key : NULL,
				     gen);
	explicit_bzero(&w.key, sizeof(w.key));
	if (reply_rct(r, st, "pairing"))
		return r->status;
	if (!ps.found || gen != ps.generation) {
		ps.generation = gen;
		rc = rctd_state_write(c->d, w.id, &ps, true);
		if (rc)
			return reply_fail(r, rc, RCT_ERR_SYSTEM,
					  "pairing %s: recording generation %" PRIu64 " in %s: %s",
					  w.id, gen, c->d->cfg.state_dir, strerror(-rc));
	}
	pthread_mutex_lock(&c->d->lock);
	c->paired = true;
	snprintf(c->pairing, sizeof(c->pairing), "%s", w.id);
	c->generation = gen;
	c->m.last_epoch = c->saved_epoch = ps.last_committed;
	pthread_mutex_unlock(&c->d->lock);
	rctd_info("session %s: pairing %s, generation %" PRIu64 ", last committed epoch %" PRId64,
		  c->name, w.id, gen, (int64_t)ps.last_committed);
	out->generation = htole64(gen);
	out->last_committed = htole64(ps.last_committed);
	r->data = out;
	r->len = sizeof(*out);
	return 0;
}

/* With a host key, a session proves its pairing or pairs with nothing. */
static int need_pairing(struct rctd_conn *c, struct reply *r)
{
	if (!c->d->has_psk || c->paired)
		return 0;
	return reply_fail(r, -EPERM, RCT_ERR_AUTH,
			  "session %s: rctd holds a pre-shared key, so the session must be bound "
			  "to its pairing (SESSION_PAIRING) before LISTEN or CONNECT",
			  c->name);
}

/* After a checkpoint's reply: record its epoch for the pairing (off the pause). */
static void conn_persist(struct rctd_conn *c)
{
	struct rctd_pairing_state ps;
	uint64_t epoch;
	int rc;

	if (!c->paired)
		return;
	pthread_mutex_lock(&c->d->lock);
	epoch = c->m.last_epoch;
	pthread_mutex_unlock(&c->d->lock);
	if (epoch == c->saved_epoch)
		return;
	ps.generation = c->generation;
	ps.last_committed = epoch;
	rc = rctd_state_write(c->d, c->pairing, &ps, false);
	if (rc && !c->persist_failed)
		rctd_warn("pairing %s: recording epoch %" PRIu64 " in %s: %s (retried after the "
			  "next checkpoint)",
			  c->pairing, epoch, c->d->cfg.state_dir, strerror(-rc));
	c->persist_failed = rc != 0;
	if (!rc)
		c->saved_epoch = epoch;
}

static int need_session(struct rctd_conn *c, struct reply *r, enum rctd_sess_state want_state,
			int role)
{
	if (c->state == RCTD_SESS_NONE)
		return reply_fail(r, -ENOENT, RCT_ERR_STATE, "no session on this connection");
	if (role && (int)c->role != role)
		return reply_fail(r, -EBUSY, RCT_ERR_STATE, "only a %s session can do that",
				  role == RCT_ROLE_PRIMARY ? "primary" : "secondary");
	if (c->state == RCTD_SESS_FAILED)
		return reply_fail(r, -ECONNRESET, RCT_ERR_PEER_LOST,
				  "session %s has failed; close it", c->name);
	if (want_state && c->state != want_state)
		return reply_fail(r, -EBUSY, RCT_ERR_STATE, "session %s is %s", c->name,
				  rctd_sess_state_str(c->state));
	return 0;
}

/* A secondary's flush and device state stay available after its primary is
 * lost: the committed checkpoint is the image a failover resumes from. */
static int need_secondary_image(struct rctd_conn *c, struct reply *r)
{
	if (c->state == RCTD_SESS_FAILED && c->role == RCT_ROLE_SECONDARY)
		return 0;
	return need_session(c, r, RCTD_SESS_CONNECTED, RCT_ROLE_SECONDARY);
}

/* A file the daemon maps must not shrink under it (SIGBUS) and must be big enough. */
static int check_file(struct reply *r, int fd, const char *what, uint64_t end)
{
	struct stat sb;
	int seals;

	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM, "%s is not a regular file",
				  what);
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return reply_fail(r, -EPERM, RCT_ERR_INVALID_PARAM,
				  "%s must be a memfd sealed with F_SEAL_SHRINK", what);
	if ((uint64_t)sb.st_size < end)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "%s has %lld bytes, the region needs %" PRIu64, what,
				  (long long)sb.st_size, end);
	return 0;
}

static int h_region_add(struct rctd_conn *c, struct ipc_msg *m, struct reply *r,
			struct rct_ipc_region_add_reply *out)
{
	long pgsz = sysconf(_SC_PAGESIZE);
	struct rct_ipc_region_add w;
	struct rctd_region g = {0};
	uint64_t offset, boff, bytes, bstart;

	if (!want(r, m, sizeof(w), 2))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	if (w.reserved)
		return reply_bad(r, "REGION_ADD: reserved field set");
	if (need_session(c, r, 0, 0))
		return r->status;
	if (c->state != RCTD_SESS_OPEN && c->state != RCTD_SESS_LISTENING)
		return reply_fail(r, -EBUSY, RCT_ERR_STATE,
				  "regions are added before the session connects");
	g.id = le32toh(w.id);
	g.size = le64toh(w.size);
	offset = le64toh(w.offset);
	boff = le64toh(w.bitmap_offset);
	if (conn_region(c, g.id))
		return reply_fail(r, -EEXIST, RCT_ERR_EXISTS, "region %u exists", g.id);
	if (c->nregions == RCTD_MAX_REGIONS)
		return reply_fail(r, -ENOSPC, RCT_ERR_NO_SPACE, "at most %d regions",
				  RCTD_MAX_REGIONS);
	if (!g.size || g.size % c->page_size || offset % (uint64_t)pgsz || boff % 8 ||
	    offset > UINT64_MAX / 2 || g.size > UINT64_MAX / 2 || boff > UINT64_MAX / 2)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "region %u: size %" PRIu64 " offset %" PRIu64
				  " bitmap offset %" PRIu64
				  ": size a multiple of %u, offset page-aligned, bitmap 8-aligned",
				  g.id, g.size, offset, boff, c->page_size);
	g.pages = g.size / c->page_size;
	bytes = (g.pages + 63) / 64 * 8;
	if (check_file(r, m->fds[0], "the guest RAM file", offset + g.size) ||
	    check_file(r, m->fds[1], "the dirty-bitmap file", boff + bytes) ||
	    region_reserve(c, &g, r))
		return r->status;
	/* Not populated: the guest's memory is the hypervisor's, and a sparse
	 * memfd (a large guest that touched little) must stay sparse. */
	g.ram = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0], (off_t)offset);
	if (g.ram == MAP_FAILED) {
		int err = errno;

		g.ram = NULL;
		region_unmap(c, &g);
		return reply_fail(r, -err, RCT_ERR_NO_MEMORY,
				  "mmap of region %u (%" PRIu64 " bytes): %s", g.id, g.size,
				  strerror(err));
	}
	bstart = boff / (uint64_t)pgsz * (uint64_t)pgsz;
	g.bmap_len = (size_t)(boff - bstart + bytes);
	g.bmap = mmap(NULL, g.bmap_len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[1],
		      (off_t)bstart);
	if (g.bmap == MAP_FAILED) {
		int err = errno;

		g.bmap = NULL;
		region_unmap(c, &g);
		return reply_fail(r, -err, RCT_ERR_NO_MEMORY, "mmap of region's bitmap: %s",
				  strerror(err));
	}
	g.bits = (uint64_t *)((uint8_t *)g.bmap + (boff - bstart));
	c->regions[c->nregions++] = g;
	rctd_info("session %s: region %u, %" PRIu64 " MiB, %" PRIu64 " pages", c->name, g.id,
		  g.size >> 20, g.pages);
	out->pages = htole64(g.pages);
	r->data = out;
	r->len = sizeof(*out);
	return 0;
}

static int h_region_remove(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r)
{
	struct rct_ipc_region_ref w;
	struct rctd_region *g;

	if (!want(r, m, sizeof(w), 0))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	if (w.reserved)
		return reply_bad(r, "REGION_REMOVE: reserved field set");
	if (need_session(c, r, 0, 0))
		return r->status;
	if (c->state != RCTD_SESS_OPEN && c->state != RCTD_SESS_LISTENING)
		return reply_fail(r, -EBUSY, RCT_ERR_STATE,
				  "regions of a connected session stay until it closes");
	g = conn_region(c, le32toh(w.id));
	if (!g)
		return reply_fail(r, -ENOENT, RCT_ERR_NOT_FOUND, "no region %u", le32toh(w.id));
	region_unmap(c, g);
	*g = c->regions[--c->nregions];
	return 0;
}

/* Register the daemon's regions with the session, before it connects. */
static int conn_register_regions(struct rctd_conn *c, struct reply *r)
{
	rct_status_t st;

	if (!c->nregions)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM, "add a region first");
	for (unsigned i = 0; i < c->nregions; i++) {
		struct rctd_region *g = &c->regions[i];

		if (g->rr)
			continue;
		st = rct_region_register(c->sess, g->id, g->ram, g->size, &g->rr);
		if (st != RCT_OK)
			return reply_fail(r, ipc_errno_of(st), st, "registering region %u: %s",
					  g->id, rct_status_str(st));
	}
	return 0;
}

static int peer_decode(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		       struct rct_ipc_peer *w)
{
	if (!want(r, m, sizeof(*w), 0))
		return r->status;
	memcpy(w, c->buf, sizeof(*w));
	if (!ipc_str_ok(w->addr, sizeof(w->addr)) || w->reserved[0] || w->reserved[1] ||
	    w->reserved[2])
		return reply_bad(r, "%s: unterminated address or reserved field set",
				 ipc_type_str(m->type));
	return 0;
}

static void connected_reply(struct rctd_conn *c, struct reply *r, struct rct_ipc_connected *out)
{
	memset(out, 0, sizeof(*out));
	out->lanes = htole32(rct_session_lanes(c->sess));
	ipc_str_put(out->backend, sizeof(out->backend), rct_session_backend(c->sess));
	pthread_mutex_lock(&c->d->lock);
	c->lanes = rct_session_lanes(c->sess);
	c->state = RCTD_SESS_CONNECTED;
	c->in_sync = false;
	c->lost_status = RCT_OK;
	c->lost_epoch = UINT64_MAX;
	c->peer_closed = false;
	pthread_mutex_unlock(&c->d->lock);
	r->data = out;
	r->len = sizeof(*out);
}

static int h_listen(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		    struct rct_ipc_listen_reply *out)
{
	struct rct_ipc_peer w;
	uint16_t port = 0;
	rct_status_t st;

	if (peer_decode(c, m, r, &w) || need_session(c, r, RCTD_SESS_OPEN, RCT_ROLE_SECONDARY) ||
	    need_pairing(c, r))
		return r->status;
	/* The colo caches are made (allocated, pre-faulted) now, before any
	 * primary can know the port: on a slow host populating 2 GiB takes
	 * longer than the primary's handshake deadline (it timed out waiting
	 * for AUTH while the cache was made at ACCEPT).  Regions added after
	 * LISTEN are registered at ACCEPT. */
	if (c->nregions && conn_register_regions(c, r))
		return r->status;
	st = rct_session_listen(c->sess, w.addr[0] ? w.addr : "127.0.0.1", le16toh(w.port), &port);
	if (reply_rct(r, st, "listen"))
		return r->status;
	pthread_mutex_lock(&c->d->lock);
	snprintf(c->peer, sizeof(c->peer), "listening %s:%u", w.addr[0] ? w.addr : "127.0.0.1",
		 port);
	c->state = RCTD_SESS_LISTENING;
	pthread_mutex_unlock(&c->d->lock);
	memset(out, 0, sizeof(*out));
	out->port = htole16(port);
	r->data = out;
	r->len = sizeof(*out);
	return 0;
}

static int h_accept(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		    struct rct_ipc_connected *out)
{
	rct_status_t st;

	if (!want(r, m, 0, 0) || need_session(c, r, RCTD_SESS_LISTENING, RCT_ROLE_SECONDARY) ||
	    conn_register_regions(c, r))
		return r->status;
	st = rct_session_accept(c->sess);
	conn_check_fatal(c, st);
	if (reply_rct(r, st, "accept"))
		return r->status;
	connected_reply(c, r, out);
	rctd_info("session %s: primary connected, %u lanes", c->name, c->lanes);
	return 0;
}

static int h_connect(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		     struct rct_ipc_connected *out)
{
	struct rct_ipc_peer w;
	rct_status_t st;

	if (peer_decode(c, m, r, &w) || need_session(c, r, RCTD_SESS_OPEN, RCT_ROLE_PRIMARY) ||
	    need_pairing(c, r) || conn_register_regions(c, r))
		return r->status;
	if (!w.addr[0] || !w.port)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "CONNECT needs the secondary's address and port");
	st = rct_session_connect(c->sess, w.addr, le16toh(w.port));
	conn_check_fatal(c, st);
	if (reply_rct(r, st, "connect"))
		return r->status;
	pthread_mutex_lock(&c->d->lock);
	snprintf(c->peer, sizeof(c->peer), "%s:%u", w.addr, le16toh(w.port));
	pthread_mutex_unlock(&c->d->lock);
	connected_reply(c, r, out);
	rctd_info("session %s: connected to %s:%u, %u lanes", c->name, w.addr, le16toh(w.port),
		  c->lanes);
	return 0;
}

static int h_begin(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r)
{
	struct rct_ipc_ckpt_begin w;
	rct_status_t st;

	if (!want(r, m, sizeof(w), 0))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	if (w.reserved || (le32toh(w.flags) & ~(uint32_t)(RCT_CKPT_FULL | RCT_CKPT_LIVE)))
		return reply_bad(r, "CKPT_BEGIN: unknown flags 0x%x or reserved field set",
				 le32toh(w.flags));
	if (need_session(c, r, RCTD_SESS_CONNECTED, RCT_ROLE_PRIMARY))
		return r->status;
	st = rct_ckpt_begin(c->sess, le64toh(w.epoch), le32toh(w.flags));
	conn_check_fatal(c, st);
	if (st == RCT_OK)
		c->ckpt_flags = le32toh(w.flags);
	return reply_rct(r, st, "begin");
}

static int h_dirty(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r)
{
	struct rct_ipc_region_ref w;
	struct rctd_region *g;
	rct_status_t st;

	if (!want(r, m, sizeof(w), 0))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	if (w.reserved)
		return reply_bad(r, "CKPT_DIRTY: reserved field set");
	if (need_session(c, r, RCTD_SESS_CONNECTED, RCT_ROLE_PRIMARY))
		return r->status;
	g = conn_region(c, le32toh(w.id));
	if (!g)
		return reply_fail(r, -ENOENT, RCT_ERR_NOT_FOUND, "no region %u", le32toh(w.id));
	st = rct_ckpt_dirty(c->sess, g->rr, g->bits, g->pages);
	conn_check_fatal(c, st);
	return reply_rct(r, st, "dirty");
}

static int devbuf_reserve(struct rctd_conn *c, size_t len)
{
	void *p;

	if (len <= c->devcap)
		return 0;
	p = realloc(c->devbuf, len);
	if (!p)
		return -ENOMEM;
	c->devbuf = p;
	c->devcap = len;
	return 0;
}

static int h_devstate(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r)
{
	struct rct_ipc_devstate w;
	const void *blob;
	uint64_t len;
	rct_status_t st;

	if (m->length < sizeof(w) || m->nfds > 1)
		return reply_bad(r, "CKPT_DEVSTATE: %u payload bytes, %u descriptors", m->length,
				 m->nfds);
	memcpy(&w, c->buf, sizeof(w));
	len = le64toh(w.length);
	if (m->nfds == 0 && len != m->length - sizeof(w))
		return reply_bad(r, "CKPT_DEVSTATE: length %" PRIu64 " but %zu inline bytes", len,
				 m->length - sizeof(w));
	if (m->nfds == 1 && m->length != sizeof(w))
		return reply_bad(r, "CKPT_DEVSTATE: inline bytes and a descriptor");
	if (need_session(c, r, RCTD_SESS_CONNECTED, RCT_ROLE_PRIMARY))
		return r->status;
	if (len > RCTD_DEVSTATE_MAX)
		return reply_fail(r, -ENOSPC, RCT_ERR_NO_SPACE,
				  "device state of %" PRIu64 " bytes exceeds 1 GiB", len);
	blob = c->buf + sizeof(w);
	if (m->nfds == 1) {
		size_t got = 0;

		if (devbuf_reserve(c, len ? len : 1))
			return reply_fail(r, -ENOMEM, RCT_ERR_NO_MEMORY,
					  "no memory for %" PRIu64 " bytes of device state", len);
		/* pread, not mmap: a file the client truncates cannot fault the daemon. */
		while (got < len) {
			ssize_t n = pread(m->fds[0], (uint8_t *)c->devbuf + got, len - got,
					  (off_t)got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return reply_fail(r, n ? -errno : -EINVAL, RCT_ERR_INVALID_PARAM,
						  "device-state file: %s after %zu of %" PRIu64
						  " bytes",
						  n ? strerror(errno) : "end of file", got, len);
			got += (size_t)n;
		}
		blob = c->devbuf;
	}
	st = rct_ckpt_devstate_put(c->sess, blob, len);
	conn_check_fatal(c, st);
	return reply_rct(r, st, "device state");
}

static int h_commit(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		    struct rct_ipc_ckpt_stats *out)
{
	struct rct_ckpt_stats st = {0};
	rct_status_t s;

	if (!want(r, m, 0, 0) || need_session(c, r, RCTD_SESS_CONNECTED, RCT_ROLE_PRIMARY))
		return r->status;
	s = rct_ckpt_commit(c->sess, &st);
	conn_check_fatal(c, s);
	pthread_mutex_lock(&c->d->lock);
	if (s == RCT_OK) {
		c->m.checkpoints++;
		c->m.pages += st.pages;
		c->m.bytes += st.bytes;
		c->m.devstate_bytes += st.devstate_bytes;
		c->m.last_epoch = st.epoch;
		c->in_sync = !(c->ckpt_flags & RCT_CKPT_LIVE);
		rctd_hist_add(&c->m.transfer, st.transfer_ns);
		rctd_hist_add(&c->m.commit_rtt, st.commit_ns);
	} else {
		c->m.failures++;
	}
	pthread_mutex_unlock(&c->d->lock);
	if (reply_rct(r, s, "commit"))
		return r->status;
	ipc_stats_encode(&st, out);
	r->data = out;
	r->len = sizeof(*out);
	return 0;
}

static int h_flush(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
		   struct rct_ipc_ckpt_stats *out)
{
	struct rct_ipc_ckpt_flush w;
	struct rct_ckpt_stats st = {0};
	rct_status_t s = RCT_OK;
	uint32_t flags;

	if (!want(r, m, sizeof(w), 0))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	flags = le32toh(w.flags);
	if (w.reserved || (flags & ~(uint32_t)RCT_IPC_FLUSH_LOCAL_DIRTY))
		return reply_bad(r, "CKPT_FLUSH: unknown flags 0x%x or reserved field set", flags);
	if (need_secondary_image(c, r))
		return r->status;
	for (unsigned i = 0; s == RCT_OK && (flags & RCT_IPC_FLUSH_LOCAL_DIRTY) && i < c->nregions;
	     i++)
		s = rct_ckpt_local_dirty(c->sess, c->regions[i].rr, c->regions[i].bits,
					 c->regions[i].pages);
	if (s == RCT_OK)
		s = rct_ckpt_flush(c->sess, le64toh(w.epoch), &st);
	conn_check_fatal(c, s);
	if (reply_rct(r, s, "flush"))
		return r->status;
	c->ready_pending = false;
	pthread_mutex_lock(&c->d->lock);
	c->m.checkpoints++;
	c->m.flushed_pages += st.flush_pages;
	c->in_sync = c->state == RCTD_SESS_CONNECTED;
	c->m.last_epoch = le64toh(w.epoch);
	rctd_hist_add(&c->m.flush, st.flush_ns);
	pthread_mutex_unlock(&c->d->lock);
	ipc_stats_encode(&st, out);
	r->data = out;
	r->len = sizeof(*out);
	return 0;
}

static int h_devstate_get(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r,
			  struct rct_ipc_devstate_get_reply *out)
{
	struct rct_ipc_devstate_get w;
	const void *blob;
	size_t len, done = 0;
	rct_status_t st;

	if (!want(r, m, sizeof(w), 1))
		return r->status;
	memcpy(&w, c->buf, sizeof(w));
	if (need_secondary_image(c, r))
		return r->status;
	st = rct_ckpt_devstate_get(c->sess, le64toh(w.epoch), &blob, &len);
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
	out->length = htole64(len);
	r->data = out;
	r->len = sizeof(*out);
	return 0;
}

/* STATUS, SESSIONS and STATS answer JSON text. */
static int h_json(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r, char **text_p)
{
	json_t *j = NULL;

	if (m->type == RCT_IPC_STATS) {
		struct rct_ipc_stats w;

		if (!want(r, m, sizeof(w), 0))
			return r->status;
		memcpy(&w, c->buf, sizeof(w));
		if (w.reserved || le32toh(w.scope) > RCT_IPC_STATS_ALL)
			return reply_bad(r, "STATS: scope %u or reserved field set",
					 le32toh(w.scope));
		if (le32toh(w.scope) == RCT_IPC_STATS_SESSION) {
			if (c->state == RCTD_SESS_NONE)
				return reply_fail(r, -ENOENT, RCT_ERR_STATE,
						  "no session on this connection");
			pthread_mutex_lock(&c->d->lock);
			j = rctd_session_json(c);
			pthread_mutex_unlock(&c->d->lock);
		}
	} else if (!want(r, m, 0, 0)) {
		return r->status;
	}
	if (!j && m->type == RCT_IPC_STATUS) {
		j = rctd_status_json(c->d);
	} else if (!j) {
		/* Every session: only for root and the daemon's own user. */
		if (!c->admin)
			return reply_fail(r, -EPERM, RCT_ERR_INVALID_PARAM,
					  "%s of every session is for root or uid %u only",
					  ipc_type_str(m->type), (unsigned)geteuid());
		j = rctd_sessions_json(c->d);
	}
	*text_p = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!*text_p)
		return reply_fail(r, -ENOMEM, RCT_ERR_NO_MEMORY, "no memory for the reply");
	r->data = *text_p;
	r->len = strlen(*text_p);
	if (r->len > RCT_IPC_MAX_PAYLOAD)
		return reply_fail(r, -E2BIG, RCT_ERR_NO_SPACE, "reply of %zu bytes too large",
				  r->len);
	return 0;
}

static int h_close(struct rctd_conn *c, const struct ipc_msg *m, struct reply *r)
{
	if (!want(r, m, 0, 0))
		return r->status;
	if (c->state == RCTD_SESS_NONE)
		return reply_fail(r, -ENOENT, RCT_ERR_STATE, "no session on this connection");
	rctd_info("session %s closed by its client", c->name);
	conn_session_close(c);
	return 0;
}

/* Handle one request.  Returns 0 to go on, -1 to close the connection. */
static int conn_request(struct rctd_conn *c, struct ipc_msg *m)
{
	union {
		struct rct_ipc_hello_reply hello;
		struct rct_ipc_session_open_reply open;
		struct rct_ipc_listen_reply listen;
		struct rct_ipc_connected connected;
		struct rct_ipc_region_add_reply region;
		struct rct_ipc_ckpt_stats stats;
		struct rct_ipc_devstate_get_reply devstate;
		struct rct_ipc_session_pairing_reply pairing;
	} out;
	struct reply r = {0};
	struct ipc_msg rm = {
		.type = m->type, .flags = RCT_IPC_FLAG_REPLY, .request_id = m->request_id};
	char *text = NULL;
	int rc;

	if (m->flags) {
		reply_bad(&r, "%s: a request carries no flags (0x%x)", ipc_type_str(m->type),
			  m->flags);
	} else if (!c->allowed) {
		r.fatal = true;
		reply_fail(&r, -EACCES, RCT_OK, "uid %u gid %u is not allowed", (unsigned)c->uid,
			   (unsigned)c->gid);
	} else if (!c->hello && m->type != RCT_IPC_HELLO) {
		reply_bad(&r, "%s before HELLO", ipc_type_str(m->type));
	} else {
		switch (m->type) {
		case RCT_IPC_HELLO:
			if (c->hello)
				reply_bad(&r, "a second HELLO");
			else
				h_hello(c, m, &r, &out.hello);
			break;
		case RCT_IPC_SESSION_OPEN:
			h_session_open(c, m, &r, &out.open);
			break;
		case RCT_IPC_SESSION_CLOSE:
			h_close(c, m, &r);
			break;
		case RCT_IPC_SESSION_PAIRING:
			h_pairing(c, m, &r, &out.pairing);
			break;
		case RCT_IPC_REGION_ADD:
			h_region_add(c, m, &r, &out.region);
			break;
		case RCT_IPC_REGION_REMOVE:
			h_region_remove(c, m, &r);
			break;
		case RCT_IPC_LISTEN:
			h_listen(c, m, &r, &out.listen);
			break;
		case RCT_IPC_ACCEPT:
			h_accept(c, m, &r, &out.connected);
			break;
		case RCT_IPC_CONNECT:
			h_connect(c, m, &r, &out.connected);
			break;
		case RCT_IPC_CKPT_BEGIN:
			h_begin(c, m, &r);
			break;
		case RCT_IPC_CKPT_DIRTY:
			h_dirty(c, m, &r);
			break;
		case RCT_IPC_CKPT_DEVSTATE:
			h_devstate(c, m, &r);
			break;
		case RCT_IPC_CKPT_COMMIT:
			h_commit(c, m, &r, &out.stats);
			break;
		case RCT_IPC_CKPT_FLUSH:
			h_flush(c, m, &r, &out.stats);
			break;
		case RCT_IPC_DEVSTATE_GET:
			h_devstate_get(c, m, &r, &out.devstate);
			break;
		case RCT_IPC_STATUS:
		case RCT_IPC_SESSIONS:
		case RCT_IPC_STATS:
			h_json(c, m, &r, &text);
			break;
		default:
			reply_bad(&r, "unknown message type %u", m->type);
			break;
		}
	}
	ipc_msg_close_fds(m);
	if (r.status) {
		rctd_log(r.fatal ? RCTD_LOG_WARN : RCTD_LOG_INFO,
			 "client %" PRIu64 " (pid %d) %s: %s%s", c->id, (int)c->pid,
			 ipc_type_str(m->type), r.what, r.fatal ? "; disconnecting" : "");
		/* The error text is the reply's payload, for the client to show. */
		r.data = r.what;
		r.len = strlen(r.what);
	}
	rm.status = r.status;
	rm.detail = r.detail;
	rc = ipc_send(c->fd, &rm, r.data, r.len);
	free(text);
	if (rc || r.fatal)
		return -1;
	return conn_drain_events(c) ? -1 : 0;
}

/* A message the codec rejected: answer what can be answered, then close. */
static void conn_reject(struct rctd_conn *c, const struct ipc_msg *m, int rc, const char *what)
{
	struct ipc_msg rm = {.type = m->type,
			     .flags = RCT_IPC_FLAG_REPLY,
			     .request_id = m->request_id,
			     .status = rc};

	rctd_warn("client %" PRIu64 " (pid %d): %s; disconnecting", c->id, (int)c->pid,
		  what[0] ? what : strerror(-rc));
	if (rc != -ESHUTDOWN && rc != -ECONNRESET && rc != -EPIPE)
		ipc_send(c->fd, &rm, what, strlen(what));
}

static void conn_cleanup(struct rctd_conn *c)
{
	if (c->sess && c->state != RCTD_SESS_NONE)
		rctd_info("session %s: client %" PRIu64 " gone; closing the session", c->name,
			  c->id);
	conn_session_close(c);
	free(c->buf);
	free(c->devbuf);
	c->buf = NULL;
	c->devbuf = NULL;
	close(c->fd);
	pthread_mutex_lock(&c->d->lock);
	c->fd = -1;
	c->finished = true;
	pthread_mutex_unlock(&c->d->lock);
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
		bool drive = c->state == RCTD_SESS_CONNECTED;
		uint64_t idle_ms = (rctd_now_ns() - c->t_active) / 1000000;
		/* A secondary between checkpoints is driven continuously.  Any other
		 * connected session is driven at least four times per heartbeat
		 * interval, whatever the client does: the peer takes silence for
		 * loss.  Without a connected session the thread sleeps on the client. */
		int wait = !drive ? 200
			   : c->role == RCT_ROLE_SECONDARY && !c->ready_pending
				   ? 0
				   : (c->d->cfg.heartbeat_ms + 3) / 4;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int n;

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
		if (c->state == RCTD_SESS_NONE) {
			uint64_t left = (uint64_t)(c->hello ? cfg->idle_timeout_ms
							    : cfg->msg_timeout_ms) -
					idle_ms + 1;

			if (left < (uint64_t)wait)
				wait = (int)left;
		}
		n = poll(&pfd, 1, wait);

		if (n < 0 && errno != EINTR) {
			rctd_err("client %" PRIu64 ": poll: %s", c->id, strerror(errno));
			break;
		}
		if (n > 0) {
			struct ipc_msg m;
			int rc = ipc_recv_within(c->fd, &m, c->buf, RCT_IPC_MAX_PAYLOAD,
						 cfg->msg_timeout_ms, what, sizeof(what));

			c->t_active = rctd_now_ns();
			if (rc == -ESHUTDOWN || rc == -ECONNRESET)
				break;
			if (rc) {
				conn_reject(c, &m, rc, what);
				break;
			}
			if (conn_request(c, &m))
				break;
			/* A busy client keeps the loop here: look at the stalls too. */
			conn_watch_stalls(c);
			conn_persist(c);
			continue;
		}
		if (drive && c->sess) {
			rct_status_t st = rct_session_progress(c->sess, wait == 0 ? 5 : 0);

			conn_check_fatal(c, st);
			conn_watch_stalls(c);
			if (conn_drain_events(c))
				break;
		}
	}
	conn_cleanup(c);
	return NULL;
}
