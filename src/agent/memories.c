/* memories.c — what AM believes about a person (derived.memory events) and what the
 * person said about it (derived.feedback events with rating confirm / reject / edit). A
 * memory is never rewritten: its status and, after an edit, its statement are folded
 * from the newest verdict, so the history of a belief stays on the time axis. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <stdio.h>
#include <string.h>

#define MAX_FEEDBACK 20000

struct verdict {
    int64_t target, ts_ns, id;
    char rating[16];
    char *statement; /* owned; edits only */
};

static void verdicts_free(struct verdict *v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        am_free(v[i].statement);
    am_free(v);
}

/* The newest verdict per memory, from the user's feedback events. */
static am_rc load_verdicts(struct am_server *srv, int64_t user_id, struct verdict **out,
                           size_t *n) {
    struct am_query q = {.stream = "derived.feedback", .from_ns = AM_TS_NONE,
                         .to_ns = AM_TS_NONE, .limit = MAX_FEEDBACK, .descending = 1};
    struct am_event_list l = {0};
    *out = NULL;
    *n = 0;
    am_rc rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l);
    if (rc != AM_OK)
        return rc;
    struct verdict *v = am_calloc(l.n + 1, sizeof *v);
    if (!v) {
        am_event_list_free(&l);
        return AM_ENOMEM;
    }
    for (size_t i = 0; i < l.n; i++) { /* newest first: the first seen per target wins */
        json_t *p = NULL;
        const struct am_event *e = &l.items[i];
        if (am_json_parse(e->payload, strlen(e->payload), 64, &p, NULL, 0) != AM_OK)
            continue;
        int64_t target = json_integer_value(json_object_get(p, "target"));
        const char *rating = json_string_value(json_object_get(p, "rating"));
        size_t k = 0;
        while (k < *n && v[k].target != target)
            k++;
        if (k == *n && rating &&
            (!strcmp(rating, "confirm") || !strcmp(rating, "reject") || !strcmp(rating, "edit"))) {
            v[k].target = target;
            v[k].ts_ns = e->ts_ns;
            v[k].id = e->id;
            snprintf(v[k].rating, sizeof v[k].rating, "%s", rating);
            const char *st = json_string_value(json_object_get(p, "statement"));
            v[k].statement = st ? am_strdup(st) : NULL;
            (*n)++;
        }
        json_decref(p);
    }
    am_event_list_free(&l);
    *out = v;
    return AM_OK;
}

/* One memory as the API shows it, with its newest verdict folded in. */
static json_t *memory_json(const struct am_event *e, const struct verdict *v, size_t nv) {
    json_t *p = NULL;
    if (am_json_parse(e->payload, strlen(e->payload), 64, &p, NULL, 0) != AM_OK)
        return NULL;
    char ts[48];
    am_time_format(e->ts_ns, ts, sizeof ts);
    json_object_set_new(p, "id", json_integer(e->id));
    json_object_set_new(p, "ts", json_string(ts));
    json_object_set_new(p, "source", json_string(e->source));
    if (!json_object_get(p, "status"))
        json_object_set_new(p, "status", json_string("inferred"));
    json_object_set_new(p, "first_seen", json_string(ts));
    if (e->ts_end_ns != AM_TS_NONE) {
        am_time_format(e->ts_end_ns, ts, sizeof ts);
        json_object_set_new(p, "last_seen", json_string(ts));
    } else {
        json_object_set_new(p, "last_seen", json_string(ts));
    }
    for (size_t i = 0; i < nv; i++) {
        if (v[i].target != e->id)
            continue;
        const char *status = !strcmp(v[i].rating, "confirm")  ? "confirmed"
                             : !strcmp(v[i].rating, "reject") ? "rejected"
                                                              : "edited";
        if (v[i].statement && !strcmp(status, "edited")) {
            json_object_set(p, "inferred_statement", json_object_get(p, "statement"));
            json_object_set_new(p, "statement", json_string(v[i].statement));
        }
        json_object_set_new(p, "status", json_string(status));
        json_object_set_new(p, "verdict_event", json_integer(v[i].id));
    }
    return p;
}

am_rc am_agent_memories(struct am_server *srv, int64_t user_id, const char *status, size_t limit,
                        json_t **out) {
    struct am_query q = {.stream = "derived.memory", .from_ns = AM_TS_NONE, .to_ns = AM_TS_NONE,
                         .limit = 10000, .descending = 1};
    struct am_event_list l = {0};
    struct verdict *v = NULL;
    size_t nv = 0;
    *out = NULL;
    am_rc rc = load_verdicts(srv, user_id, &v, &nv);
    if (rc == AM_OK)
        rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l);
    json_t *arr = rc == AM_OK ? json_array() : NULL;
    if (rc == AM_OK && !arr)
        rc = AM_ENOMEM;
    for (size_t i = 0; arr && i < l.n && json_array_size(arr) < limit; i++) {
        json_t *m = memory_json(&l.items[i], v, nv);
        if (!m)
            continue;
        const char *st = json_string_value(json_object_get(m, "status"));
        if (status && (!st || strcmp(st, status) != 0)) {
            json_decref(m);
            continue;
        }
        json_array_append_new(arr, m);
    }
    am_event_list_free(&l);
    verdicts_free(v, nv);
    if (rc == AM_OK)
        *out = json_pack("{s:o}", "memories", arr);
    else
        json_decref(arr);
    return rc;
}

am_rc am_agent_memory_verdict(struct am_server *srv, int64_t user_id, int64_t memory_id,
                              const char *status, const char *statement, json_t **out,
                              char *err, size_t err_len) {
    struct am_event mem, fb;
    struct am_item_result res;
    char reason[256], key[AM_KEY_MAX + 1];
    const char *rating;
    *out = NULL;
    memset(&mem, 0, sizeof mem);
    memset(&fb, 0, sizeof fb);
    if (statement && *statement)
        rating = "edit";
    else if (status && !strcmp(status, "confirmed"))
        rating = "confirm";
    else if (status && !strcmp(status, "rejected"))
        rating = "reject";
    else {
        snprintf(err, err_len, "status: confirmed or rejected, or a new statement");
        return AM_EINVAL;
    }
    am_rc rc = srv->store.ops->get_event(srv->store.impl, user_id, memory_id, &mem);
    if (rc == AM_OK && strcmp(mem.stream, "derived.memory") != 0)
        rc = AM_ENOTFOUND;
    if (rc != AM_OK) {
        snprintf(err, err_len, "no memory %lld", (long long)memory_id);
        am_event_clear(&mem);
        return rc;
    }
    int64_t now = am_now_ns();
    /* A verdict is an event of its own: when it was given is part of the record. */
    snprintf(key, sizeof key, "verdict:%lld:%lld", (long long)memory_id, (long long)now);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:I, s:s}}", "stream", "derived.feedback",
                          "source", "am", "ts_ns", (json_int_t)now, "key", key, "payload",
                          "target", (json_int_t)memory_id, "rating", rating);
    if (o && statement && *statement)
        json_object_set_new(json_object_get(o, "payload"), "statement", json_string(statement));
    struct am_limits lim = {.max_depth = (size_t)srv->cfg.max_json_depth,
                            .max_payload_bytes = (size_t)srv->cfg.max_payload_bytes};
    rc = !o ? AM_ENOMEM : am_event_from_json(o, user_id, &lim, &fb, reason, sizeof reason);
    json_decref(o);
    if (rc == AM_EINVAL)
        snprintf(err, err_len, "%s", reason);
    if (rc == AM_OK)
        rc = am_ingest_submit(srv, user_id, &fb, 1, &res);
    if (rc == AM_OK && res.status == AM_ITEM_REJECTED) {
        snprintf(err, err_len, "%s", res.reason);
        rc = AM_EINVAL;
    }
    if (rc == AM_OK) {
        struct verdict v = {.target = memory_id, .ts_ns = now, .id = res.id,
                            .statement = (char *)(statement && *statement ? statement : NULL)};
        snprintf(v.rating, sizeof v.rating, "%s", rating);
        *out = memory_json(&mem, &v, 1);
        if (!*out)
            rc = AM_ENOMEM;
    }
    am_event_clear(&fb);
    am_event_clear(&mem);
    return rc;
}
