/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * colo-svc: the Linux test guest's service (issue 33).  A request/response
 * service over TCP whose every answered request is on the guest's disk:
 * each line a client sends is appended to LOG and fsync()ed, then answered
 * with "OK " and the same line; a line ending in " T" is answered with the
 * guest's monotonic clock in nanoseconds after it, an answer the primary's
 * and the secondary's guests never give alike (colo-compare then takes a
 * checkpoint).  "!dump" answers the whole log, then ".".
 * Clients are served one after another, on one thread: a COLO pair's two
 * guests must answer alike, and the order they answer in is the order the
 * requests came.
 *
 *   colo-svc PORT LOG
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The whole log to @c, then ".\n". */
static int dump(int c, const char *log)
{
	char buf[65536];
	ssize_t r;
	int fd = open(log, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return write_all(c, ".\n", 2);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		if (write_all(c, buf, (size_t)r) < 0)
			break;
	close(fd);
	return write_all(c, ".\n", 2);
}

/* One request: on disk (appended, fsync()ed), then answered. */
static int serve_line(int c, int logfd, const char *log, const char *line, size_t len)
{
	char out[LINE_MAX_BYTES + 32];
	size_t n;

	if (len == 5 && !memcmp(line, "!dump", 5))
		return dump(c, log);
	if (write_all(logfd, line, len) < 0 || write_all(logfd, "\n", 1) < 0 || fsync(logfd) < 0) {
		fprintf(stderr, "colo-svc: %s: %s\n", log, strerror(errno));
		return -1;
	}
	memcpy(out, "OK ", 3);
	memcpy(out + 3, line, len);
	n = 3 + len;
	if (len >= 2 && !memcmp(line + len - 2, " T", 2)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		n += (size_t)snprintf(out + n, sizeof(out) - n, " %lld",
				      (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	}
	out[n] = '\n';
	return write_all(c, out, n + 1);
}

static void serve(int c, int logfd, const char *log)
{
	char buf[LINE_MAX_BYTES];
	size_t have = 0;

	for (;;) {
		ssize_t r = read(c, buf + have, sizeof(buf) - have);
		char *nl;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		have += (size_t)r;
		while ((nl = memchr(buf, '\n', have))) {
			size_t len = (size_t)(nl - buf);

			if (serve_line(c, logfd, log, buf, len) < 0)
				return;
			have -= len + 1;
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf)) {
			fprintf(stderr, "colo-svc: a line over %d bytes: connection closed\n",
				LINE_MAX_BYTES);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int s, logfd, one = 1;

	if (argc != 3 || !strcmp(argv[1], "--help")) {
		fprintf(argc == 2 ? stdout : stderr, "usage: colo-svc PORT LOG\n");
		return argc == 2 ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	logfd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (logfd < 0) {
		fprintf(stderr, "colo-svc: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 8) < 0) {
		fprintf(stderr, "colo-svc: port %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("colo-svc: listening on port %s, log %s\n", argv[1], argv[2]);
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);

		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		serve(c, logfd, argv[2]);
		close(c);
	}
}
