/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rct-fault's tenant trials (issue 30): one rctd serves every VM of its host,
 * so a co-located tenant (uid 65534, allowed on both daemons) goes for what
 * they share while VM vm, the witness, replicates through the same two
 * daemons.  Each trial is one attack, held while the witness checkpoints on
 * (every epoch flushed and compared byte for byte, device state included) and
 * then re-pairs (both sessions closed and opened again, the full sync
 * verified).  A trial is consistent when the witness did all that and the
 * attack's own check holds.  Needs root (setuid to the tenant).
 *
 * The daemons run with an RLIMIT_NOFILE of 1024 (systemd's default soft
 * limit, where the descriptor attack filled rctd's table) and
 * --max-registered 1G.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "fault.h"

#define TENANT_UID    65534
#define WITNESS_CKPTS 10
#define PAIRING_NAMES 500
#define REPAIR_GAP_US 200000

/* What an attack reaches. */
struct tenant_env {
	const struct daemon *pd, *sd;
	uint16_t port; /* the witness secondary's, for attacks before its primary */
};

struct attack {
	const char *name;
	/* In the tenant's process: writes one line on @fd, then holds what it took. */
	int (*run)(const struct tenant_env *env, int fd);
	bool at_port; /* runs between the witness secondary's LISTEN and its primary's CONNECT */
};

static int say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int say(int fd, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		n = (int)strlen(line);
	line[n++] = '\n';
	return write(fd, line, (size_t)n) == n ? 0 : -1;
}

static void hold(void)
{
	for (;;)
		pause();
}

static struct rct_client_session tenant_session(const char *name, enum rct_role role)
{
	struct rct_client_session p = {
		.role = role, .backend = "tcp", .name = name, .page_size = PAGE};

	return p;
}

/*
 * After its first refusal an attacker keeps taking whatever frees up (the
 * witness's re-pair frees its own share for a while): regions of @size on
 * the session it holds, from id @id, every millisecond for 20 s.
 */
static void grab(struct rct_client *c, uint32_t id, uint64_t size)
{
	for (int i = 0; c && i < 20000 && id < 64; i++) {
		if (!harness_sparse_region(c, id, size))
			id++;
		usleep(1000);
	}
}

/* (1) Six connections of 64 unsealed regions each at the secondary's rctd. */
static int attack_descriptors(const struct tenant_env *env, int fd)
{
	static struct rct_client *c[6];
	unsigned n = 0, k, id = 0;
	int rc = 0;
	char name[16], why[200] = "";

	for (k = 0; k < 6 && !rc; k++) {
		struct rct_client_session p = tenant_session(name, RCT_ROLE_SECONDARY);

		snprintf(name, sizeof(name), "t-fd-%u", k);
		rc = rct_client_open(env->sd->sock, "tenant", &c[k]);
		if (!rc)
			rc = rct_client_session_open(c[k], &p, NULL);
		for (id = 0; !rc && id < 64 && !(rc = harness_sparse_region(c[k], id, 1u << 20));
		     id++)
			n++;
		if (rc)
			snprintf(why, sizeof(why), "%s",
				 c[k] ? rct_client_error(c[k]) : rct_client_open_error());
	}
	say(fd, "%u unsealed regions, then %s (%s)", n, rc ? strerror(-rc) : "no refusal", why);
	grab(c[k - 1], id, 1u << 20);
	hold();
	return 0;
}

/* (2) Sparse regions (no memory cost) and a large staging until refused. */
static int attack_memory(const struct tenant_env *env, int fd)
{
	struct rct_client_session p = tenant_session("t-mem", RCT_ROLE_SECONDARY);
	static struct rct_client *c;
	unsigned n = 0;
	int rc;

	p.staging_size = 128u << 20;
	rc = rct_client_open(env->sd->sock, "tenant", &c);
	if (!rc)
		rc = rct_client_session_open(c, &p, NULL);
	while (!rc && n < 64 && !(rc = harness_sparse_region(c, n, 64u << 20)))
		n++;
	say(fd, "a 128 MiB staging and %u sparse regions of 64 MiB, then %s (%s)", n,
	    rc ? strerror(-rc) : "no refusal", c ? rct_client_error(c) : "");
	grab(c, n, 4u << 20);
	hold();
	return 0;
}

/* (3) The witness's session names, on both daemons, taken whenever free. */
static int attack_names(const struct tenant_env *env, int fd)
{
	static const char *const names[2] = {"vm.secondary", "vm.primary"};
	const struct daemon *d[2] = {env->sd, env->pd};
	struct rct_client *c[2] = {NULL, NULL};
	int rc[2] = {-1, -1};
	bool said = false;

	for (int i = 0; i < 20000 && (rc[0] || rc[1]); i++) {
		for (int k = 0; k < 2; k++) {
			struct rct_client_session p = tenant_session(
				names[k], k ? RCT_ROLE_PRIMARY : RCT_ROLE_SECONDARY);

			if (!rc[k])
				continue;
			if (!c[k] && rct_client_open(d[k]->sock, "tenant", &c[k]))
				c[k] = NULL;
			if (c[k])
				rc[k] = rct_client_session_open(c[k], &p, NULL);
		}
		if (!said) { /* the witness goes on once the tenant tried */
			say(fd, "first tries: %s %s, %s %s", names[0],
			    rc[0] ? strerror(-rc[0]) : "taken", names[1],
			    rc[1] ? strerror(-rc[1]) : "taken");
			said = true;
		}
		usleep(1000);
	}
	hold();
	return 0;
}

/* (4) Connections to the secondary's rctd until refused. */
static int attack_connections(const struct tenant_env *env, int fd)
{
	static struct rct_client *c[300];
	unsigned n = 0;
	int rc = 0;

	while (n < 300 && !(rc = rct_client_open(env->sd->sock, "tenant", &c[n])))
		n++;
	say(fd, "%u connections, then %s (%s)", n, rc ? strerror(-rc) : "no refusal",
	    rct_client_open_error());
	hold();
	return 0;
}

/* (5) Eight silent connections on the witness secondary's peer port. */
static int attack_silent(const struct tenant_env *env, int fd)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(env->port)};
	unsigned n = 0;

	for (int i = 0; i < 8; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (s >= 0 && !connect(s, (struct sockaddr *)&sin, sizeof(sin)))
			n++;
	}
	usleep(100000); /* queued before the witness's primary */
	say(fd, "%u silent connections on port %u", n, env->port);
	hold();
	return 0;
}

/* (6) Pairing ids named at the secondary's rctd, never proved. */
static int attack_pairings(const struct tenant_env *env, int fd)
{
	uint8_t key[RCT_IPC_PAIRING_KEY_LEN] = {0x7e};
	struct rct_client_session p = tenant_session(NULL, RCT_ROLE_SECONDARY);
	unsigned n = 0;
	char id[40];

	for (unsigned i = 0; i < PAIRING_NAMES; i++) {
		struct rct_client_pairing pr = {.id = id, .key = key};
		struct rct_client *c;

		snprintf(id, sizeof(id), "t-pair-%u", i);
		if (rct_client_open(env->sd->sock, "tenant", &c))
			continue;
		if (!rct_client_session_open(c, &p, NULL) &&
		    !rct_client_session_pairing(c, &pr, NULL))
			n++;
		rct_client_close(c);
	}
	say(fd, "%u pairing ids named", n);
	hold();
	return 0;
}

/* (7) STATUS at both daemons: how many of the witness's names it shows. */
static int attack_status(const struct tenant_env *env, int fd)
{
	const struct daemon *d[2] = {env->sd, env->pd};
	unsigned seen = 0;

	for (int k = 0; k < 2; k++) {
		struct rct_client *c;
		char *json = NULL;

		if (rct_client_open(d[k]->sock, "tenant", &c))
			continue;
		if (!rct_client_query(c, RCT_IPC_STATUS, 0, &json))
			seen += (strstr(json, "vm.secondary") != NULL) +
				(strstr(json, "vm.primary") != NULL) +
				(strstr(json, "\"vm\"") != NULL);
		free(json);
		rct_client_close(c);
	}
	say(fd, "STATUS showed %u of the witness's names and pairing", seen);
	hold();
	return 0;
}

static const struct attack attacks[] = {
	{"descriptors", attack_descriptors, false}, {"memory", attack_memory, false},
	{"session names", attack_names, false},	    {"connections", attack_connections, false},
	{"silent peer port", attack_silent, true},  {"pairing files", attack_pairings, false},
	{"status", attack_status, false},
};

struct tenant_job {
	const struct attack *a;
	const struct tenant_env *env;
};

static int tenant_run(void *arg, int fd)
{
	const struct tenant_job *j = arg;

	return j->a->run(j->env, fd);
}

/* The tenant's process running @a; its line in @line (60 s at most). */
static pid_t tenant_start(const struct attack *a, const struct tenant_env *env, char *line,
			  size_t len)
{
	struct tenant_job j = {.a = a, .env = env};
	pid_t pid = harness_as_user(TENANT_UID, tenant_run, &j, 60000, line, len);

	if (!line[0])
		snprintf(line, len, "(the tenant said nothing)");
	return pid;
}

static void tenant_end(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Files of pairings the tenant named in @state. */
static unsigned tenant_state_files(const char *state)
{
	struct dirent *e;
	unsigned n = 0;
	DIR *d = opendir(state);

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "t-pair-", 7);
	closedir(d);
	return n;
}

/* Whether root is refused by @d (why in @why): the administrator must get in. */
static bool admin_refused(const struct daemon *d, char *why, size_t len)
{
	struct rct_client *c;
	int rc = rct_client_open(d->sock, "rctctl", &c);

	if (!rc) {
		rct_client_close(c);
		return false;
	}
	snprintf(why, len, "root refused while the tenant held its connections: %.200s",
		 rct_client_open_error());
	return true;
}

/* The witness closes both sessions and pairs again; @a (at_port) meanwhile. */
static int witness_repair(struct fault_pair *r, struct daemon *pd, struct daemon *sd,
			  const struct attack *a, struct tenant_env *env, pid_t *tenant, char *line,
			  size_t line_len, char *why, size_t len)
{
	int port;

	rct_client_close(r->pc);
	r->pc = NULL;
	secondary_stop(r);
	/* A hypervisor's re-pair takes a while (its COLO starts again): what
	 * the witness freed is there for the taking meanwhile. */
	usleep(REPAIR_GAP_US);
	port = secondary_start(r, sd, "127.0.0.1", "vm.secondary");
	if (port < 0) {
		snprintf(why, len, "the witness's secondary: %s", strerror(-port));
		return -1;
	}
	if (a && a->at_port) {
		env->port = (uint16_t)port;
		*tenant = tenant_start(a, env, line, line_len);
	}
	if (primary_start(r, pd, "127.0.0.1", (uint16_t)port)) {
		snprintf(why, len, "the witness's re-pair: %.200s",
			 r->mismatch[0] ? r->mismatch : "its primary did not pair (see the logs)");
		return -1;
	}
	return 0;
}

/* Both daemons for one trial, and the witness paired through them. */
static int tenant_trial_start(struct fault_pair *r, struct daemon *pd, struct daemon *sd,
			      struct tenant_env *env, char *why, size_t len)
{
	static const char *const args[] = {"--max-registered", "1G", NULL};
	char uid[16], line[8];

	snprintf(uid, sizeof(uid), "%d", TENANT_UID);
	if (daemon_start_with(r->o, sd, "t-secondary", NULL, true, uid, args, 1024) ||
	    daemon_start_with(r->o, pd, "t-primary", NULL, true, uid, args, 1024)) {
		snprintf(why, len, "set-up: an rctd did not start (logs: %s, %s)", sd->log,
			 pd->log);
		return -1;
	}
	return witness_repair(r, pd, sd, NULL, env, NULL, line, sizeof(line), why, len);
}

void scenario_tenants(struct fault_pair *r, struct tally *t)
{
	const size_t n = sizeof(attacks) / sizeof(attacks[0]);
	char line[512], why[400];

	if (geteuid() != 0) {
		printf("tenants: skipped (needs root to act as another user)\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct attack *a = &attacks[i];
		struct daemon pd = {0}, sd = {0};
		struct tenant_env env = {.pd = &pd, .sd = &sd};
		pid_t tenant = -1;
		unsigned files;

		t->trials++;
		why[0] = '\0';
		snprintf(line, sizeof(line), "(not started)");
		if (tenant_trial_start(r, &pd, &sd, &env, why, sizeof(why)))
			goto done;
		if (!a->at_port)
			tenant = tenant_start(a, &env, line, sizeof(line));
		if (pair_checkpoints(r, 1, WITNESS_CKPTS, why, sizeof(why)) ||
		    witness_repair(r, &pd, &sd, a, &env, &tenant, line, sizeof(line), why,
				   sizeof(why)) ||
		    pair_checkpoints(r, 1, WITNESS_CKPTS, why, sizeof(why)))
			goto done;
		files = tenant_state_files(sd.state);
		if (a->run == attack_pairings && files)
			snprintf(why, sizeof(why), "%u state files of pairings never proved",
				 files);
		else if (a->run == attack_status && !strstr(line, "showed 0 "))
			snprintf(why, sizeof(why), "the tenant read the witness's session");
		else if (a->run == attack_connections && admin_refused(&sd, why, sizeof(why)))
			;
		else if (!daemon_alive(&sd) || !daemon_alive(&pd))
			snprintf(why, sizeof(why), "an rctd died");
done:
		tally_count(t, !why[0]);
		printf("tenant %zu/%zu, %s: %s; witness %s%s\n", i + 1, n, a->name, line,
		       why[0] ? "FAILED: " : "",
		       why[0] ? why : "checkpointed on, re-paired, verified");
		tenant_end(tenant);
		rct_client_close(r->pc);
		r->pc = NULL;
		secondary_stop(r);
		daemon_kill(&pd, SIGTERM);
		daemon_kill(&sd, SIGTERM);
	}
}
