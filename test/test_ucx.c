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
