/* people.c — who appears in a person's life, and where: senders and recipients of email
 * and messages, calendar attendees, and the people a chat model named in analysed text.
 * Names and addresses are folded to one key per person (the address's local part when
 * there is one, else the lowercased name), counted per stream over the last 90 days. */
#include "agent.h"
#include "../ingest/ingest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOKBACK_NS (90LL * 86400 * AM_NS_PER_S)
#define MAX_PEOPLE 512
#define MAX_EVIDENCE 8

struct person {
    char key[64], name[96];
    int counts[5]; /* email, message, calendar, transcript, analysis */
    int64_t ev[MAX_EVIDENCE];
    int nev;
};

static const char *const WHERE[5] = {"email", "messages", "calendar", "speech", "text"};

/* "Priya Raman <priya@example.org>" → key "priya", name "Priya Raman". */
static void fold(const char *s, char *key, size_t klen, char *name, size_t nlen) {
    const char *lt = strchr(s, '<'), *at = strchr(s, '@');
    size_t n = 0;
    if (lt && lt > s) {
        size_t len = (size_t)(lt - s);
        while (len && s[len - 1] == ' ')
            len--;
        snprintf(name, nlen, "%.*s", (int)len, s);
    } else {
        snprintf(name, nlen, "%s", s);
    }
    const char *from = at ? (lt && lt < at ? lt + 1 : s) : name;
    const char *stop = at ? at : from + strlen(from);
    /* The first word of a name, or the address's local part up to a dot. */
    for (const char *p = from; p < stop && n + 1 < klen; p++) {
        if (*p == ' ' || *p == '.' || *p == '"')
            break;
        key[n++] = (char)tolower((unsigned char)*p);
    }
    key[n] = '\0';
    if (at && (!lt || lt > s) && !(lt && lt > s)) /* a bare address: its local part names it */
        snprintf(name, nlen, "%s", key);
}

static void count(struct person *pp, size_t *np, const char *who, int where, int64_t id) {
    char key[64], name[96];
    if (!who || !*who)
        return;
    fold(who, key, sizeof key, name, sizeof name);
    if (strlen(key) < 2 || !strcmp(key, "me"))
        return;
    size_t k = 0;
    while (k < *np && strcmp(pp[k].key, key) != 0)
        k++;
    if (k == *np) {
        if (*np == MAX_PEOPLE)
            return;
        memset(&pp[k], 0, sizeof pp[k]);
        snprintf(pp[k].key, sizeof pp[k].key, "%s", key);
        (*np)++;
    }
    /* The longest spelling seen is the most complete name. */
    if (strlen(name) > strlen(pp[k].name) && !strchr(name, '@'))
        snprintf(pp[k].name, sizeof pp[k].name, "%s", name);
    pp[k].counts[where]++;
    if (pp[k].nev < MAX_EVIDENCE)
        pp[k].ev[pp[k].nev++] = id;
}

static void scan(struct am_server *srv, int64_t user_id, int64_t now, const char *stream,
                 int where, const char *const *fields, struct person *pp, size_t *np) {
    struct am_query q = {.stream = stream, .from_ns = now - LOOKBACK_NS, .to_ns = now + 1,
                         .limit = 20000};
    struct am_event_list l = {0};
    if (srv->store.ops->query(srv->store.impl, user_id, &q, &l) != AM_OK)
        return;
    for (size_t i = 0; i < l.n; i++) {
        json_t *p = NULL;
        if (am_json_parse(l.items[i].payload, strlen(l.items[i].payload), 64, &p, NULL, 0) !=
            AM_OK)
            continue;
        for (size_t f = 0; fields[f]; f++) {
            json_t *v = json_object_get(p, fields[f]);
            if (!strcmp(fields[f], "entities"))
                v = json_object_get(v, "people");
            if (json_is_string(v))
                count(pp, np, json_string_value(v), where, l.items[i].id);
            size_t k;
            json_t *x;
            json_array_foreach(v, k, x) {
                if (json_is_string(x))
                    count(pp, np, json_string_value(x), where, l.items[i].id);
            }
        }
        json_decref(p);
    }
    am_event_list_free(&l);
}

static int by_total(const void *a, const void *b) {
    const struct person *x = a, *y = b;
    int tx = 0, ty = 0;
    for (int i = 0; i < 5; i++)
        tx += x->counts[i], ty += y->counts[i];
    return ty - tx;
}

am_rc am_people(struct am_server *srv, int64_t user_id, int64_t now, json_t **out) {
    static const char *const email[] = {"from", "to", NULL};
    static const char *const msg[] = {"from", "to", NULL};
    static const char *const cal[] = {"attendees", NULL};
    static const char *const ana[] = {"entities", NULL};
    struct person *pp = am_calloc(MAX_PEOPLE, sizeof *pp);
    size_t np = 0;
    *out = NULL;
    if (!pp)
        return AM_ENOMEM;
    scan(srv, user_id, now, "comms.email", 0, email, pp, &np);
    scan(srv, user_id, now, "comms.message", 1, msg, pp, &np);
    scan(srv, user_id, now, "calendar.event", 2, cal, pp, &np);
    scan(srv, user_id, now, "derived.analysis", 4, ana, pp, &np);
    /* Speech has no sender: a known person's name said in a transcript counts. */
    struct am_query q = {.stream = "audio.transcript", .from_ns = now - LOOKBACK_NS,
                         .to_ns = now + 1, .limit = 20000};
    struct am_event_list l = {0};
    if (srv->store.ops->query(srv->store.impl, user_id, &q, &l) == AM_OK) {
        for (size_t i = 0; i < l.n; i++) {
            char low[4096];
            size_t n = 0;
            for (const char *c = l.items[i].payload; *c && n + 1 < sizeof low; c++)
                low[n++] = (char)tolower((unsigned char)*c);
            low[n] = '\0';
            for (size_t k = 0; k < np; k++)
                if (strlen(pp[k].key) >= 3 && strstr(low, pp[k].key) && pp[k].counts[3] < 1000) {
                    pp[k].counts[3]++;
                    if (pp[k].nev < MAX_EVIDENCE)
                        pp[k].ev[pp[k].nev++] = l.items[i].id;
                }
        }
        am_event_list_free(&l);
    }
    qsort(pp, np, sizeof *pp, by_total);
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < np; k++) {
        int total = 0, streams = 0;
        json_t *where = json_object(), *ev = json_array();
        for (int i = 0; i < 5; i++) {
            total += pp[k].counts[i];
            streams += pp[k].counts[i] > 0;
            if (pp[k].counts[i] && where)
                json_object_set_new(where, WHERE[i], json_integer(pp[k].counts[i]));
        }
        for (int i = 0; ev && i < pp[k].nev; i++)
            json_array_append_new(ev, json_integer(pp[k].ev[i]));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:i, s:o, s:o}", "key", pp[k].key,
                                             "name", pp[k].name[0] ? pp[k].name : pp[k].key,
                                             "mentions", total, "streams", streams, "where",
                                             where ? where : json_object(), "evidence",
                                             ev ? ev : json_array()));
    }
    am_free(pp);
    if (!arr)
        return AM_ENOMEM;
    *out = json_pack("{s:o}", "people", arr);
    return *out ? AM_OK : AM_ENOMEM;
}
