/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctctl bench --plots DIR: one gnuplot script with the data inline
 * (DIR/plots.gp, to re-run or edit: cd DIR && gnuplot plots.gp), run by
 * gnuplot in DIR.  Plots: the latency CDF of every backend for each workload
 * (memory transfer and whole pause), throughput against lanes and against
 * the dirty fraction, each against the memcpy of the same pages.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define PLOT_SCRIPT   "plots.gp"
#define PLOT_MAX_PNGS (2 * BENCH_MAX_WORKLOADS + 2)

struct plot_ctx {
	const struct bench_opts *o;
	FILE *f;
	char pngs[PLOT_MAX_PNGS][64];
	unsigned npngs;
};

bool bench_have_gnuplot(void)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *dir, file[4096];
	bool found = false;

	copy = strdup(path ? path : "/usr/bin:/bin");
	for (dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/gnuplot", *dir ? dir : ".");
		found = !access(file, X_OK);
	}
	free(copy);
	return found;
}

static int plot_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Datablock $NAME: the empirical CDF of @n samples (value, fraction <= value). */
static void plot_cdf_block(FILE *f, const char *name, const double *v, unsigned n)
{
	double *s = malloc(n * sizeof(*s));

	fprintf(f, "$%s << EOD\n", name);
	if (s) {
		memcpy(s, v, n * sizeof(*s));
		qsort(s, n, sizeof(*s), plot_cmp_double);
		for (unsigned i = 0; i < n; i++)
			fprintf(f, "%.6g %.6g\n", s[i], (double)(i + 1) / n);
		free(s);
	}
	fprintf(f, "EOD\n");
}

/* Start PNG @file: reset the settings, name the output, a grid. */
static void plot_begin(struct plot_ctx *p, const char *file, const char *title)
{
	if (p->npngs < PLOT_MAX_PNGS)
		snprintf(p->pngs[p->npngs++], sizeof(p->pngs[0]), "%s", file);
	fprintf(p->f, "\nreset\nset grid\nset output '%s'\nset title '%s'\n", file, title);
}

/* "plot" before the first series, ", \" before the others. */
static void plot_series(FILE *f, unsigned *k, const char *spec)
{
	fprintf(f, "%s%s", (*k)++ ? ", \\\n     " : "plot ", spec);
}

/* The CDFs of workload @w: one PNG for the transfer, one for the whole pause. */
static void plot_cdfs(struct plot_ctx *p, unsigned w)
{
	static const struct {
		const char *tag, *what;
		size_t offset;
	} metric[] = {
		{"transfer", "memory transfer", offsetof(struct cell_result, xfer_ms)},
		{"pause", "whole pause", offsetof(struct cell_result, pause_ms)},
	};
	const struct bench_opts *o = p->o;
	char file[64], title[256], name[32], spec[128], wl[64];

	snprintf(wl, sizeof(wl), "%s", o->cells[w * o->nbackends].label);
	for (char *c = wl; *c; c++)
		if (*c == ':')
			*c = '-';
	for (unsigned m = 0; m < 2; m++) {
		unsigned k = 0, have = 0;

		for (unsigned b = 0; b < o->nbackends; b++) {
			const struct bench_cell *c = &o->cells[w * o->nbackends + b];

			if (!c->res.done)
				continue;
			snprintf(name, sizeof(name), "%c_w%u_b%u", metric[m].tag[0], w, b);
			plot_cdf_block(p->f, name,
				       *(double *const *)((const char *)&c->res + metric[m].offset),
				       c->res.done);
			have++;
		}
		if (!have)
			continue;
		snprintf(file, sizeof(file), "cdf-%.8s-%.40s.png", metric[m].tag, wl);
		snprintf(title, sizeof(title),
			 "%s per checkpoint, workload %s (%.2f GiB guest, %u checkpoints per cell)",
			 metric[m].what, o->cells[w * o->nbackends].label,
			 (double)o->region_size / (1ull << 30), o->checkpoints);
		plot_begin(p, file, title);
		fprintf(p->f, "set xlabel 'ms (log scale)'\nset ylabel 'fraction of checkpoints'\n"
			      "set logscale x\nset yrange [0:1]\nset key bottom right\n");
		for (unsigned b = 0; b < o->nbackends; b++) {
			const struct bench_cell *c = &o->cells[w * o->nbackends + b];

			if (!c->res.done)
				continue;
			snprintf(spec, sizeof(spec),
				 "$%c_w%u_b%u using 1:2 with steps lw 2 title '%s'",
				 metric[m].tag[0], w, b,
				 bench_row_name(c->backend, c->lanes, name, sizeof(name)));
			plot_series(p->f, &k, spec);
		}
		fprintf(p->f, "\n");
	}
}

/*
 * One throughput sweep: x = lanes (@by_lanes) or dirty %, a line per backend
 * and the memcpy of the same pages.
 */
static void plot_sweep(struct plot_ctx *p, bool by_lanes)
{
	const struct bench_opts *o = p->o;
	unsigned nx = by_lanes ? BENCH_SWEEP_NLANES : BENCH_SWEEP_NPCT, k = 0, have = 0;
	char title[256], spec[160];
	const char *tag = by_lanes ? "lanes" : "dirty";

	for (unsigned b = 0; b <= o->nsweep_backends; b++) {
		const char *backend = b < o->nsweep_backends ? o->sweep_backends[b] : NULL;

		fprintf(p->f, "$%s_%u << EOD\n", tag, b);
		for (unsigned x = 0; x < nx; x++) {
			unsigned lanes = by_lanes ? bench_sweep_lanes[x] : BENCH_SWEEP_PCT_LANES;
			double pct = by_lanes ? BENCH_SWEEP_LANES_PCT : bench_sweep_pct[x];
			double gbps = bench_sweep_gbps(o, backend, lanes, pct);

			if (gbps > 0) {
				fprintf(p->f, "%.6g %.6g\n", by_lanes ? (double)lanes : pct, gbps);
				have++;
			}
		}
		fprintf(p->f, "EOD\n");
	}
	if (!have)
		return;
	if (by_lanes)
		snprintf(
			title, sizeof(title),
			"throughput against lanes (random:%g of %.2f GiB, %u checkpoints per cell)",
			BENCH_SWEEP_LANES_PCT, (double)o->region_size / (1ull << 30),
			o->sweep_checkpoints);
	else
		snprintf(title, sizeof(title),
			 "throughput against dirty fraction (%u lanes, %.2f GiB guest, %u "
			 "checkpoints per cell)",
			 BENCH_SWEEP_PCT_LANES, (double)o->region_size / (1ull << 30),
			 o->sweep_checkpoints);
	plot_begin(p, by_lanes ? "throughput-lanes.png" : "throughput-dirty.png", title);
	if (by_lanes)
		fprintf(p->f, "set xlabel 'lanes'\nset logscale x 2\nset xrange [0.8:10]\n"
			      "set xtics (1, 2, 4, 8)\n");
	else
		fprintf(p->f, "set xlabel 'dirty pages per checkpoint, %% of guest RAM (log "
			      "scale)'\nset logscale x\nset xrange [0.07:140]\n"
			      "set xtics ('0.1' 0.1, '1' 1, '10' 10, '100' 100)\n");
	fprintf(p->f, "set ylabel 'GB/s (bytes over summed transfer time)'\nset yrange [0:*]\n"
		      "set key outside right\n");
	for (unsigned b = 0; b < o->nsweep_backends; b++) {
		snprintf(spec, sizeof(spec),
			 "$%s_%u using 1:2 with linespoints lw 2 pt 7 title '%s'", tag, b,
			 o->sweep_backends[b]);
		plot_series(p->f, &k, spec);
	}
	snprintf(spec, sizeof(spec),
		 "$%s_%u using 1:2 with linespoints dt 2 lw 2 pt 6 lc rgb 'black' title 'memcpy, "
		 "1 thread'",
		 tag, o->nsweep_backends);
	plot_series(p->f, &k, spec);
	fprintf(p->f, "\n");
}

/* Run gnuplot on DIR/plots.gp in DIR.  Returns 0 or -1 after a message. */
static int plot_run(const char *dir)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		fprintf(stderr, "bench: cannot start gnuplot: %s\n", strerror(errno));
		return -1;
	}
	if (!pid) {
		if (chdir(dir)) {
			fprintf(stderr, "bench: cannot enter %s: %s\n", dir, strerror(errno));
			_exit(126);
		}
		execlp("gnuplot", "gnuplot", PLOT_SCRIPT, (char *)NULL);
		fprintf(stderr, "bench: cannot run gnuplot: %s\n", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "bench: waiting for gnuplot: %s\n", strerror(errno));
			return -1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench: gnuplot failed on %s/%s (%s %d)\n", dir, PLOT_SCRIPT,
			WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -1;
	}
	return 0;
}

int bench_plots(const struct bench_opts *o)
{
	struct plot_ctx p = {.o = o};
	char file[4096];
	struct stat st;

	snprintf(file, sizeof(file), "%s/%s", o->plots, PLOT_SCRIPT);
	p.f = fopen(file, "w");
	if (!p.f) {
		fprintf(stderr, "bench: cannot write %s: %s\n", file, strerror(errno));
		return -1;
	}
	fprintf(p.f,
		"# rctctl bench --plots: the data inline; cd here and run: gnuplot %s\n"
		"set terminal pngcairo size 1000,600 noenhanced font ',11'\n",
		PLOT_SCRIPT);
	for (unsigned w = 0; w < o->nwls; w++)
		plot_cdfs(&p, w);
	if (o->sweeps) {
		plot_sweep(&p, true);
		plot_sweep(&p, false);
	}
	if (ferror(p.f) | fclose(p.f)) {
		fprintf(stderr, "bench: writing %s: %s\n", file, strerror(errno));
		return -1;
	}
	if (!p.npngs) {
		fprintf(stderr, "bench: no cell finished a checkpoint: nothing to plot\n");
		return -1;
	}
	for (unsigned i = 0; i < p.npngs; i++) { /* no stale plot passes for a new one */
		snprintf(file, sizeof(file), "%s/%s", o->plots, p.pngs[i]);
		if (unlink(file) && errno != ENOENT) {
			fprintf(stderr, "bench: cannot replace %s: %s\n", file, strerror(errno));
			return -1;
		}
	}
	if (plot_run(o->plots))
		return -1;
	for (unsigned i = 0; i < p.npngs; i++) {
		snprintf(file, sizeof(file), "%s/%s", o->plots, p.pngs[i]);
		if (stat(file, &st) || !st.st_size) {
			fprintf(stderr, "bench: gnuplot did not write %s\n", file);
			return -1;
		}
	}
	fprintf(stderr, "bench: %u plots in %s/ (", p.npngs, o->plots);
	for (unsigned i = 0; i < p.npngs; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", p.pngs[i]);
	fprintf(stderr, ")\n");
	return 0;
}
