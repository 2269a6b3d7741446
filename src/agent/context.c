/* context.c — the person's "now": for each aspect, the latest events that say something
 * about it, with their ids and ages, so whatever acts on the context (a nudge, a model)
 * can cite its evidence. Reads only; one user. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <string.h>

#define MIN_NS (60 * AM_NS_PER_S)
#define HOUR_NS (60 * MIN_NS)

/* The newest events of a stream in [from, now], newest first. */
static am_rc latest(struct am_server *srv, int64_t user_id, const char *stream, int64_t from,
                    int64_t to, size_t limit, int descending, struct am_event_list *out) {
    struct am_query q = {.stream = stream, .from_ns = from, .to_ns = to, .limit = limit,
                         .descending = descending};
    memset(out, 0, sizeof *out);
    return srv->store.ops->query(srv->store.impl, user_id, &q, out);
}

/* {"id", "stream", "ts", "age_s", "payload"} for one event. */
static json_t *item(const struct am_event *e, int64_t now) {
    json_t *j = am_event_to_json(e);
    if (!j)
        return NULL;
    json_object_set_new(j, "age_s", json_real((double)(now - e->ts_ns) / 1e9));
    json_object_del(j, "key");
    json_object_del(j, "trace");
    json_object_del(j, "received");
    json_object_del(j, "received_ns");
    return j;
}

static json_t *payload_of(const struct am_event *e) {
    json_t *p = NULL;
    if (am_json_parse(e->payload, e->payload_len ? e->payload_len : strlen(e->payload), 64, &p,
                      NULL, 0) != AM_OK)
        return NULL;
    return p;
}

/* The newest event of the first of these streams that has one within `window`. */
static am_rc newest_of(struct am_server *srv, int64_t user_id, const char *const *streams,
                       size_t n, int64_t now, int64_t window, json_t *ctx, const char *name) {
    const struct am_event *best = NULL;
    struct am_event_list lists[4];
    am_rc rc = AM_OK;
    memset(lists, 0, sizeof lists);
    for (size_t i = 0; i < n && i < 4 && rc == AM_OK; i++) {
        rc = latest(srv, user_id, streams[i], now - window, now + 1, 1, 1, &lists[i]);
        if (rc == AM_OK && lists[i].n && (!best || lists[i].items[0].ts_ns > best->ts_ns))
            best = &lists[i].items[0];
    }
    if (rc == AM_OK && best)
        json_object_set_new(ctx, name, item(best, now));
    for (size_t i = 0; i < 4; i++)
        am_event_list_free(&lists[i]);
    return rc;
}

/* Several recent events as a list, plus their ids as evidence. */
static am_rc recent_list(struct am_server *srv, int64_t user_id, const char *stream, int64_t from,
                         int64_t to, size_t limit, int descending, int64_t now, json_t *ctx,
                         const char *name) {
    struct am_event_list l;
    am_rc rc = latest(srv, user_id, stream, from, to, limit, descending, &l);
    if (rc != AM_OK)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < l.n; i++)
        json_array_append_new(arr, item(&l.items[i], now));
    if (arr && json_array_size(arr))
        json_object_set_new(ctx, name, arr);
    else
        json_decref(arr);
    am_event_list_free(&l);
    return AM_OK;
}

/* Last night: the sleep spans that ended in the 18 hours before now, summed by stage. */
static am_rc sleep_summary(struct am_server *srv, int64_t user_id, int64_t now, json_t *ctx) {
    struct am_event_list l;
    am_rc rc = latest(srv, user_id, "health.sleep", now - 18 * HOUR_NS, now + 1, 2000, 0, &l);
    if (rc != AM_OK || l.n == 0) {
        am_event_list_free(&l);
        return rc;
    }
    double asleep = 0, in_bed = 0;
    int64_t first = l.items[0].ts_ns, last = 0;
    json_t *ids = json_array();
    for (size_t i = 0; i < l.n; i++) {
        const struct am_event *e = &l.items[i];
        int64_t end = e->ts_end_ns != AM_TS_NONE ? e->ts_end_ns : e->ts_ns;
        double h = (double)(end - e->ts_ns) / 3.6e12;
        json_t *p = payload_of(e);
        const char *stage = p ? json_string_value(json_object_get(p, "stage")) : NULL;
        if (stage && strcmp(stage, "awake") != 0 && strcmp(stage, "in_bed") != 0)
            asleep += h;
        in_bed += h;
        json_decref(p);
        last = end > last ? end : last;
        if (ids && json_array_size(ids) < 200)
            json_array_append_new(ids, json_integer(e->id));
    }
    char a[48], b[48];
    am_time_format(first, a, sizeof a);
    am_time_format(last, b, sizeof b);
    json_object_set_new(ctx, "sleep",
                        json_pack("{s:f, s:f, s:s, s:s, s:o, s:f}", "asleep_h", asleep,
                                  "in_bed_h", in_bed, "from", a, "to", b, "evidence", ids,
                                  "age_s", (double)(now - last) / 1e9));
    am_event_list_free(&l);
    return AM_OK;
}

/* Heart rate: the latest reading and the mean of the last 15 minutes against the hour
 * before, so a rise is visible without a chart. */
static am_rc heart_rate(struct am_server *srv, int64_t user_id, int64_t now, json_t *ctx) {
    struct am_event_list l;
    am_rc rc = latest(srv, user_id, "health.heart_rate", now - 75 * MIN_NS, now + 1, 5000, 1, &l);
    if (rc != AM_OK || l.n == 0) {
        am_event_list_free(&l);
        return rc;
    }
    double recent = 0, before = 0;
    int nr = 0, nb = 0;
    for (size_t i = 0; i < l.n; i++) {
        json_t *p = payload_of(&l.items[i]);
        double bpm = p ? json_number_value(json_object_get(p, "bpm")) : 0;
        json_decref(p);
        if (bpm <= 0)
            continue;
        if (l.items[i].ts_ns >= now - 15 * MIN_NS) {
            recent += bpm;
            nr++;
        } else {
            before += bpm;
            nb++;
        }
    }
    json_t *hr = item(&l.items[0], now);
    if (hr && nr)
        json_object_set_new(hr, "mean_15m", json_real(recent / nr));
    if (hr && nb)
        json_object_set_new(hr, "mean_prev_hour", json_real(before / nb));
    if (hr && nr && nb)
        json_object_set_new(hr, "trend", json_string(recent / nr > before / nb * 1.1   ? "rising"
                                                     : recent / nr < before / nb * 0.9 ? "falling"
                                                                                        : "steady"));
    if (hr)
        json_object_set_new(ctx, "heart_rate", hr);
    am_event_list_free(&l);
    return AM_OK;
}

/* Calendar: what is on now and what comes in the next 24 hours. */
static am_rc calendar(struct am_server *srv, int64_t user_id, int64_t now, json_t *ctx) {
    struct am_event_list l;
    am_rc rc = latest(srv, user_id, "calendar.event", now - 12 * HOUR_NS, now + 24 * HOUR_NS,
                      200, 0, &l);
    if (rc != AM_OK)
        return rc;
    json_t *cur = json_array(), *next = json_array();
    for (size_t i = 0; cur && next && i < l.n; i++) {
        const struct am_event *e = &l.items[i];
        int64_t end = e->ts_end_ns != AM_TS_NONE ? e->ts_end_ns : e->ts_ns;
        json_t *it = item(e, now);
        if (!it)
            continue;
        if (e->ts_ns <= now && end > now)
            json_array_append_new(cur, it);
        else if (e->ts_ns > now && json_array_size(next) < 10) {
            json_object_set_new(it, "starts_in_s", json_real((double)(e->ts_ns - now) / 1e9));
            json_array_append_new(next, it);
        } else
            json_decref(it);
    }
    if (json_array_size(cur))
        json_object_set(ctx, "calendar_now", cur);
    if (json_array_size(next))
        json_object_set(ctx, "calendar_next", next);
    json_decref(cur);
    json_decref(next);
    am_event_list_free(&l);
    return AM_OK;
}

am_rc am_agent_context(struct am_server *srv, int64_t user_id, int64_t now, json_t **out) {
    static const char *const loc[] = {"location.gps"};
    static const char *const place[] = {"location.place"};
    static const char *const motion[] = {"motion.activity"};
    static const char *const app[] = {"desktop.window", "app.usage", "app.lifecycle"};
    static const char *const screen[] = {"screen.state"};
    json_t *ctx = json_object();
    char ts[48];
    am_rc rc = ctx ? AM_OK : AM_ENOMEM;
    *out = NULL;
    if (rc == AM_OK)
        rc = newest_of(srv, user_id, loc, 1, now, 24 * HOUR_NS, ctx, "location");
    if (rc == AM_OK)
        rc = newest_of(srv, user_id, place, 1, now, 24 * HOUR_NS, ctx, "place");
    if (rc == AM_OK)
        rc = newest_of(srv, user_id, motion, 1, now, 2 * HOUR_NS, ctx, "motion");
    if (rc == AM_OK)
        rc = newest_of(srv, user_id, app, 3, now, 2 * HOUR_NS, ctx, "app");
    if (rc == AM_OK)
        rc = newest_of(srv, user_id, screen, 1, now, 24 * HOUR_NS, ctx, "screen");
    if (rc == AM_OK)
        rc = recent_list(srv, user_id, "audio.transcript", now - 30 * MIN_NS, now + 1, 5, 1, now,
                         ctx, "speech");
    if (rc == AM_OK)
        rc = recent_list(srv, user_id, "comms.message", now - 24 * HOUR_NS, now + 1, 5, 1, now,
                         ctx, "messages");
    if (rc == AM_OK)
        rc = recent_list(srv, user_id, "derived.habit", now - 7 * 24 * HOUR_NS, now + 1, 5, 1,
                         now, ctx, "habits");
    if (rc == AM_OK)
        rc = calendar(srv, user_id, now, ctx);
    if (rc == AM_OK)
        rc = sleep_summary(srv, user_id, now, ctx);
    if (rc == AM_OK)
        rc = heart_rate(srv, user_id, now, ctx);
    if (rc != AM_OK) {
        json_decref(ctx);
        return rc;
    }
    am_time_format(now, ts, sizeof ts);
    json_object_set_new(ctx, "now", json_string(ts));
    *out = ctx;
    return AM_OK;
}
