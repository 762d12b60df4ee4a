/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rctd: the per-host daemon.  One listener thread accepts hypervisor
 * connections on a Unix socket; each connection gets a thread of its own that
 * owns at most one rct session (one VM), so a slow or hostile client stalls
 * only itself.  The registry of connections, their descriptive fields and
 * their metrics sit under one lock, read by the metrics endpoint and by the
 * STATUS / SESSIONS / STATS requests.
 */
#ifndef RCTD_H
#define RCTD_H

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <rct/rct.h>
#include <rct/rct_ipc.h>

#define RCTD_MAX_IDS	     32 /* allowed uids / gids */
#define RCTD_MAX_CONNS	     256
#define RCTD_ADMIN_RESERVE   16	     /* of those, kept for root and rctd's own user */
#define RCTD_CONNS_PER_UID   64	     /* default --max-conns-per-uid */
#define RCTD_FDS_PER_CONN    16	     /* a connection's own and its session's, as a rule */
#define RCTD_ACCEPT_SLICE_MS 200     /* ACCEPT looks at rctd's stopping this often */
#define RCTD_TIMEOUT_MAX_MS  3600000 /* a session's timeout: an hour at most */
#define RCTD_MAX_REGIONS     64
#define RCTD_MSG_TIMEOUT_MS  5000  /* default: a message whole within this of its first byte */
#define RCTD_IDLE_TIMEOUT_MS 60000 /* default: a connection without a session, silent */
#define RCTD_DEVSTATE_MAX    (1ull << 30)
#define RCTD_HIST_BUCKETS    496 /* log-linear: 8 sub-buckets per power of two of ns */
#define RCTD_PROM_BUCKETS    18	 /* the exported Prometheus buckets (+Inf implied) */
#define RCTD_VERIFIER_LEN    16	 /* a pairing key's verifier in its record */
#define RCTD_FLUSH_MARK_LEN  64	 /* a pairing's flush mark: one line */
/* Generations stop here: never wrapped, and JSON's signed integers hold them. */
#define RCTD_GENERATION_MAX INT64_MAX

/* ---- logging: stderr, one line each; journald priorities under systemd ---- */
enum rctd_log_level { RCTD_LOG_ERR = 3, RCTD_LOG_WARN = 4, RCTD_LOG_INFO = 6, RCTD_LOG_DEBUG = 7 };
extern int rctd_log_threshold;
void rctd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define rctd_err(...)	rctd_log(RCTD_LOG_ERR, __VA_ARGS__)
#define rctd_warn(...)	rctd_log(RCTD_LOG_WARN, __VA_ARGS__)
#define rctd_info(...)	rctd_log(RCTD_LOG_INFO, __VA_ARGS__)
#define rctd_debug(...) rctd_log(RCTD_LOG_DEBUG, __VA_ARGS__)

/* ---- metrics ---- */
struct rctd_hist {
	uint64_t count, sum_ns, max_ns;
	uint64_t fine[RCTD_HIST_BUCKETS];
	uint64_t prom[RCTD_PROM_BUCKETS];
};

void rctd_hist_add(struct rctd_hist *h, uint64_t ns);
/* Value (ns) under which a fraction @q of the samples fall (upper bucket edge). */
uint64_t rctd_hist_quantile(const struct rctd_hist *h, double q);

struct rctd_metrics {
	uint64_t checkpoints, failures;
	uint64_t refused; /* secondary: ready epochs its hypervisor refused */
	uint64_t pages, bytes, devstate_bytes, flushed_pages;
	uint64_t last_epoch; /* UINT64_MAX: none */
	/* Local stalls (never the peer's loss): the process did not run, or the
	 * session was not driven, for an interval or more. */
	uint64_t stalls_process, stalls_session;
	uint64_t stall_max_ns_process, stall_max_ns_session;
	struct rctd_hist transfer, commit_rtt, flush;
};

enum rctd_sess_state {
	RCTD_SESS_NONE,	     /* no session on this connection */
	RCTD_SESS_OPEN,	     /* created, regions being added */
	RCTD_SESS_LISTENING, /* secondary: bound */
	RCTD_SESS_CONNECTED,
	RCTD_SESS_FAILED, /* the peer or a lane failed; only CLOSE is useful */
};
const char *rctd_sess_state_str(enum rctd_sess_state s);

struct rctd_region {
	uint32_t id;
	char name[RCT_IPC_REGION_NAME_MAX + 1]; /* "" unnamed */
	uint64_t size, pages;
	/* Files that could shrink under the mappings (not sealed F_SEAL_SHRINK):
	 * kept to re-check their size at every checkpoint step; -1 otherwise. */
	int bmap_fd;
	int file_fd;		    /* the RAM file, always: the session finds its holes */
	bool ram_unsealed;	    /* file_fd's size is re-checked */
	unsigned kept_fds;	    /* descriptors kept (file_fd, bmap_fd), charged */
	uint64_t offset;	    /* where the region starts in it */
	uint64_t ram_end, bmap_end; /* the bytes each file must hold */
	uint64_t file_page;	    /* the RAM file's page size (hugetlbfs: its huge page) */
	void *ram;		    /* the guest RAM mapping */
	void *bmap;		    /* the bitmap file mapping (page-aligned start) */
	size_t bmap_len;	    /* length of that mapping */
	uint64_t *bits;		    /* the bitmap inside it */
	uint64_t *sum;		    /* its summary, when the file holds one after it; or NULL */
	struct rct_region *rr;	    /* registered with the session (at accept / connect) */
	bool reserved;		    /* size and kept_fds are charged (conn_charge()) */
};

struct rctd;

struct rctd_conn {
	struct rctd *d;
	struct rctd_conn *next;
	int fd;
	pthread_t thread;
	bool finished; /* the thread is done; joined by the listener */
	uint64_t id;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool allowed, admin, hello;
	uint64_t t_active; /* accept, then the last request: the idle timeouts (own thread) */
	char client[RCT_IPC_NAME_MAX];

	/* The session.  Written by the connection's thread; the descriptive
	 * fields and the metrics under d->lock. */
	struct rct_session *sess;
	enum rctd_sess_state state;
	enum rct_role role;
	char name[RCT_IPC_NAME_MAX];
	char backend[RCT_IPC_BACKEND_MAX];
	char transport[200]; /* what carries the data (rct_session_transport()), once connected */
	char peer[RCT_IPC_ADDR_MAX + 24];
	unsigned lanes;
	uint64_t session_id;
	uint32_t page_size;
	int timeout_ms; /* the session's deadline of blocking calls */
	struct rctd_region regions[RCTD_MAX_REGIONS];
	unsigned nregions;
	bool ready_pending;   /* secondary: CKPT_READY raised, FLUSH not yet asked */
	uint64_t ready_epoch; /* the epoch of that CKPT_READY (under d->lock) */
	uint32_t stopped_by;  /* 0, or 1 + the rct_goodbye_reason a PAIRING_CTL stopped it with */
	unsigned ckpt_flags;  /* primary: flags of the open checkpoint */
	bool in_sync;	      /* a consistent (not LIVE) checkpoint committed since connect */
	uint64_t lost_epoch;  /* PEER_LOST: the failover image (UINT64_MAX: none) */
	rct_status_t lost_status; /* PEER_LOST: why (RCT_OK: not lost) */
	bool peer_closed;	  /* PEER_LOST: the peer closed the session (GOODBYE) */
	struct rctd_metrics m;
	struct rct_liveness_stats live; /* the figures last reported, under d->lock */
	/* The pairing (SESSION_PAIRING, pairing.c's records); written by the
	 * thread, read under d->lock. */
	struct rctd_conn_pairing {
		bool bound;	  /* SESSION_PAIRING succeeded: checked against the record */
		bool proved;	  /* ...and the peer proved the key: the record is this session's */
		bool new_lineage; /* primary: its generation starts a lineage (no epoch yet) */
		bool has_key;	  /* verifier is of the pairing key the client gave */
		char id[RCT_IPC_PAIRING_ID_MAX];
		uint8_t verifier[RCTD_VERIFIER_LEN];
		uint64_t generation;
		uint64_t demoted;     /* as in the state file (UINT64_MAX: none) */
		uint64_t saved_epoch; /* last_epoch as last written to the state file */
		bool persist_failed;  /* the last write of it failed (warned once) */
		char *flush_mark;     /* secondary, proved: its flush mark (pairing.c) */
		/* Flushes begun plus flushes ended, under d->lock: odd while one
		 * runs.  A reader of the mark tells a flush under way from a
		 * torn one by it (conn_admin.c). */
		uint64_t flush_seq;
	} pair;

	/* A stop asked by another connection (PAIRING_CTL), under d->lock: the
	 * thread is woken through wake_fd, ends the session with stop_reason
	 * (enum rct_goodbye_reason), clears stop_req and signals d->cond. */
	int wake_fd;
	bool stop_req;
	uint32_t stop_reason;

	uint8_t *buf; /* RCT_IPC_MAX_PAYLOAD: requests and replies */
	void *devbuf;
	size_t devcap; /* charged */
	/* What this connection holds against rctd's and its uid's limits
	 * (conn_charge()), under d->lock: guest regions at their size (sparse
	 * or not), the session's device-state staging, devbuf; descriptors
	 * its regions keep. */
	uint64_t charged;
	uint64_t staging_charged; /* of charged: the session's staging */
	unsigned kept_fds;
};

struct rctd_cfg {
	const char *socket_path;
	const char *socket_group; /* group of the socket file, or NULL */
	uid_t uids[RCTD_MAX_IDS];
	unsigned nuids;
	gid_t gids[RCTD_MAX_IDS];
	unsigned ngids;
	const char *metrics_addr;
	int metrics_port;	 /* -1: no endpoint; 0: any free port */
	const char *psk_file;	 /* pre-shared key for peer authentication, or NULL */
	int heartbeat_ms;	 /* keepalive interval of every session */
	bool inband;		 /* --liveness inband: heartbeats on the control lane */
	int msg_timeout_ms;	 /* a message whole within this of its first byte; HELLO too */
	int idle_timeout_ms;	 /* a connection without a session that sends nothing */
	uint64_t max_registered; /* bytes all sessions may hold: regions, staging, device state */
	uint64_t max_registered_per_uid; /* of those, one client uid's (not root's) */
	int max_fds_per_uid;		 /* descriptors of guest files one uid's regions keep */
	const char *state_dir;		 /* one state file per pairing (generation, last epoch) */
	int flush_threads;     /* a secondary's flush helpers; -1: the library's default */
	int max_conns_per_uid; /* connections one client uid may hold (not root's) */
};

struct rctd {
	struct rctd_cfg cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a connection's stop_req was served */
	/* Every pairing state file's write, with the c->pair fields it is made
	 * of (generation, demoted): a checkpoint's record and an administrator's
	 * new generation never cross.  Taken before d->lock, never inside it. */
	pthread_mutex_t state_lock;
	struct rctd_conn *conns;
	unsigned nconns;
	uint64_t next_id;
	volatile int stopping;
	uint64_t started_ns;
	uint64_t caps;
	int metrics_port; /* bound port, or -1 */
	bool has_psk;
	uint8_t psk[RCT_PSK_LEN];
	uint64_t registered; /* bytes charged (conn_charge()), under lock */
	unsigned kept_fds;   /* descriptors of guest files kept, under lock */
	unsigned fd_budget;  /* of RLIMIT_NOFILE, what guest files may keep */
	unsigned nofile;     /* RLIMIT_NOFILE, raised to its hard limit at start */
	int spare_fd;	     /* kept to refuse a client when out of descriptors */
	struct MHD_Daemon *mhd;
};

/* pairing.c: one state file per pairing in cfg.state_dir. */
struct rctd_pairing_state {
	uint64_t generation;
	uint64_t last_committed; /* UINT64_MAX: none */
	uint64_t demoted;	 /* the generation this host was demoted at; UINT64_MAX: none */
	bool found;		 /* the file existed */
	bool has_verifier;	 /* the pairing key is recorded (its verifier) */
	uint8_t verifier[RCTD_VERIFIER_LEN];
};
bool rctd_pairing_id_ok(const char *id);
/* What the record keeps of pairing @id's key @key: a keyed hash, not the key. */
void rctd_pairing_verifier(const struct rctd *d, const char *id, const uint8_t *key,
			   uint8_t out[RCTD_VERIFIER_LEN]);
int rctd_state_dir_init(const struct rctd *d);
int rctd_state_read(const struct rctd *d, const char *id, struct rctd_pairing_state *st);
/* Replace the file whole (write, rename); @durable: fsync it and the directory. */
int rctd_state_write(const struct rctd *d, const char *id, const struct rctd_pairing_state *st,
		     bool durable);
/*
 * The flush mark of pairing @id (pairing.c): whether guest RAM holds a whole
 * epoch.  _open maps it (*@mark_p; _close unmaps); _set says a flush of
 * @epoch starts (@flushing) or finished; _read: *@torn_p is the epoch whose
 * flush never finished (UINT64_MAX - 1: unreadable, taken as torn), or
 * UINT64_MAX when none.
 */
int rctd_flush_mark_open(const struct rctd *d, const char *id, char **mark_p);
void rctd_flush_mark_set(char *mark, bool flushing, uint64_t epoch);
void rctd_flush_mark_close(char *mark);
int rctd_flush_mark_read(const struct rctd *d, const char *id, uint64_t *torn_p);
/* A fresh guest: no flush mark (0 or -errno). */
int rctd_flush_mark_remove(const struct rctd *d, const char *id);

/* options.c: the configuration file (-c), then the command line, into @cfg.
 * Returns 0, or the exit status after a message (2: usage). */
int rctd_parse_args(struct rctd_cfg *cfg, int argc, char **argv);
/* A user (or with @group, a group): a number or a name.  0, or -1 when unknown. */
int rctd_parse_id(const char *text, bool group, unsigned *id_p);

/* conn.c: the thread of one client connection (takes ownership of @c). */
void *rctd_conn_main(void *arg);

/* metrics.c */
int rctd_metrics_start(struct rctd *d);
void rctd_metrics_stop(struct rctd *d);
/* JSON of one connection's session; caller holds d->lock. */
json_t *rctd_session_json(const struct rctd_conn *c);
/* JSON of the daemon (STATUS) as @asker may see it (NULL: all; a tenant, not
 * root or rctd's user, sees its own connections only); takes d->lock. */
json_t *rctd_status_json(struct rctd *d, const struct rctd_conn *asker);
/* [session...] of every connection with a session; takes d->lock. */
json_t *rctd_sessions_json(struct rctd *d);

uint64_t rctd_now_ns(void);

#endif /* RCTD_H */
