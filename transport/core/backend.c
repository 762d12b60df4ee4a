/* SPDX-License-Identifier: BSD-3-Clause */
/* The backends built into this library, chosen at run time by name. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "backend.h"
#include "log.h"
#include "util.h"

static const struct rct_backend_ops *const rct_backends[] = {
#ifdef RCT_WITH_VERBS
	&rct_verbs_ops,
#endif
#ifdef RCT_WITH_UCX
	&rct_ucx_ops,
#endif
	&rct_tcp_ops,
};

const struct rct_backend_ops *rct_backend_find(const char *name)
{
	for (size_t i = 0; i < RCT_ARRAY_SIZE(rct_backends); i++)
		if (!strcmp(rct_backends[i]->name, name))
			return rct_backends[i];
	return NULL;
}

int rct_backend_available(const char *name)
{
	return name && rct_backend_find(name) != NULL;
}

int rct_backend_source_read_only(const char *name)
{
	const struct rct_backend_ops *ops = name ? rct_backend_find(name) : NULL;

	return ops ? ops->source_read_only : -1;
}

const char *rct_backend_names(void)
{
	return ""
#ifdef RCT_WITH_VERBS
	       "verbs, "
#endif
#ifdef RCT_WITH_UCX
	       "ucx, "
#endif
	       "tcp";
}

rct_status_t rct_runs_check(const struct rct_run *runs, size_t n, uint64_t lsize, uint64_t rsize,
			    const char *who, unsigned lane)
{
	for (size_t i = 0; i < n; i++) {
		const struct rct_run *r = &runs[i];

		if (r->len && r->loff < lsize && r->len <= lsize - r->loff && r->roff < rsize &&
		    r->len <= rsize - r->roff)
			continue;
		rct_error("%s: lane %u: run %llu+%llu (local offset %llu) outside the local "
			  "(%llu) or remote (%llu) memory",
			  who, lane, (unsigned long long)r->roff, (unsigned long long)r->len,
			  (unsigned long long)r->loff, (unsigned long long)lsize,
			  (unsigned long long)rsize);
		return RCT_ERR_INVALID_PARAM;
	}
	return RCT_OK;
}

rct_status_t rct_sockaddr_resolve(const char *who, const char *addr, uint16_t port, bool passive,
				  struct sockaddr_storage *ss, unsigned *len_p)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
	struct addrinfo *res;
	char service[8];
	int rc;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(addr, service, &hints, &res);
	if (rc) {
		rct_error("%s: cannot resolve %s:%u: %s", who, addr, port, gai_strerror(rc));
		return RCT_ERR_INVALID_PARAM;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len_p = res->ai_addrlen;
	freeaddrinfo(res);
	return RCT_OK;
}
