/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SIGBUS from a client's file.  rctd maps files its clients pass; one that is
 * not sealed against shrinking may be truncated under the mapping, and the
 * next access to a page past its end raises SIGBUS in the thread that made
 * it.  conn_regions_check() catches a shrink between checkpoint steps; this
 * catches the one that races with an access: the connection thread runs its
 * requests and its session's progress under a guard, and a SIGBUS inside one
 * ends that connection's session (the thread jumps back to the guard) instead
 * of rctd and every other VM's session with it.  A SIGBUS outside a guard
 * (rctd's own bug) keeps its default action.
 */
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "guard.h"

static __thread sigjmp_buf *guard_jmp;
static __thread void *guard_addr;

static void guard_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (guard_jmp) {
		sigjmp_buf *jb = guard_jmp;

		guard_jmp = NULL;
		guard_addr = si->si_addr;
		siglongjmp(*jb, 1);
	}
	/* Not ours to survive: the default action, on the retried access. */
	signal(sig, SIG_DFL);
}

int rctd_guard_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL);
}

int rctd_guarded(int (*fn)(void *arg), void *arg, void **fault_addr_p)
{
	sigjmp_buf jb;
	int rc;

	if (sigsetjmp(jb, 1)) {
		*fault_addr_p = guard_addr;
		return RCTD_GUARD_TRIPPED;
	}
	guard_jmp = &jb;
	rc = fn(arg);
	guard_jmp = NULL;
	return rc;
}
