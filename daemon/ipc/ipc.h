/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket API codec (include/rct/rct_ipc.h), shared by rctd and
 * librct-client: framing with descriptor passing, header validation and the
 * host form of a message.  The payloads' codec is payload.h.
 */
#ifndef RCT_IPC_CODEC_H
#define RCT_IPC_CODEC_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rct/rct_types.h>
#include <rct/rct_ipc.h>

/* A message in host form.  Descriptors received are owned by the message. */
struct ipc_msg {
	uint16_t type;
	uint16_t flags;
	uint64_t request_id;
	int32_t status;
	int32_t detail;
	uint32_t length; /* payload bytes (in the caller's buffer) */
	unsigned nfds;
	int fds[RCT_IPC_MAX_FDS];
};

/*
 * Send header @m and @len payload bytes, with m->nfds descriptors from m->fds.
 * Returns 0 or -errno (-EPIPE when the peer is gone; SIGPIPE is never raised).
 */
int ipc_send(int sock, const struct ipc_msg *m, const void *payload, size_t len);

/*
 * Receive one whole message into @m and @buf (@cap bytes, at least the
 * largest payload the caller accepts).  Returns 0; -ESHUTDOWN when the peer
 * closed between messages; -EBADMSG for a malformed header or a message cut
 * short (text in @what); -EMSGSIZE when the payload exceeds @cap; or -errno
 * (-EAGAIN when SO_RCVTIMEO expired inside a message); -EMFILE when the
 * message arrived whole but this process had no room for its descriptors
 * (its own shortage: the stream is still in step).  On failure no
 * descriptor is left open.
 */
int ipc_recv(int sock, struct ipc_msg *m, void *buf, size_t cap, char *what, size_t what_len);
/* The same, with the whole message due within @whole_ms of its first byte
 * (-1: no deadline): -ETIMEDOUT past it, whatever the pace of the bytes. */
int ipc_recv_within(int sock, struct ipc_msg *m, void *buf, size_t cap, int whole_ms, char *what,
		    size_t what_len);

/* Close the descriptors a message carries and forget them. */
void ipc_msg_close_fds(struct ipc_msg *m);

/* Name of an ipc message type ("unknown" when out of range). */
const char *ipc_type_str(unsigned type);

/* Copy @src into fixed field @dst of @len bytes; -ENAMETOOLONG when it does not fit. */
static inline int ipc_str_put(char *dst, size_t len, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= len)
		return -ENAMETOOLONG;
	memset(dst, 0, len);
	if (n)
		memcpy(dst, src, n);
	return 0;
}

/* -errno for an rct_status_t (0 for RCT_OK). */
int ipc_errno_of(rct_status_t status);

#endif /* RCT_IPC_CODEC_H */
