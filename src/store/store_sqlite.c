/* store_sqlite.c — the embedded store: SQLite in WAL mode with synchronous=FULL,
 * one writer thread (store_sqlite_writer.c) and a pool of read connections. */
#include "store_sqlite.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- SQLite memory
 * SQLite allocates through am_malloc so the fail-the-Nth tests reach the store too.
 * Each block carries its size in front (xSize needs it). */

static void *mem_malloc(int n) {
    int64_t *p = am_malloc((size_t)n + 8);
    if (!p)
        return NULL;
    p[0] = n;
    return p + 1;
}
static void mem_free(void *p) {
    if (p)
        am_free((int64_t *)p - 1);
}
static void *mem_realloc(void *p, int n) {
    int64_t *q = am_realloc((int64_t *)p - 1, (size_t)n + 8);
    if (!q)
        return NULL;
    q[0] = n;
    return q + 1;
}
static int mem_size(void *p) {
    return p ? (int)((int64_t *)p)[-1] : 0;
}
static int mem_roundup(int n) {
    return (n + 7) & ~7;
}
static int mem_init(void *arg) {
    (void)arg;
    return SQLITE_OK;
}
static void mem_shutdown(void *arg) {
    (void)arg;
}

static void sqlite_setup(void) {
    static const sqlite3_mem_methods mm = {mem_malloc, mem_free,   mem_realloc, mem_size,
                                           mem_roundup, mem_init, mem_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mm) != SQLITE_OK)
        am_warn("store: SQLite was initialised before its allocator could be set");
    sqlite3_initialize();
}

/* ---------------------------------------------------------------- connections */

am_rc sq_open_conn(const char *path, int readonly, sqlite3 **out) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    *out = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        am_error("store: open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return AM_EIO;
    }
    sqlite3_busy_timeout(db, 10000);
    const char *pragmas = readonly ? "PRAGMA query_only = 1; PRAGMA foreign_keys = ON"
                                   : "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                     " PRAGMA foreign_keys = ON";
    if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        am_error("store: %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return AM_EIO;
    }
    *out = db;
    return AM_OK;
}

static sqlite3 *reader_get(struct sq *s, int *slot) {
    pthread_mutex_lock(&s->rlock);
    for (;;) {
        for (int i = 0; i < s->n_readers; i++) {
            if (!s->rbusy[i]) {
                s->rbusy[i] = 1;
                *slot = i;
                pthread_mutex_unlock(&s->rlock);
                return s->rdb[i];
            }
        }
        pthread_cond_wait(&s->rfree, &s->rlock);
    }
}

static void reader_put(struct sq *s, int slot) {
    pthread_mutex_lock(&s->rlock);
    s->rbusy[slot] = 0;
    pthread_cond_signal(&s->rfree);
    pthread_mutex_unlock(&s->rlock);
}

static void sq_free(struct sq *s) {
    sq_writer_finalize(s);
    sqlite3_close(s->wdb);
    for (int i = 0; i < s->n_readers; i++)
        sqlite3_close(s->rdb[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    pthread_cond_destroy(&s->rfree);
    am_free(s);
}

static am_rc sq_open(const struct am_store_config *cfg, void **impl) {
    struct sq *s = am_calloc(1, sizeof *s);
    if (!s)
        return AM_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    pthread_cond_init(&s->rfree, NULL);
    snprintf(s->path, sizeof s->path, "%s/am.db", cfg->data_dir);
    s->max_events = cfg->group_commit_max_events ? cfg->group_commit_max_events : 20000;
    am_rc rc = sq_open_conn(s->path, 0, &s->wdb);
    if (rc)
        goto fail;
    if ((rc = sq_migrate(s->wdb)) != AM_OK || (rc = sq_writer_prepare(s)) != AM_OK)
        goto fail;
    int n = cfg->read_connections > 0 ? cfg->read_connections : 4;
    if (n > SQ_MAX_READERS)
        n = SQ_MAX_READERS;
    for (int i = 0; i < n; i++) {
        if ((rc = sq_open_conn(s->path, 1, &s->rdb[i])) != AM_OK)
            goto fail;
        s->n_readers++;
    }
    if (pthread_create(&s->writer, NULL, sq_writer_main, s) != 0) {
        rc = AM_EBACKEND;
        goto fail;
    }
    *impl = s;
    return AM_OK;
fail:
    sq_free(s);
    return rc;
}

static void sq_close(void *impl) {
    struct sq *s = impl;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer, NULL);
    sq_free(s);
}

/* Queues a request and waits for the writer's commit. */
static am_rc submit(struct sq *s, struct sq_req *r) {
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return AM_ECLOSED;
    }
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    s->stats.queue_depth++;
    pthread_cond_signal(&s->work);
    while (!r->done)
        pthread_cond_wait(&s->done, &s->lock);
    pthread_mutex_unlock(&s->lock);
    return r->rc;
}

static am_rc sq_append(void *impl, int64_t user_id, struct am_event *evs, size_t n,
                       struct am_item_result *res) {
    struct sq_req r = {.user_id = user_id, .evs = evs, .n = n, .res = res};
    if (n == 0)
        return AM_OK;
    return submit(impl, &r);
}

static am_rc sq_blob_add(void *impl, int64_t user_id, const struct am_blob_info *info) {
    struct sq_req r = {.user_id = user_id, .blob = info};
    return submit(impl, &r);
}

/* ---------------------------------------------------------------- reads */

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static am_rc row_to_event(sqlite3_stmt *st, int64_t user_id, struct am_event *e) {
    memset(e, 0, sizeof *e);
    e->user_id = user_id;
    e->id = sqlite3_column_int64(st, 0);
    copy_text(e->stream, sizeof e->stream, st, 1);
    copy_text(e->source, sizeof e->source, st, 2);
    e->ts_ns = sqlite3_column_int64(st, 3);
    e->ts_end_ns = sqlite3_column_type(st, 4) == SQLITE_NULL ? AM_TS_NONE
                                                             : sqlite3_column_int64(st, 4);
    const char *p = (const char *)sqlite3_column_text(st, 5);
    e->payload_len = (size_t)sqlite3_column_bytes(st, 5);
    e->payload = am_strndup(p ? p : "", p ? e->payload_len : 0);
    if (!e->payload)
        return AM_ENOMEM;
    copy_text(e->blob, sizeof e->blob, st, 6);
    copy_text(e->key, sizeof e->key, st, 7);
    copy_text(e->trace, sizeof e->trace, st, 8);
    e->received_ns = sqlite3_column_int64(st, 9);
    return AM_OK;
}

#define EVENT_COLS                                                                                 \
    "e.id, s.name, e.source, e.ts_ns, e.ts_end_ns, e.payload, e.blob, e.key, e.trace, "           \
    "e.received_ns FROM events e JOIN user_streams s ON s.id = e.stream_id "

static am_rc sq_query(void *impl, int64_t user_id, const struct am_query *q,
                      struct am_event_list *out) {
    struct sq *s = impl;
    char sql[1024];
    int slot;
    am_rc rc = AM_OK;
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql,
             "SELECT " EVENT_COLS "WHERE e.user_id = ?1%s%s%s%s%s ORDER BY e.ts_ns %s, e.id %s "
             "LIMIT ?8",
             q->stream ? " AND e.stream_id = (SELECT id FROM user_streams WHERE user_id = ?1"
                         " AND name = ?2)"
                       : "",
             q->source ? " AND e.source = ?3" : "", q->from_ns != AM_TS_NONE ? " AND e.ts_ns >= ?4" : "",
             q->to_ns != AM_TS_NONE ? " AND e.ts_ns < ?5" : "",
             q->has_cursor ? (q->descending ? " AND (e.ts_ns, e.id) < (?6, ?7)"
                                            : " AND (e.ts_ns, e.id) > (?6, ?7)")
                           : "",
             q->descending ? "DESC" : "ASC", q->descending ? "DESC" : "ASC");
    sqlite3 *db = reader_get(s, &slot);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = AM_EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, user_id);
    if (q->stream)
        sqlite3_bind_text(st, 2, q->stream, -1, SQLITE_STATIC);
    if (q->source)
        sqlite3_bind_text(st, 3, q->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, q->from_ns);
    sqlite3_bind_int64(st, 5, q->to_ns);
    sqlite3_bind_int64(st, 6, q->after_ts_ns);
    sqlite3_bind_int64(st, 7, q->after_id);
    sqlite3_bind_int64(st, 8, (int64_t)(q->limit ? q->limit : 100));
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct am_event e;
        if ((rc = row_to_event(st, user_id, &e)) != AM_OK ||
            (rc = am_event_list_push(out, &e)) != AM_OK) {
            am_free(e.payload);
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = AM_EIO;
out:
    if (rc)
        am_event_list_free(out);
    sqlite3_finalize(st);
    reader_put(s, slot);
    return rc;
}

static am_rc sq_get_event(void *impl, int64_t user_id, int64_t id, struct am_event *out) {
    struct sq *s = impl;
    int slot;
    am_rc rc = AM_ENOTFOUND;
    sqlite3_stmt *st = NULL;
    sqlite3 *db = reader_get(s, &slot);
    if (sqlite3_prepare_v2(db, "SELECT " EVENT_COLS "WHERE e.user_id = ?1 AND e.id = ?2", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = AM_EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = row_to_event(st, user_id, out);
    else if (step != SQLITE_DONE)
        rc = AM_EIO;
out:
    sqlite3_finalize(st);
    reader_put(s, slot);
    return rc;
}

static am_rc sq_streams(void *impl, int64_t user_id, struct am_stream_stat **out, size_t *n) {
    struct sq *s = impl;
    int slot;
    am_rc rc = AM_OK;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int64_t hour = am_now_ns() / (3600 * AM_NS_PER_S);
    sqlite3 *db = reader_get(s, &slot);
    if (sqlite3_prepare_v2(db,
                           "SELECT name, count, first_ts_ns, last_ts_ns, last_received_ns,"
                           " hour_start, hour_count, prev_hour_count FROM user_streams"
                           " WHERE user_id = ?1 AND count > 0 ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = AM_EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, user_id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct am_stream_stat *p = am_realloc(*out, cap * sizeof *p);
            if (!p) {
                rc = AM_ENOMEM;
                goto out;
            }
            *out = p;
        }
        struct am_stream_stat *x = &(*out)[(*n)++];
        memset(x, 0, sizeof *x);
        copy_text(x->stream, sizeof x->stream, st, 0);
        x->count = sqlite3_column_int64(st, 1);
        x->first_ts_ns = sqlite3_column_int64(st, 2);
        x->last_ts_ns = sqlite3_column_int64(st, 3);
        x->last_received_ns = sqlite3_column_int64(st, 4);
        /* The last hour ≈ this clock hour plus the previous one; cheap and good
         * enough for "how lively is this stream". */
        int64_t hs = sqlite3_column_int64(st, 5);
        int64_t hc = sqlite3_column_int64(st, 6), pc = sqlite3_column_int64(st, 7);
        x->count_last_hour = hs == hour ? hc + pc : hs == hour - 1 ? hc : 0;
    }
    if (step != SQLITE_DONE && rc == AM_OK)
        rc = AM_EIO;
out:
    if (rc) {
        am_free(*out);
        *out = NULL;
        *n = 0;
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    return rc;
}

static am_rc sq_blob_get(void *impl, int64_t user_id, const char *sha256,
                         struct am_blob_info *out) {
    struct sq *s = impl;
    int slot;
    am_rc rc = AM_ENOTFOUND;
    sqlite3_stmt *st = NULL;
    sqlite3 *db = reader_get(s, &slot);
    if (sqlite3_prepare_v2(db,
                           "SELECT b.sha256, b.size, b.mime, ub.created_ns FROM user_blobs ub"
                           " JOIN blobs b ON b.sha256 = ub.sha256"
                           " WHERE ub.user_id = ?1 AND ub.sha256 = ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = AM_EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        copy_text(out->sha256, sizeof out->sha256, st, 0);
        out->size = sqlite3_column_int64(st, 1);
        copy_text(out->mime, sizeof out->mime, st, 2);
        out->created_ns = sqlite3_column_int64(st, 3);
        rc = AM_OK;
    }
out:
    sqlite3_finalize(st);
    reader_put(s, slot);
    return rc;
}

/* ---------------------------------------------------------------- users and tokens
 * Rare writes from the CLI (possibly another process): a short-lived connection,
 * with busy_timeout waiting out the writer thread. */

static am_rc admin_exec(struct sq *s, const char *sql, int64_t a, const char *t1,
                        const void *blob, int64_t b, const char *t2, int64_t *rowid) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    am_rc rc = sq_open_conn(s->path, 0, &db);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = AM_EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_text(st, 2, t1, -1, SQLITE_STATIC);
    if (blob)
        sqlite3_bind_blob(st, 3, blob, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b);
    sqlite3_bind_text(st, 5, t2, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT)
        rc = AM_ECONFLICT;
    else if (step != SQLITE_DONE)
        rc = AM_EIO;
    else if (rowid)
        *rowid = sqlite3_last_insert_rowid(db);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static am_rc sq_user_add(void *impl, const char *name, int64_t *user_id) {
    return admin_exec(impl, "INSERT INTO users(name, created_ns) VALUES(?2, ?1)", am_now_ns(),
                      name, NULL, 0, "", user_id);
}

static am_rc sq_user_find(void *impl, const char *name, int64_t *user_id) {
    struct sq *s = impl;
    int slot;
    sqlite3_stmt *st = NULL;
    am_rc rc = AM_ENOTFOUND;
    sqlite3 *db = reader_get(s, &slot);
    if (sqlite3_prepare_v2(db, "SELECT id FROM users WHERE name = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *user_id = sqlite3_column_int64(st, 0);
            rc = AM_OK;
        }
    } else {
        rc = AM_EIO;
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    return rc;
}

static am_rc sq_token_add(void *impl, int64_t user_id, const uint8_t hash[32], unsigned scopes,
                          const char *label) {
    return admin_exec(impl,
                      "INSERT INTO tokens(user_id, label, hash, scopes, created_ns)"
                      " VALUES(?1, ?2, ?3, ?4, CAST(strftime('%s', 'now') AS INTEGER) * 1000000000)",
                      user_id, label ? label : "", hash, (int64_t)scopes, "0", NULL);
}

static am_rc sq_token_lookup(void *impl, const uint8_t hash[32], int64_t *user_id,
                             unsigned *scopes, char *user_name, size_t user_name_len) {
    struct sq *s = impl;
    int slot;
    sqlite3_stmt *st = NULL;
    am_rc rc = AM_EDENIED;
    sqlite3 *db = reader_get(s, &slot);
    if (sqlite3_prepare_v2(db,
                           "SELECT t.user_id, t.scopes, u.name FROM tokens t JOIN users u"
                           " ON u.id = t.user_id WHERE t.hash = ?1 AND t.revoked_ns IS NULL",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = AM_EIO;
        goto out;
    }
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *user_id = sqlite3_column_int64(st, 0);
        *scopes = (unsigned)sqlite3_column_int(st, 1);
        copy_text(user_name, user_name_len, st, 2);
        rc = AM_OK;
    } else if (step != SQLITE_DONE) {
        rc = AM_EIO;
    }
out:
    sqlite3_finalize(st);
    reader_put(s, slot);
    return rc;
}

static void sq_stats(void *impl, struct am_store_stats *out) {
    struct sq *s = impl;
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

static am_rc sq_ping(void *impl) {
    struct sq *s = impl;
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    am_rc rc = sqlite3_exec(db, "SELECT 1 FROM users LIMIT 1", NULL, NULL, NULL) == SQLITE_OK
                   ? AM_OK
                   : AM_EIO;
    reader_put(s, slot);
    return rc;
}

const struct am_store_ops am_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .append = sq_append,
    .query = sq_query,
    .get_event = sq_get_event,
    .streams = sq_streams,
    .blob_add = sq_blob_add,
    .blob_get = sq_blob_get,
    .user_add = sq_user_add,
    .user_find = sq_user_find,
    .token_add = sq_token_add,
    .token_lookup = sq_token_lookup,
    .stats = sq_stats,
    .ping = sq_ping,
};
