/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctctl demo: one cell (cell.h) with a line per checkpoint and a summary:
 * transfer time mean/p50/p99/max, GB/s, pages, and 'verified N/N'.
 */
#include <dirent.h>
#include <errno.h>
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
#include "cell.h"

struct demo_opts {
	struct cell_cfg cfg;
	uint64_t region_size;
	bool json;
};

static void demo_usage(FILE *f)
{
	fprintf(f,
		"usage: rctctl demo [options]\n"
		"\n"
		"Start two rctd on this host (a primary and a secondary) and drive each with a\n"
		"simulated guest over the socket API: guest -> rctd <-> rctd <- guest on\n"
		"127.0.0.1.  Take checkpoints and verify every one byte for byte: after each\n"
		"flush the secondary's guest RAM and device state must equal the primary's\n"
		"snapshot.\n"
		"\n"
		"  --backend NAME       transport: verbs, ucx or tcp (default: verbs if an RDMA\n"
		"                       device exists and verbs is built, else ucx, else tcp)\n"
		"  --lanes N            data lanes, 1..64 (default 4)\n"
		"  --region-size SIZE   guest RAM, K/M/G suffixes (default 1G)\n"
		"  --workload W         idle | load | random:PCT (default idle)\n"
		"  --checkpoints K      incremental checkpoints after the first full sync (default "
		"20)\n"
		"  --interval-ms MS     time the guest runs between checkpoints (default 600)\n"
		"  --seed N             seed of the simulated guests (default 1)\n"
		"  --timeout-ms MS      deadline of every transport call (default 10000)\n"
		"  --addr ADDR          where the two peers meet (default 127.0.0.1; verbs: the\n"
		"                       IPv4 address of the RDMA device's interface)\n"
		"  --threads N          helper threads for the primary's copies where the backend\n"
		"                       copies with the CPU (ucx on one host); default: one per\n"
		"                       core beyond the first, at most lanes - 1\n"
		"  --json               print one JSON object on stdout (per-checkpoint lines go "
		"to stderr)\n" CELL_DAEMON_HELP "  -h, --help           this text\n"
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
	bool rdma_dev = rctctl_rdma_device();

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
		{"json", no_argument, NULL, 'j'},
		{"selftest-corrupt", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		CELL_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	unsigned long v;
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->cfg.backend = NULL; /* chosen after parsing */
	o->cfg.lanes = 4;
	o->region_size = 1ull << 30;
	o->cfg.wl.kind = SIM_WORKLOAD_IDLE;
	o->cfg.checkpoints = 20;
	o->cfg.interval_ms = 600;
	o->cfg.seed = 1;
	o->cfg.threads = -1;
	o->cfg.timeout_ms = 10000;
	o->cfg.metrics_port = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->cfg.backend = optarg;
			break;
		case 'l':
			if (rctctl_parse_ulong(optarg, 1, RCT_MAX_LANES, &v))
				return rctctl_usage_error("--lanes", optarg, "1..64");
			o->cfg.lanes = (unsigned)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'C':
			if (rctctl_parse_ulong(optarg, 1, ULONG_MAX, &v))
				return rctctl_usage_error("--selftest-corrupt", optarg,
							  "a checkpoint number >= 1");
			o->cfg.corrupt_epoch = v;
			break;
		case 'h':
			demo_usage(stdout);
			return 1;
		default:
			rc = cell_parse_option(c, optarg, &o->cfg, &o->region_size);
			if (rc > 0)
				return rc;
			if (rc < 0) {
				demo_usage(stderr);
				return RCTCTL_EXIT_USAGE;
			}
			break;
		}
	}
	if (optind < argc)
		return rctctl_usage_error("demo", argv[optind], "no positional arguments");
	if (!o->cfg.backend) {
		static char why[160];

		o->cfg.backend = demo_pick_backend(why, sizeof(why));
		fprintf(stderr, "demo: backend %s (no --backend given: %s)\n", o->cfg.backend, why);
	} else if (!rct_backend_available(o->cfg.backend)) {
		return rctctl_usage_error("--backend", o->cfg.backend,
					  "a backend of this build (verbs, ucx, tcp)");
	}
	/* UCX on loopback: keep its TCP transport on lo, as the peers are. */
	if (!strcmp(o->cfg.backend, "ucx") && !getenv("UCX_NET_DEVICES"))
		setenv("UCX_NET_DEVICES", "lo", 0);
	return 0;
}

static void demo_print(const struct demo_opts *o, struct cell_result *res)
{
	const struct cell_cfg *c = &o->cfg;
	double gbps = cell_gbps(res);
	struct sim_summary xs, fs, cs, hs, ds;
	char wl[32];

	sim_workload_format(&c->wl, wl, sizeof(wl));
	if (o->json) {
		json_t *j = json_pack(
			"{s:s, s:i, s:I, s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:I, "
			"s:I, "
			"s:f, "
			"s:{s:I, s:f}}",
			"backend", c->backend, "lanes", (int)c->lanes, "region_size",
			(json_int_t)o->region_size, "workload", wl, "interval_ms",
			(int)c->interval_ms, "checkpoints", (int)c->checkpoints, "verified",
			(int)res->verified, "transfer_ms",
			cell_json_summary(res->xfer_ms, res->done), "flush_ms",
			cell_json_summary(res->flush_ms, res->done), "commit_ms",
			cell_json_summary(res->commit_ms, res->done), "secondary_cpu_ms",
			cell_json_summary(res->sec_cpu_ms, res->done), "checkpoint_ms",
			cell_json_summary(res->hv_ms, res->done), "rctd_checkpoint_ms",
			cell_json_summary(res->rctd_ms, res->done), "bytes", (json_int_t)res->bytes,
			"pages", (json_int_t)res->pages, "gbps", gbps, "initial_sync", "bytes",
			(json_int_t)res->sync.bytes, "transfer_ms",
			(double)res->sync.transfer_ns / 1e6);

		if (j) {
			json_dumpf(j, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
			json_decref(j);
		}
		return;
	}
	sim_summarize(res->xfer_ms, res->done, &xs);
	sim_summarize(res->flush_ms, res->done, &fs);
	sim_summarize(res->commit_ms, res->done, &cs);
	sim_summarize(res->hv_ms, res->done, &hs);
	sim_summarize(res->rctd_ms, res->done, &ds);
	printf("\nbackend %s, %u lanes, region %.2f GiB, workload %s, %u checkpoints every %u ms\n",
	       c->backend, c->lanes, (double)o->region_size / (1ull << 30), wl, c->checkpoints,
	       c->interval_ms);
	printf("transfer ms:   mean %.3f  p50 %.3f  p99 %.3f  max %.3f\n", xs.mean, xs.p50, xs.p99,
	       xs.max);
	printf("commit-rtt ms: mean %.3f  p50 %.3f  p99 %.3f  max %.3f\n", cs.mean, cs.p50, cs.p99,
	       cs.max);
	printf("flush ms:      mean %.3f  p50 %.3f  p99 %.3f  max %.3f\n", fs.mean, fs.p50, fs.p99,
	       fs.max);
	printf("checkpoint ms: mean %.3f  p50 %.3f  p99 %.3f  max %.3f  (hypervisor: begin sent -> "
	       "commit reply;\n               rctd's own begin -> commit: mean %.3f  p99 %.3f)\n",
	       hs.mean, hs.p50, hs.p99, hs.max, ds.mean, ds.p99);
	printf("throughput:    %.2f GB/s  (%" PRIu64 " pages, %.1f MB incl. device state)\n", gbps,
	       res->pages, (double)res->bytes / 1e6);
	printf("verified %u/%u\n", res->verified, c->checkpoints);
}

int rctctl_demo(int argc, char **argv)
{
	struct cell_result res;
	struct demo_opts o;
	struct cell_env env;
	int rc;

	rc = demo_parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	o.cfg.lines = o.json ? stderr : stdout;

	fprintf(stderr, "demo: preparing a %.2f GiB guest on each side...\n",
		(double)o.region_size / (1ull << 30));
	rc = cell_env_create(&env, &o.cfg, o.region_size, false);
	if (rc) {
		fprintf(stderr, "demo: cannot create the guests: %s\n", strerror(-rc));
		return RCTCTL_EXIT_TRANSPORT;
	}
	rc = cell_run(&o.cfg, &env, &res);
	if (rc)
		fprintf(stderr, "demo: %s\n", res.what);
	/* A summary whenever a checkpoint was measured, even when one failed. */
	if (res.done || !rc)
		demo_print(&o, &res);
	cell_result_free(&res);
	cell_env_destroy(&env);
	return rc;
}
