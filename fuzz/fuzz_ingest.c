/* fuzz_ingest.c — libFuzzer target for the request body parser and the payload
 * validation behind it: JSON and NDJSON bodies, every catalog check, results JSON. */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        am_alloc_init();
        am_crypto_init();
        ready = 1;
    }
    struct am_limits lim = {32, 262144};
    for (int ndjson = 0; ndjson <= 1; ndjson++) {
        struct am_batch b;
        char err[256];
        if (am_batch_parse(&b, (const char *)data, size, ndjson, 1, &lim, 1000, "00-trace", err,
                           sizeof err) != AM_OK)
            continue;
        for (size_t i = 0; i < b.n_evs; i++) {
            json_t *j = am_event_to_json(&b.evs[i]);
            if (!j)
                abort(); /* a valid event must always serialise */
            /* What we answer must be accepted again as input (export → import). */
            struct am_event again;
            char reason[200];
            if (am_event_from_json(j, 1, &lim, &again, reason, sizeof reason) != AM_OK)
                abort();
            if (again.ts_ns != b.evs[i].ts_ns || strcmp(again.key, b.evs[i].key) != 0)
                abort();
            am_free(again.payload);
            json_decref(j);
        }
        json_decref(am_batch_results_json(&b));
        am_batch_free(&b);
    }
    return 0;
}
