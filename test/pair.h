/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test harness: a primary and a secondary session in one process, the
 * secondary driven by its own thread as a hypervisor would drive it (progress,
 * flush on CKPT_READY, then its own guest dirties a few pages).
 */
#ifndef RCT_TEST_PAIR_H
#define RCT_TEST_PAIR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rct/rct.h>

#include "core/backend.h"

struct pair;

struct pair_opts {
	const struct rct_backend_ops *ops; /* NULL: the real backend named by backend */
	const char *backend;		   /* default "tcp" */
	const char *addr;		   /* default "127.0.0.1" */
	unsigned lanes;
	unsigned threads;	       /* helper threads of the primary's data path */
	size_t size;		       /* region bytes */
	uint64_t max_put;	       /* 0: default */
	int timeout_ms;		       /* 0: 5000 */
	int heartbeat_ms;	       /* 0: 2000 (the test's main thread does not poll between
				       checkpoints; heartbeat tests set their own) */
	bool auto_flush;	       /* flush every ready checkpoint */
	unsigned scribble;	       /* pages the secondary guest dirties after a flush */
	const uint64_t *scribble_bits; /* and these pages too (a bitmap), if not NULL */
	bool no_snapshot;	       /* skip the snapshot and the comparison (equal stays
				       false): the test compares by itself */
	const uint8_t *ppsk, *spsk;    /* pre-shared keys of the primary and secondary, or NULL */
	unsigned liveness; /* rct_liveness_flags of both sides (0: in-band heartbeats) */
	const char *ppairing, *spairing; /* pairing identities (rct_session_set_pairing), or NULL */
	const uint8_t *ppkey, *spkey;	 /* their pairing keys, or NULL */
	bool use_fd; /* the secondary's thread sleeps on rct_session_fd() (rct_session_arm()) */
	const char *pname, *sname; /* region names (rct_region_set_name), or NULL */
	uint64_t refuse_mask;	   /* epochs < 64 whose READY the secondary refuses (auto_flush) */
	/* Both RAMs are memfds given to rct (rct_region_set_file): the primary's
	 * holds data in pages p % 8 == 0 and explicit zero pages at p % 8 == 1,
	 * the rest holes; the secondary's holds 0xee in its first half. */
	bool sparse;
	int flush_threads; /* the secondary's flush helpers: 0 the library's default, -1 none */
	/* Called once the secondary listens and accepts, before the primary
	 * connects (a hostile peer goes first), or NULL. */
	void (*before_connect)(struct pair *pp, void *arg);
	void *before_arg;
	/* > 0: the secondary accepts with rct_session_accept_within() in waits
	 * of this many ms (rctd's slices) until a primary is in. */
	int accept_slice_ms;
};

struct pair {
	struct pair_opts o;
	struct rct_session *p, *s;
	struct rct_region *pr, *sr;
	uint8_t *pram, *sram, *snap; /* primary RAM, secondary RAM, primary snapshot */
	int pfd, sfd;		     /* sparse: their memfds, else -1 */
	uint64_t npages;
	uint16_t port;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, done;
	bool hold; /* the secondary's thread stops driving its session (a stalled host) */
	bool held; /* ... and it has stopped */
	uint64_t ready, flushed; /* last epochs seen ready / flushed, UINT64_MAX none */
	uint64_t refused;	 /* last epoch refused (refuse_mask), UINT64_MAX none */
	bool equal;		 /* at the last flush, secondary RAM == primary snapshot */
	rct_status_t lost;	 /* PEER_LOST status, RCT_OK while connected */
	rct_status_t accept_status;
	uint64_t lost_epoch;
	uint64_t lost_discarded; /* the PEER_LOST event's epoch in flight, UINT64_MAX none */
	unsigned fd_wakes;	 /* use_fd: sleeps that ended with the descriptor readable */
	uint64_t rng;
	uint8_t devstate[1 << 16];
	size_t devstate_len;
};

/* Open a connected pair; returns RCT_OK or the failing status. */
rct_status_t pair_open(struct pair *pp, const struct pair_opts *o);
void pair_close(struct pair *pp);

/* Dirty @n random pages of the primary (and the run [first, first+len) if len). */
void pair_dirty(struct pair *pp, uint64_t *bits, unsigned n, uint64_t first, uint64_t len);

/* One checkpoint; @bits NULL means full.  Snapshots the primary's RAM first. */
rct_status_t pair_ckpt(struct pair *pp, uint64_t epoch, const uint64_t *bits, const void *dev,
		       size_t dev_len);

/* Wait until the secondary flushed @epoch (true) or lost its peer/timed out (false). */
bool pair_wait_flushed(struct pair *pp, uint64_t epoch, int timeout_ms);
/* The same for an epoch the secondary refuses (refuse_mask). */
bool pair_wait_refused(struct pair *pp, uint64_t epoch, int timeout_ms);
/* Wait until the secondary lost its peer; returns that status. */
rct_status_t pair_wait_lost(struct pair *pp, int timeout_ms);

/* A primary with another key connects first and is turned away; the real one
 * then pairs with the same listening secondary, verified (Criterion asserts). */
void pair_run_impostor_first(const char *backend, const char *addr, unsigned lanes);

/* A second primary connects to a secondary that has its primary: refused at
 * once (RCT_ERR_REFUSED within a second), and again on a second try from the
 * same session (Criterion asserts). */
void pair_run_second_primary(const char *backend, const char *addr);

/* The end-to-end scenario every real backend runs (Criterion asserts inside). */
void pair_run_e2e(const char *backend, const char *addr, unsigned lanes, unsigned threads);
/* The primary dies mid-checkpoint; the secondary must report it, RAM untouched. */
void pair_run_peer_loss(const char *backend, const char *addr);
/* The secondary dies mid-checkpoint; the primary's commit must fail, not hang. */
void pair_run_secondary_loss(const char *backend, const char *addr);
/* Checkpoints with the secondary driven through its descriptor, as an event loop would. */
void pair_run_session_fd(const char *backend, const char *addr);
/* A primary that comes while the secondary waits in slices of 1 ms (its
 * handshake far longer than one) pairs, and its checkpoints land. */
void pair_run_accept_in_slices(const char *backend, const char *addr);

#endif
