/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctctl bench: the same workload on several backend:lanes cells in one
 * process lifetime (same guests, same machine state), each verified byte for
 * byte, with a scattered-page memcpy of the same pages measured in the same
 * run as the physical limit, and ratios against it and against the TCP
 * baseline.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rct/rct.h>

#include "../sim/sim.h"
#include "rctctl.h"
#include "run.h"

#define BENCH_MAX_CELLS 16

struct bench_cell {
	char backend[16];
	unsigned lanes;
	struct run_result res;
	bool ran;
};

struct bench_opts {
	struct run_cfg cfg;
	uint64_t region_size;
	bool json, verbose;
	struct bench_cell cells[BENCH_MAX_CELLS];
	unsigned ncells;
};

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: rctctl bench [options]\n"
		"\n"
		"Run the same checkpoint workload over several transports, through the same two\n"
		"rctd (guest -> rctd <-> rctd <- guest on 127.0.0.1), and compare them:\n"
		"transfer time mean/p50/p99/max, GB/s, and the ratio to a\n"
		"scattered-page memcpy of the same pages measured in the same run.  Every\n"
		"checkpoint of every cell is verified byte for byte.\n"
		"\n"
		"  --backends LIST      cells as backend:lanes, comma-separated\n"
		"                       (default ucx:4,tcp:4,tcp:1; only backends of this build)\n"
		"  --region-size SIZE   guest RAM, K/M/G suffixes (default 1G)\n"
		"  --workload W         idle | load | random:PCT (default random:10)\n"
		"  --checkpoints K      checkpoints per cell after its full sync (default 20)\n"
		"  --interval-ms MS     guest run time between checkpoints (default: 0 for "
		"random,\n"
		"                       600 for idle and load, which dirty at a rate)\n"
		"  --seed N             seed of the simulated guests (default 1)\n"
		"  --timeout-ms MS      deadline of every transport call (default 10000)\n"
		"  --addr ADDR          where the two peers meet (default 127.0.0.1; verbs: the\n"
		"                       IPv4 address of the RDMA device's interface)\n"
		"  --threads N          helper threads for the primary's copies where the backend\n"
		"                       copies with the CPU (ucx on one host); default: one per\n"
		"                       core beyond the first, at most lanes - 1\n"
		"  --json               one JSON object on stdout\n"
		"  --verbose            a line per checkpoint on stderr\n" RUN_DAEMON_HELP
		"  -h, --help           this text\n"
		"\n"
		"Exit status: 0 every cell verified, 1 a checkpoint differs, 2 usage, 3 "
		"transport.\n");
}

static int bench_parse_cells(struct bench_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = 0;

	o->ncells = 0;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		struct bench_cell *c;
		unsigned long lanes;

		if (o->ncells == BENCH_MAX_CELLS || !colon ||
		    rctctl_parse_ulong(colon + 1, 1, RCT_MAX_LANES, &lanes)) {
			rc = -1;
			break;
		}
		*colon = '\0';
		if (!rct_backend_available(tok) || strlen(tok) >= sizeof(c->backend)) {
			rc = -1;
			break;
		}
		c = &o->cells[o->ncells++];
		snprintf(c->backend, sizeof(c->backend), "%s", tok);
		c->lanes = (unsigned)lanes;
	}
	free(copy);
	return rc || !o->ncells ? -1 : 0;
}

static int bench_parse(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{"backends", required_argument, NULL, 'b'},
		{"json", no_argument, NULL, 'j'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		RUN_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	const char *cells = NULL;
	bool interval_given = false;
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->region_size = 1ull << 30;
	sim_workload_parse("random:10", &o->cfg.wl);
	o->cfg.checkpoints = 20;
	o->cfg.seed = 1;
	o->cfg.threads = -1;
	o->cfg.timeout_ms = 10000;
	o->cfg.metrics_port = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			cells = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			bench_usage(stdout);
			return 1;
		default:
			rc = run_parse_option(c, optarg, &o->cfg, &o->region_size);
			if (rc > 0)
				return rc;
			if (rc < 0) {
				bench_usage(stderr);
				return RCTCTL_EXIT_USAGE;
			}
			if (c == 'i')
				interval_given = true;
			break;
		}
	}
	if (optind < argc)
		return rctctl_usage_error("bench", argv[optind], "no positional arguments");
	if (!cells)
		cells = rct_backend_available("ucx") ? "ucx:4,tcp:4,tcp:1" : "tcp:4,tcp:1";
	if (bench_parse_cells(o, cells))
		return rctctl_usage_error("--backends", cells,
					  "backend:lanes,... with backends of this build and 1..64 "
					  "lanes, at most 16 cells");
	if (!interval_given)
		o->cfg.interval_ms = o->cfg.wl.kind == SIM_WORKLOAD_RANDOM ? 0 : 600;
	return 0;
}

/* The baseline the design compares against: tcp with 4 lanes ('multifd-4'). */
static const struct bench_cell *bench_baseline(const struct bench_opts *o)
{
	for (unsigned i = 0; i < o->ncells; i++)
		if (!strcmp(o->cells[i].backend, "tcp") && o->cells[i].lanes == 4 &&
		    o->cells[i].res.done)
			return &o->cells[i];
	return NULL;
}

static double bench_mean(const double *v, unsigned n)
{
	double t = 0;

	for (unsigned i = 0; i < n; i++)
		t += v[i];
	return n ? t / n : 0;
}

static void bench_print(struct bench_opts *o, double memcpy_gbps)
{
	const struct bench_cell *base = bench_baseline(o);
	double base_mean = base ? bench_mean(base->res.xfer_ms, base->res.done) : 0;
	char wl[32];

	sim_workload_format(&o->cfg.wl, wl, sizeof(wl));
	if (o->json) {
		json_t *cells = json_array(), *j;

		for (unsigned i = 0; i < o->ncells; i++) {
			struct bench_cell *c = &o->cells[i];
			double mean = bench_mean(c->res.xfer_ms, c->res.done);
			double gbps = run_gbps(&c->res);

			json_array_append_new(
				cells,
				json_pack("{s:s, s:i, s:i, s:i, s:o, s:f, s:f, s:o, s:o, s:o}",
					  "backend", c->backend, "lanes", (int)c->lanes, "verified",
					  (int)c->res.verified, "checkpoints",
					  (int)o->cfg.checkpoints, "transfer_ms",
					  run_json_summary(c->res.xfer_ms, c->res.done), "gbps",
					  gbps, "memcpy_ratio",
					  memcpy_gbps > 0 ? gbps / memcpy_gbps : 0.0,
					  "vs_tcp4_mean",
					  base_mean > 0 ? json_real(mean / base_mean) : json_null(),
					  "secondary_cpu_ms",
					  run_json_summary(c->res.sec_cpu_ms, c->res.done),
					  "commit_ms",
					  run_json_summary(c->res.commit_ms, c->res.done)));
		}
		j = json_pack("{s:f, s:I, s:s, s:i, s:i, s:o}", "memcpy_gbps", memcpy_gbps,
			      "region_size", (json_int_t)o->region_size, "workload", wl,
			      "interval_ms", (int)o->cfg.interval_ms, "checkpoints",
			      (int)o->cfg.checkpoints, "cells", cells);
		if (j) {
			json_dumpf(j, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
			json_decref(j);
		}
		return;
	}
	printf("\nbench: region %.2f GiB, workload %s, %u checkpoints per cell, interval %u ms\n",
	       (double)o->region_size / (1ull << 30), wl, o->cfg.checkpoints, o->cfg.interval_ms);
	printf("memcpy of the same pages (scattered 4 KiB, address order, 1 thread): %.2f GB/s\n\n",
	       memcpy_gbps);
	printf("%-8s %9s  %8s %8s %8s %8s  %6s %9s %9s %10s\n", "cell", "verified", "mean ms",
	       "p50", "p99", "max", "GB/s", "/memcpy", "/tcp:4", "sec CPU ms");
	for (unsigned i = 0; i < o->ncells; i++) {
		struct bench_cell *c = &o->cells[i];
		double mean = bench_mean(c->res.xfer_ms, c->res.done);
		double cpu = bench_mean(c->res.sec_cpu_ms, c->res.done);
		double gbps = run_gbps(&c->res);
		struct sim_summary s;
		char name[32], ver[24], vs[16];

		sim_summarize(c->res.xfer_ms, c->res.done, &s);
		snprintf(name, sizeof(name), "%s:%u", c->backend, c->lanes);
		snprintf(ver, sizeof(ver), "%u/%u", c->res.verified, o->cfg.checkpoints);
		if (base_mean > 0)
			snprintf(vs, sizeof(vs), "%.2fx", mean / base_mean);
		else
			snprintf(vs, sizeof(vs), "-");
		printf("%-8s %9s  %8.3f %8.3f %8.3f %8.3f  %6.2f %8.0f%% %9s %10.3f\n", name, ver,
		       s.mean, s.p50, s.p99, s.max, gbps,
		       memcpy_gbps > 0 ? 100 * gbps / memcpy_gbps : 0, vs, cpu);
	}
	printf("\n(transfer: first put to the secondary's ACK of COMMIT, pages and device state;\n"
	       " /tcp:4: mean transfer time relative to tcp with 4 lanes; sec CPU: the\n"
	       " CPU time of the secondary's rctd per checkpoint)\n");
}

int rctctl_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct run_env env;
	double memcpy_ms = 0;
	uint64_t memcpy_bytes = 0;
	int rc, ret = 0;

	rc = bench_parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!getenv("UCX_NET_DEVICES"))
		setenv("UCX_NET_DEVICES", "lo", 0); /* peers on loopback */
	o.cfg.lines = o.verbose ? stderr : NULL;

	fprintf(stderr, "bench: preparing %.2f GiB guests and a memcpy target...\n",
		(double)o.region_size / (1ull << 30));
	rc = run_env_create(&env, &o.cfg, o.region_size, true);
	if (rc) {
		fprintf(stderr, "bench: cannot create the guests: %s\n", strerror(-rc));
		return RCTCTL_EXIT_TRANSPORT;
	}
	for (unsigned i = 0; i < o.ncells; i++) {
		struct bench_cell *c = &o.cells[i];

		o.cfg.backend = c->backend;
		o.cfg.lanes = c->lanes;
		fprintf(stderr, "bench: cell %u/%u: %s:%u, %u checkpoints...\n", i + 1, o.ncells,
			c->backend, c->lanes, o.cfg.checkpoints);
		rc = run_cell(&o.cfg, &env, &c->res);
		c->ran = true;
		memcpy_ms += c->res.memcpy_ms;
		memcpy_bytes += c->res.memcpy_bytes;
		if (rc) {
			fprintf(stderr, "bench: cell %s:%u: %s\n", c->backend, c->lanes,
				c->res.what);
			if (!ret || rc == RCTCTL_EXIT_MISMATCH)
				ret = rc;
		} else {
			fprintf(stderr, "bench: cell %s:%u: verified %u/%u, %.2f GB/s\n",
				c->backend, c->lanes, c->res.verified, o.cfg.checkpoints,
				run_gbps(&c->res));
		}
	}
	bench_print(&o, memcpy_ms > 0 ? (double)memcpy_bytes / (memcpy_ms * 1e6) : 0);
	for (unsigned i = 0; i < o.ncells; i++)
		run_result_free(&o.cells[i].res);
	run_env_destroy(&env);
	return ret;
}
