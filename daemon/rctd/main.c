/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctd: options and configuration file, the socket, the listener, signals
 * and readiness.  See rctd --help and docs/ipc.md.
 */
#include <endian.h>
#include <errno.h>
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

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

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rctd [OPTIONS]\n"
		"\n"
		"The rct daemon: serves the local hypervisors' checkpoint sessions on a Unix\n"
		"socket (docs/ipc.md) and moves their checkpoints to the peer host's rctd.\n"
		"It runs in the foreground; under systemd it reports readiness (Type=notify).\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH        the socket (default: $RUNTIME_DIRECTORY/rctd.sock,\n"
		"                           else /run/rctd/rctd.sock); created 0660\n"
		"  -g, --socket-group NAME  group owning the socket file\n"
		"  -u, --allow-uid USER     let this user connect (repeatable; name or number)\n"
		"  -G, --allow-gid GROUP    let this group connect (repeatable; name or number)\n"
		"                           root and rctd's own user are always allowed\n"
		"  -m, --metrics-port N     serve Prometheus text at http://ADDR:N/metrics\n"
		"                           (0: any free port, logged and in `rctctl status`;\n"
		"                           default: no endpoint)\n"
		"  -a, --metrics-addr ADDR  loopback address of that endpoint (127.0.0.1)\n"
		"  -k, --psk-file FILE      pre-shared key: peers prove they hold the same key\n"
		"                           before any memory key is advertised (mode 0600,\n"
		"                           32+ bytes: head -c 32 /dev/urandom > FILE); without\n"
		"                           it peers are not authenticated (docs/security.md)\n"
		"  -H, --heartbeat-ms N     keepalive interval with the peer, 1..60000 ms\n"
		"                           (default 50); the peer is lost after 3 silent\n"
		"                           intervals.  Both daemons should use the same value\n"
		"  -L, --liveness MODE      thread (default): heartbeats sent and judged by a\n"
		"                           thread and a UDP socket of their own per session\n"
		"                           (SCHED_FIFO where permitted), so a busy or stalled\n"
		"                           rctd is not taken for a dead one; inband: on the\n"
		"                           control lane, judged only while rctd drives the\n"
		"                           session.  Both daemons must use the same mode\n"
		"  -T, --message-timeout-ms N  a request must arrive whole within N ms of its\n"
		"                           first byte, and HELLO within N ms of connecting\n"
		"                           (default 5000; 100..600000)\n"
		"  -I, --idle-timeout-ms N  close a connection that has no session and sends\n"
		"                           nothing for N ms (default 60000; 100..86400000)\n"
		"  -M, --max-registered SIZE  guest RAM all sessions together may register\n"
		"                           (bytes, or with K, M, G, T; default 3/4 of this\n"
		"                           machine's memory): the primary pins it (verbs), the\n"
		"                           secondary allocates a colo cache as large.  A\n"
		"                           REGION_ADD beyond it is refused before anything is\n"
		"                           mapped\n"
		"  -S, --state-dir DIR      one state file per pairing: its generation and last\n"
		"                           committed epoch, kept across restarts (default\n"
		"                           /var/lib/rctd; created 0700)\n"
		"  -l, --log-level LEVEL    error, warn, info (default) or debug\n"
		"  -c, --config FILE        read options from FILE first: one 'option = value'\n"
		"                           per line, long option names without '--', # comments;\n"
		"                           the command line overrides it\n"
		"  -V, --version\n"
		"  -h, --help\n"
		"\n"
		"Signals: SIGTERM and SIGINT stop it cleanly (every session says GOODBYE).\n");
}

static const struct option longopts[] = {
	{"socket", required_argument, NULL, 's'},
	{"socket-group", required_argument, NULL, 'g'},
	{"allow-uid", required_argument, NULL, 'u'},
	{"allow-gid", required_argument, NULL, 'G'},
	{"metrics-port", required_argument, NULL, 'm'},
	{"metrics-addr", required_argument, NULL, 'a'},
	{"log-level", required_argument, NULL, 'l'},
	{"psk-file", required_argument, NULL, 'k'},
	{"heartbeat-ms", required_argument, NULL, 'H'},
	{"liveness", required_argument, NULL, 'L'},
	{"message-timeout-ms", required_argument, NULL, 'T'},
	{"idle-timeout-ms", required_argument, NULL, 'I'},
	{"max-registered", required_argument, NULL, 'M'},
	{"state-dir", required_argument, NULL, 'S'},
	{"config", required_argument, NULL, 'c'},
	{"version", no_argument, NULL, 'V'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse_id(const char *text, bool group, unsigned *id_p)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (*text && !*end && !errno && v < UINT32_MAX) {
		*id_p = (unsigned)v;
		return 0;
	}
	if (group) {
		struct group *gr = getgrnam(text);

		if (gr) {
			*id_p = gr->gr_gid;
			return 0;
		}
	} else {
		struct passwd *pw = getpwnam(text);

		if (pw) {
			*id_p = pw->pw_uid;
			return 0;
		}
	}
	return -1;
}

static int bad(const char *option, const char *value, const char *what)
{
	fprintf(stderr, "rctd: %s '%s': expected %s (see --help)\n", option, value, what);
	return 2;
}

/* A whole number in base 10 within [lo, hi] into *out; 0, or bad()'s exit status. */
static int int_option(const char *option, const char *arg, long lo, long hi, int *out)
{
	char what[48], *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (!*arg || *end || errno || v < lo || v > hi) {
		snprintf(what, sizeof(what), "a whole number %ld..%ld", lo, hi);
		return bad(option, arg, what);
	}
	*out = (int)v;
	return 0;
}

/* A size in bytes with an optional K, M, G or T (powers of 1024), at least 1 MiB. */
static int size_option(const char *option, const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*end && !end[1])
		shift = *end == 'K'   ? 10
			: *end == 'M' ? 20
			: *end == 'G' ? 30
			: *end == 'T' ? 40
				      : 99;
	else if (*end)
		shift = 99;
	if (!*arg || *arg == '-' || errno || shift == 99 || v > (UINT64_MAX >> shift) ||
	    (v << shift) < (1ull << 20))
		return bad(option, arg, "a size of at least 1M (bytes, or with K, M, G, T)");
	*out = (uint64_t)v << shift;
	return 0;
}

/* One option; 0, or an exit status. */
static int apply_option(struct rctd_cfg *cfg, int c, const char *arg)
{
	unsigned id;

	switch (c) {
	case 's':
		if (strlen(arg) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return bad("--socket", arg, "a path shorter than 108 bytes");
		cfg->socket_path = arg;
		return 0;
	case 'g':
		cfg->socket_group = arg;
		return 0;
	case 'u':
	case 'G':
		if (parse_id(arg, c == 'G', &id))
			return bad(c == 'u' ? "--allow-uid" : "--allow-gid", arg,
				   "a known name or a number");
		if ((c == 'u' ? cfg->nuids : cfg->ngids) == RCTD_MAX_IDS)
			return bad(c == 'u' ? "--allow-uid" : "--allow-gid", arg,
				   "at most 32 entries");
		if (c == 'u')
			cfg->uids[cfg->nuids++] = id;
		else
			cfg->gids[cfg->ngids++] = id;
		return 0;
	case 'm':
		return int_option("--metrics-port", arg, 0, 65535, &cfg->metrics_port);
	case 'M':
		return size_option("--max-registered", arg, &cfg->max_registered);
	case 'S':
		cfg->state_dir = arg;
		return 0;
	case 'a':
		cfg->metrics_addr = arg;
		return 0;
	case 'H':
		return int_option("--heartbeat-ms", arg, 1, 60000, &cfg->heartbeat_ms);
	case 'T':
		return int_option("--message-timeout-ms", arg, 100, 600000, &cfg->msg_timeout_ms);
	case 'I':
		return int_option("--idle-timeout-ms", arg, 100, 86400000, &cfg->idle_timeout_ms);
	case 'L':
		if (strcmp(arg, "thread") && strcmp(arg, "inband"))
			return bad("--liveness", arg, "thread or inband");
		cfg->inband = !strcmp(arg, "inband");
		return 0;
	case 'k':
		cfg->psk_file = arg;
		return 0;
	case 'l':
		if (!strcmp(arg, "error"))
			rctd_log_threshold = RCTD_LOG_ERR;
		else if (!strcmp(arg, "warn"))
			rctd_log_threshold = RCTD_LOG_WARN;
		else if (!strcmp(arg, "info"))
			rctd_log_threshold = RCTD_LOG_INFO;
		else if (!strcmp(arg, "debug"))
			rctd_log_threshold = RCTD_LOG_DEBUG;
		else
			return bad("--log-level", arg, "error, warn, info or debug");
		rct_log_set_level(rctd_log_threshold >= RCTD_LOG_DEBUG	? RCT_LOG_DEBUG
				  : rctd_log_threshold >= RCTD_LOG_INFO ? RCT_LOG_INFO
				  : rctd_log_threshold >= RCTD_LOG_WARN ? RCT_LOG_WARN
									: RCT_LOG_ERROR);
		return 0;
	}
	return 2;
}

/* Values read from the configuration file, alive for the whole run. */
static char *config_values[256];
static unsigned config_nvalues;

/* The configuration file: "option = value" lines. */
static int load_config(struct rctd_cfg *cfg, const char *path)
{
	char line[1024];
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");
	int rc = 0;

	if (!f) {
		fprintf(stderr, "rctd: config file '%s': %s\n", path, strerror(errno));
		return 2;
	}
	while (!rc && fgets(line, sizeof(line), f)) {
		char *key = line, *val, *eq, *end;
		const struct option *o;

		lineno++;
		key += strspn(key, " \t");
		end = key + strcspn(key, "#\r\n");
		*end = '\0';
		while (end > key && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*key)
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			fprintf(stderr, "rctd: %s:%u: expected 'option = value'\n", path, lineno);
			rc = 2;
			break;
		}
		val = eq + 1 + strspn(eq + 1, " \t");
		for (*eq = '\0'; eq > key && (eq[-1] == ' ' || eq[-1] == '\t');)
			*--eq = '\0';
		for (o = longopts; o->name; o++)
			if (!strcmp(o->name, key) && o->has_arg == required_argument &&
			    o->val != 'c')
				break;
		if (!o->name) {
			fprintf(stderr, "rctd: %s:%u: unknown option '%s'\n", path, lineno, key);
			rc = 2;
			break;
		}
		if (config_nvalues == sizeof(config_values) / sizeof(config_values[0])) {
			fprintf(stderr, "rctd: %s:%u: too many lines\n", path, lineno);
			rc = 2;
			break;
		}
		val = config_values[config_nvalues++] = strdup(val);
		rc = val ? apply_option(cfg, o->val, val) : 2;
		if (rc)
			fprintf(stderr, "rctd: (in %s:%u)\n", path, lineno);
	}
	fclose(f);
	return rc;
}

static int parse_args(struct rctd_cfg *cfg, int argc, char **argv)
{
	int c, rc;

	/* The config file first, whatever its place on the command line. */
	for (int i = 1; i < argc; i++) {
		const char *file = NULL;

		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
			file = i + 1 < argc ? argv[i + 1] : NULL;
		else if (!strncmp(argv[i], "--config=", 9))
			file = argv[i] + 9;
		if (file && (rc = load_config(cfg, file)))
			return rc;
	}
	while ((c = getopt_long(argc, argv, "s:g:u:G:m:a:l:k:H:L:T:I:M:S:c:Vh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("rctd %d.%d (socket API version %d)\n", RCT_VERSION_MAJOR,
			       RCT_VERSION_MINOR, RCT_IPC_VERSION);
			exit(0);
		case 'c':
			break;
		case '?':
			usage(stderr);
			return 2;
		default:
			rc = apply_option(cfg, c, optarg);
			if (rc)
				return rc;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rctd: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	return 0;
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

		if (parse_id(d->cfg.socket_group, true, &gid) ||
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
	char why[160];
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct rctd_conn *c;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

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
	pthread_mutex_lock(&d->lock);
	if (d->nconns >= RCTD_MAX_CONNS) {
		pthread_mutex_unlock(&d->lock);
		rctd_warn("refusing pid %d: %d connections already", (int)cred.pid, RCTD_MAX_CONNS);
		snprintf(why, sizeof(why),
			 "rctd serves %d connections already (idle ones close after %d ms)",
			 RCTD_MAX_CONNS, d->cfg.msg_timeout_ms);
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
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->allowed = true;
	c->admin = cred.uid == 0 || cred.uid == geteuid();
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
	d.cfg.max_registered = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) /
			       4 * 3;
	rc = parse_args(&d.cfg, argc, argv);
	if (rc)
		return rc;
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
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	pthread_mutex_init(&d.lock, NULL);
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
	rctd_info("guest regions of all sessions together: at most %" PRIu64
		  " MiB (--max-registered)",
		  d.cfg.max_registered >> 20);
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
	/* Wake every connection thread; each closes its session (GOODBYE to the peer). */
	pthread_mutex_lock(&d.lock);
	for (struct rctd_conn *c = d.conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&d.lock);
	reap(&d, true);
	rctd_metrics_stop(&d);
	close(sfd);
	rctd_info("stopped");
	return 0;
}
