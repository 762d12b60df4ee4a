/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the cells of one process share (cell.h): the options demo and bench
 * have in common, where the two peers meet, the two guests and the two rctd
 * started for the run (daemon/harness/).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../harness/harness.h"
#include "cell.h"
#include "rctctl.h"

/*
 * Where the two peers meet.  verbs needs the address of an RDMA device's
 * network interface (rdma_cm maps the address to the device): take the IPv4
 * address of port 1's netdev of the first device by name (readdir's order is
 * the directory's: the soft-RoCE VM's rxe2 came before rxe0).
 */
const char *cell_addr(const struct cell_cfg *cfg, char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;
	char ndev[IF_NAMESIZE + 1] = "";
	const char *found = NULL;
	struct dirent **names = NULL;
	int n;
	FILE *f;

	if (cfg->addr)
		return cfg->addr;
	if (strcmp(cfg->backend, "verbs"))
		return "127.0.0.1";
	n = scandir("/sys/class/infiniband", &names, NULL, alphasort);
	for (int k = 0; k < n; k++) {
		char path[512];

		if (names[k]->d_name[0] != '.' && !ndev[0]) {
			snprintf(path, sizeof(path),
				 "/sys/class/infiniband/%s/ports/1/gid_attrs/ndevs/0",
				 names[k]->d_name);
			f = fopen(path, "r");
			if (f && fgets(ndev, sizeof(ndev), f))
				ndev[strcspn(ndev, "\n")] = '\0';
			if (f)
				fclose(f);
		}
		free(names[k]);
	}
	free(names);
	if (ndev[0] && !getifaddrs(&ifa)) {
		for (i = ifa; i && !found; i = i->ifa_next)
			if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
			    !strcmp(i->ifa_name, ndev) &&
			    inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
				      (socklen_t)len))
				found = buf;
		freeifaddrs(ifa);
	}
	if (!found) {
		fprintf(stderr,
			"run: no IPv4 address on an RDMA device's interface (%s); "
			"using 127.0.0.1 (give --addr)\n",
			ndev[0] ? ndev : "no device");
		return "127.0.0.1";
	}
	fprintf(stderr, "run: peers meet at %s (%s, the RDMA device's interface)\n", found, ndev);
	return found;
}

int cell_parse_option(int c, const char *arg, struct cell_cfg *cfg, uint64_t *region_size)
{
	unsigned long v;

	switch (c) {
	case 's':
		if (sim_parse_size(arg, region_size) || !*region_size ||
		    *region_size % CELL_PAGE_SIZE)
			return rctctl_usage_error("--region-size", arg,
						  "a multiple of 4K such as 64M or 1G");
		return 0;
	case 'w':
		if (sim_workload_parse(arg, &cfg->wl))
			return rctctl_usage_error("--workload", arg,
						  "idle, load or random:PCT (0 < PCT <= 100)");
		return 0;
	case 'k':
		if (rctctl_parse_ulong(arg, 1, 1000000, &v))
			return rctctl_usage_error("--checkpoints", arg, "1..1000000");
		cfg->checkpoints = (unsigned)v;
		return 0;
	case 'i':
		if (rctctl_parse_ulong(arg, 0, 3600000, &v))
			return rctctl_usage_error("--interval-ms", arg, "0..3600000");
		cfg->interval_ms = (unsigned)v;
		return 0;
	case 'S':
		if (rctctl_parse_ulong(arg, 0, ULONG_MAX, &v))
			return rctctl_usage_error("--seed", arg, "a number");
		cfg->seed = v;
		return 0;
	case 't':
		if (rctctl_parse_ulong(arg, 1, 3600000, &v))
			return rctctl_usage_error("--timeout-ms", arg, "1..3600000");
		cfg->timeout_ms = (int)v;
		return 0;
	case 'T':
		if (rctctl_parse_ulong(arg, 0, RCT_MAX_LANES, &v))
			return rctctl_usage_error("--threads", arg, "0..64");
		cfg->threads = (int)v;
		return 0;
	case 'A':
		cfg->addr = arg;
		return 0;
	case 'R':
		cfg->rctd = arg;
		return 0;
	case 'P':
		cfg->psock = arg;
		return 0;
	case 'Q':
		cfg->ssock = arg;
		return 0;
	case 'N':
		if (strlen(arg) > 20 || !*arg)
			return rctctl_usage_error("--vm-name", arg, "1..20 characters");
		cfg->vm_name = arg;
		return 0;
	case 'H':
		if (rctctl_parse_ulong(arg, 1, 60000, &v))
			return rctctl_usage_error("--heartbeat-ms", arg, "1..60000");
		cfg->heartbeat_ms = (int)v;
		return 0;
	case 'M':
		if (rctctl_parse_ulong(arg, 1, 65534, &v))
			return rctctl_usage_error("--metrics-port", arg, "1..65534");
		cfg->metrics_port = (int)v;
		return 0;
	}
	return -1;
}

static pid_t cell_spawn_daemon(const struct cell_cfg *cfg, const char *sock, int metrics_port,
			       const char *psk_file, uint64_t max_registered)
{
	char path[PATH_MAX], why[512];
	struct harness_rctd h = {
		.rctd = harness_rctd_path(cfg->rctd, path, sizeof(path)),
		.socket = sock,
		.psk_file = psk_file,
		.log_level = getenv("RCTD_LOG_LEVEL") ? getenv("RCTD_LOG_LEVEL") : "warn",
		.heartbeat_ms = cfg->heartbeat_ms,
		.metrics_port = metrics_port,
		.max_registered = max_registered,
	};
	pid_t pid = harness_rctd_start(&h, why, sizeof(why));

	if (pid < 0)
		fprintf(stderr, "run: %s%s\n", why, cfg->rctd ? "" : " (give --rctd)");
	return pid;
}

static void cell_stop_daemon(pid_t pid)
{
	int st = harness_rctd_stop(pid, 10000);

	if (st)
		fprintf(stderr, "run: rctd %d ended with status %d\n", (int)pid, st);
}

static int cell_env_daemons(struct cell_env *env, const struct cell_cfg *cfg)
{
	const char *tmp = getenv("TMPDIR");
	uint64_t maxreg;
	char why[512];
	int rc;

	if (cfg->psock || cfg->ssock) {
		if (!cfg->psock || !cfg->ssock) {
			fprintf(stderr, "run: give both --primary-socket and --secondary-socket\n");
			return -EINVAL;
		}
		snprintf(env->psock, sizeof(env->psock), "%s", cfg->psock);
		snprintf(env->ssock, sizeof(env->ssock), "%s", cfg->ssock);
		return 0;
	}
	snprintf(env->dir, sizeof(env->dir), "%.40s/rctctl.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(env->dir)) {
		fprintf(stderr, "run: cannot create a directory for the sockets: %s\n",
			strerror(errno));
		env->dir[0] = '\0';
		return -errno;
	}
	snprintf(env->psock, sizeof(env->psock), "%s/primary.sock", env->dir);
	snprintf(env->ssock, sizeof(env->ssock), "%s/secondary.sock", env->dir);
	/* The two daemons authenticate each other with a key made for this run. */
	snprintf(env->psk, sizeof(env->psk), "%s/peer.key", env->dir);
	rc = harness_make_key(env->psk, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "run: %s\n", why);
		return rc;
	}
	/* A sparse guest larger than this host: rctd's default limit (3/4 of the
	 * host) is for memory it may come to touch, which is the dirty set here. */
	maxreg = cfg->sparse ? 4 * env->size : 0;
	env->spid = cell_spawn_daemon(cfg, env->ssock,
				      cfg->metrics_port > 0 ? cfg->metrics_port + 1 : 0, env->psk,
				      maxreg);
	if (env->spid > 0)
		env->ppid = cell_spawn_daemon(cfg, env->psock, cfg->metrics_port, env->psk, maxreg);
	if (env->spid <= 0 || env->ppid <= 0)
		return -ECHILD;
	return 0;
}

int cell_env_create(struct cell_env *env, const struct cell_cfg *cfg, uint64_t size, bool scratch)
{
	char why[512];
	int rc;

	memset(env, 0, sizeof(*env));
	env->size = size;
	env->sparse = cfg->sparse;
	rc = harness_guests_create(&env->g, size, CELL_PAGE_SIZE, &cfg->wl, cfg->seed, cfg->sparse,
				   why, sizeof(why));
	if (rc) {
		fprintf(stderr, "run: %s\n", why);
		return rc;
	}
	if (scratch)
		env->scratch = cfg->sparse ? rctctl_map_sparse(size) : rctctl_map_anon(size);
	if (scratch && !env->scratch) {
		fprintf(stderr, "run: cannot map the memcpy reference's %" PRIu64 " bytes: %s\n",
			size, strerror(errno));
		cell_env_destroy(env);
		return -ENOMEM;
	}
	rc = cell_env_daemons(env, cfg);
	if (rc) {
		cell_env_destroy(env);
		return rc;
	}
	return 0;
}

/* The pairing records of a daemon started here (SOCK.state/, flat). */
static void cell_rm_state(const char *sock)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s.state", sock);
	harness_rm_flat_dir(dir);
}

void cell_env_destroy(struct cell_env *env)
{
	cell_stop_daemon(env->ppid);
	cell_stop_daemon(env->spid);
	if (env->dir[0]) {
		cell_rm_state(env->psock);
		cell_rm_state(env->ssock);
		unlink(env->psock);
		unlink(env->ssock);
		unlink(env->psk);
		rmdir(env->dir);
	}
	harness_guests_destroy(&env->g);
	rctctl_unmap(env->scratch, env->size);
	free(env->ref_pages);
	memset(env, 0, sizeof(*env));
}
