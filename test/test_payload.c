/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket API's payload codec (daemon/ipc/payload.h) against golden bytes.
 * The expected bytes are written field by field from the layout documented in
 * docs/ipc.md (little-endian, offsets in order), not from the C structs, so
 * a struct or an encoder that drifts from the documented layout fails here.
 * Every payload is then decoded and encoded again to the same bytes, and the
 * decoder's refusals (sizes, descriptors, reserved fields, strings, flags)
 * are checked one by one.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "payload.h"

static uint8_t want[RCT_IPC_MAX_PAYLOAD];
static size_t nwant;
static uint8_t got[RCT_IPC_MAX_PAYLOAD];
static char what[200];

static void begin(void)
{
	nwant = 0;
}

/* @v little-endian in @bytes bytes (beyond 8: zeros). */
static void le(uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		want[nwant++] = i < 8 ? (uint8_t)(v >> (8 * i)) : 0;
}

static void str(const char *s, size_t field)
{
	memset(want + nwant, 0, field);
	memcpy(want + nwant, s, strlen(s));
	nwant += field;
}

static void raw(const void *p, size_t len)
{
	memcpy(want + nwant, p, len);
	nwant += len;
}

static const char *hex(const uint8_t *p, size_t len)
{
	static char out[3 * 160 + 1];
	size_t n = 0;

	for (size_t i = 0; i < len && n + 4 < sizeof(out); i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%02x ", p[i]);
	return out;
}

/* @b encodes to exactly the bytes built since begin(), and decodes back to them. */
static void golden(unsigned type, enum ipc_dir dir, const union ipc_body *b, unsigned nfds)
{
	union ipc_body back;
	uint8_t again[512];
	int len = ipc_encode(type, dir, b, got, sizeof(got)), len2;

	cr_assert_eq(len, (int)nwant, "%s %s: %d bytes, documented %zu", ipc_type_str(type),
		     dir ? "reply" : "request", len, nwant);
	cr_assert(!memcmp(got, want, nwant), "%s %s:\n got  %s\n", ipc_type_str(type),
		  dir ? "reply" : "request", hex(got, nwant));
	cr_assert_eq(ipc_decode(type, dir, got, (size_t)len, nfds, &back, what, sizeof(what)), 0,
		     "%s", what);
	if (nwant > sizeof(again))
		return;
	len2 = ipc_encode(type, dir, &back, again, sizeof(again));
	cr_assert_eq(len2, len);
	cr_assert(!memcmp(again, want, nwant), "%s: decode then encode changed the bytes",
		  ipc_type_str(type));
}

/* The bytes built since begin(), decoded, are refused with @needle in the text. */
static void refused(unsigned type, enum ipc_dir dir, unsigned nfds, const char *needle)
{
	union ipc_body b;

	cr_assert_eq(ipc_decode(type, dir, want, nwant, nfds, &b, what, sizeof(what)), -EPROTO,
		     "%s accepted %s", ipc_type_str(type), hex(want, nwant));
	cr_assert(strstr(what, needle), "%s: '%s' lacks '%s'", ipc_type_str(type), what, needle);
}

Test(payload, hello_both_ways)
{
	union ipc_body b = {.hello = {.version_min = 1, .version_max = 0x0203, .name = "qemu"}};

	begin();
	le(1, 2), le(0x0203, 2), le(0, 4), str("qemu", 32);
	golden(RCT_IPC_HELLO, IPC_REQUEST, &b, 0);
	b.hello_reply = (struct ipc_hello_reply){
		.version = 2, .max_payload = 262144, .caps = 0x1122334455667788ull, .pid = 4242};
	begin();
	le(2, 2), le(0, 2), le(262144, 4), le(0x1122334455667788ull, 8), le(4242, 4), le(0, 4);
	golden(RCT_IPC_HELLO, IPC_REPLY, &b, 0);
}

Test(payload, session_open_and_pairing)
{
	union ipc_body b = {.open = {.role = 2,
				     .lanes = 4,
				     .threads = 3,
				     .page_size = 4096,
				     .timeout_ms = 30000,
				     .staging_size = 1ull << 33,
				     .backend = "ucx",
				     .name = "vm-7"}};
	uint8_t key[32];

	begin();
	le(2, 2), le(4, 2), le(3, 2), le(0, 2), le(4096, 4), le(30000, 4), le(1ull << 33, 8);
	str("ucx", 16), str("vm-7", 32);
	golden(RCT_IPC_SESSION_OPEN, IPC_REQUEST, &b, 0);
	b.session_id = 0xdeadbeef01ull;
	begin();
	le(0xdeadbeef01ull, 8);
	golden(RCT_IPC_SESSION_OPEN, IPC_REPLY, &b, 0);

	for (unsigned i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0xa0 + i);
	memset(&b, 0, sizeof(b));
	b.pairing.generation = 9;
	b.pairing.flags = RCT_IPC_PAIRING_KEY | RCT_IPC_PAIRING_GENERATION;
	snprintf(b.pairing.id, sizeof(b.pairing.id), "vm-7.colo");
	memcpy(b.pairing.key, key, sizeof(key));
	begin();
	le(9, 8), le(3, 4), le(0, 4), str("vm-7.colo", 64), raw(key, 32);
	golden(RCT_IPC_SESSION_PAIRING, IPC_REQUEST, &b, 0);
	b.pairing_reply = (struct ipc_pairing_reply){.generation = 9, .last_committed = UINT64_MAX};
	begin();
	le(9, 8), le(UINT64_MAX, 8);
	golden(RCT_IPC_SESSION_PAIRING, IPC_REPLY, &b, 0);

	memset(&b, 0, sizeof(b));
	b.pairing_ctl = (struct ipc_pairing_ctl){
		.op = RCT_IPC_PAIRING_FAILOVER, .min_generation = 3, .min_epoch = 1234};
	snprintf(b.pairing_ctl.id, sizeof(b.pairing_ctl.id), "vm-7.colo");
	begin();
	le(2, 4), le(0, 4), le(3, 8), le(1234, 8), str("vm-7.colo", 64);
	golden(RCT_IPC_PAIRING_CTL, IPC_REQUEST, &b, 0);
}

Test(payload, regions_and_peers)
{
	union ipc_body b = {
		.region_add = {
			.id = 5, .offset = 0x200000, .size = 1ull << 40, .bitmap_offset = 64}};

	begin();
	le(5, 4), le(0, 4), le(0x200000, 8), le(1ull << 40, 8), le(64, 8);
	golden(RCT_IPC_REGION_ADD, IPC_REQUEST, &b, 2);
	/* Named (version 3): name_len where version 2 had reserved, the name after. */
	snprintf(b.region_add.name, sizeof(b.region_add.name), "pc.ram");
	begin();
	le(5, 4), le(6, 4), le(0x200000, 8), le(1ull << 40, 8), le(64, 8), raw("pc.ram", 6);
	golden(RCT_IPC_REGION_ADD, IPC_REQUEST, &b, 2);
	b.pages = 1ull << 28;
	begin();
	le(1ull << 28, 8);
	golden(RCT_IPC_REGION_ADD, IPC_REPLY, &b, 0);
	b.region_id = 77;
	begin();
	le(77, 4), le(0, 4);
	golden(RCT_IPC_REGION_REMOVE, IPC_REQUEST, &b, 0);
	golden(RCT_IPC_CKPT_DIRTY, IPC_REQUEST, &b, 0);
	golden(RCT_IPC_CKPT_STREAM, IPC_REQUEST, &b, 0);

	memset(&b, 0, sizeof(b));
	snprintf(b.peer.addr, sizeof(b.peer.addr), "10.78.0.2");
	b.peer.port = 18515;
	begin();
	str("10.78.0.2", 64), le(18515, 2), le(0, 6);
	golden(RCT_IPC_LISTEN, IPC_REQUEST, &b, 0);
	golden(RCT_IPC_CONNECT, IPC_REQUEST, &b, 0);
	memset(&b, 0, sizeof(b));
	b.peer.port = 40000;
	begin();
	le(40000, 2), le(0, 6);
	golden(RCT_IPC_LISTEN, IPC_REPLY, &b, 0);
	b.connected = (struct ipc_connected){.lanes = 8, .backend = "verbs"};
	begin();
	le(8, 4), le(0, 4), str("verbs", 16);
	golden(RCT_IPC_CONNECT, IPC_REPLY, &b, 0);
	golden(RCT_IPC_ACCEPT, IPC_REPLY, &b, 0);
}

Test(payload, checkpoints_events_and_queries)
{
	static const char blob[] = "device state";
	union ipc_body b = {.ckpt = {.epoch = 1000, .flags = RCT_CKPT_FULL}};

	begin();
	le(1000, 8), le(RCT_CKPT_FULL, 4), le(0, 4);
	golden(RCT_IPC_CKPT_BEGIN, IPC_REQUEST, &b, 0);
	b.ckpt.flags = RCT_IPC_FLUSH_LOCAL_DIRTY;
	begin();
	le(1000, 8), le(RCT_IPC_FLUSH_LOCAL_DIRTY, 4), le(0, 4);
	golden(RCT_IPC_CKPT_FLUSH, IPC_REQUEST, &b, 0);

	/* Inline device state: the length, then the bytes; with a descriptor, the length. */
	b.devstate = (struct ipc_devstate){.length = sizeof(blob), .bytes = blob};
	begin();
	le(sizeof(blob), 8), raw(blob, sizeof(blob));
	golden(RCT_IPC_CKPT_DEVSTATE, IPC_REQUEST, &b, 0);
	b.devstate = (struct ipc_devstate){.length = 5u << 20};
	begin();
	le(5u << 20, 8);
	golden(RCT_IPC_CKPT_DEVSTATE, IPC_REQUEST, &b, 1);

	b.stats = (struct rct_ckpt_stats){RCT_CKPT_STATS_FIELDS_V1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	begin();
	for (unsigned i = 1; i <= 10; i++)
		le(i, 8);
	golden(RCT_IPC_CKPT_COMMIT, IPC_REPLY, &b, 0);
	golden(RCT_IPC_CKPT_FLUSH, IPC_REPLY, &b, 0);

	b.epoch = 31;
	begin();
	le(31, 8);
	golden(RCT_IPC_DEVSTATE_GET, IPC_REQUEST, &b, 1);
	b.length = 123456;
	begin();
	le(123456, 8);
	golden(RCT_IPC_DEVSTATE_GET, IPC_REPLY, &b, 0);

	b.event = (struct rct_event){.type = RCT_EVENT_PEER_LOST,
				     .status = RCT_ERR_PEER_LOST,
				     .epoch = 41,
				     .discarded = UINT64_MAX};
	begin();
	le(RCT_EVENT_PEER_LOST, 4), le((uint32_t)RCT_ERR_PEER_LOST, 4), le(41, 8);
	le(UINT64_MAX, 8);
	golden(RCT_IPC_EVENT, IPC_REQUEST, &b, 0);

	b.scope = RCT_IPC_STATS_ALL;
	begin();
	le(1, 4), le(0, 4);
	golden(RCT_IPC_STATS, IPC_REQUEST, &b, 0);
	b.text = (struct ipc_text){.text = "{\"a\":1}", .len = 7};
	begin();
	raw("{\"a\":1}", 7);
	golden(RCT_IPC_STATUS, IPC_REPLY, &b, 0);

	/* Requests without a payload. */
	memset(&b, 0, sizeof(b));
	begin();
	golden(RCT_IPC_SESSION_CLOSE, IPC_REQUEST, &b, 0);
	golden(RCT_IPC_ACCEPT, IPC_REQUEST, &b, 0);
	golden(RCT_IPC_CKPT_COMMIT, IPC_REQUEST, &b, 0);
	b.refuse = (struct ipc_refuse){
		.epoch = 0x0102030405060708ull, .reason = "virtio", .len = 6};
	begin();
	le(0x0102030405060708ull, 8), raw("virtio", 6);
	golden(RCT_IPC_CKPT_REFUSE, IPC_REQUEST, &b, 0);
	memset(&b, 0, sizeof(b));
	begin();
	golden(RCT_IPC_CKPT_REFUSE, IPC_REPLY, &b, 0);
	golden(RCT_IPC_STATUS, IPC_REQUEST, &b, 0);
	golden(RCT_IPC_SESSIONS, IPC_REQUEST, &b, 0);
}

Test(payload, sizes_and_descriptors_refused)
{
	begin();
	le(1, 2), le(2, 2), le(0, 4), str("x", 31); /* one byte short */
	refused(RCT_IPC_HELLO, IPC_REQUEST, 0, "payload is 39 bytes, expected 40");
	begin();
	le(1, 4), le(0, 4), le(0, 8), le(4096, 8), le(0, 8);
	refused(RCT_IPC_REGION_ADD, IPC_REQUEST, 1, "carries 1 descriptors, expected 2");
	begin();
	le(7, 8);
	refused(RCT_IPC_DEVSTATE_GET, IPC_REQUEST, 0, "carries 0 descriptors, expected 1");
	begin();
	refused(RCT_IPC_SESSION_CLOSE, IPC_REQUEST, 1, "descriptors");
	begin();
	le(0, 1);
	refused(RCT_IPC_CKPT_COMMIT, IPC_REQUEST, 0, "payload is 1 bytes, expected 0");
	begin();
	refused(RCT_IPC_TYPE_MAX + 1, IPC_REQUEST, 0, "unknown message type");
	refused(0, IPC_REQUEST, 0, "unknown message type");
	refused(RCT_IPC_EVENT, IPC_REPLY, 0, "unknown message type");
	/* Inline bytes must match the length, and never come with a descriptor. */
	begin();
	le(10, 8), raw("abc", 3);
	refused(RCT_IPC_CKPT_DEVSTATE, IPC_REQUEST, 0, "length 10 but 3 inline bytes");
	refused(RCT_IPC_CKPT_DEVSTATE, IPC_REQUEST, 1, "3 inline bytes and a descriptor");
	begin();
	le(0, 4);
	refused(RCT_IPC_CKPT_DEVSTATE, IPC_REQUEST, 0, "at least 8");
}

Test(payload, fields_refused)
{
	begin();
	le(2, 2), le(2, 2), le(1, 4), str("q", 32);
	refused(RCT_IPC_HELLO, IPC_REQUEST, 0, "reserved field set");
	begin();
	le(2, 2), le(2, 2), le(0, 4);
	memset(want + nwant, 'a', 32), nwant += 32;
	refused(RCT_IPC_HELLO, IPC_REQUEST, 0, "name is not NUL-terminated");
	begin();
	le(1000, 8), le(1u << 7, 4), le(0, 4);
	refused(RCT_IPC_CKPT_BEGIN, IPC_REQUEST, 0, "unknown flags 0x80");
	begin();
	le(1000, 8), le(4, 4), le(0, 4);
	refused(RCT_IPC_CKPT_FLUSH, IPC_REQUEST, 0, "unknown flags 0x4");
	begin();
	le(3, 4), le(4, 4);
	refused(RCT_IPC_CKPT_DIRTY, IPC_REQUEST, 0, "unknown flags 0x4");
	begin();
	le(3, 4), le(1, 4);
	refused(RCT_IPC_REGION_REMOVE, IPC_REQUEST, 0, "reserved field set");
	begin();
	le(1, 8), le(4, 4), le(0, 4), str("p", 64), le(0, 32);
	refused(RCT_IPC_SESSION_PAIRING, IPC_REQUEST, 0, "unknown flags 0x4");
	begin();
	le(6, 4), le(0, 4), le(0, 8), le(0, 8), str("p", 64);
	refused(RCT_IPC_PAIRING_CTL, IPC_REQUEST, 0, "op 6");
	begin();
	le(1, 4), le(1, 4), le(0, 8), le(0, 8), str("p", 64);
	refused(RCT_IPC_PAIRING_CTL, IPC_REQUEST, 0, "reserved field set");
	begin();
	str("10.0.0.1", 64), le(1, 2), le(0, 2), le(1, 2), le(0, 2);
	refused(RCT_IPC_CONNECT, IPC_REQUEST, 0, "reserved field set");
	begin();
	le(2, 4), le(0, 4);
	refused(RCT_IPC_STATS, IPC_REQUEST, 0, "scope 2");
	/* REGION_ADD's name: its length as announced, printable, at most 63 bytes. */
	begin();
	le(1, 4), le(7, 4), le(0, 8), le(4096, 8), le(0, 8), raw("pc.ram", 6);
	refused(RCT_IPC_REGION_ADD, IPC_REQUEST, 2, "name_len 7, 6 bytes follow");
	begin();
	le(1, 4), le(6, 4), le(0, 8), le(4096, 8), le(0, 8), raw("pc ram", 6);
	refused(RCT_IPC_REGION_ADD, IPC_REQUEST, 2, "byte 2 of the name is not printable");
	begin();
	le(1, 4), le(64, 4), le(0, 8), le(4096, 8), le(0, 8);
	memset(want + nwant, 'r', 64), nwant += 64;
	refused(RCT_IPC_REGION_ADD, IPC_REQUEST, 2, "name of 64 bytes, longer than 63");
	/* CKPT_REFUSE's reason: at most 256 bytes. */
	begin();
	le(9, 8);
	memset(want + nwant, 'r', 257), nwant += 257;
	refused(RCT_IPC_CKPT_REFUSE, IPC_REQUEST, 0, "reason of 257 bytes, longer than 256");
}

/* A reply's reserved fields are ignored (docs/ipc.md): a newer rctd may use them. */
Test(payload, reply_reserved_fields_ignored)
{
	union ipc_body b;

	begin();
	le(2, 2), le(0xffff, 2), le(4096, 4), le(1, 8), le(9, 4), le(0xffffffff, 4);
	cr_assert_eq(ipc_decode(RCT_IPC_HELLO, IPC_REPLY, want, nwant, 0, &b, what, sizeof(what)),
		     0, "%s", what);
	cr_assert(b.hello_reply.version == 2 && b.hello_reply.max_payload == 4096 &&
		  b.hello_reply.caps == 1 && b.hello_reply.pid == 9);
}

Test(payload, encoder_refuses_what_does_not_fit)
{
	union ipc_body b;
	static uint8_t big[RCT_IPC_MAX_PAYLOAD];

	memset(&b, 0, sizeof(b));
	memset(b.hello.name, 'n', sizeof(b.hello.name)); /* no room for the NUL */
	cr_assert_eq(ipc_encode(RCT_IPC_HELLO, IPC_REQUEST, &b, got, sizeof(got)), -EINVAL);
	b.devstate = (struct ipc_devstate){.length = sizeof(big), .bytes = big};
	cr_assert_eq(ipc_encode(RCT_IPC_CKPT_DEVSTATE, IPC_REQUEST, &b, got, sizeof(got)),
		     -EMSGSIZE);
	b.devstate.length = 100;
	cr_assert_eq(ipc_encode(RCT_IPC_CKPT_DEVSTATE, IPC_REQUEST, &b, got, 50), -EMSGSIZE);
	cr_assert_eq(ipc_encode(0, IPC_REQUEST, &b, got, sizeof(got)), -EINVAL);
	cr_assert_eq(ipc_encode(RCT_IPC_EVENT, IPC_REPLY, &b, got, sizeof(got)), -EINVAL);
	cr_assert_eq(ipc_fixed_size(RCT_IPC_SESSION_OPEN, IPC_REQUEST), 72);
	cr_assert_eq(ipc_fixed_size(RCT_IPC_TYPE_MAX + 1, IPC_REQUEST), -1);
}
