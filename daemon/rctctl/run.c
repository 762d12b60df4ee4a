/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One cell: see run.h.
 *
 * Threads: the caller's thread is the primary's hypervisor (pause, hand rct
 * the bitmap and device state, commit, resume); the secondary thread is the
 * secondary's hypervisor (progress, flush on CKPT_READY, compare, then dirty a
 * few pages of its own guest so that the next flush must restore them).  The
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
#include <unistd.h>

#include "rctctl.h"
#include "run.h"

#define RUN_REGION_ID 0
#define RUN_SCRIBBLES 16 /* pages the secondary's own guest dirties per interval */
#define RCT_MIN_U(a, b)                                                                            \
	((unsigned long)(a) < (unsigned long)(b) ? (unsigned long)(a) : (unsigned long)(b))

/* One verification report from the secondary; guarded by run.lock. */
struct run_report {
	bool valid;
	uint64_t epoch;
	bool ok;
	char what[160];
	struct rct_ckpt_stats flush;
	double cpu_ms; /* secondary thread CPU inside rct_session_progress() for this epoch */
};

struct run {
	const struct run_cfg *cfg;
	struct run_env *env;
	struct rct_session *ssess;
	struct rct_region *sregion;
	uint16_t port;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct run_report report;
	bool secondary_done;
	rct_status_t secondary_status;
	bool stop;
};

static double run_thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void run_post(struct run *r, const struct run_report *rep)
{
	pthread_mutex_lock(&r->lock);
	r->report = *rep;
	r->report.valid = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Flush ready epoch @epoch and compare guest RAM and device state with the primary's. */
static void run_secondary_apply(struct run *r, uint64_t epoch, double cpu_ms, uint64_t *rng,
				uint64_t *bits, void **devbuf, size_t *devcap)
{
	uint64_t npages = sim_guest_pages(r->env->pguest), bad;
	struct run_report rep = {.epoch = epoch, .ok = false, .cpu_ms = cpu_ms};
	const void *dev;
	size_t dev_len, want_len;
	rct_status_t st;

	st = rct_ckpt_flush(r->ssess, epoch, &rep.flush);
	if (st != RCT_OK) {
		snprintf(rep.what, sizeof(rep.what), "flush failed: %s", rct_status_str(st));
		goto out;
	}
	st = rct_ckpt_devstate_get(r->ssess, epoch, &dev, &dev_len);
	if (st != RCT_OK) {
		snprintf(rep.what, sizeof(rep.what), "device state missing: %s",
			 rct_status_str(st));
		goto out;
	}
	want_len = sim_devstate(r->cfg->seed, epoch, devbuf, devcap);
	if (dev_len != want_len || memcmp(dev, *devbuf, dev_len)) {
		snprintf(rep.what, sizeof(rep.what),
			 "device state differs (%zu bytes, expected %zu)", dev_len, want_len);
		goto out;
	}
	if (epoch && epoch == r->cfg->corrupt_epoch) {
		/* Self-test of the verifier: one flipped byte must be caught. */
		uint64_t page = npages / 3;

		((uint8_t *)r->env->sram)[page * RUN_PAGE_SIZE + 100] ^= 0x01;
	}
	if (!sim_compare(r->env->sram, sim_guest_snapshot(r->env->pguest), npages, RUN_PAGE_SIZE,
			 &bad)) {
		snprintf(rep.what, sizeof(rep.what),
			 "guest RAM differs from the primary's snapshot: first at page %" PRIu64
			 " (offset 0x%" PRIx64 ")",
			 bad, bad * RUN_PAGE_SIZE);
		goto out;
	}
	rep.ok = true;

	/* The secondary guest runs until the next checkpoint and dirties pages of its own. */
	memset(bits, 0, (npages + 63) / 64 * sizeof(uint64_t));
	sim_scribble(r->env->sram, npages, RUN_PAGE_SIZE, RUN_SCRIBBLES, rng, bits);
	st = rct_ckpt_local_dirty(r->ssess, r->sregion, bits, npages);
	if (st != RCT_OK) {
		rep.ok = false;
		snprintf(rep.what, sizeof(rep.what), "local dirty: %s", rct_status_str(st));
	}
out:
	run_post(r, &rep);
}

static void *run_secondary(void *arg)
{
	struct run *r = arg;
	uint64_t npages = sim_guest_pages(r->env->pguest);
	uint64_t rng = r->cfg->seed ^ 0x5ec0ull;
	uint64_t *bits = calloc((npages + 63) / 64, sizeof(uint64_t));
	double cpu_ms = 0, t0;
	void *devbuf = NULL;
	size_t devcap = 0;
	struct rct_event ev;
	rct_status_t st;
	bool stop;

	st = bits ? rct_session_accept(r->ssess) : RCT_ERR_NO_MEMORY;
	while (st == RCT_OK) {
		pthread_mutex_lock(&r->lock);
		stop = r->stop;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			break;
		/* CPU the secondary spends in the transport (receiving, acking). */
		t0 = run_thread_cpu_ms();
		st = rct_session_progress(r->ssess, 50);
		cpu_ms += run_thread_cpu_ms() - t0;
		while (rct_session_event_next(r->ssess, &ev) == RCT_OK) {
			if (ev.type == RCT_EVENT_CKPT_READY) {
				run_secondary_apply(r, ev.epoch, cpu_ms, &rng, bits, &devbuf,
						    &devcap);
				cpu_ms = 0;
			} else if (ev.type == RCT_EVENT_PEER_LOST) {
				st = ev.status;
			}
		}
	}
	free(bits);
	free(devbuf);
	pthread_mutex_lock(&r->lock);
	r->secondary_done = true;
	r->secondary_status = st;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Wait for the secondary's report on @epoch: 0 verified, 1 differs, -1 no report. */
static int run_wait_report(struct run *r, uint64_t epoch, struct run_report *rep)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += r->cfg->timeout_ms / 1000 + 30;
	pthread_mutex_lock(&r->lock);
	while (!(r->report.valid && r->report.epoch == epoch) && !r->secondary_done && rc == 0)
		rc = pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	if (r->report.valid && r->report.epoch == epoch) {
		*rep = r->report;
		r->report.valid = false;
		rc = 0;
	} else {
		memset(rep, 0, sizeof(*rep));
		snprintf(rep->what, sizeof(rep->what), "no report from the secondary (%s)",
			 r->secondary_done ? rct_status_str(r->secondary_status) : "timed out");
		rc = -1;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc)
		return -1;
	return rep->ok ? 0 : 1;
}

static void run_sleep_until(const struct timespec *t)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
		;
}

static rct_status_t run_session(const struct run_cfg *cfg, enum rct_role role,
				struct rct_session **s_p)
{
	struct rct_session_params p = {
		.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_BACKEND |
			      RCT_SESSION_PARAM_FIELD_LANES | RCT_SESSION_PARAM_FIELD_PAGE_SIZE |
			      RCT_SESSION_PARAM_FIELD_TIMEOUT,
		.role = role,
		.backend = cfg->backend,
		.lanes = cfg->lanes,
		.page_size = RUN_PAGE_SIZE,
		.timeout_ms = cfg->timeout_ms,
	};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	p.field_mask |= RCT_SESSION_PARAM_FIELD_THREADS;
	if (cfg->threads >= 0)
		p.threads = (unsigned)cfg->threads;
	else
		p.threads = (unsigned)RCT_MIN_U(cfg->lanes, ncpu > 1 ? (unsigned long)ncpu : 1) - 1;
	return rct_session_create(&p, s_p);
}

/*
 * The reference: copy the same dirty pages, in address order, with memcpy into
 * a pre-faulted buffer.  Measured while the guest is paused, outside the
 * transfer window; the physical limit of any transport on this host.
 */
static void run_memcpy_ref(struct run_env *env, const uint64_t *bits, struct run_result *res)
{
	const uint8_t *src = sim_guest_ram(env->pguest);
	uint8_t *dst = env->scratch;
	uint64_t npages = sim_guest_pages(env->pguest), n = 0;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t w = 0; w < (npages + 63) / 64; w++) {
		for (uint64_t v = bits[w]; v; v &= v - 1) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(v);

			memcpy(dst + p * RUN_PAGE_SIZE, src + p * RUN_PAGE_SIZE, RUN_PAGE_SIZE);
			n++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	res->memcpy_ms += (double)(b.tv_sec - a.tv_sec) * 1e3 +
			  (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	res->memcpy_bytes += n * RUN_PAGE_SIZE;
}

/* One checkpoint on the primary: pause, hand over, commit, resume. */
static rct_status_t run_checkpoint(struct run *r, struct rct_session *ps, struct rct_region *pr,
				   uint64_t epoch, bool full, uint64_t *bits, void **devbuf,
				   size_t *devcap, struct rct_ckpt_stats *st,
				   struct run_result *res)
{
	uint64_t npages = sim_guest_pages(r->env->pguest);
	size_t dev_len;
	rct_status_t s;

	sim_guest_pause(r->env->pguest, bits);
	if (!full && r->env->scratch)
		run_memcpy_ref(r->env, bits, res);
	dev_len = sim_devstate(r->cfg->seed, epoch, devbuf, devcap);
	if (!dev_len)
		return RCT_ERR_NO_MEMORY;
	s = rct_ckpt_begin(ps, epoch, full ? RCT_CKPT_FULL : 0);
	if (s == RCT_OK && !full)
		s = rct_ckpt_dirty(ps, pr, bits, npages);
	if (s == RCT_OK)
		s = rct_ckpt_devstate_put(ps, *devbuf, dev_len);
	if (s == RCT_OK)
		s = rct_ckpt_commit(ps, st);
	sim_guest_resume(r->env->pguest);
	return s;
}

/*
 * Where the two peers meet.  verbs needs the address of an RDMA device's
 * network interface (rdma_cm maps the address to the device): take the IPv4
 * address of the first device's port 1 netdev.
 */
static const char *run_addr(const struct run_cfg *cfg, char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;
	char ndev[IF_NAMESIZE + 1] = "";
	const char *found = NULL;
	struct dirent *e;
	FILE *f;
	DIR *d;

	if (cfg->addr)
		return cfg->addr;
	if (strcmp(cfg->backend, "verbs"))
		return "127.0.0.1";
	d = opendir("/sys/class/infiniband");
	while (d && (e = readdir(d)) && !ndev[0]) {
		char path[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/1/gid_attrs/ndevs/0",
			 e->d_name);
		f = fopen(path, "r");
		if (f && fgets(ndev, sizeof(ndev), f))
			ndev[strcspn(ndev, "\n")] = '\0';
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	if (ndev[0] && !getifaddrs(&ifa)) {
		for (i = ifa; i && !found; i = i->ifa_next)
			if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
			    !strcmp(i->ifa_name, ndev) &&
			    inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
				      (socklen_t)len))
				found = buf;
		freeifaddrs(ifa);
	}
	if (!found) {
		fprintf(stderr,
			"run: no IPv4 address on an RDMA device's interface (%s); "
			"using 127.0.0.1 (give --addr)\n",
			ndev[0] ? ndev : "no device");
		return "127.0.0.1";
	}
	fprintf(stderr, "run: peers meet at %s (%s, the RDMA device's interface)\n", found, ndev);
	return found;
}

int run_parse_option(int c, const char *arg, struct run_cfg *cfg, uint64_t *region_size)
{
	unsigned long v;

	switch (c) {
	case 's':
		if (sim_parse_size(arg, region_size) || !*region_size ||
		    *region_size % RUN_PAGE_SIZE)
			return rctctl_usage_error("--region-size", arg,
						  "a multiple of 4K such as 64M or 1G");
		return 0;
	case 'w':
		if (sim_workload_parse(arg, &cfg->wl))
			return rctctl_usage_error("--workload", arg,
						  "idle, load or random:PCT (0 < PCT <= 100)");
		return 0;
	case 'k':
		if (rctctl_parse_ulong(arg, 1, 1000000, &v))
			return rctctl_usage_error("--checkpoints", arg, "1..1000000");
		cfg->checkpoints = (unsigned)v;
		return 0;
	case 'i':
		if (rctctl_parse_ulong(arg, 0, 3600000, &v))
			return rctctl_usage_error("--interval-ms", arg, "0..3600000");
		cfg->interval_ms = (unsigned)v;
		return 0;
	case 'S':
		if (rctctl_parse_ulong(arg, 0, ULONG_MAX, &v))
			return rctctl_usage_error("--seed", arg, "a number");
		cfg->seed = v;
		return 0;
	case 't':
		if (rctctl_parse_ulong(arg, 1, 3600000, &v))
			return rctctl_usage_error("--timeout-ms", arg, "1..3600000");
		cfg->timeout_ms = (int)v;
		return 0;
	case 'T':
		if (rctctl_parse_ulong(arg, 0, RCT_MAX_LANES, &v))
			return rctctl_usage_error("--threads", arg, "0..64");
		cfg->threads = (int)v;
		return 0;
	case 'A':
		cfg->addr = arg;
		return 0;
	}
	return -1;
}

static void run_line(const struct run *r, const char *label, const struct rct_ckpt_stats *st,
		     const struct run_report *rep)
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

int run_env_create(struct run_env *env, uint64_t size, const struct sim_workload *wl, uint64_t seed,
		   bool scratch)
{
	int rc;

	memset(env, 0, sizeof(*env));
	env->size = size;
	rc = sim_guest_create(size, RUN_PAGE_SIZE, wl, seed, &env->pguest);
	if (rc)
		return rc;
	env->sram = rctctl_map_anon(size);
	if (scratch)
		env->scratch = rctctl_map_anon(size);
	if (!env->sram || (scratch && !env->scratch)) {
		run_env_destroy(env);
		return -ENOMEM;
	}
	return 0;
}

void run_env_destroy(struct run_env *env)
{
	sim_guest_destroy(env->pguest);
	rctctl_unmap(env->sram, env->size);
	rctctl_unmap(env->scratch, env->size);
	memset(env, 0, sizeof(*env));
}

void run_result_free(struct run_result *res)
{
	free(res->xfer_ms);
	free(res->commit_ms);
	free(res->flush_ms);
	free(res->sec_cpu_ms);
}

double run_gbps(const struct run_result *res)
{
	return res->total_xfer_ms > 0 ? (double)res->bytes / (res->total_xfer_ms * 1e6) : 0;
}

json_t *run_json_summary(double *v, size_t n)
{
	struct sim_summary s;

	sim_summarize(v, n, &s);
	return json_pack("{s:f, s:f, s:f, s:f}", "mean", s.mean, "p50", s.p50, "p99", s.p99, "max",
			 s.max);
}

static int run_fail(struct run_result *res, int exit, const char *what, rct_status_t s)
{
	res->exit = exit;
	snprintf(res->what, sizeof(res->what), "%.190s%s%.60s", what, s != RCT_OK ? ": " : "",
		 s != RCT_OK ? rct_status_str(s) : "");
	return exit;
}

/* The checkpoints after the full sync; the sessions are connected. */
static void run_checkpoints(struct run *r, struct rct_session *ps, struct rct_region *pr,
			    uint64_t *bits, void **devbuf, size_t *devcap, struct run_result *res)
{
	const struct run_cfg *cfg = r->cfg;
	struct rct_ckpt_stats st;
	struct run_report rep;
	struct timespec next;
	char label[24], what[200];
	rct_status_t s;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (unsigned k = 1; k <= cfg->checkpoints; k++) {
		next.tv_sec += cfg->interval_ms / 1000;
		next.tv_nsec += (long)(cfg->interval_ms % 1000) * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		run_sleep_until(&next);
		s = run_checkpoint(r, ps, pr, k, false, bits, devbuf, devcap, &st, res);
		if (s != RCT_OK) {
			snprintf(what, sizeof(what), "checkpoint %u failed", k);
			run_fail(res, RCTCTL_EXIT_TRANSPORT, what, s);
			return;
		}
		rc = run_wait_report(r, k, &rep);
		snprintf(label, sizeof(label), "ckpt %u", k);
		run_line(r, label, &st, &rep);
		res->xfer_ms[res->done] = (double)st.transfer_ns / 1e6;
		res->commit_ms[res->done] = (double)st.commit_ns / 1e6;
		res->flush_ms[res->done] = (double)rep.flush.flush_ns / 1e6;
		res->sec_cpu_ms[res->done] = rep.cpu_ms;
		res->total_xfer_ms += res->xfer_ms[res->done];
		res->bytes += st.bytes + st.devstate_bytes;
		res->pages += st.pages;
		res->done++;
		if (rc) {
			snprintf(what, sizeof(what), "checkpoint %u NOT verified: %s", k, rep.what);
			run_fail(res, rc == 1 ? RCTCTL_EXIT_MISMATCH : RCTCTL_EXIT_TRANSPORT, what,
				 RCT_OK);
			return;
		}
		res->verified++;
		clock_gettime(CLOCK_MONOTONIC, &next);
	}
}

int run_cell(const struct run_cfg *cfg, struct run_env *env, struct run_result *res)
{
	uint64_t npages = sim_guest_pages(env->pguest);
	struct rct_session *ps = NULL;
	struct rct_region *pr;
	struct run_report rep;
	pthread_t sthread;
	bool sthread_up = false;
	uint64_t *bits = NULL;
	void *devbuf = NULL;
	size_t devcap = 0;
	struct run r;
	char addr_buf[INET6_ADDRSTRLEN + 128];
	const char *addr;
	rct_status_t s;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.env = env;
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	bits = calloc((npages + 63) / 64, sizeof(uint64_t));
	res->xfer_ms = calloc(cfg->checkpoints, sizeof(double));
	res->commit_ms = calloc(cfg->checkpoints, sizeof(double));
	res->flush_ms = calloc(cfg->checkpoints, sizeof(double));
	res->sec_cpu_ms = calloc(cfg->checkpoints, sizeof(double));
	if (!bits || !res->xfer_ms || !res->commit_ms || !res->flush_ms || !res->sec_cpu_ms) {
		run_fail(res, RCTCTL_EXIT_TRANSPORT, "out of memory", RCT_OK);
		goto out;
	}

	/* Secondary: its guest RAM, a colo cache (allocated by rct), listening. */
	addr = run_addr(cfg, addr_buf, sizeof(addr_buf));
	s = run_session(cfg, RCT_ROLE_SECONDARY, &r.ssess);
	if (s == RCT_OK)
		s = rct_region_register(r.ssess, RUN_REGION_ID, env->sram, env->size, &r.sregion);
	if (s == RCT_OK)
		s = rct_session_listen(r.ssess, addr, 0, &r.port);
	if (s != RCT_OK) {
		run_fail(res, RCTCTL_EXIT_TRANSPORT, "secondary set-up failed", s);
		goto out;
	}
	if (pthread_create(&sthread, NULL, run_secondary, &r)) {
		run_fail(res, RCTCTL_EXIT_TRANSPORT, "cannot start the secondary thread", RCT_OK);
		goto out;
	}
	sthread_up = true;

	/* Primary: its guest RAM registered, connected. */
	s = run_session(cfg, RCT_ROLE_PRIMARY, &ps);
	if (s == RCT_OK)
		s = rct_region_register(ps, RUN_REGION_ID, sim_guest_ram(env->pguest), env->size,
					&pr);
	if (s == RCT_OK)
		s = rct_session_connect(ps, addr, r.port);
	if (s != RCT_OK) {
		char what[200];

		snprintf(what, sizeof(what), "primary cannot connect to %.150s", addr);
		run_fail(res, RCTCTL_EXIT_TRANSPORT, what, s);
		goto out;
	}
	if (cfg->lines)
		fprintf(stderr, "run: connected over %s with %u data lanes; initial full sync...\n",
			rct_session_backend(ps), rct_session_lanes(ps));

	/* Epoch 0: the first full sync (every page). */
	s = run_checkpoint(&r, ps, pr, 0, true, bits, &devbuf, &devcap, &res->sync, res);
	if (s != RCT_OK) {
		run_fail(res, RCTCTL_EXIT_TRANSPORT, "initial sync failed", s);
		goto out;
	}
	rc = run_wait_report(&r, 0, &rep);
	run_line(&r, "sync", &res->sync, &rep);
	if (rc) {
		char what[200];

		snprintf(what, sizeof(what), "initial sync not verified: %s", rep.what);
		run_fail(res, rc == 1 ? RCTCTL_EXIT_MISMATCH : RCTCTL_EXIT_TRANSPORT, what, RCT_OK);
		goto out;
	}
	run_checkpoints(&r, ps, pr, bits, &devbuf, &devcap, res);

out:
	rct_session_destroy(ps); /* GOODBYE: the secondary thread sees its peer leave */
	if (sthread_up) {
		pthread_mutex_lock(&r.lock);
		r.stop = true;
		pthread_mutex_unlock(&r.lock);
		pthread_join(sthread, NULL);
	}
	rct_session_destroy(r.ssess);
	free(bits);
	free(devbuf);
	pthread_cond_destroy(&r.cond);
	pthread_mutex_destroy(&r.lock);
	return res->exit;
}
