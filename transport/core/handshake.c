/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The connection handshake (docs/protocol.md): after the backend connected
 * the control lane, the primary sends HELLO; the secondary checks it and
 * answers HELLO, then AUTH proves the pairing (auth.c) before any data lane
 * opens; the secondary sends one REGION per guest region and one for the
 * device-state staging buffer, each with its packed remote key.  The primary
 * checks that both sides registered the same region ids with the same sizes
 * before it imports a key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "handshake.h"
#include "keepalive.h"
#include "log.h"
#include "region.h"
#include "session.h"
#include "util.h"

rct_status_t rct_session_wait_msg(struct rct_session *s, uint64_t deadline_ns, unsigned type,
				  struct rct_msg *msg_p)
{
	rct_status_t status;
	char text[128];

	for (;;) {
		status = rct_session_recv_one(s, msg_p);
		if (status == RCT_OK)
			break;
		if (status != RCT_ERR_AGAIN)
			return status;
		if (rct_now_ns() >= deadline_ns) {
			rct_error("session: timed out waiting for %s from the peer",
				  rct_msg_type_str(type));
			return rct_session_fail(s, RCT_ERR_TIMED_OUT);
		}
		status = s->ops->progress(s->ctx, RCT_MIN(rct_ms_left(deadline_ns), 100));
		if (status != RCT_OK)
			return rct_session_fail(s, status);
	}
	if (msg_p->type == RCT_MSG_ERROR || msg_p->type == RCT_MSG_GOODBYE)
		return rct_session_dispatch(s, msg_p);
	if (msg_p->type != type) {
		snprintf(text, sizeof(text), "handshake: expected %s, got %s",
			 rct_msg_type_str(type), rct_msg_type_str(msg_p->type));
		return rct_session_proto_error(s, RCT_ERR_PROTO, text);
	}
	return RCT_OK;
}

/* A staging slot's bytes: @size rounded up to the session's page size. */
static uint64_t rct_staging_slot(const struct rct_session *s, uint64_t size)
{
	return (size + s->page_size - 1) & ~((uint64_t)s->page_size - 1);
}

static rct_status_t rct_session_staging_map(struct rct_session *s, size_t size, unsigned access)
{
	rct_status_t status;

	/* Round up to the page size so that allocation backends are happy. */
	size = rct_staging_slot(s, size);
	status = s->ops->mem_map(s->ctx, NULL, size, access, &s->staging);
	if (status != RCT_OK)
		rct_error("session: device-state staging of %zu bytes: %s", size,
			  rct_status_str(status));
	return status;
}

static rct_status_t rct_session_send_region(struct rct_session *s, uint32_t id, uint16_t kind,
					    struct rct_be_mem *mem, uint64_t size, const char *name)
{
	/* The key, then the name: REGION's one variable part. */
	uint8_t key[RCT_KEY_MAX + RCT_REGION_NAME_MAX];
	struct rct_msg m = {.type = RCT_MSG_REGION};
	rct_status_t status;
	size_t key_len;

	status = s->ops->mem_pack(s->ctx, mem, key, RCT_KEY_MAX, &key_len);
	if (status != RCT_OK) {
		rct_error("region %u: packing its remote key failed: %s", id,
			  rct_status_str(status));
		return rct_session_fail(s, status);
	}
	m.region.id = id;
	m.region.kind = kind;
	m.region.size = size;
	m.region.key_len = (uint16_t)key_len;
	m.region.key = key;
	m.region.name_len = (uint16_t)strlen(name);
	memcpy(key + key_len, name, m.region.name_len);
	m.region.name = (const char *)key + key_len;
	return rct_session_send(s, &m);
}

static void rct_session_hello(const struct rct_session *s, struct rct_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = RCT_MSG_HELLO;
	m->hello.role = (uint16_t)s->role;
	m->hello.lanes = (uint16_t)s->lanes;
	m->hello.page_size = s->page_size;
	m->hello.nregions = s->nregions;
	m->hello.max_put = s->max_put;
	m->hello.flags = (s->auth.has_psk ? RCT_HELLO_AUTH : 0) |
			 (s->ka.liveness & RCT_LIVENESS_THREAD ? RCT_HELLO_LIVENESS : 0);
	m->hello.generation = s->generation;
}

rct_status_t rct_session_set_pairing(struct rct_session *s, const char *id, const uint8_t *key,
				     uint64_t generation)
{
	size_t n;

	if (!s || !id)
		return RCT_ERR_INVALID_PARAM;
	if (s->state != RCT_SESSION_NEW) {
		rct_error("session: the pairing is set before listen or connect");
		return RCT_ERR_STATE;
	}
	n = strlen(id);
	if (!n || n >= RCT_PAIRING_ID_MAX ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		       "0123456789-_.:") != n) {
		rct_error("session: pairing identity '%.64s': 1..%d of letters, digits, - _ . :",
			  id, RCT_PAIRING_ID_MAX - 1);
		return RCT_ERR_INVALID_PARAM;
	}
	if (!key && !s->auth.has_host_psk) {
		rct_error("pairing %s: neither a pre-shared key nor a pairing key to prove it with",
			  id);
		return RCT_ERR_INVALID_PARAM;
	}
	if (rct_auth_init() != RCT_OK)
		return RCT_ERR_SYSTEM;
	rct_auth_pairing_key(s, id, key, s->auth.psk);
	s->auth.has_psk = true;
	s->generation = generation;
	snprintf(s->auth.pairing_id, sizeof(s->auth.pairing_id), "%s", id);
	return RCT_OK;
}

rct_status_t rct_session_listen(struct rct_session *s, const char *addr, uint16_t port,
				uint16_t *port_p)
{
	rct_status_t status;

	if (!s || !addr)
		return RCT_ERR_INVALID_PARAM;
	if (s->role != RCT_ROLE_SECONDARY || s->state != RCT_SESSION_NEW)
		return RCT_ERR_STATE;
	if (strlen(addr) >= sizeof(s->ka.listen_addr)) {
		rct_error("session: listen address '%.64s...' longer than %zu bytes", addr,
			  sizeof(s->ka.listen_addr) - 1);
		return RCT_ERR_INVALID_PARAM;
	}
	status = s->ops->listen(s->ctx, addr, port, port_p);
	if (status == RCT_OK) {
		snprintf(s->ka.listen_addr, sizeof(s->ka.listen_addr), "%s", addr);
		s->state = RCT_SESSION_LISTENING;
	}
	return status;
}

/*
 * Secondary: the HELLO and AUTH of the primary whose control lane is in
 * (state ADMITTING).  Nothing of the session's memory is reachable by it yet:
 * its data lanes are not taken and no remote key has gone out.
 */
static rct_status_t rct_session_admit(struct rct_session *s, unsigned lanes, uint64_t deadline)
{
	struct rct_msg m;
	rct_status_t status;
	char text[160];

	status = rct_session_wait_msg(s, deadline, RCT_MSG_HELLO, &m);
	if (status != RCT_OK)
		return status;
	if (m.hello.role != RCT_ROLE_PRIMARY || m.hello.lanes != lanes) {
		snprintf(text, sizeof(text), "HELLO: expected a primary with %u lanes", lanes);
		return rct_session_proto_error(s, RCT_ERR_PROTO, text);
	}
	if (m.hello.page_size != s->page_size || m.hello.nregions != s->nregions) {
		snprintf(text, sizeof(text),
			 "HELLO: primary has page size %u and %u regions, secondary %u and %u",
			 m.hello.page_size, m.hello.nregions, s->page_size, s->nregions);
		return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
	}
	if (m.hello.generation < s->generation) {
		snprintf(text, sizeof(text),
			 "HELLO: the primary's generation %llu is older than this pairing's %llu "
			 "(a stale primary)",
			 (unsigned long long)m.hello.generation, (unsigned long long)s->generation);
		return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
	}
	/* Authentication before anything about our memory is said. */
	if (s->auth.has_psk != !!(m.hello.flags & RCT_HELLO_AUTH))
		return rct_session_proto_error(
			s, RCT_ERR_AUTH,
			s->auth.has_psk
				? "the primary holds no pre-shared key; this secondary "
				  "requires one, so no remote key was advertised"
				: "the primary requires a pre-shared key; this secondary holds "
				  "none");
	if (s->auth.has_psk) {
		status = rct_auth_bind_hello(s, &m);
		if (status == RCT_OK)
			status = rct_auth_secondary(s, deadline);
		if (status != RCT_OK)
			return status;
	}
	status = rct_session_live_agree(s, &m);
	if (status == RCT_OK)
		s->generation = m.hello.generation; /* proved, or no key to prove it */
	return status;
}

/*
 * Secondary: a primary that comes by @come_by (ns) and proves itself, its
 * admission and data lanes by @deadline (ns).  A primary that fails HELLO or
 * AUTH is turned away and the next one is heard: whoever can reach the port
 * must not end this VM's pairing.
 */
static rct_status_t rct_session_accept_until(struct rct_session *s, uint64_t come_by,
					     uint64_t deadline)
{
	rct_status_t status, why = RCT_OK;
	unsigned lanes, away = 0;
	struct rct_msg m;

	if (!s)
		return RCT_ERR_INVALID_PARAM;
	if (s->role != RCT_ROLE_SECONDARY || s->state != RCT_SESSION_LISTENING)
		return RCT_ERR_STATE;
	for (;;) {
		status = s->ops->accept(s->ctx, rct_ms_left(RCT_MIN(come_by, deadline)),
					rct_ms_left(deadline), &lanes);
		if (status == RCT_ERR_AGAIN) { /* nobody came by then */
			status = RCT_ERR_TIMED_OUT;
			if (come_by >= deadline && !away)
				rct_error("session: no primary connected within %d ms",
					  s->timeout_ms);
		}
		if (status != RCT_OK) {
			if (away && come_by >= deadline)
				rct_error(
					"session: no primary proved itself within %d ms (%u turned "
					"away, the last: %s)",
					s->timeout_ms, away, rct_status_str(why));
			return status;
		}
		s->lanes = lanes;
		s->state = RCT_SESSION_ADMITTING;
		status = rct_session_admit(s, lanes,
					   RCT_MIN(deadline, rct_now_ns() + RCT_ADMIT_NS));
		if (status == RCT_OK)
			break;
		why = status;
		away++;
		s->turned_away++;
		rct_warn("session: turned a connecting primary away (%s); listening on",
			 rct_status_str(status));
		s->ops->reject(s->ctx);
		s->state = RCT_SESSION_LISTENING;
	}
	s->state = RCT_SESSION_CONNECTED;

	/* Two slots: the committed device state stays in one while the next
	 * epoch's is put into the other (session.h). */
	s->staging_slot = rct_staging_slot(s, s->staging_size);
	status = rct_session_staging_map(s, 2 * s->staging_slot, RCT_MEM_REMOTE_WRITE);
	if (status != RCT_OK)
		return rct_session_proto_error(s, status, "cannot map device-state staging");

	rct_session_hello(s, &m);
	status = rct_session_send(s, &m);
	if (status == RCT_OK && (s->ka.liveness & RCT_LIVENESS_THREAD))
		status = rct_session_live_offer(s);
	/* The proved primary's data lanes, and only now. */
	if (status == RCT_OK) {
		status = s->ops->open_lanes(s->ctx, rct_ms_left(deadline));
		if (status != RCT_OK)
			return rct_session_fail(s, status);
	}
	for (unsigned i = 0; status == RCT_OK && i < s->nregions; i++)
		status = rct_session_send_region(s, s->regions[i]->id, RCT_REGION_GUEST,
						 s->regions[i]->mem, s->regions[i]->size,
						 s->regions[i]->name);
	if (status == RCT_OK)
		status = rct_session_send_region(s, 0, RCT_REGION_STAGING, s->staging,
						 s->staging_size, "");
	if (status == RCT_OK)
		status = rct_keepalive_start(s);
	if (status != RCT_OK)
		return status;
	rct_info("session: accepted a primary with %u data lanes over %s (generation %llu)", lanes,
		 s->ops->name, (unsigned long long)s->generation);
	return RCT_OK;
}

rct_status_t rct_session_accept(struct rct_session *s)
{
	uint64_t deadline = rct_now_ns() + (uint64_t)(s ? s->timeout_ms : 0) * 1000000;

	return rct_session_accept_until(s, deadline, deadline);
}

rct_status_t rct_session_accept_within(struct rct_session *s, int wait_ms)
{
	uint64_t now = rct_now_ns();

	if (wait_ms < 0)
		return RCT_ERR_INVALID_PARAM;
	return rct_session_accept_until(s, now + (uint64_t)wait_ms * 1000000,
					now + (uint64_t)(s ? s->timeout_ms : 0) * 1000000);
}

/* Primary: import the remote key in REGION message @m. */
static rct_status_t rct_session_import(struct rct_session *s, const struct rct_msg *m)
{
	struct rct_be_rkey **slot;
	struct rct_region *r;
	rct_status_t status;
	char text[RCT_ERROR_TEXT_MAX + 1];

	if (m->region.kind == RCT_REGION_STAGING) {
		if (!m->region.size || m->region.size > RCT_STAGING_MAX) {
			snprintf(text, sizeof(text),
				 "staging region of %llu bytes (1..%llu allowed)",
				 (unsigned long long)m->region.size,
				 (unsigned long long)RCT_STAGING_MAX);
			return rct_session_proto_error(s, RCT_ERR_PROTO, text);
		}
		slot = &s->staging_rkey;
		s->remote_staging_size = m->region.size;
		/* The peer's two slots, each its size rounded up to the page. */
		s->staging_slot = rct_staging_slot(s, m->region.size);
	} else {
		r = rct_session_region(s, m->region.id);
		if (!r || r->size != m->region.size) {
			snprintf(text, sizeof(text),
				 "region %u: secondary has %llu bytes, primary %s", m->region.id,
				 (unsigned long long)m->region.size,
				 r ? "a different size" : "no such region");
			return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
		}
		if (strlen(r->name) != m->region.name_len ||
		    memcmp(r->name, m->region.name, m->region.name_len)) {
			snprintf(text, sizeof(text),
				 "region %u: the secondary names it '%.*s', the primary '%s' (''"
				 ": unnamed)",
				 m->region.id, (int)m->region.name_len, m->region.name, r->name);
			return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
		}
		slot = &r->rkey;
	}
	if (*slot) {
		snprintf(text, sizeof(text), "region %u advertised twice", m->region.id);
		return rct_session_proto_error(s, RCT_ERR_PROTO, text);
	}
	status = s->ops->rkey_unpack(s->ctx, m->region.key, m->region.key_len, slot);
	if (status != RCT_OK) {
		if (s->ctx->why[0])
			snprintf(text, sizeof(text), "region %u: %s", m->region.id, s->ctx->why);
		else
			snprintf(text, sizeof(text), "region %u: cannot import its remote key: %s",
				 m->region.id, rct_status_str(status));
		return rct_session_proto_error(s, status, text);
	}
	return RCT_OK;
}

rct_status_t rct_session_connect(struct rct_session *s, const char *addr, uint16_t port)
{
	uint64_t deadline;
	struct rct_msg m;
	rct_status_t status;
	char text[160];

	if (!s || !addr)
		return RCT_ERR_INVALID_PARAM;
	if (s->role != RCT_ROLE_PRIMARY || s->state != RCT_SESSION_NEW)
		return RCT_ERR_STATE;
	deadline = rct_now_ns() + (uint64_t)s->timeout_ms * 1000000;

	status = s->ops->connect(s->ctx, addr, port, s->lanes, s->timeout_ms);
	if (status != RCT_OK)
		return status;
	s->state = RCT_SESSION_CONNECTED;

	rct_session_hello(s, &m);
	status = rct_session_send(s, &m);
	if (status == RCT_OK && s->auth.has_psk) {
		status = rct_auth_bind_hello(s, &m);
		if (status == RCT_OK)
			status = rct_auth_primary(s, deadline);
	}
	if (status != RCT_OK)
		return status;
	status = rct_session_wait_msg(s, deadline, RCT_MSG_HELLO, &m);
	if (status != RCT_OK)
		return status;
	if (!s->auth.has_psk && (m.hello.flags & RCT_HELLO_AUTH))
		return rct_session_proto_error(s, RCT_ERR_AUTH,
					       "the secondary requires a pre-shared key; this "
					       "primary holds none");
	if (m.hello.role != RCT_ROLE_SECONDARY || m.hello.nregions != s->nregions ||
	    m.hello.page_size != s->page_size) {
		snprintf(text, sizeof(text),
			 "HELLO: peer is not a secondary with page size %u and %u regions",
			 s->page_size, s->nregions);
		return rct_session_proto_error(s, RCT_ERR_MISMATCH, text);
	}
	status = rct_session_live_agree(s, &m);
	if (status == RCT_OK && (s->ka.liveness & RCT_LIVENESS_THREAD))
		status = rct_session_live_join(s, addr, deadline);
	if (status != RCT_OK)
		return status;
	/* The secondary proved itself (or neither side holds a key): data lanes. */
	status = s->ops->open_lanes(s->ctx, rct_ms_left(deadline));
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	/* One REGION per guest region plus the staging buffer. */
	for (unsigned i = 0; i <= s->nregions; i++) {
		status = rct_session_wait_msg(s, deadline, RCT_MSG_REGION, &m);
		if (status == RCT_OK)
			status = rct_session_import(s, &m);
		if (status != RCT_OK)
			return status;
	}
	for (unsigned i = 0; i < s->nregions; i++)
		if (!s->regions[i]->rkey)
			return rct_session_proto_error(s, RCT_ERR_MISMATCH,
						       "a region was not advertised by the peer");
	if (!s->staging_rkey)
		return rct_session_proto_error(s, RCT_ERR_PROTO, "no staging region advertised");

	/* The largest blob we can send: our own limit or the peer's, the smaller. */
	status = rct_session_staging_map(s, RCT_MIN(s->staging_size, s->remote_staging_size),
					 RCT_MEM_LOCAL);
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	for (unsigned i = 0; i < s->lanes; i++) {
		s->pri.lane[i].runs = malloc(RCT_LANE_BATCH * sizeof(struct rct_run));
		if (!s->pri.lane[i].runs)
			return rct_session_fail(s, RCT_ERR_NO_MEMORY);
	}
	status = rct_keepalive_start(s);
	if (status != RCT_OK)
		return status;
	rct_info("session: connected to %s:%u with %u data lanes over %s", addr, port, s->lanes,
		 s->ops->name);
	return RCT_OK;
}
