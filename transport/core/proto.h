/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Peer control protocol (version 4), carried on the control lane.  The full
 * description and the state machine are in docs/protocol.md.  In short:
 *
 *   primary                               secondary
 *   HELLO(role, lanes, page size) ------>
 *                                 <------ HELLO(role, nregions)
 *                                 <------ LIVENESS(port, token)  (both set RCT_HELLO_LIVENESS)
 *                                 <------ REGION(id, size, remote key) x nregions
 *   per checkpoint:
 *   BEGIN(epoch, flags) ---------------->  (pages are put into the cache on the data lanes)
 *   BITMAP(epoch, region, segments) ---->  (the non-zero words only)
 *   DEVSTATE(epoch, length, slot) ------>  (bytes were put into that staging slot)
 *   COMMIT(epoch, counts, fence) ------->  waits until every lane passed the fence
 *                                 <------ ACK(epoch, COMMITTED)
 *                                 <------ ACK(epoch, FLUSHED) once applied to guest RAM
 *   HEARTBEAT, ERROR, GOODBYE in either direction.
 *
 * Every message is a 16-byte header (magic, version, type, payload length,
 * reserved = 0) and a payload of little-endian fixed-width fields.  Decoding
 * copies the bytes into the wire struct with memcpy, converts them into a
 * separate host struct, and checks every length, count and reserved field.
 */
#ifndef RCT_PROTO_H
#define RCT_PROTO_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rct/rct.h>

#define RCT_PROTO_MAGIC 0x31544352u /* "RCT1" in memory order */
/* 3: REGION carries the region's name; 4: BITMAP carries segments of non-zero words;
 * 5: two staging slots, DEVSTATE says which; ZEROS; 6: BEGIN's BASE flag */
#define RCT_PROTO_VERSION 6

/* Limits a decoder enforces. */
#define RCT_MSG_MAX	     (64 * 1024) /* header + payload */
#define RCT_KEY_MAX	     1024	 /* packed remote key (UCX: ~300 bytes) */
#define RCT_BITMAP_MAX_ITEMS 4096	 /* items (descriptors + words) per BITMAP */
#define RCT_ERROR_TEXT_MAX   256
#define RCT_REGION_NAME_MAX  63 /* bytes of a region's name (rct.h) */
#define RCT_MAX_REGIONS	     1024
#define RCT_MIN_PAGE_SIZE    RCT_PAGE_SIZE_MIN /* the pages a HELLO may announce */
#define RCT_MAX_PAGE_SIZE    RCT_PAGE_SIZE_MAX

enum rct_msg_type {
	RCT_MSG_HELLO = 1,
	RCT_MSG_REGION = 2,
	RCT_MSG_BEGIN = 3,
	RCT_MSG_BITMAP = 4,
	RCT_MSG_DEVSTATE = 5,
	RCT_MSG_COMMIT = 6,
	RCT_MSG_ACK = 7,
	RCT_MSG_HEARTBEAT = 8,
	RCT_MSG_ERROR = 9,
	RCT_MSG_GOODBYE = 10,
	RCT_MSG_AUTH = 11,
	RCT_MSG_LIVENESS = 12,
	RCT_MSG_ZEROS = 13, /* BITMAP's layout: dirty pages that are zero, not put */
	RCT_MSG_TYPE_MAX = RCT_MSG_ZEROS,
};

enum rct_region_kind {
	RCT_REGION_GUEST = 0,	/* colo cache of a guest RAM region */
	RCT_REGION_STAGING = 1, /* device-state staging buffer */
};

enum rct_ack_kind {
	RCT_ACK_COMMITTED = 1, /* all of the epoch is in the secondary's memory */
	RCT_ACK_FLUSHED = 2,   /* applied to guest RAM; the cache may be written again */
	RCT_ACK_REFUSED = 3,   /* not applied (the hypervisor refused it); the cache may be
				  written again, its pages go with the next flush */
};

/* ---- wire structs: little-endian, naturally aligned, sizes pinned ---- */

struct rct_wire_hdr {
	__le32 magic;
	__le16 version;
	__le16 type;
	__le32 length; /* payload bytes that follow */
	__le32 reserved;
};

struct rct_wire_hello {
	__le16 role;
	__le16 lanes;
	__le32 page_size;
	__le32 nregions;
	__le32 flags; /* RCT_HELLO_* */
	__le64 generation;
	__le64 max_put;
};

/* HELLO flags. */
enum rct_hello_flags {
	RCT_HELLO_AUTH = 1u << 0,     /* this side holds a pre-shared key and requires AUTH */
	RCT_HELLO_LIVENESS = 1u << 1, /* this side runs the liveness channel (its own thread) */
	RCT_HELLO_FLAGS = RCT_HELLO_AUTH | RCT_HELLO_LIVENESS,
};

#define RCT_AUTH_NONCE_LEN 32
#define RCT_AUTH_MAC_LEN   32

/* AUTH steps (docs/protocol.md, "Authentication"). */
enum rct_auth_step {
	RCT_AUTH_CHALLENGE = 1, /* primary: its nonce */
	RCT_AUTH_PROVE_S = 2,	/* secondary: its nonce and its MAC over both */
	RCT_AUTH_PROVE_P = 3,	/* primary: its MAC over both */
};

struct rct_wire_auth {
	__le16 step;
	__le16 reserved0;
	__le32 reserved1;
	uint8_t nonce[RCT_AUTH_NONCE_LEN];
	uint8_t mac[RCT_AUTH_MAC_LEN];
};

/* Secondary -> primary, after its HELLO: where its liveness channel listens. */
struct rct_wire_liveness {
	__le16 port;
	__le16 reserved0;
	__le32 reserved1;
	__le64 token; /* random; carried in every beat of this session */
};

struct rct_wire_region {
	__le32 id;
	__le16 kind;
	__le16 key_len; /* bytes of packed key that follow */
	__le64 size;
	__le16 name_len; /* bytes of name after the key (0: unnamed) */
	__le16 reserved0;
	__le32 reserved1;
};

struct rct_wire_begin {
	__le64 epoch;
	__le32 flags;
	__le32 reserved;
};

/*
 * nitems __le64 items follow: segments, each a descriptor (bits 0-31: n, the
 * words in the segment, >= 1; bits 32-63: skip, the words left out before it,
 * counted from first_word for the first segment and from the end of the one
 * before for the others) and then its n bitmap words.  Words left out are
 * zero: an epoch's bitmap costs its non-zero words only.
 */
struct rct_wire_bitmap {
	__le64 epoch;
	__le32 region_id;
	__le32 nitems;
	__le64 first_word;
};

struct rct_wire_devstate {
	__le64 epoch;
	__le64 length;
	__le32 slot; /* the staging slot the bytes were put into: 0 or 1 */
	__le32 reserved;
};

struct rct_wire_commit {
	__le64 epoch;
	__le64 pages;
	__le64 bytes;
	__le64 bitmap_words;
	__le64 devstate_len;
	__le64 fence;
};

struct rct_wire_ack {
	__le64 epoch;
	__le16 kind;
	__le16 reserved0;
	__le32 reserved1;
};

struct rct_wire_heartbeat {
	__le64 seq;
	__le64 last_committed;
};

struct rct_wire_error {
	__le32 code; /* an rct_status_t */
	__le16 text_len;
	__le16 reserved;
};

struct rct_wire_goodbye {
	__le32 reason;
	__le32 reserved;
};

_Static_assert(sizeof(struct rct_wire_hdr) == 16, "wire header");
_Static_assert(sizeof(struct rct_wire_hello) == 32, "wire hello");
_Static_assert(sizeof(struct rct_wire_region) == 24, "wire region");
_Static_assert(sizeof(struct rct_wire_begin) == 16, "wire begin");
_Static_assert(sizeof(struct rct_wire_bitmap) == 24, "wire bitmap");
_Static_assert(sizeof(struct rct_wire_devstate) == 24, "wire devstate");
_Static_assert(sizeof(struct rct_wire_commit) == 48, "wire commit");
_Static_assert(sizeof(struct rct_wire_ack) == 16, "wire ack");
_Static_assert(sizeof(struct rct_wire_heartbeat) == 16, "wire heartbeat");
_Static_assert(sizeof(struct rct_wire_error) == 8, "wire error");
_Static_assert(sizeof(struct rct_wire_goodbye) == 8, "wire goodbye");
_Static_assert(sizeof(struct rct_wire_auth) == 72, "wire auth");
_Static_assert(sizeof(struct rct_wire_liveness) == 16, "wire liveness");
_Static_assert(sizeof(struct rct_wire_hdr) + sizeof(struct rct_wire_bitmap) +
			       RCT_BITMAP_MAX_ITEMS * 8 <=
		       RCT_MSG_MAX,
	       "a full BITMAP fits in one message");

/* ---- host form ---- */

struct rct_msg {
	uint16_t type;
	union {
		struct {
			uint16_t role;
			uint16_t lanes;
			uint32_t page_size;
			uint32_t nregions;
			uint32_t flags;
			uint64_t generation;
			uint64_t max_put;
		} hello;
		struct {
			uint32_t id;
			uint16_t kind;
			uint16_t key_len;
			uint64_t size;
			const void *key; /* points into the decoded buffer */
			uint16_t name_len;
			const char *name; /* not NUL-terminated; into the decoded buffer */
		} region;
		struct {
			uint64_t epoch;
			uint32_t flags;
		} begin;
		struct {
			uint64_t epoch;
			uint32_t region_id;
			uint32_t nitems;
			uint64_t first_word;
			const void *items; /* nitems little-endian u64, unaligned */
		} bitmap;
		struct {
			uint64_t epoch;
			uint64_t length;
			uint32_t slot;
		} devstate;
		struct {
			uint64_t epoch;
			uint64_t pages;
			uint64_t bytes;
			uint64_t bitmap_words;
			uint64_t devstate_len;
			uint64_t fence;
		} commit;
		struct {
			uint64_t epoch;
			uint16_t kind;
		} ack;
		struct {
			uint64_t seq;
			uint64_t last_committed;
		} heartbeat;
		struct {
			int32_t code;
			uint16_t text_len;
			const char *text; /* not NUL-terminated */
		} error;
		struct {
			uint32_t reason;
		} goodbye;
		struct {
			uint16_t port;
			uint64_t token;
		} liveness;
		struct {
			uint16_t step;
			uint8_t nonce[RCT_AUTH_NONCE_LEN];
			uint8_t mac[RCT_AUTH_MAC_LEN];
		} auth;
	};
};

/* Name of a message type for logs ("BITMAP"), or "unknown". */
const char *rct_msg_type_str(unsigned type);

/*
 * Encode @msg into @buf.  Returns RCT_OK and the total length, or
 * RCT_ERR_INVALID_PARAM (a field out of range) / RCT_ERR_NO_SPACE (@cap).
 */
rct_status_t rct_msg_encode(const struct rct_msg *msg, void *buf, size_t cap, size_t *len_p);

/*
 * Decode and validate one whole message of @len bytes.  Pointers in @msg_p
 * point into @buf.  On failure *why_p (if not NULL) names what was wrong;
 * returns RCT_ERR_PROTO, or RCT_ERR_VERSION for an unknown protocol version.
 */
rct_status_t rct_msg_decode(const void *buf, size_t len, struct rct_msg *msg_p, const char **why_p);

/* Item @i of a BITMAP message, in host order. */
uint64_t rct_msg_bitmap_item(const struct rct_msg *msg, uint32_t i);

/* A BITMAP segment descriptor. */
static inline uint64_t rct_bitmap_seg(uint64_t skip, uint32_t n)
{
	return skip << 32 | n;
}

/* Walks the words of a decoded (so well-formed) BITMAP: zero-initialize, then next. */
struct rct_bitmap_cursor {
	uint32_t item; /* next item */
	uint32_t left; /* words left in the current segment */
	uint64_t word; /* index of the next word */
	bool started;
};

/* The next word carried: its index in the region and its value.  False at the end. */
bool rct_msg_bitmap_next(const struct rct_msg *msg, struct rct_bitmap_cursor *c, uint64_t *w_p,
			 uint64_t *v_p);

/* A region name: 1..RCT_REGION_NAME_MAX bytes of printable ASCII, no space. */
static inline bool rct_region_name_valid(const char *name, size_t len)
{
	if (!len || len > RCT_REGION_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] <= ' ' || name[i] > '~')
			return false;
	return true;
}

/* Check a decoded BITMAP against a region of @region_words words (every word inside). */
rct_status_t rct_msg_bitmap_check(const struct rct_msg *msg, uint64_t region_words,
				  const char **why_p);

#endif /* RCT_PROTO_H */
