/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verbs backend: context, device, memory registration and progress.  See
 * verbs.h for how the backend is split.
 *
 * The protection domain comes from the device rdma_cm resolves the address
 * to, which is known only at listen (bound address) or connect.  Regions are
 * registered before that, so memory registration is lazy: mem_map() records
 * (and, for the colo cache, allocates and pre-faults) the memory, and every
 * recorded region is registered once the PD exists.  A registration failure
 * names RLIMIT_MEMLOCK and the size; where plain registration is unsupported
 * it is retried with on-demand paging.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "verbs.h"

rct_status_t rct_verbs_errno(int err)
{
	switch (err) {
	case ENOMEM:
	case EAGAIN:
		return RCT_ERR_NO_MEMORY;
	case ENODEV:
	case ENXIO:
		return RCT_ERR_NO_DEVICE;
	case ETIMEDOUT:
		return RCT_ERR_TIMED_OUT;
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return RCT_ERR_PEER_LOST;
	case EOPNOTSUPP:
		return RCT_ERR_UNSUPPORTED;
	case EINVAL:
		return RCT_ERR_INVALID_PARAM;
	case EADDRINUSE:
		return RCT_ERR_ADDR_IN_USE;
	default:
		return RCT_ERR_SYSTEM;
	}
}

static rct_status_t rct_verbs_ctx_create(const struct rct_be_params *params,
					 struct rct_be_ctx **ctx_p)
{
	struct rct_verbs_ctx *v;

	v = calloc(1, sizeof(*v));
	if (!v)
		return RCT_ERR_NO_MEMORY;
	v->super.ops = &rct_verbs_ops;
	v->super.params = *params;
	v->rx_handed = -1;
	if (params->loss_ns && params->loss_ns < RCT_VERBS_MIN_LOSS_NS)
		rct_warn("verbs: the peer is declared lost after %llu ms of silence, below the "
			 "%llu ms of 3 local ACK timeouts (%.1f ms each): one retransmitted packet "
			 "could read as a lost peer; use a heartbeat of at least %llu ms",
			 (unsigned long long)(params->loss_ns / 1000000),
			 (unsigned long long)(RCT_VERBS_MIN_LOSS_NS / 1000000),
			 RCT_VERBS_ACK_NS / 1e6,
			 (unsigned long long)((RCT_VERBS_MIN_LOSS_NS / 3 + 999999) / 1000000));
	v->ec = rdma_create_event_channel();
	if (!v->ec) {
		rct_error("verbs: rdma_create_event_channel: %m (is rdma_ucm loaded? "
			  "/dev/infiniband/rdma_cm)");
		free(v);
		return RCT_ERR_NO_DEVICE;
	}
	if (fcntl(v->ec->fd, F_SETFL, fcntl(v->ec->fd, F_GETFL) | O_NONBLOCK)) {
		rct_error("verbs: event channel non-blocking: %m");
		rdma_destroy_event_channel(v->ec);
		free(v);
		return RCT_ERR_SYSTEM;
	}
	*ctx_p = &v->super;
	return RCT_OK;
}

static void rct_verbs_ctx_destroy(struct rct_be_ctx *ctx)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);

	rct_verbs_disconnect(ctx);
	for (struct rct_verbs_mem *m = v->mems; m; m = m->next)
		rct_warn("verbs: memory at %p still registered at context destroy", m->super.addr);
	if (v->cc)
		ibv_destroy_comp_channel(v->cc);
	if (v->pd)
		ibv_dealloc_pd(v->pd);
	if (v->ctrl_pd)
		ibv_dealloc_pd(v->ctrl_pd);
	if (v->listen_id)
		rdma_destroy_id(v->listen_id);
	rdma_destroy_event_channel(v->ec);
	free(v->lanes);
	free(v);
}

/* ------------------------------------------------------------- memory */

static rct_status_t rct_verbs_reg(struct rct_verbs_ctx *v, struct rct_verbs_mem *m)
{
	/* A source of RDMA WRITEs is only read by the HCA: no LOCAL_WRITE, so
	 * the primary's guest RAM may be mapped read-only (rctd maps it so). */
	int access = m->access & RCT_MEM_REMOTE_WRITE
			     ? IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE
			     : 0;
	struct rlimit rl;
	int err;

	m->mr = ibv_reg_mr(v->pd, m->super.addr, m->super.len, access);
	if (!m->mr && errno == EOPNOTSUPP) {
		rct_info("verbs: pinned registration unsupported, retrying on-demand paging");
		m->mr = ibv_reg_mr(v->pd, m->super.addr, m->super.len,
				   access | IBV_ACCESS_ON_DEMAND);
	}
	if (m->mr)
		return RCT_OK;
	err = errno;
	if ((err == ENOMEM || err == EPERM || err == EAGAIN) && !getrlimit(RLIMIT_MEMLOCK, &rl) &&
	    rl.rlim_cur != RLIM_INFINITY) {
		rct_error("verbs: cannot pin %zu bytes at %p: %s; RLIMIT_MEMLOCK (ulimit -l) is "
			  "%llu KiB: raise it (ulimit -l unlimited, or LimitMEMLOCK= in the unit)",
			  m->super.len, m->super.addr, strerror(err),
			  (unsigned long long)rl.rlim_cur / 1024);
		return RCT_ERR_NO_MEMORY;
	}
	rct_error("verbs: ibv_reg_mr of %zu bytes at %p: %s", m->super.len, m->super.addr,
		  strerror(err));
	return rct_verbs_errno(err);
}

static rct_status_t rct_verbs_mem_map(struct rct_be_ctx *ctx, void *addr, size_t len,
				      unsigned access, struct rct_be_mem **mem_p)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	struct rct_verbs_mem *m;
	rct_status_t status;

	m = calloc(1, sizeof(*m));
	if (!m)
		return RCT_ERR_NO_MEMORY;
	if (!addr) {
		/* Pre-faulted: registration pins every page anyway (no ODP here). */
		addr = rct_mem_alloc(len);
		if (!addr) {
			free(m);
			return RCT_ERR_NO_MEMORY;
		}
		m->owned = true;
	}
	m->super.addr = addr;
	m->super.len = len;
	m->access = access;
	if (v->pd) {
		status = rct_verbs_reg(v, m);
		if (status != RCT_OK) {
			if (m->owned)
				rct_mem_free(addr, len);
			free(m);
			return status;
		}
	}
	m->next = v->mems;
	v->mems = m;
	*mem_p = &m->super;
	return RCT_OK;
}

static void rct_verbs_mem_unmap(struct rct_be_ctx *ctx, struct rct_be_mem *mem)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	struct rct_verbs_mem *m = rct_container_of(mem, struct rct_verbs_mem, super);
	struct rct_verbs_mem **pp;

	for (pp = &v->mems; *pp && *pp != m; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = m->next;
	if (m->mr && ibv_dereg_mr(m->mr))
		rct_warn("verbs: ibv_dereg_mr: %m");
	if (m->owned)
		rct_mem_free(m->super.addr, m->super.len);
	free(m);
}

static rct_status_t rct_verbs_mem_pack(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf,
				       size_t cap, size_t *len_p)
{
	struct rct_verbs_mem *m = rct_container_of(mem, struct rct_verbs_mem, super);
	struct rct_verbs_wire_key w;

	(void)ctx;
	if (!(m->access & RCT_MEM_REMOTE_WRITE) || !m->mr)
		return RCT_ERR_INVALID_PARAM;
	if (cap < sizeof(w))
		return RCT_ERR_NO_SPACE;
	w.raddr = htole64((uintptr_t)mem->addr);
	w.size = htole64(mem->len);
	w.rkey = htole32(m->mr->rkey);
	w.reserved = 0;
	memcpy(buf, &w, sizeof(w));
	*len_p = sizeof(w);
	return RCT_OK;
}

static rct_status_t rct_verbs_rkey_unpack(struct rct_be_ctx *ctx, const void *buf, size_t len,
					  struct rct_be_rkey **rkey_p)
{
	struct rct_verbs_wire_key w;
	struct rct_verbs_rkey *k;

	(void)ctx;
	if (len != sizeof(w)) {
		rct_error("verbs: remote key of %zu bytes, expected %zu", len, sizeof(w));
		return RCT_ERR_PROTO;
	}
	memcpy(&w, buf, sizeof(w));
	if (w.reserved) {
		rct_error("verbs: remote key: nonzero reserved field");
		return RCT_ERR_PROTO;
	}
	k = malloc(sizeof(*k));
	if (!k)
		return RCT_ERR_NO_MEMORY;
	k->raddr = le64toh(w.raddr);
	k->super.size = le64toh(w.size);
	k->rkey = le32toh(w.rkey);
	if (k->raddr + k->super.size < k->raddr) {
		free(k);
		rct_error("verbs: remote key: address + size wraps around");
		return RCT_ERR_PROTO;
	}
	*rkey_p = &k->super;
	return RCT_OK;
}

static void rct_verbs_rkey_destroy(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey)
{
	(void)ctx;
	free(rct_verbs_rkey(rkey));
}

/* ------------------------------------------------------------- device */

rct_status_t rct_verbs_device_open(struct rct_verbs_ctx *v, struct ibv_context *dev)
{
	struct ibv_port_attr port;
	rct_status_t status;
	const char *env;

	if (v->pd) {
		if (dev != v->dev) {
			rct_error("verbs: lanes resolved to two devices (%s and %s): use one",
				  ibv_get_device_name(v->dev->device),
				  ibv_get_device_name(dev->device));
			return RCT_ERR_NO_DEVICE;
		}
		return RCT_OK;
	}
	v->dev = dev;
	v->pd = ibv_alloc_pd(dev);
	v->ctrl_pd = ibv_alloc_pd(dev);
	if (!v->pd || !v->ctrl_pd) {
		rct_error("verbs: %s: ibv_alloc_pd: %m", ibv_get_device_name(dev->device));
		return rct_verbs_errno(errno);
	}
	v->cc = ibv_create_comp_channel(dev);
	if (!v->cc) {
		rct_error("verbs: %s: ibv_create_comp_channel: %m",
			  ibv_get_device_name(dev->device));
		return rct_verbs_errno(errno);
	}
	if (fcntl(v->cc->fd, F_SETFL, fcntl(v->cc->fd, F_GETFL) | O_NONBLOCK))
		rct_warn("verbs: completion channel non-blocking: %m");
	v->max_msg = 1u << 30;
	if (!ibv_query_port(dev, 1, &port) && port.max_msg_sz)
		v->max_msg = port.max_msg_sz;
	/* RCT_VERBS_MAX_MSG caps one RDMA WRITE below the port's limit (some HCAs
	 * prefer smaller messages; the tests use it to split runs). */
	env = getenv("RCT_VERBS_MAX_MSG");
	if (env) {
		unsigned long cap = strtoul(env, NULL, 0);

		if (cap >= 512 && cap < v->max_msg)
			v->max_msg = (uint32_t)cap;
		else
			rct_warn("verbs: RCT_VERBS_MAX_MSG=%s ignored (512..%u)", env, v->max_msg);
	}
	rct_info("verbs: using %s (max message %u bytes)", ibv_get_device_name(dev->device),
		 v->max_msg);
	for (struct rct_verbs_mem *m = v->mems; m; m = m->next) {
		if (m->mr)
			continue;
		status = rct_verbs_reg(v, m);
		if (status != RCT_OK)
			return status;
	}
	return RCT_OK;
}

/* A CQ and an RC QP on @id, with queue sizes within the device's caps. */
rct_status_t rct_verbs_lane_create(struct rct_verbs_ctx *v, struct rct_verbs_lane *l,
				   struct rdma_cm_id *id)
{
	struct ibv_device_attr attr;
	struct ibv_qp_init_attr qa;
	unsigned sq, rq;

	if (ibv_query_device(v->dev, &attr)) {
		rct_error("verbs: ibv_query_device: %m");
		return rct_verbs_errno(errno);
	}
	sq = RCT_MIN((unsigned)attr.max_qp_wr,
		     l->index ? RCT_VERBS_SQ_DEPTH : RCT_VERBS_CTRL_DEPTH);
	rq = l->index ? 1 : RCT_MIN((unsigned)attr.max_qp_wr, RCT_VERBS_CTRL_DEPTH);
	l->cq = ibv_create_cq(v->dev, (int)RCT_MIN(sq + rq, (unsigned)attr.max_cqe), l, v->cc, 0);
	if (!l->cq) {
		rct_error("verbs: lane %u: ibv_create_cq: %m", l->index);
		return rct_verbs_errno(errno);
	}
	memset(&qa, 0, sizeof(qa));
	qa.qp_type = IBV_QPT_RC;
	qa.send_cq = l->cq;
	qa.recv_cq = l->cq;
	qa.cap.max_send_wr = sq;
	qa.cap.max_recv_wr = rq;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	qa.sq_sig_all = 0;
	if (rdma_create_qp(id, l->index ? v->pd : v->ctrl_pd, &qa)) {
		rct_error("verbs: lane %u: rdma_create_qp: %m", l->index);
		ibv_destroy_cq(l->cq);
		l->cq = NULL;
		return rct_verbs_errno(errno);
	}
	l->id = id;
	l->sq_depth = sq;
	if (ibv_req_notify_cq(l->cq, 0))
		rct_warn("verbs: lane %u: ibv_req_notify_cq: %m", l->index);
	return RCT_OK;
}

void rct_verbs_lane_destroy(struct rct_verbs_ctx *v, struct rct_verbs_lane *l)
{
	(void)v;
	if (l->id) {
		if (l->id->qp)
			rdma_destroy_qp(l->id);
		rdma_destroy_id(l->id);
		l->id = NULL;
	}
	if (l->cq) {
		if (ibv_destroy_cq(l->cq))
			rct_warn("verbs: lane %u: ibv_destroy_cq: %m", l->index);
		l->cq = NULL;
	}
}

/* Poll every CQ once; every work completion's status is checked. */
rct_status_t rct_verbs_poll(struct rct_verbs_ctx *v, bool *any_p)
{
	struct ibv_wc wc[32];
	rct_status_t status = RCT_OK;
	int n;

	for (unsigned i = 0; i <= v->nlanes && status == RCT_OK; i++) {
		struct rct_verbs_lane *l = i ? &v->lanes[i - 1] : &v->ctrl;

		if (!l->cq)
			continue;
		while (status == RCT_OK && (n = ibv_poll_cq(l->cq, 32, wc)) > 0) {
			*any_p = true;
			for (int k = 0; k < n && status == RCT_OK; k++)
				status = i ? rct_verbs_data_wc(v, l, &wc[k])
					   : rct_verbs_ctrl_wc(v, &wc[k]);
		}
		if (n < 0) {
			rct_error("verbs: lane %u: ibv_poll_cq failed", l->index);
			return rct_be_fail(&v->super, RCT_ERR_IO);
		}
	}
	return status;
}

/* Re-arm every CQ and drain the completion channel's events. */
static void rct_verbs_arm(struct rct_verbs_ctx *v)
{
	struct ibv_cq *cq;
	void *cq_ctx;

	while (v->cc && !ibv_get_cq_event(v->cc, &cq, &cq_ctx))
		ibv_ack_cq_events(cq, 1);
	for (unsigned i = 0; i <= v->nlanes; i++) {
		struct rct_verbs_lane *l = i ? &v->lanes[i - 1] : &v->ctrl;

		if (l->cq && ibv_req_notify_cq(l->cq, 0))
			rct_warn("verbs: lane %u: ibv_req_notify_cq: %m", l->index);
	}
}

static rct_status_t rct_verbs_progress(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	struct pollfd pfd[2];
	rct_status_t status;
	bool any = false;

	if (v->super.failed != RCT_OK)
		return v->super.failed;
	status = rct_verbs_cm_poll(v);
	if (status == RCT_OK)
		status = rct_verbs_poll(v, &any);
	if (status == RCT_OK)
		status = rct_verbs_ctrl_flush(v);
	if (status != RCT_OK || any || timeout_ms <= 0 || v->rx_count)
		return status;

	/* Arm, then poll again: a completion between the two would be missed. */
	rct_verbs_arm(v);
	status = rct_verbs_poll(v, &any);
	if (status != RCT_OK || any || v->rx_count)
		return status;
	pfd[0].fd = v->ec->fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = v->cc ? v->cc->fd : -1;
	pfd[1].events = POLLIN;
	if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR) {
		rct_error("verbs: poll: %m");
		return rct_be_fail(&v->super, RCT_ERR_SYSTEM);
	}
	status = rct_verbs_cm_poll(v);
	if (status == RCT_OK)
		status = rct_verbs_poll(v, &any);
	return status;
}

/* progress()'s wait split for the caller's event loop: the same arm-then-poll. */
static rct_status_t rct_verbs_arm_wait(struct rct_be_ctx *ctx, struct pollfd *fds, unsigned cap,
				       unsigned *n_p)
{
	struct rct_verbs_ctx *v = rct_verbs(ctx);
	rct_status_t status;
	bool any = false;

	if (v->super.failed != RCT_OK)
		return v->super.failed;
	if (cap < 2)
		return RCT_ERR_NO_SPACE;
	status = rct_verbs_cm_poll(v);
	if (status == RCT_OK)
		status = rct_verbs_poll(v, &any);
	if (status == RCT_OK)
		status = rct_verbs_ctrl_flush(v);
	if (status != RCT_OK)
		return status;
	if (any || v->rx_count)
		return RCT_ERR_AGAIN;
	/* Arm, then poll again: a completion between the two would be missed. */
	rct_verbs_arm(v);
	status = rct_verbs_poll(v, &any);
	if (status != RCT_OK)
		return status;
	if (any || v->rx_count)
		return RCT_ERR_AGAIN;
	fds[0] = (struct pollfd){.fd = v->ec->fd, .events = POLLIN};
	fds[1] = (struct pollfd){.fd = v->cc ? v->cc->fd : -1, .events = POLLIN};
	*n_p = v->cc ? 2 : 1;
	return RCT_OK;
}

static rct_status_t rct_verbs_fence(struct rct_be_ctx *ctx, uint64_t token)
{
	(void)token;
	/* An RC write completes at the requester only after the responder acked
	 * it: once pending() is zero the data is in the peer's memory. */
	return ctx->failed;
}

static size_t rct_verbs_pending(struct rct_be_ctx *ctx)
{
	return rct_verbs(ctx)->pending;
}

static uint64_t rct_verbs_fenced(struct rct_be_ctx *ctx)
{
	(void)ctx;
	return UINT64_MAX;
}

const struct rct_backend_ops rct_verbs_ops = {
	.name = "verbs",
	/* Registered without LOCAL_WRITE, yet before Linux 6.2 ib_umem_get()
	 * pins every user MR with FOLL_WRITE (FOLL_FORCE when read-only),
	 * which fails with EFAULT on a read-only shared mapping (Debian 12's
	 * 6.1 does). */
	.source_read_only = false,
	.ctx_create = rct_verbs_ctx_create,
	.ctx_destroy = rct_verbs_ctx_destroy,
	.listen = rct_verbs_listen,
	.accept = rct_verbs_accept,
	.reject = rct_verbs_reject,
	.connect = rct_verbs_connect,
	.open_lanes = rct_verbs_open_lanes,
	.disconnect = rct_verbs_disconnect,
	.mem_map = rct_verbs_mem_map,
	.mem_unmap = rct_verbs_mem_unmap,
	.mem_pack = rct_verbs_mem_pack,
	.rkey_unpack = rct_verbs_rkey_unpack,
	.rkey_destroy = rct_verbs_rkey_destroy,
	.put = rct_verbs_put,
	.fence = rct_verbs_fence,
	.pending = rct_verbs_pending,
	.fenced = rct_verbs_fenced,
	.ctrl_send = rct_verbs_ctrl_send,
	.ctrl_recv = rct_verbs_ctrl_recv,
	.progress = rct_verbs_progress,
	.arm = rct_verbs_arm_wait,
};
