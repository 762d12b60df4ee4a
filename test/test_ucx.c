/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UCX backend end to end, with real UCX: the transports come from UCX's
 * environment (ctest pins them: shared memory, then TCP on loopback).
 */
#include <criterion/criterion.h>
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
 * A hypervisor closes its primary session while copier threads still hold
 * queued stores into the secondary's cache, mapped here (a checkpoint
 * abandoned after a failure).  Destroying the remote key unmaps that
 * mapping: the copiers must be drained first, or they store into unmapped
 * memory and take the whole daemon down (SIGSEGV).
 */
Test(ucx, closing_a_primary_with_queued_copier_stores_is_safe)
{
	const size_t size = 128u << 20;
	struct pair_opts o = {.backend = "ucx",
			      .lanes = 4,
			      .threads = 3,
			      .size = size,
			      .auto_flush = true,
			      .no_snapshot = true};
	const char *tls = getenv("UCX_TLS");
	uint64_t *bits;
	struct pair pp;

	/* Copier threads exist only where the cache is mapped here (shared
	 * memory).  Over UCX's TCP transport this scenario aborts the
	 * *secondary* inside UCX instead (ucp_put_handler: "Fatal: unexpected
	 * error: Endpoint timeout"): its data endpoints have no error-handling
	 * mode, a known open bug (issue 13, item 4), not what this test is for. */
	if (!tls || !strstr(tls, "sm"))
		cr_skip_test("UCX_TLS=%s: no shared memory, so no copier threads to drain "
			     "(and the secondary's UCX aborts on the dead put endpoint: open bug)",
			     tls ? tls : "(unset)");
	bits = calloc(rct_bitmap_words(size / 4096), sizeof(uint64_t));
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 15000));
	memset(bits, 0xff, rct_bitmap_words(size / 4096) * sizeof(uint64_t));
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, 0), RCT_OK);
	/* Every page: three quarters of 128 MiB go to the copiers' queues. */
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, size / 4096), RCT_OK);
	rct_session_destroy(pp.p);
	pp.p = NULL;
	cr_assert_eq(pair_wait_lost(&pp, 15000), RCT_ERR_PEER_LOST);
	pair_close(&pp);
	free(bits);
}

/* A primary with another key first: turned away, and the listening secondary
 * then pairs with the real one (before, the impostor ended its accept). */
Test(ucx, an_impostor_is_turned_away_and_the_real_primary_pairs)
{
	pair_run_impostor_first("ucx", "127.0.0.1", 2);
}
