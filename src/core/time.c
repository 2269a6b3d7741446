/* time.c — UTC nanosecond time: clocks, RFC 3339 and epoch parsing, formatting.
 * Parsing is done here (not strptime) because strptime knows neither fractions
 * nor offsets portably, and every accepted form must map to exactly one instant. */
#include "core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t am_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * AM_NS_PER_S + t.tv_nsec;
}

int64_t am_mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * AM_NS_PER_S + t.tv_nsec;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* secs * 1e9 + frac_ns as int64 ns, when the UTC instant fits (1677-09-21 ..
 * 2262-04-11) and is not AM_TS_NONE. Checked on the instant, not on the local date
 * the client wrote, so whatever is accepted formats to a text accepted again. */
static int to_ns(int64_t secs, int64_t frac_ns, int64_t *out) {
    int64_t ns;
    if (secs < 0 && frac_ns > 0) { /* keep the product in range near the low end */
        secs += 1;
        frac_ns -= AM_NS_PER_S;
    }
    if (__builtin_mul_overflow(secs, AM_NS_PER_S, &ns) || __builtin_add_overflow(ns, frac_ns, &ns) ||
        ns == AM_TS_NONE)
        return 0;
    *out = ns;
    return 1;
}

static int days_in_month(int y, int m) {
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* Reads exactly n digits at s[*i]; -1 when they are not all digits. */
static int digits(const char *s, size_t len, size_t *i, int n) {
    int v = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

static int expect(const char *s, size_t len, size_t *i, char c) {
    if (*i >= len || s[*i] != c)
        return 0;
    (*i)++;
    return 1;
}

am_rc am_time_parse_rfc3339(const char *s, size_t len, int64_t *ts_ns, int *offset_min) {
    size_t i = 0;
    int y = digits(s, len, &i, 4);
    if (y < 0 || !expect(s, len, &i, '-'))
        return AM_EINVAL;
    int mo = digits(s, len, &i, 2);
    if (mo < 1 || mo > 12 || !expect(s, len, &i, '-'))
        return AM_EINVAL;
    int d = digits(s, len, &i, 2);
    if (d < 1 || d > days_in_month(y, mo))
        return AM_EINVAL;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return AM_EINVAL;
    i++;
    int h = digits(s, len, &i, 2);
    if (h < 0 || h > 23 || !expect(s, len, &i, ':'))
        return AM_EINVAL;
    int mi = digits(s, len, &i, 2);
    if (mi < 0 || mi > 59 || !expect(s, len, &i, ':'))
        return AM_EINVAL;
    int sec = digits(s, len, &i, 2);
    if (sec < 0 || sec > 60) /* 60: a leap second, folded into the next minute */
        return AM_EINVAL;
    int64_t frac_ns = 0;
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        i++;
        int nd = 0;
        int64_t scale = 100000000;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (nd < 9) {
                frac_ns += (s[i] - '0') * scale;
                scale /= 10;
            }
            nd++;
            i++;
        }
        if (nd == 0 || nd > 18)
            return AM_EINVAL;
    }
    int off = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        int oh = digits(s, len, &i, 2);
        if (oh < 0 || oh > 23)
            return AM_EINVAL;
        expect(s, len, &i, ':'); /* "+0100" is common enough to accept */
        int om = digits(s, len, &i, 2);
        if (om < 0 || om > 59)
            return AM_EINVAL;
        off = sign * (oh * 60 + om);
    } else {
        return AM_EINVAL; /* a time without a zone names no instant */
    }
    if (i != len)
        return AM_EINVAL;
    /* int64 ns covers 1677-09-21 .. 2262-04-11; keep to whole years inside. */
    if (y < 1677 || y > 2262)
        return AM_EINVAL;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
                   sec - (int64_t)off * 60;
    if (!to_ns(secs, frac_ns, ts_ns))
        return AM_EINVAL;
    if (offset_min)
        *offset_min = off;
    return AM_OK;
}

static am_rc scale_integer(int64_t v, int64_t *ts_ns) {
    int64_t a = v == INT64_MIN ? INT64_MAX : (v < 0 ? -v : v);
    int64_t mul;
    if (a < 100000000000LL)
        mul = AM_NS_PER_S; /* seconds up to year 5138 */
    else if (a < 100000000000000LL)
        mul = 1000000; /* milliseconds */
    else if (a < 100000000000000000LL)
        mul = 1000; /* microseconds */
    else
        mul = 1;
    if (mul > 1 && (v > INT64_MAX / mul || v < INT64_MIN / mul))
        return AM_EINVAL;
    int64_t ns = v * mul;
    if (ns == AM_TS_NONE)
        return AM_EINVAL;
    *ts_ns = ns;
    return AM_OK;
}

am_rc am_time_from_epoch(double v, int is_integer, int64_t iv, int64_t *ts_ns) {
    if (is_integer)
        return scale_integer(iv, ts_ns);
    if (!isfinite(v))
        return AM_EINVAL;
    if (fabs(v) < 1e11) {
        double ns = v * 1e9;
        if (ns >= 9.2e18 || ns <= -9.2e18)
            return AM_EINVAL;
        *ts_ns = (int64_t)llround(ns);
        return AM_OK;
    }
    if (fabs(v) >= 9.2e18 || v != floor(v))
        return AM_EINVAL;
    return scale_integer((int64_t)v, ts_ns);
}

am_rc am_time_from_string(const char *s, int64_t *ts_ns) {
    size_t len = strlen(s);
    if (len == 0 || len > 64)
        return AM_EINVAL;
    size_t i = (s[0] == '-') ? 1 : 0;
    int all_digits = i < len, dot = 0;
    for (size_t k = i; k < len; k++) {
        if (s[k] == '.' && !dot)
            dot = 1;
        else if (s[k] < '0' || s[k] > '9')
            all_digits = 0;
    }
    if (all_digits && !dot) {
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno || *end)
            return AM_EINVAL;
        return scale_integer(v, ts_ns);
    }
    if (all_digits && dot && s[len - 1] != '.') {
        /* "<seconds>.<fraction>": exact, where a double would round away nanoseconds. */
        errno = 0;
        char *end;
        long long secs = strtoll(s, &end, 10);
        if (errno || *end != '.' || end == s || (s[0] == '-' && end == s + 1))
            return AM_EINVAL;
        if (secs > INT64_MAX / AM_NS_PER_S - 1 || secs < INT64_MIN / AM_NS_PER_S + 1 ||
            llabs(secs) >= 100000000000LL)
            return AM_EINVAL;
        int64_t frac = 0, scale = 100000000;
        for (const char *p = end + 1; *p; p++, scale /= 10)
            frac += (*p - '0') * scale;
        return to_ns(secs, s[0] == '-' ? -frac : frac, ts_ns) ? AM_OK : AM_EINVAL;
    }
    return am_time_parse_rfc3339(s, len, ts_ns, NULL);
}

am_rc am_time_from_json(const json_t *v, int64_t *ts_ns, int *offset_min) {
    if (offset_min)
        *offset_min = 0;
    if (json_is_integer(v))
        return am_time_from_epoch(0, 1, json_integer_value(v), ts_ns);
    if (json_is_real(v))
        return am_time_from_epoch(json_real_value(v), 0, 0, ts_ns);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len == 0 || len > 64 || strlen(s) != len)
            return AM_EINVAL;
        if (len > 10 && s[4] == '-')
            return am_time_parse_rfc3339(s, len, ts_ns, offset_min);
        return am_time_from_string(s, ts_ns);
    }
    return AM_EINVAL;
}

void am_time_format(int64_t ts_ns, char *out, size_t out_len) {
    int64_t secs = ts_ns / AM_NS_PER_S;
    int64_t ns = ts_ns % AM_NS_PER_S;
    if (ns < 0) {
        ns += AM_NS_PER_S;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)ns);
}
