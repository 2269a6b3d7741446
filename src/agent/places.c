/* places.c — the places analyzer: stay points from GPS (a person within STAY_M metres for
 * at least STAY_MIN minutes; Li et al. 2008), grouped into places (a stay within
 * PLACE_M of a known place is that place), labelled home (most nights) and work (most
 * weekday working hours), and stored as location.place events: a visit span and its
 * arrival and departure. Incremental: each run starts where the last stored visit ended;
 * keys made of the arrival time make a rerun harmless. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define STAY_M 120.0
#define STAY_MIN 10
#define PLACE_M 150.0
#define MAX_FIXES 200000
#define MAX_PLACES 256
#define LOOKBACK_NS (30LL * 86400 * AM_NS_PER_S)
#define SOURCE "am.places"

struct fix {
    int64_t ts;
    double lat, lon;
};

struct place {
    char id[40];
    double lat, lon;
    double night_h, work_h; /* hours spent there at night, and on weekdays 9-17 */
};

static double dist_m(double lat1, double lon1, double lat2, double lon2) {
    const double r = 6371000.0, rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * r * atan2(sqrt(a), sqrt(1 - a));
}

static int payload_num(const struct am_event *e, const char *k1, const char *k2, double *a,
                       double *b) {
    json_t *p = NULL;
    if (am_json_parse(e->payload, strlen(e->payload), 64, &p, NULL, 0) != AM_OK)
        return 0;
    json_t *x = json_object_get(p, k1), *y = json_object_get(p, k2);
    int ok = json_is_number(x) && json_is_number(y);
    if (ok) {
        *a = json_number_value(x);
        *b = json_number_value(y);
    }
    json_decref(p);
    return ok;
}

/* Adds the hours of [from, to) that fall at night (22-6 local) and in weekday work hours
 * (Mon-Fri 9-17 local), hour by hour. */
static void add_hours(struct place *pl, int64_t from, int64_t to, int64_t offset_ns) {
    const int64_t hour = 3600 * AM_NS_PER_S;
    for (int64_t t = from; t < to; t += hour / 4) {
        int64_t local = t + offset_ns;
        int64_t day = local >= 0 ? local / (24 * hour) : (local - 24 * hour + 1) / (24 * hour);
        int h = (int)((local - day * 24 * hour) / hour);
        int wd = (int)(((day % 7) + 7 + 3) % 7); /* 0 = Monday (1970-01-01 was a Thursday) */
        double q = (double)(t + hour / 4 <= to ? hour / 4 : to - t) / (double)hour;
        if (h >= 22 || h < 6)
            pl->night_h += q;
        else if (wd < 5 && h >= 9 && h < 17)
            pl->work_h += q;
    }
}

/* The places already known from stored visits (their ids, centres and hours). */
static am_rc known_places(struct am_server *srv, int64_t user_id, int64_t now,
                          int64_t offset_ns, struct place *pl, size_t *n, int64_t *cursor) {
    struct am_query q = {.stream = "location.place", .source = SOURCE,
                         .from_ns = now - LOOKBACK_NS, .to_ns = now + 1, .limit = 10000};
    struct am_event_list l = {0};
    am_rc rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l);
    *n = 0;
    *cursor = now - LOOKBACK_NS;
    for (size_t i = 0; rc == AM_OK && i < l.n; i++) {
        const struct am_event *e = &l.items[i];
        json_t *p = NULL;
        if (am_json_parse(e->payload, strlen(e->payload), 64, &p, NULL, 0) != AM_OK)
            continue;
        const char *ev = json_string_value(json_object_get(p, "event"));
        const char *id = json_string_value(json_object_get(p, "place_id"));
        if (ev && !strcmp(ev, "visit") && id && e->ts_end_ns != AM_TS_NONE) {
            size_t k = 0;
            while (k < *n && strcmp(pl[k].id, id) != 0)
                k++;
            if (k == *n && *n < MAX_PLACES) {
                memset(&pl[k], 0, sizeof pl[k]);
                snprintf(pl[k].id, sizeof pl[k].id, "%s", id);
                pl[k].lat = json_number_value(json_object_get(p, "lat"));
                pl[k].lon = json_number_value(json_object_get(p, "lon"));
                (*n)++;
            }
            if (k < *n)
                add_hours(&pl[k], e->ts_ns, e->ts_end_ns, offset_ns);
            if (e->ts_end_ns > *cursor)
                *cursor = e->ts_end_ns;
        }
        json_decref(p);
    }
    am_event_list_free(&l);
    return rc;
}

static const char *label(const struct place *pl, size_t n, size_t k) {
    size_t home = n, work = n;
    for (size_t i = 0; i < n; i++) {
        if (pl[i].night_h >= 3 && (home == n || pl[i].night_h > pl[home].night_h))
            home = i;
    }
    for (size_t i = 0; i < n; i++) {
        if (i != home && pl[i].work_h >= 3 && (work == n || pl[i].work_h > pl[work].work_h))
            work = i;
    }
    return k == home ? "home" : k == work ? "work" : NULL;
}

static am_rc store_place_event(struct am_server *srv, int64_t user_id, const char *kind,
                               int64_t ts, int64_t ts_end, const struct place *p,
                               const char *name, int64_t arrival) {
    char key[AM_KEY_MAX + 1], reason[256];
    snprintf(key, sizeof key, "place:%s:%lld", kind, (long long)arrival);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:f, s:f, s:f, s:s, s:s}}", "stream",
                          "location.place", "source", SOURCE, "ts_ns", (json_int_t)ts, "key", key,
                          "payload", "name", name, "lat", p->lat, "lon", p->lon, "radius",
                          STAY_M, "place_id", p->id, "event", kind);
    if (!o)
        return AM_ENOMEM;
    if (ts_end != AM_TS_NONE)
        json_object_set_new(o, "ts_end_ns", json_integer(ts_end));
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

am_rc am_places_run(struct am_server *srv, int64_t user_id, int64_t now, size_t *visits) {
    int64_t offset_ns = srv->cfg.utc_offset_min * 60 * AM_NS_PER_S, cursor;
    struct place *pl = am_calloc(MAX_PLACES, sizeof *pl);
    struct fix *fx = NULL;
    size_t np = 0, nf = 0;
    *visits = 0;
    if (!pl)
        return AM_ENOMEM;
    am_rc rc = known_places(srv, user_id, now, offset_ns, pl, &np, &cursor);
    struct am_query q = {.stream = "location.gps", .from_ns = cursor + 1, .to_ns = now + 1,
                         .limit = MAX_FIXES};
    struct am_event_list l = {0};
    if (rc == AM_OK)
        rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l);
    if (rc == AM_OK && !(fx = am_malloc((l.n + 1) * sizeof *fx)))
        rc = AM_ENOMEM;
    for (size_t i = 0; rc == AM_OK && i < l.n; i++)
        if (payload_num(&l.items[i], "lat", "lon", &fx[nf].lat, &fx[nf].lon))
            fx[nf++].ts = l.items[i].ts_ns;
    am_event_list_free(&l);
    /* Stay points: from each anchor, take fixes while they stay near it. */
    for (size_t i = 0; rc == AM_OK && i < nf;) {
        size_t j = i + 1;
        while (j < nf && dist_m(fx[i].lat, fx[i].lon, fx[j].lat, fx[j].lon) <= STAY_M)
            j++;
        int64_t dur = fx[j - 1].ts - fx[i].ts;
        if (dur < STAY_MIN * 60 * AM_NS_PER_S) {
            i++;
            continue;
        }
        struct place s = {0};
        for (size_t k = i; k < j; k++) {
            s.lat += fx[k].lat / (double)(j - i);
            s.lon += fx[k].lon / (double)(j - i);
        }
        size_t k = 0;
        while (k < np && dist_m(pl[k].lat, pl[k].lon, s.lat, s.lon) > PLACE_M)
            k++;
        if (k == np && np < MAX_PLACES) {
            pl[k] = s;
            snprintf(pl[k].id, sizeof pl[k].id, "place-%lld",
                     (long long)(fx[i].ts / AM_NS_PER_S));
            np++;
        }
        if (k == np)
            break;
        int open = j == nf; /* still there: arrival only, the visit is stored when it ends */
        add_hours(&pl[k], fx[i].ts, fx[j - 1].ts, offset_ns);
        const char *lab = label(pl, np, k);
        char name[48];
        snprintf(name, sizeof name, "%s", lab ? lab : pl[k].id);
        rc = store_place_event(srv, user_id, "arrival", fx[i].ts, AM_TS_NONE, &pl[k], name,
                               fx[i].ts);
        if (rc == AM_OK && !open) {
            rc = store_place_event(srv, user_id, "visit", fx[i].ts, fx[j - 1].ts, &pl[k], name,
                                   fx[i].ts);
            if (rc == AM_OK)
                rc = store_place_event(srv, user_id, "departure", fx[j - 1].ts, AM_TS_NONE,
                                       &pl[k], name, fx[i].ts);
            (*visits)++;
        }
        i = j;
    }
    am_free(fx);
    am_free(pl);
    return rc;
}
