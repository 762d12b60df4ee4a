/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside one client connection (conn.c): what a request handler gets and
 * answers.  The dispatcher has decoded the payload (daemon/ipc/payload.h)
 * and checked the session's state and role against the handler's entry in
 * its table before a handler runs; a handler does the request's own checks
 * and the work.  Handlers live by concept: conn_session.c (hello, the
 * session, its pairing, queries), conn_region.c (guest RAM), conn_ckpt.c
 * (connecting and checkpoints), conn_admin.c (a pairing under a cluster
 * manager).
 */
#ifndef RCTD_CONN_H
#define RCTD_CONN_H

#include "../ipc/ipc.h"
#include "../ipc/payload.h"
#include "rctd.h"

/* What a handler answers. */
struct reply {
	int status; /* 0 or -errno */
	rct_status_t detail;
	bool fatal;	/* protocol violation: close after replying */
	bool has_body;	/* the reply carries the handler's @out */
	char *text;	/* a JSON reply's text, freed after sending */
	char what[256]; /* logged with the failure, and the failure's payload */
};

int reply_fail(struct reply *r, int err, rct_status_t detail, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A protocol violation: the connection closes after the reply. */
#define reply_bad(r, ...) ((r)->fatal = true, reply_fail((r), -EPROTO, RCT_OK, __VA_ARGS__))
/* JSON @j (taken; NULL: no memory) as the reply's text. */
int reply_json(struct reply *r, union ipc_body *out, json_t *j);
/* An rct_status_t of operation @op as the reply (0 for RCT_OK). */
int reply_rct(struct reply *r, rct_status_t st, const char *op);

typedef int conn_handler_fn(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
			    union ipc_body *out, struct reply *r);

/* conn_session.c */
conn_handler_fn h_hello, h_session_open, h_session_close, h_pairing, h_query;
/* With a host key, a session proves its pairing or pairs with nothing. */
int conn_need_pairing(struct rctd_conn *c, struct reply *r);
/*
 * Under d->lock: a live session of pairing @id other than @c's that @c's
 * yields to: one whose peer proved the key, or (with @verifier) one that
 * holds the same key or none.  NULL: none.
 */
struct rctd_conn *conn_pairing_rival(struct rctd_conn *c, const char *id, const uint8_t *verifier);
/* Under d->lock: -EBUSY naming @o. */
int conn_pairing_busy(struct reply *r, struct rctd_conn *o, const char *id);
/* After a checkpoint's reply: record its epoch for the pairing (off the pause). */
void conn_persist(struct rctd_conn *c);
/* Destroy the session and its regions (the session first: it may still read them). */
void conn_session_close(struct rctd_conn *c);

/* conn_region.c */
conn_handler_fn h_region_add, h_region_remove;
struct rctd_region *conn_region(struct rctd_conn *c, uint32_t id);
/* Register the regions not yet registered with the session, before it connects. */
int conn_register_regions(struct rctd_conn *c, struct reply *r);
void conn_regions_release(struct rctd_conn *c);
/*
 * Charge @bytes of memory and @fds kept descriptors that @c makes rctd hold
 * against rctd's limits (--max-registered, its descriptor budget) and, but
 * for root and rctd's user, its uid's (--max-registered-per-uid,
 * --max-fds-per-uid): 0, or -ENOMEM/-EMFILE (rctd's) or -EDQUOT (the uid's)
 * replied, naming @what and the limit.  conn_uncharge() gives them back.
 */
int conn_charge(struct rctd_conn *c, uint64_t bytes, unsigned fds, const char *what,
		struct reply *r);
void conn_uncharge(struct rctd_conn *c, uint64_t bytes, unsigned fds);
/* Files that could shrink still hold their regions; else the session ends (-EIO). */
int conn_regions_check(struct rctd_conn *c, struct reply *r);

/* conn_ckpt.c */
conn_handler_fn h_listen, h_accept, h_connect, h_begin, h_dirty, h_devstate, h_commit, h_flush,
	h_refuse, h_devstate_get;

/* conn_admin.c: a pairing, whichever connection holds its session. */
conn_handler_fn h_pairing_ctl;
/*
 * After ACCEPT or CONNECT: the peer proved the pairing key, so the pairing's
 * record is this session's now (its generation, the key's verifier; a newer
 * generation drops the old lineage's epoch).  Else (the record moved on
 * meanwhile, or cannot be written) the session is ended and -errno replied.
 */
int conn_pairing_proved(struct rctd_conn *c, struct reply *r);

/* conn.c */
void conn_set_state(struct rctd_conn *c, enum rctd_sess_state s);
/* A fatal transport status fails the session (the client learns it from the reply). */
void conn_check_fatal(struct rctd_conn *c, rct_status_t st);

#endif /* RCTD_CONN_H */
