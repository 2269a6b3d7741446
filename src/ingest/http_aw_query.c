/* http_aw_query.c — a subset of ActivityWatch's query language (POST /api/0/query/):
 * statements `name = expr;`, the answer is RETURN; expressions are strings, numbers,
 * true/false/null, lists, dicts, variables and calls of the transforms listed in
 * docs/api.md. Values are jansson values; events are {id, timestamp, duration, data}.
 * Buckets and their events come through callbacks, so the fuzz target runs it without
 * a store. Any thread. */
#include "http_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q_MAX_DEPTH 32
#define Q_MAX_EVENTS 200000
#define Q_MAX_ARGS 8

struct qstate {
    const char *p, *end;
    const struct http_aw_source *src;
    int64_t from_ns, to_ns;
    json_t *vars;
    int depth;
    size_t work; /* a budget on quadratic helpers */
    char *err;
    size_t err_len;
    am_rc rc;
};

static json_t *fail(struct qstate *q, am_rc rc, const char *fmt, const char *arg) {
    if (q->rc == AM_OK) {
        q->rc = rc;
        snprintf(q->err, q->err_len, fmt, arg ? arg : "");
        am_utf8_clean(q->err);
    }
    return NULL;
}

static void skip_space(struct qstate *q) {
    for (;;) {
        while (q->p < q->end && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r'))
            q->p++;
        if (q->p < q->end && *q->p == '#') { /* a comment to the end of the line */
            while (q->p < q->end && *q->p != '\n')
                q->p++;
            continue;
        }
        return;
    }
}

static int is_ident(char ch, int first) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (!first && ch >= '0' && ch <= '9');
}

static int eat(struct qstate *q, char ch) {
    skip_space(q);
    if (q->p < q->end && *q->p == ch) {
        q->p++;
        return 1;
    }
    return 0;
}

/* An identifier into out (truncated names are refused). */
static int ident(struct qstate *q, char *out, size_t out_len) {
    skip_space(q);
    size_t n = 0;
    if (q->p >= q->end || !is_ident(*q->p, 1))
        return 0;
    while (q->p < q->end && is_ident(*q->p, 0)) {
        if (n + 1 >= out_len)
            return 0;
        out[n++] = *q->p++;
    }
    out[n] = '\0';
    return 1;
}

static json_t *parse_string(struct qstate *q) {
    char quote = *q->p++;
    struct am_buf b;
    am_buf_init(&b, 64 * 1024);
    while (q->p < q->end && *q->p != quote) {
        char ch = *q->p++;
        if (ch == '\\' && q->p < q->end) {
            ch = *q->p++;
            if (ch == 'n')
                ch = '\n';
            else if (ch == 't')
                ch = '\t';
        }
        if (am_buf_append(&b, &ch, 1)) {
            am_buf_free(&b);
            return fail(q, AM_ELIMIT, "a string longer than 64 KiB%s", NULL);
        }
    }
    if (q->p >= q->end) {
        am_buf_free(&b);
        return fail(q, AM_EINVAL, "a string is not closed%s", NULL);
    }
    q->p++;
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    am_buf_free(&b);
    return s ? s : fail(q, AM_EINVAL, "a string is not valid UTF-8%s", NULL);
}

static json_t *parse_number(struct qstate *q) {
    char buf[64];
    size_t n = 0;
    int real = 0;
    while (q->p < q->end && n + 1 < sizeof buf &&
           ((*q->p >= '0' && *q->p <= '9') || *q->p == '.' || *q->p == '-' || *q->p == 'e' ||
            *q->p == 'E' || *q->p == '+')) {
        real |= *q->p == '.' || *q->p == 'e' || *q->p == 'E';
        buf[n++] = *q->p++;
    }
    buf[n] = '\0';
    char *endp;
    double d = strtod(buf, &endp);
    if (*endp || !isfinite(d))
        return fail(q, AM_EINVAL, "not a number: %s", buf);
    if (!real && fabs(d) < 9e15)
        return json_integer((json_int_t)d);
    return json_real(d);
}

static json_t *expr(struct qstate *q);
static json_t *call(struct qstate *q, const char *name, json_t **args, size_t n);

/* Items up to `close`, separated by commas (a trailing comma allowed); into args. */
static int items(struct qstate *q, char close, json_t **args, size_t max, size_t *n) {
    *n = 0;
    if (eat(q, close))
        return 1;
    for (;;) {
        if (*n >= max) {
            fail(q, AM_ELIMIT, "too many arguments%s", NULL);
            return 0;
        }
        json_t *v = expr(q);
        if (!v)
            return 0;
        args[(*n)++] = v;
        if (eat(q, close))
            return 1;
        if (!eat(q, ',')) {
            fail(q, AM_EINVAL, "expected ',' or '%s'", close == ')' ? ")" : "]");
            return 0;
        }
        if (eat(q, close))
            return 1;
    }
}

static json_t *parse_list(struct qstate *q) {
    json_t *arr = json_array();
    if (!arr)
        return fail(q, AM_ENOMEM, "out of memory%s", NULL);
    if (eat(q, ']'))
        return arr;
    for (;;) {
        json_t *v = expr(q);
        if (!v || json_array_append_new(arr, v))
            goto bad;
        if (json_array_size(arr) > 10000) {
            fail(q, AM_ELIMIT, "a list longer than 10000 items%s", NULL);
            goto bad;
        }
        if (eat(q, ']'))
            return arr;
        if (!eat(q, ',')) {
            fail(q, AM_EINVAL, "expected ',' or ']'%s", NULL);
            goto bad;
        }
        if (eat(q, ']'))
            return arr;
    }
bad:
    json_decref(arr);
    return NULL;
}

static json_t *parse_dict(struct qstate *q) {
    json_t *obj = json_object();
    if (!obj)
        return fail(q, AM_ENOMEM, "out of memory%s", NULL);
    if (eat(q, '}'))
        return obj;
    for (;;) {
        skip_space(q);
        if (q->p >= q->end || (*q->p != '"' && *q->p != '\'')) {
            fail(q, AM_EINVAL, "a dict key must be a string%s", NULL);
            goto bad;
        }
        json_t *k = parse_string(q);
        if (!k)
            goto bad;
        if (!eat(q, ':')) {
            json_decref(k);
            fail(q, AM_EINVAL, "expected ':' in a dict%s", NULL);
            goto bad;
        }
        json_t *v = expr(q);
        int bad = !v || json_object_set_new(obj, json_string_value(k), v);
        json_decref(k);
        if (bad)
            goto bad;
        if (eat(q, '}'))
            return obj;
        if (!eat(q, ',')) {
            fail(q, AM_EINVAL, "expected ',' or '}'%s", NULL);
            goto bad;
        }
    }
bad:
    json_decref(obj);
    return NULL;
}

static json_t *expr(struct qstate *q) {
    char name[64];
    json_t *v = NULL;
    if (++q->depth > Q_MAX_DEPTH) {
        q->depth--;
        return fail(q, AM_ELIMIT, "nested deeper than 32%s", NULL);
    }
    skip_space(q);
    if (q->p >= q->end) {
        v = fail(q, AM_EINVAL, "an expression is missing at the end%s", NULL);
    } else if (*q->p == '"' || *q->p == '\'') {
        v = parse_string(q);
    } else if ((*q->p >= '0' && *q->p <= '9') || *q->p == '-' || *q->p == '.') {
        v = parse_number(q);
    } else if (*q->p == '[') {
        q->p++;
        v = parse_list(q);
    } else if (*q->p == '{') {
        q->p++;
        v = parse_dict(q);
    } else if (ident(q, name, sizeof name)) {
        if (eat(q, '(')) {
            json_t *args[Q_MAX_ARGS];
            size_t n = 0;
            if (items(q, ')', args, Q_MAX_ARGS, &n))
                v = call(q, name, args, n);
            for (size_t i = 0; i < n; i++)
                json_decref(args[i]);
        } else if (!strcmp(name, "true") || !strcmp(name, "True")) {
            v = json_true();
        } else if (!strcmp(name, "false") || !strcmp(name, "False")) {
            v = json_false();
        } else if (!strcmp(name, "null") || !strcmp(name, "None")) {
            v = json_null();
        } else {
            v = json_object_get(q->vars, name);
            v = v ? json_incref(v) : fail(q, AM_EINVAL, "unknown variable '%s'", name);
        }
    } else {
        v = fail(q, AM_EINVAL, "unexpected character%s", NULL);
    }
    q->depth--;
    return v;
}

/* ---------------------------------------------------------------- events as C structs */

struct qev {
    int64_t start, end;
    json_t *data; /* borrowed from the source event, or owned in `own` results */
    json_t *id;
};

static int ev_read(const json_t *e, struct qev *out) {
    int64_t start;
    const json_t *ts = json_object_get(e, "timestamp");
    const json_t *d = json_object_get(e, "duration");
    const json_t *data = json_object_get(e, "data");
    if (!json_is_object(e) || !ts || am_time_from_json(ts, &start, NULL) != AM_OK)
        return 0;
    double dur = json_is_number(d) ? json_number_value(d) : 0;
    if (!isfinite(dur) || dur < 0)
        dur = 0;
    if (dur > 3.2e8)
        dur = 3.2e8;
    out->start = start;
    out->end = start > INT64_MAX - (int64_t)(dur * 1e9) ? INT64_MAX : start + (int64_t)(dur * 1e9);
    out->data = json_is_object(data) ? (json_t *)data : NULL;
    out->id = json_object_get(e, "id");
    return 1;
}

/* An events argument: a list of event objects, read into a new array (caller frees). */
static struct qev *events_arg(struct qstate *q, const char *fn, const json_t *v, size_t *n) {
    if (!json_is_array(v)) {
        fail(q, AM_EINVAL, "%s: expects a list of events", fn);
        return NULL;
    }
    *n = json_array_size(v);
    struct qev *out = am_calloc(*n ? *n : 1, sizeof *out);
    if (!out) {
        fail(q, AM_ENOMEM, "out of memory%s", NULL);
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        if (!ev_read(json_array_get(v, i), &out[i])) {
            am_free(out);
            fail(q, AM_EINVAL, "%s: an item is not an event", fn);
            return NULL;
        }
    }
    return out;
}

static json_t *ev_json(const struct qev *e, json_t *data) {
    char ts[48];
    http_aw_time_format(e->start, ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:f, s:O}", "timestamp", ts, "duration",
                          (double)(e->end - e->start) / 1e9, "data",
                          data      ? data
                          : e->data ? e->data
                                    : json_object());
    if (o && !data && !e->data) /* the empty object made above */
        json_decref(json_object_get(o, "data"));
    if (o && e->id && json_object_set(o, "id", e->id)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *events_json(struct qstate *q, const struct qev *ev, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = ev_json(&ev[i], NULL);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr ? arr : fail(q, AM_ENOMEM, "out of memory%s", NULL);
}

static int cmp_start(const void *a, const void *b) {
    const struct qev *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_duration_desc(const void *a, const void *b) {
    const struct qev *x = a, *y = b;
    int64_t dx = x->end - x->start, dy = y->end - y->start;
    return dx > dy ? -1 : dx < dy;
}

static int data_equal(const struct qev *a, const struct qev *b) {
    if (!a->data || !b->data)
        return a->data == b->data;
    return json_equal(a->data, b->data);
}

static int want_string(struct qstate *q, const char *fn, const json_t *v) {
    if (json_is_string(v))
        return 1;
    fail(q, AM_EINVAL, "%s: expects a string", fn);
    return 0;
}

/* ---------------------------------------------------------------- the transforms */

static json_t *fn_find_bucket(struct qstate *q, json_t **a, size_t n) {
    if (n < 1 || !want_string(q, "find_bucket", a[0]))
        return NULL;
    const char *host = n > 1 && json_is_string(a[1]) ? json_string_value(a[1]) : NULL;
    json_t *buckets = NULL;
    char why[160] = "";
    am_rc rc = q->src->buckets(q->src->arg, &buckets);
    if (rc)
        return fail(q, rc, "buckets: %s", am_strerror(rc));
    const char *id;
    json_t *b, *found = NULL;
    const char *prefix = json_string_value(a[0]);
    json_object_foreach(buckets, id, b) {
        const char *h = json_string_value(json_object_get(b, "hostname"));
        if (strncmp(id, prefix, strlen(prefix)) == 0 && (!host || (h && !strcmp(h, host)))) {
            found = json_string(id);
            break;
        }
    }
    json_decref(buckets);
    if (!found) {
        snprintf(why, sizeof why, "find_bucket: no bucket starts with '%.80s'", prefix);
        return fail(q, AM_ENOTFOUND, "%s", why);
    }
    return found;
}

static json_t *fn_query_bucket(struct qstate *q, json_t **a, size_t n) {
    if (n < 1 || !want_string(q, "query_bucket", a[0]))
        return NULL;
    json_t *out = NULL;
    am_rc rc = q->src->events(q->src->arg, json_string_value(a[0]), q->from_ns, q->to_ns, &out);
    if (rc == AM_ENOTFOUND)
        return fail(q, rc, "query_bucket: no bucket '%.80s'", json_string_value(a[0]));
    if (rc)
        return fail(q, rc, "query_bucket: %s", am_strerror(rc));
    if (json_array_size(out) > Q_MAX_EVENTS) {
        json_decref(out);
        return fail(q, AM_ELIMIT, "query_bucket: more than 200000 events%s", NULL);
    }
    return out;
}

/* Fills gaps of at most pulsetime between neighbours and joins neighbours with equal
 * data (AW's flood): AFK and window events then tile time without slivers. */
static json_t *fn_flood(struct qstate *q, json_t **a, size_t n) {
    double pulse = n > 1 && json_is_number(a[1]) ? json_number_value(a[1]) : 5.0;
    if (n < 1 || !isfinite(pulse) || pulse < 0 || pulse > 1e6)
        return fail(q, AM_EINVAL, "flood(events, pulsetime)%s", NULL);
    size_t m, k = 0;
    struct qev *ev = events_arg(q, "flood", a[0], &m);
    if (!ev)
        return NULL;
    qsort(ev, m, sizeof *ev, cmp_start);
    int64_t pulse_ns = (int64_t)(pulse * 1e9);
    for (size_t i = 0; i < m; i++) {
        if (k > 0) {
            struct qev *prev = &ev[k - 1];
            int64_t gap = ev[i].start - prev->end;
            if (gap <= pulse_ns && data_equal(prev, &ev[i])) {
                if (ev[i].end > prev->end)
                    prev->end = ev[i].end;
                continue;
            }
            if (gap > 0 && gap <= pulse_ns) {
                prev->end += gap / 2;
                ev[i].start = prev->end;
            }
        }
        ev[k++] = ev[i];
    }
    json_t *r = events_json(q, ev, k);
    am_free(ev);
    return r;
}

static json_t *fn_merge_by_keys(struct qstate *q, json_t **a, size_t n) {
    if (n < 2 || !json_is_array(a[1]))
        return fail(q, AM_EINVAL, "merge_events_by_keys(events, [keys])%s", NULL);
    size_t m;
    struct qev *ev = events_arg(q, "merge_events_by_keys", a[0], &m);
    if (!ev)
        return NULL;
    json_t *groups = json_object(), *order = json_array(), *out = NULL;
    if (!groups || !order)
        goto oom;
    for (size_t i = 0; i < m; i++) {
        json_t *sel = json_object();
        if (!sel)
            goto oom;
        size_t ki;
        json_t *key;
        int complete = ev[i].data != NULL;
        json_array_foreach(a[1], ki, key) {
            json_t *v = json_is_string(key) && ev[i].data
                            ? json_object_get(ev[i].data, json_string_value(key))
                            : NULL;
            if (!v) {
                complete = 0;
                break;
            }
            json_object_set(sel, json_string_value(key), v);
        }
        if (!complete) {
            json_decref(sel);
            continue;
        }
        char *gk = json_dumps(sel, JSON_COMPACT | JSON_SORT_KEYS);
        if (!gk) {
            json_decref(sel);
            goto oom;
        }
        json_t *g = json_object_get(groups, gk);
        double dur = (double)(ev[i].end - ev[i].start) / 1e9;
        if (!g) {
            struct qev first = ev[i];
            first.id = NULL;
            g = ev_json(&first, sel);
            if (!g || json_array_append_new(order, g) || json_object_set(groups, gk, g)) {
                am_free(gk);
                json_decref(sel);
                goto oom;
            }
        } else {
            double d = json_number_value(json_object_get(g, "duration")) + dur;
            json_object_set_new(g, "duration", json_real(d));
        }
        am_free(gk);
        json_decref(sel);
    }
    out = order;
    order = NULL;
oom:
    am_free(ev);
    json_decref(groups);
    json_decref(order);
    return out ? out : fail(q, AM_ENOMEM, "out of memory%s", NULL);
}

static json_t *fn_filter_keyvals(struct qstate *q, json_t **a, size_t n, int exclude) {
    if (n < 3 || !json_is_string(a[1]) || !json_is_array(a[2]))
        return fail(q, AM_EINVAL, "filter_keyvals(events, key, [values])%s", NULL);
    if (n > 3 && json_is_true(a[3]))
        exclude = !exclude;
    if (!json_is_array(a[0]))
        return fail(q, AM_EINVAL, "filter_keyvals: expects a list of events%s", NULL);
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(a[0], i, e) {
        json_t *v = json_object_get(json_object_get(e, "data"), json_string_value(a[1]));
        int hit = 0;
        size_t k;
        json_t *want;
        json_array_foreach(a[2], k, want) {
            if (v && json_equal(v, want)) {
                hit = 1;
                break;
            }
        }
        if (hit != exclude && json_array_append(out, e)) {
            json_decref(out);
            return fail(q, AM_ENOMEM, "out of memory%s", NULL);
        }
    }
    return out;
}

/* Keeps the parts of events that lie inside one of the filter's events. */
static json_t *fn_period_intersect(struct qstate *q, json_t **a, size_t n) {
    if (n < 2)
        return fail(q, AM_EINVAL, "filter_period_intersect(events, filter)%s", NULL);
    size_t m, f, k = 0, cap;
    struct qev *ev = events_arg(q, "filter_period_intersect", a[0], &m);
    struct qev *fl = ev ? events_arg(q, "filter_period_intersect", a[1], &f) : NULL;
    struct qev *out = NULL;
    json_t *r = NULL;
    if (!fl)
        goto out;
    qsort(ev, m, sizeof *ev, cmp_start);
    qsort(fl, f, sizeof *fl, cmp_start);
    cap = m + f + 1;
    out = am_calloc(cap, sizeof *out);
    if (!out) {
        fail(q, AM_ENOMEM, "out of memory%s", NULL);
        goto out;
    }
    size_t j0 = 0;
    for (size_t i = 0; i < m; i++) {
        while (j0 < f && fl[j0].end <= ev[i].start)
            j0++;
        for (size_t j = j0; j < f && fl[j].start < ev[i].end; j++) {
            if (++q->work > 10000000) {
                fail(q, AM_ELIMIT, "filter_period_intersect: too much work%s", NULL);
                goto out;
            }
            int64_t s = ev[i].start > fl[j].start ? ev[i].start : fl[j].start;
            int64_t e = ev[i].end < fl[j].end ? ev[i].end : fl[j].end;
            if (e <= s)
                continue;
            if (k == cap) {
                struct qev *bigger = am_realloc(out, cap * 2 * sizeof *out);
                if (!bigger) {
                    fail(q, AM_ENOMEM, "out of memory%s", NULL);
                    goto out;
                }
                out = bigger;
                cap *= 2;
            }
            out[k] = ev[i];
            out[k].start = s;
            out[k].end = e;
            k++;
        }
    }
    r = events_json(q, out, k);
out:
    am_free(ev);
    am_free(fl);
    am_free(out);
    return r;
}

static json_t *fn_sort(struct qstate *q, json_t **a, size_t n, int by_duration) {
    size_t m;
    if (n < 1)
        return fail(q, AM_EINVAL, "sort: expects events%s", NULL);
    struct qev *ev = events_arg(q, "sort", a[0], &m);
    if (!ev)
        return NULL;
    qsort(ev, m, sizeof *ev, by_duration ? cmp_duration_desc : cmp_start);
    json_t *r = events_json(q, ev, m);
    am_free(ev);
    return r;
}

static json_t *fn_limit(struct qstate *q, json_t **a, size_t n) {
    if (n < 2 || !json_is_array(a[0]) || !json_is_integer(a[1]) || json_integer_value(a[1]) < 0)
        return fail(q, AM_EINVAL, "limit_events(events, count)%s", NULL);
    json_t *out = json_array();
    for (size_t i = 0; out && i < json_array_size(a[0]) && i < (size_t)json_integer_value(a[1]);
         i++)
        if (json_array_append(out, json_array_get(a[0], i))) {
            json_decref(out);
            out = NULL;
        }
    return out ? out : fail(q, AM_ENOMEM, "out of memory%s", NULL);
}

static json_t *fn_sum_durations(struct qstate *q, json_t **a, size_t n) {
    size_t m;
    if (n < 1)
        return fail(q, AM_EINVAL, "sum_durations(events)%s", NULL);
    struct qev *ev = events_arg(q, "sum_durations", a[0], &m);
    if (!ev)
        return NULL;
    double total = 0;
    for (size_t i = 0; i < m; i++)
        total += (double)(ev[i].end - ev[i].start) / 1e9;
    am_free(ev);
    return json_real(total);
}

static json_t *fn_concat(struct qstate *q, json_t **a, size_t n) {
    json_t *out = json_array();
    for (size_t i = 0; out && i < n; i++) {
        if (!json_is_array(a[i])) {
            json_decref(out);
            return fail(q, AM_EINVAL, "concat: expects lists%s", NULL);
        }
        if (json_array_size(out) + json_array_size(a[i]) > Q_MAX_EVENTS ||
            json_array_extend(out, a[i])) {
            json_decref(out);
            return fail(q, AM_ELIMIT, "concat: too many events%s", NULL);
        }
    }
    return out ? out : fail(q, AM_ENOMEM, "out of memory%s", NULL);
}

static json_t *call(struct qstate *q, const char *name, json_t **a, size_t n) {
    if (!strcmp(name, "find_bucket"))
        return fn_find_bucket(q, a, n);
    if (!strcmp(name, "query_bucket"))
        return fn_query_bucket(q, a, n);
    if (!strcmp(name, "flood"))
        return fn_flood(q, a, n);
    if (!strcmp(name, "merge_events_by_keys"))
        return fn_merge_by_keys(q, a, n);
    if (!strcmp(name, "filter_keyvals"))
        return fn_filter_keyvals(q, a, n, 0);
    if (!strcmp(name, "exclude_keyvals"))
        return fn_filter_keyvals(q, a, n, 1);
    if (!strcmp(name, "filter_period_intersect"))
        return fn_period_intersect(q, a, n);
    if (!strcmp(name, "sort_by_duration"))
        return fn_sort(q, a, n, 1);
    if (!strcmp(name, "sort_by_timestamp"))
        return fn_sort(q, a, n, 0);
    if (!strcmp(name, "limit_events"))
        return fn_limit(q, a, n);
    if (!strcmp(name, "sum_durations"))
        return fn_sum_durations(q, a, n);
    if (!strcmp(name, "concat"))
        return fn_concat(q, a, n);
    if (!strcmp(name, "nop"))
        return json_null();
    return fail(q, AM_EINVAL, "unknown function '%s' (see docs/api.md for the supported ones)",
                name);
}

am_rc http_aw_query(const struct http_aw_source *src, const char *program, size_t len,
                    int64_t from_ns, int64_t to_ns, json_t **out, char *err, size_t err_len) {
    struct qstate q = {.p = program,
                       .end = program + len,
                       .src = src,
                       .from_ns = from_ns,
                       .to_ns = to_ns,
                       .err = err,
                       .err_len = err_len,
                       .rc = AM_OK};
    *out = NULL;
    err[0] = '\0';
    if (len > 256 * 1024) {
        snprintf(err, err_len, "a query longer than 256 KiB");
        return AM_ELIMIT;
    }
    q.vars = json_object();
    if (!q.vars) {
        snprintf(err, err_len, "out of memory");
        return AM_ENOMEM;
    }
    for (;;) {
        char name[64];
        skip_space(&q);
        if (q.p >= q.end)
            break;
        if (eat(&q, ';'))
            continue;
        if (!ident(&q, name, sizeof name) || !eat(&q, '=')) {
            fail(&q, AM_EINVAL, "expected 'name = expression;'%s", NULL);
            break;
        }
        json_t *v = expr(&q);
        if (!v)
            break;
        if (json_object_set_new(q.vars, name, v)) {
            fail(&q, AM_ENOMEM, "out of memory%s", NULL);
            break;
        }
        skip_space(&q);
        if (q.p < q.end && !eat(&q, ';')) {
            fail(&q, AM_EINVAL, "expected ';' after '%s = ...'", name);
            break;
        }
    }
    if (q.rc == AM_OK) {
        json_t *r = json_object_get(q.vars, "RETURN");
        if (!r)
            fail(&q, AM_EINVAL, "the query sets no RETURN%s", NULL);
        else
            *out = json_incref(r);
    }
    json_decref(q.vars);
    return q.rc;
}
