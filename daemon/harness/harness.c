/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting and stopping rctd for demos, benchmarks, fault trials and tests: see harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "harness.h"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int exit_status(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const char *harness_rctd_path(const char *given, char *buf, size_t len)
{
	ssize_t n;
	char *slash;

	if (given)
		return given;
	n = len > 8 ? readlink("/proc/self/exe", buf, len - 8) : -1;
	if (n > 0) {
		buf[n] = '\0';
		slash = strrchr(buf, '/');
		if (slash) {
			strcpy(slash + 1, "rctd");
			if (!access(buf, X_OK))
				return buf;
		}
	}
	return "rctd";
}

/* The child: its stderr to the log, then exec. */
static void harness_exec(const struct harness_rctd *h, const char *const *argv)
{
	if (h->die_with_parent)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (h->nofile) {
		struct rlimit rl = {h->nofile, h->nofile};

		if (setrlimit(RLIMIT_NOFILE, &rl))
			fprintf(stderr, "harness: RLIMIT_NOFILE %u: %s\n", h->nofile,
				strerror(errno));
	}
	if (h->log_path) {
		int fd = open(h->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
	}
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Whether something accepts connections on @sock. */
static bool serving(const char *sock)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	ok = !connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return ok;
}

pid_t harness_rctd_start(const struct harness_rctd *h, char *why, size_t why_len)
{
	char hb[16], port[16], msg[16], maxreg[24], state[PATH_MAX];
	const char *argv[32];
	int n = 0, status, ready_ms = h->ready_ms > 0 ? h->ready_ms : 10000;
	pid_t pid;

	if (!h->rctd || !h->socket) {
		snprintf(why, why_len, "harness: no rctd program or socket given");
		return -EINVAL;
	}
	if (h->netns) {
		argv[n++] = "ip";
		argv[n++] = "netns";
		argv[n++] = "exec";
		argv[n++] = h->netns;
	}
	argv[n++] = h->rctd;
	argv[n++] = "--socket";
	argv[n++] = h->socket;
	argv[n++] = "--log-level";
	argv[n++] = h->log_level ? h->log_level : "warn";
	/* Its pairing records beside its socket, not in the host's /var/lib/rctd. */
	snprintf(state, sizeof(state), "%s.state", h->socket);
	argv[n++] = "--state-dir";
	argv[n++] = h->state_dir ? h->state_dir : state;
	if (h->psk_file) {
		argv[n++] = "--psk-file";
		argv[n++] = h->psk_file;
	}
	if (h->heartbeat_ms > 0) {
		snprintf(hb, sizeof(hb), "%d", h->heartbeat_ms);
		argv[n++] = "--heartbeat-ms";
		argv[n++] = hb;
	}
	if (h->metrics_port > 0) {
		snprintf(port, sizeof(port), "%d", h->metrics_port);
		argv[n++] = "--metrics-port";
		argv[n++] = port;
	}
	if (h->message_timeout_ms > 0) {
		snprintf(msg, sizeof(msg), "%d", h->message_timeout_ms);
		argv[n++] = "--message-timeout-ms";
		argv[n++] = msg;
	}
	if (h->max_registered > 0) {
		snprintf(maxreg, sizeof(maxreg), "%llu", (unsigned long long)h->max_registered);
		argv[n++] = "--max-registered";
		argv[n++] = maxreg;
	}
	if (h->allow_uid) {
		argv[n++] = "--allow-uid";
		argv[n++] = h->allow_uid;
	}
	for (unsigned i = 0; h->args && h->args[i] && i < 8; i++)
		argv[n++] = h->args[i];
	argv[n] = NULL;
	unlink(h->socket);
	pid = fork();
	if (pid < 0) {
		int err = errno;

		snprintf(why, why_len, "fork for rctd on %s: %s", h->socket, strerror(err));
		return -err;
	}
	if (pid == 0)
		harness_exec(h, argv);
	for (int waited = 0; waited < ready_ms; waited += 10) {
		if (serving(h->socket))
			return pid;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			snprintf(why, why_len,
				 "rctd for %s exited with status %d before serving%s%s", h->socket,
				 exit_status(status), h->log_path ? " (log: " : "",
				 h->log_path ? h->log_path : "");
			if (h->log_path)
				strncat(why, ")", why_len - strlen(why) - 1);
			return -ECHILD;
		}
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	snprintf(why, why_len, "rctd for %s did not serve within %d ms", h->socket, ready_ms);
	return -ETIMEDOUT;
}

int harness_rctd_stop(pid_t pid, int grace_ms)
{
	int status;

	if (pid <= 0)
		return 0;
	kill(pid, SIGTERM);
	for (int waited = 0; waited < grace_ms; waited += 10) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return exit_status(status);
		if (w < 0)
			return -1;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return exit_status(status);
}

int harness_make_key(const char *path, char *why, size_t why_len)
{
	unsigned char key[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), err;

	if (fd < 0 || getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key) ||
	    write(fd, key, sizeof(key)) != (ssize_t)sizeof(key)) {
		err = errno ? errno : EIO;
		snprintf(why, why_len, "cannot write the peers' key %s: %s", path, strerror(err));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return -err;
	}
	close(fd);
	return 0;
}

void harness_rm_flat_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

int harness_guests_create(struct harness_guests *g, uint64_t size, uint32_t page_size,
			  const struct sim_workload *wl, uint64_t seed, bool sparse, char *why,
			  size_t why_len)
{
	uint64_t npages = size / page_size;
	int rc;

	memset(g, 0, sizeof(*g));
	g->smemfd = g->pbits_fd = g->sbits_fd = -1;
	g->size = size;
	g->bits_len = (npages + 63) / 64 * sizeof(uint64_t);
	rc = sparse ? sim_guest_create_sparse(size, page_size, wl, seed, &g->pguest)
		    : sim_guest_create(size, page_size, wl, seed, &g->pguest);
	if (rc) {
		snprintf(why, why_len, "cannot create the primary's guest of %" PRIu64 " bytes: %s",
			 size, strerror(-rc));
		g->pguest = NULL;
		harness_guests_destroy(g);
		return rc;
	}
	g->sram = sparse ? sim_memfd_map_sparse("rct-secondary-ram", size, &g->smemfd)
			 : sim_memfd_map("rct-secondary-ram", size, &g->smemfd);
	/* A sparse primary's bitmap with its summary after it: one bit a word. */
	g->bits_file = g->bits_len + (sparse ? (g->bits_len / 8 + 63) / 64 * 8 : 0);
	g->pbits = sim_memfd_map("rct-primary-bitmap", g->bits_file, &g->pbits_fd);
	g->sbits = sim_memfd_map("rct-secondary-bitmap", g->bits_file, &g->sbits_fd);
	if (!g->sram || !g->pbits || !g->sbits) {
		rc = -errno;
		snprintf(why, why_len,
			 "cannot map the secondary's guest RAM (%" PRIu64 " bytes) and the "
			 "bitmaps: %s",
			 size, strerror(errno));
		harness_guests_destroy(g);
		return rc ? rc : -ENOMEM;
	}
	if (sparse) {
		g->psum = g->pbits + g->bits_len / 8;
		g->ssum = g->sbits + g->bits_len / 8;
		rc = sim_guest_share_summary(g->pguest, g->psum);
		if (rc) {
			snprintf(why, why_len, "the sparse guest's bitmap summary: %s",
				 strerror(-rc));
			harness_guests_destroy(g);
			return rc;
		}
	}
	return 0;
}

void harness_guests_destroy(struct harness_guests *g)
{
	sim_guest_destroy(g->pguest);
	if (g->sram)
		sim_memfd_unmap(g->sram, g->size, g->smemfd);
	if (g->pbits)
		sim_memfd_unmap(g->pbits, g->bits_file, g->pbits_fd);
	if (g->sbits)
		sim_memfd_unmap(g->sbits, g->bits_file, g->sbits_fd);
	memset(g, 0, sizeof(*g));
	g->smemfd = g->pbits_fd = g->sbits_fd = -1;
}

int harness_sparse_region(struct rct_client *c, uint32_t id, uint64_t size)
{
	int mfd = memfd_create("guest", MFD_CLOEXEC), bfd = memfd_create("bits", MFD_CLOEXEC);
	int rc = -EIO;

	if (mfd >= 0 && bfd >= 0 && !ftruncate(mfd, (off_t)size) &&
	    !ftruncate(bfd, (off_t)((size / 4096 + 63) / 64 * 8 + 4096)))
		rc = rct_client_region_add(c, id, mfd, 0, size, bfd, 0, NULL);
	if (mfd >= 0)
		close(mfd);
	if (bfd >= 0)
		close(bfd);
	return rc;
}

pid_t harness_as_user(unsigned uid, int (*fn)(void *arg, int fd), void *arg, int timeout_ms,
		      char *line, size_t len)
{
	struct pollfd pfd;
	ssize_t n;
	int fds[2];
	pid_t pid;

	line[0] = '\0';
	if (pipe(fds))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
			_exit(100);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* after setuid(), which clears it */
		if (getppid() == 1)
			_exit(101);
		_exit(fn(arg, fds[1]));
	}
	close(fds[1]);
	pfd = (struct pollfd){.fd = fds[0], .events = POLLIN};
	if (pid > 0 && poll(&pfd, 1, timeout_ms) == 1 && (n = read(fds[0], line, len - 1)) > 0)
		line[n - (line[n - 1] == '\n')] = '\0';
	close(fds[0]);
	return pid;
}
