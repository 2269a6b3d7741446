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

/* The deepest [ / { nesting in buf, strings skipped. jansson parses recursively and
 * would only stop at depth 2048, too deep for a small worker stack, so the limit is
 * applied before it runs. Counting brackets is all this does; jansson parses. */
static size_t scan_depth(const char *buf, size_t len) {
    size_t depth = 0, max = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max)
                max = depth;
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

am_rc am_json_parse(const char *buf, size_t len, size_t max_depth, json_t **out, char *err,
                    size_t err_len) {
    json_error_t je;
    memset(&je, 0, sizeof je);
    *out = NULL;
    if (max_depth && scan_depth(buf, len) > max_depth) {
        if (err)
            snprintf(err, err_len, "JSON nested deeper than %zu levels", max_depth);
        return AM_ELIMIT;
    }
    long failures = am_alloc_failures();
    json_t *v = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                           &je);
    if (!v) {
        if (err)
            snprintf(err, err_len, "invalid JSON at line %d column %d: %s", je.line, je.column,
                     je.text);
        if (am_alloc_failures() != failures || json_error_code(&je) == json_error_out_of_memory) {
            if (err)
                snprintf(err, err_len, "out of memory");
            return AM_ENOMEM;
        }
        if (err)
            am_utf8_clean(err); /* jansson's "near '...'" may end inside a character */
        if (json_error_code(&je) == json_error_stack_overflow)
            return AM_ELIMIT;
        return AM_EINVAL;
    }
    /* jansson 2.14 ignores some failed allocations and goes on with damaged text
     * (lex_save, dump of object keys): a parse that saw one is not trusted. */
    if (am_alloc_failures() != failures) {
        json_decref(v);
        if (err)
            snprintf(err, err_len, "out of memory");
        return AM_ENOMEM;
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
    long failures = am_alloc_failures();
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s && am_alloc_failures() != failures) { /* see above: possibly damaged */
        am_free(s);
        s = NULL;
    }
    if (s && len)
        *len = strlen(s);
    return s;
}
