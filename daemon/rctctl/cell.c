/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One cell: see cell.h.
 *
 * The deployment shape: guest -> rctd primary <-> rctd secondary <- guest.
 * Two real rctd processes (started here, or given by socket) serve the two
 * simulated hypervisors, which are librct-client clients.  Threads: the
 * caller's thread is the primary's hypervisor (pause, write the dirty bitmap
 * into the region's shared bitmap, begin, dirty, device state, commit,
 * resume); the secondary thread is the secondary's hypervisor (wait for
 * CKPT_READY, flush with the pages its own guest dirtied, compare, then dirty
 * a few pages of its own so that the next flush must restore them).  The
 * primary takes checkpoint e+1 only after the secondary reported on e, so the
 * snapshot the secondary compares with is stable while it reads it.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "../harness/harness.h"
#include "rctctl.h"
#include "cell.h"

#define CELL_REGION_ID 0
#define CELL_SCRIBBLES 16 /* pages the secondary's own guest dirties per interval */
#define RCT_MIN_U(a, b)                                                                            \
	((unsigned long)(a) < (unsigned long)(b) ? (unsigned long)(a) : (unsigned long)(b))

/* One verification report from the secondary; guarded by run.lock. */
struct cell_report {
	bool valid;
	uint64_t epoch;
	bool ok;
	char what[160];
	struct rct_ckpt_stats flush;
	double cpu_ms; /* CPU of the secondary's rctd for this epoch (when it is ours) */
};

struct cell {
	const struct cell_cfg *cfg;
	struct cell_env *env;
	struct rct_client *sc; /* the secondary hypervisor's connection to its rctd */
	uint16_t port;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cell_report report;
	bool secondary_done;
	char secondary_what[256]; /* why the secondary stopped */
	bool stop;
	void *devbuf; /* the secondary's expected device state */
	size_t devcap;
	uint64_t scribbled[CELL_SCRIBBLES]; /* the secondary's pages of the last interval */
	bool have_scribbled;
};

/*
 * CPU time of process @pid in ms, or 0 when unknown: the sum over its threads of
 * the scheduler's run time (/proc/PID/task/TID/schedstat, nanoseconds; the
 * clock-tick figures of /proc/PID/stat are 10 ms coarse).
 */
static double cell_proc_cpu_ms(pid_t pid)
{
	unsigned long long ns, sum = 0;
	char path[300];
	struct dirent *e;
	DIR *d;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.32s/schedstat", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		if (f)
			fclose(f);
	}
	closedir(d);
	return (double)sum / 1e6;
}

static void cell_post(struct cell *r, const struct cell_report *rep)
{
	pthread_mutex_lock(&r->lock);
	r->report = *rep;
	r->report.valid = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Flush ready epoch @epoch and compare guest RAM and device state with the primary's. */
static void cell_secondary_apply(struct cell *r, uint64_t epoch, double cpu_ms, uint64_t *rng)
{
	uint64_t npages = sim_guest_pages(r->env->g.pguest), bad;
	struct cell_report rep = {.epoch = epoch, .ok = false, .cpu_ms = cpu_ms};
	uint64_t *bits = r->env->g.sbits;
	const void *dev;
	size_t dev_len, want_len;
	int rc;

	/* The region's shared bitmap holds the pages the secondary's guest dirtied. */
	rc = rct_client_ckpt_flush(r->sc, epoch,
				   RCT_IPC_FLUSH_LOCAL_DIRTY |
					   (r->env->g.ssum ? RCT_IPC_FLUSH_LOCAL_SUMMARY : 0),
				   &rep.flush);
	if (rc) {
		snprintf(rep.what, sizeof(rep.what), "flush failed: %s (%.80s)", strerror(-rc),
			 rct_client_error(r->sc));
		goto out;
	}
	rc = rct_client_devstate_get(r->sc, epoch, &dev, &dev_len);
	if (rc) {
		snprintf(rep.what, sizeof(rep.what), "device state missing: %s (%.80s)",
			 strerror(-rc), rct_client_error(r->sc));
		goto out;
	}
	want_len = sim_devstate(r->cfg->seed, epoch, &r->devbuf, &r->devcap);
	if (dev_len != want_len || memcmp(dev, r->devbuf, dev_len)) {
		snprintf(rep.what, sizeof(rep.what),
			 "device state differs (%zu bytes, expected %zu)", dev_len, want_len);
		goto out;
	}
	if (epoch && epoch == r->cfg->corrupt_epoch) {
		/* Self-test of the verifier: one flipped byte must be caught. */
		uint64_t page = npages / 3;

		((uint8_t *)r->env->g.sram)[page * CELL_PAGE_SIZE + 100] ^= 0x01;
	}
	if (sim_guest_sparse(r->env->g.pguest)
		    ? !sim_compare_sparse(r->env->g.pguest, r->env->g.sram, r->env->g.smemfd, &bad)
		    : !sim_compare(r->env->g.sram, sim_guest_snapshot(r->env->g.pguest), npages,
				   CELL_PAGE_SIZE, &bad)) {
		snprintf(rep.what, sizeof(rep.what),
			 "guest RAM differs from the primary's snapshot: first at page %" PRIu64
			 " (offset 0x%" PRIx64 ")",
			 bad, bad * CELL_PAGE_SIZE);
		goto out;
	}
	rep.ok = true;

	/* The secondary guest runs until the next checkpoint and dirties pages of its own;
	 * they go into the shared bitmap rctd reads at the next flush (zero but
	 * for the last interval's, at the cell's start). */
	for (unsigned i = 0; r->have_scribbled && i < CELL_SCRIBBLES; i++) {
		uint64_t w = r->scribbled[i] / 64;

		bits[w] = 0;
		if (r->env->g.ssum) /* its summary, where there is one: the words written */
			r->env->g.ssum[w / 64] &= ~(1ull << (w % 64));
	}
	sim_scribble(r->env->g.sram, npages, CELL_PAGE_SIZE, CELL_SCRIBBLES, rng, bits,
		     r->scribbled);
	for (unsigned i = 0; r->env->g.ssum && i < CELL_SCRIBBLES; i++) {
		uint64_t w = r->scribbled[i] / 64;

		r->env->g.ssum[w / 64] |= 1ull << (w % 64);
	}
	r->have_scribbled = true;
out:
	cell_post(r, &rep);
}

static void *cell_secondary(void *arg)
{
	struct cell *r = arg;
	uint64_t rng = r->cfg->seed ^ 0x5ec0ull;
	double cpu0 = cell_proc_cpu_ms(r->env->spid), cpu;
	struct rct_event ev = {0};
	int rc;
	bool stop;

	memset(r->env->g.sbits, 0, r->env->g.bits_file);
	rc = rct_client_accept(r->sc, NULL);
	if (rc)
		snprintf(r->secondary_what, sizeof(r->secondary_what), "accept: %s (%.100s)",
			 strerror(-rc), rct_client_error(r->sc));
	while (!rc) {
		pthread_mutex_lock(&r->lock);
		stop = r->stop;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			break;
		rc = rct_client_event_next(r->sc, 50, &ev);
		if (rc == -EAGAIN) {
			rc = 0;
			continue;
		}
		if (rc) {
			snprintf(r->secondary_what, sizeof(r->secondary_what),
				 "connection to rctd: %s", strerror(-rc));
			break;
		}
		if (ev.type == RCT_EVENT_CKPT_READY) {
			/* CPU the secondary's rctd spent on this epoch (receiving, acking). */
			cpu = cell_proc_cpu_ms(r->env->spid);
			cell_secondary_apply(r, ev.epoch, cpu - cpu0, &rng);
			cpu0 = cell_proc_cpu_ms(r->env->spid);
		} else if (ev.type == RCT_EVENT_PEER_LOST) {
			char gone[64] = "";

			if (ev.discarded != UINT64_MAX)
				snprintf(gone, sizeof(gone), "; epoch %llu in flight discarded",
					 (unsigned long long)ev.discarded);
			snprintf(r->secondary_what, sizeof(r->secondary_what),
				 "peer lost: %.60s (failover image %lld%s)",
				 rct_status_str(ev.status),
				 ev.epoch == UINT64_MAX ? -1ll : (long long)ev.epoch, gone);
			rc = -ECONNRESET;
		} else if (ev.type == RCT_EVENT_RCTD_STOPPING) {
			snprintf(r->secondary_what, sizeof(r->secondary_what),
				 "the secondary's rctd is stopping (it was told to stop)");
			rc = -ESHUTDOWN;
		}
	}
	pthread_mutex_lock(&r->lock);
	r->secondary_done = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Wait for the secondary's report on @epoch: 0 verified, 1 differs, -1 no report. */
static int cell_wait_report(struct cell *r, uint64_t epoch, struct cell_report *rep)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* The secondary's report follows its flush, which on a cold or loaded host
	 * copies ~64 MB a second at worst (a 2 GiB first sync took 31 s beside a
	 * page-fault storm): wait a second per 64 MiB of guest on top. */
	ts.tv_sec += r->cfg->timeout_ms / 1000 + 30 + (time_t)(r->env->size >> 26);
	pthread_mutex_lock(&r->lock);
	while (!(r->report.valid && r->report.epoch == epoch) && !r->secondary_done && rc == 0)
		rc = pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	if (r->report.valid && r->report.epoch == epoch) {
		*rep = r->report;
		r->report.valid = false;
		rc = 0;
	} else {
		memset(rep, 0, sizeof(*rep));
		snprintf(rep->what, sizeof(rep->what), "no report from the secondary (%.120s)",
			 r->secondary_done ? r->secondary_what : "timed out");
		rc = -1;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc)
		return -1;
	return rep->ok ? 0 : 1;
}

static void cell_sleep_until(const struct timespec *t)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
		;
}

/* The pairing key of this run's VM, made once (the management layer's job). */
static const uint8_t *cell_pairing_key(void)
{
	static uint8_t key[RCT_IPC_PAIRING_KEY_LEN];
	static bool made;

	if (!made && getrandom(key, sizeof(key), 0) == (ssize_t)sizeof(key))
		made = true;
	return made ? key : NULL;
}

/* A client of rctd at @sock with this cell's session and guest region. */
static int cell_open(const struct cell_cfg *cfg, enum rct_role role, const char *sock, int memfd,
		     uint64_t size, int bits_fd, struct rct_client **c_p, char *what,
		     size_t what_len)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct rct_client_session p = {
		.role = role,
		.backend = cfg->backend,
		.lanes = cfg->lanes,
		.page_size = CELL_PAGE_SIZE,
		.timeout_ms = cfg->timeout_ms,
	};
	const char *side = role == RCT_ROLE_PRIMARY ? "primary" : "secondary";
	struct rct_client *c = NULL;
	char name[RCT_IPC_NAME_MAX];
	int rc;

	snprintf(name, sizeof(name), "%.20s.%s", cfg->vm_name ? cfg->vm_name : "demo-vm", side);
	p.name = name;

	if (cfg->threads >= 0)
		p.threads = (unsigned)cfg->threads;
	else
		p.threads = (unsigned)RCT_MIN_U(cfg->lanes, ncpu > 1 ? (unsigned long)ncpu : 1) - 1;
	rc = rct_client_open(sock, role == RCT_ROLE_PRIMARY ? "rctctl-primary" : "rctctl-secondary",
			     &c);
	if (rc) {
		snprintf(what, what_len, "%s: cannot reach rctd at %s: %s", side, sock,
			 strerror(-rc));
		return rc;
	}
	rc = rct_client_session_open(c, &p, NULL);
	/* Both guests of the run belong to one pairing: the VM and a key of its own. */
	if (!rc) {
		struct rct_client_pairing pr = {.id = cfg->vm_name ? cfg->vm_name : "demo-vm",
						.key = cell_pairing_key()};

		rc = rct_client_session_pairing(c, &pr, NULL);
	}
	if (!rc)
		rc = rct_client_region_add(c, CELL_REGION_ID, memfd, 0, size, bits_fd, 0, NULL);
	if (rc) {
		snprintf(what, what_len, "%s: %s (%.120s)", side, strerror(-rc),
			 rct_client_error(c));
		rct_client_close(c);
		return rc;
	}
	*c_p = c;
	return 0;
}

/* Copy @n pages of @list from @src to @dst; the time in ms. */
static double cell_copy_pages(uint8_t *dst, const uint8_t *src, const uint64_t *list, uint64_t n)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t i = 0; i < n; i++)
		memcpy(dst + list[i] * CELL_PAGE_SIZE, src + list[i] * CELL_PAGE_SIZE,
		       CELL_PAGE_SIZE);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

/*
 * The reference: copy the same dirty pages, in address order, with memcpy
 * into the scratch buffer, twice.  The first copy finds memory as the
 * transport does (this machine lets idle memory go cold, and a sparse
 * scratch page is populated by its first copy); the second, right after,
 * finds source and destination touched: the honest limit of a copy of these
 * pages on this host.  Measured while the guest is paused, outside the
 * transfer window; the page list is made before either clock starts.
 */
static void cell_memcpy_ref(struct cell_env *env, const uint64_t *bits, struct cell_result *res)
{
	const uint8_t *src = sim_guest_ram(env->g.pguest);
	uint64_t npages = sim_guest_pages(env->g.pguest), n = 0;

	for (uint64_t w = 0; w < (npages + 63) / 64; w++) {
		for (uint64_t v = bits[w]; v; v &= v - 1) {
			if (n == env->ref_cap) {
				uint64_t cap = env->ref_cap ? env->ref_cap * 2 : 4096;
				uint64_t *l = realloc(env->ref_pages, cap * sizeof(*l));

				if (!l)
					return; /* no reference this checkpoint; none is faked */
				env->ref_pages = l;
				env->ref_cap = cap;
			}
			env->ref_pages[n++] = w * 64 + (uint64_t)__builtin_ctzll(v);
		}
	}
	res->memcpy_ms += cell_copy_pages(env->scratch, src, env->ref_pages, n);
	res->memcpy_hot_ms += cell_copy_pages(env->scratch, src, env->ref_pages, n);
	res->memcpy_bytes += n * CELL_PAGE_SIZE;
}

/* A sparse guest hands its bitmap over with the summary it keeps; zero pages
 * go as such when the cell says so. */
static unsigned cell_take_flags(const struct cell *r)
{
	return (r->env->g.psum ? RCT_IPC_TAKE_SUMMARY : 0) |
	       (r->cfg->zero_pages ? RCT_IPC_TAKE_ZERO_PAGES : 0);
}

/*
 * One checkpoint on the primary: pause, hand over, commit, resume.  0 or
 * -errno.  @streamed: BEGIN went out before the pause (cell_stream()), whose
 * primary CPU from then on is in *cpu_ms_p already.
 */
static int cell_checkpoint(struct cell *r, struct rct_client *pc, uint64_t epoch, bool full,
			   bool streamed, void **devbuf, size_t *devcap, struct rct_ckpt_stats *st,
			   struct cell_result *res, double *hv_ms_p, double *cpu_ms_p)
{
	double cpu0;
	uint64_t *bits = r->env->g.pbits;
	struct timespec a, b;
	size_t dev_len;
	int rc;

	/* The guest's dirty log goes straight into the bitmap rctd shares with us. */
	sim_guest_pause(r->env->g.pguest, bits);
	if (!full && r->env->scratch)
		cell_memcpy_ref(r->env, bits, res);
	dev_len = sim_devstate(r->cfg->seed, epoch, devbuf, devcap);
	if (!dev_len)
		return -ENOMEM;
	cpu0 = cell_proc_cpu_ms(r->env->ppid) - (streamed ? *cpu_ms_p : 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	rc = streamed ? 0 : rct_client_ckpt_begin(pc, epoch, full ? RCT_CKPT_FULL : 0);
	if (!rc && !full)
		rc = rct_client_ckpt_dirty_flags(pc, CELL_REGION_ID, cell_take_flags(r));
	if (!rc)
		rc = rct_client_ckpt_devstate(pc, *devbuf, dev_len);
	if (!rc)
		rc = rct_client_ckpt_commit(pc, st);
	clock_gettime(CLOCK_MONOTONIC, &b);
	*hv_ms_p = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	*cpu_ms_p = cell_proc_cpu_ms(r->env->ppid) - cpu0;
	sim_guest_resume(r->env->g.pguest);
	return rc;
}

static bool cell_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * Streaming: the guest runs until @until; BEGIN(@epoch) now (the last
 * checkpoint is flushed and verified), then every stream_ms the pages it
 * dirtied since the last harvest go to rctd through the shared bitmap.
 * *@cpu_ms_p: the primary rctd's CPU from BEGIN on (cell_checkpoint() adds the
 * pause's); *@streamed_p: the pages streamed (rct sends every bit it is given).
 * 0 or -errno.
 */
static int cell_stream(struct cell *r, struct rct_client *pc, uint64_t epoch,
		       const struct timespec *until, struct cell_result *res, double *cpu_ms_p,
		       uint64_t *streamed_p)
{
	double cpu0 = cell_proc_cpu_ms(r->env->ppid);
	struct timespec t;
	uint64_t n;
	int rc;

	rc = rct_client_ckpt_begin(pc, epoch, 0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += (long)r->cfg->stream_ms * 1000000L;
		t.tv_sec += t.tv_nsec / 1000000000L;
		t.tv_nsec %= 1000000000L;
		if (rc || !cell_before(&t, until))
			break;
		cell_sleep_until(&t);
		n = sim_guest_harvest(r->env->g.pguest, r->env->g.pbits);
		if (!n)
			continue;
		res->streams++;
		res->stream_pages += n;
		*streamed_p += n;
		rc = rct_client_ckpt_stream_flags(pc, CELL_REGION_ID, cell_take_flags(r));
	}
	if (!rc)
		cell_sleep_until(until);
	*cpu_ms_p = cell_proc_cpu_ms(r->env->ppid) - cpu0;
	return rc;
}

static void cell_line(const struct cell *r, const char *label, const struct rct_ckpt_stats *st,
		      const struct cell_report *rep)
{
	double ms = (double)st->transfer_ns / 1e6;
	double bytes = (double)(st->bytes + st->devstate_bytes);

	if (!r->cfg->lines)
		return;
	fprintf(r->cfg->lines,
		"%-8s %6" PRIu64 " pages %8.1f MB  runs %6" PRIu64
		"  transfer %8.3f ms %6.2f GB/s  commit-rtt %6.3f ms  flush %7.3f ms  devstate "
		"%6.1f KB  %s\n",
		label, st->pages, (double)st->bytes / 1e6, st->runs, ms,
		ms > 0 ? bytes / (ms * 1e6) : 0.0, (double)st->commit_ns / 1e6,
		(double)rep->flush.flush_ns / 1e6, (double)st->devstate_bytes / 1e3,
		rep->ok ? "verified" : rep->what);
	fflush(r->cfg->lines);
}

void cell_result_free(struct cell_result *res)
{
	free(res->xfer_ms);
	free(res->commit_ms);
	free(res->flush_ms);
	free(res->sec_cpu_ms);
	free(res->hv_ms);
	free(res->rctd_ms);
	free(res->pause_ms);
	free(res->pri_cpu_ms);
	free(res->ckpt_bytes);
	free(res->ckpt_pages);
}

double cell_gbps(const struct cell_result *res)
{
	return res->total_xfer_ms > 0 ? (double)res->bytes / (res->total_xfer_ms * 1e6) : 0;
}

json_t *cell_json_summary(double *v, size_t n)
{
	struct sim_summary s;

	sim_summarize(v, n, &s);
	return json_pack("{s:f, s:f, s:f, s:f}", "mean", s.mean, "p50", s.p50, "p99", s.p99, "max",
			 s.max);
}

/* Record why the cell stopped; @c (may be NULL) adds rctd's text for error @err. */
static int cell_fail(struct cell_result *res, int exit, const char *what, int err,
		     const struct rct_client *c)
{
	res->exit = exit;
	if (err)
		snprintf(res->what, sizeof(res->what), "%.120s: %.40s%s%.230s%s", what,
			 strerror(-err), c && *rct_client_error(c) ? " (" : "",
			 c ? rct_client_error(c) : "", c && *rct_client_error(c) ? ")" : "");
	else
		snprintf(res->what, sizeof(res->what), "%.250s", what);
	return exit;
}

/* The checkpoints after the full sync; the sessions are connected. */
static void cell_checkpoints(struct cell *r, struct rct_client *pc, void **devbuf, size_t *devcap,
			     struct cell_result *res)
{
	const struct cell_cfg *cfg = r->cfg;
	struct rct_ckpt_stats st = {0};
	struct cell_report rep;
	struct timespec next;
	char label[24], what[200];
	uint64_t streamed, pause_pages;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (unsigned k = 1; k <= cfg->checkpoints; k++) {
		next.tv_sec += cfg->interval_ms / 1000;
		next.tv_nsec += (long)(cfg->interval_ms % 1000) * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		streamed = 0;
		if (cfg->stream_ms)
			rc = cell_stream(r, pc, k, &next, res, &res->pri_cpu_ms[res->done],
					 &streamed);
		else
			cell_sleep_until(&next);
		if (!rc)
			rc = cell_checkpoint(r, pc, k, false, cfg->stream_ms > 0, devbuf, devcap,
					     &st, res, &res->hv_ms[res->done],
					     &res->pri_cpu_ms[res->done]);
		if (rc) {
			snprintf(what, sizeof(what), "checkpoint %u failed", k);
			cell_fail(res, RCTCTL_EXIT_TRANSPORT, what, rc, pc);
			return;
		}
		rc = cell_wait_report(r, k, &rep);
		snprintf(label, sizeof(label), "ckpt %u", k);
		/* What moved inside the pause, which the transfer time covers; the
		 * streamed pages are counted apart.  (Without streaming the bytes
		 * are rct's: with zero-page elision fewer than the pages.) */
		pause_pages = st.pages >= streamed ? st.pages - streamed : 0;
		st.pages = pause_pages;
		if (streamed)
			st.bytes = pause_pages * CELL_PAGE_SIZE;
		cell_line(r, label, &st, &rep);
		res->xfer_ms[res->done] = (double)st.transfer_ns / 1e6;
		res->commit_ms[res->done] = (double)st.commit_ns / 1e6;
		res->rctd_ms[res->done] = (double)st.total_ns / 1e6;
		res->flush_ms[res->done] = (double)rep.flush.flush_ns / 1e6;
		res->sec_cpu_ms[res->done] = rep.cpu_ms;
		res->pause_ms[res->done] = res->hv_ms[res->done] + res->flush_ms[res->done];
		res->ckpt_bytes[res->done] = st.bytes + st.devstate_bytes;
		res->ckpt_pages[res->done] = st.pages;
		res->total_xfer_ms += res->xfer_ms[res->done];
		res->bytes += st.bytes + st.devstate_bytes;
		res->pages += st.pages;
		res->done++;
		if (rc) {
			snprintf(what, sizeof(what), "checkpoint %u NOT verified: %s", k, rep.what);
			cell_fail(res, rc == 1 ? RCTCTL_EXIT_MISMATCH : RCTCTL_EXIT_TRANSPORT, what,
				  0, NULL);
			return;
		}
		res->verified++;
		if (cfg->progress)
			cfg->progress(cfg->progress_arg, res);
		clock_gettime(CLOCK_MONOTONIC, &next);
	}
}

int cell_run(const struct cell_cfg *cfg, struct cell_env *env, struct cell_result *res)
{
	struct rct_client *pc = NULL;
	struct cell_report rep;
	pthread_t sthread;
	bool sthread_up = false;
	void *devbuf = NULL;
	size_t devcap = 0;
	struct cell r;
	char addr_buf[INET6_ADDRSTRLEN + 128], what[300];
	const char *addr;
	unsigned lanes = 0;
	double sync_hv_ms, sync_cpu_ms;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.env = env;
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	res->xfer_ms = calloc(cfg->checkpoints, sizeof(double));
	res->commit_ms = calloc(cfg->checkpoints, sizeof(double));
	res->flush_ms = calloc(cfg->checkpoints, sizeof(double));
	res->sec_cpu_ms = calloc(cfg->checkpoints, sizeof(double));
	res->hv_ms = calloc(cfg->checkpoints, sizeof(double));
	res->rctd_ms = calloc(cfg->checkpoints, sizeof(double));
	res->pause_ms = calloc(cfg->checkpoints, sizeof(double));
	res->pri_cpu_ms = calloc(cfg->checkpoints, sizeof(double));
	res->ckpt_bytes = calloc(cfg->checkpoints, sizeof(uint64_t));
	res->ckpt_pages = calloc(cfg->checkpoints, sizeof(uint64_t));
	if (!res->xfer_ms || !res->commit_ms || !res->flush_ms || !res->sec_cpu_ms || !res->hv_ms ||
	    !res->rctd_ms || !res->pause_ms || !res->pri_cpu_ms || !res->ckpt_bytes ||
	    !res->ckpt_pages) {
		cell_fail(res, RCTCTL_EXIT_TRANSPORT, "out of memory", 0, NULL);
		goto out;
	}

	/* Secondary: its guest RAM and bitmap handed to its rctd, listening. */
	addr = cell_addr(cfg, addr_buf, sizeof(addr_buf));
	rc = cell_open(cfg, RCT_ROLE_SECONDARY, env->ssock, env->g.smemfd, env->size,
		       env->g.sbits_fd, &r.sc, what, sizeof(what));
	if (rc) {
		cell_fail(res, RCTCTL_EXIT_TRANSPORT, what, 0, NULL);
		goto out;
	}
	rc = rct_client_listen(r.sc, addr, 0, &r.port);
	if (rc) {
		cell_fail(res, RCTCTL_EXIT_TRANSPORT, "secondary cannot listen", rc, r.sc);
		goto out;
	}
	if (pthread_create(&sthread, NULL, cell_secondary, &r)) {
		cell_fail(res, RCTCTL_EXIT_TRANSPORT, "cannot start the secondary thread", 0, NULL);
		goto out;
	}
	sthread_up = true;

	/* Primary: its guest RAM and bitmap handed to its rctd, connected. */
	rc = cell_open(cfg, RCT_ROLE_PRIMARY, env->psock, sim_guest_memfd(env->g.pguest), env->size,
		       env->g.pbits_fd, &pc, what, sizeof(what));
	if (rc) {
		cell_fail(res, RCTCTL_EXIT_TRANSPORT, what, 0, NULL);
		goto out;
	}
	rc = rct_client_connect(pc, addr, r.port, &lanes);
	if (rc) {
		snprintf(what, sizeof(what), "primary cannot connect to %.150s", addr);
		cell_fail(res, RCTCTL_EXIT_TRANSPORT, what, rc, pc);
		goto out;
	}
	if (cfg->lines)
		fprintf(stderr,
			"run: rctd primary <-> rctd secondary over %s with %u data lanes; "
			"initial full sync...\n",
			cfg->backend, lanes);

	/* Epoch 0: the first full sync (every page). */
	rc = cell_checkpoint(&r, pc, 0, true, false, &devbuf, &devcap, &res->sync, res, &sync_hv_ms,
			     &sync_cpu_ms);
	if (rc) {
		cell_fail(res, RCTCTL_EXIT_TRANSPORT, "initial sync failed", rc, pc);
		goto out;
	}
	rc = cell_wait_report(&r, 0, &rep);
	cell_line(&r, "sync", &res->sync, &rep);
	if (rc) {
		snprintf(what, sizeof(what), "initial sync not verified: %s", rep.what);
		cell_fail(res, rc == 1 ? RCTCTL_EXIT_MISMATCH : RCTCTL_EXIT_TRANSPORT, what, 0,
			  NULL);
		goto out;
	}
	cell_checkpoints(&r, pc, &devbuf, &devcap, res);

out:
	/* Closing the primary's session sends GOODBYE: the secondary sees its peer leave. */
	rct_client_close(pc);
	if (sthread_up) {
		pthread_mutex_lock(&r.lock);
		r.stop = true;
		pthread_mutex_unlock(&r.lock);
		pthread_join(sthread, NULL);
	}
	rct_client_close(r.sc);
	free(devbuf);
	free(r.devbuf);
	pthread_cond_destroy(&r.cond);
	pthread_mutex_destroy(&r.lock);
	return res->exit;
}
