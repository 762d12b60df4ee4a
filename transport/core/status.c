/* SPDX-License-Identifier: BSD-3-Clause */
#include <rct/rct.h>

const char *rct_status_str(rct_status_t status)
{
	switch (status) {
	case RCT_OK:
		return "success";
	case RCT_ERR_INVALID_PARAM:
		return "invalid parameter";
	case RCT_ERR_STATE:
		return "operation not valid in this state";
	case RCT_ERR_AGAIN:
		return "nothing available now";
	case RCT_ERR_TIMED_OUT:
		return "timed out";
	case RCT_ERR_NO_SPACE:
		return "no space";
	case RCT_ERR_NOT_FOUND:
		return "not found";
	case RCT_ERR_UNSUPPORTED:
		return "not supported";
	case RCT_ERR_EXISTS:
		return "already exists";
	case RCT_ERR_ADDR_IN_USE:
		return "address already in use";
	case RCT_ERR_REFUSED:
		return "connection refused (nothing listens there, or the secondary has its "
		       "primary)";
	case RCT_ERR_PEER_LOST:
		return "peer lost";
	case RCT_ERR_PROTO:
		return "protocol error";
	case RCT_ERR_VERSION:
		return "unsupported protocol version";
	case RCT_ERR_IO:
		return "lane I/O error";
	case RCT_ERR_ABORTED:
		return "checkpoint aborted";
	case RCT_ERR_MISMATCH:
		return "peers disagree on regions or parameters";
	case RCT_ERR_AUTH:
		return "peer authentication failed";
	case RCT_ERR_OUTCOME_UNKNOWN:
		return "commit sent, outcome unknown";
	case RCT_ERR_NO_MEMORY:
		return "out of memory or registration failed";
	case RCT_ERR_NO_DEVICE:
		return "no usable device";
	case RCT_ERR_SYSTEM:
		return "system call failed";
	}
	return "unknown status";
}
