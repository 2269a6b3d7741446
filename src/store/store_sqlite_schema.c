/* store_sqlite_schema.c — the SQLite schema as versioned migrations (PRAGMA
 * user_version). New features append a migration to the array; nothing edits an old
 * one. All pending migrations run in one transaction at open. Every table holding
 * user data has user_id, and every statement on it says user_id = ?. */
#include "store_sqlite.h"

#include <stdio.h>

static const char *const migrations[] = {
    /* 1: users, tokens, per-user streams, events, blobs */
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  created_ns INTEGER NOT NULL);"
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
    "  hash BLOB NOT NULL UNIQUE, scopes INTEGER NOT NULL, label TEXT NOT NULL DEFAULT '',"
    "  created_ns INTEGER NOT NULL, revoked_ns INTEGER);"
    /* Stream ids are per user, so events stay compact and no name is shared across users.
     * hour_* keep a cheap recent rate without an index on received time. */
    "CREATE TABLE user_streams(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
    "  name TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0, first_ts_ns INTEGER,"
    "  last_ts_ns INTEGER, last_received_ns INTEGER, hour_start INTEGER NOT NULL DEFAULT 0,"
    "  hour_count INTEGER NOT NULL DEFAULT 0, prev_hour_count INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(user_id, name));"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
    "  stream_id INTEGER NOT NULL, source TEXT NOT NULL, ts_ns INTEGER NOT NULL,"
    "  ts_end_ns INTEGER, payload TEXT NOT NULL, blob TEXT, key TEXT NOT NULL, trace TEXT,"
    "  received_ns INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX events_key ON events(user_id, key);"
    "CREATE INDEX events_stream_ts ON events(user_id, stream_id, ts_ns, id);"
    "CREATE INDEX events_ts ON events(user_id, ts_ns, id);"
    "CREATE TABLE blobs(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, mime TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE user_blobs(user_id INTEGER NOT NULL, sha256 TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL, PRIMARY KEY(user_id, sha256)) WITHOUT ROWID;",
    /* 2: the pipeline's outbox (jobs written with their event), the full-text index
     * (rowid = event id; diacritics folded) and vectors per model. Jobs stay after they
     * are done, as the record of what ran on an event. */
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
    "  event_id INTEGER NOT NULL, kind INTEGER NOT NULL, arg TEXT NOT NULL DEFAULT '',"
    "  state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    "  run_after_ns INTEGER NOT NULL, lease_until_ns INTEGER NOT NULL DEFAULT 0,"
    "  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, error TEXT,"
    "  UNIQUE(user_id, event_id, kind, arg));"
    "CREATE INDEX jobs_ready ON jobs(state, kind, run_after_ns);"
    "CREATE INDEX jobs_user ON jobs(user_id, kind, state);"
    "CREATE VIRTUAL TABLE fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TABLE vectors(user_id INTEGER NOT NULL, model TEXT NOT NULL,"
    "  event_id INTEGER NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL,"
    "  PRIMARY KEY(user_id, model, event_id)) WITHOUT ROWID;",
    /* 3: vectors move to a rowid table. In a WITHOUT ROWID table a 1 KiB vector spills to
     * an overflow page (4.6 KiB stored per vector, a scan twice as slow); a rowid table
     * keeps it inline on the leaf page. */
    "CREATE TABLE vectors_rowid(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
    "  model TEXT NOT NULL, event_id INTEGER NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);"
    "INSERT INTO vectors_rowid(user_id, model, event_id, dim, vec)"
    "  SELECT user_id, model, event_id, dim, vec FROM vectors;"
    "DROP TABLE vectors;"
    "ALTER TABLE vectors_rowid RENAME TO vectors;"
    "CREATE UNIQUE INDEX vectors_key ON vectors(user_id, model, event_id);",
    /* 4: file imports (src/import) and how far each got, so a user can watch one and an
     * interrupted one can be resumed. state: 0 running, 1 done, 2 failed. */
    "CREATE TABLE imports(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, name TEXT NOT NULL, fingerprint TEXT NOT NULL DEFAULT '',"
    "  bytes_total INTEGER NOT NULL DEFAULT 0, bytes_done INTEGER NOT NULL DEFAULT 0,"
    "  records INTEGER NOT NULL DEFAULT 0, stored INTEGER NOT NULL DEFAULT 0,"
    "  duplicate INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,"
    "  state INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',"
    "  started_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, finished_ns INTEGER);"
    "CREATE INDEX imports_user ON imports(user_id, id);",
};
#define N_MIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

am_rc sq_migrate(sqlite3 *db) {
    sqlite3_stmt *st = NULL;
    int version = 0, rc;
    char *err = NULL;
    /* IMMEDIATE: two processes opening a new database at once must not both migrate. */
    if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
        goto fail;
    if ((rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL)) != SQLITE_OK)
        goto fail;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        goto fail;
    if (version > N_MIGRATIONS) {
        am_error("store: database schema %d is newer than this amd (%d)", version, N_MIGRATIONS);
        rc = SQLITE_ERROR;
        goto fail;
    }
    for (int v = version; v < N_MIGRATIONS; v++) {
        if ((rc = sqlite3_exec(db, migrations[v], NULL, NULL, &err)) != SQLITE_OK) {
            am_error("store: migration %d: %s", v + 1, err ? err : sqlite3_errstr(rc));
            sqlite3_free(err);
            goto fail;
        }
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if ((rc = sqlite3_exec(db, pragma, NULL, NULL, NULL)) != SQLITE_OK)
            goto fail;
        am_info("store: schema migrated to version %d", v + 1);
    }
    if ((rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        goto fail;
    return AM_OK;
fail:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return sq_rc(rc) == AM_OK ? AM_EIO : sq_rc(rc);
}
