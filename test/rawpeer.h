/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hostile or hand-driven peer for tests: speaks the TCP backend's lane and
 * frame format over raw sockets, so that it can send what no rct peer would
 * (truncated, oversized, out-of-range).  Every function returns 0 or -errno.
 */
#ifndef RCT_TEST_RAWPEER_H
#define RCT_TEST_RAWPEER_H

#include <stddef.h>
#include <stdint.h>

#include "core/proto.h"

/* TCP connection to @addr (IPv4):@port, or -errno. */
int rawpeer_connect(const char *addr, uint16_t port);
/* The lane hello that opens lane @lane (0: control) of @nlanes. */
int rawpeer_lane_hello(int fd, unsigned lane, unsigned nlanes);
/* Send @len bytes, all of them. */
int rawpeer_send(int fd, const void *buf, size_t len);
/* One control frame carrying message @m. */
int rawpeer_send_msg(int fd, const struct rct_msg *m);
/* Read exactly @len bytes, waiting at most @timeout_ms for each part. */
int rawpeer_read(int fd, void *buf, size_t len, int timeout_ms);
/* Receive and decode one control message (@buf: RCT_MSG_MAX bytes). */
int rawpeer_recv_msg(int fd, struct rct_msg *m, uint8_t *buf, int timeout_ms);
/* A PUT header with one run (@offset, @length) aimed at key @key_id/@key_tag. */
int rawpeer_send_put(int fd, uint32_t key_id, uint32_t key_tag, uint64_t offset, uint64_t length);

#endif
