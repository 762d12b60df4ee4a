/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The secondary's flush on several threads.  One core copies ~5-15 GB/s on
 * these machines; a flush of a large dirty set is the secondary's pause and
 * BEGIN(N+1) waits for it, so the checkpoint rate was one core's copy speed.
 *
 * The dirty pages of all regions, in (region, page) order, are cut into
 * shares of about equal page counts at word boundaries (one pass over the
 * dirty words, through the summary); share 0 is the caller's, share k the
 * k-th helper's.  Each share is copied in address order (scattered copies in
 * random order are ~3x slower here).  The caller's thread drives the session
 * between its steps and while it waits for the helpers: heartbeats go on,
 * and nothing else touches the session meanwhile, so the helpers read the
 * dirty maps, the cache and guest RAM pointers without a lock.
 *
 * Locking: the pool's lock guards gen, pending and stop; go wakes helpers
 * for a new generation (or stop), done wakes the caller when pending drops
 * to 0.  The shares are written by the caller before gen moves and read by
 * the helpers after they see it (the lock orders both).
 *
 * A helper never copies into a region flagged flush_alone: its file may
 * shrink under the mapping, and the SIGBUS that would raise belongs to the
 * caller's thread, where the caller can catch it (rctd does, guard.c).
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flush.h"
#include "keepalive.h"
#include "log.h"

/* Below this many pages a flush is not worth waking anyone for. */
#define RCT_FLUSH_MIN_SHARED 512

struct rct_flush_share {
	unsigned r0, r1; /* from (r0, p0) to (r1, p1), exclusive; r1 == nregions: the end */
	uint64_t p0, p1;
};

struct rct_flush_pool {
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	uint64_t gen;
	unsigned pending;
	bool stop;
	unsigned n;		 /* helpers started */
	_Atomic uint64_t helped; /* pages the helpers copied, in all */
	struct rct_session *s;
	struct rct_flush_share share[RCT_FLUSH_THREADS_MAX + 1];
	struct rct_flush_helper {
		struct rct_flush_pool *pool;
		unsigned idx; /* its share */
		pthread_t thread;
	} helper[RCT_FLUSH_THREADS_MAX];
};

uint64_t rct_flush_helped(const struct rct_session *s)
{
	return s->flush_pool ? s->flush_pool->helped : 0;
}

unsigned rct_flush_threads_default(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n <= 1)
		return 0;
	return n - 1 > RCT_FLUSH_THREADS_MAX ? RCT_FLUSH_THREADS_MAX : (unsigned)(n - 1);
}

/*
 * Copy one share of the regions whose flush_alone is @alone; @tick: the
 * caller's thread, which keeps the session driven.
 */
static uint64_t rct_flush_share_copy(struct rct_session *s, const struct rct_flush_share *sh,
				     bool alone, bool tick)
{
	uint64_t step = RCT_FLUSH_STEP >> s->page_shift, pages = 0;

	for (unsigned i = sh->r0; i < s->nregions && i <= sh->r1; i++) {
		const struct rct_region *r = s->regions[i];
		uint64_t next = i == sh->r0 ? sh->p0 : 0;
		uint64_t end = i == sh->r1 ? sh->p1 : r->npages;
		const char *cache = r->mem->addr;
		char *ram = r->ram;
		uint64_t first, len;

		if (r->flush_alone != alone)
			continue;
		while (next < end && rct_dmap_next_run(&r->dirty, next, step, &first, &len) &&
		       first < end) {
			if (len > end - first)
				len = end - first;
			memcpy(ram + (first << s->page_shift), cache + (first << s->page_shift),
			       len << s->page_shift);
			pages += len;
			next = first + len;
			/* The peer waits for FLUSHED meanwhile: keep it from
			 * taking a long flush for a lost secondary.  A failure
			 * here does not stop the flush: a committed checkpoint
			 * is applied whole. */
			if (tick)
				(void)rct_session_tick(s);
		}
	}
	return pages;
}

static void *rct_flush_helper_main(void *arg)
{
	struct rct_flush_helper *h = arg;
	struct rct_flush_pool *p = h->pool;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->gen == seen && !p->stop)
			pthread_cond_wait(&p->go, &p->lock);
		if (p->stop)
			break;
		seen = p->gen;
		pthread_mutex_unlock(&p->lock);
		p->helped += rct_flush_share_copy(p->s, &p->share[h->idx], false, false);
		pthread_mutex_lock(&p->lock);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void rct_flush_pool_destroy(struct rct_flush_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->helper[i].thread, NULL);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Start the session's helpers; NULL (logged) if none could start. */
static struct rct_flush_pool *rct_flush_pool_create(struct rct_session *s, unsigned n)
{
	struct rct_flush_pool *p = calloc(1, sizeof(*p));
	sigset_t all, old;
	int rc = 0;

	if (!p) {
		rct_error("flush: no memory for %u helper threads: flushing on one", n);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	p->s = s;
	/* Helpers take no signal: the caller's handlers stay on its threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->n < n; p->n++) {
		struct rct_flush_helper *h = &p->helper[p->n];

		h->pool = p;
		h->idx = p->n + 1;
		rc = pthread_create(&h->thread, NULL, rct_flush_helper_main, h);
		if (rc)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		rct_error("flush: helper thread %u of %u: %s: flushing on %u threads", p->n + 1, n,
			  strerror(rc), p->n + 1);
	if (!p->n) {
		rct_flush_pool_destroy(p);
		return NULL;
	}
	return p;
}

/*
 * Cut the shared regions' dirty pages into @nshares shares of about @total /
 * @nshares pages each, at word boundaries, in (region, page) order.
 */
static void rct_flush_cut(struct rct_session *s, struct rct_flush_share *share, unsigned nshares,
			  uint64_t total)
{
	uint64_t target = (total + nshares - 1) / nshares, acc = 0;
	unsigned k = 0;

	for (unsigned i = 0; i < nshares; i++)
		share[i] = (struct rct_flush_share){.r0 = s->nregions, .r1 = s->nregions};
	share[0].r0 = 0;
	share[0].p0 = 0;
	for (unsigned i = 0; i < s->nregions && k + 1 < nshares; i++) {
		const struct rct_region *r = s->regions[i];

		if (r->flush_alone)
			continue;
		for (uint64_t w = 0; k + 1 < nshares && rct_dmap_next_word(&r->dirty, w, &w); w++) {
			acc += (uint64_t)__builtin_popcountll(r->dirty.bits[w]);
			while (k + 1 < nshares && acc >= (k + 1) * target) {
				uint64_t cut = (w + 1) * 64 < r->npages ? (w + 1) * 64 : r->npages;

				share[k].r1 = i;
				share[k].p1 = cut;
				share[k + 1].r0 = i;
				share[k + 1].p0 = cut;
				k++;
			}
		}
	}
}

uint64_t rct_flush_copy(struct rct_session *s)
{
	struct rct_flush_pool *p = s->flush_pool;
	uint64_t shared = 0, pages = 0;
	struct rct_flush_share all = {.r0 = 0, .r1 = s->nregions};
	unsigned nshares;

	for (unsigned i = 0; i < s->nregions; i++)
		if (!s->regions[i]->flush_alone)
			shared += rct_dmap_count(&s->regions[i]->dirty);
	if (s->flush_threads && shared >= RCT_FLUSH_MIN_SHARED && !p && !s->flush_pool_failed) {
		p = s->flush_pool = rct_flush_pool_create(s, s->flush_threads);
		s->flush_pool_failed = !p;
	}
	if (!p || shared < RCT_FLUSH_MIN_SHARED) {
		pages = rct_flush_share_copy(s, &all, false, true);
	} else {
		nshares = p->n + 1;
		rct_flush_cut(s, p->share, nshares, shared);
		pthread_mutex_lock(&p->lock);
		p->pending = p->n;
		p->gen++;
		pthread_cond_broadcast(&p->go);
		pthread_mutex_unlock(&p->lock);
		(void)rct_flush_share_copy(s, &p->share[0], false, true);
		pthread_mutex_lock(&p->lock);
		while (p->pending) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 2000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_cond_timedwait(&p->done, &p->lock, &ts)) {
				pthread_mutex_unlock(&p->lock);
				(void)rct_session_tick(s);
				pthread_mutex_lock(&p->lock);
			}
		}
		pthread_mutex_unlock(&p->lock);
		/* What the helpers copied: every shared dirty page. */
		pages = shared;
	}
	/* Regions only this thread may write. */
	return pages + rct_flush_share_copy(s, &all, true, true);
}
