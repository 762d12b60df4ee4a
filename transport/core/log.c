/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

int rct_log_level_cur = RCT_LOG_WARN;

/* The handler and its argument change together under the lock; emitting reads
 * both under it too (a log line is rare and slow anyway). */
static pthread_mutex_t rct_log_lock = PTHREAD_MUTEX_INITIALIZER;
static rct_log_handler_t rct_log_handler;
static void *rct_log_handler_arg;

static pthread_once_t rct_log_once = PTHREAD_ONCE_INIT;

static void rct_log_read_env(void)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	const char *env = getenv("RCT_LOG");

	if (!env)
		return;
	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(env, names[i])) {
			__atomic_store_n(&rct_log_level_cur, i, __ATOMIC_RELAXED);
			return;
		}
	}
	fprintf(stderr, "rct: RCT_LOG=%s is not one of error, warn, info, debug; ignored\n", env);
}

void rct_log_init(void)
{
	pthread_once(&rct_log_once, rct_log_read_env);
}

void rct_log_set_level(enum rct_log_level level)
{
	rct_log_init();
	if (level < RCT_LOG_ERROR || level > RCT_LOG_DEBUG)
		return;
	__atomic_store_n(&rct_log_level_cur, (int)level, __ATOMIC_RELAXED);
}

void rct_log_set_handler(rct_log_handler_t handler, void *arg)
{
	pthread_mutex_lock(&rct_log_lock);
	rct_log_handler = handler;
	rct_log_handler_arg = arg;
	pthread_mutex_unlock(&rct_log_lock);
}

void rct_log_emit(enum rct_log_level level, const char *file, int line, const char *fmt, ...)
{
	static const char tag[] = "EWID";
	const char *base = strrchr(file, '/');
	int saved_errno = errno; /* so that %m in fmt still means the caller's errno */
	rct_log_handler_t handler;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	errno = saved_errno;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&rct_log_lock);
	handler = rct_log_handler;
	if (handler)
		handler(level, base ? base + 1 : file, line, msg, rct_log_handler_arg);
	pthread_mutex_unlock(&rct_log_lock);
	/* One fprintf per line: stdio locks the stream, so lines never interleave. */
	if (!handler)
		fprintf(stderr, "rct %c %s:%d %s\n", tag[level], base ? base + 1 : file, line, msg);
	errno = saved_errno;
}
