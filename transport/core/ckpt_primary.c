/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoint engine, primary side.
 *
 *   begin    wait until the secondary flushed the previous epoch (its cache may
 *            not be written before), send BEGIN.
 *   stream   (any number of times, while the guest runs, before dirty) what
 *            the hypervisor found dirty so far: sent as dirty sends it, at once,
 *            without waiting for the puts.  A page streamed and dirtied again
 *            is in a later bitmap and sent again; the secondary ORs every
 *            bitmap of the epoch and counts repeats, as the primary does.
 *   dirty    send the bitmap's non-zero words in BITMAP segments, cut it into runs of contiguous
 *            pages in address order (each at most max_put bytes) and stripe the
 *            runs over the data lanes, each run to the lane with the fewest
 *            bytes so far.  Puts start at once.
 *   devstate copy the blob into the local staging buffer, put it into the
 *            secondary's staging buffer, send DEVSTATE with its length.
 *   full     (RCT_CKPT_FULL, at commit) every page that holds data, as if all
 *            were dirty; holes and zero pages are left out (the cache is zero).
 *            With RCT_CKPT_BASE the secondary settles it into its cache only
 *            (FLUSHED follows COMMITTED at once; ckpt_secondary.c).
 *   commit   wait until every put completed locally, fence every lane, send
 *            COMMIT with the counts the secondary must have seen, and wait for
 *            ACK(COMMITTED), which the secondary sends only when the fence has
 *            passed on every lane and the counts match.
 */
#include <endian.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bitmap.h"
#include "ckpt.h"
#include "keepalive.h"
#include "region.h"
#include "log.h"
#include "session.h"
#include "util.h"

static rct_status_t rct_primary_check(struct rct_session *s, enum rct_ckpt_state want)
{
	if (s->role != RCT_ROLE_PRIMARY)
		return RCT_ERR_STATE;
	if (s->state == RCT_SESSION_FAILED)
		return s->fail_status;
	if (s->state != RCT_SESSION_CONNECTED || s->ckpt != want)
		return RCT_ERR_STATE;
	return RCT_OK;
}

rct_status_t rct_primary_dispatch(struct rct_session *s, const struct rct_msg *m)
{
	char text[160];

	if (m->type == RCT_MSG_ACK && m->ack.kind == RCT_ACK_COMMITTED &&
	    s->ckpt == RCT_CKPT_OPEN && s->pri.t_commit_sent && m->ack.epoch == s->epoch &&
	    !s->pri.acked) {
		/* Committed from here on: the FLUSHED that follows may come in the
		 * same poll, before rct_ckpt_commit() returns. */
		s->pri.acked = true;
		s->pri.t_acked = rct_now_ns();
		s->last_committed = s->epoch;
		s->last_consistent = (s->flags & RCT_CKPT_LIVE) ? RCT_NO_EPOCH : s->epoch;
		s->pri.flushed = false;
		/* The secondary now keeps this device state in its slot. */
		if (s->pri.devstate_given && s->pri.devstate_len)
			s->devstate_slot = (int)s->pri.devstate_put_slot;
		return RCT_OK;
	}
	if (m->type == RCT_MSG_ACK &&
	    (m->ack.kind == RCT_ACK_FLUSHED || m->ack.kind == RCT_ACK_REFUSED) &&
	    m->ack.epoch == s->last_committed && !s->pri.flushed) {
		s->pri.flushed = true;
		if (m->ack.kind == RCT_ACK_REFUSED) {
			rct_warn("checkpoint %llu: the secondary refused to apply it; its pages go "
				 "with the next checkpoint it flushes",
				 (unsigned long long)m->ack.epoch);
			rct_session_event_push(s, RCT_EVENT_CKPT_REFUSED, m->ack.epoch, RCT_OK);
		}
		return RCT_OK;
	}
	if (m->type == RCT_MSG_ACK)
		snprintf(text, sizeof(text), "unexpected ACK(%s) for epoch %llu",
			 m->ack.kind == RCT_ACK_COMMITTED ? "COMMITTED"
			 : m->ack.kind == RCT_ACK_FLUSHED ? "FLUSHED"
							  : "REFUSED",
			 (unsigned long long)m->ack.epoch);
	else
		snprintf(text, sizeof(text), "unexpected %s from the secondary",
			 rct_msg_type_str(m->type));
	return rct_session_proto_error(s, RCT_ERR_PROTO, text);
}

rct_status_t rct_ckpt_begin(struct rct_session *s, uint64_t epoch, unsigned flags)
{
	uint64_t deadline;
	struct rct_msg m = {.type = RCT_MSG_BEGIN};
	rct_status_t status;

	if (!s || (flags & ~(unsigned)(RCT_CKPT_FULL | RCT_CKPT_LIVE | RCT_CKPT_BASE)))
		return RCT_ERR_INVALID_PARAM;
	if ((flags & RCT_CKPT_LIVE) && !(flags & RCT_CKPT_FULL)) {
		rct_error("checkpoint %llu: RCT_CKPT_LIVE is a full sync; RCT_CKPT_FULL is needed",
			  (unsigned long long)epoch);
		return RCT_ERR_INVALID_PARAM;
	}
	if ((flags & RCT_CKPT_BASE) && !(flags & RCT_CKPT_LIVE)) {
		rct_error("checkpoint %llu: RCT_CKPT_BASE seeds the cache while the guest runs; "
			  "RCT_CKPT_FULL | RCT_CKPT_LIVE are needed",
			  (unsigned long long)epoch);
		return RCT_ERR_INVALID_PARAM;
	}
	status = rct_primary_check(s, RCT_CKPT_IDLE);
	if (status != RCT_OK)
		return status;
	if ((flags & RCT_CKPT_BASE) && s->last_committed != RCT_NO_EPOCH) {
		rct_error("checkpoint %llu: RCT_CKPT_BASE is only the session's first epoch (%llu "
			  "is committed)",
			  (unsigned long long)epoch, (unsigned long long)s->last_committed);
		return RCT_ERR_INVALID_PARAM;
	}
	if (epoch == RCT_NO_EPOCH ||
	    (s->last_committed != RCT_NO_EPOCH && epoch <= s->last_committed)) {
		rct_error("checkpoint: epoch %llu does not follow the last committed epoch %llu",
			  (unsigned long long)epoch, (unsigned long long)s->last_committed);
		return RCT_ERR_INVALID_PARAM;
	}

	s->pri.t_begin = rct_now_ns();
	deadline = s->pri.t_begin + (uint64_t)s->timeout_ms * 1000000;
	status = rct_session_wait_flag(s, &s->pri.flushed, deadline,
				       "the secondary to flush the previous checkpoint");
	if (status != RCT_OK)
		return status == RCT_ERR_TIMED_OUT ? rct_session_fail(s, status) : status;

	m.begin.epoch = epoch;
	m.begin.flags = flags;
	status = rct_session_send(s, &m);
	if (status != RCT_OK)
		return status;

	s->ckpt = RCT_CKPT_OPEN;
	s->epoch = epoch;
	s->flags = flags;
	s->pri.acked = false;
	s->pri.t_first_put = 0;
	s->pri.t_commit_sent = 0;
	s->pri.bitmap_words_sent = 0;
	s->pri.zero_pages = 0;
	s->pri.stream_pages = 0;
	s->pri.streaming = false;
	s->pri.streamed = false;
	s->pri.t_pause = 0;
	s->pri.devstate_len = 0;
	s->pri.devstate_given = false;
	memset(&s->pri.stats, 0, sizeof(s->pri.stats));
	s->pri.stats.field_mask = RCT_CKPT_STATS_FIELDS_ALL;
	s->pri.stats.epoch = epoch;
	for (unsigned i = 0; i < RCT_MAX_LANES; i++)
		s->pri.lane[i].bytes = 0;
	for (unsigned i = 0; i < s->nregions; i++)
		s->regions[i]->dirty_given = false;
	return RCT_OK;
}

/* Hand lane @lane's queued runs to the backend. */
static rct_status_t rct_primary_lane_flush(struct rct_session *s, unsigned lane,
					   struct rct_be_mem *mem, struct rct_be_rkey *rkey)
{
	rct_status_t status;

	if (!s->pri.lane[lane].nruns)
		return RCT_OK;
	if (!s->pri.t_first_put && !s->pri.streaming)
		s->pri.t_first_put = rct_now_ns();
	status = s->ops->put(s->ctx, lane, mem, rkey, s->pri.lane[lane].runs,
			     s->pri.lane[lane].nruns);
	s->pri.lane[lane].nruns = 0;
	s->pri.lane[lane].batch_bytes = 0;
	if (status != RCT_OK) {
		rct_error("checkpoint %llu: put on lane %u failed: %s",
			  (unsigned long long)s->epoch, lane, rct_status_str(status));
		return rct_session_fail(s, status);
	}
	/* A put may copy with the CPU (ucx into a mapped target, first-touch
	 * faults included): keep the peer informed between batches. */
	return rct_session_tick(s);
}

/* Queue one run on the least-loaded lane; hand a full batch to the backend. */
static rct_status_t rct_primary_queue_run(struct rct_session *s, struct rct_be_mem *mem,
					  struct rct_be_rkey *rkey, uint64_t loff, uint64_t roff,
					  uint64_t len)
{
	unsigned lane = 0;
	struct rct_run *run;

	for (unsigned i = 1; i < s->lanes; i++)
		if (s->pri.lane[i].bytes < s->pri.lane[lane].bytes)
			lane = i;
	run = &s->pri.lane[lane].runs[s->pri.lane[lane].nruns++];
	run->loff = loff;
	run->roff = roff;
	run->len = len;
	s->pri.lane[lane].bytes += len;
	s->pri.lane[lane].batch_bytes += len;
	if (s->pri.lane[lane].nruns == RCT_LANE_BATCH ||
	    s->pri.lane[lane].batch_bytes >= RCT_LANE_BATCH_BYTES)
		return rct_primary_lane_flush(s, lane, mem, rkey);
	return RCT_OK;
}

/*
 * Hand every lane's remaining runs to the backend, the last lane first: a
 * backend that stores some lanes with the calling thread (ucx into a mapped
 * target: lane 0 and every (copiers + 1)-th) then has the other lanes' jobs
 * queued to its copier threads before the caller starts copying its own.
 */
static rct_status_t rct_primary_flush_lanes(struct rct_session *s, struct rct_be_mem *mem,
					    struct rct_be_rkey *rkey)
{
	rct_status_t status = RCT_OK;

	for (unsigned i = s->lanes; i-- > 0 && status == RCT_OK;)
		status = rct_primary_lane_flush(s, i, mem, rkey);
	return status;
}

/* Send one BITMAP of @nitems items starting at word @first. */
static rct_status_t rct_primary_bitmap_msg(struct rct_session *s, struct rct_region *r,
					   uint16_t type, uint64_t first, uint32_t nitems)
{
	struct rct_msg m = {.type = type};

	m.bitmap.epoch = s->epoch;
	m.bitmap.region_id = r->id;
	m.bitmap.first_word = first;
	m.bitmap.nitems = nitems;
	m.bitmap.items = s->lebuf;
	return rct_session_send(s, &m);
}

/*
 * Send the non-zero words of map @d of region @r, found through its summary,
 * as segments of consecutive words (proto.h) in @type messages (BITMAP, or
 * ZEROS): what this costs follows the dirty words, not the region's size.
 */
static rct_status_t rct_primary_send_bitmap(struct rct_session *s, struct rct_region *r,
					    const struct rct_dmap *d, uint16_t type)
{
	uint64_t w = 0, first = 0, end = 0, skip = 0; /* end: after the open segment */
	uint32_t n = 0, seg = 0, segn = 0;	      /* items in lebuf; lebuf[seg]: open segment */
	rct_status_t status;

	while (rct_dmap_next_word(d, w, &w)) {
		uint64_t v = d->bits[w];
		bool extend = n && w == end;

		if (!v) {
			w++;
			continue;
		}
		/* A new message when this one is full or the gap is too long to say. */
		if (n && (n + (extend ? 1 : 2) > RCT_BITMAP_MAX_ITEMS || w - end > UINT32_MAX)) {
			s->lebuf[seg] = htole64(rct_bitmap_seg(skip, segn));
			status = rct_primary_bitmap_msg(s, r, type, first, n);
			if (status != RCT_OK)
				return status;
			n = 0;
			extend = false;
		}
		if (!n)
			first = end = w;
		if (!extend) {
			if (n)
				s->lebuf[seg] = htole64(rct_bitmap_seg(skip, segn));
			seg = n++;
			skip = w - end;
			segn = 0;
		}
		s->lebuf[n++] = htole64(v);
		segn++;
		s->pri.bitmap_words_sent++;
		end = ++w;
	}
	if (!n)
		return RCT_OK;
	s->lebuf[seg] = htole64(rct_bitmap_seg(skip, segn));
	return rct_primary_bitmap_msg(s, r, type, first, n);
}

/* Queue pages [first, first + len) of @r, at the same offsets in its cache. */
static rct_status_t rct_primary_queue_pages(struct rct_session *s, struct rct_region *r,
					    uint64_t first, uint64_t len)
{
	s->pri.stats.pages += len;
	s->pri.stats.runs++;
	return rct_primary_queue_run(s, r->mem, r->rkey, first << s->page_shift,
				     first << s->page_shift, len << s->page_shift);
}

/* Put every page of @r whose bit is set in @d. */
static rct_status_t rct_primary_put_region(struct rct_session *s, struct rct_region *r,
					   const struct rct_dmap *d)
{
	uint64_t max_pages = s->max_put >> s->page_shift;
	uint64_t first, len, next = 0;
	rct_status_t status;

	while (rct_dmap_next_run(d, next, max_pages, &first, &len)) {
		next = first + len;
		status = rct_primary_queue_pages(s, r, first, len);
		if (status != RCT_OK)
			return status;
	}
	return rct_primary_flush_lanes(s, r->mem, r->rkey);
}

/*
 * Zero-page elision: the dirty pages of @r that are all zero leave r->dirty
 * for r->zeros (they go as ZEROS, not as data).  Reads each dirty page until
 * its first non-zero byte: for a page of data that is its first word.
 */
static uint64_t rct_primary_find_zeros(struct rct_session *s, struct rct_region *r)
{
	const char *ram = r->ram;
	uint64_t w = 0, n = 0;

	rct_dmap_clear(&r->zeros);
	while (rct_dmap_next_word(&r->dirty, w, &w)) {
		uint64_t v = r->dirty.bits[w], z = 0;

		for (; v; v &= v - 1) {
			uint64_t b = (uint64_t)__builtin_ctzll(v), p = w * 64 + b;

			if (rct_mem_is_zero(ram + (p << s->page_shift), s->page_size))
				z |= 1ull << b;
		}
		if (z) {
			/* The summary bit may stay over a word now zero: it promises nothing. */
			r->dirty.bits[w] &= ~z;
			rct_dmap_or_word(&r->zeros, w, z);
			n += (uint64_t)__builtin_popcountll(z);
		}
		w++;
	}
	return n;
}

/* Check, take, send (rct_ckpt_dirty() and rct_ckpt_stream() are its shorthands). */
rct_status_t rct_ckpt_take(struct rct_session *s, struct rct_region *r, const uint64_t *bitmap,
			   const uint64_t *summary, uint64_t nbits, unsigned flags)
{
	bool stream = flags & RCT_TAKE_STREAM;
	const char *op = stream ? "stream" : "dirty";
	uint64_t pages0, zeros = 0;
	rct_status_t status;

	if (!s || !r || r->session != s || !bitmap || (flags & ~RCT_TAKE_FLAGS_ALL))
		return RCT_ERR_INVALID_PARAM;
	status = rct_primary_check(s, RCT_CKPT_OPEN);
	if (status != RCT_OK)
		return status;
	if (nbits != r->npages) {
		rct_error("region %u: %s bitmap has %llu bits, the region %llu pages", r->id, op,
			  (unsigned long long)nbits, (unsigned long long)r->npages);
		return RCT_ERR_INVALID_PARAM;
	}
	if (s->flags & RCT_CKPT_FULL) {
		rct_error("region %u: a full checkpoint sends every page; no %s bitmap is taken",
			  r->id, op);
		return RCT_ERR_STATE;
	}
	if (r->dirty_given || s->pri.t_commit_sent) {
		rct_error("region %u: %s after the dirty pages of epoch %llu were given", r->id, op,
			  (unsigned long long)s->epoch);
		return RCT_ERR_STATE;
	}
	r->dirty_given = !stream;
	if (stream)
		s->pri.streamed = true;
	else if (!s->pri.t_pause)
		s->pri.t_pause = rct_now_ns();
	/* The caller's bitmap is read once (through its summary: only the words
	 * it names); the rest follows its set words. */
	rct_dmap_clear(&r->dirty);
	if (summary)
		rct_dmap_or_bitmap_summary(&r->dirty, bitmap, summary);
	else
		rct_dmap_or_bitmap(&r->dirty, bitmap);

	/* Bitmap first: it is small, and the control lane does not queue behind pages. */
	status = rct_primary_send_bitmap(s, r, &r->dirty, RCT_MSG_BITMAP);
	if (status != RCT_OK)
		return status;
	/* Then which of those pages are zero: the secondary zeroes them in its
	 * cache at the commit, after every put of the epoch has landed. */
	if (flags & RCT_TAKE_ZERO_PAGES) {
		zeros = rct_primary_find_zeros(s, r);
		if (zeros)
			status = rct_primary_send_bitmap(s, r, &r->zeros, RCT_MSG_ZEROS);
		if (status != RCT_OK)
			return status;
		s->pri.zero_pages += zeros;
		s->pri.stats.pages += zeros;
	}
	pages0 = s->pri.stats.pages;
	s->pri.streaming = stream;
	status = rct_primary_put_region(s, r, &r->dirty);
	s->pri.streaming = false;
	if (stream)
		s->pri.stream_pages += s->pri.stats.pages - pages0 + zeros;
	return status;
}

rct_status_t rct_ckpt_stream(struct rct_session *s, struct rct_region *r, const uint64_t *bitmap,
			     uint64_t nbits)
{
	return rct_ckpt_take(s, r, bitmap, NULL, nbits, RCT_TAKE_STREAM);
}

rct_status_t rct_ckpt_dirty(struct rct_session *s, struct rct_region *r, const uint64_t *bitmap,
			    uint64_t nbits)
{
	return rct_ckpt_take(s, r, bitmap, NULL, nbits, 0);
}

rct_status_t rct_ckpt_devstate_put(struct rct_session *s, const void *buf, size_t len)
{
	struct rct_msg m = {.type = RCT_MSG_DEVSTATE};
	rct_status_t status;

	if (!s || (!buf && len))
		return RCT_ERR_INVALID_PARAM;
	status = rct_primary_check(s, RCT_CKPT_OPEN);
	if (status != RCT_OK)
		return status;
	if (s->pri.devstate_given || s->pri.t_commit_sent) {
		rct_error("checkpoint %llu: device state already given",
			  (unsigned long long)s->epoch);
		return RCT_ERR_STATE;
	}
	if (len > s->staging->len) {
		rct_error("checkpoint %llu: device state of %zu bytes exceeds the staging buffer "
			  "(%zu bytes)",
			  (unsigned long long)s->epoch, len, s->staging->len);
		return RCT_ERR_NO_SPACE;
	}
	s->pri.devstate_given = true;
	s->pri.devstate_len = len;
	s->pri.devstate_put_slot = rct_devstate_next_slot(s);
	if (!s->pri.t_pause)
		s->pri.t_pause = rct_now_ns();
	if (len) {
		/* Written in place (rct_ckpt_devstate_buffer()): no copy. */
		if (buf != s->staging->addr)
			memcpy(s->staging->addr, buf, len);
		status = rct_primary_queue_run(s, s->staging, s->staging_rkey, 0,
					       s->pri.devstate_put_slot * s->staging_slot, len);
		if (status == RCT_OK)
			status = rct_primary_flush_lanes(s, s->staging, s->staging_rkey);
		if (status != RCT_OK)
			return status;
	}
	m.devstate.epoch = s->epoch;
	m.devstate.length = len;
	m.devstate.slot = s->pri.devstate_put_slot;
	return rct_session_send(s, &m);
}

rct_status_t rct_ckpt_devstate_buffer(struct rct_session *s, void **buf_p, size_t *cap_p)
{
	rct_status_t status;

	if (!s || !buf_p || !cap_p)
		return RCT_ERR_INVALID_PARAM;
	status = rct_primary_check(s, RCT_CKPT_OPEN);
	if (status != RCT_OK)
		return status;
	if (s->pri.devstate_given || s->pri.t_commit_sent)
		return RCT_ERR_STATE;
	*buf_p = s->staging->addr;
	*cap_p = s->staging->len;
	return RCT_OK;
}

/* Drive progress until the backend has nothing pending (puts, fences). */
static rct_status_t rct_primary_wait_puts(struct rct_session *s, uint64_t deadline)
{
	rct_status_t status;

	while (s->ops->pending(s->ctx)) {
		if (rct_now_ns() >= deadline) {
			rct_error("checkpoint %llu: %zu puts still pending after %d ms",
				  (unsigned long long)s->epoch, s->ops->pending(s->ctx),
				  s->timeout_ms);
			return rct_session_fail(s, RCT_ERR_TIMED_OUT);
		}
		status = rct_session_poll(s, RCT_MIN(rct_ms_left(deadline), 100));
		if (status != RCT_OK)
			return status;
	}
	return RCT_OK;
}

/*
 * A full sync: every page of every region that holds data, in slices: a
 * slice is posted, then completed, before the next one, so that the progress
 * others read is exact and the deadline applies per slice (a 2 GiB sync may
 * take longer than the session timeout; a slice may not).  The gap between
 * slices is one completion round trip per RCT_SYNC_SLICE bytes.
 *
 * Holes (the region's file says where, rct_region_set_file()) and zero pages
 * are not sent: the colo cache starts zero.  What is sent is marked in the
 * region's bitmap, which goes to the secondary as for any checkpoint: its
 * flush copies those pages and zeroes the others where guest RAM holds data.
 */
#define RCT_SYNC_SLICE (8ull << 20)

static void rct_primary_sync_progress(struct rct_session *s, uint64_t done)
{
	atomic_store_explicit(&s->pri.sync_done, done, memory_order_relaxed);
}

/* Queue the non-zero pages of [first, first + n) of @r, marking them sent. */
static rct_status_t rct_primary_put_nonzero(struct rct_session *s, struct rct_region *r,
					    uint64_t first, uint64_t n)
{
	uint64_t max_pages = s->max_put >> s->page_shift, start = 0, run = 0;
	const char *ram = r->ram;
	rct_status_t status = RCT_OK;

	for (uint64_t p = first; p < first + n && status == RCT_OK; p++) {
		if (rct_mem_is_zero(ram + (p << s->page_shift), s->page_size)) {
			if (run)
				status = rct_primary_queue_pages(s, r, start, run);
			run = 0;
			continue;
		}
		rct_dmap_or_word(&r->dirty, p / 64, 1ull << (p % 64));
		if (!run)
			start = p;
		if (++run == max_pages) {
			status = rct_primary_queue_pages(s, r, start, run);
			run = 0;
		}
	}
	if (status == RCT_OK && run)
		status = rct_primary_queue_pages(s, r, start, run);
	if (status == RCT_OK)
		status = rct_primary_flush_lanes(s, r->mem, r->rkey);
	return status;
}

static rct_status_t rct_primary_full_region(struct rct_session *s, struct rct_region *r,
					    uint64_t *done_p)
{
	uint64_t slice = RCT_MAX(RCT_SYNC_SLICE >> s->page_shift, 1), page = 0, first, end;
	rct_status_t status = RCT_OK;

	rct_dmap_clear(&r->dirty);
	while (status == RCT_OK && rct_region_next_data(r, page, &first, &end)) {
		*done_p += first - page; /* a hole: done */
		for (uint64_t p = first; p < end && status == RCT_OK; p += slice) {
			uint64_t n = RCT_MIN(slice, end - p);

			status = rct_primary_put_nonzero(s, r, p, n);
			if (status == RCT_OK)
				status = rct_primary_wait_puts(
					s, rct_now_ns() + (uint64_t)s->timeout_ms * 1000000);
			if (status == RCT_OK) {
				*done_p += n;
				rct_primary_sync_progress(s, *done_p);
			}
		}
		page = end;
	}
	if (status != RCT_OK)
		return status;
	*done_p += r->npages - page;
	rct_primary_sync_progress(s, *done_p);
	return rct_primary_send_bitmap(s, r, &r->dirty, RCT_MSG_BITMAP);
}

static rct_status_t rct_primary_full_sync(struct rct_session *s)
{
	uint64_t total = 0, done = 0;
	rct_status_t status = RCT_OK;

	for (unsigned i = 0; i < s->nregions; i++)
		total += s->regions[i]->npages;
	atomic_store_explicit(&s->pri.sync_total, total, memory_order_relaxed);
	atomic_store_explicit(&s->pri.sync_done, 0, memory_order_relaxed);
	atomic_store_explicit(&s->pri.sync_t0, rct_now_ns(), memory_order_relaxed);
	atomic_store_explicit(&s->pri.sync_active, 1, memory_order_relaxed);
	rct_info("checkpoint %llu: full sync of %llu pages%s", (unsigned long long)s->epoch,
		 (unsigned long long)total, s->flags & RCT_CKPT_LIVE ? " (guest running)" : "");

	for (unsigned i = 0; i < s->nregions && status == RCT_OK; i++)
		status = rct_primary_full_region(s, s->regions[i], &done);
	atomic_store_explicit(&s->pri.sync_t1, rct_now_ns(), memory_order_relaxed);
	atomic_store_explicit(&s->pri.sync_active, 0, memory_order_relaxed);
	if (status == RCT_OK)
		rct_info("checkpoint %llu: full sync sent %llu of %llu pages (the rest holes or "
			 "zero)",
			 (unsigned long long)s->epoch, (unsigned long long)s->pri.stats.pages,
			 (unsigned long long)total);
	return status;
}

rct_status_t rct_ckpt_commit(struct rct_session *s, struct rct_ckpt_stats *stats_p)
{
	uint64_t deadline, t_done;
	struct rct_msg m = {.type = RCT_MSG_COMMIT};
	rct_status_t status;

	if (!s)
		return RCT_ERR_INVALID_PARAM;
	status = rct_primary_check(s, RCT_CKPT_OPEN);
	if (status != RCT_OK)
		return status;
	deadline = rct_now_ns() + (uint64_t)s->timeout_ms * 1000000;
	if (!s->pri.t_pause)
		s->pri.t_pause = rct_now_ns();

	if (s->flags & RCT_CKPT_FULL) {
		status = rct_primary_full_sync(s);
		if (status != RCT_OK)
			return status;
		deadline = rct_now_ns() + (uint64_t)s->timeout_ms * 1000000;
	}
	if (!s->pri.t_first_put)
		s->pri.t_first_put = rct_now_ns();

	/* Every put locally complete before the commit goes out. */
	status = rct_primary_wait_puts(s, deadline);
	if (status != RCT_OK)
		return status;
	/* Fence every lane and wait for it too: for one-sided backends the
	 * fence's completion is what says the data is in the peer's memory. */
	status = s->ops->fence(s->ctx, ++s->pri.fence_seq);
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	status = rct_primary_wait_puts(s, deadline);
	if (status != RCT_OK)
		return status;

	m.commit.epoch = s->epoch;
	m.commit.pages = s->pri.stats.pages;
	m.commit.bytes = (s->pri.stats.pages - s->pri.zero_pages) << s->page_shift;
	m.commit.bitmap_words = s->pri.bitmap_words_sent;
	m.commit.devstate_len = s->pri.devstate_len;
	m.commit.fence = s->pri.fence_seq;
	status = rct_session_send(s, &m);
	if (status != RCT_OK)
		return status;
	s->pri.t_commit_sent = rct_now_ns();

	status = rct_session_wait_flag(s, &s->pri.acked, deadline, "the secondary's commit ACK");
	if (status != RCT_OK) {
		/* The COMMIT left: the secondary may have completed the epoch and
		 * its ACK be what was lost.  Say so; never "not committed". */
		rct_error("checkpoint %llu: COMMIT sent, no ACK (%s): outcome unknown; the "
			  "secondary's last committed epoch tells",
			  (unsigned long long)s->epoch, rct_status_str(status));
		rct_session_fail(s, status);
		return RCT_ERR_OUTCOME_UNKNOWN;
	}
	t_done = s->pri.t_acked;
	s->ckpt = RCT_CKPT_IDLE;
	s->pri.stats.bytes = (s->pri.stats.pages - s->pri.zero_pages) << s->page_shift;
	s->pri.stats.devstate_bytes = s->pri.devstate_len;
	s->pri.stats.transfer_ns = t_done - s->pri.t_first_put;
	s->pri.stats.commit_ns = t_done - s->pri.t_commit_sent;
	/* Streamed: BEGIN came while the guest ran; the pause starts at its first call. */
	s->pri.stats.total_ns = rct_now_ns() - (s->pri.streamed ? s->pri.t_pause : s->pri.t_begin);
	if (s->pri.streamed)
		rct_debug("checkpoint %llu: %llu of %llu pages streamed before the pause",
			  (unsigned long long)s->epoch, (unsigned long long)s->pri.stream_pages,
			  (unsigned long long)s->pri.stats.pages);
	if (stats_p)
		rct_ckpt_stats_copy(stats_p, &s->pri.stats);
	return RCT_OK;
}
