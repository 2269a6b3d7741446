/* fuzz_time.c — libFuzzer target for timestamps: RFC 3339, epoch strings and JSON times.
 * Whatever is accepted must come back unchanged through am_time_format (our own output
 * is what clients post again), and the JSON and string doors must agree. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    return 0;
}

/* ts formatted and parsed again must be ts, in UTC. */
static void check_format(int64_t ts) {
    char out[64];
    int64_t again = 0;
    int off = 1;
    if (ts == AM_TS_NONE)
        abort();
    am_time_format(ts, out, sizeof out);
    if (strlen(out) != 30) /* YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ */
        abort();
    if (am_time_parse_rfc3339(out, strlen(out), &again, &off) != AM_OK)
        abort();
    if (again != ts || off != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int64_t ts = 0, ts2 = 0;
    int off = 0;

    if (am_time_parse_rfc3339((const char *)data, size, &ts, &off) == AM_OK) {
        if (off < -(23 * 60 + 59) || off > 23 * 60 + 59)
            abort();
        check_format(ts);
    }

    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    am_rc src = am_time_from_string(s, &ts);
    if (src == AM_OK)
        check_format(ts);
    else if (src != AM_EINVAL)
        abort();

    json_t *str = json_stringn(s, size); /* NULL unless valid UTF-8 */
    if (str) {
        /* A time given as a JSON string means what the same query parameter means. */
        am_rc jrc = am_time_from_json(str, &ts2, &off);
        if (strlen(s) == size && (jrc != src || (jrc == AM_OK && ts2 != ts)))
            abort();
        json_decref(str);
    }
    free(s);

    json_error_t je;
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
    if (v) {
        if (am_time_from_json(v, &ts, &off) == AM_OK)
            check_format(ts);
        json_decref(v);
    }
    return 0;
}
