/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verbs backend: the control lane.  SEND/RECV on its own RC QP with a ring of
 * RCT_VERBS_CTRL_DEPTH pre-posted receive buffers and credits, so that a send
 * never meets an empty receive queue (no RNR NAK in normal operation):
 *
 *   - a side may post a message only while it holds 2 or more credits; the
 *     last one is kept for a credit update, so updates can always flow;
 *   - every SEND_WITH_IMM carries in imm_data the receive buffers its sender
 *     re-posted since its last report; a zero-length one is a pure update, sent
 *     when half the ring is owed and no message is about to carry it;
 *   - messages without credit wait in a backlog, drained by progress.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "verbs.h"

#define RCT_VERBS_WR_RX (1ull << 32)

static rct_status_t rct_verbs_post_recv(struct rct_verbs_ctx *v, unsigned slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(v->rx_ring + (size_t)slot * RCT_VERBS_CTRL_SLOT(v)),
		.length = RCT_VERBS_CTRL_SLOT(v),
		.lkey = v->rx_mr->lkey,
	};
	struct ibv_recv_wr wr = {.wr_id = RCT_VERBS_WR_RX | slot, .sg_list = &sge, .num_sge = 1};
	struct ibv_recv_wr *bad;
	int err;

	err = ibv_post_recv(v->ctrl.id->qp, &wr, &bad);
	if (err) {
		rct_error("verbs: control lane (qp 0x%x): ibv_post_recv: %s",
			  v->ctrl.id->qp->qp_num, strerror(err));
		return rct_be_fail(&v->super, RCT_ERR_IO);
	}
	return RCT_OK;
}

rct_status_t rct_verbs_ctrl_setup(struct rct_verbs_ctx *v)
{
	size_t ring = (size_t)RCT_VERBS_CTRL_DEPTH * RCT_VERBS_CTRL_SLOT(v);
	rct_status_t status = RCT_OK;

	v->rx_ring = rct_mem_alloc(ring);
	v->tx_ring = rct_mem_alloc(ring);
	if (!v->rx_ring || !v->tx_ring)
		return RCT_ERR_NO_MEMORY;
	v->rx_mr = ibv_reg_mr(v->ctrl_pd, v->rx_ring, ring, IBV_ACCESS_LOCAL_WRITE);
	v->tx_mr = ibv_reg_mr(v->ctrl_pd, v->tx_ring, ring, IBV_ACCESS_LOCAL_WRITE);
	if (!v->rx_mr || !v->tx_mr) {
		rct_error("verbs: registering the control rings (2 x %zu bytes): %m", ring);
		return rct_verbs_errno(errno);
	}
	for (unsigned i = 0; i < RCT_VERBS_CTRL_DEPTH && status == RCT_OK; i++)
		status = rct_verbs_post_recv(v, i);
	return status;
}

void rct_verbs_ctrl_teardown(struct rct_verbs_ctx *v)
{
	size_t ring = (size_t)RCT_VERBS_CTRL_DEPTH * RCT_VERBS_CTRL_SLOT(v);
	struct rct_verbs_ctrl_msg *m;

	if (v->rx_mr)
		ibv_dereg_mr(v->rx_mr);
	if (v->tx_mr)
		ibv_dereg_mr(v->tx_mr);
	v->rx_mr = v->tx_mr = NULL;
	rct_mem_free(v->rx_ring, ring);
	rct_mem_free(v->tx_ring, ring);
	v->rx_ring = v->tx_ring = NULL;
	while ((m = v->backlog)) {
		v->backlog = m->next;
		free(m);
	}
	v->backlog_tail = NULL;
}

/* Post one SEND_WITH_IMM (len 0: a credit update) carrying the credits owed. */
static rct_status_t rct_verbs_post_send(struct rct_verbs_ctx *v, const void *buf, size_t len)
{
	unsigned slot = v->tx_next;
	struct ibv_sge sge = {
		.addr = (uintptr_t)(v->tx_ring + (size_t)slot * RCT_VERBS_CTRL_SLOT(v)),
		.length = (uint32_t)len,
		.lkey = v->tx_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = slot,
		.sg_list = len ? &sge : NULL,
		.num_sge = len ? 1 : 0,
		.opcode = IBV_WR_SEND_WITH_IMM,
		.send_flags = IBV_SEND_SIGNALED,
		.imm_data = htonl(v->to_return),
	};
	struct ibv_send_wr *bad;
	int err;

	if (len)
		memcpy(v->tx_ring + (size_t)slot * RCT_VERBS_CTRL_SLOT(v), buf, len);
	err = ibv_post_send(v->ctrl.id->qp, &wr, &bad);
	if (err) {
		rct_error("verbs: control lane (qp 0x%x): ibv_post_send: %s",
			  v->ctrl.id->qp->qp_num, strerror(err));
		return rct_be_fail(&v->super, RCT_ERR_IO);
	}
	v->to_return = 0;
	v->credits--;
	v->tx_busy++;
	v->tx_next = (v->tx_next + 1) % RCT_VERBS_CTRL_DEPTH;
	return RCT_OK;
}

static bool rct_verbs_can_send(const struct rct_verbs_ctx *v)
{
	return v->credits >= 2 && v->tx_busy < RCT_VERBS_CTRL_DEPTH;
}

rct_status_t rct_verbs_ctrl_flush(struct rct_verbs_ctx *v)
{
	struct rct_verbs_ctrl_msg *m;
	rct_status_t status = RCT_OK;

	if (!v->ctrl.id || v->super.failed != RCT_OK)
		return v->super.failed;
	while ((m = v->backlog) && rct_verbs_can_send(v) && status == RCT_OK) {
		status = rct_verbs_post_send(v, m->data, m->len);
		v->backlog = m->next;
		if (!v->backlog)
			v->backlog_tail = NULL;
		free(m);
	}
	if (status == RCT_OK && v->to_return >= RCT_VERBS_CTRL_DEPTH / 2 && v->credits >= 1 &&
	    v->tx_busy < RCT_VERBS_CTRL_DEPTH)
		status = rct_verbs_post_send(v, NULL, 0);
	return status;
}

rct_status_t rct_verbs_ctrl_send(struct rct_be_ctx *ctx, const void *buf, size_t len)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	struct rct_verbs_ctrl_msg *m;

	if (v->super.failed != RCT_OK)
		return v->super.failed;
	if (!v->ctrl.id)
		return RCT_ERR_STATE;
	if (!len || len > RCT_VERBS_CTRL_SLOT(v))
		return RCT_ERR_INVALID_PARAM;
	if (!v->backlog && rct_verbs_can_send(v))
		return rct_verbs_post_send(v, buf, len);
	m = malloc(sizeof(*m) + len);
	if (!m)
		return RCT_ERR_NO_MEMORY;
	m->next = NULL;
	m->len = len;
	memcpy(m->data, buf, len);
	if (v->backlog_tail)
		v->backlog_tail->next = m;
	else
		v->backlog = m;
	v->backlog_tail = m;
	return RCT_OK;
}

rct_status_t rct_verbs_ctrl_wc(struct rct_verbs_ctx *v, const struct ibv_wc *wc)
{
	unsigned slot;

	if (wc->status != IBV_WC_SUCCESS) {
		/* Flushes after the peer left are the normal end of a session. */
		if (wc->status == IBV_WC_WR_FLUSH_ERR)
			rct_info("verbs: control lane (qp 0x%x): %s", wc->qp_num,
				 ibv_wc_status_str(wc->status));
		else
			rct_error("verbs: control lane (qp 0x%x): %s (vendor error 0x%x)",
				  wc->qp_num, ibv_wc_status_str(wc->status), wc->vendor_err);
		return rct_be_fail(&v->super, wc->status == IBV_WC_WR_FLUSH_ERR ||
							      wc->status == IBV_WC_RETRY_EXC_ERR
						      ? RCT_ERR_PEER_LOST
						      : RCT_ERR_IO);
	}
	if (!(wc->wr_id & RCT_VERBS_WR_RX)) {
		v->tx_busy--;
		return RCT_OK;
	}
	slot = (unsigned)(wc->wr_id & 0xffffffffu);
	if (wc->wc_flags & IBV_WC_WITH_IMM)
		v->credits += ntohl(wc->imm_data);
	if (v->credits > v->peer_depth) {
		rct_error("verbs: control lane: the peer returned more credits (%u) than its ring",
			  v->credits);
		return rct_be_fail(&v->super, RCT_ERR_PROTO);
	}
	if (!wc->byte_len) { /* a pure credit update: the buffer goes straight back */
		v->to_return++;
		return rct_verbs_post_recv(v, slot);
	}
	v->rx_ready[(v->rx_head + v->rx_count) % RCT_VERBS_CTRL_DEPTH] = slot;
	v->rx_len[slot] = wc->byte_len;
	v->rx_count++;
	return RCT_OK;
}

rct_status_t rct_verbs_ctrl_recv(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	rct_status_t status;
	unsigned slot;
	bool any = false;

	if (!v->ctrl.id)
		return RCT_ERR_STATE;
	if (v->rx_handed >= 0) { /* the previous message is consumed: re-post its buffer */
		slot = (unsigned)v->rx_handed;
		v->rx_handed = -1;
		if (v->super.failed == RCT_OK) {
			status = rct_verbs_post_recv(v, slot);
			if (status != RCT_OK)
				return status;
			v->to_return++;
		}
	}
	if (!v->rx_count) /* even after a failure: completions already there still count */
		rct_verbs_poll(v, &any);
	/* Messages that arrived before a failure are still handed out: a GOODBYE
	 * or an ERROR among them says why the session ends. */
	if (!v->rx_count)
		return v->super.failed != RCT_OK ? v->super.failed : RCT_ERR_AGAIN;
	slot = v->rx_ready[v->rx_head];
	v->rx_head = (v->rx_head + 1) % RCT_VERBS_CTRL_DEPTH;
	v->rx_count--;
	v->rx_handed = (int)slot;
	*buf_p = v->rx_ring + (size_t)slot * RCT_VERBS_CTRL_SLOT(v);
	*len_p = v->rx_len[slot];
	return RCT_OK;
}
