/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rct-stall: makes this host slow on purpose, the way a freshly booted
 * machine, an overcommitted host or a noisy neighbour is, for a bounded time:
 *
 *   --faults MB     a page-fault storm beside the daemons: map MB of anonymous
 *                   memory, write every page, unmap, again (first touch of
 *                   memory the host has taken back costs ~4 ms per MB here);
 *   --spin N        N threads spinning (N = cores: a CPU hog on every core);
 *   --stop-pids F   SIGSTOP each process whose pid is a line of file F for
 *                   --stop-ms MS (default 100), one after the other, every
 *                   --every-ms MS (default 1000), then SIGCONT;
 *   --seconds S     stop after S seconds (required; at most 3600).
 *
 * It prints one line when it ends: what it did (loops, MB touched, stops).
 * A SIGSTOPped process is always continued, also on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define STALL_MAX_PIDS 16

static atomic_bool stall_done;
static pid_t stopped = -1; /* a process under SIGSTOP right now, or -1 */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR && !atomic_load(&stall_done))
		;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stall_done, true);
}

static void *spin_main(void *arg)
{
	volatile uint64_t x = 0;

	(void)arg;
	while (!atomic_load_explicit(&stall_done, memory_order_relaxed))
		x++;
	return NULL;
}

struct faults {
	size_t mb;
	uint64_t loops, touched_mb;
};

static void *faults_main(void *arg)
{
	struct faults *f = arg;
	size_t len = f->mb << 20;
	long pg = sysconf(_SC_PAGESIZE);

	while (!atomic_load(&stall_done)) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (p == MAP_FAILED) {
			fprintf(stderr, "rct-stall: mmap of %zu MB: %s\n", f->mb, strerror(errno));
			sleep_ms(100);
			continue;
		}
		for (size_t off = 0; off < len && !atomic_load(&stall_done); off += (size_t)pg)
			p[off] = 1;
		munmap(p, len);
		f->loops++;
		f->touched_mb += f->mb;
	}
	return NULL;
}

static int read_pids(const char *path, pid_t *pids)
{
	FILE *f = fopen(path, "r");
	long v;
	int n = 0;

	if (!f)
		return 0; /* not there yet: the daemons have not started */
	while (n < STALL_MAX_PIDS && fscanf(f, "%ld", &v) == 1)
		if (v > 1 && kill((pid_t)v, 0) == 0)
			pids[n++] = (pid_t)v;
	fclose(f);
	return n;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: rct-stall --seconds S [--faults MB] [--spin N] [--stop-pids FILE "
		     "[--stop-ms MS] [--every-ms MS]]\n"
		     "Slows this host for S seconds: a page-fault storm of MB per loop, N "
		     "spinning threads,\nSIGSTOP of the pids listed in FILE for MS every MS. "
		     "Prints one line when done.\n");
}

static int num(const char *opt, const char *arg, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(arg, &end, 10);
	if (!*arg || *end || errno || *out < lo || *out > hi) {
		fprintf(stderr, "rct-stall: %s '%s': expected %ld..%ld\n", opt, arg, lo, hi);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long seconds = 0, spin = 0, stop_ms = 100, every_ms = 1000, mb = 0;
	const char *pidfile = NULL;
	pthread_t spinners[64], fault_thread;
	struct faults f = {0};
	uint64_t stops = 0, t_end, stop_max = 0, stop_sum = 0;
	struct sched_param sp = {.sched_priority = 2};
	struct sigaction sa = {.sa_handler = on_signal};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			usage(stderr);
			return 2;
		}
		if (!strcmp(a, "--seconds"))
			rc = num(a, v, 1, 3600, &seconds);
		else if (!strcmp(a, "--faults"))
			rc = num(a, v, 1, 16384, &mb);
		else if (!strcmp(a, "--spin"))
			rc = num(a, v, 1, 64, &spin);
		else if (!strcmp(a, "--stop-ms"))
			rc = num(a, v, 1, 10000, &stop_ms);
		else if (!strcmp(a, "--every-ms"))
			rc = num(a, v, 10, 60000, &every_ms);
		else if (!strcmp(a, "--stop-pids"))
			pidfile = v;
		else {
			fprintf(stderr, "rct-stall: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
		if (rc)
			return 2;
		i++;
	}
	if (!seconds) {
		fprintf(stderr, "rct-stall: --seconds is required (it stops by itself)\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (long i = 0; i < spin; i++)
		pthread_create(&spinners[i], NULL, spin_main, NULL);
	f.mb = (size_t)mb;
	if (mb)
		pthread_create(&fault_thread, NULL, faults_main, &f);
	/* The stopper keeps its promise on a loaded host: a "100 ms" stop must not
	 * last 150 because this thread waited for a CPU (SCHED_FIFO above rctd's
	 * liveness threads, where permitted; the measured lengths are printed).
	 * Set after the hogs exist: they must not inherit it. */
	if (pidfile && pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
		fprintf(stderr, "rct-stall: SIGSTOP lengths may overrun (no SCHED_FIFO: %s)\n",
			strerror(errno));

	t_end = now_ms() + (uint64_t)seconds * 1000;
	while (!atomic_load(&stall_done) && now_ms() < t_end) {
		pid_t pids[STALL_MAX_PIDS];
		int n = pidfile ? read_pids(pidfile, pids) : 0;

		for (int i = 0; i < n && !atomic_load(&stall_done); i++) {
			uint64_t t0 = now_ms(), len;

			if (kill(pids[i], SIGSTOP))
				continue;
			stopped = pids[i];
			sleep_ms((unsigned)stop_ms);
			kill(pids[i], SIGCONT);
			stopped = -1;
			len = now_ms() - t0;
			stop_max = len > stop_max ? len : stop_max;
			stop_sum += len;
			stops++;
		}
		sleep_ms((unsigned)every_ms);
	}
	if (stopped > 0)
		kill(stopped, SIGCONT);
	atomic_store(&stall_done, true);
	for (long i = 0; i < spin; i++)
		pthread_join(spinners[i], NULL);
	if (mb)
		pthread_join(fault_thread, NULL);
	printf("rct-stall: %lds, faults %ld MB x %llu loops (%llu MB touched), %ld spinning "
	       "threads, %llu SIGSTOPs of %ld ms (measured: mean %.1f, max %llu ms)\n",
	       seconds, mb, (unsigned long long)f.loops, (unsigned long long)f.touched_mb, spin,
	       (unsigned long long)stops, stop_ms, stops ? (double)stop_sum / (double)stops : 0.0,
	       (unsigned long long)stop_max);
	return 0;
}
