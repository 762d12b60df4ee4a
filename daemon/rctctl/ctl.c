/* SPDX-License-Identifier: BSD-3-Clause */
/* rctctl status | sessions | stats: ask a running rctd over its socket. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rct/rct_client.h>

#include "rctctl.h"

static void ctl_usage(FILE *f, const char *cmd)
{
	fprintf(f,
		"usage: rctctl %s [--socket PATH] [--json]\n"
		"\n"
		"  status    the daemon: pid, uptime, sessions, backends, metrics port\n"
		"  sessions  every session: name, role, backend, state, peer, lanes, epoch\n"
		"  stats     every session's counters and latency percentiles (ms)\n"
		"\n"
		"  -s, --socket PATH  rctd's socket (default: $RCTD_SOCKET, else\n"
		"                     /run/rctd/rctd.sock)\n"
		"  -j, --json         the JSON rctd answers, on one line\n"
		"  -h, --help         this text\n"
		"\n"
		"sessions and stats are for root and rctd's own user.\n"
		"Exit status: 0, 2 usage, 3 rctd unreachable or refused.\n",
		cmd);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static double jnum(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* One line per session, plus the full sync's progress where one ran. */
static void print_replication(json_t *a)
{
	json_t *s, *sync, *eta, *fe;
	size_t i;

	json_array_foreach(a, i, s)
	{
		printf("session:     %s (%s): %s", jstr(s, "name"), jstr(s, "role"),
		       jstr(s, "replication"));
		fe = json_object_get(s, "failover_epoch");
		if (json_is_integer(fe))
			printf(", failover image epoch %" JSON_INTEGER_FORMAT,
			       json_integer_value(fe));
		else if (json_object_get(s, "failover_epoch"))
			printf(", no failover image (not in sync)");
		printf("\n");
		if (json_is_string(json_object_get(s, "transport")))
			printf("  transport: %s\n", jstr(s, "transport"));
		sync = json_object_get(s, "sync");
		if (!sync)
			continue;
		eta = json_object_get(sync, "eta_s");
		printf("  full sync: %.0f of %.0f pages (%.1f%%), %.0f pages/s (%.2f GB/s), ",
		       jnum(sync, "pages_done"), jnum(sync, "pages_total"),
		       jnum(sync, "pages_total") > 0
			       ? 100.0 * jnum(sync, "pages_done") / jnum(sync, "pages_total")
			       : 0.0,
		       jnum(sync, "pages_per_s"), jnum(sync, "bytes_per_s") / 1e9);
		if (json_is_number(eta))
			printf("%.1f s left\n", json_number_value(eta));
		else
			printf("done in %.2f s\n", jnum(sync, "elapsed_s"));
	}
}

static void print_status(json_t *j)
{
	json_t *b = json_object_get(j, "backends"), *v;
	json_t *port = json_object_get(j, "metrics_port");
	size_t i;

	printf("rctd pid %d, socket API v%d, up %" JSON_INTEGER_FORMAT " s\n", (int)jnum(j, "pid"),
	       (int)jnum(j, "version"), json_integer_value(json_object_get(j, "uptime_s")));
	printf("socket:      %s\n", jstr(j, "socket"));
	json_t *lim = json_object_get(j, "limits");
	bool own = !strcmp(jstr(j, "view"), "own");

	printf("sessions:    %d (connections %d)%s\n", (int)jnum(j, "sessions"),
	       (int)jnum(j, "connections"), own ? ", this uid's only" : "");
	printf("memory:      %lld MiB held%s (limit %lld MiB, %lld MiB per uid)\n",
	       (long long)jnum(j, "registered_bytes") >> 20, own ? " by this uid" : "",
	       (long long)jnum(lim, "held_bytes") >> 20,
	       (long long)jnum(lim, "held_bytes_per_uid") >> 20);
	printf("descriptors: %d of guest files kept%s (budget %d of %d open files, %d per uid)\n",
	       (int)jnum(j, "kept_descriptors"), own ? " for this uid" : "",
	       (int)jnum(lim, "kept_descriptors_of_guest_files"), (int)jnum(lim, "open_files"),
	       (int)jnum(lim, "kept_descriptors_per_uid"));
	printf("connections: at most %d, %d per uid, the last %d kept for admins\n",
	       (int)jnum(lim, "connections"), (int)jnum(lim, "connections_per_uid"),
	       (int)jnum(lim, "kept_for_admins"));
	printf("peer auth:   %s\n", json_is_true(json_object_get(j, "peer_auth"))
					    ? "pre-shared key"
					    : "none (no --psk-file)");
	printf("backends:   ");
	json_array_foreach(b, i, v) printf(" %s", json_string_value(v));
	printf("\n");
	if (json_is_integer(port))
		printf("metrics:     http://127.0.0.1:%" JSON_INTEGER_FORMAT "/metrics\n",
		       json_integer_value(port));
	else
		printf("metrics:     off\n");
	printf("heartbeat:   %d ms (peer lost after 3 silent intervals)\n",
	       (int)jnum(j, "heartbeat_ms"));
	print_replication(json_object_get(j, "replication"));
}

static void print_sessions(json_t *a)
{
	json_t *s;
	size_t i;

	printf("%-4s %-24s %-9s %-7s %-10s %-28s %5s %8s %8s %-16s %4s\n", "ID", "NAME", "ROLE",
	       "BACKEND", "STATE", "PEER", "LANES", "EPOCH", "CKPTS", "PAIRING", "GEN");
	json_array_foreach(a, i, s)
	{
		json_t *e = json_object_get(s, "last_committed_epoch");
		char epoch[24] = "-";

		if (json_is_integer(e))
			snprintf(epoch, sizeof(epoch), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(e));
		json_t *p = json_object_get(s, "pairing");

		printf("%-4d %-24s %-9s %-7s %-10s %-28s %5d %8s %8.0f %-16s %4.0f\n",
		       (int)jnum(s, "id"), jstr(s, "name"), jstr(s, "role"), jstr(s, "backend"),
		       jstr(s, "state"), jstr(s, "peer"), (int)jnum(s, "lanes"), epoch,
		       jnum(s, "checkpoints"), json_is_string(p) ? json_string_value(p) : "-",
		       jnum(s, "generation"));
	}
	if (!json_array_size(a))
		printf("(no sessions)\n");
}

static void print_stats(json_t *a)
{
	static const char *const hists[] = {"transfer_ms", "commit_rtt_ms", "flush_ms"};
	json_t *s;
	size_t i;

	json_array_foreach(a, i, s)
	{
		printf("%s (%s, %s): %.0f checkpoints, %.0f failed, %.1f MB pages, %.1f MB "
		       "device state\n",
		       jstr(s, "name"), jstr(s, "role"), jstr(s, "backend"), jnum(s, "checkpoints"),
		       jnum(s, "failures"), jnum(s, "bytes") / 1e6,
		       jnum(s, "devstate_bytes") / 1e6);
		printf("  %-14s %7s %9s %9s %9s %9s %9s\n", "ms", "count", "mean", "p50", "p99",
		       "p999", "max");
		for (size_t k = 0; k < sizeof(hists) / sizeof(hists[0]); k++) {
			json_t *h = json_object_get(s, hists[k]);

			if (!jnum(h, "count"))
				continue;
			printf("  %-14s %7.0f %9.3f %9.3f %9.3f %9.3f %9.3f\n", hists[k],
			       jnum(h, "count"), jnum(h, "mean"), jnum(h, "p50"), jnum(h, "p99"),
			       jnum(h, "p999"), jnum(h, "max"));
		}
	}
	if (!json_array_size(a))
		printf("(no sessions)\n");
}

int rctctl_answer(char *text, bool json, const char *what, json_t **j_p)
{
	*j_p = NULL;
	if (json) {
		printf("%s\n", text);
		free(text);
		return 0;
	}
	*j_p = json_loads(text, 0, NULL);
	free(text);
	if (!*j_p) {
		fprintf(stderr, "rctctl: %s: rctd answered text that is not JSON\n", what);
		return RCTCTL_EXIT_TRANSPORT;
	}
	return 0;
}

bool rctctl_rdma_device(void)
{
	DIR *d = opendir("/sys/class/infiniband");
	struct dirent *e;
	bool found = false;

	while (d && (e = readdir(d)))
		found |= e->d_name[0] != '.';
	if (d)
		closedir(d);
	return found;
}

const char *rctctl_socket_default(void)
{
	const char *sock = getenv("RCTD_SOCKET");

	return sock && *sock ? sock : "/run/rctd/rctd.sock";
}

int rctctl_ctl(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = argv[0];
	const char *sock = rctctl_socket_default();
	enum rct_ipc_type type;
	struct rct_client *c;
	bool json = false;
	char *text = NULL;
	json_t *j;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			ctl_usage(stdout, cmd);
			return 0;
		default:
			ctl_usage(stderr, cmd);
			return RCTCTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return rctctl_usage_error(cmd, argv[optind], "no positional arguments");
	type = !strcmp(cmd, "status")	  ? RCT_IPC_STATUS
	       : !strcmp(cmd, "sessions") ? RCT_IPC_SESSIONS
					  : RCT_IPC_STATS;
	rc = rct_client_open(sock, "rctctl", &c);
	if (rc) {
		fprintf(stderr, "rctctl: cannot use rctd: %s\n", rct_client_open_error());
		return RCTCTL_EXIT_TRANSPORT;
	}
	rc = rct_client_query(c, type, RCT_IPC_STATS_ALL, &text);
	if (rc) {
		fprintf(stderr, "rctctl: %s: %s%s%s\n", cmd, strerror(-rc),
			*rct_client_error(c) ? ": " : "", rct_client_error(c));
		rct_client_close(c);
		return RCTCTL_EXIT_TRANSPORT;
	}
	rct_client_close(c);
	rc = rctctl_answer(text, json, cmd, &j);
	if (rc || !j)
		return rc;
	if (type == RCT_IPC_STATUS)
		print_status(j);
	else if (type == RCT_IPC_SESSIONS)
		print_sessions(j);
	else
		print_stats(j);
	json_decref(j);
	return 0;
}
