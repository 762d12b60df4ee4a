/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The liveness channel (RCT_LIVENESS_THREAD) over real TCP lanes and real UDP
 * on 127.0.0.1: a session whose thread does not run for many heartbeat
 * intervals is not taken for dead, a peer whose heartbeats stop is lost within
 * three intervals, the two sides must agree on the channel, and datagrams that
 * are not the pairing's own beats are refused.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/bitmap.h"
#include "core/liveness.h"
#include "core/session.h"
#include "core/util.h"
#include "pair.h"

TestSuite(liveness, .timeout = 60);

#define HB_MS 50

static const uint8_t key[RCT_PSK_LEN] = "0123456789abcdef0123456789abcde";

static void live_pair(struct pair *pp, bool keyed)
{
	struct pair_opts o = {.lanes = 2,
			      .size = 4u << 20,
			      .heartbeat_ms = HB_MS,
			      .auto_flush = true,
			      .scribble = 4,
			      .liveness = RCT_LIVENESS_THREAD,
			      .ppsk = keyed ? key : NULL,
			      .spsk = keyed ? key : NULL};

	cr_assert_eq(pair_open(pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(pp, 0, NULL, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(pp, 0, 5000));
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void hold_secondary(struct pair *pp, bool hold)
{
	pthread_mutex_lock(&pp->lock);
	pp->hold = hold;
	while (hold && !pp->held)
		pthread_cond_wait(&pp->cond, &pp->lock);
	pthread_mutex_unlock(&pp->lock);
}

Test(liveness, sessions_not_driven_for_twelve_intervals_are_not_taken_for_loss)
{
	uint64_t *bits = calloc(rct_bitmap_words(1024), sizeof(uint64_t));
	struct rct_liveness_stats ps = {0}, ss = {0};
	struct pair pp;

	live_pair(&pp, false);
	/* Neither side's session thread runs for 600 ms: a hypervisor busy
	 * elsewhere, a flush faulting in cold memory.  With in-band heartbeats
	 * both would declare the other lost after 150 ms. */
	hold_secondary(&pp, true);
	sleep_ms(12 * HB_MS);
	hold_secondary(&pp, false);
	cr_assert_eq(rct_session_progress(pp.p, 0), RCT_OK);
	pair_dirty(&pp, bits, 50, 0, 0);
	cr_assert_eq(pair_ckpt(&pp, 1, bits, "dev", 3), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 5000));
	cr_assert(pp.equal);
	cr_assert_eq(pp.lost, RCT_OK, "the secondary lost its primary: %s",
		     rct_status_str(pp.lost));

	cr_assert_eq(rct_session_liveness(pp.p, &ps), RCT_OK);
	cr_assert_eq(rct_session_liveness(pp.s, &ss), RCT_OK);
	cr_assert_eq(ps.field_mask, RCT_LIVENESS_STATS_FIELD_ALL);
	cr_assert(ps.running && ss.running);
	/* ~12 intervals passed while held: both threads beat on their own. */
	cr_assert_geq(ps.beats_received, 8, "primary heard %llu beats",
		      (unsigned long long)ps.beats_received);
	cr_assert_geq(ss.beats_received, 8, "secondary heard %llu beats",
		      (unsigned long long)ss.beats_received);
	cr_assert_eq(ps.beats_rejected + ss.beats_rejected, 0);
	cr_assert_lt(ps.peer_silence_max_ns, RCT_HEARTBEAT_MISSES * HB_MS * 1000000ull);
	/* ... and each side recorded its own session's gap as a local one. */
	cr_assert_geq(ps.session_gaps, 1);
	cr_assert_geq(ss.session_gaps, 1);
	cr_assert_geq(ss.session_gap_max_ns, 10ull * HB_MS * 1000000, "gap %llu ms",
		      (unsigned long long)(ss.session_gap_max_ns / 1000000));
	pair_close(&pp);
	free(bits);
}

Test(liveness, a_peer_whose_beats_stop_is_lost_within_three_intervals)
{
	uint64_t t0, ms;
	rct_status_t st;
	struct pair pp;

	live_pair(&pp, true);
	/* The secondary's heartbeats stop while every socket stays open: as a
	 * link that drops packets without a reset, or a host gone silent. */
	hold_secondary(&pp, true);
	rct_live_stop(pp.s->ka.live);
	t0 = rct_now_ns();
	do
		st = rct_session_progress(pp.p, 10);
	while (st == RCT_OK && rct_now_ns() - t0 < 5000ull * 1000000);
	ms = (rct_now_ns() - t0) / 1000000;
	cr_log_info("silent secondary detected after %llu ms (heartbeat %d ms)",
		    (unsigned long long)ms, HB_MS);
	cr_assert_eq(st, RCT_ERR_PEER_LOST, "progress: %s", rct_status_str(st));
	cr_assert_geq(ms, 2 * HB_MS, "loss declared after only %llu ms", (unsigned long long)ms);
	cr_assert_leq(ms, RCT_HEARTBEAT_MISSES * HB_MS + 500, "detected after %llu ms",
		      (unsigned long long)ms);
	hold_secondary(&pp, false);
	pair_close(&pp);
}

Test(liveness, flags_are_checked_and_only_the_thread_has_figures)
{
	struct pair_opts o = {.lanes = 1, .size = 1u << 20, .heartbeat_ms = HB_MS};
	struct rct_session_params p = {.field_mask = RCT_SESSION_PARAM_FIELD_ROLE |
						     RCT_SESSION_PARAM_FIELD_LIVENESS,
				       .role = RCT_ROLE_PRIMARY,
				       .liveness = RCT_LIVENESS_RT};
	struct rct_session *s;
	struct pair pp;

	cr_assert_eq(rct_session_create(&p, &s), RCT_ERR_INVALID_PARAM, "RT alone");
	p.liveness = 1u << 7;
	cr_assert_eq(rct_session_create(&p, &s), RCT_ERR_INVALID_PARAM, "unknown flag");

	/* The harness gives both sides the same flags; one side differs here. */
	o.liveness = RCT_LIVENESS_THREAD;
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(rct_session_liveness(pp.p, NULL), RCT_ERR_INVALID_PARAM);
	pair_close(&pp);
	o.liveness = 0;
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	{
		struct rct_liveness_stats st = {0};

		cr_assert_eq(rct_session_liveness(pp.p, &st), RCT_ERR_STATE,
			     "in-band heartbeats have no liveness channel");
	}
	pair_close(&pp);
}

struct mixed_accept {
	struct rct_session *s;
	rct_status_t status;
};

static void *mixed_accept_main(void *arg)
{
	struct mixed_accept *a = arg;

	a->status = rct_session_accept(a->s);
	return NULL;
}

static struct rct_session *mixed_session(enum rct_role role, unsigned liveness, void *ram)
{
	struct rct_session_params p = {
		.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_LANES |
			      RCT_SESSION_PARAM_FIELD_LIVENESS | RCT_SESSION_PARAM_FIELD_TIMEOUT,
		.role = role,
		.lanes = 1,
		.timeout_ms = 2000,
		.liveness = liveness};
	struct rct_region *r;
	struct rct_session *s;

	cr_assert_eq(rct_session_create(&p, &s), RCT_OK);
	cr_assert_eq(rct_region_register(s, 0, ram, 1 << 20, &r), RCT_OK);
	return s;
}

Test(liveness, a_primary_and_secondary_that_disagree_are_refused)
{
	uint8_t *pram = rct_mem_alloc(1 << 20), *sram = rct_mem_alloc(1 << 20);

	for (int i = 0; i < 2; i++) {
		struct mixed_accept a = {0};
		struct rct_session *p;
		uint16_t port;
		pthread_t t;

		a.s = mixed_session(RCT_ROLE_SECONDARY, i ? RCT_LIVENESS_THREAD : 0, sram);
		cr_assert_eq(rct_session_listen(a.s, "127.0.0.1", 0, &port), RCT_OK);
		pthread_create(&t, NULL, mixed_accept_main, &a);
		p = mixed_session(RCT_ROLE_PRIMARY, i ? 0 : RCT_LIVENESS_THREAD, pram);
		cr_assert_eq(rct_session_connect(p, "127.0.0.1", port), RCT_ERR_MISMATCH);
		pthread_join(t, NULL);
		/* Turned away; the secondary listened on to its deadline. */
		cr_assert_eq(a.status, RCT_ERR_TIMED_OUT, "accept: %s", rct_status_str(a.status));
		cr_assert_eq(a.s->turned_away, 1);
		rct_session_destroy(p);
		rct_session_destroy(a.s);
	}
	rct_mem_free(pram, 1 << 20);
	rct_mem_free(sram, 1 << 20);
}

/*
 * From another socket to 127.0.0.1:@port, @n datagrams of a beat's size and
 * magic but no valid token or MAC, and one short one; then the channel's
 * figures of @s after four intervals.
 */
static void send_junk(uint16_t port, int n, struct rct_session *s, struct rct_liveness_stats *st)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(port)};
	uint8_t junk[72] = {0};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_neq(port, 0);
	memcpy(junk, "RCTL\x01\x00\x01\x00", 8);
	for (int i = 0; i < n; i++)
		cr_assert_eq(
			sendto(fd, junk, sizeof(junk), 0, (struct sockaddr *)&sin, sizeof(sin)),
			(ssize_t)sizeof(junk));
	cr_assert_eq(sendto(fd, junk, 9, 0, (struct sockaddr *)&sin, sizeof(sin)), 9);
	close(fd);
	sleep_ms(4 * HB_MS);
	cr_assert_eq(rct_session_liveness(s, st), RCT_OK);
}

Test(liveness, datagrams_that_are_not_the_pairings_beats_are_refused)
{
	struct rct_liveness_stats st = {0};
	struct pair pp;

	live_pair(&pp, true);
	send_junk(rct_live_port(pp.s->ka.live), 5, pp.s, &st);
	cr_assert_eq(st.beats_rejected, 6, "rejected %llu", (unsigned long long)st.beats_rejected);
	cr_assert_gt(st.beats_received, 0);
	cr_assert(st.running);
	pair_close(&pp);
}

/*
 * Issue 30 item 10: the primary's liveness socket hears its secondary only.
 * Before, it was bound to 0.0.0.0 and took datagrams from anyone (each
 * counted as a rejected beat); now it is connected to the secondary's
 * liveness address, so the kernel drops another source's.
 */
Test(liveness, the_primarys_liveness_socket_hears_only_its_secondary)
{
	struct rct_liveness_stats st = {0};
	struct pair pp;

	live_pair(&pp, true);
	send_junk(rct_live_port(pp.p->ka.live), 5, pp.p, &st);
	cr_assert_eq(st.beats_rejected, 0, "the primary took %llu foreign datagrams",
		     (unsigned long long)st.beats_rejected);
	cr_assert_gt(st.beats_received, 0, "and its secondary's beats no more");
	cr_assert(st.running);
	pair_close(&pp);
}
