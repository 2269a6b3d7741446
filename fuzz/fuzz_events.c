/* fuzz_events.c — libFuzzer target for request bodies: the input as a JSON body and as
 * NDJSON through am_batch_parse, the per-item answer, and each valid event as JSON and back. */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

static const struct am_limits lim = {32, 256 * 1024};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    if (am_crypto_init() != AM_OK)
        abort();
    return 0;
}

/* Text that ends up in a problem+json answer must be valid UTF-8, or jansson refuses it. */
static int utf8_ok(const char *s) {
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* What we answer for an event must be accepted again as that same event (export, import). */
static void check_round_trip(const struct am_event *e) {
    json_t *j = am_event_to_json(e);
    if (!j)
        abort(); /* no allocation failed, so a valid event must serialise */
    struct am_event again;
    char reason[200];
    if (am_event_from_json(j, e->user_id, &lim, &again, reason, sizeof reason) != AM_OK)
        abort();
    if (again.ts_ns != e->ts_ns || again.ts_end_ns != e->ts_end_ns ||
        strcmp(again.stream, e->stream) != 0 || strcmp(again.source, e->source) != 0 ||
        strcmp(again.key, e->key) != 0 || strcmp(again.blob, e->blob) != 0 ||
        strcmp(again.trace, e->trace) != 0 || again.payload_len != e->payload_len ||
        memcmp(again.payload, e->payload, e->payload_len) != 0)
        abort();
    am_free(again.payload);
    json_decref(j);
}

static void check_batch(const struct am_batch *b) {
    if (b->n_items == 0 || b->n_items > 1000 || b->n_evs > b->n_items)
        abort();
    for (size_t i = 0; i < b->n_evs; i++) {
        if (b->index[i] >= b->n_items || (i > 0 && b->index[i] <= b->index[i - 1]))
            abort();
        if (b->res[b->index[i]].status != AM_ITEM_STORED || !b->evs[i].payload ||
            strlen(b->evs[i].payload) != b->evs[i].payload_len ||
            b->evs[i].payload_len > lim.max_payload_bytes || !b->evs[i].key[0] ||
            strcmp(b->keys[b->index[i]], b->evs[i].key) != 0)
            abort();
        check_round_trip(&b->evs[i]);
    }
    size_t rejected = 0;
    int reasons_utf8 = 1;
    for (size_t i = 0; i < b->n_items; i++) {
        if (b->res[i].status == AM_ITEM_REJECTED) {
            rejected++;
            if (!b->res[i].reason[0])
                abort();
            reasons_utf8 &= utf8_ok(b->res[i].reason);
        }
    }
    if (rejected != b->n_items - b->n_evs)
        abort();
    json_t *res = am_batch_results_json(b);
    if (!reasons_utf8)
        abort(); /* reasons go into JSON answers */
    if (!res || json_array_size(json_object_get(res, "results")) != b->n_items ||
        json_integer_value(json_object_get(res, "rejected")) != (json_int_t)rejected)
        abort(); /* no allocation failed, so the answer must be built */
    json_decref(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    long failures = am_alloc_failures();
    for (int ndjson = 0; ndjson <= 1; ndjson++) {
        struct am_batch b;
        char err[256] = "";
        am_rc rc = am_batch_parse(&b, (const char *)data, size, ndjson, 1, &lim, 1000,
                                  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", err,
                                  sizeof err);
        if (rc == AM_OK) {
            check_batch(&b);
            am_batch_free(&b);
            continue;
        }
        /* A refused body is refused whole: nothing left to free, a reason to give. */
        if ((rc != AM_EINVAL && rc != AM_ELIMIT) || b.n_items || b.n_evs || b.res || b.evs ||
            b.keys || b.index || !err[0])
            abort();
        if (!utf8_ok(err))
            abort(); /* err goes into a problem+json answer */
    }
    if (am_alloc_failures() != failures)
        abort(); /* nothing here may have run out of memory */
    return 0;
}
