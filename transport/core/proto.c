/* SPDX-License-Identifier: BSD-3-Clause */
/* Encode and decode the peer control protocol; see proto.h and docs/protocol.md. */
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "util.h"

/*
 * One table drives both directions: per type, its name, the fixed payload
 * size, one encode/decode pair for the fixed fields (byte order; the decoder
 * also refuses a set reserved field), and the variable part's accessors.
 * What makes a message valid beyond its layout (roles, limits, flags) is one
 * function, rct_msg_invalid(), which the encoder applies before it writes
 * and the decoder after it reads: the two cannot disagree on what is valid.
 */

union rct_wire {
	struct rct_wire_hello hello;
	struct rct_wire_region region;
	struct rct_wire_begin begin;
	struct rct_wire_bitmap bitmap;
	struct rct_wire_devstate devstate;
	struct rct_wire_commit commit;
	struct rct_wire_ack ack;
	struct rct_wire_heartbeat heartbeat;
	struct rct_wire_error error;
	struct rct_wire_goodbye goodbye;
	struct rct_wire_auth auth;
	struct rct_wire_liveness liveness;
};

/* Why a message was refused, formatted (limits from their macros): per thread. */
static __thread char rct_proto_why[192];

static const char *rct_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *rct_why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rct_proto_why, sizeof(rct_proto_why), fmt, ap);
	va_end(ap);
	return rct_proto_why;
}

/* ------------------------------------------------ one pair per type */

static void enc_hello(const struct rct_msg *m, union rct_wire *w)
{
	w->hello.role = htole16(m->hello.role);
	w->hello.lanes = htole16(m->hello.lanes);
	w->hello.page_size = htole32(m->hello.page_size);
	w->hello.nregions = htole32(m->hello.nregions);
	w->hello.flags = htole32(m->hello.flags);
	w->hello.generation = htole64(m->hello.generation);
	w->hello.max_put = htole64(m->hello.max_put);
}

static const char *dec_hello(const union rct_wire *w, struct rct_msg *m)
{
	m->hello.flags = le32toh(w->hello.flags);
	m->hello.role = le16toh(w->hello.role);
	m->hello.lanes = le16toh(w->hello.lanes);
	m->hello.page_size = le32toh(w->hello.page_size);
	m->hello.nregions = le32toh(w->hello.nregions);
	m->hello.generation = le64toh(w->hello.generation);
	m->hello.max_put = le64toh(w->hello.max_put);
	return NULL;
}

static void enc_region(const struct rct_msg *m, union rct_wire *w)
{
	w->region.id = htole32(m->region.id);
	w->region.kind = htole16(m->region.kind);
	w->region.key_len = htole16(m->region.key_len);
	w->region.size = htole64(m->region.size);
	w->region.name_len = htole16(m->region.name_len);
}

static const char *dec_region(const union rct_wire *w, struct rct_msg *m)
{
	m->region.id = le32toh(w->region.id);
	m->region.kind = le16toh(w->region.kind);
	m->region.key_len = le16toh(w->region.key_len);
	m->region.size = le64toh(w->region.size);
	m->region.name_len = le16toh(w->region.name_len);
	return w->region.reserved0 || w->region.reserved1 ? "REGION: nonzero reserved field" : NULL;
}

/* The variable part is the key, then the name. */
static size_t var_len_region(const struct rct_msg *m)
{
	return (size_t)m->region.key_len + m->region.name_len;
}

static const void *var_get_region(const struct rct_msg *m)
{
	return m->region.key;
}

static void var_set_region(struct rct_msg *m, const void *p)
{
	m->region.key = p;
	m->region.name = (const char *)p + m->region.key_len;
}

static void enc_begin(const struct rct_msg *m, union rct_wire *w)
{
	w->begin.epoch = htole64(m->begin.epoch);
	w->begin.flags = htole32(m->begin.flags);
}

static const char *dec_begin(const union rct_wire *w, struct rct_msg *m)
{
	m->begin.epoch = le64toh(w->begin.epoch);
	m->begin.flags = le32toh(w->begin.flags);
	return w->begin.reserved ? "BEGIN: nonzero reserved field" : NULL;
}

static void enc_bitmap(const struct rct_msg *m, union rct_wire *w)
{
	w->bitmap.epoch = htole64(m->bitmap.epoch);
	w->bitmap.region_id = htole32(m->bitmap.region_id);
	w->bitmap.nitems = htole32(m->bitmap.nitems);
	w->bitmap.first_word = htole64(m->bitmap.first_word);
}

static const char *dec_bitmap(const union rct_wire *w, struct rct_msg *m)
{
	m->bitmap.epoch = le64toh(w->bitmap.epoch);
	m->bitmap.region_id = le32toh(w->bitmap.region_id);
	m->bitmap.nitems = le32toh(w->bitmap.nitems);
	m->bitmap.first_word = le64toh(w->bitmap.first_word);
	return NULL;
}

static size_t var_len_bitmap(const struct rct_msg *m)
{
	return (size_t)m->bitmap.nitems * 8;
}

/* The caller gives little-endian words; the decoder leaves them so (rct_msg_bitmap_word()). */
static const void *var_get_bitmap(const struct rct_msg *m)
{
	return m->bitmap.items;
}

static void var_set_bitmap(struct rct_msg *m, const void *p)
{
	m->bitmap.items = p;
}

static void enc_devstate(const struct rct_msg *m, union rct_wire *w)
{
	w->devstate.epoch = htole64(m->devstate.epoch);
	w->devstate.length = htole64(m->devstate.length);
	w->devstate.slot = htole32(m->devstate.slot);
}

static const char *dec_devstate(const union rct_wire *w, struct rct_msg *m)
{
	m->devstate.epoch = le64toh(w->devstate.epoch);
	m->devstate.length = le64toh(w->devstate.length);
	m->devstate.slot = le32toh(w->devstate.slot);
	if (m->devstate.slot > 1)
		return "DEVSTATE: staging slot is not 0 or 1";
	return w->devstate.reserved ? "DEVSTATE: nonzero reserved field" : NULL;
}

static void enc_commit(const struct rct_msg *m, union rct_wire *w)
{
	w->commit.epoch = htole64(m->commit.epoch);
	w->commit.pages = htole64(m->commit.pages);
	w->commit.bytes = htole64(m->commit.bytes);
	w->commit.bitmap_words = htole64(m->commit.bitmap_words);
	w->commit.devstate_len = htole64(m->commit.devstate_len);
	w->commit.fence = htole64(m->commit.fence);
}

static const char *dec_commit(const union rct_wire *w, struct rct_msg *m)
{
	m->commit.epoch = le64toh(w->commit.epoch);
	m->commit.pages = le64toh(w->commit.pages);
	m->commit.bytes = le64toh(w->commit.bytes);
	m->commit.bitmap_words = le64toh(w->commit.bitmap_words);
	m->commit.devstate_len = le64toh(w->commit.devstate_len);
	m->commit.fence = le64toh(w->commit.fence);
	return NULL;
}

static void enc_ack(const struct rct_msg *m, union rct_wire *w)
{
	w->ack.epoch = htole64(m->ack.epoch);
	w->ack.kind = htole16(m->ack.kind);
}

static const char *dec_ack(const union rct_wire *w, struct rct_msg *m)
{
	m->ack.epoch = le64toh(w->ack.epoch);
	m->ack.kind = le16toh(w->ack.kind);
	return w->ack.reserved0 || w->ack.reserved1 ? "ACK: nonzero reserved field" : NULL;
}

static void enc_heartbeat(const struct rct_msg *m, union rct_wire *w)
{
	w->heartbeat.seq = htole64(m->heartbeat.seq);
	w->heartbeat.last_committed = htole64(m->heartbeat.last_committed);
}

static const char *dec_heartbeat(const union rct_wire *w, struct rct_msg *m)
{
	m->heartbeat.seq = le64toh(w->heartbeat.seq);
	m->heartbeat.last_committed = le64toh(w->heartbeat.last_committed);
	return NULL;
}

static void enc_error(const struct rct_msg *m, union rct_wire *w)
{
	w->error.code = htole32((uint32_t)m->error.code);
	w->error.text_len = htole16(m->error.text_len);
}

static const char *dec_error(const union rct_wire *w, struct rct_msg *m)
{
	m->error.code = (int32_t)le32toh(w->error.code);
	m->error.text_len = le16toh(w->error.text_len);
	return w->error.reserved ? "ERROR: nonzero reserved field" : NULL;
}

static size_t var_len_error(const struct rct_msg *m)
{
	return m->error.text_len;
}

static const void *var_get_error(const struct rct_msg *m)
{
	return m->error.text;
}

static void var_set_error(struct rct_msg *m, const void *p)
{
	m->error.text = p;
}

static void enc_goodbye(const struct rct_msg *m, union rct_wire *w)
{
	w->goodbye.reason = htole32(m->goodbye.reason);
}

static const char *dec_goodbye(const union rct_wire *w, struct rct_msg *m)
{
	m->goodbye.reason = le32toh(w->goodbye.reason);
	return w->goodbye.reserved ? "GOODBYE: nonzero reserved field" : NULL;
}

static void enc_auth(const struct rct_msg *m, union rct_wire *w)
{
	w->auth.step = htole16(m->auth.step);
	memcpy(w->auth.nonce, m->auth.nonce, sizeof(w->auth.nonce));
	memcpy(w->auth.mac, m->auth.mac, sizeof(w->auth.mac));
}

static const char *dec_auth(const union rct_wire *w, struct rct_msg *m)
{
	m->auth.step = le16toh(w->auth.step);
	memcpy(m->auth.nonce, w->auth.nonce, sizeof(w->auth.nonce));
	memcpy(m->auth.mac, w->auth.mac, sizeof(w->auth.mac));
	return w->auth.reserved0 || w->auth.reserved1 ? "AUTH: nonzero reserved field" : NULL;
}

static void enc_liveness(const struct rct_msg *m, union rct_wire *w)
{
	w->liveness.port = htole16(m->liveness.port);
	w->liveness.token = htole64(m->liveness.token);
}

static const char *dec_liveness(const union rct_wire *w, struct rct_msg *m)
{
	m->liveness.port = le16toh(w->liveness.port);
	m->liveness.token = le64toh(w->liveness.token);
	return w->liveness.reserved0 || w->liveness.reserved1 ? "LIVENESS: nonzero reserved field"
							      : NULL;
}

/* ------------------------------------------------------------ the table */

struct rct_msg_layout {
	const char *name;
	uint16_t fixed; /* 0: no such type */
	void (*enc)(const struct rct_msg *m, union rct_wire *w);
	const char *(*dec)(const union rct_wire *w, struct rct_msg *m);
	/* The variable part after the fixed one (NULL: none), and its length's name. */
	size_t (*var_len)(const struct rct_msg *m);
	const void *(*var_get)(const struct rct_msg *m);
	void (*var_set)(struct rct_msg *m, const void *p);
	const char *var_what;
};

#define RCT_LAYOUT(T, n)                                                                           \
	[RCT_MSG_##T] = {                                                                          \
		.name = #T, .fixed = sizeof(struct rct_wire_##n), .enc = enc_##n, .dec = dec_##n}
#define RCT_LAYOUT_VAR(T, n, what)                                                                 \
	[RCT_MSG_##T] = {.name = #T,                                                               \
			 .fixed = sizeof(struct rct_wire_##n),                                     \
			 .enc = enc_##n,                                                           \
			 .dec = dec_##n,                                                           \
			 .var_len = var_len_##n,                                                   \
			 .var_get = var_get_##n,                                                   \
			 .var_set = var_set_##n,                                                   \
			 .var_what = what}

static const struct rct_msg_layout rct_msg_layouts[RCT_MSG_TYPE_MAX + 1] = {
	RCT_LAYOUT(HELLO, hello),
	RCT_LAYOUT_VAR(REGION, region, "key and name length"),
	RCT_LAYOUT(BEGIN, begin),
	RCT_LAYOUT_VAR(BITMAP, bitmap, "item count"),
	RCT_LAYOUT(DEVSTATE, devstate),
	RCT_LAYOUT(COMMIT, commit),
	RCT_LAYOUT(ACK, ack),
	RCT_LAYOUT(HEARTBEAT, heartbeat),
	RCT_LAYOUT_VAR(ERROR, error, "text length"),
	RCT_LAYOUT(GOODBYE, goodbye),
	RCT_LAYOUT(AUTH, auth),
	RCT_LAYOUT(LIVENESS, liveness),
	[RCT_MSG_ZEROS] = {.name = "ZEROS",
			   .fixed = sizeof(struct rct_wire_bitmap),
			   .enc = enc_bitmap,
			   .dec = dec_bitmap,
			   .var_len = var_len_bitmap,
			   .var_get = var_get_bitmap,
			   .var_set = var_set_bitmap,
			   .var_what = "item count"},
};

static const struct rct_msg_layout *rct_msg_layout(unsigned type)
{
	if (type == 0 || type > RCT_MSG_TYPE_MAX || !rct_msg_layouts[type].fixed)
		return NULL;
	return &rct_msg_layouts[type];
}

const char *rct_msg_type_str(unsigned type)
{
	const struct rct_msg_layout *l = rct_msg_layout(type);

	return l ? l->name : "unknown";
}

/* The segments of a BITMAP: each descriptor names 1.. words that are there. */
static const char *rct_msg_bitmap_invalid(const struct rct_msg *m)
{
	uint64_t end = m->bitmap.first_word;

	if (!m->bitmap.nitems || m->bitmap.nitems > RCT_BITMAP_MAX_ITEMS)
		return rct_why("BITMAP: item count %u: 0 or above %d", m->bitmap.nitems,
			       RCT_BITMAP_MAX_ITEMS);
	if (!m->bitmap.items)
		return "BITMAP: no items";
	for (uint32_t i = 0; i < m->bitmap.nitems;) {
		uint64_t d = rct_msg_bitmap_item(m, i);
		uint32_t n = (uint32_t)d;

		if (!n)
			return rct_why("BITMAP: item %u: a segment of no words", i);
		if (n > m->bitmap.nitems - i - 1)
			return rct_why("BITMAP: item %u: a segment of %u words, %u items left", i,
				       n, m->bitmap.nitems - i - 1);
		if (end > UINT64_MAX - (d >> 32) - n)
			return "BITMAP: word index overflows";
		end += (d >> 32) + n;
		i += 1 + n;
	}
	return NULL;
}

/*
 * What makes a message valid beyond its layout, for both directions: NULL,
 * or why not.  The limits in the texts come from the macros that set them.
 */
static const char *rct_msg_invalid(const struct rct_msg *m)
{
	switch (m->type) {
	case RCT_MSG_HELLO:
		if (m->hello.flags & ~(uint32_t)RCT_HELLO_FLAGS)
			return "HELLO: unknown flags";
		if (m->hello.role != RCT_ROLE_PRIMARY && m->hello.role != RCT_ROLE_SECONDARY)
			return "HELLO: unknown role";
		if (m->hello.lanes > RCT_MAX_LANES)
			return rct_why("HELLO: lane count %u above %d", m->hello.lanes,
				       RCT_MAX_LANES);
		if (!rct_is_pow2(m->hello.page_size) || m->hello.page_size < RCT_MIN_PAGE_SIZE ||
		    m->hello.page_size > RCT_MAX_PAGE_SIZE)
			return rct_why("HELLO: page size %u not a power of two from %d to %u",
				       m->hello.page_size, RCT_MIN_PAGE_SIZE, RCT_MAX_PAGE_SIZE);
		if (m->hello.nregions > RCT_MAX_REGIONS)
			return rct_why("HELLO: region count %u above %d", m->hello.nregions,
				       RCT_MAX_REGIONS);
		return NULL;
	case RCT_MSG_REGION:
		if (m->region.kind != RCT_REGION_GUEST && m->region.kind != RCT_REGION_STAGING)
			return "REGION: unknown region kind";
		if (m->region.key_len > RCT_KEY_MAX)
			return rct_why("REGION: remote key of %u bytes, longer than %d",
				       m->region.key_len, RCT_KEY_MAX);
		if (m->region.name_len > RCT_REGION_NAME_MAX)
			return rct_why("REGION: name of %u bytes, longer than %d",
				       m->region.name_len, RCT_REGION_NAME_MAX);
		if (m->region.key_len && !m->region.key)
			return "REGION: no key bytes";
		/* One variable part: the encoder copies key_len + name_len bytes
		 * from the key (the decoder points name there). */
		if (m->region.name_len &&
		    m->region.name != (const char *)m->region.key + m->region.key_len)
			return "REGION: the name does not follow the key";
		if (m->region.name_len &&
		    !rct_region_name_valid(m->region.name, m->region.name_len))
			return "REGION: name holds a byte that is not printable ASCII";
		return NULL;
	case RCT_MSG_BEGIN:
		if (m->begin.flags & ~(uint32_t)(RCT_CKPT_FULL | RCT_CKPT_LIVE | RCT_CKPT_BASE))
			return "BEGIN: unknown flags";
		if ((m->begin.flags & RCT_CKPT_LIVE) && !(m->begin.flags & RCT_CKPT_FULL))
			return "BEGIN: LIVE without FULL";
		if ((m->begin.flags & RCT_CKPT_BASE) && !(m->begin.flags & RCT_CKPT_LIVE))
			return "BEGIN: BASE without FULL and LIVE";
		return NULL;
	case RCT_MSG_BITMAP:
	case RCT_MSG_ZEROS:
		return rct_msg_bitmap_invalid(m);
	case RCT_MSG_ACK:
		if (m->ack.kind < RCT_ACK_COMMITTED || m->ack.kind > RCT_ACK_REFUSED)
			return "ACK: unknown kind";
		return NULL;
	case RCT_MSG_ERROR:
		if (m->error.text_len > RCT_ERROR_TEXT_MAX)
			return rct_why("ERROR: text of %u bytes, longer than %d", m->error.text_len,
				       RCT_ERROR_TEXT_MAX);
		return m->error.text_len && !m->error.text ? "ERROR: no text bytes" : NULL;
	case RCT_MSG_AUTH:
		if (m->auth.step < RCT_AUTH_CHALLENGE || m->auth.step > RCT_AUTH_PROVE_P)
			return "AUTH: unknown step";
		return NULL;
	case RCT_MSG_LIVENESS:
		return m->liveness.port ? NULL : "LIVENESS: port 0";
	}
	return NULL;
}

rct_status_t rct_msg_encode(const struct rct_msg *msg, void *buf, size_t cap, size_t *len_p)
{
	const struct rct_msg_layout *l = rct_msg_layout(msg->type);
	struct rct_wire_hdr hdr;
	union rct_wire w;
	size_t var_len, total;

	if (!l || rct_msg_invalid(msg))
		return RCT_ERR_INVALID_PARAM;
	var_len = l->var_len ? l->var_len(msg) : 0;
	total = sizeof(hdr) + l->fixed + var_len;
	if (total > cap || total > RCT_MSG_MAX)
		return RCT_ERR_NO_SPACE;
	memset(&w, 0, sizeof(w));
	l->enc(msg, &w);
	hdr.magic = htole32(RCT_PROTO_MAGIC);
	hdr.version = htole16(RCT_PROTO_VERSION);
	hdr.type = htole16(msg->type);
	hdr.length = htole32((uint32_t)(l->fixed + var_len));
	hdr.reserved = 0;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy((char *)buf + sizeof(hdr), &w, l->fixed);
	if (var_len)
		memcpy((char *)buf + sizeof(hdr) + l->fixed, l->var_get(msg), var_len);
	*len_p = total;
	return RCT_OK;
}

#define RCT_PROTO_FAIL(_why)                                                                       \
	do {                                                                                       \
		if (why_p)                                                                         \
			*why_p = (_why);                                                           \
		return RCT_ERR_PROTO;                                                              \
	} while (0)

rct_status_t rct_msg_decode(const void *buf, size_t len, struct rct_msg *msg_p, const char **why_p)
{
	const struct rct_msg_layout *l;
	const char *p = buf, *why;
	struct rct_wire_hdr hdr;
	union rct_wire w;
	struct rct_msg m;
	size_t var_len;

	if (len < sizeof(hdr))
		RCT_PROTO_FAIL(rct_why("message shorter than the %zu-byte header", sizeof(hdr)));
	memcpy(&hdr, p, sizeof(hdr));
	if (le32toh(hdr.magic) != RCT_PROTO_MAGIC)
		RCT_PROTO_FAIL("bad magic");
	if (le16toh(hdr.version) != RCT_PROTO_VERSION) {
		if (why_p)
			*why_p = rct_why("unsupported protocol version (this build speaks version "
					 "%d)",
					 RCT_PROTO_VERSION);
		return RCT_ERR_VERSION;
	}
	if (hdr.reserved)
		RCT_PROTO_FAIL("nonzero reserved field in header");
	if (len > RCT_MSG_MAX)
		RCT_PROTO_FAIL(rct_why("message larger than %d KiB", RCT_MSG_MAX / 1024));
	if (le32toh(hdr.length) != len - sizeof(hdr))
		RCT_PROTO_FAIL("header length does not match the message size");
	l = rct_msg_layout(le16toh(hdr.type));
	if (!l)
		RCT_PROTO_FAIL("unknown message type");
	if (len - sizeof(hdr) < l->fixed)
		RCT_PROTO_FAIL("payload shorter than its message type");
	p += sizeof(hdr);
	var_len = len - sizeof(hdr) - l->fixed;

	memset(&m, 0, sizeof(m));
	memset(&w, 0, sizeof(w));
	memcpy(&w, p, l->fixed);
	m.type = le16toh(hdr.type);
	why = l->dec(&w, &m);
	/* The lengths first: the checks below read the variable part. */
	if (!why && l->var_len && l->var_len(&m) != var_len)
		why = rct_why("%s: %s does not match the payload", l->name, l->var_what);
	if (!why && l->var_set)
		l->var_set(&m, p + l->fixed);
	if (!why)
		why = rct_msg_invalid(&m);
	/* Only the types with a variable part carry bytes after the fixed part. */
	if (!why && !l->var_len && var_len)
		why = "payload longer than its message type";
	if (why)
		RCT_PROTO_FAIL(why);
	*msg_p = m;
	return RCT_OK;
}

uint64_t rct_msg_bitmap_item(const struct rct_msg *msg, uint32_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)msg->bitmap.items + (size_t)i * 8, sizeof(v));
	return le64toh(v);
}

bool rct_msg_bitmap_next(const struct rct_msg *msg, struct rct_bitmap_cursor *c, uint64_t *w_p,
			 uint64_t *v_p)
{
	if (!c->started) {
		c->started = true;
		c->word = msg->bitmap.first_word;
	}
	if (!c->left) {
		uint64_t d;

		if (c->item >= msg->bitmap.nitems)
			return false;
		d = rct_msg_bitmap_item(msg, c->item++);
		c->word += d >> 32;
		c->left = (uint32_t)d;
	}
	*w_p = c->word++;
	*v_p = rct_msg_bitmap_item(msg, c->item++);
	c->left--;
	return true;
}

rct_status_t rct_msg_bitmap_check(const struct rct_msg *msg, uint64_t region_words,
				  const char **why_p)
{
	struct rct_bitmap_cursor c = {0};
	uint64_t w, v, last = msg->bitmap.first_word;

	/* Decoded, so the segments are well formed: the last word is the end. */
	while (rct_msg_bitmap_next(msg, &c, &w, &v))
		last = w;
	if (msg->bitmap.first_word >= region_words || last >= region_words)
		RCT_PROTO_FAIL("BITMAP: words beyond the end of the region");
	return RCT_OK;
}
