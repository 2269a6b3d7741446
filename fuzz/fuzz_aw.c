/* fuzz_aw.c — libFuzzer target for the ActivityWatch door (http_aw_format.c,
 * http_aw_query.c): the input as AW events (each made event must be one POST /v1/events
 * accepts again unchanged, and must read back as the same span) and as a query program
 * run against a fixed set of buckets; the first byte picks which. */
#include "ingest/http_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    if (am_crypto_init() != AM_OK)
        abort();
    return 0;
}

static const struct am_limits lim = {32, 256 * 1024};

static void check_events(const struct am_event_list *l, const char *stream) {
    for (size_t i = 0; i < l->n; i++) {
        const struct am_event *e = &l->items[i];
        if (strcmp(e->stream, stream) || strncmp(e->source, "aw/", 3) ||
            strncmp(e->key, "aw-", 3) || e->ts_end_ns < e->ts_ns)
            abort();
        json_t *j = am_event_to_json(e);
        struct am_event again;
        char reason[200];
        if (!j || am_event_from_json(j, e->user_id, &lim, &again, reason, sizeof reason))
            abort();
        if (again.ts_ns != e->ts_ns || strcmp(again.key, e->key) ||
            again.payload_len != e->payload_len ||
            memcmp(again.payload, e->payload, e->payload_len))
            abort();
        am_free(again.payload);
        json_decref(j);
        /* Back to AW's shape and in again: the same span to the microsecond. */
        json_t *aw = http_aw_event_json(1, e->ts_ns, e->ts_end_ns, e->payload, e->payload_len);
        int64_t s, en;
        json_t *data = NULL;
        if (!aw || http_aw_event_decode(aw, &s, &en, &data, reason, sizeof reason))
            abort();
        if (llabs(s - e->ts_ns) >= 1000 || llabs((en - s) - (e->ts_end_ns - e->ts_ns)) > 2000)
            abort();
        json_decref(data);
        json_decref(aw);
    }
}

static am_rc fake_buckets(void *arg, json_t **out) {
    (void)arg;
    *out = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "aw-watcher-window_h", "type", "currentwindow",
                     "hostname", "h", "aw-watcher-afk_h", "type", "afkstatus", "hostname", "h");
    return *out ? AM_OK : AM_ENOMEM;
}

static am_rc fake_events(void *arg, const char *bucket, int64_t from_ns, int64_t to_ns,
                         json_t **out) {
    (void)arg, (void)from_ns, (void)to_ns;
    if (!strcmp(bucket, "aw-watcher-window_h"))
        *out = json_pack("[{s:s, s:f, s:{s:s, s:s}}, {s:s, s:f, s:{s:s, s:s}},"
                         " {s:s, s:f, s:{s:s}}]",
                         "timestamp", "2026-11-25T09:00:00+00:00", "duration", 5.0, "data", "app",
                         "Firefox", "title", "a", "timestamp", "2026-11-25T09:00:06+00:00",
                         "duration", 1.5, "data", "app", "Terminal", "title", "b", "timestamp",
                         "2026-11-25T09:00:20.5+00:00", "duration", 0.0, "data", "app", "x");
    else if (!strcmp(bucket, "aw-watcher-afk_h"))
        *out = json_pack("[{s:s, s:f, s:{s:s}}]", "timestamp", "2026-11-25T08:59:00+00:00",
                         "duration", 120.0, "data", "status", "not-afk");
    else
        return AM_ENOTFOUND;
    return *out ? AM_OK : AM_ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    if (data[0] % 2 == 0) {
        static const char *types[] = {"currentwindow", "afkstatus", "app.editor.activity"};
        char stream[AM_STREAM_MAX + 1];
        http_aw_stream(types[(data[0] / 2) % 3], stream);
        struct am_event_list l = {0};
        am_rc rc = http_aw_events_parse(7, "aw-watcher-window_h", stream, &lim, 1000, buf, len, &l,
                                        err, sizeof err);
        if (rc == AM_OK)
            check_events(&l, stream);
        else if (rc != AM_EINVAL && rc != AM_ELIMIT && rc != AM_ENOMEM)
            abort();
        am_event_list_free(&l);
    } else {
        struct http_aw_source src = {NULL, fake_buckets, fake_events};
        json_t *out = NULL;
        am_rc rc = http_aw_query(&src, buf, len, 1795597000LL * AM_NS_PER_S,
                                 1795598000LL * AM_NS_PER_S, &out, err, sizeof err);
        if (rc == AM_OK) {
            char *s = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!s)
                abort();
            free(s);
        } else if (!err[0]) {
            abort(); /* a refusal always says why */
        }
        json_decref(out);
        /* The stream mapping and the id check never fail on any text. */
        char stream[AM_STREAM_MAX + 1], *t = am_strndup(buf, len);
        if (t) {
            http_aw_stream(t, stream);
            if (!am_stream_name_valid(stream, strlen(stream)))
                abort();
            (void)http_aw_bucket_id_valid(t, strlen(t));
            am_free(t);
        }
    }
    return 0;
}
