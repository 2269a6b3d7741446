/* correlate.c — correlations between daily aggregates: when the screen goes off at
 * night, how long the person sleeps, their lowest heart rate, their workout minutes.
 * Each pair is tested at lag 0 and 1 day (Pearson r; Fisher's z gives the p value);
 * only well-supported ones (|r| >= 0.5, p < 0.01, at least 10 days) are stored, as
 * derived.correlation events with the effect size (slope) and sample evidence. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DAYS 42
#define HOUR_NS (3600LL * AM_NS_PER_S)
#define DAY_NS (24 * HOUR_NS)

enum { S_SCREEN_OFF, S_SLEEP, S_MIN_HR, S_WORKOUT, N_SERIES };
static const char *const NAMES[N_SERIES] = {"screen_off_hour", "sleep_hours", "lowest_heart_rate",
                                            "workout_minutes"};
static const char *const WORDS[N_SERIES] = {"the screen goes off later at night",
                                            "sleep is longer", "the lowest heart rate is higher",
                                            "workouts are longer"}; /* how series a reads */

struct series {
    double v[DAYS];
    int has[DAYS];
    int64_t ev[DAYS]; /* one event behind each day's value, for evidence */
};

static am_rc load(struct am_server *srv, int64_t user_id, const char *stream, int64_t from,
                  int64_t to, struct am_event_list *l) {
    struct am_query q = {.stream = stream, .from_ns = from, .to_ns = to, .limit = 100000};
    memset(l, 0, sizeof *l);
    return srv->store.ops->query(srv->store.impl, user_id, &q, l);
}

static const char *str_field(const struct am_event *e, const char *k, json_t **hold) {
    *hold = NULL;
    if (am_json_parse(e->payload, strlen(e->payload), 64, hold, NULL, 0) != AM_OK)
        return NULL;
    return json_string_value(json_object_get(*hold, k));
}

/* The local day index (0 = the first of the window) a time belongs to; evening-anchored
 * series shift the boundary so that a night counts for the evening it began. */
static int day_of(int64_t ts, int64_t first_day, int64_t offset, int64_t shift) {
    int64_t d = (ts + offset - shift - first_day) / DAY_NS;
    return ts + offset - shift < first_day ? -1 : (int)d;
}

static void set(struct series *s, int d, double v, int64_t id, int mode) {
    if (d < 0 || d >= DAYS)
        return;
    if (!s->has[d] || (mode == 1 && v > s->v[d]) || (mode == 2 && v < s->v[d]))
        s->v[d] = v;
    else if (mode == 0)
        s->v[d] += v;
    s->has[d] = 1;
    s->ev[d] = id;
}

static int pearson(const struct series *a, const struct series *b, int lag, double *r,
                   double *slope, int *n) {
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    int k = 0;
    for (int d = 0; d + lag < DAYS; d++) {
        if (!a->has[d] || !b->has[d + lag])
            continue;
        double x = a->v[d], y = b->v[d + lag];
        sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
        k++;
    }
    *n = k;
    if (k < 3)
        return 0;
    double cov = sxy - sx * sy / k, vx = sxx - sx * sx / k, vy = syy - sy * sy / k;
    if (vx <= 1e-12 || vy <= 1e-12)
        return 0;
    *r = cov / sqrt(vx * vy);
    *slope = cov / vx;
    return 1;
}

am_rc am_correlate_run(struct am_server *srv, int64_t user_id, int64_t now, size_t *found) {
    int64_t offset = srv->cfg.utc_offset_min * 60 * AM_NS_PER_S;
    int64_t local_today = (now + offset) - ((now + offset) % DAY_NS + DAY_NS) % DAY_NS;
    int64_t first_day = local_today - (DAYS - 1) * DAY_NS; /* local midnight, DAYS days ago */
    int64_t from = first_day - offset - DAY_NS, to = now + 1;
    struct series *s = am_calloc(N_SERIES, sizeof *s);
    struct am_event_list l;
    am_rc rc = s ? AM_OK : AM_ENOMEM;
    *found = 0;
    /* Screen off at night: the latest "off" between 18:00 and 06:00, in hours after the
     * evening's midnight (so 00:30 is 24.5). */
    if (rc == AM_OK && (rc = load(srv, user_id, "screen.state", from, to, &l)) == AM_OK) {
        for (size_t i = 0; i < l.n; i++) {
            json_t *h;
            const char *st = str_field(&l.items[i], "state", &h);
            int64_t lt = l.items[i].ts_ns + offset - first_day;
            double hour = (double)(((lt % DAY_NS) + DAY_NS) % DAY_NS) / HOUR_NS;
            if (st && !strcmp(st, "off") && (hour >= 18 || hour < 6)) {
                int d = day_of(l.items[i].ts_ns, first_day, offset, 6 * HOUR_NS);
                set(&s[S_SCREEN_OFF], d, hour < 6 ? hour + 24 : hour, l.items[i].id, 1);
            }
            json_decref(h);
        }
        am_event_list_free(&l);
    }
    /* Sleep: the asleep hours of the night that began on the evening of day d. */
    if (rc == AM_OK && (rc = load(srv, user_id, "health.sleep", from, to, &l)) == AM_OK) {
        for (size_t i = 0; i < l.n; i++) {
            const struct am_event *e = &l.items[i];
            json_t *h;
            const char *st = str_field(e, "stage", &h);
            if (st && strcmp(st, "awake") && strcmp(st, "in_bed") && e->ts_end_ns != AM_TS_NONE)
                set(&s[S_SLEEP], day_of(e->ts_ns, first_day, offset, 14 * HOUR_NS),
                    (double)(e->ts_end_ns - e->ts_ns) / HOUR_NS, e->id, 0);
            json_decref(h);
        }
        am_event_list_free(&l);
    }
    if (rc == AM_OK && (rc = load(srv, user_id, "health.heart_rate", from, to, &l)) == AM_OK) {
        for (size_t i = 0; i < l.n; i++) {
            json_t *h = NULL;
            if (am_json_parse(l.items[i].payload, strlen(l.items[i].payload), 64, &h, NULL, 0) ==
                AM_OK) {
                double bpm = json_number_value(json_object_get(h, "bpm"));
                if (bpm > 0)
                    set(&s[S_MIN_HR], day_of(l.items[i].ts_ns, first_day, offset, 0), bpm,
                        l.items[i].id, 2);
            }
            json_decref(h);
        }
        am_event_list_free(&l);
    }
    if (rc == AM_OK && (rc = load(srv, user_id, "health.workout", from, to, &l)) == AM_OK) {
        for (size_t i = 0; i < l.n; i++) {
            const struct am_event *e = &l.items[i];
            if (e->ts_end_ns != AM_TS_NONE)
                set(&s[S_WORKOUT], day_of(e->ts_ns, first_day, offset, 0),
                    (double)(e->ts_end_ns - e->ts_ns) / (60.0 * AM_NS_PER_S), e->id, 0);
        }
        am_event_list_free(&l);
    }
    for (int a = 0; rc == AM_OK && a < N_SERIES; a++) {
        for (int b = 0; rc == AM_OK && b < N_SERIES; b++) {
            for (int lag = 0; rc == AM_OK && lag <= 1; lag++) {
                if (a == b || (lag == 0 && b < a))
                    continue;
                double r = 0, slope = 0;
                int n = 0;
                if (!pearson(&s[a], &s[b], lag, &r, &slope, &n) || n < 10 || fabs(r) < 0.5)
                    continue;
                double z = atanh(fmin(fabs(r), 0.999999)) * sqrt((double)n - 3);
                double p = erfc(z / sqrt(2.0));
                if (p >= 0.01)
                    continue;
                char text[300], key[AM_KEY_MAX + 1], reason[256];
                if (r < 0) /* say it the way it reads */
                    snprintf(text, sizeof text, "When %s, %s is lower%s (r = %.2f over %d days)",
                             WORDS[a], NAMES[b], lag ? " the next day" : "", r, n);
                else
                    snprintf(text, sizeof text, "When %s, %s is higher%s (r = %.2f over %d days)",
                             WORDS[a], NAMES[b], lag ? " the next day" : "", r, n);
                json_t *ev = json_array();
                for (int d = DAYS - 1, k = 0; ev && d >= 0 && k < 10; d--)
                    if (s[a].has[d] && d + lag < DAYS && s[b].has[d + lag]) {
                        json_array_append_new(ev, json_integer(s[a].ev[d]));
                        json_array_append_new(ev, json_integer(s[b].ev[d + lag]));
                        k++;
                    }
                snprintf(key, sizeof key, "corr:%s:%s:%d:%lld", NAMES[a], NAMES[b], lag,
                         (long long)(local_today / (7 * DAY_NS)));
                json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:o, s:s, s:s, s:i, s:f,"
                                      " s:i, s:f, s:f}}",
                                      "stream", "derived.correlation", "source", "am.correlate",
                                      "ts_ns", (json_int_t)now, "key", key, "payload", "text",
                                      text, "evidence", ev ? ev : json_array(), "a", NAMES[a],
                                      "b", NAMES[b], "lag_days", lag, "r", r, "n", n, "p", p,
                                      "slope", slope);
                struct am_event e;
                struct am_item_result res;
                struct am_limits lim = {.max_depth = 32, .max_payload_bytes = 65536};
                memset(&e, 0, sizeof e);
                rc = o ? am_event_from_json(o, user_id, &lim, &e, reason, sizeof reason)
                       : AM_ENOMEM;
                json_decref(o);
                if (rc == AM_OK)
                    rc = am_ingest_submit(srv, user_id, &e, 1, &res);
                am_event_clear(&e);
                (*found)++;
            }
        }
    }
    am_free(s);
    return rc;
}
