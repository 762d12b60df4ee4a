/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the peer control-protocol decoder (transport/core/proto.c).
 * Properties checked on every input, beyond "no crash, no sanitizer report":
 *   - a message the decoder accepts encodes back to exactly the same bytes
 *     (nothing is accepted that the encoder could not have produced: no
 *     ignored reserved field, no slack);
 *   - a BITMAP's words, checked against a region size, are all readable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[RCT_MSG_MAX];
	struct rct_msg m;
	const char *why = NULL;
	size_t len = 0;
	uint64_t sum = 0;

	if (rct_msg_decode(data, size, &m, &why) != RCT_OK) {
		if (!why)
			abort(); /* every rejection names its reason */
		return 0;
	}
	if (rct_msg_encode(&m, out, sizeof(out), &len) != RCT_OK || len != size ||
	    memcmp(out, data, size))
		abort();
	if ((m.type == RCT_MSG_BITMAP || m.type == RCT_MSG_ZEROS) &&
	    rct_msg_bitmap_check(&m, 1u << 20, &why) == RCT_OK) {
		struct rct_bitmap_cursor c = {0};
		uint64_t w, v;

		while (rct_msg_bitmap_next(&m, &c, &w, &v))
			sum += w ^ v;
		if (sum == 0x5eed) /* keep the reads */
			return 0;
	}
	return 0;
}
