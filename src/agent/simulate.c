/* simulate.c — a synthetic but realistic life for tests and demos (`am simulate`):
 * GPS between home, work and a gym, sleep, screen and app use, heart rate, a weekly
 * meeting with a colleague who also writes and is heard, with planted patterns:
 *   - a routine: the gym on Monday, Wednesday and Friday evenings,
 *   - a lapse: the gym is skipped on the last Wednesday,
 *   - a recurring meeting: "Design sync with Priya", Tuesdays 10:00,
 *   - a person across streams: Priya in email, messages, calendar and transcripts,
 *   - a correlation: the later the screen goes off at night, the shorter the sleep.
 * Deterministic for a seed; every event has a key "sim:<seed>:<n>", so running it again
 * stores nothing new. */
#include "agent.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define H (3600LL * AM_NS_PER_S)
#define M (60LL * AM_NS_PER_S)

struct sim {
    uint64_t rng;
    uint64_t seed;
    long n;
    int64_t offset; /* local = utc + offset */
    am_rc (*emit)(const char *line, size_t len, void *arg);
    void *arg;
    am_rc rc;
};

static double rnd(struct sim *s) { /* xorshift64*: reproducible everywhere */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void emit(struct sim *s, const char *stream, const char *source, int64_t local_ts,
                 int64_t local_end, json_t *payload) {
    if (s->rc != AM_OK || !payload) {
        json_decref(payload);
        return;
    }
    char key[64];
    snprintf(key, sizeof key, "sim:%llu:%ld", (unsigned long long)s->seed, s->n++);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o}", "stream", stream, "source", source,
                          "ts_ns", (json_int_t)(local_ts - s->offset), "key", key, "payload",
                          payload);
    if (o && local_end)
        json_object_set_new(o, "ts_end_ns", json_integer(local_end - s->offset));
    char *line = o ? am_json_dump(o, NULL) : NULL;
    json_decref(o);
    s->rc = line ? s->emit(line, strlen(line), s->arg) : AM_ENOMEM;
    am_free(line);
}

static const double HOME[2] = {52.5000, 13.4000}, WORK[2] = {52.5200, 13.4500},
                    GYM[2] = {52.5100, 13.3800};

static void gps(struct sim *s, int64_t t, const double *p, double jitter) {
    emit(s, "location.gps", "phone", t, 0,
         json_pack("{s:f, s:f, s:f}", "lat", p[0] + (rnd(s) - 0.5) * jitter, "lon",
                   p[1] + (rnd(s) - 0.5) * jitter, "accuracy", 8 + rnd(s) * 10));
}

static void stay(struct sim *s, int64_t from, int64_t to, const double *p, int64_t step,
                 int bpm) {
    for (int64_t t = from; t < to; t += step) {
        gps(s, t, p, 4e-4);
        emit(s, "health.heart_rate", "watch", t, 0,
             json_pack("{s:f}", "bpm", bpm + (rnd(s) - 0.5) * 8));
    }
}

static void travel(struct sim *s, int64_t from, int64_t to, const double *a, const double *b) {
    int n = (int)((to - from) / (5 * M));
    for (int k = 1; k < n; k++) {
        double q[2] = {a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n};
        gps(s, from + k * 5 * M, q, 1e-4);
    }
}

static void span(struct sim *s, const char *stream, const char *source, int64_t from, int64_t to,
                 json_t *payload) {
    emit(s, stream, source, from, to, payload);
}

am_rc am_simulate(int days, uint64_t seed, int64_t start_ns, int utc_offset_min,
                  am_rc (*emit_line)(const char *line, size_t len, void *arg), void *arg) {
    struct sim s = {.rng = seed * 0x9E3779B97F4A7C15ULL + 1, .seed = seed,
                    .offset = (int64_t)utc_offset_min * M, .emit = emit_line, .arg = arg};
    /* Local midnight on or before the start. */
    int64_t local0 = start_ns + s.offset;
    local0 -= ((local0 % (24 * H)) + 24 * H) % (24 * H);
    int64_t last_screen_off = local0 - H; /* the night before day 0 */
    for (int d = 0; d < days && s.rc == AM_OK; d++) {
        int64_t day = local0 + d * 24 * H;
        int64_t dn = day / (24 * H);
        int wd = (int)(((dn % 7) + 7 + 3) % 7); /* 0 Monday */
        /* Sleep: in bed 30 min after the screen went off, up at 06:30; the later the
         * night, the shorter the sleep (the planted correlation). */
        int64_t bed = last_screen_off + 30 * M, wake = day + 6 * H + 30 * M;
        if (bed < wake - 10 * H)
            bed = wake - 10 * H;
        int64_t third = (wake - bed) / 3;
        span(&s, "health.sleep", "watch", bed, bed + third, json_pack("{s:s}", "stage", "light"));
        span(&s, "health.sleep", "watch", bed + third, bed + 2 * third,
             json_pack("{s:s}", "stage", "deep"));
        span(&s, "health.sleep", "watch", bed + 2 * third, wake, json_pack("{s:s}", "stage", "rem"));
        stay(&s, day, day + 7 * H + 30 * M, HOME, 30 * M, 58);
        emit(&s, "screen.state", "phone", day + 7 * H, 0, json_pack("{s:s}", "state", "on"));
        emit(&s, "screen.state", "phone", day + 7 * H + 20 * M, 0,
             json_pack("{s:s}", "state", "off"));
        int64_t evening = day + 19 * H + 30 * M;
        if (wd < 5) {
            travel(&s, day + 7 * H + 30 * M, day + 8 * H + 30 * M, HOME, WORK);
            stay(&s, day + 8 * H + 30 * M, day + 17 * H + 30 * M, WORK, 5 * M, 74);
            static const char *const apps[] = {"slack", "firefox", "code"};
            for (int64_t t = day + 9 * H; t < day + 17 * H; t += 45 * M) {
                const char *app = apps[(int)(rnd(&s) * 3) % 3];
                span(&s, "app.usage", "laptop", t, t + 40 * M,
                     json_pack("{s:s, s:s}", "app", app, "title", app));
            }
            int gym_day = wd == 0 || wd == 2 || wd == 4;
            int lapse = wd == 2 && d >= days - 7; /* the last Wednesday is skipped */
            if (gym_day && !lapse) {
                travel(&s, day + 17 * H + 30 * M, day + 18 * H, WORK, GYM);
                stay(&s, day + 18 * H, day + 19 * H + 15 * M, GYM, 5 * M, 128);
                span(&s, "health.workout", "watch", day + 18 * H, day + 19 * H + 15 * M,
                     json_pack("{s:s, s:f}", "kind", "strength", "calories", 420.0));
                travel(&s, day + 19 * H + 15 * M, evening, GYM, HOME);
            } else {
                travel(&s, day + 17 * H + 30 * M, evening, WORK, HOME);
            }
            if (wd == 1) { /* Tuesday: the weekly meeting, and Priya is heard in it */
                span(&s, "calendar.event", "caldav", day + 10 * H, day + 11 * H,
                     json_pack("{s:s, s:s, s:s, s:[s,s]}", "uid", "design-sync", "title",
                               "Design sync with Priya", "location", "Room 4", "attendees",
                               "priya@example.org", "me@example.org"));
                span(&s, "audio.transcript", "phone", day + 10 * H + 20 * M,
                     day + 10 * H + 21 * M,
                     json_pack("{s:s}", "text", "Priya says the onboarding flow needs a"
                                                " second review before launch"));
            }
            if (wd == 0)
                emit(&s, "comms.email", "imap", day + 9 * H + 5 * M, 0,
                     json_pack("{s:s, s:s, s:s}", "from", "Priya Raman <priya@example.org>",
                               "subject", "Agenda for the design sync",
                               "body", "Let's go over the onboarding flow and the new icons."));
            if (wd == 3)
                emit(&s, "comms.message", "phone", day + 13 * H, 0,
                     json_pack("{s:s, s:s, s:s}", "from", "Priya", "app", "signal", "text",
                               "Thanks for the review today! Lunch next week?"));
        } else {
            stay(&s, day + 7 * H + 30 * M, day + 10 * H, HOME, 15 * M, 62);
            evening = day + 10 * H;
        }
        stay(&s, evening, day + 24 * H, HOME, 20 * M, 64);
        /* Screen at night: on at 21:00, off between 22:30 and 01:00. */
        int64_t off = day + 22 * H + 30 * M + (int64_t)(rnd(&s) * 150) * M;
        emit(&s, "screen.state", "phone", day + 21 * H, 0, json_pack("{s:s}", "state", "on"));
        emit(&s, "screen.state", "phone", off, 0, json_pack("{s:s}", "state", "off"));
        last_screen_off = off;
    }
    return s.rc;
}
