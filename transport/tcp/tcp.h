/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP backend internals.  The QEMU multifd shape: one control connection and
 * N data connections per peer, TCP_NODELAY on all of them.
 *
 * Wire (little-endian, docs/protocol.md "TCP lanes"):
 *   every connection opens with LANE_HELLO(magic, version, lane, nlanes, cookie);
 *     lane 0 is the control lane, 1..N the data lanes; the cookie ties the
 *     N + 1 connections of one peer together.  The secondary takes the
 *     control lane first and the data lanes only after AUTH (backend.h).
 *   control lane: FRAME(length) + one core control message, repeated.
 *   data lane:    PUT(nruns, key) + nruns RUN(offset, length) + the payload of
 *                 every run in order, read straight into the target memory;
 *                 FENCE(token): every PUT before it on this lane is placed.
 */
#ifndef RCT_TCP_H
#define RCT_TCP_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../core/backend.h"
#include "../core/util.h"

#define RCT_TCP_LANE_MAGIC 0x4c544352u /* "RCTL" */
#define RCT_TCP_DATA_MAGIC 0x44544352u /* "RCTD" */
#define RCT_TCP_VERSION	   1
#define RCT_TCP_BATCH_RUNS 256 /* runs per PUT header */

enum rct_tcp_put_type {
	RCT_TCP_PUT = 1,
	RCT_TCP_FENCE = 2,
};

struct rct_tcp_wire_lane_hello {
	__le32 magic;
	__le16 version;
	__le16 lane; /* 0 = control, 1..nlanes = data */
	__le16 nlanes;
	__le16 reserved0;
	__le32 reserved1;
	__le64 cookie;
};

struct rct_tcp_wire_frame {
	__le32 length; /* bytes of the control message that follows */
	__le32 reserved;
};

struct rct_tcp_wire_put {
	__le32 magic;
	__le16 version;
	__le16 type;
	__le32 nruns; /* PUT: 1..RCT_TCP_BATCH_RUNS; FENCE: 0 */
	__le32 key_id;
	__le32 key_tag;
	__le32 reserved;
	__le64 token; /* FENCE: the fence token; PUT: 0 */
};

struct rct_tcp_wire_run {
	__le64 offset;
	__le64 length;
};

struct rct_tcp_wire_key {
	__le32 id;
	__le32 tag;
	__le64 size;
};

_Static_assert(sizeof(struct rct_tcp_wire_lane_hello) == 24, "tcp lane hello");
_Static_assert(sizeof(struct rct_tcp_wire_frame) == 8, "tcp frame");
_Static_assert(sizeof(struct rct_tcp_wire_put) == 32, "tcp put");
_Static_assert(sizeof(struct rct_tcp_wire_run) == 16, "tcp run");
_Static_assert(sizeof(struct rct_tcp_wire_key) == 16, "tcp key");

/* Host forms. */
struct rct_tcp_lane_hello {
	uint16_t lane;
	uint16_t nlanes;
	uint64_t cookie;
};

struct rct_tcp_put_hdr {
	uint16_t type;
	uint32_t nruns;
	uint32_t key_id;
	uint32_t key_tag;
	uint64_t token;
};

rct_status_t rct_tcp_lane_hello_decode(const void *buf, struct rct_tcp_lane_hello *h_p,
				       const char **why_p);
rct_status_t rct_tcp_put_decode(const void *buf, struct rct_tcp_put_hdr *h_p, const char **why_p);
/* Check run [offset, offset + length) against a target of @size bytes. */
rct_status_t rct_tcp_run_check(uint64_t offset, uint64_t length, uint64_t size, const char **why_p);

struct rct_tcp_mem {
	struct rct_be_mem super;
	uint32_t id; /* index in ctx->mems + 1 */
	uint32_t tag;
	unsigned access;
	bool owned; /* mmap()ed by the backend */
};

struct rct_tcp_rkey {
	struct rct_be_rkey super; /* the peer memory's size */
	uint32_t id;
	uint32_t tag;
};

/* A queued PUT or FENCE: iov[0] is the header and run list, then one iov per run. */
struct rct_tcp_batch {
	struct rct_tcp_batch *next;
	int iovcnt;
	int iov_idx; /* first iov not completely sent; iov[] is advanced in place */
	struct iovec iov[];
};

enum rct_tcp_rx_state {
	RCT_TCP_RX_HDR,
	RCT_TCP_RX_RUNS,
	RCT_TCP_RX_DATA,
};

struct rct_tcp_lane {
	int fd;
	unsigned index; /* 1..nlanes */
	/* sender */
	struct rct_tcp_batch *tx_head, *tx_tail;
	/* receiver */
	enum rct_tcp_rx_state rx_state;
	size_t rx_got, rx_need;
	struct rct_tcp_put_hdr rx_put;
	uint8_t rx_hdr[sizeof(struct rct_tcp_wire_put)];
	struct rct_tcp_wire_run rx_runs[RCT_TCP_BATCH_RUNS];
	struct iovec rx_iov[RCT_TCP_BATCH_RUNS];
	int rx_iovcnt, rx_iov_idx;
	uint64_t fenced;
};

/*
 * Secondary: a connection on the listener whose lane hello (and, for a
 * control lane, the first bytes of the message behind it) is awaited.  All
 * of them are heard at once, each for RCT_TCP_HELLO_NS from its arrival, so
 * that silent ones do not keep a primary out; a source has at most
 * RCT_TCP_SILENT_PER_SOURCE silent ones (a newer one drops its oldest).
 */
#define RCT_TCP_CANDIDATES	  (2 * RCT_MAX_LANES)
#define RCT_TCP_SILENT_PER_SOURCE 4
struct rct_tcp_cand {
	int fd;
	uint64_t since; /* arrival (ns) */
	struct sockaddr_storage from;
	size_t got;
	uint8_t buf[sizeof(struct rct_tcp_wire_lane_hello)];
	int valid;	 /* 0: not decoded yet, 1: a lane hello (hello), -1: not one (why) */
	const char *why; /* a static text */
	struct rct_tcp_lane_hello hello;
};

struct rct_tcp_ctx {
	struct rct_be_ctx super; /* ops, params, the sticky failure */
	int listen_fd;
	struct rct_tcp_cand *cands; /* RCT_TCP_CANDIDATES, while listening */
	unsigned ncands;
	int ctrl_fd;
	struct rct_tcp_lane *lanes;
	unsigned nlanes;
	bool receiver;		      /* accepted (secondary): data lanes carry puts to us */
	uint64_t cookie;	      /* ties the data lanes to the control lane */
	struct sockaddr_storage peer; /* primary: where open_lanes() connects */
	unsigned peer_len;
	struct pollfd *pfds;

	struct rct_tcp_mem **mems;
	unsigned nmems;

	size_t pending; /* queued batches not completely written */

	uint8_t *tx_buf; /* control lane, framed messages not yet written */
	size_t tx_len, tx_off, tx_cap;
	uint8_t *rx_buf; /* control lane, bytes read not yet returned */
	size_t rx_len, rx_consumed;
};

/* tcp_conn.c */
rct_status_t rct_tcp_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			    uint16_t *port_p);
rct_status_t rct_tcp_accept(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms, unsigned *lanes_p);
void rct_tcp_reject(struct rct_be_ctx *ctx);
rct_status_t rct_tcp_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			     unsigned lanes, int timeout_ms);
rct_status_t rct_tcp_open_lanes(struct rct_be_ctx *ctx, int timeout_ms);

/* Close the listener and every candidate on it. */
void rct_tcp_unlisten(struct rct_tcp_ctx *t);

/* tcp.c */
void rct_tcp_close(int *fd);
/* Push out what the control lane has queued (non-blocking). */
rct_status_t rct_tcp_ctrl_flush(struct rct_tcp_ctx *t);

/* tcp_data.c */
rct_status_t rct_tcp_mem_map(struct rct_be_ctx *ctx, void *addr, size_t len, unsigned access,
			     struct rct_be_mem **mem_p);
void rct_tcp_mem_unmap(struct rct_be_ctx *ctx, struct rct_be_mem *mem);
rct_status_t rct_tcp_mem_pack(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf, size_t cap,
			      size_t *len_p);
rct_status_t rct_tcp_rkey_unpack(struct rct_be_ctx *ctx, const void *buf, size_t len,
				 struct rct_be_rkey **rkey_p);
void rct_tcp_rkey_destroy(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey);
rct_status_t rct_tcp_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			 struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n);
rct_status_t rct_tcp_fence(struct rct_be_ctx *ctx, uint64_t token);
size_t rct_tcp_pending(struct rct_be_ctx *ctx);
uint64_t rct_tcp_fenced(struct rct_be_ctx *ctx);
rct_status_t rct_tcp_lane_send(struct rct_tcp_ctx *t, struct rct_tcp_lane *l);
rct_status_t rct_tcp_lane_recv(struct rct_tcp_ctx *t, struct rct_tcp_lane *l);
void rct_tcp_lane_drop(struct rct_tcp_ctx *t, struct rct_tcp_lane *l);

RCT_BE_DOWNCASTS(rct_tcp_ctx, struct rct_tcp_ctx, rct_tcp_rkey, struct rct_tcp_rkey, rct_tcp_ops)

#endif /* RCT_TCP_H */
