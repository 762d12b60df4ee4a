/* SPDX-License-Identifier: BSD-3-Clause */
/* auth.c: the pre-shared-key proof of the pairing, and the keys derived from it. */
#ifndef RCT_AUTH_H
#define RCT_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

rct_status_t rct_auth_init(void);
rct_status_t rct_auth_bind_hello(struct rct_session *s, const struct rct_msg *hello);
rct_status_t rct_auth_primary(struct rct_session *s, uint64_t deadline);
rct_status_t rct_auth_secondary(struct rct_session *s, uint64_t deadline);
/* Derive the key AUTH proves for pairing @id with pairing key @key (or NULL). */
void rct_auth_pairing_key(const struct rct_session *s, const char *id, const uint8_t *key,
			  uint8_t out[RCT_PSK_LEN]);
/* The liveness channel's MAC keys of this session (after the AUTH exchange). */
void rct_auth_live_keys(const struct rct_session *s, uint8_t *tx_key, uint8_t *rx_key);

#endif /* RCT_AUTH_H */
