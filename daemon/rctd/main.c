/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctd: logging, the socket, the listener, signals and readiness (options
 * and the configuration file: options.c).  See rctd --help and docs/ipc.md.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "guard.h"
#include "rctd.h"

int rctd_log_threshold = RCTD_LOG_INFO;
static bool rctd_journal;

void rctd_log(int level, const char *fmt, ...)
{
	static const char *const names[8] = {
		[3] = "error", [4] = "warning", [6] = "info", [7] = "debug"};
	char line[1024];
	va_list ap;

	if (level > rctd_log_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line; journald reads the <N> priority prefix. */
	if (rctd_journal)
		fprintf(stderr, "<%d>%s\n", level, line);
	else
		fprintf(stderr, "rctd[%d]: %s: %s\n", (int)getpid(), names[level & 7], line);
}

/* The library's log lines, in rctd's format beside rctd's own (one journal, one format). */
static void rctd_log_library(enum rct_log_level level, const char *file, int line, const char *msg,
			     void *arg)
{
	static const int map[] = {RCTD_LOG_ERR, RCTD_LOG_WARN, RCTD_LOG_INFO, RCTD_LOG_DEBUG};

	(void)arg;
	if (rctd_log_threshold >= RCTD_LOG_DEBUG)
		rctd_log(map[level], "%s (%s:%d)", msg, file, line);
	else
		rctd_log(map[level], "%s", msg);
}

/* Bind the socket: a stale file of a dead rctd is replaced, a live one is not. */
static int open_socket(struct rctd *d)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char dir[sizeof(sun.sun_path)];
	struct stat sb;
	int fd, probe;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", d->cfg.socket_path);
	snprintf(dir, sizeof(dir), "%s", d->cfg.socket_path);
	if (mkdir(dirname(dir), 0750) && errno != EEXIST) {
		rctd_err("cannot create the runtime directory '%s': %s", dir, strerror(errno));
		return -1;
	}
	if (!lstat(sun.sun_path, &sb)) {
		if (!S_ISSOCK(sb.st_mode)) {
			rctd_err("'%s' exists and is not a socket", sun.sun_path);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && !connect(probe, (struct sockaddr *)&sun, sizeof(sun))) {
			close(probe);
			rctd_err("another rctd serves '%s'", sun.sun_path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(sun.sun_path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rctd_err("socket: %s", strerror(errno));
		return -1;
	}
	/* Created 0660 from the start: no window in which anybody can connect. */
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));

	umask(old);
	if (rc || listen(fd, 64)) {
		rctd_err("cannot listen on '%s': %s", sun.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	if (d->cfg.socket_group) {
		unsigned gid;

		if (rctd_parse_id(d->cfg.socket_group, true, &gid) ||
		    chown(sun.sun_path, (uid_t)-1, (gid_t)gid)) {
			rctd_err("socket group '%s': %s", d->cfg.socket_group,
				 errno ? strerror(errno) : "no such group");
			close(fd);
			unlink(sun.sun_path);
			return -1;
		}
	}
	return fd;
}

static bool cred_allowed(const struct rctd_cfg *cfg, uid_t uid, gid_t gid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (unsigned i = 0; i < cfg->nuids; i++)
		if (cfg->uids[i] == uid)
			return true;
	for (unsigned i = 0; i < cfg->ngids; i++)
		if (cfg->gids[i] == gid)
			return true;
	return false;
}

/*
 * Refuse a connection at accept, before it costs a thread or a slot: one
 * reply with request id 0 carrying the errno and the reason (librct-client
 * returns it from whatever call it was making), then close.  Never blocks:
 * the socket is new and its buffer empty.
 */
static void refuse(int fd, int err, const char *why)
{
	struct rct_ipc_hdr h = {
		.magic = htole32(RCT_IPC_MAGIC),
		.version = htole16(RCT_IPC_VERSION),
		.type = htole16(RCT_IPC_HELLO),
		.length = htole32((uint32_t)strlen(why)),
		.flags = htole16(RCT_IPC_FLAG_REPLY),
		.status = htole32((uint32_t)-err),
	};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)why, strlen(why)}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		rctd_debug("refusal not sent: %s", strerror(errno));
	close(fd);
}

static void accept_one(struct rctd *d, int lfd)
{
	char why[200];
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct rctd_conn *c;
	unsigned mine;
	bool admin;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && d->spare_fd >= 0) {
		/* Out of descriptors: the waiting client would keep the
		 * listener readable (a spinning loop).  The spare one takes it
		 * to say why, and is taken back. */
		int err = errno;

		close(d->spare_fd);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			snprintf(why, sizeof(why),
				 "rctd is out of descriptors (%s; RLIMIT_NOFILE %u): try again "
				 "later",
				 strerror(err), d->nofile);
			rctd_err("refusing a client: %s", why);
			refuse(fd, err, why);
		}
		d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return;
	}
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			rctd_warn("accept: %s", strerror(errno));
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen)) {
		rctd_warn("SO_PEERCRED: %s; refusing the connection", strerror(errno));
		close(fd);
		return;
	}
	/* Not allowed: refused here, so that such users hold no slot. */
	if (!cred_allowed(&d->cfg, cred.uid, cred.gid)) {
		rctd_warn("refusing pid %d: uid %u gid %u is not allowed (--allow-uid, "
			  "--allow-gid)",
			  (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid);
		snprintf(why, sizeof(why), "uid %u gid %u is not allowed to use this rctd",
			 (unsigned)cred.uid, (unsigned)cred.gid);
		refuse(fd, EACCES, why);
		return;
	}
	admin = cred.uid == 0 || cred.uid == geteuid();
	pthread_mutex_lock(&d->lock);
	mine = 0;
	for (struct rctd_conn *o = d->conns; o; o = o->next)
		mine += o->uid == cred.uid && !o->finished;
	/* One tenant (a client uid) cannot take every slot, and root and rctd's
	 * own user always find one: the last RCTD_ADMIN_RESERVE are theirs. */
	if (d->nconns >= RCTD_MAX_CONNS ||
	    (!admin && d->nconns >= RCTD_MAX_CONNS - RCTD_ADMIN_RESERVE)) {
		pthread_mutex_unlock(&d->lock);
		rctd_warn("refusing pid %d: %u connections already", (int)cred.pid, d->nconns);
		snprintf(why, sizeof(why),
			 "rctd serves %u connections already (idle ones close after %d ms; the "
			 "last %d are kept for root and rctd's user)",
			 d->nconns, d->cfg.msg_timeout_ms, RCTD_ADMIN_RESERVE);
		refuse(fd, EUSERS, why);
		return;
	}
	if (!admin && mine >= (unsigned)d->cfg.max_conns_per_uid) {
		pthread_mutex_unlock(&d->lock);
		rctd_warn("refusing pid %d: uid %u holds %u connections (--max-conns-per-uid)",
			  (int)cred.pid, (unsigned)cred.uid, mine);
		snprintf(why, sizeof(why),
			 "uid %u holds %u connections to this rctd already, its limit "
			 "(--max-conns-per-uid)",
			 (unsigned)cred.uid, mine);
		refuse(fd, EUSERS, why);
		return;
	}
	pthread_mutex_unlock(&d->lock);
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->d = d;
	c->fd = fd;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0) {
		int err = errno;

		snprintf(why, sizeof(why),
			 "rctd is out of descriptors (eventfd: %s; RLIMIT_NOFILE %u)",
			 strerror(err), d->nofile);
		rctd_err("refusing pid %d: %s", (int)cred.pid, why);
		refuse(fd, err == EMFILE || err == ENFILE ? err : EAGAIN, why);
		free(c);
		return;
	}
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->allowed = true;
	c->admin = admin;
	pthread_mutex_lock(&d->lock);
	c->id = ++d->next_id;
	c->next = d->conns;
	d->conns = c;
	d->nconns++;
	pthread_mutex_unlock(&d->lock);
	if (pthread_create(&c->thread, NULL, rctd_conn_main, c)) {
		rctd_err("cannot start a thread for pid %d", (int)cred.pid);
		pthread_mutex_lock(&d->lock);
		d->conns = c->next;
		d->nconns--;
		pthread_mutex_unlock(&d->lock);
		close(fd);
		close(c->wake_fd);
		free(c);
	}
}

/* Join the threads of finished connections (all of them when @all). */
static void reap(struct rctd *d, bool all)
{
	for (;;) {
		struct rctd_conn **pp, *c = NULL;

		pthread_mutex_lock(&d->lock);
		for (pp = &d->conns; *pp; pp = &(*pp)->next) {
			if ((*pp)->finished || all) {
				c = *pp;
				if (!all || c->finished) {
					*pp = c->next;
					d->nconns--;
				}
				break;
			}
		}
		pthread_mutex_unlock(&d->lock);
		if (!c)
			return;
		if (all && !c->finished) {
			/* Still running: wait for it, then take it off the list. */
			pthread_join(c->thread, NULL);
			pthread_mutex_lock(&d->lock);
			for (pp = &d->conns; *pp != c; pp = &(*pp)->next)
				;
			*pp = c->next;
			d->nconns--;
			pthread_mutex_unlock(&d->lock);
		} else {
			pthread_join(c->thread, NULL);
		}
		free(c);
	}
}

/*
 * The descriptors rctd has: RLIMIT_NOFILE raised to its hard limit, less
 * what its connections and sessions use (RCTD_FDS_PER_CONN each, all 256 of
 * them), is what guest files may keep; a quarter of that is one uid's
 * unless --max-fds-per-uid says.
 */
static void fd_budget_init(struct rctd *d)
{
	struct rlimit rl;
	uint64_t reserve = (uint64_t)RCTD_MAX_CONNS * RCTD_FDS_PER_CONN + 64;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			rctd_warn("cannot raise RLIMIT_NOFILE from %llu to %llu: %s",
				  (unsigned long long)was, (unsigned long long)rl.rlim_max,
				  strerror(errno));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl))
		rl.rlim_cur = 1024;
	d->nofile = rl.rlim_cur > 1u << 30 ? 1u << 30 : (unsigned)rl.rlim_cur;
	d->fd_budget = d->nofile > reserve ? (unsigned)(d->nofile - reserve) : d->nofile / 4;
	if (d->nofile <= reserve)
		rctd_warn("RLIMIT_NOFILE is %u, below the %llu that %d connections may use: guest "
			  "files may keep %u descriptors (raise LimitNOFILE)",
			  d->nofile, (unsigned long long)reserve, RCTD_MAX_CONNS, d->fd_budget);
	if (!d->cfg.max_fds_per_uid)
		d->cfg.max_fds_per_uid = d->fd_budget / 4 > 2 ? (int)(d->fd_budget / 4) : 2;
}

int main(int argc, char **argv)
{
	static struct rctd d;
	struct pollfd pfd[2];
	sigset_t mask;
	int lfd, sfd, rc;

	rctd_journal = getenv("JOURNAL_STREAM") != NULL;
	rct_log_set_handler(rctd_log_library, NULL);
	d.cfg.metrics_addr = "127.0.0.1";
	d.cfg.metrics_port = -1;
	d.cfg.heartbeat_ms = RCT_HEARTBEAT_DEFAULT_MS;
	d.cfg.msg_timeout_ms = RCTD_MSG_TIMEOUT_MS;
	d.cfg.idle_timeout_ms = RCTD_IDLE_TIMEOUT_MS;
	d.cfg.state_dir = "/var/lib/rctd";
	d.cfg.flush_threads = -1;
	d.cfg.max_conns_per_uid = RCTD_CONNS_PER_UID;
	d.cfg.max_registered = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) /
			       4 * 3;
	rc = rctd_parse_args(&d.cfg, argc, argv);
	if (rc)
		return rc;
	if (!d.cfg.max_registered_per_uid)
		d.cfg.max_registered_per_uid = d.cfg.max_registered / 2;
	if (!d.cfg.socket_path) {
		static char path[108];
		const char *rt = getenv("RUNTIME_DIRECTORY");

		snprintf(path, sizeof(path), "%s/rctd.sock", rt && *rt ? rt : "/run/rctd");
		d.cfg.socket_path = path;
	}
	/* Signals go to the signalfd only, in every thread started later. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (rctd_guard_init()) {
		rctd_err("sigaction(SIGBUS): %s", strerror(errno));
		return 1;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	pthread_mutex_init(&d.lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&d.cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&d.state_lock, NULL);
	d.started_ns = rctd_now_ns();
	d.caps = (rct_backend_available("tcp") ? RCT_IPC_CAP_TCP : 0) |
		 (rct_backend_available("ucx") ? RCT_IPC_CAP_UCX : 0) |
		 (rct_backend_available("verbs") ? RCT_IPC_CAP_VERBS : 0);
	if (sfd < 0) {
		rctd_err("signalfd: %s", strerror(errno));
		return 1;
	}
	if (d.cfg.psk_file) {
		if (rct_psk_load(d.cfg.psk_file, d.psk) != RCT_OK) {
			rctd_err("cannot use the pre-shared key file '%s' (see above)",
				 d.cfg.psk_file);
			return 1;
		}
		d.has_psk = true;
	} else {
		rctd_warn("no --psk-file: peers are not authenticated; any host that reaches "
			  "a listening session can pair with it");
	}
	rc = rctd_state_dir_init(&d);
	if (rc) {
		rctd_err("state directory %s: %s (--state-dir)", d.cfg.state_dir, strerror(-rc));
		return 1;
	}
	lfd = open_socket(&d);
	if (lfd < 0)
		return 1;
	if (rctd_metrics_start(&d)) {
		close(lfd);
		unlink(d.cfg.socket_path);
		return 1;
	}
	if (d.metrics_port >= 0)
		d.caps |= RCT_IPC_CAP_METRICS;
	if (d.has_psk)
		d.caps |= RCT_IPC_CAP_PSK;
	fd_budget_init(&d);
	d.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	rctd_info("memory all sessions together hold (guest regions, staging, device "
		  "state): at most %" PRIu64 " MiB (--max-registered), one uid's %" PRIu64
		  " MiB (--max-registered-per-uid)",
		  d.cfg.max_registered >> 20, d.cfg.max_registered_per_uid >> 20);
	rctd_info("descriptors: RLIMIT_NOFILE %u, of which guest files may keep %u, one uid's "
		  "%d (--max-fds-per-uid)",
		  d.nofile, d.fd_budget, d.cfg.max_fds_per_uid);
	rctd_info("serving %s (socket API version %d; backends:%s%s%s)", d.cfg.socket_path,
		  RCT_IPC_VERSION, d.caps & RCT_IPC_CAP_TCP ? " tcp" : "",
		  d.caps & RCT_IPC_CAP_UCX ? " ucx" : "",
		  d.caps & RCT_IPC_CAP_VERBS ? " verbs" : "");
	sd_notifyf(0, "READY=1\nSTATUS=serving %s", d.cfg.socket_path);

	pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = sfd, .events = POLLIN};
	while (!d.stopping) {
		int n = poll(pfd, 2, 1000);

		if (n < 0 && errno != EINTR) {
			rctd_err("poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && (pfd[1].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				rctd_info("signal %u: stopping", si.ssi_signo);
			d.stopping = 1;
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN))
			accept_one(&d, lfd);
		reap(&d, false);
	}
	sd_notify(0, "STOPPING=1");
	close(lfd);
	unlink(d.cfg.socket_path);
	/* Wake every connection thread; each closes its session (GOODBYE to the
	 * peer).  Only their reading side: a thread inside a request (ACCEPT
	 * waits in slices of RCTD_ACCEPT_SLICE_MS) still answers its client
	 * that rctd is stopping. */
	pthread_mutex_lock(&d.lock);
	for (struct rctd_conn *c = d.conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RD);
	pthread_mutex_unlock(&d.lock);
	reap(&d, true);
	rctd_metrics_stop(&d);
	close(sfd);
	rctd_info("stopped");
	return 0;
}
