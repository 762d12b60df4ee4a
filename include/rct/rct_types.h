/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rct's types shared by both libraries: the status codes, roles, checkpoint
 * flags, the per-checkpoint figures and the events.  librct (rct/rct.h, the
 * transport) and librct-client (rct/rct_client.h, the socket API to rctd)
 * both include it; a hypervisor that only talks to rctd needs nothing else
 * of librct and links nothing of it.
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
};

/** Per-checkpoint figures.  Times in nanoseconds. */
struct rct_ckpt_stats {
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

/** Progress of the current or last full sync (RCT_CKPT_FULL). */
struct rct_sync_progress {
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
};

struct rct_event {
	enum rct_event_type type;
	uint64_t epoch;	     /**< CKPT_READY: the epoch; PEER_LOST: see above */
	rct_status_t status; /**< PEER_LOST: the cause */
	uint64_t discarded;  /**< PEER_LOST on a secondary: the epoch that was in flight
				  and is discarded; -1 (UINT64_MAX) none */
};

#ifdef __cplusplus
}
#endif
#endif /* RCT_RCT_TYPES_H */
