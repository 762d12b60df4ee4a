/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket API's payload codec: see payload.h. */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "payload.h"

/* Every wire payload, for an aligned copy of the bytes. */
union ipc_wire {
	struct rct_ipc_hello hello;
	struct rct_ipc_hello_reply hello_reply;
	struct rct_ipc_session_open open;
	struct rct_ipc_session_open_reply open_reply;
	struct rct_ipc_session_pairing pairing;
	struct rct_ipc_session_pairing_reply pairing_reply;
	struct rct_ipc_pairing_ctl pairing_ctl;
	struct rct_ipc_peer peer;
	struct rct_ipc_listen_reply listen_reply;
	struct rct_ipc_connected connected;
	struct rct_ipc_region_add region_add;
	struct rct_ipc_region_add_reply region_add_reply;
	struct rct_ipc_region_ref region_ref;
	struct rct_ipc_ckpt_begin begin;
	struct rct_ipc_devstate devstate;
	struct rct_ipc_ckpt_flush flush;
	struct rct_ipc_ckpt_refuse refuse;
	struct rct_ipc_ckpt_stats stats;
	struct rct_ipc_devstate_get devstate_get;
	struct rct_ipc_devstate_get_reply devstate_get_reply;
	struct rct_ipc_event event;
	struct rct_ipc_stats stats_req;
};

/* What a decoder knows beyond the fixed part. */
struct ipc_dec {
	unsigned type;
	enum ipc_dir dir;
	const uint8_t *tail; /* bytes after the fixed part */
	size_t tail_len;
	unsigned nfds;
	char *what;
	size_t what_len;
};

static int dec_bad(struct ipc_dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int dec_bad(struct ipc_dec *d, const char *fmt, ...)
{
	int n = snprintf(d->what, d->what_len, "%s: ", ipc_type_str(d->type));
	va_list ap;

	if (n < 0 || (size_t)n >= d->what_len)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(d->what + n, d->what_len - (size_t)n, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* Reserved fields are 0 in requests and ignored in replies (docs/ipc.md): a
 * newer rctd may give them a meaning without breaking older clients. */
#define DEC_RESERVED(d, cond)                                                                      \
	((d)->dir == IPC_REQUEST && (cond) ? dec_bad((d), "reserved field set") : 0)

static int dec_str(struct ipc_dec *d, char *dst, const char *src, size_t len, const char *field)
{
	if (!memchr(src, '\0', len))
		return dec_bad(d, "%s is not NUL-terminated within its %zu bytes", field, len);
	memcpy(dst, src, len);
	return 0;
}

static int dec_flags(struct ipc_dec *d, uint32_t flags, uint32_t known)
{
	if (flags & ~known)
		return dec_bad(d, "unknown flags 0x%x (known: 0x%x)", flags & ~known, known);
	return 0;
}

/* A host string into a fixed field: it must leave room for its NUL. */
static bool enc_str(char *dst, const char *src, size_t len)
{
	if (!memchr(src, '\0', len))
		return false;
	memcpy(dst, src, len);
	return true;
}

/* ------------------------------------------------- one pair per payload */

static bool enc_hello(const union ipc_body *b, union ipc_wire *w)
{
	w->hello.version_min = htole16(b->hello.version_min);
	w->hello.version_max = htole16(b->hello.version_max);
	return enc_str(w->hello.name, b->hello.name, sizeof(w->hello.name));
}

static int dec_hello(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->hello.version_min = le16toh(w->hello.version_min);
	b->hello.version_max = le16toh(w->hello.version_max);
	return DEC_RESERVED(d, w->hello.reserved)
		       ?: dec_str(d, b->hello.name, w->hello.name, sizeof(w->hello.name), "name");
}

static bool enc_hello_reply(const union ipc_body *b, union ipc_wire *w)
{
	w->hello_reply.version = htole16(b->hello_reply.version);
	w->hello_reply.max_payload = htole32(b->hello_reply.max_payload);
	w->hello_reply.caps = htole64(b->hello_reply.caps);
	w->hello_reply.pid = htole32(b->hello_reply.pid);
	return true;
}

static int dec_hello_reply(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->hello_reply.version = le16toh(w->hello_reply.version);
	b->hello_reply.max_payload = le32toh(w->hello_reply.max_payload);
	b->hello_reply.caps = le64toh(w->hello_reply.caps);
	b->hello_reply.pid = le32toh(w->hello_reply.pid);
	return DEC_RESERVED(d, w->hello_reply.reserved0 || w->hello_reply.reserved1);
}

static bool enc_open(const union ipc_body *b, union ipc_wire *w)
{
	const struct ipc_session_open *h = &b->open;

	w->open.role = htole16(h->role);
	w->open.lanes = htole16(h->lanes);
	w->open.threads = htole16(h->threads);
	w->open.page_size = htole32(h->page_size);
	w->open.timeout_ms = htole32(h->timeout_ms);
	w->open.staging_size = htole64(h->staging_size);
	return enc_str(w->open.backend, h->backend, sizeof(w->open.backend)) &&
	       enc_str(w->open.name, h->name, sizeof(w->open.name));
}

static int dec_open(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	struct ipc_session_open *h = &b->open;

	h->role = le16toh(w->open.role);
	h->lanes = le16toh(w->open.lanes);
	h->threads = le16toh(w->open.threads);
	h->page_size = le32toh(w->open.page_size);
	h->timeout_ms = le32toh(w->open.timeout_ms);
	h->staging_size = le64toh(w->open.staging_size);
	return DEC_RESERVED(d, w->open.reserved)
		   ?: dec_str(d, h->backend, w->open.backend, sizeof(w->open.backend), "backend")
		   ?: dec_str(d, h->name, w->open.name, sizeof(w->open.name), "name");
}

static bool enc_open_reply(const union ipc_body *b, union ipc_wire *w)
{
	w->open_reply.session_id = htole64(b->session_id);
	return true;
}

static int dec_open_reply(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	(void)d;
	b->session_id = le64toh(w->open_reply.session_id);
	return 0;
}

static bool enc_pairing(const union ipc_body *b, union ipc_wire *w)
{
	w->pairing.generation = htole64(b->pairing.generation);
	w->pairing.flags = htole32(b->pairing.flags);
	memcpy(w->pairing.key, b->pairing.key, sizeof(w->pairing.key));
	return enc_str(w->pairing.id, b->pairing.id, sizeof(w->pairing.id));
}

static int dec_pairing(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->pairing.generation = le64toh(w->pairing.generation);
	b->pairing.flags = le32toh(w->pairing.flags);
	memcpy(b->pairing.key, w->pairing.key, sizeof(b->pairing.key));
	return DEC_RESERVED(d, w->pairing.reserved)
		   ?: dec_flags(d, b->pairing.flags,
				RCT_IPC_PAIRING_KEY | RCT_IPC_PAIRING_GENERATION)
		   ?: dec_str(d, b->pairing.id, w->pairing.id, sizeof(w->pairing.id), "identity");
}

static bool enc_pairing_ctl(const union ipc_body *b, union ipc_wire *w)
{
	w->pairing_ctl.op = htole32(b->pairing_ctl.op);
	w->pairing_ctl.min_generation = htole64(b->pairing_ctl.min_generation);
	w->pairing_ctl.min_epoch = htole64(b->pairing_ctl.min_epoch);
	return enc_str(w->pairing_ctl.id, b->pairing_ctl.id, sizeof(w->pairing_ctl.id));
}

static int dec_pairing_ctl(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->pairing_ctl.op = le32toh(w->pairing_ctl.op);
	b->pairing_ctl.min_generation = le64toh(w->pairing_ctl.min_generation);
	b->pairing_ctl.min_epoch = le64toh(w->pairing_ctl.min_epoch);
	if (b->pairing_ctl.op < RCT_IPC_PAIRING_SHOW || b->pairing_ctl.op > RCT_IPC_PAIRING_NEW)
		return dec_bad(d, "op %u is none of %d..%d", b->pairing_ctl.op,
			       RCT_IPC_PAIRING_SHOW, RCT_IPC_PAIRING_NEW);
	return DEC_RESERVED(d, w->pairing_ctl.reserved)
		       ?: dec_str(d, b->pairing_ctl.id, w->pairing_ctl.id,
				  sizeof(w->pairing_ctl.id), "identity");
}

static bool enc_pairing_reply(const union ipc_body *b, union ipc_wire *w)
{
	w->pairing_reply.generation = htole64(b->pairing_reply.generation);
	w->pairing_reply.last_committed = htole64(b->pairing_reply.last_committed);
	return true;
}

static int dec_pairing_reply(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	(void)d;
	b->pairing_reply.generation = le64toh(w->pairing_reply.generation);
	b->pairing_reply.last_committed = le64toh(w->pairing_reply.last_committed);
	return 0;
}

static bool enc_peer(const union ipc_body *b, union ipc_wire *w)
{
	w->peer.port = htole16(b->peer.port);
	return enc_str(w->peer.addr, b->peer.addr, sizeof(w->peer.addr));
}

static int dec_peer(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->peer.port = le16toh(w->peer.port);
	return DEC_RESERVED(d, w->peer.reserved[0] || w->peer.reserved[1] || w->peer.reserved[2])
		       ?: dec_str(d, b->peer.addr, w->peer.addr, sizeof(w->peer.addr), "address");
}

static bool enc_listen_reply(const union ipc_body *b, union ipc_wire *w)
{
	w->listen_reply.port = htole16(b->peer.port);
	return true;
}

static int dec_listen_reply(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->peer.addr[0] = '\0';
	b->peer.port = le16toh(w->listen_reply.port);
	return DEC_RESERVED(d, w->listen_reply.reserved[0] || w->listen_reply.reserved[1] ||
				       w->listen_reply.reserved[2]);
}

static bool enc_connected(const union ipc_body *b, union ipc_wire *w)
{
	w->connected.lanes = htole32(b->connected.lanes);
	return enc_str(w->connected.backend, b->connected.backend, sizeof(w->connected.backend));
}

static int dec_connected(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->connected.lanes = le32toh(w->connected.lanes);
	return DEC_RESERVED(d, w->connected.reserved)
		       ?: dec_str(d, b->connected.backend, w->connected.backend,
				  sizeof(w->connected.backend), "backend");
}

static bool enc_region_add(const union ipc_body *b, union ipc_wire *w)
{
	w->region_add.id = htole32(b->region_add.id);
	w->region_add.offset = htole64(b->region_add.offset);
	w->region_add.size = htole64(b->region_add.size);
	w->region_add.bitmap_offset = htole64(b->region_add.bitmap_offset);
	w->region_add.name_len = htole32((uint32_t)strlen(b->region_add.name));
	return strlen(b->region_add.name) <= RCT_IPC_REGION_NAME_MAX;
}

static const void *tail_region_add(const union ipc_body *b, size_t *len_p)
{
	*len_p = strlen(b->region_add.name);
	return b->region_add.name;
}

static int dec_region_add(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->region_add.id = le32toh(w->region_add.id);
	b->region_add.offset = le64toh(w->region_add.offset);
	b->region_add.size = le64toh(w->region_add.size);
	b->region_add.bitmap_offset = le64toh(w->region_add.bitmap_offset);
	if (le32toh(w->region_add.name_len) != d->tail_len)
		return dec_bad(d, "name_len %u, %zu bytes follow", le32toh(w->region_add.name_len),
			       d->tail_len);
	if (d->tail_len > RCT_IPC_REGION_NAME_MAX)
		return dec_bad(d, "name of %zu bytes, longer than %d", d->tail_len,
			       RCT_IPC_REGION_NAME_MAX);
	for (size_t i = 0; i < d->tail_len; i++)
		if (d->tail[i] <= ' ' || d->tail[i] > '~')
			return dec_bad(d, "byte %zu of the name is not printable ASCII", i);
	memcpy(b->region_add.name, d->tail, d->tail_len);
	b->region_add.name[d->tail_len] = '\0';
	return 0;
}

static bool enc_region_add_reply(const union ipc_body *b, union ipc_wire *w)
{
	w->region_add_reply.pages = htole64(b->pages);
	return true;
}

static int dec_region_add_reply(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	(void)d;
	b->pages = le64toh(w->region_add_reply.pages);
	return 0;
}

static bool enc_region_ref(const union ipc_body *b, union ipc_wire *w)
{
	w->region_ref.id = htole32(b->region_id);
	return true;
}

static int dec_region_ref(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->region_id = le32toh(w->region_ref.id);
	return DEC_RESERVED(d, w->region_ref.flags);
}

static bool enc_take(const union ipc_body *b, union ipc_wire *w)
{
	w->region_ref.id = htole32(b->take.region_id);
	w->region_ref.flags = htole32(b->take.flags);
	return true;
}

static int dec_take(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->take.region_id = le32toh(w->region_ref.id);
	b->take.flags = le32toh(w->region_ref.flags);
	return dec_flags(d, b->take.flags, RCT_IPC_TAKE_SUMMARY | RCT_IPC_TAKE_ZERO_PAGES);
}

static bool enc_begin(const union ipc_body *b, union ipc_wire *w)
{
	w->begin.epoch = htole64(b->ckpt.epoch);
	w->begin.flags = htole32(b->ckpt.flags);
	return true;
}

static int dec_begin(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->ckpt.epoch = le64toh(w->begin.epoch);
	b->ckpt.flags = le32toh(w->begin.flags);
	return DEC_RESERVED(d, w->begin.reserved)
		       ?: dec_flags(d, b->ckpt.flags,
				    RCT_CKPT_FULL | RCT_CKPT_LIVE | RCT_CKPT_BASE);
}

static bool enc_flush(const union ipc_body *b, union ipc_wire *w)
{
	w->flush.epoch = htole64(b->ckpt.epoch);
	w->flush.flags = htole32(b->ckpt.flags);
	return true;
}

static int dec_flush(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->ckpt.epoch = le64toh(w->flush.epoch);
	b->ckpt.flags = le32toh(w->flush.flags);
	return DEC_RESERVED(d, w->flush.reserved)
		       ?: dec_flags(d, b->ckpt.flags,
				    RCT_IPC_FLUSH_LOCAL_DIRTY | RCT_IPC_FLUSH_LOCAL_SUMMARY);
}

/* The blob itself follows the fixed part (ipc_encode copies it). */
static bool enc_refuse(const union ipc_body *b, union ipc_wire *w)
{
	w->refuse.epoch = htole64(b->refuse.epoch);
	return b->refuse.len <= RCT_IPC_REASON_MAX;
}

static const void *tail_refuse(const union ipc_body *b, size_t *len_p)
{
	*len_p = b->refuse.len;
	return b->refuse.reason;
}

static int dec_refuse(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->refuse.epoch = le64toh(w->refuse.epoch);
	if (d->tail_len > RCT_IPC_REASON_MAX)
		return dec_bad(d, "reason of %zu bytes, longer than %d", d->tail_len,
			       RCT_IPC_REASON_MAX);
	b->refuse.reason = (const char *)d->tail;
	b->refuse.len = d->tail_len;
	return 0;
}

static bool enc_devstate(const union ipc_body *b, union ipc_wire *w)
{
	w->devstate.length = htole64(b->devstate.length);
	return true;
}

static int dec_devstate(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->devstate.length = le64toh(w->devstate.length);
	b->devstate.bytes = NULL;
	if (d->nfds == 1) {
		if (d->tail_len)
			return dec_bad(d, "%zu inline bytes and a descriptor", d->tail_len);
		return 0;
	}
	if (b->devstate.length != d->tail_len)
		return dec_bad(d, "length %" PRIu64 " but %zu inline bytes", b->devstate.length,
			       d->tail_len);
	b->devstate.bytes = d->tail;
	return 0;
}

static bool enc_stats(const union ipc_body *b, union ipc_wire *w)
{
	const struct rct_ckpt_stats *st = &b->stats;

	w->stats.epoch = htole64(st->epoch);
	w->stats.pages = htole64(st->pages);
	w->stats.bytes = htole64(st->bytes);
	w->stats.runs = htole64(st->runs);
	w->stats.devstate_bytes = htole64(st->devstate_bytes);
	w->stats.transfer_ns = htole64(st->transfer_ns);
	w->stats.commit_ns = htole64(st->commit_ns);
	w->stats.total_ns = htole64(st->total_ns);
	w->stats.flush_ns = htole64(st->flush_ns);
	w->stats.flush_pages = htole64(st->flush_pages);
	return true;
}

static int dec_stats(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	struct rct_ckpt_stats *st = &b->stats;

	(void)d;
	memset(st, 0, sizeof(*st));
	st->field_mask = RCT_CKPT_STATS_FIELDS_V1; /* what the wire carries */
	st->epoch = le64toh(w->stats.epoch);
	st->pages = le64toh(w->stats.pages);
	st->bytes = le64toh(w->stats.bytes);
	st->runs = le64toh(w->stats.runs);
	st->devstate_bytes = le64toh(w->stats.devstate_bytes);
	st->transfer_ns = le64toh(w->stats.transfer_ns);
	st->commit_ns = le64toh(w->stats.commit_ns);
	st->total_ns = le64toh(w->stats.total_ns);
	st->flush_ns = le64toh(w->stats.flush_ns);
	st->flush_pages = le64toh(w->stats.flush_pages);
	return 0;
}

static bool enc_devstate_get(const union ipc_body *b, union ipc_wire *w)
{
	w->devstate_get.epoch = htole64(b->epoch);
	return true;
}

static int dec_devstate_get(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	(void)d;
	b->epoch = le64toh(w->devstate_get.epoch);
	return 0;
}

static bool enc_devstate_get_reply(const union ipc_body *b, union ipc_wire *w)
{
	w->devstate_get_reply.length = htole64(b->length);
	return true;
}

static int dec_devstate_get_reply(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	(void)d;
	b->length = le64toh(w->devstate_get_reply.length);
	return 0;
}

static bool enc_event(const union ipc_body *b, union ipc_wire *w)
{
	w->event.type = htole32((uint32_t)b->event.type);
	w->event.status = htole32((uint32_t)b->event.status);
	w->event.epoch = htole64(b->event.epoch);
	w->event.discarded = htole64(b->event.discarded);
	return true;
}

static int dec_event(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	(void)d;
	b->event.field_mask = RCT_EVENT_FIELDS_V1; /* what the wire carries */
	b->event.type = (enum rct_event_type)le32toh(w->event.type);
	b->event.status = (rct_status_t)(int32_t)le32toh(w->event.status);
	b->event.epoch = le64toh(w->event.epoch);
	b->event.discarded = le64toh(w->event.discarded);
	return 0;
}

static bool enc_stats_req(const union ipc_body *b, union ipc_wire *w)
{
	w->stats_req.scope = htole32(b->scope);
	return true;
}

static int dec_stats_req(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	b->scope = le32toh(w->stats_req.scope);
	if (b->scope > RCT_IPC_STATS_ALL)
		return dec_bad(d, "scope %u is neither %d (session) nor %d (all)", b->scope,
			       RCT_IPC_STATS_SESSION, RCT_IPC_STATS_ALL);
	return DEC_RESERVED(d, w->stats_req.reserved);
}

/* The text itself follows the (empty) fixed part. */
/* The bytes after CKPT_DEVSTATE's fixed part: the inline blob, none with a descriptor. */
static const void *tail_devstate(const union ipc_body *b, size_t *len_p)
{
	*len_p = b->devstate.bytes ? b->devstate.length : 0;
	return b->devstate.bytes;
}

static const void *tail_text(const union ipc_body *b, size_t *len_p)
{
	*len_p = b->text.len;
	return b->text.text;
}

static bool enc_text(const union ipc_body *b, union ipc_wire *w)
{
	(void)b;
	(void)w;
	return true;
}

static int dec_text(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d)
{
	(void)w;
	b->text.text = (const char *)d->tail;
	b->text.len = d->tail_len;
	return 0;
}

/* ------------------------------------------------------------ the table */

struct ipc_layout {
	bool known;
	bool tail; /* bytes may follow the fixed part */
	/* Encoding: those bytes of a host payload (NULL: none). */
	const void *(*tail_of)(const union ipc_body *b, size_t *len_p);
	uint16_t size; /* the fixed part */
	uint8_t fds_min, fds_max;
	bool (*enc)(const union ipc_body *b, union ipc_wire *w); /* NULL: no payload */
	int (*dec)(const union ipc_wire *w, union ipc_body *b, struct ipc_dec *d);
};

#define EMPTY                                                                                      \
	{                                                                                          \
		.known = true                                                                      \
	}
#define FIXED(wire, name, fmin, fmax)                                                              \
	{                                                                                          \
		.known = true, .size = sizeof(struct rct_ipc_##wire), .fds_min = (fmin),           \
		.fds_max = (fmax), .enc = enc_##name, .dec = dec_##name                            \
	}
#define TEXT                                                                                       \
	{                                                                                          \
		.known = true, .tail = true, .tail_of = tail_text, .enc = enc_text,                \
		.dec = dec_text                                                                    \
	}

static const struct ipc_layout ipc_layouts[RCT_IPC_TYPE_MAX + 1][2] = {
	[RCT_IPC_HELLO] = {FIXED(hello, hello, 0, 0), FIXED(hello_reply, hello_reply, 0, 0)},
	[RCT_IPC_SESSION_OPEN] = {FIXED(session_open, open, 0, 0),
				  FIXED(session_open_reply, open_reply, 0, 0)},
	[RCT_IPC_SESSION_CLOSE] = {EMPTY, EMPTY},
	[RCT_IPC_REGION_ADD] = {{.known = true,
				 .tail = true,
				 .tail_of = tail_region_add,
				 .size = sizeof(struct rct_ipc_region_add),
				 .fds_min = 2,
				 .fds_max = 2,
				 .enc = enc_region_add,
				 .dec = dec_region_add},
				FIXED(region_add_reply, region_add_reply, 0, 0)},
	[RCT_IPC_REGION_REMOVE] = {FIXED(region_ref, region_ref, 0, 0), EMPTY},
	[RCT_IPC_LISTEN] = {FIXED(peer, peer, 0, 0), FIXED(listen_reply, listen_reply, 0, 0)},
	[RCT_IPC_ACCEPT] = {EMPTY, FIXED(connected, connected, 0, 0)},
	[RCT_IPC_CONNECT] = {FIXED(peer, peer, 0, 0), FIXED(connected, connected, 0, 0)},
	[RCT_IPC_CKPT_BEGIN] = {FIXED(ckpt_begin, begin, 0, 0), EMPTY},
	[RCT_IPC_CKPT_DIRTY] = {FIXED(region_ref, take, 0, 0), EMPTY},
	[RCT_IPC_CKPT_STREAM] = {FIXED(region_ref, take, 0, 0), EMPTY},
	[RCT_IPC_CKPT_DEVSTATE] = {{.known = true,
				    .tail = true,
				    .tail_of = tail_devstate,
				    .size = sizeof(struct rct_ipc_devstate),
				    .fds_max = 1,
				    .enc = enc_devstate,
				    .dec = dec_devstate},
				   EMPTY},
	[RCT_IPC_CKPT_COMMIT] = {EMPTY, FIXED(ckpt_stats, stats, 0, 0)},
	[RCT_IPC_CKPT_FLUSH] = {FIXED(ckpt_flush, flush, 0, 0), FIXED(ckpt_stats, stats, 0, 0)},
	[RCT_IPC_DEVSTATE_GET] = {FIXED(devstate_get, devstate_get, 1, 1),
				  FIXED(devstate_get_reply, devstate_get_reply, 0, 0)},
	[RCT_IPC_EVENT] = {FIXED(event, event, 0, 0), {.known = false}},
	[RCT_IPC_STATUS] = {EMPTY, TEXT},
	[RCT_IPC_SESSIONS] = {EMPTY, TEXT},
	[RCT_IPC_STATS] = {FIXED(stats, stats_req, 0, 0), TEXT},
	[RCT_IPC_SESSION_PAIRING] = {FIXED(session_pairing, pairing, 0, 0),
				     FIXED(session_pairing_reply, pairing_reply, 0, 0)},
	[RCT_IPC_PAIRING_CTL] = {FIXED(pairing_ctl, pairing_ctl, 0, 0), TEXT},
	[RCT_IPC_CKPT_REFUSE] = {{.known = true,
				  .tail = true,
				  .tail_of = tail_refuse,
				  .size = sizeof(struct rct_ipc_ckpt_refuse),
				  .enc = enc_refuse,
				  .dec = dec_refuse},
				 EMPTY},
};

_Static_assert(sizeof(union ipc_wire) <= 128, "the largest fixed payload");

static const struct ipc_layout *ipc_layout(unsigned type, enum ipc_dir dir)
{
	const struct ipc_layout *l;

	if (type > RCT_IPC_TYPE_MAX || (dir != IPC_REQUEST && dir != IPC_REPLY))
		return NULL;
	l = &ipc_layouts[type][dir];
	return l->known ? l : NULL;
}

long ipc_fixed_size(unsigned type, enum ipc_dir dir)
{
	const struct ipc_layout *l = ipc_layout(type, dir);

	return l ? (long)l->size : -1;
}

int ipc_encode(unsigned type, enum ipc_dir dir, const union ipc_body *b, void *buf, size_t cap)
{
	const struct ipc_layout *l = ipc_layout(type, dir);
	union ipc_wire w;
	const void *tail = NULL;
	size_t tail_len = 0;

	if (!l)
		return -EINVAL;
	if (l->tail_of)
		tail = l->tail_of(b, &tail_len);
	if (l->size > cap || tail_len > cap - l->size || l->size + tail_len > RCT_IPC_MAX_PAYLOAD)
		return -EMSGSIZE;
	memset(&w, 0, sizeof(w));
	if (l->enc && !l->enc(b, &w))
		return -EINVAL;
	memcpy(buf, &w, l->size);
	if (tail_len)
		memcpy((uint8_t *)buf + l->size, tail, tail_len);
	return (int)(l->size + tail_len);
}

int ipc_decode(unsigned type, enum ipc_dir dir, const void *buf, size_t len, unsigned nfds,
	       union ipc_body *b, char *what, size_t what_len)
{
	const struct ipc_layout *l = ipc_layout(type, dir);
	struct ipc_dec d = {
		.type = type, .dir = dir, .nfds = nfds, .what = what, .what_len = what_len};
	union ipc_wire w;

	what[0] = '\0';
	memset(b, 0, sizeof(*b));
	if (!l) {
		snprintf(what, what_len, "unknown message type %u%s", type,
			 dir == IPC_REPLY ? " (reply)" : "");
		return -EPROTO;
	}
	if (l->tail ? len < l->size : len != l->size)
		return dec_bad(&d, "payload is %zu bytes, expected %s%u", len,
			       l->tail ? "at least " : "", l->size);
	if (nfds < l->fds_min || nfds > l->fds_max)
		return dec_bad(&d, "carries %u descriptors, expected %s%u", nfds,
			       l->fds_min == l->fds_max ? "" : "at most ", l->fds_max);
	d.tail = (const uint8_t *)buf + l->size;
	d.tail_len = len - l->size;
	if (!l->dec)
		return 0;
	memset(&w, 0, sizeof(w));
	memcpy(&w, buf, l->size);
	return l->dec(&w, b, &d);
}
