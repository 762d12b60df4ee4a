/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A pairing under a cluster manager (PAIRING_CTL): the manager's agent asks
 * this host's rctd what it holds of a VM, and orders its session stopped for
 * a failover, a demotion or an abort, whichever connection (hypervisor)
 * holds it; or starts a new generation for a fresh guest.  rct decides
 * nothing here: every operation is the order of the one that decides
 * (docs/ipc.md, "Pairings under a cluster manager"; docs/operations.md).
 *
 * The session belongs to its connection's thread, so another connection
 * never touches it: it sets stop_req under d->lock, wakes that thread
 * (wake_fd) and waits on d->cond until the thread ended the session
 * (rct_session_abort(): GOODBYE to the peer, PEER_LOST to the client).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

#define NO_EPOCH UINT64_MAX

/*
 * The session of pairing @id on this rctd, or NULL; under d->lock.  Only a
 * session whose peer proved the pairing key is the pairing's: one that only
 * named it (a client without the key, or one still waiting for its peer) is
 * nobody's to stop or to show.
 */
static struct rctd_conn *pairing_conn(struct rctd *d, const char *id)
{
	struct rctd_conn *best = NULL;

	for (struct rctd_conn *c = d->conns; c; c = c->next) {
		if (c->finished || c->state == RCTD_SESS_NONE || !c->pair.proved ||
		    strcmp(c->pair.id, id))
			continue;
		bool live = c->state != RCTD_SESS_FAILED;
		bool best_live = best && best->state != RCTD_SESS_FAILED;

		/* A live one before a failed one; the newest of either. */
		if (!best || (live && !best_live) ||
		    (live == best_live && c->session_id > best->session_id))
			best = c;
	}
	return best;
}

static struct rctd_conn *conn_by_id(struct rctd *d, uint64_t id)
{
	for (struct rctd_conn *c = d->conns; c; c = c->next)
		if (c->id == id && !c->finished)
			return c;
	return NULL;
}

/* pairing_conn()'s flush count (0 without a session), and its id in *@id_p. */
static uint64_t flush_seq(struct rctd *d, const char *id, uint64_t *id_p)
{
	struct rctd_conn *t;
	uint64_t seq = 0;

	pthread_mutex_lock(&d->lock);
	t = id_p && *id_p ? conn_by_id(d, *id_p) : pairing_conn(d, id);
	if (t) {
		seq = t->pair.flush_seq;
		if (id_p)
			*id_p = t->id;
	}
	pthread_mutex_unlock(&d->lock);
	return seq;
}

/*
 * The epoch whose flush left pairing @id's guest RAM torn (*@torn_p), or
 * NO_EPOCH; NO_EPOCH - 1 when the mark cannot be parsed.  A flush under way
 * says "flushing" too, and is no torn one: with @flushing_p (SHOW) it is
 * named there (*@flushing_p, else NO_EPOCH) and not waited for (a full
 * sync's first flush into a large guest's untouched RAM takes seconds to
 * minutes: a wait would end in "unknown", and a cluster manager would take
 * that secondary for torn and restart it, resync and all, again and
 * again); without (FAILOVER) it is waited for, at most the message deadline
 * (-ETIMEDOUT).  The mark is read between two looks at the session's flush
 * count, so that a flush that began or ended meanwhile is not taken for a
 * torn one.
 */
static int pairing_torn(struct rctd *d, const char *id, uint64_t *torn_p, uint64_t *flushing_p)
{
	uint64_t waited_ms = 0;

	if (flushing_p)
		*flushing_p = NO_EPOCH;
	for (;;) {
		uint64_t conn = 0, seq = flush_seq(d, id, &conn);
		int rc = rctd_flush_mark_read(d, id, torn_p);

		if (rc || *torn_p == NO_EPOCH)
			return rc;
		if (!(seq & 1) && seq == flush_seq(d, id, &conn))
			return 0;
		if (flushing_p && (seq & 1) && seq == flush_seq(d, id, &conn)) {
			*flushing_p = *torn_p;
			*torn_p = NO_EPOCH;
			return 0;
		}
		if (waited_ms++ >= (uint64_t)d->cfg.msg_timeout_ms)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

static const char *role_name(enum rct_role role)
{
	return role == RCT_ROLE_PRIMARY ? "primary" : "secondary";
}

/*
 * Stop pairing @id's session with @reason, as its own thread does it.  A
 * session of another role than @role (0: any) is -EBUSY; none is -ENOENT
 * unless @none_ok; one already failed is left as it is.
 */
static int pairing_stop(struct rctd_conn *me, const char *id, enum rct_role role, uint32_t reason,
			bool none_ok, struct reply *r)
{
	struct rctd *d = me->d;
	struct rctd_conn *t;
	struct timespec ts;
	uint64_t tid;
	char name[RCT_IPC_NAME_MAX];

	pthread_mutex_lock(&d->lock);
	t = pairing_conn(d, id);
	if (!t) {
		pthread_mutex_unlock(&d->lock);
		if (none_ok)
			return 0;
		return reply_fail(r, -ENOENT, RCT_ERR_NOT_FOUND,
				  "pairing %s has no %s session on this rctd, and no record", id,
				  role ? role_name(role) : "");
	}
	if (role && t->role != role) {
		snprintf(name, sizeof(name), "%s", t->name);
		pthread_mutex_unlock(&d->lock);
		return reply_fail(r, -EBUSY, RCT_ERR_STATE,
				  "pairing %s: its session %s on this rctd is the %s, not the %s",
				  id, name, role_name(t->role), role_name(role));
	}
	if (t == me || t->state == RCTD_SESS_FAILED) {
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	t->stop_req = true;
	t->stop_reason = reason;
	if (t->wake_fd >= 0 && write(t->wake_fd, &(uint64_t){1}, sizeof(uint64_t)) < 0)
		rctd_warn("pairing %s: waking session %s: %s", id, t->name, strerror(errno));
	tid = t->id;
	snprintf(name, sizeof(name), "%s", t->name);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += d->cfg.msg_timeout_ms / 1000;
	ts.tv_nsec += (long)(d->cfg.msg_timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	for (;;) {
		t = conn_by_id(d, tid);
		if (!t || !t->stop_req)
			break;
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&d->lock);
			return reply_fail(r, -ETIMEDOUT, RCT_ERR_TIMED_OUT,
					  "pairing %s: session %s is inside a request (ACCEPT, or "
					  "a checkpoint's step) after %d ms; it stops when that "
					  "returns",
					  id, name, d->cfg.msg_timeout_ms);
		}
	}
	pthread_mutex_unlock(&d->lock);
	rctd_info("pairing %s: session %s stopped (%s) by client %" PRIu64 " (pid %d)", id, name,
		  reason == RCT_GOODBYE_FAILOVER ? "failover"
		  : reason == RCT_GOODBYE_DEMOTE ? "demote"
						 : "abort",
		  me->id, (int)me->pid);
	return 0;
}

/* The epoch the pairing's secondary holds whole: flushed, or ready to flush. */
static uint64_t held_epoch(struct rctd *d, const char *id, uint64_t recorded)
{
	uint64_t e = recorded;
	struct rctd_conn *t;

	pthread_mutex_lock(&d->lock);
	t = pairing_conn(d, id);
	if (t && t->role == RCT_ROLE_SECONDARY) {
		if (t->m.last_epoch != NO_EPOCH && (e == NO_EPOCH || t->m.last_epoch > e))
			e = t->m.last_epoch;
		if (t->ready_pending && t->ready_epoch != NO_EPOCH &&
		    (e == NO_EPOCH || t->ready_epoch > e))
			e = t->ready_epoch;
	}
	pthread_mutex_unlock(&d->lock);
	return e;
}

/* Record @ps for @id (durably) and give every session of it the new fields. */
static int pairing_record(struct rctd_conn *me, const char *id, struct rctd_pairing_state *ps,
			  struct reply *r)
{
	struct rctd *d = me->d;
	int rc = rctd_state_write(d, id, ps, true);

	ps->found = ps->found || !rc;
	if (rc)
		return reply_fail(r, rc, RCT_ERR_SYSTEM,
				  "pairing %s: recording generation %" PRIu64 " in %s: %s", id,
				  ps->generation, d->cfg.state_dir, strerror(-rc));
	pthread_mutex_lock(&d->lock);
	for (struct rctd_conn *c = d->conns; c; c = c->next) {
		if (!c->pair.proved || strcmp(c->pair.id, id))
			continue;
		c->pair.generation = ps->generation;
		c->pair.demoted = ps->demoted;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* How an order rewrites a pairing's record. */
enum pairing_rewrite {
	REWRITE_DEMOTE,	  /* demoted at its generation */
	REWRITE_FAILOVER, /* a new generation, with the epoch this host holds */
	REWRITE_NEW,	  /* a new generation, no epoch: a fresh guest */
};

/*
 * Rewrite @w's pairing's record as @how says, read and written under
 * d->state_lock.  A new generation is above both the recorded one and the
 * floor, and not demoted.
 */
static int pairing_rewrite(struct rctd_conn *c, const struct ipc_pairing_ctl *w,
			   enum pairing_rewrite how, struct rctd_pairing_state *ps, struct reply *r)
{
	struct rctd *d = c->d;
	int rc;

	pthread_mutex_lock(&d->state_lock);
	rc = rctd_state_read(d, w->id, ps);
	if (!rc && how == REWRITE_DEMOTE) {
		ps->demoted = ps->generation;
	} else if (!rc && (w->min_generation >= RCTD_GENERATION_MAX ||
			   ps->generation >= RCTD_GENERATION_MAX)) {
		rc = reply_fail(r, -ERANGE, RCT_ERR_INVALID_PARAM,
				"pairing %s: a generation above %" PRIu64 " (recorded %" PRIu64
				") is beyond the limit %" PRId64,
				w->id, w->min_generation, ps->generation,
				(int64_t)RCTD_GENERATION_MAX);
		pthread_mutex_unlock(&d->state_lock);
		return rc;
	} else if (!rc) {
		if (ps->generation < w->min_generation)
			ps->generation = w->min_generation;
		ps->generation++;
		ps->last_committed = how == REWRITE_FAILOVER
					     ? held_epoch(d, w->id, ps->last_committed)
					     : NO_EPOCH;
		ps->demoted = NO_EPOCH;
		/* A fresh guest may come with a new pairing key: the first
		 * session that proves one records it. */
		if (how == REWRITE_NEW)
			ps->has_verifier = false;
	}
	if (!rc)
		rc = pairing_record(c, w->id, ps, r);
	else
		rc = reply_fail(r, rc, RCT_ERR_SYSTEM, "pairing %s: reading its state: %s", w->id,
				strerror(-rc));
	pthread_mutex_unlock(&d->state_lock);
	return rc;
}

static json_t *epoch_json(uint64_t e)
{
	return e == NO_EPOCH ? json_null() : json_integer((json_int_t)e);
}

/* The reply: the pairing's record and its session after @done. */
static json_t *pairing_json(struct rctd *d, const char *id, const struct rctd_pairing_state *ps,
			    const char *done)
{
	json_t *j = json_pack("{s:s, s:s, s:b, s:I}", "pairing", id, "done", done, "recorded",
			      ps->found, "generation", (json_int_t)ps->generation);
	struct rctd_conn *t;
	uint64_t torn, flushing;

	if (!j)
		return NULL;
	json_object_set_new(j, "last_committed_epoch", epoch_json(ps->last_committed));
	json_object_set_new(j, "demoted_at_generation", epoch_json(ps->demoted));
	/* A flush that never finished: guest RAM holds no whole epoch.  One
	 * under way is named apart. */
	if (pairing_torn(d, id, &torn, &flushing))
		torn = UINT64_MAX - 1; /* unreadable: not offered as whole */
	json_object_set_new(j, "torn_at_epoch",
			    torn == UINT64_MAX	     ? json_null()
			    : torn == UINT64_MAX - 1 ? json_string("unknown")
						     : json_integer((json_int_t)torn));
	json_object_set_new(j, "flushing_epoch",
			    flushing == UINT64_MAX	 ? json_null()
			    : flushing == UINT64_MAX - 1 ? json_string("unknown")
							 : json_integer((json_int_t)flushing));
	pthread_mutex_lock(&d->lock);
	t = pairing_conn(d, id);
	json_object_set_new(j, "session", t ? rctd_session_json(t) : json_null());
	pthread_mutex_unlock(&d->lock);
	return j;
}

static int pairing_op(struct rctd_conn *c, const struct ipc_pairing_ctl *w,
		      struct rctd_pairing_state *ps, const char **done, struct reply *r)
{
	struct rctd *d = c->d;
	uint64_t held, torn;
	char num[64];
	int rc;

	switch (w->op) {
	case RCT_IPC_PAIRING_SHOW:
		*done = "show";
		return 0;
	case RCT_IPC_PAIRING_ABORT:
		*done = "abort";
		return pairing_stop(c, w->id, 0, RCT_GOODBYE_ABORT, true, r);
	case RCT_IPC_PAIRING_DEMOTE:
		*done = "demote";
		rc = pairing_stop(c, w->id, RCT_ROLE_PRIMARY, RCT_GOODBYE_DEMOTE, true, r);
		if (rc)
			return rc;
		return pairing_rewrite(c, w, REWRITE_DEMOTE, ps, r);
	case RCT_IPC_PAIRING_FAILOVER:
		*done = "failover";
		rc = pairing_torn(d, w->id, &torn, NULL);
		if (rc == -ETIMEDOUT)
			return reply_fail(r, -EBUSY, RCT_ERR_STATE,
					  "pairing %s: a flush is still under way after %d ms; "
					  "ask again",
					  w->id, d->cfg.msg_timeout_ms);
		if (rc || torn != NO_EPOCH) {
			if (rc)
				snprintf(num, sizeof(num), "unknown: %s", strerror(-rc));
			else if (torn == NO_EPOCH - 1)
				snprintf(num, sizeof(num), "unknown");
			else
				snprintf(num, sizeof(num), "%" PRIu64, torn);
			return reply_fail(
				r, -EUCLEAN, RCT_ERR_STATE,
				"pairing %s: this host's guest RAM was left half-flushed "
				"(epoch %s: rctd or its flush stopped in the middle of the "
				"copy); it holds no image to fail over to until a resync "
				"completes",
				w->id, num);
		}
		held = held_epoch(d, w->id, ps->last_committed);
		if (ps->generation < w->min_generation ||
		    (ps->generation == w->min_generation && w->min_epoch != NO_EPOCH &&
		     (held == NO_EPOCH || held < w->min_epoch)))
			return reply_fail(r, -ESTALE, RCT_ERR_MISMATCH,
					  "pairing %s: this host holds generation %" PRIu64
					  ", epoch %" PRId64 "; the floor is generation %" PRIu64
					  ", epoch %" PRId64 ": its data is stale, no failover",
					  w->id, ps->generation, (int64_t)held, w->min_generation,
					  (int64_t)w->min_epoch);
		/* Without a session (its hypervisor closed it when the primary
		 * went) the record is what this host holds. */
		rc = pairing_stop(c, w->id, RCT_ROLE_SECONDARY, RCT_GOODBYE_FAILOVER, ps->found, r);
		if (rc)
			return rc;
		rc = pairing_rewrite(c, w, REWRITE_FAILOVER, ps, r);
		if (!rc)
			rctd_info("pairing %s: failed over here at generation %" PRIu64
				  ", epoch %" PRId64,
				  w->id, ps->generation, (int64_t)ps->last_committed);
		return rc;
	case RCT_IPC_PAIRING_NEW:
		*done = "new";
		pthread_mutex_lock(&d->lock);
		if (pairing_conn(d, w->id)) {
			pthread_mutex_unlock(&d->lock);
			return reply_fail(
				r, -EBUSY, RCT_ERR_STATE,
				"pairing %s has a session on this rctd: a new generation "
				"is for a guest that starts afresh (stop its session first)",
				w->id);
		}
		pthread_mutex_unlock(&d->lock);
		rc = pairing_rewrite(c, w, REWRITE_NEW, ps, r);
		if (!rc && (rc = rctd_flush_mark_remove(d, w->id)))
			reply_fail(r, rc, RCT_ERR_SYSTEM, "pairing %s: removing its flush mark: %s",
				   w->id, strerror(-rc));
		if (!rc)
			rctd_info("pairing %s: new generation %" PRIu64, w->id, ps->generation);
		return rc;
	}
	return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM, "PAIRING_CTL op %u", w->op);
}

int h_pairing_ctl(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
		  union ipc_body *out, struct reply *r)
{
	const struct ipc_pairing_ctl *w = &in->pairing_ctl;
	struct rctd_pairing_state ps;
	const char *done = "";
	int rc;

	(void)m;
	if (!c->admin)
		return reply_fail(r, -EPERM, RCT_ERR_INVALID_PARAM,
				  "PAIRING_CTL is for root or uid %u only", (unsigned)geteuid());
	if (!rctd_pairing_id_ok(w->id))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "pairing identity '%.64s': 1..%d of letters, digits, - _ . : "
				  "(not starting with .)",
				  w->id, RCT_IPC_PAIRING_ID_MAX - 1);
	rc = rctd_state_read(c->d, w->id, &ps);
	if (rc)
		return reply_fail(r, rc, RCT_ERR_SYSTEM, "pairing %s: reading its state in %s: %s",
				  w->id, c->d->cfg.state_dir, strerror(-rc));
	rc = pairing_op(c, w, &ps, &done, r);
	if (rc)
		return rc;
	return reply_json(r, out, pairing_json(c->d, w->id, &ps, done));
}

/* Under d->state_lock: @ps for @c's pairing as its proved session leaves it. */
static int pairing_proved_record(struct rctd_conn *c, uint64_t gen, struct rctd_pairing_state *ps,
				 struct reply *r)
{
	struct rctd *d = c->d;
	bool changed = false;
	struct rctd_conn *o;
	int rc;

	/* Two sessions of it connected at once (each proved by its own peer):
	 * the one that proved it first keeps it. */
	pthread_mutex_lock(&d->lock);
	o = conn_pairing_rival(c, c->pair.id, NULL);
	rc = o ? conn_pairing_busy(r, o, c->pair.id) : 0;
	pthread_mutex_unlock(&d->lock);
	if (rc)
		return rc;
	rc = rctd_state_read(d, c->pair.id, ps);
	if (rc)
		return reply_fail(r, rc, RCT_ERR_SYSTEM, "pairing %s: reading its state in %s: %s",
				  c->pair.id, d->cfg.state_dir, strerror(-rc));
	/* What changed since SESSION_PAIRING checked the record. */
	if (ps->has_verifier && c->pair.has_key &&
	    memcmp(ps->verifier, c->pair.verifier, RCTD_VERIFIER_LEN))
		return reply_fail(r, -EKEYREJECTED, RCT_ERR_AUTH,
				  "pairing %s: another pairing key was recorded for it while this "
				  "session connected",
				  c->pair.id);
	if (gen < ps->generation)
		return reply_fail(r, -ESTALE, RCT_ERR_MISMATCH,
				  "pairing %s moved to generation %" PRIu64
				  " while this session of generation %" PRIu64 " connected",
				  c->pair.id, ps->generation, gen);
	if (c->role == RCT_ROLE_PRIMARY && ps->demoted != NO_EPOCH && gen <= ps->demoted)
		return reply_fail(r, -ESTALE, RCT_ERR_MISMATCH,
				  "pairing %s was demoted on this host at generation %" PRIu64
				  " while this session connected",
				  c->pair.id, ps->demoted);
	/* A newer generation is a new lineage, which starts with a full sync:
	 * this host's last epoch was of the old one. */
	if ((gen > ps->generation || c->pair.new_lineage) && ps->last_committed != NO_EPOCH) {
		ps->last_committed = NO_EPOCH;
		changed = true;
	}
	/* A secondary of a newer generation: a demotion of an older one is history. */
	if (c->role == RCT_ROLE_SECONDARY && gen > ps->generation && ps->demoted != NO_EPOCH) {
		ps->demoted = NO_EPOCH;
		changed = true;
	}
	if (!ps->found || gen != ps->generation) {
		ps->generation = gen;
		changed = true;
	}
	if (!ps->has_verifier && c->pair.has_key) {
		memcpy(ps->verifier, c->pair.verifier, RCTD_VERIFIER_LEN);
		ps->has_verifier = true;
		changed = true;
	}
	rc = changed ? rctd_state_write(d, c->pair.id, ps, true) : 0;
	if (rc)
		return reply_fail(r, rc, RCT_ERR_SYSTEM,
				  "pairing %s: recording generation %" PRIu64 " in %s: %s",
				  c->pair.id, gen, d->cfg.state_dir, strerror(-rc));
	ps->found = true;
	if (changed)
		rctd_info("pairing %s: recorded generation %" PRIu64
			  " (the peer proved the key; session %s)",
			  c->pair.id, gen, c->name);
	return 0;
}

int conn_pairing_proved(struct rctd_conn *c, struct reply *r)
{
	struct rctd_pairing_state ps;
	uint64_t gen;
	int rc;

	if (!c->pair.bound)
		return 0;
	/* A secondary runs at the generation its primary proved. */
	gen = c->role == RCT_ROLE_SECONDARY ? rct_session_generation(c->sess) : c->pair.generation;
	pthread_mutex_lock(&c->d->state_lock);
	rc = pairing_proved_record(c, gen, &ps, r);
	if (!rc) {
		pthread_mutex_lock(&c->d->lock);
		c->pair.proved = true;
		c->pair.generation = gen;
		c->pair.demoted = ps.demoted;
		c->m.last_epoch = c->pair.saved_epoch = ps.last_committed;
		pthread_mutex_unlock(&c->d->lock);
	}
	pthread_mutex_unlock(&c->d->state_lock);
	/* A secondary's flushes mark the pairing's guest RAM torn while they copy. */
	if (!rc && c->role == RCT_ROLE_SECONDARY && !c->pair.flush_mark) {
		rc = rctd_flush_mark_open(c->d, c->pair.id, &c->pair.flush_mark);
		if (rc)
			reply_fail(r, rc, RCT_ERR_SYSTEM, "pairing %s: its flush mark in %s: %s",
				   c->pair.id, c->d->cfg.state_dir, strerror(-rc));
	}
	if (rc) {
		/* Connected, but not as this pairing: the peer hears why it ends. */
		rct_session_abort(c->sess, RCT_GOODBYE_ABORT);
		conn_set_state(c, RCTD_SESS_FAILED);
	}
	return rc;
}
