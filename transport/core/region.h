/* SPDX-License-Identifier: BSD-3-Clause */
/* region.c: the guest regions of a session. */
#ifndef RCT_REGION_H
#define RCT_REGION_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

/* Find a region by id, or NULL. */
struct rct_region *rct_session_region(struct rct_session *s, uint32_t id);

/* Unmap, drop the key and free @r (teardown). */
void rct_region_free(struct rct_session *s, struct rct_region *r);

#endif /* RCT_REGION_H */
