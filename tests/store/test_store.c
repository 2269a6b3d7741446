/* test_store.c — the SQLite store against a real database in a temporary directory:
 * durability across reopen, ids and duplicates, group commit under concurrent appends,
 * queries and cursors, per-user isolation, users and tokens (also from a second
 * process). Blob files are in test_blobs.c, failed allocations in test_store_alloc.c. */
#include "store_test.h"

#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------- scopes, users, tokens */

static void test_scopes(void) {
    char out[64];
    CHECK(am_scopes_parse("ingest,read") == (AM_SCOPE_INGEST | AM_SCOPE_READ));
    CHECK(am_scopes_parse("admin") == AM_SCOPE_ADMIN);
    CHECK(am_scopes_parse("read,bogus") == 0);
    CHECK(am_scopes_parse("") == 0);
    am_scopes_format(AM_SCOPE_INGEST | AM_SCOPE_READ | AM_SCOPE_ADMIN, out, sizeof out);
    CHECK(strcmp(out, "ingest,read,admin") == 0);
    am_scopes_format(AM_SCOPE_INGEST | AM_SCOPE_ADMIN, out, sizeof out);
    CHECK(strcmp(out, "ingest,admin") == 0);
    CHECK(am_scopes_parse(out) == (AM_SCOPE_INGEST | AM_SCOPE_ADMIN));
}

static void test_open_errors(void) {
    struct am_store s2;
    struct am_store_config c = {.data_dir = "/nonexistent/am-test"};
    CHECK(am_store_open(&s2, "postgres-someday", &c) == AM_EINVAL && s2.ops == NULL);
    quiet(1); /* the error is expected */
    CHECK(am_store_open(&s2, "sqlite", &c) == AM_EIO);
    quiet(0);
}

static void test_users_tokens(void) {
    int64_t alice = user_add("alice"), id = 0;
    CHECK(OPS->user_add(S, "alice", &id) == AM_ECONFLICT);
    CHECK(OPS->user_find(S, "alice", &id) == AM_OK && id == alice);
    CHECK(OPS->user_find(S, "nobody", &id) == AM_ENOTFOUND);
    uint8_t hash[32], other[32];
    am_token_hash("am_secret", 9, hash);
    am_token_hash("am_other", 8, other);
    CHECK(OPS->token_add(S, alice, hash, AM_SCOPE_INGEST | AM_SCOPE_READ, "phone") == AM_OK);
    CHECK(OPS->token_add(S, alice, hash, AM_SCOPE_READ, "again") == AM_ECONFLICT);
    CHECK(OPS->token_add(S, 999999, other, AM_SCOPE_READ, "ghost") == AM_ENOTFOUND);
    int64_t uid = 0;
    unsigned scopes = 0;
    char name[32] = "";
    CHECK(OPS->token_lookup(S, hash, &uid, &scopes, name, sizeof name) == AM_OK);
    CHECK(uid == alice && scopes == (AM_SCOPE_INGEST | AM_SCOPE_READ) && !strcmp(name, "alice"));
    CHECK(OPS->token_lookup(S, other, &uid, &scopes, name, sizeof name) == AM_EDENIED);
    /* Revoked (the CLI's future "token revoke" is one UPDATE): denied at once. */
    CHECK(db_int("UPDATE tokens SET revoked_ns = 1 WHERE label = ?1 RETURNING id", "phone") > 0);
    CHECK(OPS->token_lookup(S, hash, &uid, &scopes, name, sizeof name) == AM_EDENIED);
    CHECK(OPS->ping(S) == AM_OK);
}

/* ---------------------------------------------------------------- append, duplicates */

static void test_append(int64_t user) {
    struct am_event e[3];
    struct am_item_result r[3];
    struct am_store_stats before, after;
    OPS->stats(S, &before);
    ev_init(&e[0], "location.gps", "phone", T0, "a1", "{\"lat\":1,\"lon\":2}");
    ev_init(&e[1], "location.gps", "phone", T0 + 1, "a2", "{\"lat\":3,\"lon\":4}");
    ev_init(&e[2], "health.sleep", "watch", T0 + 2, "a3", "{\"stage\":\"deep\"}");
    e[2].ts_end_ns = T0 + 3600 * AM_NS_PER_S;
    snprintf(e[2].trace, sizeof e[2].trace,
             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    CHECK(OPS->append(S, user, e, 3, r) == AM_OK);
    for (int i = 0; i < 3; i++)
        CHECK(r[i].status == AM_ITEM_STORED && r[i].id > 0 && e[i].id == r[i].id);
    CHECK(r[0].id < r[1].id && r[1].id < r[2].id);
    struct am_event g;
    CHECK(OPS->get_event(S, user, r[2].id, &g) == AM_OK);
    CHECK(g.id == r[2].id && g.user_id == user && !strcmp(g.stream, "health.sleep") &&
          !strcmp(g.source, "watch") && g.ts_ns == T0 + 2 && g.ts_end_ns == e[2].ts_end_ns &&
          !strcmp(g.payload, "{\"stage\":\"deep\"}") && g.payload_len == 16 &&
          !strcmp(g.key, "a3") && !strcmp(g.trace, e[2].trace) && g.blob[0] == 0 &&
          g.received_ns == e[2].received_ns);
    am_event_clear(&g);
    CHECK(OPS->get_event(S, user, r[0].id, &g) == AM_OK && g.ts_end_ns == AM_TS_NONE &&
          g.trace[0] == 0);
    am_event_clear(&g);
    CHECK(OPS->get_event(S, user, r[2].id + 1000, &g) == AM_ENOTFOUND);
    OPS->stats(S, &after);
    CHECK(after.events_stored == before.events_stored + 3 && after.commits > before.commits);
    CHECK(after.queue_depth == 0);
    evs_clear(e, 3);
}

static void test_duplicates(int64_t user, int64_t other_user) {
    struct am_event e[4];
    struct am_item_result r[4];
    ev_init(&e[0], "custom.dup", "t", T0, "d1", "{}");
    CHECK(OPS->append(S, user, e, 1, r) == AM_OK && r[0].status == AM_ITEM_STORED);
    int64_t first = r[0].id;
    evs_clear(e, 1);
    /* Across calls: the same key with another payload is the same event. */
    ev_init(&e[0], "custom.dup", "t", T0 + 5, "d1", "{\"x\":1}");
    CHECK(OPS->append(S, user, e, 1, r) == AM_OK);
    CHECK(r[0].status == AM_ITEM_DUPLICATE && r[0].id == first && e[0].id == 0);
    evs_clear(e, 1);
    /* Within one call. */
    ev_init(&e[0], "custom.dup", "t", T0 + 1, "d2", "{}");
    ev_init(&e[1], "custom.dup", "t", T0 + 2, "d2", "{}");
    ev_init(&e[2], "custom.dup", "t", T0 + 3, "d3", "{}");
    ev_init(&e[3], "custom.other", "t", T0 + 4, "d1", "{}"); /* key is per user, not stream */
    CHECK(OPS->append(S, user, e, 4, r) == AM_OK);
    CHECK(r[0].status == AM_ITEM_STORED && r[1].status == AM_ITEM_DUPLICATE && r[1].id == r[0].id &&
          r[2].status == AM_ITEM_STORED && r[3].status == AM_ITEM_DUPLICATE && r[3].id == first);
    evs_clear(e, 4);
    CHECK(db_int("SELECT count(*) FROM events WHERE key = ?1", "d1") == 1);
    CHECK(db_int("SELECT count(*) FROM events WHERE key = ?1", "d2") == 1);
    /* The same key for another user is another event. */
    ev_init(&e[0], "custom.dup", "t", T0, "d1", "{}");
    CHECK(OPS->append(S, other_user, e, 1, r) == AM_OK && r[0].status == AM_ITEM_STORED &&
          r[0].id != first);
    evs_clear(e, 1);
    struct am_stream_stat *ss = NULL;
    size_t n = 0;
    CHECK(OPS->streams(S, user, &ss, &n) == AM_OK);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(ss[i].stream, "custom.other") != 0); /* only a duplicate went there */
        if (!strcmp(ss[i].stream, "custom.dup")) {
            seen = 1;
            CHECK(ss[i].count == 3 && ss[i].first_ts_ns == T0 && ss[i].last_ts_ns == T0 + 3);
        }
    }
    CHECK(seen);
    am_free(ss);
}

/* Threads appending the same keys at once: one row each, everyone told its id. */
struct race_arg {
    int64_t user;
    int thread;
    int64_t ids[50];
    int stored, duplicate, errors;
};

static void *race_main(void *p) {
    struct race_arg *a = p;
    for (int k = 0; k < 50; k++) {
        struct am_event e;
        struct am_item_result r;
        char key[32];
        snprintf(key, sizeof key, "race-%d", k);
        ev_init(&e, "custom.race", "t", T0 + k, key, "{}");
        if (OPS->append(S, a->user, &e, 1, &r) != AM_OK)
            a->errors++;
        a->ids[k] = r.id;
        a->stored += r.status == AM_ITEM_STORED;
        a->duplicate += r.status == AM_ITEM_DUPLICATE;
        am_event_clear(&e);
    }
    return NULL;
}

static void test_race(int64_t user) {
    struct race_arg a[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].user = user;
        a[i].thread = i;
        pthread_create(&t[i], NULL, race_main, &a[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    int stored = 0, duplicate = 0, errors = 0, same = 1;
    for (int i = 0; i < 4; i++) {
        stored += a[i].stored;
        duplicate += a[i].duplicate;
        errors += a[i].errors;
        for (int k = 0; k < 50; k++)
            same &= a[i].ids[k] == a[0].ids[k] && a[i].ids[k] > 0;
    }
    CHECK(errors == 0 && stored == 50 && duplicate == 150 && same);
    CHECK(db_int("SELECT count(*) FROM events WHERE key LIKE 'race-%'", NULL) == 50);
}

/* ---------------------------------------------------------------- group commit */

#define CONC_THREADS 4
#define CONC_EVENTS 10000
#define CONC_BATCH 10

struct conc_arg {
    int64_t user;
    int thread;
    int appends, errors, not_stored;
};

static void *conc_main(void *p) {
    struct conc_arg *a = p;
    struct am_event e[CONC_BATCH];
    struct am_item_result r[CONC_BATCH];
    for (int i = 0; i < CONC_EVENTS; i += CONC_BATCH) {
        for (int k = 0; k < CONC_BATCH; k++) {
            char key[48];
            snprintf(key, sizeof key, "c%d-%d", a->thread, i + k);
            ev_init(&e[k], a->thread % 2 ? "motion.steps" : "health.heart_rate", "conc",
                    T0 + (int64_t)(i + k) * AM_NS_PER_S, key, "{\"n\":1}");
        }
        if (OPS->append(S, a->user, e, CONC_BATCH, r) != AM_OK)
            a->errors++;
        a->appends++;
        for (int k = 0; k < CONC_BATCH; k++)
            a->not_stored += r[k].status != AM_ITEM_STORED;
        evs_clear(e, CONC_BATCH);
    }
    return NULL;
}

static void test_concurrent(int64_t user) {
    struct conc_arg a[CONC_THREADS];
    pthread_t t[CONC_THREADS];
    struct am_store_stats before, after;
    OPS->stats(S, &before);
    for (int i = 0; i < CONC_THREADS; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].user = user;
        a[i].thread = i;
        pthread_create(&t[i], NULL, conc_main, &a[i]);
    }
    int appends = 0, errors = 0, not_stored = 0;
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(t[i], NULL);
        appends += a[i].appends;
        errors += a[i].errors;
        not_stored += a[i].not_stored;
    }
    OPS->stats(S, &after);
    CHECK(errors == 0 && not_stored == 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE user_id = %lld", (long long)user);
    CHECK(db_int(sql, NULL) == CONC_THREADS * CONC_EVENTS);
    CHECK(after.events_stored - before.events_stored == CONC_THREADS * CONC_EVENTS);
    int64_t commits = after.commits - before.commits;
    printf("concurrent: %d appends in %lld group commits, largest %lld events\n", appends,
           (long long)commits, (long long)after.batch_events_max);
    CHECK(commits > 0 && commits < appends);
    CHECK(after.batch_events_max > CONC_BATCH);
    struct am_stream_stat *ss = NULL;
    size_t n = 0;
    CHECK(OPS->streams(S, user, &ss, &n) == AM_OK && n == 2);
    for (size_t i = 0; i < n; i++) {
        CHECK(ss[i].count == CONC_THREADS / 2 * CONC_EVENTS);
        CHECK(ss[i].first_ts_ns == T0 && ss[i].last_ts_ns == T0 + (CONC_EVENTS - 1) * AM_NS_PER_S);
        CHECK(ss[i].count_last_hour > 0 && ss[i].count_last_hour <= ss[i].count);
        CHECK(ss[i].last_received_ns > 0 && ss[i].last_received_ns <= am_now_ns());
    }
    am_free(ss);
}

/* ---------------------------------------------------------------- queries */

#define Q_N 300
static const char *q_streams[3] = {"location.gps", "health.heart_rate", "custom.q"};

/* Event i: stream i % 3, source "watch" when i % 5 == 0, three events per timestamp
 * so the id breaks ties. */
static void fill_query_user(int64_t user, int64_t ids[Q_N]) {
    struct am_event e[Q_N];
    struct am_item_result r[Q_N];
    for (int i = 0; i < Q_N; i++) {
        char key[32], payload[32];
        snprintf(key, sizeof key, "q%d", i);
        snprintf(payload, sizeof payload, "{\"i\":%d}", i);
        ev_init(&e[i], q_streams[i % 3], i % 5 ? "phone" : "watch", T0 + (i / 3) * 1000, key,
                payload);
    }
    CHECK(OPS->append(S, user, e, Q_N, r) == AM_OK);
    for (int i = 0; i < Q_N; i++)
        ids[i] = r[i].id;
    evs_clear(e, Q_N);
}

/* Runs q to the end page by page; returns rows seen, checks order and the filter. */
static int paginate(int64_t user, struct am_query q, const int64_t ids[Q_N], int seen[Q_N],
                    int want(int i)) {
    int total = 0, ok = 1;
    int64_t prev_ts = q.descending ? INT64_MAX : INT64_MIN, prev_id = q.descending ? INT64_MAX : 0;
    for (int page = 0; page < 1000; page++) {
        struct am_event_list l = {0};
        if (OPS->query(S, user, &q, &l) != AM_OK) {
            ok = 0;
            break;
        }
        for (size_t k = 0; k < l.n; k++) {
            struct am_event *e = &l.items[k];
            int i = -1;
            for (int j = 0; j < Q_N; j++)
                if (ids[j] == e->id)
                    i = j;
            ok &= i >= 0 && want(i);
            if (i >= 0)
                seen[i]++;
            int after = e->ts_ns > prev_ts || (e->ts_ns == prev_ts && e->id > prev_id);
            int before = e->ts_ns < prev_ts || (e->ts_ns == prev_ts && e->id < prev_id);
            ok &= q.descending ? before : after;
            prev_ts = e->ts_ns;
            prev_id = e->id;
        }
        total += (int)l.n;
        size_t n = l.n;
        if (n) {
            q.has_cursor = 1;
            q.after_ts_ns = l.items[n - 1].ts_ns;
            q.after_id = l.items[n - 1].id;
        }
        am_event_list_free(&l);
        if (n < q.limit)
            break;
    }
    CHECK(ok);
    return total;
}

static int want_all(int i) {
    (void)i;
    return 1;
}
static int want_gps(int i) {
    return i % 3 == 0;
}
static int want_watch(int i) {
    return i % 5 == 0;
}
static int want_gps_watch_range(int i) {
    return i % 3 == 0 && i % 5 == 0 && i / 3 >= 10 && i / 3 < 40;
}
static int want_range(int i) {
    return i / 3 >= 10 && i / 3 < 40;
}

static void check_all_once(const int seen[Q_N], int want(int i)) {
    int ok = 1;
    for (int i = 0; i < Q_N; i++)
        ok &= seen[i] == (want(i) ? 1 : 0);
    CHECK(ok);
}

static void test_query(int64_t user) {
    int64_t ids[Q_N];
    int seen[Q_N];
    fill_query_user(user, ids);
    struct am_query base = {.from_ns = AM_TS_NONE, .to_ns = AM_TS_NONE, .limit = 7};
    for (int desc = 0; desc < 2; desc++) {
        struct am_query q = base;
        q.descending = desc;
        /* The timeline: every stream merged in (ts, id) order. */
        memset(seen, 0, sizeof seen);
        CHECK(paginate(user, q, ids, seen, want_all) == Q_N);
        check_all_once(seen, want_all);
        q.stream = "location.gps";
        memset(seen, 0, sizeof seen);
        CHECK(paginate(user, q, ids, seen, want_gps) == Q_N / 3);
        check_all_once(seen, want_gps);
        q.stream = NULL;
        q.source = "watch";
        memset(seen, 0, sizeof seen);
        CHECK(paginate(user, q, ids, seen, want_watch) == Q_N / 5);
        check_all_once(seen, want_watch);
        /* [from, to): from inclusive, to exclusive, on exact timestamps. */
        q.source = NULL;
        q.from_ns = T0 + 10 * 1000;
        q.to_ns = T0 + 40 * 1000;
        memset(seen, 0, sizeof seen);
        CHECK(paginate(user, q, ids, seen, want_range) == 90);
        check_all_once(seen, want_range);
        q.stream = "location.gps";
        q.source = "watch";
        memset(seen, 0, sizeof seen);
        CHECK(paginate(user, q, ids, seen, want_gps_watch_range) == 6);
        check_all_once(seen, want_gps_watch_range);
    }
    /* Unknown stream: empty, not an error. */
    struct am_query q = base;
    struct am_event_list l = {0};
    q.stream = "custom.never";
    CHECK(OPS->query(S, user, &q, &l) == AM_OK && l.n == 0);
    am_event_list_free(&l);
    /* A timeline page holds several streams, in order. */
    q = base;
    q.limit = 6;
    CHECK(OPS->query(S, user, &q, &l) == AM_OK && l.n == 6);
    if (l.n == 6) {
        CHECK(!strcmp(l.items[0].stream, q_streams[0]) &&
              !strcmp(l.items[1].stream, q_streams[1]) &&
              !strcmp(l.items[2].stream, q_streams[2]) && l.items[3].ts_ns == T0 + 1000);
        CHECK(l.items[0].id == ids[0] && l.items[5].id == ids[5]);
    }
    am_event_list_free(&l);
    /* Descending from the start gives the newest. */
    q.descending = 1;
    q.limit = 1;
    CHECK(OPS->query(S, user, &q, &l) == AM_OK && l.n == 1 && l.items[0].id == ids[Q_N - 1]);
    am_event_list_free(&l);
}

/* ---------------------------------------------------------------- isolation */

static void test_isolation(int64_t a, int64_t b) {
    struct am_event e;
    struct am_item_result r;
    struct am_blob_info blob = {.size = 6, .mime = "text/plain", .created_ns = 1};
    char a_blob[65];
    am_sha256_hex("secret", 6, a_blob);
    snprintf(blob.sha256, sizeof blob.sha256, "%s", a_blob);
    CHECK(OPS->blob_add(S, a, &blob) == AM_OK);
    ev_init(&e, "custom.secret", "t", T0, "secret-1", "{\"pin\":1234}");
    CHECK(OPS->append(S, a, &e, 1, &r) == AM_OK && r.status == AM_ITEM_STORED);
    am_event_clear(&e);
    struct am_event g;
    CHECK(OPS->get_event(S, b, r.id, &g) == AM_ENOTFOUND);
    CHECK(OPS->get_event(S, a, r.id, &g) == AM_OK);
    am_event_clear(&g);
    struct am_query q = {
        .stream = "custom.secret", .from_ns = AM_TS_NONE, .to_ns = AM_TS_NONE, .limit = 100};
    struct am_event_list l = {0};
    CHECK(OPS->query(S, b, &q, &l) == AM_OK && l.n == 0);
    am_event_list_free(&l);
    q.stream = NULL;
    CHECK(OPS->query(S, b, &q, &l) == AM_OK);
    for (size_t i = 0; i < l.n; i++)
        CHECK(l.items[i].user_id == b && strcmp(l.items[i].key, "secret-1") != 0);
    am_event_list_free(&l);
    struct am_stream_stat *ss = NULL;
    size_t n = 0;
    CHECK(OPS->streams(S, b, &ss, &n) == AM_OK);
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(ss[i].stream, "custom.secret") != 0);
    am_free(ss);
    struct am_blob_info bi;
    CHECK(OPS->blob_get(S, a, a_blob, &bi) == AM_OK);
    CHECK(OPS->blob_get(S, b, a_blob, &bi) == AM_ENOTFOUND);
    /* b cannot point an event at a's blob by knowing its hash. */
    ev_init(&e, "image.photo", "t", T0, "steal", "{}");
    snprintf(e.blob, sizeof e.blob, "%s", a_blob);
    CHECK(OPS->append(S, b, &e, 1, &r) == AM_OK && r.status == AM_ITEM_REJECTED &&
          strstr(r.reason, "unknown blob") && r.id == 0);
    am_event_clear(&e);
}

/* ---------------------------------------------------------------- a second process */

/* The child: what `am user add` and `am token add` do while amd runs. */
static int child_main(const char *d) {
    snprintf(dir, sizeof dir, "%s", d);
    struct am_store s;
    int64_t id = 0;
    uint8_t hash[32];
    am_token_hash("am_carol", 8, hash);
    if (store_open(&s, 1, 0) != AM_OK)
        return 2;
    int ok = s.ops->user_add(s.impl, "carol", &id) == AM_OK &&
             s.ops->token_add(s.impl, id, hash, AM_SCOPE_READ, "cli") == AM_OK;
    struct am_event e;
    struct am_item_result r;
    ev_init(&e, "custom.cli", "cli", T0, "from-cli", "{}");
    ok = ok && s.ops->append(s.impl, id, &e, 1, &r) == AM_OK && r.status == AM_ITEM_STORED;
    am_event_clear(&e);
    am_store_close(&s);
    return ok ? 0 : 3;
}

static void test_second_process(const char *self, int64_t busy_user) {
    pid_t pid;
    char *argv[] = {(char *)self, "--child", dir, NULL};
    CHECK(posix_spawn(&pid, self, NULL, NULL, argv, environ) == 0);
    /* Keep this process's writer busy meanwhile. */
    for (int i = 0; i < 50; i++) {
        struct am_event e;
        struct am_item_result r;
        char key[32];
        snprintf(key, sizeof key, "busy-%d", i);
        ev_init(&e, "custom.busy", "t", T0 + i, key, "{}");
        CHECK(OPS->append(S, busy_user, &e, 1, &r) == AM_OK && r.status == AM_ITEM_STORED);
        am_event_clear(&e);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int64_t carol = 0, uid = 0;
    unsigned scopes = 0;
    char name[32];
    uint8_t hash[32];
    am_token_hash("am_carol", 8, hash);
    CHECK(OPS->user_find(S, "carol", &carol) == AM_OK);
    CHECK(OPS->token_lookup(S, hash, &uid, &scopes, name, sizeof name) == AM_OK && uid == carol &&
          scopes == AM_SCOPE_READ && !strcmp(name, "carol"));
    struct am_query q = {.from_ns = AM_TS_NONE, .to_ns = AM_TS_NONE, .limit = 10};
    struct am_event_list l = {0};
    CHECK(OPS->query(S, carol, &q, &l) == AM_OK && l.n == 1 && !strcmp(l.items[0].key, "from-cli"));
    am_event_list_free(&l);
}

/* ---------------------------------------------------------------- close */

#define DRAIN_THREADS 8

struct drain_arg {
    int64_t user;
    int i;
    am_rc rc;
};

static void *drain_main(void *p) {
    struct drain_arg *a = p;
    struct am_event e;
    struct am_item_result r;
    char key[32];
    snprintf(key, sizeof key, "drain-%d", a->i);
    ev_init(&e, "custom.drain", "t", T0 + a->i, key, "{}");
    a->rc = OPS->append(S, a->user, &e, 1, &r);
    am_event_clear(&e);
    return NULL;
}

static void *rollback_later(void *db) {
    usleep(100 * 1000);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return NULL;
}

/* Close while appends wait: each is committed (not lost, not failed) before close
 * returns. Another connection holds the write lock meanwhile, so the writer is stuck
 * in its first transaction while the rest queue up behind it (one request per group). */
static void test_close_drains(int64_t user) {
    char path[128];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/am.db", dir);
    am_store_close(&st);
    CHECK(store_open(&st, 1, 1) == AM_OK);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK &&
          sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    struct drain_arg a[DRAIN_THREADS];
    pthread_t t[DRAIN_THREADS], unlocker;
    for (int i = 0; i < DRAIN_THREADS; i++) {
        a[i] = (struct drain_arg){user, i, AM_EINVAL};
        pthread_create(&t[i], NULL, drain_main, &a[i]);
    }
    struct am_store_stats stats = {0};
    for (int ms = 0; ms < 5000 && stats.queue_depth < DRAIN_THREADS - 1; ms++) {
        usleep(1000);
        OPS->stats(S, &stats);
    }
    CHECK(stats.queue_depth == DRAIN_THREADS - 1);
    pthread_create(&unlocker, NULL, rollback_later, db);
    am_store_close(&st);
    int all_ok = 1;
    for (int i = 0; i < DRAIN_THREADS; i++) {
        pthread_join(t[i], NULL);
        all_ok &= a[i].rc == AM_OK;
    }
    pthread_join(unlocker, NULL);
    sqlite3_close(db);
    CHECK(all_ok);
    CHECK(db_int("SELECT count(*) FROM events WHERE key LIKE 'drain-%'", NULL) == DRAIN_THREADS);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--child")) {
        am_alloc_init();
        return am_crypto_init() == AM_OK ? child_main(argv[2]) : 2;
    }
    if (!store_test_begin())
        return 2;
    test_scopes();
    test_open_errors();
    CHECK(store_open(&st, 0, 0) == AM_OK);
    if (!st.ops)
        return store_test_end();
    CHECK(db_int("PRAGMA user_version", NULL) >= 1);
    CHECK(db_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode", NULL) == 1);
    test_users_tokens();
    int64_t a = user_add("anna"), b = user_add("bert"), q = user_add("quinn");
    test_append(a);
    test_duplicates(a, b);
    test_race(b);
    /* Reopen: everything committed is there, the schema is not migrated twice. */
    int64_t version = db_int("PRAGMA user_version", NULL);
    am_store_close(&st);
    CHECK(store_open(&st, 2, 0) == AM_OK);
    int64_t id = 0;
    CHECK(OPS->user_find(S, "anna", &id) == AM_OK && id == a);
    CHECK(db_int("PRAGMA user_version", NULL) == version);
    struct am_query all = {.from_ns = AM_TS_NONE, .to_ns = AM_TS_NONE, .limit = 100};
    struct am_event_list l = {0};
    CHECK(OPS->query(S, a, &all, &l) == AM_OK && l.n == 6);
    am_event_list_free(&l);
    test_query(q);
    test_isolation(a, b);
    test_second_process(argv[0], b);
    test_concurrent(user_add("conny"));
    test_close_drains(b);
    return store_test_end();
}
