/* http_pipeline.c — the pipeline's and search's doors: GET /v1/search, GET /v1/jobs and
 * POST /v1/jobs/retry. Everything is scoped to the token's user. */
#include "http_internal.h"
#include "../search/search.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STREAMS 32

static int int_param(struct mg_connection *c, const char *name, long long lo, long long hi,
                     long long *out) {
    char v[24];
    int got = http_param(c, name, v, sizeof v);
    if (got == 0 || (got == 1 && !v[0]))
        return 1;
    char *end;
    errno = 0;
    long long l = got == 1 ? strtoll(v, &end, 10) : 0;
    if (got < 0 || errno || *end || l < lo || l > hi) {
        http_problem(c, 400, "malformed", "%s: an integer in %lld..%lld", name, lo, hi);
        return 0;
    }
    *out = l;
    return 1;
}

void http_search(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    char q[1024], streams[MAX_STREAMS * (AM_STREAM_MAX + 1)] = "", source[AM_SOURCE_MAX + 2] = "",
                  from[80] = "", to[80] = "", mode[16] = "", err[256] = "";
    const char *names[MAX_STREAMS];
    struct am_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.from_ns = sp.to_ns = AM_TS_NONE;
    sp.context = 1;
    int got = http_param(c, "q", q, sizeof q);
    if (got < 0) {
        http_problem(c, 400, "malformed", "q: longer than %zu bytes", sizeof q - 1);
        return;
    }
    if (got == 0 || !q[0]) {
        http_problem(c, 400, "malformed", "q: required (the words to find)");
        return;
    }
    am_utf8_clean(q);
    sp.q = q;
    if (http_param(c, "streams", streams, sizeof streams) < 0 ||
        http_param(c, "source", source, sizeof source) < 0 ||
        http_param(c, "from", from, sizeof from) < 0 || http_param(c, "to", to, sizeof to) < 0 ||
        http_param(c, "mode", mode, sizeof mode) < 0) {
        http_problem(c, 400, "malformed", "a parameter is too long");
        return;
    }
    for (char *save = NULL, *t = strtok_r(streams, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (sp.n_streams == MAX_STREAMS) {
            http_problem(c, 400, "malformed", "streams: at most %d", MAX_STREAMS);
            return;
        }
        if (!am_stream_name_valid(t, strlen(t))) {
            http_problem(c, 400, "malformed", "streams: '%.64s' is not a stream name", t);
            return;
        }
        names[sp.n_streams++] = t;
    }
    sp.streams = sp.n_streams ? names : NULL;
    if (source[0])
        sp.source = source;
    if ((from[0] && am_time_from_string(from, &sp.from_ns) != AM_OK) ||
        (to[0] && am_time_from_string(to, &sp.to_ns) != AM_OK)) {
        http_problem(c, 400, "malformed", "from/to: not an RFC 3339 time or epoch number");
        return;
    }
    if (!mode[0] || !strcmp(mode, "hybrid"))
        sp.mode = AM_SEARCH_HYBRID;
    else if (!strcmp(mode, "text"))
        sp.mode = AM_SEARCH_TEXT;
    else if (!strcmp(mode, "vector"))
        sp.mode = AM_SEARCH_VECTOR;
    else {
        http_problem(c, 400, "malformed", "mode: hybrid, text or vector");
        return;
    }
    long long limit = 20, context = 1;
    if (!int_param(c, "limit", 1, 100, &limit) || !int_param(c, "context", 0, 1, &context))
        return;
    sp.limit = (size_t)limit;
    sp.context = (int)context;
    json_t *out = NULL;
    am_rc rc = am_search(h->srv, a->user_id, &sp, &out, err, sizeof err);
    if (rc == AM_EINVAL || rc == AM_ELIMIT) {
        http_problem(c, 400, "malformed", "%s", err[0] ? err : "not a query");
        return;
    }
    if (rc != AM_OK) {
        http_problem(c, 503, "unavailable", "search: %s", err[0] ? err : am_strerror(rc));
        return;
    }
    http_json(c, 200, out);
}

void http_jobs(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    struct am_store *s = &h->srv->store;
    struct am_job_count *counts = NULL;
    struct am_job_info *dead = NULL;
    size_t n = 0, nd = 0;
    int64_t now = am_now_ns();
    am_rc rc = s->ops->job_counts(s->impl, a->user_id, &counts, &n);
    if (rc == AM_OK)
        rc = s->ops->job_list_dead(s->impl, a->user_id, 50, &dead, &nd);
    if (rc != AM_OK) {
        am_free(counts);
        http_problem(c, 503, "unavailable", "store: %s", am_strerror(rc));
        return;
    }
    json_t *out = json_object(), *kinds = json_object(), *dl = json_array();
    int64_t oldest = 0, pending = 0, running = 0, dead_total = 0;
    for (int k = 0; out && kinds && k < AM_JOB_KINDS; k++) {
        json_t *o = json_object();
        int64_t kind_oldest = 0;
        for (int st = 0; o && st < AM_JOB_STATES; st++) {
            int64_t v = 0;
            for (size_t i = 0; i < n; i++)
                if (counts[i].kind == k && counts[i].state == st) {
                    v = counts[i].count;
                    if (st == AM_JOB_PENDING && counts[i].oldest_created_ns)
                        kind_oldest = counts[i].oldest_created_ns;
                }
            json_object_set_new(o, am_job_state_name(st), json_integer(v));
            pending += st == AM_JOB_PENDING ? v : 0;
            running += st == AM_JOB_RUNNING ? v : 0;
            dead_total += st == AM_JOB_DEAD ? v : 0;
        }
        json_object_set_new(o, "oldest_pending_s",
                            json_real(kind_oldest ? (double)(now - kind_oldest) / 1e9 : 0));
        if (kind_oldest && (!oldest || kind_oldest < oldest))
            oldest = kind_oldest;
        json_object_set_new(kinds, am_job_kind_name(k), o);
    }
    for (size_t i = 0; dl && i < nd; i++) {
        char ts[48];
        am_time_format(dead[i].updated_ns, ts, sizeof ts);
        json_array_append_new(dl, json_pack("{s:I, s:I, s:s, s:i, s:s, s:s}", "id",
                                            (json_int_t)dead[i].id, "event_id",
                                            (json_int_t)dead[i].event_id, "kind",
                                            am_job_kind_name(dead[i].kind), "attempts",
                                            dead[i].attempts, "failed_at", ts, "error",
                                            dead[i].error));
    }
    am_free(counts);
    am_free(dead);
    if (!out || !kinds || !dl) {
        json_decref(out);
        json_decref(kinds);
        json_decref(dl);
        http_problem(c, 503, "unavailable", "out of memory");
        return;
    }
    json_object_set_new(out, "kinds", kinds);
    json_object_set_new(out, "pending", json_integer(pending));
    json_object_set_new(out, "running", json_integer(running));
    json_object_set_new(out, "dead", json_integer(dead_total));
    json_object_set_new(out, "oldest_pending_s",
                        json_real(oldest ? (double)(now - oldest) / 1e9 : 0));
    json_object_set_new(out, "dead_letters", dl);
    http_json(c, 200, out);
}

void http_jobs_retry(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    char kind[32] = "", state[16] = "";
    if (http_param(c, "kind", kind, sizeof kind) < 0 ||
        http_param(c, "state", state, sizeof state) < 0) {
        http_problem(c, 400, "malformed", "a parameter is too long");
        return;
    }
    if (state[0] && strcmp(state, "dead") != 0) {
        http_problem(c, 400, "malformed", "state: only dead jobs are retried");
        return;
    }
    int k = -1;
    if (kind[0] && (k = am_job_kind_parse(kind)) < 0) {
        http_problem(c, 400, "malformed", "kind: ocr, stt, frames, caption, analyze or embed");
        return;
    }
    int64_t n = 0;
    struct am_store *s = &h->srv->store;
    am_rc rc = s->ops->job_retry_dead(s->impl, a->user_id, k, &n);
    if (rc != AM_OK) {
        http_problem(c, 503, "unavailable", "store: %s", am_strerror(rc));
        return;
    }
    http_json(c, 200, json_pack("{s:I}", "retried", (json_int_t)n));
}
