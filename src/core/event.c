/* event.c — one client JSON object to a validated struct am_event, and back. */
#include "core.h"

#include <stdio.h>
#include <string.h>

void am_event_clear(struct am_event *e) {
    am_free(e->payload);
    memset(e, 0, sizeof *e);
    e->ts_end_ns = AM_TS_NONE;
}

am_rc am_event_list_push(struct am_event_list *l, struct am_event *e) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct am_event *p = am_realloc(l->items, cap * sizeof *p);
        if (!p)
            return AM_ENOMEM;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = *e;
    e->payload = NULL;
    return AM_OK;
}

void am_event_list_free(struct am_event_list *l) {
    for (size_t i = 0; i < l->n; i++)
        am_free(l->items[i].payload);
    am_free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* A short printable string: no control characters, bounded length. */
static int plain_string(const json_t *v, size_t max_len) {
    if (!json_is_string(v))
        return 0;
    size_t len = json_string_length(v);
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    if (len == 0 || len > max_len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

#define REJECT(...)                                                                                \
    do {                                                                                           \
        snprintf(reason, reason_len, __VA_ARGS__);                                                 \
        rc = AM_EINVAL;                                                                            \
        goto fail;                                                                                 \
    } while (0)

/* The members a client may send; the read-only ones an answer carries are ignored
 * so that exported events can be posted again. */
static int known_member(const char *k) {
    static const char *names[] = {"stream", "ts", "ts_end", "source", "payload", "blob", "key",
                                  "trace", "id", "ts_ns", "ts_end_ns", "received_ns"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(k, names[i]) == 0)
            return 1;
    return 0;
}

static void derive_key(struct am_event *e) {
    struct am_sha256 h;
    uint8_t d[32];
    char num[64];
    am_sha256_init(&h);
    int n = snprintf(num, sizeof num, "%lld", (long long)e->user_id);
    am_sha256_update(&h, num, (size_t)n + 1);
    am_sha256_update(&h, e->stream, strlen(e->stream) + 1);
    am_sha256_update(&h, e->source, strlen(e->source) + 1);
    n = snprintf(num, sizeof num, "%lld/%lld", (long long)e->ts_ns, (long long)e->ts_end_ns);
    am_sha256_update(&h, num, (size_t)n + 1);
    am_sha256_update(&h, e->blob, strlen(e->blob) + 1);
    am_sha256_update(&h, e->payload, e->payload_len);
    am_sha256_final(&h, d);
    am_hex(d, 32, e->key);
}

am_rc am_event_from_json(const json_t *obj, int64_t user_id, const struct am_limits *lim,
                         struct am_event *out, char *reason, size_t reason_len) {
    am_rc rc = AM_OK;
    json_t *payload_copy = NULL;
    memset(out, 0, sizeof *out);
    out->ts_end_ns = AM_TS_NONE;
    out->user_id = user_id;
    reason[0] = '\0';

    if (!json_is_object(obj))
        REJECT("an event must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (!known_member(k))
            REJECT("unknown member '%.40s' (members: stream, ts, ts_end, source, payload, blob, "
                   "key, trace)",
                   k);
    }

    v = json_object_get(obj, "stream");
    if (!v)
        REJECT("stream: required");
    if (!json_is_string(v) || !am_stream_name_valid(json_string_value(v), json_string_length(v)))
        REJECT("stream: must look like 'category.kind' in lowercase letters, digits, '_' or '-', "
               "at most %d characters",
               AM_STREAM_MAX);
    memcpy(out->stream, json_string_value(v), json_string_length(v) + 1);
    if (strncmp(out->stream, "custom.", 7) != 0 && !am_catalog_find(out->stream))
        REJECT("stream '%s' is not in the catalog (use custom.* for your own)", out->stream);

    int offset_min = 0;
    v = json_object_get(obj, "ts");
    if (v) {
        if (am_time_from_json(v, &out->ts_ns, &offset_min) != AM_OK)
            REJECT("ts: not an RFC 3339 time or an epoch number in s, ms, us or ns");
    } else if ((v = json_object_get(obj, "ts_ns")) && json_is_integer(v) &&
               json_integer_value(v) != AM_TS_NONE) {
        out->ts_ns = json_integer_value(v);
    } else {
        REJECT("ts: required");
    }

    v = json_object_get(obj, "ts_end");
    if (!v || json_is_null(v))
        v = json_object_get(obj, "ts_end_ns");
    if (v && !json_is_null(v)) {
        if (json_is_integer(v) && json_object_get(obj, "ts_end_ns") == v)
            out->ts_end_ns = json_integer_value(v);
        else if (am_time_from_json(v, &out->ts_end_ns, NULL) != AM_OK)
            REJECT("ts_end: not an RFC 3339 time or an epoch number");
        if (out->ts_end_ns < out->ts_ns)
            REJECT("ts_end: before ts");
    }

    v = json_object_get(obj, "source");
    if (v && !json_is_null(v)) {
        if (!plain_string(v, AM_SOURCE_MAX))
            REJECT("source: must be a string of 1..%d printable characters", AM_SOURCE_MAX);
        memcpy(out->source, json_string_value(v), json_string_length(v) + 1);
    } else {
        memcpy(out->source, "api", 4);
    }

    v = json_object_get(obj, "blob");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) != AM_BLOB_HEX)
            REJECT("blob: must be the SHA-256 of an uploaded blob, 64 hex digits");
        for (size_t i = 0; i < AM_BLOB_HEX; i++) {
            char c = json_string_value(v)[i];
            out->blob[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
        }
        out->blob[AM_BLOB_HEX] = '\0';
        if (!am_is_hex(out->blob, AM_BLOB_HEX))
            REJECT("blob: must be the SHA-256 of an uploaded blob, 64 hex digits");
    }

    v = json_object_get(obj, "trace");
    if (v && !json_is_null(v)) {
        if (!plain_string(v, AM_TRACE_MAX))
            REJECT("trace: must be a W3C traceparent of at most %d characters", AM_TRACE_MAX);
        memcpy(out->trace, json_string_value(v), json_string_length(v) + 1);
    }

    v = json_object_get(obj, "payload");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v))
            REJECT("payload: must be an object");
        if (lim && lim->max_depth && am_json_depth(v) + 2 > lim->max_depth)
            REJECT("payload: nested deeper than %zu levels", lim->max_depth);
    }
    {
        /* A missing payload is an empty one: required fields still apply. */
        json_t *empty = NULL;
        const json_t *check = v && !json_is_null(v) ? v : (empty = json_object());
        am_rc vr = check ? am_catalog_validate(out->stream, check, reason, reason_len) : AM_ENOMEM;
        json_decref(empty);
        if (vr != AM_OK) {
            rc = vr;
            goto fail;
        }
    }
    /* Keep the client's own UTC offset: "what time was it for them" matters later. */
    if (offset_min != 0 && !(v && json_object_get(v, "tz_offset_min"))) {
        payload_copy = v && !json_is_null(v) ? json_deep_copy(v) : json_object();
        if (!payload_copy || json_object_set_new(payload_copy, "tz_offset_min",
                                                 json_integer(offset_min))) {
            rc = AM_ENOMEM;
            goto fail;
        }
        v = payload_copy;
    }
    if (v && !json_is_null(v))
        out->payload = am_json_dump(v, &out->payload_len);
    else
        out->payload = am_strdup("{}"), out->payload_len = 2;
    if (!out->payload) {
        rc = AM_ENOMEM;
        goto fail;
    }
    if (lim && lim->max_payload_bytes && out->payload_len > lim->max_payload_bytes)
        REJECT("payload: larger than %zu bytes", lim->max_payload_bytes);

    v = json_object_get(obj, "key");
    if (v && !json_is_null(v)) {
        if (!plain_string(v, AM_KEY_MAX))
            REJECT("key: must be a string of 1..%d printable characters", AM_KEY_MAX);
        memcpy(out->key, json_string_value(v), json_string_length(v) + 1);
    } else {
        derive_key(out);
    }
    out->received_ns = am_now_ns();
    json_decref(payload_copy);
    return AM_OK;

fail:
    json_decref(payload_copy);
    am_free(out->payload);
    out->payload = NULL;
    am_utf8_clean(reason); /* "%.40s" of a member name may cut a character in half */
    if (rc == AM_ENOMEM && reason[0] == '\0')
        snprintf(reason, reason_len, "out of memory");
    return rc;
}

json_t *am_event_to_json(const struct am_event *e) {
    char ts[48];
    json_t *payload = NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_error_t je;
    payload = json_loadb(e->payload ? e->payload : "{}", e->payload ? e->payload_len : 2, 0, &je);
    if (!payload)
        goto fail;
    am_time_format(e->ts_ns, ts, sizeof ts);
    if (json_object_set_new(o, "id", json_integer(e->id)) ||
        json_object_set_new(o, "stream", json_string(e->stream)) ||
        json_object_set_new(o, "source", json_string(e->source)) ||
        json_object_set_new(o, "ts", json_string(ts)) ||
        json_object_set_new(o, "ts_ns", json_integer(e->ts_ns)))
        goto fail;
    if (e->ts_end_ns != AM_TS_NONE) {
        am_time_format(e->ts_end_ns, ts, sizeof ts);
        if (json_object_set_new(o, "ts_end", json_string(ts)) ||
            json_object_set_new(o, "ts_end_ns", json_integer(e->ts_end_ns)))
            goto fail;
    }
    if (json_object_set_new(o, "payload", payload))
        goto fail_payload_taken;
    payload = NULL;
    if (e->blob[0] && json_object_set_new(o, "blob", json_string(e->blob)))
        goto fail;
    if (json_object_set_new(o, "key", json_string(e->key)))
        goto fail;
    if (e->trace[0] && json_object_set_new(o, "trace", json_string(e->trace)))
        goto fail;
    if (json_object_set_new(o, "received_ns", json_integer(e->received_ns)))
        goto fail;
    return o;
fail:
    json_decref(payload);
fail_payload_taken:
    json_decref(o);
    return NULL;
}
