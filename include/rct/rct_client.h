/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * librct-client: the rctd socket API (rct_ipc.h, docs/ipc.md) for C
 * hypervisors.  It carries no transport: the local rctd moves the pages.
 *
 * One client is one connection to rctd and drives at most one session (one
 * VM).  Guest RAM stays in the hypervisor's memfd, which rctd maps; the dirty
 * bitmap of each region lives in a second memfd both sides map, so a
 * checkpoint passes no page data and no bitmap through the socket.
 *
 *   primary:   open, session_open(PRIMARY), region_add..., connect,
 *              then per checkpoint (guest paused): write the region's bitmap,
 *              ckpt_begin, ckpt_dirty (per region), ckpt_devstate, ckpt_commit.
 *   secondary: open, session_open(SECONDARY), region_add..., listen, accept,
 *              then wait for RCT_EVENT_CKPT_READY (event_next), stop the guest,
 *              write the pages it dirtied into the region bitmaps, ckpt_flush,
 *              devstate_get, resume (or ckpt_refuse: not applied, the session
 *              goes on).
 *
 * Every call returns 0 or -errno.  When rctd answered with an error,
 * rct_client_error() has its text and rct_client_detail() the rct_status_t
 * behind a transport failure.  A client is not thread-safe: one thread at a
 * time per client; different clients are independent.  Blocking calls wait
 * for rctd's reply (rctd bounds each step by the session timeout).
 */
#ifndef RCT_RCT_CLIENT_H
#define RCT_RCT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <rct/rct_types.h>
#include <rct/rct_ipc.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RCT_CLIENT_BUILDING)
#define RCT_CLIENT_API __attribute__((visibility("default")))
#else
#define RCT_CLIENT_API
#endif

struct rct_client;

/** Bits of rct_client_session.field_mask (0: every field of the first version is given). */
enum rct_client_session_field {
	RCT_CLIENT_SESSION_FIELD_ROLE = 1u << 0,
	RCT_CLIENT_SESSION_FIELD_BACKEND = 1u << 1,
	RCT_CLIENT_SESSION_FIELD_NAME = 1u << 2,
	RCT_CLIENT_SESSION_FIELD_LANES = 1u << 3,
	RCT_CLIENT_SESSION_FIELD_THREADS = 1u << 4,
	RCT_CLIENT_SESSION_FIELD_PAGE_SIZE = 1u << 5,
	RCT_CLIENT_SESSION_FIELD_TIMEOUT = 1u << 6,
	RCT_CLIENT_SESSION_FIELD_STAGING_SIZE = 1u << 7,
	RCT_CLIENT_SESSION_FIELDS_V1 = (1u << 8) - 1,
};

/** Session parameters: fields not in field_mask, and zero fields, take rctd's defaults. */
struct rct_client_session {
	uint64_t field_mask;   /**< rct_client_session_field (rct_types.h: field_mask) */
	enum rct_role role;    /**< required */
	const char *backend;   /**< "tcp" (default), "ucx", "verbs" */
	const char *name;      /**< the VM: letters, digits, - _ . : (NULL: rctd picks) */
	unsigned lanes;	       /**< primary: data lanes */
	unsigned threads;      /**< primary: helper threads of the data path */
	uint32_t page_size;    /**< bytes per bitmap bit (4096) */
	int timeout_ms;	       /**< deadline of every blocking step */
	uint64_t staging_size; /**< device-state capacity */
};

/** Bits of rct_client_pairing.field_mask (0: every field of the first version is given). */
enum rct_client_pairing_field {
	RCT_CLIENT_PAIRING_FIELD_ID = 1u << 0,
	RCT_CLIENT_PAIRING_FIELD_KEY = 1u << 1,
	RCT_CLIENT_PAIRING_FIELD_GENERATION = 1u << 2, /**< has_generation and generation */
	RCT_CLIENT_PAIRING_FIELDS_V1 = (1u << 3) - 1,
};

/** The pairing a session belongs to (rct_client_session_pairing()). */
struct rct_client_pairing {
	uint64_t field_mask; /**< rct_client_pairing_field (rct_types.h: field_mask) */
	const char *id; /**< the pairing's identity: the VM, 1..63 of letters, digits, - _ . : */
	const uint8_t *key; /**< RCT_IPC_PAIRING_KEY_LEN secret bytes the management layer gave
				 both hypervisors of the pairing; NULL: none (then rctd must
				 hold no pre-shared key, or the pairing is not proven) */
	int has_generation; /**< 1: generation below; 0: rctd's record for id (0 if none) */
	uint64_t generation;
};

/** Bits of rct_client_pairing_state.field_mask. */
enum rct_client_pairing_state_field {
	RCT_CLIENT_PAIRING_STATE_FIELD_GENERATION = 1u << 0,
	RCT_CLIENT_PAIRING_STATE_FIELD_LAST_COMMITTED = 1u << 1,
	RCT_CLIENT_PAIRING_STATE_FIELDS_V1 = (1u << 2) - 1,
	RCT_CLIENT_PAIRING_STATE_FIELDS_ALL = RCT_CLIENT_PAIRING_STATE_FIELDS_V1,
};

/** What rctd recorded for the pairing (persisted across its restarts). */
struct rct_client_pairing_state {
	uint64_t field_mask;	 /**< asked by the caller, set by the library (rct_types.h) */
	uint64_t generation;	 /**< the session's generation */
	uint64_t last_committed; /**< UINT64_MAX: none */
};

/**
 * Connect to rctd at @a socket_path and say HELLO as @a name (for its logs).
 * *client_p is written on success only; on failure rct_client_open_error()
 * says why (rctd's own text when it refused the connection).
 * @return 0, -EACCES (this user is not allowed), -EUSERS (rctd serves its
 *         maximum of connections), -EPROTONOSUPPORT, -errno.
 */
RCT_CLIENT_API int rct_client_open(const char *socket_path, const char *name,
				   struct rct_client **client_p);
/** Why the calling thread's last rct_client_open() failed ("" after a success). */
RCT_CLIENT_API const char *rct_client_open_error(void);
/**
 * Close the session, if any (rctd sends GOODBYE to its peer; the session and its
 * name are gone when this returns), then the connection.  NULL-safe.
 */
RCT_CLIENT_API void rct_client_close(struct rct_client *client);

/**
 * The socket, for the hypervisor's own event loop: readable when an event
 * (or a reply) waits in it.  Events that arrive while a call waits for its
 * reply are queued by the library, not left in the socket: before sleeping on
 * the descriptor, ask rct_client_arm().  Calls stay synchronous; use the
 * descriptor from the thread that makes them (or a second, watch-only
 * connection from another thread).
 */
RCT_CLIENT_API int rct_client_fd(const struct rct_client *client);
/**
 * Whether the caller may sleep on rct_client_fd(): 0 when nothing is queued;
 * -EAGAIN when events are queued (read them with rct_client_event_next(client,
 * 0, ...) first); -ECONNRESET when the connection failed; -EINVAL for NULL.
 */
RCT_CLIENT_API int rct_client_arm(const struct rct_client *client);
/**
 * Whether the connection to rctd still works: 1, or 0 once it failed (rctd
 * died, or said something this library cannot read; every later call fails
 * with -ECONNRESET), or NULL.  A call that failed while the connection
 * still works was answered by rctd: it did what it says, and for CKPT_FLUSH
 * nothing (guest RAM untouched).  One that failed with the connection
 * cannot tell what rctd did meanwhile: after CKPT_FLUSH, take guest RAM as
 * torn (part of two epochs) and never resume it.
 */
RCT_CLIENT_API int rct_client_alive(const struct rct_client *client);
/** RCT_IPC_CAP_* bits rctd announced. */
RCT_CLIENT_API uint64_t rct_client_caps(const struct rct_client *client);
/** rctd's text for the last failed call ("" when none). */
RCT_CLIENT_API const char *rct_client_error(const struct rct_client *client);
/** The rct_status_t behind the last failed call, RCT_OK when none was given. */
RCT_CLIENT_API rct_status_t rct_client_detail(const struct rct_client *client);

RCT_CLIENT_API int rct_client_session_open(struct rct_client *client,
					   const struct rct_client_session *params,
					   uint64_t *session_id_p);
RCT_CLIENT_API int rct_client_session_close(struct rct_client *client);
/**
 * Bind the open session to its pairing, before listen or connect (required
 * when rctd holds a pre-shared key: its session then proves this pairing to
 * the peer, not merely the host).  A generation older than the one rctd
 * recorded for the identity is refused (-ESTALE).  @a state_p (may be NULL)
 * gets the session's generation and the recorded last committed epoch.
 * @return 0, -EINVAL, -EBUSY (not before listen/connect), -ESTALE, -errno.
 */
RCT_CLIENT_API int rct_client_session_pairing(struct rct_client *client,
					      const struct rct_client_pairing *pairing,
					      struct rct_client_pairing_state *state_p);

/** Bits of rct_client_region.field_mask (0: every field of the first version is given). */
enum rct_client_region_field {
	RCT_CLIENT_REGION_FIELD_ID = 1u << 0,
	RCT_CLIENT_REGION_FIELD_MEMFD = 1u << 1,
	RCT_CLIENT_REGION_FIELD_OFFSET = 1u << 2,
	RCT_CLIENT_REGION_FIELD_SIZE = 1u << 3,
	RCT_CLIENT_REGION_FIELD_BITMAP_FD = 1u << 4,
	RCT_CLIENT_REGION_FIELD_BITMAP_OFFSET = 1u << 5,
	RCT_CLIENT_REGION_FIELD_NAME = 1u << 6,
	RCT_CLIENT_REGION_FIELDS_V1 = (1u << 7) - 1,
	RCT_CLIENT_REGION_FIELDS_REQUIRED = RCT_CLIENT_REGION_FIELD_ID |
					    RCT_CLIENT_REGION_FIELD_MEMFD |
					    RCT_CLIENT_REGION_FIELD_SIZE |
					    RCT_CLIENT_REGION_FIELD_BITMAP_FD,
};

/**
 * A guest RAM region: @a size bytes of the file @a memfd from @a offset, and
 * its dirty bitmap in @a bitmap_fd from @a bitmap_offset (8-aligned), in
 * QEMU's layout: host-endian `unsigned long` words, bit n of the region =
 * bit n % 64 of 64-bit word n / 64, one bit per session page (4096 bytes by
 * default).  On a 64-bit little-endian host that is the little-endian u64
 * words rctd reads; docs/ipc.md says what a big-endian host does.
 *
 * The guest RAM file is a memfd sealed with F_SEAL_SHRINK, or any regular
 * file a hypervisor shares its RAM through (an unsealed memfd, QEMU's
 * memory-backend-file,share=on on /dev/shm or hugetlbfs): rctd then re-checks
 * its size at every checkpoint step, and a file that shrank ends the session
 * (-EIO), never rctd.  On hugetlbfs @a offset and @a size must be multiples
 * of its huge page.  rctd maps the primary's RAM read-only, the secondary's
 * read-write, and populates neither.  @a name (optional, 1..63 bytes of
 * printable ASCII without spaces: QEMU's RAMBlock idstr) goes to the peer;
 * both sides must give the region id the same name (see rct_region_set_name()).
 */
struct rct_client_region {
	uint64_t field_mask; /**< rct_client_region_field (rct_types.h: field_mask) */
	uint32_t id;
	int memfd;
	uint64_t offset; /**< page aligned (hugetlbfs: huge-page aligned) */
	uint64_t size;	 /**< a multiple of the session's page size */
	int bitmap_fd;
	uint64_t bitmap_offset;
	const char *name; /**< NULL: unnamed */
};

/**
 * Add a guest RAM region (before listen / connect).  The descriptors stay the
 * caller's.  @a pages_p (may be NULL) gets the region's page count.
 * @return 0, -EINVAL, -EBADF, -EEXIST, -ENOSPC, -ENOMEM, -ENAMETOOLONG, -errno.
 */
RCT_CLIENT_API int rct_client_region_register(struct rct_client *client,
					      const struct rct_client_region *params,
					      uint64_t *pages_p);
/** rct_client_region_register() of an unnamed region (the first version's call). */
RCT_CLIENT_API int rct_client_region_add(struct rct_client *client, uint32_t id, int memfd,
					 uint64_t offset, uint64_t size, int bitmap_fd,
					 uint64_t bitmap_offset, uint64_t *pages_p);
/** Remove a region (only before the session connects). */
RCT_CLIENT_API int rct_client_region_remove(struct rct_client *client, uint32_t id);

/** Secondary: bind @a addr:@a port (0: any free port, returned). */
RCT_CLIENT_API int rct_client_listen(struct rct_client *client, const char *addr, uint16_t port,
				     uint16_t *port_p);
/** Secondary: wait for the primary's rctd. */
RCT_CLIENT_API int rct_client_accept(struct rct_client *client, unsigned *lanes_p);
/** Primary: connect to the secondary's rctd at @a addr:@a port. */
RCT_CLIENT_API int rct_client_connect(struct rct_client *client, const char *addr, uint16_t port,
				      unsigned *lanes_p);

/**
 * Primary: start checkpoint @a epoch (flags: RCT_CKPT_FULL, with it
 * RCT_CKPT_LIVE, with both RCT_CKPT_BASE: the first epoch of a secondary whose
 * guest RAM came from the hypervisor's migration; rct_types.h).
 */
RCT_CLIENT_API int rct_client_ckpt_begin(struct rct_client *client, uint64_t epoch, unsigned flags);
/** Primary: region @a id's shared bitmap holds this checkpoint's dirty pages. */
RCT_CLIENT_API int rct_client_ckpt_dirty(struct rct_client *client, uint32_t id);
/**
 * Primary, while the guest runs (after rct_client_ckpt_begin() of the next
 * epoch): region @a id's shared bitmap holds the pages dirtied since the last
 * bitmap handed over (the dirty log already reset); rctd copies it and starts
 * sending those pages before it replies, and does not wait for them
 * (rct_ckpt_stream()).  The pause's rct_client_ckpt_dirty() then carries only
 * what was dirtied since.  Needs rctd of socket API version 4.
 */
RCT_CLIENT_API int rct_client_ckpt_stream(struct rct_client *client, uint32_t id);
/**
 * rct_client_ckpt_dirty() and rct_client_ckpt_stream() with @a flags:
 * RCT_IPC_TAKE_SUMMARY says the region's bitmap file holds, right after the
 * bitmap (at bitmap_offset + 8 * ceil(pages / 64)), its summary: one bit per
 * bitmap word (bit w % 64 of the little-endian u64 w / 64), clear only over a
 * zero word.  rctd then reads the words the summary names, not the whole
 * bitmap (rct_ckpt_take()'s summary); the file must hold the summary when the
 * region is added.  Clearing both between calls is the caller's.
 * RCT_IPC_TAKE_ZERO_PAGES: zero-page elision (rct_ckpt_take()'s
 * RCT_TAKE_ZERO_PAGES).  Needs rctd of socket API version 5.
 */
RCT_CLIENT_API int rct_client_ckpt_dirty_flags(struct rct_client *client, uint32_t id,
					       unsigned flags);
RCT_CLIENT_API int rct_client_ckpt_stream_flags(struct rct_client *client, uint32_t id,
						unsigned flags);
/** Primary: the device-state blob (inline when small, else through a memfd). */
RCT_CLIENT_API int rct_client_ckpt_devstate(struct rct_client *client, const void *buf, size_t len);
/** Primary: commit; returns once the secondary acknowledged every byte. */
RCT_CLIENT_API int rct_client_ckpt_commit(struct rct_client *client,
					  struct rct_ckpt_stats *stats_p);

/**
 * The next event (RCT_EVENT_CKPT_READY, RCT_EVENT_PEER_LOST), waiting at most
 * @a timeout_ms (-1: forever).  -EAGAIN when none came in time.
 */
RCT_CLIENT_API int rct_client_event_next(struct rct_client *client, int timeout_ms,
					 struct rct_event *event_p);
/**
 * Secondary: apply ready epoch @a epoch.  @a flags RCT_IPC_FLUSH_LOCAL_DIRTY:
 * the region bitmaps hold the pages the secondary's own guest dirtied (they
 * are restored too); with RCT_IPC_FLUSH_LOCAL_SUMMARY as well, each bitmap
 * is read through the summary its file holds after it (as
 * rct_client_ckpt_dirty_flags() describes; version 5).
 */
RCT_CLIENT_API int rct_client_ckpt_flush(struct rct_client *client, uint64_t epoch, unsigned flags,
					 struct rct_ckpt_stats *stats_p);
/**
 * Secondary: do not apply ready epoch @a epoch (the hypervisor cannot load its
 * device state, say); the session goes on.  Guest RAM is not touched; the
 * epoch's pages are applied with the next flushed epoch; the primary's
 * hypervisor gets RCT_EVENT_CKPT_REFUSED.  @a reason (may be NULL) goes to
 * rctd's log.  @return 0, -EBUSY (no such epoch is ready), -errno.
 */
RCT_CLIENT_API int rct_client_ckpt_refuse(struct rct_client *client, uint64_t epoch,
					  const char *reason);
/**
 * Secondary: the device state of committed epoch @a epoch.  *@a buf_p stays
 * valid until the next call of this function or rct_client_close().
 */
RCT_CLIENT_API int rct_client_devstate_get(struct rct_client *client, uint64_t epoch,
					   const void **buf_p, size_t *len_p);

/**
 * STATUS, SESSIONS or STATS (with @a scope, enum rct_ipc_stats_scope): the
 * JSON text rctd answers, NUL-terminated, to free().
 */
RCT_CLIENT_API int rct_client_query(struct rct_client *client, enum rct_ipc_type type,
				    uint32_t scope, char **json_p);

/**
 * PAIRING_CTL (root and rctd's user only): act on pairing @a id on this host,
 * whichever connection's session it is (docs/ipc.md, "Pairings under a
 * cluster manager"): @a op is enum rct_ipc_pairing_op; @a min_generation and
 * @a min_epoch (UINT64_MAX: none) are FAILOVER's floor and NEW's base.
 * *@a json_p gets rctd's JSON text (the pairing after the operation),
 * NUL-terminated, to free().  @return 0, -ESTALE (FAILOVER: this host's data
 * is older than the floor), -ENOENT (no such session), -EBUSY (its role or
 * state does not allow it), -ETIMEDOUT (its session is inside a long request:
 * it stops when that returns), -EPERM, -errno.
 */
RCT_CLIENT_API int rct_client_pairing_ctl(struct rct_client *client, uint32_t op, const char *id,
					  uint64_t min_generation, uint64_t min_epoch,
					  char **json_p);

#ifdef __cplusplus
}
#endif
#endif /* RCT_RCT_CLIENT_H */
