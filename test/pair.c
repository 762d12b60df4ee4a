/* SPDX-License-Identifier: BSD-3-Clause */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/bitmap.h"
#include "core/session.h"
#include "core/util.h"
#include "pair.h"

#define PAIR_PAGE 4096

static uint64_t pair_rand(uint64_t *st)
{
	uint64_t z = (*st += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The secondary's own guest runs until the next checkpoint and dirties pages. */
static void pair_scribble(struct pair *pp, uint64_t *bits, uint64_t *rng)
{
	if ((!pp->o.scribble && !pp->o.scribble_bits) || !bits)
		return;
	memset(bits, 0, rct_bitmap_words(pp->npages) * sizeof(uint64_t));
	for (unsigned i = 0; i < pp->o.scribble; i++) {
		uint64_t page = pair_rand(rng) % pp->npages;

		pp->sram[page * PAIR_PAGE + pair_rand(rng) % PAIR_PAGE] ^= 0x5a;
		rct_bitmap_set(bits, page);
	}
	for (uint64_t page = 0; pp->o.scribble_bits && page < pp->npages; page++)
		if (rct_bitmap_test(pp->o.scribble_bits, page)) {
			pp->sram[page * PAIR_PAGE + 7] ^= 0x5a;
			rct_bitmap_set(bits, page);
		}
	rct_ckpt_local_dirty(pp->s, pp->sr, bits, pp->npages);
}

/* One turn of a hypervisor's event loop: arm, sleep on the descriptor (at
 * most 20 ms: the stop flag), progress without waiting. */
static rct_status_t pair_secondary_wait(struct pair *pp)
{
	int ms = -1;
	rct_status_t st = rct_session_arm(pp->s, &ms);

	if (st == RCT_OK) {
		struct pollfd pfd = {.fd = rct_session_fd(pp->s), .events = POLLIN};

		if (poll(&pfd, 1, ms < 0 || ms > 20 ? 20 : ms) > 0) {
			pthread_mutex_lock(&pp->lock);
			pp->fd_wakes++;
			pthread_mutex_unlock(&pp->lock);
		}
	} else if (st != RCT_ERR_AGAIN) {
		return st;
	}
	return rct_session_progress(pp->s, 0);
}

static void *pair_secondary(void *arg)
{
	struct pair *pp = arg;
	uint64_t rng = 0x5ec0;
	uint64_t *bits = calloc(rct_bitmap_words(pp->npages), sizeof(uint64_t));
	struct rct_event ev = {0};
	rct_status_t st;

	if (pp->o.accept_slice_ms > 0) {
		uint64_t end = rct_now_ns() + (uint64_t)pp->o.timeout_ms * 1000000;

		do
			st = rct_session_accept_within(pp->s, pp->o.accept_slice_ms);
		while (st == RCT_ERR_TIMED_OUT && rct_now_ns() < end);
	} else {
		st = rct_session_accept(pp->s);
	}
	pthread_mutex_lock(&pp->lock);
	pp->accept_status = st;
	pthread_cond_broadcast(&pp->cond);
	pthread_mutex_unlock(&pp->lock);
	while (st == RCT_OK) {
		pthread_mutex_lock(&pp->lock);
		bool stop = pp->stop, hold = pp->hold;

		pp->held = hold;
		pthread_cond_broadcast(&pp->cond);
		pthread_mutex_unlock(&pp->lock);
		if (stop)
			break;
		if (hold) {
			usleep(2000);
			continue;
		}
		st = pp->o.use_fd ? pair_secondary_wait(pp) : rct_session_progress(pp->s, 20);
		while (rct_session_event_next(pp->s, &ev) == RCT_OK) {
			const void *dev = NULL;
			size_t len = 0;
			bool flushed = false, refused = false;

			/* The flush runs without the lock: the main thread drives
			 * the primary meanwhile (pair_wait_flushed). */
			if (ev.type == RCT_EVENT_CKPT_READY && pp->o.auto_flush && ev.epoch < 64 &&
			    (pp->o.refuse_mask >> ev.epoch & 1))
				refused = rct_ckpt_refuse(pp->s, ev.epoch, "test: refuse_mask") ==
					  RCT_OK;
			else if (ev.type == RCT_EVENT_CKPT_READY && pp->o.auto_flush)
				flushed = rct_ckpt_flush(pp->s, ev.epoch, NULL) == RCT_OK &&
					  rct_ckpt_devstate_get(pp->s, ev.epoch, &dev, &len) ==
						  RCT_OK &&
					  len <= sizeof(pp->devstate);
			pthread_mutex_lock(&pp->lock);
			if (ev.type == RCT_EVENT_CKPT_READY) {
				pp->ready = ev.epoch;
				if (flushed) {
					memcpy(pp->devstate, dev, len);
					pp->devstate_len = len;
					pp->flushed = ev.epoch;
					/* Compare before this guest dirties anything. */
					pp->equal = !pp->o.no_snapshot &&
						    !memcmp(pp->sram, pp->snap, pp->o.size);
					pair_scribble(pp, bits, &rng);
				} else if (refused) {
					/* Its guest runs on from the old image. */
					pp->refused = ev.epoch;
					pair_scribble(pp, bits, &rng);
				}
			} else if (ev.type == RCT_EVENT_PEER_LOST) {
				pp->lost = ev.status;
				pp->lost_epoch = ev.epoch;
				pp->lost_discarded = ev.discarded;
			}
			pthread_cond_broadcast(&pp->cond);
			pthread_mutex_unlock(&pp->lock);
		}
	}
	pthread_mutex_lock(&pp->lock);
	if (pp->lost == RCT_OK && st != RCT_OK)
		pp->lost = st;
	pp->done = true;
	pthread_cond_broadcast(&pp->cond);
	pthread_mutex_unlock(&pp->lock);
	free(bits);
	return NULL;
}

/* A memfd of @size bytes mapped shared, not populated; NULL on failure. */
static uint8_t *pair_memfd(size_t size, int *fd_p)
{
	int fd = memfd_create("rct-pair", MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)size)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	*fd_p = fd;
	return p;
}

/* Guest RAM of both sides: filled (see pair_opts), or sparse files. */
static rct_status_t pair_ram(struct pair *pp, const struct pair_opts *o)
{
	pp->pfd = pp->sfd = -1;
	if (!o->sparse) {
		pp->pram = rct_mem_alloc(o->size);
		pp->sram = rct_mem_alloc(o->size);
		if (!pp->pram || !pp->sram)
			return RCT_ERR_NO_MEMORY;
		for (uint64_t i = 0; i < o->size / 8; i++)
			((uint64_t *)pp->pram)[i] = pair_rand(&pp->rng);
		memset(pp->sram, 0xee, o->size);
		return RCT_OK;
	}
	pp->pram = pair_memfd(o->size, &pp->pfd);
	pp->sram = pair_memfd(o->size, &pp->sfd);
	if (!pp->pram || !pp->sram)
		return RCT_ERR_NO_MEMORY;
	for (uint64_t page = 0; page < pp->npages; page += 8) {
		for (unsigned i = 0; i < PAIR_PAGE / 8; i++)
			((uint64_t *)(pp->pram + page * PAIR_PAGE))[i] = pair_rand(&pp->rng) | 1;
		if (page + 1 < pp->npages)
			memset(pp->pram + (page + 1) * PAIR_PAGE, 0, PAIR_PAGE);
	}
	memset(pp->sram, 0xee, o->size / 2);
	return RCT_OK;
}

static rct_status_t pair_session(struct pair *pp, enum rct_role role, struct rct_session **s_p)
{
	struct rct_session_params p = {
		.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_LANES |
			      RCT_SESSION_PARAM_FIELD_TIMEOUT | RCT_SESSION_PARAM_FIELD_BACKEND |
			      RCT_SESSION_PARAM_FIELD_HEARTBEAT,
		.role = role,
		.lanes = pp->o.lanes,
		.timeout_ms = pp->o.timeout_ms,
		.heartbeat_ms = pp->o.heartbeat_ms,
		.backend = pp->o.backend,
	};

	if (pp->o.threads) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_THREADS;
		p.threads = pp->o.threads;
	}
	if (pp->o.flush_threads) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_FLUSH_THREADS;
		p.flush_threads = pp->o.flush_threads < 0 ? 0 : (unsigned)pp->o.flush_threads;
	}
	if (pp->o.liveness) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_LIVENESS;
		p.liveness = pp->o.liveness;
	}
	if (pp->o.max_put) {
		p.field_mask |= RCT_SESSION_PARAM_FIELD_MAX_PUT;
		p.max_put = pp->o.max_put;
	}
	p.psk = role == RCT_ROLE_PRIMARY ? pp->o.ppsk : pp->o.spsk;
	if (p.psk)
		p.field_mask |= RCT_SESSION_PARAM_FIELD_PSK;
	const char *pairing = role == RCT_ROLE_PRIMARY ? pp->o.ppairing : pp->o.spairing;
	rct_status_t st = pp->o.ops ? rct_session_create_ops(&p, pp->o.ops, s_p)
				    : rct_session_create(&p, s_p);

	if (st == RCT_OK && pairing) {
		st = rct_session_set_pairing(
			*s_p, pairing, role == RCT_ROLE_PRIMARY ? pp->o.ppkey : pp->o.spkey, 0);
		if (st != RCT_OK) {
			rct_session_destroy(*s_p);
			*s_p = NULL;
		}
	}
	return st;
}

rct_status_t pair_open(struct pair *pp, const struct pair_opts *o)
{
	rct_status_t st;

	memset(pp, 0, sizeof(*pp));
	pp->o = *o;
	if (!pp->o.backend)
		pp->o.backend = "tcp";
	if (!pp->o.addr)
		pp->o.addr = "127.0.0.1";
	if (!pp->o.timeout_ms)
		pp->o.timeout_ms = 5000;
	if (!pp->o.heartbeat_ms)
		pp->o.heartbeat_ms = 2000;
	pp->npages = o->size / PAIR_PAGE;
	pp->ready = pp->flushed = pp->refused = UINT64_MAX;
	pp->rng = 42;
	pthread_mutex_init(&pp->lock, NULL);
	pthread_cond_init(&pp->cond, NULL);
	st = pair_ram(pp, o);
	if (st != RCT_OK)
		return st;
	pp->snap = o->no_snapshot ? NULL : rct_mem_alloc(o->size);
	if (!pp->snap && !o->no_snapshot)
		return RCT_ERR_NO_MEMORY;
	if (pp->snap)
		memcpy(pp->snap, pp->pram, o->size);

	st = pair_session(pp, RCT_ROLE_SECONDARY, &pp->s);
	if (st == RCT_OK)
		st = rct_region_register(pp->s, 7, pp->sram, o->size, &pp->sr);
	if (st == RCT_OK && o->sparse)
		st = rct_region_set_file(pp->sr, pp->sfd, 0);
	if (st == RCT_OK && o->sname)
		st = rct_region_set_name(pp->sr, o->sname);
	if (st == RCT_OK)
		st = rct_session_listen(pp->s, pp->o.addr, 0, &pp->port);
	if (st != RCT_OK)
		return st;
	if (pthread_create(&pp->thread, NULL, pair_secondary, pp))
		return RCT_ERR_SYSTEM;
	if (pp->o.before_connect)
		pp->o.before_connect(pp, pp->o.before_arg);
	st = pair_session(pp, RCT_ROLE_PRIMARY, &pp->p);
	if (st == RCT_OK)
		st = rct_region_register(pp->p, 7, pp->pram, o->size, &pp->pr);
	if (st == RCT_OK && o->sparse)
		st = rct_region_set_file(pp->pr, pp->pfd, 0);
	if (st == RCT_OK && o->pname)
		st = rct_region_set_name(pp->pr, o->pname);
	if (st == RCT_OK)
		st = rct_session_connect(pp->p, pp->o.addr, pp->port);
	return st;
}

void pair_close(struct pair *pp)
{
	rct_session_destroy(pp->p);
	pp->p = NULL;
	if (pp->s) {
		pthread_mutex_lock(&pp->lock);
		pp->stop = true;
		pthread_mutex_unlock(&pp->lock);
		pthread_join(pp->thread, NULL);
	}
	rct_session_destroy(pp->s);
	rct_mem_free(pp->pram, pp->o.size);
	rct_mem_free(pp->sram, pp->o.size);
	if (pp->o.sparse && pp->pfd >= 0)
		close(pp->pfd);
	if (pp->o.sparse && pp->sfd >= 0)
		close(pp->sfd);
	if (pp->snap)
		rct_mem_free(pp->snap, pp->o.size);
	pthread_cond_destroy(&pp->cond);
	pthread_mutex_destroy(&pp->lock);
}

void pair_dirty(struct pair *pp, uint64_t *bits, unsigned n, uint64_t first, uint64_t len)
{
	memset(bits, 0, rct_bitmap_words(pp->npages) * sizeof(uint64_t));
	for (unsigned i = 0; i < n; i++) {
		uint64_t page = pair_rand(&pp->rng) % pp->npages;

		((uint64_t *)(pp->pram + page * PAIR_PAGE))[pair_rand(&pp->rng) % 512] = pair_rand(
			&pp->rng);
		rct_bitmap_set(bits, page);
	}
	for (uint64_t page = first; page < first + len && page < pp->npages; page++) {
		memset(pp->pram + page * PAIR_PAGE, (int)(pair_rand(&pp->rng) & 0xff), PAIR_PAGE);
		rct_bitmap_set(bits, page);
	}
}

rct_status_t pair_ckpt(struct pair *pp, uint64_t epoch, const uint64_t *bits, const void *dev,
		       size_t dev_len)
{
	rct_status_t st;

	/* The guest is paused: this is the image the secondary must end up with. */
	if (!pp->o.no_snapshot)
		memcpy(pp->snap, pp->pram, pp->o.size);
	st = rct_ckpt_begin(pp->p, epoch, bits ? 0 : RCT_CKPT_FULL);
	if (st == RCT_OK && bits)
		st = rct_ckpt_dirty(pp->p, pp->pr, bits, pp->npages);
	if (st == RCT_OK)
		st = rct_ckpt_devstate_put(pp->p, dev, dev_len);
	if (st == RCT_OK)
		st = rct_ckpt_commit(pp->p, NULL);
	return st;
}

static void pair_deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool pair_wait_epoch(struct pair *pp, const uint64_t *seen, uint64_t epoch, int timeout_ms)
{
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	struct timespec ts;
	bool ok;

	/* The primary's hypervisor keeps driving its session meanwhile (the
	 * secondary takes a primary that says nothing for lost). */
	pthread_mutex_lock(&pp->lock);
	while (*seen != epoch && !pp->done && rct_now_ns() < deadline) {
		pthread_mutex_unlock(&pp->lock);
		/* Sleeps in the backend's poll until something arrives (the
		 * FLUSHED ack, a heartbeat) or 5 ms pass: no spinning. */
		if (pp->p && rct_session_progress(pp->p, 5) == RCT_OK) {
			pthread_mutex_lock(&pp->lock);
			continue;
		}
		pthread_mutex_lock(&pp->lock);
		pair_deadline(&ts, 5);
		if (*seen != epoch && !pp->done)
			pthread_cond_timedwait(&pp->cond, &pp->lock, &ts);
	}
	ok = *seen == epoch;
	pthread_mutex_unlock(&pp->lock);
	return ok;
}

bool pair_wait_flushed(struct pair *pp, uint64_t epoch, int timeout_ms)
{
	return pair_wait_epoch(pp, &pp->flushed, epoch, timeout_ms);
}

bool pair_wait_refused(struct pair *pp, uint64_t epoch, int timeout_ms)
{
	return pair_wait_epoch(pp, &pp->refused, epoch, timeout_ms);
}

rct_status_t pair_wait_lost(struct pair *pp, int timeout_ms)
{
	struct timespec ts;
	rct_status_t st;

	pair_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&pp->lock);
	while (pp->lost == RCT_OK && !pp->done &&
	       pthread_cond_timedwait(&pp->cond, &pp->lock, &ts) == 0)
		;
	st = pp->lost;
	pthread_mutex_unlock(&pp->lock);
	return st;
}

/* Before the real primary: one holding another key, which must be turned away. */
static void pair_impostor(struct pair *pp, void *arg)
{
	static const uint8_t other[32] = {0x66, 0x6f, 0x65};
	rct_status_t *status_p = arg;
	const uint8_t *mine = pp->o.ppsk;
	struct rct_session *evil;
	struct rct_region *r;

	pp->o.ppsk = other;
	*status_p = pair_session(pp, RCT_ROLE_PRIMARY, &evil);
	pp->o.ppsk = mine;
	cr_assert_eq(*status_p, RCT_OK);
	cr_assert_eq(rct_region_register(evil, 7, pp->pram, pp->o.size, &r), RCT_OK);
	*status_p = rct_session_connect(evil, pp->o.addr, pp->port);
	cr_assert_null(r->rkey, "the impostor imported a remote key");
	rct_session_destroy(evil);
}

void pair_run_impostor_first(const char *backend, const char *addr, unsigned lanes)
{
	static const uint8_t key[32] = {0x6b, 0x65, 0x79};
	rct_status_t evil = RCT_OK, st;
	struct pair_opts o = {.backend = backend,
			      .addr = addr,
			      .lanes = lanes,
			      .size = 4u << 20,
			      .auto_flush = true,
			      .ppsk = key,
			      .spsk = key,
			      .before_connect = pair_impostor,
			      .before_arg = &evil};
	struct pair pp;

	st = pair_open(&pp, &o);
	cr_assert_eq(evil, RCT_ERR_AUTH, "the impostor: %s", rct_status_str(evil));
	cr_assert_eq(st, RCT_OK, "the real primary after the impostor (%s): %s", backend,
		     rct_status_str(st));
	cr_assert_eq(pp.s->turned_away, 1);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 10000));
	cr_assert(pp.equal, "the secondary's RAM differs from the primary's epoch 0 (%s)", backend);
	pair_close(&pp);
}

#define E2E_SIZE (32u << 20)

/* Full sync, ten checkpoints of scattered pages and moving long runs, one empty
 * checkpoint; each verified byte for byte, device state included. */
void pair_run_e2e(const char *backend, const char *addr, unsigned lanes, unsigned threads)
{
	struct pair_opts o = {.backend = backend,
			      .threads = threads,
			      .addr = addr,
			      .lanes = lanes,
			      .size = E2E_SIZE,
			      .max_put = 256 << 10,
			      .auto_flush = true,
			      .scribble = 16};
	uint64_t *bits = calloc(rct_bitmap_words(E2E_SIZE / 4096), sizeof(uint64_t));
	uint8_t *dev = malloc(60000);
	struct pair pp;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(rct_session_lanes(pp.p), lanes);
	for (size_t i = 0; i < 60000; i++)
		dev[i] = (uint8_t)(i * 7);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, dev, 60000), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 5000));
	cr_assert(pp.equal, "full sync differs");
	for (unsigned e = 1; e <= 10; e++) {
		/* scattered pages, plus a long run (crossing max_put) that moves */
		pair_dirty(&pp, bits, 200 * e, e * 500, 64 * e);
		dev[e] ^= 0xff;
		cr_assert_eq(pair_ckpt(&pp, e, bits, dev, 60000 - 1000 * e), RCT_OK);
		cr_assert(pair_wait_flushed(&pp, e, 5000), "epoch %u not flushed", e);
		cr_assert(pp.equal, "secondary RAM differs at epoch %u (%u lanes)", e, lanes);
		cr_assert_eq(pp.devstate_len, 60000 - 1000 * e);
		cr_assert_arr_eq(pp.devstate, dev, 60000 - 1000 * e);
	}
	/* An empty checkpoint is a checkpoint too. */
	memset(bits, 0, rct_bitmap_words(E2E_SIZE / 4096) * 8);
	cr_assert_eq(pair_ckpt(&pp, 11, bits, NULL, 0), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 11, 5000));
	cr_assert(pp.equal);
	cr_assert_eq(pp.devstate_len, 0);
	pair_close(&pp);
	free(bits);
	free(dev);
}

/* The primary vanishes mid-checkpoint (no GOODBYE, no COMMIT): the secondary
 * reports the loss with the last committed epoch, and its guest RAM is what
 * the last flush left, byte for byte. */
void pair_run_peer_loss(const char *backend, const char *addr)
{
	struct pair_opts o = {.backend = backend,
			      .addr = addr,
			      .lanes = 2,
			      .size = 8u << 20,
			      .auto_flush = true,
			      .scribble = 4};
	uint64_t *bits = calloc(rct_bitmap_words((8u << 20) / PAIR_PAGE), sizeof(uint64_t));
	uint8_t *saved = malloc(8u << 20);
	struct pair pp;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 5000));
	pair_dirty(&pp, bits, 100, 10, 40);
	cr_assert_eq(pair_ckpt(&pp, 1, bits, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 5000));
	memcpy(saved, pp.sram, 8u << 20);

	/* Epoch 2: pages go out, then the primary dies before COMMIT. */
	pair_dirty(&pp, bits, 500, 100, 300);
	cr_assert_eq(rct_ckpt_begin(pp.p, 2, 0), RCT_OK);
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, pp.npages), RCT_OK);
	cr_assert_eq(rct_session_progress(pp.p, 10), RCT_OK);
	pp.p->state = RCT_SESSION_FAILED; /* as if killed: no GOODBYE on destroy */
	rct_session_destroy(pp.p);
	pp.p = NULL;

	cr_assert_eq(pair_wait_lost(&pp, 10000), RCT_ERR_PEER_LOST);
	cr_assert_eq(pp.lost_epoch, 1);
	cr_assert_eq(pp.lost_discarded, 2, "the event names %llu as discarded, not epoch 2",
		     (unsigned long long)pp.lost_discarded);
	cr_assert_eq(pp.ready, 1, "a CKPT_READY was raised for the lost epoch");
	cr_assert_eq(memcmp(pp.sram, saved, 8u << 20), 0, "guest RAM changed");
	pair_close(&pp);
	free(bits);
	free(saved);
}

/* The secondary (its QPs, endpoints or sockets) vanishes mid-checkpoint: the
 * primary's commit fails with a fatal status within its deadline, never hangs. */
void pair_run_secondary_loss(const char *backend, const char *addr)
{
	struct pair_opts o = {.backend = backend,
			      .addr = addr,
			      .lanes = 2,
			      .size = 8u << 20,
			      .timeout_ms = 15000,
			      .auto_flush = true};
	uint64_t *bits = calloc(rct_bitmap_words((8u << 20) / PAIR_PAGE), sizeof(uint64_t));
	uint64_t t0;
	rct_status_t st;
	struct pair pp;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 15000));

	/* Stop the secondary's thread, then destroy it as if killed. */
	pthread_mutex_lock(&pp.lock);
	pp.stop = true;
	pthread_mutex_unlock(&pp.lock);
	pthread_join(pp.thread, NULL);
	pp.s->state = RCT_SESSION_FAILED; /* no GOODBYE */
	rct_session_destroy(pp.s);
	pp.s = NULL;

	pair_dirty(&pp, bits, 300, 0, 100);
	t0 = rct_now_ns();
	st = pair_ckpt(&pp, 1, bits, "dev", 3);
	cr_assert(rct_status_is_fatal(st), "commit to a vanished secondary returned %s",
		  rct_status_str(st));
	cr_assert_lt(rct_now_ns() - t0, 20ull * 1000000000, "took longer than the deadline");
	pair_close(&pp);
	free(bits);
}

void pair_run_session_fd(const char *backend, const char *addr)
{
	struct pair_opts o = {.backend = backend,
			      .addr = addr,
			      .lanes = 2,
			      .size = 8u << 20,
			      .auto_flush = true,
			      .scribble = 4,
			      .use_fd = true};
	uint64_t *bits = calloc(rct_bitmap_words((8u << 20) / PAIR_PAGE), sizeof(uint64_t));
	struct pair pp;
	unsigned wakes;
	int ms;

	cr_assert_eq(rct_session_arm(NULL, &ms), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_geq(rct_session_fd(pp.s), 0);
	cr_assert_eq(rct_session_fd(pp.s), rct_session_fd(pp.s), "one descriptor per session");
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 5000));
	cr_assert(pp.equal, "full sync differs");
	for (unsigned e = 1; e <= 5; e++) {
		pair_dirty(&pp, bits, 100 * e, e * 300, 32);
		cr_assert_eq(pair_ckpt(&pp, e, bits, "dev", 3), RCT_OK);
		cr_assert(pair_wait_flushed(&pp, e, 5000), "epoch %u not flushed", e);
		cr_assert(pp.equal, "secondary RAM differs at epoch %u", e);
	}
	pthread_mutex_lock(&pp.lock);
	wakes = pp.fd_wakes;
	pthread_mutex_unlock(&pp.lock);
	/* Each checkpoint's messages woke the sleeping secondary through its fd. */
	cr_assert_geq(wakes, 6, "the descriptor woke the secondary %u times for 6 checkpoints",
		      wakes);
	pair_close(&pp);
	free(bits);
}

void pair_run_accept_in_slices(const char *backend, const char *addr)
{
	struct pair_opts o = {.backend = backend,
			      .addr = addr,
			      .lanes = 2,
			      .size = 4u << 20,
			      .auto_flush = true,
			      .timeout_ms = 20000,
			      .accept_slice_ms = 1};
	uint64_t *bits = calloc(rct_bitmap_words((4u << 20) / 4096), sizeof(uint64_t));
	struct pair pp;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 10000));
	cr_assert(pp.equal, "full sync differs");
	pair_dirty(&pp, bits, 100, 10, 32);
	cr_assert_eq(pair_ckpt(&pp, 1, bits, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 10000));
	cr_assert(pp.equal, "epoch 1 differs");
	pair_close(&pp);
	free(bits);
}

void pair_run_second_primary(const char *backend, const char *addr)
{
	struct pair_opts o = {.backend = backend, .addr = addr, .lanes = 1, .size = 1 << 20};
	struct rct_region *r;
	struct rct_session *p;
	struct pair pp;
	rct_status_t st;
	uint64_t t0;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_session(&pp, RCT_ROLE_PRIMARY, &p), RCT_OK);
	cr_assert_eq(rct_region_register(p, 0, pp.pram, o.size, &r), RCT_OK);
	for (int i = 0; i < 2; i++) {
		t0 = rct_now_ns();
		st = rct_session_connect(p, pp.o.addr, pp.port);
		cr_log_info("%s: the second primary, try %d: %s after %.0f ms", backend, i + 1,
			    rct_status_str(st), (double)(rct_now_ns() - t0) / 1e6);
		cr_assert_eq(st, RCT_ERR_REFUSED, "try %d: %s", i + 1, rct_status_str(st));
		cr_assert_lt(rct_now_ns() - t0, 1000000000ull, "refused after %.0f ms",
			     (double)(rct_now_ns() - t0) / 1e6);
	}
	rct_session_destroy(p);
	pair_close(&pp);
}
