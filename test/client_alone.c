/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hypervisor's client as the socket API means it: rct/rct_client.h alone,
 * linked with librct-client alone.  It declares two of librct's own names
 * (rct/rct.h) itself, so this file stops compiling if rct_client.h pulls the
 * transport's header in again; ctest client_needs_only_libc runs it and
 * checks what the library needs at run time.
 */
#include <rct/rct_client.h>
#include <stdio.h>

struct rct_session_params { /* rct/rct.h's, were it included */
	int mine;
};

static int rct_session_create(void)
{
	return 7;
}

int main(void)
{
	struct rct_session_params p = {rct_session_create()};
	struct rct_client *c = NULL;
	int rc = rct_client_open("/nonexistent/rctd.sock", "client-alone", &c);

	printf("client-alone: rct_status_is_fatal(RCT_ERR_PEER_LOST) %d, open of a missing "
	       "socket %d, own struct %d\n",
	       rct_status_is_fatal(RCT_ERR_PEER_LOST), rc, p.mine);
	return rc < 0 && !c && p.mine == 7 ? 0 : 1;
}
