/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verbs backend end to end on a real RDMA device (soft-RoCE rxe0 in the
 * project's VM: scripts/rxe/vm-run.sh).  The peers use the device's address,
 * RCT_VERBS_ADDR (default 10.77.0.1, the VM's rxe0).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/session.h"
#include "pair.h"
#include "verbs/verbs.h"

static const char *addr(void)
{
	const char *a = getenv("RCT_VERBS_ADDR");

	return a ? a : "10.77.0.1";
}

TestSuite(verbs, .timeout = 300);

Test(verbs, e2e_1_qp)
{
	pair_run_e2e("verbs", addr(), 1, 0);
}

Test(verbs, e2e_2_qps)
{
	pair_run_e2e("verbs", addr(), 2, 0);
}

Test(verbs, e2e_4_qps)
{
	pair_run_e2e("verbs", addr(), 4, 0);
}

Test(verbs, e2e_8_qps)
{
	pair_run_e2e("verbs", addr(), 8, 0);
}

/* Runs split at a small maximum message size: many WRs per run, same bytes. */
Test(verbs, runs_larger_than_the_max_message_are_split)
{
	setenv("RCT_VERBS_MAX_MSG", "8192", 1);
	pair_run_e2e("verbs", addr(), 2, 0);
}

Test(verbs, peer_lost_mid_checkpoint_leaves_guest_ram_untouched)
{
	pair_run_peer_loss("verbs", addr());
}

/* A wrong rkey: the RDMA WRITE fails remotely, the commit fails cleanly
 * (no hang), and the secondary's guest RAM keeps the last committed image. */
Test(verbs, wrong_rkey_gives_a_clean_error)
{
	struct pair_opts o = {.backend = "verbs",
			      .addr = addr(),
			      .lanes = 2,
			      .size = 4u << 20,
			      .timeout_ms = 20000,
			      .auto_flush = true};
	uint64_t *bits = calloc((4u << 20) / 4096 / 64, sizeof(uint64_t));
	uint8_t *saved = malloc(4u << 20);
	struct pair pp;
	rct_status_t st;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "d", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 20000));
	memcpy(saved, pp.sram, 4u << 20);
	((struct rct_verbs_rkey *)pp.pr->rkey)->rkey ^= 0x5a5a00;
	pair_dirty(&pp, bits, 50, 0, 0);
	st = pair_ckpt(&pp, 1, bits, "d", 1);
	cr_assert(rct_status_is_fatal(st), "commit with a wrong rkey returned %s",
		  rct_status_str(st));
	cr_assert_eq(memcmp(pp.sram, saved, 4u << 20), 0, "guest RAM changed");
	pair_close(&pp);
	free(bits);
	free(saved);
}

/* IPv6: the VM gives rxe0's interface fd00:77::1 too (RCT_VERBS_ADDR6). */
Test(verbs, e2e_ipv6_2_qps)
{
	const char *a = getenv("RCT_VERBS_ADDR6");

	pair_run_e2e("verbs", a ? a : "fd00:77::1", 2, 0);
}

Test(verbs, secondary_lost_mid_checkpoint_fails_the_commit)
{
	pair_run_secondary_loss("verbs", addr());
}
