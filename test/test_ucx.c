/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UCX backend end to end, with real UCX: the transports come from UCX's
 * environment (ctest pins shared memory with TCP for the connection; one test
 * sets TCP alone in its own process).
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/bitmap.h"
#include "core/session.h"
#include "pair.h"

TestSuite(ucx, .timeout = 120);

Test(ucx, e2e_1_lane)
{
	pair_run_e2e("ucx", "127.0.0.1", 1, 0);
}

Test(ucx, peer_lost_mid_checkpoint_leaves_guest_ram_untouched)
{
	pair_run_peer_loss("ucx", "127.0.0.1");
}

Test(ucx, secondary_driven_through_its_descriptor)
{
	pair_run_session_fd("ucx", "127.0.0.1");
}

Test(ucx, a_primary_that_comes_during_a_short_accept_wait_pairs)
{
	pair_run_accept_in_slices("ucx", "127.0.0.1");
}

Test(ucx, e2e_4_lanes)
{
	pair_run_e2e("ucx", "127.0.0.1", 4, 0);
}

/* Lanes 1..3 stored by copier threads where the target is mapped here. */
Test(ucx, e2e_4_lanes_3_threads)
{
	pair_run_e2e("ucx", "127.0.0.1", 4, 3);
}

Test(ucx, secondary_lost_mid_checkpoint_fails_the_commit)
{
	pair_run_secondary_loss("ucx", "127.0.0.1");
}

/*
 * Full sync of 128 MiB over 4 lanes (@threads copiers), then epoch 1 with
 * every page dirty is begun and abandoned: the primary's session goes with
 * its puts queued or in flight (@killed: no GOODBYE, as a killed process).
 * The secondary must report a lost peer with epoch 1 discarded.
 */
static void abandon_a_checkpoint(unsigned threads, bool killed)
{
	const size_t size = 128u << 20;
	struct pair_opts o = {.backend = "ucx",
			      .lanes = 4,
			      .threads = threads,
			      .size = size,
			      .timeout_ms = 20000,
			      .auto_flush = true,
			      .no_snapshot = true};
	uint64_t *bits = calloc(rct_bitmap_words(size / 4096), sizeof(uint64_t));
	struct pair pp;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 30000));
	memset(bits, 0xff, rct_bitmap_words(size / 4096) * sizeof(uint64_t));
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, 0), RCT_OK);
	/* Every page: with copiers, three quarters of 128 MiB go to their queues. */
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, size / 4096), RCT_OK);
	if (killed)
		pp.p->state = RCT_SESSION_FAILED; /* no GOODBYE on destroy */
	rct_session_destroy(pp.p);
	pp.p = NULL;
	cr_assert_eq(pair_wait_lost(&pp, 20000), RCT_ERR_PEER_LOST);
	cr_assert_eq(pp.lost_discarded, 1, "discarded %llu", (unsigned long long)pp.lost_discarded);
	pair_close(&pp);
	free(bits);
}

/*
 * A hypervisor closes its primary session while copier threads still hold
 * queued stores into the secondary's cache, mapped here (a checkpoint
 * abandoned after a failure).  Destroying the remote key unmaps that
 * mapping: the copiers must be drained first, or they store into unmapped
 * memory and take the whole daemon down (SIGSEGV).
 */
Test(ucx, closing_a_primary_with_queued_copier_stores_is_safe)
{
	const char *tls = getenv("UCX_TLS");

	/* Copier threads exist only where the cache is mapped here (shared
	 * memory); over UCX's TCP transport the next test covers the case. */
	if (!tls || !strstr(tls, "sm"))
		cr_skip_test("UCX_TLS=%s: no shared memory, so no copier threads to drain",
			     tls ? tls : "(unset)");
	abandon_a_checkpoint(3, false);
}

/*
 * Over UCX's TCP transport alone the secondary's cache is neither mapped by
 * the primary nor reachable by a transport's RMA: every put would be an
 * active message the secondary's worker writes and answers, and UCX 1.13
 * aborts the secondary's process when that answer cannot go to a primary that
 * died mid-put ("ucp_request.inl:346 Fatal: unexpected error: Endpoint
 * timeout", every session of its rctd with it: issue 29).  The primary refuses
 * such a session at connect, before any page, naming the transports and the
 * alternative; the secondary hears why (before, the session ran and the
 * secondary's rctd died at the 3rd of 100 primary kills).
 */
Test(ucx, puts_that_would_be_emulated_are_refused_at_connect)
{
	struct pair_opts o = {.backend = "ucx", .addr = "127.0.0.1", .lanes = 2, .size = 4u << 20};
	struct pair pp;
	rct_status_t st;

	setenv("UCX_TLS", "tcp,self", 1); /* this test's own process (Criterion forks) */
	setenv("UCX_NET_DEVICES", "lo", 1);
	st = pair_open(&pp, &o);
	cr_assert_eq(st, RCT_ERR_MISMATCH, "connect over tcp alone: %s", rct_status_str(st));
	cr_assert_not_null(strstr(rct_session_fail_text(pp.p), "would be emulated over tcp"), "%s",
			   rct_session_fail_text(pp.p));
	cr_assert_not_null(strstr(rct_session_fail_text(pp.p), "use backend tcp"), "%s",
			   rct_session_fail_text(pp.p));
	/* The secondary hears why, whether its accept or its session ends. */
	st = pair_wait_lost(&pp, 10000);
	pthread_mutex_lock(&pp.lock);
	if (st == RCT_OK)
		st = pp.accept_status;
	pthread_mutex_unlock(&pp.lock);
	cr_assert(rct_status_is_fatal(st), "the secondary's session: %s", rct_status_str(st));
	pair_close(&pp);
}

/* A primary with another key first: turned away, and the listening secondary
 * then pairs with the real one (before, the impostor ended its accept). */
Test(ucx, an_impostor_is_turned_away_and_the_real_primary_pairs)
{
	pair_run_impostor_first("ucx", "127.0.0.1", 2);
}

/*
 * Issue 30 item 10 on UCX: a primary that connects to a secondary which has
 * its primary is refused at once, as on tcp, and its session can connect
 * again.  Before, the listener's rejection reached the primary as an
 * endpoint error read as the peer's loss ("peer lost"), and the session could
 * not connect again (its control endpoint stayed).
 */
Test(ucx, a_second_primary_is_refused_at_once)
{
	pair_run_second_primary("ucx", NULL);
}
