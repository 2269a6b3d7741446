/* habits.c — routines and their lapses, from place visits: a visit to the same place on
 * the same weekday around the same hour, in most of the last weeks, is a routine ("the
 * gym on Mondays around 18:00"). When the routine's day has passed its hour by two hours
 * without a visit, that is a lapse. Both are stored as derived.habit events citing the
 * visits they rest on; keys per routine and week make reruns harmless. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <stdio.h>
#include <string.h>

#define WEEK_NS (7LL * 86400 * AM_NS_PER_S)
#define HOUR_NS (3600LL * AM_NS_PER_S)
#define WEEKS 4
#define MAX_VISITS 4000
#define MAX_EVIDENCE 16

static const char *const DAY[] = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                  "Friday", "Saturday", "Sunday"};

struct visit {
    int64_t id, ts;
    char place[40], name[48];
    int wd, hour;
};

/* Weekday (0 Monday) and hour of a UTC time in local time. */
static void local_wd_hour(int64_t ts, int64_t offset, int *wd, int *hour, int64_t *day_start) {
    int64_t l = ts + offset, day = l >= 0 ? l / (24 * HOUR_NS) : (l - 24 * HOUR_NS + 1) / (24 * HOUR_NS);
    *wd = (int)(((day % 7) + 7 + 3) % 7);
    *hour = (int)((l - day * 24 * HOUR_NS) / HOUR_NS);
    if (day_start)
        *day_start = day * 24 * HOUR_NS - offset;
}

static am_rc store_habit(struct am_server *srv, int64_t user_id, int64_t ts, const char *key,
                         const char *text, const char *kind, const struct visit *v,
                         const int64_t *ev, size_t nev, int seen, int weeks) {
    char reason[256];
    json_t *evidence = json_array();
    for (size_t i = 0; evidence && i < nev; i++)
        json_array_append_new(evidence, json_integer(ev[i]));
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:o, s:s, s:s, s:s, s:s, s:i, s:i,"
                          " s:i}}",
                          "stream", "derived.habit", "source", "am.habits", "ts_ns",
                          (json_int_t)ts, "key", key, "payload", "text", text, "evidence",
                          evidence ? evidence : json_array(), "kind", kind, "place_id", v->place,
                          "place", v->name, "weekday", DAY[v->wd], "hour", v->hour,
                          "weeks_seen", seen, "weeks", weeks);
    if (!o)
        return AM_ENOMEM;
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {.max_depth = 32, .max_payload_bytes = 65536};
    memset(&e, 0, sizeof e);
    am_rc rc = am_event_from_json(o, user_id, &lim, &e, reason, sizeof reason);
    json_decref(o);
    if (rc == AM_OK)
        rc = am_ingest_submit(srv, user_id, &e, 1, &res);
    am_event_clear(&e);
    return rc;
}

am_rc am_habits_run(struct am_server *srv, int64_t user_id, int64_t now, json_t *lapses) {
    int64_t offset = srv->cfg.utc_offset_min * 60 * AM_NS_PER_S;
    struct am_query q = {.stream = "location.place", .source = "am.places",
                         .from_ns = now - WEEKS * WEEK_NS, .to_ns = now + 1, .limit = 10000};
    struct am_event_list l = {0};
    am_rc rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l);
    struct visit *v = rc == AM_OK ? am_calloc(MAX_VISITS, sizeof *v) : NULL;
    size_t nv = 0;
    if (rc == AM_OK && !v)
        rc = AM_ENOMEM;
    for (size_t i = 0; rc == AM_OK && i < l.n && nv < MAX_VISITS; i++) {
        json_t *p = NULL;
        if (am_json_parse(l.items[i].payload, strlen(l.items[i].payload), 64, &p, NULL, 0) !=
            AM_OK)
            continue;
        const char *ev = json_string_value(json_object_get(p, "event"));
        const char *id = json_string_value(json_object_get(p, "place_id"));
        const char *name = json_string_value(json_object_get(p, "name"));
        /* Home is where one is every day; a routine is a place one goes to. */
        if (ev && !strcmp(ev, "visit") && id && !(name && !strcmp(name, "home"))) {
            v[nv].id = l.items[i].id;
            v[nv].ts = l.items[i].ts_ns;
            snprintf(v[nv].place, sizeof v[nv].place, "%s", id);
            snprintf(v[nv].name, sizeof v[nv].name, "%s", name ? name : id);
            local_wd_hour(v[nv].ts, offset, &v[nv].wd, &v[nv].hour, NULL);
            nv++;
        }
        json_decref(p);
    }
    am_event_list_free(&l);
    /* Each (place, weekday) with visits in at least 3 of the last 4 weeks at a similar
     * hour is a routine. */
    for (size_t i = 0; rc == AM_OK && i < nv; i++) {
        int first = 1;
        for (size_t k = 0; k < i && first; k++)
            first = !(v[k].wd == v[i].wd && !strcmp(v[k].place, v[i].place));
        if (!first)
            continue;
        /* The routine's slot in each of the last weeks: the latest weekday-hour at or
         * before now, and the same a week, two, three earlier. A slot before the data
         * began does not count; a visit within two hours of a slot fills it. */
        int wd_now, hour_now;
        int64_t today;
        local_wd_hour(now, offset, &wd_now, &hour_now, &today);
        int back = (wd_now - v[i].wd + 7) % 7;
        int64_t slot = today - (int64_t)back * 24 * HOUR_NS + (int64_t)v[i].hour * HOUR_NS;
        if (slot > now)
            slot -= WEEK_NS;
        int64_t oldest = v[0].ts, last = 0, ev[MAX_EVIDENCE];
        size_t nev = 0;
        for (size_t k = 0; k < nv; k++)
            oldest = v[k].ts < oldest ? v[k].ts : oldest;
        int weeks = 0, seen = 0, filled_now = 0;
        for (int w = 0; w < WEEKS; w++) {
            int64_t occ = slot - (int64_t)w * WEEK_NS;
            if (occ < oldest - 2 * HOUR_NS)
                continue;
            weeks++;
            int hit = 0;
            for (size_t k = 0; k < nv; k++) {
                if (strcmp(v[k].place, v[i].place) != 0 || v[k].ts < occ - 2 * HOUR_NS ||
                    v[k].ts > occ + 2 * HOUR_NS)
                    continue;
                if (!hit && nev < MAX_EVIDENCE)
                    ev[nev++] = v[k].id;
                last = v[k].ts > last ? v[k].ts : last;
                hit = 1;
            }
            seen += hit;
            filled_now |= hit && w == 0;
        }
        if (seen < 2 || seen * 3 < weeks * 2)
            continue;
        char text[200], key[AM_KEY_MAX + 1];
        snprintf(text, sizeof text, "Goes to %s on %ss around %02d:00", v[i].name, DAY[v[i].wd],
                 v[i].hour);
        int64_t week = (now + offset) / WEEK_NS;
        snprintf(key, sizeof key, "habit:%s:%d:%lld", v[i].place, v[i].wd, (long long)week);
        rc = store_habit(srv, user_id, now, key, text, "routine", &v[i], ev, nev, seen, weeks);
        /* The lapse: the latest slot is two hours past, unfilled, and less than a day ago. */
        int64_t due = slot + 2 * HOUR_NS;
        if (rc == AM_OK && !filled_now && due <= now && now - due < 24 * HOUR_NS && nev > 0) {
            char day[48];
            am_time_format(due, day, sizeof day);
            snprintf(text, sizeof text, "Missed %s this %s (usually around %02d:00)", v[i].name,
                     DAY[v[i].wd], v[i].hour);
            snprintf(key, sizeof key, "lapse:%s:%d:%.10s", v[i].place, v[i].wd, day);
            rc = store_habit(srv, user_id, due, key, text, "lapse", &v[i], ev, nev, seen, weeks);
            if (rc == AM_OK && lapses)
                json_array_append_new(lapses, json_pack("{s:s, s:s, s:I, s:[I]}", "text", text,
                                                        "dedup", key, "ts", (json_int_t)due,
                                                        "evidence", (json_int_t)ev[nev - 1]));
        }
    }
    am_free(v);
    return rc;
}
