/* http_aw.c — ActivityWatch's REST API (/api/0/...) so aw-watcher-window, aw-watcher-afk
 * and aw-client work against AM unchanged. The token comes as "Authorization: Bearer" or
 * in the path: /aw/<token>/api/0/... (AW clients let you set the server URL, not headers).
 *
 * Storage needs no new store operations:
 * - A bucket is an event of custom.aw_bucket (source "aw", payload = the bucket); the
 *   latest record for an id wins, and a record with "deleted": true hides the bucket.
 * - An AW event is a span of the bucket type's stream (currentwindow -> desktop.window,
 *   afkstatus -> desktop.afk, else custom.aw_<type>) with source "aw/<bucket>", payload =
 *   its data and key = hash(bucket, start, end).
 * - Stored events are immutable, so a heartbeat that extends the last event stores a new
 *   version of it: same bucket and start, a later end, its own key. Every acknowledged
 *   heartbeat is durable when it is answered (nothing is held in memory), a resent one
 *   dedupes, and readers of /api/0 see one event per (bucket, start): the version with
 *   the latest end. Readers of /v1/events see every version (docs/api.md says so). */
#include "http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AW_BUCKET_STREAM "custom.aw_bucket"
#define AW_PAGE 1000
#define AW_MAX_EVENTS 100000
/* Spans that began this long before a requested start are still looked for. */
#define AW_LOOKBACK_NS (7 * 24 * 3600 * AM_NS_PER_S)

struct aw_req {
    struct am_http *h;
    struct mg_connection *c;
    struct am_auth a;
};

static void problem_rc(struct mg_connection *c, am_rc rc, const char *what) {
    if (rc == AM_ENOTFOUND)
        http_problem(c, 404, "not-found", "%s", what);
    else if (rc == AM_EINVAL)
        http_problem(c, 400, "malformed", "%s", what);
    else if (rc == AM_ELIMIT)
        http_problem(c, 413, "too-large", "%s", what);
    else
        http_problem(c, 503, "unavailable", "%s: %s", what, am_strerror(rc));
}

/* ---------------------------------------------------------------- buckets */

/* Every live bucket of the user as {id: bucket}; caller owns. */
static am_rc buckets_load(struct am_http *h, int64_t user_id, json_t **out) {
    struct am_store *s = &h->srv->store;
    struct am_query q;
    am_rc rc = AM_OK;
    json_t *all = json_object();
    if (!all)
        return AM_ENOMEM;
    memset(&q, 0, sizeof q);
    q.stream = AW_BUCKET_STREAM;
    q.source = "aw";
    q.from_ns = q.to_ns = AM_TS_NONE;
    q.limit = AW_PAGE;
    for (;;) {
        struct am_event_list l = {0};
        rc = s->ops->query(s->impl, user_id, &q, &l);
        if (rc)
            break;
        for (size_t i = 0; i < l.n && rc == AM_OK; i++) {
            json_error_t je;
            json_t *b = json_loadb(l.items[i].payload, l.items[i].payload_len, 0, &je);
            const char *id = json_string_value(json_object_get(b, "id"));
            if (id && json_is_true(json_object_get(b, "deleted")))
                json_object_del(all, id);
            else if (id && json_object_set(all, id, b))
                rc = AM_ENOMEM;
            json_decref(b);
        }
        size_t n = l.n;
        if (n) {
            q.has_cursor = 1;
            q.after_ts_ns = l.items[n - 1].ts_ns;
            q.after_id = l.items[n - 1].id;
        }
        am_event_list_free(&l);
        if (rc || n < AW_PAGE)
            break;
    }
    if (rc)
        json_decref(all);
    else
        *out = all;
    return rc;
}

/* Appends one bucket record (the bucket itself, or its tombstone). */
static am_rc bucket_write(struct am_http *h, int64_t user_id, json_t *bucket) {
    char key[AM_KEY_MAX + 1], reason[200];
    int64_t now = am_now_ns();
    http_aw_key(json_string_value(json_object_get(bucket, "id")), now, now, key);
    key[1] = 'b'; /* "ab-": never equal to an event's key */
    json_t *obj = json_pack("{s:s, s:I, s:s, s:s, s:O}", "stream", AW_BUCKET_STREAM, "ts_ns",
                            (json_int_t)now, "source", "aw", "key", key, "payload", bucket);
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {(size_t)h->srv->cfg.max_json_depth,
                            (size_t)h->srv->cfg.max_payload_bytes};
    if (!obj)
        return AM_ENOMEM;
    am_rc rc = am_event_from_json(obj, user_id, &lim, &e, reason, sizeof reason);
    json_decref(obj);
    if (rc)
        return rc;
    rc = am_ingest_submit(h->srv, user_id, &e, 1, &res);
    am_free(e.payload);
    if (rc == AM_OK && res.status == AM_ITEM_REJECTED)
        rc = AM_EINVAL;
    return rc;
}

/* The bucket (borrowed from buckets) and its stream, or 404 answered. */
static const json_t *bucket_find(struct aw_req *r, json_t *buckets, const char *id,
                                 char stream[AM_STREAM_MAX + 1]) {
    const json_t *b = json_object_get(buckets, id);
    if (!b) {
        http_problem(r->c, 404, "not-found", "no bucket '%.120s'", id);
        return NULL;
    }
    const char *type = json_string_value(json_object_get(b, "type"));
    http_aw_stream(type ? type : "", stream);
    return b;
}

/* Creates the bucket from an AW bucket object unless it exists: 1 created, 0 existed. */
static am_rc bucket_create(struct am_http *h, int64_t user_id, json_t *buckets, const char *id,
                           const json_t *in, int *created) {
    *created = 0;
    if (json_object_get(buckets, id))
        return AM_OK;
    char now[48];
    const char *type = json_string_value(json_object_get(in, "type"));
    const char *client = json_string_value(json_object_get(in, "client"));
    const char *host = json_string_value(json_object_get(in, "hostname"));
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *created_at = json_string_value(json_object_get(in, "created"));
    json_t *data = json_object_get(in, "data");
    http_aw_time_format(am_now_ns(), now, sizeof now);
    json_t *b =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "id", id, "name", name ? name : id, "type",
                  type ? type : "unknown", "client", client ? client : "unknown", "hostname",
                  host ? host : "unknown", "created", created_at ? created_at : now, "data",
                  json_is_object(data) ? data : json_object());
    if (b && !json_is_object(data))
        json_decref(json_object_get(b, "data"));
    if (!b)
        return AM_ENOMEM;
    am_rc rc = bucket_write(h, user_id, b);
    if (rc == AM_OK && json_object_set(buckets, id, b))
        rc = AM_ENOMEM;
    json_decref(b);
    *created = rc == AM_OK;
    return rc;
}

/* ---------------------------------------------------------------- reading events */

struct aw_group {
    int have;
    int64_t start, end, id;
    char *payload;
    size_t payload_len;
};

struct aw_read {
    int64_t from_ns, to_ns; /* AM_TS_NONE: open */
    size_t limit;
    int clip;    /* cut events at from/to (the query language does) */
    json_t *out; /* newest first */
};

static am_rc group_emit(struct aw_read *rd, struct aw_group *g) {
    am_rc rc = AM_OK;
    if (!g->have)
        return AM_OK;
    int64_t s = g->start, e = g->end;
    if ((rd->from_ns == AM_TS_NONE || e >= rd->from_ns) &&
        (rd->to_ns == AM_TS_NONE || s < rd->to_ns) && json_array_size(rd->out) < rd->limit) {
        if (rd->clip && rd->from_ns != AM_TS_NONE && s < rd->from_ns)
            s = rd->from_ns;
        if (rd->clip && rd->to_ns != AM_TS_NONE && e > rd->to_ns)
            e = rd->to_ns;
        if (e < s)
            e = s;
        json_t *j = http_aw_event_json(g->id, s, e, g->payload, g->payload_len);
        if (!j || json_array_append_new(rd->out, j))
            rc = AM_ENOMEM;
    }
    am_free(g->payload);
    memset(g, 0, sizeof *g);
    return rc;
}

/* The bucket's events overlapping [from, to), one per (bucket, start), newest first. */
static am_rc events_read(struct am_http *h, int64_t user_id, const char *bucket, const char *stream,
                         struct aw_read *rd) {
    struct am_store *s = &h->srv->store;
    char source[AM_SOURCE_MAX + 1];
    struct am_query q;
    struct aw_group g = {0};
    am_rc rc = AM_OK;
    snprintf(source, sizeof source, "aw/%s", bucket);
    memset(&q, 0, sizeof q);
    q.stream = stream;
    q.source = source;
    q.from_ns = rd->from_ns == AM_TS_NONE || rd->from_ns < INT64_MIN + AW_LOOKBACK_NS
                    ? AM_TS_NONE
                    : rd->from_ns - AW_LOOKBACK_NS;
    q.to_ns = rd->to_ns;
    q.limit = AW_PAGE;
    q.descending = 1;
    rd->out = json_array();
    if (!rd->out)
        return AM_ENOMEM;
    while (rc == AM_OK && json_array_size(rd->out) < rd->limit) {
        struct am_event_list l = {0};
        rc = s->ops->query(s->impl, user_id, &q, &l);
        if (rc)
            break;
        for (size_t i = 0; i < l.n && rc == AM_OK; i++) {
            const struct am_event *e = &l.items[i];
            int64_t end = e->ts_end_ns == AM_TS_NONE ? e->ts_ns : e->ts_end_ns;
            if (g.have && g.start == e->ts_ns) {
                if (end > g.end) {
                    char *p = am_strndup(e->payload, e->payload_len);
                    if (!p) {
                        rc = AM_ENOMEM;
                        break;
                    }
                    am_free(g.payload);
                    g.payload = p, g.payload_len = e->payload_len, g.end = end, g.id = e->id;
                }
                continue;
            }
            rc = group_emit(rd, &g);
            if (rc)
                break;
            g.payload = am_strndup(e->payload, e->payload_len);
            if (!g.payload) {
                rc = AM_ENOMEM;
                break;
            }
            g.have = 1, g.start = e->ts_ns, g.end = end, g.id = e->id;
            g.payload_len = e->payload_len;
        }
        size_t n = l.n;
        if (n) {
            q.has_cursor = 1;
            q.after_ts_ns = l.items[n - 1].ts_ns;
            q.after_id = l.items[n - 1].id;
        }
        am_event_list_free(&l);
        if (n < AW_PAGE)
            break;
    }
    if (rc == AM_OK)
        rc = group_emit(rd, &g);
    am_free(g.payload);
    if (rc) {
        json_decref(rd->out);
        rd->out = NULL;
    }
    return rc;
}

/* The newest event of a bucket (its latest version), if any. */
static am_rc last_event(struct am_http *h, int64_t user_id, const char *bucket, const char *stream,
                        struct am_event *out, int *found) {
    struct am_store *s = &h->srv->store;
    char source[AM_SOURCE_MAX + 1];
    struct am_query q;
    struct am_event_list l = {0};
    snprintf(source, sizeof source, "aw/%s", bucket);
    memset(&q, 0, sizeof q);
    q.stream = stream;
    q.source = source;
    q.from_ns = q.to_ns = AM_TS_NONE;
    q.limit = 1;
    q.descending = 1; /* by (ts, id): the newest start, and of it the newest version */
    *found = 0;
    am_rc rc = s->ops->query(s->impl, user_id, &q, &l);
    if (rc == AM_OK && l.n == 1) {
        *out = l.items[0];
        l.items[0].payload = NULL;
        *found = 1;
    }
    am_event_list_free(&l);
    return rc;
}

/* ---------------------------------------------------------------- handlers */

static void aw_info(struct aw_req *r) {
    char host[256] = "am";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "am");
    host[sizeof host - 1] = '\0';
    am_utf8_clean(host);
    char device[96];
    snprintf(device, sizeof device, "am-%s", r->a.user);
    http_json(r->c, 200,
              json_pack("{s:s, s:s, s:b, s:s}", "hostname", host, "version", "v0.13.0 (AM)",
                        "testing", 0, "device_id", device));
}

static void aw_buckets_list(struct aw_req *r) {
    json_t *b = NULL;
    am_rc rc = buckets_load(r->h, r->a.user_id, &b);
    if (rc)
        problem_rc(r->c, rc, "buckets");
    else
        http_json(r->c, 200, b);
}

/* Reads a JSON body (up to max_body_bytes); answers and returns NULL on failure. */
static json_t *read_json(struct aw_req *r) {
    struct am_buf body;
    json_t *v = NULL;
    char err[200];
    if (!http_read_body(r->c, (size_t)r->h->srv->cfg.max_body_bytes, &body))
        return NULL;
    am_rc rc = am_json_parse(body.data, body.len, (size_t)r->h->srv->cfg.max_json_depth, &v, err,
                             sizeof err);
    am_buf_free(&body);
    if (rc) {
        http_problem(r->c, 400, rc == AM_ELIMIT ? "too-deep" : "malformed", "%s", err);
        return NULL;
    }
    return v;
}

static void aw_bucket(struct aw_req *r, const char *m, const char *id) {
    json_t *buckets = NULL;
    am_rc rc = buckets_load(r->h, r->a.user_id, &buckets);
    if (rc) {
        problem_rc(r->c, rc, "buckets");
        return;
    }
    if (!strcmp(m, "GET")) {
        const json_t *b = json_object_get(buckets, id);
        if (b)
            http_json(r->c, 200, json_incref((json_t *)b));
        else
            http_problem(r->c, 404, "not-found", "no bucket '%.120s'", id);
    } else if (!strcmp(m, "POST")) {
        json_t *in = read_json(r);
        if (in) {
            int created = 0;
            rc = json_is_object(in) ? bucket_create(r->h, r->a.user_id, buckets, id, in, &created)
                                    : AM_EINVAL;
            json_decref(in);
            if (rc)
                problem_rc(r->c, rc, "bucket: expects {client, type, hostname}");
            else if (created)
                http_json(r->c, 200, json_incref(json_object_get(buckets, id)));
            else /* AW answers 304 when the bucket is there already */
                http_text(r->c, 304, "application/json", "", 0);
        }
    } else if (!strcmp(m, "DELETE")) {
        if (!json_object_get(buckets, id)) {
            http_problem(r->c, 404, "not-found", "no bucket '%.120s'", id);
        } else {
            json_t *t = json_pack("{s:s, s:b}", "id", id, "deleted", 1);
            rc = t ? bucket_write(r->h, r->a.user_id, t) : AM_ENOMEM;
            json_decref(t);
            if (rc)
                problem_rc(r->c, rc, "delete bucket");
            else
                http_json(r->c, 200, json_object());
        }
    } else {
        http_problem(r->c, 405, "method-not-allowed", "takes GET, POST or DELETE");
    }
    json_decref(buckets);
}

static int time_param(struct aw_req *r, const char *name, int64_t *out) {
    char v[80];
    int got = http_param(r->c, name, v, sizeof v);
    *out = AM_TS_NONE;
    if (got < 0 || (got == 1 && v[0] && am_time_from_string(v, out) != AM_OK)) {
        http_problem(r->c, 400, "malformed", "%s: not an ISO 8601 time", name);
        return 0;
    }
    return 1;
}

/* Stores evs, answering with the AW events (ids included). */
static void submit_and_answer(struct aw_req *r, struct am_event_list *l) {
    struct am_item_result *res = am_calloc(l->n ? l->n : 1, sizeof *res);
    json_t *arr = json_array();
    am_rc rc =
        res && arr ? am_ingest_submit(r->h->srv, r->a.user_id, l->items, l->n, res) : AM_ENOMEM;
    for (size_t i = 0; rc == AM_OK && i < l->n; i++) {
        if (res[i].status == AM_ITEM_REJECTED) {
            http_problem(r->c, 422, "rejected", "event %zu: %s", i, res[i].reason);
            goto out;
        }
        json_t *j = http_aw_event_json(res[i].id, l->items[i].ts_ns, l->items[i].ts_end_ns,
                                       l->items[i].payload, l->items[i].payload_len);
        if (!j || json_array_append_new(arr, j))
            rc = AM_ENOMEM;
    }
    if (rc) {
        problem_rc(r->c, rc, "store; nothing was acknowledged, retry");
        goto out;
    }
    http_json(r->c, 200, arr);
    arr = NULL;
out:
    json_decref(arr);
    am_free(res);
}

static void aw_events(struct aw_req *r, const char *m, const char *id) {
    json_t *buckets = NULL, *in = NULL;
    char stream[AM_STREAM_MAX + 1], err[256];
    struct am_event_list l = {0};
    am_rc rc = buckets_load(r->h, r->a.user_id, &buckets);
    if (rc) {
        problem_rc(r->c, rc, "buckets");
        return;
    }
    if (!bucket_find(r, buckets, id, stream))
        goto out;
    if (!strcmp(m, "GET")) {
        struct aw_read rd = {.limit = AW_MAX_EVENTS};
        char lim[24];
        if (!time_param(r, "start", &rd.from_ns) || !time_param(r, "end", &rd.to_ns))
            goto out;
        if (http_param(r->c, "limit", lim, sizeof lim) == 1 && lim[0]) {
            char *end;
            errno = 0;
            long long n = strtoll(lim, &end, 10);
            if (errno || *end) {
                http_problem(r->c, 400, "malformed", "limit: an integer");
                goto out;
            }
            if (n >= 0 && n < AW_MAX_EVENTS)
                rd.limit = (size_t)n; /* -1 (AW's "all") keeps the cap */
        }
        rc = events_read(r->h, r->a.user_id, id, stream, &rd);
        if (rc)
            problem_rc(r->c, rc, "events");
        else
            http_json(r->c, 200, rd.out);
    } else if (!strcmp(m, "POST")) {
        struct am_limits lim = {(size_t)r->h->srv->cfg.max_json_depth,
                                (size_t)r->h->srv->cfg.max_payload_bytes};
        if (!(in = read_json(r)))
            goto out;
        rc = http_aw_events_from_json(r->a.user_id, id, stream, &lim,
                                      (size_t)r->h->srv->cfg.max_batch_events, in, &l, err,
                                      sizeof err);
        if (rc)
            problem_rc(r->c, rc, err);
        else
            submit_and_answer(r, &l);
    } else {
        http_problem(r->c, 405, "method-not-allowed", "takes GET or POST");
    }
out:
    am_event_list_free(&l);
    json_decref(in);
    json_decref(buckets);
}

/* AW's heartbeat: when the newest event has equal data and the heartbeat starts within
 * [its start, its end + pulsetime], the event grows to cover the heartbeat (stored as a
 * new version, see the top of this file); otherwise the heartbeat is a new event. */
static void aw_heartbeat(struct aw_req *r, const char *id) {
    json_t *buckets = NULL, *in = NULL, *data = NULL, *last_data = NULL;
    char stream[AM_STREAM_MAX + 1], err[256], pt[32];
    struct am_event last, e;
    struct am_item_result res;
    int found = 0;
    int64_t start, end;
    double pulse = 0;
    memset(&last, 0, sizeof last);
    memset(&e, 0, sizeof e);
    if (http_param(r->c, "pulsetime", pt, sizeof pt) == 1 && pt[0]) {
        char *endp;
        pulse = strtod(pt, &endp);
        if (*endp || !(pulse >= 0 && pulse <= 1e6)) {
            http_problem(r->c, 400, "malformed", "pulsetime: seconds, 0..1000000");
            return;
        }
    }
    am_rc rc = buckets_load(r->h, r->a.user_id, &buckets);
    if (rc) {
        problem_rc(r->c, rc, "buckets");
        return;
    }
    if (!bucket_find(r, buckets, id, stream) || !(in = read_json(r)))
        goto out;
    if ((rc = http_aw_event_decode(in, &start, &end, &data, err, sizeof err))) {
        problem_rc(r->c, rc, err);
        goto out;
    }
    if ((rc = last_event(r->h, r->a.user_id, id, stream, &last, &found))) {
        problem_rc(r->c, rc, "last event");
        goto out;
    }
    if (found) {
        json_error_t je;
        int64_t last_end = last.ts_end_ns == AM_TS_NONE ? last.ts_ns : last.ts_end_ns;
        last_data = json_loadb(last.payload, last.payload_len, 0, &je);
        if (last_data && json_equal(last_data, data) && start >= last.ts_ns &&
            start <= last_end + (int64_t)(pulse * 1e9)) {
            if (end <= last_end) { /* nothing new: the answer is the event as it is */
                http_json(r->c, 200,
                          http_aw_event_json(last.id, last.ts_ns, last_end, last.payload,
                                             last.payload_len));
                goto out;
            }
            start = last.ts_ns;
        }
    }
    struct am_limits lim = {(size_t)r->h->srv->cfg.max_json_depth,
                            (size_t)r->h->srv->cfg.max_payload_bytes};
    if ((rc = http_aw_event_make(r->a.user_id, id, stream, &lim, start, end, data, &e, err,
                                 sizeof err))) {
        problem_rc(r->c, rc, err);
        goto out;
    }
    rc = am_ingest_submit(r->h->srv, r->a.user_id, &e, 1, &res);
    if (rc) {
        problem_rc(r->c, rc, "store; the heartbeat was not acknowledged, retry");
    } else if (res.status == AM_ITEM_REJECTED) {
        http_problem(r->c, 422, "rejected", "%s", res.reason);
    } else {
        http_json(r->c, 200,
                  http_aw_event_json(res.id, e.ts_ns, e.ts_end_ns, e.payload, e.payload_len));
    }
out:
    am_free(e.payload);
    am_free(last.payload);
    json_decref(last_data);
    json_decref(data);
    json_decref(in);
    json_decref(buckets);
}

/* The query language's view of this user's buckets (http_aw_query.c). */
struct src_arg {
    struct am_http *h;
    int64_t user_id;
};

static am_rc src_buckets(void *arg, json_t **out) {
    struct src_arg *s = arg;
    return buckets_load(s->h, s->user_id, out);
}

static am_rc src_events(void *arg, const char *bucket, int64_t from_ns, int64_t to_ns,
                        json_t **out) {
    struct src_arg *s = arg;
    json_t *buckets = NULL;
    char stream[AM_STREAM_MAX + 1];
    am_rc rc = buckets_load(s->h, s->user_id, &buckets);
    if (rc)
        return rc;
    const json_t *b = json_object_get(buckets, bucket);
    const char *type = json_string_value(json_object_get(b, "type"));
    http_aw_stream(type ? type : "", stream);
    struct aw_read rd = {.from_ns = from_ns, .to_ns = to_ns, .limit = AW_MAX_EVENTS, .clip = 1};
    rc = b ? events_read(s->h, s->user_id, bucket, stream, &rd) : AM_ENOTFOUND;
    json_decref(buckets);
    if (rc == AM_OK)
        *out = rd.out;
    return rc;
}

static void aw_query(struct aw_req *r) {
    json_t *in = read_json(r), *results = NULL;
    struct am_buf prog;
    char err[256];
    struct src_arg sa = {r->h, r->a.user_id};
    struct http_aw_source src = {&sa, src_buckets, src_events};
    am_buf_init(&prog, 256 * 1024);
    if (!in)
        return;
    json_t *query = json_object_get(in, "query"), *periods = json_object_get(in, "timeperiods");
    if (!json_is_array(periods) || (!json_is_array(query) && !json_is_string(query))) {
        http_problem(r->c, 400, "malformed",
                     "expects {\"query\": [lines], \"timeperiods\": [...]}");
        goto out;
    }
    if (json_is_string(query)) {
        am_buf_appends(&prog, json_string_value(query));
    } else {
        size_t i;
        json_t *line;
        json_array_foreach(query, i, line) {
            if (!json_is_string(line) || am_buf_appends(&prog, json_string_value(line)) ||
                am_buf_append(&prog, "\n", 1)) {
                http_problem(r->c, 400, "malformed", "query: lines of text, at most 256 KiB");
                goto out;
            }
        }
    }
    results = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(periods, i, p) {
        const char *s = json_string_value(p), *slash = s ? strchr(s, '/') : NULL;
        int64_t from, to;
        json_t *one = NULL;
        if (!slash || am_time_parse_rfc3339(s, (size_t)(slash - s), &from, NULL) ||
            am_time_parse_rfc3339(slash + 1, strlen(slash + 1), &to, NULL)) {
            http_problem(r->c, 400, "malformed", "timeperiods: \"<start>/<end>\" in ISO 8601");
            goto out;
        }
        am_rc rc = http_aw_query(&src, prog.data ? prog.data : "", prog.len, from, to, &one, err,
                                 sizeof err);
        if (rc) {
            /* AW answers a bad query with 500 and a message; a problem+json 400 says more. */
            problem_rc(r->c, rc == AM_ENOTFOUND ? AM_EINVAL : rc, err);
            goto out;
        }
        if (!results || json_array_append_new(results, one)) {
            http_problem(r->c, 503, "unavailable", "out of memory");
            goto out;
        }
    }
    http_json(r->c, 200, results);
    results = NULL;
out:
    am_buf_free(&prog);
    json_decref(results);
    json_decref(in);
}

/* {"buckets": {id: bucket + "events"}} of one bucket (only) or of all. */
static void aw_export(struct aw_req *r, const char *only) {
    json_t *buckets = NULL, *out = json_object();
    am_rc rc = buckets_load(r->h, r->a.user_id, &buckets);
    const char *id;
    json_t *b;
    if (rc || !out) {
        problem_rc(r->c, rc ? rc : AM_ENOMEM, "buckets");
        goto out;
    }
    if (only && !json_object_get(buckets, only)) {
        http_problem(r->c, 404, "not-found", "no bucket '%.120s'", only);
        goto out;
    }
    json_object_foreach(buckets, id, b) {
        char stream[AM_STREAM_MAX + 1];
        struct aw_read rd = {.from_ns = AM_TS_NONE, .to_ns = AM_TS_NONE, .limit = AW_MAX_EVENTS};
        const char *type = json_string_value(json_object_get(b, "type"));
        if (only && strcmp(only, id))
            continue;
        http_aw_stream(type ? type : "", stream);
        rc = events_read(r->h, r->a.user_id, id, stream, &rd);
        if (rc || json_object_set_new(b, "events", rd.out) || json_object_set(out, id, b)) {
            problem_rc(r->c, rc ? rc : AM_ENOMEM, "export");
            goto out;
        }
    }
    http_json(r->c, 200, json_pack("{s:o}", "buckets", out));
    out = NULL;
out:
    json_decref(out);
    json_decref(buckets);
}

/* Import of an export (ours or aw-server's): buckets are created when missing and events
 * added; their keys make a second import of the same file a no-op. */
static void aw_import(struct aw_req *r) {
    json_t *in = read_json(r), *buckets = NULL;
    char err[300];
    struct am_limits lim = {(size_t)r->h->srv->cfg.max_json_depth,
                            (size_t)r->h->srv->cfg.max_payload_bytes};
    size_t n_events = 0, chunk = (size_t)r->h->srv->cfg.max_batch_events;
    if (!in)
        return;
    json_t *all = json_object_get(in, "buckets");
    am_rc rc = buckets_load(r->h, r->a.user_id, &buckets);
    if (rc) {
        problem_rc(r->c, rc, "buckets");
        goto out;
    }
    if (!json_is_object(all)) {
        http_problem(r->c, 400, "malformed", "expects {\"buckets\": {id: bucket}}");
        goto out;
    }
    const char *key;
    json_t *b;
    json_object_foreach(all, key, b) {
        const char *id = json_string_value(json_object_get(b, "id"));
        char stream[AM_STREAM_MAX + 1];
        int created;
        struct am_event_list l = {0};
        id = id ? id : key;
        if (!json_is_object(b) || !http_aw_bucket_id_valid(id, strlen(id))) {
            http_problem(r->c, 400, "malformed", "bucket '%.120s': not a bucket", key);
            goto out;
        }
        if ((rc = bucket_create(r->h, r->a.user_id, buckets, id, b, &created))) {
            problem_rc(r->c, rc, "bucket");
            goto out;
        }
        const char *type = json_string_value(json_object_get(json_object_get(buckets, id), "type"));
        http_aw_stream(type ? type : "", stream);
        json_t *evs = json_object_get(b, "events");
        if (!evs)
            continue;
        if (!json_is_array(evs)) {
            http_problem(r->c, 400, "malformed", "bucket '%.120s': events must be a list", id);
            goto out;
        }
        rc = http_aw_events_from_json(r->a.user_id, id, stream, &lim, 0, evs, &l, err, sizeof err);
        for (size_t i = 0; rc == AM_OK && i < l.n; i += chunk ? chunk : l.n) {
            size_t n = chunk && l.n - i > chunk ? chunk : l.n - i;
            struct am_item_result *res = am_calloc(n, sizeof *res);
            rc = res ? am_ingest_submit(r->h->srv, r->a.user_id, l.items + i, n, res) : AM_ENOMEM;
            for (size_t k = 0; rc == AM_OK && k < n; k++)
                if (res[k].status == AM_ITEM_REJECTED) {
                    snprintf(err, sizeof err, "bucket '%.80s': %s", id, res[k].reason);
                    rc = AM_EINVAL;
                }
            am_free(res);
        }
        n_events += l.n;
        am_event_list_free(&l);
        if (rc) {
            problem_rc(r->c, rc, rc == AM_EINVAL || rc == AM_ELIMIT ? err : "import");
            goto out;
        }
    }
    http_json(r->c, 200, json_pack("{s:I}", "events", (json_int_t)n_events));
out:
    json_decref(buckets);
    json_decref(in);
}

/* ---------------------------------------------------------------- routing */

static int authenticate(struct aw_req *r, const char *path_token, unsigned scope) {
    if (!path_token)
        return http_auth(r->h, r->c, scope, 0, &r->a);
    am_rc rc = http_auth_token(r->h, path_token, &r->a);
    if (rc == AM_EDENIED || rc == AM_ENOTFOUND) {
        http_problem(r->c, 401, "unauthorized", "unknown or revoked token");
        return 0;
    }
    if (rc) {
        http_problem(r->c, 503, "unavailable", "store: %s", am_strerror(rc));
        return 0;
    }
    if ((r->a.scopes & scope) != scope) {
        http_problem(r->c, 403, "forbidden", "this token lacks the '%s' scope",
                     scope & AM_SCOPE_INGEST ? "ingest" : "read");
        return 0;
    }
    return 1;
}

void http_aw_route(struct am_http *h, struct mg_connection *c, const char *uri) {
    const char *m = mg_get_request_info(c)->request_method;
    struct aw_req r = {.h = h, .c = c};
    char token[260], id[HTTP_AW_BUCKET_MAX + 1];
    const char *path_token = NULL;
    if (!strncmp(uri, "/aw/", 4)) {
        size_t n = strcspn(uri + 4, "/");
        if (n == 0 || n >= sizeof token) {
            http_problem(c, 401, "unauthorized", "use /aw/<token>/api/0/...");
            return;
        }
        memcpy(token, uri + 4, n);
        token[n] = '\0';
        path_token = token;
        uri += 4 + n;
    }
    if (strncmp(uri, "/api/0/", 7) != 0 && strcmp(uri, "/api/0") != 0) {
        http_problem(c, 404, "not-found", "no route (ActivityWatch's API is under /api/0/)");
        return;
    }
    const char *p = uri + 6; /* "/..." or "" */
    int read_only =
        !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(p, "/query") || !strcmp(p, "/query/");
    if (!authenticate(&r, path_token, read_only ? AM_SCOPE_READ : AM_SCOPE_INGEST))
        return;
    if (!strcmp(p, "/info")) {
        aw_info(&r);
        return;
    }
    if (!strcmp(p, "/buckets") || !strcmp(p, "/buckets/")) {
        if (strcmp(m, "GET"))
            http_problem(c, 405, "method-not-allowed", "takes GET");
        else
            aw_buckets_list(&r);
        return;
    }
    if (!strcmp(p, "/query") || !strcmp(p, "/query/")) {
        if (strcmp(m, "POST"))
            http_problem(c, 405, "method-not-allowed", "takes POST");
        else
            aw_query(&r);
        return;
    }
    if (!strcmp(p, "/export") || !strcmp(p, "/import")) {
        if (p[1] == 'e' && strcmp(m, "GET"))
            http_problem(c, 405, "method-not-allowed", "takes GET");
        else if (p[1] == 'i' && strcmp(m, "POST"))
            http_problem(c, 405, "method-not-allowed", "takes POST");
        else if (p[1] == 'e')
            aw_export(&r, NULL);
        else
            aw_import(&r);
        return;
    }
    if (!strncmp(p, "/buckets/", 9)) {
        const char *b = p + 9;
        size_t n = strcspn(b, "/");
        const char *rest = b + n;
        if (!http_aw_bucket_id_valid(b, n)) {
            http_problem(c, 404, "not-found", "not a bucket id");
            return;
        }
        memcpy(id, b, n);
        id[n] = '\0';
        if (!strcmp(rest, "") || !strcmp(rest, "/"))
            aw_bucket(&r, m, id);
        else if (!strcmp(rest, "/events") || !strcmp(rest, "/events/"))
            aw_events(&r, m, id);
        else if (!strcmp(rest, "/heartbeat") || !strcmp(rest, "/heartbeat/")) {
            if (strcmp(m, "POST"))
                http_problem(c, 405, "method-not-allowed", "takes POST");
            else
                aw_heartbeat(&r, id);
        } else if (!strcmp(rest, "/export")) {
            if (strcmp(m, "GET"))
                http_problem(c, 405, "method-not-allowed", "takes GET");
            else
                aw_export(&r, id);
        } else
            http_problem(c, 404, "not-found",
                         "not supported here: %.80s (see docs/api.md, ActivityWatch)", rest);
        return;
    }
    http_problem(c, 404, "not-found", "not supported here: %.80s (see docs/api.md, ActivityWatch)",
                 p);
}
