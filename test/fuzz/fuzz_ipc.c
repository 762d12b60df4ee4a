/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: rctd's side of the socket API.  The input is a byte
 * stream a client writes on its connection; the real connection code of rctd
 * (daemon/rctd/conn*.c with daemon/ipc/: the codec, the dispatch table,
 * every request's validation and handler, the JSON replies) reads it through a socketpair until the end of the stream.
 *
 * Two rewrites keep every input fast and self-contained: LISTEN, ACCEPT and
 * CONNECT frames become STATUS (they would bind ports and wait for a peer),
 * and SESSION_OPEN asks for the tcp backend (a UCX context costs 100 ms).
 * Both are applied only where the stream's own framing puts a header.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rctd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int rctd_log_threshold = RCTD_LOG_ERR;

void rctd_log(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static struct rctd d;
static char state_dir[] = "/tmp/rct-fuzz-state.XXXXXX";
static uint8_t buf[1 << 16];

static void rewrite(uint8_t *p, size_t size)
{
	size_t off = 0;

	while (off + RCT_IPC_HDR_SIZE <= size) {
		struct rct_ipc_hdr h;
		uint16_t type;

		memcpy(&h, p + off, sizeof(h));
		type = le16toh(h.type);
		if (type == RCT_IPC_LISTEN || type == RCT_IPC_ACCEPT || type == RCT_IPC_CONNECT) {
			h.type = htole16(RCT_IPC_STATUS);
			memcpy(p + off, &h, sizeof(h));
		}
		if (type == RCT_IPC_SESSION_OPEN &&
		    le32toh(h.length) == sizeof(struct rct_ipc_session_open) &&
		    off + sizeof(h) + sizeof(struct rct_ipc_session_open) <= size)
			memcpy(p + off + sizeof(h) + offsetof(struct rct_ipc_session_open, backend),
			       "tcp", 4);
		off += sizeof(h) + le32toh(h.length);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rctd_conn *c;
	int sv[2];

	if (size > sizeof(buf) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	if (!d.caps) {
		pthread_mutex_init(&d.lock, NULL);
		d.caps = RCT_IPC_CAP_TCP;
		d.cfg.socket_path = "fuzz.sock";
		d.metrics_port = -1;
		/* As rctd's defaults, the state directory a fresh one. */
		d.cfg.msg_timeout_ms = 5000;
		d.cfg.idle_timeout_ms = 60000;
		d.cfg.max_registered = 1ull << 30;
		d.cfg.state_dir = mkdtemp(state_dir);
	}
	memcpy(buf, data, size);
	rewrite(buf, size);
	if (size && write(sv[0], buf, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[0], SHUT_WR);
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->d = &d;
	c->fd = sv[1];
	c->allowed = true;
	c->admin = size & 1;
	c->id = ++d.next_id;
	d.conns = c;
	d.nconns = 1;
	rctd_conn_main(c); /* reads to the end of the stream, closes sv[1] */
	d.conns = NULL;
	d.nconns = 0;
	free(c);
	close(sv[0]);
	return 0;
}
