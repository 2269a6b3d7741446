/* spool.c — the collector's local SQLite spool: every observation is written here first and
 * leaves only once AM has acknowledged it, so a collector that cannot reach AM loses nothing.
 * Each event's idempotency key is "amc-<spool id>-<seq>", fixed when it is spooled, so a
 * resend after a lost answer is answered "duplicate" and stored once. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "collect/collect.h"

#define BATCH_BODY_MAX_BYTES (64 * 1024 * 1024)

struct collect_spool {
    sqlite3 *db;
    char id[33]; /* random, made when the spool file was created */
};

static const char *SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " body TEXT NOT NULL, blob TEXT);"
    "CREATE TABLE IF NOT EXISTS blobs(sha256 TEXT PRIMARY KEY, data BLOB NOT NULL);";

static am_rc exec(struct collect_spool *sp, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(sp->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        am_error("am-collect: spool: %s", err ? err : sqlite3_errmsg(sp->db));
        sqlite3_free(err);
        return AM_EIO;
    }
    return AM_OK;
}

static am_rc load_id(struct collect_spool *sp) {
    sqlite3_stmt *st = NULL;
    am_rc rc = AM_EIO;
    if (sqlite3_prepare_v2(sp->db, "SELECT value FROM meta WHERE name='id'", -1, &st, NULL))
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(sp->id, sizeof(sp->id), "%s", (const char *)sqlite3_column_text(st, 0));
        rc = AM_OK;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    uint8_t raw[8];
    am_random_bytes(raw, sizeof(raw));
    am_hex(raw, sizeof(raw), sp->id);
    if (sqlite3_prepare_v2(sp->db, "INSERT INTO meta(name, value) VALUES('id', ?)", -1, &st,
                           NULL) ||
        sqlite3_bind_text(st, 1, sp->id, -1, SQLITE_TRANSIENT) || sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = AM_OK;
out:
    if (rc != AM_OK)
        am_error("am-collect: spool: %s", sqlite3_errmsg(sp->db));
    sqlite3_finalize(st);
    return rc;
}

am_rc collect_spool_open(const char *path, struct collect_spool **out) {
    *out = NULL;
    struct collect_spool *sp = am_calloc(1, sizeof(*sp));
    if (!sp)
        return AM_ENOMEM;
    am_rc rc = AM_EIO;
    if (sqlite3_open_v2(path, &sp->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        am_error("am-collect: cannot open the spool %s: %s", path,
                 sp->db ? sqlite3_errmsg(sp->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(sp->db, 5000);
    if ((rc = exec(sp, SCHEMA)) != AM_OK || (rc = load_id(sp)) != AM_OK)
        goto fail;
    *out = sp;
    return AM_OK;
fail:
    collect_spool_close(sp);
    return rc;
}

void collect_spool_close(struct collect_spool *sp) {
    if (!sp)
        return;
    sqlite3_close(sp->db);
    am_free(sp);
}

am_rc collect_spool_blob(struct collect_spool *sp, const uint8_t *data, size_t len,
                         char sha256_hex[65]) {
    am_sha256_hex(data, len, sha256_hex);
    sqlite3_stmt *st = NULL;
    am_rc rc = AM_EIO;
    if (sqlite3_prepare_v2(sp->db, "INSERT OR IGNORE INTO blobs(sha256, data) VALUES(?, ?)", -1,
                           &st, NULL) ||
        sqlite3_bind_text(st, 1, sha256_hex, -1, SQLITE_TRANSIENT) ||
        sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC) || sqlite3_step(st) != SQLITE_DONE) {
        am_error("am-collect: spool: %s", sqlite3_errmsg(sp->db));
        goto out;
    }
    rc = AM_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

am_rc collect_spool_event(struct collect_spool *sp, const char *stream, const char *source,
                          int64_t ts_ns, int64_t ts_end_ns, const json_t *payload,
                          const char *blob) {
    json_t *e = json_pack("{s:s,s:s,s:I,s:O}", "stream", stream, "source", source, "ts",
                          (json_int_t)ts_ns, "payload", payload);
    if (!e)
        return AM_ENOMEM;
    if (ts_end_ns != AM_TS_NONE)
        json_object_set_new(e, "ts_end", json_integer(ts_end_ns));
    if (blob)
        json_object_set_new(e, "blob", json_string(blob));
    size_t len;
    char *body = am_json_dump(e, &len);
    json_decref(e);
    if (!body)
        return AM_ENOMEM;
    sqlite3_stmt *st = NULL;
    am_rc rc = AM_EIO;
    if (sqlite3_prepare_v2(sp->db, "INSERT INTO events(body, blob) VALUES(?, ?)", -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, body, (int)len, SQLITE_STATIC) ||
        (blob ? sqlite3_bind_text(st, 2, blob, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 2)) ||
        sqlite3_step(st) != SQLITE_DONE) {
        am_error("am-collect: spool: %s", sqlite3_errmsg(sp->db));
        goto out;
    }
    am_debug("am-collect: spooled %s", body);
    rc = AM_OK;
out:
    sqlite3_finalize(st);
    am_free(body);
    return rc;
}

long collect_spool_pending(struct collect_spool *sp) {
    sqlite3_stmt *st = NULL;
    long n = -1;
    if (sqlite3_prepare_v2(sp->db, "SELECT count(*) FROM events", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Uploads the blob named sha256 if it is still spooled, then forgets it. */
static am_rc upload_blob(struct collect_spool *sp, struct collect_send *s, const char *sha256) {
    sqlite3_stmt *st = NULL;
    am_rc rc = AM_EIO;
    if (sqlite3_prepare_v2(sp->db, "SELECT data FROM blobs WHERE sha256 = ?", -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC))
        goto out;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) { /* uploaded before */
        rc = AM_OK;
        goto out;
    }
    if (step != SQLITE_ROW)
        goto out;
    rc = collect_send_blob(s, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                           sha256);
    if (rc != AM_OK) {
        sqlite3_finalize(st);
        return rc; /* AM unreachable or refusing: not a spool failure */
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = AM_EIO;
    if (sqlite3_prepare_v2(sp->db, "DELETE FROM blobs WHERE sha256 = ?", -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC) || sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = AM_OK;
out:
    if (rc == AM_EIO)
        am_error("am-collect: spool: %s", sqlite3_errmsg(sp->db));
    sqlite3_finalize(st);
    return rc;
}

/* Sends the oldest batch: AM_OK with *n_sent = 0 when the spool is empty. */
static am_rc drain_batch(struct collect_spool *sp, struct collect_send *s, size_t batch,
                         size_t *n_sent) {
    *n_sent = 0;
    sqlite3_stmt *st = NULL;
    struct am_buf body;
    am_buf_init(&body, BATCH_BODY_MAX_BYTES);
    int64_t *seqs = am_calloc(batch, sizeof(*seqs));
    uint8_t *done = am_calloc(batch, 1);
    size_t n = 0;
    am_rc rc = AM_ENOMEM;
    if (!seqs || !done || am_buf_appends(&body, "[") != AM_OK)
        goto out;
    rc = AM_EIO;
    if (sqlite3_prepare_v2(sp->db, "SELECT seq, body, blob FROM events ORDER BY seq LIMIT ?", -1,
                           &st, NULL) ||
        sqlite3_bind_int64(st, 1, (sqlite3_int64)batch))
        goto out;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        int text_len = sqlite3_column_bytes(st, 1);
        const char *blob = (const char *)sqlite3_column_text(st, 2);
        if (blob && (rc = upload_blob(sp, s, blob)) != AM_OK)
            goto out;
        /* the stored body is a JSON object: its key goes in before the closing brace */
        if (text_len < 2 || text[text_len - 1] != '}') {
            rc = AM_EIO;
            goto out;
        }
        if ((n && am_buf_appends(&body, ",") != AM_OK) ||
            am_buf_append(&body, text, (size_t)text_len - 1) != AM_OK ||
            am_buf_printf(&body, ",\"key\":\"amc-%s-%lld\"}", sp->id, (long long)seq) != AM_OK) {
            rc = AM_ENOMEM;
            goto out;
        }
        seqs[n++] = seq;
    }
    if (step != SQLITE_DONE) {
        rc = AM_EIO;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (n == 0) {
        rc = AM_OK;
        goto out;
    }
    if ((rc = am_buf_appends(&body, "]")) != AM_OK)
        goto out;
    if ((rc = collect_send_events(s, body.data, body.len, n, done)) != AM_OK)
        goto out; /* AM unreachable or refusing: the caller reports it */
    rc = AM_EIO;
    if (sqlite3_prepare_v2(sp->db, "DELETE FROM events WHERE seq = ?", -1, &st, NULL))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!done[i])
            continue;
        sqlite3_reset(st);
        if (sqlite3_bind_int64(st, 1, seqs[i]) || sqlite3_step(st) != SQLITE_DONE)
            goto out;
        (*n_sent)++;
    }
    /* an event AM did not answer for stays first in line: stop rather than reorder */
    rc = *n_sent == n ? AM_OK : AM_EBACKEND;
out:
    if (rc == AM_EIO) /* only the spool's own failures are AM_EIO */
        am_error("am-collect: spool: %s", sqlite3_errmsg(sp->db));
    sqlite3_finalize(st);
    am_buf_free(&body);
    am_free(seqs);
    am_free(done);
    return rc;
}

am_rc collect_spool_drain(struct collect_spool *sp, struct collect_send *s, size_t batch,
                          size_t *sent) {
    *sent = 0;
    if (batch == 0)
        batch = 1;
    for (;;) {
        size_t n = 0;
        am_rc rc = drain_batch(sp, s, batch, &n);
        *sent += n;
        if (rc != AM_OK || n == 0)
            return rc;
    }
}
