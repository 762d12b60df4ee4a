/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rct-fault's hostile peer (a raw peer speaking the TCP lanes' format to a
 * listening secondary) and its cross-pairing trials (another tenant's primary
 * going for VM vm's secondary); see the top of rct_fault.c.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rct/rct_client.h>

#include "rawpeer.h"
#include "sim.h"

#include "fault.h"
#include "rawpeer.h"
#include "sim.h"

/* ------------------------------------------------------------ hostile peer */

enum hostile_kind {
	H_TRUNCATED_FRAME,
	H_OVERSIZED_FRAME,
	H_SHORT_PAYLOAD,
	H_BAD_VERSION,
	H_UNKNOWN_TYPE,
	H_PUT_BEYOND_CACHE,
	H_BITMAP_BEYOND_REGION,
	H_DEVSTATE_TOO_BIG,
	H_STALE_EPOCH,
	H_NO_KEY,
	H_NR
};

static const char *const hostile_names[H_NR] = {"truncated frame",
						"oversized frame",
						"payload shorter than header",
						"unknown protocol version",
						"unknown message type",
						"put beyond the colo cache",
						"bitmap beyond the region",
						"device state beyond staging",
						"message of an older epoch",
						"peer without the key"};

/* The handshake as a primary would do it; fills the cache key.  0 or -errno. */
static int hostile_handshake(int ctrl, uint64_t npages, struct rct_msg *region, uint8_t *buf,
			     uint32_t key[2])
{
	struct rct_msg m = {.type = RCT_MSG_HELLO};
	int rc;

	m.hello.role = RCT_ROLE_PRIMARY;
	m.hello.lanes = 1;
	m.hello.page_size = PAGE;
	m.hello.nregions = 1;
	m.hello.max_put = 1 << 20;
	(void)npages;
	rc = rawpeer_send_msg(ctrl, &m);
	if (!rc)
		rc = rawpeer_recv_msg(ctrl, &m, buf, 5000);
	if (!rc && m.type != RCT_MSG_HELLO)
		rc = -EPROTO;
	if (!rc)
		rc = rawpeer_recv_msg(ctrl, region, buf, 5000);
	if (!rc && (region->type != RCT_MSG_REGION || region->region.key_len != 16))
		rc = -EPROTO;
	if (!rc)
		memcpy(key, region->region.key, 8);
	return rc;
}

/* One hostile attempt against a listening secondary on @port.  Returns a
 * description of what the peer got to see, for the log. */
static void hostile_send(enum hostile_kind h, uint16_t port, uint64_t npages, char *saw, size_t len)
{
	static uint8_t buf[RCT_MSG_MAX];
	struct rct_msg m, region;
	uint32_t key[2];
	uint8_t junk[64];
	int ctrl, lane, rc = 0;

	saw[0] = '\0';
	ctrl = rawpeer_connect("127.0.0.1", port);
	lane = rawpeer_connect("127.0.0.1", port);
	if (ctrl < 0 || lane < 0 || rawpeer_lane_hello(ctrl, 0, 1) ||
	    rawpeer_lane_hello(lane, 1, 1)) {
		snprintf(saw, len, "could not connect");
		goto out;
	}
	memset(junk, 0x5a, sizeof(junk));
	switch (h) {
	case H_TRUNCATED_FRAME: {
		uint32_t f[2] = {htole32(100), 0};

		rc = rawpeer_send(ctrl, f, sizeof(f));
		if (!rc)
			rc = rawpeer_send(ctrl, junk, 40);
		shutdown(ctrl, SHUT_WR);
		break;
	}
	case H_OVERSIZED_FRAME: {
		uint32_t f[2] = {htole32(16u << 20), 0};

		rc = rawpeer_send(ctrl, f, sizeof(f));
		break;
	}
	case H_SHORT_PAYLOAD:
	case H_BAD_VERSION:
	case H_UNKNOWN_TYPE: {
		/* A HELLO whose header says more, or another version, or type 99. */
		struct {
			uint32_t f[2];
			uint32_t magic;
			uint16_t version, type;
			uint32_t length, reserved;
			uint8_t payload[32];
		} w = {.f = {htole32(16 + 20), 0},
		       .magic = htole32(RCT_PROTO_MAGIC),
		       .version = htole16(RCT_PROTO_VERSION),
		       .type = htole16(RCT_MSG_HELLO),
		       .length = htole32(32)};

		if (h == H_BAD_VERSION) {
			w.version = htole16(77);
			w.f[0] = htole32(16 + 32);
		} else if (h == H_UNKNOWN_TYPE) {
			w.type = htole16(99);
			w.f[0] = htole32(16 + 32);
		}
		rc = rawpeer_send(ctrl, &w, 8 + le32toh(w.f[0]));
		break;
	}
	case H_NO_KEY:
		memset(&m, 0, sizeof(m));
		rc = hostile_handshake(ctrl, npages, &region, buf, key);
		snprintf(saw, len, "%s", rc ? "no remote key (refused)" : "A REMOTE KEY");
		goto out;
	default:
		rc = hostile_handshake(ctrl, npages, &region, buf, key);
		if (rc)
			break;
		if (h == H_PUT_BEYOND_CACHE) {
			rc = rawpeer_send_put(lane, key[0], key[1], npages * PAGE, PAGE);
			for (int i = 0; !rc && i < 64; i++)
				rc = rawpeer_send(lane, junk, sizeof(junk));
			break;
		}
		memset(&m, 0, sizeof(m));
		m.type = RCT_MSG_BEGIN;
		m.begin.epoch = 5;
		rc = rawpeer_send_msg(ctrl, &m);
		memset(&m, 0, sizeof(m));
		if (h == H_BITMAP_BEYOND_REGION) {
			uint64_t items[2] = {htole64(1), ~0ull}; /* one segment of one word */

			m.type = RCT_MSG_BITMAP;
			m.bitmap.epoch = 5;
			m.bitmap.first_word = (npages + 63) / 64;
			m.bitmap.nitems = 2;
			m.bitmap.items = items;
			if (!rc)
				rc = rawpeer_send_msg(ctrl, &m);
		} else if (h == H_DEVSTATE_TOO_BIG) {
			m.type = RCT_MSG_DEVSTATE;
			m.devstate.epoch = 5;
			m.devstate.length = 1ull << 40;
			if (!rc)
				rc = rawpeer_send_msg(ctrl, &m);
		} else {
			m.type = RCT_MSG_COMMIT;
			m.commit.epoch = 4;
			if (!rc)
				rc = rawpeer_send_msg(ctrl, &m);
		}
		break;
	}
	snprintf(saw, len, "%s", rc ? strerror(-rc) : "sent");
out:
	/* Wait for the secondary to hang up on us (or 5 s). */
	if (ctrl >= 0) {
		for (int i = 0; i < 64 && rawpeer_recv_msg(ctrl, &m, buf, 5000) == 0; i++)
			if (m.type == RCT_MSG_REGION && h == H_NO_KEY)
				snprintf(saw, len, "A REMOTE KEY");
		close(ctrl);
	}
	if (lane >= 0)
		close(lane);
}

struct hostile_accept {
	struct rct_client *sc;
	int rc;
	struct rct_event ev;
};

/* The secondary's hypervisor: accept, then wait for what happens next. */
static void *hostile_accept_main(void *arg)
{
	struct hostile_accept *a = arg;

	a->rc = rct_client_accept(a->sc, NULL);
	if (!a->rc)
		a->rc = rct_client_event_next(a->sc, 5000, &a->ev);
	else
		a->rc = 1; /* accept refused */
	return NULL;
}

/* (d) each hostile kind against a secondary rctd: a clear error, RAM untouched. */
void scenario_hostile(struct fault_pair *r, struct tally *t)
{
	struct daemon open_d = {0}, key_d = {0};
	uint8_t *before = malloc(r->o->size);

	if (!before || daemon_start(r->o, &open_d, "hostile-open", NULL, false) ||
	    daemon_start(r->o, &key_d, "hostile-key", NULL, true)) {
		t->trials++;
		t->lost++;
		printf("hostile: set-up failed\n");
		goto out;
	}
	for (int h = 0; h < H_NR; h++) {
		struct daemon *d = h == H_NO_KEY ? &key_d : &open_d;
		struct rct_client *sc;
		char saw[96], why[200] = "";
		uint16_t port;
		uint64_t bad;
		int rc;

		t->trials++;
		memcpy(before, r->g.sram, r->o->size);
		rc = session_open(r->o, d, RCT_ROLE_SECONDARY, "vm.secondary", r->g.smemfd,
				  r->g.sbits_fd, r->o->size, &sc);
		if (rc || rct_client_listen(sc, "127.0.0.1", 0, &port)) {
			snprintf(why, sizeof(why), "set-up failed");
		} else {
			struct hostile_accept a = {.sc = sc};
			pthread_t at;

			pthread_create(&at, NULL, hostile_accept_main, &a);
			hostile_send((enum hostile_kind)h, port, r->npages, saw, sizeof(saw));
			pthread_join(at, NULL);
			/* accept fails, or succeeds and the session fails right after */
			if (a.rc == 1)
				snprintf(saw + strlen(saw), sizeof(saw) - strlen(saw),
					 "; accept: %.30s", rct_status_str(rct_client_detail(sc)));
			else if (a.rc)
				snprintf(why, sizeof(why), "no error within 5 s");
			else if (a.ev.type != RCT_EVENT_PEER_LOST)
				snprintf(why, sizeof(why), "no error: event %d", a.ev.type);
			else
				snprintf(saw + strlen(saw), sizeof(saw) - strlen(saw),
					 "; session failed: %s", rct_status_str(a.ev.status));
			if (!sim_compare(r->g.sram, before, r->npages, PAGE, &bad))
				snprintf(why, sizeof(why), "guest RAM page %" PRIu64 " written",
					 bad);
			else if (strstr(saw, "REMOTE KEY"))
				snprintf(why, sizeof(why),
					 "a peer without the key got a remote key");
			else if (!daemon_alive(d))
				snprintf(why, sizeof(why), "rctd died");
		}
		if (!why[0])
			t->consistent++;
		else
			t->lost++;
		printf("hostile: %-28s -> %s%s%s\n", hostile_names[h], why[0] ? "FAILED: " : "",
		       why[0] ? why : "refused", why[0] ? "" : "");
		printf("         (%s)\n", saw);
		fflush(stdout);
		rct_client_close(sc);
	}
	/* What rctd logged about them: the clear errors. */
	printf("hostile: the secondary's log says:\n");
	fflush(stdout);
	{
		char cmd[512];

		snprintf(
			cmd, sizeof(cmd),
			"grep -h -E 'rejected|malformed|violation|auth|frame|version|epoch|beyond' "
			"%s %s | sed 's/^/  /' | head -20",
			open_d.log, key_d.log);
		(void)system(cmd);
	}
out:
	daemon_kill(&open_d, SIGTERM);
	daemon_kill(&key_d, SIGTERM);
	free(before);
}

/*
 * (e) Cross-pairing: another tenant's primary, a client of vm's own
 * primary-side rctd (which holds the same host key and vm's record), goes for
 * VM vm's listening secondary, once claiming vm without its pairing key, once
 * naming another VM.  It must be refused (-EKEYREJECTED: by its rctd at
 * SESSION_PAIRING where the host recorded vm's key, else by AUTH at CONNECT)
 * with no guest page changed, and the same listening session must then pair
 * with vm's own primary on that rctd: the full sync flushed and verified byte
 * for byte.
 */
void scenario_cross_pairing(struct fault_pair *r, struct daemon *sd, struct tally *t)
{
	static const char *const what[2] = {"claims vm with another key", "names another VM"};
	uint8_t other_key[RCT_IPC_PAIRING_KEY_LEN];
	uint8_t *before = malloc(r->o->size);

	memcpy(other_key, pairing_key, sizeof(other_key));
	other_key[0] ^= 0x5a;
	for (int i = 0; i < 2 && before; i++) {
		struct rct_client_session sp = session_params(r->o, RCT_ROLE_PRIMARY,
							      "tenant-x.primary");
		/* A generation no secondary finds old (above the one vm's own
		 * primary took after the trial before): what refuses the
		 * tenant must be AUTH, its key. */
		struct rct_client_pairing p = {.id = i ? "vm-b" : "vm",
					       .key = other_key,
					       .has_generation = 1,
					       .generation = 1ull << (40 + i)};
		struct rct_client *evil = NULL;
		struct daemon pd = {0};
		char why[240] = "";
		const char *step = "at CONNECT (AUTH)";
		uint64_t bad;
		int port, rc;

		t->trials++;
		memcpy(before, r->g.sram, r->o->size);
		port = secondary_start(r, sd, "127.0.0.1", "vm.secondary");
		rc = port < 0 ? port : daemon_start(r->o, &pd, "primary", NULL, true);
		if (!rc)
			rc = rct_client_open(pd.sock, "tenant-x", &evil);
		if (!rc)
			rc = rct_client_session_open(evil, &sp, NULL);
		if (!rc) {
			rc = rct_client_session_pairing(evil, &p, NULL);
			if (rc == -EKEYREJECTED)
				step = "at SESSION_PAIRING (vm's key is recorded)";
		}
		if (!rc)
			rc = rct_client_region_add(evil, REGION_ID, sim_guest_memfd(r->g.pguest), 0,
						   r->o->size, r->g.pbits_fd, 0, NULL);
		if (rc && rc != -EKEYREJECTED) {
			snprintf(why, sizeof(why), "set-up: %s", strerror(-rc));
			goto done;
		}
		if (!rc)
			rc = rct_client_connect(evil, "127.0.0.1", (uint16_t)port, NULL);
		if (rc != -EKEYREJECTED)
			snprintf(why, sizeof(why), "the tenant's connect returned %d (%.100s)", rc,
				 rct_client_error(evil));
		else if (!sim_compare(r->g.sram, before, r->npages, PAGE, &bad))
			snprintf(why, sizeof(why), "guest RAM page %" PRIu64 " changed", bad);
		else if (primary_start(r, &pd, "127.0.0.1", (uint16_t)port))
			snprintf(why, sizeof(why), "vm's own primary after the tenant: %.150s",
				 r->mismatch[0] ? r->mismatch : "not paired");
done:
		if (evil)
			rct_client_close(evil);
		tally_count(t, !why[0]);
		printf("cross-pairing %d/2: a tenant that %s -> %s%s%s\n", i + 1, what[i],
		       why[0] ? "FAILED: " : "refused ", why[0] ? why : step,
		       why[0] ? "" : "; vm's own primary then paired, verified");
		trial_end(r, &pd);
	}
	free(before);
}
