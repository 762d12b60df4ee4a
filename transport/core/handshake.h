/* SPDX-License-Identifier: BSD-3-Clause */
/* handshake.c: what the rest of the core uses of the handshake. */
#ifndef RCT_HANDSHAKE_H
#define RCT_HANDSHAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

/* Wait (until @deadline_ns) for the next control message during the handshake; it must be
 * of @type (ERROR and GOODBYE end the session). */
rct_status_t rct_session_wait_msg(struct rct_session *s, uint64_t deadline_ns, unsigned type,
				  struct rct_msg *msg_p);

#endif /* RCT_HANDSHAKE_H */
