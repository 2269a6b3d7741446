/* http_events.c — POST/GET /v1/events, GET /v1/events/{id}, /v1/timeline, /v1/streams. */
#include "http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int content_is_ndjson(struct mg_connection *c, int *ok) {
    const char *ct = mg_get_header(c, "Content-Type");
    *ok = 1;
    if (!ct || !*ct)
        return 0;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
#define IS(s) (n == strlen(s) && strncasecmp(ct, s, n) == 0)
    /* curl -d sends form-urlencoded by default; its body is still our JSON. */
    if (IS("application/json") || IS("text/json") || IS("application/x-www-form-urlencoded"))
        return 0;
    if (IS("application/x-ndjson") || IS("application/ndjson") || IS("application/jsonl") ||
        IS("application/x-jsonlines") || IS("application/jsonlines"))
        return 1;
#undef IS
    *ok = 0;
    return 0;
}

void http_events_post(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    const struct am_config *cfg = &h->srv->cfg;
    int ok;
    int ndjson = content_is_ndjson(c, &ok);
    if (!ok) {
        http_problem(c, 415, "unsupported-media-type",
                     "send application/json (an array or one event) or application/x-ndjson");
        return;
    }
    struct am_buf body;
    if (!http_read_body(c, (size_t)cfg->max_body_bytes, &body))
        return;
    struct am_limits lim = {(size_t)cfg->max_json_depth, (size_t)cfg->max_payload_bytes};
    struct am_batch b;
    char err[256];
    am_rc rc = am_batch_parse(&b, body.data, body.len, ndjson, a->user_id, &lim,
                              (size_t)cfg->max_batch_events, mg_get_header(c, "traceparent"), err,
                              sizeof err);
    am_buf_free(&body);
    if (rc == AM_ELIMIT && strstr(err, "deeper")) {
        http_problem(c, 400, "too-deep", "%s", err);
        return;
    }
    if (rc == AM_ELIMIT) {
        http_problem(c, 413, "too-large", "%s", err);
        return;
    }
    if (rc == AM_ENOMEM) {
        http_problem(c, 503, "unavailable", "out of memory; nothing was stored, retry");
        return;
    }
    if (rc) {
        http_problem(c, 400, "malformed", "%s", err);
        return;
    }
    rc = am_batch_submit(h->srv, a->user_id, &b);
    if (rc) {
        http_problem(c, rc == AM_ECLOSED ? 503 : 500, rc == AM_ECLOSED ? "unavailable" : "internal",
                     "store: %s; nothing of this request was acknowledged, retry",
                     am_strerror(rc));
        am_batch_free(&b);
        return;
    }
    size_t rejected = b.n_items - b.n_evs;
    for (size_t i = 0; i < b.n_evs; i++)
        rejected += b.res[b.index[i]].status == AM_ITEM_REJECTED;
    if (h->srv->metrics)
        am_metrics_rejected(h->srv->metrics, b.n_items - b.n_evs);
    json_t *res = am_batch_results_json(&b);
    size_t n = b.n_items;
    am_batch_free(&b);
    if (!res) {
        http_problem(c, 500, "internal", "out of memory building the answer (events are stored)");
        return;
    }
    if (rejected == n)
        http_problem_with(c, 422, "rejected", res, "every event was rejected; see results");
    else
        http_json(c, rejected ? 207 : 200, res);
}

/* Cursor: base64url of "<ts_ns>:<id>"; opaque to clients. */
static void cursor_make(int64_t ts_ns, int64_t id, char *out, size_t out_len) {
    char raw[64];
    int n = snprintf(raw, sizeof raw, "%lld:%lld", (long long)ts_ns, (long long)id);
    am_b64url_encode((const uint8_t *)raw, (size_t)n, out, out_len);
}

static int cursor_parse(const char *s, int64_t *ts_ns, int64_t *id) {
    uint8_t raw[64];
    long n = am_b64url_decode(s, strlen(s), raw, sizeof raw - 1);
    if (n <= 0)
        return 0;
    raw[n] = '\0';
    char *colon = strchr((char *)raw, ':');
    if (!colon)
        return 0;
    *colon = '\0';
    errno = 0;
    char *end;
    long long t = strtoll((char *)raw, &end, 10);
    if (errno || *end || end == (char *)raw)
        return 0;
    long long i = strtoll(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1)
        return 0;
    *ts_ns = t;
    *id = i;
    return 1;
}

void http_events_list(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                      int timeline) {
    char stream[AM_STREAM_MAX + 2] = "", source[AM_SOURCE_MAX + 2] = "", from[80] = "",
         to[80] = "", limit[24] = "", order[8] = "", cursor[128] = "";
    struct am_query q;
    memset(&q, 0, sizeof q);
    q.from_ns = q.to_ns = AM_TS_NONE;
    q.limit = 100;
    /* A value too long for its buffer is an error, never silently dropped. */
    struct {
        const char *name;
        char *buf;
        size_t len;
    } params[] = {{"stream", stream, sizeof stream}, {"source", source, sizeof source},
                  {"from", from, sizeof from},       {"to", to, sizeof to},
                  {"limit", limit, sizeof limit},    {"order", order, sizeof order},
                  {"cursor", cursor, sizeof cursor}};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        if (http_param(c, params[i].name, params[i].buf, params[i].len) < 0) {
            http_problem(c, 400, "malformed", "%s: too long", params[i].name);
            return;
        }
    }
    if (!timeline && http_param(c, "stream", stream, sizeof stream) == 1 && stream[0]) {
        if (!am_stream_name_valid(stream, strlen(stream))) {
            http_problem(c, 400, "malformed", "stream: not a stream name");
            return;
        }
        q.stream = stream;
    }
    if (http_param(c, "source", source, sizeof source) == 1 && source[0])
        q.source = source;
    if (http_param(c, "from", from, sizeof from) == 1 && from[0] &&
        am_time_from_string(from, &q.from_ns) != AM_OK) {
        http_problem(c, 400, "malformed", "from: not an RFC 3339 time or epoch number");
        return;
    }
    if (http_param(c, "to", to, sizeof to) == 1 && to[0] &&
        am_time_from_string(to, &q.to_ns) != AM_OK) {
        http_problem(c, 400, "malformed", "to: not an RFC 3339 time or epoch number");
        return;
    }
    if (http_param(c, "limit", limit, sizeof limit) == 1 && limit[0]) {
        char *end;
        errno = 0;
        long long l = strtoll(limit, &end, 10);
        if (errno || *end || l < 1 || l > 10000) {
            http_problem(c, 400, "malformed", "limit: an integer in 1..10000");
            return;
        }
        q.limit = (size_t)l;
    }
    if (http_param(c, "order", order, sizeof order) == 1 && order[0]) {
        if (strcmp(order, "desc") == 0)
            q.descending = 1;
        else if (strcmp(order, "asc") != 0) {
            http_problem(c, 400, "malformed", "order: asc or desc");
            return;
        }
    }
    if (http_param(c, "cursor", cursor, sizeof cursor) == 1 && cursor[0]) {
        if (!cursor_parse(cursor, &q.after_ts_ns, &q.after_id)) {
            http_problem(c, 400, "malformed", "cursor: not a cursor this server gave");
            return;
        }
        q.has_cursor = 1;
    }
    /* One row more than asked tells whether another page exists. */
    size_t want = q.limit;
    q.limit = want + 1;
    struct am_event_list list = {0};
    struct am_store *s = &h->srv->store;
    am_rc rc = s->ops->query(s->impl, a->user_id, &q, &list);
    if (rc) {
        http_problem(c, 503, "unavailable", "store: %s", am_strerror(rc));
        return;
    }
    json_t *arr = json_array();
    json_t *out = json_object();
    if (!arr || !out)
        goto oom;
    for (size_t i = 0; i < list.n && i < want; i++) {
        json_t *e = am_event_to_json(&list.items[i]);
        if (!e || json_array_append_new(arr, e))
            goto oom;
    }
    if (json_object_set(out, "events", arr))
        goto oom;
    if (list.n > want) {
        char cur[128];
        const struct am_event *last = &list.items[want - 1];
        cursor_make(last->ts_ns, last->id, cur, sizeof cur);
        if (json_object_set_new(out, "next_cursor", json_string(cur)))
            goto oom;
    }
    json_decref(arr);
    am_event_list_free(&list);
    http_json(c, 200, out);
    return;
oom:
    json_decref(arr);
    json_decref(out);
    am_event_list_free(&list);
    http_problem(c, 503, "unavailable", "out of memory");
}

void http_event_get(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                    const char *id_s) {
    char *end;
    errno = 0;
    long long id = strtoll(id_s, &end, 10);
    if (errno || *end || end == id_s || id <= 0) {
        http_problem(c, 404, "not-found", "no event %.40s", id_s);
        return;
    }
    struct am_event e;
    memset(&e, 0, sizeof e);
    struct am_store *s = &h->srv->store;
    am_rc rc = s->ops->get_event(s->impl, a->user_id, id, &e);
    if (rc == AM_ENOTFOUND) {
        http_problem(c, 404, "not-found", "no event %lld", id);
        return;
    }
    if (rc) {
        http_problem(c, 503, "unavailable", "store: %s", am_strerror(rc));
        return;
    }
    json_t *j = am_event_to_json(&e);
    am_free(e.payload);
    if (!j)
        http_problem(c, 503, "unavailable", "out of memory");
    else
        http_json(c, 200, j);
}

static int set_time(json_t *o, const char *name, const char *name_ns, int64_t ts) {
    char buf[48];
    if (ts == AM_TS_NONE)
        return json_object_set_new(o, name, json_null()) ||
               json_object_set_new(o, name_ns, json_null());
    am_time_format(ts, buf, sizeof buf);
    return json_object_set_new(o, name, json_string(buf)) ||
           json_object_set_new(o, name_ns, json_integer(ts));
}

static int add_stats(json_t *o, const struct am_stream_stat *st) {
    return json_object_set_new(o, "count", json_integer(st ? st->count : 0)) ||
           set_time(o, "first", "first_ns", st ? st->first_ts_ns : AM_TS_NONE) ||
           set_time(o, "last", "last_ns", st ? st->last_ts_ns : AM_TS_NONE) ||
           json_object_set_new(o, "last_received_ns",
                               st && st->last_received_ns ? json_integer(st->last_received_ns)
                                                          : json_null()) ||
           json_object_set_new(o, "rate_per_hour", json_integer(st ? st->count_last_hour : 0));
}

void http_streams(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    struct am_stream_stat *stats = NULL;
    size_t n_stats = 0, n_cat = 0;
    struct am_store *s = &h->srv->store;
    am_rc rc = s->ops->streams(s->impl, a->user_id, &stats, &n_stats);
    if (rc) {
        http_problem(c, 503, "unavailable", "store: %s", am_strerror(rc));
        return;
    }
    const struct am_stream_def *cat = am_catalog_all(&n_cat);
    json_t *arr = json_array();
    if (!arr)
        goto oom;
    for (size_t i = 0; i < n_cat; i++) {
        const struct am_stream_stat *st = NULL;
        for (size_t k = 0; k < n_stats; k++)
            if (strcmp(stats[k].stream, cat[i].name) == 0)
                st = &stats[k];
        json_t *o = am_catalog_to_json(&cat[i]);
        if (!o || json_array_append_new(arr, o) || add_stats(o, st))
            goto oom;
    }
    for (size_t k = 0; k < n_stats; k++) {
        if (am_catalog_find(stats[k].stream))
            continue;
        json_t *o = json_pack("{s:s, s:s, s:s, s:[]}", "name", stats[k].stream, "doc",
                              "custom stream", "retention", "raw-forever", "fields");
        if (!o || json_array_append_new(arr, o) || add_stats(o, &stats[k]))
            goto oom;
    }
    am_free(stats);
    http_json(c, 200, json_pack("{s:o}", "streams", arr));
    return;
oom:
    am_free(stats);
    json_decref(arr);
    http_problem(c, 503, "unavailable", "out of memory");
}
