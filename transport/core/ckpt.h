/* SPDX-License-Identifier: BSD-3-Clause */
/* ckpt_primary.c and ckpt_secondary.c: the checkpoint engine's message handlers. */
#ifndef RCT_CKPT_H
#define RCT_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

/* Role-specific message handlers (after the handshake). */
rct_status_t rct_primary_dispatch(struct rct_session *s, const struct rct_msg *msg);
rct_status_t rct_secondary_dispatch(struct rct_session *s, const struct rct_msg *msg);
/* Secondary: complete a committed checkpoint whose fence has passed. */
rct_status_t rct_secondary_try_complete(struct rct_session *s);
/* Stop and join the thread that maps guest RAM after a base sync (destroy). */
void rct_secondary_prefault_stop(struct rct_session *s);

/* The staging slot the next device state goes into: never the committed one. */
static inline unsigned rct_devstate_next_slot(const struct rct_session *s)
{
	return s->devstate_slot == 0 ? 1 : 0;
}

#endif /* RCT_CKPT_H */
