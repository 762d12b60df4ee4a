/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What everything that starts daemons shares: rctctl demo and bench, the
 * fault injector (test/fault/rct-fault) and the end-to-end suites start rctd
 * the same way, wait for it the same way, stop it the same way and make the
 * peers' key the same way; and they make the two guests of a pair the same
 * way.  libc and the simulated guest (daemon/sim/) only.
 */
#ifndef RCT_HARNESS_H
#define RCT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sim.h"

/* How to start one rctd. */
struct harness_rctd {
	const char *rctd;	 /* the program (harness_rctd_path()) */
	const char *socket;	 /* --socket */
	const char *state_dir;	 /* --state-dir; NULL: SOCKET.state (never the host's) */
	const char *psk_file;	 /* --psk-file, or NULL */
	const char *netns;	 /* run it under `ip netns exec NETNS`, or NULL */
	const char *log_path;	 /* its stderr appended to this file, or NULL: inherited */
	const char *log_level;	 /* --log-level; NULL: warn */
	int heartbeat_ms;	 /* --heartbeat-ms; 0: rctd's default */
	int metrics_port;	 /* --metrics-port when > 0 */
	int message_timeout_ms;	 /* --message-timeout-ms when > 0 */
	uint64_t max_registered; /* --max-registered (bytes) when > 0 */
	const char *allow_uid;	 /* --allow-uid, or NULL */
	const char *const *args; /* more arguments, NULL-terminated (at most 8), or NULL */
	unsigned nofile;	 /* RLIMIT_NOFILE (soft and hard) it starts with, when > 0 */
	bool die_with_parent;	 /* SIGTERM when the starting process dies (test suites) */
	int ready_ms;		 /* how long it may take to serve; 0: 10 s */
};

struct rct_client;

/*
 * A process of user @uid (its groups dropped) that runs @fn(@arg, FD) and
 * dies with its parent: @fn says what it got in one line on FD and holds
 * what it took.  That line (its newline dropped) lands in @line, waited for
 * @timeout_ms at most; "" when none came.  Returns the child's pid, or -1.
 * The caller ends it (kill, waitpid).  Needs root.
 */
pid_t harness_as_user(unsigned uid, int (*fn)(void *arg, int fd), void *arg, int timeout_ms,
		      char *line, size_t len);

/*
 * Add region @id of @size bytes to @c's session: an untouched memfd (sparse:
 * it costs no memory) and its bitmap in another, neither sealed, so rctd
 * keeps a descriptor of each.  0 or the request's -errno (-EIO when the
 * memfds could not be made).
 */
int harness_sparse_region(struct rct_client *c, uint32_t id, uint64_t size);

/*
 * Start rctd as @h says and wait until it accepts connections on its socket.
 * Returns its pid, or -errno with why in @why (it exited, with its status;
 * it did not serve in time: then it is killed).
 */
pid_t harness_rctd_start(const struct harness_rctd *h, char *why, size_t why_len);

/*
 * Stop rctd @pid: SIGTERM, then SIGKILL after @grace_ms.  Returns its exit
 * status (128 + signal when killed), or -1 when it was not our child.
 * Nothing is done for @pid <= 0 (returns 0).
 */
int harness_rctd_stop(pid_t pid, int grace_ms);

/* The rctd to start: @given, else the one beside this program, else "rctd" ($PATH). */
const char *harness_rctd_path(const char *given, char *buf, size_t len);

/* 32 random bytes in the new file @path, mode 0600: the peers' pre-shared key.
 * Returns 0, or -errno with why in @why. */
int harness_make_key(const char *path, char *why, size_t why_len);

/* Remove @dir and the files directly in it (a started rctd's state directory). */
void harness_rm_flat_dir(const char *dir);

/*
 * The two guests of a replicated pair in one process: the primary's simulated
 * guest, the secondary's guest RAM, and each side's shared dirty bitmap (one
 * bit per page), all memfds the daemons map.
 */
struct harness_guests {
	uint64_t size;
	size_t bits_len, bits_file; /* a bitmap, and the file that holds it */
	struct sim_guest *pguest;
	void *sram;
	int smemfd;
	uint64_t *pbits, *sbits;
	int pbits_fd, sbits_fd;
	/* Sparse: each bitmap file holds its summary after it
	 * (RCT_IPC_TAKE_SUMMARY), the primary's kept by the simulated guest,
	 * the secondary's by whoever writes sbits; else NULL. */
	uint64_t *psum, *ssum;
};

/*
 * Returns 0, or -errno with why in @why (then nothing is left to destroy).
 * @sparse: a sparse primary guest (sim_guest_create_sparse()) and a
 * secondary RAM that is not pre-faulted either.
 */
int harness_guests_create(struct harness_guests *g, uint64_t size, uint32_t page_size,
			  const struct sim_workload *wl, uint64_t seed, bool sparse, char *why,
			  size_t why_len);
/* Undo harness_guests_create() (also on a zeroed struct). */
void harness_guests_destroy(struct harness_guests *g);

#endif /* RCT_HARNESS_H */
