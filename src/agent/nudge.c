/* nudge.c — the nudge policy and the record of nudges. A nudge is a derived.nudge event:
 * stored through am_ingest_submit, so it is on the time axis, searchable, per user, and
 * reaches WebSocket subscribers live. The policy reads only what is stored (today's
 * nudges, recent feedback), so it holds across restarts. */
#include "agent.h"
#include "../ingest/ingest.h"
#include "../notify/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_NS (86400 * AM_NS_PER_S)

static am_rc query(struct am_server *srv, int64_t user_id, const char *stream, int64_t from,
                   int64_t to, size_t limit, struct am_event_list *out) {
    struct am_query q = {.stream = stream, .from_ns = from, .to_ns = to, .limit = limit,
                         .descending = 1};
    memset(out, 0, sizeof *out);
    return srv->store.ops->query(srv->store.impl, user_id, &q, out);
}

static json_t *payload(const struct am_event *e) {
    json_t *p = NULL;
    if (am_json_parse(e->payload, strlen(e->payload), 64, &p, NULL, 0) != AM_OK)
        return NULL;
    return p;
}

/* 1 when the local hour falls in "FROM-TO" (which may wrap midnight). */
static int quiet(const char *spec, int hour) {
    int from, to;
    if (!spec || sscanf(spec, "%d-%d", &from, &to) != 2 || from == to)
        return 0;
    return from < to ? hour >= from && hour < to : hour >= from || hour < to;
}

static json_t *refused(const char *why) {
    return json_pack("{s:b, s:s}", "sent", 0, "why", why);
}

am_rc am_nudge_offer(struct am_server *srv, int64_t user_id, const struct am_nudge *n,
                     int64_t now, json_t **decision) {
    const struct am_config *cfg = &srv->cfg;
    int64_t local = now + cfg->utc_offset_min * 60 * AM_NS_PER_S;
    int64_t midnight = local - (local % DAY_NS + DAY_NS) % DAY_NS -
                       cfg->utc_offset_min * 60 * AM_NS_PER_S;
    int hour = (int)(((local % DAY_NS + DAY_NS) % DAY_NS) / (3600 * AM_NS_PER_S));
    struct am_event_list today = {0}, fb = {0};
    char why[160], key[AM_KEY_MAX + 1], reason[256];
    am_rc rc;
    *decision = NULL;
    if (quiet(cfg->nudge_quiet_hours, hour)) {
        snprintf(why, sizeof why, "quiet hours (%s, local hour %d)", cfg->nudge_quiet_hours, hour);
        *decision = refused(why);
        return *decision ? AM_OK : AM_ENOMEM;
    }
    if ((rc = query(srv, user_id, "derived.nudge", midnight, now + 1, 1000, &today)) != AM_OK ||
        (rc = query(srv, user_id, "derived.feedback", now - 7 * DAY_NS, now + 1, 5000, &fb)) !=
            AM_OK)
        goto out;
    /* Fatigue: every two nudges rated not useful this week take one off today's budget. */
    int64_t not_useful = 0;
    for (size_t i = 0; i < fb.n; i++) {
        json_t *p = payload(&fb.items[i]);
        const char *r = p ? json_string_value(json_object_get(p, "rating")) : NULL;
        not_useful += r && !strcmp(r, "not_useful");
        json_decref(p);
    }
    int64_t budget = cfg->nudge_budget_per_day - not_useful / 2;
    if (cfg->nudge_budget_per_day > 0 && budget < 1)
        budget = 1;
    snprintf(key, sizeof key, "nudge:%.100s", n->dedup);
    for (size_t i = 0; i < today.n; i++)
        if (!strcmp(today.items[i].key, key)) {
            *decision = json_pack("{s:b, s:s, s:I}", "sent", 0, "why", "already sent", "id",
                                  (json_int_t)today.items[i].id);
            goto out;
        }
    if ((int64_t)today.n >= budget) {
        snprintf(why, sizeof why, "daily budget used (%zu of %lld%s)", today.n, (long long)budget,
                 not_useful >= 2 ? ", lowered by nudges rated not useful" : "");
        *decision = refused(why);
        goto out;
    }
    for (size_t i = 0; i < today.n && n->priority < 2; i++) {
        json_t *p = payload(&today.items[i]);
        const char *k = p ? json_string_value(json_object_get(p, "kind")) : NULL;
        int same = k && !strcmp(k, n->kind) &&
                   now - today.items[i].ts_ns < cfg->nudge_cooldown_min * 60 * AM_NS_PER_S;
        json_decref(p);
        if (same) {
            snprintf(why, sizeof why, "cooldown: a %s nudge %lld min ago", n->kind,
                     (long long)((now - today.items[i].ts_ns) / (60 * AM_NS_PER_S)));
            *decision = refused(why);
            goto out;
        }
    }
    json_t *ev = json_array();
    for (size_t i = 0; ev && i < n->n_evidence; i++)
        json_array_append_new(ev, json_integer(n->evidence[i]));
    snprintf(reason, sizeof reason, "%s", n->reason ? n->reason : "");
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s, s:s, s:o, s:s, s:i}}", "stream",
                          "derived.nudge", "source", "am.agent", "ts_ns", (json_int_t)now, "key",
                          key, "payload", "title", n->title, "body", n->body ? n->body : "",
                          "reason", reason, "evidence", ev ? ev : json_array(), "kind", n->kind,
                          "priority", n->priority);
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {.max_depth = (size_t)cfg->max_json_depth,
                            .max_payload_bytes = (size_t)cfg->max_payload_bytes};
    memset(&e, 0, sizeof e);
    rc = o ? am_event_from_json(o, user_id, &lim, &e, why, sizeof why) : AM_ENOMEM;
    json_decref(o);
    if (rc == AM_OK)
        rc = am_ingest_submit(srv, user_id, &e, 1, &res);
    if (rc == AM_OK)
        *decision = res.status == AM_ITEM_STORED
                        ? json_pack("{s:b, s:I}", "sent", 1, "id", (json_int_t)res.id)
                        : json_pack("{s:b, s:s, s:I}", "sent", 0, "why", "already sent", "id",
                                    (json_int_t)res.id);
    /* Stored (and live on the WebSocket); now the push channels, best effort. */
    if (rc == AM_OK && res.status == AM_ITEM_STORED && *decision) {
        json_t *ev = am_event_to_json(&e), *push = json_object();
        if (ev && push) {
            am_notify_push(srv, ev, push);
            if (json_object_size(push))
                json_object_set(*decision, "delivered", push);
        }
        json_decref(ev);
        json_decref(push);
    }
    else if (rc == AM_EINVAL)
        *decision = refused(why);
    if (rc == AM_EINVAL)
        rc = AM_OK;
    am_event_clear(&e);
out:
    am_event_list_free(&today);
    am_event_list_free(&fb);
    if (rc == AM_OK && !*decision)
        rc = AM_ENOMEM;
    return rc;
}

am_rc am_nudges(struct am_server *srv, int64_t user_id, size_t limit, json_t **out) {
    struct am_event_list l = {0}, fb = {0};
    *out = NULL;
    am_rc rc = query(srv, user_id, "derived.nudge", AM_TS_NONE, AM_TS_NONE, limit, &l);
    if (rc == AM_OK)
        rc = query(srv, user_id, "derived.feedback", AM_TS_NONE, AM_TS_NONE, 20000, &fb);
    json_t *arr = rc == AM_OK ? json_array() : NULL;
    for (size_t i = 0; arr && i < l.n; i++) {
        json_t *j = am_event_to_json(&l.items[i]);
        if (!j)
            continue;
        for (size_t k = 0; k < fb.n; k++) { /* newest first: the first match is the latest */
            json_t *p = payload(&fb.items[k]);
            int hit = p && json_integer_value(json_object_get(p, "target")) == l.items[i].id;
            if (hit)
                json_object_set(j, "feedback", json_object_get(p, "rating"));
            json_decref(p);
            if (hit)
                break;
        }
        json_array_append_new(arr, j);
    }
    am_event_list_free(&l);
    am_event_list_free(&fb);
    if (rc == AM_OK && !arr)
        rc = AM_ENOMEM;
    if (rc == AM_OK)
        *out = json_pack("{s:o}", "nudges", arr);
    return rc;
}

am_rc am_nudge_feedback(struct am_server *srv, int64_t user_id, int64_t nudge_id,
                        const char *rating, json_t **out, char *err, size_t err_len) {
    struct am_event n, fb;
    struct am_item_result res;
    char key[AM_KEY_MAX + 1], reason[256];
    *out = NULL;
    if (!rating || (strcmp(rating, "useful") && strcmp(rating, "not_useful") &&
                    strcmp(rating, "snooze"))) {
        snprintf(err, err_len, "rating: useful, not_useful or snooze");
        return AM_EINVAL;
    }
    memset(&n, 0, sizeof n);
    memset(&fb, 0, sizeof fb);
    am_rc rc = srv->store.ops->get_event(srv->store.impl, user_id, nudge_id, &n);
    if (rc == AM_OK && strcmp(n.stream, "derived.nudge") != 0)
        rc = AM_ENOTFOUND;
    am_event_clear(&n);
    if (rc != AM_OK) {
        snprintf(err, err_len, "no nudge %lld", (long long)nudge_id);
        return rc;
    }
    int64_t now = am_now_ns();
    snprintf(key, sizeof key, "feedback:%lld:%lld", (long long)nudge_id, (long long)now);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:I, s:s}}", "stream", "derived.feedback",
                          "source", "am", "ts_ns", (json_int_t)now, "key", key, "payload",
                          "target", (json_int_t)nudge_id, "rating", rating);
    struct am_limits lim = {.max_depth = (size_t)srv->cfg.max_json_depth,
                            .max_payload_bytes = (size_t)srv->cfg.max_payload_bytes};
    rc = o ? am_event_from_json(o, user_id, &lim, &fb, reason, sizeof reason) : AM_ENOMEM;
    json_decref(o);
    if (rc == AM_OK)
        rc = am_ingest_submit(srv, user_id, &fb, 1, &res);
    if (rc == AM_OK)
        *out = json_pack("{s:I, s:s, s:I}", "nudge", (json_int_t)nudge_id, "feedback", rating,
                         "event", (json_int_t)res.id);
    else if (rc == AM_EINVAL)
        snprintf(err, err_len, "%s", reason);
    am_event_clear(&fb);
    return rc;
}
