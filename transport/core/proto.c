/* SPDX-License-Identifier: BSD-3-Clause */
/* Encode and decode the peer control protocol; see proto.h and docs/protocol.md. */
#include <endian.h>
#include <string.h>

#include "proto.h"
#include "util.h"

static const char *const rct_msg_names[] = {
	[RCT_MSG_HELLO] = "HELLO",	 [RCT_MSG_REGION] = "REGION",
	[RCT_MSG_BEGIN] = "BEGIN",	 [RCT_MSG_BITMAP] = "BITMAP",
	[RCT_MSG_DEVSTATE] = "DEVSTATE", [RCT_MSG_COMMIT] = "COMMIT",
	[RCT_MSG_ACK] = "ACK",		 [RCT_MSG_HEARTBEAT] = "HEARTBEAT",
	[RCT_MSG_ERROR] = "ERROR",	 [RCT_MSG_GOODBYE] = "GOODBYE",
	[RCT_MSG_AUTH] = "AUTH",	 [RCT_MSG_LIVENESS] = "LIVENESS",
};

const char *rct_msg_type_str(unsigned type)
{
	if (type == 0 || type > RCT_MSG_TYPE_MAX)
		return "unknown";
	return rct_msg_names[type];
}

/* Fixed payload size of each type (variable parts follow it). */
static size_t rct_msg_fixed_len(unsigned type)
{
	switch (type) {
	case RCT_MSG_HELLO:
		return sizeof(struct rct_wire_hello);
	case RCT_MSG_REGION:
		return sizeof(struct rct_wire_region);
	case RCT_MSG_BEGIN:
		return sizeof(struct rct_wire_begin);
	case RCT_MSG_BITMAP:
		return sizeof(struct rct_wire_bitmap);
	case RCT_MSG_DEVSTATE:
		return sizeof(struct rct_wire_devstate);
	case RCT_MSG_COMMIT:
		return sizeof(struct rct_wire_commit);
	case RCT_MSG_ACK:
		return sizeof(struct rct_wire_ack);
	case RCT_MSG_HEARTBEAT:
		return sizeof(struct rct_wire_heartbeat);
	case RCT_MSG_ERROR:
		return sizeof(struct rct_wire_error);
	case RCT_MSG_GOODBYE:
		return sizeof(struct rct_wire_goodbye);
	case RCT_MSG_AUTH:
		return sizeof(struct rct_wire_auth);
	case RCT_MSG_LIVENESS:
		return sizeof(struct rct_wire_liveness);
	}
	return 0;
}

/* Length of the variable part of @msg (already range-checked by the caller). */
static size_t rct_msg_var_len(const struct rct_msg *msg)
{
	switch (msg->type) {
	case RCT_MSG_REGION:
		return msg->region.key_len;
	case RCT_MSG_BITMAP:
		return (size_t)msg->bitmap.nwords * 8;
	case RCT_MSG_ERROR:
		return msg->error.text_len;
	}
	return 0;
}

static rct_status_t rct_msg_check_host(const struct rct_msg *msg)
{
	switch (msg->type) {
	case RCT_MSG_HELLO:
		if ((msg->hello.role != RCT_ROLE_PRIMARY &&
		     msg->hello.role != RCT_ROLE_SECONDARY) ||
		    msg->hello.lanes > RCT_MAX_LANES || !rct_is_pow2(msg->hello.page_size) ||
		    msg->hello.nregions > RCT_MAX_REGIONS || (msg->hello.flags & ~RCT_HELLO_FLAGS))
			return RCT_ERR_INVALID_PARAM;
		return RCT_OK;
	case RCT_MSG_AUTH:
		if (msg->auth.step < RCT_AUTH_CHALLENGE || msg->auth.step > RCT_AUTH_PROVE_P)
			return RCT_ERR_INVALID_PARAM;
		return RCT_OK;
	case RCT_MSG_REGION:
		if (msg->region.key_len > RCT_KEY_MAX || (msg->region.key_len && !msg->region.key))
			return RCT_ERR_INVALID_PARAM;
		return RCT_OK;
	case RCT_MSG_LIVENESS:
		return msg->liveness.port ? RCT_OK : RCT_ERR_INVALID_PARAM;
	case RCT_MSG_BITMAP:
		if (!msg->bitmap.nwords || msg->bitmap.nwords > RCT_BITMAP_CHUNK_WORDS ||
		    !msg->bitmap.words)
			return RCT_ERR_INVALID_PARAM;
		return RCT_OK;
	case RCT_MSG_ACK:
		if (msg->ack.kind != RCT_ACK_COMMITTED && msg->ack.kind != RCT_ACK_FLUSHED)
			return RCT_ERR_INVALID_PARAM;
		return RCT_OK;
	case RCT_MSG_ERROR:
		if (msg->error.text_len > RCT_ERROR_TEXT_MAX ||
		    (msg->error.text_len && !msg->error.text))
			return RCT_ERR_INVALID_PARAM;
		return RCT_OK;
	case RCT_MSG_BEGIN:
	case RCT_MSG_DEVSTATE:
	case RCT_MSG_COMMIT:
	case RCT_MSG_HEARTBEAT:
	case RCT_MSG_GOODBYE:
		return RCT_OK;
	}
	return RCT_ERR_INVALID_PARAM;
}

rct_status_t rct_msg_encode(const struct rct_msg *msg, void *buf, size_t cap, size_t *len_p)
{
	struct rct_wire_hdr hdr;
	union {
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
	} w;
	const void *var = NULL;
	size_t fixed, var_len, total;
	rct_status_t status;

	status = rct_msg_check_host(msg);
	if (status != RCT_OK)
		return status;
	fixed = rct_msg_fixed_len(msg->type);
	var_len = rct_msg_var_len(msg);
	total = sizeof(hdr) + fixed + var_len;
	if (total > cap || total > RCT_MSG_MAX)
		return RCT_ERR_NO_SPACE;

	memset(&w, 0, sizeof(w));
	switch (msg->type) {
	case RCT_MSG_HELLO:
		w.hello.role = htole16(msg->hello.role);
		w.hello.lanes = htole16(msg->hello.lanes);
		w.hello.page_size = htole32(msg->hello.page_size);
		w.hello.nregions = htole32(msg->hello.nregions);
		w.hello.flags = htole32(msg->hello.flags);
		w.hello.generation = htole64(msg->hello.generation);
		w.hello.max_put = htole64(msg->hello.max_put);
		break;
	case RCT_MSG_REGION:
		w.region.id = htole32(msg->region.id);
		w.region.kind = htole16(msg->region.kind);
		w.region.key_len = htole16(msg->region.key_len);
		w.region.size = htole64(msg->region.size);
		var = msg->region.key;
		break;
	case RCT_MSG_BEGIN:
		w.begin.epoch = htole64(msg->begin.epoch);
		w.begin.flags = htole32(msg->begin.flags);
		break;
	case RCT_MSG_BITMAP:
		w.bitmap.epoch = htole64(msg->bitmap.epoch);
		w.bitmap.region_id = htole32(msg->bitmap.region_id);
		w.bitmap.nwords = htole32(msg->bitmap.nwords);
		w.bitmap.first_word = htole64(msg->bitmap.first_word);
		var = msg->bitmap.words; /* the caller gives little-endian words */
		break;
	case RCT_MSG_DEVSTATE:
		w.devstate.epoch = htole64(msg->devstate.epoch);
		w.devstate.length = htole64(msg->devstate.length);
		break;
	case RCT_MSG_COMMIT:
		w.commit.epoch = htole64(msg->commit.epoch);
		w.commit.pages = htole64(msg->commit.pages);
		w.commit.bytes = htole64(msg->commit.bytes);
		w.commit.bitmap_words = htole64(msg->commit.bitmap_words);
		w.commit.devstate_len = htole64(msg->commit.devstate_len);
		w.commit.fence = htole64(msg->commit.fence);
		break;
	case RCT_MSG_ACK:
		w.ack.epoch = htole64(msg->ack.epoch);
		w.ack.kind = htole16(msg->ack.kind);
		break;
	case RCT_MSG_HEARTBEAT:
		w.heartbeat.seq = htole64(msg->heartbeat.seq);
		w.heartbeat.last_committed = htole64(msg->heartbeat.last_committed);
		break;
	case RCT_MSG_ERROR:
		w.error.code = htole32((uint32_t)msg->error.code);
		w.error.text_len = htole16(msg->error.text_len);
		var = msg->error.text;
		break;
	case RCT_MSG_GOODBYE:
		w.goodbye.reason = htole32(msg->goodbye.reason);
		break;
	case RCT_MSG_AUTH:
		w.auth.step = htole16(msg->auth.step);
		memcpy(w.auth.nonce, msg->auth.nonce, sizeof(w.auth.nonce));
		memcpy(w.auth.mac, msg->auth.mac, sizeof(w.auth.mac));
		break;
	case RCT_MSG_LIVENESS:
		w.liveness.port = htole16(msg->liveness.port);
		w.liveness.token = htole64(msg->liveness.token);
		break;
	}

	hdr.magic = htole32(RCT_PROTO_MAGIC);
	hdr.version = htole16(RCT_PROTO_VERSION);
	hdr.type = htole16(msg->type);
	hdr.length = htole32((uint32_t)(fixed + var_len));
	hdr.reserved = 0;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy((char *)buf + sizeof(hdr), &w, fixed);
	if (var_len)
		memcpy((char *)buf + sizeof(hdr) + fixed, var, var_len);
	*len_p = total;
	return RCT_OK;
}

#define RCT_STR_(x) #x
#define RCT_STR(x)  RCT_STR_(x)

#define RCT_PROTO_FAIL(_why)                                                                       \
	do {                                                                                       \
		if (why_p)                                                                         \
			*why_p = (_why);                                                           \
		return RCT_ERR_PROTO;                                                              \
	} while (0)

rct_status_t rct_msg_decode(const void *buf, size_t len, struct rct_msg *msg_p, const char **why_p)
{
	const char *p = buf;
	struct rct_wire_hdr hdr;
	struct rct_msg m;
	size_t fixed, var_len;
	uint16_t type;

	if (len < sizeof(hdr))
		RCT_PROTO_FAIL("message shorter than the 16-byte header");
	memcpy(&hdr, p, sizeof(hdr));
	if (le32toh(hdr.magic) != RCT_PROTO_MAGIC)
		RCT_PROTO_FAIL("bad magic");
	if (le16toh(hdr.version) != RCT_PROTO_VERSION) {
		if (why_p)
			*why_p = "unsupported protocol version (this build speaks version " RCT_STR(
				RCT_PROTO_VERSION) ")";
		return RCT_ERR_VERSION;
	}
	if (hdr.reserved)
		RCT_PROTO_FAIL("nonzero reserved field in header");
	if (len > RCT_MSG_MAX)
		RCT_PROTO_FAIL("message larger than 64 KiB");
	if (le32toh(hdr.length) != len - sizeof(hdr))
		RCT_PROTO_FAIL("header length does not match the message size");

	type = le16toh(hdr.type);
	fixed = rct_msg_fixed_len(type);
	if (!fixed)
		RCT_PROTO_FAIL("unknown message type");
	if (len - sizeof(hdr) < fixed)
		RCT_PROTO_FAIL("payload shorter than its message type");
	p += sizeof(hdr);
	var_len = len - sizeof(hdr) - fixed;

	memset(&m, 0, sizeof(m));
	m.type = type;
	switch (type) {
	case RCT_MSG_HELLO: {
		struct rct_wire_hello w;

		memcpy(&w, p, sizeof(w));
		if (le32toh(w.flags) & ~(uint32_t)RCT_HELLO_FLAGS)
			RCT_PROTO_FAIL("HELLO: unknown flags");
		m.hello.flags = le32toh(w.flags);
		m.hello.role = le16toh(w.role);
		m.hello.lanes = le16toh(w.lanes);
		m.hello.page_size = le32toh(w.page_size);
		m.hello.nregions = le32toh(w.nregions);
		m.hello.generation = le64toh(w.generation);
		m.hello.max_put = le64toh(w.max_put);
		if (m.hello.role != RCT_ROLE_PRIMARY && m.hello.role != RCT_ROLE_SECONDARY)
			RCT_PROTO_FAIL("HELLO: unknown role");
		if (m.hello.lanes > RCT_MAX_LANES)
			RCT_PROTO_FAIL("HELLO: lane count above 64");
		if (!rct_is_pow2(m.hello.page_size) || m.hello.page_size < 512)
			RCT_PROTO_FAIL("HELLO: page size not a power of two >= 512");
		if (m.hello.nregions > RCT_MAX_REGIONS)
			RCT_PROTO_FAIL("HELLO: region count above 1024");
		break;
	}
	case RCT_MSG_REGION: {
		struct rct_wire_region w;

		memcpy(&w, p, sizeof(w));
		m.region.id = le32toh(w.id);
		m.region.kind = le16toh(w.kind);
		m.region.key_len = le16toh(w.key_len);
		m.region.size = le64toh(w.size);
		if (m.region.kind != RCT_REGION_GUEST && m.region.kind != RCT_REGION_STAGING)
			RCT_PROTO_FAIL("REGION: unknown region kind");
		if (m.region.key_len > RCT_KEY_MAX)
			RCT_PROTO_FAIL("REGION: remote key longer than 1024 bytes");
		if (var_len != m.region.key_len)
			RCT_PROTO_FAIL("REGION: key length does not match the payload");
		m.region.key = p + sizeof(w);
		break;
	}
	case RCT_MSG_BEGIN: {
		struct rct_wire_begin w;

		memcpy(&w, p, sizeof(w));
		if (w.reserved)
			RCT_PROTO_FAIL("BEGIN: nonzero reserved field");
		m.begin.epoch = le64toh(w.epoch);
		m.begin.flags = le32toh(w.flags);
		if (m.begin.flags & ~(uint32_t)(RCT_CKPT_FULL | RCT_CKPT_LIVE))
			RCT_PROTO_FAIL("BEGIN: unknown flags");
		if ((m.begin.flags & RCT_CKPT_LIVE) && !(m.begin.flags & RCT_CKPT_FULL))
			RCT_PROTO_FAIL("BEGIN: LIVE without FULL");
		break;
	}
	case RCT_MSG_BITMAP: {
		struct rct_wire_bitmap w;

		memcpy(&w, p, sizeof(w));
		m.bitmap.epoch = le64toh(w.epoch);
		m.bitmap.region_id = le32toh(w.region_id);
		m.bitmap.nwords = le32toh(w.nwords);
		m.bitmap.first_word = le64toh(w.first_word);
		if (!m.bitmap.nwords || m.bitmap.nwords > RCT_BITMAP_CHUNK_WORDS)
			RCT_PROTO_FAIL("BITMAP: word count 0 or above 4096");
		if (var_len != (size_t)m.bitmap.nwords * 8)
			RCT_PROTO_FAIL("BITMAP: word count does not match the payload");
		if (m.bitmap.first_word > UINT64_MAX - m.bitmap.nwords)
			RCT_PROTO_FAIL("BITMAP: first word + count overflows");
		m.bitmap.words = p + sizeof(w);
		break;
	}
	case RCT_MSG_DEVSTATE: {
		struct rct_wire_devstate w;

		memcpy(&w, p, sizeof(w));
		m.devstate.epoch = le64toh(w.epoch);
		m.devstate.length = le64toh(w.length);
		break;
	}
	case RCT_MSG_COMMIT: {
		struct rct_wire_commit w;

		memcpy(&w, p, sizeof(w));
		m.commit.epoch = le64toh(w.epoch);
		m.commit.pages = le64toh(w.pages);
		m.commit.bytes = le64toh(w.bytes);
		m.commit.bitmap_words = le64toh(w.bitmap_words);
		m.commit.devstate_len = le64toh(w.devstate_len);
		m.commit.fence = le64toh(w.fence);
		break;
	}
	case RCT_MSG_ACK: {
		struct rct_wire_ack w;

		memcpy(&w, p, sizeof(w));
		if (w.reserved0 || w.reserved1)
			RCT_PROTO_FAIL("ACK: nonzero reserved field");
		m.ack.epoch = le64toh(w.epoch);
		m.ack.kind = le16toh(w.kind);
		if (m.ack.kind != RCT_ACK_COMMITTED && m.ack.kind != RCT_ACK_FLUSHED)
			RCT_PROTO_FAIL("ACK: unknown kind");
		break;
	}
	case RCT_MSG_HEARTBEAT: {
		struct rct_wire_heartbeat w;

		memcpy(&w, p, sizeof(w));
		m.heartbeat.seq = le64toh(w.seq);
		m.heartbeat.last_committed = le64toh(w.last_committed);
		break;
	}
	case RCT_MSG_ERROR: {
		struct rct_wire_error w;

		memcpy(&w, p, sizeof(w));
		if (w.reserved)
			RCT_PROTO_FAIL("ERROR: nonzero reserved field");
		m.error.code = (int32_t)le32toh(w.code);
		m.error.text_len = le16toh(w.text_len);
		if (m.error.text_len > RCT_ERROR_TEXT_MAX)
			RCT_PROTO_FAIL("ERROR: text longer than 256 bytes");
		if (var_len != m.error.text_len)
			RCT_PROTO_FAIL("ERROR: text length does not match the payload");
		m.error.text = p + sizeof(w);
		break;
	}
	case RCT_MSG_GOODBYE: {
		struct rct_wire_goodbye w;

		memcpy(&w, p, sizeof(w));
		if (w.reserved)
			RCT_PROTO_FAIL("GOODBYE: nonzero reserved field");
		m.goodbye.reason = le32toh(w.reason);
		break;
	}
	case RCT_MSG_AUTH: {
		struct rct_wire_auth w;

		memcpy(&w, p, sizeof(w));
		if (w.reserved0 || w.reserved1)
			RCT_PROTO_FAIL("AUTH: nonzero reserved field");
		m.auth.step = le16toh(w.step);
		if (m.auth.step < RCT_AUTH_CHALLENGE || m.auth.step > RCT_AUTH_PROVE_P)
			RCT_PROTO_FAIL("AUTH: unknown step");
		memcpy(m.auth.nonce, w.nonce, sizeof(w.nonce));
		memcpy(m.auth.mac, w.mac, sizeof(w.mac));
		break;
	}
	case RCT_MSG_LIVENESS: {
		struct rct_wire_liveness w;

		memcpy(&w, p, sizeof(w));
		if (w.reserved0 || w.reserved1)
			RCT_PROTO_FAIL("LIVENESS: nonzero reserved field");
		m.liveness.port = le16toh(w.port);
		m.liveness.token = le64toh(w.token);
		if (!m.liveness.port)
			RCT_PROTO_FAIL("LIVENESS: port 0");
		break;
	}
	}

	/* Only the types with a variable part may carry bytes after the fixed part. */
	if (var_len && type != RCT_MSG_REGION && type != RCT_MSG_BITMAP && type != RCT_MSG_ERROR)
		RCT_PROTO_FAIL("payload longer than its message type");

	*msg_p = m;
	return RCT_OK;
}

uint64_t rct_msg_bitmap_word(const struct rct_msg *msg, uint32_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)msg->bitmap.words + (size_t)i * 8, sizeof(v));
	return le64toh(v);
}

rct_status_t rct_msg_bitmap_check(const struct rct_msg *msg, uint64_t region_words,
				  const char **why_p)
{
	if (msg->bitmap.first_word >= region_words ||
	    msg->bitmap.nwords > region_words - msg->bitmap.first_word)
		RCT_PROTO_FAIL("BITMAP: words beyond the end of the region");
	return RCT_OK;
}
