/* test_batch.c — request bodies to events: JSON, NDJSON, per-item results, limits,
 * and an allocation-failure sweep over the whole parse path (SQLite's OOM habit). */
#include "ingest/ingest.h"
#include "test.h"

#include <string.h>

static const char body[] =
    "[{\"stream\":\"location.gps\",\"ts\":\"2026-11-25T10:00:00+01:00\","
    "\"payload\":{\"lat\":52.5,\"lon\":13.4}},"
    "{\"stream\":\"health.heart_rate\",\"ts\":1764064800123,\"payload\":{\"bpm\":62},\"key\":\"k\"},"
    "{\"stream\":\"nope.nope\",\"ts\":1},"
    "{\"stream\":\"custom.x\",\"ts\":\"1764064800\",\"payload\":{\"a\":[1,{\"b\":null}]}},"
    "{\"stream\":\"health.sleep\",\"ts\":1,\"ts_end\":2,\"payload\":{\"stage\":\"deep\"}}]";

static struct am_limits lim = {32, 262144};

static void test_parse(void) {
    struct am_batch b;
    char err[256];
    CHECK(am_batch_parse(&b, body, strlen(body), 0, 1, &lim, 100, NULL, err, sizeof err) == AM_OK);
    CHECK(b.n_items == 5 && b.n_evs == 4);
    CHECK(b.res[2].status == AM_ITEM_REJECTED && strstr(b.res[2].reason, "catalog"));
    CHECK(strcmp(b.keys[1], "k") == 0 && b.index[2] == 3);
    am_batch_free(&b);

    const char nd[] = "{\"stream\":\"custom.a\",\"ts\":1}\r\n\n  \n{\"stream\":\"custom.b\",\"ts\":2}";
    CHECK(am_batch_parse(&b, nd, strlen(nd), 1, 1, &lim, 100, "tp", err, sizeof err) == AM_OK);
    CHECK(b.n_evs == 2 && strcmp(b.evs[1].trace, "tp") == 0);
    am_batch_free(&b);

    const char bad[] = "{\"stream\":\"custom.a\",\"ts\":1}\n{\"stream\":\n";
    CHECK(am_batch_parse(&b, bad, strlen(bad), 1, 1, &lim, 100, NULL, err, sizeof err) ==
          AM_EINVAL);
    CHECK(strstr(err, "line 2") != NULL && b.n_items == 0);
    CHECK(am_batch_parse(&b, body, strlen(body), 0, 1, &lim, 4, NULL, err, sizeof err) ==
          AM_ELIMIT);
    const char deep[] = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]";
    CHECK(am_batch_parse(&b, deep, strlen(deep), 0, 1, &lim, 4, NULL, err, sizeof err) ==
          AM_ELIMIT);
    CHECK(am_batch_parse(&b, "[]", 2, 0, 1, &lim, 4, NULL, err, sizeof err) == AM_EINVAL);
}

/* Fails the Nth allocation, for N = 1, 2, ... until a run sees no failure. Every run
 * must end in AM_OK or AM_ENOMEM, and (under ASan/LSan or valgrind) leak nothing. */
static void test_alloc_sweep(int sticky) {
    long n;
    int clean = 0, ooms = 0, bad = 0;
    for (n = 1; n < 100000 && !clean; n++) {
        struct am_batch b;
        char err[256];
        long before = am_alloc_count();
        am_alloc_fail_at(n, sticky);
        am_rc rc = am_batch_parse(&b, body, strlen(body), 0, 1, &lim, 100, NULL, err, sizeof err);
        json_t *res = NULL;
        if (rc == AM_OK) {
            res = am_batch_results_json(&b);
            for (size_t i = 0; i < b.n_evs; i++)
                json_decref(am_event_to_json(&b.evs[i]));
            am_batch_free(&b);
        }
        long used = am_alloc_count() - before;
        am_alloc_fail_at(0, 0);
        json_decref(res);
        if (rc == AM_ENOMEM)
            ooms++;
        else if (rc != AM_OK)
            bad++;
        clean = used < n; /* the Nth allocation never came: nothing was failed */
    }
    CHECK(clean);
    CHECK(bad == 0);
    CHECK(ooms > 0);
    printf("alloc sweep (%s): %ld runs, %d ended in ENOMEM\n", sticky ? "sticky" : "single", n - 1,
           ooms);
}

int main(void) {
    am_alloc_init();
    am_crypto_init();
    test_parse();
    test_alloc_sweep(1);
    test_alloc_sweep(0);
    return TEST_END();
}
