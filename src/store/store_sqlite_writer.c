/* store_sqlite_writer.c — the one writer thread: takes every queued request, runs
 * them in one transaction (a savepoint each, so one failure rolls back only its own
 * request), commits with synchronous=FULL, then wakes all their callers together. */
#include "store_sqlite.h"

#include <stdio.h>
#include <string.h>

/* Every statement the writer runs, prepared once at open. Transaction control is
 * prepared too, so rolling back never needs memory the failure may have used up. */
#define WRITER_STATEMENTS(X)                                                                       \
    X(st_begin, "BEGIN IMMEDIATE")                                                                 \
    X(st_commit, "COMMIT")                                                                         \
    X(st_rollback, "ROLLBACK")                                                                     \
    X(st_savepoint, "SAVEPOINT req")                                                               \
    X(st_rollback_to, "ROLLBACK TO req")                                                           \
    X(st_release, "RELEASE req")                                                                   \
    X(st_stream_get, "SELECT id FROM user_streams WHERE user_id = ?1 AND name = ?2")               \
    X(st_stream_add, "INSERT INTO user_streams(user_id, name) VALUES(?1, ?2)")                     \
    X(st_blob_owned, "SELECT 1 FROM user_blobs WHERE user_id = ?1 AND sha256 = ?2")                \
    X(st_insert,                                                                                   \
      "INSERT INTO events(user_id, stream_id, source, ts_ns, ts_end_ns, payload, blob, key,"       \
      " trace, received_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"                       \
      " ON CONFLICT(user_id, key) DO NOTHING")                                                     \
    X(st_dup, "SELECT id FROM events WHERE user_id = ?1 AND key = ?2")                             \
    /* SET expressions all see the old row, so the hour roll-over reads naturally; a clock         \
     * that stepped back counts into the current bucket. */                                        \
    X(st_stats, "UPDATE user_streams SET count = count + ?2,"                                      \
                " first_ts_ns = min(coalesce(first_ts_ns, ?3), ?3),"                               \
                " last_ts_ns = max(coalesce(last_ts_ns, ?4), ?4),"                                 \
                " last_received_ns = max(coalesce(last_received_ns, ?5), ?5),"                     \
                " prev_hour_count = CASE WHEN hour_start >= ?6 THEN prev_hour_count"               \
                "   WHEN hour_start = ?6 - 1 THEN hour_count ELSE 0 END,"                          \
                " hour_count = CASE WHEN hour_start >= ?6 THEN hour_count + ?2 ELSE ?2 END,"       \
                " hour_start = max(hour_start, ?6) WHERE id = ?1 AND user_id = ?7")                \
    X(st_blob_add, "INSERT OR IGNORE INTO blobs(sha256, size, mime, created_ns)"                   \
                   " VALUES(?1, ?2, ?3, ?4)")                                                      \
    X(st_user_blob_add, "INSERT OR IGNORE INTO user_blobs(user_id, sha256, created_ns)"            \
                        " VALUES(?1, ?2, ?3)")                                                     \
    X(st_user_add, "INSERT INTO users(name, created_ns) VALUES(?1, ?2)")                           \
    X(st_token_add, "INSERT INTO tokens(user_id, hash, scopes, label, created_ns)"                 \
                    " VALUES(?1, ?2, ?3, ?4, ?5)")                                                 \
    X(st_token_revoke, "UPDATE tokens SET revoked_ns = ?2 WHERE hash = ?1 AND revoked_ns IS NULL")

am_rc sq_writer_prepare(struct sq *s) {
    am_rc rc;
#define PREPARE(field, sql)                                                                        \
    if ((rc = sq_prepare(s->wdb, sql, &s->field)) != AM_OK)                                        \
        goto fail;
    WRITER_STATEMENTS(PREPARE)
#undef PREPARE
    return AM_OK;
fail:
    am_error("store: prepare: %s", sqlite3_errmsg(s->wdb));
    return rc;
}

void sq_writer_finalize(struct sq *s) {
#define FINALIZE(field, sql)                                                                       \
    sqlite3_finalize(s->field);                                                                    \
    s->field = NULL;
    WRITER_STATEMENTS(FINALIZE)
#undef FINALIZE
}

/* The recent rate without an index on received time: events are counted into clock-hour
 * buckets as they are stored, and the hour before now is this hour's bucket plus the
 * share of the previous hour's bucket that still lies inside the window (the sliding
 * window estimate; exact when events arrive evenly). */
int64_t sq_hour_estimate(int64_t now_ns, int64_t hour_start, int64_t hour_count,
                         int64_t prev_hour_count) {
    int64_t hour = now_ns / SQ_NS_PER_HOUR;
    double left = 1.0 - (double)(now_ns % SQ_NS_PER_HOUR) / (double)SQ_NS_PER_HOUR;
    if (hour_start >= hour)
        return hour_count + (int64_t)((double)prev_hour_count * left + 0.5);
    if (hour_start == hour - 1)
        return (int64_t)((double)hour_count * left + 0.5);
    return 0;
}

/* Runs a statement without rows to keep to the end; SQLITE_OK or the error. */
static int run(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Per-request stream statistics, written once per stream before the savepoint ends. */
struct acc {
    int64_t stream_id, count, min_ts, max_ts, last_received;
};

static am_rc flush_stats(struct sq *s, int64_t user_id, const struct acc *a, size_t n) {
    int64_t hour = am_now_ns() / SQ_NS_PER_HOUR;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = s->st_stats;
        sqlite3_bind_int64(st, 1, a[i].stream_id);
        sqlite3_bind_int64(st, 2, a[i].count);
        sqlite3_bind_int64(st, 3, a[i].min_ts);
        sqlite3_bind_int64(st, 4, a[i].max_ts);
        sqlite3_bind_int64(st, 5, a[i].last_received);
        sqlite3_bind_int64(st, 6, hour);
        sqlite3_bind_int64(st, 7, user_id);
        int rc = run(st);
        if (rc != SQLITE_OK)
            return sq_rc(rc);
    }
    return AM_OK;
}

/* The user's id for a stream name, adding the row on first use. */
static am_rc stream_id(struct sq *s, int64_t user_id, const char *name, int64_t *id) {
    sqlite3_stmt *st = s->st_stream_get;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return AM_OK;
    if (rc != SQLITE_DONE)
        return sq_rc(rc);
    st = s->st_stream_add;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if ((rc = run(st)) != SQLITE_OK)
        return sq_rc(rc);
    *id = sqlite3_last_insert_rowid(s->wdb);
    return AM_OK;
}

/* 1 when the user owns the blob, 0 when not, -rc on a database error. */
static int blob_owned(struct sq *s, int64_t user_id, const char *sha256) {
    sqlite3_stmt *st = s->st_blob_owned;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : -rc;
}

/* The id of the row already holding (user, key). */
static am_rc original_id(struct sq *s, int64_t user_id, const char *key, int64_t *id) {
    sqlite3_stmt *st = s->st_dup;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return AM_OK;
    return rc == SQLITE_DONE ? AM_EIO : sq_rc(rc); /* a conflict without a row: corrupt */
}

static int insert_event(struct sq *s, int64_t user_id, int64_t sid, const struct am_event *e) {
    sqlite3_stmt *st = s->st_insert;
    sqlite3_bind_int64(st, 1, user_id);
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
    return run(st);
}

static am_rc do_append(struct sq *s, struct sq_req *r) {
    struct acc accs[16];
    size_t n_acc = 0;
    const char *sid_name = NULL; /* events of one request mostly share a stream */
    int64_t sid = 0;
    am_rc rc;
    for (size_t i = 0; i < r->n; i++) {
        struct am_event *e = &r->evs[i];
        struct am_item_result *res = &r->res[i];
        memset(res, 0, sizeof *res);
        if (e->received_ns == 0)
            e->received_ns = am_now_ns();
        if (e->blob[0]) {
            int owned = blob_owned(s, r->user_id, e->blob);
            if (owned < 0)
                return sq_rc(-owned);
            if (!owned) {
                res->status = AM_ITEM_REJECTED;
                snprintf(res->reason, sizeof res->reason,
                         "blob: unknown blob (upload it to /v1/blobs first)");
                r->counts[2]++;
                continue;
            }
        }
        if (!sid_name || strcmp(sid_name, e->stream) != 0) {
            if ((rc = stream_id(s, r->user_id, e->stream, &sid)) != AM_OK)
                return rc;
            sid_name = e->stream;
        }
        int step = insert_event(s, r->user_id, sid, e);
        if (step != SQLITE_OK)
            return sq_rc(step);
        if (sqlite3_changes(s->wdb) == 0) {
            res->status = AM_ITEM_DUPLICATE;
            if ((rc = original_id(s, r->user_id, e->key, &res->id)) != AM_OK)
                return rc;
            r->counts[1]++;
            continue;
        }
        res->status = AM_ITEM_STORED;
        res->id = e->id = sqlite3_last_insert_rowid(s->wdb);
        r->counts[0]++;
        if ((rc = sq_outbox_add(s, r->user_id, e)) != AM_OK)
            return rc;
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
        struct acc *a = &accs[k];
        a->count++;
        a->min_ts = e->ts_ns < a->min_ts ? e->ts_ns : a->min_ts;
        a->max_ts = e->ts_ns > a->max_ts ? e->ts_ns : a->max_ts;
        a->last_received = e->received_ns > a->last_received ? e->received_ns : a->last_received;
    }
    return flush_stats(s, r->user_id, accs, n_acc);
}

static am_rc do_blob(struct sq *s, struct sq_req *r) {
    const struct am_blob_info *b = r->blob;
    sqlite3_stmt *st = s->st_blob_add;
    sqlite3_bind_text(st, 1, b->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->size);
    sqlite3_bind_text(st, 3, b->mime, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b->created_ns);
    int rc = run(st);
    if (rc != SQLITE_OK)
        return sq_rc(rc);
    st = s->st_user_blob_add;
    sqlite3_bind_int64(st, 1, r->user_id);
    sqlite3_bind_text(st, 2, b->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, b->created_ns);
    return sq_rc(run(st));
}

/* A constraint in the words of the caller: a name or token that exists, a user that does not. */
static am_rc constraint_rc(int rc) {
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return AM_ENOTFOUND;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return AM_ECONFLICT;
    return sq_rc(rc);
}

static am_rc do_user_add(struct sq *s, struct sq_req *r) {
    sqlite3_stmt *st = s->st_user_add;
    sqlite3_bind_text(st, 1, r->text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, am_now_ns());
    int rc = run(st);
    if (rc != SQLITE_OK)
        return constraint_rc(rc);
    r->new_id = sqlite3_last_insert_rowid(s->wdb);
    return AM_OK;
}

static am_rc do_token_add(struct sq *s, struct sq_req *r) {
    sqlite3_stmt *st = s->st_token_add;
    sqlite3_bind_int64(st, 1, r->user_id);
    sqlite3_bind_blob(st, 2, r->hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)r->scopes);
    sqlite3_bind_text(st, 4, r->text ? r->text : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, am_now_ns());
    return constraint_rc(run(st));
}

static am_rc do_token_revoke(struct sq *s, struct sq_req *r) {
    sqlite3_stmt *st = s->st_token_revoke;
    sqlite3_bind_blob(st, 1, r->hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, am_now_ns());
    int rc = run(st);
    if (rc != SQLITE_OK)
        return constraint_rc(rc);
    return sqlite3_changes(s->wdb) == 1 ? AM_OK : AM_ENOTFOUND;
}

static am_rc do_request(struct sq *s, struct sq_req *r) {
    switch (r->kind) {
    case SQ_APPEND:
        return do_append(s, r);
    case SQ_BLOB_ADD:
        return do_blob(s, r);
    case SQ_USER_ADD:
        return do_user_add(s, r);
    case SQ_TOKEN_ADD:
        return do_token_add(s, r);
    case SQ_TOKEN_REVOKE:
        return do_token_revoke(s, r);
    case SQ_IMPORT_PUT:
        return sq_do_import_request(s, r);
    default:
        return sq_do_job_request(s, r);
    }
    return AM_EINVAL;
}

/* Forgets what a request wrote: its rows are gone with its savepoint or transaction. */
static void undo_results(struct sq_req *r) {
    r->counts[0] = r->counts[1] = r->counts[2] = 0;
    r->new_id = 0;
    if (r->kind != SQ_APPEND)
        return;
    for (size_t i = 0; i < r->n; i++) {
        r->evs[i].id = 0;
        memset(&r->res[i], 0, sizeof r->res[i]);
        r->res[i].status = AM_ITEM_REJECTED;
        snprintf(r->res[i].reason, sizeof r->res[i].reason, "store: the write failed");
    }
}

/* One transaction over the group's requests that have not failed. AM_OK when it
 * committed. Otherwise nothing of it is kept, and *lost names the request during
 * which the transaction itself was lost (NULL when BEGIN or COMMIT failed). */
static am_rc try_group(struct sq *s, struct sq_req *group, struct sq_req **lost) {
    am_rc rc = AM_OK;
    int step;
    *lost = NULL;
    if (!sqlite3_get_autocommit(s->wdb))
        run(s->st_rollback); /* left open by an earlier failure that could not roll back */
    if ((step = run(s->st_begin)) != SQLITE_OK) {
        rc = sq_rc(step);
        goto fail;
    }
    for (struct sq_req *r = group; r; r = r->next) {
        if (r->failed)
            continue;
        r->counts[0] = r->counts[1] = r->counts[2] = 0;
        step = run(s->st_savepoint);
        rc = step != SQLITE_OK ? sq_rc(step) : do_request(s, r);
        if (rc == AM_OK && (step = run(s->st_release)) == SQLITE_OK)
            continue;
        if (rc == AM_OK)
            rc = sq_rc(step);
        if (rc != AM_ECONFLICT && rc != AM_ENOTFOUND)
            am_error("store: a write for user %lld failed: %s", (long long)r->user_id,
                     sqlite3_errmsg(s->wdb));
        /* SQLite may have rolled back the whole transaction (it may on SQLITE_FULL,
         * SQLITE_IOERR or SQLITE_NOMEM); then the others must run again. */
        if (step == SQLITE_OK && run(s->st_rollback_to) == SQLITE_OK &&
            run(s->st_release) == SQLITE_OK && !sqlite3_get_autocommit(s->wdb)) {
            r->failed = 1;
            r->rc = rc;
            undo_results(r);
            continue;
        }
        *lost = r;
        goto fail;
    }
    if ((step = run(s->st_commit)) == SQLITE_OK)
        return AM_OK;
    rc = sq_rc(step);
    am_error("store: commit failed: %s", sqlite3_errmsg(s->wdb));
fail:
    if (!sqlite3_get_autocommit(s->wdb))
        run(s->st_rollback);
    return rc != AM_OK ? rc : AM_EIO;
}

static void run_group(struct sq *s, struct sq_req *group) {
    int64_t t0 = am_mono_ns();
    struct sq_req *lost = NULL;
    am_rc rc;
    for (struct sq_req *r = group; r; r = r->next)
        r->rc = AM_OK;
    s->jobs_written = 0;
    /* Each round either commits, fails everyone (BEGIN or COMMIT failed), or drops the
     * one request during which the transaction was lost: at most n + 1 rounds. */
    while ((rc = try_group(s, group, &lost)) != AM_OK && lost) {
        lost->failed = 1;
        lost->rc = rc;
        undo_results(lost);
    }
    int64_t counts[3] = {0, 0, 0}, events = 0;
    for (struct sq_req *r = group; r; r = r->next) {
        if (r->failed)
            continue;
        if (rc != AM_OK) {
            r->rc = rc;
            undo_results(r);
            continue;
        }
        events += (int64_t)r->n;
        for (int k = 0; k < 3; k++)
            counts[k] += r->counts[k];
    }
    pthread_mutex_lock(&s->lock);
    if (rc == AM_OK) {
        s->stats.commits++;
        s->stats.commit_ns_total += am_mono_ns() - t0;
        s->stats.events_stored += counts[0];
        s->stats.events_duplicate += counts[1];
        s->stats.events_rejected += counts[2];
        if (events > s->stats.batch_events_max)
            s->stats.batch_events_max = events;
    }
    for (struct sq_req *r = group; r; r = r->next)
        r->done = 1;
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->lock);
    /* Workers learn of new jobs only once they are committed and can be claimed. */
    if (rc == AM_OK && s->jobs_written && s->job_notify)
        s->job_notify(s->job_notify_arg);
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
        s->stats.queue_depth--;
        while (last->next && events + last->next->n <= s->max_events) {
            last = last->next;
            events += last->n;
            s->stats.queue_depth--;
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
