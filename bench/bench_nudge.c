/* bench_nudge.c — event → nudge latency for a rule trigger: a calendar event that the
 * person's own data mentions is posted, and the agent (woken by the bus) stores a nudge.
 * The latency is the nudge's received time minus the calendar event's, both taken by amd
 * at commit, so the client's polling does not enter it. Run by scripts/bench.sh against
 * its scratch amd (arguments: URL TOKEN [PID DIR]); prints p50/p90/p99 and the max. */
#include "agent/agent.h"
#include "core/core.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    return am_buf_append(arg, p, size * n) == AM_OK ? size * n : 0;
}

static json_t *request(CURL *c, const char *url, const char *token, const char *method,
                       const char *path, const char *body) {
    char full[1024], auth[256];
    struct am_buf out;
    am_buf_init(&out, 1 << 26);
    snprintf(full, sizeof full, "%s%s", url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    json_t *r = NULL;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status / 100 == 2 && out.data)
        r = json_loadb(out.data, out.len, 0, NULL);
    curl_slist_free_all(h);
    am_buf_free(&out);
    return r;
}

struct sim_post {
    CURL *c;
    const char *url, *token;
    struct am_buf buf;
    int lines;
};

static am_rc sim_flush(struct sim_post *s) {
    char full[1024], auth[256];
    snprintf(full, sizeof full, "%s/v1/events", s->url);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/x-ndjson");
    struct am_buf out;
    am_buf_init(&out, 1 << 26);
    curl_easy_reset(s->c);
    curl_easy_setopt(s->c, CURLOPT_URL, full);
    curl_easy_setopt(s->c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(s->c, CURLOPT_POSTFIELDS, s->buf.data ? s->buf.data : "");
    curl_easy_setopt(s->c, CURLOPT_POSTFIELDSIZE, (long)s->buf.len);
    curl_easy_setopt(s->c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(s->c, CURLOPT_WRITEDATA, &out);
    long status = 0;
    if (curl_easy_perform(s->c) == CURLE_OK)
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    am_buf_free(&out);
    am_buf_reset(&s->buf);
    s->lines = 0;
    return status / 100 == 2 ? AM_OK : AM_EBACKEND;
}

static am_rc sim_line(const char *line, size_t len, void *arg) {
    struct sim_post *s = arg;
    if (am_buf_append(&s->buf, line, len) != AM_OK || am_buf_append(&s->buf, "\n", 1) != AM_OK)
        return AM_ENOMEM;
    return ++s->lines >= 2000 ? sim_flush(s) : AM_OK;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_nudge URL TOKEN [PID DIR]\n");
        return 2;
    }
    const char *url = argv[1], *token = argv[2];
    int runs = getenv("BENCH_NUDGES") ? atoi(getenv("BENCH_NUDGES")) : 200;
    am_alloc_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    double *lat = calloc((size_t)runs, sizeof *lat);
    int got = 0;
    long long now = (long long)time(NULL);
    char body[1024];
    /* What the person's data says: one message per topic the meetings will be about. */
    for (int i = 0; i < runs; i++) {
        snprintf(body, sizeof body,
                 "[{\"stream\":\"comms.message\",\"ts\":%lld,\"source\":\"bench\","
                 "\"payload\":{\"text\":\"notes for the topic%dzz review\"}}]",
                 now - 3600, i);
        json_decref(request(c, url, token, "POST", "/v1/events", body));
    }
    for (int i = 0; i < runs; i++) {
        snprintf(body, sizeof body,
                 "[{\"stream\":\"calendar.event\",\"ts\":%lld,\"source\":\"bench\","
                 "\"payload\":{\"uid\":\"bench-%d-%lld\",\"title\":\"topic%dzz review\"}}]",
                 now + 300, i, now, i);
        json_t *r = request(c, url, token, "POST", "/v1/events", body);
        int64_t cal = json_integer_value(
            json_object_get(json_array_get(json_object_get(r, "results"), 0), "id"));
        json_decref(r);
        if (!cal)
            continue;
        char path[128];
        snprintf(path, sizeof path, "/v1/events/%lld", (long long)cal);
        json_t *ce = request(c, url, token, "GET", path, NULL);
        int64_t t_cal = json_integer_value(json_object_get(ce, "received_ns"));
        json_decref(ce);
        for (int tries = 0; tries < 2000; tries++) { /* up to ~10 s */
            json_t *n = request(c, url, token, "GET",
                                "/v1/events?stream=derived.nudge&order=desc&limit=1", NULL);
            json_t *e = json_array_get(json_object_get(n, "events"), 0);
            json_t *ev = json_object_get(json_object_get(e, "payload"), "evidence");
            int hit = json_integer_value(json_array_get(ev, 0)) == cal;
            if (hit)
                lat[got++] = (double)(json_integer_value(json_object_get(e, "received_ns")) -
                                      t_cal) / 1e6;
            json_decref(n);
            if (hit)
                break;
            usleep(5000);
        }
    }
    if (got == 0) {
        printf("nudge latency: no nudge arrived (is the agent on? agent_tick_s > 0, a budget"
               " and no quiet hours are needed)\n");
        return 1;
    }
    qsort(lat, (size_t)got, sizeof *lat, cmp);
    printf("event -> nudge (calendar trigger, server clock), %d of %d: p50 %.2f ms, p90 %.2f"
           " ms, p99 %.2f ms, max %.2f ms (target p99 < 250 ms)\n",
           got, runs, lat[got / 2], lat[got * 9 / 10], lat[got * 99 / 100], lat[got - 1]);
    free(lat);
    /* The analyzers' cost: a simulated life of N days, then one full agent tick over it
     * (places, habits, anomalies, correlations, memories, triggers). */
    int days = getenv("BENCH_SIM_DAYS") ? atoi(getenv("BENCH_SIM_DAYS")) : 28;
    struct sim_post sp = {.c = c, .url = url, .token = token};
    am_buf_init(&sp.buf, 1 << 28);
    int64_t start = ((int64_t)now - (int64_t)days * 86400 - 40 * 86400) * AM_NS_PER_S;
    double t0 = now_ms();
    am_rc rc = am_simulate(days, 7, start, 0, sim_line, &sp);
    if (rc == AM_OK && sp.lines)
        rc = sim_flush(&sp);
    double t1 = now_ms();
    am_buf_free(&sp.buf);
    char path[128];
    snprintf(path, sizeof path, "/v1/agent/tick?at=%lld",
             (long long)(start / AM_NS_PER_S + (int64_t)days * 86400));
    json_t *tick = rc == AM_OK ? request(c, url, token, "POST", path, "") : NULL;
    double t2 = now_ms();
    if (tick)
        printf("agent tick over %d simulated days (posted in %.1f s): %.0f ms, %.1f ms per day"
               " of data\n",
               days, (t1 - t0) / 1e3, t2 - t1, (t2 - t1) / days);
    else
        printf("agent tick over simulated days: failed\n");
    json_decref(tick);
    curl_easy_cleanup(c);
    return got == runs && tick ? 0 : 1;
}
