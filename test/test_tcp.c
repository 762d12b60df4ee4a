/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP backend end to end, over real sockets on 127.0.0.1: checkpoints on 1 and
 * 4 lanes verified byte for byte, and a hostile peer that speaks the protocol
 * but aims a put outside the colo cache.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <endian.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bitmap.h"
#include "core/proto.h"
#include "core/session.h"
#include "core/util.h"
#include "pair.h"
#include "tcp/tcp.h"

TestSuite(tcp, .timeout = 60);

Test(tcp, e2e_1_lane)
{
	pair_run_e2e("tcp", "127.0.0.1", 1, 0);
}

Test(tcp, peer_lost_mid_checkpoint_leaves_guest_ram_untouched)
{
	pair_run_peer_loss("tcp", "127.0.0.1");
}

Test(tcp, e2e_4_lanes)
{
	pair_run_e2e("tcp", "127.0.0.1", 4, 0);
}

Test(tcp, e2e_ipv6_2_lanes)
{
	pair_run_e2e("tcp", "::1", 2, 0);
}

/* ---- a hostile primary, written by hand against the wire format ---- */

static int raw_connect(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_lane_hello(int fd, unsigned lane, unsigned nlanes)
{
	struct rct_tcp_wire_lane_hello w = {.magic = htole32(RCT_TCP_LANE_MAGIC),
					    .version = htole16(RCT_TCP_VERSION),
					    .lane = htole16((uint16_t)lane),
					    .nlanes = htole16((uint16_t)nlanes),
					    .cookie = htole64(0xbad)};

	cr_assert_eq(send(fd, &w, sizeof(w), 0), (ssize_t)sizeof(w));
}

static void raw_send_msg(int fd, const struct rct_msg *m)
{
	uint8_t buf[512];
	struct rct_tcp_wire_frame f;
	size_t len;

	cr_assert_eq(rct_msg_encode(m, buf + sizeof(f), sizeof(buf) - sizeof(f), &len), RCT_OK);
	f.length = htole32((uint32_t)len);
	f.reserved = 0;
	memcpy(buf, &f, sizeof(f));
	cr_assert_eq(send(fd, buf, sizeof(f) + len, 0), (ssize_t)(sizeof(f) + len));
}

static void raw_read(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		cr_assert_gt(poll(&p, 1, 5000), 0, "peer silent");
		n = read(fd, (char *)buf + got, len - got);
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
}

static void raw_recv_msg(int fd, struct rct_msg *m, uint8_t *buf)
{
	struct rct_tcp_wire_frame f;
	const char *why;

	raw_read(fd, &f, sizeof(f));
	cr_assert_leq(le32toh(f.length), 512u);
	raw_read(fd, buf, le32toh(f.length));
	cr_assert_eq(rct_msg_decode(buf, le32toh(f.length), m, &why), RCT_OK);
}

struct accept_arg {
	struct rct_session *s;
	rct_status_t status;
	rct_status_t after;
};

static void *accept_then_progress(void *p)
{
	struct accept_arg *a = p;

	a->status = rct_session_accept(a->s);
	a->after = a->status;
	for (int i = 0; i < 200 && a->after == RCT_OK; i++)
		a->after = rct_session_progress(a->s, 20);
	return NULL;
}

Test(tcp, put_outside_the_cache_is_rejected_and_nothing_is_written)
{
	struct rct_session_params p = {.field_mask = RCT_SESSION_PARAM_FIELD_ROLE,
				       .role = RCT_ROLE_SECONDARY};
	struct accept_arg a = {0};
	struct rct_region *r;
	uint8_t *ram = rct_mem_alloc(1 << 20), buf[512];
	struct rct_msg m;
	struct rct_tcp_wire_key key;
	struct rct_tcp_wire_put put;
	struct rct_tcp_wire_run run;
	uint16_t port;
	pthread_t t;
	int ctrl, lane, junk;

	memset(ram, 0x11, 1 << 20);
	cr_assert_eq(rct_session_create(&p, &a.s), RCT_OK);
	cr_assert_eq(rct_region_register(a.s, 3, ram, 1 << 20, &r), RCT_OK);
	cr_assert_eq(rct_session_listen(a.s, "127.0.0.1", 0, &port), RCT_OK);
	pthread_create(&t, NULL, accept_then_progress, &a);

	/* A port scanner first: closed by the secondary, which keeps waiting. */
	junk = raw_connect(port);
	cr_assert_eq(send(junk, "GET / HTTP/1.0\r\n\r\n\0\0\0\0\0\0", 24, 0), 24);

	ctrl = raw_connect(port);
	raw_lane_hello(ctrl, 0, 1);
	lane = raw_connect(port);
	raw_lane_hello(lane, 1, 1);
	memset(&m, 0, sizeof(m));
	m.type = RCT_MSG_HELLO;
	m.hello.role = RCT_ROLE_PRIMARY;
	m.hello.lanes = 1;
	m.hello.page_size = 4096;
	m.hello.nregions = 1;
	raw_send_msg(ctrl, &m);
	raw_recv_msg(ctrl, &m, buf);
	cr_assert_eq(m.type, RCT_MSG_HELLO);
	raw_recv_msg(ctrl, &m, buf);
	cr_assert_eq(m.type, RCT_MSG_REGION);
	cr_assert_eq(m.region.id, 3);
	cr_assert_eq(m.region.key_len, sizeof(key));
	memcpy(&key, m.region.key, sizeof(key));

	/* A put with the real key, one page beyond the end of the 1 MiB cache. */
	memset(&put, 0, sizeof(put));
	put.magic = htole32(RCT_TCP_DATA_MAGIC);
	put.version = htole16(RCT_TCP_VERSION);
	put.type = htole16(RCT_TCP_PUT);
	put.nruns = htole32(1);
	put.key_id = key.id;
	put.key_tag = key.tag;
	run.offset = htole64(1 << 20);
	run.length = htole64(4096);
	cr_assert_eq(send(lane, &put, sizeof(put), 0), (ssize_t)sizeof(put));
	cr_assert_eq(send(lane, &run, sizeof(run), 0), (ssize_t)sizeof(run));
	memset(buf, 0x66, sizeof(buf));
	for (int i = 0; i < 8; i++)
		send(lane, buf, sizeof(buf), MSG_NOSIGNAL);

	pthread_join(t, NULL);
	cr_assert_eq(a.status, RCT_OK, "accept: %s", rct_status_str(a.status));
	cr_assert_eq(a.after, RCT_ERR_PROTO, "progress: %s", rct_status_str(a.after));
	for (size_t i = 0; i < (1 << 20); i++)
		if (ram[i] != 0x11)
			cr_assert_fail("guest RAM byte %zu written", i);
	rct_session_destroy(a.s);
	close(junk);
	close(ctrl);
	close(lane);
	rct_mem_free(ram, 1 << 20);
}

Test(tcp, secondary_lost_mid_checkpoint_fails_the_commit)
{
	pair_run_secondary_loss("tcp", "127.0.0.1");
}
