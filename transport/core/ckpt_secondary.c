/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoint engine, secondary side.
 *
 *   IDLE --BEGIN(e)--> RECEIVING --COMMIT(e), fence passed, counts match-->
 *   READY (ACK COMMITTED sent, CKPT_READY raised) --rct_ckpt_flush(e)-->
 *   IDLE (ACK FLUSHED sent)
 *   READY --rct_ckpt_refuse(e)--> IDLE (ACK REFUSED sent; e's pages carried
 *   into the next flush through local_dirty, the set it restores anyway)
 *
 * Pages land only in the colo cache.  Guest RAM is written by rct_ckpt_flush()
 * alone, after the whole epoch is present, so a checkpoint that never commits
 * leaves guest RAM at the last committed epoch.  Every message is checked
 * against the state, the epoch and the region bounds; a violation ends the
 * session (ERROR to the peer) without touching guest RAM.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bitmap.h"
#include "ckpt.h"
#include "flush.h"
#include "keepalive.h"
#include "region.h"
#include "log.h"
#include "session.h"
#include "util.h"

#define ULL(x) ((unsigned long long)(x))

__attribute__((format(printf, 2, 3))) static rct_status_t rct_secondary_violation(
	struct rct_session *s, const char *fmt, ...)
{
	char text[RCT_ERROR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return rct_session_proto_error(s, RCT_ERR_PROTO, text);
}

static rct_status_t rct_secondary_begin(struct rct_session *s, const struct rct_msg *m)
{
	if (s->ckpt != RCT_CKPT_IDLE)
		return rct_secondary_violation(
			s, "BEGIN(%llu) while checkpoint %llu is not flushed yet",
			ULL(m->begin.epoch), ULL(s->epoch));
	if (s->last_committed != RCT_NO_EPOCH && m->begin.epoch <= s->last_committed)
		return rct_secondary_violation(s, "BEGIN(%llu): stale epoch, %llu is committed",
					       ULL(m->begin.epoch), ULL(s->last_committed));
	/* The base is what guest RAM held before any epoch: later, guest RAM
	 * holds a flushed epoch the sync would not start from. */
	if ((m->begin.flags & RCT_CKPT_BASE) && s->last_committed != RCT_NO_EPOCH)
		return rct_secondary_violation(
			s, "BEGIN(%llu, BASE): a base sync after epoch %llu was committed",
			ULL(m->begin.epoch), ULL(s->last_committed));
	s->ckpt = RCT_CKPT_RECEIVING;
	s->epoch = m->begin.epoch;
	s->flags = m->begin.flags;
	s->sec.commit_seen = false;
	s->sec.bitmap_words_rcvd = 0;
	s->sec.pages_rcvd = 0;
	s->sec.zeros_rcvd = 0;
	s->sec.devstate_seen = false;
	s->sec.devstate_len = 0;
	/* Cleared by the last flush or refuse; a checkpoint that never
	 * committed leaves its words behind (cleared here, what they were). */
	for (unsigned i = 0; i < s->nregions; i++) {
		rct_dmap_clear(&s->regions[i]->dirty);
		rct_dmap_clear(&s->regions[i]->zeros);
	}
	return RCT_OK;
}

static rct_status_t rct_secondary_bitmap(struct rct_session *s, const struct rct_msg *m)
{
	struct rct_bitmap_cursor c = {0};
	const char *why = NULL;
	struct rct_region *r;
	uint64_t w, v;

	r = rct_session_region(s, m->bitmap.region_id);
	if (!r)
		return rct_secondary_violation(s, "BITMAP(%llu): no region %llu",
					       ULL(m->bitmap.epoch), ULL(m->bitmap.region_id));
	if (rct_msg_bitmap_check(m, r->nwords, &why) != RCT_OK)
		return rct_secondary_violation(s, "BITMAP: region %llu (%llu words): %s",
					       ULL(r->id), ULL(r->nwords), why);
	while (rct_msg_bitmap_next(m, &c, &w, &v)) {
		if (w == r->nwords - 1 && r->npages % 64)
			v &= (1ull << (r->npages % 64)) - 1;
		s->sec.bitmap_words_rcvd++;
		if (m->type == RCT_MSG_ZEROS) {
			/* Zero pages of the last BITMAP: the cache takes zeros at the commit. */
			if (v & ~r->dirty.bits[w])
				return rct_secondary_violation(
					s, "ZEROS: region %llu word %llu names pages no BITMAP did",
					ULL(r->id), ULL(w));
			rct_dmap_or_word(&r->zeros, w, v);
			s->sec.zeros_rcvd += (uint64_t)__builtin_popcountll(v);
			continue;
		}
		rct_dmap_or_word(&r->dirty, w, v);
		rct_dmap_or_word(&r->cached, w, v);
		/* Taken again: put again, or named zero again by the ZEROS that follow. */
		r->zeros.bits[w] &= ~v;
		/* What the primary took, repeats included: it counts the same way. */
		s->sec.pages_rcvd += (uint64_t)__builtin_popcountll(v);
	}
	return RCT_OK;
}

/* After the fence: the epoch's zero pages, zero in the colo cache too. */
static void rct_secondary_zero_cache(struct rct_session *s, struct rct_region *r)
{
	uint8_t *cache = r->mem->addr;
	uint64_t w = 0;

	while (rct_dmap_next_word(&r->zeros, w, &w)) {
		for (uint64_t v = r->zeros.bits[w]; v; v &= v - 1) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(v);

			memset(cache + (p << s->page_shift), 0, s->page_size);
		}
		w++;
	}
	rct_dmap_clear(&r->zeros);
}

rct_status_t rct_secondary_dispatch(struct rct_session *s, const struct rct_msg *m)
{
	if (m->type == RCT_MSG_BEGIN)
		return rct_secondary_begin(s, m);

	switch (m->type) {
	case RCT_MSG_BITMAP:
	case RCT_MSG_ZEROS:
	case RCT_MSG_DEVSTATE:
	case RCT_MSG_COMMIT:
		break;
	default:
		return rct_secondary_violation(
			s, "unexpected message type %llu (%llu) from the primary", ULL(m->type),
			ULL(s->ckpt));
	}
	/* The three epoch-bound messages share the same epoch field position. */
	{
		uint64_t epoch = m->type == RCT_MSG_BITMAP || m->type == RCT_MSG_ZEROS
					 ? m->bitmap.epoch
				 : m->type == RCT_MSG_DEVSTATE ? m->devstate.epoch
							       : m->commit.epoch;

		if (s->ckpt != RCT_CKPT_RECEIVING || epoch != s->epoch || s->sec.commit_seen)
			return rct_secondary_violation(
				s, "message for epoch %llu outside its checkpoint (current %llu)",
				ULL(epoch), ULL(s->epoch));
	}

	switch (m->type) {
	case RCT_MSG_BITMAP:
	case RCT_MSG_ZEROS:
		return rct_secondary_bitmap(s, m);
	case RCT_MSG_DEVSTATE:
		if (s->sec.devstate_seen)
			return rct_secondary_violation(s, "DEVSTATE(%llu) twice (%llu bytes)",
						       ULL(m->devstate.epoch),
						       ULL(m->devstate.length));
		if (m->devstate.length > s->staging_slot)
			return rct_secondary_violation(
				s, "DEVSTATE: %llu bytes exceed the staging slot (%llu)",
				ULL(m->devstate.length), ULL(s->staging_slot));
		if (m->devstate.slot != rct_devstate_next_slot(s))
			return rct_secondary_violation(
				s,
				"DEVSTATE: put into staging slot %u, which holds the committed "
				"device state (slot %u was free)",
				m->devstate.slot, rct_devstate_next_slot(s));
		s->sec.devstate_seen = true;
		s->sec.devstate_len = m->devstate.length;
		return RCT_OK;
	default:
		s->sec.commit_seen = true;
		s->sec.commit.pages = m->commit.pages;
		s->sec.commit.bytes = m->commit.bytes;
		s->sec.commit.bitmap_words = m->commit.bitmap_words;
		s->sec.commit.devstate_len = m->commit.devstate_len;
		s->sec.commit.fence = m->commit.fence;
		return RCT_OK;
	}
}

/*
 * A full checkpoint is the whole image: cache pages written before it that it
 * did not send are zero on the primary.  Zero them (a fresh cache has none)
 * and restart the account of what the cache holds from this checkpoint.
 */
static void rct_secondary_full_cache(struct rct_session *s, struct rct_region *r)
{
	char *cache = r->mem->addr;

	for (uint64_t w = 0; rct_dmap_next_word(&r->cached, w, &w); w++) {
		uint64_t stale = r->cached.bits[w] & ~r->dirty.bits[w];

		while (stale) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(stale);

			memset(cache + (p << s->page_shift), 0, s->page_size);
			stale &= stale - 1;
		}
	}
	rct_dmap_clear(&r->cached);
	rct_dmap_or(&r->cached, &r->dirty);
}

/* The ready epoch is settled (ACK @kind): the cache may take the next one.
 * Whatever happens to this ACK: a peer lost just now is reported by its
 * PEER_LOST event, not as a failed flush. */
static void rct_secondary_settled(struct rct_session *s, uint64_t epoch, uint16_t kind)
{
	struct rct_msg ack = {.type = RCT_MSG_ACK};

	s->ckpt = RCT_CKPT_IDLE;
	if (s->state == RCT_SESSION_FAILED)
		return;
	ack.ack.epoch = epoch;
	ack.ack.kind = kind;
	(void)rct_session_send(s, &ack);
}

/*
 * The mappings a flush copies through, mapped ahead rather than page by page
 * at the first checkpoints' flushes, inside their pauses (QEMU COLO, 156 MiB/s
 * dirtied: the first three flushes took 69, 24 and 28 ms against 6-7 later
 * over UCX, 32, 14 and 11 over TCP).  Guest RAM where its file holds data (its
 * pages exist: this maps them, allocates nothing), the cache where the base
 * sync wrote.  On a thread of its own, while the guests run: mapping 2 GiB
 * takes ~0.5 s, and the session's thread must serve the next checkpoint
 * meanwhile (it did not, the first time: a 201 ms first pause).  Mapping does
 * not change a byte, so a flush may run beside it.  MADV_POPULATE_* fail
 * rather than raise SIGBUS (a file that shrank); a failure costs only the
 * faults it would have saved.  Without a file the caller's RAM is left alone
 * (it may be sparse and anonymous: populating would allocate it).
 */
#define RCT_PREFAULT_SLICE (8ull << 20)

struct rct_prefault_region {
	char *ram, *cache;
	int fd; /* the RAM file, this thread's own descriptor; -1 none */
	uint64_t foff, npages;
	struct rct_dmap cached; /* a copy: the session's changes as epochs arrive */
};

struct rct_prefault {
	pthread_t thread;
	atomic_bool stop;
	unsigned shift, n;
	uint64_t epoch;
	struct rct_prefault_region r[];
};

/* [addr, addr + len) in slices, so that destroy waits for one slice at most. */
static bool rct_prefault_range(struct rct_prefault *p, char *addr, uint64_t len, int advice)
{
	for (uint64_t off = 0; off < len; off += RCT_PREFAULT_SLICE) {
		if (atomic_load_explicit(&p->stop, memory_order_relaxed))
			return false;
		(void)madvise(addr + off, RCT_MIN(RCT_PREFAULT_SLICE, len - off), advice);
	}
	return true;
}

static void *rct_prefault_main(void *arg)
{
	struct rct_prefault *p = arg;
	uint64_t t0 = rct_now_ns(), mapped = 0;
	bool go = true;

	for (unsigned i = 0; go && i < p->n; i++) {
		struct rct_prefault_region *r = &p->r[i];
		uint64_t page = 0, first, end, len;

		while (go && r->fd >= 0 &&
		       rct_file_next_data(r->fd, r->foff, r->npages, p->shift, page, &first, &end) >
			       0) {
			len = end - first;
			go = rct_prefault_range(p, r->ram + (first << p->shift), len << p->shift,
						MADV_POPULATE_WRITE);
			mapped += len;
			page = end;
		}
		for (page = 0; go && rct_dmap_next_run(&r->cached, page, r->npages, &first, &len);
		     page = first + len)
			go = rct_prefault_range(p, r->cache + (first << p->shift), len << p->shift,
						MADV_POPULATE_READ);
	}
	if (go)
		rct_info("checkpoint %llu: guest RAM (%llu pages with data) and the cache mapped "
			 "for the flushes in %llu ms, beside the session",
			 ULL(p->epoch), ULL(mapped), ULL((rct_now_ns() - t0) / 1000000));
	return NULL;
}

static void rct_prefault_free(struct rct_prefault *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		if (p->r[i].fd >= 0)
			close(p->r[i].fd);
		rct_dmap_free(&p->r[i].cached);
	}
	free(p);
}

void rct_secondary_prefault_stop(struct rct_session *s)
{
	struct rct_prefault *p = s->prefault;

	if (!p)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	rct_prefault_free(p);
	s->prefault = NULL;
}

static void rct_secondary_prefault_start(struct rct_session *s)
{
	struct rct_prefault *p = calloc(1, sizeof(*p) + s->nregions * sizeof(p->r[0]));
	int rc;

	if (!p)
		return;
	p->shift = s->page_shift;
	p->epoch = s->epoch;
	for (unsigned i = 0; i < s->nregions; i++) {
		struct rct_region *r = s->regions[i];
		struct rct_prefault_region *q = &p->r[p->n++];

		q->ram = r->ram;
		q->cache = r->mem->addr;
		q->foff = r->foff;
		q->npages = r->npages;
		q->fd = r->fd >= 0 ? fcntl(r->fd, F_DUPFD_CLOEXEC, 0) : -1;
		if (rct_dmap_init(&q->cached, r->npages)) {
			p->n--;
			if (q->fd >= 0)
				close(q->fd);
			break;
		}
		rct_dmap_or(&q->cached, &r->cached);
	}
	s->prefault = p;
	rc = pthread_create(&p->thread, NULL, rct_prefault_main, p);
	if (rc) {
		rct_info("checkpoint %llu: no thread to map guest RAM ahead (%s): the first "
			 "flushes map it",
			 ULL(s->epoch), strerror(rc));
		rct_prefault_free(p);
		s->prefault = NULL;
	}
}

/*
 * A base sync (RCT_CKPT_BASE) is committed: it seeded the cache, and guest
 * RAM already holds the image it started from (any page that differs from
 * it is dirty in a later epoch, or was the secondary's own write).  Settled
 * here, nothing copied: its pages are not the secondary's to restore (they
 * are not added to the local bitmap), and the hypervisor hears of no epoch
 * to apply.  FLUSHED follows COMMITTED, so the primary may begin the next.
 */
static rct_status_t rct_secondary_base_settled(struct rct_session *s, struct rct_msg *ack)
{
	rct_status_t status;

	for (unsigned i = 0; i < s->nregions; i++)
		rct_dmap_clear(&s->regions[i]->dirty);
	rct_info("checkpoint %llu: base sync in the colo cache (%llu pages); guest RAM "
		 "already holds its image, nothing flushed",
		 ULL(s->epoch), ULL(s->sec.pages_rcvd));
	status = rct_session_send(s, ack);
	if (status != RCT_OK)
		return status;
	rct_secondary_settled(s, s->epoch, RCT_ACK_FLUSHED);
	rct_secondary_prefault_start(s);
	return RCT_OK;
}

rct_status_t rct_secondary_try_complete(struct rct_session *s)
{
	struct rct_msg ack = {.type = RCT_MSG_ACK};
	uint64_t pages;

	if (s->ops->fenced(s->ctx) < s->sec.commit.fence)
		return RCT_OK; /* data still in flight on some lane */
	s->sec.commit_seen = false;

	if (s->sec.bitmap_words_rcvd != s->sec.commit.bitmap_words)
		return rct_secondary_violation(s, "COMMIT: %llu bitmap words announced, %llu seen",
					       ULL(s->sec.commit.bitmap_words),
					       ULL(s->sec.bitmap_words_rcvd));
	pages = s->sec.pages_rcvd;
	if (pages != s->sec.commit.pages || s->sec.commit.bytes != (pages - s->sec.zeros_rcvd)
									   << s->page_shift)
		return rct_secondary_violation(
			s,
			"COMMIT: %llu pages and %llu bytes announced, bitmaps hold %llu pages, "
			"%llu of them zero",
			ULL(s->sec.commit.pages), ULL(s->sec.commit.bytes), ULL(pages),
			ULL(s->sec.zeros_rcvd));
	if (s->sec.commit.devstate_len != (s->sec.devstate_seen ? s->sec.devstate_len : 0))
		return rct_secondary_violation(s, "COMMIT: device state of %llu bytes, %llu seen",
					       ULL(s->sec.commit.devstate_len),
					       ULL(s->sec.devstate_len));

	if (s->flags & RCT_CKPT_FULL)
		for (unsigned i = 0; i < s->nregions; i++)
			rct_secondary_full_cache(s, s->regions[i]);
	for (unsigned i = 0; s->sec.zeros_rcvd && i < s->nregions; i++)
		rct_secondary_zero_cache(s, s->regions[i]);

	/* The committed device state stays where it was put; the next epoch's
	 * goes into the other slot (session.h): no copy. */
	if (s->sec.devstate_len)
		s->devstate_slot = (int)rct_devstate_next_slot(s);
	s->sec.devstate_committed_len = s->sec.devstate_len;

	s->last_committed = s->epoch;
	/* A live resync is no image to resume from until the next checkpoint. */
	s->last_consistent = (s->flags & RCT_CKPT_LIVE) ? RCT_NO_EPOCH : s->epoch;
	s->ckpt = RCT_CKPT_READY;
	ack.ack.epoch = s->epoch;
	ack.ack.kind = RCT_ACK_COMMITTED;
	if (s->flags & RCT_CKPT_BASE)
		return rct_secondary_base_settled(s, &ack);
	rct_session_event_push(s, RCT_EVENT_CKPT_READY, s->epoch, RCT_OK);
	return rct_session_send(s, &ack);
}

static rct_status_t rct_secondary_check(struct rct_session *s)
{
	if (s->role != RCT_ROLE_SECONDARY)
		return RCT_ERR_STATE;
	if (s->state == RCT_SESSION_FAILED)
		return s->fail_status;
	return RCT_OK;
}

static rct_status_t rct_secondary_local(struct rct_session *s, struct rct_region *r,
					const uint64_t *bitmap, const uint64_t *summary,
					uint64_t nbits)
{
	rct_status_t status;

	if (!s || !r || r->session != s || !bitmap)
		return RCT_ERR_INVALID_PARAM;
	status = rct_secondary_check(s);
	/* After a loss the ready checkpoint is still flushed (failover), and it
	 * must undo what this guest dirtied too. */
	if (status != RCT_OK && !(s->state == RCT_SESSION_FAILED && s->ckpt == RCT_CKPT_READY))
		return status;
	if (nbits != r->npages) {
		rct_error("region %u: local dirty bitmap has %llu bits, the region %llu pages",
			  r->id, (unsigned long long)nbits, (unsigned long long)r->npages);
		return RCT_ERR_INVALID_PARAM;
	}
	if (summary)
		rct_dmap_or_bitmap_summary(&r->local, bitmap, summary);
	else
		rct_dmap_or_bitmap(&r->local, bitmap);
	return RCT_OK;
}

rct_status_t rct_ckpt_local_dirty(struct rct_session *s, struct rct_region *r,
				  const uint64_t *bitmap, uint64_t nbits)
{
	return rct_secondary_local(s, r, bitmap, NULL, nbits);
}

rct_status_t rct_ckpt_local_dirty_summary(struct rct_session *s, struct rct_region *r,
					  const uint64_t *bitmap, const uint64_t *summary,
					  uint64_t nbits)
{
	if (!summary)
		return RCT_ERR_INVALID_PARAM;
	return rct_secondary_local(s, r, bitmap, summary, nbits);
}

/*
 * After a full checkpoint, guest RAM pages it did not send (and that were not
 * copied) must be zero, as they are on the primary.  Only pages that hold
 * data are read (the region's file says which, else all), and only non-zero
 * ones are written.  Returns the pages zeroed.
 */
static uint64_t rct_secondary_zero_rest(struct rct_session *s, struct rct_region *r)
{
	uint64_t page = 0, first, end, zeroed = 0, seen = 0;
	char *ram = r->ram;

	while (rct_region_next_data(r, page, &first, &end)) {
		for (uint64_t p = first; p < end; p++) {
			char *pg = ram + (p << s->page_shift);

			if (rct_bitmap_test(r->dirty.bits, p) || rct_mem_is_zero(pg, s->page_size))
				continue;
			memset(pg, 0, s->page_size);
			zeroed++;
		}
		seen += end - first;
		if (seen >= RCT_FLUSH_STEP >> s->page_shift) {
			(void)rct_session_tick(s);
			seen = 0;
		}
		page = end;
	}
	r->zero_rest = false;
	return zeroed;
}

/* Copy the pages set in the epoch's bitmap | the local one from cache to RAM. */
static uint64_t rct_secondary_flush_regions(struct rct_session *s)
{
	uint64_t pages;

	for (unsigned i = 0; i < s->nregions; i++)
		rct_dmap_or(&s->regions[i]->dirty, &s->regions[i]->local);
	pages = rct_flush_copy(s);
	for (unsigned i = 0; i < s->nregions; i++) {
		struct rct_region *r = s->regions[i];

		if ((s->flags & RCT_CKPT_FULL) || r->zero_rest)
			pages += rct_secondary_zero_rest(s, r);
		rct_dmap_clear(&r->local);
		rct_dmap_clear(&r->dirty);
	}
	return pages;
}

/* flush and refuse: only the ready epoch.  A committed checkpoint stays
 * settleable after the peer is lost: it is the image a failover resumes from. */
static rct_status_t rct_secondary_ready(struct rct_session *s, uint64_t epoch, const char *op)
{
	if (!s)
		return RCT_ERR_INVALID_PARAM;
	if (s->role != RCT_ROLE_SECONDARY)
		return RCT_ERR_STATE;
	if (s->ckpt != RCT_CKPT_READY || s->epoch != epoch) {
		rct_error("%s: checkpoint %llu is not ready", op, ULL(epoch));
		return RCT_ERR_STATE;
	}
	return RCT_OK;
}

rct_status_t rct_ckpt_flush(struct rct_session *s, uint64_t epoch, struct rct_ckpt_stats *stats_p)
{
	struct rct_ckpt_stats st = {0};
	rct_status_t status = rct_secondary_ready(s, epoch, "flush");
	uint64_t t0;

	if (status != RCT_OK)
		return status;
	memset(&st, 0, sizeof(st));
	st.field_mask = RCT_CKPT_STATS_FIELDS_ALL;
	st.epoch = epoch;
	st.devstate_bytes = s->sec.devstate_committed_len;
	st.pages = s->sec.commit.pages; /* checked against the bitmaps at commit */
	t0 = rct_now_ns();
	st.flush_pages = rct_secondary_flush_regions(s);
	st.flush_ns = rct_now_ns() - t0;
	if (stats_p)
		rct_ckpt_stats_copy(stats_p, &st);
	rct_secondary_settled(s, epoch, RCT_ACK_FLUSHED);
	return RCT_OK;
}

rct_status_t rct_ckpt_refuse(struct rct_session *s, uint64_t epoch, const char *reason)
{
	rct_status_t status = rct_secondary_ready(s, epoch, "refuse");

	if (status != RCT_OK)
		return status;
	/* The cache holds the epoch whole; guest RAM does not.  Whatever the
	 * next flush copies must include these pages, or guest RAM would keep
	 * an older version of a page the cache has moved past. */
	for (unsigned i = 0; i < s->nregions; i++) {
		struct rct_region *r = s->regions[i];

		/* A refused full checkpoint: the next flush zeroes what it does
		 * not copy, as this one would have. */
		if (s->flags & RCT_CKPT_FULL)
			r->zero_rest = true;
		rct_dmap_or(&r->local, &r->dirty);
		rct_dmap_clear(&r->dirty);
	}
	rct_warn("checkpoint %llu refused by the hypervisor (%s): guest RAM stays at the last "
		 "flushed epoch; its pages go with the next flush",
		 ULL(epoch), reason && *reason ? reason : "no reason given");
	rct_secondary_settled(s, epoch, RCT_ACK_REFUSED);
	return RCT_OK;
}

rct_status_t rct_ckpt_devstate_get(struct rct_session *s, uint64_t epoch, const void **buf_p,
				   size_t *len_p)
{
	rct_status_t status;

	if (!s || !buf_p || !len_p)
		return RCT_ERR_INVALID_PARAM;
	status = rct_secondary_check(s);
	if (status != RCT_OK && s->last_committed == RCT_NO_EPOCH)
		return status;
	/* Still valid after a failure: it is the image a failover resumes from. */
	if (s->last_committed == RCT_NO_EPOCH || epoch != s->last_committed) {
		rct_error("devstate: epoch %llu is not the last committed one",
			  (unsigned long long)epoch);
		return RCT_ERR_NOT_FOUND;
	}
	*buf_p = (uint8_t *)s->staging->addr +
		 (s->devstate_slot > 0 ? (uint64_t)s->devstate_slot * s->staging_slot : 0);
	*len_p = s->sec.devstate_committed_len;
	return RCT_OK;
}
