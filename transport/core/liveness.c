/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The liveness channel (docs/protocol.md, "Liveness").
 *
 * Why a thread and a socket of its own: the session thread copies pages,
 * waits for send-queue room, flushes the colo cache and serves the
 * hypervisor's requests, and on these machines one first touch of idle memory
 * can cost a second.  Heartbeats queued behind that work made a slow host look
 * like a dead one (both sides declared loss during a cold full sync).  Here a
 * small thread, whose stack and state are locked in memory and which touches
 * nothing else, sends one beat per interval on a UDP socket and judges the
 * peer's silence:
 *
 *   - a beat is 72 bytes: magic, version, type, the secondary's session token,
 *     a sequence number, the sender's last committed epoch, the longest local
 *     stall it saw since its previous beat, its role, and an HMAC-SHA-256 over
 *     the rest keyed per direction from the pre-shared key and both handshake
 *     nonces (no key: no MAC, the token only); four beats per interval;
 *   - the primary knows the secondary's address and port (LIVENESS message of
 *     the handshake); the secondary learns the primary's address from its
 *     first valid beat and answers there;
 *   - silence is counted only while this thread ran: when it wakes up late
 *     (SIGSTOP, CPU starvation, a fault storm), the time it was not running is
 *     not counted against the peer, and is recorded as a local stall instead;
 *   - loss is RCT_HEARTBEAT_MISSES intervals of silence (or the handshake's
 *     allowance before the first beat).  The thread only records the verdict;
 *     the session thread acts on it at its next poll.
 */
#include <endian.h>
#include <errno.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"
#include "liveness.h"
#include "log.h"
#include "util.h"

#define RCT_LIVE_MAGIC	 0x4c544352u /* "RCTL" in memory order */
#define RCT_LIVE_VERSION 1
#define RCT_LIVE_BEAT	 1
#define RCT_LIVE_STACK	 (256u << 10)
/*
 * Beats per interval.  A peer that stops for S (SIGSTOP, a host stall) is
 * silent for S plus the time since its last beat: with one beat per interval
 * a 100 ms stop read as 150 ms of silence, the whole threshold at 50 ms x 3.
 * Four per interval make the tolerated stall (misses - 1/4) intervals.
 */
#define RCT_LIVE_BEATS 4

struct rct_wire_beat {
	__le32 magic;
	__le16 version;
	__le16 type;
	__le64 token;
	__le64 seq;
	__le64 last_committed;
	__le32 stall_ms; /* the sender's longest local stall since its previous beat */
	__le16 role;
	__le16 reserved;
	uint8_t mac[32];
};
_Static_assert(sizeof(struct rct_wire_beat) == 72, "wire beat");
#define RCT_BEAT_MACED offsetof(struct rct_wire_beat, mac)

struct rct_live {
	/* Written before rct_live_start(), read-only afterwards. */
	struct rct_live_params p;
	int fd, stop_fd;
	uint64_t token;
	bool keyed;
	uint8_t tx_key[RCT_LIVE_KEY_LEN], rx_key[RCT_LIVE_KEY_LEN];
	struct sockaddr_storage peer; /* primary: set; secondary: set by the thread */
	socklen_t peer_len;
	void *stack;
	bool started;
	pthread_t thread;

	/* Owned by the thread. */
	uint64_t tx_seq, rx_seq;
	uint64_t stall_since_beat_ns;

	/* Written by the thread (or the session for committed), read by anyone. */
	_Atomic bool lost;
	_Atomic uint64_t lost_silence_ns;
	_Atomic uint64_t committed;
	_Atomic uint64_t sent, rcvd, rejected;
	_Atomic uint64_t stalls, stall_max_ns, stall_last_ns;
	_Atomic uint64_t peer_stall_max_ns, peer_silence_max_ns, peer_committed;
	_Atomic uint64_t gaps, gap_max_ns, gap_last_ns; /* rct_live_note_gap() */
};

static void rct_live_max(_Atomic uint64_t *a, uint64_t v)
{
	if (v > atomic_load_explicit(a, memory_order_relaxed))
		atomic_store_explicit(a, v, memory_order_relaxed);
}

rct_status_t rct_live_open(const struct rct_live_params *params, const char *bind_addr,
			   struct rct_live **live_p)
{
	struct sockaddr_storage ss;
	struct rct_live *lv;
	rct_status_t status;
	unsigned len;

	/* Page-aligned so that locking it locks nothing else's pages. */
	lv = mmap(NULL, sizeof(*lv), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lv == MAP_FAILED)
		return RCT_ERR_NO_MEMORY;
	memset(lv, 0, sizeof(*lv));
	lv->p = *params;
	lv->fd = -1;
	lv->stop_fd = -1;
	atomic_init(&lv->committed, UINT64_MAX);
	atomic_init(&lv->peer_committed, UINT64_MAX);
	status = RCT_ERR_SYSTEM;
	lv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lv->stop_fd < 0) {
		rct_error("liveness: eventfd: %s", strerror(errno));
		goto out_destroy;
	}
	if (bind_addr) {
		status = rct_sockaddr_resolve("liveness", bind_addr, 0, true, &ss, &len);
		if (status != RCT_OK)
			goto out_destroy;
		lv->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (lv->fd < 0 || bind(lv->fd, (struct sockaddr *)&ss, len)) {
			rct_error("liveness: UDP socket on %s: %s", bind_addr, strerror(errno));
			status = RCT_ERR_SYSTEM;
			goto out_destroy;
		}
	}
	*live_p = lv;
	return RCT_OK;

out_destroy:
	rct_live_destroy(lv);
	return status;
}

uint16_t rct_live_port(const struct rct_live *lv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (lv->fd < 0 || getsockname(lv->fd, (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

void rct_live_bind(struct rct_live *lv, uint64_t token, const uint8_t *tx_key,
		   const uint8_t *rx_key)
{
	lv->token = token;
	lv->keyed = tx_key && rx_key;
	if (lv->keyed) {
		memcpy(lv->tx_key, tx_key, RCT_LIVE_KEY_LEN);
		memcpy(lv->rx_key, rx_key, RCT_LIVE_KEY_LEN);
	}
}

rct_status_t rct_live_set_peer(struct rct_live *lv, const char *addr, uint16_t port)
{
	unsigned len;
	rct_status_t status;

	status = rct_sockaddr_resolve("liveness", addr, port, false, &lv->peer, &len);
	if (status != RCT_OK)
		return status;
	lv->peer_len = len;
	if (lv->fd < 0) {
		/* Connected: bound to the address the route to the secondary
		 * leaves from (not every interface), and hearing the secondary's
		 * address and port only. */
		lv->fd = socket(lv->peer.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (lv->fd < 0 || connect(lv->fd, (struct sockaddr *)&lv->peer, len)) {
			rct_error("liveness: UDP socket towards %s:%u: %s", addr, port,
				  strerror(errno));
			return RCT_ERR_SYSTEM;
		}
	}
	return RCT_OK;
}

void rct_live_set_committed(struct rct_live *lv, uint64_t epoch)
{
	atomic_store_explicit(&lv->committed, epoch, memory_order_relaxed);
}

static void rct_live_mac(const uint8_t *key, const struct rct_wire_beat *b, uint8_t *mac)
{
	crypto_auth_hmacsha256(mac, (const uint8_t *)b, RCT_BEAT_MACED, key);
}

static void rct_live_send(struct rct_live *lv)
{
	struct rct_wire_beat b = {
		.magic = htole32(RCT_LIVE_MAGIC),
		.version = htole16(RCT_LIVE_VERSION),
		.type = htole16(RCT_LIVE_BEAT),
		.token = htole64(lv->token),
		.seq = htole64(++lv->tx_seq),
		.last_committed = htole64(
			atomic_load_explicit(&lv->committed, memory_order_relaxed)),
		.stall_ms = htole32(
			(uint32_t)RCT_MIN(lv->stall_since_beat_ns / 1000000, UINT32_MAX)),
		.role = htole16((uint16_t)lv->p.role),
	};

	if (lv->keyed)
		rct_live_mac(lv->tx_key, &b, b.mac);
	/* A full socket buffer or an unreachable peer is one missed beat, no more:
	 * the peer's silence judgement is what counts. */
	if (sendto(lv->fd, &b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&lv->peer,
		   lv->peer_len) == (ssize_t)sizeof(b)) {
		atomic_fetch_add_explicit(&lv->sent, 1, memory_order_relaxed);
		lv->stall_since_beat_ns = 0;
	}
}

/* Check one datagram; true if it is a beat of this pairing from the peer. */
static bool rct_live_valid(struct rct_live *lv, const struct rct_wire_beat *b, ssize_t n)
{
	uint8_t mac[32];
	unsigned peer_role = lv->p.role == RCT_ROLE_PRIMARY ? RCT_ROLE_SECONDARY : RCT_ROLE_PRIMARY;

	if (n != (ssize_t)sizeof(*b) || le32toh(b->magic) != RCT_LIVE_MAGIC ||
	    le16toh(b->version) != RCT_LIVE_VERSION || le16toh(b->type) != RCT_LIVE_BEAT ||
	    le16toh(b->role) != peer_role || b->reserved || le64toh(b->token) != lv->token)
		return false;
	if (lv->keyed) {
		rct_live_mac(lv->rx_key, b, mac);
		if (crypto_verify_32(mac, b->mac))
			return false;
	}
	/* Replays and reordering: only a newer beat counts. */
	if (le64toh(b->seq) <= lv->rx_seq)
		return false;
	lv->rx_seq = le64toh(b->seq);
	return true;
}

/* Read every queued datagram; returns whether a valid beat arrived.
 * *learned_p: the secondary learned where the primary is. */
static bool rct_live_drain(struct rct_live *lv, bool *learned_p)
{
	struct sockaddr_storage from;
	struct rct_wire_beat b;
	bool heard = false;

	for (;;) {
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(lv->fd, &b, sizeof(b), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &flen);

		if (n < 0)
			break; /* EAGAIN; anything else is judged as silence */
		if (!rct_live_valid(lv, &b, n)) {
			atomic_fetch_add_explicit(&lv->rejected, 1, memory_order_relaxed);
			continue;
		}
		/* The secondary answers where the primary's beats come from. */
		if (lv->p.role == RCT_ROLE_SECONDARY && !lv->peer_len) {
			memcpy(&lv->peer, &from, flen);
			lv->peer_len = flen;
			*learned_p = true;
		}
		heard = true;
		atomic_fetch_add_explicit(&lv->rcvd, 1, memory_order_relaxed);
		atomic_store_explicit(&lv->peer_committed, le64toh(b.last_committed),
				      memory_order_relaxed);
		rct_live_max(&lv->peer_stall_max_ns, (uint64_t)le32toh(b.stall_ms) * 1000000);
	}
	return heard;
}

static void rct_live_lock_memory(struct rct_live *lv)
{
	static _Atomic bool warned;

	/* A fault here would wait behind whatever holds this process's mm (a
	 * populate, a large munmap): the point of the thread is not to. */
	if (mlock(lv, sizeof(*lv)) || mlock(lv->stack, RCT_LIVE_STACK)) {
		if (!atomic_exchange(&warned, true))
			rct_warn("liveness: cannot lock the heartbeat thread's memory (%s): page "
				 "faults under memory pressure can delay heartbeats",
				 strerror(errno));
	}
}

static void rct_live_priority(void)
{
	static _Atomic bool told;
	struct sched_param sp = {.sched_priority = 1};
	int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

	if (rc && !atomic_exchange(&told, true))
		rct_info("liveness: heartbeat thread runs at normal priority (SCHED_FIFO: %s): "
			 "a CPU hog can delay heartbeats",
			 strerror(rc));
}

static void *rct_live_main(void *arg)
{
	struct rct_live *lv = arg;
	const uint64_t iv = lv->p.interval_ns;
	const uint64_t tx_iv = iv / RCT_LIVE_BEATS;
	const uint64_t limit = (uint64_t)lv->p.misses * iv;
	uint64_t now = rct_now_ns(), next_tx = now, last_rx = now, prev_rx = 0;
	bool seen = false, learned = false;
	/* Before the peer's first beat: the secondary arms first and waits for
	 * a primary that may still be importing keys (the handshake's own
	 * allowance); the primary arms last, after the secondary's thread runs,
	 * and the secondary answers its first beat at once. */
	const uint64_t first_allow = lv->p.role == RCT_ROLE_SECONDARY
					     ? RCT_MAX(limit, lv->p.first_allow_ns)
					     : limit;

	if (lv->p.rt)
		rct_live_priority();
	for (;;) {
		struct pollfd pfd[2] = {{.fd = lv->fd, .events = POLLIN},
					{.fd = lv->stop_fd, .events = POLLIN}};
		uint64_t allow = seen ? limit : first_allow;
		uint64_t wake = RCT_MIN(next_tx, last_rx + allow + 1);
		int ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
		uint64_t late;

		if (poll(pfd, 2, ms) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		now = rct_now_ns();
		/* Woken a whole interval after the latest moment it asked for:
		 * this process was not running (stopped, starved, faulting). */
		late = now > wake + 1000000 * (uint64_t)(ms > 0) ? now - wake : 0;
		/* The peer's silence counts only while we could hear it: any time
		 * this thread was kept from running is not the peer's.  Reported
		 * as a stall from a whole interval on. */
		if (late)
			last_rx = RCT_MIN(last_rx + late, now);
		if (late >= iv) {
			atomic_fetch_add_explicit(&lv->stalls, 1, memory_order_relaxed);
			atomic_store_explicit(&lv->stall_last_ns, late, memory_order_relaxed);
			rct_live_max(&lv->stall_max_ns, late);
			lv->stall_since_beat_ns = RCT_MAX(lv->stall_since_beat_ns, late);
		}
		if (rct_live_drain(lv, &learned)) {
			if (seen && prev_rx)
				rct_live_max(&lv->peer_silence_max_ns, now - prev_rx);
			seen = true;
			last_rx = prev_rx = now;
		}
		if (learned) {
			next_tx = now; /* answer the primary's first beat at once */
			learned = false;
		}
		if (now >= next_tx && lv->peer_len) {
			rct_live_send(lv);
			next_tx = RCT_MAX(next_tx + tx_iv, now + tx_iv / 2);
		} else if (now >= next_tx) {
			next_tx = now + tx_iv; /* secondary: no address until the first beat */
		}
		if (now > last_rx + allow) {
			atomic_store_explicit(&lv->lost_silence_ns, now - last_rx,
					      memory_order_relaxed);
			atomic_store_explicit(&lv->lost, true, memory_order_release);
			break;
		}
	}
	return NULL;
}

rct_status_t rct_live_start(struct rct_live *lv)
{
	pthread_attr_t attr;
	int rc;

	if (lv->fd < 0)
		return RCT_ERR_STATE;
	lv->stack = mmap(NULL, RCT_LIVE_STACK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (lv->stack == MAP_FAILED) {
		lv->stack = NULL;
		return RCT_ERR_NO_MEMORY;
	}
	rct_live_lock_memory(lv);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, lv->stack, RCT_LIVE_STACK);
	rc = pthread_create(&lv->thread, &attr, rct_live_main, lv);
	pthread_attr_destroy(&attr);
	if (rc) {
		rct_error("liveness: cannot start the heartbeat thread: %s", strerror(rc));
		return RCT_ERR_SYSTEM;
	}
	lv->started = true;
	return RCT_OK;
}

void rct_live_note_gap(struct rct_live *lv, uint64_t ns)
{
	atomic_fetch_add_explicit(&lv->gaps, 1, memory_order_relaxed);
	atomic_store_explicit(&lv->gap_last_ns, ns, memory_order_relaxed);
	rct_live_max(&lv->gap_max_ns, ns);
}

bool rct_live_lost(const struct rct_live *lv, uint64_t *silence_ns_p)
{
	if (!atomic_load_explicit(&lv->lost, memory_order_acquire))
		return false;
	if (silence_ns_p)
		*silence_ns_p = atomic_load_explicit(&lv->lost_silence_ns, memory_order_relaxed);
	return true;
}

void rct_live_stats(const struct rct_live *lv, struct rct_liveness_stats *out)
{
	uint64_t m = (out->field_mask ? out->field_mask : RCT_LIVENESS_STATS_FIELDS_V1) &
		     RCT_LIVENESS_STATS_FIELD_ALL;

#define RCT_LIVE_LOAD(_f) atomic_load_explicit(&lv->_f, memory_order_relaxed)
	if (m & RCT_LIVENESS_STATS_FIELD_BEATS) {
		out->running = lv->started && !RCT_LIVE_LOAD(lost);
		out->beats_sent = RCT_LIVE_LOAD(sent);
		out->beats_received = RCT_LIVE_LOAD(rcvd);
		out->beats_rejected = RCT_LIVE_LOAD(rejected);
	}
	if (m & RCT_LIVENESS_STATS_FIELD_STALLS) {
		out->local_stalls = RCT_LIVE_LOAD(stalls);
		out->local_stall_max_ns = RCT_LIVE_LOAD(stall_max_ns);
		out->local_stall_last_ns = RCT_LIVE_LOAD(stall_last_ns);
	}
	if (m & RCT_LIVENESS_STATS_FIELD_PEER) {
		out->peer_stall_max_ns = RCT_LIVE_LOAD(peer_stall_max_ns);
		out->peer_silence_max_ns = RCT_LIVE_LOAD(peer_silence_max_ns);
		out->peer_last_committed = RCT_LIVE_LOAD(peer_committed);
	}
	if (m & RCT_LIVENESS_STATS_FIELD_GAPS) {
		out->session_gaps = RCT_LIVE_LOAD(gaps);
		out->session_gap_max_ns = RCT_LIVE_LOAD(gap_max_ns);
		out->session_gap_last_ns = RCT_LIVE_LOAD(gap_last_ns);
	}
#undef RCT_LIVE_LOAD
	out->field_mask = m;
}

void rct_live_stop(struct rct_live *lv)
{
	uint64_t one = 1;

	if (!lv || !lv->started)
		return;
	if (write(lv->stop_fd, &one, sizeof(one)) != sizeof(one))
		rct_warn("liveness: cannot wake the heartbeat thread: %s", strerror(errno));
	pthread_join(lv->thread, NULL);
	lv->started = false;
}

void rct_live_destroy(struct rct_live *lv)
{
	if (!lv)
		return;
	rct_live_stop(lv);
	if (lv->fd >= 0)
		close(lv->fd);
	if (lv->stop_fd >= 0)
		close(lv->stop_fd);
	if (lv->stack)
		munmap(lv->stack, RCT_LIVE_STACK);
	sodium_memzero(lv->tx_key, sizeof(lv->tx_key));
	sodium_memzero(lv->rx_key, sizeof(lv->rx_key));
	munmap(lv, sizeof(*lv));
}
