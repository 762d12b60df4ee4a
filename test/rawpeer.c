/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rawpeer.h"
#include "tcp/tcp.h"

int rawpeer_connect(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		close(fd);
		return -EINVAL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

int rawpeer_send(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

int rawpeer_lane_hello(int fd, unsigned lane, unsigned nlanes)
{
	struct rct_tcp_wire_lane_hello w = {.magic = htole32(RCT_TCP_LANE_MAGIC),
					    .version = htole16(RCT_TCP_VERSION),
					    .lane = htole16((uint16_t)lane),
					    .nlanes = htole16((uint16_t)nlanes),
					    .cookie = htole64(0xbad)};

	return rawpeer_send(fd, &w, sizeof(w));
}

int rawpeer_send_msg(int fd, const struct rct_msg *m)
{
	uint8_t buf[RCT_MSG_MAX + sizeof(struct rct_tcp_wire_frame)];
	struct rct_tcp_wire_frame f = {0};
	size_t len;

	if (rct_msg_encode(m, buf + sizeof(f), sizeof(buf) - sizeof(f), &len) != RCT_OK)
		return -EINVAL;
	f.length = htole32((uint32_t)len);
	memcpy(buf, &f, sizeof(f));
	return rawpeer_send(fd, buf, sizeof(f) + len);
}

int rawpeer_read(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int rc = poll(&p, 1, timeout_ms);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc ? -errno : -ETIMEDOUT;
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

int rawpeer_recv_msg(int fd, struct rct_msg *m, uint8_t *buf, int timeout_ms)
{
	struct rct_tcp_wire_frame f;
	const char *why;
	int rc;

	rc = rawpeer_read(fd, &f, sizeof(f), timeout_ms);
	if (rc)
		return rc;
	if (le32toh(f.length) > RCT_MSG_MAX)
		return -EMSGSIZE;
	rc = rawpeer_read(fd, buf, le32toh(f.length), timeout_ms);
	if (rc)
		return rc;
	return rct_msg_decode(buf, le32toh(f.length), m, &why) == RCT_OK ? 0 : -EPROTO;
}

int rawpeer_send_put(int fd, uint32_t key_id, uint32_t key_tag, uint64_t offset, uint64_t length)
{
	struct {
		struct rct_tcp_wire_put put;
		struct rct_tcp_wire_run run;
	} w;

	memset(&w, 0, sizeof(w));
	w.put.magic = htole32(RCT_TCP_DATA_MAGIC);
	w.put.version = htole16(RCT_TCP_VERSION);
	w.put.type = htole16(RCT_TCP_PUT);
	w.put.nruns = htole32(1);
	w.put.key_id = key_id;
	w.put.key_tag = key_tag;
	w.run.offset = htole64(offset);
	w.run.length = htole64(length);
	return rawpeer_send(fd, &w, sizeof(w));
}
