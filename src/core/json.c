/* json.c — bounded JSON parsing and canonical output on jansson. */
#include "core.h"

#include <stdio.h>
#include <string.h>

size_t am_json_depth(const json_t *v) {
    size_t max = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            size_t d = am_json_depth(c);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            size_t d = am_json_depth(c);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

/* jansson stops at depth 2048 on its own, so the recursion above is bounded;
 * the configured limit is applied after parsing. */
am_rc am_json_parse(const char *buf, size_t len, size_t max_depth, json_t **out, char *err,
                    size_t err_len) {
    json_error_t je;
    *out = NULL;
    json_t *v = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                           &je);
    if (!v) {
        if (err)
            snprintf(err, err_len, "invalid JSON at line %d column %d: %s", je.line, je.column,
                     je.text);
        if (json_error_code(&je) == json_error_out_of_memory)
            return AM_ENOMEM;
        if (json_error_code(&je) == json_error_stack_overflow)
            return AM_ELIMIT;
        return AM_EINVAL;
    }
    if (max_depth && am_json_depth(v) > max_depth) {
        if (err)
            snprintf(err, err_len, "JSON nested deeper than %zu levels", max_depth);
        json_decref(v);
        return AM_ELIMIT;
    }
    *out = v;
    return AM_OK;
}

char *am_json_dump(const json_t *v, size_t *len) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s && len)
        *len = strlen(s);
    return s;
}
