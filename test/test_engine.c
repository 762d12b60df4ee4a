/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoint engine over the fault-injecting mock backend: commits, the
 * colo-cache rule (guest RAM untouched until a whole checkpoint commits),
 * epoch and count checks, parameter validation.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/bitmap.h"
#include "core/flush.h"
#include "core/session.h"
#include "core/util.h"
#include "mock_backend.h"
#include "pair.h"

#define SIZE (4u << 20)

static struct pair pp;
static uint64_t *bits;
static uint8_t *saved;

static void setup(void)
{
	bits = calloc(rct_bitmap_words(SIZE / 4096), sizeof(uint64_t));
	saved = malloc(SIZE);
	cr_assert(bits && saved);
}

static void teardown(void)
{
	pair_close(&pp);
	mock_fault_lane(-1, 0);
	mock_deferred_completion(false);
	free(bits);
	free(saved);
}

/* The pair most tests use: mock backend, 2 lanes, flushed as it comes. */
static struct pair_opts engine_opts(void)
{
	return (struct pair_opts){.ops = &mock_ops,
				  .lanes = 2,
				  .size = SIZE,
				  .max_put = 1 << 20,
				  .timeout_ms = 2000,
				  .auto_flush = true,
				  .scribble = 8};
}

static void open_pair(unsigned lanes, bool auto_flush)
{
	struct pair_opts o = engine_opts();

	o.lanes = lanes;
	o.auto_flush = auto_flush;
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
}

/* A pair of @o, through its full sync (epoch 0), verified. */
static void open_synced(const struct pair_opts *o)
{
	cr_assert_eq(pair_open(&pp, o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "d", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 2000));
	cr_assert(pp.equal, "secondary RAM differs after the full sync");
}

/* Full sync (epoch 0) then @n incremental checkpoints, each verified. */
static void commit_some(unsigned n)
{
	uint8_t dev[300];

	memset(dev, 0xab, sizeof(dev));
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, dev, sizeof(dev)), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 2000));
	cr_assert(pp.equal, "secondary RAM differs after the full sync");
	for (unsigned e = 1; e <= n; e++) {
		pair_dirty(&pp, bits, 50, e * 7, 300); /* scattered + a run over 1 MiB */
		dev[0] = (uint8_t)e;
		cr_assert_eq(pair_ckpt(&pp, e, bits, dev, sizeof(dev) - e), RCT_OK);
		cr_assert(pair_wait_flushed(&pp, e, 2000), "epoch %u not flushed", e);
		cr_assert(pp.equal, "secondary RAM differs at epoch %u", e);
		cr_assert_eq(pp.devstate_len, sizeof(dev) - e);
		cr_assert_arr_eq(pp.devstate, dev, sizeof(dev) - e);
	}
}

TestSuite(engine, .init = setup, .fini = teardown, .timeout = 30);

Test(engine, commits_are_applied_whole)
{
	open_pair(3, true);
	commit_some(5);
	cr_assert_eq(rct_session_last_committed(pp.p), 5);
	cr_assert_eq(rct_session_last_committed(pp.s), 5);
}

Test(engine, commit_goes_out_only_after_every_put_and_fence_completed)
{
	unsigned long fences;

	mock_deferred_completion(true);
	open_pair(3, true);
	commit_some(3);
	cr_assert_eq(mock_pending_at_commit(&fences), 0,
		     "COMMIT sent with puts or fences still in flight");
	cr_assert_eq(fences, 4, "one fence per checkpoint, before its COMMIT");
}

Test(engine, lane_failure_mid_checkpoint_leaves_guest_ram_untouched)
{
	rct_status_t st;

	/* Lane 1 fails after 20 more runs: past the full sync (2 runs on lane 1),
	 * in the middle of epoch 1's ~350 runs. */
	mock_fault_lane(1, 20);
	open_pair(2, true);
	commit_some(0);
	memcpy(saved, pp.sram, SIZE); /* last committed image + the secondary's own writes */

	pair_dirty(&pp, bits, 400, 0, 0);
	st = pair_ckpt(&pp, 1, bits, "x", 1);
	cr_assert_eq(st, RCT_ERR_IO, "commit returned %s", rct_status_str(st));
	cr_assert(rct_status_is_fatal(st));
	cr_assert_eq(rct_session_last_committed(pp.p), 0);

	/* The primary is gone without a commit: the secondary reports the loss
	 * with epoch 0 as the last committed one, and guest RAM is as it was. */
	rct_session_destroy(pp.p);
	pp.p = NULL;
	cr_assert_eq(pair_wait_lost(&pp, 2000), RCT_ERR_PEER_LOST);
	cr_assert_eq(pp.lost_epoch, 0);
	cr_assert_eq(pp.lost_discarded, 1, "the event names %llu as discarded, not epoch 1",
		     (unsigned long long)pp.lost_discarded);
	cr_assert_eq(pp.ready, 0, "a CKPT_READY was raised for the failed epoch");
	cr_assert_eq(memcmp(pp.sram, saved, SIZE), 0, "guest RAM changed");
}

/* Encode @m and send it on the primary's control lane, as a broken peer would. */
static void inject(struct rct_msg *m)
{
	uint8_t buf[256];
	size_t len;

	cr_assert_eq(rct_msg_encode(m, buf, sizeof(buf), &len), RCT_OK);
	cr_assert_eq(mock_ctrl_inject(pp.p->ctx, buf, len), RCT_OK);
}

/* Two committed epochs, then a hand-made BEGIN(3) from the primary's side. */
static void commit_two_then_begin_3_by_hand(void)
{
	struct rct_msg m = {.type = RCT_MSG_BEGIN};

	open_pair(2, true);
	commit_some(2);
	memcpy(saved, pp.sram, SIZE);
	m.begin.epoch = 3;
	inject(&m);
}

static void expect_secondary_rejects(void)
{
	cr_assert_eq(pair_wait_lost(&pp, 2000), RCT_ERR_PROTO);
	cr_assert_eq(memcmp(pp.sram, saved, SIZE), 0, "guest RAM changed");
	cr_assert_eq(rct_session_last_committed(pp.s), 2);
}

Test(engine, stale_epoch_is_rejected)
{
	struct rct_msg m = {.type = RCT_MSG_BEGIN};

	open_pair(2, true);
	commit_some(2);
	memcpy(saved, pp.sram, SIZE);
	m.begin.epoch = 2; /* already committed */
	inject(&m);
	expect_secondary_rejects();
}

/* A BITMAP (or ZEROS) of epoch 3 for region 7 that the secondary must refuse. */
static void expect_map_rejected(uint16_t type, uint64_t first_word, const uint64_t *items,
				uint32_t nitems)
{
	struct rct_msg m;

	commit_two_then_begin_3_by_hand();
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.bitmap.epoch = 3;
	m.bitmap.region_id = 7;
	m.bitmap.first_word = first_word;
	m.bitmap.nitems = nitems;
	m.bitmap.items = items;
	inject(&m);
	expect_secondary_rejects();
}

Test(engine, bitmap_beyond_region_is_rejected)
{
	uint64_t items[2] = {htole64(rct_bitmap_seg(0, 1)), ~0ull};

	expect_map_rejected(RCT_MSG_BITMAP, SIZE / 4096 / 64, items,
			    2); /* one past the last word */
}

/* A segment that starts inside the region and skips past its end. */
Test(engine, bitmap_segment_skipping_past_region_is_rejected)
{
	uint64_t items[4] = {htole64(rct_bitmap_seg(0, 1)), htole64(1),
			     htole64(rct_bitmap_seg(SIZE / 4096 / 64, 1)), htole64(1)};

	expect_map_rejected(RCT_MSG_BITMAP, 0, items, 4);
}

/* ZEROS may only name pages a BITMAP of the epoch named. */
Test(engine, zeros_for_pages_no_bitmap_named_are_rejected)
{
	uint64_t items[2] = {htole64(rct_bitmap_seg(0, 1)), htole64(1)};

	expect_map_rejected(RCT_MSG_ZEROS, 0, items, 2);
}

Test(engine, commit_counts_must_match)
{
	struct rct_msg m;

	commit_two_then_begin_3_by_hand();
	memset(&m, 0, sizeof(m));
	m.type = RCT_MSG_COMMIT;
	m.commit.epoch = 3;
	m.commit.pages = 5; /* but no bitmap was sent */
	m.commit.bytes = 5 * 4096;
	inject(&m);
	expect_secondary_rejects();
	cr_assert_eq(pp.ready, 2);
}

Test(engine, message_for_another_epoch_is_rejected)
{
	struct rct_msg m;

	commit_two_then_begin_3_by_hand();
	memset(&m, 0, sizeof(m));
	m.type = RCT_MSG_DEVSTATE;
	m.devstate.epoch = 4;
	inject(&m);
	expect_secondary_rejects();
}

Test(engine, begin_waits_until_the_secondary_flushed)
{
	rct_status_t st;

	open_pair(1, false); /* nobody flushes */
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, NULL, 0), RCT_OK);
	/* The deadline passed with the secondary silent: the session failed, and
	 * the status says so (one rule: fatal codes only from a failed session). */
	st = rct_ckpt_begin(pp.p, 1, 0);
	cr_assert_eq(st, RCT_ERR_PEER_LOST, "begin returned %s", rct_status_str(st));
	cr_assert(rct_status_is_fatal(st));
	cr_assert_eq(rct_session_progress(pp.p, 0), RCT_ERR_PEER_LOST);
	/* Guest RAM is not written by a commit alone: only a flush does that. */
	for (size_t i = 0; i < SIZE; i++)
		if (pp.sram[i] != 0xee)
			cr_assert_fail("byte %zu of guest RAM written before flush", i);
}

/* Primary events of type @type seen so far, with their epochs in @epochs. */
static unsigned primary_events(enum rct_event_type type, uint64_t *epochs, unsigned max)
{
	struct rct_event ev = {0};
	unsigned n = 0;

	while (rct_session_event_next(pp.p, &ev) == RCT_OK)
		if (ev.type == type && n < max)
			epochs[n++] = ev.epoch;
	return n;
}

Test(engine, a_refused_epoch_is_applied_with_the_next_flushed_one)
{
	struct pair_opts o = engine_opts();
	uint64_t seen[8];
	unsigned nseen;

	o.refuse_mask = 1u << 0 | 1u << 3 | 1u << 4; /* the full sync, then two in a row */
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, NULL, 0), RCT_OK);
	cr_assert(pair_wait_refused(&pp, 0, 2000));
	/* Refused: guest RAM holds nothing of it (pair_open fills it with 0xee;
	 * the secondary's own guest then changed o.scribble bytes at most). */
	{
		size_t changed = 0;

		for (size_t i = 0; i < SIZE; i++)
			changed += pp.sram[i] != 0xee;
		cr_assert_leq(changed, o.scribble, "%zu bytes of guest RAM written", changed);
	}
	for (uint64_t e = 1; e <= 6; e++) {
		pair_dirty(&pp, bits, 40, e * 11, 100);
		cr_assert_eq(pair_ckpt(&pp, e, bits, "dev", 3), RCT_OK);
		if (o.refuse_mask >> e & 1) {
			cr_assert(pair_wait_refused(&pp, e, 2000), "epoch %llu not refused",
				  (unsigned long long)e);
			cr_assert(memcmp(pp.sram, pp.snap, SIZE),
				  "epoch %llu refused, yet guest RAM equals the primary's",
				  (unsigned long long)e);
			continue;
		}
		cr_assert(pair_wait_flushed(&pp, e, 2000), "epoch %llu not flushed",
			  (unsigned long long)e);
		/* The full sync's pages (epoch 0) and epochs 3 and 4 came late,
		 * with the next flush, and undid what the secondary's guest wrote. */
		cr_assert(pp.equal, "secondary RAM differs at epoch %llu", (unsigned long long)e);
	}
	nseen = primary_events(RCT_EVENT_CKPT_REFUSED, seen, 8);
	cr_assert_eq(nseen, 3, "the primary saw %u refusals", nseen);
	cr_assert_eq(seen[0], 0);
	cr_assert_eq(seen[1], 3);
	cr_assert_eq(seen[2], 4);
	/* Refusing is not ending: both sides are still connected. */
	cr_assert_eq(rct_session_progress(pp.p, 0), RCT_OK);
	cr_assert_eq(rct_ckpt_refuse(pp.s, 6, NULL), RCT_ERR_STATE, "epoch 6 is flushed already");
}

/* ---- sparse guests (pair_opts.sparse): holes and zero pages are not sent */

static void open_sparse(uint64_t refuse_mask)
{
	struct pair_opts o = engine_opts();

	o.scribble = 0;
	o.sparse = true;
	o.refuse_mask = refuse_mask;
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
}

Test(engine, a_full_sync_sends_neither_holes_nor_zero_pages)
{
	uint64_t data_pages = (SIZE / 4096 + 7) / 8;

	open_sparse(0);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "d", 1), RCT_OK);
	cr_assert_eq(pp.p->pri.stats.pages, data_pages, "sent %llu pages, %llu hold data",
		     (unsigned long long)pp.p->pri.stats.pages, (unsigned long long)data_pages);
	cr_assert(pair_wait_flushed(&pp, 0, 2000));
	/* The secondary's 0xee half is zeroed where the primary is zero. */
	cr_assert(pp.equal, "secondary RAM differs after a sparse full sync");
	pair_dirty(&pp, bits, 30, 100, 20);
	cr_assert_eq(pair_ckpt(&pp, 1, bits, "e", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 2000));
	cr_assert(pp.equal, "secondary RAM differs at epoch 1");
}

Test(engine, a_full_sync_after_others_zeroes_what_the_cache_held_of_zero_pages)
{
	const uint64_t page = 8 * 20; /* data at first, then zeroed */
	const uint8_t *cache;

	open_sparse(0);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "d", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 2000));
	memset(pp.pram + page * 4096, 0, 4096);
	memset(bits, 0, rct_bitmap_words(SIZE / 4096) * 8);
	rct_bitmap_set(bits, page);
	cr_assert_eq(pair_ckpt(&pp, 1, bits, "e", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 2000));
	/* Epoch 1 sent a zero page: the cache holds it (written, zero). */
	memset(pp.pram + page * 4096, 0x77, 4096);
	cr_assert_eq(pair_ckpt(&pp, 2, bits, "f", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 2, 2000));
	cache = pp.sr->mem->addr;
	cr_assert_eq(cache[page * 4096], 0x77);
	/* Zero again, then a full sync that does not send it: the cache must
	 * not keep 0x77, or a later flush of that page would restore it. */
	memset(pp.pram + page * 4096, 0, 4096);
	cr_assert_eq(pair_ckpt(&pp, 3, NULL, "g", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 3, 2000));
	cr_assert(pp.equal, "secondary RAM differs after the second full sync");
	cr_assert(rct_mem_is_zero(cache + page * 4096, 4096), "the cache kept a stale page");
}

Test(engine, a_refused_full_sync_is_applied_whole_by_the_next_flush)
{
	open_sparse(1u << 0);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "d", 1), RCT_OK);
	cr_assert(pair_wait_refused(&pp, 0, 2000));
	pair_dirty(&pp, bits, 10, 0, 0);
	cr_assert_eq(pair_ckpt(&pp, 1, bits, "e", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 2000));
	/* Epoch 1 copies its pages and epoch 0's, and zeroes the 0xee half
	 * where the primary is zero, as epoch 0's flush would have. */
	cr_assert(pp.equal, "secondary RAM differs after a refused full sync");
}

Test(engine, a_flush_shared_by_helper_threads_is_applied_whole)
{
	struct pair_opts o = engine_opts();

	o.flush_threads = 3;
	open_synced(&o);
	for (unsigned e = 1; e <= 6; e++) {
		/* Scattered pages and a run that crosses the shares' cuts; the
		 * last epochs are too small to share. */
		pair_dirty(&pp, bits, e < 5 ? 400 : 20, e * 61, e < 5 ? 300 : 3);
		cr_assert_eq(pair_ckpt(&pp, e, bits, "e", 1), RCT_OK);
		cr_assert(pair_wait_flushed(&pp, e, 2000), "epoch %u not flushed", e);
		cr_assert(pp.equal, "secondary RAM differs at epoch %u", e);
	}
	/* The helpers took their shares (3 of 4 of a flush of 1,024 pages). */
	cr_assert_geq(rct_flush_helped(pp.s), 1500, "helpers copied %llu pages",
		      (unsigned long long)rct_flush_helped(pp.s));
}

Test(engine, a_region_whose_file_may_shrink_is_flushed_by_the_callers_thread_only)
{
	struct pair_opts o = engine_opts();

	o.sparse = true; /* unsealed memfds */
	o.flush_threads = 2;
	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert(pp.sr->flush_alone);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, "d", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 2000));
	pair_dirty(&pp, bits, 400, 0, 600);
	cr_assert_eq(pair_ckpt(&pp, 1, bits, "e", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 2000));
	cr_assert(pp.equal, "secondary RAM differs at epoch 1");
	cr_assert_eq(rct_flush_helped(pp.s), 0);
}

/* ---- streaming before the pause (rct_ckpt_stream) */

static unsigned bits_count(const uint64_t *b)
{
	unsigned n = 0;

	for (uint64_t w = 0; w < rct_bitmap_words(SIZE / 4096); w++)
		n += (unsigned)__builtin_popcountll(b[w]);
	return n;
}

/* Drive the primary for @ms (the secondary's thread takes what arrives). */
static void drive(int ms)
{
	uint64_t end = rct_now_ns() + (uint64_t)ms * 1000000;

	while (rct_now_ns() < end)
		cr_assert_eq(rct_session_progress(pp.p, 5), RCT_OK);
}

Test(engine, streamed_pages_and_pages_dirtied_again_after_their_stream_are_applied_whole)
{
	struct pair_opts o = engine_opts();
	struct rct_ckpt_stats st = {0};

	o.scribble = 0; /* the secondary's RAM must equal the last image between flushes */
	open_synced(&o);
	for (uint64_t e = 1; e <= 4; e++) {
		unsigned sent = 0;

		/* The guest runs: BEGIN at once, then what it dirties, twice, the
		 * second time over pages the first stream sent (they go again). */
		cr_assert_eq(rct_ckpt_begin(pp.p, e, 0), RCT_OK);
		for (unsigned k = 0; k < 2; k++) {
			pair_dirty(&pp, bits, 60, e * 37, 40);
			sent += bits_count(bits);
			cr_assert_eq(rct_ckpt_stream(pp.p, pp.pr, bits, pp.npages), RCT_OK);
			drive(30);
			/* Pages are in the cache; guest RAM is still the last image. */
			cr_assert(!memcmp(pp.sram, pp.snap, SIZE),
				  "epoch %llu: guest RAM changed before the commit",
				  (unsigned long long)e);
		}
		/* The pause: the pages dirtied since the last stream, again some
		 * of the streamed run. */
		pair_dirty(&pp, bits, 10, e * 37 + 5, 10);
		sent += bits_count(bits);
		memcpy(pp.snap, pp.pram, SIZE);
		cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, pp.npages), RCT_OK);
		cr_assert_eq(rct_ckpt_stream(pp.p, pp.pr, bits, pp.npages), RCT_ERR_STATE,
			     "a stream after the pause's bitmap");
		cr_assert_eq(rct_ckpt_devstate_put(pp.p, "s", 1), RCT_OK);
		cr_assert_eq(rct_ckpt_commit(pp.p, &st), RCT_OK);
		cr_assert_eq(st.pages, sent, "epoch %llu: %llu pages counted, %u sent",
			     (unsigned long long)e, (unsigned long long)st.pages, sent);
		cr_assert(pair_wait_flushed(&pp, e, 2000), "epoch %llu not flushed",
			  (unsigned long long)e);
		cr_assert(pp.equal, "secondary RAM differs at epoch %llu", (unsigned long long)e);
	}
	/* Not with a full sync: it sends every page at the commit. */
	cr_assert_eq(rct_ckpt_begin(pp.p, 5, RCT_CKPT_FULL), RCT_OK);
	cr_assert_eq(rct_ckpt_stream(pp.p, pp.pr, bits, pp.npages), RCT_ERR_STATE);
}

/*
 * Zero-page elision (RCT_TAKE_ZERO_PAGES): zero pages are named in ZEROS and
 * not put; the secondary zeroes them in its cache at the commit.  Pages that
 * went as data in a stream and are zero at the pause, and the reverse, come
 * out right; and the cache holds the zeros: the secondary's guest dirties
 * exactly those pages after the flush, and the next flush restores them.
 */
Test(engine, zero_pages_go_as_zeros_and_the_colo_cache_holds_them)
{
	struct pair_opts o = engine_opts();
	struct rct_ckpt_stats st = {0};
	uint64_t nwords = rct_bitmap_words(SIZE / 4096);
	uint64_t *zero = calloc(nwords, 8), *streamed = calloc(nwords, 8);
	unsigned nzero = 0, nstream, k = 0;

	cr_assert(zero && streamed);
	o.scribble = 0;
	open_synced(&o);
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, 0), RCT_OK);
	/* The stream: 40 pages of data, every other one then freed (zero). */
	pair_dirty(&pp, bits, 40, 11, 0);
	nstream = bits_count(bits);
	for (uint64_t p = 0; p < pp.npages; p++)
		if (rct_bitmap_test(bits, p) && k++ % 2)
			memset(pp.pram + p * 4096, 0, 4096), rct_bitmap_set(zero, p), nzero++;
	memcpy(streamed, bits, nwords * 8);
	cr_assert_eq(rct_ckpt_take(pp.p, pp.pr, bits, NULL, pp.npages,
				   RCT_TAKE_STREAM | RCT_TAKE_ZERO_PAGES),
		     RCT_OK);
	drive(30);
	/* The pause: three zero pages get data again, three data pages are freed. */
	memset(bits, 0, nwords * 8);
	k = 0;
	for (uint64_t p = 0; p < pp.npages && k < 6; p++) {
		if (!rct_bitmap_test(streamed, p))
			continue;
		if (rct_bitmap_test(zero, p) && k < 3) {
			memset(pp.pram + p * 4096, 0x5a, 4096);
			zero[p / 64] &= ~(1ull << (p % 64));
		} else if (!rct_bitmap_test(zero, p) && k >= 3) {
			memset(pp.pram + p * 4096, 0, 4096);
			rct_bitmap_set(zero, p);
		} else {
			continue;
		}
		rct_bitmap_set(bits, p);
		k++;
	}
	cr_assert_eq(k, 6);
	memcpy(pp.snap, pp.pram, SIZE);
	/* After this flush the secondary's guest writes into every page that is zero. */
	pp.o.scribble_bits = zero;
	cr_assert_eq(rct_ckpt_take(pp.p, pp.pr, bits, NULL, pp.npages, RCT_TAKE_ZERO_PAGES),
		     RCT_OK);
	cr_assert_eq(rct_ckpt_devstate_put(pp.p, "z", 1), RCT_OK);
	cr_assert_eq(rct_ckpt_commit(pp.p, &st), RCT_OK);
	cr_assert_eq(st.pages, nstream + 6);
	cr_assert_eq(st.bytes, (uint64_t)(nstream + 6 - nzero - 3) * 4096,
		     "%llu bytes put for %u zero pages", (unsigned long long)st.bytes, nzero + 3);
	cr_assert(pair_wait_flushed(&pp, 1, 2000));
	cr_assert(pp.equal, "secondary RAM differs at epoch 1");
	/* Epoch 2 touches none of them: its flush restores them from the cache. */
	pair_dirty(&pp, bits, 5, 3000, 0);
	cr_assert_eq(pair_ckpt(&pp, 2, bits, "y", 1), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 2, 2000));
	cr_assert(pp.equal, "the cache did not hold the zero pages");
	pp.o.scribble_bits = NULL;
	free(zero);
	free(streamed);
}

Test(engine, a_streamed_epoch_that_never_commits_leaves_guest_ram_at_the_last_image)
{
	struct pair_opts o = engine_opts();

	o.scribble = 0;
	open_synced(&o);
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, 0), RCT_OK);
	pair_dirty(&pp, bits, 200, 100, 200);
	cr_assert_eq(rct_ckpt_stream(pp.p, pp.pr, bits, pp.npages), RCT_OK);
	drive(50);
	/* The primary dies before its pause. */
	rct_session_destroy(pp.p);
	pp.p = NULL;
	cr_assert_neq(pair_wait_lost(&pp, 5000), RCT_OK);
	cr_assert(!memcmp(pp.sram, pp.snap, SIZE), "guest RAM took streamed pages of epoch 1");
	cr_assert_eq(rct_session_last_committed(pp.s), 0);
}

Test(engine, device_state_written_in_the_staging_buffer_is_put_without_a_copy)
{
	struct pair_opts o = engine_opts();
	size_t cap = 0;
	void *buf = NULL;

	open_synced(&o);
	cr_assert_eq(rct_ckpt_devstate_buffer(pp.p, &buf, &cap), RCT_ERR_STATE, "no open epoch");
	pair_dirty(&pp, bits, 20, 0, 0);
	memcpy(pp.snap, pp.pram, SIZE);
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, 0), RCT_OK);
	cr_assert_eq(rct_ckpt_devstate_buffer(pp.p, &buf, &cap), RCT_OK);
	cr_assert(buf && cap >= 40000, "staging of %zu bytes", cap);
	for (size_t i = 0; i < 40000; i++)
		((uint8_t *)buf)[i] = (uint8_t)(i * 7 + 1);
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, pp.npages), RCT_OK);
	cr_assert_eq(rct_ckpt_devstate_put(pp.p, buf, 40000), RCT_OK);
	cr_assert_eq(rct_ckpt_devstate_buffer(pp.p, &buf, &cap), RCT_ERR_STATE, "given already");
	cr_assert_eq(rct_ckpt_commit(pp.p, NULL), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 1, 2000));
	cr_assert(pp.equal);
	cr_assert_eq(pp.devstate_len, 40000);
	for (size_t i = 0; i < 40000; i++)
		cr_assert_eq(pp.devstate[i], (uint8_t)(i * 7 + 1), "byte %zu", i);
}

/* The device state commit_some(2) gave epoch 2. */
static void expect_devstate_of_epoch_2(void)
{
	uint8_t dev[300];
	const void *got = NULL;
	size_t len = 0;

	memset(dev, 0xab, sizeof(dev));
	dev[0] = 2;
	cr_assert_eq(rct_ckpt_devstate_get(pp.s, 2, &got, &len), RCT_OK);
	cr_assert_eq(len, sizeof(dev) - 2);
	cr_assert_arr_eq(got, dev, len, "the committed device state changed");
	/* Handed back from where it was put: no copy. */
	cr_assert((const uint8_t *)got >= (const uint8_t *)pp.s->staging->addr &&
			  (const uint8_t *)got + len <=
				  (const uint8_t *)pp.s->staging->addr + pp.s->staging->len,
		  "the committed device state is not in staging");
}

/*
 * The secondary's staging has two slots; the committed device state stays in
 * its own while the next epoch's is put into the other.  An epoch whose
 * device state landed and that never commits leaves the committed one as it
 * was: the failover image keeps its device state.
 */
Test(engine, a_device_state_in_flight_never_touches_the_committed_one)
{
	uint8_t next[298];
	const uint8_t *other;

	open_pair(2, true);
	commit_some(2);
	memset(next, 0xcd, sizeof(next));
	pair_dirty(&pp, bits, 20, 5, 0);
	cr_assert_eq(rct_ckpt_begin(pp.p, 3, 0), RCT_OK);
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, pp.npages), RCT_OK);
	cr_assert_eq(rct_ckpt_devstate_put(pp.p, next, sizeof(next)), RCT_OK);
	drive(50);
	other = (const uint8_t *)pp.s->staging->addr +
		(pp.s->devstate_slot == 0 ? pp.s->staging_slot : 0);
	cr_assert_arr_eq(other, next, sizeof(next), "epoch 3's device state did not land");
	/* The primary dies before its commit. */
	rct_session_destroy(pp.p);
	pp.p = NULL;
	cr_assert_neq(pair_wait_lost(&pp, 5000), RCT_OK);
	cr_assert_eq(rct_session_last_committed(pp.s), 2);
	expect_devstate_of_epoch_2();
}

Test(engine, a_device_state_put_into_the_committed_slot_is_rejected)
{
	struct rct_msg m;

	commit_two_then_begin_3_by_hand();
	memset(&m, 0, sizeof(m));
	m.type = RCT_MSG_DEVSTATE;
	m.devstate.epoch = 3;
	m.devstate.length = 10;
	cr_assert_geq(pp.s->devstate_slot, 0);
	m.devstate.slot = (uint32_t)pp.s->devstate_slot;
	inject(&m);
	expect_secondary_rejects();
	expect_devstate_of_epoch_2();
}

Test(engine, region_names_travel_and_a_mismatch_is_named)
{
	struct pair_opts o = {.ops = &mock_ops,
			      .lanes = 1,
			      .size = SIZE,
			      .timeout_ms = 2000,
			      .auto_flush = true,
			      .pname = "pc.ram",
			      .sname = "pc.ram"};
	rct_status_t st;

	cr_assert_eq(pair_open(&pp, &o), RCT_OK);
	cr_assert_eq(pair_ckpt(&pp, 0, NULL, NULL, 0), RCT_OK);
	cr_assert(pair_wait_flushed(&pp, 0, 2000));
	cr_assert(pp.equal);
	cr_assert_eq(rct_region_set_name(pp.pr, "other"), RCT_ERR_STATE, "renamed when connected");
	pair_close(&pp);

	o.sname = "mem0";
	st = pair_open(&pp, &o);
	cr_assert_eq(st, RCT_ERR_MISMATCH, "connect returned %s", rct_status_str(st));
	cr_assert_eq(pair_wait_lost(&pp, 2000), RCT_ERR_MISMATCH);
	pair_close(&pp);

	o.sname = NULL; /* named on one side only */
	cr_assert_eq(pair_open(&pp, &o), RCT_ERR_MISMATCH);
	pair_close(&pp);

	/* Names are checked where they are given. */
	o.pname = "pc ram";
	cr_assert_eq(pair_open(&pp, &o), RCT_ERR_INVALID_PARAM);
}

Test(engine, api_misuse_is_refused)
{
	uint64_t one = 1;

	open_pair(2, true);
	commit_some(0);
	/* dirty/commit without begin; wrong bitmap size; epochs must grow */
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, SIZE / 4096), RCT_ERR_STATE);
	cr_assert_eq(rct_ckpt_commit(pp.p, NULL), RCT_ERR_STATE);
	cr_assert_eq(rct_ckpt_begin(pp.p, 0, 0), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, 0x80), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, 0), RCT_OK);
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, &one, 64), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_devstate_put(pp.p, saved, 64u << 20), RCT_ERR_NO_SPACE);
	memset(bits, 0, rct_bitmap_words(SIZE / 4096) * 8);
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, SIZE / 4096), RCT_OK);
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, SIZE / 4096), RCT_ERR_STATE);
	cr_assert_eq(rct_ckpt_commit(pp.p, NULL), RCT_OK);
	/* secondary-only calls on the primary and vice versa */
	cr_assert_eq(rct_ckpt_flush(pp.p, 1, NULL), RCT_ERR_STATE);
	cr_assert_eq(rct_ckpt_begin(pp.s, 9, 0), RCT_ERR_STATE); /* reads the role only */
}

/* The mock backend has no notifications: arming says so instead of sleeping forever. */
Test(engine, arm_needs_a_connected_session_and_a_backend_that_can)
{
	struct rct_session_params p = {.field_mask = RCT_SESSION_PARAM_FIELD_ROLE,
				       .role = RCT_ROLE_SECONDARY};
	struct rct_session *s = NULL;
	int ms;

	cr_assert_eq(rct_session_create(&p, &s), RCT_OK);
	cr_assert_eq(rct_session_arm(s, &ms), RCT_ERR_STATE);
	cr_assert_eq(rct_session_arm(s, NULL), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_fd(NULL), -1);
	rct_session_destroy(s);
	open_pair(1, true);
	cr_assert_eq(rct_session_arm(pp.p, &ms), RCT_ERR_UNSUPPORTED);
}

/* Output structs (rct_types.h, field_mask): the library writes only the fields
 * asked, says which it wrote, and 0 asks for the first version's. */
Test(engine, output_structs_carry_only_the_fields_asked)
{
	struct rct_ckpt_stats st = {.field_mask = RCT_CKPT_STATS_FIELD_EPOCH |
						  RCT_CKPT_STATS_FIELD_TRANSFER_NS | (1ull << 40),
				    .pages = 12345,
				    .flush_ns = 777};
	struct rct_ckpt_stats all = {0};
	struct rct_sync_progress prog = {.field_mask = RCT_SYNC_PROGRESS_FIELD_ACTIVE,
					 .pages_total = 99};

	open_pair(2, true);
	cr_assert_eq(rct_ckpt_begin(pp.p, 1, RCT_CKPT_FULL), RCT_OK);
	cr_assert_eq(rct_ckpt_commit(pp.p, &st), RCT_OK);
	/* Asked: epoch and transfer_ns (and a bit this version does not know). */
	cr_assert_eq(st.field_mask, RCT_CKPT_STATS_FIELD_EPOCH | RCT_CKPT_STATS_FIELD_TRANSFER_NS);
	cr_assert_eq(st.epoch, 1);
	cr_assert_gt(st.transfer_ns, 0);
	cr_assert_eq(st.pages, 12345, "a field not asked for was written");
	cr_assert_eq(st.flush_ns, 777, "a field not asked for was written");
	cr_assert(pair_wait_flushed(&pp, 1, 5000));
	cr_assert_eq(rct_ckpt_begin(pp.p, 2, 0), RCT_OK);
	memset(bits, 0, rct_bitmap_words(SIZE / 4096) * 8);
	cr_assert_eq(rct_ckpt_dirty(pp.p, pp.pr, bits, SIZE / 4096), RCT_OK);
	cr_assert_eq(rct_ckpt_commit(pp.p, &all), RCT_OK);
	cr_assert_eq(all.field_mask, RCT_CKPT_STATS_FIELDS_V1);
	cr_assert_eq(all.epoch, 2);
	rct_session_sync_progress(pp.p, &prog);
	cr_assert_eq(prog.field_mask, RCT_SYNC_PROGRESS_FIELD_ACTIVE);
	cr_assert_eq(prog.active, 0);
	cr_assert_eq(prog.pages_total, 99, "a field not asked for was written");
}

/* Every public call takes a NULL session (or a NULL output) and says so,
 * before it reads anything through it: accept and connect read the timeout
 * of a NULL session first. */
Test(session, every_call_refuses_null_before_touching_it)
{
	struct rct_session_params p = {.field_mask = RCT_SESSION_PARAM_FIELD_ROLE,
				       .role = RCT_ROLE_PRIMARY};
	struct rct_sync_progress prog = {.active = 1};
	struct rct_session *s = NULL;
	struct rct_event ev = {0};
	const void *buf;
	uint64_t one = 1;
	size_t len;

	cr_assert_eq(rct_session_accept(NULL), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_connect(NULL, "127.0.0.1", 1), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_listen(NULL, "127.0.0.1", 0, NULL), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_set_pairing(NULL, "vm", NULL, 0), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_region_register(NULL, 0, &one, 4096, NULL), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_begin(NULL, 1, 0), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_dirty(NULL, NULL, &one, 64), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_devstate_put(NULL, &one, 8), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_stream(NULL, NULL, &one, 64), RCT_ERR_INVALID_PARAM);
	{
		void *b;
		size_t cap;

		cr_assert_eq(rct_ckpt_devstate_buffer(NULL, &b, &cap), RCT_ERR_INVALID_PARAM);
	}
	cr_assert_eq(rct_ckpt_commit(NULL, NULL), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_local_dirty(NULL, NULL, &one, 64), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_flush(NULL, 0, NULL), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_devstate_get(NULL, 0, &buf, &len), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_progress(NULL, 0), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_event_next(NULL, &ev), RCT_ERR_INVALID_PARAM);
	cr_assert_null(rct_session_backend(NULL));
	cr_assert_eq(rct_session_lanes(NULL), 0);
	cr_assert_eq(rct_session_last_committed(NULL), UINT64_MAX);
	cr_assert_eq(rct_session_peer_closed(NULL), 0);
	rct_session_sync_progress(NULL, &prog);
	cr_assert_eq(prog.active, 0);

	cr_assert_eq(rct_session_create(&p, &s), RCT_OK);
	rct_session_sync_progress(s, NULL);
	cr_assert_eq(rct_session_connect(s, NULL, 1), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_session_event_next(s, NULL), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_ckpt_devstate_get(s, 0, NULL, &len), RCT_ERR_INVALID_PARAM);
	rct_session_destroy(s);
}

Test(session, params_are_validated)
{
	struct rct_session_params p = {.field_mask = RCT_SESSION_PARAM_FIELD_ROLE,
				       .role = RCT_ROLE_PRIMARY};
	struct rct_session *s = NULL;
	struct rct_region *r;
	void *ram = rct_mem_alloc(1 << 20);

	cr_assert_eq(rct_session_create(NULL, &s), RCT_ERR_INVALID_PARAM);
	p.field_mask = 0;
	cr_assert_eq(rct_session_create(&p, &s), RCT_ERR_INVALID_PARAM);
	p.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_LANES;
	p.lanes = 65;
	cr_assert_eq(rct_session_create(&p, &s), RCT_ERR_INVALID_PARAM);
	p.lanes = 0;
	cr_assert_eq(rct_session_create(&p, &s), RCT_ERR_INVALID_PARAM);
	p.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_PAGE_SIZE;
	p.page_size = 3000;
	cr_assert_eq(rct_session_create(&p, &s), RCT_ERR_INVALID_PARAM);
	p.field_mask = RCT_SESSION_PARAM_FIELD_ROLE | RCT_SESSION_PARAM_FIELD_BACKEND;
	p.backend = "carrier-pigeon";
	cr_assert_eq(rct_session_create(&p, &s), RCT_ERR_NOT_FOUND);

	p.field_mask = RCT_SESSION_PARAM_FIELD_ROLE;
	cr_assert_eq(rct_session_create(&p, &s), RCT_OK);
	cr_assert_eq(rct_region_register(s, 1, (char *)ram + 100, 4096, &r), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_region_register(s, 1, ram, 4000, &r), RCT_ERR_INVALID_PARAM);
	cr_assert_eq(rct_region_register(s, 1, ram, 1 << 20, &r), RCT_OK);
	cr_assert_eq(rct_region_pages(r), 256);
	cr_assert_eq(rct_region_register(s, 1, ram, 1 << 20, &r), RCT_ERR_EXISTS);
	cr_assert_eq(rct_session_listen(s, "127.0.0.1", 0, NULL), RCT_ERR_STATE);
	rct_session_destroy(s);
	rct_session_destroy(NULL);
	rct_mem_free(ram, 1 << 20);
	cr_assert_str_eq(rct_status_str(RCT_ERR_PEER_LOST), "peer lost");
	cr_assert_str_eq(rct_status_str((rct_status_t)12345), "unknown status");
}
