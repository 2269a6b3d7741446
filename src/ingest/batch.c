/* batch.c — a request body (JSON array, one object, or NDJSON) to validated events,
 * their submission through the one ingest function, and the per-item answer. */
#include "ingest.h"

#include <stdio.h>
#include <string.h>

void am_batch_free(struct am_batch *b) {
    for (size_t i = 0; i < b->n_evs; i++)
        am_free(b->evs[i].payload);
    am_free(b->evs);
    am_free(b->index);
    am_free(b->res);
    am_free(b->keys);
    memset(b, 0, sizeof *b);
}

static am_rc batch_alloc(struct am_batch *b, size_t n) {
    memset(b, 0, sizeof *b);
    b->n_items = n;
    b->res = am_calloc(n, sizeof *b->res);
    b->keys = am_calloc(n, sizeof *b->keys);
    b->evs = am_calloc(n, sizeof *b->evs);
    b->index = am_calloc(n, sizeof *b->index);
    if (!b->res || !b->keys || !b->evs || !b->index) {
        am_batch_free(b);
        return AM_ENOMEM;
    }
    return AM_OK;
}

/* Validates one item into the batch; only running out of memory fails. */
static am_rc add_item(struct am_batch *b, size_t i, const json_t *item, int64_t user_id,
                      const struct am_limits *lim, const char *trace) {
    struct am_item_result *r = &b->res[i];
    struct am_event *e = &b->evs[b->n_evs];
    am_rc rc = am_event_from_json(item, user_id, lim, e, r->reason, sizeof r->reason);
    if (rc == AM_ENOMEM)
        return rc;
    if (rc != AM_OK) {
        const json_t *k = json_is_object(item) ? json_object_get(item, "key") : NULL;
        if (json_is_string(k) && json_string_length(k) <= AM_KEY_MAX)
            memcpy(b->keys[i], json_string_value(k), json_string_length(k) + 1);
        r->status = AM_ITEM_REJECTED;
        return AM_OK;
    }
    if (!e->trace[0] && trace && strlen(trace) <= AM_TRACE_MAX)
        memcpy(e->trace, trace, strlen(trace) + 1);
    memcpy(b->keys[i], e->key, sizeof b->keys[i]);
    b->index[b->n_evs++] = i;
    return AM_OK;
}

am_rc am_batch_from_json(struct am_batch *b, const json_t *v, int64_t user_id,
                         const struct am_limits *lim, size_t max_items, const char *trace,
                         char *err, size_t err_len) {
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    memset(b, 0, sizeof *b);
    if (!json_is_array(v) && !json_is_object(v)) {
        snprintf(err, err_len, "expected an event object or an array of events");
        return AM_EINVAL;
    }
    if (n == 0) {
        snprintf(err, err_len, "no events in the request");
        return AM_EINVAL;
    }
    if (n > max_items) {
        snprintf(err, err_len, "%zu events in one request; the limit is %zu", n, max_items);
        return AM_ELIMIT;
    }
    am_rc rc = batch_alloc(b, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = add_item(b, i, json_is_array(v) ? json_array_get(v, i) : v, user_id, lim, trace);
        if (rc) {
            am_batch_free(b);
            snprintf(err, err_len, "out of memory");
            return rc;
        }
    }
    return AM_OK;
}

/* NDJSON: every line is parsed before anything is validated, so a bad line rejects
 * the whole body and nothing of it is stored. */
static am_rc parse_ndjson(const char *buf, size_t len, size_t max_depth, size_t max_items,
                          json_t **out, char *err, size_t err_len) {
    json_t *arr = json_array();
    if (!arr)
        return AM_ENOMEM;
    size_t line = 0, pos = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        line++;
        size_t a = pos, z = end;
        while (a < z && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r'))
            a++;
        while (z > a && (buf[z - 1] == ' ' || buf[z - 1] == '\t' || buf[z - 1] == '\r'))
            z--;
        pos = end + 1;
        if (a == z)
            continue;
        if (json_array_size(arr) >= max_items) {
            snprintf(err, err_len, "more than %zu events in one request", max_items);
            json_decref(arr);
            return AM_ELIMIT;
        }
        char sub[200];
        json_t *v = NULL;
        am_rc rc = am_json_parse(buf + a, z - a, max_depth, &v, sub, sizeof sub);
        if (rc) {
            snprintf(err, err_len, "line %zu: %s", line, sub);
            json_decref(arr);
            return rc;
        }
        if (json_array_append_new(arr, v)) {
            json_decref(arr);
            return AM_ENOMEM;
        }
    }
    *out = arr;
    return AM_OK;
}

am_rc am_batch_parse(struct am_batch *b, const char *buf, size_t len, int ndjson,
                     int64_t user_id, const struct am_limits *lim, size_t max_items,
                     const char *trace, char *err, size_t err_len) {
    json_t *v = NULL;
    am_rc rc;
    memset(b, 0, sizeof *b);
    if (ndjson)
        rc = parse_ndjson(buf, len, lim->max_depth, max_items, &v, err, err_len);
    else
        rc = am_json_parse(buf, len, lim->max_depth, &v, err, err_len);
    if (rc)
        return rc;
    rc = am_batch_from_json(b, v, user_id, lim, max_items, trace, err, err_len);
    json_decref(v);
    return rc;
}

am_rc am_batch_submit(struct am_server *srv, int64_t user_id, struct am_batch *b) {
    if (b->n_evs == 0)
        return AM_OK;
    struct am_item_result *tmp = am_calloc(b->n_evs, sizeof *tmp);
    if (!tmp)
        return AM_ENOMEM;
    am_rc rc = am_ingest_submit(srv, user_id, b->evs, b->n_evs, tmp);
    if (rc == AM_OK) {
        for (size_t i = 0; i < b->n_evs; i++)
            b->res[b->index[i]] = tmp[i];
    }
    am_free(tmp);
    return rc;
}

json_t *am_batch_results_json(const struct am_batch *b) {
    static const char *names[] = {"stored", "duplicate", "rejected"};
    int64_t counts[3] = {0, 0, 0};
    json_t *arr = json_array();
    json_t *o = NULL;
    if (!arr)
        return NULL;
    for (size_t i = 0; i < b->n_items; i++) {
        const struct am_item_result *r = &b->res[i];
        json_t *it = json_pack("{s:I, s:s}", "index", (json_int_t)i, "status", names[r->status]);
        if (!it || json_array_append_new(arr, it))
            goto fail;
        if (b->keys[i][0] && json_object_set_new(it, "key", json_string(b->keys[i])))
            goto fail;
        if (r->status == AM_ITEM_REJECTED) {
            if (json_object_set_new(it, "reason", json_string(r->reason)))
                goto fail;
        } else if (json_object_set_new(it, "id", json_integer(r->id))) {
            goto fail;
        }
        counts[r->status]++;
    }
    o = json_pack("{s:o, s:I, s:I, s:I}", "results", arr, "stored", (json_int_t)counts[0],
                  "duplicate", (json_int_t)counts[1], "rejected", (json_int_t)counts[2]);
    return o;
fail:
    json_decref(arr);
    return NULL;
}
