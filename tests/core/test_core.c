/* test_core.c — time parsing, event validation against the catalog, buffers, config. */
#include "core/core.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static int64_t rfc(const char *s) {
    int64_t ts = 0;
    return am_time_parse_rfc3339(s, strlen(s), &ts, NULL) == AM_OK ? ts : -42;
}

static void test_time(void) {
    CHECK(rfc("1970-01-01T00:00:00Z") == 0);
    CHECK(rfc("2026-11-25T10:00:00+01:00") == rfc("2026-11-25T09:00:00Z"));
    CHECK(rfc("2026-11-25T10:00:00+0100") == rfc("2026-11-25t09:00:00z"));
    CHECK(rfc("2026-11-25 09:00:00.5Z") == rfc("2026-11-25T09:00:00Z") + 500000000);
    CHECK(rfc("2026-11-25T09:00:00.123456789123Z") == rfc("2026-11-25T09:00:00Z") + 123456789);
    CHECK(rfc("2024-02-29T00:00:00Z") != -42);
    CHECK(rfc("2023-02-29T00:00:00Z") == -42);
    CHECK(rfc("2026-13-01T00:00:00Z") == -42);
    CHECK(rfc("2026-11-25T24:00:00Z") == -42);
    CHECK(rfc("2026-11-25T10:00:00") == -42);   /* no zone */
    CHECK(rfc("2026-11-25T10:00:00Zjunk") == -42);
    CHECK(rfc("1600-01-01T00:00:00Z") == -42);  /* outside int64 ns */
    int64_t a, b, c, d, e;
    CHECK(am_time_from_string("1764064800", &a) == AM_OK);
    CHECK(am_time_from_string("1764064800000", &b) == AM_OK);
    CHECK(am_time_from_string("1764064800000000", &c) == AM_OK);
    CHECK(am_time_from_string("1764064800000000000", &d) == AM_OK);
    CHECK(am_time_from_string("1764064800.25", &e) == AM_OK);
    CHECK(a == b && b == c && c == d && e == a + 250000000);
    CHECK(am_time_from_string("yesterday", &a) == AM_EINVAL);
    CHECK(am_time_from_string("", &a) == AM_EINVAL);
    CHECK(am_time_from_epoch(1.0 / 0.0, 0, 0, &a) == AM_EINVAL);
    char out[64];
    am_time_format(-1, out, sizeof out);
    CHECK(strcmp(out, "1969-12-31T23:59:59.999999999Z") == 0);
    CHECK(rfc(out) == -1);
}

static am_rc ev(const char *json, struct am_event *e, char *reason) {
    json_error_t je;
    json_t *v = json_loads(json, 0, &je);
    struct am_limits lim = {8, 1024};
    am_rc rc = v ? am_event_from_json(v, 7, &lim, e, reason, 200) : AM_EINVAL;
    json_decref(v);
    return rc;
}

static void test_events(void) {
    struct am_event e, f;
    char r[200];
    CHECK(ev("{\"stream\":\"location.gps\",\"ts\":1,\"payload\":{\"lat\":1,\"lon\":2}}", &e, r) ==
          AM_OK);
    CHECK(strcmp(e.source, "api") == 0 && e.ts_ns == AM_NS_PER_S && strlen(e.key) == 64);
    CHECK(ev("{\"stream\":\"location.gps\",\"ts\":1,\"payload\":{\"lon\":2,\"lat\":1}}", &f, r) ==
          AM_OK);
    CHECK(strcmp(e.key, f.key) == 0); /* canonical payload: same key */
    am_free(e.payload);
    am_free(f.payload);
    CHECK(ev("{\"stream\":\"location.gps\",\"ts\":1,\"payload\":{\"lat\":91,\"lon\":2}}", &e, r) ==
          AM_EINVAL && strstr(r, "lat"));
    CHECK(ev("{\"stream\":\"location.gps\",\"ts\":1,\"payload\":{\"lat\":\"1\",\"lon\":2}}", &e,
             r) == AM_EINVAL);
    CHECK(ev("{\"stream\":\"health.heart_rate\",\"ts\":1,\"payload\":{}}", &e, r) == AM_EINVAL &&
          strstr(r, "bpm"));
    CHECK(ev("{\"stream\":\"foo.bar\",\"ts\":1}", &e, r) == AM_EINVAL && strstr(r, "custom"));
    CHECK(ev("{\"stream\":\"Foo.bar\",\"ts\":1}", &e, r) == AM_EINVAL);
    CHECK(ev("{\"stream\":\"custom.x\",\"ts\":1,\"tss\":2}", &e, r) == AM_EINVAL &&
          strstr(r, "tss"));
    CHECK(ev("{\"stream\":\"custom.x\",\"ts\":2,\"ts_end\":1}", &e, r) == AM_EINVAL);
    CHECK(ev("{\"stream\":\"custom.x\",\"ts\":1,\"blob\":\"abc\"}", &e, r) == AM_EINVAL);
    CHECK(ev("{\"stream\":\"custom.x\",\"ts\":1,\"payload\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{"
             "\"f\":{}}}}}}}}",
             &e, r) == AM_EINVAL && strstr(r, "deeper"));
    CHECK(ev("{\"stream\":\"custom.x\",\"ts\":\"2026-01-01T01:00:00+01:00\",\"key\":\"k\","
             "\"id\":9,\"received_ns\":1}",
             &e, r) == AM_OK);
    CHECK(strstr(e.payload, "\"tz_offset_min\":60") != NULL && strcmp(e.key, "k") == 0);
    am_free(e.payload);
    CHECK(am_stream_name_valid("a.b", 3) && !am_stream_name_valid("ab", 2) &&
          !am_stream_name_valid("a..b", 4) && !am_stream_name_valid("a.b.", 4));
}

static void test_buf_config(void) {
    struct am_buf b;
    am_buf_init(&b, 8);
    CHECK(am_buf_appends(&b, "1234") == AM_OK);
    CHECK(am_buf_printf(&b, "%d", 5678) == AM_OK && b.len == 8);
    CHECK(am_buf_appends(&b, "9") == AM_ELIMIT && b.len == 8 && strcmp(b.data, "12345678") == 0);
    am_buf_free(&b);
    struct am_config c;
    char err[200];
    am_config_defaults(&c);
    CHECK(strcmp(c.listen, "127.0.0.1:8686") == 0 && c.max_json_depth == 32);
    setenv("AM_MAX_JSON_DEPTH", "12", 1);
    CHECK(am_config_load_env(&c, err, sizeof err) == AM_OK && c.max_json_depth == 12);
    CHECK(am_config_set(&c, "max-json-depth", "20", err, sizeof err) == AM_OK &&
          c.max_json_depth == 20);
    CHECK(am_config_set(&c, "max_json_depth", "0", err, sizeof err) == AM_EINVAL);
    CHECK(am_config_set(&c, "nope", "1", err, sizeof err) == AM_EINVAL);
    setenv("AM_MAX_JSON_DEPTH", "x", 1);
    CHECK(am_config_load_env(&c, err, sizeof err) == AM_EINVAL);
    unsetenv("AM_MAX_JSON_DEPTH");
}

int main(void) {
    am_alloc_init();
    am_crypto_init();
    test_time();
    test_events();
    test_buf_config();
    return TEST_END();
}
