/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/proto.h"
#include "core/util.h"
#include "mock_backend.h"

#define MOCK_PORTS 64

struct mock_mem {
	struct rct_be_mem super;
	unsigned access;
	int owned;
};

struct mock_rkey {
	struct rct_be_rkey super;
	void *addr;
};

struct mock_ctx {
	struct rct_be_ctx super;
	int ctrl_fd;
	int port;
	unsigned lanes;
	int fault_lane;
	long fault_after;
	/* Deferred completion: puts and fences complete one per progress() call,
	 * as an RDMA NIC's completions trickle in. */
	bool deferred;
	size_t pending;
	uint8_t rx[RCT_MSG_MAX];
};

static pthread_mutex_t mock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mock_cond = PTHREAD_COND_INITIALIZER;
static struct {
	int used;
	int fds[2]; /* [0] secondary's end, [1] primary's end */
	int connected;
	unsigned lanes;
} mock_ports[MOCK_PORTS];
static int mock_next_fault_lane = -1;
static long mock_next_fault_after;
static bool mock_next_deferred;
static long mock_commit_pending = -1;
static unsigned long mock_fences;
static unsigned long mock_fences_at_commit;
static unsigned long mock_placed;

void mock_fault_lane(int lane, long after_runs)
{
	pthread_mutex_lock(&mock_lock);
	mock_next_fault_lane = lane;
	mock_next_fault_after = after_runs;
	pthread_mutex_unlock(&mock_lock);
}

void mock_deferred_completion(bool on)
{
	pthread_mutex_lock(&mock_lock);
	mock_next_deferred = on;
	mock_commit_pending = -1;
	pthread_mutex_unlock(&mock_lock);
}

long mock_pending_at_commit(unsigned long *fences_p)
{
	long n;

	pthread_mutex_lock(&mock_lock);
	n = mock_commit_pending;
	*fences_p = mock_fences_at_commit;
	pthread_mutex_unlock(&mock_lock);
	return n;
}

unsigned long mock_runs_placed(void)
{
	unsigned long n;

	pthread_mutex_lock(&mock_lock);
	n = mock_placed;
	pthread_mutex_unlock(&mock_lock);
	return n;
}

static struct mock_ctx *mock(struct rct_be_ctx *ctx)
{
	return rct_container_of(ctx, struct mock_ctx, super);
}

static rct_status_t mock_ctx_create(const struct rct_be_params *params, struct rct_be_ctx **ctx_p)
{
	struct mock_ctx *m = calloc(1, sizeof(*m));

	if (!m)
		return RCT_ERR_NO_MEMORY;
	m->super.ops = &mock_ops;
	m->super.params = *params;
	m->ctrl_fd = -1;
	m->port = -1;
	pthread_mutex_lock(&mock_lock);
	m->fault_lane = mock_next_fault_lane;
	m->fault_after = mock_next_fault_after;
	m->deferred = mock_next_deferred;
	pthread_mutex_unlock(&mock_lock);
	*ctx_p = &m->super;
	return RCT_OK;
}

static void mock_disconnect(struct rct_be_ctx *ctx)
{
	struct mock_ctx *m = mock(ctx);

	if (m->ctrl_fd >= 0)
		close(m->ctrl_fd);
	m->ctrl_fd = -1;
}

static void mock_ctx_destroy(struct rct_be_ctx *ctx)
{
	struct mock_ctx *m = mock(ctx);

	mock_disconnect(ctx);
	if (m->port >= 0) {
		pthread_mutex_lock(&mock_lock);
		if (!mock_ports[m->port].connected && mock_ports[m->port].fds[1] >= 0)
			close(mock_ports[m->port].fds[1]);
		mock_ports[m->port].used = 0;
		pthread_mutex_unlock(&mock_lock);
	}
	free(m);
}

static rct_status_t mock_listen(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
				uint16_t *port_p)
{
	struct mock_ctx *m = mock(ctx);
	int p;

	(void)addr;
	(void)port;
	pthread_mutex_lock(&mock_lock);
	for (p = 1; p < MOCK_PORTS && mock_ports[p].used; p++)
		;
	if (p == MOCK_PORTS) {
		pthread_mutex_unlock(&mock_lock);
		return RCT_ERR_NO_SPACE;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       mock_ports[p].fds)) {
		pthread_mutex_unlock(&mock_lock);
		return RCT_ERR_SYSTEM;
	}
	mock_ports[p].used = 1;
	mock_ports[p].connected = 0;
	m->port = p;
	m->ctrl_fd = mock_ports[p].fds[0];
	pthread_mutex_unlock(&mock_lock);
	*port_p = (uint16_t)p;
	return RCT_OK;
}

static rct_status_t mock_accept(struct rct_be_ctx *ctx, int wait_ms, int timeout_ms,
				unsigned *lanes_p)
{
	struct mock_ctx *m = mock(ctx);
	int ms = RCT_MIN(wait_ms, timeout_ms);
	uint64_t deadline = rct_now_ns() + (uint64_t)ms * 1000000;
	struct timespec ts;
	rct_status_t status = RCT_OK;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000 + 1;
	pthread_mutex_lock(&mock_lock);
	while (!mock_ports[m->port].connected && rct_now_ns() < deadline)
		pthread_cond_timedwait(&mock_cond, &mock_lock, &ts);
	if (mock_ports[m->port].connected)
		m->lanes = mock_ports[m->port].lanes;
	else
		status = RCT_ERR_AGAIN;
	pthread_mutex_unlock(&mock_lock);
	if (status == RCT_OK)
		*lanes_p = m->lanes;
	return status;
}

/* A fresh pair of ends for the next primary; the turned-away one keeps its own. */
static void mock_reject(struct rct_be_ctx *ctx)
{
	struct mock_ctx *m = mock(ctx);

	pthread_mutex_lock(&mock_lock);
	close(m->ctrl_fd);
	m->ctrl_fd = -1;
	if (!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
			mock_ports[m->port].fds))
		m->ctrl_fd = mock_ports[m->port].fds[0];
	mock_ports[m->port].connected = 0;
	m->lanes = 0;
	m->super.failed = RCT_OK;
	pthread_mutex_unlock(&mock_lock);
}

/* Puts are stores through the rkey's address: there are no lanes to open. */
static rct_status_t mock_open_lanes(struct rct_be_ctx *ctx, int timeout_ms)
{
	(void)timeout_ms;
	return mock(ctx)->ctrl_fd >= 0 ? RCT_OK : RCT_ERR_STATE;
}

static rct_status_t mock_connect(struct rct_be_ctx *ctx, const char *addr, uint16_t port,
				 unsigned lanes, int timeout_ms)
{
	struct mock_ctx *m = mock(ctx);

	(void)addr;
	(void)timeout_ms;
	pthread_mutex_lock(&mock_lock);
	if (port >= MOCK_PORTS || !mock_ports[port].used || mock_ports[port].connected) {
		pthread_mutex_unlock(&mock_lock);
		return RCT_ERR_PEER_LOST;
	}
	mock_ports[port].connected = 1;
	mock_ports[port].lanes = lanes;
	m->ctrl_fd = mock_ports[port].fds[1];
	m->lanes = lanes;
	pthread_cond_broadcast(&mock_cond);
	pthread_mutex_unlock(&mock_lock);
	return RCT_OK;
}

static rct_status_t mock_mem_map(struct rct_be_ctx *ctx, void *addr, size_t len, unsigned access,
				 struct rct_be_mem **mem_p)
{
	struct mock_mem *mm = calloc(1, sizeof(*mm));

	(void)ctx;
	if (!mm)
		return RCT_ERR_NO_MEMORY;
	if (!addr) {
		addr = rct_mem_alloc(len);
		if (!addr) {
			free(mm);
			return RCT_ERR_NO_MEMORY;
		}
		mm->owned = 1;
	}
	mm->super.addr = addr;
	mm->super.len = len;
	mm->access = access;
	*mem_p = &mm->super;
	return RCT_OK;
}

static void mock_mem_unmap(struct rct_be_ctx *ctx, struct rct_be_mem *mem)
{
	struct mock_mem *mm = rct_container_of(mem, struct mock_mem, super);

	(void)ctx;
	if (mm->owned)
		rct_mem_free(mem->addr, mem->len);
	free(mm);
}

static rct_status_t mock_mem_pack(struct rct_be_ctx *ctx, struct rct_be_mem *mem, void *buf,
				  size_t cap, size_t *len_p)
{
	struct mock_rkey k = {.super.size = mem->len, .addr = mem->addr};

	(void)ctx;
	if (cap < sizeof(k))
		return RCT_ERR_NO_SPACE;
	memcpy(buf, &k, sizeof(k));
	*len_p = sizeof(k);
	return RCT_OK;
}

static rct_status_t mock_rkey_unpack(struct rct_be_ctx *ctx, const void *buf, size_t len,
				     struct rct_be_rkey **rkey_p)
{
	struct mock_rkey *k;

	(void)ctx;
	if (len != sizeof(*k))
		return RCT_ERR_PROTO;
	k = malloc(sizeof(*k));
	if (!k)
		return RCT_ERR_NO_MEMORY;
	memcpy(k, buf, sizeof(*k));
	*rkey_p = &k->super;
	return RCT_OK;
}

static void mock_rkey_destroy(struct rct_be_ctx *ctx, struct rct_be_rkey *rkey)
{
	(void)ctx;
	free(rct_container_of(rkey, struct mock_rkey, super));
}

static rct_status_t mock_put(struct rct_be_ctx *ctx, unsigned lane, struct rct_be_mem *mem,
			     struct rct_be_rkey *rkey, const struct rct_run *runs, size_t n)
{
	struct mock_ctx *m = mock(ctx);
	struct mock_rkey *k = rct_container_of(rkey, struct mock_rkey, super);

	if (m->super.failed != RCT_OK)
		return m->super.failed;
	if (lane >= m->lanes)
		return RCT_ERR_INVALID_PARAM;
	for (size_t i = 0; i < n; i++) {
		if ((int)lane == m->fault_lane && m->fault_after-- <= 0) {
			m->super.failed = RCT_ERR_IO; /* like a QP moved to error mid-checkpoint */
			return m->super.failed;
		}
		if (rct_runs_check(&runs[i], 1, mem->len, k->super.size, "mock", lane + 1) !=
		    RCT_OK)
			return RCT_ERR_INVALID_PARAM;
		memcpy((char *)k->addr + runs[i].roff, (char *)mem->addr + runs[i].loff,
		       runs[i].len);
		pthread_mutex_lock(&mock_lock);
		mock_placed++;
		pthread_mutex_unlock(&mock_lock);
		if (m->deferred)
			m->pending++;
	}
	return RCT_OK;
}

static rct_status_t mock_fence(struct rct_be_ctx *ctx, uint64_t token)
{
	struct mock_ctx *m = mock(ctx);

	(void)token;
	pthread_mutex_lock(&mock_lock);
	mock_fences++;
	pthread_mutex_unlock(&mock_lock);
	if (m->deferred)
		m->pending++; /* the fence itself completes later, like a flush */
	return m->super.failed;
}

static size_t mock_pending(struct rct_be_ctx *ctx)
{
	return mock(ctx)->pending;
}

static uint64_t mock_fenced(struct rct_be_ctx *ctx)
{
	(void)ctx;
	return UINT64_MAX;
}

static rct_status_t mock_ctrl_send(struct rct_be_ctx *ctx, const void *buf, size_t len)
{
	struct mock_ctx *m = mock(ctx);

	if (m->super.failed != RCT_OK)
		return m->super.failed;
	if (len >= 8 && ((const uint8_t *)buf)[6] == RCT_MSG_COMMIT) {
		/* What was still in flight when the COMMIT went out. */
		pthread_mutex_lock(&mock_lock);
		mock_commit_pending = (long)m->pending;
		mock_fences_at_commit = mock_fences;
		pthread_mutex_unlock(&mock_lock);
	}
	if (send(m->ctrl_fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return RCT_ERR_PEER_LOST;
	return RCT_OK;
}

rct_status_t mock_ctrl_inject(struct rct_be_ctx *ctx, const void *buf, size_t len)
{
	return mock_ctrl_send(ctx, buf, len);
}

static rct_status_t mock_ctrl_recv(struct rct_be_ctx *ctx, const void **buf_p, size_t *len_p)
{
	struct mock_ctx *m = mock(ctx);
	ssize_t n = recv(m->ctrl_fd, m->rx, sizeof(m->rx), MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN ? RCT_ERR_AGAIN : RCT_ERR_IO;
	if (n == 0)
		return RCT_ERR_PEER_LOST;
	*buf_p = m->rx;
	*len_p = (size_t)n;
	return RCT_OK;
}

static rct_status_t mock_progress(struct rct_be_ctx *ctx, int timeout_ms)
{
	struct mock_ctx *m = mock(ctx);
	struct pollfd pfd = {.fd = m->ctrl_fd, .events = POLLIN};

	if (m->super.failed != RCT_OK)
		return m->super.failed;
	if (m->pending) {
		m->pending--; /* one completion per call */
		return RCT_OK;
	}
	poll(&pfd, 1, timeout_ms);
	return RCT_OK;
}

const struct rct_backend_ops mock_ops = {
	.name = "mock",
	.ctx_create = mock_ctx_create,
	.ctx_destroy = mock_ctx_destroy,
	.listen = mock_listen,
	.accept = mock_accept,
	.reject = mock_reject,
	.connect = mock_connect,
	.open_lanes = mock_open_lanes,
	.disconnect = mock_disconnect,
	.mem_map = mock_mem_map,
	.mem_unmap = mock_mem_unmap,
	.mem_pack = mock_mem_pack,
	.rkey_unpack = mock_rkey_unpack,
	.rkey_destroy = mock_rkey_destroy,
	.put = mock_put,
	.fence = mock_fence,
	.pending = mock_pending,
	.fenced = mock_fenced,
	.ctrl_send = mock_ctrl_send,
	.ctrl_recv = mock_ctrl_recv,
	.progress = mock_progress,
};
