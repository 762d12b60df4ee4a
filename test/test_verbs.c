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
#include "core/util.h"
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

Test(verbs, secondary_driven_through_its_descriptor)
{
	pair_run_session_fd("verbs", addr());
}

Test(verbs, a_primary_that_comes_during_a_short_accept_wait_pairs)
{
	pair_run_accept_in_slices("verbs", addr());
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

/*
 * The control QP connects before AUTH, so it must reach nothing but its
 * rings: an RDMA WRITE posted on it with the colo cache's real rkey and
 * address is refused by the device (the cache lives in another protection
 * domain) and the cache keeps every byte.  Before, control and data QPs
 * shared one PD and the write landed.
 */
Test(verbs, the_control_qp_reaches_no_region_even_with_its_rkey)
{
	struct pair_opts o = {.backend = "verbs",
			      .addr = addr(),
			      .lanes = 1,
			      .size = 1u << 20,
			      .timeout_ms = 20000,
			      .no_snapshot = true};
	struct rct_verbs_rkey *k;
	struct rct_verbs_ctx *v;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct ibv_wc wc;
	uint8_t *cache;
	uint64_t deadline;
	struct pair pp;
	int n = 0;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	v = rct_verbs(pp.p->ctx);
	k = (struct rct_verbs_rkey *)pp.pr->rkey;
	cache = pp.sr->mem->addr;
	memset(cache, 0x11, 4096);
	memset(v->tx_ring, 0x5a, 4096);
	sge = (struct ibv_sge){
		.addr = (uintptr_t)v->tx_ring, .length = 4096, .lkey = v->tx_mr->lkey};
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 0xdead;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = k->raddr;
	wr.wr.rdma.rkey = k->rkey;
	cr_assert_eq(ibv_post_send(v->ctrl.id->qp, &wr, &bad), 0);
	deadline = rct_now_ns() + 10ull * 1000000000;
	while (rct_now_ns() < deadline) {
		n = ibv_poll_cq(v->ctrl.cq, 1, &wc);
		if (n == 1 && wc.wr_id == 0xdead)
			break;
		n = 0;
	}
	cr_assert_eq(n, 1, "no completion for the write on the control QP");
	cr_assert_neq(wc.status, IBV_WC_SUCCESS,
		      "an RDMA WRITE on the control QP landed in the colo cache");
	for (size_t i = 0; i < 4096; i++)
		if (cache[i] != 0x11)
			cr_assert_fail("colo cache byte %zu written through the control QP", i);
	pair_close(&pp);
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

/* A primary with another key first: turned away, and the listening secondary
 * then pairs with the real one (before, the impostor ended its accept). */
Test(verbs, an_impostor_is_turned_away_and_the_real_primary_pairs)
{
	pair_run_impostor_first("verbs", addr(), 2);
}

/*
 * Issue 30 item 10 on verbs: a primary that connects to a secondary which has
 * its primary is refused at once (the reject says why), as on tcp and UCX,
 * and its session can connect again.  Before, the plain reject reached the
 * primary as REJECTED, read as the peer's loss ("peer lost"), and the
 * context kept its lanes, so that a second try failed with a state error.
 */
Test(verbs, a_second_primary_is_refused_at_once)
{
	pair_run_second_primary("verbs", addr());
}
