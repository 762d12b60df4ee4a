/* SPDX-License-Identifier: BSD-3-Clause */
/* UCX backend: the control lane (tagged sends and the one posted receive). */
#include "ucx.h"

/* A control message in flight: it must outlive the call if UCX queues it. */
struct rct_ucx_send {
	struct rct_ucx_ctx *u;
	uint8_t data[];
};

static void rct_ucx_send_done(void *req, ucs_status_t st, void *arg)
{
	struct rct_ucx_send *s = arg;

	s->u->sends--;
	if (st != UCS_OK) {
		rct_error("ucx: control send failed: %s", ucs_status_string(st));
		rct_be_fail(&s->u->super, rct_ucx_status(st));
	}
	free(s);
	ucp_request_free(req);
}

rct_status_t rct_ucx_ctrl_send(struct rct_be_ctx *ctx, const void *buf, size_t len)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
		.cb.send = rct_ucx_send_done,
	};
	struct rct_ucx_send *s;
	void *req;

	if (u->super.failed != RCT_OK)
		return u->super.failed;
	if (!u->ctrl_ep)
		return RCT_ERR_STATE;
	s = malloc(sizeof(*s) + len);
	if (!s)
		return RCT_ERR_NO_MEMORY;
	s->u = u;
	memcpy(s->data, buf, len);
	p.user_data = s;
	req = ucp_tag_send_nbx(u->ctrl_ep, s->data, len, rct_ucx_tag(u, RCT_UCX_TAG_CTRL), &p);
	if (req == NULL) {
		free(s);
		return RCT_OK;
	}
	if (UCS_PTR_IS_ERR(req)) {
		free(s);
		rct_error("ucx: control send: %s", ucs_status_string(UCS_PTR_STATUS(req)));
		return rct_be_fail(&u->super, rct_ucx_status(UCS_PTR_STATUS(req)));
	}
	u->sends++;
	return RCT_OK;
}

static void rct_ucx_recv_done(void *req, ucs_status_t st, const ucp_tag_recv_info_t *info,
			      void *arg)
{
	struct rct_ucx_ctx *u = arg;

	(void)req;
	u->rx_done = true;
	u->rx_status = st;
	u->rx_len = st == UCS_OK ? info->length : 0;
}

rct_status_t rct_ucx_ctrl_recv(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p)
{
	struct rct_ucx_ctx *u = rct_ucx(ctx);
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FLAG_NO_IMM_CMPL,
		.cb.recv = rct_ucx_recv_done,
		.user_data = u,
	};

	if (!u->ctrl_ep)
		return RCT_ERR_STATE;
	if (u->rx_handed) { /* the previous message was consumed: receive the next */
		ucp_request_free(u->rx_req);
		u->rx_req = NULL;
		u->rx_handed = false;
		u->rx_done = false;
	}
	if (!u->rx_req) {
		u->rx_req = ucp_tag_recv_nbx(u->worker, u->rx_buf, u->super.params.ctrl_max,
					     rct_ucx_tag(u, RCT_UCX_TAG_CTRL), RCT_UCX_TAG_MASK,
					     &p);
		if (UCS_PTR_IS_ERR(u->rx_req)) {
			ucs_status_t st = UCS_PTR_STATUS(u->rx_req);

			u->rx_req = NULL;
			rct_error("ucx: control receive: %s", ucs_status_string(st));
			return rct_be_fail(&u->super, rct_ucx_status(st));
		}
		rct_ucx_drain(u);
	}
	if (!u->rx_done)
		return u->super.failed != RCT_OK ? u->super.failed : RCT_ERR_AGAIN;
	if (u->rx_status != UCS_OK) {
		rct_error("ucx: control receive: %s", ucs_status_string(u->rx_status));
		return rct_be_fail(&u->super, rct_ucx_status(u->rx_status));
	}
	u->rx_handed = true;
	*buf_p = u->rx_buf;
	*len_p = u->rx_len;
	return RCT_OK;
}
