/* http_aw_format.c — ActivityWatch's event shape ({timestamp, duration, data}) to AM events
 * and back, the bucket-type-to-stream mapping and the key that makes resends idempotent.
 * Nothing here touches a connection or the store, so fuzz/fuzz_aw.c calls it directly. */
#include "http_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void http_aw_stream(const char *type, char out[AM_STREAM_MAX + 1]) {
    if (strcmp(type, "currentwindow") == 0) {
        snprintf(out, AM_STREAM_MAX + 1, "desktop.window");
        return;
    }
    if (strcmp(type, "afkstatus") == 0) {
        snprintf(out, AM_STREAM_MAX + 1, "desktop.afk");
        return;
    }
    /* custom.aw_<type> with the type folded to the stream alphabet ([a-z0-9_]). */
    size_t n = (size_t)snprintf(out, AM_STREAM_MAX + 1, "custom.aw_");
    for (const char *p = type; *p && n < AM_STREAM_MAX; p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            ch = '_';
        out[n++] = ch;
    }
    if (n == 10)
        out[n++] = 'x'; /* an empty type */
    out[n] = '\0';
}

int http_aw_bucket_id_valid(const char *id, size_t len) {
    /* It becomes part of a source ("aw/<id>") and of a URL path: printable, no '/'. */
    if (len == 0 || len > HTTP_AW_BUCKET_MAX)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)id[i];
        if (ch < 0x80) {
            if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '\\')
                return 0;
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = am_utf8_decode((const unsigned char *)id + i, len - i, &cp);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

void http_aw_key(const char *bucket, int64_t start_ns, int64_t end_ns, char out[AM_KEY_MAX + 1]) {
    char s[32], e[32], hex[65];
    uint8_t sum[32];
    struct am_sha256 h;
    snprintf(s, sizeof s, "%lld", (long long)start_ns);
    snprintf(e, sizeof e, "%lld", (long long)end_ns);
    am_sha256_init(&h);
    am_sha256_update(&h, bucket, strlen(bucket) + 1);
    am_sha256_update(&h, s, strlen(s) + 1);
    am_sha256_update(&h, e, strlen(e) + 1);
    am_sha256_final(&h, sum);
    am_hex(sum, sizeof sum, hex);
    snprintf(out, AM_KEY_MAX + 1, "aw-%s", hex);
}

void http_aw_time_format(int64_t ts_ns, char *out, size_t out_len) {
    /* Microseconds and "+00:00": what every AW client's ISO 8601 parser reads. */
    int64_t s = ts_ns / AM_NS_PER_S, rem = ts_ns % AM_NS_PER_S;
    if (rem < 0)
        rem += AM_NS_PER_S, s--;
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, out_len, "1970-01-01T00:00:00.000000+00:00");
        return;
    }
    snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+00:00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)(rem / 1000));
}

am_rc http_aw_event_decode(const json_t *v, int64_t *start_ns, int64_t *end_ns, json_t **data,
                           char *err, size_t err_len) {
    if (!json_is_object(v)) {
        snprintf(err, err_len, "an event must be an object {timestamp, duration, data}");
        return AM_EINVAL;
    }
    const json_t *ts = json_object_get(v, "timestamp");
    if (!ts || am_time_from_json(ts, start_ns, NULL) != AM_OK) {
        snprintf(err, err_len, "timestamp: required, ISO 8601");
        return AM_EINVAL;
    }
    double dur = 0;
    const json_t *d = json_object_get(v, "duration");
    if (d && !json_is_null(d)) {
        if (!json_is_number(d) || !isfinite(json_number_value(d))) {
            snprintf(err, err_len, "duration: must be a number of seconds");
            return AM_EINVAL;
        }
        dur = json_number_value(d);
    }
    /* Negative durations happen (clock steps); AW treats them as zero-length. Ten years
     * bounds the arithmetic below. */
    if (dur < 0)
        dur = 0;
    if (dur > 3.2e8) {
        snprintf(err, err_len, "duration: more than ten years");
        return AM_EINVAL;
    }
    int64_t dur_ns = (int64_t)llround(dur * 1e9);
    if (*start_ns > INT64_MAX - dur_ns) {
        snprintf(err, err_len, "timestamp: out of range");
        return AM_EINVAL;
    }
    *end_ns = *start_ns + dur_ns;
    const json_t *dt = json_object_get(v, "data");
    if (dt && !json_is_null(dt) && !json_is_object(dt)) {
        snprintf(err, err_len, "data: must be an object");
        return AM_EINVAL;
    }
    *data = dt && !json_is_null(dt) ? json_incref((json_t *)dt) : json_object();
    if (!*data) {
        snprintf(err, err_len, "out of memory");
        return AM_ENOMEM;
    }
    return AM_OK;
}

am_rc http_aw_event_make(int64_t user_id, const char *bucket, const char *stream,
                         const struct am_limits *lim, int64_t start_ns, int64_t end_ns,
                         const json_t *data, struct am_event *out, char *err, size_t err_len) {
    char source[AM_SOURCE_MAX + 1], key[AM_KEY_MAX + 1], reason[200];
    snprintf(source, sizeof source, "aw/%s", bucket);
    http_aw_key(bucket, start_ns, end_ns, key);
    json_t *obj =
        json_pack("{s:s, s:I, s:I, s:s, s:s, s:O}", "stream", stream, "ts_ns", (json_int_t)start_ns,
                  "ts_end_ns", (json_int_t)end_ns, "source", source, "key", key, "payload", data);
    if (!obj) {
        snprintf(err, err_len, "out of memory");
        return AM_ENOMEM;
    }
    am_rc rc = am_event_from_json(obj, user_id, lim, out, reason, sizeof reason);
    json_decref(obj);
    if (rc)
        snprintf(err, err_len, "%s", reason);
    return rc;
}

am_rc http_aw_events_from_json(int64_t user_id, const char *bucket, const char *stream,
                               const struct am_limits *lim, size_t max_items, const json_t *v,
                               struct am_event_list *out, char *err, size_t err_len) {
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (max_items && n > max_items) {
        snprintf(err, err_len, "more than %zu events in one request", max_items);
        return AM_ELIMIT;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
        int64_t start, end;
        json_t *data = NULL;
        char why[200];
        struct am_event e;
        am_rc rc = http_aw_event_decode(item, &start, &end, &data, why, sizeof why);
        if (rc == AM_OK) {
            rc = http_aw_event_make(user_id, bucket, stream, lim, start, end, data, &e, why,
                                    sizeof why);
            json_decref(data);
        }
        if (rc == AM_OK) {
            rc = am_event_list_push(out, &e);
            am_free(e.payload);
            if (rc)
                snprintf(why, sizeof why, "out of memory");
        }
        if (rc) {
            if (json_is_array(v))
                snprintf(err, err_len, "event %zu: %s", i, why);
            else
                snprintf(err, err_len, "%s", why);
            am_utf8_clean(err);
            return rc;
        }
    }
    return AM_OK;
}

am_rc http_aw_events_parse(int64_t user_id, const char *bucket, const char *stream,
                           const struct am_limits *lim, size_t max_items, const char *buf,
                           size_t len, struct am_event_list *out, char *err, size_t err_len) {
    json_t *v = NULL;
    am_rc rc =
        am_json_parse(buf, len, lim && lim->max_depth ? lim->max_depth : 32, &v, err, err_len);
    if (rc)
        return rc;
    rc = http_aw_events_from_json(user_id, bucket, stream, lim, max_items, v, out, err, err_len);
    json_decref(v);
    return rc;
}

json_t *http_aw_event_json(int64_t id, int64_t start_ns, int64_t end_ns, const char *payload,
                           size_t payload_len) {
    char ts[48];
    json_error_t je;
    json_t *data = json_loadb(payload ? payload : "{}", payload ? payload_len : 2, 0, &je);
    if (!data || !json_is_object(data)) {
        json_decref(data);
        data = json_object();
    }
    http_aw_time_format(start_ns, ts, sizeof ts);
    double dur =
        end_ns == AM_TS_NONE || end_ns < start_ns ? 0.0 : (double)(end_ns - start_ns) / 1e9;
    return json_pack("{s:I, s:s, s:f, s:o}", "id", (json_int_t)id, "timestamp", ts, "duration", dur,
                     "data", data);
}
