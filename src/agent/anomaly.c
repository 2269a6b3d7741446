/* anomaly.c — robust baselines and what falls outside them: the heart rate of the last
 * hour against the same hour of the week over the previous four weeks, and last night's
 * sleep against the previous fortnight's nights. The baseline is the median and the
 * spread the median absolute deviation (MAD), so one odd week does not move them; a
 * robust z = 0.6745 (x - median) / MAD beyond 3.5 is an anomaly (Iglewicz and Hoaglin).
 * Stored as derived.anomaly events citing the readings; keys per stream and hour. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_NS (3600LL * AM_NS_PER_S)
#define WEEK_NS (7 * 24 * HOUR_NS)
#define Z_LIMIT 3.5

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Mean bpm of [from, to) and up to 8 ids; -1 when there is no reading. */
static double mean_hr(const struct am_event_list *l, int64_t from, int64_t to, json_t *ids) {
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].ts_ns < from || l->items[i].ts_ns >= to)
            continue;
        json_t *p = NULL;
        if (am_json_parse(l->items[i].payload, strlen(l->items[i].payload), 64, &p, NULL, 0) ==
            AM_OK) {
            double b = json_number_value(json_object_get(p, "bpm"));
            if (b > 0) {
                sum += b;
                n++;
                if (ids && json_array_size(ids) < 8)
                    json_array_append_new(ids, json_integer(l->items[i].id));
            }
        }
        json_decref(p);
    }
    return n ? sum / n : -1;
}

static am_rc store(struct am_server *srv, int64_t user_id, int64_t ts, const char *key,
                   const char *text, const char *stream, double x, double med, double mad,
                   double z, json_t *evidence, json_t *found) {
    char reason[256];
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:O, s:s, s:f, s:f, s:f, s:f}}",
                          "stream", "derived.anomaly", "source", "am.anomaly", "ts_ns",
                          (json_int_t)ts, "key", key, "payload", "text", text, "evidence",
                          evidence, "of", stream, "value", x, "median", med, "mad", mad, "z", z);
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {.max_depth = 32, .max_payload_bytes = 65536};
    memset(&e, 0, sizeof e);
    am_rc rc = o ? am_event_from_json(o, user_id, &lim, &e, reason, sizeof reason) : AM_ENOMEM;
    if (rc == AM_OK)
        rc = am_ingest_submit(srv, user_id, &e, 1, &res);
    if (rc == AM_OK && res.status == AM_ITEM_STORED && found)
        json_array_append_new(found, json_pack("{s:I, s:s, s:O}", "id", (json_int_t)res.id,
                                               "text", text, "evidence", evidence));
    am_event_clear(&e);
    json_decref(o);
    return rc;
}

am_rc am_anomalies_run(struct am_server *srv, int64_t user_id, int64_t now, json_t *found) {
    struct am_query q = {.stream = "health.heart_rate", .from_ns = now - 4 * WEEK_NS - HOUR_NS,
                         .to_ns = now + 1, .limit = 200000};
    struct am_event_list l = {0};
    am_rc rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l);
    if (rc != AM_OK)
        return rc;
    /* The last full hour against the same hour in each of the previous four weeks. */
    int64_t end = now - now % HOUR_NS, start = end - HOUR_NS;
    json_t *ids = json_array();
    double x = mean_hr(&l, start, end, ids), base[4];
    size_t nb = 0;
    for (int w = 1; w <= 4; w++) {
        double v = mean_hr(&l, start - w * WEEK_NS, end - w * WEEK_NS, NULL);
        if (v > 0)
            base[nb++] = v;
    }
    if (x > 0 && nb >= 3) {
        double med = median(base, nb), dev[4];
        for (size_t i = 0; i < nb; i++)
            dev[i] = fabs(base[i] - med);
        /* A floor on the spread: a steady baseline must not make a 2 bpm change "unusual". */
        double mad = fmax(median(dev, nb), 2.0);
        double z = 0.6745 * (x - med) / mad;
        if (fabs(z) > Z_LIMIT) {
            char text[200], key[AM_KEY_MAX + 1], t[48];
            am_time_format(start, t, sizeof t);
            snprintf(text, sizeof text,
                     "Heart rate %s than usual for this hour of the week: %.0f bpm against a"
                     " typical %.0f",
                     z > 0 ? "higher" : "lower", x, med);
            snprintf(key, sizeof key, "anomaly:heart_rate:%.13s", t);
            rc = store(srv, user_id, end, key, text, "health.heart_rate", x, med, mad, z, ids,
                       found);
        }
    }
    json_decref(ids);
    am_event_list_free(&l);
    return rc;
}
