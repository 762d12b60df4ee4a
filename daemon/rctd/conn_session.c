/* SPDX-License-Identifier: BSD-3-Clause */
/* A connection's HELLO, its session, the session's pairing and the JSON queries. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"

int h_hello(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	    union ipc_body *out, struct reply *r)
{
	const struct ipc_hello *h = &in->hello;

	(void)m;
	if (c->hello)
		return reply_bad(r, "a second HELLO");
	if (h->version_min > RCT_IPC_VERSION || h->version_max < RCT_IPC_VERSION) {
		r->fatal = true;
		return reply_fail(r, -EPROTONOSUPPORT, RCT_ERR_VERSION,
				  "client speaks versions %u..%u, rctd speaks %u", h->version_min,
				  h->version_max, RCT_IPC_VERSION);
	}
	pthread_mutex_lock(&c->d->lock);
	memcpy(c->client, h->name, sizeof(c->client));
	pthread_mutex_unlock(&c->d->lock);
	c->hello = true;
	out->hello_reply = (struct ipc_hello_reply){.version = RCT_IPC_VERSION,
						    .max_payload = RCT_IPC_MAX_PAYLOAD,
						    .caps = c->d->caps,
						    .pid = (uint32_t)getpid()};
	r->has_body = true;
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

/* The session's parameters: what the client asked, what rctd imposes. */
static void open_params(const struct rctd *d, const struct ipc_session_open *w,
			struct rct_session_params *p)
{
	memset(p, 0, sizeof(*p));
	p->field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_BACKEND |
			RCT_SESSION_PARAM_FIELD_HEARTBEAT;
	p->heartbeat_ms = d->cfg.heartbeat_ms;
	if (!d->cfg.inband) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_LIVENESS;
		p->liveness = RCT_LIVENESS_THREAD | RCT_LIVENESS_RT;
	}
	if (d->has_psk) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_PSK;
		p->psk = d->psk;
	}
	p->role = (enum rct_role)w->role;
	p->backend = w->backend[0] ? w->backend : "tcp";
	if (w->lanes) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_LANES;
		p->lanes = w->lanes;
	}
	if (w->threads) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_THREADS;
		p->threads = w->threads;
	}
	if (d->cfg.flush_threads >= 0) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_FLUSH_THREADS;
		p->flush_threads = (unsigned)d->cfg.flush_threads;
	}
	if (w->page_size) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_PAGE_SIZE;
		p->page_size = w->page_size;
	}
	if (w->timeout_ms) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_TIMEOUT;
		p->timeout_ms = (int)w->timeout_ms; /* at most RCTD_TIMEOUT_MAX_MS */
	}
	if (w->staging_size) {
		p->field_mask |= RCT_SESSION_PARAM_FIELD_STAGING_SIZE;
		p->staging_size = w->staging_size;
	}
}

int h_session_open(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
		   union ipc_body *out, struct reply *r)
{
	const struct ipc_session_open *w = &in->open;
	struct rct_session_params p;
	uint64_t staging, page;
	rct_status_t st;

	(void)m;
	if (c->state != RCTD_SESS_NONE)
		return reply_fail(r, -EEXIST, RCT_ERR_EXISTS,
				  "this connection already has session '%s'", c->name);
	if (w->role != RCT_ROLE_PRIMARY && w->role != RCT_ROLE_SECONDARY)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM, "role %u is neither %d nor %d",
				  w->role, RCT_ROLE_PRIMARY, RCT_ROLE_SECONDARY);
	if (w->timeout_ms > RCTD_TIMEOUT_MAX_MS)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "timeout %u ms: at most %d (an hour)", w->timeout_ms,
				  RCTD_TIMEOUT_MAX_MS);
	if (w->page_size && (w->page_size < RCT_PAGE_SIZE_MIN || w->page_size > RCT_PAGE_SIZE_MAX ||
			     (w->page_size & (w->page_size - 1))))
		return reply_fail(
			r, -EINVAL, RCT_ERR_INVALID_PARAM,
			"page size %u: a power of two from %d to %u (QEMU's target pages)",
			w->page_size, RCT_PAGE_SIZE_MIN, RCT_PAGE_SIZE_MAX);
	if (w->name[0] && !name_ok(w->name))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "session name '%s': use letters, digits and - _ . :", w->name);
	open_params(c->d, w, &p);
	/* Its device-state staging is rctd's memory too: the secondary's two
	 * slots, the primary's one, each rounded up to the page. */
	page = p.page_size ? p.page_size : 4096;
	staging = (p.staging_size ? p.staging_size : RCT_STAGING_SIZE_DEFAULT) + page - 1;
	staging = staging / page * page * (p.role == RCT_ROLE_SECONDARY ? 2 : 1);
	if (conn_charge(c, staging, 0, "the session's device-state staging", r))
		return r->status;
	st = rct_session_create(&p, &c->sess);
	if (st != RCT_OK) {
		conn_uncharge(c, staging, 0);
		return reply_fail(r, ipc_errno_of(st), st, "cannot create a %s session on '%s': %s",
				  p.role == RCT_ROLE_PRIMARY ? "primary" : "secondary", p.backend,
				  rct_status_str(st));
	}
	pthread_mutex_lock(&c->d->lock);
	/* Names are a tenant's (a client uid's): one session per name and uid,
	 * so that no tenant can take the name another's hypervisor asks for. */
	for (struct rctd_conn *o = c->d->conns; w->name[0] && o; o = o->next) {
		if (o != c && o->uid == c->uid && o->state != RCTD_SESS_NONE &&
		    !strcmp(o->name, w->name)) {
			pthread_mutex_unlock(&c->d->lock);
			rct_session_destroy(c->sess);
			c->sess = NULL;
			conn_uncharge(c, staging, 0);
			return reply_fail(r, -EEXIST, RCT_ERR_EXISTS,
					  "uid %u has a session named '%s' on this rctd already",
					  (unsigned)c->uid, w->name);
		}
	}
	c->staging_charged = staging;
	c->session_id = c->id;
	c->role = p.role;
	c->page_size = p.page_size ? p.page_size : 4096;
	c->timeout_ms = p.timeout_ms ? p.timeout_ms : RCT_SESSION_TIMEOUT_DEFAULT_MS;
	if (w->name[0])
		snprintf(c->name, sizeof(c->name), "%s", w->name);
	else
		snprintf(c->name, sizeof(c->name), "session-%" PRIu64, c->id);
	snprintf(c->backend, sizeof(c->backend), "%s", p.backend);
	c->transport[0] = '\0';
	memset(&c->m, 0, sizeof(c->m));
	memset(&c->live, 0, sizeof(c->live));
	c->stopped_by = 0;
	c->ready_epoch = UINT64_MAX;
	c->pair.bound = false;
	c->pair.proved = false;
	c->pair.id[0] = '\0';
	c->pair.generation = 0;
	c->pair.saved_epoch = UINT64_MAX;
	c->pair.persist_failed = false;
	c->m.last_epoch = UINT64_MAX;
	c->state = RCTD_SESS_OPEN;
	pthread_mutex_unlock(&c->d->lock);
	rctd_info("session %s: %s over %s for client %" PRIu64, c->name,
		  c->role == RCT_ROLE_PRIMARY ? "primary" : "secondary", c->backend, c->id);
	out->session_id = c->session_id;
	r->has_body = true;
	return 0;
}

void conn_session_close(struct rctd_conn *c)
{
	struct rct_session *sess;

	/* Detached under the lock: status readers look at c->sess. */
	pthread_mutex_lock(&c->d->lock);
	sess = c->sess;
	c->sess = NULL;
	c->state = RCTD_SESS_NONE;
	pthread_mutex_unlock(&c->d->lock);
	rct_session_destroy(sess);
	conn_regions_release(c);
	conn_uncharge(c, c->staging_charged, 0);
	c->staging_charged = 0;
	c->ready_pending = false;
	rctd_flush_mark_close(c->pair.flush_mark);
	c->pair.flush_mark = NULL;
}

int h_session_close(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
		    union ipc_body *out, struct reply *r)
{
	(void)m;
	(void)in;
	(void)out;
	(void)r;
	rctd_info("session %s closed by its client", c->name);
	conn_session_close(c);
	return 0;
}

static int pairing_bind(struct rctd_conn *c, const struct ipc_pairing *w, union ipc_body *out,
			struct reply *r);

/*
 * SESSION_PAIRING: the VM identity and the secret its management layer gave
 * both hypervisors, and the generation.  rctd records the generation and the
 * last committed epoch per pairing across its restarts; a client asking for
 * a generation older than the recorded one is stale.  Nothing is recorded
 * here: the record changes once the peer proved the key
 * (conn_pairing_proved()), so a client that merely names a pairing changes
 * nothing of it.
 */
int h_pairing(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	      union ipc_body *out, struct reply *r)
{
	const struct ipc_pairing *w = &in->pairing;
	int rc;

	(void)m;
	if (c->pair.bound)
		return reply_fail(r, -EEXIST, RCT_ERR_EXISTS, "session %s is paired as %s already",
				  c->name, c->pair.id);
	if (!rctd_pairing_id_ok(w->id))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "pairing identity '%.64s': 1..%d of letters, digits, - _ . : "
				  "(not starting with .)",
				  w->id, RCT_IPC_PAIRING_ID_MAX - 1);
	if (c->d->has_psk && !(w->flags & RCT_IPC_PAIRING_KEY))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "pairing %s: no pairing key; with a host key every client could "
				  "claim any identity (docs/security.md)",
				  w->id);
	if ((w->flags & RCT_IPC_PAIRING_GENERATION) && w->generation > RCTD_GENERATION_MAX)
		return reply_fail(r, -ERANGE, RCT_ERR_INVALID_PARAM,
				  "pairing %s: generation %" PRIu64 " is beyond the limit %" PRId64,
				  w->id, w->generation, (int64_t)RCTD_GENERATION_MAX);
	pthread_mutex_lock(&c->d->state_lock);
	rc = pairing_bind(c, w, out, r);
	pthread_mutex_unlock(&c->d->state_lock);
	return rc;
}

struct rctd_conn *conn_pairing_rival(struct rctd_conn *c, const char *id, const uint8_t *verifier)
{
	for (struct rctd_conn *o = c->d->conns; o; o = o->next) {
		if (o == c || o->finished || !o->pair.bound || strcmp(o->pair.id, id) ||
		    o->state == RCTD_SESS_NONE || o->state == RCTD_SESS_FAILED)
			continue;
		if (o->pair.proved ||
		    (verifier && (!o->pair.has_key ||
				  !sodium_memcmp(o->pair.verifier, verifier, RCTD_VERIFIER_LEN))))
			return o;
	}
	return NULL;
}

/* -EBUSY naming @o, the session of pairing @id that @c's yields to. */
int conn_pairing_busy(struct reply *r, struct rctd_conn *o, const char *id)
{
	return reply_fail(r, -EBUSY, RCT_ERR_EXISTS,
			  "pairing %s has a live session on this rctd: %s (client %" PRIu64
			  ", pid %d); one session per pairing",
			  id, o->name, o->id, (int)o->pid);
}

/* SESSION_PAIRING's checks against the record, under d->state_lock. */
static int pairing_bind(struct rctd_conn *c, const struct ipc_pairing *w, union ipc_body *out,
			struct reply *r)
{
	const bool has_key = w->flags & RCT_IPC_PAIRING_KEY;
	struct rctd_pairing_state ps;
	uint8_t verifier[RCTD_VERIFIER_LEN];
	struct rctd_conn *o;
	uint64_t gen;
	rct_status_t st;
	int rc = rctd_state_read(c->d, w->id, &ps);

	if (rc)
		return reply_fail(r, rc, RCT_ERR_SYSTEM, "pairing %s: reading its state in %s: %s",
				  w->id, c->d->cfg.state_dir, strerror(-rc));
	if (has_key)
		rctd_pairing_verifier(c->d, w->id, w->key, verifier);
	/* The key decides before anything else is said about the pairing. */
	if (ps.has_verifier &&
	    (!has_key || sodium_memcmp(verifier, ps.verifier, RCTD_VERIFIER_LEN)))
		return reply_fail(r, -EKEYREJECTED, RCT_ERR_AUTH,
				  "pairing %s: %s the pairing key this host recorded for it; a "
				  "guest that starts afresh with a new key is a new generation "
				  "(PAIRING_CTL NEW) first",
				  w->id, has_key ? "not" : "no key, and the record holds");
	gen = w->flags & RCT_IPC_PAIRING_GENERATION ? w->generation : ps.generation;
	if (gen < ps.generation)
		return reply_fail(r, -ESTALE, RCT_ERR_MISMATCH,
				  "pairing %s is at generation %" PRIu64
				  " on this host; generation %" PRIu64 " is stale",
				  w->id, ps.generation, gen);
	if (c->role == RCT_ROLE_PRIMARY && ps.demoted != UINT64_MAX && gen <= ps.demoted)
		return reply_fail(r, -ESTALE, RCT_ERR_MISMATCH,
				  "pairing %s was demoted on this host at generation %" PRIu64
				  ": it is a primary here again only at a newer generation (a "
				  "resync as a secondary, or PAIRING_CTL NEW for a fresh guest)",
				  w->id, ps.demoted);
	/* A primary's session starts a lineage of its own (a full checkpoint,
	 * then its epochs from wherever its hypervisor counts): unless told
	 * which, it runs at a generation of its own, so that a generation and
	 * an epoch always order the images of a pairing. */
	c->pair.new_lineage = c->role == RCT_ROLE_PRIMARY &&
			      !(w->flags & RCT_IPC_PAIRING_GENERATION);
	if (c->pair.new_lineage) {
		if (ps.generation >= RCTD_GENERATION_MAX)
			return reply_fail(r, -ERANGE, RCT_ERR_INVALID_PARAM,
					  "pairing %s is at generation %" PRIu64
					  ", the limit: no new lineage (PAIRING_CTL NEW)",
					  w->id, ps.generation);
		gen = ps.generation + 1;
		ps.last_committed = UINT64_MAX;
	}
	/* One session of a pairing at a time on a daemon: a second one with
	 * its key is another hypervisor claiming the same VM.  One that only
	 * names it with another key blocks nobody: it never proves it. */
	pthread_mutex_lock(&c->d->lock);
	o = conn_pairing_rival(c, w->id, has_key ? verifier : NULL);
	rc = o ? conn_pairing_busy(r, o, w->id) : 0;
	pthread_mutex_unlock(&c->d->lock);
	if (rc)
		return rc;
	st = rct_session_set_pairing(c->sess, w->id, has_key ? w->key : NULL, gen);
	if (reply_rct(r, st, "pairing"))
		return r->status;
	pthread_mutex_lock(&c->d->lock);
	c->pair.bound = true;
	c->pair.proved = false;
	c->pair.has_key = has_key;
	if (has_key)
		memcpy(c->pair.verifier, verifier, sizeof(verifier));
	snprintf(c->pair.id, sizeof(c->pair.id), "%s", w->id);
	c->pair.generation = gen;
	c->pair.demoted = ps.demoted;
	c->m.last_epoch = c->pair.saved_epoch = ps.last_committed;
	pthread_mutex_unlock(&c->d->lock);
	rctd_info("session %s: pairing %s, generation %" PRIu64 ", last committed epoch %" PRId64
		  " (recorded once the peer proves the key)",
		  c->name, w->id, gen, (int64_t)ps.last_committed);
	out->pairing_reply.generation = gen;
	out->pairing_reply.last_committed = ps.last_committed;
	r->has_body = true;
	return 0;
}

int conn_need_pairing(struct rctd_conn *c, struct reply *r)
{
	if (!c->d->has_psk || c->pair.bound)
		return 0;
	return reply_fail(r, -EPERM, RCT_ERR_AUTH,
			  "session %s: rctd holds a pre-shared key, so the session must be bound "
			  "to its pairing (SESSION_PAIRING) before LISTEN or CONNECT",
			  c->name);
}

void conn_persist(struct rctd_conn *c)
{
	struct rctd_pairing_state ps;
	uint64_t epoch;
	int rc;

	if (!c->pair.proved)
		return;
	pthread_mutex_lock(&c->d->lock);
	epoch = c->m.last_epoch;
	pthread_mutex_unlock(&c->d->lock);
	if (epoch == c->pair.saved_epoch)
		return;
	pthread_mutex_lock(&c->d->state_lock);
	ps.generation = c->pair.generation;
	ps.last_committed = epoch;
	ps.demoted = c->pair.demoted;
	ps.has_verifier = c->pair.has_key; /* recorded when it was proved */
	memcpy(ps.verifier, c->pair.verifier, sizeof(ps.verifier));
	rc = rctd_state_write(c->d, c->pair.id, &ps, false);
	pthread_mutex_unlock(&c->d->state_lock);
	if (rc && !c->pair.persist_failed)
		rctd_warn("pairing %s: recording epoch %" PRIu64 " in %s: %s (retried after the "
			  "next checkpoint)",
			  c->pair.id, epoch, c->d->cfg.state_dir, strerror(-rc));
	c->pair.persist_failed = rc != 0;
	if (!rc)
		c->pair.saved_epoch = epoch;
}

/* STATUS, SESSIONS and STATS answer JSON text. */
int h_query(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
	    union ipc_body *out, struct reply *r)
{
	json_t *j = NULL;

	if (m->type == RCT_IPC_STATS && in->scope == RCT_IPC_STATS_SESSION) {
		if (c->state == RCTD_SESS_NONE)
			return reply_fail(r, -ENOENT, RCT_ERR_STATE,
					  "no session on this connection");
		pthread_mutex_lock(&c->d->lock);
		j = rctd_session_json(c);
		pthread_mutex_unlock(&c->d->lock);
	} else if (m->type == RCT_IPC_STATUS) {
		j = rctd_status_json(c->d, c);
	} else {
		/* Every session: only for root and the daemon's own user. */
		if (!c->admin)
			return reply_fail(r, -EPERM, RCT_ERR_INVALID_PARAM,
					  "%s of every session is for root or uid %u only",
					  ipc_type_str(m->type), (unsigned)geteuid());
		j = rctd_sessions_json(c->d);
	}
	return reply_json(r, out, j);
}

int reply_json(struct reply *r, union ipc_body *out, json_t *j)
{
	r->text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!r->text)
		return reply_fail(r, -ENOMEM, RCT_ERR_NO_MEMORY, "no memory for the reply");
	out->text.text = r->text;
	out->text.len = strlen(r->text);
	if (out->text.len > RCT_IPC_MAX_PAYLOAD)
		return reply_fail(r, -E2BIG, RCT_ERR_NO_SPACE,
				  "a reply of %zu bytes exceeds the payload limit of %d",
				  out->text.len, RCT_IPC_MAX_PAYLOAD);
	r->has_body = true;
	return 0;
}
