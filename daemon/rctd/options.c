/* SPDX-License-Identifier: BSD-3-Clause */
/* rctd's options and configuration file: see rctd --help and docs/ipc.md. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "rctd.h"

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
		"  -M, --max-registered SIZE  guest RAM all sessions together may register,\n"
		"                           sparse or not, with their device-state staging\n"
		"                           (the secondary's twice) and buffers\n"
		"                           (bytes, or with K, M, G, T; default 3/4 of this\n"
		"                           machine's memory): what rct may come to touch; the\n"
		"                           primary pins it (verbs) and the secondary reserves\n"
		"                           a colo cache as large (populated as pages arrive,\n"
		"                           except with verbs, which pins it).  A REGION_ADD\n"
		"                           beyond it is refused before anything is mapped\n"
		"  -C, --max-conns-per-uid N  connections one client uid (a tenant) may hold\n"
		"                           (1..240; default 64); rctd serves 256 in all and\n"
		"                           keeps the last 16 for root and its own user\n"
		"  -R, --max-registered-per-uid SIZE  of --max-registered, what one client\n"
		"                           uid's sessions may hold (default half); root and\n"
		"                           rctd's user are held to --max-registered only\n"
		"  -D, --max-fds-per-uid N  descriptors of guest files one uid's regions may\n"
		"                           keep in rctd (2..; default a quarter of rctd's\n"
		"                           budget: RLIMIT_NOFILE, raised to its hard limit at\n"
		"                           start, less 16 for each of 256 connections); a\n"
		"                           region keeps 1, 2 when its bitmap file is not\n"
		"                           sealed with F_SEAL_SHRINK\n"
		"  -F, --flush-threads N    helper threads a secondary's flush copies with\n"
		"                           beside its connection's (0..64; default one per\n"
		"                           core beyond the first); a RAM file that is not\n"
		"                           sealed against shrinking is flushed by the\n"
		"                           connection's thread alone\n"
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
	{"flush-threads", required_argument, NULL, 'F'},
	{"max-conns-per-uid", required_argument, NULL, 'C'},
	{"max-registered-per-uid", required_argument, NULL, 'R'},
	{"max-fds-per-uid", required_argument, NULL, 'D'},
	{"config", required_argument, NULL, 'c'},
	{"version", no_argument, NULL, 'V'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int rctd_parse_id(const char *text, bool group, unsigned *id_p)
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
		if (rctd_parse_id(arg, c == 'G', &id))
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
	case 'F':
		return int_option("--flush-threads", arg, 0, 64, &cfg->flush_threads);
	case 'C':
		return int_option("--max-conns-per-uid", arg, 1,
				  RCTD_MAX_CONNS - RCTD_ADMIN_RESERVE, &cfg->max_conns_per_uid);
	case 'R':
		return size_option("--max-registered-per-uid", arg, &cfg->max_registered_per_uid);
	case 'D':
		return int_option("--max-fds-per-uid", arg, 2, 1 << 30, &cfg->max_fds_per_uid);
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

int rctd_parse_args(struct rctd_cfg *cfg, int argc, char **argv)
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
	while ((c = getopt_long(argc, argv, "s:g:u:G:m:a:l:k:H:L:T:I:M:S:F:C:R:D:c:Vh", longopts,
				NULL)) != -1) {
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
