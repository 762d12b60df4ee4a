/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one interface between the core and a backend (tcp, ucx, verbs).
 *
 * A backend context serves one session: one peer with one control lane and N
 * data lanes.  Its base, struct rct_be_ctx (the ops, the parameters, the
 * sticky failure), is embedded in the backend's own context and recovered with
 * rct_container_of(), as rdma-core's providers embed verbs objects.  The core
 * never sees a socket, a QP or an endpoint; it sees:
 *
 *   memory   rct_be_mem (addr, len), embedded in the backend's own object and
 *            recovered with rct_container_of().  A mem mapped with
 *            RCT_MEM_REMOTE_WRITE can be packed into a key blob that the peer
 *            unpacks into an rct_be_rkey (the size; embedded likewise).
 *   puts     a list of (local offset, remote offset, length) runs on one lane.
 *            put() only posts; progress() drives; pending() counts what is not
 *            yet locally complete.  Completion order is not defined.
 *   fences   fence(token) on the sender marks every put posted before it.
 *            fenced() on the receiver returns the highest token all of whose
 *            puts are placed in its memory.  One-sided backends, whose local
 *            completion already means remote placement, return UINT64_MAX.
 *   control  message-oriented, reliable, ordered; never blocks (queued and
 *            drained by progress()).  ctrl_recv() returns one whole message in
 *            backend memory, valid until the next ctrl_recv() call.
 *
 * Every function converts its library's error convention into rct_status_t at
 * the call site and logs once, naming the lane or object.  A failed lane makes
 * every later call return the same fatal status.
 */
#ifndef RCT_BACKEND_H
#define RCT_BACKEND_H

#include <assert.h>
#include <stdbool.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include <rct/rct.h>

#include "util.h"

struct rct_backend_ops;

struct rct_be_mem {
	void *addr;
	size_t len;
};

struct rct_run {
	uint64_t loff; /* offset in the local mem */
	uint64_t roff; /* offset in the remote mem */
	uint64_t len;
};

enum rct_mem_access {
	RCT_MEM_LOCAL = 1u << 0,	/* source of puts */
	RCT_MEM_REMOTE_WRITE = 1u << 1, /* target of the peer's puts */
	/* With @addr NULL: allocate zero memory that is faulted in as it is
	 * written, not populated (the colo cache: a guest may be mostly holes).
	 * A backend that must pin what it registers populates it anyway. */
	RCT_MEM_SPARSE = 1u << 2,
};

struct rct_be_params {
	int timeout_ms;
	uint64_t max_put;
	size_t ctrl_max;  /* longest control message either side sends */
	unsigned threads; /* helper threads the data path may start (0: none) */
	uint64_t loss_ns; /* the session takes this much silence for a lost peer */
	/*
	 * A call that may wait longer than a heartbeat interval (verbs: a put
	 * waiting for send-queue room; ucx: for a request slot) calls this from
	 * its wait, so that the session's keepalive goes out meanwhile and the
	 * liveness channel's verdict ends the wait: RCT_OK to wait on, else the
	 * status to fail with (RCT_ERR_PEER_LOST: the peer was judged lost while
	 * this call held the session thread; a cut link leaves a send queue full
	 * until the transport's own retries give up, if they ever do).  It only
	 * queues a control message (ctrl_send) and never re-enters the backend
	 * otherwise.  NULL: none.
	 */
	rct_status_t (*keepalive)(void *arg);
	void *keepalive_arg;
};

#define RCT_BE_TEXT_MAX 200

/*
 * The base of every backend context, embedded in the backend's own as
 * `super` and recovered with rct_container_of(): ctx_create fills it, the
 * core reads it.  The failure is sticky: rct_be_fail() keeps the first fatal
 * status, and every later call of the backend returns it.  Only the thread
 * that drives the session touches it.
 */
struct rct_be_ctx {
	const struct rct_backend_ops *ops;
	struct rct_be_params params;
	rct_status_t failed; /* first fatal status, RCT_OK while healthy */
	/* What carries the session's data, in the backend's words, once its
	 * lanes are open ("" when it has nothing to add to its name):
	 * rct_session_transport(). */
	char transport[RCT_BE_TEXT_MAX];
	/* Why the backend refused a step on a ground of its own (not the
	 * peer's, not an errno), for the core's error text; "" none. */
	char why[RCT_BE_TEXT_MAX];
};

/* A peer's memory unpacked from its key blob: the base of the backend's own. */
struct rct_be_rkey {
	uint64_t size; /* bytes of the peer's memory */
};

/*
 * A backend's own context and remote key from the core's bases: @ctx_fn(ctx)
 * (which asserts, in debug builds, that ctx is of the backend of @backend_ops) and
 * @rkey_fn(rkey).  Both types embed their base as `super`.
 */
#define RCT_BE_DOWNCASTS(ctx_fn, ctx_type, rkey_fn, rkey_type, backend_ops)                        \
	static inline ctx_type *ctx_fn(struct rct_be_ctx *ctx)                                     \
	{                                                                                          \
		assert(ctx->ops == &(backend_ops)); /* a context of another backend */             \
		return rct_container_of(ctx, ctx_type, super);                                     \
	}                                                                                          \
	static inline rkey_type *rkey_fn(struct rct_be_rkey *rkey)                                 \
	{                                                                                          \
		return rct_container_of(rkey, rkey_type, super);                                   \
	}

static inline rct_status_t rct_be_fail(struct rct_be_ctx *ctx, rct_status_t status)
{
	if (ctx->failed == RCT_OK)
		ctx->failed = status;
	return ctx->failed;
}

struct rct_backend_ops {
	const char *name;
	/* A region mapped RCT_MEM_LOCAL_READ only registers from a read-only
	 * mapping (rct_backend_source_read_only()). */
	bool source_read_only;

	rct_status_t (*ctx_create)(const struct rct_be_params *params, struct rct_be_ctx **ctx_p);
	void (*ctx_destroy)(struct rct_be_ctx *ctx);

	/*
	 * Connection, in two steps, so that nothing of a peer but its control
	 * lane is taken before the core has authenticated it (HELLO, AUTH):
	 *   secondary: listen; accept() takes the control lane of the next
	 *     primary and returns the number of data lanes it asks for (it
	 *     waits at most wait_ms for one to come, and returns RCT_ERR_AGAIN
	 *     quietly, holding nothing, when none came; one that came has until
	 *     timeout_ms from the call for its lane hello); then
	 *     open_lanes() takes that primary's data lanes, or reject() closes
	 *     its control lane (it did not prove itself) and the listener stays
	 *     for the next accept();
	 *   primary: connect() opens the control lane; open_lanes() the data
	 *     lanes, once the secondary has proved itself.
	 * Before open_lanes() no data lane exists: nothing a peer sends can reach
	 * memory mapped RCT_MEM_REMOTE_WRITE, and nothing of it is read but
	 * control messages.
	 */
	rct_status_t (*listen)(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			       uint16_t *port_p);
	rct_status_t (*accept)(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms,
			       unsigned *lanes_p);
	void (*reject)(struct rct_be_ctx *ctx);
	rct_status_t (*connect)(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
				unsigned lanes, int timeout_ms);
	rct_status_t (*open_lanes)(struct rct_be_ctx *ctx, int timeout_ms);
	/* Close every lane; pending operations fail.  Called after every rkey is
	 * destroyed and before memory is unmapped (UCX needs that order). */
	void (*disconnect)(struct rct_be_ctx *ctx);

	/* Memory: @addr NULL asks the backend to allocate (pre-faulted, unless
	 * RCT_MEM_SPARSE). */
	rct_status_t (*mem_map)(struct rct_be_ctx *ctx, void *addr, size_t len, unsigned access,
				struct rct_be_mem **mem_p);
	void (*mem_unmap)(struct rct_be_ctx *ctx, struct rct_be_mem *mem);
	rct_status_t (*mem_pack)(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf,
				 size_t cap, size_t *len_p);
	rct_status_t (*rkey_unpack)(struct rct_be_ctx *ctx, const void *buf, size_t len,
				    struct rct_be_rkey **rkey_p);
	void (*rkey_destroy)(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey);

	/* Data path. */
	rct_status_t (*put)(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			    struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n);
	rct_status_t (*fence)(struct rct_be_ctx *ctx, uint64_t token);
	size_t (*pending)(struct rct_be_ctx *ctx);
	uint64_t (*fenced)(struct rct_be_ctx *ctx);

	/* Control lane. */
	rct_status_t (*ctrl_send)(struct rct_be_ctx *ctx, const void *buf, size_t len);
	rct_status_t (*ctrl_recv)(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p);

	/* Drive sends and receives; wait at most @timeout_ms for activity. */
	rct_status_t (*progress)(struct rct_be_ctx *ctx, int timeout_ms);
	/*
	 * Prepare to sleep (rct_session_arm()): do what progress() does before it
	 * would wait, arm the notifications, and give the descriptors it would
	 * wait on in @fds (at most @cap; events as for poll(2)).  RCT_OK: the
	 * caller may sleep until one is ready, then call progress(ctx, 0);
	 * RCT_ERR_AGAIN: there is work now.  NULL: not supported.
	 */
	rct_status_t (*arm)(struct rct_be_ctx *ctx, struct pollfd *fds, unsigned cap,
			    unsigned *n_p);
};

/*
 * Check runs against the local memory (@lsize bytes) and the remote one
 * (@rsize): no zero length, no wrap-around, nothing past the end.  Logs the
 * first bad run with @who and @lane; RCT_OK or RCT_ERR_INVALID_PARAM.
 */
rct_status_t rct_runs_check(const struct rct_run *runs, size_t n, uint64_t lsize, uint64_t rsize,
			    const char *who, unsigned lane);

struct sockaddr_storage;

/* Resolve @addr:@port (numeric port, IPv4 or IPv6; @passive for a listener). */
rct_status_t rct_sockaddr_resolve(const char *who, const char *addr, uint16_t port, bool passive,
				  struct sockaddr_storage *ss, unsigned *len_p);

/* The backend called @name in this build, or NULL. */
const struct rct_backend_ops *rct_backend_find(const char *name);

/* Comma-separated names of the backends in this build (static storage). */
const char *rct_backend_names(void);

/* Defined where that backend is built (backend.c lists those of this build). */
extern const struct rct_backend_ops rct_tcp_ops;
extern const struct rct_backend_ops rct_ucx_ops;
extern const struct rct_backend_ops rct_verbs_ops;

#endif /* RCT_BACKEND_H */
