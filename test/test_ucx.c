/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UCX backend end to end, with real UCX: the transports come from UCX's
 * environment (ctest pins them: shared memory, then TCP on loopback).
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
 * The same abandoned checkpoint over UCX's TCP transport: puts are in flight
 * (emulated: the secondary's CPU writes them and answers each) when the
 * primary goes.  (An abort of the secondary inside UCX in this situation,
 * "ucp_put_handler: Endpoint timeout", was seen once between two rctd; this
 * in-process test passes with and without the data endpoints' error-handling
 * mode, so it checks the loss, not that abort.)
 */
Test(ucx, a_primary_gone_with_puts_in_flight_over_tcp_is_a_lost_peer)
{
	setenv("UCX_TLS", "tcp", 1); /* this test's own process (Criterion forks) */
	setenv("UCX_NET_DEVICES", "lo", 1);
	abandon_a_checkpoint(0, true);
}

/* A primary with another key first: turned away, and the listening secondary
 * then pairs with the real one (before, the impostor ended its accept). */
Test(ucx, an_impostor_is_turned_away_and_the_real_primary_pairs)
{
	pair_run_impostor_first("ucx", "127.0.0.1", 2);
}
