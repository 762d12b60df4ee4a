/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rct: RDMA checkpoint transport for COLO-style VM fault tolerance.
 *
 * One session per protected VM.  A session runs in one of two roles:
 *
 *   primary    owns the running guest.  At every checkpoint it hands rct the
 *              dirty bitmap of each guest RAM region and the device-state
 *              blob; rct pushes the dirty pages into the secondary's colo
 *              cache over N data lanes and sends the commit on a separate
 *              control lane.  rct_ckpt_commit() returns once the secondary
 *              has acknowledged that every byte of the checkpoint is in its
 *              memory.
 *
 *   secondary  owns the standby guest.  Pages land only in the colo cache (a
 *              library-owned mirror of the primary's RAM).  When a whole
 *              checkpoint has arrived rct raises RCT_EVENT_CKPT_READY; the
 *              hypervisor stops its guest and calls rct_ckpt_flush() with the
 *              pages its own guest dirtied, which copies
 *              (primary-dirty | secondary-dirty) pages from the cache into
 *              guest RAM.  Guest RAM is never touched while a checkpoint is
 *              in flight, so an aborted checkpoint leaves the last committed
 *              image intact.
 *
 * Threads: a session is driven by its caller's thread; the library's own
 * threads only copy or beat: the secondary's flush helpers (flush_threads, one
 * per core beyond the first unless told), and, when asked, the primary's ucx
 * copiers (threads) and the liveness thread (RCT_LIVENESS_THREAD).  A session
 * is not thread-safe: the caller serialises all calls on one session
 * (different sessions are independent).  Progress is explicit: blocking calls drive it themselves, and
 * a secondary calls rct_session_progress() in its event loop.
 *
 * Status codes: every call returns rct_status_t; output arguments (suffix _p)
 * are written only when the call returns RCT_OK.
 */
#ifndef RCT_RCT_H
#define RCT_RCT_H

#include <stddef.h>
#include <stdint.h>

#include <rct/rct_types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RCT_STATIC_DEFINE)
#define RCT_API
#elif defined(RCT_BUILDING)
#define RCT_API __attribute__((visibility("default")))
#else
#define RCT_API
#endif

/** Version of the library API. */
#define RCT_VERSION_MAJOR 0
#define RCT_VERSION_MINOR 1

/** Short human-readable text for @a status (never NULL, static storage). */
RCT_API const char *rct_status_str(rct_status_t status);

struct rct_session;
struct rct_region;

/** Bits of rct_session_params.field_mask. */
enum rct_session_param_field {
	RCT_SESSION_PARAM_FIELD_ROLE = 1u << 0,
	RCT_SESSION_PARAM_FIELD_BACKEND = 1u << 1,
	RCT_SESSION_PARAM_FIELD_LANES = 1u << 2,
	RCT_SESSION_PARAM_FIELD_PAGE_SIZE = 1u << 3,
	RCT_SESSION_PARAM_FIELD_MAX_PUT = 1u << 4,
	RCT_SESSION_PARAM_FIELD_TIMEOUT = 1u << 5,
	RCT_SESSION_PARAM_FIELD_STAGING_SIZE = 1u << 6,
	RCT_SESSION_PARAM_FIELD_THREADS = 1u << 7,
	RCT_SESSION_PARAM_FIELD_PSK = 1u << 8,
	RCT_SESSION_PARAM_FIELD_HEARTBEAT = 1u << 9,
	RCT_SESSION_PARAM_FIELD_GENERATION = 1u << 10,
	RCT_SESSION_PARAM_FIELD_LIVENESS = 1u << 11,
	RCT_SESSION_PARAM_FIELD_FLUSH_THREADS = 1u << 12,
};

/** Bits of rct_session_params.liveness. */
enum rct_liveness_flags {
	/** Heartbeats on a thread and a UDP socket of their own (the liveness
	 *  channel, docs/protocol.md): the peer's liveness no longer depends on
	 *  the caller driving the session or on the data path making progress.
	 *  Both peers must set it alike (else RCT_ERR_MISMATCH at the handshake). */
	RCT_LIVENESS_THREAD = 1u << 0,
	/** With RCT_LIVENESS_THREAD: run that thread SCHED_FIFO (priority 1) where
	 *  permitted, so that CPU hogs cannot delay it; logged once where refused. */
	RCT_LIVENESS_RT = 1u << 1,
};

/** Default heartbeat interval (ms) and how many intervals of silence mean loss. */
#define RCT_HEARTBEAT_DEFAULT_MS 50
#define RCT_HEARTBEAT_MISSES	 3

/** Bytes of a pre-shared key (see rct_psk_load()). */
#define RCT_PSK_LEN 32

/** Parameters of rct_session_create().  Fields not in field_mask take defaults. */
struct rct_session_params {
	uint64_t field_mask;
	enum rct_role role;	/**< required */
	const char *backend;	/**< "tcp" (default); copied */
	unsigned lanes;		/**< data lanes, primary only: 1..RCT_MAX_LANES, default 4 */
	uint32_t page_size;	/**< bytes per dirty-bitmap bit, a power of two from
				    RCT_PAGE_SIZE_MIN to RCT_PAGE_SIZE_MAX, default 4096 */
	uint64_t max_put;	/**< largest single put, bytes, default 1 MiB */
	int timeout_ms;		/**< deadline of every blocking call, default
				    RCT_SESSION_TIMEOUT_DEFAULT_MS */
	unsigned threads;	/**< helper threads the primary's data path may start, 0..64,
				    default 0 (the library starts no thread).  Used where
				    the backend copies with the CPU: ucx into a target mapped
				    on this host.  Ignored by the others. */
	uint64_t staging_size;	/**< device-state capacity, default
				    RCT_STAGING_SIZE_DEFAULT, at most 1 GiB; the largest
				    blob is the smaller of the two peers'.  The secondary
				    allocates it twice (two slots), the primary once. */
	const uint8_t *psk;	/**< RCT_PSK_LEN bytes, copied.  With a key the two peers
				    prove to each other that they hold the same key (keyed-MAC
				    challenge-response) before any region or remote key is
				    advertised; a peer without it, or with another, is refused
				    with RCT_ERR_AUTH.  Without a key (the default) peers are
				    not authenticated.  See docs/security.md. */
	int heartbeat_ms;	/**< keepalive interval on the control lane, 1..60000 ms,
				    default RCT_HEARTBEAT_DEFAULT_MS.  Each side sends a
				    HEARTBEAT whenever it has sent nothing for an interval,
				    and declares the peer lost (RCT_ERR_PEER_LOST) after
				    RCT_HEARTBEAT_MISSES intervals without any message.
				    The library starts no thread: once connected, the
				    caller must drive the session (any call, or
				    rct_session_progress()) at least once per interval,
				    or the peer will see it as lost.  Long operations
				    inside the library (a full sync, a flush) keep sending
				    on their own.  Both sides should use the same value. */
	uint64_t generation;	/**< pairing generation (default 0).  Primary: the
				    generation it announces in HELLO.  Secondary: the
				    lowest generation it accepts; a primary announcing an
				    older one (a stale pairing) is refused with
				    RCT_ERR_MISMATCH before any remote key is advertised. */
	unsigned liveness;	/**< rct_liveness_flags, default 0: heartbeats travel on
				    the control lane and are sent and judged only while
				    the caller drives the session (see heartbeat_ms).
				    With RCT_LIVENESS_THREAD the library starts one thread
				    per connected session for them; heartbeat_ms and
				    RCT_HEARTBEAT_MISSES keep their meaning, a stall of
				    this process is not counted against the peer, and a
				    caller that does not drive the session is no longer
				    taken for dead (every blocking call keeps its
				    deadline). */
	unsigned flush_threads; /**< secondary: helper threads rct_ckpt_flush() copies
				    with beside the caller's, 0..64; default one per
				    online core beyond the first (0 on one core).  They
				    start at the first flush large enough to share (512
				    pages), block every signal, and each copies its share
				    of the dirty pages in address order.  A region whose
				    file (rct_region_set_file()) is not sealed against
				    shrinking (F_SEAL_SHRINK) is copied by the caller's
				    thread only: a SIGBUS from it stays the caller's to
				    handle. */
};

#define RCT_MAX_LANES 64
/** The deadline of a session's blocking calls unless its params say (ms). */
#define RCT_SESSION_TIMEOUT_DEFAULT_MS 10000
/** A session's page size (a dirty-bitmap bit): 512 B to 64 KiB, QEMU's target
 *  pages; a larger one would make each dirty bit a put of that much. */
#define RCT_PAGE_SIZE_MIN 512
#define RCT_PAGE_SIZE_MAX (64u << 10)
/** A session's device-state staging unless its params say (bytes). */
#define RCT_STAGING_SIZE_DEFAULT (16ull << 20)

/**
 * Create a session.  Allocates; release with rct_session_destroy().
 *
 * @return RCT_OK, RCT_ERR_INVALID_PARAM (missing role, bad page size or lane
 *         count), RCT_ERR_NOT_FOUND (no such backend in this build),
 *         RCT_ERR_NO_MEMORY.
 */
RCT_API rct_status_t rct_session_create(const struct rct_session_params *params,
					struct rct_session **session_p);

/**
 * Destroy a session: sends GOODBYE when connected, closes every lane,
 * deregisters and frees every region and the colo caches.  NULL-safe.
 * Regions of the session must not be used afterwards.
 */
RCT_API void rct_session_destroy(struct rct_session *session);

/**
 * Whether backend @a name ("verbs", "ucx", "tcp") is built into this library.
 * @return 1 or 0.  Thread-safe.
 */
RCT_API int rct_backend_available(const char *name);

/**
 * Whether memory a session of backend @a name only sends from (a primary's
 * guest RAM) may be mapped read-only when it is registered.
 * @return 1, 0 (the backend needs a writable mapping, though it only reads
 *         it), -1 (no such backend).  Thread-safe.
 */
RCT_API int rct_backend_source_read_only(const char *name);

/**
 * Read a pre-shared key file: a regular file of 32 to 4096 bytes (for
 * instance 32 random bytes: head -c 32 /dev/urandom), readable and writable by
 * its owner only (mode 0600 or 0400; any group or other bit is refused).  The
 * key is a BLAKE2b-256 hash of the whole content, so both peers need the same
 * file.  Thread-safe.
 *
 * @return RCT_OK, RCT_ERR_NOT_FOUND (cannot open), RCT_ERR_INVALID_PARAM (mode,
 *         type or size; the log says which), RCT_ERR_SYSTEM.
 */
RCT_API rct_status_t rct_psk_load(const char *path, uint8_t key_p[RCT_PSK_LEN]);

/** Name of the backend the session uses (static storage). */
RCT_API const char *rct_session_backend(const struct rct_session *session);

/**
 * What carries the session's data, in its backend's words, once connected:
 * for UCX the transports UCX chose for the lanes and how the pages move
 * ("stores into the peer's cache mapped here", "RDMA puts"); "" when the
 * backend has nothing to add to its name.  Valid until the session is
 * destroyed; only the thread that drives the session may call it.
 */
RCT_API const char *rct_session_transport(const struct rct_session *session);

/**
 * Register a guest RAM region (before connect/accept).  The memory stays owned
 * by the caller and must outlive the session.  On the primary the region is
 * registered with the backend for local reads; on the secondary rct allocates
 * a colo cache of the same size, registered for remote writes: zero and not
 * populated (pages are faulted in as they first arrive), except with verbs,
 * whose registration pins, and so populates, all of it.
 *
 * @param id    identifier agreed by both sides (QEMU: the RAM block index)
 * @param addr  page-aligned start of guest RAM
 * @param size  multiple of the page size
 * @return RCT_OK, RCT_ERR_INVALID_PARAM, RCT_ERR_EXISTS (id in use),
 *         RCT_ERR_STATE (already connected), RCT_ERR_NO_MEMORY.
 */
RCT_API rct_status_t rct_region_register(struct rct_session *session, uint32_t id, void *addr,
					 size_t size, struct rct_region **region_p);

/**
 * Name @a region (before connect/accept), e.g. the hypervisor's RAMBlock id
 * ("pc.ram"): 1..63 bytes of printable ASCII without spaces.  The name goes to
 * the peer with the region; both sides must give the same region id the same
 * name (both unnamed counts as the same), else the handshake ends with
 * RCT_ERR_MISMATCH naming both.
 * @return RCT_OK, RCT_ERR_INVALID_PARAM, RCT_ERR_STATE (connected already).
 */
RCT_API rct_status_t rct_region_set_name(struct rct_region *region, const char *name);

/**
 * Say that @a region's memory is the file @a fd from byte @a offset on (a
 * memfd, a file on tmpfs or hugetlbfs, mapped shared), before connect/accept.
 * rct opens the file again for itself (/proc/self/fd) and finds the region's
 * holes with SEEK_DATA/SEEK_HOLE, so that a sparse guest costs what it holds:
 * a full sync sends neither holes nor zero pages, and on the secondary the
 * full flush zeroes only pages that hold data.  Without a file, those read
 * every page (on shared memory, reading a hole allocates it).
 * @return RCT_OK, RCT_ERR_INVALID_PARAM (not a regular file, or too short),
 *         RCT_ERR_STATE (connected already), RCT_ERR_SYSTEM (cannot reopen it).
 */
RCT_API rct_status_t rct_region_set_file(struct rct_region *region, int fd, uint64_t offset);

/** Number of pages (dirty-bitmap bits) in @a region. */
RCT_API uint64_t rct_region_pages(const struct rct_region *region);

/** Longest pairing identity, with its NUL; bytes of a pairing key. */
#define RCT_PAIRING_ID_MAX  64
#define RCT_PAIRING_KEY_LEN 32

/**
 * Bind the session to one pairing (before listen/connect): the VM's identity
 * @a id (1..63 bytes: letters, digits, - _ . :), a secret @a key of
 * RCT_PAIRING_KEY_LEN bytes that the management layer gives the pairing's two
 * hypervisors (NULL: none), and its @a generation (as
 * RCT_SESSION_PARAM_FIELD_GENERATION).  The AUTH exchange then proves the
 * pairing, not merely the host: its key is BLAKE2b-256, keyed with the
 * session's pre-shared key (or none), of the identity and the pairing key.
 * A peer of another pairing, or one that claims this identity without its
 * key, fails with RCT_ERR_AUTH before any remote key is advertised, even
 * when both hosts share the pre-shared key.  Copies everything.
 *
 * @return RCT_OK, RCT_ERR_INVALID_PARAM (bad identity; neither a pre-shared
 *         key nor a pairing key to prove it with), RCT_ERR_STATE (not NEW).
 */
RCT_API rct_status_t rct_session_set_pairing(struct rct_session *session, const char *id,
					     const uint8_t *key, uint64_t generation);

/**
 * Secondary: bind and listen.  @a port 0 picks a free port, returned in
 * @a port_p.  Non-blocking.
 */
RCT_API rct_status_t rct_session_listen(struct rct_session *session, const char *addr,
					uint16_t port, uint16_t *port_p);

/**
 * Secondary: wait (at most the session timeout) for a primary that proves
 * itself, then take its data lanes and advertise every region's remote key.
 *
 * Only the primary's control lane is taken first.  A primary whose HELLO does
 * not match (roles, lanes, page size, regions, an older generation, liveness)
 * or that fails AUTH (another key, another pairing) is told why (an ERROR
 * message), turned away and logged, and the session goes on listening: no
 * peer that cannot prove the pairing ends it.  Nothing of the session's memory
 * is reachable by a primary before it proved itself: its data lanes are not
 * taken and no remote key goes out.
 *
 * @return RCT_OK; RCT_ERR_TIMED_OUT when no primary proved itself in time
 *         (the session still listens: call again); after the proof, a failure
 *         of the session (RCT_ERR_PEER_LOST, RCT_ERR_NO_MEMORY, ...).
 */
RCT_API rct_status_t rct_session_accept(struct rct_session *session);

/**
 * rct_session_accept() in slices, for a caller that must look at something
 * else now and then (rctd: whether it is stopping): wait at most @a wait_ms
 * for a primary to come; one that came is admitted, and its data lanes taken,
 * within the session timeout as rct_session_accept() would.
 *
 * @return as rct_session_accept(); RCT_ERR_TIMED_OUT when no primary came,
 *         or came and did not prove itself, within @a wait_ms (the session
 *         still listens: call again); RCT_ERR_INVALID_PARAM for a negative
 *         @a wait_ms.
 */
RCT_API rct_status_t rct_session_accept_within(struct rct_session *session, int wait_ms);

/**
 * Primary: connect to the secondary at @a addr:@a port, open one control lane
 * and the configured number of data lanes, exchange HELLO, import the
 * secondary's remote keys and check that both sides registered the same
 * regions.  Blocks at most the session timeout.
 */
RCT_API rct_status_t rct_session_connect(struct rct_session *session, const char *addr,
					 uint16_t port);

/** Bits of rct_liveness_stats.field_mask: groups of fields, asked by the caller (0: the
 *  first version's, all of these) and set by the library to the groups it wrote. */
enum rct_liveness_stats_field {
	RCT_LIVENESS_STATS_FIELD_BEATS = 1u << 0,
	RCT_LIVENESS_STATS_FIELD_STALLS = 1u << 1,
	RCT_LIVENESS_STATS_FIELD_PEER = 1u << 2,
	RCT_LIVENESS_STATS_FIELD_GAPS = 1u << 3,
	RCT_LIVENESS_STATS_FIELD_ALL = (1u << 4) - 1,
	RCT_LIVENESS_STATS_FIELDS_V1 = RCT_LIVENESS_STATS_FIELD_ALL,
};

/** What the liveness channel saw (rct_session_liveness()). */
struct rct_liveness_stats {
	uint64_t field_mask;	      /**< rct_liveness_stats_field: asked, then set */
	int running;		      /**< the heartbeat thread runs (connected, peer alive) */
	uint64_t beats_sent;	      /**< beats this side sent */
	uint64_t beats_received;      /**< valid beats from the peer */
	uint64_t beats_rejected;      /**< datagrams refused (token, MAC, replay, format) */
	uint64_t local_stalls;	      /**< times this process did not run for >= an interval */
	uint64_t local_stall_max_ns;  /**< the longest of them */
	uint64_t local_stall_last_ns; /**< the latest of them */
	uint64_t peer_stall_max_ns;   /**< the longest stall the peer reported of itself */
	uint64_t peer_silence_max_ns; /**< the longest gap between two of the peer's beats */
	uint64_t peer_last_committed; /**< the epoch in the peer's latest beat (UINT64_MAX none) */
	uint64_t session_gaps;	      /**< times the session was not driven (no call into it)
					   for longer than the loss threshold: a busy caller,
					   a long client request.  Not counted against the peer. */
	uint64_t session_gap_max_ns;  /**< the longest of them */
	uint64_t session_gap_last_ns; /**< the latest of them */
};

/**
 * Figures of the session's liveness channel.  Thread-safe (atomics), cheap.
 *
 * @return RCT_OK, RCT_ERR_INVALID_PARAM, RCT_ERR_STATE (the session has no
 *         liveness channel running or stopped: RCT_LIVENESS_THREAD not set, or
 *         not connected yet).
 */
RCT_API rct_status_t rct_session_liveness(const struct rct_session *session,
					  struct rct_liveness_stats *stats_p);

/** Number of data lanes of a connected session (0 before). */
RCT_API unsigned rct_session_lanes(const struct rct_session *session);

/* ---------------------------------------------------------------- primary */

/**
 * Primary: start checkpoint @a epoch.  Epochs strictly increase.  Waits (at
 * most the session timeout) until the secondary has flushed the previous
 * checkpoint, because the cache may not be written before that.
 */
RCT_API rct_status_t rct_ckpt_begin(struct rct_session *session, uint64_t epoch, unsigned flags);

/**
 * Primary: streaming before the pause.  While the guest runs (after
 * rct_ckpt_begin() of the next epoch, which may follow the previous commit at
 * once), hand rct the pages of @a region dirtied since the last bitmap, in the
 * layout of rct_ckpt_dirty(); the dirty log those bits came from must already
 * be reset, so that a page the guest writes after being read here is in a
 * later bitmap.  The bitmap is copied and the pages are put into the
 * secondary's cache at once, on the data lanes; the call does not wait for
 * them.  Any number of calls per region and epoch, none after that epoch's
 * rct_ckpt_dirty() for the region; not with RCT_CKPT_FULL.  At the pause,
 * rct_ckpt_dirty() then carries only what was dirtied since the last stream,
 * and rct_ckpt_commit() waits for every put, streamed ones included.  The
 * secondary's guest RAM still changes only at the committed flush, which
 * applies every page of the epoch.  Stats: pages and bytes count every page
 * sent (repeats included); transfer_ns and total_ns start at the pause (the
 * first rct_ckpt_dirty(), devstate or commit call).
 */
RCT_API rct_status_t rct_ckpt_stream(struct rct_session *session, struct rct_region *region,
				     const uint64_t *bitmap, uint64_t nbits);

/**
 * Primary: the pages of @a region dirtied since the last checkpoint (or since
 * the last rct_ckpt_stream() of this epoch), one bit per
 * page (bit i of word i/64 = page i), @a nbits = rct_region_pages().  The
 * bitmap is copied; the transfer of those pages starts before the call returns.
 * At most one call per region per checkpoint; not needed with RCT_CKPT_FULL.
 */
RCT_API rct_status_t rct_ckpt_dirty(struct rct_session *session, struct rct_region *region,
				    const uint64_t *bitmap, uint64_t nbits);

/** Flags of rct_ckpt_take(). */
enum rct_take_flags {
	/** rct_ckpt_stream(): while the guest runs; else rct_ckpt_dirty(), the pause. */
	RCT_TAKE_STREAM = 1u << 0,
	/**
	 * Zero-page elision: a dirty page that is all zero is not put; the
	 * secondary is told (a ZEROS message) and zeroes it in its colo cache at
	 * the commit, after every put of the epoch landed.  Costs one read of
	 * each dirty page up to its first non-zero byte; pays where the guest
	 * frees memory (a freed page is zeroed by the guest's kernel, balloon or
	 * free page reporting) and the link is the bottleneck.
	 */
	RCT_TAKE_ZERO_PAGES = 1u << 1,
	RCT_TAKE_FLAGS_ALL = (1u << 2) - 1,
};

/**
 * rct_ckpt_dirty() (or, with RCT_TAKE_STREAM, rct_ckpt_stream()) with its
 * options, @a flags enum rct_take_flags.  @a summary (NULL: none) makes what
 * rct reads follow the dirty words, not the region's size (without one the
 * whole bitmap is read: 32 MiB per TiB of 4 KiB pages).  It has one bit per
 * 64-bit word of @a bitmap: bit w % 64 of word w / 64 is word w's; a clear bit
 * promises that word w is zero (it is not read), a set bit promises nothing.
 * A hypervisor that sets bits through its own summary (or KVM's dirty ring,
 * whose entries are page numbers) has it at no cost.  Bits past the bitmap's
 * last word are ignored.
 */
RCT_API rct_status_t rct_ckpt_take(struct rct_session *session, struct rct_region *region,
				   const uint64_t *bitmap, const uint64_t *summary, uint64_t nbits,
				   unsigned flags);

/**
 * Primary: the device-state blob of this checkpoint (copied; at most the
 * secondary's staging size, else RCT_ERR_NO_SPACE).  At most one per checkpoint.
 */
RCT_API rct_status_t rct_ckpt_devstate_put(struct rct_session *session, const void *buf,
					   size_t len);

/**
 * Primary, in an open checkpoint before its device state is given: the local
 * staging buffer the device state is put from, and its size.  A caller that
 * writes its blob there (reads it from a file into it, say) and passes that
 * pointer to rct_ckpt_devstate_put() saves the copy into it.  Valid until
 * that checkpoint's commit returns.
 *
 * @return RCT_OK, RCT_ERR_INVALID_PARAM, RCT_ERR_STATE (no open checkpoint, or
 *         its device state given already).
 */
RCT_API rct_status_t rct_ckpt_devstate_buffer(struct rct_session *session, void **buf_p,
					      size_t *cap_p);

/**
 * Primary: finish the checkpoint.  Waits until every put completed on every
 * lane, sends COMMIT on the control lane and waits for the secondary's ACK
 * (which it sends only once all pages, bitmaps and the device state of this
 * epoch are in its memory).  @a stats_p may be NULL.
 *
 * @return RCT_OK (the checkpoint is committed); RCT_ERR_OUTCOME_UNKNOWN when
 *         the COMMIT was sent and no ACK came (the secondary may or may not
 *         hold the epoch); or another fatal status (RCT_ERR_IO,
 *         RCT_ERR_PEER_LOST, ...) from before the COMMIT left: the checkpoint
 *         is not committed and the secondary keeps its previous image.  Every
 *         failure fails the session.
 */
RCT_API rct_status_t rct_ckpt_commit(struct rct_session *session, struct rct_ckpt_stats *stats_p);

/**
 * Primary: progress of the full sync.  Unlike every other call this one may be
 * called from any thread while the session's own thread is inside
 * rct_ckpt_commit() (the figures are read atomically, each on its own).
 */
RCT_API void rct_session_sync_progress(const struct rct_session *session,
				       struct rct_sync_progress *progress_p);

/* -------------------------------------------------------------- secondary */

/**
 * Drive the session: read control messages and (for backends that need it)
 * incoming data, waiting at most @a timeout_ms (0: do not wait) for activity.
 * Events it raises are read with rct_session_event_next().
 *
 * @return RCT_OK, or a fatal status when the peer or a lane failed (a
 *         RCT_EVENT_PEER_LOST is queued too).
 */
RCT_API rct_status_t rct_session_progress(struct rct_session *session, int timeout_ms);

/**
 * A descriptor for the caller's own event loop (uv_backend_fd(),
 * ucp_worker_get_efd()): it becomes readable when rct_session_progress() has
 * work.  Owned by the session (closed by rct_session_destroy()); -1 with errno
 * set when it cannot be made.  Use it with rct_session_arm():
 *
 *     for (;;) {
 *         st = rct_session_arm(s, &ms);
 *         if (st == RCT_OK)
 *             poll({rct_session_fd(s), POLLIN, ...your fds}, ms);
 *         else if (st != RCT_ERR_AGAIN)
 *             break;                      (fatal: the session failed)
 *         rct_session_progress(s, 0);
 *         while (rct_session_event_next(s, &ev) == RCT_OK) ...
 *     }
 */
RCT_API int rct_session_fd(struct rct_session *session);

/**
 * Prepare to sleep on rct_session_fd(): push out what is queued and arm the
 * backend's notifications.  RCT_OK: sleep until the descriptor is readable,
 * at most *timeout_ms_p ms (-1: no limit; the keepalive sets it), then call
 * rct_session_progress(session, 0).  RCT_ERR_AGAIN: there is work now (or an
 * event to read): call rct_session_progress() without sleeping.  Only for a
 * connected session (RCT_ERR_STATE before); RCT_ERR_UNSUPPORTED for a backend
 * without notifications; a fatal code when the session failed.
 */
RCT_API rct_status_t rct_session_arm(struct rct_session *session, int *timeout_ms_p);

/** Pop the oldest pending event.  RCT_ERR_AGAIN when there is none. */
RCT_API rct_status_t rct_session_event_next(struct rct_session *session, struct rct_event *event_p);

/**
 * Why a failed session failed, in the words of the side that found it (the
 * ERROR text sent or received: "region 0: the secondary names it ..."), or ""
 * when no such text was given (a loss).  Valid until the session is destroyed.
 */
RCT_API const char *rct_session_fail_text(const struct rct_session *session);

/**
 * Whether a failed session ended because the peer closed it (it sent GOODBYE
 * from rct_session_destroy()) rather than failing: the PEER_LOST event of
 * both is the same, this tells a deliberate stop from a loss.
 */
RCT_API int rct_session_peer_closed(const struct rct_session *session);

/** Why a session ends on purpose (rct_session_abort(); the peer's log names it). */
enum rct_goodbye_reason {
	RCT_GOODBYE_CLOSE = 0,	  /**< rct_session_destroy() */
	RCT_GOODBYE_ABORT = 1,	  /**< its host's administrator ended it */
	RCT_GOODBYE_FAILOVER = 2, /**< the secondary took over: it is the primary now */
	RCT_GOODBYE_DEMOTE = 3,	  /**< the primary was demoted: it is no primary now */
};

/**
 * End the session on purpose, now, from the thread that drives it: the peer is
 * told (GOODBYE with @a reason, best effort; its session fails as a closed
 * one, rct_session_peer_closed()) and nothing more is taken from it or sent
 * to it (the lanes go down at rct_session_destroy()).  This session fails
 * with RCT_ERR_ABORTED and raises RCT_EVENT_PEER_LOST with the last consistent
 * epoch, as any failure does; a secondary's ready epoch can still be flushed.
 *
 * @return RCT_ERR_ABORTED, or the status the session had already failed with.
 */
RCT_API rct_status_t rct_session_abort(struct rct_session *session, uint32_t reason);

/** The pairing's generation the session runs at: a secondary's is the one the
 *  primary it accepted announced (rct_session_set_pairing() gives the floor). */
RCT_API uint64_t rct_session_generation(const struct rct_session *session);

/**
 * Secondary: record pages the secondary's own guest dirtied (ORed into the
 * region's flush set; cleared by rct_ckpt_flush()).  Same bitmap layout as
 * rct_ckpt_dirty().
 */
RCT_API rct_status_t rct_ckpt_local_dirty(struct rct_session *session, struct rct_region *region,
					  const uint64_t *bitmap, uint64_t nbits);
/** The same through the bitmap's summary (see rct_ckpt_take()). */
RCT_API rct_status_t rct_ckpt_local_dirty_summary(struct rct_session *session,
						  struct rct_region *region, const uint64_t *bitmap,
						  const uint64_t *summary, uint64_t nbits);

/**
 * Secondary: apply the ready checkpoint @a epoch: copy every page the primary
 * sent or the secondary dirtied from the colo cache into guest RAM, in address
 * order, then tell the primary the cache is free for the next checkpoint.
 * The hypervisor must have stopped its guest.  @a stats_p may be NULL.
 *
 * @return RCT_OK (the image is applied, even when the peer was lost meanwhile:
 *         that is reported by RCT_EVENT_PEER_LOST), RCT_ERR_STATE (no checkpoint
 *         @a epoch is ready).
 */
RCT_API rct_status_t rct_ckpt_flush(struct rct_session *session, uint64_t epoch,
				    struct rct_ckpt_stats *stats_p);

/**
 * Secondary: do not apply the ready checkpoint @a epoch (the hypervisor cannot
 * load its device state, say), without ending the session.  Guest RAM is not
 * touched; the epoch's pages, and the pages recorded by rct_ckpt_local_dirty(),
 * are carried into the next flush, so the next flushed epoch leaves guest RAM
 * equal to the primary's at that epoch.  The primary is told (ACK REFUSED; its
 * RCT_EVENT_CKPT_REFUSED) and may begin the next checkpoint.  @a reason (may be
 * NULL) is logged.
 *
 * @return RCT_OK, RCT_ERR_STATE (no checkpoint @a epoch is ready).
 */
RCT_API rct_status_t rct_ckpt_refuse(struct rct_session *session, uint64_t epoch,
				     const char *reason);

/**
 * Secondary: the device state of committed epoch @a epoch.  @a buf_p points into
 * session memory valid until the next checkpoint is committed or the session
 * is destroyed.
 */
RCT_API rct_status_t rct_ckpt_devstate_get(struct rct_session *session, uint64_t epoch,
					   const void **buf_p, size_t *len_p);

/** Last epoch committed on this session, or -1 (UINT64_MAX) when none. */
RCT_API uint64_t rct_session_last_committed(const struct rct_session *session);

/* -------------------------------------------------------------- logging */

enum rct_log_level {
	RCT_LOG_ERROR = 0,
	RCT_LOG_WARN = 1,
	RCT_LOG_INFO = 2,
	RCT_LOG_DEBUG = 3,
};

/**
 * Set the process-wide log threshold (default: RCT_LOG_WARN, or the value of
 * the RCT_LOG environment variable: error, warn, info, debug).  Messages go to
 * stderr, one line each.  Thread-safe.
 */
RCT_API void rct_log_set_level(enum rct_log_level level);

/**
 * Where a log line goes instead of stderr: @a msg is one line without its
 * newline (prefixed by the object, e.g. "verbs: lane 2: ..."), @a file and
 * @a line its source (the file's base name).  Lines below the threshold of
 * rct_log_set_level() never reach it.  It may be called from any thread the
 * library runs (a session's caller, the liveness thread), so it must be
 * thread-safe; it must not call back into a session nor into rct_log_*().
 */
typedef void (*rct_log_handler_t)(enum rct_log_level level, const char *file, int line,
				  const char *msg, void *arg);

/**
 * Send the library's log lines to @a handler (with @a arg), or back to stderr
 * when NULL: a daemon writes them in its own format, beside its own.  Set it
 * before the first session; thread-safe.
 */
RCT_API void rct_log_set_handler(rct_log_handler_t handler, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* RCT_RCT_H */
