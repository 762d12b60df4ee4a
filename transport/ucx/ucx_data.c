/* SPDX-License-Identifier: BSD-3-Clause */
/* UCX backend: the data path (puts, fences, what is in flight). */
#include "ucx.h"

static void rct_ucx_op_done(void *req, ucs_status_t st, void *arg)
{
	struct rct_ucx_ctx *u = arg;

	u->pending--;
	if (st != UCS_OK) {
		rct_error("ucx: put or flush failed: %s", ucs_status_string(st));
		rct_be_fail(&u->super, rct_ucx_status(st));
	}
	ucp_request_free(req);
}

/* Account for the result of a non-blocking RMA call. */
static rct_status_t rct_ucx_track(struct rct_ucx_ctx *u, void *req, unsigned lane, const char *what)
{
	if (req == NULL)
		return RCT_OK;
	if (UCS_PTR_IS_ERR(req)) {
		rct_error("ucx: lane %u: %s: %s", lane, what,
			  ucs_status_string(UCS_PTR_STATUS(req)));
		return rct_be_fail(&u->super, rct_ucx_status(UCS_PTR_STATUS(req)));
	}
	u->pending++;
	return RCT_OK;
}

/*
 * Wait for one of the RCT_UCX_INFLIGHT request slots.  A peer that stops
 * taking data (a cut link UCX has not noticed yet) would otherwise hold the
 * caller here until UCX itself gives up: the session's heartbeats go out
 * meanwhile (keepalive), its liveness channel's verdict or else the session
 * timeout ends the wait, and the wait sleeps on the worker's fd rather than
 * spinning.
 */
static rct_status_t rct_ucx_put_room(struct rct_ucx_ctx *u, unsigned lane)
{
	uint64_t deadline = rct_now_ns() + (uint64_t)u->super.params.timeout_ms * 1000000;

	while (u->pending >= RCT_UCX_INFLIGHT && u->super.failed == RCT_OK) {
		if (rct_now_ns() >= deadline) {
			rct_error("ucx: lane %u: %zu puts in flight and none completed for %d ms: "
				  "the secondary takes no data",
				  lane, u->pending, u->super.params.timeout_ms);
			return rct_be_fail(&u->super, RCT_ERR_PEER_LOST);
		}
		if (u->super.params.keepalive) {
			rct_status_t status = u->super.params.keepalive(
				u->super.params.keepalive_arg);

			if (status != RCT_OK) {
				rct_error("ucx: lane %u: %zu puts in flight when the session lost "
					  "the peer: %s",
					  lane, u->pending, rct_status_str(status));
				return rct_be_fail(&u->super, status);
			}
		}
		rct_ucx_wait(u, 1);
	}
	return u->super.failed;
}

rct_status_t rct_ucx_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			 struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	struct rct_ucx_mem *m = rct_container_of(mem, struct rct_ucx_mem, super);
	struct rct_ucx_rkey *k = rct_ucx_rkey(rkey);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FIELD_MEMH,
		.cb.send = rct_ucx_op_done,
		.user_data = u,
		.memh = m->memh,
	};
	rct_status_t status;

	if (u->super.failed != RCT_OK)
		return u->super.failed;
	if (lane >= u->nlanes)
		return RCT_ERR_INVALID_PARAM;
	status = rct_runs_check(runs, n, mem->len, k->super.size, "ucx", lane + 1);
	if (status != RCT_OK)
		return status;
	/*
	 * The caller and the copier threads share the lanes evenly: lane l is
	 * stored by thread l % (copiers + 1), 0 being the caller.  (The core
	 * balances bytes across lanes, so each thread gets an equal share; with
	 * 4 lanes and one copier, "lanes 1..3 to the copier" gave it 3/4 of the
	 * bytes and left the caller waiting.)
	 */
	if (k->lptr && u->ncopiers && lane % (u->ncopiers + 1))
		return rct_ucx_post_job(u, &u->copiers[lane % (u->ncopiers + 1) - 1], mem, k, runs,
					n);
	for (size_t i = 0; i < n; i++) {
		const struct rct_run *r = &runs[i];

		/*
		 * The target is mapped here (shared memory, ucp_rkey_ptr): store into
		 * it directly.  This is what UCX's put does on that transport, minus
		 * ~1 us of per-call overhead that dominates 4 KiB puts.
		 */
		if (k->lptr) {
			memcpy((char *)k->lptr + r->roff, (char *)mem->addr + r->loff, r->len);
			continue;
		}
		/* Bound the requests in flight: each holds UCX resources. */
		status = rct_ucx_put_room(u, lane + 1);
		if (status != RCT_OK)
			return status;
		status = rct_ucx_track(u,
				       ucp_put_nbx(u->lanes[lane], (char *)mem->addr + r->loff,
						   r->len, k->raddr + r->roff, k->rkeys[lane], &p),
				       lane + 1, "ucp_put_nbx");
		if (status != RCT_OK)
			return status;
	}
	return u->super.failed;
}

rct_status_t rct_ucx_fence(struct rct_be_ctx *ctx, uint64_t token)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
		.cb.send = rct_ucx_op_done,
		.user_data = u,
	};
	rct_status_t status = u->super.failed;

	(void)token;
	/* Direct stores into a mapped target: ordered before what follows. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	/* A flush completes when every put before it is complete at the target. */
	for (unsigned i = 0; i < u->nlanes && status == RCT_OK; i++)
		status = rct_ucx_track(u, ucp_ep_flush_nbx(u->lanes[i], &p), i + 1,
				       "ucp_ep_flush_nbx");
	return status;
}

size_t rct_ucx_pending(struct rct_be_ctx *ctx)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);

	return u->pending + rct_ucx_jobs_pending(u);
}

uint64_t rct_ucx_fenced(struct rct_be_ctx *ctx)
{
	(void)ctx;
	return UINT64_MAX; /* flushed puts are placed: the sender's flush says so */
}
