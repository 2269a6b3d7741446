/* fuzz_clients.c — libFuzzer target for the location apps' formats (http_clients.c): the
 * input as an OwnTracks message, an Overland batch and a GPSLogger form, each event checked
 * to be one that POST /v1/events would accept again unchanged. */
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

static const struct am_client_ctx cx = {
    .user_id = 7, .device = "phone", .lim = {32, 256 * 1024}, .max_items = 1000};

/* Every event a door makes is a valid event: same key, same payload when read back. */
static void check_events(const struct am_event_list *l) {
    if (l->n > cx.max_items)
        abort();
    for (size_t i = 0; i < l->n; i++) {
        const struct am_event *e = &l->items[i];
        if (!e->payload || strlen(e->payload) != e->payload_len || !e->key[0] ||
            e->user_id != cx.user_id || !e->source[0])
            abort();
        json_t *j = am_event_to_json(e);
        if (!j)
            abort();
        struct am_event again;
        char reason[200];
        if (am_event_from_json(j, e->user_id, &cx.lim, &again, reason, sizeof reason) != AM_OK)
            abort();
        if (again.ts_ns != e->ts_ns || strcmp(again.key, e->key) ||
            strcmp(again.stream, e->stream) || again.payload_len != e->payload_len ||
            memcmp(again.payload, e->payload, e->payload_len))
            abort();
        am_free(again.payload);
        json_decref(j);
    }
}

/* A refusal must come with a reason fit for a problem+json answer. */
static void check_refusal(am_rc rc, const char *err) {
    if (rc != AM_EINVAL && rc != AM_ELIMIT)
        abort();
    json_t *s = json_string(err);
    if (!err[0] || !s)
        abort();
    json_decref(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    long failures = am_alloc_failures();
    struct am_event_list l = {0};
    char err[256] = "";
    size_t skipped = 0, n_items = 0;

    am_rc rc = http_owntracks_parse(&cx, buf, size, &l, &skipped, err, sizeof err);
    if (rc == AM_OK)
        check_events(&l);
    else
        check_refusal(rc, err);
    am_event_list_free(&l);

    err[0] = '\0';
    skipped = 0;
    rc = http_overland_parse(&cx, buf, size, &l, &n_items, &skipped, err, sizeof err);
    if (rc == AM_OK) {
        check_events(&l);
        if (skipped > 2 * n_items) /* at most a fix and its battery per item */
            abort();
    } else {
        check_refusal(rc, err);
    }
    am_event_list_free(&l);

    err[0] = '\0';
    rc = http_gps_parse(&cx, buf, size, 1795597200LL * AM_NS_PER_S, &l, err, sizeof err);
    if (rc == AM_OK) {
        if (l.n < 1 || l.n > 2 || strcmp(l.items[0].stream, "location.gps"))
            abort();
        check_events(&l);
    } else {
        check_refusal(rc, err);
    }
    am_event_list_free(&l);

    if (am_alloc_failures() != failures)
        abort();
    return 0;
}
