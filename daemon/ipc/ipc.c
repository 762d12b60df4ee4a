/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket API codec: see ipc.h and docs/ipc.md. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"

static const char *const ipc_type_names[] = {
	[RCT_IPC_HELLO] = "HELLO",
	[RCT_IPC_SESSION_OPEN] = "SESSION_OPEN",
	[RCT_IPC_SESSION_PAIRING] = "SESSION_PAIRING",
	[RCT_IPC_CKPT_REFUSE] = "CKPT_REFUSE",
	[RCT_IPC_SESSION_CLOSE] = "SESSION_CLOSE",
	[RCT_IPC_REGION_ADD] = "REGION_ADD",
	[RCT_IPC_REGION_REMOVE] = "REGION_REMOVE",
	[RCT_IPC_LISTEN] = "LISTEN",
	[RCT_IPC_ACCEPT] = "ACCEPT",
	[RCT_IPC_CONNECT] = "CONNECT",
	[RCT_IPC_CKPT_BEGIN] = "CKPT_BEGIN",
	[RCT_IPC_CKPT_DIRTY] = "CKPT_DIRTY",
	[RCT_IPC_CKPT_STREAM] = "CKPT_STREAM",
	[RCT_IPC_CKPT_DEVSTATE] = "CKPT_DEVSTATE",
	[RCT_IPC_CKPT_COMMIT] = "CKPT_COMMIT",
	[RCT_IPC_CKPT_FLUSH] = "CKPT_FLUSH",
	[RCT_IPC_DEVSTATE_GET] = "DEVSTATE_GET",
	[RCT_IPC_EVENT] = "EVENT",
	[RCT_IPC_STATUS] = "STATUS",
	[RCT_IPC_SESSIONS] = "SESSIONS",
	[RCT_IPC_STATS] = "STATS",
	[RCT_IPC_PAIRING_CTL] = "PAIRING_CTL",
};

const char *ipc_type_str(unsigned type)
{
	if (type == 0 || type > RCT_IPC_TYPE_MAX)
		return "unknown";
	return ipc_type_names[type];
}

int ipc_errno_of(rct_status_t status)
{
	switch (status) {
	case RCT_OK:
		return 0;
	case RCT_ERR_INVALID_PARAM:
		return -EINVAL;
	case RCT_ERR_STATE:
		return -EBUSY;
	case RCT_ERR_AGAIN:
		return -EAGAIN;
	case RCT_ERR_TIMED_OUT:
		return -ETIMEDOUT;
	case RCT_ERR_NO_SPACE:
		return -ENOSPC;
	case RCT_ERR_NOT_FOUND:
		return -ENOENT;
	case RCT_ERR_UNSUPPORTED:
		return -EOPNOTSUPP;
	case RCT_ERR_EXISTS:
		return -EEXIST;
	case RCT_ERR_ADDR_IN_USE:
		return -EADDRINUSE;
	case RCT_ERR_REFUSED:
		return -ECONNREFUSED;
	case RCT_ERR_PEER_LOST:
		return -ECONNRESET;
	case RCT_ERR_PROTO:
		return -EPROTO;
	case RCT_ERR_VERSION:
		return -EPROTONOSUPPORT;
	case RCT_ERR_ABORTED:
		return -ECANCELED;
	case RCT_ERR_MISMATCH:
		return -EBADE;
	case RCT_ERR_AUTH:
		return -EKEYREJECTED;
	case RCT_ERR_OUTCOME_UNKNOWN:
		return -EINPROGRESS;
	case RCT_ERR_NO_MEMORY:
		return -ENOMEM;
	case RCT_ERR_NO_DEVICE:
		return -ENODEV;
	case RCT_ERR_IO:
	case RCT_ERR_SYSTEM:
	default:
		return -EIO;
	}
}

void ipc_msg_close_fds(struct ipc_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int ipc_send(int sock, const struct ipc_msg *m, const void *payload, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * RCT_IPC_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct rct_ipc_hdr h = {
		.magic = htole32(RCT_IPC_MAGIC),
		.version = htole16(RCT_IPC_VERSION),
		.type = htole16(m->type),
		.length = htole32((uint32_t)len),
		.flags = htole16(m->flags),
		.nfds = (__u8)m->nfds,
		.request_id = htole64(m->request_id),
		.status = htole32((uint32_t)m->status),
		.detail = htole32((uint32_t)m->detail),
	};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)payload, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	size_t left = sizeof(h) + len;
	ssize_t n;

	if (len > RCT_IPC_MAX_PAYLOAD || m->nfds > RCT_IPC_MAX_FDS)
		return -EINVAL;
	if (m->nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
		memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->nfds);
	}
	while (left) {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		left -= (size_t)n;
		/* The descriptors went with the first byte; advance past what was sent. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			size_t step = (size_t)n < mh.msg_iov->iov_len ? (size_t)n
								      : mh.msg_iov->iov_len;

			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

/* Whether this process is out of descriptors: the kernel then drops what
 * SCM_RIGHTS carried and says MSG_CTRUNC, as for a message too long. */
static bool ipc_out_of_fds(int sock)
{
	int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EMFILE || errno == ENFILE;
}

/* Take the SCM_RIGHTS descriptors of @mh into @fds (up to *nfds_p already
 * there); -EMFILE when some were lost to this side's own shortage. */
static int ipc_take_fds(int sock, struct msghdr *mh, int *fds, unsigned *nfds_p)
{
	int rc = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int got[16];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > 16)
			n = 16;
		memcpy(got, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (*nfds_p < RCT_IPC_MAX_FDS)
				fds[(*nfds_p)++] = got[i];
			else {
				close(got[i]);
				rc = -EBADMSG;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		rc = ipc_out_of_fds(sock) ? -EMFILE : -EBADMSG;
	return rc;
}

/* Read exactly @len bytes; descriptors arriving meanwhile go to @m. */
/* The whole-message deadline: set at the first byte, checked before every read. */
struct ipc_deadline {
	int whole_ms; /* -1: none */
	struct timespec end;
	bool armed;
};

static int ipc_deadline_wait(int sock, struct ipc_deadline *dl)
{
	struct timespec now;
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	long ms;

	if (!dl->armed)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (dl->end.tv_sec - now.tv_sec) * 1000 + (dl->end.tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0 || poll(&pfd, 1, (int)ms) == 0)
		return -ETIMEDOUT;
	return 0;
}

static void ipc_deadline_arm(struct ipc_deadline *dl)
{
	if (dl->armed || dl->whole_ms < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &dl->end);
	dl->end.tv_sec += dl->whole_ms / 1000;
	dl->end.tv_nsec += (long)(dl->whole_ms % 1000) * 1000000;
	if (dl->end.tv_nsec >= 1000000000) {
		dl->end.tv_sec++;
		dl->end.tv_nsec -= 1000000000;
	}
	dl->armed = true;
}

static int ipc_read_full(int sock, void *buf, size_t len, struct ipc_msg *m, int *fd_rc,
			 struct ipc_deadline *dl)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * RCT_IPC_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	size_t got = 0;

	while (got < len) {
		struct iovec iov = {(char *)buf + got, len - got};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n;
		int rc = ipc_deadline_wait(sock, dl);

		if (rc)
			return rc;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		rc = ipc_take_fds(sock, &mh, m->fds, &m->nfds);
		if (rc && *fd_rc != -EMFILE)
			*fd_rc = rc;
		if (n == 0)
			return got ? -EBADMSG : -ESHUTDOWN;
		got += (size_t)n;
		ipc_deadline_arm(dl);
	}
	return 0;
}

int ipc_recv(int sock, struct ipc_msg *m, void *buf, size_t cap, char *what, size_t what_len)
{
	return ipc_recv_within(sock, m, buf, cap, -1, what, what_len);
}

int ipc_recv_within(int sock, struct ipc_msg *m, void *buf, size_t cap, int whole_ms, char *what,
		    size_t what_len)
{
	struct ipc_deadline dl = {.whole_ms = whole_ms};
	struct rct_ipc_hdr h;
	int fd_rc = 0, rc;

	memset(m, 0, sizeof(*m));
	what[0] = '\0';
	rc = ipc_read_full(sock, &h, sizeof(h), m, &fd_rc, &dl);
	if (rc) {
		if (rc == -EBADMSG)
			snprintf(what, what_len, "message cut short inside its header");
		if (rc == -ETIMEDOUT)
			snprintf(what, what_len,
				 "message not whole within %d ms of its first byte (header)",
				 whole_ms);
		goto fail;
	}
	m->type = le16toh(h.type);
	m->flags = le16toh(h.flags);
	m->request_id = le64toh(h.request_id);
	m->status = (int32_t)le32toh(h.status);
	m->detail = (int32_t)le32toh(h.detail);
	m->length = le32toh(h.length);
	rc = -EBADMSG;
	if (le32toh(h.magic) != RCT_IPC_MAGIC) {
		snprintf(what, what_len, "bad magic 0x%08x", le32toh(h.magic));
		goto fail;
	}
	if (le16toh(h.version) != RCT_IPC_VERSION) {
		snprintf(what, what_len, "unsupported header version %u (this side speaks %u)",
			 le16toh(h.version), RCT_IPC_VERSION);
		rc = -EPROTONOSUPPORT;
		goto fail;
	}
	if (h.reserved || h.nfds > RCT_IPC_MAX_FDS) {
		snprintf(what, what_len, "reserved byte %u or descriptor count %u out of range",
			 h.reserved, h.nfds);
		goto fail;
	}
	if (m->length > RCT_IPC_MAX_PAYLOAD || m->length > cap) {
		snprintf(what, what_len, "%s payload of %u bytes exceeds the limit of %zu",
			 ipc_type_str(m->type), m->length,
			 cap < RCT_IPC_MAX_PAYLOAD ? cap : (size_t)RCT_IPC_MAX_PAYLOAD);
		rc = -EMSGSIZE;
		goto fail;
	}
	if (m->length) {
		rc = ipc_read_full(sock, buf, m->length, m, &fd_rc, &dl);
		if (rc) {
			if (rc == -EBADMSG || rc == -ESHUTDOWN) {
				snprintf(what, what_len, "%s cut short inside its %u-byte payload",
					 ipc_type_str(m->type), m->length);
				rc = -EBADMSG;
			}
			if (rc == -ETIMEDOUT)
				snprintf(what, what_len,
					 "%s not whole within %d ms of its first byte (%u-byte "
					 "payload)",
					 ipc_type_str(m->type), whole_ms, m->length);
			goto fail;
		}
	}
	if (fd_rc == -EMFILE) {
		snprintf(what, what_len,
			 "this process is out of descriptors (RLIMIT_NOFILE): %s's %u "
			 "descriptors were dropped on arrival (%u kept)",
			 ipc_type_str(m->type), h.nfds, m->nfds);
		rc = -EMFILE;
		goto fail;
	}
	if (fd_rc || m->nfds != h.nfds) {
		snprintf(what, what_len, "%s announced %u descriptors, %u arrived",
			 ipc_type_str(m->type), h.nfds, m->nfds);
		rc = -EBADMSG;
		goto fail;
	}
	return 0;
fail:
	if (rc == -EAGAIN && !what[0])
		snprintf(what, what_len, "timed out inside a message");
	ipc_msg_close_fds(m);
	return rc;
}
