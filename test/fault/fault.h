/* SPDX-License-Identifier: BSD-3-Clause */
/* rct-fault's shared objects: rct_fault.c (daemons, guests, the kill and
 * link-cut scenarios, main) and fault_hostile.c (hostile and cross-pairing). */
#ifndef RCT_FAULT_H
#define RCT_FAULT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rct/rct_client.h>

#include "harness.h"

#define PAGE	   4096u
#define REGION_ID  0
#define SNAPS	   4  /* snapshot ring: see fault_primary_ckpt() */
#define SCRIB_MAX  64 /* pages the secondary's guest writes between checkpoints, kept */
#define NS	   "rctf-s"
#define VETH_P	   "rctf0"
#define VETH_S	   "rctf1"
#define ADDR_P	   "10.79.0.1"
#define ADDR_S	   "10.79.0.2"
#define IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define MAX_EPOCHS 100000

enum phase { PH_RUNNING, PH_SNAPSHOT, PH_BEGIN, PH_DIRTY, PH_DEVSTATE, PH_COMMIT, PH_NR };

struct opts {
	const char *rctd;
	const char *backend;
	uint64_t size;
	unsigned kill_primary, kill_secondary, link_cut;
	const char *link;	/* --link P,S,ADDR: an existing veth pair, NULL: rct-fault's own */
	unsigned detect_max_ms; /* a cut noticed later fails the trial (0: no bound) */
	bool hostile;
	int heartbeat_ms;
	uint64_t seed;
	unsigned lanes;
};

struct daemon {
	pid_t pid;
	char sock[160];
	char log[160];
	char state[160];
};

/* The replicated pair every trial runs on (primary + secondary sessions), shared
 * between its threads; a trial is one injected fault and its checks. */
struct fault_pair {
	const struct opts *o;
	struct harness_guests g; /* the primary's guest, the secondary's RAM, the bitmaps */
	uint64_t npages;
	uint8_t *snap[SNAPS];
	uint64_t snap_epoch[SNAPS];

	/* Secondary thread. */
	struct rct_client *sc;
	pthread_t sthread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool sstop;	     /* the thread is asked to end */
	bool lost;	     /* PEER_LOST seen */
	uint64_t lost_epoch; /* its failover epoch */
	rct_status_t lost_status;
	uint64_t t_lost;    /* when the client got it */
	uint64_t flushed;   /* last epoch flushed (UINT64_MAX: none) */
	bool flushed_equal; /* RAM and device state equal the snapshot at that flush */
	char mismatch[160];
	/* The failover contract: at PEER_LOST the guest RAM must be the last
	 * flushed image plus the secondary guest's own writes since (kept here),
	 * nothing of an epoch in flight; the event names that epoch. */
	uint8_t *scrib;
	uint64_t scrib_page[SCRIB_MAX];
	unsigned nscrib;
	uint64_t lost_discarded;
	bool failover_equal;
	char failover_why[160];
	uint64_t rng;

	/* Primary. */
	struct rct_client *pc;
	_Atomic int phase;	    /* enum phase */
	_Atomic uint64_t epoch;	    /* the checkpoint in flight or last done */
	_Atomic uint64_t committed; /* last epoch whose commit returned 0 (UINT64_MAX none) */
	_Atomic bool primary_done;  /* the primary's loop ended */
	uint64_t phase_ns[PH_NR];   /* time the primary spent in each phase */
	uint64_t t_phase;
	void *devbuf, *sdevbuf; /* the primary's and the secondary's expected blobs */
	size_t devcap, sdevcap;
};

struct tally {
	unsigned trials, consistent, lost;
	double detect_ms[1024];
	unsigned ndetect;
	double sdetect_ms[1024]; /* the secondary's, where it has to notice too */
	unsigned nsdetect;
	unsigned phases[PH_NR];
};

/* The pairing key of the VM of every trial (made with the host key). */
extern uint8_t pairing_key[RCT_IPC_PAIRING_KEY_LEN];

/* rct_fault.c */
bool daemon_alive(struct daemon *d);
void daemon_kill(struct daemon *d, int sig);
int daemon_start(const struct opts *o, struct daemon *d, const char *name, const char *ns,
		 bool psk);
/* The same, serving @allow_uid too (its socket open to it), with more
 * arguments @args (NULL-terminated, or NULL) and RLIMIT_NOFILE @nofile (> 0). */
int daemon_start_with(const struct opts *o, struct daemon *d, const char *name, const char *ns,
		      bool psk, const char *allow_uid, const char *const *args, unsigned nofile);
int primary_start(struct fault_pair *r, struct daemon *d, const char *addr, uint16_t port);
int secondary_start(struct fault_pair *r, struct daemon *d, const char *addr, const char *name);
int session_open(const struct opts *o, struct daemon *d, enum rct_role role, const char *name,
		 int memfd, int bits_fd, uint64_t size, struct rct_client **c_p);
struct rct_client_session session_params(const struct opts *o, enum rct_role role,
					 const char *name);
void tally_count(struct tally *t, bool ok);
void trial_end(struct fault_pair *r, struct daemon *d);
void secondary_stop(struct fault_pair *r);
bool secondary_wait_flushed(struct fault_pair *r, uint64_t epoch, int timeout_ms);
/* @n checkpoints from epoch @first, each flushed and verified byte for byte;
 * 0, or -1 with why. */
int pair_checkpoints(struct fault_pair *r, uint64_t first, unsigned n, char *why, size_t len);

/* fault_hostile.c */
void scenario_hostile(struct fault_pair *r, struct tally *t);
void scenario_cross_pairing(struct fault_pair *r, struct daemon *sd, struct tally *t);

/* fault_tenant.c */
void scenario_tenants(struct fault_pair *r, struct tally *t);

#endif /* RCT_FAULT_H */
