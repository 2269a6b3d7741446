/* summary.c — a day in a few sentences: the places visited, the meetings, how much was
 * written and read, sleep and workouts. A template writes it from the day's events; with
 * a chat model the SummarizeDay signature phrases it from the same facts. Stored as a
 * derived.summary span over the day, keyed by the date, citing the events it used. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <stdio.h>
#include <string.h>

#define DAY_NS (86400LL * AM_NS_PER_S)

static const struct am_sig_field sum_in[] = {
    {"date", "string", "the day, YYYY-MM-DD"},
    {"facts", "string", "what the person's data says about the day"},
};
static const struct am_sig_field sum_out[] = {
    {"summary", "string", "two or three sentences about the day, in the second person"},
};
static const struct am_signature summarize_day = {
    "SummarizeDay",
    "Summarise one day of a person's life from the facts their own data gives. Do not add"
    " anything the facts do not say.",
    sum_in, sum_out, 2, 1, 1};

static am_rc day_events(struct am_server *srv, int64_t user_id, const char *stream,
                        int64_t from, int64_t to, struct am_event_list *l) {
    struct am_query q = {.stream = stream, .from_ns = from, .to_ns = to, .limit = 5000};
    memset(l, 0, sizeof *l);
    return srv->store.ops->query(srv->store.impl, user_id, &q, l);
}

static const char *field(const struct am_event *e, const char *k, json_t **hold) {
    *hold = NULL;
    if (am_json_parse(e->payload, strlen(e->payload), 64, hold, NULL, 0) != AM_OK)
        return NULL;
    return json_string_value(json_object_get(*hold, k));
}

am_rc am_agent_summarize_day(struct am_server *srv, int64_t user_id, int64_t day_utc_ns,
                             json_t **out) {
    int64_t offset = srv->cfg.utc_offset_min * 60 * AM_NS_PER_S;
    int64_t from = day_utc_ns - offset, to = from + DAY_NS;
    struct am_buf facts;
    json_t *ev = json_array();
    struct am_event_list l;
    char date[48];
    am_rc rc = ev ? AM_OK : AM_ENOMEM;
    *out = NULL;
    am_buf_init(&facts, 1u << 16);
    am_time_format(day_utc_ns, date, sizeof date);
    date[10] = '\0';
    /* Places, in the order visited, without repeats in a row. */
    if (rc == AM_OK && (rc = day_events(srv, user_id, "location.place", from, to, &l)) == AM_OK) {
        char last[64] = "";
        int n = 0;
        for (size_t i = 0; i < l.n; i++) {
            json_t *h;
            const char *kind = field(&l.items[i], "event", &h);
            const char *name = kind && !strcmp(kind, "visit")
                                   ? json_string_value(json_object_get(h, "name"))
                                   : NULL;
            if (name && strcmp(name, last) != 0) {
                am_buf_printf(&facts, "%s%s", n++ ? ", " : "Places: ", name);
                snprintf(last, sizeof last, "%s", name);
                if (json_array_size(ev) < 32)
                    json_array_append_new(ev, json_integer(l.items[i].id));
            }
            json_decref(h);
        }
        if (n)
            am_buf_appends(&facts, ".\n");
        am_event_list_free(&l);
    }
    if (rc == AM_OK && (rc = day_events(srv, user_id, "calendar.event", from, to, &l)) == AM_OK) {
        for (size_t i = 0; i < l.n; i++) {
            json_t *h;
            const char *title = field(&l.items[i], "title", &h);
            if (title) {
                char t[48];
                am_time_format(l.items[i].ts_ns + offset, t, sizeof t);
                am_buf_printf(&facts, "Meeting at %.5s: %s.\n", t + 11, title);
                if (json_array_size(ev) < 32)
                    json_array_append_new(ev, json_integer(l.items[i].id));
            }
            json_decref(h);
        }
        am_event_list_free(&l);
    }
    static const char *const counted[][2] = {{"comms.email", "emails"},
                                             {"comms.message", "messages"},
                                             {"audio.transcript", "things said"},
                                             {"health.workout", "workouts"}};
    for (size_t k = 0; rc == AM_OK && k < 4; k++) {
        if ((rc = day_events(srv, user_id, counted[k][0], from, to, &l)) != AM_OK)
            break;
        if (l.n) {
            am_buf_printf(&facts, "%zu %s.\n", l.n, counted[k][1]);
            if (json_array_size(ev) < 32)
                json_array_append_new(ev, json_integer(l.items[0].id));
        }
        am_event_list_free(&l);
    }
    /* Sleep: the night that ended this morning. */
    if (rc == AM_OK &&
        (rc = day_events(srv, user_id, "health.sleep", from - 12 * 3600 * AM_NS_PER_S,
                         from + 12 * 3600 * AM_NS_PER_S, &l)) == AM_OK) {
        double h = 0;
        for (size_t i = 0; i < l.n; i++) {
            json_t *hold;
            const char *st = field(&l.items[i], "stage", &hold);
            if (st && strcmp(st, "awake") && strcmp(st, "in_bed") &&
                l.items[i].ts_end_ns != AM_TS_NONE)
                h += (double)(l.items[i].ts_end_ns - l.items[i].ts_ns) / 3.6e12;
            json_decref(hold);
        }
        if (h > 0)
            am_buf_printf(&facts, "Slept %.1f hours the night before.\n", h);
        am_event_list_free(&l);
    }
    if (rc != AM_OK || !facts.len) {
        am_buf_free(&facts);
        json_decref(ev);
        return rc != AM_OK ? rc : AM_ENOTFOUND;
    }
    char summary[2048], key[64], reason[256], err[256] = "";
    snprintf(summary, sizeof summary, "%s", facts.data);
    for (char *c = summary; *c; c++)
        if (*c == '\n')
            *c = ' ';
    json_t *in = json_pack("{s:s, s:s}", "date", date, "facts", facts.data), *ans = NULL;
    const char *model = NULL;
    if (in && am_predict(srv, user_id, &summarize_day, in, &ans, err, sizeof err) == AM_OK) {
        const char *s = json_string_value(json_object_get(ans, "summary"));
        if (s && *s) {
            snprintf(summary, sizeof summary, "%s", s);
            model = srv->cfg.chat_model;
        }
    }
    json_decref(in);
    json_decref(ans);
    am_buf_free(&facts);
    snprintf(key, sizeof key, "summary:%s", date);
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:{s:s, s:o, s:s}}", "stream",
                          "derived.summary", "source", "am.agent", "ts_ns", (json_int_t)from,
                          "ts_end_ns", (json_int_t)to, "key", key, "payload", "text", summary,
                          "evidence", ev, "date", date);
    if (o && model && *model)
        json_object_set_new(json_object_get(o, "payload"), "model", json_string(model));
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {.max_depth = 32, .max_payload_bytes = 65536};
    memset(&e, 0, sizeof e);
    rc = o ? am_event_from_json(o, user_id, &lim, &e, reason, sizeof reason) : AM_ENOMEM;
    json_decref(o);
    if (rc == AM_OK)
        rc = am_ingest_submit(srv, user_id, &e, 1, &res);
    if (rc == AM_OK) {
        e.id = res.id;
        struct am_event stored;
        memset(&stored, 0, sizeof stored);
        /* The stored one: a second call for the same day answers the first summary. */
        if (srv->store.ops->get_event(srv->store.impl, user_id, res.id, &stored) == AM_OK)
            *out = am_event_to_json(&stored);
        am_event_clear(&stored);
        if (!*out)
            rc = AM_ENOMEM;
    }
    am_event_clear(&e);
    return rc;
}
