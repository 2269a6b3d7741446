/* store_sqlite_writer.c — the one writer thread: takes every queued request, runs
 * them in one transaction (a savepoint each, so one failure rolls back only its own
 * request), commits with synchronous=FULL, then wakes all their callers together. */
#include "store_sqlite.h"

#include <stdio.h>
#include <string.h>

#define PREP(field, sql)                                                                           \
    if (sqlite3_prepare_v3(s->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->field, NULL) !=         \
        SQLITE_OK)                                                                                 \
        goto fail;

am_rc sq_writer_prepare(struct sq *s) {
    PREP(st_stream_get, "SELECT id FROM user_streams WHERE user_id = ?1 AND name = ?2");
    PREP(st_stream_add, "INSERT INTO user_streams(user_id, name) VALUES(?1, ?2)");
    PREP(st_blob_owned, "SELECT 1 FROM user_blobs WHERE user_id = ?1 AND sha256 = ?2");
    PREP(st_insert,
         "INSERT INTO events(user_id, stream_id, source, ts_ns, ts_end_ns, payload, blob, key,"
         " trace, received_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
         " ON CONFLICT(user_id, key) DO NOTHING");
    PREP(st_dup, "SELECT id FROM events WHERE user_id = ?1 AND key = ?2");
    /* SET expressions all see the old row, so the hour roll-over reads naturally. */
    PREP(st_stats,
         "UPDATE user_streams SET count = count + ?2,"
         " first_ts_ns = min(coalesce(first_ts_ns, ?3), ?3),"
         " last_ts_ns = max(coalesce(last_ts_ns, ?4), ?4), last_received_ns = ?5,"
         " prev_hour_count = CASE WHEN hour_start = ?6 THEN prev_hour_count"
         "   WHEN hour_start = ?6 - 1 THEN hour_count ELSE 0 END,"
         " hour_count = CASE WHEN hour_start = ?6 THEN hour_count + ?2 ELSE ?2 END,"
         " hour_start = ?6 WHERE id = ?1 AND user_id = ?7");
    PREP(st_blob_add, "INSERT OR IGNORE INTO blobs(sha256, size, mime, created_ns)"
                      " VALUES(?1, ?2, ?3, ?4)");
    PREP(st_user_blob_add, "INSERT OR IGNORE INTO user_blobs(user_id, sha256, created_ns)"
                           " VALUES(?1, ?2, ?3)");
    return AM_OK;
fail:
    am_error("store: prepare: %s", sqlite3_errmsg(s->wdb));
    return AM_EIO;
}

void sq_writer_finalize(struct sq *s) {
    sqlite3_stmt **all[] = {&s->st_stream_get, &s->st_stream_add, &s->st_blob_owned,
                            &s->st_insert, &s->st_dup, &s->st_stats, &s->st_blob_add,
                            &s->st_user_blob_add};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

/* Per-request stream statistics, written once per stream before the savepoint ends. */
struct acc {
    int64_t stream_id, count, min_ts, max_ts, last_recv;
};

static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW;
}

static am_rc stream_id(struct sq *s, int64_t user_id, const char *name, int64_t *id) {
    sqlite3_stmt *st = s->st_stream_get;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return AM_OK;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return AM_EIO;
    st = s->st_stream_add;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (!step_done(st))
        return AM_EIO;
    *id = sqlite3_last_insert_rowid(s->wdb);
    return AM_OK;
}

static am_rc flush_stats(struct sq *s, int64_t user_id, struct acc *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = s->st_stats;
        sqlite3_bind_int64(st, 1, a[i].stream_id);
        sqlite3_bind_int64(st, 2, a[i].count);
        sqlite3_bind_int64(st, 3, a[i].min_ts);
        sqlite3_bind_int64(st, 4, a[i].max_ts);
        sqlite3_bind_int64(st, 5, a[i].last_recv);
        sqlite3_bind_int64(st, 6, a[i].last_recv / (3600 * AM_NS_PER_S));
        sqlite3_bind_int64(st, 7, user_id);
        if (!step_done(st))
            return AM_EIO;
    }
    return AM_OK;
}

static am_rc do_blob(struct sq *s, struct sq_req *r) {
    const struct am_blob_info *b = r->blob;
    sqlite3_stmt *st = s->st_blob_add;
    sqlite3_bind_text(st, 1, b->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->size);
    sqlite3_bind_text(st, 3, b->mime, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b->created_ns);
    if (!step_done(st))
        return AM_EIO;
    st = s->st_user_blob_add;
    sqlite3_bind_int64(st, 1, r->user_id);
    sqlite3_bind_text(st, 2, b->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, b->created_ns);
    return step_done(st) ? AM_OK : AM_EIO;
}

static am_rc do_append(struct sq *s, struct sq_req *r, int64_t counts[3]) {
    struct acc accs[16];
    size_t n_acc = 0;
    am_rc rc = AM_OK;
    for (size_t i = 0; i < r->n; i++) {
        struct am_event *e = &r->evs[i];
        struct am_item_result *res = &r->res[i];
        memset(res, 0, sizeof *res);
        if (e->blob[0]) {
            sqlite3_stmt *st = s->st_blob_owned;
            sqlite3_bind_int64(st, 1, r->user_id);
            sqlite3_bind_text(st, 2, e->blob, -1, SQLITE_STATIC);
            int step = sqlite3_step(st);
            sqlite3_reset(st);
            if (step == SQLITE_DONE) {
                res->status = AM_ITEM_REJECTED;
                snprintf(res->reason, sizeof res->reason,
                         "blob: unknown blob (upload it to /v1/blobs first)");
                counts[2]++;
                continue;
            }
            if (step != SQLITE_ROW)
                return AM_EIO;
        }
        int64_t sid;
        if ((rc = stream_id(s, r->user_id, e->stream, &sid)) != AM_OK)
            return rc;
        sqlite3_stmt *st = s->st_insert;
        sqlite3_bind_int64(st, 1, r->user_id);
        sqlite3_bind_int64(st, 2, sid);
        sqlite3_bind_text(st, 3, e->source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, e->ts_ns);
        if (e->ts_end_ns == AM_TS_NONE)
            sqlite3_bind_null(st, 5);
        else
            sqlite3_bind_int64(st, 5, e->ts_end_ns);
        sqlite3_bind_text(st, 6, e->payload ? e->payload : "{}", -1, SQLITE_STATIC);
        if (e->blob[0])
            sqlite3_bind_text(st, 7, e->blob, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 7);
        sqlite3_bind_text(st, 8, e->key, -1, SQLITE_STATIC);
        if (e->trace[0])
            sqlite3_bind_text(st, 9, e->trace, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 9);
        sqlite3_bind_int64(st, 10, e->received_ns);
        if (!step_done(st))
            return AM_EIO;
        if (sqlite3_changes(s->wdb) == 1) {
            res->status = AM_ITEM_STORED;
            res->id = sqlite3_last_insert_rowid(s->wdb);
            e->id = res->id;
            counts[0]++;
            size_t k = 0;
            while (k < n_acc && accs[k].stream_id != sid)
                k++;
            if (k == n_acc) {
                if (n_acc == sizeof accs / sizeof accs[0]) {
                    if ((rc = flush_stats(s, r->user_id, accs, n_acc)) != AM_OK)
                        return rc;
                    n_acc = k = 0;
                }
                accs[k] = (struct acc){sid, 0, e->ts_ns, e->ts_ns, e->received_ns};
                n_acc++;
            }
            accs[k].count++;
            if (e->ts_ns < accs[k].min_ts)
                accs[k].min_ts = e->ts_ns;
            if (e->ts_ns > accs[k].max_ts)
                accs[k].max_ts = e->ts_ns;
            if (e->received_ns > accs[k].last_recv)
                accs[k].last_recv = e->received_ns;
        } else {
            st = s->st_dup;
            sqlite3_bind_int64(st, 1, r->user_id);
            sqlite3_bind_text(st, 2, e->key, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_reset(st);
                return AM_EIO;
            }
            res->status = AM_ITEM_DUPLICATE;
            res->id = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
            counts[1]++;
        }
    }
    return flush_stats(s, r->user_id, accs, n_acc);
}

static void run_group(struct sq *s, struct sq_req *group) {
    int64_t t0 = am_mono_ns(), events = 0;
    int64_t counts[3] = {0, 0, 0};
    am_rc begin = sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                      ? AM_OK
                      : AM_EIO;
    for (struct sq_req *r = group; r; r = r->next) {
        events += (int64_t)r->n;
        if (begin != AM_OK) {
            r->rc = begin;
            continue;
        }
        int64_t c[3] = {0, 0, 0};
        sqlite3_exec(s->wdb, "SAVEPOINT req", NULL, NULL, NULL);
        r->rc = r->blob ? do_blob(s, r) : do_append(s, r, c);
        if (r->rc != AM_OK) {
            am_error("store: request failed: %s", sqlite3_errmsg(s->wdb));
            sqlite3_exec(s->wdb, "ROLLBACK TO req", NULL, NULL, NULL);
        } else {
            for (int k = 0; k < 3; k++)
                counts[k] += c[k];
        }
        sqlite3_exec(s->wdb, "RELEASE req", NULL, NULL, NULL);
    }
    if (begin == AM_OK && sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        am_error("store: commit failed: %s", sqlite3_errmsg(s->wdb));
        sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
        for (struct sq_req *r = group; r; r = r->next)
            r->rc = AM_EIO;
        counts[0] = counts[1] = counts[2] = 0;
    }
    pthread_mutex_lock(&s->lock);
    s->stats.commits++;
    s->stats.commit_ns_total += am_mono_ns() - t0;
    s->stats.events_stored += counts[0];
    s->stats.events_duplicate += counts[1];
    s->stats.events_rejected += counts[2];
    if (events > s->stats.batch_events_max)
        s->stats.batch_events_max = events;
    for (struct sq_req *r = group; r; r = r->next) {
        r->done = 1;
        s->stats.queue_depth--;
    }
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->lock);
}

void *sq_writer_main(void *arg) {
    struct sq *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->head)
            break; /* stopping, and everything queued has been written */
        /* Take requests up to the event bound (always at least one). */
        struct sq_req *group = s->head, *last = s->head;
        size_t events = group->n;
        while (last->next && events + last->next->n <= s->max_events) {
            last = last->next;
            events += last->n;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->lock);
        /* run_group wakes the callers; it must not touch a request after that. */
        run_group(s, group);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
