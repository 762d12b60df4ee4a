/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctctl bench: the same workload on several backend:lanes cells in one
 * process lifetime (same guests, same machine state), each verified byte for
 * byte, with a scattered-page memcpy of the same pages measured in the same
 * run as the physical limit, and ratios against it and against the TCP
 * baseline (options: bench_opts.c).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rct/rct.h>

#include "../sim/sim.h"
#include "rctctl.h"
#include "bench.h"
#include "cell.h"

const unsigned bench_sweep_lanes[BENCH_SWEEP_NLANES] = {1, 2, 4, 8};
const double bench_sweep_pct[BENCH_SWEEP_NPCT] = {0.1, 1, 10, 100};

/* The baseline of @wl the design compares against: tcp with 4 lanes ('multifd-4'). */
static const struct bench_cell *bench_baseline(const struct bench_opts *o,
					       const struct bench_cell *of)
{
	for (unsigned i = 0; i < o->ncells; i++) {
		const struct bench_cell *c = &o->cells[i];

		if (!strcmp(c->backend, "tcp") && c->lanes == 4 && c->res.done &&
		    !strcmp(c->wl_name, of->wl_name) && c->region_size == of->region_size &&
		    c->stream_ms == of->stream_ms && c->zero_pages == of->zero_pages)
			return c;
	}
	return NULL;
}

void bench_summary(const double *v, unsigned n, struct sim_summary *s)
{
	double *copy = n ? malloc(n * sizeof(*v)) : NULL;

	memset(s, 0, sizeof(*s));
	if (!copy)
		return;
	memcpy(copy, v, n * sizeof(*v));
	sim_summarize(copy, n, s);
	free(copy);
}

static json_t *bench_summary_json(const double *v, unsigned n)
{
	struct sim_summary s;

	bench_summary(v, n, &s);
	return json_pack("{s:f, s:f, s:f, s:f}", "mean", s.mean, "p50", s.p50, "p99", s.p99, "max",
			 s.max);
}

/* CPU seconds of @ms (per checkpoint) per GB moved by @res. */
static double bench_cpu_s_per_gb(const double *ms, const struct cell_result *res)
{
	double cpu = 0, bytes = 0;

	for (unsigned i = 0; i < res->done; i++) {
		cpu += ms[i] / 1e3;
		bytes += (double)res->ckpt_bytes[i];
	}
	/* Streaming: the CPU covers the streamed pages too. */
	bytes += (double)res->stream_pages * CELL_PAGE_SIZE;
	return bytes > 0 ? cpu / (bytes / 1e9) : 0;
}

static double bench_memcpy_ms_mean(const struct cell_result *res)
{
	return res->done ? res->memcpy_ms / res->done : 0;
}

double bench_memcpy_gbps(const struct cell_result *res)
{
	return res->memcpy_ms > 0 ? (double)res->memcpy_bytes / (res->memcpy_ms * 1e6) : 0;
}

/* GB/s of the same copy done again right after (source and target touched). */
static double bench_memcpy_hot_gbps(const struct cell_result *res)
{
	return res->memcpy_hot_ms > 0 ? (double)res->memcpy_bytes / (res->memcpy_hot_ms * 1e6) : 0;
}

/* The sweep cell of @backend with @lanes at dirty @pct, or NULL. */
static const struct bench_cell *bench_sweep_cell(const struct bench_opts *o, const char *backend,
						 unsigned lanes, double pct)
{
	for (unsigned i = 0; i < o->nsweep; i++) {
		const struct bench_cell *c = &o->sweep[i];

		if (!strcmp(c->backend, backend) && c->lanes == lanes && c->wl.pct == pct)
			return c;
	}
	return NULL;
}

static void bench_label(struct bench_cell *c)
{
	char wl[sizeof(c->wl_name)];

	memcpy(wl, c->wl_name, sizeof(wl)); /* (gcc cannot tell the two fields apart) */
	if (c->stream_ms)
		snprintf(c->label, sizeof(c->label), "%s stream:%u", wl, c->stream_ms);
	else if (c->zero_pages)
		snprintf(c->label, sizeof(c->label), "%s zero-pages", wl);
	else
		snprintf(c->label, sizeof(c->label), "%s", wl);
}

/* A streaming (or zero-page eliding) cell's plain twin of the same run, or NULL. */
static const struct bench_cell *bench_twin(const struct bench_opts *o, const struct bench_cell *of)
{
	for (unsigned i = 0; (of->stream_ms || of->zero_pages) && i < o->ncells; i++) {
		const struct bench_cell *c = &o->cells[i];

		if (!c->stream_ms && !c->zero_pages && c->res.done &&
		    !strcmp(c->backend, of->backend) && c->lanes == of->lanes &&
		    !strcmp(c->wl_name, of->wl_name) && c->region_size == of->region_size)
			return c;
	}
	return NULL;
}

/* The interval of the time-driven workloads (the cells change cfg.interval_ms). */
static unsigned bench_interval_ms(const struct bench_opts *o)
{
	return o->interval_given ? o->cfg.interval_ms : 600;
}

/* @key: {mean, p99} of series @b over series @a (same run), when @a has any. */
static void bench_vs_json(json_t *cell, const char *key, const double *a, unsigned na,
			  const double *b, unsigned nb)
{
	struct sim_summary sa, sb;

	bench_summary(a, na, &sa);
	bench_summary(b, nb, &sb);
	if (sa.mean > 0 && sa.p99 > 0)
		json_object_set_new(
			cell, key,
			json_pack("{s:f, s:f}", "mean", sb.mean / sa.mean, "p99", sb.p99 / sa.p99));
}

static json_t *bench_cell_json(const struct bench_opts *o, const struct bench_cell *c)
{
	const struct bench_cell *twin = bench_twin(o, c);
	const struct cell_result *r = &c->res;
	json_t *cell = json_pack("{s:s, s:i, s:s, s:i, s:i, s:o, s:o, s:f}", "backend", c->backend,
				 "lanes", (int)c->lanes, "workload", c->wl_name, "verified",
				 (int)r->verified, "checkpoints", (int)c->checkpoints,
				 "transfer_ms", bench_summary_json(r->xfer_ms, r->done), "pause_ms",
				 bench_summary_json(r->pause_ms, r->done), "gbps", cell_gbps(r));

	if (!cell)
		return NULL;
	json_object_set_new(cell, "commit_ms", bench_summary_json(r->commit_ms, r->done));
	json_object_set_new(cell, "flush_ms", bench_summary_json(r->flush_ms, r->done));
	json_object_set_new(cell, "memcpy_ms_mean", json_real(bench_memcpy_ms_mean(r)));
	json_object_set_new(cell, "memcpy_gbps", json_real(bench_memcpy_gbps(r)));
	json_object_set_new(cell, "memcpy_hot_gbps", json_real(bench_memcpy_hot_gbps(r)));
	json_object_set_new(cell, "primary_cpu_s_per_gb",
			    json_real(bench_cpu_s_per_gb(r->pri_cpu_ms, r)));
	json_object_set_new(cell, "secondary_cpu_s_per_gb",
			    json_real(bench_cpu_s_per_gb(r->sec_cpu_ms, r)));
	json_object_set_new(cell, "mb_per_checkpoint",
			    json_real(r->done ? (double)r->bytes / r->done / 1e6 : 0));
	if (c->wl.kind == SIM_WORKLOAD_RANDOM)
		json_object_set_new(cell, "dirty_pct", json_real(c->wl.pct));
	json_object_set_new(cell, "region_size", json_integer((json_int_t)c->region_size));
	json_object_set_new(cell, "stream_ms", json_integer((json_int_t)c->stream_ms));
	if (c->stream_ms) {
		json_object_set_new(cell, "streams", json_integer((json_int_t)r->streams));
		json_object_set_new(cell, "stream_pages",
				    json_integer((json_int_t)r->stream_pages));
	}
	/* The primary's own pause: begin (or, streaming, the pause's first call)
	 * -> commit reply, without the secondary's flush. */
	json_object_set_new(cell, "primary_pause_ms", bench_summary_json(r->hv_ms, r->done));
	json_object_set_new(cell, "zero_pages", json_boolean(c->zero_pages));
	if (twin && r->done) {
		bool z = c->zero_pages;

		bench_vs_json(cell, z ? "pause_vs_without_zero_pages" : "pause_vs_stop_and_copy",
			      twin->res.pause_ms, twin->res.done, r->pause_ms, r->done);
		bench_vs_json(cell,
			      z ? "primary_pause_vs_without_zero_pages"
				: "primary_pause_vs_stop_and_copy",
			      twin->res.hv_ms, twin->res.done, r->hv_ms, r->done);
		if (z)
			bench_vs_json(cell, "transfer_vs_without_zero_pages", twin->res.xfer_ms,
				      twin->res.done, r->xfer_ms, r->done);
	}
	json_object_set_new(cell, "primary_cpu_ms", bench_summary_json(r->pri_cpu_ms, r->done));
	json_object_set_new(cell, "secondary_cpu_ms", bench_summary_json(r->sec_cpu_ms, r->done));
	if (c->skipped[0])
		json_object_set_new(cell, "skipped", json_string(c->skipped));
	return cell;
}

static void bench_json(const struct bench_opts *o)
{
	json_t *cells = json_array(), *sweeps = json_array(), *j;

	for (unsigned i = 0; i < o->ncells; i++)
		json_array_append_new(cells, bench_cell_json(o, &o->cells[i]));
	for (unsigned i = 0; i < o->nsweep; i++)
		json_array_append_new(sweeps, bench_cell_json(o, &o->sweep[i]));
	j = json_pack("{s:f, s:f, s:I, s:i, s:i, s:o}", "memcpy_gbps", o->memcpy_gbps,
		      "memcpy_hot_gbps", o->memcpy_hot_gbps, "region_size",
		      (json_int_t)o->region_size, "interval_ms", (int)bench_interval_ms(o),
		      "checkpoints", (int)o->checkpoints, "cells", cells);
	if (j && o->sweeps)
		json_object_set(j, "sweeps", sweeps);
	json_decref(sweeps);
	if (j) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
	}
}

const char *bench_row_name(const char *backend, unsigned lanes, char *buf, size_t len)
{
	if (!strcmp(backend, "tcp") && lanes == 1)
		snprintf(buf, len, "tcp:1 (plain)");
	else if (!strcmp(backend, "tcp") && lanes == 4)
		snprintf(buf, len, "tcp:4 (multifd-4)");
	else
		snprintf(buf, len, "%s:%u", backend, lanes);
	return buf;
}

static void bench_table_size(const struct bench_opts *o, const char *title, size_t offset,
			     unsigned z)
{
	const struct bench_cell *cells = &o->cells[z * o->nwls * o->nbackends];
	char name[32];

	printf("\n%s, ms: mean / p99", title);
	if (o->scale)
		printf(" (%g GiB sparse guest)", (double)o->sizes[z] / (1ull << 30));
	printf("\n%-20s", "backend");
	for (unsigned w = 0; w < o->nwls; w++)
		printf(" %21s", cells[w * o->nbackends].label);
	printf("\n");
	for (unsigned b = 0; b < o->nbackends; b++) {
		printf("%-20s", bench_row_name(o->backends[b].name, o->backends[b].lanes, name,
					       sizeof(name)));
		for (unsigned w = 0; w < o->nwls; w++) {
			const struct bench_cell *c = &cells[w * o->nbackends + b];
			double *v = *(double *const *)((const char *)&c->res + offset);
			struct sim_summary s;

			if (!c->res.done) {
				printf(" %21s", "-");
				continue;
			}
			bench_summary(v, c->res.done, &s);
			printf(" %10.2f / %8.2f", s.mean, s.p99);
		}
		printf("\n");
	}
}

/* One table, backends down and workloads across, of @what (mean / p99), per size. */
static void bench_table(const struct bench_opts *o, const char *title, size_t offset)
{
	for (unsigned z = 0; z < o->nsizes; z++)
		bench_table_size(o, title, offset, z);
}

double bench_sweep_gbps(const struct bench_opts *o, const char *backend, unsigned lanes, double pct)
{
	double ms = 0, bytes = 0;

	if (backend) {
		const struct bench_cell *c = bench_sweep_cell(o, backend, lanes, pct);

		return c ? cell_gbps(&c->res) : 0;
	}
	for (unsigned i = 0; i < o->nsweep; i++) {
		const struct bench_cell *c = &o->sweep[i];

		if (c->lanes == lanes && c->wl.pct == pct) {
			ms += c->res.memcpy_ms;
			bytes += (double)c->res.memcpy_bytes;
		}
	}
	return ms > 0 ? bytes / (ms * 1e6) : 0;
}

static void bench_print_sweep_row(const struct bench_opts *o, const char *name, const char *backend)
{
	printf("%-12s", name);
	for (unsigned l = 0; l < BENCH_SWEEP_NLANES; l++)
		printf(" %7.2f",
		       bench_sweep_gbps(o, backend, bench_sweep_lanes[l], BENCH_SWEEP_LANES_PCT));
	printf("   ");
	for (unsigned p = 0; p < BENCH_SWEEP_NPCT; p++)
		printf(" %7.2f",
		       bench_sweep_gbps(o, backend, BENCH_SWEEP_PCT_LANES, bench_sweep_pct[p]));
	printf("\n");
}

static void bench_print_sweeps(const struct bench_opts *o)
{
	printf("\nthroughput, GB/s (%u checkpoints per cell; 0.00: did not run)\n",
	       o->sweep_checkpoints);
	printf("%-12s %-31s    %s\n", "", "lanes, at random:10", "dirty %, at 4 lanes");
	printf("%-12s", "backend");
	for (unsigned l = 0; l < BENCH_SWEEP_NLANES; l++)
		printf(" %7u", bench_sweep_lanes[l]);
	printf("   ");
	for (unsigned p = 0; p < BENCH_SWEEP_NPCT; p++)
		printf(" %6g%%", bench_sweep_pct[p]);
	printf("\n");
	for (unsigned b = 0; b < o->nsweep_backends; b++)
		bench_print_sweep_row(o, o->sweep_backends[b], o->sweep_backends[b]);
	bench_print_sweep_row(o, "memcpy", NULL);
	printf("(memcpy: the same pages, scattered, one thread, measured in the same cells)\n");
}

static void bench_vs_line(const char *what, const double *a, unsigned na, const double *b,
			  unsigned nb)
{
	struct sim_summary sa, sb;

	bench_summary(a, na, &sa);
	bench_summary(b, nb, &sb);
	printf("    %-8s mean %7.2f -> %7.2f (%5.2fx)  p99 %7.2f -> %7.2f (%5.2fx)\n", what,
	       sa.mean, sb.mean, sa.mean > 0 ? sb.mean / sa.mean : 0.0, sa.p99, sb.p99,
	       sa.p99 > 0 ? sb.p99 / sa.p99 : 0.0);
}

static void bench_print(const struct bench_opts *o)
{
	char name[32], vs[16], ver[24];

	if (o->scale) {
		printf("\nbench: sparse guests of");
		for (unsigned z = 0; z < o->nsizes; z++)
			printf("%s %g GiB", z ? "," : "", (double)o->sizes[z] / (1ull << 30));
	} else {
		printf("\nbench: %.2f GiB guest", (double)o->region_size / (1ull << 30));
	}
	printf(", %u checkpoints per cell, interval %u ms%s\n", o->checkpoints,
	       bench_interval_ms(o), o->interval_given ? "" : " (0 for random:PCT)");
	bench_table(o, "memory transfer (first put -> the secondary's ACK of COMMIT)",
		    offsetof(struct cell_result, xfer_ms));
	bench_table(o,
		    "whole pause (begin -> commit reply as the hypervisor sees it, plus the "
		    "secondary's flush)",
		    offsetof(struct cell_result, pause_ms));
	for (unsigned i = 0; o->stream_ms && i < o->ncells; i++) {
		const struct bench_cell *c = &o->cells[i], *t = bench_twin(o, c);

		if (!t || !c->res.done)
			continue;
		if (i == 0 || !bench_twin(o, &o->cells[i - 1]))
			printf("\nstreaming against stop-and-copy (same run), ms: the whole pause "
			       "(with the\nsecondary's flush) and the primary's own (begin or the "
			       "pause's first call -> commit reply)\n");
		printf("%-20s %-16s %.1f MB streamed per checkpoint\n",
		       bench_row_name(c->backend, c->lanes, name, sizeof(name)), c->label,
		       (double)c->res.stream_pages * CELL_PAGE_SIZE / c->res.done / 1e6);
		bench_vs_line("whole", t->res.pause_ms, t->res.done, c->res.pause_ms, c->res.done);
		bench_vs_line("primary", t->res.hv_ms, t->res.done, c->res.hv_ms, c->res.done);
	}
	for (unsigned i = 0; o->zero_pages && i < o->ncells; i++) {
		const struct bench_cell *c = &o->cells[i], *t = bench_twin(o, c);

		if (!t || !c->res.done || !t->res.done)
			continue;
		if (i == 0 || !bench_twin(o, &o->cells[i - 1]))
			printf("\nzero-page elision against without it (same run), ms\n");
		printf("%-20s %-16s %.1f -> %.1f MB of page data per checkpoint\n",
		       bench_row_name(c->backend, c->lanes, name, sizeof(name)), c->label,
		       (double)t->res.bytes / t->res.done / 1e6,
		       (double)c->res.bytes / c->res.done / 1e6);
		bench_vs_line("transfer", t->res.xfer_ms, t->res.done, c->res.xfer_ms, c->res.done);
		bench_vs_line("whole", t->res.pause_ms, t->res.done, c->res.pause_ms, c->res.done);
	}
	printf("\nmemcpy of the same pages (scattered 4 KiB, address order, 1 thread): %.2f "
	       "GB/s as the transport finds memory, %.2f GB/s right after (hot)\n\n",
	       o->memcpy_gbps, o->memcpy_hot_gbps);
	printf("%-20s %-16s %6s %9s %7s %9s %9s %10s %10s\n", "cell", "workload", "guest",
	       "verified", "GB/s", "/memcpy", "/tcp:4", "pri CPU", "sec CPU");
	printf("%-20s %-16s %6s %9s %7s %9s %9s %10s %10s\n", "", "", "GiB", "", "", "(hot)",
	       "(p99)", "s/GB", "s/GB");
	for (unsigned i = 0; i < o->ncells; i++) {
		const struct bench_cell *c = &o->cells[i];
		const struct bench_cell *base = bench_baseline(o, c);
		struct sim_summary s, bs;
		double mc = c->res.done ? c->res.memcpy_hot_ms / c->res.done : 0;

		bench_summary(c->res.xfer_ms, c->res.done, &s);
		snprintf(ver, sizeof(ver), "%u/%u", c->res.verified, c->checkpoints);
		snprintf(vs, sizeof(vs), "-");
		if (base) {
			bench_summary(base->res.xfer_ms, base->res.done, &bs);
			if (bs.p99 > 0)
				snprintf(vs, sizeof(vs), "%.2fx", s.p99 / bs.p99);
		}
		if (c->skipped[0])
			snprintf(ver, sizeof(ver), "skipped");
		printf("%-20s %-16s %6g %9s %7.2f %8.2fx %9s %10.3f %10.3f\n",
		       bench_row_name(c->backend, c->lanes, name, sizeof(name)), c->label,
		       (double)c->region_size / (1ull << 30), ver, cell_gbps(&c->res),
		       mc > 0 ? s.mean / mc : 0.0, vs,
		       bench_cpu_s_per_gb(c->res.pri_cpu_ms, &c->res),
		       bench_cpu_s_per_gb(c->res.sec_cpu_ms, &c->res));
	}
	printf("\n(/memcpy: mean transfer time over the mean hot memcpy time of the same pages;\n"
	       " /tcp:4: p99 transfer time over tcp:4's for the same workload; CPU: each rctd's\n"
	       " CPU time per GB of pages and device state moved, secondary excluding its "
	       "flush)\n");
	if (o->sweeps)
		bench_print_sweeps(o);
}

static void bench_csv_cells(FILE *f, const struct bench_cell *cells, unsigned n, const char *part)
{
	for (unsigned i = 0; i < n; i++) {
		const struct bench_cell *c = &cells[i];
		const struct cell_result *r = &c->res;

		for (unsigned k = 0; k < r->done; k++)
			fprintf(f,
				"%s,%u,%s,%u,%" PRIu64 ",%" PRIu64
				",%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.3f,%.3f,%s,%" PRIu64 ",%u,%d\n",
				c->backend, c->lanes, c->wl_name, k + 1, r->ckpt_pages[k],
				r->ckpt_bytes[k], r->xfer_ms[k], r->pause_ms[k], r->commit_ms[k],
				r->flush_ms[k], r->hv_ms[k], bench_memcpy_ms_mean(r),
				r->pri_cpu_ms[k], r->sec_cpu_ms[k], part, c->region_size,
				c->stream_ms, c->zero_pages);
	}
}

/* Every checkpoint of every cell, in order, into the file opened at start. */
static int bench_csv(struct bench_opts *o)
{
	FILE *f = o->csv_file;

	o->csv_file = NULL;
	fprintf(f,
		"backend,lanes,workload,checkpoint,pages,bytes,transfer_ms,pause_ms,commit_ms,"
		"flush_ms,hypervisor_ms,memcpy_ms,primary_cpu_ms,secondary_cpu_ms,part,region_size,"
		"stream_ms,zero_pages\n");
	bench_csv_cells(f, o->cells, o->ncells, "experiment");
	bench_csv_cells(f, o->sweep, o->nsweep, "sweep");
	if (ferror(f) | fclose(f)) {
		fprintf(stderr, "bench: writing %s: %s\n", o->csv, strerror(errno));
		return -1;
	}
	fprintf(stderr, "bench: %s written\n", o->csv);
	return 0;
}

/* The progress line: on a terminal rewritten in place, else a line per quarter cell. */
static void bench_progress(void *arg, const struct cell_result *res)
{
	struct bench_opts *o = arg;
	const struct bench_cell *c = o->cur;
	unsigned step = c->checkpoints >= 4 ? c->checkpoints / 4 : 1;

	if (!o->tty && res->done % step && res->done != c->checkpoints)
		return;
	fprintf(stderr, "%sbench: cell %u/%u %s:%u %s: checkpoint %u/%u, last %.2f ms%s",
		o->tty ? "\r" : "", o->cell_no, o->cell_total, c->backend, c->lanes, c->label,
		res->done, c->checkpoints, res->xfer_ms[res->done - 1], o->tty ? "   " : "\n");
	fflush(stderr);
}

/* The sweep cells: workload-major, so that the guest switches workload rarely. */
static void bench_sweep_setup(struct bench_opts *o)
{
	o->nsweep_backends = 0;
	for (unsigned b = 0; b < o->nbackends; b++) {
		bool seen = false;

		for (unsigned k = 0; k < o->nsweep_backends; k++)
			seen |= !strcmp(o->sweep_backends[k], o->backends[b].name);
		/* same size, both NUL-terminated by bench_parse_backends() */
		if (!seen)
			memcpy(o->sweep_backends[o->nsweep_backends++], o->backends[b].name,
			       sizeof(o->sweep_backends[0]));
	}
	for (unsigned p = 0; p < BENCH_SWEEP_NPCT; p++) {
		bool lanes_sweep = bench_sweep_pct[p] == BENCH_SWEEP_LANES_PCT;

		for (unsigned b = 0; b < o->nsweep_backends; b++) {
			for (unsigned l = 0; l < BENCH_SWEEP_NLANES; l++) {
				unsigned lanes = bench_sweep_lanes[l];
				struct bench_cell *c = &o->sweep[o->nsweep];

				if (!lanes_sweep && lanes != BENCH_SWEEP_PCT_LANES)
					continue;
				memcpy(c->backend, o->sweep_backends[b], sizeof(c->backend));
				c->lanes = lanes;
				c->wl.kind = SIM_WORKLOAD_RANDOM;
				c->wl.pct = bench_sweep_pct[p];
				sim_workload_format(&c->wl, c->wl_name, sizeof(c->wl_name));
				bench_label(c);
				c->checkpoints = o->sweep_checkpoints;
				o->nsweep++;
			}
		}
	}
}

/*
 * Whether this host can hold @c's region: verbs registers (pins) the primary's
 * guest RAM and the secondary's colo cache, all of it, sparse or not.  Marks
 * the cell skipped, with why, when it cannot.
 */
static void bench_check_holdable(const struct bench_opts *o, struct bench_cell *c)
{
	uint64_t host = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);

	if (o->scale && !strcmp(c->backend, "verbs") && 2 * c->region_size > host / 4 * 3)
		snprintf(c->skipped, sizeof(c->skipped),
			 "verbs pins the guest's RAM and the colo cache (2 x %.0f GiB) and "
			 "this host has %.0f GiB",
			 (double)c->region_size / (1ull << 30), (double)host / (1ull << 30));
	/* A cache UCX cannot share is reached only by RDMA; without it rct
	 * refuses the session (emulated puts: docs/reliability.md). */
	if (o->scale && !strcmp(c->backend, "ucx") && c->region_size >= host &&
	    !rctctl_rdma_device())
		snprintf(c->skipped, sizeof(c->skipped),
			 "UCX cannot share a colo cache of %.0f GiB on a host of %.0f GiB, and "
			 "without RDMA its puts would be emulated, which rct refuses",
			 (double)c->region_size / (1ull << 30), (double)host / (1ull << 30));
}

/* Run @c on @env (its guest switched to the cell's workload when it differs). */
static int bench_run_cell(struct bench_opts *o, struct cell_env *env, struct bench_cell *c)
{
	int rc;

	if (o->cfg.wl.kind != c->wl.kind || o->cfg.wl.pct != c->wl.pct ||
	    o->cfg.wl.bytes != c->wl.bytes) {
		fprintf(stderr, "bench: workload %s\n", c->wl_name);
		rc = sim_guest_set_workload(env->g.pguest, &c->wl);
		if (rc) {
			snprintf(c->res.what, sizeof(c->res.what), "cannot switch the workload: %s",
				 strerror(-rc));
			c->res.exit = RCTCTL_EXIT_TRANSPORT;
			fprintf(stderr, "bench: %s\n", c->res.what);
			return c->res.exit;
		}
		o->cfg.wl = c->wl;
	}
	if (!o->interval_given)
		o->cfg.interval_ms = sim_workload_at_once(&c->wl) ? 0 : 600;
	o->cfg.backend = c->backend;
	o->cfg.lanes = c->lanes;
	o->cfg.stream_ms = c->stream_ms;
	o->cfg.zero_pages = c->zero_pages;
	o->cfg.checkpoints = c->checkpoints;
	o->cur = c;
	o->cell_no++;
	rc = cell_run(&o->cfg, env, &c->res);
	c->ran = true;
	if (o->tty)
		fputc('\n', stderr);
	if (rc)
		fprintf(stderr, "bench: cell %s:%u %s: %s\n", c->backend, c->lanes, c->label,
			c->res.what);
	return rc;
}

int rctctl_bench(int argc, char **argv)
{
	struct bench_opts *o = calloc(1, sizeof(*o));
	struct cell_env env;
	double memcpy_ms = 0, memcpy_bytes = 0, memcpy_hot_ms = 0;
	int rc, ret = 0;

	if (!o)
		return RCTCTL_EXIT_TRANSPORT;
	rc = bench_parse_args(argc, argv, o);
	if (rc) {
		if (o->csv_file)
			fclose(o->csv_file);
		free(o);
		return rc == 1 ? 0 : rc;
	}
	if (!getenv("UCX_NET_DEVICES"))
		setenv("UCX_NET_DEVICES", "lo", 0); /* peers on loopback */
	o->cfg.lines = o->verbose ? stderr : NULL;
	o->tty = !o->verbose && isatty(STDERR_FILENO);
	o->cfg.progress = bench_progress;
	o->cfg.progress_arg = o;

	for (unsigned z = 0; z < o->nsizes; z++) {
		for (unsigned w = 0; w < o->nwls; w++) {
			for (unsigned b = 0; b < o->nbackends; b++) {
				struct bench_cell *c = &o->cells[o->ncells++];

				snprintf(c->backend, sizeof(c->backend), "%s", o->backends[b].name);
				c->lanes = o->backends[b].lanes;
				c->wl = o->wls[w];
				sim_workload_format(&o->wls[w], c->wl_name, sizeof(c->wl_name));
				c->stream_ms = o->wl_stream[w];
				c->zero_pages = o->wl_zero[w];
				bench_label(c);
				c->checkpoints = o->checkpoints;
				c->region_size = o->sizes[z];
				bench_check_holdable(o, c);
			}
		}
	}
	if (o->sweeps)
		bench_sweep_setup(o);
	o->cell_total = o->ncells + o->nsweep;

	/* One pair of guests and daemons per size; the guest switches workload. */
	for (unsigned z = 0; z < o->nsizes; z++) {
		unsigned first = z * o->nwls * o->nbackends, last = first + o->nwls * o->nbackends;

		o->cfg.wl = o->cells[first].wl;
		fprintf(stderr,
			"bench: %u cells; preparing %.2f GiB %sguests and a memcpy target...\n",
			o->scale ? last - first : o->cell_total, (double)o->sizes[z] / (1ull << 30),
			o->scale ? "sparse " : "");
		rc = cell_env_create(&env, &o->cfg, o->sizes[z], true);
		if (rc) {
			fprintf(stderr, "bench: cannot create the guests: %s\n", strerror(-rc));
			ret = RCTCTL_EXIT_TRANSPORT;
			break;
		}
		fprintf(stderr, "bench: workload %s\n", o->cells[first].wl_name);
		for (unsigned i = first; i < (z + 1 == o->nsizes ? last + o->nsweep : last); i++) {
			struct bench_cell *c = i < o->ncells ? &o->cells[i]
							     : &o->sweep[i - o->ncells];

			c->region_size = o->sizes[z];
			if (c->skipped[0]) {
				fprintf(stderr, "bench: cell %s:%u at %g GiB skipped: %s\n",
					c->backend, c->lanes, (double)c->region_size / (1ull << 30),
					c->skipped);
				continue;
			}
			rc = bench_run_cell(o, &env, c);
			if (rc && (!ret || rc == RCTCTL_EXIT_MISMATCH))
				ret = rc;
			if (i < o->ncells) {
				memcpy_ms += c->res.memcpy_ms;
				memcpy_bytes += (double)c->res.memcpy_bytes;
				memcpy_hot_ms += c->res.memcpy_hot_ms;
			}
		}
		cell_env_destroy(&env);
	}
	o->memcpy_gbps = memcpy_ms > 0 ? memcpy_bytes / (memcpy_ms * 1e6) : 0;
	o->memcpy_hot_gbps = memcpy_hot_ms > 0 ? memcpy_bytes / (memcpy_hot_ms * 1e6) : 0;
	if (o->csv_file && bench_csv(o) && !ret)
		ret = RCTCTL_EXIT_TRANSPORT;
	if (o->json)
		bench_json(o);
	else
		bench_print(o);
	if (o->plots && bench_plots(o) && !ret)
		ret = RCTCTL_EXIT_TRANSPORT;
	for (unsigned i = 0; i < o->ncells; i++)
		cell_result_free(&o->cells[i].res);
	for (unsigned i = 0; i < o->nsweep; i++)
		cell_result_free(&o->sweep[i].res);
	free(o);
	return ret;
}
