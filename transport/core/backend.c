/* SPDX-License-Identifier: BSD-3-Clause */
/* The backends built into this library, chosen at run time by name. */
#include <string.h>

#include "backend.h"
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
