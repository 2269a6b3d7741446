/* fuzz_time.c — libFuzzer target for timestamp parsing: RFC 3339 and epoch strings;
 * whatever is accepted must survive a format/parse round trip unchanged. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char s[128];
    int64_t ts, again;
    int off;
    if (size >= sizeof s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (am_time_parse_rfc3339((const char *)data, size, &ts, &off) == AM_OK) {
        char out[64];
        am_time_format(ts, out, sizeof out);
        if (am_time_parse_rfc3339(out, strlen(out), &again, &off) != AM_OK || again != ts)
            abort();
    }
    if (am_time_from_string(s, &ts) == AM_OK && ts == AM_TS_NONE)
        abort();
    json_error_t je;
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
    if (v) {
        am_time_from_json(v, &ts, &off);
        json_decref(v);
    }
    return 0;
}
