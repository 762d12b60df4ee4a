/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Peer authentication with a pre-shared key (docs/security.md).
 *
 * A challenge-response in both directions, before the secondary advertises
 * any region or remote key and before the primary sends any guest page:
 *
 *   primary                                       secondary
 *   HELLO(flags AUTH) ------------------------->  (both must hold a key)
 *   AUTH(CHALLENGE, Np) ----------------------->
 *                     <-------------------------  AUTH(PROVE_S, Ns, MAC(K, "secondary" | H | Np | Ns))
 *   AUTH(PROVE_P, MAC(K, "primary" | H | Np | Ns)) ->
 *                     <-------------------------  HELLO, REGION x n (remote keys)
 *
 * MAC is HMAC-SHA-256 (libsodium crypto_auth_hmacsha256), K the 32-byte key,
 * H the primary's HELLO exactly as sent (its encoding is canonical: a decoded
 * message re-encodes to the same bytes, which fuzz_proto checks), Np and Ns
 * 32 random bytes each.  The role labels keep a proof from being reflected;
 * fresh nonces on both sides keep it from being replayed.  Comparison is
 * constant-time (crypto_verify_32).
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "handshake.h"
#include "log.h"
#include "session.h"

#define RCT_PSK_FILE_MIN 32
#define RCT_PSK_FILE_MAX 4096

rct_status_t rct_auth_init(void)
{
	if (sodium_init() < 0) {
		rct_error("auth: libsodium failed to initialise");
		return RCT_ERR_SYSTEM;
	}
	return RCT_OK;
}

rct_status_t rct_psk_load(const char *path, uint8_t key_p[RCT_PSK_LEN])
{
	uint8_t buf[RCT_PSK_FILE_MAX + 1];
	struct stat sb;
	ssize_t n;
	size_t len = 0;
	int fd;

	rct_log_init();
	if (!path || !key_p)
		return RCT_ERR_INVALID_PARAM;
	if (rct_auth_init() != RCT_OK)
		return RCT_ERR_SYSTEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rct_error("key file '%s': %s", path, strerror(errno));
		return errno == ENOENT ? RCT_ERR_NOT_FOUND : RCT_ERR_INVALID_PARAM;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		rct_error("key file '%s': not a regular file", path);
		close(fd);
		return RCT_ERR_INVALID_PARAM;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		rct_error("key file '%s': mode %04o lets others read it; chmod 600 it", path,
			  (unsigned)(sb.st_mode & 07777));
		close(fd);
		return RCT_ERR_INVALID_PARAM;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rct_error("key file '%s': %s", path, strerror(errno));
			close(fd);
			sodium_memzero(buf, sizeof(buf));
			return RCT_ERR_SYSTEM;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len < RCT_PSK_FILE_MIN || len > RCT_PSK_FILE_MAX) {
		rct_error("key file '%s': %zu bytes; it must hold %d to %d (head -c 32 "
			  "/dev/urandom > FILE)",
			  path, len, RCT_PSK_FILE_MIN, RCT_PSK_FILE_MAX);
		sodium_memzero(buf, sizeof(buf));
		return RCT_ERR_INVALID_PARAM;
	}
	crypto_generichash(key_p, RCT_PSK_LEN, buf, len, NULL, 0);
	sodium_memzero(buf, sizeof(buf));
	return RCT_OK;
}

void rct_auth_pairing_key(const struct rct_session *s, const char *id, const uint8_t *key,
			  uint8_t out[RCT_PSK_LEN])
{
	static const uint8_t none[RCT_PSK_LEN];
	crypto_generichash_state st;
	uint8_t len = (uint8_t)strlen(id), has_key = key != NULL;

	/* Keyed with the host's pre-shared key (or none), so that the pairing
	 * key alone, or the host key alone, proves nothing of this pairing. */
	crypto_generichash_init(&st, s->auth.has_host_psk ? s->auth.host_psk : none, RCT_PSK_LEN,
				RCT_PSK_LEN);
	crypto_generichash_update(&st, (const uint8_t *)"rct-pairing-v1", 15);
	crypto_generichash_update(&st, &len, 1);
	crypto_generichash_update(&st, (const uint8_t *)id, len);
	crypto_generichash_update(&st, &has_key, 1);
	if (key)
		crypto_generichash_update(&st, key, RCT_PAIRING_KEY_LEN);
	crypto_generichash_final(&st, out, RCT_PSK_LEN);
	sodium_memzero(&st, sizeof(st));
}

/* MAC(K, label | hello | Np | Ns). */
static void rct_auth_mac(const struct rct_session *s, const char *label, uint8_t *mac)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, s->auth.psk, RCT_PSK_LEN);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label) + 1);
	crypto_auth_hmacsha256_update(&st, s->auth.hello, s->auth.hello_len);
	crypto_auth_hmacsha256_update(&st, s->auth.np, RCT_AUTH_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, s->auth.ns, RCT_AUTH_NONCE_LEN);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

/* Keep the primary's HELLO as it went on the wire: the MACs cover it. */
rct_status_t rct_auth_bind_hello(struct rct_session *s, const struct rct_msg *hello)
{
	return rct_msg_encode(hello, s->auth.hello, sizeof(s->auth.hello), &s->auth.hello_len);
}

/* Wait for AUTH step @step. */
static rct_status_t rct_auth_wait(struct rct_session *s, uint64_t deadline, unsigned step,
				  struct rct_msg *m)
{
	rct_status_t status = rct_session_wait_msg(s, deadline, RCT_MSG_AUTH, m);
	char text[80];

	if (status == RCT_OK && m->auth.step != step) {
		snprintf(text, sizeof(text), "AUTH: step %u where step %u was due", m->auth.step,
			 step);
		return rct_session_proto_error(s, RCT_ERR_PROTO, text);
	}
	return status;
}

rct_status_t rct_auth_primary(struct rct_session *s, uint64_t deadline)
{
	struct rct_msg m = {.type = RCT_MSG_AUTH};
	uint8_t mac[RCT_AUTH_MAC_LEN];
	rct_status_t status;

	randombytes_buf(s->auth.np, sizeof(s->auth.np));
	m.auth.step = RCT_AUTH_CHALLENGE;
	memcpy(m.auth.nonce, s->auth.np, sizeof(m.auth.nonce));
	status = rct_session_send(s, &m);
	if (status == RCT_OK)
		status = rct_auth_wait(s, deadline, RCT_AUTH_PROVE_S, &m);
	if (status != RCT_OK)
		return status;
	memcpy(s->auth.ns, m.auth.nonce, sizeof(s->auth.ns));
	rct_auth_mac(s, "rct-auth-v1 secondary", mac);
	if (crypto_verify_32(mac, m.auth.mac))
		return rct_session_proto_error(s, RCT_ERR_AUTH,
					       "the secondary's proof does not verify: it holds "
					       "another pre-shared key, or belongs to another "
					       "pairing (VM identity or pairing key); nothing was "
					       "sent to it");
	memset(&m, 0, sizeof(m));
	m.type = RCT_MSG_AUTH;
	m.auth.step = RCT_AUTH_PROVE_P;
	rct_auth_mac(s, "rct-auth-v1 primary", m.auth.mac);
	rct_info("auth: the secondary proved the pre-shared key");
	return rct_session_send(s, &m);
}

rct_status_t rct_auth_secondary(struct rct_session *s, uint64_t deadline)
{
	struct rct_msg m;
	uint8_t mac[RCT_AUTH_MAC_LEN];
	rct_status_t status;

	status = rct_auth_wait(s, deadline, RCT_AUTH_CHALLENGE, &m);
	if (status != RCT_OK)
		return status;
	memcpy(s->auth.np, m.auth.nonce, sizeof(s->auth.np));
	randombytes_buf(s->auth.ns, sizeof(s->auth.ns));
	memset(&m, 0, sizeof(m));
	m.type = RCT_MSG_AUTH;
	m.auth.step = RCT_AUTH_PROVE_S;
	memcpy(m.auth.nonce, s->auth.ns, sizeof(m.auth.nonce));
	rct_auth_mac(s, "rct-auth-v1 secondary", m.auth.mac);
	status = rct_session_send(s, &m);
	if (status == RCT_OK)
		status = rct_auth_wait(s, deadline, RCT_AUTH_PROVE_P, &m);
	if (status != RCT_OK)
		return status;
	rct_auth_mac(s, "rct-auth-v1 primary", mac);
	if (crypto_verify_32(mac, m.auth.mac))
		return rct_session_proto_error(
			s, RCT_ERR_AUTH,
			"the primary's proof does not verify: it holds "
			"another pre-shared key, or belongs to another pairing (VM "
			"identity or pairing key); no remote key was advertised");
	rct_info("auth: the primary proved the pre-shared key");
	return RCT_OK;
}

void rct_auth_live_keys(const struct rct_session *s, uint8_t *tx_key, uint8_t *rx_key)
{
	/* One key per direction, so that a beat cannot be reflected back at
	 * its sender, and per session through the nonces, so that no beat of
	 * another session or pairing verifies here. */
	uint8_t p[RCT_AUTH_MAC_LEN], sec[RCT_AUTH_MAC_LEN];

	rct_auth_mac(s, "rct-liveness-v1 primary", p);
	rct_auth_mac(s, "rct-liveness-v1 secondary", sec);
	memcpy(tx_key, s->role == RCT_ROLE_PRIMARY ? p : sec, RCT_AUTH_MAC_LEN);
	memcpy(rx_key, s->role == RCT_ROLE_PRIMARY ? sec : p, RCT_AUTH_MAC_LEN);
	sodium_memzero(p, sizeof(p));
	sodium_memzero(sec, sizeof(sec));
}
