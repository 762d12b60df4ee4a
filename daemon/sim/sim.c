/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

#define SIM_IDLE_WRITES_PER_S 2500
#define SIM_HOT_PAGES	      2048
#define SIM_STREAM_BASE_MIBS  28
#define SIM_STREAM_BURST_MIBS 120
#define SIM_PHASE_MS	      600
#define SIM_TICK_MS	      1

struct sim_guest {
	uint64_t size;
	uint32_t page_size;
	uint64_t npages;
	uint64_t nwords;
	struct sim_workload wl;
	int memfd;
	uint8_t *ram;
	uint8_t *snap;
	uint64_t *dirty; /* written by the worker while running, by the pauser while paused */
	bool sparse;
	uint64_t nsum;
	uint64_t *dsum;	   /* sparse: bit w: dirty[w] may be non-zero (as dirty) */
	uint64_t *given;   /* sparse: bit w: the last pause or harvest wrote a non-zero word w */
	bool given_shared; /* given is the caller's (sim_guest_share_summary()) */
	uint64_t *edirty;  /* pages harvested this epoch (sim_guest_harvest()): the next pause
			     brings them into the snapshot too */
	uint64_t *esum;	   /* bit w: edirty[w] may be non-zero */
	uint32_t *perm;	   /* random:PCT: page permutation */
	uint64_t rng;

	/* Worker control; guarded by lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, running, stop, parked, target_done;

	/* Owned by the worker while running. */
	uint64_t hot_base;
	uint64_t stream_base, stream_pages, stream_pos;
	double stream_credit, idle_credit;
	unsigned phase_mibs;
	uint64_t phase_left_ms;
	uint64_t counter;
};

int sim_workload_parse(const char *text, struct sim_workload *wl_p)
{
	char *end;
	double pct;

	if (!strcmp(text, "idle")) {
		wl_p->kind = SIM_WORKLOAD_IDLE;
		wl_p->pct = 0;
		return 0;
	}
	if (!strcmp(text, "load")) {
		wl_p->kind = SIM_WORKLOAD_LOAD;
		wl_p->pct = 0;
		return 0;
	}
	if (!strncmp(text, "random:", 7)) {
		errno = 0;
		pct = strtod(text + 7, &end);
		if (errno || end == text + 7 || *end || !(pct > 0) || pct > 100)
			return -1;
		wl_p->kind = SIM_WORKLOAD_RANDOM;
		wl_p->pct = pct;
		wl_p->bytes = 0;
		return 0;
	}
	if (!strncmp(text, "pages:", 6) || !strncmp(text, "free:", 5)) {
		bool freeing = text[0] == 'f';
		uint64_t bytes;

		if (sim_parse_size(text + (freeing ? 5 : 6), &bytes) || !bytes)
			return -1;
		wl_p->kind = freeing ? SIM_WORKLOAD_FREE : SIM_WORKLOAD_PAGES;
		wl_p->pct = 0;
		wl_p->bytes = bytes;
		return 0;
	}
	return -1;
}

void sim_workload_format(const struct sim_workload *wl, char *buf, size_t len)
{
	switch (wl->kind) {
	case SIM_WORKLOAD_IDLE:
		snprintf(buf, len, "idle");
		break;
	case SIM_WORKLOAD_LOAD:
		snprintf(buf, len, "load");
		break;
	case SIM_WORKLOAD_RANDOM:
		snprintf(buf, len, "random:%g", wl->pct);
		break;
	case SIM_WORKLOAD_PAGES:
	case SIM_WORKLOAD_FREE: {
		const char *kind = wl->kind == SIM_WORKLOAD_FREE ? "free" : "pages";

		if (wl->bytes % (1ull << 30) == 0)
			snprintf(buf, len, "%s:%lluG", kind, (unsigned long long)(wl->bytes >> 30));
		else if (wl->bytes % (1ull << 20) == 0)
			snprintf(buf, len, "%s:%lluM", kind, (unsigned long long)(wl->bytes >> 20));
		else if (wl->bytes % (1ull << 10) == 0)
			snprintf(buf, len, "%s:%lluK", kind, (unsigned long long)(wl->bytes >> 10));
		else
			snprintf(buf, len, "%s:%llu", kind, (unsigned long long)wl->bytes);
		break;
	}
	}
}

int sim_parse_size(const char *text, uint64_t *size_p)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -1;
	}
	if (*end && end[1] && strcasecmp(end + 1, "iB") && strcasecmp(end + 1, "B"))
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*size_p = (uint64_t)v << shift;
	return 0;
}

/* ------------------------------------------------------------- guest */

static void sim_fill(struct sim_guest *g, uint64_t seed)
{
	uint64_t *w = (uint64_t *)g->ram;
	uint64_t words_per_page = g->page_size / 8;

	for (uint64_t p = 0; p < g->npages; p++) {
		uint64_t st = seed ^ (p * 0x9e3779b97f4a7c15ull);
		uint64_t base = sim_rand(&st);

		for (uint64_t i = 0; i < words_per_page; i++)
			w[p * words_per_page + i] = base + i;
	}
}

static int sim_guest_new(uint64_t size, uint32_t page_size, const struct sim_workload *wl,
			 uint64_t seed, bool sparse, struct sim_guest **guest_p)
{
	struct sim_guest *g;
	int err;

	if (!size || !page_size || size % page_size || size / page_size > UINT32_MAX)
		return -EINVAL;
	if (sparse && wl->kind == SIM_WORKLOAD_RANDOM)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->size = size;
	g->page_size = page_size;
	g->npages = size / page_size;
	g->nwords = (g->npages + 63) / 64;
	g->nsum = (g->nwords + 63) / 64;
	g->sparse = sparse;
	g->wl = *wl;
	g->rng = seed ^ 0x5eed5eed5eedull;
	g->memfd = -1;
	g->ram = MAP_FAILED;
	g->snap = MAP_FAILED;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);

	/* Guest RAM as a hypervisor has it: a memfd, sealed against shrinking. */
	g->memfd = memfd_create("rct-sim-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (g->memfd < 0 || ftruncate(g->memfd, (off_t)size) ||
	    fcntl(g->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) {
		err = -errno;
		goto out_destroy;
	}
	g->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	/* Sparse: a reservation; the pages a pause copies are the only ones used. */
	g->snap = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (sparse ? MAP_NORESERVE : 0), -1, 0);
	g->dirty = calloc(g->nwords, sizeof(uint64_t));
	g->dsum = calloc(g->nsum, sizeof(uint64_t));
	g->given = calloc(g->nsum, sizeof(uint64_t));
	g->edirty = calloc(g->nwords, sizeof(uint64_t));
	g->esum = calloc(g->nsum, sizeof(uint64_t));
	if (g->ram == MAP_FAILED || g->snap == MAP_FAILED || !g->dirty || !g->dsum || !g->given ||
	    !g->edirty || !g->esum) {
		err = -ENOMEM;
		goto out_destroy;
	}
	err = sim_guest_set_workload(g, wl);
	if (err)
		goto out_destroy;
	if (!sparse) {
		sim_fill(g, seed);
		memcpy(g->snap, g->ram, size);
	}

	g->hot_base = sim_rand(&g->rng) % g->npages;
	/* The 'page cache' the upload streams through: a quarter of RAM. */
	g->stream_pages = g->npages / 4 ? g->npages / 4 : 1;
	g->stream_base = g->npages / 4;
	g->phase_mibs = SIM_STREAM_BASE_MIBS;
	g->phase_left_ms = SIM_PHASE_MS;
	*guest_p = g;
	return 0;

out_destroy:
	sim_guest_destroy(g);
	return err;
}

int sim_guest_create(uint64_t size, uint32_t page_size, const struct sim_workload *wl,
		     uint64_t seed, struct sim_guest **guest_p)
{
	return sim_guest_new(size, page_size, wl, seed, false, guest_p);
}

int sim_guest_create_sparse(uint64_t size, uint32_t page_size, const struct sim_workload *wl,
			    uint64_t seed, struct sim_guest **guest_p)
{
	return sim_guest_new(size, page_size, wl, seed, true, guest_p);
}

bool sim_guest_sparse(const struct sim_guest *g)
{
	return g->sparse;
}

int sim_guest_set_workload(struct sim_guest *g, const struct sim_workload *wl)
{
	if (g->sparse && wl->kind == SIM_WORKLOAD_RANDOM)
		return -EINVAL;
	if (wl->kind == SIM_WORKLOAD_RANDOM && !g->perm) {
		g->perm = malloc(g->npages * sizeof(uint32_t));
		if (!g->perm)
			return -ENOMEM;
		for (uint64_t i = 0; i < g->npages; i++)
			g->perm[i] = (uint32_t)i;
	}
	pthread_mutex_lock(&g->lock);
	g->wl = *wl;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void sim_guest_destroy(struct sim_guest *g)
{
	if (!g)
		return;
	if (g->started) {
		pthread_mutex_lock(&g->lock);
		g->stop = true;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	if (g->ram != MAP_FAILED)
		munmap(g->ram, g->size);
	if (g->snap != MAP_FAILED)
		munmap(g->snap, g->size);
	if (g->memfd >= 0)
		close(g->memfd);
	free(g->dirty);
	free(g->dsum);
	if (!g->given_shared)
		free(g->given);
	free(g->edirty);
	free(g->esum);
	free(g->perm);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

void *sim_guest_ram(const struct sim_guest *g)
{
	return g->ram;
}

const void *sim_guest_snapshot(const struct sim_guest *g)
{
	return g->snap;
}

uint64_t sim_guest_pages(const struct sim_guest *g)
{
	return g->npages;
}

static void *sim_memfd_new(const char *name, uint64_t size, int *fd_p, int populate)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), err;
	void *p = MAP_FAILED;

	if (fd < 0)
		return NULL;
	if (!ftruncate(fd, (off_t)size) && !fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | populate, fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	*fd_p = fd;
	return p;
}

void *sim_memfd_map(const char *name, uint64_t size, int *fd_p)
{
	return sim_memfd_new(name, size, fd_p, MAP_POPULATE);
}

void *sim_memfd_map_sparse(const char *name, uint64_t size, int *fd_p)
{
	return sim_memfd_new(name, size, fd_p, 0);
}

void sim_memfd_unmap(void *p, uint64_t size, int fd)
{
	if (p)
		munmap(p, size);
	if (fd >= 0)
		close(fd);
}

int sim_guest_memfd(const struct sim_guest *g)
{
	return g->memfd;
}

/*
 * After the page's bytes are written, as a dirty log records it: a harvest
 * (sim_guest_harvest(), another thread) that takes the bit reads the page
 * after it, and a write that lands after the harvest sets the bit again.
 */
static void sim_mark(struct sim_guest *g, uint64_t page)
{
	__atomic_fetch_or(&g->dirty[page / 64], 1ull << (page % 64), __ATOMIC_RELEASE);
	__atomic_fetch_or(&g->dsum[page / 4096], 1ull << (page / 64 % 64), __ATOMIC_RELEASE);
}

/* A small write, as a guest's kernel or application makes: 64 bytes in a page. */
static void sim_touch(struct sim_guest *g, uint64_t page)
{
	uint64_t off = (sim_rand(&g->rng) % (g->page_size / 64)) * 64;
	uint64_t *p = (uint64_t *)(g->ram + page * g->page_size + off);

	g->counter++;
	for (int i = 0; i < 8; i++)
		p[i] = g->counter * 8 + (uint64_t)i;
	sim_mark(g, page);
}

/* A whole-page write, as a file upload into the page cache makes. */
static void sim_stream_page(struct sim_guest *g)
{
	uint64_t page = g->stream_base + g->stream_pos;
	uint64_t *p = (uint64_t *)(g->ram + page * g->page_size);
	uint64_t v = sim_rand(&g->rng);

	for (uint64_t i = 0; i < g->page_size / 8; i++)
		p[i] = v + i;
	sim_mark(g, page);
	g->stream_pos = (g->stream_pos + 1) % g->stream_pages;
}

static void sim_idle_tick(struct sim_guest *g)
{
	g->idle_credit += SIM_IDLE_WRITES_PER_S * SIM_TICK_MS / 1000.0;
	while (g->idle_credit >= 1) {
		uint64_t r = sim_rand(&g->rng);
		uint64_t page = (r & 1) ? (g->hot_base + (r >> 1) % SIM_HOT_PAGES) % g->npages
					: (r >> 1) % g->npages;

		sim_touch(g, page);
		g->idle_credit -= 1;
	}
}

static void sim_load_tick(struct sim_guest *g)
{
	sim_idle_tick(g);
	if (g->phase_left_ms <= SIM_TICK_MS) {
		g->phase_mibs = sim_rand(&g->rng) % 8 ? SIM_STREAM_BASE_MIBS
						      : SIM_STREAM_BURST_MIBS;
		g->phase_left_ms = SIM_PHASE_MS;
	} else {
		g->phase_left_ms -= SIM_TICK_MS;
	}
	g->stream_credit += (double)g->phase_mibs * 1048576.0 / g->page_size * SIM_TICK_MS / 1000.0;
	while (g->stream_credit >= 1) {
		sim_stream_page(g);
		g->stream_credit -= 1;
	}
}

/* random:PCT: dirty this interval's pages at once (a partial Fisher-Yates shuffle). */
static void sim_random_interval(struct sim_guest *g)
{
	uint64_t k = (uint64_t)llround(g->wl.pct / 100.0 * (double)g->npages);

	if (!k)
		k = 1;
	for (uint64_t i = 0; i < k; i++) {
		uint64_t j = i + sim_rand(&g->rng) % (g->npages - i);
		uint32_t t = g->perm[i];

		g->perm[i] = g->perm[j];
		g->perm[j] = t;
		sim_touch(g, g->perm[i]);
	}
}

/* pages:SIZE: this interval's pages at once, uniformly at random; free:SIZE
 * zeroes every other one whole instead. */
static void sim_pages_interval(struct sim_guest *g)
{
	uint64_t k = (g->wl.bytes + g->page_size - 1) / g->page_size;

	for (uint64_t i = 0; i < k; i++) {
		uint64_t page = sim_rand(&g->rng) % g->npages;

		if (g->wl.kind == SIM_WORKLOAD_FREE && i % 2) {
			memset(g->ram + page * g->page_size, 0, g->page_size);
			sim_mark(g, page);
		} else {
			sim_touch(g, page);
		}
	}
}

static void *sim_worker(void *arg)
{
	struct sim_guest *g = arg;
	struct timespec tick = {.tv_sec = 0, .tv_nsec = SIM_TICK_MS * 1000000L};

	pthread_mutex_lock(&g->lock);
	for (;;) {
		while (!g->stop && !g->running) {
			g->parked = true;
			pthread_cond_broadcast(&g->cond);
			pthread_cond_wait(&g->cond, &g->lock);
		}
		g->parked = false;
		if (g->stop)
			break;
		pthread_mutex_unlock(&g->lock);

		switch (g->wl.kind) {
		case SIM_WORKLOAD_IDLE:
			sim_idle_tick(g);
			nanosleep(&tick, NULL);
			break;
		case SIM_WORKLOAD_LOAD:
			sim_load_tick(g);
			nanosleep(&tick, NULL);
			break;
		case SIM_WORKLOAD_RANDOM:
		case SIM_WORKLOAD_PAGES:
		case SIM_WORKLOAD_FREE:
			if (!g->target_done) {
				if (g->wl.kind == SIM_WORKLOAD_RANDOM)
					sim_random_interval(g);
				else
					sim_pages_interval(g);
				pthread_mutex_lock(&g->lock);
				g->target_done = true;
				pthread_cond_broadcast(&g->cond);
				pthread_mutex_unlock(&g->lock);
			} else {
				nanosleep(&tick, NULL);
			}
			break;
		}
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

void sim_guest_resume(struct sim_guest *g)
{
	pthread_mutex_lock(&g->lock);
	g->running = true;
	g->target_done = false;
	if (!g->started) {
		g->started = pthread_create(&g->thread, NULL, sim_worker, g) == 0;
		if (!g->started) {
			/* Cannot run a workload: say so loudly rather than measure nothing. */
			fprintf(stderr, "sim: cannot start the workload thread\n");
			g->running = false;
		}
	}
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

int sim_guest_share_summary(struct sim_guest *g, uint64_t *summary)
{
	if (!g->sparse || g->given_shared)
		return -EINVAL;
	memcpy(summary, g->given, g->nsum * sizeof(uint64_t));
	free(g->given);
	g->given = summary;
	g->given_shared = true;
	return 0;
}

uint64_t sim_guest_harvest(struct sim_guest *g, uint64_t *bitmap)
{
	uint64_t n = 0;

	/* The bitmap holds only this harvest's words: clear what the last one wrote. */
	if (g->sparse) {
		for (uint64_t s = 0; s < g->nsum; s++) {
			for (uint64_t v = g->given[s]; v; v &= v - 1)
				bitmap[s * 64 + (uint64_t)__builtin_ctzll(v)] = 0;
			g->given[s] = 0;
		}
	} else {
		memset(bitmap, 0, g->nwords * sizeof(uint64_t));
	}
	for (uint64_t s = 0; s < g->nsum; s++) {
		uint64_t sum = __atomic_exchange_n(&g->dsum[s], 0, __ATOMIC_ACQ_REL);

		for (; sum; sum &= sum - 1) {
			uint64_t w = s * 64 + (uint64_t)__builtin_ctzll(sum);
			uint64_t bits = __atomic_exchange_n(&g->dirty[w], 0, __ATOMIC_ACQ_REL);

			if (!bits)
				continue;
			bitmap[w] = bits;
			g->given[s] |= 1ull << (w % 64);
			g->edirty[w] |= bits;
			g->esum[s] |= 1ull << (w % 64);
			n += (uint64_t)__builtin_popcountll(bits);
		}
	}
	return n;
}

/* The pause: pages harvested this epoch into the snapshot as well. */
static void sim_snap_harvested(struct sim_guest *g)
{
	for (uint64_t s = 0; s < g->nsum; s++) {
		for (uint64_t v = g->esum[s]; v; v &= v - 1) {
			uint64_t w = s * 64 + (uint64_t)__builtin_ctzll(v);

			for (uint64_t bits = g->edirty[w]; bits; bits &= bits - 1) {
				uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);

				memcpy(g->snap + p * g->page_size, g->ram + p * g->page_size,
				       g->page_size);
			}
			g->edirty[w] = 0;
		}
		g->esum[s] = 0;
	}
}

/* A sparse pause: the words dirtied since the last one, through the summary. */
static uint64_t sim_pause_sparse(struct sim_guest *g, uint64_t *bitmap)
{
	uint64_t n = 0;

	for (uint64_t s = 0; s < g->nsum; s++) {
		for (uint64_t v = g->given[s]; v; v &= v - 1)
			bitmap[s * 64 + (uint64_t)__builtin_ctzll(v)] = 0;
		g->given[s] = g->dsum[s];
		for (uint64_t v = g->dsum[s]; v; v &= v - 1) {
			uint64_t w = s * 64 + (uint64_t)__builtin_ctzll(v), bits = g->dirty[w];

			bitmap[w] = bits;
			g->dirty[w] = 0;
			for (; bits; bits &= bits - 1) {
				uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);

				memcpy(g->snap + p * g->page_size, g->ram + p * g->page_size,
				       g->page_size);
				n++;
			}
		}
		g->dsum[s] = 0;
	}
	return n;
}

uint64_t sim_guest_pause(struct sim_guest *g, uint64_t *bitmap)
{
	uint64_t n = 0;

	pthread_mutex_lock(&g->lock);
	if (g->started) {
		while (sim_workload_at_once(&g->wl) && g->running && !g->target_done)
			pthread_cond_wait(&g->cond, &g->lock);
		g->running = false;
		pthread_cond_broadcast(&g->cond);
		while (!g->parked)
			pthread_cond_wait(&g->cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);

	/* The worker is parked: the bitmap and RAM are ours until resume. */
	sim_snap_harvested(g);
	if (g->sparse)
		return sim_pause_sparse(g, bitmap);
	for (uint64_t w = 0; w < g->nwords; w++) {
		uint64_t bits = g->dirty[w];

		bitmap[w] = bits;
		g->dirty[w] = 0;
		if (w % 64 == 0)
			g->dsum[w / 64] = 0;
		while (bits) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);

			memcpy(g->snap + p * g->page_size, g->ram + p * g->page_size, g->page_size);
			bits &= bits - 1;
			n++;
		}
	}
	return n;
}

size_t sim_devstate(uint64_t seed, uint64_t epoch, void **buf_p, size_t *cap_p)
{
	uint64_t st = seed ^ (epoch * 0xd1b54a32d192ed03ull);
	/* log-uniform in [4 KiB, 4 MiB]: 2^12 .. 2^22 */
	double e = 12.0 + (double)(sim_rand(&st) % 10001) / 1000.0;
	size_t len = (size_t)exp2(e) & ~(size_t)7;
	uint64_t *w;

	if (len > *cap_p) {
		void *p = realloc(*buf_p, len);

		if (!p)
			return 0;
		*buf_p = p;
		*cap_p = len;
	}
	w = *buf_p;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = sim_rand(&st);
	return len;
}

void sim_scribble(void *ram, uint64_t npages, uint32_t page_size, unsigned n, uint64_t *rng,
		  uint64_t *bitmap, uint64_t *pages)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t page = sim_rand(rng) % npages;
		uint64_t *p = (uint64_t *)((uint8_t *)ram + page * page_size);

		if (pages)
			pages[i] = page;
		p[sim_rand(rng) % (page_size / 8)] ^= 0xdeadbeefcafef00dull;
		bitmap[page / 64] |= 1ull << (page % 64);
	}
}

bool sim_compare(const void *a, const void *b, uint64_t npages, uint32_t page_size,
		 uint64_t *bad_page_p)
{
	const uint8_t *pa = a, *pb = b;
	const uint64_t chunk = 256; /* pages per memcmp: fast path, then narrow down */

	for (uint64_t p = 0; p < npages; p += chunk) {
		uint64_t n = npages - p < chunk ? npages - p : chunk;

		if (!memcmp(pa + p * page_size, pb + p * page_size, n * page_size))
			continue;
		for (uint64_t q = p; q < p + n; q++) {
			if (memcmp(pa + q * page_size, pb + q * page_size, page_size)) {
				*bad_page_p = q;
				return false;
			}
		}
	}
	return true;
}

/* The next data extent of @fd at or after byte @off, [*a, *b); false: none. */
static bool sim_next_data(int fd, uint64_t size, uint64_t off, uint64_t *a, uint64_t *b)
{
	off_t d, h;

	if (off >= size)
		return false;
	d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0 || (uint64_t)d >= size)
		return false; /* ENXIO: no data after off */
	h = lseek(fd, d, SEEK_HOLE);
	*a = (uint64_t)d;
	*b = h < 0 || (uint64_t)h > size ? size : (uint64_t)h;
	return true;
}

/* Compare @a and @b over @fd's data extents. */
static bool sim_compare_extents(const uint8_t *a, const uint8_t *b, int fd, uint64_t size,
				uint32_t page_size, uint64_t *bad_page_p)
{
	uint64_t off = 0, x, y;

	while (sim_next_data(fd, size, off, &x, &y)) {
		x -= x % page_size;
		y = (y + page_size - 1) / page_size * page_size;
		if (y > size)
			y = size;
		if (!sim_compare(a + x, b + x, (y - x) / page_size, page_size, bad_page_p)) {
			*bad_page_p += x / page_size;
			return false;
		}
		off = y;
	}
	return true;
}

bool sim_compare_sparse(const struct sim_guest *g, const void *ram, int ram_fd,
			uint64_t *bad_page_p)
{
	/* The primary's RAM holds data wherever its snapshot may (pages are
	 * written, never punched); the secondary's wherever rct or its own
	 * guest wrote. */
	return sim_compare_extents(g->snap, ram, g->memfd, g->size, g->page_size, bad_page_p) &&
	       sim_compare_extents(g->snap, ram, ram_fd, g->size, g->page_size, bad_page_p);
}

static int sim_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void sim_summarize(double *v, size_t n, struct sim_summary *sum_p)
{
	double total = 0;

	memset(sum_p, 0, sizeof(*sum_p));
	if (!n)
		return;
	qsort(v, n, sizeof(*v), sim_cmp_double);
	for (size_t i = 0; i < n; i++)
		total += v[i];
	sum_p->mean = total / (double)n;
	/* nearest rank: the smallest value with at least p% of samples at or below it */
	sum_p->p50 = v[(size_t)ceil(0.50 * (double)n) - 1];
	sum_p->p99 = v[(size_t)ceil(0.99 * (double)n) - 1];
	sum_p->max = v[n - 1];
}
