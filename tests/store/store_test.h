/* store_test.h — what the store's tests share: a temporary data directory, the open
 * store, events made in one line, and a look at the database through a connection of
 * the test's own (as another process would see it). */
#ifndef AM_STORE_TEST_H
#define AM_STORE_TEST_H

#include "store/store.h"
#include "test.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];
static struct am_store st;

#define OPS st.ops
#define S st.impl
#define T0 (1764064800LL * AM_NS_PER_S) /* 2025-11-25T10:00:00Z */

/* Initialises the libraries and makes the data directory; 0 on failure. */
static inline int store_test_begin(void) {
    am_alloc_init();
    am_log_set_level(AM_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/am-store-XXXXXX");
    return am_crypto_init() == AM_OK && mkdtemp(dir) != NULL;
}

static inline int store_test_end(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return TEST_END();
}

/* Silences the log while a test provokes errors on purpose. */
static inline void quiet(int on) {
    am_log_set_level(on ? (enum am_log_level)(AM_LOG_ERROR + 1) : AM_LOG_WARN);
}

static inline am_rc store_open(struct am_store *s, int readers, size_t max_events) {
    struct am_store_config c = {
        .data_dir = dir, .group_commit_max_events = max_events, .read_connections = readers};
    return am_store_open(s, "sqlite", &c);
}

static inline void ev_init(struct am_event *e, const char *stream, const char *source,
                           int64_t ts_ns, const char *key, const char *payload) {
    memset(e, 0, sizeof *e);
    snprintf(e->stream, sizeof e->stream, "%s", stream);
    snprintf(e->source, sizeof e->source, "%s", source);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->ts_ns = ts_ns;
    e->ts_end_ns = AM_TS_NONE;
    e->payload = am_strdup(payload);
    e->payload_len = strlen(payload);
    e->received_ns = am_now_ns();
}

static inline void evs_clear(struct am_event *e, size_t n) {
    for (size_t i = 0; i < n; i++)
        am_event_clear(&e[i]);
}

/* One integer from the database; the SQL may name one text parameter. -1 on failure. */
static inline int64_t db_int(const char *sql, const char *arg) {
    char path[128];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t v = -1;
    snprintf(path, sizeof path, "%s/am.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
        if (arg)
            sqlite3_bind_text(q, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static inline int64_t user_add(const char *name) {
    int64_t id = 0;
    CHECK(OPS->user_add(S, name, &id) == AM_OK && id > 0);
    return id;
}

#endif
