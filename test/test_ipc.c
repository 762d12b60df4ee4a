/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket API codec over a socketpair: framing, descriptors, rejection. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc.h"

static int sv[2];
static uint8_t buf[RCT_IPC_MAX_PAYLOAD];
static char what[200];

static void setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void teardown(void)
{
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

TestSuite(ipc, .init = setup, .fini = teardown);

/* A raw header as a hostile client would write it. */
static struct rct_ipc_hdr raw_hdr(uint16_t type, uint32_t length, uint8_t nfds)
{
	struct rct_ipc_hdr h = {
		.magic = htole32(RCT_IPC_MAGIC),
		.version = htole16(RCT_IPC_VERSION),
		.type = htole16(type),
		.length = htole32(length),
		.nfds = nfds,
		.request_id = htole64(7),
	};
	return h;
}

Test(ipc, round_trip_with_two_descriptors)
{
	struct ipc_msg m = {.type = RCT_IPC_REGION_ADD, .request_id = 42, .nfds = 2}, r;
	struct rct_ipc_region_add w = {.id = htole32(3), .size = htole64(1 << 20)};
	int fd1 = memfd_create("a", 0), fd2 = memfd_create("b", 0);
	struct stat s1, s2;

	cr_assert(fd1 >= 0 && fd2 >= 0);
	cr_assert_eq(ftruncate(fd1, 4096), 0);
	m.fds[0] = fd1;
	m.fds[1] = fd2;
	cr_assert_eq(ipc_send(sv[0], &m, &w, sizeof(w)), 0);
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), 0, "%s", what);
	cr_assert_eq(r.type, RCT_IPC_REGION_ADD);
	cr_assert_eq(r.request_id, 42);
	cr_assert_eq(r.length, sizeof(w));
	cr_assert_eq(memcmp(buf, &w, sizeof(w)), 0);
	cr_assert_eq(r.nfds, 2);
	/* The received descriptors are new numbers for the same files. */
	cr_assert_eq(fstat(r.fds[0], &s1), 0);
	cr_assert_eq(fstat(fd1, &s2), 0);
	cr_assert_eq(s1.st_ino, s2.st_ino);
	cr_assert_eq(s1.st_size, 4096);
	cr_assert_neq(r.fds[0], fd1);
	ipc_msg_close_fds(&r);
	close(fd1);
	close(fd2);
}

Test(ipc, reply_status_and_detail_survive)
{
	struct ipc_msg m = {.type = RCT_IPC_CKPT_COMMIT,
			    .flags = RCT_IPC_FLAG_REPLY,
			    .request_id = 9,
			    .status = -ECONNRESET,
			    .detail = RCT_ERR_PEER_LOST},
		       r;

	cr_assert_eq(ipc_send(sv[0], &m, "peer lost", 9), 0);
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), 0);
	cr_assert_eq(r.status, -ECONNRESET);
	cr_assert_eq(r.detail, RCT_ERR_PEER_LOST);
	cr_assert_eq(r.flags, RCT_IPC_FLAG_REPLY);
	cr_assert_eq(memcmp(buf, "peer lost", 9), 0);
}

Test(ipc, clean_close_between_messages)
{
	struct ipc_msg r;

	close(sv[0]);
	sv[0] = -1;
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -ESHUTDOWN);
	sv[0] = open("/dev/null", O_RDONLY);
}

Test(ipc, header_cut_short)
{
	struct rct_ipc_hdr h = raw_hdr(RCT_IPC_HELLO, 0, 0);
	struct ipc_msg r;

	cr_assert_eq(write(sv[0], &h, 10), 10);
	shutdown(sv[0], SHUT_WR);
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -EBADMSG);
	cr_assert(strstr(what, "header"), "%s", what);
}

Test(ipc, payload_cut_short)
{
	struct rct_ipc_hdr h = raw_hdr(RCT_IPC_HELLO, 40, 0);
	struct ipc_msg r;

	cr_assert_eq(write(sv[0], &h, sizeof(h)), sizeof(h));
	cr_assert_eq(write(sv[0], "abc", 3), 3);
	shutdown(sv[0], SHUT_WR);
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -EBADMSG);
	cr_assert(strstr(what, "HELLO cut short"), "%s", what);
}

Test(ipc, bad_magic_version_reserved_and_size)
{
	struct rct_ipc_hdr h = raw_hdr(RCT_IPC_HELLO, 0, 0);
	struct ipc_msg r;

	h.magic = htole32(0x12345678);
	cr_assert_eq(write(sv[0], &h, sizeof(h)), sizeof(h));
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -EBADMSG);
	cr_assert(strstr(what, "magic"), "%s", what);

	h = raw_hdr(RCT_IPC_HELLO, 0, 0);
	h.version = htole16(RCT_IPC_VERSION + 1);
	cr_assert_eq(write(sv[0], &h, sizeof(h)), sizeof(h));
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -EPROTONOSUPPORT);

	h = raw_hdr(RCT_IPC_HELLO, 0, 0);
	h.reserved = 1;
	cr_assert_eq(write(sv[0], &h, sizeof(h)), sizeof(h));
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -EBADMSG);

	h = raw_hdr(RCT_IPC_HELLO, RCT_IPC_MAX_PAYLOAD + 1, 0);
	cr_assert_eq(write(sv[0], &h, sizeof(h)), sizeof(h));
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -EMSGSIZE);
}

Test(ipc, descriptor_count_must_match)
{
	struct rct_ipc_hdr h = raw_hdr(RCT_IPC_REGION_ADD, 0, 2);
	struct ipc_msg m = {.type = RCT_IPC_REGION_ADD, .nfds = 1}, r;

	/* Announced two, none sent. */
	cr_assert_eq(write(sv[0], &h, sizeof(h)), sizeof(h));
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), -EBADMSG);
	cr_assert(strstr(what, "descriptors"), "%s", what);

	/* Sent one with a header that announces one, then lie: the codec closes it. */
	m.fds[0] = memfd_create("x", 0);
	cr_assert_eq(ipc_send(sv[0], &m, NULL, 0), 0);
	cr_assert_eq(ipc_recv(sv[1], &r, buf, sizeof(buf), what, sizeof(what)), 0);
	cr_assert_eq(r.nfds, 1);
	ipc_msg_close_fds(&r);
	cr_assert_eq(r.nfds, 0);
	close(m.fds[0]);
}

Test(ipc, errno_of_every_status)
{
	cr_assert_eq(ipc_errno_of(RCT_OK), 0);
	cr_assert_eq(ipc_errno_of(RCT_ERR_PEER_LOST), -ECONNRESET);
	cr_assert_eq(ipc_errno_of(RCT_ERR_TIMED_OUT), -ETIMEDOUT);
	cr_assert_eq(ipc_errno_of(RCT_ERR_OUTCOME_UNKNOWN), -EINPROGRESS);
	cr_assert_eq(ipc_errno_of(RCT_ERR_VERSION), -EPROTONOSUPPORT);
	for (int s = -60; s < 0; s++)
		cr_assert_lt(ipc_errno_of((rct_status_t)s), 0);
	cr_assert_str_eq(ipc_type_str(RCT_IPC_CKPT_FLUSH), "CKPT_FLUSH");
	cr_assert_str_eq(ipc_type_str(999), "unknown");
}
