/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verbs backend: the data lanes.  Each run becomes one RDMA WRITE (adjacent
 * dirty pages are already one run: the core coalesces them), split only at
 * the port's maximum message size.  WRs are chained, RCT_VERBS_CHAIN per
 * ibv_post_send, and one in RCT_VERBS_SIGNAL is signalled, plus the last of
 * every put() so that the lane can drain; a signalled completion retires
 * every WR posted before it on that QP (its wr_id says how many).  The send
 * queue never holds more than the device allows.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "verbs.h"

rct_status_t rct_verbs_data_wc(struct rct_verbs_ctx *v, struct rct_verbs_lane *l,
			       const struct ibv_wc *wc)
{
	if (wc->status != IBV_WC_SUCCESS) {
		rct_error("verbs: lane %u (qp 0x%x): RDMA WRITE failed: %s (vendor error 0x%x)",
			  l->index, wc->qp_num, ibv_wc_status_str(wc->status), wc->vendor_err);
		return rct_be_fail(&v->super, wc->status == IBV_WC_RETRY_EXC_ERR ? RCT_ERR_PEER_LOST
										 : RCT_ERR_IO);
	}
	l->outstanding -= (unsigned)wc->wr_id;
	v->pending -= wc->wr_id;
	l->signaled++;
	return RCT_OK;
}

static rct_status_t rct_verbs_post_chain(struct rct_verbs_ctx *v, struct rct_verbs_lane *l,
					 struct ibv_send_wr *chain, unsigned n)
{
	struct ibv_send_wr *bad;
	int err;

	if (!n)
		return RCT_OK;
	for (unsigned i = 0; i + 1 < n; i++)
		chain[i].next = &chain[i + 1];
	chain[n - 1].next = NULL;
	err = ibv_post_send(l->id->qp, chain, &bad);
	if (err) {
		rct_error("verbs: lane %u (qp 0x%x): ibv_post_send: %s", l->index,
			  l->id->qp->qp_num, strerror(err));
		return rct_be_fail(&v->super, RCT_ERR_IO);
	}
	l->posts++;
	return RCT_OK;
}

/*
 * The send queue of lane @l is full and nothing completed.  For the first
 * millisecond just spin (a healthy peer completes within microseconds); past
 * it, stop spinning (a soft-RoCE device, or anything sharing our core, needs
 * the CPU to make progress), check the CM channel (a DISCONNECTED event fails
 * the context), keep the session's heartbeats going and fail when its
 * liveness channel has lost the peer (a cut link: soft-RoCE was seen to keep
 * the queue full for the whole 5 s session timeout, its retries never giving
 * up), and fail the lane when no completion came for the whole session
 * timeout.  *@since_p: when the wait began (0: now).
 */
static rct_status_t rct_verbs_sq_wait(struct rct_verbs_ctx *v, struct rct_verbs_lane *l,
				      uint64_t *since_p)
{
	uint64_t now = rct_now_ns();
	rct_status_t status;

	if (!*since_p)
		*since_p = now;
	if (now - *since_p <= 1000000)
		return RCT_OK;
	usleep(100);
	/* A slow device can keep the queue full for longer than the peer waits
	 * for a heartbeat (soft-RoCE in a VM: seconds for one checkpoint). */
	if (v->super.params.keepalive) {
		status = v->super.params.keepalive(v->super.params.keepalive_arg);
		if (status != RCT_OK) {
			rct_error("verbs: lane %u: send queue full (%u WRs) for %llu ms when the "
				  "session lost the peer: %s",
				  l->index, l->outstanding,
				  (unsigned long long)((now - *since_p) / 1000000),
				  rct_status_str(status));
			return rct_be_fail(&v->super, status);
		}
	}
	status = rct_verbs_cm_poll(v);
	if (status != RCT_OK)
		return status;
	if (now - *since_p > (uint64_t)v->super.params.timeout_ms * 1000000) {
		rct_error("verbs: lane %u: send queue full (%u WRs) and no completion for %d ms: "
			  "the peer does not acknowledge",
			  l->index, l->outstanding, v->super.params.timeout_ms);
		return rct_be_fail(&v->super, RCT_ERR_PEER_LOST);
	}
	return RCT_OK;
}

rct_status_t rct_verbs_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			   struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	struct rct_verbs_mem *m = rct_container_of(mem, struct rct_verbs_mem, super);
	struct rct_verbs_rkey *k = rct_verbs_rkey(rkey);
	struct ibv_send_wr chain[RCT_VERBS_CHAIN];
	struct ibv_sge sge[RCT_VERBS_CHAIN];
	struct rct_verbs_lane *l;
	rct_status_t status = RCT_OK;
	unsigned nc = 0;
	uint64_t since = 0;
	bool any;

	if (v->super.failed != RCT_OK)
		return v->super.failed;
	if (lane >= v->nlanes || !m->mr)
		return RCT_ERR_INVALID_PARAM;
	l = &v->lanes[lane];
	status = rct_runs_check(runs, n, mem->len, k->super.size, "verbs", l->index);
	if (status != RCT_OK)
		return status;

	for (size_t i = 0; i < n && status == RCT_OK; i++) {
		for (uint64_t done = 0; done < runs[i].len && status == RCT_OK;) {
			uint64_t len = RCT_MIN(runs[i].len - done, (uint64_t)v->max_msg);
			bool last = i + 1 == n && done + len == runs[i].len;
			struct ibv_send_wr *wr = &chain[nc];

			/* Room in the send queue for this WR, else post and reap; a
			 * peer that stops acknowledging (gone, link cut) must not
			 * keep us here: watch the CM channel, and give up after the
			 * session timeout without a completion. */
			while (l->outstanding + 1 > l->sq_depth && status == RCT_OK) {
				status = rct_verbs_post_chain(v, l, chain, nc);
				nc = 0;
				wr = &chain[0];
				any = false;
				if (status == RCT_OK)
					status = rct_verbs_poll(v, &any);
				if (status == RCT_OK && !any)
					status = rct_verbs_sq_wait(v, l, &since);
				else
					since = 0;
			}
			if (status != RCT_OK)
				break;
			sge[nc].addr = (uintptr_t)mem->addr + runs[i].loff + done;
			sge[nc].length = (uint32_t)len;
			sge[nc].lkey = m->mr->lkey;
			memset(wr, 0, sizeof(*wr));
			wr->sg_list = &sge[nc];
			wr->num_sge = 1;
			wr->opcode = IBV_WR_RDMA_WRITE;
			wr->wr.rdma.remote_addr = k->raddr + runs[i].roff + done;
			wr->wr.rdma.rkey = k->rkey;
			l->outstanding++;
			v->pending++;
			if (++l->unsignaled == RCT_VERBS_SIGNAL || last) {
				wr->send_flags = IBV_SEND_SIGNALED;
				wr->wr_id = l->unsignaled; /* WRs this completion retires */
				l->unsignaled = 0;
			}
			done += len;
			if (++nc == RCT_VERBS_CHAIN || last) {
				status = rct_verbs_post_chain(v, l, chain, nc);
				nc = 0;
			}
		}
	}
	return status;
}
