/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Metrics: per-session counters and latency histograms, served as Prometheus
 * text by libmicrohttpd (its own thread) on a loopback port, and as JSON for
 * rctctl.
 *
 * A histogram keeps two sets of buckets.  The fine set is log-linear (eight
 * sub-buckets per power of two of nanoseconds, so a quantile read from it is
 * within 12.5 % of the true value) and gives p50 / p99 / p999; the coarse set
 * is the fixed `le` ladder Prometheus scrapes, counted exactly.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rctd.h"

static const double prom_le[RCTD_PROM_BUCKETS] = {
	10e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
	25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0,  10.0,
};

uint64_t rctd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *rctd_sess_state_str(enum rctd_sess_state s)
{
	switch (s) {
	case RCTD_SESS_NONE:
		return "none";
	case RCTD_SESS_OPEN:
		return "open";
	case RCTD_SESS_LISTENING:
		return "listening";
	case RCTD_SESS_CONNECTED:
		return "connected";
	case RCTD_SESS_FAILED:
		return "failed";
	}
	return "unknown";
}

static unsigned hist_index(uint64_t v)
{
	unsigned e;

	if (v < 8)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - 2) * 8 + (unsigned)((v >> (e - 3)) & 7);
}

/* Exclusive upper edge of fine bucket @i. */
static uint64_t hist_upper(unsigned i)
{
	unsigned e, sub;

	if (i < 8)
		return i + 1;
	e = i / 8 + 2;
	sub = i % 8;
	if (e >= 63 && sub == 7)
		return UINT64_MAX;
	return (uint64_t)(9 + sub) << (e - 3);
}

void rctd_hist_add(struct rctd_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;

	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->fine[hist_index(ns)]++;
	for (unsigned i = 0; i < RCTD_PROM_BUCKETS; i++)
		if (s <= prom_le[i])
			h->prom[i]++;
}

uint64_t rctd_hist_quantile(const struct rctd_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < RCTD_HIST_BUCKETS; i++) {
		seen += h->fine[i];
		if (seen >= rank) {
			uint64_t up = hist_upper(i);

			return up < h->max_ns ? up : h->max_ns;
		}
	}
	return h->max_ns;
}

static json_t *hist_json(const struct rctd_hist *h)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)h->count, "mean",
			 h->count ? (double)h->sum_ns / (double)h->count / 1e6 : 0.0, "p50",
			 (double)rctd_hist_quantile(h, 0.5) / 1e6, "p99",
			 (double)rctd_hist_quantile(h, 0.99) / 1e6, "p999",
			 (double)rctd_hist_quantile(h, 0.999) / 1e6, "max",
			 (double)h->max_ns / 1e6);
}

/* What the session protects, in a resource agent's words (DESIGN.md). */
static const char *replication_str(const struct rctd_conn *c, const struct rct_sync_progress *sp)
{
	switch (c->state) {
	case RCTD_SESS_CONNECTED:
		if (sp->active)
			return "resyncing";
		return c->in_sync ? "in sync" : "connected, not in sync";
	case RCTD_SESS_FAILED:
		if (c->stopped_by == 1 + RCT_GOODBYE_FAILOVER)
			return "failed over (takes nothing more from the primary)";
		if (c->stopped_by == 1 + RCT_GOODBYE_DEMOTE)
			return "demoted (stopped sending to the secondary)";
		if (c->stopped_by)
			return "aborted on this host";
		if (c->peer_closed)
			return c->role == RCT_ROLE_PRIMARY
				       ? "unprotected (the secondary closed the session)"
				       : "primary closed the session (last image kept)";
		return c->role == RCT_ROLE_PRIMARY ? "unprotected (secondary lost)"
						   : "primary lost (failover image kept)";
	default:
		return c->role == RCT_ROLE_PRIMARY ? "unprotected (no secondary)" : "waiting";
	}
}

/* The full sync's progress: pages, rate, time left. */
static json_t *sync_json(const struct rct_sync_progress *sp, uint32_t page_size)
{
	double s = (double)sp->elapsed_ns / 1e9;
	double rate = s > 0 ? (double)sp->pages_done / s : 0;
	json_t *j = json_pack("{s:b, s:I, s:I, s:f, s:f, s:f}", "active", sp->active, "pages_done",
			      (json_int_t)sp->pages_done, "pages_total",
			      (json_int_t)sp->pages_total, "elapsed_s", s, "pages_per_s", rate,
			      "bytes_per_s", rate * page_size);

	if (j)
		json_object_set_new(
			j, "eta_s",
			sp->active && rate > 0
				? json_real((double)(sp->pages_total - sp->pages_done) / rate)
				: json_null());
	return j;
}

json_t *rctd_session_json(const struct rctd_conn *c)
{
	const struct rctd_metrics *m = &c->m;
	struct rct_sync_progress sp = {0};
	json_t *j;

	/* The session pointer is stable under d->lock (conn_session_close). */
	if (c->sess && c->role == RCT_ROLE_PRIMARY)
		rct_session_sync_progress(c->sess, &sp);

	j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:i}", "id",
		      (json_int_t)c->session_id, "name", c->name, "role",
		      c->role == RCT_ROLE_PRIMARY ? "primary" : "secondary", "backend", c->backend,
		      "state", rctd_sess_state_str(c->state), "peer", c->peer, "lanes",
		      (int)c->lanes, "client_pid", (int)c->pid, "client_uid", (int)c->uid, "client",
		      c->client, "regions", (int)c->nregions);
	if (!j)
		return NULL;
	json_object_set_new(j, "last_committed_epoch",
			    m->last_epoch == UINT64_MAX ? json_null()
							: json_integer((json_int_t)m->last_epoch));
	json_object_set_new(j, "checkpoints", json_integer((json_int_t)m->checkpoints));
	json_object_set_new(j, "failures", json_integer((json_int_t)m->failures));
	json_object_set_new(j, "refused", json_integer((json_int_t)m->refused));
	json_object_set_new(j, "pages", json_integer((json_int_t)m->pages));
	json_object_set_new(j, "bytes", json_integer((json_int_t)m->bytes));
	json_object_set_new(j, "devstate_bytes", json_integer((json_int_t)m->devstate_bytes));
	json_object_set_new(j, "flushed_pages", json_integer((json_int_t)m->flushed_pages));
	json_object_set_new(j, "transfer_ms", hist_json(&m->transfer));
	json_object_set_new(j, "commit_rtt_ms", hist_json(&m->commit_rtt));
	json_object_set_new(j, "flush_ms", hist_json(&m->flush));
	json_object_set_new(j, "replication", json_string(replication_str(c, &sp)));
	json_object_set_new(j, "transport",
			    c->transport[0] ? json_string(c->transport) : json_null());
	json_object_set_new(j, "pairing", c->pair.bound ? json_string(c->pair.id) : json_null());
	json_object_set_new(j, "generation", json_integer((json_int_t)c->pair.generation));
	json_object_set_new(j, "stalls",
			    json_pack("{s:I, s:f, s:I, s:f}", "process",
				      (json_int_t)m->stalls_process, "process_max_ms",
				      (double)m->stall_max_ns_process / 1e6, "session",
				      (json_int_t)m->stalls_session, "session_max_ms",
				      (double)m->stall_max_ns_session / 1e6));
	if (c->live.field_mask)
		json_object_set_new(
			j, "liveness",
			json_pack("{s:I, s:I, s:I, s:f, s:f}", "beats_sent",
				  (json_int_t)c->live.beats_sent, "beats_received",
				  (json_int_t)c->live.beats_received, "beats_rejected",
				  (json_int_t)c->live.beats_rejected, "peer_silence_max_ms",
				  (double)c->live.peer_silence_max_ns / 1e6, "peer_stall_max_ms",
				  (double)c->live.peer_stall_max_ns / 1e6));
	if (sp.pages_total)
		json_object_set_new(j, "sync", sync_json(&sp, c->page_size));
	if (c->state == RCTD_SESS_FAILED)
		json_object_set_new(j, "lost", json_string(rct_status_str(c->lost_status)));
	if (c->state == RCTD_SESS_FAILED && c->role == RCT_ROLE_SECONDARY)
		json_object_set_new(j, "failover_epoch",
				    c->lost_epoch == UINT64_MAX
					    ? json_null()
					    : json_integer((json_int_t)c->lost_epoch));
	return j;
}

/* Whether @asker (NULL: rctd itself) may see connection @c: root and rctd's
 * own user see every tenant, a tenant (a client uid) its own. */
static bool visible(const struct rctd_conn *asker, const struct rctd_conn *c)
{
	return !asker || asker->admin || asker->uid == c->uid;
}

/* One line per session for `status`: name, role, replication state, sync. */
static json_t *replication_json(struct rctd *d, const struct rctd_conn *asker)
{
	json_t *a = json_array();

	for (struct rctd_conn *c = d->conns; a && c; c = c->next) {
		json_t *full, *j;

		if (c->state == RCTD_SESS_NONE || !visible(asker, c))
			continue;
		full = rctd_session_json(c);
		j = json_pack("{s:s, s:s, s:s}", "name", c->name, "role",
			      c->role == RCT_ROLE_PRIMARY ? "primary" : "secondary", "replication",
			      json_string_value(json_object_get(full, "replication")));
		if (j && json_object_get(full, "sync"))
			json_object_set(j, "sync", json_object_get(full, "sync"));
		if (j && json_object_get(full, "failover_epoch"))
			json_object_set(j, "failover_epoch",
					json_object_get(full, "failover_epoch"));
		json_object_set(j, "last_committed_epoch",
				json_object_get(full, "last_committed_epoch"));
		json_object_set(j, "pairing", json_object_get(full, "pairing"));
		json_object_set(j, "generation", json_object_get(full, "generation"));
		json_object_set(j, "transport", json_object_get(full, "transport"));
		json_decref(full);
		json_array_append_new(a, j);
	}
	return a;
}

static json_t *backends_json(void)
{
	static const char *const names[] = {"tcp", "ucx", "verbs"};
	json_t *a = json_array();

	for (size_t i = 0; a && i < sizeof(names) / sizeof(names[0]); i++)
		if (rct_backend_available(names[i]))
			json_array_append_new(a, json_string(names[i]));
	return a;
}

json_t *rctd_status_json(struct rctd *d, const struct rctd_conn *asker)
{
	unsigned sessions = 0, conns = 0;
	uint64_t registered = 0;
	unsigned kept_fds = 0;
	json_t *j;

	pthread_mutex_lock(&d->lock);
	for (struct rctd_conn *c = d->conns; c; c = c->next) {
		if (!visible(asker, c))
			continue;
		conns++;
		sessions += c->state != RCTD_SESS_NONE;
		registered += c->charged;
		kept_fds += c->kept_fds;
	}
	if (!asker || asker->admin) {
		registered = d->registered;
		kept_fds = d->kept_fds;
	}
	j = json_pack("{s:s, s:i, s:i, s:I, s:i, s:i, s:s, s:o}", "daemon", "rctd", "version",
		      RCT_IPC_VERSION, "pid", (int)getpid(), "uptime_s",
		      (json_int_t)((rctd_now_ns() - d->started_ns) / 1000000000ull), "connections",
		      (int)conns, "sessions", (int)sessions, "socket", d->cfg.socket_path,
		      "backends", backends_json());
	/* A tenant's view: its own connections, sessions and bytes. */
	if (j)
		json_object_set_new(j, "view", json_string(!asker || asker->admin ? "all" : "own"));
	if (j)
		json_object_set_new(
			j, "limits",
			json_pack("{s:i, s:i, s:i, s:I, s:I, s:i, s:i, s:i}", "connections",
				  RCTD_MAX_CONNS, "connections_per_uid", d->cfg.max_conns_per_uid,
				  "kept_for_admins", RCTD_ADMIN_RESERVE, "held_bytes",
				  (json_int_t)d->cfg.max_registered, "held_bytes_per_uid",
				  (json_int_t)d->cfg.max_registered_per_uid,
				  "kept_descriptors_of_guest_files", (int)d->fd_budget,
				  "kept_descriptors_per_uid", d->cfg.max_fds_per_uid, "open_files",
				  (int)d->nofile));
	if (j)
		json_object_set_new(j, "peer_auth", json_boolean(d->has_psk));
	if (j)
		json_object_set_new(j, "heartbeat_ms", json_integer(d->cfg.heartbeat_ms));
	if (j)
		json_object_set_new(j, "liveness",
				    json_string(d->cfg.inband ? "inband" : "thread"));
	if (j)
		json_object_set_new(j, "registered_bytes", json_integer((json_int_t)registered));
	if (j)
		json_object_set_new(j, "kept_descriptors", json_integer((json_int_t)kept_fds));
	if (j)
		json_object_set_new(j, "max_registered_bytes",
				    json_integer((json_int_t)d->cfg.max_registered));
	if (j)
		json_object_set_new(j, "replication", replication_json(d, asker));
	if (j)
		json_object_set_new(j, "metrics_port",
				    d->metrics_port >= 0 ? json_integer(d->metrics_port)
							 : json_null());
	pthread_mutex_unlock(&d->lock);
	return j;
}

json_t *rctd_sessions_json(struct rctd *d)
{
	json_t *a = json_array();

	pthread_mutex_lock(&d->lock);
	for (struct rctd_conn *c = d->conns; a && c; c = c->next)
		if (c->state != RCTD_SESS_NONE)
			json_array_append_new(a, rctd_session_json(c));
	pthread_mutex_unlock(&d->lock);
	return a;
}

/* ------------------------------------------------------------ Prometheus */

struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0 || t->oom)
			return;
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap ? t->cap * 2 : 16384) + (size_t)n;
		char *p = realloc(t->buf, cap);

		if (!p) {
			t->oom = true;
			return;
		}
		t->buf = p;
		t->cap = cap;
	}
}

/* Histogram @offset of struct rctd_metrics, for every session. */
static void prom_hist(struct text *t, const char *metric, const char *help,
		      const struct rctd_conn *first, size_t offset)
{
	text_add(t, "# HELP %s %s\n# TYPE %s histogram\n", metric, help, metric);
	for (const struct rctd_conn *c = first; c; c = c->next) {
		const struct rctd_hist *h;

		if (c->state == RCTD_SESS_NONE)
			continue;
		h = (const struct rctd_hist *)((const uint8_t *)&c->m + offset);
		for (unsigned i = 0; i < RCTD_PROM_BUCKETS; i++)
			text_add(t, "%s_bucket{session=\"%s\",uid=\"%u\",le=\"%g\"} %" PRIu64 "\n",
				 metric, c->name, (unsigned)c->uid, prom_le[i], h->prom[i]);
		text_add(t, "%s_bucket{session=\"%s\",uid=\"%u\",le=\"+Inf\"} %" PRIu64 "\n",
			 metric, c->name, (unsigned)c->uid, h->count);
		text_add(t,
			 "%s_sum{session=\"%s\",uid=\"%u\"} "
			 "%.9f\n%s_count{session=\"%s\",uid=\"%u\"} %" PRIu64 "\n",
			 metric, c->name, (unsigned)c->uid, (double)h->sum_ns / 1e9, metric,
			 c->name, (unsigned)c->uid, h->count);
	}
	/* Precomputed quantiles under another family name: the label
	 * "quantile" belongs to summaries (promtool refuses it elsewhere). */
	int base = (int)(strlen(metric) - strlen("_seconds"));

	text_add(t, "# HELP %.*s_quantile_seconds %s (p50, p99, p999 from log-linear buckets)\n",
		 base, metric, help);
	text_add(t, "# TYPE %.*s_quantile_seconds gauge\n", base, metric);
	for (const struct rctd_conn *c = first; c; c = c->next) {
		static const struct {
			double q;
			const char *label;
		} qs[] = {{0.5, "0.5"}, {0.99, "0.99"}, {0.999, "0.999"}};
		const struct rctd_hist *h;

		if (c->state == RCTD_SESS_NONE)
			continue;
		h = (const struct rctd_hist *)((const uint8_t *)&c->m + offset);
		for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
			text_add(t,
				 "%.*s_quantile_seconds{session=\"%s\",uid=\"%u\",q=\"%s\"} %.9f\n",
				 base, metric, c->name, (unsigned)c->uid, qs[i].label,
				 (double)rctd_hist_quantile(h, qs[i].q) / 1e9);
	}
}

static void prom_counter(struct text *t, const char *metric, const char *type, const char *help,
			 const struct rctd_conn *first, size_t offset)
{
	text_add(t, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
	for (const struct rctd_conn *c = first; c; c = c->next) {
		uint64_t v;

		if (c->state == RCTD_SESS_NONE)
			continue;
		memcpy(&v, (const uint8_t *)&c->m + offset, sizeof(v));
		if (v == UINT64_MAX)
			continue; /* no epoch committed yet */
		text_add(t, "%s{session=\"%s\",uid=\"%u\"} %" PRIu64 "\n", metric, c->name,
			 (unsigned)c->uid, v);
	}
}

/* Local stalls by kind: the process did not run, or the session was not driven. */
static void prom_stalls(struct text *t, const struct rctd_conn *first)
{
	text_add(t, "# HELP rct_stalls_total Local stalls of an interval or more (kind process: "
		    "rctd did not run; session: the session was not driven); never counted "
		    "as the peer's loss\n# TYPE rct_stalls_total counter\n");
	for (const struct rctd_conn *c = first; c; c = c->next)
		if (c->state != RCTD_SESS_NONE)
			text_add(t,
				 "rct_stalls_total{session=\"%s\",uid=\"%u\",kind=\"process\"} "
				 "%" PRIu64 "\nrct_stalls_total{session=\"%s\",uid=\"%u\",kind="
				 "\"session\"} %" PRIu64 "\n",
				 c->name, (unsigned)c->uid, c->m.stalls_process, c->name,
				 (unsigned)c->uid, c->m.stalls_session);
	text_add(t, "# HELP rct_stall_max_seconds The longest local stall, by kind\n"
		    "# TYPE rct_stall_max_seconds gauge\n");
	for (const struct rctd_conn *c = first; c; c = c->next)
		if (c->state != RCTD_SESS_NONE)
			text_add(t,
				 "rct_stall_max_seconds{session=\"%s\",uid=\"%u\",kind=\"process\"}"
				 " %.9f\n"
				 "rct_stall_max_seconds{session=\"%s\",uid=\"%u\",kind=\"session\"}"
				 " %.9f\n",
				 c->name, (unsigned)c->uid, (double)c->m.stall_max_ns_process / 1e9,
				 c->name, (unsigned)c->uid,
				 (double)c->m.stall_max_ns_session / 1e9);
}

static char *prom_text(struct rctd *d, size_t *len_p)
{
	struct text t = {0};

	pthread_mutex_lock(&d->lock);
	text_add(&t,
		 "# HELP rct_sessions Sessions served by this rctd.\n# TYPE rct_sessions gauge\n");
	{
		unsigned n = 0;

		for (struct rctd_conn *c = d->conns; c; c = c->next)
			n += c->state != RCTD_SESS_NONE;
		text_add(&t, "rct_sessions %u\n", n);
	}
	text_add(&t,
		 "# HELP rct_held_bytes Memory sessions make rctd hold (regions at their size, "
		 "staging, device-state buffers), and its limit (--max-registered).\n"
		 "# TYPE rct_held_bytes gauge\nrct_held_bytes %" PRIu64
		 "\n# HELP rct_held_bytes_limit The limit of rct_held_bytes.\n"
		 "# TYPE rct_held_bytes_limit gauge\nrct_held_bytes_limit %" PRIu64 "\n"
		 "# HELP rct_kept_descriptors Descriptors of guest files rctd keeps.\n"
		 "# TYPE rct_kept_descriptors gauge\nrct_kept_descriptors %u\n"
		 "# HELP rct_kept_descriptors_limit rctd's budget of them (from RLIMIT_NOFILE).\n"
		 "# TYPE rct_kept_descriptors_limit gauge\nrct_kept_descriptors_limit %u\n",
		 d->registered, d->cfg.max_registered, d->kept_fds, d->fd_budget);
	text_add(&t, "# HELP rct_session_info Role, backend and state of a session.\n"
		     "# TYPE rct_session_info gauge\n");
	for (struct rctd_conn *c = d->conns; c; c = c->next)
		if (c->state != RCTD_SESS_NONE)
			text_add(&t,
				 "rct_session_info{session=\"%s\",uid=\"%u\",role=\"%s\",backend="
				 "\"%s\","
				 "state=\"%s\"} 1\n",
				 c->name, (unsigned)c->uid,
				 c->role == RCT_ROLE_PRIMARY ? "primary" : "secondary", c->backend,
				 rctd_sess_state_str(c->state));
	prom_counter(&t, "rct_checkpoints_total", "counter",
		     "Checkpoints committed (primary) or flushed (secondary)", d->conns,
		     offsetof(struct rctd_metrics, checkpoints));
	prom_counter(&t, "rct_checkpoint_failures_total", "counter",
		     "Checkpoints that did not commit", d->conns,
		     offsetof(struct rctd_metrics, failures));
	prom_counter(&t, "rct_page_bytes_total", "counter", "Guest page bytes sent", d->conns,
		     offsetof(struct rctd_metrics, bytes));
	prom_counter(&t, "rct_devstate_bytes_total", "counter", "Device-state bytes sent", d->conns,
		     offsetof(struct rctd_metrics, devstate_bytes));
	prom_counter(&t, "rct_flushed_pages_total", "counter",
		     "Pages copied from the colo cache into guest RAM", d->conns,
		     offsetof(struct rctd_metrics, flushed_pages));
	prom_counter(&t, "rct_last_committed_epoch", "gauge", "Last committed epoch", d->conns,
		     offsetof(struct rctd_metrics, last_epoch));
	prom_hist(&t, "rct_transfer_seconds",
		  "Primary: first put posted to every byte acknowledged by the secondary", d->conns,
		  offsetof(struct rctd_metrics, transfer));
	prom_hist(&t, "rct_commit_rtt_seconds", "Primary: COMMIT sent to ACK received", d->conns,
		  offsetof(struct rctd_metrics, commit_rtt));
	prom_hist(&t, "rct_flush_seconds", "Secondary: colo cache to guest RAM copy", d->conns,
		  offsetof(struct rctd_metrics, flush));
	prom_stalls(&t, d->conns);
	pthread_mutex_unlock(&d->lock);
	if (t.oom) {
		free(t.buf);
		return NULL;
	}
	*len_p = t.len;
	return t.buf;
}

static enum MHD_Result metrics_answer(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct rctd *d = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned code = MHD_HTTP_OK;
	size_t len = 0;
	char *body;

	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		static const char msg[] = "only GET\n";

		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics")) {
		static const char msg[] = "rctd serves /metrics\n";

		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_NOT_FOUND;
	} else {
		body = prom_text(d, &len);
		if (!body)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

int rctd_metrics_start(struct rctd *d)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;

	d->metrics_port = -1;
	if (d->cfg.metrics_port < 0)
		return 0;
	if (inet_pton(AF_INET, d->cfg.metrics_addr, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		rctd_err("metrics address '%s': expected an IPv4 loopback address (127.x.y.z)",
			 d->cfg.metrics_addr);
		return -1;
	}
	sin.sin_port = htons((uint16_t)d->cfg.metrics_port);
	d->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
				  (uint16_t)d->cfg.metrics_port, NULL, NULL, metrics_answer, d,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
				  MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT,
				  10u, MHD_OPTION_END);
	if (!d->mhd) {
		rctd_err("cannot serve metrics on %s:%d (port in use?)", d->cfg.metrics_addr,
			 d->cfg.metrics_port);
		return -1;
	}
	info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
	d->metrics_port = info ? info->port : d->cfg.metrics_port;
	rctd_info("metrics on http://%s:%d/metrics", d->cfg.metrics_addr, d->metrics_port);
	return 0;
}

void rctd_metrics_stop(struct rctd *d)
{
	if (d->mhd)
		MHD_stop_daemon(d->mhd);
	d->mhd = NULL;
}
