/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UCX backend, internal: its objects and what its files share.  ucx.c: the
 * context, waiting and progress, the ops table; ucx_conn.c: connections;
 * ucx_mem.c: memory and keys; ucx_data.c: puts and fences; ucx_copier.c: the
 * copier threads; ucx_ctrl.c: the control lane.  Design: ucx.c's comment.
 */
#ifndef RCT_UCX_H
#define RCT_UCX_H

#include <endian.h>
#include <errno.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <ucp/api/ucp.h>
#include <ucs/debug/log_def.h>

#include "../core/backend.h"
#include "../core/log.h"
#include "../core/util.h"

#define RCT_UCX_MAGIC	0x55544352u /* "RCTU" */
#define RCT_UCX_VERSION 2
/* Tags: "RCT", the message type, then the connection's cookie. */
#define RCT_UCX_TAG_WELCOME 0x5243540100000000ull
#define RCT_UCX_TAG_HELLO   0x5243540200000000ull
#define RCT_UCX_TAG_ADDRESS 0x5243540300000000ull
#define RCT_UCX_TAG_CTRL    0x5243540400000000ull
#define RCT_UCX_TAG_MASK    0xffffffffffffffffull
#define RCT_UCX_TAG_TYPE    0xffffffff00000000ull
#define RCT_UCX_WAITING	    4	/* connection requests queued behind one being authenticated */
#define RCT_UCX_INFLIGHT    512 /* puts in flight before the poster waits */
#define RCT_UCX_CLOSE_NS    (2000ull * 1000000)

/* Secondary -> primary, first on a new control endpoint. */
struct rct_ucx_wire_welcome {
	__le32 magic;
	__le16 version;
	__le16 reserved;
	__le32 cookie;
	__le32 reserved2;
};

/* Backend hello, primary -> secondary on the control endpoint. */
struct rct_ucx_wire_hello {
	__le32 magic;
	__le16 version;
	__le16 lanes;
	__le64 reserved;
};

/* Packed key: where the memory is on the peer, then UCX's packed rkey. */
struct rct_ucx_wire_key {
	__le64 raddr;
	__le64 size;
};

_Static_assert(sizeof(struct rct_ucx_wire_hello) == 16, "ucx hello");
_Static_assert(sizeof(struct rct_ucx_wire_welcome) == 16, "ucx welcome");
_Static_assert(sizeof(struct rct_ucx_wire_key) == 16, "ucx key");

struct rct_ucx_mem {
	struct rct_be_mem super;
	ucp_mem_h memh;
	unsigned access;
	bool owned; /* allocated by rct (rct_mem_alloc_sparse), only registered with UCX */
};

struct rct_ucx_rkey {
	struct rct_be_rkey super; /* the peer memory's size */
	uint64_t raddr;
	void *lptr; /* the target mapped into this process (ucp_rkey_ptr), or NULL */
	unsigned n;
	ucp_rkey_h rkeys[]; /* one per data lane: an rkey belongs to an endpoint */
};

/* Runs for a copier thread: direct stores into a target mapped here. */
struct rct_ucx_job {
	struct rct_ucx_job *next;
	const char *src;
	char *dst;
	size_t n;
	struct rct_run runs[];
};

/*
 * A helper thread that stores runs into the mapped target.  Only when the
 * session asked for threads (params.threads): on one host a put into a mapped
 * target is a CPU copy, and one thread is the limit of one lane.
 * lock guards head, tail and stop; done is written by the thread (release)
 * and read by the poster (acquire).
 */
struct rct_ucx_copier {
	struct rct_ucx_ctx *u;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rct_ucx_job *head, *tail;
	bool stop;
};

struct rct_ucx_ctx {
	struct rct_be_ctx super;	/* ops, params, the sticky failure */
	struct rct_ucx_copier *copiers; /* params.threads of them, started at connect */
	unsigned ncopiers;
	uint64_t jobs_posted; /* poster only */
	uint64_t jobs_done;   /* copiers, atomically */
	int wake_fd;	      /* eventfd: a copier finished a job */
	ucp_context_h context;
	ucp_worker_h worker;
	int efd;
	ucp_listener_h listener;
	/* Secondary: connection requests waiting while one primary is
	 * authenticated; refused once its data lanes are open. */
	ucp_conn_request_h conn_waiting[RCT_UCX_WAITING];
	unsigned nwaiting;
	bool lanes_open;
	bool receiver;
	uint32_t cookie; /* in every tag of this connection */
	ucp_ep_h ctrl_ep;
	ucp_ep_h *lanes;
	unsigned nlanes;
	/* Primary: the data lanes' transports ("tl/device", ...), and whether
	 * one of them does RMA itself (else a put is emulated). */
	char tls[120];
	bool rma;
	size_t pending; /* puts and flushes not complete */
	size_t sends;	/* control sends not complete */

	/* The one posted control receive. */
	void *rx_req;
	bool rx_done;
	bool rx_handed; /* rx_buf was returned by ctrl_recv(): repost next time */
	size_t rx_len;
	ucs_status_t rx_status;
	uint8_t *rx_buf; /* params.ctrl_max bytes */
};

RCT_BE_DOWNCASTS(rct_ucx, struct rct_ucx_ctx, rct_ucx_rkey, struct rct_ucx_rkey, rct_ucx_ops)

/* ucx.c */
rct_status_t rct_ucx_status(ucs_status_t st);
void rct_ucx_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st);
ucp_tag_t rct_ucx_tag(const struct rct_ucx_ctx *u, ucp_tag_t type);
unsigned rct_ucx_drain(struct rct_ucx_ctx *u);
void rct_ucx_wait(struct rct_ucx_ctx *u, int timeout_ms);
rct_status_t rct_ucx_wait_req(struct rct_ucx_ctx *u, void *req, uint64_t deadline_ns,
			      const char *what);

/* ucx_conn.c */
void rct_ucx_disconnect(struct rct_be_ctx *ctx);
void rct_ucx_drop_unexpected(struct rct_ucx_ctx *u);
rct_status_t rct_ucx_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			    uint16_t *port_p);
rct_status_t rct_ucx_accept(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms, unsigned *lanes_p);
void rct_ucx_reject(struct rct_be_ctx *ctx);
rct_status_t rct_ucx_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			     unsigned lanes, int timeout_ms);
rct_status_t rct_ucx_open_lanes(struct rct_be_ctx *ctx, int timeout_ms);

/* ucx_mem.c */
rct_status_t rct_ucx_mem_map(struct rct_be_ctx *ctx, void *addr, size_t len, unsigned access,
			     struct rct_be_mem **mem_p);
void rct_ucx_mem_unmap(struct rct_be_ctx *ctx, struct rct_be_mem *mem);
rct_status_t rct_ucx_mem_pack(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf, size_t cap,
			      size_t *len_p);
void rct_ucx_rkey_destroy(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey);
rct_status_t rct_ucx_rkey_unpack(struct rct_be_ctx *ctx, const void *buf, size_t len,
				 struct rct_be_rkey **rkey_p);

/* ucx_data.c */
rct_status_t rct_ucx_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			 struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n);
rct_status_t rct_ucx_fence(struct rct_be_ctx *ctx, uint64_t token);
size_t rct_ucx_pending(struct rct_be_ctx *ctx);
uint64_t rct_ucx_fenced(struct rct_be_ctx *ctx);

/* ucx_copier.c */
uint64_t rct_ucx_jobs_pending(struct rct_ucx_ctx *u);
void rct_ucx_copiers_quiesce(struct rct_ucx_ctx *u);
void rct_ucx_copiers_stop(struct rct_ucx_ctx *u);
rct_status_t rct_ucx_copiers_start(struct rct_ucx_ctx *u, unsigned n);
rct_status_t rct_ucx_post_job(struct rct_ucx_ctx *u, struct rct_ucx_copier *c,
			      struct rct_be_mem *mem, struct rct_ucx_rkey *k,
			      const struct rct_run *runs, size_t n);

/* ucx_ctrl.c */
rct_status_t rct_ucx_ctrl_send(struct rct_be_ctx *ctx, const void *buf, size_t len);
rct_status_t rct_ucx_ctrl_recv(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p);

#endif /* RCT_UCX_H */
