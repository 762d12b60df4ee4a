/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rct-fault: fault injection against real rctd daemons, driven as a
 * hypervisor drives them (librct-client, a simulated guest on each side).
 *
 *   kill-primary    kill -9 the primary's rctd at a random moment while
 *                   checkpoints run; the secondary must report the loss with
 *                   its failover epoch, and its guest RAM and device state
 *                   must equal the primary's snapshot of that epoch.
 *   kill-secondary  kill -9 the secondary's rctd; the primary's rctd must
 *                   report it and stay up, the guest keeps running
 *                   unprotected; a new secondary joins, is resynced while
 *                   the guest runs, then checkpoints are verified again.
 *   link-cut        the secondary's rctd in a network namespace behind a
 *                   veth pair; the link is taken down mid-checkpoint: both
 *                   sides must detect it (heartbeats) and nothing may hang.
 *                   With --link, a veth pair that exists already (the
 *                   soft-RoCE VM's, under rxe1 and rxe2) carries the pairing
 *                   and the cut drops every packet on it, both ways.
 *   hostile         a raw peer sends truncated, oversized and out-of-range
 *                   messages to a listening secondary: a clear error, the
 *                   daemon stays up, guest RAM untouched.  Then cross-pairing:
 *                   another tenant's primary (same host key, not vm's pairing)
 *                   is refused and vm's own primary pairs with the same
 *                   listening secondary, verified.  Then the tenants
 *                   (fault_tenant.c, as root): a co-located tenant goes for
 *                   what one rctd shares while vm checkpoints and re-pairs.
 *
 * Last line: "faults: T trials, C consistent, L lost".  Exit status 0 only
 * when every trial was consistent.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "rawpeer.h"
#include "sim.h"

#include "harness.h"
#include "fault.h"

struct fault_pair;
static void phase_set(struct fault_pair *r, enum phase p);

static const char *const phase_names[PH_NR] = {"guest running", "pause+snapshot", "begin",
					       "dirty",		"device state",	  "commit"};

/*
 * The link a cut takes down.  Either rct-fault's own (netns_up(): the
 * secondary's rctd in namespace rctf-s behind veth rctf0/rctf1, cut by taking
 * rctf0 down), or with --link a veth pair that already exists in this
 * namespace with both daemons here (link_given()): the soft-RoCE VM's rxv0 and
 * rxv1 under rxe1 and rxe2, which cannot be moved (its rdma_rxe listens in the
 * initial namespace only).  That cut drops every packet both ways with the
 * links left up, as a failed switch would: no port event tells either side.
 */
static struct {
	const char *ns;		       /* the secondary's namespace; NULL: this one */
	char addr_s[INET6_ADDRSTRLEN]; /* what the secondary listens on */
	char cut[160], mend[160];      /* shell commands */
} link_cfg = {NS, ADDR_S, "ip link set " VETH_P " down", "ip link set " VETH_P " up"};

static char dir[64];
static char psk_path[128];
/* The pairing key of the VM of every trial (made with the host key). */
uint8_t pairing_key[RCT_IPC_PAIRING_KEY_LEN];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* @t1 - @t0 in ms, negative when @t1 came first (noticed while a cut was still being made). */
static double ms_between(uint64_t t0, uint64_t t1)
{
	return (double)(int64_t)(t1 - t0) / 1e6;
}

/* The primary enters phase @p: the killer reads it, the summary sums it. */
static void phase_set(struct fault_pair *r, enum phase p)
{
	uint64_t t = now_ns();

	if (r->t_phase)
		r->phase_ns[atomic_load(&r->phase)] += t - r->t_phase;
	r->t_phase = t;
	atomic_store(&r->phase, p);
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "fault: '%s' failed (status %d)\n", cmd, rc);
	return rc;
}

/* ------------------------------------------------------------ daemons */

/* The kernel's packet counters into the work folder (net.@when): where a
 * beat that never arrived was dropped (the backlog, a device, UDP). */
static void net_counters(const char *when)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "{ cat /proc/net/softnet_stat; ip -s -s link; cat /proc/net/snmp; } > '%s/net.%s' "
		 "2>&1",
		 dir, when);
	if (system(cmd))
		fprintf(stderr, "fault: the packet counters (%s) were not saved\n", when);
}

/* Start rctd @name (in namespace @ns unless NULL), with the run's key when @psk. */
int daemon_start(const struct opts *o, struct daemon *d, const char *name, const char *ns, bool psk)
{
	return daemon_start_with(o, d, name, ns, psk, NULL, NULL, 0);
}

int daemon_start_with(const struct opts *o, struct daemon *d, const char *name, const char *ns,
		      bool psk, const char *allow_uid, const char *const *args, unsigned nofile)
{
	char state[160], why[512];
	struct harness_rctd h = {.rctd = o->rctd,
				 .socket = d->sock,
				 .state_dir = state,
				 .psk_file = psk ? psk_path : NULL,
				 .netns = ns,
				 .log_path = d->log,
				 .log_level = "info",
				 .heartbeat_ms = o->heartbeat_ms,
				 .allow_uid = allow_uid,
				 .args = args,
				 .nofile = nofile};
	pid_t pid;

	snprintf(d->sock, sizeof(d->sock), "%s/%s.sock", dir, name);
	snprintf(d->state, sizeof(d->state), "%s/%s.state", dir, name);
	snprintf(state, sizeof(state), "%s", d->state);
	snprintf(d->log, sizeof(d->log), "%s/%s.log", dir, name);
	if (allow_uid) /* its tenants reach it */
		chmod(dir, 0755);
	pid = harness_rctd_start(&h, why, sizeof(why));
	if (pid > 0 && allow_uid)
		chmod(d->sock, 0666);
	if (pid < 0) {
		fprintf(stderr, "fault: rctd %s: %s (log: %s)\n", name, why, d->log);
		d->pid = 0;
		return (int)pid;
	}
	d->pid = pid;
	return 0;
}

bool daemon_alive(struct daemon *d)
{
	return d->pid > 0 && waitpid(d->pid, NULL, WNOHANG) == 0 && kill(d->pid, 0) == 0;
}

void daemon_kill(struct daemon *d, int sig)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, sig);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
}

/* STATUS of the rctd at @d, or NULL. */
static json_t *daemon_status(struct daemon *d)
{
	struct rct_client *c;
	char *text = NULL;
	json_t *j = NULL;

	if (rct_client_open(d->sock, "rct-fault-status", &c))
		return NULL;
	if (!rct_client_query(c, RCT_IPC_STATUS, 0, &text))
		j = json_loads(text, 0, NULL);
	free(text);
	rct_client_close(c);
	return j;
}

/* ------------------------------------------------------------ sessions */

/* Every session of a trial belongs to the one VM's pairing. */
static int pair_as_vm(struct rct_client *c)
{
	struct rct_client_pairing p = {.id = "vm", .key = pairing_key};

	return rct_client_session_pairing(c, &p, NULL);
}

/* The parameters of every session of a trial. */
struct rct_client_session session_params(const struct opts *o, enum rct_role role, const char *name)
{
	struct rct_client_session p = {.role = role,
				       .backend = o->backend,
				       .name = name,
				       .lanes = o->lanes,
				       .page_size = PAGE,
				       .timeout_ms = 5000};

	return p;
}

int session_open(const struct opts *o, struct daemon *d, enum rct_role role, const char *name,
		 int memfd, int bits_fd, uint64_t size, struct rct_client **c_p)
{
	struct rct_client_session p = session_params(o, role, name);
	struct rct_client *c;
	int rc;

	rc = rct_client_open(d->sock, name, &c);
	if (rc) {
		fprintf(stderr, "fault: %s: cannot reach rctd at %s: %s\n", name, d->sock,
			strerror(-rc));
		return rc;
	}
	rc = rct_client_session_open(c, &p, NULL);
	if (!rc)
		rc = pair_as_vm(c);
	if (!rc)
		rc = rct_client_region_add(c, REGION_ID, memfd, 0, size, bits_fd, 0, NULL);
	if (rc) {
		fprintf(stderr, "fault: %s: %s (%s)\n", name, strerror(-rc), rct_client_error(c));
		rct_client_close(c);
		return rc;
	}
	*c_p = c;
	return 0;
}

/* Keep what the secondary's own guest wrote since the flush (the pages marked in sbits). */
static void scrib_keep(struct fault_pair *r)
{
	r->nscrib = 0;
	for (uint64_t w = 0; w < r->g.bits_len / 8; w++)
		for (uint64_t bits = r->g.sbits[w]; bits && r->nscrib < SCRIB_MAX;
		     bits &= bits - 1) {
			uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(bits);

			memcpy(r->scrib + (size_t)r->nscrib * PAGE,
			       (const uint8_t *)r->g.sram + page * PAGE, PAGE);
			r->scrib_page[r->nscrib++] = page;
		}
}

/*
 * At PEER_LOST (r->lock held): what the secondary's guest really holds must be
 * the last flushed image plus its own writes since, page for page; an epoch in
 * flight must have left no trace.  Sets failover_equal / failover_why.
 */
static void failover_check_ram(struct fault_pair *r)
{
	const uint8_t *ram = r->g.sram, *snap;
	unsigned k = 0;

	r->failover_equal = false;
	if (r->flushed == UINT64_MAX || r->snap_epoch[r->flushed % SNAPS] != r->flushed) {
		/* No image yet, or a live resync (not an image): nothing to hold. */
		r->failover_equal = true;
		return;
	}
	snap = r->snap[r->flushed % SNAPS];
	for (uint64_t p = 0; p < r->npages; p++) {
		const uint8_t *want = snap + p * PAGE;

		if (k < r->nscrib && r->scrib_page[k] == p)
			want = r->scrib + (size_t)k++ * PAGE;
		if (memcmp(ram + p * PAGE, want, PAGE)) {
			snprintf(r->failover_why, sizeof(r->failover_why),
				 "at failover, guest RAM page %" PRIu64 " is neither epoch %" PRIu64
				 " nor the secondary's own write%s",
				 p, r->flushed,
				 r->lost_discarded != UINT64_MAX ? " (an epoch in flight leaked in)"
								 : "");
			return;
		}
	}
	r->failover_equal = true;
}

/* The secondary's hypervisor: flush every ready checkpoint, compare it with the
 * primary's snapshot of that epoch, then let its own guest dirty a few pages. */
static void *secondary_main(void *arg)
{
	struct fault_pair *r = arg;
	struct rct_event ev = {0};
	const void *dev;
	size_t len;
	uint64_t bad;
	int rc;

	rc = rct_client_accept(r->sc, NULL);
	for (;;) {
		if (!rc)
			rc = rct_client_event_next(r->sc, 100, &ev);
		if (rc == -EAGAIN) {
			pthread_mutex_lock(&r->lock);
			rc = r->sstop ? -ECANCELED : 0;
			pthread_mutex_unlock(&r->lock);
			if (!rc)
				continue;
		}
		if (rc) {
			pthread_mutex_lock(&r->lock);
			r->lost = true;
			r->lost_epoch = UINT64_MAX;
			r->lost_status = RCT_ERR_PEER_LOST;
			r->t_lost = now_ns();
			snprintf(r->mismatch, sizeof(r->mismatch), "secondary's rctd: %s",
				 strerror(-rc));
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
			return NULL;
		}
		if (ev.type == RCT_EVENT_PEER_LOST) {
			pthread_mutex_lock(&r->lock);
			r->lost = true;
			r->lost_epoch = ev.epoch;
			r->lost_status = ev.status;
			r->lost_discarded = ev.discarded;
			/* A READY epoch came as CKPT_READY before this event and
			 * was flushed above: the guest continues from here. */
			failover_check_ram(r);
			r->t_lost = now_ns();
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
			return NULL;
		}
		if (ev.type != RCT_EVENT_CKPT_READY)
			continue;
		rc = rct_client_ckpt_flush(r->sc, ev.epoch, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL);
		memset(r->g.sbits, 0, r->g.bits_len);
		pthread_mutex_lock(&r->lock);
		r->nscrib = 0; /* the flush put those pages back to the primary's */
		if (rc) {
			snprintf(r->mismatch, sizeof(r->mismatch), "flush %" PRIu64 ": %s (%s)",
				 ev.epoch, strerror(-rc), rct_client_error(r->sc));
			r->flushed_equal = false;
		} else {
			const uint8_t *snap = r->snap[ev.epoch % SNAPS];
			size_t want = sim_devstate(r->o->seed, ev.epoch, &r->sdevbuf, &r->sdevcap);

			r->flushed = ev.epoch;
			r->flushed_equal = r->snap_epoch[ev.epoch % SNAPS] == ev.epoch &&
					   sim_compare(r->g.sram, snap, r->npages, PAGE, &bad);
			if (!r->flushed_equal)
				snprintf(r->mismatch, sizeof(r->mismatch),
					 "epoch %" PRIu64 ": guest RAM differs at page %" PRIu64,
					 ev.epoch, bad);
			else if (rct_client_devstate_get(r->sc, ev.epoch, &dev, &len) ||
				 len != want || memcmp(dev, r->sdevbuf, len)) {
				r->flushed_equal = false;
				snprintf(r->mismatch, sizeof(r->mismatch),
					 "epoch %" PRIu64 ": device state differs", ev.epoch);
			}
			/* The secondary's own guest runs until the next checkpoint. */
			if (r->flushed_equal) {
				sim_scribble(r->g.sram, r->npages, PAGE, 8, &r->rng, r->g.sbits,
					     NULL);
				scrib_keep(r);
			}
		}
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
}

/* Secondary: a session on @d, listening on @addr; returns its port or -errno. */
int secondary_start(struct fault_pair *r, struct daemon *d, const char *addr, const char *name)
{
	uint16_t port;
	int rc;

	pthread_mutex_lock(&r->lock);
	r->lost = false;
	r->nscrib = 0;
	r->lost_discarded = UINT64_MAX;
	r->failover_equal = false;
	r->flushed = UINT64_MAX;
	r->flushed_equal = false;
	r->mismatch[0] = '\0';
	pthread_mutex_unlock(&r->lock);
	memset(r->g.sbits, 0, r->g.bits_len);
	rc = session_open(r->o, d, RCT_ROLE_SECONDARY, name, r->g.smemfd, r->g.sbits_fd, r->o->size,
			  &r->sc);
	if (rc)
		return rc;
	rc = rct_client_listen(r->sc, addr, 0, &port);
	if (rc) {
		fprintf(stderr, "fault: listen on %s: %s (%s)\n", addr, strerror(-rc),
			rct_client_error(r->sc));
		rct_client_close(r->sc);
		r->sc = NULL;
		return rc;
	}
	if (pthread_create(&r->sthread, NULL, secondary_main, r)) {
		rct_client_close(r->sc);
		r->sc = NULL;
		return -EAGAIN;
	}
	return port;
}

void secondary_stop(struct fault_pair *r)
{
	if (!r->sc)
		return;
	pthread_mutex_lock(&r->lock);
	r->sstop = true;
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->sthread, NULL);
	/* Closes the session synchronously: its name is free again at once. */
	rct_client_close(r->sc);
	r->sc = NULL;
	r->sstop = false;
}

/* Wait until the secondary flushed @epoch or lost its primary. */
bool secondary_wait_flushed(struct fault_pair *r, uint64_t epoch, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
	struct timespec ts;
	bool ok;

	pthread_mutex_lock(&r->lock);
	while (r->flushed != epoch && !r->lost && now_ns() < deadline) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	}
	ok = r->flushed == epoch && r->flushed_equal;
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static bool secondary_wait_lost(struct fault_pair *r, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
	bool lost;

	pthread_mutex_lock(&r->lock);
	while (!r->lost && now_ns() < deadline) {
		pthread_mutex_unlock(&r->lock);
		sleep_us(1000);
		pthread_mutex_lock(&r->lock);
	}
	lost = r->lost;
	pthread_mutex_unlock(&r->lock);
	return lost;
}

/*
 * One checkpoint of the primary: pause the guest, keep its snapshot for the
 * secondary's comparison, begin, dirty, device state, commit.  Snapshots live
 * in a ring of SNAPS: the one for epoch e is written before begin(e), which
 * waits for the flush of e-1, which the secondary does after comparing e-2,
 * so slots e and e-2 differ with SNAPS >= 3.
 */
static int primary_ckpt(struct fault_pair *r, uint64_t e, unsigned flags, bool pause)
{
	size_t len;
	int rc;

	atomic_store(&r->epoch, e);
	phase_set(r, PH_RUNNING);
	if (pause)
		sim_guest_pause(r->g.pguest, r->g.pbits);
	phase_set(r, PH_SNAPSHOT);
	memcpy(r->snap[e % SNAPS], sim_guest_ram(r->g.pguest), r->o->size);
	r->snap_epoch[e % SNAPS] = (flags & RCT_CKPT_LIVE) ? UINT64_MAX : e;
	len = sim_devstate(r->o->seed, e, &r->devbuf, &r->devcap);
	phase_set(r, PH_BEGIN);
	rc = rct_client_ckpt_begin(r->pc, e, flags);
	phase_set(r, PH_DIRTY);
	if (!rc && !(flags & RCT_CKPT_FULL))
		rc = rct_client_ckpt_dirty(r->pc, REGION_ID);
	phase_set(r, PH_DEVSTATE);
	if (!rc)
		rc = rct_client_ckpt_devstate(r->pc, r->devbuf, len);
	phase_set(r, PH_COMMIT);
	if (!rc)
		rc = rct_client_ckpt_commit(r->pc, NULL);
	if (!rc && !(flags & RCT_CKPT_LIVE))
		atomic_store(&r->committed, e);
	phase_set(r, PH_RUNNING);
	return rc;
}

/* Primary: a session on @d connected to @addr:@port, then the first full sync. */
int primary_start(struct fault_pair *r, struct daemon *d, const char *addr, uint16_t port)
{
	int rc;

	atomic_store(&r->committed, UINT64_MAX);
	rc = session_open(r->o, d, RCT_ROLE_PRIMARY, "vm.primary", sim_guest_memfd(r->g.pguest),
			  r->g.pbits_fd, r->o->size, &r->pc);
	if (rc)
		return rc;
	rc = rct_client_connect(r->pc, addr, port, NULL);
	if (rc) {
		fprintf(stderr, "fault: connect to %s:%u: %s (%s)\n", addr, port, strerror(-rc),
			rct_client_error(r->pc));
		return rc;
	}
	rc = primary_ckpt(r, 0, RCT_CKPT_FULL, true);
	if (!rc && !secondary_wait_flushed(r, 0, 10000))
		rc = -EIO;
	return rc;
}

/* The guest's work of one interval, done by hand so that it takes no time:
 * half the pages rewritten (the workload thread stays paused). */
static void primary_dirty(struct fault_pair *r, uint64_t *rng)
{
	uint8_t *ram = sim_guest_ram(r->g.pguest);

	memset(r->g.pbits, 0, r->g.bits_len);
	for (uint64_t i = 0; i < r->npages / 2; i++) {
		uint64_t page = sim_rand(rng) % r->npages;

		memset(ram + page * PAGE + sim_rand(rng) % (PAGE - 64), (int)(sim_rand(rng) | 1),
		       64);
		r->g.pbits[page / 64] |= 1ull << (page % 64);
	}
}

/* Checkpoints every @interval_us until one fails; the epoch that failed, or
 * MAX_EPOCHS when none did within 20 s (the fault never took effect).  Most
 * of the time goes to transfers, so faults land in them. */
static uint64_t primary_loop(struct fault_pair *r, uint64_t first, unsigned interval_us)
{
	uint64_t rng = r->o->seed + first, t_end = now_ns() + 20000000000ull;
	uint64_t e = first, failed = MAX_EPOCHS;

	for (; e < MAX_EPOCHS && now_ns() < t_end; e++) {
		sleep_us(interval_us);
		primary_dirty(r, &rng);
		if (primary_ckpt(r, e, 0, false)) {
			failed = e;
			break;
		}
	}
	atomic_store(&r->primary_done, true);
	return failed;
}

int pair_checkpoints(struct fault_pair *r, uint64_t first, unsigned n, char *why, size_t len)
{
	uint64_t rng = r->o->seed ^ first;

	for (uint64_t e = first; e < first + n; e++) {
		int rc;

		primary_dirty(r, &rng);
		rc = primary_ckpt(r, e, 0, false);
		if (rc) {
			snprintf(why, len, "checkpoint %" PRIu64 ": %s (%.120s)", e, strerror(-rc),
				 rct_client_error(r->pc));
			return -1;
		}
		if (!secondary_wait_flushed(r, e, 5000)) {
			snprintf(why, len, "epoch %" PRIu64 " not flushed equal: %.120s", e,
				 r->mismatch[0] ? r->mismatch : "timed out");
			return -1;
		}
	}
	return 0;
}

struct killer {
	struct fault_pair *r;
	struct daemon *victim;
	const char *cmd; /* instead of a kill: a shell command (link cut) */
	uint64_t delay_us;
	uint64_t rng;
	uint64_t t_fault; /* when the fault took effect */
	double cmd_ms;	  /* how long @cmd took */
	int phase;
	uint64_t epoch;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	/* Wait for epoch 1 to be committed: then the failover image is not the sync. */
	while (atomic_load(&k->r->committed) == UINT64_MAX || atomic_load(&k->r->committed) < 1) {
		if (atomic_load(&k->r->primary_done))
			return NULL; /* it failed by itself: reported as such */
		sleep_us(200);
	}
	sleep_us(k->delay_us);
	/*
	 * Three faults in four land only while rctd is moving this checkpoint
	 * (begin .. commit): the hypervisor's own pause and snapshot copy would
	 * otherwise take most of them.  Until then, wait small random steps.
	 */
	for (int tries = 0; k->rng % 4 && tries < 20; tries++) {
		for (int i = 0; i < 1000 && atomic_load(&k->r->phase) < PH_BEGIN &&
				!atomic_load(&k->r->primary_done);
		     i++)
			sleep_us(200);
		/* Then somewhere inside it, not at its start. */
		sleep_us(sim_rand(&k->rng) % 4000);
		if (atomic_load(&k->r->phase) >= PH_BEGIN)
			break;
	}
	k->phase = atomic_load(&k->r->phase);
	k->epoch = atomic_load(&k->r->epoch);
	k->t_fault = now_ns();
	if (k->cmd) {
		/* The link is cut when the command returns: forking ip or tc took
		 * hundreds of ms in the soft-RoCE VM (TCG), which is not detection. */
		if (system(k->cmd))
			fprintf(stderr, "fault: '%s' failed\n", k->cmd);
		k->cmd_ms = (double)(now_ns() - k->t_fault) / 1e6;
		k->t_fault = now_ns();
		/* The primary went on meanwhile: what was in flight when the cut
		 * took effect is at most what is in flight now. */
		k->phase = atomic_load(&k->r->phase);
		k->epoch = atomic_load(&k->r->epoch);
	} else {
		kill(k->victim->pid, SIGKILL);
	}
	return NULL;
}

/*
 * After the primary is gone: the secondary's failover epoch must be the last
 * one whose commit returned (or the one in flight, if its ACK was sent), it
 * must have been flushed and compared equal, the guest RAM at the loss must be
 * that image plus the secondary's own writes, and an epoch the event names as
 * discarded must be the one after it.
 */
static bool check_failover(struct fault_pair *r, const struct killer *k, char *why, size_t len)
{
	uint64_t committed = atomic_load(&r->committed);
	bool ok;

	pthread_mutex_lock(&r->lock);
	if (r->lost_epoch == UINT64_MAX)
		snprintf(why, len, "no failover image (%s)", r->mismatch);
	else if (r->lost_epoch < committed || r->lost_epoch > k->epoch)
		snprintf(why, len,
			 "failover epoch %" PRIu64 ", but commit returned for %" PRIu64
			 " and %" PRIu64 " was in flight",
			 r->lost_epoch, committed, k->epoch);
	else if (r->flushed != r->lost_epoch)
		snprintf(why, len, "failover epoch %" PRIu64 " but %" PRIu64 " flushed",
			 r->lost_epoch, r->flushed);
	else if (!r->flushed_equal)
		snprintf(why, len, "%s", r->mismatch);
	else if (!r->failover_equal)
		snprintf(why, len, "%s", r->failover_why);
	else if (r->lost_discarded != UINT64_MAX &&
		 (r->lost_discarded <= r->lost_epoch || r->lost_discarded > k->epoch))
		snprintf(why, len,
			 "the event discards epoch %" PRIu64 " (failover epoch %" PRIu64
			 ", %" PRIu64 " in flight)",
			 r->lost_discarded, r->lost_epoch, k->epoch);
	else
		why[0] = '\0';
	ok = !why[0];
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static void tally_detect(struct tally *t, double ms)
{
	if (t->ndetect < sizeof(t->detect_ms) / sizeof(t->detect_ms[0]))
		t->detect_ms[t->ndetect++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void ms_print(const char *what, double *ms, unsigned n)
{
	if (!n)
		return;
	qsort(ms, n, sizeof(double), cmp_double);
	printf("; %s ms: min %.1f, median %.1f, max %.1f", what, ms[0], ms[n / 2], ms[n - 1]);
}

static void tally_print(const char *what, struct tally *t)
{
	printf("%s: %u trials, %u consistent, %u lost", what, t->trials, t->consistent, t->lost);
	ms_print("detection", t->detect_ms, t->ndetect);
	ms_print("the secondary's", t->sdetect_ms, t->nsdetect);
	printf("\n");
	for (int p = 0; p < PH_NR; p++)
		if (t->phases[p])
			printf("  faults during %-15s %u\n", phase_names[p], t->phases[p]);
	fflush(stdout);
}

/* ------------------------------------------------------------ scenarios */

void tally_count(struct tally *t, bool ok)
{
	if (ok)
		t->consistent++;
	else
		t->lost++;
}

/* Close both sessions and kill the daemon the trial started. */
void trial_end(struct fault_pair *r, struct daemon *d)
{
	fflush(stdout);
	rct_client_close(r->pc);
	r->pc = NULL;
	secondary_stop(r);
	daemon_kill(d, SIGKILL);
}

/* (a) kill -9 the primary's rctd at a random moment. */
/* Where the primary's time went: faults at random moments land in proportion. */
static void phase_print(struct fault_pair *r)
{
	uint64_t sum = 0;

	for (int p = 0; p < PH_NR; p++)
		sum += r->phase_ns[p];
	printf("  the primary's time:");
	for (int p = 0; sum && p < PH_NR; p++)
		printf(" %s %.0f%%%s", phase_names[p], 100.0 * (double)r->phase_ns[p] / (double)sum,
		       p + 1 < PH_NR ? "," : "\n");
	memset(r->phase_ns, 0, sizeof(r->phase_ns));
}

static void scenario_kill_primary(struct fault_pair *r, struct daemon *sd, struct tally *t)
{
	uint64_t rng = r->o->seed ^ 0xa11ce;

	for (unsigned i = 1; i <= r->o->kill_primary; i++) {
		struct daemon pd = {0};
		struct killer k = {.r = r, .victim = &pd};
		pthread_t kt;
		char why[320];
		bool ok = false;
		int port;

		t->trials++;
		port = secondary_start(r, sd, "127.0.0.1", "vm.secondary");
		if (port < 0 || daemon_start(r->o, &pd, "primary", NULL, true) ||
		    primary_start(r, &pd, "127.0.0.1", (uint16_t)port)) {
			snprintf(why, sizeof(why), "set-up failed");
			goto done;
		}
		/* 0..30 ms after epoch 1: checkpoints of a few ms every 1 ms. */
		k.delay_us = sim_rand(&rng) % 30000;
		k.rng = sim_rand(&rng);
		atomic_store(&r->primary_done, false);
		pthread_create(&kt, NULL, killer_main, &k);
		if (primary_loop(r, 1, 1000) == MAX_EPOCHS) {
			pthread_join(kt, NULL);
			snprintf(why, sizeof(why), "the primary ran on: the kill took no effect");
			goto done;
		}
		pthread_join(kt, NULL);
		if (!k.t_fault) {
			snprintf(why, sizeof(why), "a checkpoint failed before the kill (see %s)",
				 pd.log);
			goto done;
		}
		if (!secondary_wait_lost(r, 5000)) {
			snprintf(why, sizeof(why), "the secondary did not report the loss (hang)");
			goto done;
		}
		tally_detect(t, ms_between(k.t_fault, r->t_lost));
		t->phases[k.phase]++;
		ok = check_failover(r, &k, why, sizeof(why));
		if (ok && !daemon_alive(sd)) {
			ok = false;
			snprintf(why, sizeof(why), "the secondary's rctd died");
		}
done:
		tally_count(t, ok);
		if (!ok || i % 10 == 0 || i == r->o->kill_primary)
			printf("kill-primary %u/%u: killed during %s of epoch %" PRIu64
			       "; failover image %" PRId64 ": %s%s\n",
			       i, r->o->kill_primary, phase_names[k.phase], k.epoch,
			       (int64_t)r->lost_epoch,
			       ok ? "consistent" : "NOT consistent: ", ok ? "" : why);
		trial_end(r, &pd);
	}
	phase_print(r);
}

/* Poll the primary rctd's STATUS during a resync; remember the progress seen. */
struct watcher {
	struct daemon *d;
	_Atomic bool stop;
	bool seen_active;
	double max_done, total;
	char line[200];
};

static void *watcher_main(void *arg)
{
	struct watcher *w = arg;

	while (!atomic_load(&w->stop)) {
		json_t *j = daemon_status(w->d), *s;
		size_t i;

		json_array_foreach(json_object_get(j, "replication"), i, s)
		{
			json_t *sync = json_object_get(s, "sync");

			if (!sync || !json_is_true(json_object_get(sync, "active")))
				continue;
			w->seen_active = true;
			w->max_done = json_number_value(json_object_get(sync, "pages_done"));
			w->total = json_number_value(json_object_get(sync, "pages_total"));
			snprintf(w->line, sizeof(w->line),
				 "%.0f of %.0f pages, %.2f GB/s, %.2f s left", w->max_done,
				 w->total,
				 json_number_value(json_object_get(sync, "bytes_per_s")) / 1e9,
				 json_number_value(json_object_get(sync, "eta_s")));
		}
		json_decref(j);
		sleep_us(5000);
	}
	return NULL;
}

/* The primary alone, then a new secondary: resync while the guest runs, then
 * verified checkpoints.  Returns true when the secondary ends consistent. */
static bool rejoin(struct fault_pair *r, struct daemon *pd, struct daemon *sd, const char *saddr,
		   uint64_t *epoch, char *why, size_t len)
{
	struct watcher w = {.d = pd};
	pthread_t wt;
	int port, rc;

	port = secondary_start(r, sd, saddr, "vm.secondary");
	if (port < 0) {
		snprintf(why, len, "new secondary: %s", strerror(-port));
		return false;
	}
	rc = rct_client_session_close(r->pc);
	if (!rc) {
		struct rct_client_session p = session_params(r->o, RCT_ROLE_PRIMARY, "vm.primary");

		rc = rct_client_session_open(r->pc, &p, NULL);
		if (!rc)
			rc = pair_as_vm(r->pc);
	}
	if (!rc)
		rc = rct_client_region_add(r->pc, REGION_ID, sim_guest_memfd(r->g.pguest), 0,
					   r->o->size, r->g.pbits_fd, 0, NULL);
	if (!rc)
		rc = rct_client_connect(r->pc, saddr, (uint16_t)port, NULL);
	if (rc) {
		snprintf(why, len, "rejoin: %s (%s)", strerror(-rc), rct_client_error(r->pc));
		return false;
	}
	/* Dirty tracking from here; the sync reads RAM while the guest writes it. */
	sim_guest_pause(r->g.pguest, r->g.pbits);
	sim_guest_resume(r->g.pguest);
	pthread_create(&wt, NULL, watcher_main, &w);
	rc = primary_ckpt(r, ++*epoch, RCT_CKPT_FULL | RCT_CKPT_LIVE, false);
	atomic_store(&w.stop, true);
	pthread_join(wt, NULL);
	if (rc) {
		snprintf(why, len, "resync: %s (%s)", strerror(-rc), rct_client_error(r->pc));
		return false;
	}
	printf("  resync (guest running): %s; status showed %s\n",
	       w.seen_active ? "progress seen" : "too fast to see in progress",
	       w.seen_active ? w.line : "-");
	/* Then incremental checkpoints, each verified. */
	for (int k = 0; k < 3; k++) {
		rc = primary_ckpt(r, ++*epoch, 0, true);
		if (rc || !secondary_wait_flushed(r, *epoch, 10000)) {
			snprintf(why, len, "checkpoint %" PRIu64 " after the resync: %s", *epoch,
				 rc ? strerror(-rc) : r->mismatch);
			return false;
		}
		sim_guest_resume(r->g.pguest);
		sleep_us(2000);
	}
	sim_guest_pause(r->g.pguest, r->g.pbits);
	return true;
}

/* Primary's rctd alive, answering STATUS, and saying the guest is unprotected. */
static bool primary_reports_loss(struct daemon *pd, char *why, size_t len)
{
	json_t *j = daemon_status(pd), *s;
	const char *rep = NULL;
	size_t i;

	json_array_foreach(json_object_get(j, "replication"), i, s)
		rep = json_string_value(json_object_get(s, "replication"));
	if (!j || !rep || strncmp(rep, "unprotected", 11))
		snprintf(why, len, "primary's rctd status: %s",
			 j ? (rep ? rep : "?") : "no answer");
	else
		why[0] = '\0';
	if (rep && !why[0])
		printf("  primary's rctd status: %s\n", rep);
	json_decref(j);
	return !why[0];
}

/* (c) kill -9 the secondary's rctd; (b) cut its link: the primary detects, stays up, rejoins. */
static void scenario_secondary_fault(struct fault_pair *r, struct daemon *pd, bool cut, unsigned n,
				     struct tally *t)
{
	const char *name = cut ? "link-cut" : "kill-secondary";
	const char *saddr = cut ? link_cfg.addr_s : "127.0.0.1";
	const char *ns = cut ? link_cfg.ns : NULL;
	uint64_t rng = r->o->seed ^ (cut ? 0xc07 : 0x5ec);

	for (unsigned i = 1; i <= n; i++) {
		struct daemon sd = {0};
		struct killer k = {.r = r, .victim = &sd};
		uint64_t e, t_detect = 0;
		pthread_t kt;
		char why[320] = "set-up failed";
		bool ok = false;
		int port;

		t->trials++;
		if (cut)
			k.cmd = link_cfg.cut;
		if (daemon_start(r->o, &sd, "secondary", ns, true))
			goto done;
		port = secondary_start(r, &sd, saddr, "vm.secondary");
		if (port < 0 || primary_start(r, pd, saddr, (uint16_t)port))
			goto done;
		k.delay_us = sim_rand(&rng) % 30000;
		k.rng = sim_rand(&rng);
		atomic_store(&r->primary_done, false);
		pthread_create(&kt, NULL, killer_main, &k);
		e = primary_loop(r, 1, 2000);
		t_detect = now_ns();
		pthread_join(kt, NULL);
		if (e >= MAX_EPOCHS) {
			snprintf(why, sizeof(why), "the primary never noticed");
			goto done;
		}
		if (!k.t_fault) {
			snprintf(why, sizeof(why),
				 "checkpoint %" PRIu64 " failed before any fault (see %s)", e,
				 pd->log);
			goto done;
		}
		tally_detect(t, ms_between(k.t_fault, t_detect));
		t->phases[k.phase]++;
		if (cut) {
			/* The secondary must notice too, and keep its image. */
			if (!secondary_wait_lost(r, 5000)) {
				snprintf(why, sizeof(why), "the secondary did not notice (hang)");
				goto done;
			}
			if (!check_failover(r, &k, why, sizeof(why)))
				goto done;
			if (t->nsdetect < sizeof(t->sdetect_ms) / sizeof(t->sdetect_ms[0]))
				t->sdetect_ms[t->nsdetect++] = ms_between(k.t_fault, r->t_lost);
			printf("  %s %u: the cut took %.1f ms; the secondary noticed %.1f ms after "
			       "it, failover image %" PRIu64 "\n",
			       name, i, k.cmd_ms, ms_between(k.t_fault, r->t_lost), r->lost_epoch);
			/* Heartbeats find a cut within 3 intervals; a side that took
			 * far longer found it some other way (its session timeout). */
			if (r->o->detect_max_ms &&
			    (ms_between(k.t_fault, t_detect) > r->o->detect_max_ms ||
			     ms_between(k.t_fault, r->t_lost) > r->o->detect_max_ms)) {
				snprintf(why, sizeof(why),
					 "noticed after %.1f ms (primary) and %.1f ms (secondary), "
					 "beyond --detect-max-ms %u",
					 ms_between(k.t_fault, t_detect),
					 ms_between(k.t_fault, r->t_lost), r->o->detect_max_ms);
				goto done;
			}
		}
		if (!daemon_alive(pd)) {
			snprintf(why, sizeof(why), "the primary's rctd died");
			goto done;
		}
		if (!primary_reports_loss(pd, why, sizeof(why)))
			goto done;
		/* Unprotected, the guest runs on; then a new secondary joins. */
		sim_guest_resume(r->g.pguest);
		sleep_us(20000);
		secondary_stop(r);
		daemon_kill(&sd, SIGKILL);
		if (cut && sh(link_cfg.mend))
			goto done;
		if (daemon_start(r->o, &sd, "secondary", ns, true))
			goto done;
		ok = rejoin(r, pd, &sd, saddr, &e, why, sizeof(why));
done:
		tally_count(t, ok);
		printf("%s %u/%u: fault during %s of epoch %" PRIu64 ", primary noticed after "
		       "%.1f ms: %s%s\n",
		       name, i, n, phase_names[k.phase], k.epoch,
		       t_detect && k.t_fault ? ms_between(k.t_fault, t_detect) : -1.0,
		       ok ? "stayed up, rejoined, consistent" : "FAILED: ", ok ? "" : why);
		trial_end(r, &sd);
		if (cut)
			(void)system(link_cfg.mend);
	}
}

/* ------------------------------------------------------------ set-up */

static bool netns_up(void)
{
	(void)system("ip netns del " NS " 2>/dev/null; ip link del " VETH_P " 2>/dev/null");
	return !sh("ip netns add " NS) &&
	       !sh("ip link add " VETH_P " type veth peer name " VETH_S) &&
	       !sh("ip link set " VETH_S " netns " NS) &&
	       !sh("ip addr add " ADDR_P "/24 dev " VETH_P) && !sh("ip link set " VETH_P " up") &&
	       !sh("ip netns exec " NS " ip addr add " ADDR_S "/24 dev " VETH_S) &&
	       !sh("ip netns exec " NS " ip link set " VETH_S " up") &&
	       !sh("ip netns exec " NS " ip link set lo up");
}

static void netns_down(void)
{
	(void)system("ip netns del " NS " 2>/dev/null; ip link del " VETH_P " 2>/dev/null");
}

static bool ifname_ok(const char *s, size_t n)
{
	if (!n || n > IFNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* --link P,S,ADDR: both ends exist and are up, nothing drops on them yet. */
static bool link_given(const char *spec)
{
	const char *c1 = strchr(spec, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
	char p[IFNAME_MAX + 1], q[IFNAME_MAX + 1], cmd[160], batch[sizeof(dir) + 8];
	uint8_t a[16];
	FILE *f;
	bool ok;

	if (!c2 || !ifname_ok(spec, (size_t)(c1 - spec)) ||
	    !ifname_ok(c1 + 1, (size_t)(c2 - c1 - 1)) ||
	    strlen(c2 + 1) >= sizeof(link_cfg.addr_s) ||
	    (inet_pton(AF_INET, c2 + 1, a) != 1 && inet_pton(AF_INET6, c2 + 1, a) != 1)) {
		printf("link-cut: --link '%s': want P,S,ADDR (two interface names and the "
		       "secondary's address on S)\n",
		       spec);
		return false;
	}
	snprintf(p, sizeof(p), "%.*s", (int)(c1 - spec), spec);
	snprintf(q, sizeof(q), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	link_cfg.ns = NULL;
	snprintf(link_cfg.addr_s, sizeof(link_cfg.addr_s), "%s", c2 + 1);
	/* One tc for both ends: forking one took ~250 ms in the soft-RoCE VM. */
	snprintf(batch, sizeof(batch), "%s/cut.tc", dir);
	f = fopen(batch, "w");
	ok = f && fprintf(f,
			  "qdisc add dev %s root netem loss 100%%\n"
			  "qdisc add dev %s root netem loss 100%%\n",
			  p, q) > 0;
	if (f && fclose(f))
		ok = false;
	if (!ok) {
		printf("link-cut: cannot write %s: %s\n", batch, strerror(errno));
		return false;
	}
	snprintf(link_cfg.cut, sizeof(link_cfg.cut), "tc -batch %s", batch);
	snprintf(link_cfg.mend, sizeof(link_cfg.mend),
		 "tc qdisc del dev %s root 2>/dev/null; tc qdisc del dev %s root 2>/dev/null", p,
		 q);
	(void)system(link_cfg.mend);
	snprintf(cmd, sizeof(cmd),
		 "ip link show dev %s up | grep -q . && ip link show dev %s up | grep -q .", p, q);
	if (sh(cmd)) {
		printf("link-cut: --link: %s and %s must both exist and be up\n", p, q);
		return false;
	}
	return true;
}

static int make_key(void)
{
	char why[512];
	int rc;

	snprintf(psk_path, sizeof(psk_path), "%s/peer.key", dir);
	rc = harness_make_key(psk_path, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "fault: %s\n", why);
		return rc;
	}
	if (getrandom(pairing_key, sizeof(pairing_key), 0) != (ssize_t)sizeof(pairing_key)) {
		rc = -errno;
		fprintf(stderr, "fault: the pairing key: getrandom: %s\n", strerror(errno));
	}
	return rc;
}

/* @text as a base-10 number in [@min, @max] for option @opt, or exit 2 naming it. */
static uint64_t opt_uint(const char *opt, const char *text, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (!*text || *text == '-' || *end || errno || v < min || v > max) {
		fprintf(stderr, "fault: --%s '%s': expected a number %llu..%llu\n", opt, text,
			(unsigned long long)min, (unsigned long long)max);
		exit(2);
	}
	return v;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rct-fault --rctd PATH [options]\n"
		"\n"
		"Fault injection against real rctd daemons (see the top of rct_fault.c).\n"
		"\n"
		"  --rctd PATH            the rctd to start (required)\n"
		"  --backend NAME         tcp (default), ucx or verbs\n"
		"  --lanes N              data lanes (default 2)\n"
		"  --size SIZE            guest RAM (default 16M)\n"
		"  --kill-primary N       trials of kill -9 of the primary's rctd (default 100)\n"
		"  --kill-secondary N     trials of kill -9 of the secondary's rctd (default 5)\n"
		"  --link-cut N           trials of a veth link cut (default 5; needs root, ip "
		"netns)\n"
		"  --link P,S,ADDR        cut an existing veth pair instead (both daemons in this\n"
		"                         namespace, the secondary on ADDR behind S; the cut is\n"
		"                         tc netem loss 100%% on P and S)\n"
		"  --detect-max-ms N      a link cut either side notices later than N ms after it\n"
		"                         fails the trial (default 0: no bound)\n"
		"  --no-hostile           skip the hostile peer and the tenants\n"
		"  --heartbeat-ms N       rctd's keepalive interval (default 50)\n"
		"  --seed N               random seed (default 1)\n"
		"  --logs-to DIR          when a trial failed, copy the daemons' logs (the work\n"
		"                         folder, under /tmp) into DIR (a VM's /tmp goes with it)\n"
		"  -h, --help\n"
		"\n"
		"Last line: 'faults: T trials, C consistent, L lost'; exit 0 when all "
		"consistent.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"rctd", required_argument, NULL, 'r'},
		{"backend", required_argument, NULL, 'b'},
		{"lanes", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"kill-primary", required_argument, NULL, 'p'},
		{"kill-secondary", required_argument, NULL, 'k'},
		{"link-cut", required_argument, NULL, 'c'},
		{"link", required_argument, NULL, 'L'},
		{"detect-max-ms", required_argument, NULL, 'D'},
		{"no-hostile", no_argument, NULL, 'H'},
		{"heartbeat-ms", required_argument, NULL, 'B'},
		{"seed", required_argument, NULL, 'S'},
		{"logs-to", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.backend = "tcp",
			 .size = 16u << 20,
			 .kill_primary = 100,
			 .kill_secondary = 5,
			 .link_cut = 5,
			 .hostile = true,
			 .heartbeat_ms = 50,
			 .seed = 1,
			 .lanes = 2};
	struct tally ta = {0}, tb = {0}, tc = {0}, td = {0}, te = {0};
	const char *logs_to = NULL;
	struct sim_workload wl;
	struct daemon sd = {0}, pd = {0};
	struct fault_pair r;
	char why[512];
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.rctd = optarg;
			break;
		case 'b':
			o.backend = optarg;
			break;
		case 'n':
			o.lanes = (unsigned)opt_uint("lanes", optarg, 1, RCT_MAX_LANES);
			break;
		case 's':
			if (sim_parse_size(optarg, &o.size) || o.size % PAGE) {
				fprintf(stderr, "fault: --size '%s': a multiple of 4K\n", optarg);
				return 2;
			}
			break;
		case 'p':
			o.kill_primary = (unsigned)opt_uint("kill-primary", optarg, 0, 100000);
			break;
		case 'k':
			o.kill_secondary = (unsigned)opt_uint("kill-secondary", optarg, 0, 100000);
			break;
		case 'c':
			o.link_cut = (unsigned)opt_uint("link-cut", optarg, 0, 100000);
			break;
		case 'L':
			o.link = optarg;
			break;
		case 'D':
			o.detect_max_ms = (unsigned)opt_uint("detect-max-ms", optarg, 0, 3600000);
			break;
		case 'H':
			o.hostile = false;
			break;
		case 'B':
			o.heartbeat_ms = (int)opt_uint("heartbeat-ms", optarg, 1, 60000);
			break;
		case 'S':
			o.seed = opt_uint("seed", optarg, 0, UINT64_MAX);
			break;
		case 'l':
			logs_to = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.rctd || o.lanes < 1 || o.heartbeat_ms < 1) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/rct-fault.XXXXXX");
	if (!mkdtemp(dir) || make_key())
		return 1;

	memset(&r, 0, sizeof(r));
	r.o = &o;
	r.rng = o.seed;
	r.npages = o.size / PAGE;
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	/* The workload thread runs during resyncs; checkpoints dirty by hand. */
	sim_workload_parse("load", &wl);
	if (harness_guests_create(&r.g, o.size, PAGE, &wl, o.seed, false, why, sizeof(why))) {
		fprintf(stderr, "fault: %s\n", why);
		return 1;
	}
	r.scrib = malloc((size_t)SCRIB_MAX * PAGE);
	for (int i = 0; i < SNAPS; i++)
		r.snap[i] = malloc(o.size);
	if (!r.scrib || !r.snap[SNAPS - 1]) {
		fprintf(stderr, "fault: out of memory\n");
		return 1;
	}
	if (logs_to)
		net_counters("start");
	printf("rct-fault: %s, %u lanes, %" PRIu64 " MiB guest, heartbeat %d ms, logs in %s\n",
	       o.backend, o.lanes, o.size >> 20, o.heartbeat_ms, dir);

	if (o.kill_primary) {
		if (daemon_start(&o, &sd, "secondary", NULL, true)) {
			ta.trials = ta.lost = 1;
		} else {
			scenario_kill_primary(&r, &sd, &ta);
			daemon_kill(&sd, SIGTERM);
		}
		tally_print("kill-primary", &ta);
	}
	if (o.kill_secondary || o.link_cut) {
		if (daemon_start(&o, &pd, "primary", NULL, true)) {
			tc.trials = tc.lost = 1;
		} else {
			if (o.kill_secondary)
				scenario_secondary_fault(&r, &pd, false, o.kill_secondary, &tc);
			if (o.link_cut && o.link && !link_given(o.link)) {
				tb.trials = tb.lost = 1;
			} else if (o.link_cut && !o.link && !netns_up()) {
				printf("link-cut: cannot make the network namespace (root and "
				       "iproute2 needed)\n");
				tb.trials = tb.lost = 1;
			} else if (o.link_cut) {
				scenario_secondary_fault(&r, &pd, true, o.link_cut, &tb);
				if (!o.link)
					netns_down();
			}
			daemon_kill(&pd, SIGTERM);
		}
		if (o.kill_secondary)
			tally_print("kill-secondary", &tc);
		if (o.link_cut)
			tally_print("link-cut", &tb);
	}
	if (o.hostile) {
		scenario_hostile(&r, &td);
		if (daemon_start(&o, &sd, "secondary", NULL, true)) {
			td.trials++;
			td.lost++;
		} else {
			scenario_cross_pairing(&r, &sd, &td);
			daemon_kill(&sd, SIGTERM);
		}
		tally_print("hostile", &td);
		scenario_tenants(&r, &te);
		tally_print("tenants", &te);
	}

	{
		unsigned t = ta.trials + tb.trials + tc.trials + td.trials + te.trials;
		unsigned ok = ta.consistent + tb.consistent + tc.consistent + td.consistent +
			      te.consistent;
		unsigned lost = ta.lost + tb.lost + tc.lost + td.lost + te.lost;

		printf("faults: %u trials, %u consistent, %u lost\n", t, ok, lost);
		if (ok != t && logs_to) {
			char cmd[512];

			net_counters("end");
			snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -r '%s' '%s'/", logs_to,
				 dir, logs_to);
			if (!sh(cmd))
				printf("rct-fault: the daemons' logs copied to %s/%s\n", logs_to,
				       strrchr(dir, '/') + 1);
		}
		for (int i = 0; i < SNAPS; i++)
			free(r.snap[i]);
		free(r.scrib);
		free(r.devbuf);
		free(r.sdevbuf);
		harness_guests_destroy(&r.g);
		return ok == t ? 0 : 1;
	}
}
