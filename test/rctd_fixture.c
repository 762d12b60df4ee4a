/* SPDX-License-Identifier: BSD-3-Clause */
/* rctd_fixture.h: an rctd per test, and test guests paired through it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "rctd_fixture.h"
#include "sim.h"

char rctd_dir[48], rctd_sock[96], rctd_state[96];
pid_t rctd_pid;

static pid_t spawn(const char *at, const char *psk, const char *state_dir, const char *allow_uid,
		   const char *const *args, unsigned nofile)
{
	struct harness_rctd h = {.rctd = RCTD_PATH,
				 .socket = at,
				 .state_dir = state_dir,
				 .psk_file = psk,
				 .message_timeout_ms = psk ? 0 : 2000,
				 .allow_uid = allow_uid,
				 .args = args,
				 .nofile = nofile,
				 .die_with_parent = true, /* a failed assertion must not leave it */
				 .ready_ms = 5000};
	char why[512];
	pid_t pid = harness_rctd_start(&h, why, sizeof(why));

	cr_assert(pid > 0, "%s", why);
	return pid;
}

/* Start rctd on @at (with key file @psk unless NULL) and wait until it serves. */
pid_t rctd_spawn(const char *at, const char *psk, const char *state_dir)
{
	return spawn(at, psk, state_dir, NULL, NULL, 0);
}

pid_t rctd_spawn_tagged(const char *tag, const char *allow_uid, const char *const *args,
			unsigned nofile, char *sock)
{
	char state[RCTD_PATH_LEN];
	pid_t pid;

	snprintf(sock, RCTD_PATH_LEN, "%s/%s.sock", rctd_dir, tag);
	snprintf(state, sizeof(state), "%s/%s.state", rctd_dir, tag);
	pid = spawn(sock, NULL, state, allow_uid, args, nofile);
	if (allow_uid) { /* its tenant reaches it */
		cr_assert_eq(chmod(rctd_dir, 0755), 0);
		cr_assert_eq(chmod(sock, 0666), 0);
	}
	return pid;
}

void rctd_start(void)
{
	if (!rctd_dir[0]) { /* kept across a restart: the state directory is in it */
		snprintf(rctd_dir, sizeof(rctd_dir), "/tmp/rctd-test.XXXXXX");
		cr_assert_not_null(mkdtemp(rctd_dir));
	}
	snprintf(rctd_sock, sizeof(rctd_sock), "%s/rctd.sock", rctd_dir);
	snprintf(rctd_state, sizeof(rctd_state), "%s/state", rctd_dir);
	rctd_pid = rctd_spawn(rctd_sock, NULL, rctd_state);
}

/* rctd must still be running. */
void rctd_alive(void)
{
	int status;

	cr_assert_eq(waitpid(rctd_pid, &status, WNOHANG), 0, "rctd died (status 0x%x)", status);
}

void rctd_stop(void)
{
	int status = 0;

	if (rctd_pid > 0) {
		kill(rctd_pid, SIGTERM);
		waitpid(rctd_pid, &status, 0);
		rctd_pid = 0;
		/* A clean stop on SIGTERM: exit status 0, socket removed. */
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rctd status 0x%x",
			  status);
		cr_expect_neq(access(rctd_sock, F_OK), 0, "the socket outlived rctd");
	}
}

void rctd_reap(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

void rctd_fini(void)
{
	char cmd[96];

	rctd_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rctd_dir);
	cr_expect_eq(system(cmd), 0);
}

/* ------------------------------------------------------------ test guests */

static void side_init_bits(struct side *s, uint64_t seed, size_t bits_file)
{
	memset(s, 0, sizeof(*s));
	s->bits_file = bits_file;
	s->ram = sim_memfd_map("test-ram", SIZE, &s->fd);
	s->bits = sim_memfd_map("test-bits", bits_file, &s->bfd);
	cr_assert(s->ram && s->bits);
	for (size_t i = 0; i < SIZE / 8; i++)
		((uint64_t *)s->ram)[i] = sim_rand(&seed);
}

void side_init(struct side *s, uint64_t seed)
{
	side_init_bits(s, seed, BITS_LEN);
}

void side_init_summary(struct side *s, uint64_t seed)
{
	side_init_bits(s, seed, BITS_LEN + SUM_LEN);
	s->sum = s->bits + BITS_LEN / 8;
}

void side_fini(struct side *s)
{
	rct_client_close(s->c);
	sim_memfd_unmap(s->ram, SIZE, s->fd);
	sim_memfd_unmap(s->bits, s->bits_file, s->bfd);
}

/* A session on rctd at @at; paired as @pairing with @key when @pairing is not NULL. */
int side_open_at(struct side *s, const char *at, enum rct_role role, const char *name,
		 const char *pairing, const uint8_t *key)
{
	struct rct_client_session p = {
		.role = role, .backend = "tcp", .name = name, .lanes = 2, .timeout_ms = 10000};
	struct rct_client_pairing pr = {.id = pairing, .key = key};
	int rc = rct_client_open(at, name, &s->c);

	if (!rc)
		rc = rct_client_session_open(s->c, &p, NULL);
	if (!rc && pairing)
		rc = rct_client_session_pairing(s->c, &pr, NULL);
	if (!rc)
		rc = rct_client_region_add(s->c, 0, s->fd, 0, SIZE, s->bfd, 0, NULL);
	return rc;
}

int side_open(struct side *s, enum rct_role role, const char *name)
{
	return side_open_at(s, rctd_sock, role, name, NULL, NULL);
}

/* The primary: connect and send one full checkpoint (epoch 0). */
void *primary_full_sync(void *arg)
{
	struct primary_job *j = arg;

	j->rc = rct_client_connect(j->s->c, "127.0.0.1", j->port, NULL);
	if (!j->rc)
		j->rc = rct_client_ckpt_begin(j->s->c, 0, RCT_CKPT_FULL);
	if (!j->rc)
		j->rc = rct_client_ckpt_devstate(j->s->c, DEV_BLOB, sizeof(DEV_BLOB));
	if (!j->rc)
		j->rc = rct_client_ckpt_commit(j->s->c, NULL);
	return NULL;
}

/* The secondary's half of epoch 0: ready event, flush, device state, byte compare. */
void secondary_apply_epoch0(struct side *sec, const void *expect)
{
	struct rct_event ev = {0};
	const void *dev;
	size_t len;
	int rc;

	rc = rct_client_event_next(sec->c, 10000, &ev);
	cr_assert_eq(rc, 0, "no event: %s", strerror(-rc));
	cr_assert_eq(ev.type, RCT_EVENT_CKPT_READY);
	cr_assert_eq(ev.epoch, 0);
	rc = rct_client_ckpt_flush(sec->c, 0, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL);
	cr_assert_eq(rc, 0, "flush: %s (%s)", strerror(-rc), rct_client_error(sec->c));
	rc = rct_client_devstate_get(sec->c, 0, &dev, &len);
	cr_assert_eq(rc, 0, "devstate: %s (%s)", strerror(-rc), rct_client_error(sec->c));
	cr_assert_eq(len, sizeof(DEV_BLOB));
	cr_assert_eq(memcmp(dev, DEV_BLOB, len), 0);
	cr_assert_eq(memcmp(sec->ram, expect, SIZE), 0, "guest RAM differs after the flush");
}

/* A full checkpoint between two fresh sessions on this rctd, verified byte for byte. */
/* Wait (at most 5 s) until rctd's STATUS shows @replication for the session of @s. */
void secondary_sees(struct side *s, const char *replication)
{
	char *json = NULL;
	bool seen = false;

	for (int i = 0; i < 500 && !seen; i++) {
		free(json);
		json = NULL;
		cr_assert_eq(rct_client_query(s->c, RCT_IPC_STATUS, 0, &json), 0);
		seen = strstr(json, replication) != NULL;
		if (!seen)
			usleep(10000);
	}
	cr_assert(seen, "rctd STATUS never said '%s': %s", replication, json);
	free(json);
}

/* Pair @pri and @sec (sessions open, region 0 added) and apply epoch 0. */
void pair_opened(struct side *pri, struct side *sec)
{
	struct primary_job job = {.s = pri};
	pthread_t t;
	int rc;

	cr_assert_eq(rct_client_listen(sec->c, "127.0.0.1", 0, &job.port), 0);
	cr_assert_eq(pthread_create(&t, NULL, primary_full_sync, &job), 0);
	rc = rct_client_accept(sec->c, NULL);
	cr_assert_eq(rc, 0, "accept: %s (%s)", strerror(-rc), rct_client_error(sec->c));
	pthread_join(t, NULL);
	cr_assert_eq(job.rc, 0, "primary: %s (%s)", strerror(-job.rc), rct_client_error(pri->c));
	secondary_apply_epoch0(sec, pri->ram);
}

/* Two fresh sessions TAG.primary and TAG.secondary on this rctd, paired, epoch 0 applied. */
void pair_up(struct side *pri, struct side *sec, const char *tag)
{
	char pname[32], sname[32];

	snprintf(pname, sizeof(pname), "%s.primary", tag);
	snprintf(sname, sizeof(sname), "%s.secondary", tag);
	side_init(pri, 1);
	side_init(sec, 2);
	cr_assert_eq(side_open(sec, RCT_ROLE_SECONDARY, sname), 0);
	cr_assert_eq(side_open(pri, RCT_ROLE_PRIMARY, pname), 0);
	pair_opened(pri, sec);
}
