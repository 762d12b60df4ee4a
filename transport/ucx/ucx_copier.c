/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UCX backend: the copier threads that store puts into a target mapped here
 * (params.threads of them, lane l to thread l % (copiers + 1), 0 being the
 * session thread itself).
 *
 * Locking.  Each copier's lock guards its queue (head, tail) and stop; its
 * condition wakes it for a job or stop.  The session thread is the only
 * poster: jobs_posted is its own.  jobs_done is added to by the copiers (and
 * by quiesce for dropped jobs) with release order, after their stores, and
 * read by the session thread with acquire order, so that "pending 0" means
 * every store is visible.  wake_fd (an eventfd) wakes the session thread's
 * poll when a job finished.  A job holds raw pointers into the source memory
 * and the peer's mapping: before either goes, quiesce drops the queues and
 * waits for the jobs in hand.
 */
#include "ucx.h"

uint64_t rct_ucx_jobs_pending(struct rct_ucx_ctx *u)
{
	return u->jobs_posted - __atomic_load_n(&u->jobs_done, __ATOMIC_ACQUIRE);
}

static void *rct_ucx_copier_main(void *arg)
{
	struct rct_ucx_copier *c = arg;
	struct rct_ucx_job *job;
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->head && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		job = c->head;
		if (!job)
			break; /* stop, and nothing left */
		c->head = job->next;
		if (!c->head)
			c->tail = NULL;
		pthread_mutex_unlock(&c->lock);
		for (size_t i = 0; i < job->n; i++)
			memcpy(job->dst + job->runs[i].roff, job->src + job->runs[i].loff,
			       job->runs[i].len);
		free(job);
		/* Release: the stores above are visible before the count says so. */
		__atomic_add_fetch(&c->u->jobs_done, 1, __ATOMIC_RELEASE);
		if (write(c->u->wake_fd, &one, sizeof(one)) < 0)
			rct_debug("ucx: waking the poster: %m");
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/*
 * Drop every queued job and wait for the ones being copied: after this no
 * copier touches a remote mapping or a source buffer until new jobs come.
 * Called before a remote key goes (its mapping goes with it: a queued store
 * would land in unmapped memory) and at disconnect.  Dropped stores are
 * never acknowledged, so no epoch that needed them can commit.
 */
void rct_ucx_copiers_quiesce(struct rct_ucx_ctx *u)
{
	uint64_t dropped = 0, v;

	for (unsigned i = 0; i < u->ncopiers; i++) {
		struct rct_ucx_copier *c = &u->copiers[i];
		struct rct_ucx_job *job;

		pthread_mutex_lock(&c->lock);
		while ((job = c->head)) {
			c->head = job->next;
			free(job);
			dropped++;
		}
		c->tail = NULL;
		pthread_mutex_unlock(&c->lock);
	}
	__atomic_add_fetch(&u->jobs_done, dropped, __ATOMIC_RELEASE);
	/* A job in a copier's hands is a bounded memcpy: wait it out. */
	while (rct_ucx_jobs_pending(u)) {
		struct pollfd pfd = {.fd = u->wake_fd, .events = POLLIN};

		if (poll(&pfd, 1, 10) > 0 && read(u->wake_fd, &v, sizeof(v)) < 0)
			rct_debug("ucx: reading the copier eventfd: %m");
	}
	if (dropped)
		rct_debug("ucx: %llu queued copier jobs dropped", (unsigned long long)dropped);
}

void rct_ucx_copiers_stop(struct rct_ucx_ctx *u)
{
	rct_ucx_copiers_quiesce(u);
	for (unsigned i = 0; i < u->ncopiers; i++) {
		struct rct_ucx_copier *c = &u->copiers[i];

		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
	}
	free(u->copiers);
	u->copiers = NULL;
	u->ncopiers = 0;
}

rct_status_t rct_ucx_copiers_start(struct rct_ucx_ctx *u, unsigned n)
{
	u->copiers = calloc(n, sizeof(*u->copiers));
	if (!u->copiers)
		return RCT_ERR_NO_MEMORY;
	for (unsigned i = 0; i < n; i++) {
		struct rct_ucx_copier *c = &u->copiers[i];

		c->u = u;
		pthread_mutex_init(&c->lock, NULL);
		pthread_cond_init(&c->cond, NULL);
		if (pthread_create(&c->thread, NULL, rct_ucx_copier_main, c)) {
			rct_error("ucx: cannot start copier thread %u: %m", i);
			pthread_cond_destroy(&c->cond);
			pthread_mutex_destroy(&c->lock);
			return RCT_ERR_SYSTEM;
		}
		u->ncopiers = i + 1;
	}
	return RCT_OK;
}

rct_status_t rct_ucx_post_job(struct rct_ucx_ctx *u, struct rct_ucx_copier *c,
			      struct rct_be_mem *mem, struct rct_ucx_rkey *k,
			      const struct rct_run *runs, size_t n)
{
	struct rct_ucx_job *job = malloc(sizeof(*job) + n * sizeof(*runs));

	if (!job)
		return RCT_ERR_NO_MEMORY;
	job->next = NULL;
	job->src = mem->addr;
	job->dst = k->lptr;
	job->n = n;
	memcpy(job->runs, runs, n * sizeof(*runs));
	u->jobs_posted++;
	pthread_mutex_lock(&c->lock);
	if (c->tail)
		c->tail->next = job;
	else
		c->head = job;
	c->tail = job;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return RCT_OK;
}
