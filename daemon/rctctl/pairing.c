/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctctl pairing show|failover|demote|abort|new ID: what a cluster manager's
 * agent asks of a pairing on this host (PAIRING_CTL; docs/operations.md).
 */
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

static const struct {
	const char *name;
	uint32_t op;
} pairing_ops[] = {
	{"show", RCT_IPC_PAIRING_SHOW},	    {"failover", RCT_IPC_PAIRING_FAILOVER},
	{"demote", RCT_IPC_PAIRING_DEMOTE}, {"abort", RCT_IPC_PAIRING_ABORT},
	{"new", RCT_IPC_PAIRING_NEW},
};

static void pairing_usage(FILE *f)
{
	fprintf(f,
		"usage: rctctl pairing OP ID [--min-generation G] [--min-epoch E] [--socket PATH]\n"
		"                     [--json]\n"
		"\n"
		"A pairing (a VM) on this host, whichever hypervisor holds its session; what a\n"
		"cluster manager's agent asks (docs/operations.md).  OP is one of:\n"
		"  show      its record (generation, last committed epoch, demoted) and session\n"
		"  failover  secondary: take nothing more from the primary (the peer is told),\n"
		"            record a new generation; refused when this host's data is older\n"
		"            than --min-generation/--min-epoch (what the cluster recorded).\n"
		"            The hypervisor then resumes its guest (QEMU: x-colo-lost-heartbeat)\n"
		"  demote    primary: stop sending to the secondary; this host is no primary of\n"
		"            it again at this generation (it rejoins as a secondary: a resync)\n"
		"  abort     end its session, either role; the record stays\n"
		"  new       no session: a new generation above --min-generation and no epoch,\n"
		"            for a guest that starts afresh\n"
		"\n"
		"  -g, --min-generation G  failover: the floor; new: the base (default 0)\n"
		"  -e, --min-epoch E       failover: the floor at that generation (default: any)\n"
		"  -s, --socket PATH       rctd's socket (default: $RCTD_SOCKET, else\n"
		"                          /run/rctd/rctd.sock)\n"
		"  -j, --json              the pairing as JSON on one line (on failure: an\n"
		"                          object with \"error\" and \"errno\")\n"
		"  -h, --help              this text\n"
		"\n"
		"A host whose flush stopped in the middle of the copy (rctd killed, or its\n"
		"guard) holds no whole image: show says torn at that epoch, and failover is\n"
		"refused until a resync completes.\n"
		"\n"
		"For root and rctd's own user.  Exit status: 0 done; 2 usage; 3 rctd unreachable;\n"
		"4 refused: stale or torn data (failover); 5 refused: no such session, another\n"
		"role, its session is busy, or a generation past the limit (the text says "
		"which).\n");
}

static int pairing_exit(int rc)
{
	if (rc == -ESTALE || rc == -EUCLEAN)
		return RCTCTL_EXIT_STALE;
	if (rc == -ENOENT || rc == -EBUSY || rc == -ETIMEDOUT || rc == -ERANGE)
		return RCTCTL_EXIT_REFUSED;
	return RCTCTL_EXIT_TRANSPORT;
}

static void print_pairing(json_t *j)
{
	json_t *s = json_object_get(j, "session"), *e = json_object_get(j, "last_committed_epoch");
	json_t *dm = json_object_get(j, "demoted_at_generation");
	json_t *torn = json_object_get(j, "torn_at_epoch");
	json_t *flushing = json_object_get(j, "flushing_epoch");

	printf("pairing %s: generation %" JSON_INTEGER_FORMAT,
	       json_string_value(json_object_get(j, "pairing")),
	       json_integer_value(json_object_get(j, "generation")));
	if (json_is_integer(e))
		printf(", last committed epoch %" JSON_INTEGER_FORMAT, json_integer_value(e));
	else
		printf(", no committed epoch");
	if (json_is_integer(dm))
		printf(", demoted at generation %" JSON_INTEGER_FORMAT, json_integer_value(dm));
	if (!json_is_true(json_object_get(j, "recorded")))
		printf(" (no record on this host)");
	if (json_is_integer(torn))
		printf("; TORN: a flush of epoch %" JSON_INTEGER_FORMAT
		       " never finished, no image until a resync",
		       json_integer_value(torn));
	else if (!json_is_null(torn) && torn)
		printf("; TORN: its flush mark is unreadable, no image until a resync");
	if (json_is_integer(flushing))
		printf("; flushing epoch %" JSON_INTEGER_FORMAT " into guest RAM now",
		       json_integer_value(flushing));
	printf("\n");
	if (json_is_object(s))
		printf("session %s (%s, %s): %s\n", json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "role")),
		       json_string_value(json_object_get(s, "state")),
		       json_string_value(json_object_get(s, "replication")));
	else
		printf("no session on this rctd\n");
}

static int pairing_failed(const char *op, const char *id, int rc, const char *text, bool json)
{
	fprintf(stderr, "rctctl: pairing %s %s: %s%s%s\n", op, id, strerror(-rc), *text ? ": " : "",
		text);
	if (json) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i}", "pairing", id, "op", op, "error",
				      *text ? text : strerror(-rc), "errno",
				      rc == -ESTALE	 ? "ESTALE"
				      : rc == -EUCLEAN	 ? "EUCLEAN"
				      : rc == -ERANGE	 ? "ERANGE"
				      : rc == -ENOENT	 ? "ENOENT"
				      : rc == -EBUSY	 ? "EBUSY"
				      : rc == -ETIMEDOUT ? "ETIMEDOUT"
				      : rc == -EPERM	 ? "EPERM"
							 : "EIO",
				      "status", rc);
		char *out = j ? json_dumps(j, JSON_COMPACT) : NULL;

		if (out)
			printf("%s\n", out);
		free(out);
		json_decref(j);
	}
	return pairing_exit(rc);
}

int rctctl_pairing(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"min-generation", required_argument, NULL, 'g'},
		{"min-epoch", required_argument, NULL, 'e'},
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = rctctl_socket_default(), *opname, *id;
	unsigned long long min_gen = 0, min_epoch = UINT64_MAX;
	unsigned long v;
	uint32_t op = 0;
	struct rct_client *c;
	bool json = false;
	char *text = NULL;
	json_t *j;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "g:e:s:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'g':
			if (rctctl_parse_ulong(optarg, 0, UINT64_MAX - 1, &v))
				return rctctl_usage_error("--min-generation", optarg,
							  "a generation (0 or more)");
			min_gen = v;
			break;
		case 'e':
			if (rctctl_parse_ulong(optarg, 0, UINT64_MAX - 1, &v))
				return rctctl_usage_error("--min-epoch", optarg,
							  "an epoch (0 or more)");
			min_epoch = v;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			pairing_usage(stdout);
			return 0;
		default:
			pairing_usage(stderr);
			return RCTCTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "rctctl: pairing needs OP and ID (see rctctl pairing --help)\n");
		return RCTCTL_EXIT_USAGE;
	}
	opname = argv[optind];
	id = argv[optind + 1];
	for (size_t i = 0; i < sizeof(pairing_ops) / sizeof(pairing_ops[0]); i++)
		if (!strcmp(opname, pairing_ops[i].name))
			op = pairing_ops[i].op;
	if (!op)
		return rctctl_usage_error("pairing", opname,
					  "show, failover, demote, abort or new");
	if (strlen(id) >= RCT_IPC_PAIRING_ID_MAX)
		return rctctl_usage_error("pairing ID", id, "at most 63 characters");
	rc = rct_client_open(sock, "rctctl", &c);
	if (rc) {
		pairing_failed(opname, id, rc, rct_client_open_error(), json);
		return RCTCTL_EXIT_TRANSPORT;
	}
	rc = rct_client_pairing_ctl(c, op, id, min_gen, min_epoch, &text);
	if (rc) {
		rc = pairing_failed(opname, id, rc, rct_client_error(c), json);
		rct_client_close(c);
		return rc;
	}
	rct_client_close(c);
	rc = rctctl_answer(text, json, "pairing", &j);
	if (rc || !j)
		return rc;
	print_pairing(j);
	json_decref(j);
	return 0;
}
