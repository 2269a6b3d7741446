/* store_sqlite_read.c — the read half of the SQLite store: a pool of read-only
 * connections, each with its prepared statements, and every query scoped to one user. */
#include "store_sqlite.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- the pool */

struct sq_reader *sq_reader_get(struct sq *s) {
    pthread_mutex_lock(&s->rlock);
    for (;;) {
        for (int i = 0; i < s->n_readers; i++) {
            if (!s->readers[i].busy) {
                s->readers[i].busy = 1;
                pthread_mutex_unlock(&s->rlock);
                return &s->readers[i];
            }
        }
        pthread_cond_wait(&s->rfree, &s->rlock);
    }
}

void sq_reader_put(struct sq *s, struct sq_reader *r) {
    pthread_mutex_lock(&s->rlock);
    r->busy = 0;
    pthread_cond_signal(&s->rfree);
    pthread_mutex_unlock(&s->rlock);
}

void sq_readers_close(struct sq *s) {
    for (int i = 0; i < s->n_readers; i++) {
        struct sq_reader *r = &s->readers[i];
        for (int k = 0; k < SQ_QUERY_SHAPES; k++)
            sqlite3_finalize(r->query[k]);
        sqlite3_finalize(r->get_event);
        sqlite3_finalize(r->streams);
        sqlite3_finalize(r->blob_get);
        sqlite3_finalize(r->user_find);
        sqlite3_finalize(r->token_lookup);
        sqlite3_finalize(r->ping);
        sqlite3_close(r->db);
        memset(r, 0, sizeof *r);
    }
    s->n_readers = 0;
}

/* The connection's statement for sql, prepared on first use. */
static am_rc stmt(struct sq_reader *r, sqlite3_stmt **slot, const char *sql) {
    if (*slot)
        return AM_OK;
    am_rc rc = sq_prepare(r->db, sql, slot);
    if (rc)
        am_error("store: prepare: %s", sqlite3_errmsg(r->db));
    return rc;
}

/* Ends the statement's read transaction (a statement left stepping would pin an old
 * snapshot and hold back checkpoints) and drops bound text that is the caller's. */
static void done(sqlite3_stmt *st) {
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* ---------------------------------------------------------------- events */

/* The stream's name comes from a correlated subquery, not a join: a join lets the
 * planner (given ANALYZE statistics) build a Bloom filter over every user's streams
 * for each query; the subquery is one rowid lookup per row returned. */
#define EVENT_COLS                                                                                 \
    "SELECT e.id, (SELECT name FROM user_streams s WHERE s.id = e.stream_id"                       \
    " AND s.user_id = e.user_id), e.source, e.ts_ns, e.ts_end_ns, e.payload, e.blob, e.key,"       \
    " e.trace, e.received_ns FROM events e WHERE e.user_id = ?1"

static am_rc row_to_event(sqlite3_stmt *st, int64_t user_id, struct am_event *e) {
    memset(e, 0, sizeof *e);
    e->user_id = user_id;
    e->id = sqlite3_column_int64(st, 0);
    copy_text(e->stream, sizeof e->stream, st, 1);
    copy_text(e->source, sizeof e->source, st, 2);
    e->ts_ns = sqlite3_column_int64(st, 3);
    e->ts_end_ns =
        sqlite3_column_type(st, 4) == SQLITE_NULL ? AM_TS_NONE : sqlite3_column_int64(st, 4);
    const char *p = (const char *)sqlite3_column_text(st, 5);
    if (!p) /* the column is NOT NULL: only a failed allocation gives NULL */
        return AM_ENOMEM;
    e->payload_len = (size_t)sqlite3_column_bytes(st, 5);
    e->payload = am_strndup(p, e->payload_len);
    if (!e->payload)
        return AM_ENOMEM;
    copy_text(e->blob, sizeof e->blob, st, 6);
    copy_text(e->key, sizeof e->key, st, 7);
    copy_text(e->trace, sizeof e->trace, st, 8);
    e->received_ns = sqlite3_column_int64(st, 9);
    return AM_OK;
}

/* One prepared statement per combination of optional clauses. The stream is named,
 * and resolved to the user's stream id inside the query: an unknown name matches
 * nothing. Plans: (user_id, stream_id, ts_ns, id) for one stream, (user_id, ts_ns, id)
 * for the timeline; both walk the index in order, so LIMIT stops the scan early. */
enum { Q_STREAM = 1, Q_SOURCE = 2, Q_FROM = 4, Q_TO = 8, Q_CURSOR = 16, Q_DESC = 32 };

static void query_sql(unsigned shape, char *sql, size_t len) {
    const char *dir = shape & Q_DESC ? "DESC" : "ASC";
    snprintf(sql, len, EVENT_COLS "%s%s%s%s%s ORDER BY e.ts_ns %s, e.id %s LIMIT ?8",
             shape & Q_STREAM ? " AND e.stream_id = (SELECT id FROM user_streams"
                                " WHERE user_id = ?1 AND name = ?2)"
                              : "",
             shape & Q_SOURCE ? " AND e.source = ?3" : "",
             shape & Q_FROM ? " AND e.ts_ns >= ?4" : "", shape & Q_TO ? " AND e.ts_ns < ?5" : "",
             !(shape & Q_CURSOR) ? ""
             : shape & Q_DESC    ? " AND (e.ts_ns, e.id) < (?6, ?7)"
                                 : " AND (e.ts_ns, e.id) > (?6, ?7)",
             dir, dir);
}

am_rc sq_query(void *impl, int64_t user_id, const struct am_query *q, struct am_event_list *out) {
    struct sq *s = impl;
    unsigned shape = (q->stream ? Q_STREAM : 0) | (q->source ? Q_SOURCE : 0) |
                     (q->from_ns != AM_TS_NONE ? Q_FROM : 0) | (q->to_ns != AM_TS_NONE ? Q_TO : 0) |
                     (q->has_cursor ? Q_CURSOR : 0) | (q->descending ? Q_DESC : 0);
    char sql[1024];
    query_sql(shape, sql, sizeof sql);
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = stmt(r, &r->query[shape], sql);
    if (rc)
        goto out;
    st = r->query[shape];
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
        rc = sq_rc(step);
out:
    done(st);
    sq_reader_put(s, r);
    if (rc)
        am_event_list_free(out);
    return rc;
}

am_rc sq_get_event(void *impl, int64_t user_id, int64_t id, struct am_event *out) {
    struct sq *s = impl;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = stmt(r, &r->get_event, EVENT_COLS " AND e.id = ?2");
    if (rc)
        goto out;
    st = r->get_event;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = row_to_event(st, user_id, out);
        if (rc)
            am_event_clear(out);
    } else {
        rc = step == SQLITE_DONE ? AM_ENOTFOUND : sq_rc(step);
    }
out:
    done(st);
    sq_reader_put(s, r);
    return rc;
}

/* ---------------------------------------------------------------- streams and blobs */

am_rc sq_streams(void *impl, int64_t user_id, struct am_stream_stat **out, size_t *n) {
    struct sq *s = impl;
    struct am_stream_stat *list = NULL;
    size_t len = 0, cap = 0;
    int64_t now = am_now_ns();
    *out = NULL;
    *n = 0;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    /* count > 0: a stream row is made before its first insert, which may turn out a
     * duplicate of a row filed under another stream. */
    am_rc rc = stmt(r, &r->streams,
                    "SELECT name, count, first_ts_ns, last_ts_ns, last_received_ns, hour_start,"
                    " hour_count, prev_hour_count FROM user_streams"
                    " WHERE user_id = ?1 AND count > 0 ORDER BY name");
    if (rc)
        goto out;
    st = r->streams;
    sqlite3_bind_int64(st, 1, user_id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            struct am_stream_stat *p = am_realloc(list, cap * sizeof *p);
            if (!p) {
                rc = AM_ENOMEM;
                goto out;
            }
            list = p;
        }
        struct am_stream_stat *x = &list[len++];
        memset(x, 0, sizeof *x);
        copy_text(x->stream, sizeof x->stream, st, 0);
        x->count = sqlite3_column_int64(st, 1);
        x->first_ts_ns = sqlite3_column_int64(st, 2);
        x->last_ts_ns = sqlite3_column_int64(st, 3);
        x->last_received_ns = sqlite3_column_int64(st, 4);
        /* An estimate from hourly buckets, not a count over an index (there is none on
         * received time): see sq_hour_estimate. */
        x->count_last_hour =
            sq_hour_estimate(now, sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6),
                             sqlite3_column_int64(st, 7));
    }
    if (step != SQLITE_DONE)
        rc = sq_rc(step);
out:
    done(st);
    sq_reader_put(s, r);
    if (rc) {
        am_free(list);
        return rc;
    }
    *out = list;
    *n = len;
    return AM_OK;
}

am_rc sq_blob_get(void *impl, int64_t user_id, const char *sha256, struct am_blob_info *out) {
    struct sq *s = impl;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = stmt(r, &r->blob_get,
                    "SELECT b.sha256, b.size, b.mime, ub.created_ns FROM user_blobs ub"
                    " JOIN blobs b ON b.sha256 = ub.sha256"
                    " WHERE ub.user_id = ?1 AND ub.sha256 = ?2");
    if (rc)
        goto out;
    st = r->blob_get;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        copy_text(out->sha256, sizeof out->sha256, st, 0);
        out->size = sqlite3_column_int64(st, 1);
        copy_text(out->mime, sizeof out->mime, st, 2);
        out->created_ns = sqlite3_column_int64(st, 3);
    } else {
        rc = step == SQLITE_DONE ? AM_ENOTFOUND : sq_rc(step);
    }
out:
    done(st);
    sq_reader_put(s, r);
    return rc;
}

/* ---------------------------------------------------------------- users, tokens, health */

am_rc sq_user_find(void *impl, const char *name, int64_t *user_id) {
    struct sq *s = impl;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = stmt(r, &r->user_find, "SELECT id FROM users WHERE name = ?1");
    if (rc)
        goto out;
    st = r->user_find;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *user_id = sqlite3_column_int64(st, 0);
    else
        rc = step == SQLITE_DONE ? AM_ENOTFOUND : sq_rc(step);
out:
    done(st);
    sq_reader_put(s, r);
    return rc;
}

am_rc sq_token_lookup(void *impl, const uint8_t hash[32], int64_t *user_id, unsigned *scopes,
                      char *user_name, size_t user_name_len) {
    struct sq *s = impl;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = stmt(r, &r->token_lookup,
                    "SELECT t.user_id, t.scopes, u.name FROM tokens t JOIN users u"
                    " ON u.id = t.user_id WHERE t.hash = ?1 AND t.revoked_ns IS NULL");
    if (rc)
        goto out;
    st = r->token_lookup;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *user_id = sqlite3_column_int64(st, 0);
        *scopes = (unsigned)sqlite3_column_int64(st, 1);
        if (user_name && user_name_len)
            copy_text(user_name, user_name_len, st, 2);
    } else {
        rc = step == SQLITE_DONE ? AM_EDENIED : sq_rc(step);
    }
out:
    done(st);
    sq_reader_put(s, r);
    return rc;
}

am_rc sq_ping(void *impl) {
    struct sq *s = impl;
    struct sq_reader *r = sq_reader_get(s);
    am_rc rc = stmt(r, &r->ping, "SELECT count(*) FROM users WHERE id = 0");
    if (rc == AM_OK) {
        int step = sqlite3_step(r->ping);
        rc = step == SQLITE_ROW ? AM_OK : sq_rc(step) == AM_OK ? AM_EIO : sq_rc(step);
    }
    done(r->ping);
    sq_reader_put(s, r);
    return rc;
}
