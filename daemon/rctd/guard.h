/* SPDX-License-Identifier: BSD-3-Clause */
/* guard.c: SIGBUS from a client's shrinking file ends that session, not rctd. */
#ifndef RCTD_GUARD_H
#define RCTD_GUARD_H

#define RCTD_GUARD_TRIPPED (-4096) /* rctd_guarded(): a SIGBUS cut @fn short */

/* Install the process's SIGBUS handler (once, before connection threads). */
int rctd_guard_init(void);
/*
 * Run @fn(@arg) in this thread under the guard: its return value, or
 * RCTD_GUARD_TRIPPED when a SIGBUS cut it short (*@fault_addr_p: the address).
 * What @fn was doing is abandoned mid-way: the caller must not use what it
 * touched again (its session), only tear it down.
 */
int rctd_guarded(int (*fn)(void *arg), void *arg, void **fault_addr_p);

#endif /* RCTD_GUARD_H */
