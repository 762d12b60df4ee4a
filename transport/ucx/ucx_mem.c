/* SPDX-License-Identifier: BSD-3-Clause */
/* UCX backend: memory mapped for the peer, its packed keys, the peer's keys unpacked. */
#include "ucx.h"

static rct_status_t rct_ucx_mem_map_at(struct rct_ucx_ctx *u, void *addr, size_t len,
				       unsigned access, bool owned, struct rct_be_mem **mem_p)
{
	ucp_mem_map_params_t mp = {
		.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
			      UCP_MEM_MAP_PARAM_FIELD_FLAGS | UCP_MEM_MAP_PARAM_FIELD_PROT,
		.address = addr,
		.length = len,
		/* What is only sent from is only read: the primary's guest RAM
		 * may be mapped read-only (rctd maps it so). */
		.prot = (access & RCT_MEM_REMOTE_WRITE) || !addr || owned
				? UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
					  UCP_MEM_MAP_PROT_REMOTE_READ |
					  UCP_MEM_MAP_PROT_REMOTE_WRITE
				: UCP_MEM_MAP_PROT_LOCAL_READ,
		/* A target UCX allocates can be mapped by the peer: real one-sided
		 * stores on one host.  Into plain memory, put is only emulated. */
		.flags = addr ? 0 : UCP_MEM_MAP_ALLOCATE,
	};
	ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS |
					     UCP_MEM_ATTR_FIELD_LENGTH};
	struct rct_ucx_mem *m;
	ucs_status_t st;

	m = calloc(1, sizeof(*m));
	if (!m)
		return RCT_ERR_NO_MEMORY;
	st = ucp_mem_map(u->context, &mp, &m->memh);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_mem_map of %zu bytes%s: %s", len, addr ? "" : " (allocate)",
			  ucs_status_string(st));
		free(m);
		return rct_ucx_status(st);
	}
	st = ucp_mem_query(m->memh, &attr);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_mem_query: %s", ucs_status_string(st));
		ucp_mem_unmap(u->context, m->memh);
		free(m);
		return rct_ucx_status(st);
	}
	if (!addr && !(access & RCT_MEM_SPARSE) && madvise(attr.address, len, MADV_POPULATE_WRITE))
		memset(attr.address, 0, len); /* pre-fault what is not sparse */
	m->super.addr = attr.address;
	m->super.len = len;
	m->access = access;
	m->owned = owned;
	*mem_p = &m->super;
	return RCT_OK;
}

/*
 * Whether a sparse target of @len bytes is more than UCX can allocate without
 * populating it.  UCX tries a SysV segment first (not populated; the kernel's
 * overcommit heuristic refuses one larger than RAM and swap), then a POSIX one,
 * which it tests by writing every byte of its file: a sparse cache larger than
 * this host's memory would fill /dev/shm and bring the OOM killer.
 */
static bool rct_ucx_too_big_to_share(size_t len)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	return pages > 0 && psz > 0 && len >= (uint64_t)pages * (uint64_t)psz;
}

rct_status_t rct_ucx_mem_map(struct rct_be_ctx *ctx, void *addr, size_t len, unsigned access,
			     struct rct_be_mem **mem_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	rct_status_t status;

	if (addr || !(access & RCT_MEM_SPARSE) || !rct_ucx_too_big_to_share(len))
		return rct_ucx_mem_map_at(u, addr, len, access, false, mem_p);
	addr = rct_mem_alloc_sparse(len);
	if (!addr) {
		rct_error("ucx: reserving a sparse target of %zu bytes: %m", len);
		return RCT_ERR_NO_MEMORY;
	}
	rct_info("ucx: a sparse target of %zu bytes is larger than this host's memory: rct "
		 "allocates it and UCX only registers it (no shared segment: puts into it are "
		 "emulated, the receiver's worker copies them)",
		 len);
	status = rct_ucx_mem_map_at(u, addr, len, access, true, mem_p);
	if (status != RCT_OK)
		rct_mem_free(addr, len);
	return status;
}

void rct_ucx_mem_unmap(struct rct_be_ctx *ctx, struct rct_be_mem *mem)
{
	struct rct_ucx_mem *m = rct_container_of(mem, struct rct_ucx_mem, super);
	ucs_status_t st = ucp_mem_unmap(rct_ucx(ctx)->context, m->memh);

	if (st != UCS_OK)
		rct_warn("ucx: ucp_mem_unmap: %s", ucs_status_string(st));
	if (m->owned)
		rct_mem_free(m->super.addr, m->super.len);
	free(m);
}

rct_status_t rct_ucx_mem_pack(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf, size_t cap,
			      size_t *len_p)
{
	struct rct_ucx_mem *m = rct_container_of(mem, struct rct_ucx_mem, super);
	struct rct_ucx_wire_key w;
	void *rkey_buf;
	size_t rkey_len;
	ucs_status_t st;

	if (!(m->access & RCT_MEM_REMOTE_WRITE))
		return RCT_ERR_INVALID_PARAM;
	st = ucp_rkey_pack(rct_ucx(ctx)->context, m->memh, &rkey_buf, &rkey_len);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_rkey_pack: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	if (sizeof(w) + rkey_len > cap) {
		rct_error("ucx: packed key of %zu bytes exceeds %zu", rkey_len, cap - sizeof(w));
		ucp_rkey_buffer_release(rkey_buf);
		return RCT_ERR_NO_SPACE;
	}
	w.raddr = htole64((uintptr_t)mem->addr);
	w.size = htole64(mem->len);
	memcpy(buf, &w, sizeof(w));
	memcpy((char *)buf + sizeof(w), rkey_buf, rkey_len);
	ucp_rkey_buffer_release(rkey_buf);
	*len_p = sizeof(w) + rkey_len;
	return RCT_OK;
}

void rct_ucx_rkey_destroy(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey)
{
	struct rct_ucx_rkey *k = rct_ucx_rkey(rkey);

	/* ucp_rkey_destroy unmaps k->lptr: no copier may still store there. */
	if (k->lptr)
		rct_ucx_copiers_quiesce(rct_ucx(ctx));
	for (unsigned i = 0; i < k->n; i++)
		ucp_rkey_destroy(k->rkeys[i]);
	free(k);
}

rct_status_t rct_ucx_rkey_unpack(struct rct_be_ctx *ctx, const void *buf, size_t len,
				 struct rct_be_rkey **rkey_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	struct rct_ucx_wire_key w;
	struct rct_ucx_rkey *k;
	void *ptr, *prev = NULL;
	ucs_status_t st;

	if (len <= sizeof(w) || !u->nlanes) {
		rct_error("ucx: remote key of %zu bytes (or no data lanes)", len);
		return RCT_ERR_PROTO;
	}
	memcpy(&w, buf, sizeof(w));
	k = calloc(1, sizeof(*k) + u->nlanes * sizeof(ucp_rkey_h));
	if (!k)
		return RCT_ERR_NO_MEMORY;
	k->raddr = le64toh(w.raddr);
	k->super.size = le64toh(w.size);
	if (k->raddr + k->super.size < k->raddr) {
		free(k);
		rct_error("ucx: remote key: address + size wraps around");
		return RCT_ERR_PROTO;
	}
	for (unsigned i = 0; i < u->nlanes; i++) {
		st = ucp_ep_rkey_unpack(u->lanes[i], (const char *)buf + sizeof(w), &k->rkeys[i]);
		if (st != UCS_OK) {
			rct_error("ucx: lane %u: ucp_ep_rkey_unpack: %s", i + 1,
				  ucs_status_string(st));
			rct_ucx_rkey_destroy(ctx, &k->super);
			return rct_ucx_status(st);
		}
		k->n = i + 1;
	}
	/* Where the target is mapped into this process (shared memory), the puts
	 * store into it.  It is not faulted in here: the colo cache is sparse
	 * (a TiB of holes must stay holes), so a page's first put pays its
	 * first-touch fault (~2 us a page here), once.  Each lane's rkey may
	 * attach a mapping of its own. */
	for (unsigned i = 0; i < k->n; i++) {
		st = ucp_rkey_ptr(k->rkeys[i], k->raddr, &ptr);
		if (st != UCS_OK) {
			rct_info("ucx: lane %u: remote memory of %llu bytes not mapped here (%s): "
				 "puts go through the transport",
				 i + 1, (unsigned long long)k->super.size, ucs_status_string(st));
			continue;
		}
		if (!k->lptr)
			k->lptr = ptr;
		if (i && ptr == prev)
			continue;
		prev = ptr;
		rct_debug("ucx: lane %u: remote memory mapped at %p", i + 1, ptr);
	}
	/*
	 * Neither mapped here nor reachable by a transport's own RMA: every put
	 * would be an active message that the secondary's worker writes and
	 * answers, and UCX 1.13 aborts the secondary's whole process (every VM
	 * its rctd serves) when that answer cannot go to a primary that died
	 * mid-put.  No configuration rct accepts lets a peer's death do that.
	 */
	if (!k->lptr && !u->rma) {
		snprintf(u->super.why, sizeof(u->super.why),
			 "puts would be emulated over %.24s (no RDMA, not mapped here): a primary "
			 "dying mid-put aborts the secondary's UCX 1.13; use backend tcp, or UCX "
			 "with RDMA",
			 u->tls[0] ? u->tls : "UCX's transports");
		rct_error("ucx: remote memory of %llu bytes: %s", (unsigned long long)k->super.size,
			  u->super.why);
		rct_ucx_rkey_destroy(ctx, &k->super);
		return RCT_ERR_MISMATCH;
	}
	snprintf(u->super.transport, sizeof(u->super.transport), "ucx over %.100s: %s",
		 u->tls[0] ? u->tls : "unknown transports",
		 k->lptr ? "stores into the secondary's memory mapped here (shared memory)"
			 : "puts by the transport (RDMA)");
	*rkey_p = &k->super;
	return RCT_OK;
}
