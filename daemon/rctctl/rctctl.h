/* SPDX-License-Identifier: BSD-3-Clause */
/* rctctl: shared helpers of the subcommands. */
#ifndef RCTCTL_H
#define RCTCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	RCTCTL_EXIT_MISMATCH = 1,
	RCTCTL_EXIT_USAGE = 2,
	RCTCTL_EXIT_TRANSPORT = 3,
	RCTCTL_EXIT_STALE = 4,	 /* pairing failover: this host's data is stale */
	RCTCTL_EXIT_REFUSED = 5, /* pairing: no such session, another role, or busy */
};

/* Parse an unsigned decimal in [min, max]; 0 or -1. */
int rctctl_parse_ulong(const char *text, unsigned long min, unsigned long max, unsigned long *v_p);
/* Print "rctctl: OPTION 'VALUE': expected WHAT" and return RCTCTL_EXIT_USAGE. */
int rctctl_usage_error(const char *option, const char *value, const char *what);
/* Anonymous, pre-faulted memory of @size bytes, or NULL. */
void *rctctl_map_anon(uint64_t size);
/* A private mapping of @size bytes, reserved, not populated (sparse guests). */
void *rctctl_map_sparse(uint64_t size);
void rctctl_unmap(void *p, uint64_t size);

int rctctl_demo(int argc, char **argv);
int rctctl_bench(int argc, char **argv);
/* status, sessions, stats (argv[0] names which). */
int rctctl_ctl(int argc, char **argv);
int rctctl_pairing(int argc, char **argv);
/* rctd's JSON @text (freed): printed as it is with @json (*@j_p NULL), else
 * parsed into *@j_p.  0, or the exit status after a message. */
int rctctl_answer(char *text, bool json, const char *what, json_t **j_p);
/* $RCTD_SOCKET, else /run/rctd/rctd.sock. */
const char *rctctl_socket_default(void);
/* Whether an RDMA device is present (/sys/class/infiniband holds one). */
bool rctctl_rdma_device(void);

#endif /* RCTCTL_H */
