/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the socket API's payload codec alone (daemon/ipc/payload.c).
 * Input: byte 0 the message type, byte 1 the direction (bit 7: reply) and the
 * descriptor count (bits 0-1), then the payload.  A request the decoder
 * accepts must encode back to the very same bytes (the two halves of the
 * codec cannot disagree on a layout); a reply, whose reserved fields are
 * ignored, to bytes that differ only there: they decode and encode to
 * themselves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[RCT_IPC_MAX_PAYLOAD], again[RCT_IPC_MAX_PAYLOAD];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum ipc_dir dir;
	union ipc_body b;
	char what[200];
	unsigned nfds;
	int len;

	if (size < 2 || size - 2 > RCT_IPC_MAX_PAYLOAD)
		return 0;
	dir = data[1] & 0x80 ? IPC_REPLY : IPC_REQUEST;
	nfds = data[1] & 3;
	if (ipc_decode(data[0], dir, data + 2, size - 2, nfds, &b, what, sizeof(what))) {
		if (!what[0] || !memchr(what, '\0', sizeof(what)))
			abort(); /* a refusal always says why */
		return 0;
	}
	len = ipc_encode(data[0], dir, &b, out, sizeof(out));
	if (len < 0 || (size_t)len != size - 2)
		abort(); /* accepted bytes that do not re-encode at all, or to another size */
	if (dir == IPC_REQUEST) {
		if (memcmp(out, data + 2, size - 2))
			abort(); /* an accepted request that does not re-encode to itself */
		return 0;
	}
	if (ipc_decode(data[0], dir, out, (size_t)len, nfds, &b, what, sizeof(what)) ||
	    ipc_encode(data[0], dir, &b, again, sizeof(again)) != len ||
	    memcmp(again, out, (size_t)len))
		abort(); /* a reply's encoding that is not a fixed point */
	return 0;
}
