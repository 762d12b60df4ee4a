/* SPDX-License-Identifier: BSD-3-Clause */
/* UCX backend: listening, connecting, admitting a primary and its data lanes, closing. */
#include "ucx.h"

static void rct_ucx_conn_handler(ucp_conn_request_h req, void *arg)
{
	struct rct_ucx_ctx *u = arg;

	if (u->lanes_open || u->nwaiting == RCT_UCX_WAITING) {
		/* One primary per session: later requests are turned away. */
		rct_warn("ucx: rejecting a connection request: %s",
			 u->lanes_open ? "a primary is connected" : "too many waiting");
		ucp_listener_reject(u->listener, req);
		return;
	}
	u->conn_waiting[u->nwaiting++] = req;
}

/*
 * The control endpoint (PEER error mode) is closed with FORCE: a flushing close
 * waits for the peer to answer, and a peer that already left (or stopped
 * progressing after our GOODBYE) never does; the control sends were waited
 * for before, so nothing we said is lost.  Data endpoints have no error mode,
 * where UCX allows only a flushing close; they talk to shared memory.
 */
static void rct_ucx_close_ep(struct rct_ucx_ctx *u, ucp_ep_h *ep, bool force)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
		.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
	};

	if (!*ep)
		return;
	rct_ucx_wait_req(u, ucp_ep_close_nbx(*ep, &p), rct_now_ns() + RCT_UCX_CLOSE_NS,
			 "closing an endpoint");
	*ep = NULL;
}

void rct_ucx_disconnect(struct rct_be_ctx *ctx)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t deadline = rct_now_ns() + RCT_UCX_CLOSE_NS;

	rct_ucx_copiers_stop(u); /* drops what they hold, waits for what they copy */
	/* Let what the control lane holds (a GOODBYE) leave first. */
	while (u->sends && u->super.failed == RCT_OK && rct_now_ns() < deadline)
		rct_ucx_wait(u, 10);
	if (u->rx_req) {
		ucp_request_cancel(u->worker, u->rx_req);
		rct_ucx_drain(u);
		ucp_request_free(u->rx_req);
		u->rx_req = NULL;
	}
	for (unsigned i = 0; u->lanes && i < u->nlanes; i++)
		rct_ucx_close_ep(u, &u->lanes[i], false);
	rct_ucx_close_ep(u, &u->ctrl_ep, true);
	while (u->listener && u->nwaiting)
		ucp_listener_reject(u->listener, u->conn_waiting[--u->nwaiting]);
	if (u->listener) {
		ucp_listener_destroy(u->listener);
		u->listener = NULL;
	}
}

/*
 * Receive and drop whatever tag messages arrived and were never asked for (a
 * peer's last control messages, its GOODBYE): UCX warns about each one left
 * unmatched when the worker goes ("unexpected tag-receive descriptor ... was
 * not matched").  Bounded by RCT_UCX_CLOSE_NS.
 */
void rct_ucx_drop_unexpected(struct rct_ucx_ctx *u)
{
	uint64_t deadline = rct_now_ns() + RCT_UCX_CLOSE_NS;
	ucp_request_param_t p = {.op_attr_mask = 0};
	ucp_tag_recv_info_t info;
	ucp_tag_message_h msg;
	unsigned n = 0;

	rct_ucx_drain(u);
	while ((msg = ucp_tag_probe_nb(u->worker, 0, 0, 1, &info)) && rct_now_ns() < deadline) {
		/* Truncated into rx_buf if larger: still consumed. */
		void *req = ucp_tag_msg_recv_nbx(u->worker, u->rx_buf, u->super.params.ctrl_max,
						 msg, &p);

		if (rct_ucx_wait_req(u, req, deadline, "dropping an unasked message") != RCT_OK)
			break;
		n++;
	}
	if (n)
		rct_debug("ucx: %u messages nobody asked for dropped at close", n);
}

rct_status_t rct_ucx_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			    uint16_t *port_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_listener_params_t lp = {
		.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
			      UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.conn_handler = {.cb = rct_ucx_conn_handler, .arg = u},
	};
	ucp_listener_attr_t attr = {.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR};
	struct sockaddr_storage ss;
	rct_status_t status;
	ucs_status_t st;
	unsigned len;

	status = rct_sockaddr_resolve("ucx", addr, port, true, &ss, &len);
	if (status != RCT_OK)
		return status;
	lp.sockaddr.addr = (struct sockaddr *)&ss;
	lp.sockaddr.addrlen = len;
	st = ucp_listener_create(u->worker, &lp, &u->listener);
	if (st != UCS_OK) {
		rct_error("ucx: cannot listen on %s:%u: %s", addr, port, ucs_status_string(st));
		return st == UCS_ERR_BUSY ? RCT_ERR_ADDR_IN_USE : rct_ucx_status(st);
	}
	st = ucp_listener_query(u->listener, &attr);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_listener_query: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	if (port_p)
		*port_p = ntohs(attr.sockaddr.ss_family == AF_INET6
					? ((struct sockaddr_in6 *)&attr.sockaddr)->sin6_port
					: ((struct sockaddr_in *)&attr.sockaddr)->sin_port);
	return RCT_OK;
}

static ucp_ep_params_t rct_ucx_ep_params(struct rct_ucx_ctx *u)
{
	ucp_ep_params_t ep = {
		.field_mask = UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
		.err_mode = UCP_ERR_HANDLING_MODE_PEER,
		.err_handler = {.cb = rct_ucx_ep_error, .arg = u},
	};

	return ep;
}

/* Blocking tag send of a small handshake message. */
static rct_status_t rct_ucx_send_sync(struct rct_ucx_ctx *u, const void *buf, size_t len,
				      ucp_tag_t type, uint64_t deadline, const char *what)
{
	ucp_request_param_t p = {.op_attr_mask = 0};

	return rct_ucx_wait_req(u, ucp_tag_send_nbx(u->ctrl_ep, buf, len, rct_ucx_tag(u, type), &p),
				deadline, what);
}

/* Blocking tag receive of a handshake message into @buf (@cap bytes). */
static rct_status_t rct_ucx_recv_sync(struct rct_ucx_ctx *u, void *buf, size_t cap, ucp_tag_t tag,
				      ucp_tag_t mask, uint64_t deadline, size_t *len_p,
				      const char *what)
{
	/* Always a request back, even when the message is already here (else NULL,
	 * and the length would be lost). */
	ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FLAG_NO_IMM_CMPL};
	ucp_tag_recv_info_t info;
	rct_status_t status;
	void *req;

	req = ucp_tag_recv_nbx(u->worker, buf, cap, tag, mask, &p);
	if (UCS_PTR_IS_ERR(req)) {
		rct_error("ucx: %s: %s", what, ucs_status_string(UCS_PTR_STATUS(req)));
		return rct_ucx_status(UCS_PTR_STATUS(req));
	}
	while (ucp_tag_recv_request_test(req, &info) == UCS_INPROGRESS) {
		if (u->super.failed != RCT_OK || rct_now_ns() >= deadline)
			break;
		rct_ucx_wait(u, RCT_MIN(rct_ms_left(deadline), 100));
	}
	if (ucp_request_check_status(req) == UCS_INPROGRESS) {
		ucp_request_cancel(u->worker, req);
		rct_ucx_drain(u);
		ucp_request_free(req);
		rct_error("ucx: %s: %s", what,
			  u->super.failed != RCT_OK ? rct_status_str(u->super.failed)
						    : "timed out");
		return u->super.failed != RCT_OK ? u->super.failed : RCT_ERR_TIMED_OUT;
	}
	status = rct_ucx_status(ucp_request_check_status(req));
	ucp_tag_recv_request_test(req, &info);
	ucp_request_free(req);
	if (status != RCT_OK) {
		rct_error("ucx: %s: %s", what, rct_status_str(status));
		return status;
	}
	*len_p = info.length;
	return RCT_OK;
}

/* The control endpoint of the next primary that asked, with its lane hello. */
rct_status_t rct_ucx_accept(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms, unsigned *lanes_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t now = rct_now_ns();
	uint64_t deadline = now + (uint64_t)timeout_ms * 1000000;
	uint64_t come_by = RCT_MIN(deadline, now + (uint64_t)wait_ms * 1000000);
	ucp_ep_params_t ep = rct_ucx_ep_params(u);
	struct rct_ucx_wire_welcome w = {
		.magic = htole32(RCT_UCX_MAGIC),
		.version = htole16(RCT_UCX_VERSION),
	};
	struct rct_ucx_wire_hello h;
	rct_status_t status;
	ucs_status_t st;
	unsigned lanes;
	size_t len;

	if (!u->listener || u->ctrl_ep)
		return RCT_ERR_STATE;
	while (!u->nwaiting) { /* progress at least once, even for no wait */
		rct_ucx_wait(u, RCT_MIN(rct_ms_left(come_by), 100));
		if (!u->nwaiting && rct_now_ns() >= come_by)
			return RCT_ERR_AGAIN;
	}
	ep.field_mask |= UCP_EP_PARAM_FIELD_CONN_REQUEST;
	ep.conn_request = u->conn_waiting[0];
	memmove(u->conn_waiting, u->conn_waiting + 1, --u->nwaiting * sizeof(u->conn_waiting[0]));
	st = ucp_ep_create(u->worker, &ep, &u->ctrl_ep);
	if (st != UCS_OK) {
		rct_error("ucx: accepting the control endpoint: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	u->receiver = true;
	do
		u->cookie = (uint32_t)rct_random64();
	while (!u->cookie);
	w.cookie = htole32(u->cookie);
	status = rct_ucx_send_sync(u, &w, sizeof(w), RCT_UCX_TAG_WELCOME, deadline,
				   "sending the welcome");
	if (status == RCT_OK)
		status = rct_ucx_recv_sync(u, &h, sizeof(h), rct_ucx_tag(u, RCT_UCX_TAG_HELLO),
					   RCT_UCX_TAG_MASK,
					   RCT_MIN(deadline, rct_now_ns() + RCT_UCX_CLOSE_NS), &len,
					   "waiting for the lane hello");
	if (status != RCT_OK)
		return status;
	lanes = le16toh(h.lanes);
	if (len != sizeof(h) || le32toh(h.magic) != RCT_UCX_MAGIC || h.reserved || lanes < 1 ||
	    lanes > RCT_MAX_LANES) {
		rct_error("ucx: malformed lane hello (%zu bytes)", len);
		return rct_be_fail(&u->super, RCT_ERR_PROTO);
	}
	if (le16toh(h.version) != RCT_UCX_VERSION) {
		rct_error("ucx: lane hello version %u, this build speaks %d", le16toh(h.version),
			  RCT_UCX_VERSION);
		return rct_be_fail(&u->super, RCT_ERR_VERSION);
	}
	u->nlanes = lanes;
	*lanes_p = lanes;
	return RCT_OK;
}

/* The held primary did not prove itself: close its endpoint, forget its cookie. */
void rct_ucx_reject(struct rct_be_ctx *ctx)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);

	if (u->rx_req) {
		ucp_request_cancel(u->worker, u->rx_req);
		rct_ucx_drain(u);
		ucp_request_free(u->rx_req);
		u->rx_req = NULL;
	}
	u->rx_done = u->rx_handed = false;
	rct_ucx_close_ep(u, &u->ctrl_ep, true);
	rct_ucx_drop_unexpected(u);
	u->cookie = 0;
	u->nlanes = 0;
	u->receiver = false;
	u->super.failed = RCT_OK;
}

/* The control endpoint, the secondary's welcome and our lane hello. */
rct_status_t rct_ucx_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
			     unsigned lanes, int timeout_ms)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;
	struct rct_ucx_wire_hello h = {
		.magic = htole32(RCT_UCX_MAGIC),
		.version = htole16(RCT_UCX_VERSION),
		.lanes = htole16((uint16_t)lanes),
	};
	ucp_ep_params_t ep = rct_ucx_ep_params(u);
	struct rct_ucx_wire_welcome w;
	struct sockaddr_storage ss;
	rct_status_t status;
	ucs_status_t st;
	unsigned sl;
	size_t len;

	if (u->ctrl_ep || lanes < 1 || lanes > RCT_MAX_LANES)
		return RCT_ERR_STATE;
	status = rct_sockaddr_resolve("ucx", addr, port, false, &ss, &sl);
	if (status != RCT_OK)
		return status;
	u->lanes = calloc(lanes, sizeof(*u->lanes));
	if (!u->lanes)
		return RCT_ERR_NO_MEMORY;
	u->nlanes = lanes;

	ep.field_mask |= UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
	ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
	ep.sockaddr.addr = (struct sockaddr *)&ss;
	ep.sockaddr.addrlen = sl;
	st = ucp_ep_create(u->worker, &ep, &u->ctrl_ep);
	if (st != UCS_OK) {
		rct_error("ucx: connecting to %s:%u: %s", addr, port, ucs_status_string(st));
		status = rct_ucx_status(st);
		goto out;
	}
	status = rct_ucx_recv_sync(u, &w, sizeof(w), RCT_UCX_TAG_WELCOME, RCT_UCX_TAG_TYPE,
				   deadline, &len, "waiting for the secondary's welcome");
	if (status == RCT_OK &&
	    (len != sizeof(w) || le32toh(w.magic) != RCT_UCX_MAGIC || !w.cookie)) {
		rct_error("ucx: malformed welcome (%zu bytes)", len);
		status = RCT_ERR_PROTO;
	}
	if (status == RCT_OK && le16toh(w.version) != RCT_UCX_VERSION) {
		rct_error("ucx: the secondary speaks version %u, this build %d", le16toh(w.version),
			  RCT_UCX_VERSION);
		status = RCT_ERR_VERSION;
	}
	if (status != RCT_OK)
		goto out;
	u->cookie = le32toh(w.cookie);
	status = rct_ucx_send_sync(u, &h, sizeof(h), RCT_UCX_TAG_HELLO, deadline,
				   "sending the lane hello");
out:
	if (status == RCT_ERR_REFUSED) {
		/* Turned away (the secondary has its primary): nothing of this
		 * attempt stays, so that the session can connect again. */
		rct_error("ucx: %s:%u turned this primary away (the secondary has its primary, "
			  "or too many wait)",
			  addr, port);
		rct_ucx_close_ep(u, &u->ctrl_ep, true);
		free(u->lanes);
		u->lanes = NULL;
		u->nlanes = 0;
		u->super.failed = RCT_OK;
	} else if (status != RCT_OK) {
		rct_error("ucx: cannot connect to %s:%u: %s", addr, port, rct_status_str(status));
	}
	return status;
}

/* Secondary: our worker address, now that the primary proved itself. */
/*
 * Which transports UCX chose for endpoint @ep, from ucp_ep_print_info() (UCX
 * 1.13 has no query for them): each lane's "tl/device" into @tls, and whether
 * a lane carries RMA itself (a lane marked rma or rma_bw on a transport that
 * is not tcp: RDMA, or a shared-memory transport's stores).  Without such a
 * lane ucp_put_nbx() is emulated with active messages: the target's worker
 * writes each put and answers it, and UCX 1.13 aborts the target's process
 * when that answer cannot go to a primary that died (ucp_request.inl:
 * "Fatal: unexpected error: Endpoint timeout"; docs/reliability.md).  False
 * when the output could not be read.
 */
static bool rct_ucx_ep_rma(ucp_ep_h ep, char *tls, size_t len)
{
	char *buf = NULL, *line, *save = NULL;
	size_t n = 0, used = 0;
	bool rma = false;
	FILE *f = open_memstream(&buf, &n);

	tls[0] = '\0';
	if (!f)
		return false;
	ucp_ep_print_info(ep, f);
	fclose(f);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char tl[64];
		const char *p = strstr(line, "lane["), *colon;

		/* "lane[0]:  1:tcp/lo.0 md[1] -> md[1]/tcp/sysdev[255] am am_bw#0 ..." */
		if (!p || !(p = strchr(p, ']')) || p[1] != ':')
			continue;
		p += 2;
		p += strspn(p, " ");
		colon = strchr(p, ':');
		if (!colon || colon > strchr(p, ' ') || sscanf(colon + 1, "%63s", tl) != 1)
			continue;
		if ((strstr(line, " rma#") || strstr(line, " rma_bw#")) && strncmp(tl, "tcp", 3))
			rma = true;
		if (!strstr(tls, tl))
			used += (size_t)snprintf(tls + used, used < len ? len - used : 0, "%s%s",
						 used ? "," : "", tl);
	}
	free(buf);
	return rma;
}

static rct_status_t rct_ucx_offer_address(struct rct_ucx_ctx *u, uint64_t deadline)
{
	ucp_worker_attr_t wa = {.field_mask = UCP_WORKER_ATTR_FIELD_ADDRESS};
	rct_status_t status;
	ucs_status_t st;

	while (u->nwaiting) {
		rct_warn("ucx: rejecting a connection request: a primary is connected");
		ucp_listener_reject(u->listener, u->conn_waiting[--u->nwaiting]);
	}
	st = ucp_worker_query(u->worker, &wa);
	if (st != UCS_OK) {
		rct_error("ucx: ucp_worker_query: %s", ucs_status_string(st));
		return rct_ucx_status(st);
	}
	status = rct_ucx_send_sync(u, wa.address, wa.address_length, RCT_UCX_TAG_ADDRESS, deadline,
				   "sending the worker address");
	ucp_worker_release_address(u->worker, wa.address);
	/* The data path is the primary's choice (it refuses emulated puts);
	 * what this side sees is its control endpoint. */
	rct_ucx_ep_rma(u->ctrl_ep, u->tls, sizeof(u->tls));
	snprintf(u->super.transport, sizeof(u->super.transport),
		 "ucx, control lane over %.100s: the primary's stores or RDMA puts land in the "
		 "colo cache",
		 u->tls[0] ? u->tls : "unknown transports");
	return status;
}

/* Primary: the data endpoints, from the secondary's worker address. */
static rct_status_t rct_ucx_lanes_create(struct rct_ucx_ctx *u, uint64_t deadline)
{
	ucp_request_param_t p = {.op_attr_mask = 0};
	ucp_ep_params_t ep;
	rct_status_t status;
	unsigned lanes = u->nlanes;
	ucs_status_t st;
	uint8_t *waddr;
	size_t len;

	waddr = malloc(u->super.params.ctrl_max);
	if (!waddr)
		return RCT_ERR_NO_MEMORY;
	status = rct_ucx_recv_sync(u, waddr, u->super.params.ctrl_max,
				   rct_ucx_tag(u, RCT_UCX_TAG_ADDRESS), RCT_UCX_TAG_MASK, deadline,
				   &len, "waiting for the peer's worker address");
	if (status != RCT_OK)
		goto out;
	/*
	 * Data lanes with peer error handling too, so that a dead peer is an
	 * error callback and never UCX's own abort.  In UCX 1.13 PEER mode keeps
	 * no shared-memory transport for the endpoint's lanes (tcp instead of
	 * sysv/posix/cma here), but that is not the data path on one host: the
	 * peer's cache is still mapped through ucp_rkey_ptr() and the puts are
	 * stores into it (measured: same GB/s as without an error mode, see
	 * docs/benchmarks.md); across hosts the RDMA transports keep PEER mode.
	 */
	ep = rct_ucx_ep_params(u);
	ep.field_mask |= UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
	ep.address = (ucp_address_t *)waddr;
	for (unsigned i = 0; i < lanes; i++) {
		st = ucp_ep_create(u->worker, &ep, &u->lanes[i]);
		if (st != UCS_OK) {
			rct_error("ucx: lane %u: ucp_ep_create: %s", i + 1, ucs_status_string(st));
			status = rct_ucx_status(st);
			goto out;
		}
	}
	/* Finish wire-up now rather than on the first checkpoint's critical path. */
	for (unsigned i = 0; i < lanes && status == RCT_OK; i++)
		status = rct_ucx_wait_req(u, ucp_ep_flush_nbx(u->lanes[i], &p), deadline,
					  "connecting a data lane");
	if (status == RCT_OK && u->super.params.threads)
		status = rct_ucx_copiers_start(u, RCT_MIN(u->super.params.threads, lanes));
	/* Which transports UCX chose for the data lanes: whether a put is done
	 * by a transport or emulated decides, with the peer's keys, whether
	 * the session may go on (rct_ucx_rkey_unpack()). */
	if (status == RCT_OK) {
		u->rma = rct_ucx_ep_rma(u->lanes[0], u->tls, sizeof(u->tls));
		rct_info("ucx: data lanes over %s (%s)", u->tls[0] ? u->tls : "unknown transports",
			 u->rma ? "puts done by the transport"
				: "no RMA lane: puts would be emulated");
		if (rct_log_level_cur >= RCT_LOG_DEBUG)
			ucp_ep_print_info(u->lanes[0], stderr);
	}
out:
	free(waddr);
	return status;
}

rct_status_t rct_ucx_open_lanes(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	uint64_t deadline = rct_now_ns() + (uint64_t)timeout_ms * 1000000;

	if (!u->ctrl_ep || u->lanes_open)
		return RCT_ERR_STATE;
	u->lanes_open = true;
	return u->receiver ? rct_ucx_offer_address(u, deadline) : rct_ucx_lanes_create(u, deadline);
}
