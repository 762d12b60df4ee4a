/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctd as a process: the socket API end to end through librct-client, access
 * control, malformed, truncated and fuzzed messages, and a client that dies
 * in the middle of a checkpoint.  Every test starts its own rctd.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "harness.h"

#include "sim.h"

#include "rctd_fixture.h"

TestSuite(rctd, .init = rctd_start, .fini = rctd_fini, .timeout = 120);

static void pair_checkpoint(const char *tag)
{
	struct side pri, sec;

	pair_up(&pri, &sec, tag);
	/* The primary closes: a deliberate stop, which the secondary's rctd tells from a loss. */
	side_fini(&pri);
	secondary_sees(&sec, "primary closed the session (last image kept)");
	side_fini(&sec);
}

/* ------------------------------------------------------------------ tests */

/* The client's descriptor in a hypervisor's event loop: an event that came
 * while a call waited for its reply is queued, and rct_client_arm() says so
 * before the caller would sleep on a socket that holds nothing. */
Test(rctd, client_arm_reports_events_queued_during_a_call)
{
	struct side pri, sec;
	struct rct_event ev = {0};
	struct pollfd pfd;
	char *json = NULL;

	pair_up(&pri, &sec, "armed");
	cr_assert_eq(rct_client_arm(sec.c), 0, "an event is queued with none pending");
	for (uint64_t e = 1; e <= 2; e++) {
		memset(pri.ram + e * PAGE, 0x70 + (int)e, PAGE);
		pri.bits[0] |= 1ull << e;
		cr_assert_eq(rct_client_ckpt_begin(pri.c, e, 0), 0, "%s", rct_client_error(pri.c));
		cr_assert_eq(rct_client_ckpt_dirty(pri.c, 0), 0, "%s", rct_client_error(pri.c));
		cr_assert_eq(rct_client_ckpt_commit(pri.c, NULL), 0, "%s", rct_client_error(pri.c));
		if (e == 1) {
			/* rctd forwards CKPT_READY before it reads this request. */
			cr_assert_eq(rct_client_query(sec.c, RCT_IPC_STATUS, 0, &json), 0);
			free(json);
			cr_assert_eq(rct_client_arm(sec.c), -EAGAIN,
				     "the queued event is not seen");
		} else {
			/* Nothing queued: the event waits in the socket, which polls readable. */
			cr_assert_eq(rct_client_arm(sec.c), 0);
			pfd = (struct pollfd){.fd = rct_client_fd(sec.c), .events = POLLIN};
			cr_assert_eq(poll(&pfd, 1, 10000), 1,
				     "the descriptor never became readable");
		}
		cr_assert_eq(rct_client_event_next(sec.c, 0, &ev), 0);
		cr_assert_eq(ev.type, RCT_EVENT_CKPT_READY);
		cr_assert_eq(ev.epoch, e);
		cr_assert_eq(rct_client_arm(sec.c), 0);
		cr_assert_eq(rct_client_ckpt_flush(sec.c, e, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL), 0,
			     "%s", rct_client_error(sec.c));
		cr_assert_eq(memcmp(sec.ram, pri.ram, SIZE), 0, "guest RAM differs at epoch %llu",
			     (unsigned long long)e);
	}
	cr_assert_eq(rct_client_arm(NULL), -EINVAL);
	side_fini(&pri);
	side_fini(&sec);
}

Test(rctd, socket_api_round_trip_with_fd_passing)
{
	struct rct_client_session p = {.role = RCT_ROLE_SECONDARY, .name = "vm-a"};
	struct side s;
	uint64_t pages = 0, id = 0;
	uint16_t port = 0;
	char *json = NULL;
	int plain, rc;

	side_init(&s, 3);
	cr_assert_eq(rct_client_open(rctd_sock, "test", &s.c), 0);
	cr_assert(rct_client_caps(s.c) & RCT_IPC_CAP_TCP);
	/* Nothing works before a session exists. */
	cr_assert_eq(rct_client_ckpt_begin(s.c, 1, 0), -ENOENT);
	cr_assert_eq(rct_client_session_open(s.c, &p, &id), 0);
	cr_assert_gt(id, 0);
	cr_assert_eq(rct_client_session_open(s.c, &p, NULL), -EEXIST);
	cr_assert_eq(rct_client_region_add(s.c, 5, s.fd, 0, SIZE, s.bfd, 0, &pages), 0, "%s",
		     rct_client_error(s.c));
	cr_assert_eq(pages, SIZE / PAGE);
	cr_assert_eq(rct_client_region_add(s.c, 5, s.fd, 0, SIZE, s.bfd, 0, NULL), -EEXIST);
	/* A file that could shrink under rctd's mapping is taken (its size is
	 * re-checked: test_rctd_hv); what is not a regular file is not. */
	plain = memfd_create("unsealed", MFD_CLOEXEC);
	cr_assert_eq(ftruncate(plain, SIZE), 0);
	rc = rct_client_region_add(s.c, 6, plain, 0, SIZE, s.bfd, 0, NULL);
	cr_assert_eq(rc, 0, "%s", rct_client_error(s.c));
	cr_assert_eq(rct_client_region_remove(s.c, 6), 0);
	{
		int pfd[2];

		cr_assert_eq(pipe(pfd), 0);
		rc = rct_client_region_add(s.c, 6, pfd[0], 0, SIZE, s.bfd, 0, NULL);
		cr_assert_eq(rc, -EINVAL);
		cr_assert(strstr(rct_client_error(s.c), "not a regular file"), "%s",
			  rct_client_error(s.c));
		close(pfd[0]);
		close(pfd[1]);
	}
	/* Larger than the file. */
	cr_assert_eq(rct_client_region_add(s.c, 7, s.fd, 0, 2 * SIZE, s.bfd, 0, NULL), -EINVAL);
	close(plain);
	cr_assert_eq(rct_client_region_remove(s.c, 5), 0);
	cr_assert_eq(rct_client_region_remove(s.c, 5), -ENOENT);
	cr_assert_eq(rct_client_region_add(s.c, 5, s.fd, 0, SIZE, s.bfd, 0, NULL), 0);
	/* A primary-only call on a secondary session. */
	cr_assert_eq(rct_client_ckpt_commit(s.c, NULL), -EBUSY);
	cr_assert_eq(rct_client_listen(s.c, "127.0.0.1", 0, &port), 0);
	cr_assert_gt(port, 0);
	cr_assert_eq(rct_client_query(s.c, RCT_IPC_STATUS, 0, &json), 0);
	cr_assert(strstr(json, "\"daemon\":\"rctd\"") && strstr(json, "\"sessions\":1"), "%s",
		  json);
	free(json);
	cr_assert_eq(rct_client_query(s.c, RCT_IPC_STATS, RCT_IPC_STATS_SESSION, &json), 0);
	cr_assert(strstr(json, "\"name\":\"vm-a\"") && strstr(json, "\"state\":\"listening\""),
		  "%s", json);
	free(json);
	cr_assert_eq(rct_client_session_close(s.c), 0);
	cr_assert_eq(rct_client_query(s.c, RCT_IPC_STATS, RCT_IPC_STATS_SESSION, &json), -ENOENT);
	side_fini(&s);
	pair_checkpoint("vm-b");
	rctd_alive();
}

/* Run @fn in a child as uid/gid 65534 (nobody); returns its exit status. */
static int as_nobody(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(100);
		_exit(fn());
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

static int nobody_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", rctd_sock);
	if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		return 0;
	return errno == EACCES ? 1 : 2;
}

static int nobody_hello(void)
{
	struct rct_client *c;
	int rc = rct_client_open(rctd_sock, "intruder", &c);

	if (!rc)
		rct_client_close(c);
	return rc == -EACCES ? 1 : rc == 0 ? 0 : 2;
}

Test(rctd, refuses_users_not_allowed)
{
	struct stat sb;

	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	cr_assert_eq(stat(rctd_sock, &sb), 0);
	cr_assert(S_ISSOCK(sb.st_mode));
	cr_assert_eq(sb.st_mode & 0777, 0660, "socket mode %o", sb.st_mode & 0777);
	/* The file mode stops other users first... */
	cr_assert_eq(chmod(rctd_dir, 0755), 0);
	cr_assert_eq(as_nobody(nobody_connect), 1, "nobody could connect to a 0660 socket");
	/* ...and SO_PEERCRED when the mode lets them through. */
	cr_assert_eq(chmod(rctd_sock, 0666), 0);
	cr_assert_eq(as_nobody(nobody_hello), 1, "rctd did not refuse uid 65534 with EACCES");
	rctd_alive();
	pair_checkpoint("after-refusal");
}

static int raw_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {5, 0};

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", rctd_sock);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void raw_hdr(struct rct_ipc_hdr *h, uint16_t type, uint32_t len, uint64_t id)
{
	memset(h, 0, sizeof(*h));
	h->magic = htole32(RCT_IPC_MAGIC);
	h->version = htole16(RCT_IPC_VERSION);
	h->type = htole16(type);
	h->length = htole32(len);
	h->request_id = htole64(id);
}

static void raw_hello(int fd)
{
	struct {
		struct rct_ipc_hdr h;
		struct rct_ipc_hello b;
	} m = {.b = {.version_min = htole16(RCT_IPC_VERSION),
		     .version_max = htole16(RCT_IPC_VERSION)}};
	uint8_t reply[RCT_IPC_HDR_SIZE + sizeof(struct rct_ipc_hello_reply)];

	raw_hdr(&m.h, RCT_IPC_HELLO, sizeof(m.b), 1);
	cr_assert_eq(write(fd, &m, sizeof(m)), sizeof(m));
	cr_assert_eq(recv(fd, reply, sizeof(reply), MSG_WAITALL), (ssize_t)sizeof(reply));
}

/*
 * Send @len bytes; expect an error reply whose status is @want (0: any
 * negative), then the connection closed by rctd.
 */
static void expect_rejected(int fd, const void *bytes, size_t len, bool close_write, int want)
{
	struct rct_ipc_hdr r;
	uint8_t drain[512];
	ssize_t n;

	cr_assert_eq(write(fd, bytes, len), (ssize_t)len);
	if (close_write)
		shutdown(fd, SHUT_WR);
	n = recv(fd, &r, sizeof(r), MSG_WAITALL);
	if (n == (ssize_t)sizeof(r)) {
		int32_t st = (int32_t)le32toh(r.status);

		cr_assert(le16toh(r.flags) & RCT_IPC_FLAG_REPLY);
		cr_assert_lt(st, 0);
		if (want)
			cr_assert_eq(st, want, "status %d, expected %d", st, want);
		/* The text naming what was wrong, then end of stream. */
		while ((n = recv(fd, drain, sizeof(drain), 0)) > 0)
			;
	} else {
		cr_assert(close_write, "no reply to a whole malformed message");
	}
	cr_assert_eq(n, 0, "rctd kept the connection of a misbehaving client");
	close(fd);
}

Test(rctd, malformed_and_truncated_messages_end_only_that_client)
{
	struct rct_client_session p = {.role = RCT_ROLE_SECONDARY, .name = "bystander"};
	struct rct_client *good;
	struct rct_ipc_hdr h;
	uint8_t msg[256];
	char *json;
	int fd;

	/* A well-behaved client with a session, there all along. */
	cr_assert_eq(rct_client_open(rctd_sock, "good", &good), 0);
	cr_assert_eq(rct_client_session_open(good, &p, NULL), 0);

	raw_hdr(&h, RCT_IPC_HELLO, 0, 1);
	h.magic = htole32(0xdeadbeef);
	expect_rejected(raw_connect(), &h, sizeof(h), false, -EBADMSG);

	raw_hdr(&h, RCT_IPC_HELLO, 0, 1);
	expect_rejected(raw_connect(), &h, 17, true, 0); /* header cut short */

	raw_hdr(&h, RCT_IPC_HELLO, 40, 1);
	memcpy(msg, &h, sizeof(h));
	expect_rejected(raw_connect(), msg, sizeof(h) + 5, true, 0); /* payload cut short */

	raw_hdr(&h, RCT_IPC_HELLO, 3, 1); /* wrong payload size */
	memcpy(msg, &h, sizeof(h));
	expect_rejected(raw_connect(), msg, sizeof(h) + 3, false, -EPROTO);

	raw_hdr(&h, RCT_IPC_SESSION_OPEN, 0, 1); /* before HELLO */
	expect_rejected(raw_connect(), &h, sizeof(h), false, -EPROTO);

	raw_hdr(&h, RCT_IPC_STATUS, 0, 1);
	h.version = htole16(9);
	expect_rejected(raw_connect(), &h, sizeof(h), false, -EPROTONOSUPPORT);

	fd = raw_connect();
	raw_hello(fd);
	raw_hdr(&h, 200, 0, 2); /* unknown type */
	expect_rejected(fd, &h, sizeof(h), false, -EPROTO);

	fd = raw_connect();
	raw_hello(fd);
	raw_hdr(&h, RCT_IPC_REGION_ADD, sizeof(struct rct_ipc_region_add), 2);
	h.nfds = 2; /* announced, never sent */
	memset(msg, 0, sizeof(msg));
	memcpy(msg, &h, sizeof(h));
	expect_rejected(fd, msg, sizeof(h) + sizeof(struct rct_ipc_region_add), false, -EBADMSG);

	fd = raw_connect();
	raw_hello(fd);
	raw_hdr(&h, RCT_IPC_STATUS, 0, 2);
	h.flags = htole16(RCT_IPC_FLAG_EVENT); /* a request carries no flags */
	expect_rejected(fd, &h, sizeof(h), false, -EPROTO);

	fd = raw_connect();
	raw_hello(fd);
	raw_hdr(&h, RCT_IPC_SESSION_OPEN, sizeof(struct rct_ipc_session_open), 2);
	memcpy(msg, &h, sizeof(h));
	memset(msg + sizeof(h), 'A', sizeof(struct rct_ipc_session_open)); /* unterminated */
	expect_rejected(fd, msg, sizeof(h) + sizeof(struct rct_ipc_session_open), false, -EPROTO);

	rctd_alive();
	cr_assert_eq(rct_client_query(good, RCT_IPC_STATS, RCT_IPC_STATS_SESSION, &json), 0,
		     "the bystander lost its session: %s", rct_client_error(good));
	cr_assert(strstr(json, "\"name\":\"bystander\""), "%s", json);
	free(json);
	rct_client_close(good);
	pair_checkpoint("after-malformed");
}

/* One random message, sometimes after a HELLO and SESSION_OPEN, with random descriptors. */
static void fuzz_one(uint64_t *rng)
{
	uint8_t msg[RCT_IPC_HDR_SIZE + 512];
	struct rct_ipc_hdr h;
	uint64_t r = sim_rand(rng);
	uint32_t len = (uint32_t)(sim_rand(rng) % 200);
	uint16_t type = (uint16_t)(1 + sim_rand(rng) % (RCT_IPC_TYPE_MAX + 2));
	int fd = raw_connect(), mfd = -1;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t send_len;

	if (r & 1)
		raw_hello(fd);
	raw_hdr(&h, type, len, sim_rand(rng));
	if ((r >> 1) % 8 == 0) /* any header at all */
		for (size_t i = 0; i < sizeof(h); i++)
			((uint8_t *)&h)[i] = (uint8_t)sim_rand(rng);
	if ((r >> 4) % 4 == 0)
		h.length = htole32(sizeof(struct rct_ipc_region_add) * ((r >> 6) % 3));
	memcpy(msg, &h, sizeof(h));
	for (size_t i = sizeof(h); i < sizeof(msg); i++)
		msg[i] = (uint8_t)sim_rand(rng);
	send_len = sizeof(h) + (le32toh(h.length) < 512 ? le32toh(h.length) : 512);
	if ((r >> 8) % 5 == 0) /* cut short anywhere */
		send_len = sim_rand(rng) % send_len;
	if ((r >> 11) % 3 == 0) {
		/* A descriptor: a small memfd, sealed or not. */
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr a;
		} ctl = {0};
		struct iovec iov = {msg, send_len ? send_len : 1};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b)};
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		mfd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (ftruncate(mfd, (off_t)(sim_rand(rng) % (1 << 16))) == 0 && (r >> 13) % 2)
			fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &mfd, sizeof(int));
		sendmsg(fd, &mh, MSG_NOSIGNAL);
	} else if (send_len) {
		send(fd, msg, send_len, MSG_NOSIGNAL);
	}
	if ((r >> 14) % 2)
		shutdown(fd, SHUT_WR);
	/* Read whatever comes back for a moment, then leave (sometimes abruptly). */
	if (poll(&pfd, 1, 20) > 0)
		recv(fd, msg, sizeof(msg), MSG_DONTWAIT);
	if (mfd >= 0)
		close(mfd);
	close(fd);
}

Test(rctd, fuzzed_messages_never_take_rctd_down)
{
	uint64_t rng = 0xf022ull;

	for (int i = 0; i < 1500; i++) {
		fuzz_one(&rng);
		if (i % 100 == 0)
			rctd_alive();
	}
	rctd_alive();
	/* Still fully working: a checkpoint verified byte for byte. */
	pair_checkpoint("after-fuzz");
}

/* The primary, in a child process: epoch 0 committed, then dies inside epoch 1. */
static void primary_dies(uint16_t port)
{
	struct side pri;
	struct primary_job job = {.s = &pri, .port = port};

	side_init(&pri, 1);
	if (side_open(&pri, RCT_ROLE_PRIMARY, "dying.primary"))
		_exit(10);
	primary_full_sync(&job);
	if (job.rc)
		_exit(11);
	/* Epoch 1: a quarter of the pages change, the pages and the device state go out... */
	for (size_t p = 0; p < SIZE / PAGE; p += 4) {
		pri.ram[p * PAGE] ^= 0xff;
		pri.bits[p / 64] |= 1ull << (p % 64);
	}
	if (rct_client_ckpt_begin(pri.c, 1, 0) || rct_client_ckpt_dirty(pri.c, 0) ||
	    rct_client_ckpt_devstate(pri.c, "epoch 1", 7))
		_exit(12);
	/* ...and the hypervisor dies before COMMIT. */
	_exit(0);
}

Test(rctd, client_dies_mid_checkpoint_secondary_keeps_last_epoch)
{
	struct side sec, ref;
	struct rct_event ev = {0};
	uint16_t port;
	pid_t child;
	int status, rc;

	side_init(&ref, 1); /* what the primary's RAM is at epoch 0 */
	side_init(&sec, 2);
	cr_assert_eq(side_open(&sec, RCT_ROLE_SECONDARY, "dying.secondary"), 0);
	cr_assert_eq(rct_client_listen(sec.c, "127.0.0.1", 0, &port), 0);
	child = fork();
	cr_assert(child >= 0);
	if (child == 0)
		primary_dies(port);
	rc = rct_client_accept(sec.c, NULL);
	cr_assert_eq(rc, 0, "accept: %s (%s)", strerror(-rc), rct_client_error(sec.c));
	secondary_apply_epoch0(&sec, ref.ram);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "primary child status 0x%x",
		  status);
	/* rctd closes the dead client's session: GOODBYE, and the secondary hears of it. */
	do {
		rc = rct_client_event_next(sec.c, 15000, &ev);
		cr_assert_eq(rc, 0, "no PEER_LOST event: %s", strerror(-rc));
	} while (ev.type == RCT_EVENT_CKPT_READY && ev.epoch == 0);
	cr_assert_eq(ev.type, RCT_EVENT_PEER_LOST, "event %d epoch %lu", ev.type,
		     (unsigned long)ev.epoch);
	cr_assert_eq(ev.epoch, 0, "last committed epoch");
	/* The uncommitted epoch 1 never reached guest RAM. */
	cr_assert_eq(memcmp(sec.ram, ref.ram, SIZE), 0,
		     "guest RAM changed by an uncommitted epoch");
	/* A failed secondary still applies a committed checkpoint (failover), but
	 * epoch 1 never committed: refused, and RAM stays at epoch 0. */
	cr_assert_lt(rct_client_ckpt_flush(sec.c, 1, 0, NULL), 0);
	cr_assert_eq(rct_client_detail(sec.c), RCT_ERR_STATE, "%s", rct_client_error(sec.c));
	cr_assert_eq(memcmp(sec.ram, ref.ram, SIZE), 0);
	side_fini(&sec);
	side_fini(&ref);
	rctd_alive();
	pair_checkpoint("after-death");
}

/* Read one reply of @id off a raw connection and return its status. */
static int32_t raw_reply(int fd, uint64_t id)
{
	struct rct_ipc_hdr r;
	char drain[4096];
	size_t left;

	cr_assert_eq(recv(fd, &r, sizeof(r), MSG_WAITALL), (ssize_t)sizeof(r));
	cr_assert_eq(le64toh(r.request_id), id);
	for (left = le32toh(r.length); left;) {
		ssize_t n = recv(fd, drain, left < sizeof(drain) ? left : sizeof(drain), 0);

		cr_assert_gt(n, 0);
		left -= (size_t)n;
	}
	return (int32_t)le32toh(r.status);
}

/*
 * A client request holds rctd's session thread for 16 heartbeat intervals (it
 * sends half a message and the rest 800 ms later; rctd reads a message whole).
 * That is a stall of rctd's own, never the peer's death: the secondary must
 * not lose its primary, the next checkpoint must commit and verify, and rctd
 * reports the stall.  With heartbeats on the control lane, sent only while the
 * session thread runs, the secondary declared its primary lost after 150 ms.
 */
Test(rctd, a_request_that_holds_rctd_for_16_heartbeats_loses_no_peer)
{
	struct side pri, sec;
	struct rct_ipc_hdr h;
	struct rct_event ev = {0};
	char *json = NULL;
	int rc, fd;

	pair_up(&pri, &sec, "held");

	fd = rct_client_fd(pri.c);
	raw_hdr(&h, RCT_IPC_STATUS, 0, 777);
	cr_assert_eq(write(fd, &h, 10), 10);
	usleep(800000);
	cr_assert_eq(write(fd, (char *)&h + 10, sizeof(h) - 10), (ssize_t)(sizeof(h) - 10));
	cr_assert_eq(raw_reply(fd, 777), 0);

	/* Epoch 1: three pages change; the secondary must see it ready, not lost. */
	for (unsigned pg = 3; pg < 6; pg++) {
		memset(pri.ram + (size_t)pg * PAGE, 0x40 + (int)pg, PAGE);
		pri.bits[pg / 64] |= 1ull << (pg % 64);
	}
	cr_assert_eq(rct_client_ckpt_begin(pri.c, 1, 0), 0, "%s", rct_client_error(pri.c));
	cr_assert_eq(rct_client_ckpt_dirty(pri.c, 0), 0, "%s", rct_client_error(pri.c));
	cr_assert_eq(rct_client_ckpt_devstate(pri.c, DEV_BLOB, sizeof(DEV_BLOB)), 0);
	rc = rct_client_ckpt_commit(pri.c, NULL);
	cr_assert_eq(rc, 0, "commit of epoch 1: %s (%s)", strerror(-rc), rct_client_error(pri.c));
	rc = rct_client_event_next(sec.c, 10000, &ev);
	cr_assert_eq(rc, 0, "no event: %s", strerror(-rc));
	cr_assert_eq(ev.type, RCT_EVENT_CKPT_READY, "event %d (status %d) instead of epoch 1 ready",
		     (int)ev.type, (int)ev.status);
	cr_assert_eq(ev.epoch, 1);
	rc = rct_client_ckpt_flush(sec.c, 1, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL);
	cr_assert_eq(rc, 0, "flush: %s (%s)", strerror(-rc), rct_client_error(sec.c));
	cr_assert_eq(memcmp(sec.ram, pri.ram, SIZE), 0, "guest RAM differs after epoch 1");

	/* rctd counted the hold as a stall of its own session. */
	cr_assert_eq(rct_client_query(pri.c, RCT_IPC_SESSIONS, 0, &json), 0);
	{
		const char *at = strstr(json, "\"name\":\"held.primary\"");
		unsigned long long gaps = 0;
		double max_ms = 0;

		cr_assert_not_null(at, "%s", json);
		at = strstr(at, "\"stalls\":");
		cr_assert_not_null(at, "%s", json);
		cr_assert_eq(sscanf(at,
				    "\"stalls\":{\"process\":%*u,\"process_max_ms\":%*f,"
				    "\"session\":%llu,\"session_max_ms\":%lf",
				    &gaps, &max_ms),
			     2, "%s", at);
		cr_assert_geq(gaps, 1, "no session stall counted: %s", at);
		cr_assert_geq(max_ms, 700, "the longest session stall: %.1f ms", max_ms);
	}
	free(json);
	side_fini(&pri);
	side_fini(&sec);
	rctd_alive();
}

/* ------------------------------------------------- slots and deadlines */

#define MSG_TIMEOUT_MS 2000 /* rctd_start's --message-timeout-ms */

static int hold_fds[300];

/* As nobody: 300 connections, held until killed (rctd must refuse each at accept). */
static int nobody_holds_300(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", rctd_sock);
	for (int i = 0; i < 300; i++) {
		hold_fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(hold_fds[i], (struct sockaddr *)&sun, sizeof(sun)))
			return 2;
	}
	pause();
	return 0;
}

/* rct_client_open's result, and rctd's text when it failed. */
static int try_open(char *why, size_t len)
{
	struct rct_client *c;
	int rc = rct_client_open(rctd_sock, "newcomer", &c);

	snprintf(why, len, "%s", rct_client_open_error());
	if (!rc)
		rct_client_close(c);
	return rc;
}

Test(rctd, users_not_allowed_hold_no_slot)
{
	char why[256];
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	cr_assert_eq(chmod(rctd_dir, 0755), 0);
	cr_assert_eq(chmod(rctd_sock, 0666), 0);
	pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(100);
		_exit(nobody_holds_300());
	}
	usleep(500000); /* its 300 connections are made (and refused) */
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the holder exited early");
	cr_assert_eq(try_open(why, sizeof(why)), 0, "refused: %s", why);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	rctd_alive();
}

Test(rctd, silent_connections_time_out_and_refusals_say_why)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fds[256], rc = 0;
	uint64_t t0;
	char why[256];

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", rctd_sock);
	for (int i = 0; i < 256; i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		cr_assert_eq(connect(fds[i], (struct sockaddr *)&sun, sizeof(sun)), 0);
	}
	usleep(200000);
	/* Every slot is held: the newcomer is told so, by name. */
	rc = try_open(why, sizeof(why));
	cr_assert_eq(rc, -EUSERS, "open with every slot held: %d (%s)", rc, why);
	cr_assert_not_null(strstr(why, "256 connections"), "%s", why);
	/* The silent ones said no HELLO: rctd closes them after the deadline. */
	t0 = (uint64_t)time(NULL);
	do {
		usleep(200000);
		rc = try_open(why, sizeof(why));
	} while (rc && (uint64_t)time(NULL) - t0 < 10);
	cr_assert_eq(rc, 0, "still refused 10 s later: %s", why);
	for (int i = 0; i < 256; i++) {
		char b;

		cr_assert_eq(read(fds[i], &b, 1), 0, "silent connection %d was not closed", i);
		close(fds[i]);
	}
	rctd_alive();
}

Test(rctd, a_message_must_be_whole_within_the_deadline_of_its_first_byte)
{
	struct rct_ipc_hdr h;
	struct rct_ipc_hdr r;
	int fd = raw_connect();
	uint64_t t0 = (uint64_t)time(NULL);
	ssize_t n;

	signal(SIGPIPE, SIG_IGN); /* rctd closes before the last byte */
	raw_hello(fd);
	raw_hdr(&h, RCT_IPC_STATUS, 0, 9);
	/* One byte every 500 ms: every read is quick, the message is not. */
	for (size_t i = 0; i < 8; i++) {
		if (write(fd, (char *)&h + i, 1) != 1)
			break;
		usleep(500000);
	}
	n = recv(fd, &r, sizeof(r), MSG_WAITALL);
	cr_assert_eq(n, (ssize_t)sizeof(r), "no error reply (%zd)", n);
	cr_assert_eq((int32_t)le32toh(r.status), -ETIMEDOUT);
	cr_assert_leq((uint64_t)time(NULL) - t0, 5);
	close(fd);
	rctd_alive();
}

/* ------------------------------------------------- memory a client can ask for */

static int sparse_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0, "ftruncate %s: %s", name, strerror(errno));
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	return fd;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

Test(rctd, a_client_does_not_size_rctds_memory)
{
	struct rct_client_session p = {.role = RCT_ROLE_SECONDARY, .name = "big"};
	const uint64_t tib = 1ull << 40, small = 256ull << 20;
	int ram = sparse_memfd("tib-ram", tib), bits = sparse_memfd("tib-bits", tib / PAGE / 8);
	struct rct_client *c;
	long rss0, rss1;
	struct stat sb;
	int rc;

	cr_assert_eq(rct_client_open(rctd_sock, "big", &c), 0);
	cr_assert_eq(rct_client_session_open(c, &p, NULL), 0);
	rss0 = rss_kib(rctd_pid);
	/* 1 TiB asked: refused before anything is mapped, naming the limit. */
	rc = rct_client_region_add(c, 0, ram, 0, tib, bits, 0, NULL);
	cr_assert_eq(rc, -ENOMEM, "1 TiB region: %d (%s)", rc, rct_client_error(c));
	cr_assert_not_null(strstr(rct_client_error(c), "--max-registered"), "%s",
			   rct_client_error(c));
	rss1 = rss_kib(rctd_pid);
	cr_assert_lt(rss1 - rss0, 64 * 1024, "rctd grew by %ld KiB", rss1 - rss0);
	/* 256 MiB of a sparse memfd: accepted, and still sparse afterwards. */
	rc = rct_client_region_add(c, 1, ram, 0, small, bits, 0, NULL);
	cr_assert_eq(rc, 0, "256 MiB region: %d (%s)", rc, rct_client_error(c));
	cr_assert_eq(fstat(ram, &sb), 0);
	cr_assert_lt((uint64_t)sb.st_blocks * 512, 1u << 20,
		     "rctd populated %lld KiB of the guest's sparse memfd",
		     (long long)sb.st_blocks / 2);
	rct_client_close(c);
	close(ram);
	close(bits);
	rctd_alive();
}

/* ------------------------------------------------- tenants on one host */

/* Remove a state directory of a daemon started by a test. */
static void rm_state(const char *path)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	cr_assert_eq(system(cmd), 0);
}

struct hostile_job {
	struct side *s;
	uint16_t port;
	int rc;
	char why[256];
};

static void *hostile_connect(void *arg)
{
	struct hostile_job *j = arg;

	j->rc = rct_client_connect(j->s->c, "127.0.0.1", j->port, NULL);
	if (!j->rc)
		j->rc = rct_client_ckpt_begin(j->s->c, 0, RCT_CKPT_FULL);
	if (!j->rc)
		j->rc = rct_client_ckpt_commit(j->s->c, NULL);
	snprintf(j->why, sizeof(j->why), "%s", rct_client_error(j->s->c));
	return NULL;
}

/* An impostor first, then VM A's own primary, to one listening secondary. */
struct impostor_job {
	struct hostile_job evil;
	struct primary_job own;
};

static void *impostor_then_own(void *arg)
{
	struct impostor_job *j = arg;

	hostile_connect(&j->evil);
	primary_full_sync(&j->own);
	return NULL;
}

/*
 * Two rctd holding the same host key, as the docs deploy them.  VM A's
 * secondary listens.  Another client of the primary-side rctd (another
 * tenant's hypervisor) goes for it: without a pairing it may not connect at
 * all; claiming VM A's identity without VM A's pairing key it fails AUTH and
 * is turned away.  VM A's guest RAM stays as it was, and the same listening
 * session then accepts VM A's own primary and applies its checkpoint, verified
 * byte for byte.  (Before pairings, the first authenticated primary won: its
 * pages reached VM A's guest RAM; before the listener outlived a failed AUTH,
 * the impostor ended VM A's accept with -EKEYREJECTED.)
 */
Test(rctd, another_tenants_primary_never_writes_into_vm_a)
{
	static const uint8_t key_a[RCT_IPC_PAIRING_KEY_LEN] = {0xa, 0xb, 0xc};
	static const uint8_t key_x[RCT_IPC_PAIRING_KEY_LEN] = {0xd, 0xe, 0xf};
	char psk[96], ps[96], ss[96], pst[96], sst[96];
	struct side sec, evil, pri;
	struct impostor_job job = {.evil.s = &evil, .own.s = &pri};
	uint8_t before[64];
	pthread_t t;
	pid_t ppid, spid;
	int fd, rc;

	snprintf(psk, sizeof(psk), "%s/host.key", rctd_dir);
	snprintf(ps, sizeof(ps), "%s/p.sock", rctd_dir);
	snprintf(ss, sizeof(ss), "%s/s.sock", rctd_dir);
	snprintf(pst, sizeof(pst), "%s/p.state", rctd_dir);
	snprintf(sst, sizeof(sst), "%s/s.state", rctd_dir);
	fd = open(psk, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_eq(write(fd, "the two hosts share this key...!", 32), 32);
	close(fd);
	ppid = rctd_spawn(ps, psk, pst);
	spid = rctd_spawn(ss, psk, sst);

	side_init(&sec, 2);
	memcpy(before, sec.ram, sizeof(before));
	cr_assert_eq(side_open_at(&sec, ss, RCT_ROLE_SECONDARY, "vm-a.secondary", "vm-a", key_a), 0,
		     "%s", rct_client_error(sec.c));
	cr_assert_eq(rct_client_listen(sec.c, "127.0.0.1", 0, &job.own.port), 0);
	job.evil.port = job.own.port;

	/* No pairing at all: rctd lets it pair with nothing. */
	side_init(&evil, 3);
	cr_assert_eq(side_open_at(&evil, ps, RCT_ROLE_PRIMARY, "evil", NULL, NULL), 0);
	rc = rct_client_connect(evil.c, "127.0.0.1", job.evil.port, NULL);
	cr_assert_eq(rc, -EPERM, "unpaired connect: %d (%s)", rc, rct_client_error(evil.c));
	side_fini(&evil);

	/* VM A's identity without VM A's pairing key, then VM A's own primary. */
	side_init(&evil, 3);
	side_init(&pri, 1);
	cr_assert_eq(side_open_at(&evil, ps, RCT_ROLE_PRIMARY, "evil", "vm-a", key_x), 0);
	cr_assert_eq(side_open_at(&pri, ps, RCT_ROLE_PRIMARY, "vm-a.primary", "vm-a", key_a), 0);
	cr_assert_eq(pthread_create(&t, NULL, impostor_then_own, &job), 0);
	rc = rct_client_accept(sec.c, NULL);
	pthread_join(t, NULL);
	cr_assert_eq(job.evil.rc, -EKEYREJECTED, "the impostor got %d (%s)", job.evil.rc,
		     job.evil.why);
	cr_assert_eq(rc, 0, "VM A's accept after the impostor: %s (%s)", strerror(-rc),
		     rct_client_error(sec.c));
	cr_assert_eq(job.own.rc, 0, "VM A's primary: %s", rct_client_error(pri.c));
	cr_assert_eq(memcmp(sec.ram, before, sizeof(before)), 0,
		     "VM A's guest RAM changed before its own checkpoint was flushed");
	secondary_apply_epoch0(&sec, pri.ram);
	side_fini(&evil);
	side_fini(&pri);
	side_fini(&sec);

	rctd_reap(ppid);
	rctd_reap(spid);
	unlink(psk);
	rm_state(pst);
	rm_state(sst);
	rctd_alive();
}

/* A pairing's generation and last committed epoch outlive rctd. */
Test(rctd, the_pairing_state_survives_a_restart_of_rctd)
{
	static const uint8_t key_g[RCT_IPC_PAIRING_KEY_LEN] = {0x9};
	struct rct_client_pairing p5 = {
		.id = "vm-g", .key = key_g, .has_generation = 1, .generation = 5};
	struct rct_client_pairing_state st = {0};
	struct side pri, sec;
	char *json = NULL, ps[96], pst[96];
	pid_t ppid;
	int rc;

	/* Paired at generation 5, one checkpoint committed and flushed (epoch 0);
	 * the primary's host has an rctd of its own (one session of a pairing
	 * per daemon). */
	snprintf(ps, sizeof(ps), "%s/p.sock", rctd_dir);
	snprintf(pst, sizeof(pst), "%s/p.state", rctd_dir);
	ppid = rctd_spawn(ps, NULL, pst);
	side_init(&sec, 2);
	side_init(&pri, 1);
	{
		struct primary_job job = {.s = &pri};
		pthread_t t;

		cr_assert_eq(side_open(&sec, RCT_ROLE_SECONDARY, "g.secondary"), 0);
		cr_assert_eq(rct_client_session_pairing(sec.c, &p5, &st), 0, "%s",
			     rct_client_error(sec.c));
		cr_assert_eq(st.generation, 5);
		cr_assert_eq(st.last_committed, UINT64_MAX);
		cr_assert_eq(rct_client_listen(sec.c, "127.0.0.1", 0, &job.port), 0);
		cr_assert_eq(side_open_at(&pri, ps, RCT_ROLE_PRIMARY, "g.primary", NULL, NULL), 0);
		cr_assert_eq(rct_client_session_pairing(pri.c, &p5, NULL), 0);
		cr_assert_eq(pthread_create(&t, NULL, primary_full_sync, &job), 0);
		cr_assert_eq(rct_client_accept(sec.c, NULL), 0);
		pthread_join(t, NULL);
		cr_assert_eq(job.rc, 0, "%s", rct_client_error(pri.c));
		secondary_apply_epoch0(&sec, pri.ram);
		cr_assert_eq(rct_client_query(sec.c, RCT_IPC_STATUS, 0, &json), 0);
		cr_assert_not_null(strstr(json, "\"pairing\":\"vm-g\",\"generation\":5"), "%s",
				   json);
		free(json);
		side_fini(&pri);
		side_fini(&sec);
	}
	rctd_reap(ppid);
	rm_state(pst);
	/* rctd restarts: the record is read back, a stale generation refused. */
	rctd_stop();
	rctd_start();
	side_init(&sec, 2);
	cr_assert_eq(side_open(&sec, RCT_ROLE_SECONDARY, "g.secondary"), 0);
	p5.generation = 4;
	rc = rct_client_session_pairing(sec.c, &p5, &st);
	cr_assert_eq(rc, -ESTALE, "generation 4 after 5: %d (%s)", rc, rct_client_error(sec.c));
	p5.has_generation = 0;
	cr_assert_eq(rct_client_session_pairing(sec.c, &p5, &st), 0, "%s", rct_client_error(sec.c));
	cr_assert_eq(st.generation, 5, "generation %llu after the restart",
		     (unsigned long long)st.generation);
	cr_assert_eq(st.last_committed, 0, "last committed epoch %llu after the restart",
		     (unsigned long long)st.last_committed);
	side_fini(&sec);
	rctd_alive();
}
