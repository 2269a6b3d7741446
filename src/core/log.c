/* log.c — one-line log records on stderr: time, level, message. */
#include "core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int log_level = AM_LOG_INFO;

void am_log_set_level(enum am_log_level level) {
    atomic_store(&log_level, level);
}

int am_log_level_parse(const char *s, enum am_log_level *out) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum am_log_level)i;
            return 1;
        }
    }
    return 0;
}

void am_log(enum am_log_level level, const char *fmt, ...) {
    static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if ((int)level < atomic_load(&log_level))
        return;
    char ts[48], msg[1024];
    am_time_format(am_now_ns(), ts, sizeof ts);
    ts[23] = 'Z'; /* millisecond precision is enough in logs */
    ts[24] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One fprintf call per record so lines from threads do not interleave. */
    fprintf(stderr, "%s %-5s %s\n", ts, tags[level], msg);
}
