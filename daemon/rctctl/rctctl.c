/* SPDX-License-Identifier: BSD-3-Clause */
/* rctctl: the rct command-line tool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rct/rct.h>

#include "rctctl.h"

int rctctl_parse_ulong(const char *text, unsigned long min, unsigned long max, unsigned long *v_p)
{
	unsigned long v;
	char *end;

	if (!*text || *text == '-')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10); /* "010" is ten, not eight */
	if (errno || *end || v < min || v > max)
		return -1;
	*v_p = v;
	return 0;
}

int rctctl_usage_error(const char *option, const char *value, const char *what)
{
	fprintf(stderr, "rctctl: %s '%s': expected %s (see --help)\n", option, value, what);
	return RCTCTL_EXIT_USAGE;
}

void *rctctl_map_anon(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, size, MADV_POPULATE_WRITE))
		memset(p, 0, size);
	return p;
}

void *rctctl_map_sparse(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void rctctl_unmap(void *p, uint64_t size)
{
	if (p)
		munmap(p, size);
}

static void rctctl_usage(FILE *f)
{
	fprintf(f, "usage: rctctl [--version] [--help] COMMAND [ARGS]\n"
		   "\n"
		   "Commands:\n"
		   "  demo    start a primary and a secondary rctd on 127.0.0.1, drive them with\n"
		   "          simulated guests and verify every checkpoint byte for byte\n"
		   "          (rctctl demo --help)\n"
		   "  bench   the same workload over several backends in one run, against a\n"
		   "          memcpy of the same pages (rctctl bench --help)\n"
		   "  status    a running rctd: pid, uptime, sessions, backends, metrics\n"
		   "  sessions  every session of a running rctd\n"
		   "  stats     every session's counters and latency percentiles\n"
		   "            (rctctl status --help; --socket PATH, --json)\n"
		   "  pairing   a pairing under a cluster manager: show, failover, demote,\n"
		   "            abort, new (rctctl pairing --help)\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		rctctl_usage(stderr);
		return RCTCTL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		rctctl_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("rctctl %d.%d\n", RCT_VERSION_MAJOR, RCT_VERSION_MINOR);
		return 0;
	}
	if (!strcmp(argv[1], "demo"))
		return rctctl_demo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bench"))
		return rctctl_bench(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status") || !strcmp(argv[1], "sessions") || !strcmp(argv[1], "stats"))
		return rctctl_ctl(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pairing"))
		return rctctl_pairing(argc - 1, argv + 1);
	fprintf(stderr, "rctctl: unknown command '%s' (see rctctl --help)\n", argv[1]);
	return RCTCTL_EXIT_USAGE;
}
