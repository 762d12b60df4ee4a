/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A pairing under a cluster manager (PAIRING_CTL, rctctl pairing): two real
 * rctd, a real pairing over tcp, and the orders an agent gives: show, a
 * failover refused on stale data then done, a demotion, the old primary's
 * rejoin as a secondary of the new generation, an abort, a new generation.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "rctd_fixture.h"

TestSuite(rctd_cluster, .init = rctd_start, .fini = rctd_fini, .timeout = 120);

static const uint8_t key_f[RCT_IPC_PAIRING_KEY_LEN] = {0xf, 0x1};

/* PAIRING_CTL @op of @id on rctd at @sock: its status; the JSON reply in *@j_p (or NULL). */
static int ctl_id(const char *sock, const char *id, uint32_t op, uint64_t min_gen,
		  uint64_t min_epoch, json_t **j_p, char *why, size_t why_len)
{
	struct rct_client *c;
	char *text = NULL;
	int rc = rct_client_open(sock, "agent", &c);

	cr_assert_eq(rc, 0, "admin client: %s", rct_client_open_error());
	rc = rct_client_pairing_ctl(c, op, id, min_gen, min_epoch, &text);
	if (why)
		snprintf(why, why_len, "%s", rct_client_error(c));
	rct_client_close(c);
	*j_p = NULL;
	if (!rc) {
		*j_p = json_loads(text, 0, NULL);
		cr_assert_not_null(*j_p, "not JSON: %s", text);
	}
	free(text);
	return rc;
}

static int ctl(const char *sock, uint32_t op, uint64_t min_gen, uint64_t min_epoch, json_t **j_p,
	       char *why, size_t why_len)
{
	return ctl_id(sock, "vm-f", op, min_gen, min_epoch, j_p, why, why_len);
}

static json_int_t jint(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	cr_assert(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

static const char *sess_str(json_t *j, const char *key)
{
	json_t *s = json_object_get(j, "session");

	cr_assert(json_is_object(s), "no session in the reply");
	return json_string_value(json_object_get(s, key));
}

/* Wait (at most 5 s) for a PEER_LOST event on @s. */
static void peer_lost(struct side *s)
{
	struct rct_event ev = {0};
	int rc;

	do {
		rc = rct_client_event_next(s->c, 5000, &ev);
		cr_assert_eq(rc, 0, "no PEER_LOST: %s", strerror(-rc));
	} while (ev.type != RCT_EVENT_PEER_LOST);
}

/* @s's rctd shows @what for @s's session (STATS of that session). */
static void session_says(struct side *s, const char *what)
{
	char *json = NULL;
	bool seen = false;

	for (int i = 0; i < 500 && !seen; i++) {
		free(json);
		json = NULL;
		cr_assert_eq(rct_client_query(s->c, RCT_IPC_STATS, RCT_IPC_STATS_SESSION, &json),
			     0);
		seen = strstr(json, what) != NULL;
		if (!seen)
			usleep(10000);
	}
	cr_assert(seen, "the session never said '%s': %s", what, json);
	free(json);
}

Test(rctd_cluster, failover_demote_rejoin_abort_and_a_new_generation)
{
	char ps[96], pst[96], why[512], cmd[256];
	struct side pri, sec, rej, np;
	struct primary_job job;
	pthread_t t;
	json_t *j;
	pid_t ppid;
	int rc;

	/* The primary's host has an rctd of its own; the secondary's is the suite's. */
	snprintf(ps, sizeof(ps), "%s/p.sock", rctd_dir);
	snprintf(pst, sizeof(pst), "%s/p.state", rctd_dir);
	ppid = rctd_spawn(ps, NULL, pst);
	side_init(&pri, 1);
	side_init(&sec, 2);
	cr_assert_eq(
		side_open_at(&sec, rctd_sock, RCT_ROLE_SECONDARY, "f.secondary", "vm-f", key_f), 0,
		"%s", rct_client_error(sec.c));
	cr_assert_eq(side_open_at(&pri, ps, RCT_ROLE_PRIMARY, "f.primary", "vm-f", key_f), 0, "%s",
		     rct_client_error(pri.c));
	pair_opened(&pri, &sec);

	/* What the agent's monitor reads. */
	cr_assert_eq(ctl(rctd_sock, RCT_IPC_PAIRING_SHOW, 0, UINT64_MAX, &j, why, sizeof(why)), 0,
		     "%s", why);
	/* The primary's session runs at a generation of its own, 1. */
	cr_assert_eq(jint(j, "generation"), 1);
	cr_assert_eq(jint(j, "last_committed_epoch"), 0);
	cr_assert_str_eq(sess_str(j, "role"), "secondary");
	cr_assert_str_eq(sess_str(j, "state"), "connected");
	json_decref(j);

	/* The cluster recorded epoch 1 of generation 1: this host holds 0, so
	 * no failover, and the session runs on untouched. */
	rc = ctl(rctd_sock, RCT_IPC_PAIRING_FAILOVER, 1, 1, &j, why, sizeof(why));
	cr_assert_eq(rc, -ESTALE, "stale failover: %d (%s)", rc, why);
	cr_assert_not_null(strstr(why, "stale"), "%s", why);
	rc = ctl(rctd_sock, RCT_IPC_PAIRING_FAILOVER, 2, UINT64_MAX, &j, why, sizeof(why));
	cr_assert_eq(rc, -ESTALE, "a failover below the generation floor: %d (%s)", rc, why);
	/* A secondary is not demoted. */
	rc = ctl(rctd_sock, RCT_IPC_PAIRING_DEMOTE, 0, UINT64_MAX, &j, why, sizeof(why));
	cr_assert_eq(rc, -EBUSY, "demote of a secondary: %d (%s)", rc, why);
	cr_assert_eq(ctl(rctd_sock, RCT_IPC_PAIRING_SHOW, 0, UINT64_MAX, &j, why, sizeof(why)), 0);
	cr_assert_str_eq(sess_str(j, "state"), "connected");
	json_decref(j);

	/* The failover: the primary is told and cut off, a new generation is
	 * recorded, guest RAM is the flushed epoch 0, byte for byte. */
	cr_assert_eq(ctl(rctd_sock, RCT_IPC_PAIRING_FAILOVER, 1, 0, &j, why, sizeof(why)), 0, "%s",
		     why);
	cr_assert_eq(jint(j, "generation"), 2);
	cr_assert_eq(jint(j, "last_committed_epoch"), 0);
	cr_assert_str_eq(sess_str(j, "state"), "failed");
	cr_assert_not_null(strstr(sess_str(j, "replication"), "failed over"), "%s",
			   sess_str(j, "replication"));
	json_decref(j);
	peer_lost(&sec);
	peer_lost(&pri);
	session_says(&pri, "the secondary closed the session");
	rc = rct_client_ckpt_begin(pri.c, 1, 0);
	cr_assert_neq(rc, 0, "the old primary began epoch 1 after the failover");
	cr_assert_eq(memcmp(sec.ram, pri.ram, SIZE), 0, "guest RAM is not epoch 0's");
	/* Asked again, it is done already: idempotent, the generation stays. */
	cr_assert_eq(ctl(rctd_sock, RCT_IPC_PAIRING_FAILOVER, 2, 0, &j, why, sizeof(why)), 0, "%s",
		     why);
	cr_assert_eq(jint(j, "generation"), 3, "a failover again bumps past the floor");
	json_decref(j);
	snprintf(cmd, sizeof(cmd), "grep -qx 'generation 3' %s/vm-f.state", rctd_state);
	cr_assert_eq(system(cmd), 0, "the state file does not hold generation 3");

	/* The old primary is demoted: no primary of vm-f on its host again at
	 * its generation. */
	cr_assert_eq(ctl(ps, RCT_IPC_PAIRING_DEMOTE, 0, UINT64_MAX, &j, why, sizeof(why)), 0, "%s",
		     why);
	cr_assert_eq(jint(j, "demoted_at_generation"), 1);
	json_decref(j);
	side_fini(&pri);
	side_init(&pri, 1);
	rc = side_open_at(&pri, ps, RCT_ROLE_PRIMARY, "f.primary", "vm-f", key_f);
	cr_assert_eq(rc, -ESTALE, "a demoted host paired a primary: %d (%s)", rc,
		     rct_client_error(pri.c));
	cr_assert_not_null(strstr(rct_client_error(pri.c), "demoted"), "%s",
			   rct_client_error(pri.c));
	side_fini(&pri);

	/* It rejoins as a secondary: the new primary (the failed-over host, its
	 * guest RAM; a primary's session runs at a generation of its own, 4)
	 * syncs it whole, and its rctd records that generation (before, a
	 * secondary kept the one it had paired with). */
	side_init(&rej, 3);
	cr_assert_eq(side_open_at(&rej, ps, RCT_ROLE_SECONDARY, "f.rejoin", "vm-f", key_f), 0, "%s",
		     rct_client_error(rej.c));
	np = sec;
	cr_assert_eq(side_open_at(&np, rctd_sock, RCT_ROLE_PRIMARY, "f.new-primary", "vm-f", key_f),
		     0, "%s", rct_client_error(np.c));
	job = (struct primary_job){.s = &np};
	cr_assert_eq(rct_client_listen(rej.c, "127.0.0.1", 0, &job.port), 0);
	cr_assert_eq(pthread_create(&t, NULL, primary_full_sync, &job), 0);
	rc = rct_client_accept(rej.c, NULL);
	pthread_join(t, NULL);
	cr_assert_eq(rc, 0, "rejoin: %s (%s)", strerror(-rc), rct_client_error(rej.c));
	cr_assert_eq(job.rc, 0, "new primary: %s", rct_client_error(np.c));
	secondary_apply_epoch0(&rej, sec.ram);
	cr_assert_eq(ctl(ps, RCT_IPC_PAIRING_SHOW, 0, UINT64_MAX, &j, why, sizeof(why)), 0);
	cr_assert_eq(jint(j, "generation"), 4, "the rejoined host records generation %lld",
		     (long long)jint(j, "generation"));
	cr_assert_eq(jint(j, "last_committed_epoch"), 0);
	cr_assert(json_is_null(json_object_get(j, "demoted_at_generation")));
	json_decref(j);

	/* Abort: the live session (the new primary's) ends, the record stays. */
	cr_assert_eq(ctl(rctd_sock, RCT_IPC_PAIRING_ABORT, 0, UINT64_MAX, &j, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_str_eq(sess_str(j, "role"), "primary");
	cr_assert_not_null(strstr(sess_str(j, "replication"), "aborted"), "%s",
			   sess_str(j, "replication"));
	cr_assert_eq(jint(j, "generation"), 4);
	json_decref(j);
	peer_lost(&np);
	peer_lost(&rej);

	/* A new generation only without a session. */
	rc = ctl(rctd_sock, RCT_IPC_PAIRING_NEW, 0, UINT64_MAX, &j, why, sizeof(why));
	cr_assert_eq(rc, -EBUSY, "new generation under a session: %d (%s)", rc, why);
	rct_client_close(np.c);
	side_fini(&sec);
	side_fini(&rej);
	cr_assert_eq(ctl(rctd_sock, RCT_IPC_PAIRING_NEW, 5, UINT64_MAX, &j, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(jint(j, "generation"), 6);
	cr_assert(json_is_null(json_object_get(j, "last_committed_epoch")));
	cr_assert(json_is_null(json_object_get(j, "session")));
	json_decref(j);
	/* Without a session the record is what the host holds: no epoch of
	 * generation 6, so a floor of epoch 0 is stale; with neither a session
	 * nor a record there is nothing to fail over to. */
	rc = ctl(rctd_sock, RCT_IPC_PAIRING_FAILOVER, 6, 0, &j, why, sizeof(why));
	cr_assert_eq(rc, -ESTALE, "failover to no epoch: %d (%s)", rc, why);
	cr_assert_eq(ctl(rctd_sock, RCT_IPC_PAIRING_FAILOVER, 6, UINT64_MAX, &j, why, sizeof(why)),
		     0, "%s", why);
	cr_assert_eq(jint(j, "generation"), 7);
	json_decref(j);
	rc = ctl_id(rctd_sock, "vm-none", RCT_IPC_PAIRING_FAILOVER, 0, UINT64_MAX, &j, why,
		    sizeof(why));
	cr_assert_eq(rc, -ENOENT, "failover without a session or a record: %d (%s)", rc, why);

	kill(ppid, SIGTERM);
	waitpid(ppid, NULL, 0);
	rctd_alive();
}
