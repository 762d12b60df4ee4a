/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The simulated guest: it stands in for a hypervisor in the demo, the
 * benchmark and the end-to-end tests.  Guest RAM lives in a sealed memfd; a
 * workload thread dirties pages and records them in a dirty bitmap, as KVM's
 * dirty log would.  At a checkpoint the guest is paused (as vCPUs are
 * stopped), the bitmap is taken and the dirty pages are copied into a
 * snapshot: the byte-exact reference the secondary is compared against.
 *
 * Workloads (calibrated to the seed benchmark, see docs/design.md):
 *   idle        ~2500 small writes/s, half into a hot set: ~5 MB per 600 ms
 *   load        idle plus a streaming upload into a page-cache-like area:
 *               ~28 MiB/s with bursts of ~120 MiB/s (one phase in eight)
 *   random:PCT  PCT % of all pages, uniformly at random, every interval
 *   pages:SIZE  SIZE bytes of pages (K/M/G suffixes), uniformly at random, every
 *               interval: the same dirty set whatever the guest's size
 *   free:SIZE   the same, every other page freed instead of written: zeroed
 *               whole, as a guest kernel's init_on_free or a balloon leaves it
 *
 * A sparse guest (sim_guest_create_sparse()) starts zero and unpopulated, and
 * costs what its workload touches: a guest of a TiB on a host of 24 GiB.
 */
#ifndef RCT_SIM_H
#define RCT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sim_workload_kind {
	SIM_WORKLOAD_IDLE,
	SIM_WORKLOAD_LOAD,
	SIM_WORKLOAD_RANDOM,
	SIM_WORKLOAD_PAGES,
	SIM_WORKLOAD_FREE,
};

struct sim_workload {
	enum sim_workload_kind kind;
	double pct;	/* SIM_WORKLOAD_RANDOM: percent of pages per interval */
	uint64_t bytes; /* SIM_WORKLOAD_PAGES, _FREE: bytes of pages per interval */
};

/* Whether @wl dirties its pages at once at the start of an interval (then
 * the interval may be 0): random:PCT, pages:SIZE and free:SIZE. */
static inline bool sim_workload_at_once(const struct sim_workload *wl)
{
	return wl->kind == SIM_WORKLOAD_RANDOM || wl->kind == SIM_WORKLOAD_PAGES ||
	       wl->kind == SIM_WORKLOAD_FREE;
}

/* Parse "idle", "load", "random:PCT" (0 < PCT <= 100), "free:SIZE" or "pages:SIZE" (SIZE
 * > 0, K/M/G suffixes).  Returns 0 or -1. */
int sim_workload_parse(const char *text, struct sim_workload *wl_p);
/* Canonical text of @wl into @buf. */
void sim_workload_format(const struct sim_workload *wl, char *buf, size_t len);

/* Parse a size with an optional K/M/G/T suffix (binary).  Returns 0 or -1. */
int sim_parse_size(const char *text, uint64_t *size_p);

struct sim_guest;

/*
 * Create a guest of @size bytes (a multiple of @page_size) in a memfd, filled
 * with a seeded pattern, its snapshot equal to it.  The workload is stopped
 * until sim_guest_resume().  Returns 0 or -errno.
 */
int sim_guest_create(uint64_t size, uint32_t page_size, const struct sim_workload *wl,
		     uint64_t seed, struct sim_guest **guest_p);
/*
 * The same, sparse: the memfd is neither filled nor populated (zero), the
 * snapshot is reserved, not allocated, and a pause costs the pages dirtied
 * since the last one, not the guest's size (it rewrites only the bitmap words
 * it wrote last time: hand it the same bitmap every time, zero at first).
 * random:PCT is refused (-EINVAL: its permutation costs 4 bytes a page).
 */
int sim_guest_create_sparse(uint64_t size, uint32_t page_size, const struct sim_workload *wl,
			    uint64_t seed, struct sim_guest **guest_p);
bool sim_guest_sparse(const struct sim_guest *g);
void sim_guest_destroy(struct sim_guest *g);
/*
 * Switch the workload of a paused guest (before sim_guest_resume() or after
 * sim_guest_pause()).  Returns 0 or -ENOMEM.
 */
int sim_guest_set_workload(struct sim_guest *g, const struct sim_workload *wl);

void *sim_guest_ram(const struct sim_guest *g);
const void *sim_guest_snapshot(const struct sim_guest *g);
uint64_t sim_guest_pages(const struct sim_guest *g);
int sim_guest_memfd(const struct sim_guest *g);

/*
 * Shared memory as a hypervisor hands it to rctd: a memfd of @size bytes,
 * sealed against shrinking and growing, mapped shared and pre-faulted (zero).
 * Returns the mapping and the descriptor in *fd_p, or NULL (errno set).
 */
void *sim_memfd_map(const char *name, uint64_t size, int *fd_p);
/* The same, not pre-faulted: pages are allocated as they are written. */
void *sim_memfd_map_sparse(const char *name, uint64_t size, int *fd_p);
/* Undo sim_memfd_map(). */
void sim_memfd_unmap(void *p, uint64_t size, int fd);

/* Let the workload run (starts its thread on first use). */
void sim_guest_resume(struct sim_guest *g);

/*
 * While the guest runs: move the pages dirtied since the last harvest or pause
 * into @bitmap (the one sim_guest_pause() is given: only this harvest's words
 * are set), resetting the dirty log, as a hypervisor streaming before the
 * pause does.  The next pause brings those pages into the snapshot too.
 * Returns the number of pages.  Called by one thread, not with a pause.
 */
uint64_t sim_guest_harvest(struct sim_guest *g, uint64_t *bitmap);

/*
 * A sparse guest keeps the summary of the bitmap it writes (bit w: word w was
 * written by the last pause or harvest; clear: that word is zero) in
 * @summary, one bit per bitmap word, from now on: the layout of
 * rct_ckpt_take()'s summary and of RCT_IPC_TAKE_SUMMARY, so that rct reads only
 * the words it names.  @summary must outlive the guest.  -EINVAL: not sparse,
 * or shared already.
 */
int sim_guest_share_summary(struct sim_guest *g, uint64_t *summary);

/*
 * Stop the workload (for random:PCT, once this interval's pages are dirty),
 * move the dirty bitmap into @bitmap (rct layout, sim_guest_pages() bits) and
 * bring the snapshot up to date.  Returns the number of dirty pages.
 */
uint64_t sim_guest_pause(struct sim_guest *g, uint64_t *bitmap);

/*
 * The device-state blob of checkpoint @epoch: 4 KiB to 4 MiB (log-uniform),
 * its bytes a function of (@seed, @epoch).  Writes into *buf_p (grown with
 * realloc as needed, *cap_p its capacity) and returns the length, or 0 on
 * allocation failure (a real blob is never empty).
 */
size_t sim_devstate(uint64_t seed, uint64_t epoch, void **buf_p, size_t *cap_p);

/* The secondary's own guest dirtying @n random pages; marks them in @bitmap
 * and, when @pages is not NULL, lists them there (n entries). */
void sim_scribble(void *ram, uint64_t npages, uint32_t page_size, unsigned n, uint64_t *rng,
		  uint64_t *bitmap, uint64_t *pages);

/*
 * Compare @a and @b page by page.  Returns true when equal; else writes the
 * index of the first differing page.
 */
bool sim_compare(const void *a, const void *b, uint64_t npages, uint32_t page_size,
		 uint64_t *bad_page_p);

/*
 * Compare a sparse guest's snapshot with @ram, the secondary's RAM in the
 * memfd @ram_fd, over every page either side holds data in (SEEK_DATA on both
 * files; everything else is a hole, zero on both).  Returns true when equal,
 * else writes the first differing page found.  Costs the data, not the size.
 */
bool sim_compare_sparse(const struct sim_guest *g, const void *ram, int ram_fd,
			uint64_t *bad_page_p);

/* splitmix64 step, the PRNG everywhere in the simulation. */
static inline uint64_t sim_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Summary of a series of samples (milliseconds). */
struct sim_summary {
	double mean, p50, p99, max;
};

/* Nearest-rank percentiles of @n samples (@v is sorted in place). */
void sim_summarize(double *v, size_t n, struct sim_summary *sum_p);

#endif /* RCT_SIM_H */
