/* infer.c — memories from the analyzers' findings. Each candidate has a stable subject
 * (a routine's place and weekday, a correlation's pair, a person), and its memory's key
 * is made of that subject: restating it is a duplicate, so a memory is stored once and a
 * rejected one is never inferred again. The statement comes from the InferMemory
 * signature when a chat model is configured, else from a template. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct am_sig_field infer_in[] = {
    {"kind", "string", "what sort of finding this is: routine, fact or relationship"},
    {"finding", "string", "what the analysis found, in plain words"},
    {"evidence", "array", "the events it rests on, as short texts"},
};
static const struct am_sig_field infer_out[] = {
    {"statement", "string", "one sentence about the person, in the second person"},
    {"kind", "string", "fact, preference, routine, relationship or event"},
    {"confidence", "number", "0..1: how sure the evidence makes you"},
};
static const struct am_signature infer_memory = {
    "InferMemory",
    "You keep a log of what can be inferred about a person from their own data. Turn the"
    " finding into one memory, faithful to the evidence; never add what it does not show.",
    infer_in, infer_out, 3, 3, 1};

struct candidate {
    char subject[96], kind[16], finding[300];
    double confidence;
    json_t *evidence; /* ids */
};

static am_rc store_memory(struct am_server *srv, int64_t user_id, int64_t now,
                          const struct candidate *c, size_t *n) {
    char statement[400], kind[16], key[AM_KEY_MAX + 1], reason[256], err[256] = "";
    double conf = c->confidence;
    snprintf(statement, sizeof statement, "%s", c->finding);
    snprintf(kind, sizeof kind, "%s", c->kind);
    snprintf(key, sizeof key, "mem:%s", c->subject);
    /* Only a new subject is worth a model call: ask for the key first. */
    struct am_query q = {.stream = "derived.memory", .source = "am.infer",
                         .from_ns = AM_TS_NONE, .to_ns = AM_TS_NONE, .limit = 10000};
    struct am_event_list l = {0};
    if (srv->store.ops->query(srv->store.impl, user_id, &q, &l) == AM_OK) {
        for (size_t i = 0; i < l.n; i++)
            if (!strcmp(l.items[i].key, key)) {
                am_event_list_free(&l);
                return AM_OK;
            }
    }
    am_event_list_free(&l);
    json_t *in = json_pack("{s:s, s:s, s:O}", "kind", c->kind, "finding", c->finding,
                           "evidence", c->evidence), *out = NULL;
    const char *model = NULL;
    if (in && am_predict(srv, user_id, &infer_memory, in, &out, err, sizeof err) == AM_OK) {
        const char *st = json_string_value(json_object_get(out, "statement"));
        const char *k = json_string_value(json_object_get(out, "kind"));
        double cf = json_number_value(json_object_get(out, "confidence"));
        if (st && *st)
            snprintf(statement, sizeof statement, "%s", st);
        if (k && (!strcmp(k, "fact") || !strcmp(k, "preference") || !strcmp(k, "routine") ||
                  !strcmp(k, "relationship") || !strcmp(k, "event")))
            snprintf(kind, sizeof kind, "%s", k);
        if (cf > 0 && cf <= 1)
            conf = cf;
        model = srv->cfg.chat_model;
    }
    json_decref(in);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s, s:f, s:O, s:s, s:s}}", "stream",
                          "derived.memory", "source", "am.infer", "ts_ns", (json_int_t)now, "key",
                          key, "payload", "statement", statement, "kind", kind, "confidence",
                          conf, "evidence", c->evidence, "status", "inferred", "finding",
                          c->finding);
    json_decref(out);
    if (o && model && *model)
        json_object_set_new(json_object_get(o, "payload"), "model", json_string(model));
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {.max_depth = 32, .max_payload_bytes = 65536};
    memset(&e, 0, sizeof e);
    am_rc rc = o ? am_event_from_json(o, user_id, &lim, &e, reason, sizeof reason) : AM_ENOMEM;
    json_decref(o);
    if (rc == AM_OK)
        rc = am_ingest_submit(srv, user_id, &e, 1, &res);
    if (rc == AM_OK && res.status == AM_ITEM_STORED)
        (*n)++;
    am_event_clear(&e);
    return rc;
}

am_rc am_memories_infer(struct am_server *srv, int64_t user_id, int64_t now, size_t *n) {
    struct am_query q = {.from_ns = now - 35LL * 86400 * AM_NS_PER_S, .to_ns = now + 1,
                         .limit = 5000, .descending = 1};
    struct am_event_list l = {0};
    am_rc rc = AM_OK;
    *n = 0;
    /* Routines and correlations: the newest finding per subject. */
    const char *streams[] = {"derived.habit", "derived.correlation"};
    for (int s = 0; s < 2 && rc == AM_OK; s++) {
        q.stream = streams[s];
        if ((rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l)) != AM_OK)
            break;
        for (size_t i = 0; i < l.n && rc == AM_OK; i++) {
            json_t *p = NULL;
            if (am_json_parse(l.items[i].payload, strlen(l.items[i].payload), 64, &p, NULL, 0) !=
                AM_OK)
                continue;
            struct candidate c = {0};
            const char *kind = json_string_value(json_object_get(p, "kind"));
            if (s == 0 && kind && !strcmp(kind, "routine")) {
                snprintf(c.subject, sizeof c.subject, "routine:%s:%s",
                         json_string_value(json_object_get(p, "place_id")),
                         json_string_value(json_object_get(p, "weekday")));
                snprintf(c.kind, sizeof c.kind, "routine");
                snprintf(c.finding, sizeof c.finding, "You go to %s on %ss around %02lld:00",
                         json_string_value(json_object_get(p, "place")),
                         json_string_value(json_object_get(p, "weekday")),
                         (long long)json_integer_value(json_object_get(p, "hour")));
                double seen = (double)json_integer_value(json_object_get(p, "weeks_seen"));
                double weeks = (double)json_integer_value(json_object_get(p, "weeks"));
                c.confidence = weeks > 0 ? fmin(0.95, seen / weeks) : 0.5;
            } else if (s == 1) {
                snprintf(c.subject, sizeof c.subject, "correlation:%s:%s:%lld",
                         json_string_value(json_object_get(p, "a")),
                         json_string_value(json_object_get(p, "b")),
                         (long long)json_integer_value(json_object_get(p, "lag_days")));
                snprintf(c.kind, sizeof c.kind, "fact");
                snprintf(c.finding, sizeof c.finding, "%s",
                         json_string_value(json_object_get(p, "text")));
                c.confidence = fmin(0.95, fabs(json_number_value(json_object_get(p, "r"))));
            }
            if (c.subject[0]) {
                c.evidence = json_deep_copy(json_object_get(p, "evidence"));
                if (!c.evidence)
                    c.evidence = json_array();
                rc = store_memory(srv, user_id, now, &c, n);
                json_decref(c.evidence);
            }
            json_decref(p);
        }
        am_event_list_free(&l);
    }
    /* People who appear in several streams. */
    json_t *people = NULL;
    if (rc == AM_OK && am_people(srv, user_id, now, &people) == AM_OK) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(people, "people"), i, x) {
            int streams = (int)json_integer_value(json_object_get(x, "streams"));
            int mentions = (int)json_integer_value(json_object_get(x, "mentions"));
            if (streams < 2 || mentions < 3 || rc != AM_OK)
                continue;
            struct candidate c = {0};
            snprintf(c.subject, sizeof c.subject, "person:%s",
                     json_string_value(json_object_get(x, "key")));
            snprintf(c.kind, sizeof c.kind, "relationship");
            char where[160] = "";
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(x, "where"), k, v) {
                size_t len = strlen(where);
                snprintf(where + len, sizeof where - len, "%s%s %lld", len ? ", " : "", k,
                         (long long)json_integer_value(v));
            }
            snprintf(c.finding, sizeof c.finding, "%s is part of your life (%s)",
                     json_string_value(json_object_get(x, "name")), where);
            c.confidence = fmin(0.9, 0.3 + 0.05 * mentions);
            c.evidence = json_deep_copy(json_object_get(x, "evidence"));
            rc = store_memory(srv, user_id, now, &c, n);
            json_decref(c.evidence);
        }
    }
    json_decref(people);
    return rc;
}
