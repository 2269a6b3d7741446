/* trigger.c — the agent's triggers and the thread that runs them. The first trigger:
 * a calendar event about to start, when the person's own data holds something about it
 * (a message, an email, a memory, something said or seen) — the nudge brings that to
 * them with the evidence. A plain reminder is left to their calendar app. */
#include "agent.h"
#include "../ingest/ingest.h"
#include "../search/search.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_RELATED 3

/* The snippet without its <mark> tags and entities, for a notification's plain text. */
static void plain(const char *html, char *out, size_t len) {
    size_t o = 0;
    for (const char *p = html; *p && o + 1 < len; p++) {
        if (*p == '<') {
            const char *e = strchr(p, '>');
            if (e) {
                p = e;
                continue;
            }
        }
        if (*p == '&') {
            static const struct { const char *ent; char ch; } ents[] = {
                {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&#39;", '\''}};
            size_t k = 0;
            for (; k < sizeof ents / sizeof ents[0]; k++)
                if (!strncmp(p, ents[k].ent, strlen(ents[k].ent)))
                    break;
            if (k < sizeof ents / sizeof ents[0]) {
                out[o++] = ents[k].ch;
                p += strlen(ents[k].ent) - 1;
                continue;
            }
        }
        out[o++] = *p;
    }
    out[o] = '\0';
    am_utf8_clean(out);
}

static am_rc calendar_trigger(struct am_server *srv, int64_t user_id, int64_t now,
                              json_t *decisions) {
    int64_t lead = srv->cfg.nudge_calendar_lead_min * 60 * AM_NS_PER_S;
    struct am_query q = {.stream = "calendar.event", .from_ns = now, .to_ns = now + lead,
                         .limit = 1000};
    /* Nudges already sent (their keys), so a meeting already mentioned costs no search. */
    struct am_query qn = {.stream = "derived.nudge", .from_ns = now - 2 * 86400 * AM_NS_PER_S,
                          .to_ns = now + 1, .limit = 5000, .descending = 1};
    struct am_event_list l = {0}, sent = {0};
    am_rc rc = srv->store.ops->query(srv->store.impl, user_id, &q, &l);
    if (rc == AM_OK)
        rc = srv->store.ops->query(srv->store.impl, user_id, &qn, &sent);
    for (size_t i = 0; rc == AM_OK && i < l.n; i++) {
        const struct am_event *e = &l.items[i];
        json_t *p = NULL, *found = NULL;
        char err[256] = "", done_key[AM_KEY_MAX + 1];
        snprintf(done_key, sizeof done_key, "nudge:calendar:%lld", (long long)e->id);
        size_t k = 0;
        while (k < sent.n && strcmp(sent.items[k].key, done_key) != 0)
            k++;
        if (k < sent.n)
            continue;
        if (am_json_parse(e->payload, strlen(e->payload), 64, &p, NULL, 0) != AM_OK)
            continue;
        const char *title = json_string_value(json_object_get(p, "title"));
        if (!title || !*title) {
            json_decref(p);
            continue;
        }
        /* What the person's own data says about it. */
        static const char *const where[] = {"comms.message", "comms.email", "derived.memory",
                                            "audio.transcript", "image.ocr", "calendar.todo"};
        struct am_search_params sp = {.q = title, .streams = where, .n_streams = 6,
                                      .from_ns = now - 90LL * 86400 * AM_NS_PER_S,
                                      .to_ns = now + 1, .limit = MAX_RELATED,
                                      .mode = AM_SEARCH_TEXT, .context = 0};
        if (am_search(srv, user_id, &sp, &found, err, sizeof err) != AM_OK) {
            json_decref(p);
            continue;
        }
        json_t *hits = json_object_get(found, "hits");
        if (json_array_size(hits) > 0) {
            int64_t ev[1 + MAX_RELATED];
            size_t nev = 0;
            ev[nev++] = e->id;
            char first[200] = "", body[400], reason[256], dedup[64], t[48];
            size_t k;
            json_t *h;
            json_array_foreach(hits, k, h) {
                if (nev < 1 + MAX_RELATED)
                    ev[nev++] = json_integer_value(json_object_get(h, "id"));
            }
            h = json_array_get(hits, 0);
            const char *snip = json_string_value(json_object_get(h, "snippet"));
            const char *from = json_string_value(json_object_get(h, "stream"));
            plain(snip ? snip : "", first, sizeof first);
            int mins = (int)((e->ts_ns - now + 30 * AM_NS_PER_S) / (60 * AM_NS_PER_S));
            am_time_format(e->ts_ns, t, sizeof t);
            snprintf(body, sizeof body, "In %d min. From your %s: %s", mins, from ? from : "data",
                     first);
            snprintf(reason, sizeof reason,
                     "'%.80s' starts at %.16s UTC and %zu item(s) of yours mention it", title, t,
                     json_array_size(hits));
            snprintf(dedup, sizeof dedup, "calendar:%lld", (long long)e->id);
            char title_buf[160];
            snprintf(title_buf, sizeof title_buf, "%s", title);
            struct am_nudge n = {.kind = "calendar", .dedup = dedup, .title = title_buf,
                                 .body = body, .reason = reason, .evidence = ev,
                                 .n_evidence = nev, .priority = 1};
            json_t *d = NULL;
            rc = am_nudge_offer(srv, user_id, &n, now, &d);
            if (d) {
                json_object_set_new(d, "trigger", json_string("calendar"));
                json_object_set_new(d, "event", json_integer(e->id));
                json_array_append_new(decisions, d);
            }
        }
        json_decref(found);
        json_decref(p);
    }
    am_event_list_free(&l);
    am_event_list_free(&sent);
    return rc;
}

static const struct am_sig_field decide_in[] = {
    {"context", "string", "the person's present: place, app, calendar, messages, sleep, heart"
                          " rate, each with its age"},
    {"memories", "array", "what is known about the person"},
    {"sent_today", "array", "nudges already sent today"},
};
static const struct am_sig_field decide_out[] = {
    {"should_notify", "boolean", "true only if a nudge now would clearly help"},
    {"title", "string", "a short headline"},
    {"body", "string", "one or two sentences"},
    {"reason", "string", "why now, citing the context"},
};
static const struct am_signature decide_nudge = {
    "DecideNudge",
    "You decide whether to interrupt a person with a short, helpful notification, given their"
    " present context and what is known about them. Most of the time the answer is no.",
    decide_in, decide_out, 3, 4, 1};

/* The model's own judgement over the live context (only with a chat model). */
static am_rc decide_trigger(struct am_server *srv, int64_t user_id, int64_t now,
                            json_t *decisions) {
    json_t *ctx = NULL, *mems = NULL, *in = NULL, *out = NULL;
    char err[256] = "";
    if (!srv->cfg.chat_url[0] || am_agent_context(srv, user_id, now, &ctx) != AM_OK)
        return AM_OK;
    json_t *mem_list = json_array(), *sent = json_array();
    if (am_agent_memories(srv, user_id, NULL, 10, &mems) == AM_OK) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(mems, "memories"), i, m) {
            const char *st = json_string_value(json_object_get(m, "status"));
            if (st && strcmp(st, "rejected") != 0)
                json_array_append(mem_list, json_object_get(m, "statement"));
        }
    }
    /* Evidence: every event the context rests on. */
    int64_t ev[16];
    size_t nev = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ctx, k, v) {
        json_t *id = json_object_get(v, "id");
        if (json_is_integer(id) && nev < 16)
            ev[nev++] = json_integer_value(id);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (json_is_integer(json_object_get(x, "id")) && nev < 16)
                ev[nev++] = json_integer_value(json_object_get(x, "id"));
        }
    }
    char *ctx_text = am_json_dump(ctx, NULL);
    in = json_pack("{s:s, s:O, s:O}", "context", ctx_text ? ctx_text : "{}", "memories",
                   mem_list, "sent_today", sent);
    am_free(ctx_text);
    if (in && am_predict(srv, user_id, &decide_nudge, in, &out, err, sizeof err) == AM_OK &&
        json_is_true(json_object_get(out, "should_notify"))) {
        const char *title = json_string_value(json_object_get(out, "title"));
        char dedup[96], hex[65];
        am_sha256_hex(title ? title : "", title ? strlen(title) : 0, hex);
        snprintf(dedup, sizeof dedup, "llm:%.16s:%lld", hex,
                 (long long)(now / (86400LL * AM_NS_PER_S)));
        struct am_nudge n = {.kind = "llm", .dedup = dedup, .title = title ? title : "",
                             .body = json_string_value(json_object_get(out, "body")),
                             .reason = json_string_value(json_object_get(out, "reason")),
                             .evidence = ev, .n_evidence = nev, .priority = 0};
        json_t *d = NULL;
        if (n.title[0] && am_nudge_offer(srv, user_id, &n, now, &d) == AM_OK && d) {
            json_object_set_new(d, "trigger", json_string("DecideNudge"));
            json_array_append_new(decisions, d);
        }
    }
    json_decref(out);
    json_decref(in);
    json_decref(mem_list);
    json_decref(sent);
    json_decref(mems);
    json_decref(ctx);
    return AM_OK;
}

am_rc am_agent_tick(struct am_server *srv, int64_t user_id, int64_t now, json_t *decisions) {
    size_t visits = 0;
    am_rc rc = am_places_run(srv, user_id, now, &visits);
    if (rc != AM_OK)
        am_warn("agent: places for user %lld: %s", (long long)user_id, am_strerror(rc));
    json_t *lapses = json_array();
    if (am_habits_run(srv, user_id, now, lapses) != AM_OK)
        am_warn("agent: habits for user %lld failed", (long long)user_id);
    /* A lapse is worth a word the evening it happens, once. */
    size_t i;
    json_t *x;
    json_array_foreach(lapses, i, x) {
        int64_t ev = json_integer_value(json_array_get(json_object_get(x, "evidence"), 0));
        struct am_nudge n = {.kind = "habit", .dedup = json_string_value(json_object_get(x, "dedup")),
                             .title = json_string_value(json_object_get(x, "text")),
                             .body = "A routine you keep most weeks did not happen today.",
                             .reason = "lapse of a weekly routine found in your place visits",
                             .evidence = &ev, .n_evidence = 1, .priority = 0};
        json_t *d = NULL;
        if (am_nudge_offer(srv, user_id, &n, now, &d) == AM_OK && d) {
            json_object_set_new(d, "trigger", json_string("habit"));
            json_array_append_new(decisions, d);
        }
    }
    json_decref(lapses);
    json_t *anomalies = json_array();
    if (am_anomalies_run(srv, user_id, now, anomalies) != AM_OK)
        am_warn("agent: anomalies for user %lld failed", (long long)user_id);
    json_array_foreach(anomalies, i, x) {
        int64_t ev[9];
        size_t nev = 0, k;
        json_t *y;
        ev[nev++] = json_integer_value(json_object_get(x, "id"));
        json_array_foreach(json_object_get(x, "evidence"), k, y) {
            if (nev < 9)
                ev[nev++] = json_integer_value(y);
        }
        char dedup[48];
        snprintf(dedup, sizeof dedup, "anomaly:%lld", (long long)ev[0]);
        struct am_nudge n = {.kind = "anomaly", .dedup = dedup,
                             .title = json_string_value(json_object_get(x, "text")),
                             .body = "Unusual against your own baseline for this time of the"
                                     " week. If you are not exercising, take a moment.",
                             .reason = "robust z-score beyond 3.5 against the same hour in the"
                                       " previous four weeks",
                             .evidence = ev, .n_evidence = nev, .priority = 1};
        json_t *d = NULL;
        if (am_nudge_offer(srv, user_id, &n, now, &d) == AM_OK && d) {
            json_object_set_new(d, "trigger", json_string("anomaly"));
            json_array_append_new(decisions, d);
        }
    }
    json_decref(anomalies);
    size_t found = 0;
    if (am_correlate_run(srv, user_id, now, &found) != AM_OK)
        am_warn("agent: correlations for user %lld failed", (long long)user_id);
    if (am_memories_infer(srv, user_id, now, &found) != AM_OK)
        am_warn("agent: memories for user %lld failed", (long long)user_id);
    rc = calendar_trigger(srv, user_id, now, decisions);
    if (rc == AM_OK)
        rc = decide_trigger(srv, user_id, now, decisions);
    return rc;
}

/* The agent's thread: a full tick (analyzers and triggers) for every user every
 * agent_tick_s, and in between, at once, the calendar trigger for a user whose calendar
 * just changed (the bus tells it), so a meeting added minutes before it starts is not
 * missed and a rule fires within milliseconds of the event's commit. */
#define MAX_PENDING 256
#define MAX_SUBS 1024

struct am_agent {
    struct am_server *srv;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    int64_t pending[MAX_PENDING]; /* users with a new calendar event */
    size_t n_pending;
    int overflow; /* more than MAX_PENDING: run everyone */
    uint64_t subs[MAX_SUBS];
    int64_t sub_users[MAX_SUBS];
    size_t n_subs;
};

/* On the bus's dispatcher thread: note the user and wake the agent; never blocks long. */
static void on_calendar(const struct am_notice *n, void *arg) {
    struct am_agent *a = arg;
    pthread_mutex_lock(&a->lock);
    size_t k = 0;
    while (k < a->n_pending && a->pending[k] != n->user_id)
        k++;
    if (k == a->n_pending) {
        if (a->n_pending < MAX_PENDING)
            a->pending[a->n_pending++] = n->user_id;
        else
            a->overflow = 1;
    }
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
}

/* Subscribes to each user's calendar notices once (new users appear between ticks). */
static void subscribe_users(struct am_agent *a, const int64_t *users, size_t n) {
    struct am_bus *bus = &a->srv->bus;
    for (size_t i = 0; i < n && a->n_subs < MAX_SUBS; i++) {
        size_t k = 0;
        while (k < a->n_subs && a->sub_users[k] != users[i])
            k++;
        if (k < a->n_subs)
            continue;
        char prefix[AM_SUBJECT_MAX];
        am_bus_subject(prefix, sizeof prefix, users[i], "calendar.event", "stored");
        if (bus->ops->subscribe(bus->impl, prefix, on_calendar, a, &a->subs[a->n_subs]) ==
            AM_OK)
            a->sub_users[a->n_subs++] = users[i];
    }
}

static void log_decisions(json_t *d, int64_t user) {
    size_t k;
    json_t *x;
    json_array_foreach(d, k, x) {
        if (json_is_true(json_object_get(x, "sent")))
            am_info("agent: nudge %lld for user %lld",
                    (long long)json_integer_value(json_object_get(x, "id")), (long long)user);
    }
}

static void *agent_main(void *arg) {
    struct am_agent *a = arg;
    struct am_server *srv = a->srv;
    int64_t next_tick = am_mono_ns() + srv->cfg.agent_tick_s * AM_NS_PER_S;
    int64_t *first = NULL;
    size_t n_first = 0;
    if (srv->store.ops->users(srv->store.impl, &first, &n_first) == AM_OK)
        subscribe_users(a, first, n_first); /* users added later: at the next tick */
    am_free(first);
    for (;;) {
        int64_t users_now[MAX_PENDING];
        size_t n_now = 0;
        int all = 0;
        pthread_mutex_lock(&a->lock);
        for (;;) {
            if (a->stopping || a->n_pending || a->overflow || am_mono_ns() >= next_tick)
                break;
            int64_t wait = next_tick - am_mono_ns();
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t until = (int64_t)ts.tv_sec * AM_NS_PER_S + ts.tv_nsec + wait;
            ts.tv_sec = (time_t)(until / AM_NS_PER_S);
            ts.tv_nsec = (long)(until % AM_NS_PER_S);
            pthread_cond_timedwait(&a->wake, &a->lock, &ts);
        }
        int stop = a->stopping;
        memcpy(users_now, a->pending, a->n_pending * sizeof users_now[0]);
        n_now = a->n_pending;
        all = a->overflow;
        a->n_pending = 0;
        a->overflow = 0;
        pthread_mutex_unlock(&a->lock);
        if (stop)
            break;
        int64_t now = am_now_ns();
        if (!all && am_mono_ns() < next_tick) {
            /* A calendar changed: only the calendar trigger, for those users, now. */
            for (size_t i = 0; i < n_now; i++) {
                json_t *d = json_array();
                if (d && calendar_trigger(srv, users_now[i], now, d) != AM_OK)
                    am_warn("agent: calendar trigger for user %lld failed",
                            (long long)users_now[i]);
                log_decisions(d, users_now[i]);
                json_decref(d);
            }
            continue;
        }
        next_tick = am_mono_ns() + srv->cfg.agent_tick_s * AM_NS_PER_S;
        int64_t *users = NULL;
        size_t n = 0;
        if (srv->store.ops->users(srv->store.impl, &users, &n) != AM_OK)
            continue;
        subscribe_users(a, users, n);
        for (size_t i = 0; i < n; i++) {
            json_t *d = json_array();
            if (d && am_agent_tick(srv, users[i], now, d) != AM_OK)
                am_warn("agent: triggers for user %lld failed", (long long)users[i]);
            log_decisions(d, users[i]);
            json_decref(d);
        }
        am_free(users);
    }
    return NULL;
}

am_rc am_agent_start(struct am_server *srv, struct am_agent **out) {
    *out = NULL;
    if (srv->cfg.agent_tick_s <= 0)
        return AM_OK; /* triggers run only on request (POST /v1/agent/tick) */
    struct am_agent *a = am_calloc(1, sizeof *a);
    if (!a)
        return AM_ENOMEM;
    a->srv = srv;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    if (pthread_create(&a->thread, NULL, agent_main, a) != 0) {
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->wake);
        am_free(a);
        return AM_EBACKEND;
    }
    *out = a;
    return AM_OK;
}

void am_agent_stop(struct am_agent *a) {
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    /* After this no callback runs: the bus guarantees it per subscription. */
    for (size_t i = 0; i < a->n_subs; i++)
        a->srv->bus.ops->unsubscribe(a->srv->bus.impl, a->subs[i]);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    am_free(a);
}
