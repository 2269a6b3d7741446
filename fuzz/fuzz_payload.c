/* fuzz_payload.c — libFuzzer target for payload validation: the first byte picks a
 * catalog stream (or custom.*), the rest is the payload; am_catalog_validate and
 * am_event_from_json must agree on it, and what is accepted must serialise. */
#include "core/core.h"

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

static void check(const char *stream, json_t *payload) {
    char vreason[200] = "", ereason[200] = "";
    am_rc vrc = am_catalog_validate(stream, payload, vreason, sizeof vreason);
    if (vrc != AM_OK && (vrc != AM_EINVAL || !vreason[0]))
        abort();
    if (!json_is_object(payload) && vrc == AM_OK)
        abort();

    json_t *ev = json_pack("{s:s, s:i, s:O}", "stream", stream, "ts", 1, "payload", payload);
    if (!ev)
        abort();
    struct am_event e;
    am_rc erc = am_event_from_json(ev, 1, &lim, &e, ereason, sizeof ereason);

    /* What am_event_from_json must have decided, given the catalog's answer. */
    am_rc want = vrc;
    if (json_is_null(payload)) { /* a null payload is an empty one */
        json_t *empty = json_object();
        want = am_catalog_validate(stream, empty, vreason, sizeof vreason);
        json_decref(empty);
    } else if (json_is_object(payload) && am_json_depth(payload) + 2 > lim.max_depth) {
        want = AM_EINVAL;
        memcpy(vreason, ereason, sizeof vreason);
    } else if (vrc == AM_OK) {
        char *canon = am_json_dump(payload, NULL);
        if (!canon)
            abort();
        if (strlen(canon) > lim.max_payload_bytes) {
            want = AM_EINVAL;
            memcpy(vreason, ereason, sizeof vreason);
        }
        am_free(canon);
    }
    if (erc != want)
        abort();
    if (erc != AM_OK) {
        if (strcmp(ereason, vreason) != 0)
            abort(); /* the client is told what the catalog said */
    } else {
        /* The stored payload is the canonical text of the one given. */
        char *canon = json_is_null(payload) ? NULL : am_json_dump(payload, NULL);
        const char *expect = canon ? canon : "{}";
        if (strcmp(e.payload, expect) != 0 || e.payload_len != strlen(expect))
            abort();
        am_free(canon);
        json_t *j = am_event_to_json(&e);
        if (!j || !json_equal(json_object_get(j, "payload"),
                              json_is_null(payload) ? json_object_get(j, "payload") : payload))
            abort();
        json_decref(j);
        am_free(e.payload);
    }
    json_decref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    size_t n;
    const struct am_stream_def *all = am_catalog_all(&n);
    const char *stream = data[0] % (n + 1) == n ? "custom.fuzz" : all[data[0] % (n + 1)].name;
    json_t *payload = NULL;
    char err[200];
    long failures = am_alloc_failures();
    if (am_json_parse((const char *)data + 1, size - 1, lim.max_depth, &payload, err, sizeof err) ==
        AM_OK) {
        check(stream, payload);
        json_decref(payload);
    }
    if (am_alloc_failures() != failures)
        abort();
    return 0;
}
