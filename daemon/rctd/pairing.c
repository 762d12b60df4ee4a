/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pairings: the VM a session belongs to, its generation and the last epoch
 * committed for it on this host, kept in one small state file per pairing
 * (STATE_DIR/ID.state) so that they survive a restart of rctd: they are what
 * a cluster manager reads to pick the node with current data.
 *
 * The file is text, "key value" per line, replaced whole by write + rename
 * (never half-written).  A generation change is also fsynced with its
 * directory; the epoch, written after every checkpoint, is not (a restart of
 * rctd keeps it; a crash of the host may lose the last few, never the
 * generation).
 *
 * A record changes only for a session whose peer proved the pairing key
 * (conn_pairing_proved()), and it keeps a verifier of that key: a keyed hash
 * (BLAKE2b, keyed with the host key) of the identity and the key, never the
 * key.  A client that names the pairing with another key is refused before
 * anything happens (docs/security.md, "Pairings").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include "rctd.h"

bool rctd_pairing_id_ok(const char *id)
{
	size_t n = strlen(id);

	return n && n < RCT_IPC_PAIRING_ID_MAX && id[0] != '.' &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") ==
		       n;
}

void rctd_pairing_verifier(const struct rctd *d, const char *id, const uint8_t *key,
			   uint8_t out[RCTD_VERIFIER_LEN])
{
	static const char label[] = "rctd-pairing-verifier-v1";
	crypto_generichash_state st;
	uint8_t len = (uint8_t)strlen(id);

	crypto_generichash_init(&st, d->has_psk ? d->psk : NULL, d->has_psk ? RCT_PSK_LEN : 0,
				RCTD_VERIFIER_LEN);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_generichash_update(&st, &len, 1);
	crypto_generichash_update(&st, (const uint8_t *)id, len);
	crypto_generichash_update(&st, key, RCT_IPC_PAIRING_KEY_LEN);
	crypto_generichash_final(&st, out, RCTD_VERIFIER_LEN);
	sodium_memzero(&st, sizeof(st));
}

static bool hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t bin_len = 0;

	return sodium_hex2bin(out, len, hex, strlen(hex), NULL, &bin_len, NULL) == 0 &&
	       bin_len == len;
}

int rctd_state_read(const struct rctd *d, const char *id, struct rctd_pairing_state *st)
{
	char path[4096], line[160], hex[2 * RCTD_VERIFIER_LEN + 2];
	FILE *f;

	st->generation = 0;
	st->last_committed = UINT64_MAX;
	st->demoted = UINT64_MAX;
	st->found = false;
	st->has_verifier = false;
	snprintf(path, sizeof(path), "%s/%s.state", d->cfg.state_dir, id);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "generation %llu", &v) == 1)
			st->generation = v;
		else if (sscanf(line, "last_committed_epoch %llu", &v) == 1)
			st->last_committed = v;
		else if (sscanf(line, "demoted_at_generation %llu", &v) == 1)
			st->demoted = v;
		else if (sscanf(line, "key_verifier %33s", hex) == 1)
			st->has_verifier = hex_decode(hex, st->verifier, RCTD_VERIFIER_LEN);
	}
	fclose(f);
	st->found = true;
	return 0;
}

int rctd_state_write(const struct rctd *d, const char *id, const struct rctd_pairing_state *st,
		     bool durable)
{
	char path[4096], tmp[4096], text[400], epoch[32], demoted[48] = "", verifier[64] = "";
	int fd, len, err = 0;

	snprintf(path, sizeof(path), "%s/%s.state", d->cfg.state_dir, id);
	snprintf(tmp, sizeof(tmp), "%s/.%s.state.tmp", d->cfg.state_dir, id);
	if (st->last_committed == UINT64_MAX)
		snprintf(epoch, sizeof(epoch), "none");
	else
		snprintf(epoch, sizeof(epoch), "%" PRIu64, st->last_committed);
	if (st->demoted != UINT64_MAX)
		snprintf(demoted, sizeof(demoted), "demoted_at_generation %" PRIu64 "\n",
			 st->demoted);
	if (st->has_verifier) {
		char hex[2 * RCTD_VERIFIER_LEN + 1];

		sodium_bin2hex(hex, sizeof(hex), st->verifier, RCTD_VERIFIER_LEN);
		snprintf(verifier, sizeof(verifier), "key_verifier %s\n", hex);
	}
	len = snprintf(text, sizeof(text),
		       "# rctd pairing state: written whole by rctd, do not edit while it runs\n"
		       "pairing %s\ngeneration %" PRIu64 "\nlast_committed_epoch %s\n%s%s",
		       id, st->generation, epoch, demoted, verifier);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)len) != len || (durable && fsync(fd)))
		err = errno ? -errno : -EIO;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	if (durable) {
		int dfd = open(d->cfg.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

int rctd_state_dir_init(const struct rctd *d)
{
	struct stat sb;

	if (mkdir(d->cfg.state_dir, 0700) && errno != EEXIST)
		return -errno;
	if (stat(d->cfg.state_dir, &sb))
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	return access(d->cfg.state_dir, W_OK) ? -errno : 0;
}

/*
 * The flush mark: STATE_DIR/ID.flush, one line that rctd rewrites in place
 * through a shared mapping of the file, "flushing E" before a flush of epoch
 * E copies the colo cache into guest RAM and "flushed E" after it.  A store
 * into a page-cache page outlives the process that made it: when rctd dies
 * (or its SIGBUS guard ends the session) in the middle of the copy, the file
 * still says "flushing", and the guest RAM it was writing holds part of two
 * epochs: no failover image until a flush completes again (a resync).  It is
 * not fsynced: a crash of the host loses the guest RAM the mark is about too.
 */

int rctd_flush_mark_open(const struct rctd *d, const char *id, char **mark_p)
{
	char path[4096];
	struct stat sb;
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s.flush", d->cfg.state_dir, id);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) ||
	    (sb.st_size < RCTD_FLUSH_MARK_LEN && ftruncate(fd, RCTD_FLUSH_MARK_LEN))) {
		int err = -errno;

		close(fd);
		return err;
	}
	p = mmap(NULL, RCTD_FLUSH_MARK_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	*mark_p = p;
	return 0;
}

void rctd_flush_mark_set(char *mark, bool flushing, uint64_t epoch)
{
	char line[RCTD_FLUSH_MARK_LEN];

	memset(line, ' ', sizeof(line));
	if (epoch == UINT64_MAX)
		snprintf(line, sizeof(line), "%s none", flushing ? "flushing" : "flushed");
	else
		snprintf(line, sizeof(line), "%s %" PRIu64, flushing ? "flushing" : "flushed",
			 epoch);
	line[strlen(line)] = '\n';
	memcpy(mark, line, sizeof(line));
}

void rctd_flush_mark_close(char *mark)
{
	if (mark)
		munmap(mark, RCTD_FLUSH_MARK_LEN);
}

int rctd_flush_mark_read(const struct rctd *d, const char *id, uint64_t *torn_p)
{
	char path[4096], text[RCTD_FLUSH_MARK_LEN + 1] = "";
	unsigned long long e;
	ssize_t n;
	int fd;

	*torn_p = UINT64_MAX;
	snprintf(path, sizeof(path), "%s/%s.flush", d->cfg.state_dir, id);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = pread(fd, text, RCTD_FLUSH_MARK_LEN, 0);
	close(fd);
	if (n < 0)
		return -errno;
	/* Anything but a finished flush (or an empty, new file) is torn. */
	if (!strncmp(text, "flushed ", 8) || !text[0])
		return 0;
	*torn_p = sscanf(text, "flushing %llu", &e) == 1 ? e : UINT64_MAX - 1;
	return 0;
}

int rctd_flush_mark_remove(const struct rctd *d, const char *id)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s.flush", d->cfg.state_dir, id);
	return unlink(path) && errno != ENOENT ? -errno : 0;
}
