/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verbs backend internals (librdmacm + libibverbs), split over:
 *   verbs.c       context, device and protection domain, memory, progress
 *   verbs_conn.c  rdma_cm connection of the control QP and the N data QPs
 *   verbs_ctrl.c  control lane: SEND/RECV with a pre-posted ring and credits
 *   verbs_data.c  data lanes: RDMA WRITE chains, selective signalling
 *
 * Wire (docs/protocol.md "Verbs lanes"): the rdma_cm private data of every
 * connection carries magic, version, lane index, lane count, the sender's
 * control receive depth and a cookie; SEND_WITH_IMM on the control QP carries
 * the number of receive buffers the sender re-posted (credits) in imm_data; a
 * zero-length SEND_WITH_IMM is a pure credit update.
 */
#ifndef RCT_VERBS_H
#define RCT_VERBS_H

#include <infiniband/verbs.h>
#include <linux/types.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/backend.h"
#include "../core/util.h"

#define RCT_VERBS_MAGIC	       0x56544352u /* "RCTV" */
#define RCT_VERBS_VERSION      1
#define RCT_VERBS_CTRL_DEPTH   32  /* control receive ring */
#define RCT_VERBS_SQ_DEPTH     128 /* data send queue (perftest's tx-depth) */
#define RCT_VERBS_CHAIN	       32  /* WRs per ibv_post_send */
#define RCT_VERBS_SIGNAL       16  /* one signalled WR in N */
#define RCT_VERBS_CTRL_SLOT(v) ((v)->super.params.ctrl_max)
#define RCT_VERBS_WAITING      4 /* primaries queued behind one being authenticated */
/*
 * RC retransmission, set on every QP through rdma_cm: the local ACK timeout
 * is 4.096 us << 14 = 67.1 ms (perftest's default), and 6 retries put a QP in
 * error after 7 of them (470 ms without an ACK: a cut link, which the
 * liveness channel has reported long before).  Not shorter: at 16.8 ms a
 * slow responder (soft-RoCE under TCG) drew hundreds of spurious
 * retransmissions per run, and rxe answered some duplicates of a WRITE with an
 * invalid-request NAK that ends the session.  Not 7 retries, the top of the
 * 3-bit field: rxe takes 7 for "retry for ever", as the spec does for the RNR
 * count; a cut link then left the send queue full for the whole session
 * timeout with no error completion (retry_exceeded_err stayed 0 through 15
 * cuts).  A dropped packet is resent after one timeout, so in-band heartbeats
 * (on the control QP) with a loss threshold below 3 timeouts (201 ms) could
 * take two retransmissions in a row for a lost peer: ctx_create warns.  The
 * liveness thread's beats go by UDP and never wait for RC.
 */
#define RCT_VERBS_ACK_TIMEOUT 14
#define RCT_VERBS_RETRY	      6
#define RCT_VERBS_ACK_NS      (4096ull << RCT_VERBS_ACK_TIMEOUT)
#define RCT_VERBS_MIN_LOSS_NS (3 * RCT_VERBS_ACK_NS)

struct rct_verbs_wire_conn {
	__le32 magic;
	__le16 version;
	__le16 lane; /* 0 control, 1..nlanes data */
	__le16 nlanes;
	__le16 ctrl_depth; /* receive buffers the sender posted on its control QP */
	__le32 reserved;
	__le64 cookie;
};

struct rct_verbs_wire_key {
	__le64 raddr;
	__le64 size;
	__le32 rkey;
	__le32 reserved;
};

/*
 * The private data of a secondary's reject of a control lane, where it says
 * why (docs/protocol.md): RCT_VERBS_REJECT_BUSY, it has a primary already.
 * Other rejects carry none (a plain REJECTED: the peer is not reachable as
 * an rct secondary).
 */
struct rct_verbs_wire_reject {
	__le32 magic;
	__le16 version;
	__le16 reason;
};

#define RCT_VERBS_REJECT_BUSY 1

_Static_assert(sizeof(struct rct_verbs_wire_conn) == 24, "verbs private data");
_Static_assert(sizeof(struct rct_verbs_wire_reject) == 8, "verbs reject data");
_Static_assert(sizeof(struct rct_verbs_wire_key) == 24, "verbs key");

struct rct_verbs_mem {
	struct rct_be_mem super;
	struct ibv_mr *mr; /* NULL until the protection domain exists */
	unsigned access;
	bool owned;
	struct rct_verbs_mem *next;
};

struct rct_verbs_rkey {
	struct rct_be_rkey super; /* the peer memory's size */
	uint64_t raddr;
	uint32_t rkey;
};

struct rct_verbs_lane {
	unsigned index; /* 0 control, 1..N data */
	struct rdma_cm_id *id;
	struct ibv_cq *cq;
	bool established;
	unsigned sq_depth;
	unsigned outstanding;	  /* WRs posted, not known complete */
	unsigned unsignaled;	  /* WRs posted since the last signalled one */
	uint64_t posts, signaled; /* counters for docs/benchmarks.md */
};

struct rct_verbs_ctrl_msg {
	struct rct_verbs_ctrl_msg *next;
	size_t len;
	uint8_t data[];
};

struct rct_verbs_ctx {
	struct rct_be_ctx super; /* ops, params, the sticky failure */
	struct rdma_event_channel *ec;
	struct rdma_cm_id *listen_id;
	struct ibv_context *dev;
	struct ibv_pd *pd;	/* memory and the data QPs */
	struct ibv_pd *ctrl_pd; /* the control QP and its rings only: it connects
				   before AUTH and can reach no other memory */
	struct ibv_comp_channel *cc;
	uint32_t max_msg;
	bool receiver;

	struct rct_verbs_mem *mems;

	struct rct_verbs_lane ctrl;
	struct rct_verbs_lane *lanes;
	unsigned nlanes;
	bool lanes_open;	      /* open_lanes() ran: data lanes may come */
	uint64_t cookie;	      /* ties the data lanes to the control lane */
	struct sockaddr_storage peer; /* primary: where open_lanes() connects */
	/* Secondary: control lanes of other primaries waiting while one is
	 * authenticated (rct_verbs_accept() takes them in turn). */
	struct rdma_cm_id *waiting[RCT_VERBS_WAITING];
	struct rct_verbs_wire_conn waiting_conn[RCT_VERBS_WAITING];
	unsigned nwaiting;
	size_t pending; /* data WRs not complete */

	/* Control lane (verbs_ctrl.c). */
	uint8_t *rx_ring, *tx_ring;
	struct ibv_mr *rx_mr, *tx_mr;
	unsigned peer_depth; /* the peer's receive ring */
	unsigned credits;    /* sends we may post */
	unsigned to_return;  /* receives re-posted, not yet reported to the peer */
	unsigned tx_next;    /* next tx slot */
	unsigned tx_busy;    /* tx slots in flight */
	unsigned rx_ready[RCT_VERBS_CTRL_DEPTH]; /* received slots, in order */
	uint32_t rx_len[RCT_VERBS_CTRL_DEPTH];
	unsigned rx_head, rx_count;
	int rx_handed; /* slot returned by ctrl_recv, re-posted on the next call; -1 none */
	struct rct_verbs_ctrl_msg *backlog, *backlog_tail; /* waiting for credits */
};

RCT_BE_DOWNCASTS(rct_verbs, struct rct_verbs_ctx, rct_verbs_rkey, struct rct_verbs_rkey,
		 rct_verbs_ops)

rct_status_t rct_verbs_errno(int err);

/* verbs.c */
rct_status_t rct_verbs_device_open(struct rct_verbs_ctx *v, struct ibv_context *dev);
rct_status_t rct_verbs_lane_create(struct rct_verbs_ctx *v, struct rct_verbs_lane *l,
				   struct rdma_cm_id *id);
void rct_verbs_lane_destroy(struct rct_verbs_ctx *v, struct rct_verbs_lane *l);
rct_status_t rct_verbs_poll(struct rct_verbs_ctx *v, bool *any_p);

/* verbs_conn.c */
rct_status_t rct_verbs_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			      uint16_t *port_p);
rct_status_t rct_verbs_accept(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms,
			      unsigned *lanes_p);
void rct_verbs_reject(struct rct_be_ctx *ctx);
rct_status_t rct_verbs_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			       unsigned lanes, int timeout_ms);
rct_status_t rct_verbs_open_lanes(struct rct_be_ctx *ctx, int timeout_ms);
void rct_verbs_disconnect(struct rct_be_ctx *ctx);
rct_status_t rct_verbs_cm_poll(struct rct_verbs_ctx *v);

/* verbs_ctrl.c */
rct_status_t rct_verbs_ctrl_setup(struct rct_verbs_ctx *v);
void rct_verbs_ctrl_teardown(struct rct_verbs_ctx *v);
rct_status_t rct_verbs_ctrl_send(struct rct_be_ctx *ctx, const void *buf, size_t len);
rct_status_t rct_verbs_ctrl_recv(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p);
rct_status_t rct_verbs_ctrl_wc(struct rct_verbs_ctx *v, const struct ibv_wc *wc);
rct_status_t rct_verbs_ctrl_flush(struct rct_verbs_ctx *v);

/* verbs_data.c */
rct_status_t rct_verbs_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			   struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n);
rct_status_t rct_verbs_data_wc(struct rct_verbs_ctx *v, struct rct_verbs_lane *l,
			       const struct ibv_wc *wc);

#endif /* RCT_VERBS_H */
