/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Peer control protocol: every message round-tripped, and every kind of bad
 * input (truncated, oversized, bad magic, bad version, nonzero reserved,
 * out-of-range counts and offsets) rejected with a reason.  The TCP data-lane
 * headers get the same treatment.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "core/proto.h"
#include "tcp/tcp.h"

static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
/* REGION's variable part: the key, then the region's name. */
static const uint8_t key_name[22] = {1,	 2,  3,	 4,  5,	 6,   7,   8,	9,   10,  11,
				     12, 13, 14, 15, 16, 'p', 'c', '.', 'r', 'a', 'm'};
/* Two segments (little-endian on the wire, as encoded): words 4096-4097, then 4100. */
static uint64_t items[5] = {2, 0x0123456789abcdefull, ~0ull, 2ull << 32 | 1, 0x80};
static const char text[] = "region 3: something broke";

/* One valid sample of each message type. */
static struct rct_msg sample(unsigned type)
{
	struct rct_msg m;

	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)type;
	switch (type) {
	case RCT_MSG_HELLO:
		m.hello.role = RCT_ROLE_PRIMARY;
		m.hello.lanes = 4;
		m.hello.page_size = 4096;
		m.hello.nregions = 3;
		m.hello.generation = 0x1122334455667788ull;
		m.hello.max_put = 1 << 20;
		break;
	case RCT_MSG_REGION:
		m.region.id = 7;
		m.region.kind = RCT_REGION_GUEST;
		m.region.size = 1ull << 30;
		m.region.key_len = sizeof(key);
		m.region.key = key_name;
		m.region.name_len = 6;
		m.region.name = (const char *)key_name + sizeof(key);
		break;
	case RCT_MSG_BEGIN:
		m.begin.epoch = 42;
		m.begin.flags = RCT_CKPT_FULL;
		break;
	case RCT_MSG_BITMAP:
	case RCT_MSG_ZEROS:
		m.bitmap.epoch = 42;
		m.bitmap.region_id = 7;
		m.bitmap.first_word = 4096;
		m.bitmap.nitems = 5;
		m.bitmap.items = items;
		break;
	case RCT_MSG_DEVSTATE:
		m.devstate.epoch = 42;
		m.devstate.length = 3 << 20;
		m.devstate.slot = 1;
		break;
	case RCT_MSG_COMMIT:
		m.commit.epoch = 42;
		m.commit.pages = 1000;
		m.commit.bytes = 4096000;
		m.commit.bitmap_words = 4096;
		m.commit.devstate_len = 77;
		m.commit.fence = 9;
		break;
	case RCT_MSG_ACK:
		m.ack.epoch = 42;
		m.ack.kind = RCT_ACK_FLUSHED;
		break;
	case RCT_MSG_HEARTBEAT:
		m.heartbeat.seq = 5;
		m.heartbeat.last_committed = 41;
		break;
	case RCT_MSG_ERROR:
		m.error.code = RCT_ERR_MISMATCH;
		m.error.text_len = sizeof(text) - 1;
		m.error.text = text;
		break;
	case RCT_MSG_GOODBYE:
		m.goodbye.reason = 3;
		break;
	case RCT_MSG_AUTH:
		m.auth.step = RCT_AUTH_PROVE_S;
		memset(m.auth.nonce, 0xa5, sizeof(m.auth.nonce));
		memset(m.auth.mac, 0x5a, sizeof(m.auth.mac));
		break;
	case RCT_MSG_LIVENESS:
		m.liveness.port = 40123;
		m.liveness.token = 0x0102030405060708ull;
		break;
	}
	return m;
}

static size_t encode(unsigned type, uint8_t *buf)
{
	struct rct_msg m = sample(type);
	size_t len = 0;

	cr_assert_eq(rct_msg_encode(&m, buf, RCT_MSG_MAX, &len), RCT_OK, "encode %s",
		     rct_msg_type_str(type));
	return len;
}

static rct_status_t decode(const uint8_t *buf, size_t len, const char **why)
{
	struct rct_msg m;

	*why = NULL;
	return rct_msg_decode(buf, len, &m, why);
}

Test(proto, round_trip_every_type)
{
	uint8_t *buf = malloc(RCT_MSG_MAX);

	for (unsigned t = 1; t <= RCT_MSG_TYPE_MAX; t++) {
		struct rct_msg in = sample(t), out;
		const char *why = NULL;
		size_t len = encode(t, buf);

		cr_assert_eq(rct_msg_decode(buf, len, &out, &why), RCT_OK, "%s: %s",
			     rct_msg_type_str(t), why);
		cr_assert_eq(out.type, t);
		switch (t) {
		case RCT_MSG_HELLO:
			cr_assert_eq(out.hello.role, in.hello.role);
			cr_assert_eq(out.hello.lanes, in.hello.lanes);
			cr_assert_eq(out.hello.page_size, in.hello.page_size);
			cr_assert_eq(out.hello.nregions, in.hello.nregions);
			cr_assert_eq(out.hello.generation, in.hello.generation);
			cr_assert_eq(out.hello.max_put, in.hello.max_put);
			break;
		case RCT_MSG_REGION:
			cr_assert_eq(out.region.id, 7);
			cr_assert_eq(out.region.kind, RCT_REGION_GUEST);
			cr_assert_eq(out.region.size, 1ull << 30);
			cr_assert_eq(out.region.key_len, sizeof(key));
			cr_assert_arr_eq(out.region.key, key, sizeof(key));
			cr_assert_eq(out.region.name_len, 6);
			cr_assert_arr_eq(out.region.name, "pc.ram", 6);
			break;
		case RCT_MSG_BEGIN:
			cr_assert_eq(out.begin.epoch, 42);
			cr_assert_eq(out.begin.flags, RCT_CKPT_FULL);
			break;
		case RCT_MSG_BITMAP:
		case RCT_MSG_ZEROS:
			cr_assert_eq(out.bitmap.epoch, 42);
			cr_assert_eq(out.bitmap.region_id, 7);
			cr_assert_eq(out.bitmap.first_word, 4096);
			cr_assert_eq(out.bitmap.nitems, 5);
			for (uint32_t i = 0; i < 5; i++)
				cr_assert_eq(rct_msg_bitmap_item(&out, i), le64toh(items[i]));
			{
				static const uint64_t want_w[3] = {4096, 4097, 4100};
				struct rct_bitmap_cursor c = {0};
				uint64_t w, v;

				for (unsigned i = 0; i < 3; i++) {
					cr_assert(rct_msg_bitmap_next(&out, &c, &w, &v));
					cr_assert_eq(w, want_w[i]);
					cr_assert_eq(v, le64toh(items[i < 2 ? 1 + i : 4]));
				}
				cr_assert_not(rct_msg_bitmap_next(&out, &c, &w, &v));
				cr_assert_eq(rct_msg_bitmap_check(&out, 4101, NULL), RCT_OK);
				cr_assert_eq(rct_msg_bitmap_check(&out, 4100, NULL), RCT_ERR_PROTO);
			}
			break;
		case RCT_MSG_DEVSTATE:
			cr_assert_eq(out.devstate.epoch, 42);
			cr_assert_eq(out.devstate.length, 3 << 20);
			cr_assert_eq(out.devstate.slot, 1);
			break;
		case RCT_MSG_COMMIT:
			cr_assert_eq(out.commit.epoch, 42);
			cr_assert_eq(out.commit.pages, 1000);
			cr_assert_eq(out.commit.bytes, 4096000);
			cr_assert_eq(out.commit.bitmap_words, 4096);
			cr_assert_eq(out.commit.devstate_len, 77);
			cr_assert_eq(out.commit.fence, 9);
			break;
		case RCT_MSG_ACK:
			cr_assert_eq(out.ack.epoch, 42);
			cr_assert_eq(out.ack.kind, RCT_ACK_FLUSHED);
			break;
		case RCT_MSG_HEARTBEAT:
			cr_assert_eq(out.heartbeat.seq, 5);
			cr_assert_eq(out.heartbeat.last_committed, 41);
			break;
		case RCT_MSG_ERROR:
			cr_assert_eq(out.error.code, RCT_ERR_MISMATCH);
			cr_assert_eq(out.error.text_len, sizeof(text) - 1);
			cr_assert_arr_eq(out.error.text, text, sizeof(text) - 1);
			break;
		case RCT_MSG_GOODBYE:
			cr_assert_eq(out.goodbye.reason, 3);
			break;
		case RCT_MSG_AUTH:
			cr_assert_eq(out.auth.step, RCT_AUTH_PROVE_S);
			cr_assert_eq(memcmp(out.auth.nonce, in.auth.nonce, RCT_AUTH_NONCE_LEN), 0);
			cr_assert_eq(memcmp(out.auth.mac, in.auth.mac, RCT_AUTH_MAC_LEN), 0);
			break;
		case RCT_MSG_LIVENESS:
			cr_assert_eq(out.liveness.port, 40123);
			cr_assert_eq(out.liveness.token, 0x0102030405060708ull);
			break;
		}
	}
	free(buf);
}

Test(proto, golden_bytes_are_little_endian)
{
	uint8_t buf[64];
	size_t len = encode(RCT_MSG_BEGIN, buf);
	static const uint8_t golden[] = {
		0x52, 0x43, 0x54, 0x31,		    /* "RCT1" */
		0x06, 0x00,			    /* version 6 */
		0x03, 0x00,			    /* BEGIN */
		0x10, 0x00, 0x00, 0x00,		    /* 16 payload bytes */
		0x00, 0x00, 0x00, 0x00,		    /* reserved */
		42,   0,    0,	  0,	0, 0, 0, 0, /* epoch */
		0x01, 0x00, 0x00, 0x00,		    /* flags: FULL */
		0x00, 0x00, 0x00, 0x00,		    /* reserved */
	};

	cr_assert_eq(len, sizeof(golden));
	cr_assert_arr_eq(buf, golden, sizeof(golden));
}

Test(proto, golden_region_carries_key_then_name)
{
	uint8_t buf[128];
	size_t len = encode(RCT_MSG_REGION, buf);
	static const uint8_t golden[] = {
		0x52,	     0x43, 0x54, 0x31,			  /* "RCT1" */
		0x06,	     0x00,				  /* version 6 */
		0x02,	     0x00,				  /* REGION */
		24 + 16 + 6, 0x00, 0x00, 0x00,			  /* payload bytes */
		0x00,	     0x00, 0x00, 0x00,			  /* reserved */
		7,	     0,	   0,	 0,			  /* id */
		0x00,	     0x00,				  /* kind: guest */
		16,	     0x00,				  /* key_len */
		0,	     0,	   0,	 0x40, 0,    0,	   0,  0, /* size: 1 GiB */
		6,	     0x00,				  /* name_len */
		0x00,	     0x00, 0x00, 0x00, 0x00, 0x00,	  /* reserved */
		1,	     2,	   3,	 4,    5,    6,	   7,  8,
		9,	     10,   11,	 12,   13,   14,   15, 16, /* key */
		'p',	     'c',  '.',	 'r',  'a',  'm',	   /* name */
	};

	cr_assert_eq(len, sizeof(golden));
	cr_assert_arr_eq(buf, golden, sizeof(golden));
}

Test(proto, every_truncation_is_rejected)
{
	uint8_t *buf = malloc(RCT_MSG_MAX);

	for (unsigned t = 1; t <= RCT_MSG_TYPE_MAX; t++) {
		size_t len = encode(t, buf);

		for (size_t cut = 0; cut < len; cut++) {
			const char *why;
			/* A copy of exactly cut bytes, so ASan sees any read past it. */
			uint8_t *part = malloc(cut ? cut : 1);

			memcpy(part, buf, cut);
			cr_assert_neq(decode(part, cut, &why), RCT_OK, "%s cut at %zu accepted",
				      rct_msg_type_str(t), cut);
			cr_assert_not_null(why);
			free(part);
		}
	}
	free(buf);
}

Test(proto, trailing_bytes_are_rejected)
{
	uint8_t buf[256];
	const char *why;
	size_t len = encode(RCT_MSG_ACK, buf);
	uint32_t l = htole32((uint32_t)(len - 16 + 4));

	memcpy(buf + 8, &l, 4);
	memset(buf + len, 0, 4);
	cr_assert_eq(decode(buf, len + 4, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "payload longer than its message type");
}

Test(proto, oversized_is_rejected)
{
	size_t len = RCT_MSG_MAX + 16;
	uint8_t *buf = calloc(1, len);
	const char *why;
	uint32_t l = htole32((uint32_t)(len - 16));

	encode(RCT_MSG_GOODBYE, buf);
	memcpy(buf + 8, &l, 4);
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "message larger than 64 KiB");
	free(buf);
}

Test(proto, header_length_must_match)
{
	uint8_t buf[64];
	const char *why;
	size_t len = encode(RCT_MSG_BEGIN, buf);

	buf[8] ^= 1;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "header length does not match the message size");
}

Test(proto, bad_magic_version_reserved_type)
{
	uint8_t buf[64];
	const char *why;
	size_t len;

	len = encode(RCT_MSG_HEARTBEAT, buf);
	buf[0] ^= 0xff;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "bad magic");

	len = encode(RCT_MSG_HEARTBEAT, buf);
	buf[4] = 1; /* a peer of the previous protocol */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_VERSION);
	cr_assert_str_eq(why, "unsupported protocol version (this build speaks version 6)");

	len = encode(RCT_MSG_DEVSTATE, buf);
	buf[16 + 16] = 2; /* slot: there are two */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "DEVSTATE: staging slot is not 0 or 1");
	len = encode(RCT_MSG_DEVSTATE, buf);
	buf[16 + 20] = 1;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "DEVSTATE: nonzero reserved field");

	len = encode(RCT_MSG_HEARTBEAT, buf);
	buf[13] = 1;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "nonzero reserved field in header");

	len = encode(RCT_MSG_HEARTBEAT, buf);
	buf[6] = 99;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "unknown message type");
}

Test(proto, nonzero_reserved_in_payloads)
{
	/* type, byte offset of a reserved byte from the start of the message */
	static const struct {
		unsigned type;
		size_t off;
	} cases[] = {
		{RCT_MSG_BEGIN, 16 + 12}, {RCT_MSG_ACK, 16 + 10},     {RCT_MSG_ACK, 16 + 12},
		{RCT_MSG_ERROR, 16 + 6},  {RCT_MSG_GOODBYE, 16 + 4},  {RCT_MSG_AUTH, 16 + 2},
		{RCT_MSG_AUTH, 16 + 4},	  {RCT_MSG_LIVENESS, 16 + 2}, {RCT_MSG_LIVENESS, 16 + 4},
	};
	uint8_t buf[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why;
		size_t len = encode(cases[i].type, buf);

		buf[cases[i].off] = 1;
		cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO, "%s",
			     rct_msg_type_str(cases[i].type));
		cr_assert_not_null(strstr(why, "reserved"), "%s: %s",
				   rct_msg_type_str(cases[i].type), why);
	}
}

Test(proto, hello_flags_and_auth_steps)
{
	uint8_t buf[512];
	const char *why;
	size_t len = encode(RCT_MSG_HELLO, buf);

	buf[16 + 12] = RCT_HELLO_AUTH | RCT_HELLO_LIVENESS; /* the known flags */
	cr_assert_eq(decode(buf, len, &why), RCT_OK, "%s", why);
	buf[16 + 12] = 0x4;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "HELLO: unknown flags");
	len = encode(RCT_MSG_AUTH, buf);
	buf[16] = 4; /* step */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "AUTH: unknown step");
}

Test(proto, out_of_range_fields)
{
	uint8_t buf[8192];
	const char *why;
	size_t len;
	struct rct_msg m;

	/* HELLO: 65 lanes, page size 3000, unknown role */
	len = encode(RCT_MSG_HELLO, buf);
	buf[16 + 2] = 65;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "HELLO: lane count 65 above 64");
	len = encode(RCT_MSG_HELLO, buf);
	buf[16 + 4] = 0xb8;
	buf[16 + 5] = 0x0b;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	len = encode(RCT_MSG_HELLO, buf);
	buf[16] = 9;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "HELLO: unknown role");

	/* REGION: key_len larger than the payload */
	len = encode(RCT_MSG_REGION, buf);
	buf[16 + 6] = 17;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "REGION: key and name length does not match the payload");
	/* ... and a key longer than allowed, the payload as long as it says */
	len = encode(RCT_MSG_REGION, buf);
	buf[16 + 7] = 0x10; /* 4096 + 16 */
	memset(buf + len, 0, 4096);
	len += 4096;
	buf[8] = (uint8_t)(len - 16);
	buf[9] = (uint8_t)((len - 16) >> 8);
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "REGION: remote key of 4112 bytes, longer than 1024");
	/* REGION: a name too long, a name with a byte that is not printable, reserved set */
	len = encode(RCT_MSG_REGION, buf);
	buf[16 + 16] = 64;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	len = encode(RCT_MSG_REGION, buf);
	buf[16 + 24 + 16 + 2] = ' ';
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "REGION: name holds a byte that is not printable ASCII");
	len = encode(RCT_MSG_REGION, buf);
	buf[16 + 20] = 1;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "REGION: nonzero reserved field");

	/* BITMAP: item count 0, item count not matching, beyond the region */
	len = encode(RCT_MSG_BITMAP, buf);
	memset(buf + 16 + 12, 0, 4);
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	len = encode(RCT_MSG_BITMAP, buf);
	buf[16 + 12] = 4;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "BITMAP: item count does not match the payload");
	len = encode(RCT_MSG_BITMAP, buf);
	memset(buf + 16 + 16, 0xff, 8); /* first_word = 2^64 - 1: overflows */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "BITMAP: word index overflows");
	len = encode(RCT_MSG_BITMAP, buf);
	cr_assert_eq(rct_msg_decode(buf, len, &m, &why), RCT_OK);
	cr_assert_eq(rct_msg_bitmap_check(&m, 4101, &why), RCT_OK);
	cr_assert_eq(rct_msg_bitmap_check(&m, 4100, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "BITMAP: words beyond the end of the region");
	cr_assert_eq(rct_msg_bitmap_check(&m, 10, &why), RCT_ERR_PROTO);

	/* BEGIN with unknown flags, ACK of unknown kind, ERROR text too long */
	len = encode(RCT_MSG_BEGIN, buf);
	buf[16 + 8] = 0x80;
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "BEGIN: unknown flags");
	buf[16 + 8] = RCT_CKPT_LIVE; /* a live resync is a full sync */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "BEGIN: LIVE without FULL");
	buf[16 + 8] = RCT_CKPT_LIVE | RCT_CKPT_FULL;
	cr_assert_eq(decode(buf, len, &why), RCT_OK);
	buf[16 + 8] = RCT_CKPT_BASE | RCT_CKPT_FULL; /* a base sync is a live one */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "BEGIN: BASE without FULL and LIVE");
	buf[16 + 8] = RCT_CKPT_BASE | RCT_CKPT_LIVE | RCT_CKPT_FULL;
	cr_assert_eq(decode(buf, len, &why), RCT_OK);
	len = encode(RCT_MSG_ACK, buf);
	buf[16 + 8] = 4; /* 1 COMMITTED, 2 FLUSHED, 3 REFUSED */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
	cr_assert_str_eq(why, "ACK: unknown kind");
	len = encode(RCT_MSG_ERROR, buf);
	buf[16 + 5] = 1; /* text_len = 256 + 25 */
	cr_assert_eq(decode(buf, len, &why), RCT_ERR_PROTO);
}

Test(proto, encoder_refuses_out_of_range)
{
	uint8_t buf[64];
	struct rct_msg m = sample(RCT_MSG_HELLO);
	size_t len;

	m.hello.lanes = 65;
	cr_assert_eq(rct_msg_encode(&m, buf, sizeof(buf), &len), RCT_ERR_INVALID_PARAM);
	m = sample(RCT_MSG_BITMAP);
	cr_assert_eq(rct_msg_encode(&m, buf, 20, &len), RCT_ERR_NO_SPACE);
	m.bitmap.nitems = RCT_BITMAP_MAX_ITEMS + 1;
	cr_assert_eq(rct_msg_encode(&m, buf, sizeof(buf), &len), RCT_ERR_INVALID_PARAM);
}

/* Segments the decoder refuses: empty, longer than the items, index overflow. */
Test(proto, bitmap_segments_are_checked)
{
	static const struct {
		uint64_t first_word;
		uint32_t nitems;
		uint64_t items[3];
		const char *why;
	} bad[] = {
		{0, 2, {0, 1}, "a segment of no words"},
		{0, 3, {3, 1, 1}, "a segment of 3 words, 2 items left"},
		{UINT64_MAX - 4, 2, {UINT64_C(0xffffffff) << 32 | 1, 1}, "overflows"},
	};
	uint8_t buf[256];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rct_msg m = sample(RCT_MSG_BITMAP), out;
		uint64_t wire[3], fw = htole64(bad[i].first_word);
		uint32_t n = htole32(bad[i].nitems), hl = htole32(24 + bad[i].nitems * 8);
		const char *why = NULL;
		size_t len;

		for (unsigned k = 0; k < 3; k++)
			wire[k] = htole64(bad[i].items[k]);
		m.bitmap.first_word = bad[i].first_word;
		m.bitmap.nitems = bad[i].nitems;
		m.bitmap.items = wire;
		cr_assert_eq(rct_msg_encode(&m, buf, sizeof(buf), &len), RCT_ERR_INVALID_PARAM);
		/* The wire bytes by hand: a good BITMAP, its payload replaced. */
		m = sample(RCT_MSG_BITMAP);
		cr_assert_eq(rct_msg_encode(&m, buf, sizeof(buf), &len), RCT_OK);
		memcpy(buf + 8, &hl, 4);
		memcpy(buf + 16 + 12, &n, 4);
		memcpy(buf + 16 + 16, &fw, 8);
		memcpy(buf + 16 + 24, wire, bad[i].nitems * 8);
		len = 16 + 24 + bad[i].nitems * 8;
		cr_assert_eq(rct_msg_decode(buf, len, &out, &why), RCT_ERR_PROTO);
		cr_assert(why && strstr(why, bad[i].why), "%u: %s", i, why ? why : "(none)");
	}
}
