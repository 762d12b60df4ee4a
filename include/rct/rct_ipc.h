/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rctd socket API: the wire format between a hypervisor (or rctctl) and
 * the local rctd daemon, in the vhost-user / vfio-user tradition.  The full
 * description, the call sequences and the access rules are in docs/ipc.md.
 *
 * A Unix stream socket.  Every message is a 32-byte header and a payload of
 * little-endian fixed-width fields, naturally aligned (sizes pinned below).
 * File descriptors ride with the header's bytes as SCM_RIGHTS; the header
 * says how many.  A request carries a client-chosen request_id; its reply
 * (flag REPLY) carries the same id, a status (0 or -errno) and, when the
 * transport failed, the rct_status_t that says why (detail).  The daemon also
 * sends unsolicited EVENT messages (flag EVENT, request_id 0) between replies.
 *
 * One connection drives at most one session (one VM); a session is never
 * reachable from another connection.
 */
#ifndef RCT_RCT_IPC_H
#define RCT_RCT_IPC_H

#include <linux/types.h>

#define RCT_IPC_MAGIC 0x53544352u /* "RCTS" in memory order */
#define RCT_IPC_VERSION                                                                            \
	6 /* 2: EVENT carries discarded (24 bytes); 3: region names,
				 CKPT_REFUSE, unsealed and file-backed regions; 4: CKPT_STREAM;
				 5: CKPT_DIRTY/STREAM flags (a bitmap's summary);
				 6: CKPT_BEGIN's RCT_CKPT_BASE */
#define RCT_IPC_HDR_SIZE	32
#define RCT_IPC_MAX_PAYLOAD	(256 * 1024) /* payload bytes after the header */
#define RCT_IPC_MAX_FDS		2
#define RCT_IPC_NAME_MAX	32 /* NUL-terminated strings: name, backend, address */
#define RCT_IPC_BACKEND_MAX	16
#define RCT_IPC_ADDR_MAX	64
#define RCT_IPC_REGION_NAME_MAX 63  /* bytes of a region's name (REGION_ADD) */
#define RCT_IPC_REASON_MAX	256 /* bytes of CKPT_REFUSE's reason */

enum rct_ipc_type {
	RCT_IPC_HELLO = 1,	      /* version and capabilities; first message of a connection */
	RCT_IPC_SESSION_OPEN = 2,     /* create this connection's session */
	RCT_IPC_SESSION_CLOSE = 3,    /* destroy it (GOODBYE to the peer) */
	RCT_IPC_REGION_ADD = 4,	      /* fds: guest RAM memfd, dirty-bitmap memfd */
	RCT_IPC_REGION_REMOVE = 5,    /* before the session is connected */
	RCT_IPC_LISTEN = 6,	      /* secondary: bind; reply has the port */
	RCT_IPC_ACCEPT = 7,	      /* secondary: wait for the primary; reply once connected */
	RCT_IPC_CONNECT = 8,	      /* primary: connect to the secondary's rctd */
	RCT_IPC_CKPT_BEGIN = 9,	      /* primary */
	RCT_IPC_CKPT_DIRTY = 10,      /* primary: a region's shared bitmap is ready */
	RCT_IPC_CKPT_DEVSTATE = 11,   /* primary: inline bytes, or fd: a memfd read from offset 0 */
	RCT_IPC_CKPT_COMMIT = 12,     /* primary: reply after the secondary acknowledged */
	RCT_IPC_CKPT_FLUSH = 13,      /* secondary: apply a ready epoch to guest RAM */
	RCT_IPC_DEVSTATE_GET = 14,    /* secondary: fd: a memfd the daemon writes the blob into */
	RCT_IPC_EVENT = 15,	      /* daemon -> client: checkpoint ready, peer lost */
	RCT_IPC_STATUS = 16,	      /* reply: JSON text, the daemon */
	RCT_IPC_SESSIONS = 17,	      /* reply: JSON text, every session (admin only) */
	RCT_IPC_STATS = 18,	      /* reply: JSON text, counters and latency histograms */
	RCT_IPC_SESSION_PAIRING = 19, /* bind the session to its pairing, before LISTEN/CONNECT */
	RCT_IPC_CKPT_REFUSE = 20,     /* secondary: do not apply a ready epoch; session goes on */
	RCT_IPC_CKPT_STREAM = 21,     /* primary, guest running: the shared bitmap holds pages
					 dirtied since the last one; they are sent now */
	RCT_IPC_PAIRING_CTL = 22,     /* admin: show a pairing, or fail over, demote, abort it,
					 or start a new generation; reply: JSON text */
	RCT_IPC_TYPE_MAX = RCT_IPC_PAIRING_CTL,
};

enum rct_ipc_flags {
	RCT_IPC_FLAG_REPLY = 1u << 0,
	RCT_IPC_FLAG_EVENT = 1u << 1,
};

/* Capability bits of the HELLO reply. */
enum rct_ipc_caps {
	RCT_IPC_CAP_TCP = 1u << 0,
	RCT_IPC_CAP_UCX = 1u << 1,
	RCT_IPC_CAP_VERBS = 1u << 2,
	RCT_IPC_CAP_METRICS = 1u << 3, /* a Prometheus endpoint is served */
	RCT_IPC_CAP_PSK = 1u << 4, /* rctd holds a pre-shared key: SESSION_PAIRING is required */
};

struct rct_ipc_hdr {
	__le32 magic;
	__le16 version;
	__le16 type;
	__le32 length; /* payload bytes that follow, at most RCT_IPC_MAX_PAYLOAD */
	__le16 flags;
	__u8 nfds;     /* descriptors attached to this message's first byte */
	__u8 reserved; /* must be 0 */
	__le64 request_id;
	__le32 status; /* replies: 0 or -errno (two's complement) */
	__le32 detail; /* replies: the rct_status_t behind a transport failure, or 0 */
};

struct rct_ipc_hello {
	__le16 version_min; /* the client speaks versions [min, max] */
	__le16 version_max;
	__le32 reserved;
	char name[RCT_IPC_NAME_MAX]; /* who is calling, for the logs */
};

struct rct_ipc_hello_reply {
	__le16 version; /* the version this connection uses */
	__le16 reserved0;
	__le32 max_payload;
	__le64 caps;
	__le32 pid;
	__le32 reserved1;
};

struct rct_ipc_session_open {
	__le16 role;	/* enum rct_role */
	__le16 lanes;	/* 0: default */
	__le16 threads; /* helper threads of the primary's data path */
	__le16 reserved;
	__le32 page_size;    /* 0: 4096 */
	__le32 timeout_ms;   /* deadline of every blocking step; 0: default */
	__le64 staging_size; /* device-state capacity; 0: default */
	char backend[RCT_IPC_BACKEND_MAX];
	char name[RCT_IPC_NAME_MAX]; /* the VM, for status and metrics */
};

struct rct_ipc_session_open_reply {
	__le64 session_id;
};

/* SESSION_PAIRING: the VM identity and secret the management layer gave this
 * pairing's two hypervisors, and its generation (docs/ipc.md, "Pairings"). */
#define RCT_IPC_PAIRING_ID_MAX	64
#define RCT_IPC_PAIRING_KEY_LEN 32

enum rct_ipc_pairing_flags {
	RCT_IPC_PAIRING_KEY = 1u << 0,	      /* key holds the pairing key */
	RCT_IPC_PAIRING_GENERATION = 1u << 1, /* generation is given (else: rctd's record) */
};

struct rct_ipc_session_pairing {
	__le64 generation;
	__le32 flags; /* rct_ipc_pairing_flags */
	__le32 reserved;
	char id[RCT_IPC_PAIRING_ID_MAX]; /* NUL-terminated: letters, digits, - _ . : */
	__u8 key[RCT_IPC_PAIRING_KEY_LEN];
};

struct rct_ipc_session_pairing_reply {
	__le64 generation;     /* the session's generation */
	__le64 last_committed; /* recorded for this pairing on this host; UINT64_MAX: none */
};

/* PAIRING_CTL: what a cluster manager's agent asks of a pairing on this host
 * (docs/ipc.md, "Pairings under a cluster manager").  Root and rctd's user only. */
enum rct_ipc_pairing_op {
	RCT_IPC_PAIRING_SHOW = 1,     /* its record and its session, if any */
	RCT_IPC_PAIRING_FAILOVER = 2, /* secondary: take no more from the primary; new generation */
	RCT_IPC_PAIRING_DEMOTE = 3,   /* primary: stop; no primary here again at this generation */
	RCT_IPC_PAIRING_ABORT = 4,    /* end its session, either role; the record stays */
	RCT_IPC_PAIRING_NEW = 5,      /* no session: a new generation, no epoch (a fresh guest) */
};

struct rct_ipc_pairing_ctl {
	__le32 op; /* enum rct_ipc_pairing_op */
	__le32 reserved;
	__le64 min_generation; /* FAILOVER: refused below it; NEW: the new one is above it */
	__le64 min_epoch;      /* FAILOVER: refused below it at min_generation; UINT64_MAX: any */
	char id[RCT_IPC_PAIRING_ID_MAX];
};

/* LISTEN and CONNECT. */
struct rct_ipc_peer {
	char addr[RCT_IPC_ADDR_MAX];
	__le16 port;
	__le16 reserved[3];
};

struct rct_ipc_listen_reply {
	__le16 port;
	__le16 reserved[3];
};

/* ACCEPT and CONNECT replies. */
struct rct_ipc_connected {
	__le32 lanes;
	__le32 reserved;
	char backend[RCT_IPC_BACKEND_MAX];
};

/*
 * REGION_ADD, with two descriptors: [0] the guest RAM file, mapped from
 * @offset for @size bytes; [1] the dirty-bitmap file, one bit per page from
 * @bitmap_offset.  Either a memfd sealed with F_SEAL_SHRINK, or any regular
 * file (an unsealed memfd, memory-backend-file on /dev/shm or hugetlbfs): rctd
 * then re-checks its size at every checkpoint step and ends the session, not
 * itself, if it shrinks.  @name_len bytes of the region's name (1..63 bytes of
 * printable ASCII without spaces, not NUL-terminated; 0: unnamed) follow.
 */
struct rct_ipc_region_add {
	__le32 id;
	__le32 name_len; /* since version 3; before, reserved */
	__le64 offset;
	__le64 size;
	__le64 bitmap_offset;
};

struct rct_ipc_region_add_reply {
	__le64 pages;
};

/* REGION_REMOVE, CKPT_DIRTY and CKPT_STREAM. */
struct rct_ipc_region_ref {
	__le32 id;
	__le32 flags; /* CKPT_DIRTY, CKPT_STREAM: enum rct_ipc_take_flags (since 5); else 0 */
};

/* How CKPT_DIRTY and CKPT_STREAM read the region's shared bitmap. */
enum rct_ipc_take_flags {
	/* The summary that follows the bitmap in its file (docs/ipc.md) names
	 * the words that may be non-zero; rctd reads those words only. */
	RCT_IPC_TAKE_SUMMARY = 1u << 0,
	/* Zero-page elision (rct_ckpt_take()'s RCT_TAKE_ZERO_PAGES): dirty pages
	 * that are all zero are not sent as data. */
	RCT_IPC_TAKE_ZERO_PAGES = 1u << 1,
};

struct rct_ipc_ckpt_begin {
	__le64 epoch;
	__le32 flags; /* enum rct_ckpt_flags */
	__le32 reserved;
};

/* CKPT_DEVSTATE: followed by @length inline bytes, or with one memfd. */
struct rct_ipc_devstate {
	__le64 length;
};

enum rct_ipc_flush_flags {
	/* The regions' shared bitmaps hold the pages the secondary's guest dirtied. */
	RCT_IPC_FLUSH_LOCAL_DIRTY = 1u << 0,
	/* With LOCAL_DIRTY: read them through their summaries (RCT_IPC_TAKE_SUMMARY's
	 * layout), every region must have one.  Since version 5. */
	RCT_IPC_FLUSH_LOCAL_SUMMARY = 1u << 1,
};

struct rct_ipc_ckpt_flush {
	__le64 epoch;
	__le32 flags;
	__le32 reserved;
};

/* CKPT_COMMIT and CKPT_FLUSH replies: struct rct_ckpt_stats on the wire. */
struct rct_ipc_ckpt_stats {
	__le64 epoch;
	__le64 pages;
	__le64 bytes;
	__le64 runs;
	__le64 devstate_bytes;
	__le64 transfer_ns;
	__le64 commit_ns;
	__le64 total_ns;
	__le64 flush_ns;
	__le64 flush_pages;
};

/* CKPT_REFUSE: followed by up to RCT_IPC_REASON_MAX bytes of reason (for the logs). */
struct rct_ipc_ckpt_refuse {
	__le64 epoch;
};

/* DEVSTATE_GET, with one memfd the daemon truncates and writes. */
struct rct_ipc_devstate_get {
	__le64 epoch;
};

struct rct_ipc_devstate_get_reply {
	__le64 length;
};

struct rct_ipc_event {
	__le32 type;   /* enum rct_event_type */
	__le32 status; /* rct_status_t (PEER_LOST: the cause) */
	__le64 epoch;
	__le64 discarded; /* PEER_LOST: the epoch in flight that was discarded
			     (UINT64_MAX none); since version 2 */
};

enum rct_ipc_stats_scope {
	RCT_IPC_STATS_SESSION = 0, /* this connection's session */
	RCT_IPC_STATS_ALL = 1,	   /* every session (admin only) */
};

struct rct_ipc_stats {
	__le32 scope;
	__le32 reserved;
};

_Static_assert(sizeof(struct rct_ipc_hdr) == RCT_IPC_HDR_SIZE, "ipc header");
_Static_assert(sizeof(struct rct_ipc_hello) == 40, "ipc hello");
_Static_assert(sizeof(struct rct_ipc_hello_reply) == 24, "ipc hello reply");
_Static_assert(sizeof(struct rct_ipc_session_open) == 72, "ipc session open");
_Static_assert(sizeof(struct rct_ipc_pairing_ctl) == 88, "ipc pairing ctl");
_Static_assert(sizeof(struct rct_ipc_session_pairing) == 112, "ipc session pairing");
_Static_assert(sizeof(struct rct_ipc_session_pairing_reply) == 16, "ipc pairing reply");
_Static_assert(sizeof(struct rct_ipc_peer) == 72, "ipc peer");
_Static_assert(sizeof(struct rct_ipc_connected) == 24, "ipc connected");
_Static_assert(sizeof(struct rct_ipc_region_add) == 32, "ipc region add");
_Static_assert(sizeof(struct rct_ipc_ckpt_refuse) == 8, "ipc ckpt refuse");
_Static_assert(sizeof(struct rct_ipc_ckpt_stats) == 80, "ipc stats");
_Static_assert(sizeof(struct rct_ipc_event) == 24, "ipc event");

#endif /* RCT_RCT_IPC_H */
