/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writes the seed corpora of the fuzz targets: one valid message of every
 * peer-protocol type (test/fuzz/seeds/proto/), typical client
 * conversations on the socket API (test/fuzz/seeds/ipc/) and one payload of
 * every socket API message and direction (test/fuzz/seeds/payload/).
 *   make_seeds DIR     (DIR/proto, DIR/ipc and DIR/payload must exist)
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rct/rct_ipc.h>

#include "core/proto.h"
#include "ipc.h"
#include "payload.h"

static const char *dir;

static void put(const char *sub, const char *name, const void *p, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void proto_seed(const char *name, const struct rct_msg *m)
{
	uint8_t buf[RCT_MSG_MAX];
	size_t len;

	if (rct_msg_encode(m, buf, sizeof(buf), &len) != RCT_OK) {
		fprintf(stderr, "cannot encode %s\n", name);
		exit(1);
	}
	put("proto", name, buf, len);
}

/* A client stream under construction. */
static uint8_t stream[8192];
static size_t slen;

static void frame(uint16_t type, const void *payload, uint32_t len)
{
	struct rct_ipc_hdr h = {.magic = htole32(RCT_IPC_MAGIC),
				.version = htole16(RCT_IPC_VERSION),
				.type = htole16(type),
				.length = htole32(len),
				.request_id = htole64(slen + 1)};

	memcpy(stream + slen, &h, sizeof(h));
	if (len)
		memcpy(stream + slen + sizeof(h), payload, len);
	slen += sizeof(h) + len;
}

static void hello_open(uint16_t role)
{
	struct rct_ipc_hello h = {.version_min = htole16(RCT_IPC_VERSION),
				  .version_max = htole16(RCT_IPC_VERSION)};
	struct rct_ipc_session_open o = {.role = htole16(role), .lanes = htole16(2)};

	slen = 0;
	strcpy(h.name, "seed");
	strcpy(o.backend, "tcp");
	strcpy(o.name, "seed-vm");
	frame(RCT_IPC_HELLO, &h, sizeof(h));
	frame(RCT_IPC_SESSION_OPEN, &o, sizeof(o));
}

/* fuzz_payload's input: type, direction and descriptors, then the payload. */
static void payload_seed(unsigned type, enum ipc_dir way, unsigned nfds, const union ipc_body *b)
{
	static uint8_t buf[2 + 4096];
	char name[64];
	int len;

	buf[0] = (uint8_t)type;
	buf[1] = (uint8_t)((way == IPC_REPLY ? 0x80 : 0) | nfds);
	len = ipc_encode(type, way, b, buf + 2, sizeof(buf) - 2);
	if (len < 0) {
		fprintf(stderr, "cannot encode %s\n", ipc_type_str(type));
		exit(1);
	}
	snprintf(name, sizeof(name), "%s-%s%s", ipc_type_str(type),
		 way == IPC_REPLY ? "reply" : "request", nfds ? "-fd" : "");
	put("payload", name, buf, (size_t)len + 2);
}

static void payload_seeds(void)
{
	union ipc_body b;

	for (unsigned t = 1; t <= RCT_IPC_TYPE_MAX; t++) {
		for (int d = IPC_REQUEST; d <= IPC_REPLY; d++) {
			unsigned nfds = d == IPC_REQUEST && t == RCT_IPC_REGION_ADD	? 2
					: d == IPC_REQUEST && t == RCT_IPC_DEVSTATE_GET ? 1
											: 0;

			if (ipc_fixed_size(t, (enum ipc_dir)d) < 0)
				continue;
			memset(&b, 0, sizeof(b));
			switch (t) {
			case RCT_IPC_HELLO:
				snprintf(b.hello.name, sizeof(b.hello.name), "seed");
				break;
			case RCT_IPC_SESSION_OPEN:
				snprintf(b.open.backend, sizeof(b.open.backend), "tcp");
				break;
			case RCT_IPC_CKPT_DEVSTATE:
				b.devstate = (struct ipc_devstate){.length = 4, .bytes = "dev"};
				break;
			case RCT_IPC_REGION_ADD:
				snprintf(b.region_add.name, sizeof(b.region_add.name), "pc.ram");
				break;
			case RCT_IPC_CKPT_REFUSE:
				b.refuse = (struct ipc_refuse){.reason = "seed", .len = 4};
				break;
			case RCT_IPC_STATUS:
			case RCT_IPC_SESSIONS:
			case RCT_IPC_STATS:
				if (d == IPC_REPLY)
					b.text = (struct ipc_text){.text = "{}", .len = 2};
				break;
			default:
				break;
			}
			payload_seed(t, (enum ipc_dir)d, nfds, &b);
		}
	}
}

int main(int argc, char **argv)
{
	static const uint8_t key[32] = {1, 2, 3};
	/* Two segments: 1 word at first_word + 0, 2 words 3 further on. */
	static const uint8_t items[48] = {1, 0,	   0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0,   0, 0,
					  0, 0x80, 2, 0, 0, 0, 3, 0, 0,	   0, 1, 0,   0, 0,
					  0, 0,	   0, 0, 0, 0, 0, 0, 0,	   0, 0, 0x40};
	static uint8_t named[32 + 6];
	struct rct_msg m;

	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 2;
	}
	dir = argv[1];

	m = (struct rct_msg){
		.type = RCT_MSG_HELLO,
		.hello = {.role = 1, .lanes = 4, .page_size = 4096, .max_put = 1 << 20}};
	proto_seed("hello", &m);
	m = (struct rct_msg){
		.type = RCT_MSG_REGION,
		.region = {.id = 3, .size = 1 << 20, .key_len = sizeof(key), .key = key}};

	/* REGION's variable part is the key, then the name. */
	memcpy(named, key, sizeof(key));
	memcpy(named + sizeof(key), "pc.ram", 6);
	m.region.key = named;
	m.region.name_len = 6;
	m.region.name = (const char *)named + sizeof(key);
	proto_seed("region", &m);
	m = (struct rct_msg){.type = RCT_MSG_BEGIN, .begin = {.epoch = 7, .flags = 1}};
	proto_seed("begin", &m);
	m = (struct rct_msg){.type = RCT_MSG_BITMAP,
			     .bitmap = {.epoch = 7, .nitems = 5, .first_word = 2, .items = items}};
	proto_seed("bitmap", &m);
	m.type = RCT_MSG_ZEROS;
	proto_seed("zeros", &m);
	m = (struct rct_msg){.type = RCT_MSG_DEVSTATE,
			     .devstate = {.epoch = 7, .length = 4096, .slot = 1}};
	proto_seed("devstate", &m);
	m = (struct rct_msg){.type = RCT_MSG_COMMIT,
			     .commit = {.epoch = 7,
					.pages = 9,
					.bytes = 9 * 4096,
					.bitmap_words = 3,
					.devstate_len = 4096,
					.fence = 3}};
	proto_seed("commit", &m);
	m = (struct rct_msg){.type = RCT_MSG_ACK, .ack = {.epoch = 7, .kind = RCT_ACK_FLUSHED}};
	proto_seed("ack", &m);
	m = (struct rct_msg){.type = RCT_MSG_HEARTBEAT,
			     .heartbeat = {.seq = 5, .last_committed = 6}};
	proto_seed("heartbeat", &m);
	m = (struct rct_msg){.type = RCT_MSG_ERROR,
			     .error = {.code = RCT_ERR_PROTO, .text_len = 5, .text = "oops!"}};
	proto_seed("error", &m);
	m = (struct rct_msg){.type = RCT_MSG_GOODBYE, .goodbye = {.reason = 1}};
	proto_seed("goodbye", &m);
	m = (struct rct_msg){.type = RCT_MSG_AUTH, .auth = {.step = RCT_AUTH_PROVE_S}};
	memset(m.auth.nonce, 0x11, sizeof(m.auth.nonce));
	memset(m.auth.mac, 0x22, sizeof(m.auth.mac));
	proto_seed("auth", &m);
	m = (struct rct_msg){.type = RCT_MSG_HELLO,
			     .hello = {.role = 1,
				       .lanes = 4,
				       .page_size = 4096,
				       .flags = RCT_HELLO_AUTH,
				       .max_put = 1 << 20}};
	proto_seed("hello-auth", &m);

	{
		struct rct_ipc_stats st = {.scope = htole32(RCT_IPC_STATS_ALL)};
		struct rct_ipc_ckpt_begin b = {.epoch = htole64(1)};
		struct rct_ipc_region_ref rr = {.id = htole32(0)};
		struct rct_ipc_ckpt_flush fl = {.epoch = htole64(0), .flags = htole32(1)};
		uint8_t dev[8 + 16] = {16};

		hello_open(RCT_ROLE_SECONDARY);
		frame(RCT_IPC_STATUS, NULL, 0);
		frame(RCT_IPC_STATS, &st, sizeof(st));
		frame(RCT_IPC_SESSIONS, NULL, 0);
		put("ipc", "status", stream, slen);

		hello_open(RCT_ROLE_PRIMARY);
		frame(RCT_IPC_CKPT_BEGIN, &b, sizeof(b));
		frame(RCT_IPC_CKPT_STREAM, &rr, sizeof(rr));
		frame(RCT_IPC_CKPT_DIRTY, &rr, sizeof(rr));
		frame(RCT_IPC_CKPT_DEVSTATE, dev, sizeof(dev));
		frame(RCT_IPC_CKPT_COMMIT, NULL, 0);
		put("ipc", "primary", stream, slen);

		hello_open(RCT_ROLE_SECONDARY);
		frame(RCT_IPC_REGION_REMOVE, &rr, sizeof(rr));
		frame(RCT_IPC_CKPT_FLUSH, &fl, sizeof(fl));
		st.scope = 0;
		frame(RCT_IPC_STATS, &st, sizeof(st));
		frame(RCT_IPC_SESSION_CLOSE, NULL, 0);
		put("ipc", "secondary", stream, slen);
	}
	payload_seeds();
	return 0;
}
