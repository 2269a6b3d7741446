/* http_agent.c — the agent's doors: GET /v1/context, GET /v1/memories and
 * PATCH /v1/memories/{id}. Scoped to the token's user like everything else. */
#include "http_internal.h"
#include "../agent/agent.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small JSON object body (64 KiB at most); answers the client itself and returns NULL
 * when the body is too big, not JSON or not an object (detail says what is expected). */
static json_t *read_object(struct am_http *h, struct mg_connection *c, const char *detail) {
    struct am_buf body;
    json_t *j = NULL;
    am_buf_init(&body, 64 * 1024);
    if (!http_read_body(c, 64 * 1024, &body))
        return NULL;
    am_rc rc = am_json_parse(body.data ? body.data : "", body.len,
                             (size_t)h->srv->cfg.max_json_depth, &j, NULL, 0);
    am_buf_free(&body);
    if (rc != AM_OK || !json_is_object(j)) {
        json_decref(j);
        http_problem(c, 400, "malformed", "%s", detail);
        return NULL;
    }
    return j;
}

void http_context(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    char at[80] = "";
    int64_t now = am_now_ns();
    if (http_param(c, "at", at, sizeof at) < 0 ||
        (at[0] && am_time_from_string(at, &now) != AM_OK)) {
        http_problem(c, 400, "malformed", "at: an RFC 3339 time or epoch number");
        return;
    }
    json_t *out = NULL;
    am_rc rc = am_agent_context(h->srv, a->user_id, now, &out);
    if (rc != AM_OK) {
        http_problem(c, 503, "unavailable", "context: %s", am_strerror(rc));
        return;
    }
    http_json(c, 200, out);
}

void http_memories(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    char status[24] = "", limit[16] = "";
    if (http_param(c, "status", status, sizeof status) < 0 ||
        http_param(c, "limit", limit, sizeof limit) < 0) {
        http_problem(c, 400, "malformed", "a parameter is too long");
        return;
    }
    if (status[0] && strcmp(status, "inferred") && strcmp(status, "confirmed") &&
        strcmp(status, "edited") && strcmp(status, "rejected")) {
        http_problem(c, 400, "malformed", "status: inferred, confirmed, edited or rejected");
        return;
    }
    long n = 100;
    if (limit[0]) {
        char *end;
        errno = 0;
        n = strtol(limit, &end, 10);
        if (errno || *end || n < 1 || n > 10000) {
            http_problem(c, 400, "malformed", "limit: an integer in 1..10000");
            return;
        }
    }
    json_t *out = NULL;
    am_rc rc = am_agent_memories(h->srv, a->user_id, status[0] ? status : NULL, (size_t)n, &out);
    if (rc != AM_OK) {
        http_problem(c, 503, "unavailable", "memories: %s", am_strerror(rc));
        return;
    }
    http_json(c, 200, out);
}

void http_memory_patch(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                       const char *id_text) {
    char *end, err[256] = "";
    errno = 0;
    long long id = strtoll(id_text, &end, 10);
    if (errno || *end || id <= 0) {
        http_problem(c, 404, "not-found", "no memory %.40s", id_text);
        return;
    }
    json_t *j = read_object(h, c, "body: a JSON object {\"status\": ...} or"
                                  " {\"statement\": ...}"), *out = NULL;
    if (!j)
        return;
    am_rc rc;
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *statement = json_string_value(json_object_get(j, "statement"));
    rc = am_agent_memory_verdict(h->srv, a->user_id, id, status, statement, &out, err,
                                 sizeof err);
    json_decref(j);
    if (rc == AM_ENOTFOUND)
        http_problem(c, 404, "not-found", "%s", err);
    else if (rc == AM_EINVAL)
        http_problem(c, 400, "malformed", "%s", err);
    else if (rc != AM_OK)
        http_problem(c, 503, "unavailable", "memories: %s", am_strerror(rc));
    else
        http_json(c, 200, out);
}

void http_nudges(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    json_t *out = NULL;
    am_rc rc = am_nudges(h->srv, a->user_id, 200, &out);
    if (rc != AM_OK) {
        http_problem(c, 503, "unavailable", "nudges: %s", am_strerror(rc));
        return;
    }
    http_json(c, 200, out);
}

/* POST /v1/nudges/{id}/feedback {"rating": "useful" | "not_useful" | "snooze"} */
void http_nudge_feedback(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                         const char *rest) {
    char *end, err[256] = "";
    errno = 0;
    long long id = strtoll(rest, &end, 10);
    if (errno || id <= 0 || strcmp(end, "/feedback") != 0) {
        http_problem(c, 404, "not-found", "no route /v1/nudges/%.60s", rest);
        return;
    }
    json_t *j = read_object(h, c, "body: {\"rating\": \"useful\" | \"not_useful\" |"
                                  " \"snooze\"}"), *out = NULL;
    if (!j)
        return;
    am_rc rc;
    rc = am_nudge_feedback(h->srv, a->user_id, id,
                           json_string_value(json_object_get(j, "rating")), &out, err,
                           sizeof err);
    json_decref(j);
    if (rc == AM_ENOTFOUND)
        http_problem(c, 404, "not-found", "%s", err);
    else if (rc == AM_EINVAL)
        http_problem(c, 400, "malformed", "%s", err);
    else if (rc != AM_OK)
        http_problem(c, 503, "unavailable", "feedback: %s", am_strerror(rc));
    else
        http_json(c, 200, out);
}

/* POST /v1/agent/tick[?at=T]: runs the triggers for this user now (or at T, for
 * simulations and tests) and answers every decision with its reason. */
void http_agent_tick(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    char at[80] = "";
    int64_t now = am_now_ns();
    if (http_param(c, "at", at, sizeof at) < 0 ||
        (at[0] && am_time_from_string(at, &now) != AM_OK)) {
        http_problem(c, 400, "malformed", "at: an RFC 3339 time or epoch number");
        return;
    }
    json_t *d = json_array();
    am_rc rc = d ? am_agent_tick(h->srv, a->user_id, now, d) : AM_ENOMEM;
    if (rc != AM_OK) {
        json_decref(d);
        http_problem(c, 503, "unavailable", "agent: %s", am_strerror(rc));
        return;
    }
    http_json(c, 200, json_pack("{s:o}", "decisions", d));
}

void http_people(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    json_t *out = NULL;
    am_rc rc = am_people(h->srv, a->user_id, am_now_ns(), &out);
    if (rc != AM_OK) {
        http_problem(c, 503, "unavailable", "people: %s", am_strerror(rc));
        return;
    }
    http_json(c, 200, out);
}

/* ---------------------------------------------------------------- Server-Sent Events
 * GET /v1/nudges/stream: each new nudge of this user as "event: nudge" with the event as
 * data, a comment every 15 s to keep proxies from closing the stream. The bus callback
 * only queues (it must never wait on a socket); this handler's thread writes. Like a
 * WebSocket, a stream holds a worker, so streams share the WebSocket cap. */

#define SSE_QUEUE 64

struct sse {
    pthread_mutex_t lock;
    pthread_cond_t more;
    char *q[SSE_QUEUE];
    size_t head, n;
    long dropped;
};

static void sse_notice(const struct am_notice *n, void *arg) {
    struct sse *s = arg;
    char *copy = n->body ? am_strndup(n->body, n->body_len) : NULL;
    pthread_mutex_lock(&s->lock);
    if (copy && s->n < SSE_QUEUE) {
        s->q[(s->head + s->n) % SSE_QUEUE] = copy;
        s->n++;
        copy = NULL;
    } else {
        s->dropped++;
    }
    pthread_cond_signal(&s->more);
    pthread_mutex_unlock(&s->lock);
    am_free(copy);
}

void http_nudge_stream(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    long cap = (long)h->srv->cfg.http_threads - 16;
    if (atomic_fetch_add(&h->ws_open, 1) >= (cap > 1 ? cap : 1)) {
        atomic_fetch_sub(&h->ws_open, 1);
        http_problem(c, 503, "unavailable", "too many open streams; retry later");
        return;
    }
    struct sse s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.more, NULL);
    char prefix[AM_SUBJECT_MAX];
    uint64_t sub = 0;
    am_bus_subject(prefix, sizeof prefix, a->user_id, "derived.nudge", "stored");
    if (h->srv->bus.ops->subscribe(h->srv->bus.impl, prefix, sse_notice, &s, &sub) != AM_OK) {
        http_problem(c, 503, "unavailable", "cannot follow nudges now");
        goto out;
    }
    mg_response_header_start(c, 200);
    mg_response_header_add(c, "Content-Type", "text/event-stream", -1);
    mg_response_header_add(c, "Cache-Control", "no-store", -1);
    mg_response_header_add(c, "X-Accel-Buffering", "no", -1);
    mg_response_header_send(c);
    if (mg_printf(c, ": nudges for %s\n\n", a->user) <= 0)
        goto unsub;
    int idle = 0;
    while (!atomic_load(&h->stopping)) {
        char *msg = NULL;
        long dropped = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1; /* wake each second to see whether the server is stopping */
        pthread_mutex_lock(&s.lock);
        if (s.n == 0 && !s.dropped)
            pthread_cond_timedwait(&s.more, &s.lock, &ts);
        if (s.n) {
            msg = s.q[s.head];
            s.head = (s.head + 1) % SSE_QUEUE;
            s.n--;
        }
        dropped = s.dropped;
        s.dropped = 0;
        pthread_mutex_unlock(&s.lock);
        int w = 1;
        if (msg)
            w = mg_printf(c, "event: nudge\ndata: %s\n\n", msg);
        else if (dropped)
            w = mg_printf(c, "event: lagged\ndata: {\"dropped\": %ld}\n\n", dropped);
        else if (++idle >= 15) {
            idle = 0;
            w = mg_printf(c, ": keepalive\n\n");
        }
        am_free(msg);
        if (w <= 0)
            break; /* the client went away, or the server is stopping */
    }
unsub:
    h->srv->bus.ops->unsubscribe(h->srv->bus.impl, sub);
out:
    pthread_mutex_lock(&s.lock);
    for (size_t i = 0; i < s.n; i++)
        am_free(s.q[(s.head + i) % SSE_QUEUE]);
    pthread_mutex_unlock(&s.lock);
    pthread_mutex_destroy(&s.lock);
    pthread_cond_destroy(&s.more);
    atomic_fetch_sub(&h->ws_open, 1);
}

/* POST /v1/agent/summary?day=YYYY-MM-DD */
void http_day_summary(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    char day[40] = "", full[64];
    int64_t ts;
    if (http_param(c, "day", day, sizeof day) != 1 || strlen(day) != 10) {
        http_problem(c, 400, "malformed", "day: YYYY-MM-DD");
        return;
    }
    snprintf(full, sizeof full, "%sT00:00:00Z", day);
    if (am_time_from_string(full, &ts) != AM_OK) {
        http_problem(c, 400, "malformed", "day: YYYY-MM-DD");
        return;
    }
    json_t *out = NULL;
    am_rc rc = am_agent_summarize_day(h->srv, a->user_id, ts, &out);
    if (rc == AM_ENOTFOUND)
        http_problem(c, 404, "not-found", "nothing is known about %s", day);
    else if (rc != AM_OK)
        http_problem(c, 503, "unavailable", "summary: %s", am_strerror(rc));
    else
        http_json(c, 200, out);
}
