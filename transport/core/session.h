/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Session internals: the session and region objects, and what session.c
 * offers the other core files.  Each concept beside it has its header:
 * handshake.h, keepalive.h, region.h, auth.h, ckpt.h.
 */
#ifndef RCT_SESSION_H
#define RCT_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rct/rct.h>

#include "backend.h"
#include "bitmap.h"
#include "proto.h"

struct rct_flush_pool;

#define RCT_NO_EPOCH	      UINT64_MAX
#define RCT_EVENT_RING	      16
#define RCT_LANE_BATCH	      256	   /* runs handed to one put() call */
#define RCT_LANE_BATCH_BYTES  (8ull << 20) /* bytes handed to one put() call */
#define RCT_STAGING_MAX	      (1ull << 30)
#define RCT_FLUSH_THREADS_MAX 64 /* the secondary's flush helpers (flush.c), at most */
#define RCT_WAIT_FDS	      (RCT_MAX_LANES + 2) /* what a backend waits on, at most */
/* A connecting primary has this long for HELLO and AUTH before it is turned
 * away (rct_session_accept): a silent one must not hold the listener. */
#define RCT_ADMIT_NS (2000ull * 1000000)

enum rct_session_state {
	RCT_SESSION_NEW,
	RCT_SESSION_LISTENING,
	RCT_SESSION_ADMITTING, /* secondary: a primary's control lane is in, its HELLO and
				  AUTH are not yet checked; a failure turns it away */
	RCT_SESSION_CONNECTED,
	RCT_SESSION_FAILED,
};

enum rct_ckpt_state {
	RCT_CKPT_IDLE,	    /* primary: no checkpoint open; secondary: cache free */
	RCT_CKPT_OPEN,	    /* primary: begun, pages being put */
	RCT_CKPT_RECEIVING, /* secondary: BEGIN seen, waiting for COMMIT and the fence */
	RCT_CKPT_READY,	    /* secondary: committed, waiting for rct_ckpt_flush() */
};

/* All fields are owned by the session's caller (sessions are single-threaded). */
struct rct_region {
	struct rct_session *session;
	uint32_t id;
	char name[RCT_REGION_NAME_MAX + 1]; /* "" unless rct_region_set_name() */
	void *ram;			    /* guest RAM, the caller's */
	size_t size;
	uint64_t npages;
	uint64_t nwords;
	struct rct_be_mem *mem;	  /* primary: guest RAM; secondary: the colo cache */
	struct rct_be_rkey *rkey; /* primary: the secondary's cache */
	struct rct_dmap dirty;	  /* primary-dirty pages of the current epoch */
	struct rct_dmap local;	  /* secondary: pages its own guest dirtied */
	struct rct_dmap cached;	  /* secondary: cache pages that may not be zero */
	struct rct_dmap zeros;	  /* primary: this take's zero pages, not put; secondary:
				   * the epoch's, zeroed in the cache at its commit */
	bool zero_rest;		  /* secondary: a refused FULL: the next flush zeroes
				   * what it does not copy */
	int fd;			  /* the memory's file (rct_region_set_file()), or -1 */
	uint64_t foff;		  /* where the region starts in it */
	bool dirty_given;	  /* primary: rct_ckpt_dirty() called this epoch */
	bool flush_alone;	  /* secondary: its file may shrink under the mapping: only
				   * the caller's thread flushes it (flush.c) */
};

/* One data lane's share of the primary's current checkpoint. */
struct rct_lane {
	uint64_t bytes; /* bytes queued on it this epoch (the least loaded gets the next run) */
	struct rct_run *runs; /* runs not yet handed to put() (RCT_LANE_BATCH of them) */
	size_t nruns;
	uint64_t batch_bytes; /* bytes of those runs */
};

/*
 * A session.  Single-threaded: every field belongs to the caller's thread,
 * except where a sub-struct says otherwise.  Each concept keeps its state in
 * its own sub-struct, driven by its own file: auth (auth.c), ka (keepalive.c,
 * liveness.c), pri (ckpt_primary.c), sec (ckpt_secondary.c), wait (wait.c).
 * Beyond that, session.c and handshake.c only set them up at create and
 * handshake, stamp ka's send and receive times, and free them; the rest of
 * the struct is the session's lifecycle and configuration (those two files).
 */
struct rct_session {
	const struct rct_backend_ops *ops;
	struct rct_be_ctx *ctx;
	enum rct_role role;
	enum rct_session_state state;
	rct_status_t fail_status;
	char fail_text[RCT_ERROR_TEXT_MAX +
		       16]; /* the ERROR text that ended it, sent or received */
	bool goodbye;	    /* the peer closed the session with GOODBYE */

	/* Configuration: set at create, lanes and max_put agreed by the handshake. */
	unsigned lanes;
	uint32_t page_size;
	unsigned page_shift;
	uint64_t max_put;
	int timeout_ms;
	uint64_t staging_size;
	uint64_t generation;  /* primary: announced; secondary: lowest accepted, then the peer's */
	uint64_t turned_away; /* secondary: primaries that failed HELLO or AUTH */
	unsigned flush_threads;		   /* secondary: helpers its flush may use (flush.c) */
	struct rct_flush_pool *flush_pool; /* started at the first flush that needs it */
	bool flush_pool_failed;		   /* they could not start: logged, not retried */
	/* Secondary, after a base sync: the thread that maps guest RAM and the
	 * cache for the flushes (ckpt_secondary.c); joined by destroy. */
	struct rct_prefault *prefault;

	/* Peer authentication (auth.c).  psk is the key AUTH proves: the host's
	 * pre-shared key, or the pairing key derived from it (host_psk kept). */
	struct rct_session_auth {
		bool has_psk;
		uint8_t psk[RCT_PSK_LEN];
		bool has_host_psk;
		uint8_t host_psk[RCT_PSK_LEN];
		char pairing_id[RCT_PAIRING_ID_MAX]; /* "" until rct_session_set_pairing() */
		uint8_t np[RCT_AUTH_NONCE_LEN], ns[RCT_AUTH_NONCE_LEN];
		uint8_t hello[64]; /* the primary's HELLO as encoded */
		size_t hello_len;
	} auth;

	/* Keepalive (keepalive.c), armed once the handshake is over.  The
	 * liveness channel (liveness.c, RCT_LIVENESS_THREAD) replaces the
	 * in-band heartbeats; its own thread shares only *live, through atomics. */
	struct rct_session_keepalive {
		bool armed;
		bool peer_seen;	      /* a message arrived since the handshake ended */
		uint64_t interval_ns; /* heartbeat interval */
		uint64_t t_rx_last;   /* last control message from the peer */
		uint64_t t_tx_last;   /* last control message to the peer */
		uint64_t seq;
		unsigned liveness; /* rct_liveness_flags */
		struct rct_live *live;
		char listen_addr[64]; /* secondary: where the liveness socket binds */
		uint64_t t_driven;    /* last rct_session_tick(): the session was driven */
	} ka;

	struct rct_region **regions;
	unsigned nregions;

	/* Device-state staging: primary: a local source buffer; secondary: the
	 * remote-writable target.  remote_staging_size is the peer's capacity. */
	struct rct_be_mem *staging;
	struct rct_be_rkey *staging_rkey;
	uint64_t remote_staging_size;
	/* The secondary's staging holds two slots of staging_slot bytes: a
	 * device state is put into the one that does not hold the last committed
	 * one (devstate_slot, -1: none yet), so that the committed one is handed
	 * back from staging without a copy and an epoch in flight never touches
	 * it.  Both sides keep devstate_slot by the same rule (ckpt.h). */
	uint64_t staging_slot;
	int devstate_slot;

	/* The checkpoint, both roles: its state and the epochs behind it. */
	enum rct_ckpt_state ckpt;
	uint64_t epoch;
	unsigned flags;
	uint64_t last_committed;
	uint64_t last_consistent; /* last committed epoch that is an image (not LIVE) */

	/* The primary's checkpoint (ckpt_primary.c). */
	struct rct_ckpt_primary {
		bool flushed;	    /* the secondary flushed last_committed */
		bool acked;	    /* ACK(COMMITTED) for epoch seen */
		uint64_t fence_seq; /* last fence token sent */
		struct rct_ckpt_stats stats;
		uint64_t t_begin, t_first_put, t_commit_sent, t_acked;
		uint64_t bitmap_words_sent; /* BITMAP and ZEROS words */
		uint64_t zero_pages;	    /* named by ZEROS this epoch, not put */
		uint64_t stream_pages;	    /* pages rct_ckpt_stream() sent this epoch */
		bool streaming;		    /* inside rct_ckpt_stream(): its puts do not start the
					  transfer's clock (t_first_put) */
		bool streamed;		    /* rct_ckpt_stream() was called this epoch */
		uint64_t t_pause;	    /* first call of the pause (dirty, devstate, commit) */
		uint64_t devstate_len;
		bool devstate_given;
		unsigned devstate_put_slot; /* where this epoch's device state went */
		struct rct_lane lane[RCT_MAX_LANES];
		/* Full-sync progress, read by other threads (rct_session_sync_progress). */
		_Atomic uint64_t sync_total, sync_done, sync_t0, sync_t1;
		_Atomic int sync_active;
	} pri;

	/* The secondary's checkpoint (ckpt_secondary.c): what arrived for this epoch. */
	struct rct_ckpt_secondary {
		bool commit_seen;
		struct {
			uint64_t pages, bytes, bitmap_words, devstate_len, fence;
		} commit;
		uint64_t bitmap_words_rcvd;
		uint64_t pages_rcvd; /* bits set in the BITMAP words received */
		uint64_t zeros_rcvd; /* bits set in the ZEROS words received (not put) */
		bool devstate_seen;
		uint64_t devstate_len;	       /* announced by DEVSTATE */
		size_t devstate_committed_len; /* in staging slot devstate_slot */
	} sec;

	struct rct_event events[RCT_EVENT_RING];
	unsigned ev_head, ev_count;

	/* The caller's descriptor (wait.c): an epoll set of the backend's. */
	struct rct_session_wait {
		int epfd; /* -1 until rct_session_fd() */
		unsigned n;
		struct pollfd fds[RCT_WAIT_FDS]; /* what the epoll set holds */
	} wait;

	uint8_t msgbuf[RCT_MSG_MAX];
	uint64_t lebuf[RCT_BITMAP_MAX_ITEMS];
};

/* Internal: create a session on an explicit backend (tests use a fault-injecting one). */
rct_status_t rct_session_create_ops(const struct rct_session_params *params,
				    const struct rct_backend_ops *ops,
				    struct rct_session **session_p);

/* Mark the session failed (first cause wins), queue PEER_LOST; returns the status. */
rct_status_t rct_session_fail(struct rct_session *s, rct_status_t status);

/* Encode and send one control message; fails the session on error. */
rct_status_t rct_session_send(struct rct_session *s, const struct rct_msg *msg);

/* Send ERROR(code, text) to the peer (best effort) and fail the session with @code. */
rct_status_t rct_session_proto_error(struct rct_session *s, rct_status_t code, const char *text);

/* Drive the backend once and dispatch every control message that arrived. */
rct_status_t rct_session_poll(struct rct_session *s, int timeout_ms);

/* Poll until *flag becomes true, the session fails, or @deadline_ns passes. */
rct_status_t rct_session_wait_flag(struct rct_session *s, const bool *flag, uint64_t deadline_ns,
				   const char *what);

void rct_session_event_push(struct rct_session *s, enum rct_event_type type, uint64_t epoch,
			    rct_status_t status);

/* A message every role handles the same way, after the handshake. */
rct_status_t rct_session_dispatch(struct rct_session *s, const struct rct_msg *m);

/* Receive and decode one control message, if one is there. */
rct_status_t rct_session_recv_one(struct rct_session *s, struct rct_msg *msg_p);

#endif /* RCT_SESSION_H */
