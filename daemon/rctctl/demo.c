/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctctl demo: a secondary and a primary peer on 127.0.0.1, a simulated guest
 * on each side, K checkpoints, each verified byte for byte.
 *
 * Threads: the main thread is the primary's hypervisor (pause, hand rct the
 * bitmap and device state, commit, resume); the secondary thread is the
 * secondary's hypervisor (progress, flush on CKPT_READY, compare, then dirty a
 * few pages of its own guest so that the next flush must restore them).  The
 * primary takes checkpoint e+1 only after the secondary reported on e, so the
 * snapshot the secondary compares with is stable while it reads it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rct/rct.h>

#include "../sim/sim.h"
#include "rctctl.h"

#define DEMO_PAGE_SIZE 4096
#define DEMO_REGION_ID 0
#define DEMO_SCRIBBLES 16 /* pages the secondary's own guest dirties per interval */

struct demo_opts {
	const char *backend;
	unsigned lanes;
	uint64_t region_size;
	struct sim_workload wl;
	unsigned checkpoints;
	unsigned interval_ms;
	uint64_t seed;
	bool json;
	int timeout_ms;
	uint64_t corrupt_epoch; /* --selftest-corrupt: 0 = off */
};

/* One verification report from the secondary; guarded by demo.lock. */
struct demo_report {
	bool valid;
	uint64_t epoch;
	bool ok;
	char what[160];
	struct rct_ckpt_stats flush;
};

struct demo {
	const struct demo_opts *o;
	struct sim_guest *pguest; /* primary's guest: RAM + snapshot */
	void *sram;		  /* secondary's guest RAM */
	struct rct_session *ssess;
	struct rct_region *sregion;
	uint16_t port;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct demo_report report;
	bool secondary_done;
	rct_status_t secondary_status;
	bool stop;
};

static void demo_post(struct demo *d, const struct demo_report *r)
{
	pthread_mutex_lock(&d->lock);
	d->report = *r;
	d->report.valid = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* Flush ready epoch @epoch and compare guest RAM and device state with the primary's. */
static void demo_secondary_apply(struct demo *d, uint64_t epoch, uint64_t *rng, uint64_t *bits,
				 void **devbuf, size_t *devcap)
{
	uint64_t npages = sim_guest_pages(d->pguest), bad;
	struct demo_report r = {.epoch = epoch, .ok = false};
	const void *dev;
	size_t dev_len, want_len;
	rct_status_t st;

	st = rct_ckpt_flush(d->ssess, epoch, &r.flush);
	if (st != RCT_OK) {
		snprintf(r.what, sizeof(r.what), "flush failed: %s", rct_status_str(st));
		goto out;
	}
	st = rct_ckpt_devstate_get(d->ssess, epoch, &dev, &dev_len);
	if (st != RCT_OK) {
		snprintf(r.what, sizeof(r.what), "device state missing: %s", rct_status_str(st));
		goto out;
	}
	want_len = sim_devstate(d->o->seed, epoch, devbuf, devcap);
	if (dev_len != want_len || memcmp(dev, *devbuf, dev_len)) {
		snprintf(r.what, sizeof(r.what), "device state differs (%zu bytes, expected %zu)",
			 dev_len, want_len);
		goto out;
	}
	if (epoch && epoch == d->o->corrupt_epoch) {
		/* Self-test of the verifier: one flipped byte must be caught. */
		uint64_t page = npages / 3;

		((uint8_t *)d->sram)[page * DEMO_PAGE_SIZE + 100] ^= 0x01;
	}
	if (!sim_compare(d->sram, sim_guest_snapshot(d->pguest), npages, DEMO_PAGE_SIZE, &bad)) {
		snprintf(r.what, sizeof(r.what),
			 "guest RAM differs from the primary's snapshot: first at page %" PRIu64
			 " (offset 0x%" PRIx64 ")",
			 bad, bad * DEMO_PAGE_SIZE);
		goto out;
	}
	r.ok = true;

	/* The secondary guest runs until the next checkpoint and dirties pages of its own. */
	memset(bits, 0, (npages + 63) / 64 * sizeof(uint64_t));
	sim_scribble(d->sram, npages, DEMO_PAGE_SIZE, DEMO_SCRIBBLES, rng, bits);
	st = rct_ckpt_local_dirty(d->ssess, d->sregion, bits, npages);
	if (st != RCT_OK) {
		r.ok = false;
		snprintf(r.what, sizeof(r.what), "local dirty: %s", rct_status_str(st));
	}
out:
	demo_post(d, &r);
}

static void *demo_secondary(void *arg)
{
	struct demo *d = arg;
	uint64_t npages = sim_guest_pages(d->pguest);
	uint64_t rng = d->o->seed ^ 0x5ec0ull;
	uint64_t *bits = calloc((npages + 63) / 64, sizeof(uint64_t));
	void *devbuf = NULL;
	size_t devcap = 0;
	struct rct_event ev;
	rct_status_t st;

	st = bits ? rct_session_accept(d->ssess) : RCT_ERR_NO_MEMORY;
	while (st == RCT_OK) {
		pthread_mutex_lock(&d->lock);
		bool stop = d->stop;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		st = rct_session_progress(d->ssess, 50);
		while (rct_session_event_next(d->ssess, &ev) == RCT_OK) {
			if (ev.type == RCT_EVENT_CKPT_READY)
				demo_secondary_apply(d, ev.epoch, &rng, bits, &devbuf, &devcap);
			else if (ev.type == RCT_EVENT_PEER_LOST)
				st = ev.status;
		}
	}
	free(bits);
	free(devbuf);
	pthread_mutex_lock(&d->lock);
	d->secondary_done = true;
	d->secondary_status = st;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Wait for the secondary's report on @epoch: 0 verified, 1 differs, -1 no report. */
static int demo_wait_report(struct demo *d, uint64_t epoch, struct demo_report *r)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += d->o->timeout_ms / 1000 + 30;
	pthread_mutex_lock(&d->lock);
	while (!(d->report.valid && d->report.epoch == epoch) && !d->secondary_done && rc == 0)
		rc = pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	if (d->report.valid && d->report.epoch == epoch) {
		*r = d->report;
		d->report.valid = false;
		rc = 0;
	} else {
		memset(r, 0, sizeof(*r));
		snprintf(r->what, sizeof(r->what), "no report from the secondary (%s)",
			 d->secondary_done ? rct_status_str(d->secondary_status) : "timed out");
		rc = -1;
	}
	pthread_mutex_unlock(&d->lock);
	if (rc)
		return -1;
	return r->ok ? 0 : 1;
}

static void demo_sleep_until(const struct timespec *t)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
		;
}

static void demo_usage(FILE *f)
{
	fprintf(f,
		"usage: rctctl demo [options]\n"
		"\n"
		"Run a secondary and a primary peer on 127.0.0.1 with a simulated guest on each\n"
		"side, take checkpoints and verify every one byte for byte: after each flush the\n"
		"secondary's guest RAM and device state must equal the primary's snapshot.\n"
		"\n"
		"  --backend NAME       transport: ucx or tcp (default: verbs if an RDMA device\n"
		"                       exists and verbs is built, else ucx, else tcp)\n"
		"  --lanes N            data lanes, 1..64 (default 4)\n"
		"  --region-size SIZE   guest RAM, K/M/G suffixes (default 1G)\n"
		"  --workload W         idle | load | random:PCT (default idle)\n"
		"  --checkpoints K      incremental checkpoints after the first full sync (default "
		"20)\n"
		"  --interval-ms MS     time the guest runs between checkpoints (default 600)\n"
		"  --seed N             seed of the simulated guests (default 1)\n"
		"  --timeout-ms MS      deadline of every transport call (default 10000)\n"
		"  --json               print one JSON object on stdout (per-checkpoint lines go "
		"to stderr)\n"
		"  -h, --help           this text\n"
		"\n"
		"Exit status: 0 all verified, 1 a checkpoint differs, 2 usage, 3 transport "
		"failure.\n");
}

/*
 * No --backend: verbs where an RDMA device exists, else ucx, else tcp; say
 * which and why, since the figures mean different things on each.
 */
static const char *demo_pick_backend(char *why, size_t len)
{
	bool rdma_dev = false;
	DIR *d = opendir("/sys/class/infiniband");
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			rdma_dev = true;
	if (d)
		closedir(d);
	if (rdma_dev && rct_backend_available("verbs")) {
		snprintf(why, len, "an RDMA device exists under /sys/class/infiniband");
		return "verbs";
	}
	if (rct_backend_available("ucx")) {
		snprintf(why, len, "%s; ucx is the next choice",
			 rdma_dev ? "an RDMA device exists but the verbs backend is not built"
				  : "no RDMA device under /sys/class/infiniband");
		return "ucx";
	}
	snprintf(why, len, "%s, and the ucx backend is not built",
		 rdma_dev ? "the verbs backend is not built" : "no RDMA device");
	return "tcp";
}

static int demo_parse(int argc, char **argv, struct demo_opts *o)
{
	static const struct option longopts[] = {
		{"backend", required_argument, NULL, 'b'},
		{"lanes", required_argument, NULL, 'l'},
		{"region-size", required_argument, NULL, 's'},
		{"workload", required_argument, NULL, 'w'},
		{"checkpoints", required_argument, NULL, 'k'},
		{"interval-ms", required_argument, NULL, 'i'},
		{"seed", required_argument, NULL, 'S'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"selftest-corrupt", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->backend = NULL; /* chosen after parsing */
	o->lanes = 4;
	o->region_size = 1ull << 30;
	o->wl.kind = SIM_WORKLOAD_IDLE;
	o->checkpoints = 20;
	o->interval_ms = 600;
	o->seed = 1;
	o->timeout_ms = 10000;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->backend = optarg;
			break;
		case 'l':
			if (rctctl_parse_ulong(optarg, 1, RCT_MAX_LANES, &v))
				return rctctl_usage_error("--lanes", optarg, "1..64");
			o->lanes = (unsigned)v;
			break;
		case 's':
			if (sim_parse_size(optarg, &o->region_size) || !o->region_size ||
			    o->region_size % DEMO_PAGE_SIZE)
				return rctctl_usage_error("--region-size", optarg,
							  "a multiple of 4K such as 64M or 1G");
			break;
		case 'w':
			if (sim_workload_parse(optarg, &o->wl))
				return rctctl_usage_error(
					"--workload", optarg,
					"idle, load or random:PCT (0 < PCT <= 100)");
			break;
		case 'k':
			if (rctctl_parse_ulong(optarg, 1, 1000000, &v))
				return rctctl_usage_error("--checkpoints", optarg, "1..1000000");
			o->checkpoints = (unsigned)v;
			break;
		case 'i':
			if (rctctl_parse_ulong(optarg, 0, 3600000, &v))
				return rctctl_usage_error("--interval-ms", optarg, "0..3600000");
			o->interval_ms = (unsigned)v;
			break;
		case 'S':
			if (rctctl_parse_ulong(optarg, 0, ULONG_MAX, &v))
				return rctctl_usage_error("--seed", optarg, "a number");
			o->seed = v;
			break;
		case 't':
			if (rctctl_parse_ulong(optarg, 1, 3600000, &v))
				return rctctl_usage_error("--timeout-ms", optarg, "1..3600000");
			o->timeout_ms = (int)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'C':
			if (rctctl_parse_ulong(optarg, 1, ULONG_MAX, &v))
				return rctctl_usage_error("--selftest-corrupt", optarg,
							  "a checkpoint number >= 1");
			o->corrupt_epoch = v;
			break;
		case 'h':
			demo_usage(stdout);
			return 1;
		default:
			demo_usage(stderr);
			return RCTCTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return rctctl_usage_error("demo", argv[optind], "no positional arguments");
	if (!o->backend) {
		static char why[160];

		o->backend = demo_pick_backend(why, sizeof(why));
		fprintf(stderr, "demo: backend %s (no --backend given: %s)\n", o->backend, why);
	} else if (!rct_backend_available(o->backend)) {
		return rctctl_usage_error("--backend", o->backend,
					  "a backend of this build (ucx, tcp)");
	}
	/* UCX on loopback: keep its TCP transport on lo, as the peers are. */
	if (!strcmp(o->backend, "ucx") && !getenv("UCX_NET_DEVICES"))
		setenv("UCX_NET_DEVICES", "lo", 0);
	return 0;
}

static rct_status_t demo_session(const struct demo_opts *o, enum rct_role role,
				 struct rct_session **s_p)
{
	struct rct_session_params p = {
		.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_BACKEND |
			      RCT_SESSION_PARAM_FIELD_LANES | RCT_SESSION_PARAM_FIELD_PAGE_SIZE |
			      RCT_SESSION_PARAM_FIELD_TIMEOUT,
		.role = role,
		.backend = o->backend,
		.lanes = o->lanes,
		.page_size = DEMO_PAGE_SIZE,
		.timeout_ms = o->timeout_ms,
	};

	return rct_session_create(&p, s_p);
}

/* One checkpoint on the primary: pause, hand over, commit, resume. */
static rct_status_t demo_checkpoint(struct demo *d, struct rct_session *ps, struct rct_region *pr,
				    uint64_t epoch, bool full, uint64_t *bits, void **devbuf,
				    size_t *devcap, struct rct_ckpt_stats *st)
{
	uint64_t npages = sim_guest_pages(d->pguest);
	size_t dev_len;
	rct_status_t s;

	sim_guest_pause(d->pguest, bits);
	dev_len = sim_devstate(d->o->seed, epoch, devbuf, devcap);
	if (!dev_len)
		return RCT_ERR_NO_MEMORY;
	s = rct_ckpt_begin(ps, epoch, full ? RCT_CKPT_FULL : 0);
	if (s == RCT_OK && !full)
		s = rct_ckpt_dirty(ps, pr, bits, npages);
	if (s == RCT_OK)
		s = rct_ckpt_devstate_put(ps, *devbuf, dev_len);
	if (s == RCT_OK)
		s = rct_ckpt_commit(ps, st);
	sim_guest_resume(d->pguest);
	return s;
}

static void demo_line(const struct demo *d, const char *label, const struct rct_ckpt_stats *st,
		      const struct demo_report *r)
{
	FILE *f = d->o->json ? stderr : stdout;
	double ms = (double)st->transfer_ns / 1e6;
	double bytes = (double)(st->bytes + st->devstate_bytes);

	fprintf(f,
		"%-8s %6" PRIu64 " pages %8.1f MB  runs %6" PRIu64
		"  transfer %8.3f ms %6.2f GB/s  commit-rtt %6.3f ms  flush %7.3f ms  devstate "
		"%6.1f KB  %s\n",
		label, st->pages, (double)st->bytes / 1e6, st->runs, ms,
		ms > 0 ? bytes / (ms * 1e6) : 0.0, (double)st->commit_ns / 1e6,
		(double)r->flush.flush_ns / 1e6, (double)st->devstate_bytes / 1e3,
		r->ok ? "verified" : r->what);
	fflush(f);
}

static json_t *demo_json_summary(const struct sim_summary *s)
{
	return json_pack("{s:f, s:f, s:f, s:f}", "mean", s->mean, "p50", s->p50, "p99", s->p99,
			 "max", s->max);
}

static void demo_print_summary(const struct demo_opts *o, unsigned verified, unsigned done,
			       double *xfer_ms, double *flush_ms, double *commit_ms, uint64_t bytes,
			       uint64_t pages, double total_xfer_ms,
			       const struct rct_ckpt_stats *sync)
{
	struct sim_summary xs, fs, cs;
	double gbps = total_xfer_ms > 0 ? (double)bytes / (total_xfer_ms * 1e6) : 0;
	char wl[32];

	sim_workload_format(&o->wl, wl, sizeof(wl));
	sim_summarize(xfer_ms, done, &xs);
	sim_summarize(flush_ms, done, &fs);
	sim_summarize(commit_ms, done, &cs);
	if (o->json) {
		json_t *j = json_pack("{s:s, s:i, s:I, s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:I, "
				      "s:I, s:f, s:{s:I, s:f}}",
				      "backend", o->backend, "lanes", (int)o->lanes, "region_size",
				      (json_int_t)o->region_size, "workload", wl, "interval_ms",
				      (int)o->interval_ms, "checkpoints", (int)o->checkpoints,
				      "verified", (int)verified, "transfer_ms",
				      demo_json_summary(&xs), "flush_ms", demo_json_summary(&fs),
				      "commit_ms", demo_json_summary(&cs), "bytes",
				      (json_int_t)bytes, "pages", (json_int_t)pages, "gbps", gbps,
				      "initial_sync", "bytes", (json_int_t)sync->bytes,
				      "transfer_ms", (double)sync->transfer_ns / 1e6);

		if (j) {
			json_dumpf(j, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
			json_decref(j);
		}
		return;
	}
	printf("\nbackend %s, %u lanes, region %.2f GiB, workload %s, %u checkpoints every %u ms\n",
	       o->backend, o->lanes, (double)o->region_size / (1ull << 30), wl, o->checkpoints,
	       o->interval_ms);
	printf("transfer ms:   mean %.3f  p50 %.3f  p99 %.3f  max %.3f\n", xs.mean, xs.p50, xs.p99,
	       xs.max);
	printf("commit-rtt ms: mean %.3f  p50 %.3f  p99 %.3f  max %.3f\n", cs.mean, cs.p50, cs.p99,
	       cs.max);
	printf("flush ms:      mean %.3f  p50 %.3f  p99 %.3f  max %.3f\n", fs.mean, fs.p50, fs.p99,
	       fs.max);
	printf("throughput:    %.2f GB/s  (%" PRIu64 " pages, %.1f MB incl. device state)\n", gbps,
	       pages, (double)bytes / 1e6);
	printf("verified %u/%u\n", verified, o->checkpoints);
}

int rctctl_demo(int argc, char **argv)
{
	struct demo_opts o;
	struct demo d;
	struct rct_session *ps = NULL;
	struct rct_region *pr;
	struct rct_ckpt_stats st, sync;
	struct demo_report r;
	struct timespec next;
	pthread_t sthread;
	bool sthread_up = false;
	uint64_t *bits = NULL, bytes = 0, pages = 0;
	double *xfer_ms = NULL, *flush_ms = NULL, *commit_ms = NULL, total_xfer_ms = 0;
	void *devbuf = NULL;
	size_t devcap = 0;
	unsigned verified = 0, done = 0;
	int rc, ret = RCTCTL_EXIT_TRANSPORT;
	rct_status_t s;
	char label[24];

	rc = demo_parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;

	memset(&d, 0, sizeof(d));
	d.o = &o;
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);

	fprintf(stderr, "demo: preparing a %.2f GiB guest on each side...\n",
		(double)o.region_size / (1ull << 30));
	rc = sim_guest_create(o.region_size, DEMO_PAGE_SIZE, &o.wl, o.seed, &d.pguest);
	if (rc) {
		fprintf(stderr, "demo: cannot create the primary's guest: %s\n", strerror(-rc));
		goto out;
	}
	d.sram = rctctl_map_anon(o.region_size);
	bits = calloc((sim_guest_pages(d.pguest) + 63) / 64, sizeof(uint64_t));
	xfer_ms = calloc(o.checkpoints, sizeof(double));
	flush_ms = calloc(o.checkpoints, sizeof(double));
	commit_ms = calloc(o.checkpoints, sizeof(double));
	if (!d.sram || !bits || !xfer_ms || !flush_ms || !commit_ms) {
		fprintf(stderr, "demo: out of memory for %.2f GiB guests\n",
			(double)o.region_size / (1ull << 30));
		goto out;
	}

	/* Secondary: its guest RAM, a colo cache (allocated by rct), listening. */
	s = demo_session(&o, RCT_ROLE_SECONDARY, &d.ssess);
	if (s == RCT_OK)
		s = rct_region_register(d.ssess, DEMO_REGION_ID, d.sram, o.region_size, &d.sregion);
	if (s == RCT_OK)
		s = rct_session_listen(d.ssess, "127.0.0.1", 0, &d.port);
	if (s != RCT_OK) {
		fprintf(stderr, "demo: secondary set-up failed: %s\n", rct_status_str(s));
		goto out;
	}
	if (pthread_create(&sthread, NULL, demo_secondary, &d)) {
		fprintf(stderr, "demo: cannot start the secondary thread\n");
		goto out;
	}
	sthread_up = true;

	/* Primary: its guest RAM registered, connected. */
	s = demo_session(&o, RCT_ROLE_PRIMARY, &ps);
	if (s == RCT_OK)
		s = rct_region_register(ps, DEMO_REGION_ID, sim_guest_ram(d.pguest), o.region_size,
					&pr);
	if (s == RCT_OK)
		s = rct_session_connect(ps, "127.0.0.1", d.port);
	if (s != RCT_OK) {
		fprintf(stderr, "demo: primary cannot connect to 127.0.0.1:%u: %s\n", d.port,
			rct_status_str(s));
		goto out;
	}
	fprintf(stderr, "demo: connected over %s with %u data lanes; initial full sync...\n",
		rct_session_backend(ps), rct_session_lanes(ps));

	/* Epoch 0: the first full sync (every page). */
	s = demo_checkpoint(&d, ps, pr, 0, true, bits, &devbuf, &devcap, &sync);
	if (s != RCT_OK) {
		fprintf(stderr, "demo: initial sync failed: %s\n", rct_status_str(s));
		goto out;
	}
	rc = demo_wait_report(&d, 0, &r);
	demo_line(&d, "sync", &sync, &r);
	if (rc) {
		ret = rc == 1 ? RCTCTL_EXIT_MISMATCH : RCTCTL_EXIT_TRANSPORT;
		fprintf(stderr, "demo: initial sync not verified: %s\n", r.what);
		goto out;
	}

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (unsigned k = 1; k <= o.checkpoints; k++) {
		next.tv_sec += o.interval_ms / 1000;
		next.tv_nsec += (long)(o.interval_ms % 1000) * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		demo_sleep_until(&next);
		s = demo_checkpoint(&d, ps, pr, k, false, bits, &devbuf, &devcap, &st);
		if (s != RCT_OK) {
			fprintf(stderr, "demo: checkpoint %u failed: %s\n", k, rct_status_str(s));
			goto out_summary;
		}
		rc = demo_wait_report(&d, k, &r);
		snprintf(label, sizeof(label), "ckpt %u", k);
		demo_line(&d, label, &st, &r);
		xfer_ms[done] = (double)st.transfer_ns / 1e6;
		commit_ms[done] = (double)st.commit_ns / 1e6;
		flush_ms[done] = (double)r.flush.flush_ns / 1e6;
		total_xfer_ms += xfer_ms[done];
		bytes += st.bytes + st.devstate_bytes;
		pages += st.pages;
		done++;
		if (rc) {
			fprintf(stderr, "demo: checkpoint %u NOT verified: %s\n", k, r.what);
			ret = rc == 1 ? RCTCTL_EXIT_MISMATCH : RCTCTL_EXIT_TRANSPORT;
			goto out_summary;
		}
		verified++;
		clock_gettime(CLOCK_MONOTONIC, &next);
	}
	ret = 0;

out_summary:
	demo_print_summary(&o, verified, done, xfer_ms, flush_ms, commit_ms, bytes, pages,
			   total_xfer_ms, &sync);
out:
	rct_session_destroy(ps); /* GOODBYE: the secondary thread sees its peer leave */
	if (sthread_up) {
		pthread_mutex_lock(&d.lock);
		d.stop = true;
		pthread_mutex_unlock(&d.lock);
		pthread_join(sthread, NULL);
	}
	rct_session_destroy(d.ssess);
	sim_guest_destroy(d.pguest);
	rctctl_unmap(d.sram, o.region_size);
	free(bits);
	free(devbuf);
	free(xfer_ms);
	free(flush_ms);
	free(commit_ms);
	pthread_cond_destroy(&d.cond);
	pthread_mutex_destroy(&d.lock);
	return ret;
}
