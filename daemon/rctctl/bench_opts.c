/* SPDX-License-Identifier: BSD-3-Clause */
/* rctctl bench's options: --help, the cell and workload lists, the outputs. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../sim/sim.h"
#include "bench.h"
#include "cell.h"
#include "rctctl.h"

enum {
	BENCH_OPT_PLOTS = 256,
	BENCH_OPT_SWEEPS,
	BENCH_OPT_SWEEP_CKPTS,
	BENCH_OPT_REGION_SIZES,
	BENCH_OPT_STREAM_MS,
	BENCH_OPT_ZERO_PAGES,
};

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: rctctl bench [options]\n"
		"\n"
		"The checkpoint-latency experiment: a simulated guest, every backend:lanes cell\n"
		"under every workload through the same two rctd (guest -> rctd <-> rctd <-\n"
		"guest), each checkpoint verified byte for byte.  It prints, per backend and\n"
		"workload, the memory-transfer time (first put -> the secondary's ACK, as the\n"
		"seed benchmark measured) and the whole pause (the hypervisor's begin -> commit\n"
		"reply, plus the secondary's flush), mean and p99; GB/s; the CPU seconds per GB\n"
		"moved of each rctd; and a scattered-page memcpy of the same pages measured in\n"
		"the same run (the limit).  With --sweeps (or --plots) it then measures\n"
		"throughput against lanes (1, 2, 4, 8 at random:10) and against the dirty\n"
		"fraction (random:0.1, 1, 10, 100 at 4 lanes) for each backend.\n"
		"\n"
		"  --backends LIST      cells as backend:lanes, comma-separated (default\n"
		"                       tcp:1,tcp:4,ucx:1,ucx:4, plus verbs:1,verbs:4 when an\n"
		"                       RDMA device exists; only backends of this build)\n"
		"  --workloads LIST     idle, load, random:PCT, pages:SIZE (SIZE bytes of\n"
		"                       random pages per interval), free:SIZE (the same, every\n"
		"                       other one zeroed), comma-separated (default idle,load)\n"
		"  --workload W         one workload (the same as --workloads W)\n"
		"  --region-size SIZE   guest RAM, K/M/G suffixes (default 2G)\n"
		"  --region-sizes LIST  the scale sweep: sparse guests (memfds populated only\n"
		"                       where dirtied) of each size, comma-separated, K/M/G/T\n"
		"                       suffixes (e.g. 16G,64G,256G,1T), a pair of guests and\n"
		"                       daemons per size; the workloads default to pages:25M.\n"
		"                       verbs cells are skipped where the host cannot pin the\n"
		"                       guest and its colo cache; ucx cells where the cache is\n"
		"                       larger than the host (UCX cannot share it) and no RDMA\n"
		"                       device exists (its puts would be emulated: refused)\n"
		"  --stream-ms MS       streaming before the pause: every workload runs twice,\n"
		"                       stop-and-copy and streaming, where the guest hands\n"
		"                       rctd the pages it dirtied every MS while it runs\n"
		"                       (CKPT_STREAM) and the pause moves only the rest\n"
		"                       (default 0: stop-and-copy only)\n"
		"  --zero-pages         zero-page elision: every workload runs twice, without\n"
		"                       and with it (dirty pages that are all zero go as a\n"
		"                       ZEROS message, not as data); free:SIZE frees half\n"
		"                       the pages it dirties\n"
		"  --checkpoints K      checkpoints per cell after its full sync (default 100)\n"
		"  --interval-ms MS     guest run time between checkpoints (default 600; 0 for\n"
		"                       random:PCT, which dirties a fixed share at once)\n"
		"  --quick              a small run (128M, 10 checkpoints, 50 ms, 3 per sweep\n"
		"                       cell): under a minute without sweeps\n"
		"  --csv FILE           every checkpoint of every cell, one CSV line each\n"
		"  --plots DIR          PNG plots made with gnuplot into DIR (created): latency\n"
		"                       CDFs per workload, throughput against lanes and against\n"
		"                       dirty fraction; DIR/plots.gp holds the data and commands\n"
		"                       (implies --sweeps)\n"
		"  --sweeps             run the throughput sweeps\n"
		"  --sweep-checkpoints K  checkpoints per sweep cell (default 10)\n"
		"  --seed N             seed of the simulated guests (default 1)\n"
		"  --timeout-ms MS      deadline of every transport call (default 10000)\n"
		"  --addr ADDR          where the two peers meet (default 127.0.0.1; verbs: the\n"
		"                       IPv4 address of the RDMA device's interface)\n"
		"  --threads N          helper threads for the primary's copies where the backend\n"
		"                       copies with the CPU (ucx on one host); default: one per\n"
		"                       core beyond the first, at most lanes - 1\n"
		"  --json               the table as one JSON object on stdout\n"
		"  --verbose            a line per checkpoint on stderr\n" CELL_DAEMON_HELP
		"  -h, --help           this text\n"
		"\n"
		"Exit status: 0 every cell verified, 1 a checkpoint differs, 2 usage, 3 "
		"transport.\n");
}

static int bench_parse_backends(struct bench_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = copy ? 0 : -1;

	o->nbackends = 0;
	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !rc;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		unsigned long lanes;

		if (o->nbackends == BENCH_MAX_BACKENDS || !colon ||
		    rctctl_parse_ulong(colon + 1, 1, RCT_MAX_LANES, &lanes)) {
			rc = -1;
			break;
		}
		*colon = '\0';
		if (!rct_backend_available(tok) || strlen(tok) >= sizeof(o->backends[0].name)) {
			rc = -1;
			break;
		}
		snprintf(o->backends[o->nbackends].name, sizeof(o->backends[0].name), "%s", tok);
		o->backends[o->nbackends++].lanes = (unsigned)lanes;
	}
	free(copy);
	return rc || !o->nbackends ? -1 : 0;
}

static int bench_parse_workloads(struct bench_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = copy ? 0 : -1;

	o->nwls = 0;
	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !rc;
	     tok = strtok_r(NULL, ",", &save))
		if (o->nwls == BENCH_MAX_WORKLOADS || sim_workload_parse(tok, &o->wls[o->nwls++]))
			rc = -1;
	free(copy);
	return rc || !o->nwls ? -1 : 0;
}

static int bench_parse_sizes(struct bench_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = copy ? 0 : -1;

	o->nsizes = 0;
	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !rc;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (o->nsizes == BENCH_MAX_SIZES || sim_parse_size(tok, &v) || !v ||
		    v % CELL_PAGE_SIZE)
			rc = -1;
		else
			o->sizes[o->nsizes++] = v;
	}
	free(copy);
	o->scale = true;
	return rc || !o->nsizes ? -1 : 0;
}

/*
 * What must exist before hours of measuring start: the CSV file, the plot
 * directory and gnuplot.  Returns 0, or RCTCTL_EXIT_USAGE after a message.
 */
static int bench_prepare_outputs(struct bench_opts *o)
{
	if (o->plots) {
		if (!bench_have_gnuplot()) {
			fprintf(stderr, "rctctl: --plots needs gnuplot in $PATH (Debian: apt-get "
					"install gnuplot-nox)\n");
			return RCTCTL_EXIT_USAGE;
		}
		if (mkdir(o->plots, 0755) && errno != EEXIST) {
			fprintf(stderr, "rctctl: --plots: cannot create %s: %s\n", o->plots,
				strerror(errno));
			return RCTCTL_EXIT_USAGE;
		}
		if (access(o->plots, W_OK | X_OK)) {
			fprintf(stderr, "rctctl: --plots: cannot write into %s: %s\n", o->plots,
				strerror(errno));
			return RCTCTL_EXIT_USAGE;
		}
	}
	if (o->csv) {
		o->csv_file = fopen(o->csv, "w");
		if (!o->csv_file) {
			fprintf(stderr, "rctctl: --csv: cannot write %s: %s\n", o->csv,
				strerror(errno));
			return RCTCTL_EXIT_USAGE;
		}
	}
	return 0;
}

int bench_parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{"backends", required_argument, NULL, 'b'},
		{"workloads", required_argument, NULL, 'W'},
		{"csv", required_argument, NULL, 'C'},
		{"plots", required_argument, NULL, BENCH_OPT_PLOTS},
		{"sweeps", no_argument, NULL, BENCH_OPT_SWEEPS},
		{"sweep-checkpoints", required_argument, NULL, BENCH_OPT_SWEEP_CKPTS},
		{"region-sizes", required_argument, NULL, BENCH_OPT_REGION_SIZES},
		{"stream-ms", required_argument, NULL, BENCH_OPT_STREAM_MS},
		{"zero-pages", no_argument, NULL, BENCH_OPT_ZERO_PAGES},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		CELL_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	const char *backends = NULL, *workloads = NULL, *sizes = NULL;
	bool size_given = false, ckpts_given = false, wl_given = false, sweep_given = false;
	char defaults[128];
	unsigned long v;
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->region_size = 2ull << 30;
	o->cfg.checkpoints = 100;
	o->sweep_checkpoints = 10;
	o->cfg.seed = 1;
	o->cfg.threads = -1;
	o->cfg.timeout_ms = 10000;
	o->cfg.metrics_port = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			backends = optarg;
			break;
		case 'W':
			workloads = optarg;
			break;
		case 'C':
			o->csv = optarg;
			break;
		case BENCH_OPT_PLOTS:
			o->plots = optarg;
			o->sweeps = true;
			break;
		case BENCH_OPT_SWEEPS:
			o->sweeps = true;
			break;
		case BENCH_OPT_SWEEP_CKPTS:
			if (rctctl_parse_ulong(optarg, 1, 100000, &v))
				return rctctl_usage_error("--sweep-checkpoints", optarg,
							  "1..100000");
			o->sweep_checkpoints = (unsigned)v;
			sweep_given = true;
			break;
		case BENCH_OPT_REGION_SIZES:
			sizes = optarg;
			break;
		case BENCH_OPT_STREAM_MS:
			if (rctctl_parse_ulong(optarg, 0, 60000, &v))
				return rctctl_usage_error("--stream-ms", optarg, "0..60000");
			o->stream_ms = (unsigned)v;
			break;
		case BENCH_OPT_ZERO_PAGES:
			o->zero_pages = true;
			break;
		case 'q':
			o->quick = true;
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
			rc = cell_parse_option(c, optarg, &o->cfg, &o->region_size);
			if (rc > 0)
				return rc;
			if (rc < 0) {
				bench_usage(stderr);
				return RCTCTL_EXIT_USAGE;
			}
			o->interval_given |= c == 'i';
			size_given |= c == 's';
			ckpts_given |= c == 'k';
			wl_given |= c == 'w';
			break;
		}
	}
	if (optind < argc)
		return rctctl_usage_error("bench", argv[optind], "no positional arguments");
	if (o->quick) {
		if (!size_given)
			o->region_size = 128ull << 20;
		if (!ckpts_given)
			o->cfg.checkpoints = 10;
		if (!sweep_given)
			o->sweep_checkpoints = 3;
		if (!o->interval_given) {
			o->cfg.interval_ms = 50;
			o->interval_given = true;
		}
	}
	o->checkpoints = o->cfg.checkpoints;
	if (sizes && size_given)
		return rctctl_usage_error("--region-sizes", sizes,
					  "either --region-size or --region-sizes");
	if (sizes && bench_parse_sizes(o, sizes))
		return rctctl_usage_error("--region-sizes", sizes,
					  "sizes with K, M, G or T, multiples of 4 KiB, "
					  "comma-separated, at most 8");
	if (!sizes) {
		o->sizes[0] = o->region_size;
		o->nsizes = 1;
	}
	o->cfg.sparse = o->scale;
	if (!backends) {
		snprintf(defaults, sizeof(defaults), "tcp:1,tcp:4%s%s",
			 rct_backend_available("ucx") ? ",ucx:1,ucx:4" : "",
			 rct_backend_available("verbs") && rctctl_rdma_device() ? ",verbs:1,verbs:4"
										: "");
		backends = defaults;
	}
	if (bench_parse_backends(o, backends))
		return rctctl_usage_error("--backends", backends,
					  "backend:lanes,... with backends of this build and 1..64 "
					  "lanes, at most 16 cells");
	if (wl_given && workloads)
		return rctctl_usage_error("--workload", "", "either --workload or --workloads");
	if (wl_given) {
		o->wls[0] = o->cfg.wl;
		o->nwls = 1;
	} else if (bench_parse_workloads(o, workloads  ? workloads
					    : o->scale ? "pages:25M"
						       : "idle,load")) {
		return rctctl_usage_error("--workloads", workloads,
					  "idle, load, random:PCT, pages:SIZE or free:SIZE, "
					  "comma-separated, at most 8");
	}
	for (unsigned w = 0; o->scale && w < o->nwls; w++)
		if (o->wls[w].kind == SIM_WORKLOAD_RANDOM)
			return rctctl_usage_error(
				"--workloads", workloads,
				"pages:SIZE, free:SIZE, idle or load with --region-sizes "
				"(random:PCT dirties a share of the guest's size)");
	if (o->scale && o->sweeps)
		return rctctl_usage_error("--sweeps", "", "not with --region-sizes");
	if (o->stream_ms && o->sweeps)
		return rctctl_usage_error("--stream-ms", "", "not with --sweeps or --plots");
	if (o->zero_pages && (o->sweeps || o->stream_ms))
		return rctctl_usage_error("--zero-pages", "",
					  "not with --sweeps, --plots or --stream-ms");
	/* Streaming or zero-page elision: every workload twice in the same run,
	 * the plain cell first (its twin, bench.c). */
	if (o->zero_pages || o->stream_ms) {
		if (2 * o->nwls > BENCH_MAX_WORKLOADS)
			return rctctl_usage_error(o->zero_pages ? "--zero-pages" : "--stream-ms",
						  "", "at most 4 workloads (each runs twice)");
		for (unsigned w = o->nwls; w-- > 0;) {
			o->wls[2 * w] = o->wls[w];
			o->wls[2 * w + 1] = o->wls[w];
			o->wl_stream[2 * w] = 0;
			o->wl_stream[2 * w + 1] = o->stream_ms;
			o->wl_zero[2 * w] = false;
			o->wl_zero[2 * w + 1] = o->zero_pages;
		}
		o->nwls *= 2;
	}
	return bench_prepare_outputs(o);
}
