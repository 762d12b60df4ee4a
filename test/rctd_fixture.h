/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rctd test fixture: every test starts its own rctd (a real process, from
 * RCTD_PATH) in a fresh directory; test guests are memfds paired through it
 * with librct-client.  Used by test_rctd.c and test_rctd_hv.c.
 */
#ifndef RCT_TEST_RCTD_FIXTURE_H
#define RCT_TEST_RCTD_FIXTURE_H

#include <stdint.h>
#include <sys/types.h>

#include <rct/rct.h>
#include <rct/rct_client.h>

#define PAGE	 4096
#define SIZE	 (4u << 20) /* guest RAM of the test VMs */
#define BITS_LEN ((SIZE / PAGE + 63) / 64 * 8)
#define SUM_LEN	 ((BITS_LEN / 8 + 63) / 64 * 8) /* a bitmap's summary: a bit per word */
#define DEV_BLOB "device state of the test"

extern char rctd_dir[48], rctd_sock[96], rctd_state[96];
extern pid_t rctd_pid;

/* ------------------------------------------------------------ test guests */

struct side {
	uint8_t *ram;
	int fd;
	uint64_t *bits;
	uint64_t *sum; /* side_init_summary(): the summary after the bitmap; else NULL */
	size_t bits_file;
	int bfd;
	struct rct_client *c;
};

struct primary_job {
	struct side *s;
	uint16_t port;
	int rc;
};

/* Start rctd on @at (with key file @psk unless NULL) and wait until it serves. */
pid_t rctd_spawn(const char *at, const char *psk, const char *state_dir);
/* The same on DIR/@tag.sock (its path written to @sock, RCTD_PATH_LEN bytes),
 * its state in DIR/@tag.state, serving uid @allow_uid too (--allow-uid, its
 * socket open to all) unless NULL, with more arguments @args (NULL-terminated,
 * or NULL) and, when @nofile > 0, that RLIMIT_NOFILE. */
#define RCTD_PATH_LEN 96
pid_t rctd_spawn_tagged(const char *tag, const char *allow_uid, const char *const *args,
			unsigned nofile, char *sock);
/* The suite's .init and .fini: an rctd at sock, its state in state. */
void rctd_start(void);
void rctd_fini(void);
/* rctd must still be running. */
void rctd_alive(void);
/* SIGTERM, and it must stop cleanly. */
void rctd_stop(void);
/* SIGTERM to an rctd of rctd_spawn(), and wait for it. */
void rctd_reap(pid_t pid);

/* SIZE bytes of random guest RAM (from @seed) and its bitmap, in memfds. */
void side_init(struct side *s, uint64_t seed);
/* The same, the bitmap file holding its summary after it (RCT_IPC_TAKE_SUMMARY). */
void side_init_summary(struct side *s, uint64_t seed);
void side_fini(struct side *s);
/* A session on rctd at @at with region 0; paired as @pairing with @key unless NULL. */
int side_open_at(struct side *s, const char *at, enum rct_role role, const char *name,
		 const char *pairing, const uint8_t *key);
int side_open(struct side *s, enum rct_role role, const char *name);
/* The primary: connect and send one full checkpoint (epoch 0). */
void *primary_full_sync(void *arg);
/* The secondary's half of epoch 0: ready event, flush, device state, byte compare. */
void secondary_apply_epoch0(struct side *sec, const void *expect);
/* Wait (at most 5 s) until rctd's STATUS shows @replication for the session of @s. */
void secondary_sees(struct side *s, const char *replication);
/* Pair @pri and @sec (sessions open, region 0 added) and apply epoch 0. */
void pair_opened(struct side *pri, struct side *sec);
/* Two fresh sessions TAG.primary and TAG.secondary on this rctd, paired, epoch 0 applied. */
void pair_up(struct side *pri, struct side *sec, const char *tag);

#endif
