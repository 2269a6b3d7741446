/* test_store_alloc.c — the store when an allocation fails (SQLite's included: it
 * allocates through am_malloc): every failing run must end in an error, never a crash
 * or a leak (ASan and valgrind watch), and leave the database consistent. */
#include "store_test.h"

/* Each stream's count in user_streams matches its rows. */
static int64_t stream_counts_wrong(int64_t user) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM user_streams s WHERE s.user_id = %lld AND s.count !="
             " (SELECT count(*) FROM events e WHERE e.user_id = s.user_id AND e.stream_id = s.id)",
             (long long)user);
    return db_int(sql, NULL);
}

/* Fails the Nth allocation (and, when sticky, every one after it) during an append and a
 * query, for N = 1, 2, ... until one run needs fewer than N: every run must end in an
 * error or a success, never a crash, and leave the store whole. */
static void sweep(int64_t user, int sticky) {
    int ok = 1, runs = 0, append_failed = 0, query_failed = 0;
    for (long nth = 1; nth < 100000; nth++) {
        struct am_event e[4];
        struct am_item_result r[4];
        char k[4][48];
        for (int i = 0; i < 3; i++)
            snprintf(k[i], sizeof k[i], "sw%d-%ld-%d", sticky, nth, i);
        ev_init(&e[0], "custom.sweep", "t", T0 + nth, k[0], "{\"a\":1}");
        ev_init(&e[1], "custom.sweep", "t", T0 + nth, k[1], "{\"b\":2}");
        ev_init(&e[2], "custom.sweep", "t", T0 + nth, k[0], "{\"a\":1}");
        ev_init(&e[3], "custom.sweep2", "u", T0 + nth, k[2], "{\"c\":3}");
        struct am_query q = {.stream = "custom.sweep",
                             .from_ns = AM_TS_NONE,
                             .to_ns = AM_TS_NONE,
                             .limit = 5,
                             .descending = 1};
        struct am_event_list l = {0};
        long before = am_alloc_count();
        am_alloc_fail_at(nth, sticky);
        am_rc ra = OPS->append(S, user, e, 4, r);
        am_rc rq = OPS->query(S, user, &q, &l);
        long used = am_alloc_count() - before;
        am_alloc_fail_at(0, 0);
        runs++;
        append_failed += ra != AM_OK;
        query_failed += rq != AM_OK;
        ok &= ra == AM_OK || ra == AM_ENOMEM || ra == AM_EIO;
        ok &= rq == AM_OK || rq == AM_ENOMEM || rq == AM_EIO;
        int64_t rows = 0;
        for (int i = 0; i < 3; i++)
            rows += db_int("SELECT count(*) FROM events WHERE key = ?1", k[i]);
        if (ra == AM_OK) {
            ok &= rows == 3 && r[0].status == AM_ITEM_STORED && r[1].status == AM_ITEM_STORED &&
                  r[2].status == AM_ITEM_DUPLICATE && r[2].id == r[0].id &&
                  r[3].status == AM_ITEM_STORED && e[0].id == r[0].id;
        } else {
            ok &= rows == 0 || rows == 3; /* a request is whole or absent */
            ok &= e[0].id == 0 && e[1].id == 0 && e[3].id == 0;
        }
        if (rq == AM_OK)
            ok &= l.n == 5 || (l.n > 0 && l.n == (size_t)db_int("SELECT count(*) FROM events"
                                                                " WHERE key LIKE 'sw%'",
                                                                NULL));
        else
            ok &= l.n == 0 && l.items == NULL;
        ok &= stream_counts_wrong(user) == 0;
        if (!ok) {
            fprintf(stderr, "sweep(sticky=%d): inconsistent after failing allocation %ld\n", sticky,
                    nth);
            break;
        }
        am_event_list_free(&l);
        evs_clear(e, 4);
        if (used < nth)
            break; /* nothing failed: every allocation on this path has been tried */
    }
    printf("sweep(sticky=%d): %d runs, %d appends and %d queries failed\n", sticky, runs,
           append_failed, query_failed);
    CHECK(ok && runs > 10 && append_failed > 0 && query_failed > 0);
    /* And the store works on afterwards. */
    struct am_event e;
    struct am_item_result r;
    ev_init(&e, "custom.sweep", "t", T0, sticky ? "after-sticky" : "after-once", "{}");
    CHECK(OPS->append(S, user, &e, 1, &r) == AM_OK && r.status == AM_ITEM_STORED);
    am_event_clear(&e);
    CHECK(stream_counts_wrong(user) == 0);
}

/* Opening fails cleanly wherever memory runs out. */
static void sweep_open(void) {
    int runs = 0, failed = 0, ok = 1;
    for (long nth = 1; nth < 100000; nth++) {
        struct am_store s;
        long before = am_alloc_count();
        am_alloc_fail_at(nth, 1);
        am_rc rc = store_open(&s, 2, 0);
        long used = am_alloc_count() - before;
        am_alloc_fail_at(0, 0);
        runs++;
        failed += rc != AM_OK;
        ok &= rc == AM_OK || rc == AM_ENOMEM || rc == AM_EIO;
        ok &= (rc == AM_OK) == (s.ops != NULL);
        if (rc == AM_OK)
            am_store_close(&s);
        if (used < nth)
            break;
    }
    printf("sweep_open: %d runs, %d failed\n", runs, failed);
    CHECK(ok && failed > 10 && failed == runs - 1);
}

/* The other calls: each fails with an error or works, and a failed write is absent. */
static void sweep_others(int64_t user, int sticky) {
    int runs = 0, ok = 1;
    struct am_blob_info blob = {.size = 3, .mime = "text/plain", .created_ns = 1};
    uint8_t hash[32];
    char token[16];
    struct am_event e;
    struct am_item_result r;
    ev_init(&e, "custom.others", "t", T0, sticky ? "others-1" : "others-0", "{}");
    CHECK(OPS->append(S, user, &e, 1, &r) == AM_OK);
    am_event_clear(&e);
    struct am_stream_stat *ss0 = NULL;
    size_t n_streams = 0;
    CHECK(OPS->streams(S, user, &ss0, &n_streams) == AM_OK && n_streams > 0);
    am_free(ss0);
    for (long nth = 1; nth < 100000; nth++) {
        char name[32];
        snprintf(blob.sha256, sizeof blob.sha256, "%d%063ld", sticky, nth);
        snprintf(name, sizeof name, "user-%d-%ld", sticky, nth);
        snprintf(token, sizeof token, "tok-%d-%ld", sticky, nth);
        am_token_hash(token, strlen(token), hash);
        struct am_event g;
        struct am_blob_info got;
        struct am_stream_stat *ss = NULL;
        size_t n = 0;
        int64_t uid = 0, found = 0;
        unsigned scopes = 0;
        long before = am_alloc_count();
        am_alloc_fail_at(nth, sticky);
        am_rc rb = OPS->blob_add(S, user, &blob);
        am_rc rg = OPS->blob_get(S, user, blob.sha256, &got);
        am_rc re = OPS->get_event(S, user, r.id, &g);
        am_rc rs = OPS->streams(S, user, &ss, &n);
        am_rc ru = OPS->user_add(S, name, &uid);
        am_rc rt = ru == AM_OK ? OPS->token_add(S, uid, hash, AM_SCOPE_READ, "x") : ru;
        am_rc rl = OPS->token_lookup(S, hash, &found, &scopes, NULL, 0);
        am_rc rp = OPS->ping(S);
        long used = am_alloc_count() - before;
        am_alloc_fail_at(0, 0);
        runs++;
        if (re == AM_OK)
            am_event_clear(&g);
        ok &= rb == AM_OK || rb == AM_ENOMEM || rb == AM_EIO;
        ok &= (db_int("SELECT count(*) FROM user_blobs WHERE sha256 = ?1", blob.sha256) == 1) ==
              (rb == AM_OK);
        ok &= rg == AM_OK ? rb == AM_OK && got.size == 3 : rg != AM_ENOTFOUND || rb != AM_OK;
        ok &= re == AM_OK || re == AM_ENOMEM || re == AM_EIO;
        ok &= rs == AM_OK ? n == n_streams : ss == NULL && n == 0;
        am_free(ss);
        ok &= (db_int("SELECT count(*) FROM users WHERE name = ?1", name) == 1) == (ru == AM_OK);
        ok &= rl == AM_OK ? rt == AM_OK && found == uid : rl != AM_EDENIED || rt != AM_OK;
        ok &= rp == AM_OK || rp == AM_ENOMEM || rp == AM_EIO;
        if (!ok) {
            fprintf(stderr,
                    "sweep_others(sticky=%d): wrong after failing allocation %ld: %d %d %d %d %d "
                    "%d %d %d\n",
                    sticky, nth, rb, rg, re, rs, ru, rt, rl, rp);
            break;
        }
        if (used < nth)
            break;
    }
    printf("sweep_others(sticky=%d): %d runs\n", sticky, runs);
    CHECK(ok && runs > 10);
}

int main(void) {
    if (!store_test_begin())
        return 2;
    /* One reader, so a query cannot dodge a failure on a connection already warm. */
    CHECK(store_open(&st, 1, 0) == AM_OK);
    if (st.ops) {
        int64_t f = user_add("fay");
        quiet(1); /* thousands of errors, all expected */
        sweep(f, 1);
        sweep(f, 0);
        sweep_others(f, 1);
        sweep_others(f, 0);
        am_store_close(&st);
        sweep_open();
        quiet(0);
    }
    return store_test_end();
}
