/* SPDX-License-Identifier: BSD-3-Clause */
/* rctctl bench: its cells, shared by the table/JSON/CSV code and the plots. */
#ifndef RCTCTL_BENCH_H
#define RCTCTL_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../sim/sim.h"
#include "cell.h"

#define BENCH_MAX_BACKENDS  16
#define BENCH_NAME_LEN	    16 /* a backend name */
#define BENCH_MAX_WORKLOADS 8
#define BENCH_MAX_SIZES	    8 /* --region-sizes */
#define BENCH_MAX_CELLS	    (BENCH_MAX_BACKENDS * BENCH_MAX_WORKLOADS * BENCH_MAX_SIZES)

/* The throughput sweeps: lanes at one dirty fraction, dirty fractions at one lane count. */
#define BENCH_SWEEP_NLANES    4
#define BENCH_SWEEP_NPCT      4
#define BENCH_SWEEP_LANES_PCT 10.0 /* dirty % of the lanes sweep */
#define BENCH_SWEEP_PCT_LANES 4	   /* lanes of the dirty-fraction sweep */
#define BENCH_MAX_SWEEPS      (BENCH_MAX_BACKENDS * (BENCH_SWEEP_NLANES + BENCH_SWEEP_NPCT))

extern const unsigned bench_sweep_lanes[BENCH_SWEEP_NLANES];
extern const double bench_sweep_pct[BENCH_SWEEP_NPCT];

struct bench_cell {
	char backend[BENCH_NAME_LEN];
	unsigned lanes;
	struct sim_workload wl;
	char wl_name[32];
	char label[64];	    /* wl_name, and " stream:MS" when it streams */
	unsigned stream_ms; /* streaming before the pause every stream_ms (0: off) */
	bool zero_pages;    /* zero-page elision */
	unsigned checkpoints;
	uint64_t region_size; /* its guests' size */
	struct cell_result res;
	bool ran;
	char skipped[160]; /* why it did not run, when it could not ("": it ran) */
};

struct bench_opts {
	struct cell_cfg cfg;
	uint64_t region_size;
	uint64_t sizes[BENCH_MAX_SIZES]; /* the guests' sizes: --region-sizes, else region_size */
	unsigned nsizes;
	bool scale; /* --region-sizes: sparse guests, one pair per size */
	bool json, verbose, quick, interval_given, sweeps;
	unsigned checkpoints, sweep_checkpoints;
	const char *csv, *plots;
	FILE *csv_file; /* opened before the run, so that a bad path costs nothing */
	struct {
		char name[BENCH_NAME_LEN];
		unsigned lanes;
	} backends[BENCH_MAX_BACKENDS];
	unsigned nbackends;
	struct sim_workload wls[BENCH_MAX_WORKLOADS];
	unsigned wl_stream[BENCH_MAX_WORKLOADS]; /* each workload's stream_ms (--stream-ms: every
						    workload twice, 0 and MS) */
	unsigned stream_ms;			 /* --stream-ms */
	bool wl_zero[BENCH_MAX_WORKLOADS];	 /* each workload's zero_pages (--zero-pages) */
	bool zero_pages;			 /* --zero-pages */
	unsigned nwls;
	/* The experiment: size-major, then workload: cells[(s * nwls + w) * nbackends + b]. */
	struct bench_cell cells[BENCH_MAX_CELLS];
	unsigned ncells;
	double memcpy_gbps;	/* of the experiment's cells */
	double memcpy_hot_gbps; /* the same copies done again right after */
	/* The sweeps, per distinct backend name. */
	char sweep_backends[BENCH_MAX_BACKENDS][BENCH_NAME_LEN];
	unsigned nsweep_backends;
	struct bench_cell sweep[BENCH_MAX_SWEEPS];
	unsigned nsweep;
	/* progress line */
	const struct bench_cell *cur;
	unsigned cell_no, cell_total;
	bool tty;
};

/* Mean, p50, p99, max of @n samples, leaving @v in checkpoint order. */
void bench_summary(const double *v, unsigned n, struct sim_summary *s);
/* A cell's name as the seed benchmark called the TCP rows. */
const char *bench_row_name(const char *backend, unsigned lanes, char *buf, size_t len);
/*
 * GB/s of the sweep column (@lanes, dirty @pct): of @backend's cell, or of the
 * memcpy of the same pages over every backend's cell when @backend is NULL
 * (0: did not run).
 */
double bench_sweep_gbps(const struct bench_opts *o, const char *backend, unsigned lanes,
			double pct);
/* GB/s of the scattered memcpy of a cell's pages (0 when not measured). */
double bench_memcpy_gbps(const struct cell_result *res);

/*
 * Write DIR/plots.gp (gnuplot commands with the data inline) and run gnuplot
 * on it in DIR: latency CDFs per workload, throughput against lanes and
 * against dirty fraction.  Returns 0, or -1 after a message.
 */
int bench_plots(const struct bench_opts *o);
/* Whether gnuplot can be run (searched in $PATH). */
bool bench_have_gnuplot(void);

/* bench_opts.c: parse rctctl bench's command line into @o.  Returns 0; 1 after
 * --help printed its text; else the exit status after a message. */
int bench_parse_args(int argc, char **argv, struct bench_opts *o);

#endif /* RCTCTL_BENCH_H */
