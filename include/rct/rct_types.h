/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rct's types shared by both libraries: the status codes, roles, checkpoint
 * flags, the per-checkpoint figures and the events.  librct (rct/rct.h, the
 * transport) and librct-client (rct/rct_client.h, the socket API to rctd)
 * both include it; a hypervisor that only talks to rctd needs nothing else
 * of librct and links nothing of it.
 *
 * field_mask, as in UCX: every struct that crosses the API carries one, first.
 *   - In a struct the caller fills (parameters), it names the fields given;
 *     the others take their defaults.
 *   - In a struct the library fills (stats, progress, events, states), the
 *     caller names the fields it wants and the library writes only those it
 *     knows, then sets field_mask to exactly the fields it wrote.  0 asks for
 *     every field of the struct's first version (*_FIELDS_V1), so a struct
 *     initialised with {0} gets them all.  An uninitialised field_mask asks
 *     for garbage: initialise the struct.
 * A struct can then grow at its end without breaking a program built against
 * an older header: that program's struct is never written past its fields.
 */
#ifndef RCT_RCT_TYPES_H
#define RCT_RCT_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Status codes.  Ranges by blast radius, as UCX does:
 *   0           success
 *   -1 .. -19   the call failed; the session is as it was before the call
 *   -20 .. -39  the session failed (its peer, a lane, the protocol)
 *   -40 .. -59  the session failed on a local resource (device, memory)
 * One rule: a call that returns a code of -20 or below has failed its
 * session (rct_status_is_fatal()); every later call on it returns a fatal
 * code too, and the session can only be destroyed.  A deadline that passes
 * while the peer should have answered fails the session as RCT_ERR_PEER_LOST;
 * RCT_ERR_TIMED_OUT is only returned where nothing was lost (no primary
 * came to an accept).
 */
typedef enum {
	RCT_OK = 0,
	RCT_ERR_INVALID_PARAM = -1, /**< a bad argument; nothing was done */
	RCT_ERR_STATE = -2,	    /**< call not valid in the session's state or role */
	RCT_ERR_AGAIN = -3,	    /**< nothing available now (e.g. no event) */
	RCT_ERR_TIMED_OUT = -4,	    /**< the deadline passed; the operation did not complete */
	RCT_ERR_NO_SPACE = -5,	    /**< a buffer or staging area is too small */
	RCT_ERR_NOT_FOUND = -6,	    /**< no such region, backend or epoch */
	RCT_ERR_UNSUPPORTED = -7,   /**< not supported by this backend or build */
	RCT_ERR_EXISTS = -8,	    /**< already registered */
	RCT_ERR_ADDR_IN_USE = -9,   /**< listen: the address and port are taken */
	RCT_ERR_REFUSED = -10,	    /**< connect: nothing listens there, or the secondary
					 has its primary already; the session can connect
					 again */

	RCT_ERR_PEER_LOST = -20, /**< peer closed, reset or stopped answering */
	RCT_ERR_PROTO = -21,	 /**< malformed or unexpected message from the peer */
	RCT_ERR_VERSION = -22,	 /**< the peer speaks an unsupported protocol version */
	RCT_ERR_IO = -23,	 /**< a lane failed (socket or queue-pair error) */
	RCT_ERR_ABORTED = -24,	 /**< the checkpoint was aborted */
	RCT_ERR_MISMATCH = -25,	 /**< the two sides' regions or parameters disagree */
	RCT_ERR_AUTH = -26,	 /**< peer authentication failed (no or another pre-shared key) */
	/** The COMMIT left, but its ACK did not come (the peer or the link failed,
	 *  or the deadline passed): the secondary may hold this epoch or not.  An
	 *  arbiter must ask the secondary (its last committed epoch) before it
	 *  decides which image is current. */
	RCT_ERR_OUTCOME_UNKNOWN = -27,

	RCT_ERR_NO_MEMORY = -40, /**< allocation or memory registration failed */
	RCT_ERR_NO_DEVICE = -41, /**< no usable device for the backend */
	RCT_ERR_SYSTEM = -42,	 /**< an unexpected system call failure (see the log) */
} rct_status_t;

/** True when @a status means the session failed and can only be destroyed (-20 and below). */
static inline int rct_status_is_fatal(rct_status_t status)
{
	return status <= RCT_ERR_PEER_LOST;
}

enum rct_role {
	RCT_ROLE_PRIMARY = 1,
	RCT_ROLE_SECONDARY = 2,
};

/** Flags of rct_ckpt_begin(). */
enum rct_ckpt_flags {
	/** Send every page of every region (first sync); dirty bitmaps are ignored. */
	RCT_CKPT_FULL = 1u << 0,
	/** With RCT_CKPT_FULL: a resync while the guest keeps running.  The pages
	 *  are read as they change, so this epoch is not an image to resume from;
	 *  the next (paused, incremental) checkpoint makes the secondary
	 *  consistent again.  Until then a failover has no image (epoch -1). */
	RCT_CKPT_LIVE = 1u << 1,
	/** With RCT_CKPT_FULL | RCT_CKPT_LIVE, as the session's first epoch: the
	 *  sync that seeds the secondary's colo cache while the secondary's guest
	 *  RAM already holds the image the primary's dirty tracking starts from
	 *  (the hypervisor's own migration put it there, as QEMU COLO's does).
	 *  The secondary's rct settles the epoch itself, into the cache only:
	 *  guest RAM is not touched and its hypervisor gets no CKPT_READY.  The
	 *  next checkpoint carries every page dirtied since that image and is the
	 *  first the secondary applies; so no full checkpoint lands in a pause. */
	RCT_CKPT_BASE = 1u << 2,
};

/** Bits of rct_ckpt_stats.field_mask. */
enum rct_ckpt_stats_field {
	RCT_CKPT_STATS_FIELD_EPOCH = 1u << 0,
	RCT_CKPT_STATS_FIELD_PAGES = 1u << 1,
	RCT_CKPT_STATS_FIELD_BYTES = 1u << 2,
	RCT_CKPT_STATS_FIELD_RUNS = 1u << 3,
	RCT_CKPT_STATS_FIELD_DEVSTATE_BYTES = 1u << 4,
	RCT_CKPT_STATS_FIELD_TRANSFER_NS = 1u << 5,
	RCT_CKPT_STATS_FIELD_COMMIT_NS = 1u << 6,
	RCT_CKPT_STATS_FIELD_TOTAL_NS = 1u << 7,
	RCT_CKPT_STATS_FIELD_FLUSH_NS = 1u << 8,
	RCT_CKPT_STATS_FIELD_FLUSH_PAGES = 1u << 9,
	RCT_CKPT_STATS_FIELDS_V1 = (1u << 10) - 1,
	RCT_CKPT_STATS_FIELDS_ALL = RCT_CKPT_STATS_FIELDS_V1, /**< what this header knows */
};

/** Per-checkpoint figures.  Times in nanoseconds. */
struct rct_ckpt_stats {
	uint64_t field_mask; /**< rct_ckpt_stats_field: asked by the caller, set by the library */
	uint64_t epoch;
	uint64_t pages; /**< pages sent (primary) or flushed (secondary) */
	uint64_t bytes; /**< page bytes sent (primary) */
	uint64_t runs;	/**< contiguous runs (puts) the pages formed */
	uint64_t devstate_bytes;
	uint64_t transfer_ns; /**< primary: first put posted -> the secondary acknowledged
				   that every byte is in its memory */
	uint64_t commit_ns;   /**< primary: COMMIT sent -> ACK received */
	uint64_t total_ns;    /**< primary: begin -> commit returned */
	uint64_t flush_ns;    /**< secondary: cache -> guest RAM copy */
	uint64_t flush_pages; /**< secondary: pages copied (primary | secondary dirty) */
};

/** Bits of rct_sync_progress.field_mask. */
enum rct_sync_progress_field {
	RCT_SYNC_PROGRESS_FIELD_PAGES_TOTAL = 1u << 0,
	RCT_SYNC_PROGRESS_FIELD_PAGES_DONE = 1u << 1,
	RCT_SYNC_PROGRESS_FIELD_ELAPSED_NS = 1u << 2,
	RCT_SYNC_PROGRESS_FIELD_ACTIVE = 1u << 3,
	RCT_SYNC_PROGRESS_FIELDS_V1 = (1u << 4) - 1,
	RCT_SYNC_PROGRESS_FIELDS_ALL = RCT_SYNC_PROGRESS_FIELDS_V1,
};

/** Progress of the current or last full sync (RCT_CKPT_FULL). */
struct rct_sync_progress {
	uint64_t field_mask;  /**< rct_sync_progress_field: asked, then set by the library */
	uint64_t pages_total; /**< pages of the sync; 0 when none ran yet */
	uint64_t pages_done;  /**< pages whose puts completed */
	uint64_t elapsed_ns;  /**< since the sync started (until it ended, when done) */
	int active;	      /**< 1 while the sync runs */
};

enum rct_event_type {
	RCT_EVENT_NONE = 0,
	RCT_EVENT_CKPT_READY = 1, /**< epoch is whole in the cache; call rct_ckpt_flush() */
	/** The session failed; status says why.  On a secondary this is the
	 *  failover event, with QEMU COLO's contract: epoch is the last
	 *  committed consistent epoch (-1: none, e.g. a resync had not
	 *  finished).  If that epoch is READY and not yet flushed (its
	 *  CKPT_READY came before this event), flush it, then load its device
	 *  state: that is the image to resume from.  Otherwise the secondary's
	 *  guest simply continues its own state (the last flushed image plus
	 *  what it wrote since): nothing is applied.  A checkpoint that was in
	 *  flight (begun, never committed) is discarded, never applied, and
	 *  named in discarded. */
	RCT_EVENT_PEER_LOST = 2,
	/** Primary: the secondary's hypervisor refused ready epoch @a epoch
	 *  (rct_ckpt_refuse(): its device state would not load).  The session
	 *  goes on; its guest RAM stays at the epoch it last flushed and the
	 *  refused epoch's pages are applied with the next flushed one, so the
	 *  next committed checkpoint makes the secondary whole again. */
	RCT_EVENT_CKPT_REFUSED = 3,
	/** rctd only (librct-client): this host's rctd is stopping (SIGTERM or
	 *  SIGINT).  The connection's session ends on this host (its peer is told
	 *  GOODBYE) and the connection closes next.  A local event: it says
	 *  nothing about the peer and is never a failover.  status is
	 *  RCT_ERR_ABORTED, epoch UINT64_MAX. */
	RCT_EVENT_RCTD_STOPPING = 4,
};

/** Bits of rct_event.field_mask. */
enum rct_event_field {
	RCT_EVENT_FIELD_TYPE = 1u << 0,
	RCT_EVENT_FIELD_EPOCH = 1u << 1,
	RCT_EVENT_FIELD_STATUS = 1u << 2,
	RCT_EVENT_FIELD_DISCARDED = 1u << 3,
	RCT_EVENT_FIELDS_V1 = (1u << 4) - 1,
	RCT_EVENT_FIELDS_ALL = RCT_EVENT_FIELDS_V1,
};

struct rct_event {
	uint64_t field_mask; /**< rct_event_field: asked by the caller, set by the library */
	enum rct_event_type type;
	uint64_t epoch;	     /**< CKPT_READY: the epoch; PEER_LOST: see above */
	rct_status_t status; /**< PEER_LOST: the cause */
	uint64_t discarded;  /**< PEER_LOST on a secondary: the epoch that was in flight
				  and is discarded; -1 (UINT64_MAX) none */
};

/* What a library delivers of @in (field_mask: what it holds) into the
 * caller's @out (field_mask: what the caller asked, 0 = the first version's). */
#define RCT_FIELDS_DELIVER(out, in, v1)                                                            \
	(((out)->field_mask ? (out)->field_mask : (uint64_t)(v1)) & (in)->field_mask)
#define RCT_FIELD_COPY(out, in, mask, bit, f)                                                      \
	do {                                                                                       \
		if ((mask) & (bit))                                                                \
			(out)->f = (in)->f;                                                        \
	} while (0)

/** Copy the fields of @a in that @a out asks for (see field_mask above). */
static inline void rct_ckpt_stats_copy(struct rct_ckpt_stats *out, const struct rct_ckpt_stats *in)
{
	uint64_t m = RCT_FIELDS_DELIVER(out, in, RCT_CKPT_STATS_FIELDS_V1);

	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_EPOCH, epoch);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_PAGES, pages);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_BYTES, bytes);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_RUNS, runs);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_DEVSTATE_BYTES, devstate_bytes);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_TRANSFER_NS, transfer_ns);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_COMMIT_NS, commit_ns);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_TOTAL_NS, total_ns);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_FLUSH_NS, flush_ns);
	RCT_FIELD_COPY(out, in, m, RCT_CKPT_STATS_FIELD_FLUSH_PAGES, flush_pages);
	out->field_mask = m;
}

/** Copy the fields of @a in that @a out asks for (see field_mask above). */
static inline void rct_sync_progress_copy(struct rct_sync_progress *out,
					  const struct rct_sync_progress *in)
{
	uint64_t m = RCT_FIELDS_DELIVER(out, in, RCT_SYNC_PROGRESS_FIELDS_V1);

	RCT_FIELD_COPY(out, in, m, RCT_SYNC_PROGRESS_FIELD_PAGES_TOTAL, pages_total);
	RCT_FIELD_COPY(out, in, m, RCT_SYNC_PROGRESS_FIELD_PAGES_DONE, pages_done);
	RCT_FIELD_COPY(out, in, m, RCT_SYNC_PROGRESS_FIELD_ELAPSED_NS, elapsed_ns);
	RCT_FIELD_COPY(out, in, m, RCT_SYNC_PROGRESS_FIELD_ACTIVE, active);
	out->field_mask = m;
}

/** Copy the fields of @a in that @a out asks for (see field_mask above). */
static inline void rct_event_copy(struct rct_event *out, const struct rct_event *in)
{
	uint64_t m = RCT_FIELDS_DELIVER(out, in, RCT_EVENT_FIELDS_V1);

	RCT_FIELD_COPY(out, in, m, RCT_EVENT_FIELD_TYPE, type);
	RCT_FIELD_COPY(out, in, m, RCT_EVENT_FIELD_EPOCH, epoch);
	RCT_FIELD_COPY(out, in, m, RCT_EVENT_FIELD_STATUS, status);
	RCT_FIELD_COPY(out, in, m, RCT_EVENT_FIELD_DISCARDED, discarded);
	out->field_mask = m;
}

#ifdef __cplusplus
}
#endif
#endif /* RCT_RCT_TYPES_H */
