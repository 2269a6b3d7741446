/* fuzz_extract.c — libFuzzer target for the text analysers: am_extract and am_embed_hash
 * on arbitrary bytes. Extraction must succeed, report only what the text holds (every
 * item's text is a piece of the input, free of NULs) within the caps, and serialise; the
 * embedding must be a finite unit or zero vector, the same on a second run. */
#include "process/process_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    return 0;
}

static const char *const keys[] = {"urls", "emails", "phones", "dates", "amounts"};

/* The item's text: a string, or an object's "text". */
static const char *item_text(const json_t *v, size_t *len) {
    const json_t *t = json_is_string(v) ? v : json_object_get(v, "text");
    if (!json_is_string(t))
        abort();
    *len = json_string_length(t);
    return json_string_value(t);
}

static void check_item(const char *key, const json_t *v, const uint8_t *data, size_t size) {
    size_t len;
    const char *t = item_text(v, &len);
    if (len == 0 || strlen(t) != len || !memmem(data, size, t, len))
        abort();
    if (strcmp(key, "urls") == 0 && len > 1024)
        abort();
    if (strcmp(key, "dates") == 0) {
        const json_t *iso = json_object_get(v, "iso");
        if (iso) {
            int y, m, d;
            const char *s = json_string_value(iso);
            if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d", &y, &m, &d) != 3 || y < 1000 ||
                y > 2999 || m < 1 || m > 12 || d < 1 || d > 31)
                abort();
        }
    } else if (strcmp(key, "amounts") == 0) {
        const json_t *value = json_object_get(v, "value");
        const char *code = json_string_value(json_object_get(v, "currency"));
        if (!json_is_real(value) || !isfinite(json_real_value(value)) || !code || strlen(code) != 3)
            abort();
    } else if (!json_is_string(v)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    long failures = am_alloc_failures();
    json_t *obj = json_object();
    if (!obj)
        return 0;
    size_t found = 0, total = 0;
    am_rc rc = am_extract((const char *)data, size, obj, &found);
    if (rc != AM_OK && (rc != AM_ENOMEM || am_alloc_failures() == failures))
        abort();
    if (rc == AM_OK) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const json_t *arr = json_object_get(obj, keys[k]);
            if (!arr)
                continue;
            size_t n = json_array_size(arr), i;
            if (!json_is_array(arr) || n == 0 || n > 100)
                abort();
            const json_t *v;
            json_array_foreach(arr, i, v) check_item(keys[k], v, data, size);
            total += n;
        }
        if (total != found || json_object_size(obj) > 5)
            abort();
        char *dump = am_json_dump(obj, NULL);
        if (!dump && am_alloc_failures() == failures)
            abort();
        am_free(dump);
    }
    json_decref(obj);

    int dim = size ? 1 + data[0] % 200 : 16;
    float *a = am_malloc(sizeof(float) * (size_t)dim), *b = am_malloc(sizeof(float) * (size_t)dim);
    if (a && b) {
        am_embed_hash((const char *)data, size, a, dim);
        am_embed_hash((const char *)data, size, b, dim);
        double norm = 0;
        for (int i = 0; i < dim; i++) {
            if (!isfinite(a[i]))
                abort();
            norm += (double)a[i] * a[i];
        }
        if (memcmp(a, b, sizeof(float) * (size_t)dim) != 0 ||
            (norm != 0 && fabs(norm - 1.0) > 1e-4))
            abort();
    }
    am_free(a);
    am_free(b);
    return 0;
}
