/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Peer authentication over real TCP sessions on 127.0.0.1: the same key lets
 * a checkpoint through (verified byte for byte); another key, or a key on one
 * side only, fails both sides with RCT_ERR_AUTH before the secondary
 * advertises a single remote key.  And the key file rules.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/session.h"
#include "pair.h"

TestSuite(auth, .timeout = 60);

static const uint8_t key_a[RCT_PSK_LEN] = {1, 2, 3, 4};
static const uint8_t key_b[RCT_PSK_LEN] = {1, 2, 3, 5};

Test(auth, same_key_checkpoint_verified)
{
	struct pair_opts o = {
		.lanes = 2, .size = 1 << 20, .auto_flush = true, .ppsk = key_a, .spsk = key_a};
	struct pair pp;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 5000));
	cr_assert(pp.equal, "secondary RAM differs from the primary's snapshot");
	pair_close(&pp);
}

/*
 * Open a pair with @o that must fail authentication; nothing may have been
 * advertised.  The secondary turns the primary away and listens on until its
 * accept deadline (1.5 s here): a peer that cannot prove the pairing does not
 * end it.
 */
static void refused_with(const struct pair_opts *o_in)
{
	struct pair_opts o = *o_in;
	struct pair pp;
	rct_status_t st;

	o.timeout_ms = 1500;
	st = pair_open(&pp, &o);
	cr_assert_eq(st, RCT_ERR_AUTH, "primary: %s", rct_status_str(st));
	cr_assert_eq(pair_wait_lost(&pp, 5000), RCT_ERR_TIMED_OUT,
		     "the secondary's accept: %s (it must listen on to its deadline)",
		     rct_status_str(pp.lost));
	cr_assert_eq(pp.s->turned_away, 1);
	cr_assert_eq(pp.s->state, RCT_SESSION_LISTENING);
	cr_assert_null(pp.p->staging_rkey, "the primary imported the staging key");
	for (unsigned i = 0; i < pp.p->nregions; i++)
		cr_assert_null(pp.p->regions[i]->rkey, "the primary imported a region key");
	pair_close(&pp);
}

static void refused(const uint8_t *ppsk, const uint8_t *spsk)
{
	struct pair_opts o = {.lanes = 2, .size = 1 << 20, .ppsk = ppsk, .spsk = spsk};

	refused_with(&o);
}

Test(auth, another_key_is_refused)
{
	refused(key_a, key_b);
}

Test(auth, primary_without_key_is_refused)
{
	refused(NULL, key_a);
}

Test(auth, secondary_without_key_is_refused)
{
	refused(key_a, NULL);
}

/* ---- pairings: the key proves one pairing, not merely the host ---- */

static const uint8_t pkey_a[RCT_PAIRING_KEY_LEN] = {0xa1, 0xa2};
static const uint8_t pkey_b[RCT_PAIRING_KEY_LEN] = {0xb1, 0xb2};

static void paired(const uint8_t *psk, const char *pid, const uint8_t *pk, const char *sid,
		   const uint8_t *sk, bool ok)
{
	struct pair_opts o = {.lanes = 2,
			      .size = 1 << 20,
			      .auto_flush = true,
			      .ppsk = psk,
			      .spsk = psk,
			      .ppairing = pid,
			      .spairing = sid,
			      .ppkey = pk,
			      .spkey = sk};
	struct pair pp;
	rct_status_t st;

	if (!ok) {
		refused_with(&o);
		return;
	}
	st = pair_open(&pp, &o);
	cr_assert_eq(st, RCT_OK, "primary: %s", rct_status_str(st));
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 5000));
	cr_assert(pp.equal, "secondary RAM differs from the primary's snapshot");
	pair_close(&pp);
}

Test(auth, the_same_pairing_checkpoints)
{
	paired(key_a, "vm-a", pkey_a, "vm-a", pkey_a, true);
	/* The pairing key alone, no host key, proves it too. */
	paired(NULL, "vm-a", pkey_a, "vm-a", pkey_a, true);
}

/* Both hosts hold the same pre-shared key, as deployed: that is not enough. */
Test(auth, another_vm_on_a_host_with_the_same_key_is_refused)
{
	/* Another VM's primary (honest about who it is). */
	paired(key_a, "vm-b", pkey_b, "vm-a", pkey_a, false);
	/* A client that claims VM A's identity without VM A's pairing key. */
	paired(key_a, "vm-a", pkey_b, "vm-a", pkey_a, false);
	paired(key_a, "vm-a", NULL, "vm-a", pkey_a, false);
	/* A primary that names no pairing at all, to a paired secondary. */
	paired(key_a, NULL, NULL, "vm-a", pkey_a, false);
}

Test(auth, pairing_arguments_are_checked)
{
	struct rct_session_params p = {.field_mask = RCT_SESSION_PARAM_FIELD_ROLE,
				       .role = RCT_ROLE_PRIMARY};
	struct rct_session *s;

	cr_assert_eq(rct_session_create(&p, &s), RCT_OK);
	cr_assert_eq(rct_session_set_pairing(s, "vm-a", NULL, 0), RCT_ERR_INVALID_PARAM,
		     "nothing to prove the pairing with");
	cr_assert_eq(rct_session_set_pairing(s, "", pkey_a, 0), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_set_pairing(s, "vm a", pkey_a, 0), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_set_pairing(s, "vm-a", pkey_a, 3), RCT_OK);
	cr_assert_eq(s->generation, 3);
	rct_session_destroy(s);
}

static void write_file(const char *path, const void *p, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, p, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

Test(auth, key_file_rules)
{
	char dir[] = "/tmp/rct-psk.XXXXXX", path[64], path2[64];
	uint8_t k1[RCT_PSK_LEN], k2[RCT_PSK_LEN], k3[RCT_PSK_LEN];
	static const char secret[] = "0123456789abcdef0123456789abcdef0123";

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	snprintf(path2, sizeof(path2), "%s/key2", dir);
	write_file(path, secret, 36, 0600);
	cr_assert_eq(rct_psk_load(path, k1), RCT_OK);
	cr_assert_eq(rct_psk_load(path, k2), RCT_OK);
	cr_assert_eq(memcmp(k1, k2, RCT_PSK_LEN), 0, "the same file gives the same key");
	write_file(path2, secret, 35, 0400);
	cr_assert_eq(rct_psk_load(path2, k3), RCT_OK);
	cr_assert_neq(memcmp(k1, k3, RCT_PSK_LEN), 0, "another content gives another key");
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(rct_psk_load(path, k2), RCT_ERR_INVALID_PARAM, "group-readable accepted");
	cr_assert_eq(chmod(path, 0604), 0);
	cr_assert_eq(rct_psk_load(path, k2), RCT_ERR_INVALID_PARAM, "world-readable accepted");
	write_file(path, secret, 31, 0600);
	cr_assert_eq(rct_psk_load(path, k2), RCT_ERR_INVALID_PARAM, "31 bytes accepted");
	cr_assert_eq(rct_psk_load(dir, k2), RCT_ERR_INVALID_PARAM, "a directory accepted");
	unlink(path);
	cr_assert_eq(rct_psk_load(path, k2), RCT_ERR_NOT_FOUND);
	unlink(path2);
	rmdir(dir);
}

/* A primary with another key first: turned away, and the listening secondary
 * then pairs with the real one (before, the impostor ended its accept). */
Test(auth, an_impostor_is_turned_away_and_the_real_primary_pairs)
{
	pair_run_impostor_first("tcp", "127.0.0.1", 2);
}
