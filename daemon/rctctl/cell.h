/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One measured cell (a bench cell; not a page run, not a fault trial): a simulated guest on each side, each the client
 * of its own rctd (guest -> rctd primary <-> rctd secondary <- guest) on
 * 127.0.0.1 over one backend, a full sync and then K checkpoints, each
 * verified byte for byte.  rctctl demo runs one cell; rctctl bench runs
 * several in one process, on the same guests and the same two daemons.
 */
#ifndef RCTCTL_CELL_H
#define RCTCTL_CELL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rct/rct.h>

#include "../harness/harness.h"
#include "../sim/sim.h"

#define CELL_PAGE_SIZE 4096

struct cell_result;

struct cell_cfg {
	const char *backend;
	const char *addr; /* where the peers meet; NULL: 127.0.0.1, or an RDMA device's
			     IPv4 address for verbs */
	unsigned lanes;
	int threads; /* helper threads for the primary's data path; -1: one per core beyond
			the first, at most lanes - 1 */
	struct sim_workload wl;
	unsigned checkpoints;
	unsigned interval_ms;
	/* Streaming before the pause: 0 off (stop-and-copy); else BEGIN as soon as
	 * the last checkpoint is verified, and every stream_ms while the guest runs
	 * the pages it dirtied since go to rctd (CKPT_STREAM). */
	unsigned stream_ms;
	bool zero_pages; /* zero-page elision on every bitmap handed over (TAKE_ZERO_PAGES) */
	uint64_t seed;
	int timeout_ms;
	uint64_t corrupt_epoch; /* flip a byte after flushing this epoch (0: never) */
	FILE *lines;		/* one line per checkpoint, or NULL */
	/* The two daemons: started by cell_env_create() unless both sockets are given. */
	const char *rctd;    /* the rctd program (NULL: next to rctctl, else $PATH) */
	const char *psock;   /* the primary's rctd socket, or NULL */
	const char *ssock;   /* the secondary's rctd socket, or NULL */
	int metrics_port;    /* --metrics-port for the daemons started here (-1: none) */
	const char *vm_name; /* sessions are VM.primary and VM.secondary (NULL: demo-vm) */
	int heartbeat_ms;    /* --heartbeat-ms for the daemons started here (0: rctd's) */
	bool sparse;	     /* sparse guests (sim_guest_create_sparse()): a guest costs what
				is dirtied; the daemons started here may register 4x its size */
	/* Called after every verified checkpoint of a cell (bench's progress line). */
	void (*progress)(void *arg, const struct cell_result *res);
	void *progress_arg;
};

/* What the cells of one process share: the guests, the daemons, a memcpy target. */
struct cell_env {
	uint64_t size;
	struct harness_guests g; /* the primary's guest, the secondary's RAM, the bitmaps */
	void *scratch;		 /* target of the memcpy reference, or NULL */
	bool sparse;		 /* the guests are sparse (cell_cfg.sparse) */
	uint64_t *ref_pages;	 /* the memcpy reference's page list */
	uint64_t ref_cap;
	/* Daemons started here (pid 0: none), their sockets in dir. */
	pid_t ppid, spid;
	char dir[64];
	char psock[128], ssock[128];
	char psk[128]; /* the key file the two daemons share */
};

struct cell_result {
	unsigned done, verified;
	int exit;	/* 0, RCTCTL_EXIT_MISMATCH or RCTCTL_EXIT_TRANSPORT */
	char what[400]; /* why it stopped, when exit != 0 */
	double *xfer_ms, *commit_ms, *flush_ms, *sec_cpu_ms;
	double *hv_ms;	  /* the hypervisor's view: begin sent -> commit reply (socket included) */
	double *rctd_ms;  /* rctd's own begin -> commit (the library's total_ns) */
	double *pause_ms; /* the whole pause: hv_ms + the secondary's flush */
	double *pri_cpu_ms;		   /* CPU of the primary's rctd during the checkpoint */
	uint64_t *ckpt_bytes, *ckpt_pages; /* page + device-state bytes, pages */
	uint64_t bytes, pages;
	double total_xfer_ms;
	double memcpy_ms;     /* scattered-page memcpy of the same pages (with scratch) */
	double memcpy_hot_ms; /* the same copy again, right after: both sides touched */
	uint64_t memcpy_bytes;
	uint64_t stream_pages; /* pages streamed while the guest ran (repeats included) */
	unsigned streams;      /* CKPT_STREAM calls */
	struct rct_ckpt_stats sync;
};

/* The options demo and bench share (option characters s w k i S t T A R P Q M N H). */
/* clang-format off */
#define CELL_LONGOPTS \
	{"region-size", required_argument, NULL, 's'}, \
	{"workload", required_argument, NULL, 'w'}, \
	{"checkpoints", required_argument, NULL, 'k'}, \
	{"interval-ms", required_argument, NULL, 'i'}, \
	{"seed", required_argument, NULL, 'S'}, \
	{"timeout-ms", required_argument, NULL, 't'}, \
	{"threads", required_argument, NULL, 'T'}, \
	{"addr", required_argument, NULL, 'A'}, \
	{"rctd", required_argument, NULL, 'R'}, \
	{"primary-socket", required_argument, NULL, 'P'}, \
	{"secondary-socket", required_argument, NULL, 'Q'}, \
	{"metrics-port", required_argument, NULL, 'M'}, \
	{"vm-name", required_argument, NULL, 'N'}, \
	{"heartbeat-ms", required_argument, NULL, 'H'}
/* clang-format on */

/* Help text of the shared daemon options. */
#define CELL_DAEMON_HELP                                                                           \
	"  --rctd PATH           the rctd to start (default: beside rctctl, else $PATH)\n"         \
	"  --primary-socket P    use the running rctd at P for the primary side, and\n"            \
	"  --secondary-socket S  the one at S for the secondary (both, or neither:\n"              \
	"                        then two rctd are started for the run and stopped)\n"             \
	"  --metrics-port N      the started primary rctd serves metrics on\n"                     \
	"                        127.0.0.1:N (the secondary's on N+1)\n"                           \
	"  --vm-name NAME        the sessions' names: NAME.primary, NAME.secondary\n"              \
	"                        (default demo-vm; unique on each rctd)\n"                         \
	"  --heartbeat-ms N      keepalive interval of the daemons started here (rctd's\n"         \
	"                        default: 50 ms; slow emulated hosts need more)\n"

/*
 * Parse shared option @c with argument @arg into @cfg / @region_size.
 * Returns 0 when parsed, RCTCTL_EXIT_USAGE (after a message) on a bad value,
 * -1 when @c is not a shared option.
 */
int cell_parse_option(int c, const char *arg, struct cell_cfg *cfg, uint64_t *region_size);

/* Where the peers meet: --addr, else 127.0.0.1, else for verbs the IPv4 address of
 * the first RDMA device's interface (cell_env.c). */
const char *cell_addr(const struct cell_cfg *cfg, char *buf, size_t len);

/*
 * Guests of @size bytes (workload and seed of @cfg); @scratch also maps a
 * memcpy target.  Starts the two rctd unless @cfg names their sockets.
 * Returns 0, or -errno after a message on stderr.
 */
int cell_env_create(struct cell_env *env, const struct cell_cfg *cfg, uint64_t size, bool scratch);
void cell_env_destroy(struct cell_env *env);

/* Run one cell.  Returns res->exit; res must be freed with cell_result_free(). */
int cell_run(const struct cell_cfg *cfg, struct cell_env *env, struct cell_result *res);
void cell_result_free(struct cell_result *res);

/* {"mean","p50","p99","max"} of @n samples (sorted in place). */
json_t *cell_json_summary(double *v, size_t n);
/* GB/s of a result (bytes over summed transfer time). */
double cell_gbps(const struct cell_result *res);

#endif
