/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket API's payloads in host form, and their codec (the wire layout is
 * include/rct/rct_ipc.h; framing and descriptors are ipc.h).
 *
 * One table says, per message type and direction, the payload's fixed size,
 * whether bytes may follow it, and how many descriptors ride with it; one
 * encode/decode pair per payload does the rest (byte order, reserved fields
 * zero, strings NUL-terminated, flags known).  rctd and librct-client both
 * go through it, so the two ends cannot disagree on a layout, and the fuzzer
 * reaches it without the daemon.
 */
#ifndef RCT_IPC_PAYLOAD_H
#define RCT_IPC_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <rct/rct_ipc.h>
#include <rct/rct_types.h>

struct ipc_hello {
	uint16_t version_min, version_max;
	char name[RCT_IPC_NAME_MAX];
};

struct ipc_hello_reply {
	uint16_t version;
	uint32_t max_payload;
	uint64_t caps;
	uint32_t pid;
};

struct ipc_session_open {
	uint16_t role, lanes, threads;
	uint32_t page_size, timeout_ms;
	uint64_t staging_size;
	char backend[RCT_IPC_BACKEND_MAX];
	char name[RCT_IPC_NAME_MAX];
};

struct ipc_pairing {
	uint64_t generation;
	uint32_t flags; /* rct_ipc_pairing_flags */
	char id[RCT_IPC_PAIRING_ID_MAX];
	uint8_t key[RCT_IPC_PAIRING_KEY_LEN];
};

struct ipc_pairing_reply {
	uint64_t generation, last_committed;
};

struct ipc_pairing_ctl {
	uint32_t op; /* enum rct_ipc_pairing_op */
	uint64_t min_generation, min_epoch;
	char id[RCT_IPC_PAIRING_ID_MAX];
};

/* LISTEN and CONNECT requests; LISTEN's reply has only the port. */
struct ipc_peer {
	char addr[RCT_IPC_ADDR_MAX];
	uint16_t port;
};

/* ACCEPT and CONNECT replies. */
struct ipc_connected {
	uint32_t lanes;
	char backend[RCT_IPC_BACKEND_MAX];
};

struct ipc_region_add {
	uint32_t id;
	uint64_t offset, size, bitmap_offset;
	char name[RCT_IPC_REGION_NAME_MAX + 1]; /* "" unnamed; NUL-terminated here */
};

/* CKPT_REFUSE: the reason points into the receive buffer (not NUL-terminated). */
struct ipc_refuse {
	uint64_t epoch;
	const char *reason;
	size_t len;
};

/* CKPT_DEVSTATE: @length bytes at @bytes (inline, into the receive buffer),
 * or @bytes NULL and the blob in the message's descriptor. */
struct ipc_devstate {
	uint64_t length;
	const void *bytes;
};

/* CKPT_BEGIN and CKPT_FLUSH. */
struct ipc_ckpt {
	uint64_t epoch;
	uint32_t flags;
};

/* STATUS, SESSIONS and STATS replies: JSON text (not NUL-terminated on the wire). */
struct ipc_text {
	const char *text;
	size_t len;
};

/* Every payload; which member is meant follows from the type and direction. */
union ipc_body {
	struct ipc_hello hello;
	struct ipc_hello_reply hello_reply;
	struct ipc_session_open open;
	uint64_t session_id; /* SESSION_OPEN reply */
	struct ipc_pairing pairing;
	struct ipc_pairing_reply pairing_reply;
	struct ipc_pairing_ctl pairing_ctl;
	struct ipc_peer peer;
	struct ipc_connected connected;
	struct ipc_region_add region_add;
	uint64_t pages;	    /* REGION_ADD reply */
	uint32_t region_id; /* REGION_REMOVE */
	struct ipc_take {
		uint32_t region_id;
		uint32_t flags; /* enum rct_ipc_take_flags */
	} take;			/* CKPT_DIRTY, CKPT_STREAM */
	struct ipc_ckpt ckpt;
	struct ipc_refuse refuse;
	struct ipc_devstate devstate;
	uint64_t epoch;	 /* DEVSTATE_GET */
	uint64_t length; /* DEVSTATE_GET reply */
	struct rct_ckpt_stats stats;
	struct rct_event event;
	uint32_t scope; /* STATS: enum rct_ipc_stats_scope */
	struct ipc_text text;
};

enum ipc_dir {
	IPC_REQUEST = 0, /* client -> rctd; EVENT: rctd -> client, unsolicited */
	IPC_REPLY = 1,
};

/*
 * Encode @b, the payload of a @type message going @dir, into @buf (@cap
 * bytes).  Returns the payload length, or -EINVAL (unknown type, a string
 * that does not fit its field), -EMSGSIZE (it exceeds @cap).
 */
int ipc_encode(unsigned type, enum ipc_dir dir, const union ipc_body *b, void *buf, size_t cap);

/*
 * Decode the @len payload bytes at @buf of a @type message going @dir that
 * carried @nfds descriptors into @b (pointers in @b point into @buf).
 * Returns 0, or -EPROTO with what is wrong in @what: the size or the
 * descriptor count the table does not allow, a reserved field set (in a
 * request: a reply's are ignored), an unterminated string, unknown flags, an
 * unknown type.
 */
int ipc_decode(unsigned type, enum ipc_dir dir, const void *buf, size_t len, unsigned nfds,
	       union ipc_body *b, char *what, size_t what_len);

/* Bytes of a @type payload going @dir before any trailing bytes; -1 unknown type. */
long ipc_fixed_size(unsigned type, enum ipc_dir dir);

#endif /* RCT_IPC_PAYLOAD_H */
