/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging.  The level is checked before the arguments are formatted, so a
 * disabled debug line costs one load and a compare.  Log once, where the error
 * is first seen, naming the object ("lane 2", "region 7") and with %m or the
 * errno text.
 */
#ifndef RCT_LOG_H
#define RCT_LOG_H

#include <rct/rct.h>

extern int rct_log_level_cur;

void rct_log_init(void);
void rct_log_emit(enum rct_log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define rct_log(_lvl, _fmt, ...)                                                                   \
	do {                                                                                       \
		if ((int)(_lvl) <= rct_log_level_cur)                                              \
			rct_log_emit(_lvl, __FILE__, __LINE__, _fmt, ##__VA_ARGS__);               \
	} while (0)

#define rct_error(_fmt, ...) rct_log(RCT_LOG_ERROR, _fmt, ##__VA_ARGS__)
#define rct_warn(_fmt, ...)  rct_log(RCT_LOG_WARN, _fmt, ##__VA_ARGS__)
#define rct_info(_fmt, ...)  rct_log(RCT_LOG_INFO, _fmt, ##__VA_ARGS__)
#define rct_debug(_fmt, ...) rct_log(RCT_LOG_DEBUG, _fmt, ##__VA_ARGS__)

#endif /* RCT_LOG_H */
