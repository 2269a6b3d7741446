/* store_sqlite_jobs.c — the pipeline's side of the SQLite store: the outbox (full-text
 * row and job rows written in the event's own savepoint, so a crash can never keep an
 * event and lose its work), job claims with leases and attempt counts, outcomes,
 * vectors per model, and the two halves of search (FTS5 BM25 and an exact cosine scan).
 * Writes run on the writer thread like every other write; reads use the reader pool. */
#include "store_sqlite.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define JOB_STATEMENTS(X)                                                                          \
    X(st_fts_insert, "INSERT INTO fts(rowid, text) VALUES(?1, ?2)")                                \
    X(st_job_insert, "INSERT OR IGNORE INTO jobs(user_id, event_id, kind, arg, run_after_ns,"      \
                     " created_ns, updated_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?5)")                \
    X(st_job_ready, "SELECT id, user_id, event_id, kind, arg, attempts, created_ns FROM jobs"       \
                    " WHERE state = 0 AND kind = ?1 AND run_after_ns <= ?2"                        \
                    " ORDER BY run_after_ns LIMIT ?3")                                             \
    X(st_job_expired, "SELECT id, user_id, event_id, kind, arg, attempts, created_ns FROM jobs"    \
                      " WHERE state = 1 AND kind = ?1 AND lease_until_ns <= ?2 LIMIT ?3")          \
    X(st_job_claim, "UPDATE jobs SET state = 1, attempts = attempts + 1, lease_until_ns = ?2,"     \
                    " updated_ns = ?3 WHERE id = ?1")                                              \
    X(st_job_dead, "UPDATE jobs SET state = 3, updated_ns = ?2, error = ?3 WHERE id = ?1")         \
    X(st_job_finish, "UPDATE jobs SET state = ?2, run_after_ns = ?3, updated_ns = ?4,"             \
                     " error = ?5 WHERE id = ?1 AND state = 1")                                    \
    X(st_job_recover, "UPDATE jobs SET state = 0, run_after_ns = ?1 WHERE state = 1")              \
    X(st_job_retry, "UPDATE jobs SET state = 0, attempts = 0, run_after_ns = ?2, updated_ns = ?2"  \
                    " WHERE user_id = ?1 AND state = 3")                                           \
    X(st_job_retry_kind, "UPDATE jobs SET state = 0, attempts = 0, run_after_ns = ?2,"             \
                         " updated_ns = ?2 WHERE user_id = ?1 AND kind = ?3 AND state = 3")       \
    X(st_vector_put, "INSERT OR REPLACE INTO vectors(user_id, model, event_id, dim, vec)"         \
                     " VALUES(?1, ?2, ?3, ?4, ?5)")

am_rc sq_jobs_prepare(struct sq *s) {
    am_rc rc;
#define PREPARE(field, sql)                                                                        \
    if ((rc = sq_prepare(s->wdb, sql, &s->field)) != AM_OK)                                        \
        goto fail;
    JOB_STATEMENTS(PREPARE)
#undef PREPARE
    return AM_OK;
fail:
    am_error("store: prepare: %s", sqlite3_errmsg(s->wdb));
    return rc;
}

void sq_jobs_finalize(struct sq *s) {
#define FINALIZE(field, sql)                                                                       \
    sqlite3_finalize(s->field);                                                                    \
    s->field = NULL;
    JOB_STATEMENTS(FINALIZE)
#undef FINALIZE
}

void sq_set_job_notify(void *impl, void (*cb)(void *arg), void *arg) {
    struct sq *s = impl;
    pthread_mutex_lock(&s->lock);
    s->job_notify = cb;
    s->job_notify_arg = arg;
    pthread_mutex_unlock(&s->lock);
}

static int run(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static am_rc job_insert(struct sq *s, int64_t user_id, int64_t event_id, int kind,
                        const char *arg, int64_t now) {
    sqlite3_stmt *st = s->st_job_insert;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, event_id);
    sqlite3_bind_int(st, 3, kind);
    sqlite3_bind_text(st, 4, arg, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    int rc = run(st);
    if (rc != SQLITE_OK)
        return sq_rc(rc);
    if (sqlite3_changes(s->wdb) > 0)
        s->jobs_written = 1;
    return AM_OK;
}

am_rc sq_outbox_add(struct sq *s, int64_t user_id, const struct am_event *e) {
    am_rc rc = AM_OK;
    if (am_stream_searchable(e->stream) && e->payload) {
        struct am_buf text;
        am_buf_init(&text, 1u << 24);
        rc = am_payload_text(e->payload, e->payload_len ? e->payload_len : strlen(e->payload),
                             &text);
        if (rc == AM_EINVAL) /* validated on the way in; not worth failing the event */
            rc = AM_OK;
        if (rc == AM_OK && text.len) {
            sqlite3_bind_int64(s->st_fts_insert, 1, e->id);
            sqlite3_bind_text(s->st_fts_insert, 2, text.data, (int)text.len, SQLITE_STATIC);
            rc = sq_rc(run(s->st_fts_insert));
        }
        am_buf_free(&text);
        if (rc != AM_OK)
            return rc;
    }
    unsigned kinds = am_stream_jobs(e->stream, e->blob[0] != '\0') & s->job_kinds;
    if (!kinds)
        return AM_OK;
    int64_t now = am_now_ns();
    for (int k = 0; k < AM_JOB_KINDS && rc == AM_OK; k++)
        if (kinds & (1u << k))
            rc = job_insert(s, user_id, e->id, k, k == AM_JOB_EMBED ? s->embed_model : "", now);
    return rc;
}

/* ---------------------------------------------------------------- writer requests */

static void row_to_job(sqlite3_stmt *st, struct am_job *j) {
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(st, 0);
    j->user_id = sqlite3_column_int64(st, 1);
    j->event_id = sqlite3_column_int64(st, 2);
    j->kind = sqlite3_column_int(st, 3);
    const unsigned char *a = sqlite3_column_text(st, 4);
    snprintf(j->arg, sizeof j->arg, "%s", a ? (const char *)a : "");
    j->attempts = sqlite3_column_int(st, 5) + 1;
    j->created_ns = sqlite3_column_int64(st, 6);
}

/* Expired leases first (they waited longest), then ready pending jobs. */
static am_rc do_claim(struct sq *s, struct sq_req *r) {
    size_t got = 0;
    int rc = SQLITE_OK;
    sqlite3_stmt *lists[2] = {s->st_job_expired, s->st_job_ready};
    for (int l = 0; l < 2 && got < r->n; l++) {
        sqlite3_stmt *st = lists[l];
        sqlite3_bind_int(st, 1, r->job_kind);
        sqlite3_bind_int64(st, 2, r->now_ns);
        sqlite3_bind_int64(st, 3, (int64_t)(r->n - got));
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            row_to_job(st, &r->jobs[got++]);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sq_rc(rc);
    }
    size_t kept = 0;
    for (size_t i = 0; i < got; i++) {
        struct am_job *j = &r->jobs[i];
        if (j->attempts > r->max_attempts) {
            /* Claimed max times without an outcome: it took the worker down or hung. */
            char why[160];
            snprintf(why, sizeof why,
                     "claimed %d times without finishing (the worker crashed or timed out)",
                     j->attempts - 1);
            sqlite3_stmt *st = s->st_job_dead;
            sqlite3_bind_int64(st, 1, j->id);
            sqlite3_bind_int64(st, 2, r->now_ns);
            sqlite3_bind_text(st, 3, why, -1, SQLITE_TRANSIENT);
            if ((rc = run(st)) != SQLITE_OK)
                return sq_rc(rc);
            continue;
        }
        sqlite3_stmt *st = s->st_job_claim;
        sqlite3_bind_int64(st, 1, j->id);
        sqlite3_bind_int64(st, 2, r->now_ns + r->lease_ns);
        sqlite3_bind_int64(st, 3, r->now_ns);
        if ((rc = run(st)) != SQLITE_OK)
            return sq_rc(rc);
        r->jobs[kept++] = *j;
    }
    r->new_id = (int64_t)kept;
    return AM_OK;
}

static am_rc do_finish(struct sq *s, struct sq_req *r) {
    int64_t now = am_now_ns();
    for (size_t i = 0; i < r->n; i++) {
        const struct am_job_outcome *o = &r->outcomes[i];
        sqlite3_stmt *st = s->st_job_finish;
        sqlite3_bind_int64(st, 1, o->job_id);
        sqlite3_bind_int(st, 2, o->state);
        sqlite3_bind_int64(st, 3, o->state == AM_JOB_PENDING ? o->run_after_ns : 0);
        sqlite3_bind_int64(st, 4, now);
        if (o->error)
            sqlite3_bind_text(st, 5, o->error, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        int rc = run(st);
        if (rc != SQLITE_OK)
            return sq_rc(rc);
        if (o->state == AM_JOB_PENDING)
            s->jobs_written = 1;
    }
    return AM_OK;
}

static am_rc do_reembed(struct sq *s, struct sq_req *r) {
    /* One statement over every user's searchable text streams; rare (a model change). */
    static const char *const sql =
        "INSERT OR IGNORE INTO jobs(user_id, event_id, kind, arg, run_after_ns, created_ns,"
        " updated_ns) SELECT e.user_id, e.id, ?1, ?2, ?3, ?3, ?3 FROM events e"
        " JOIN user_streams us ON us.id = e.stream_id AND us.user_id = e.user_id"
        " WHERE us.name IN (%s) AND NOT EXISTS (SELECT 1 FROM vectors v"
        " WHERE v.user_id = e.user_id AND v.model = ?2 AND v.event_id = e.id)";
    char names[2048] = "", full[3072];
    size_t n_cat = 0, len = 0;
    const struct am_stream_def *cat = am_catalog_all(&n_cat);
    for (size_t i = 0; i < n_cat; i++) {
        if (!(am_stream_jobs(cat[i].name, 0) & (1u << AM_JOB_EMBED)))
            continue;
        len += (size_t)snprintf(names + len, sizeof names - len, "%s'%s'", len ? "," : "",
                                cat[i].name);
    }
    snprintf(full, sizeof full, sql, names);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, full, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, AM_JOB_EMBED);
        sqlite3_bind_text(st, 2, r->text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, am_now_ns());
        rc = run(st);
        r->new_id = sqlite3_changes(s->wdb);
        if (r->new_id > 0)
            s->jobs_written = 1;
    }
    sqlite3_finalize(st);
    return sq_rc(rc);
}

am_rc sq_do_job_request(struct sq *s, struct sq_req *r) {
    int rc;
    sqlite3_stmt *st;
    switch (r->kind) {
    case SQ_JOB_CLAIM:
        return do_claim(s, r);
    case SQ_JOB_FINISH:
        return do_finish(s, r);
    case SQ_JOB_RECOVER:
        sqlite3_bind_int64(s->st_job_recover, 1, am_now_ns());
        if ((rc = run(s->st_job_recover)) != SQLITE_OK)
            return sq_rc(rc);
        r->new_id = sqlite3_changes(s->wdb);
        s->jobs_written |= r->new_id > 0;
        return AM_OK;
    case SQ_JOB_REEMBED:
        return do_reembed(s, r);
    case SQ_JOB_RETRY:
        st = r->job_kind < 0 ? s->st_job_retry : s->st_job_retry_kind;
        sqlite3_bind_int64(st, 1, r->user_id);
        sqlite3_bind_int64(st, 2, am_now_ns());
        if (r->job_kind >= 0)
            sqlite3_bind_int(st, 3, r->job_kind);
        if ((rc = run(st)) != SQLITE_OK)
            return sq_rc(rc);
        r->new_id = sqlite3_changes(s->wdb);
        s->jobs_written |= r->new_id > 0;
        return AM_OK;
    case SQ_VECTOR_PUT:
        st = s->st_vector_put;
        for (size_t i = 0; i < r->n; i++) {
            const struct am_vector *v = &r->vecs[i];
            sqlite3_bind_int64(st, 1, v->user_id);
            sqlite3_bind_text(st, 2, v->model, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, v->event_id);
            sqlite3_bind_int(st, 4, v->dim);
            sqlite3_bind_blob(st, 5, v->v, v->dim * (int)sizeof(float), SQLITE_STATIC);
            if ((rc = run(st)) != SQLITE_OK)
                return sq_rc(rc);
        }
        return AM_OK;
    default:
        return AM_EINVAL;
    }
}

/* ---------------------------------------------------------------- writer entry points */

am_rc sq_job_claim(void *impl, int kind, int64_t now_ns, int64_t lease_ns, int max_attempts,
                   struct am_job *out, size_t max, size_t *n) {
    struct sq_req r = {.kind = SQ_JOB_CLAIM, .job_kind = kind, .now_ns = now_ns,
                       .lease_ns = lease_ns, .max_attempts = max_attempts, .jobs = out, .n = max};
    *n = 0;
    if (kind < 0 || kind >= AM_JOB_KINDS || max == 0)
        return AM_EINVAL;
    am_rc rc = sq_submit(impl, &r);
    if (rc == AM_OK)
        *n = (size_t)r.new_id;
    return rc;
}

am_rc sq_job_finish(void *impl, const struct am_job_outcome *o, size_t n) {
    struct sq_req r = {.kind = SQ_JOB_FINISH, .outcomes = o, .n = n};
    return n ? sq_submit(impl, &r) : AM_OK;
}

am_rc sq_job_recover(void *impl, int64_t *n) {
    struct sq_req r = {.kind = SQ_JOB_RECOVER};
    am_rc rc = sq_submit(impl, &r);
    if (n)
        *n = rc == AM_OK ? r.new_id : 0;
    return rc;
}

am_rc sq_job_reembed(void *impl, const char *model, int64_t *n) {
    struct sq_req r = {.kind = SQ_JOB_REEMBED, .text = model};
    am_rc rc = sq_submit(impl, &r);
    if (n)
        *n = rc == AM_OK ? r.new_id : 0;
    return rc;
}

am_rc sq_job_retry_dead(void *impl, int64_t user_id, int kind, int64_t *n) {
    struct sq_req r = {.kind = SQ_JOB_RETRY, .user_id = user_id, .job_kind = kind};
    am_rc rc = sq_submit(impl, &r);
    if (n)
        *n = rc == AM_OK ? r.new_id : 0;
    return rc;
}

am_rc sq_vectors_put(void *impl, const struct am_vector *v, size_t n) {
    struct sq_req r = {.kind = SQ_VECTOR_PUT, .vecs = v, .n = n};
    for (size_t i = 0; i < n; i++)
        if (v[i].dim <= 0 || v[i].dim > 65536 || !v[i].model || !*v[i].model || !v[i].v)
            return AM_EINVAL;
    return n ? sq_submit(impl, &r) : AM_OK;
}

/* ---------------------------------------------------------------- reads */

/* Runs a one-off statement on a pooled reader. */
static am_rc prepare_read(struct sq_reader *r, const char *sql, sqlite3_stmt **st) {
    int rc = sqlite3_prepare_v2(r->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        am_error("store: %s", sqlite3_errmsg(r->db));
        *st = NULL;
        return sq_rc(rc) == AM_OK ? AM_EIO : sq_rc(rc);
    }
    return AM_OK;
}

am_rc sq_job_counts(void *impl, int64_t user_id, struct am_job_count **out, size_t *n) {
    struct sq *s = impl;
    *out = NULL;
    *n = 0;
    /* Everyone's counts skip done jobs (they only grow) so a metrics scrape stays cheap;
     * one user's include them. */
    const char *sql = user_id
        ? "SELECT kind, state, count(*), min(CASE WHEN state = 0 THEN created_ns END)"
          " FROM jobs WHERE user_id = ?1 GROUP BY kind, state"
        : "SELECT kind, state, count(*), min(CASE WHEN state = 0 THEN created_ns END)"
          " FROM jobs WHERE state IN (0, 1, 3) GROUP BY kind, state";
    struct am_job_count *c = am_calloc(AM_JOB_KINDS * AM_JOB_STATES, sizeof *c);
    if (!c)
        return AM_ENOMEM;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, sql, &st);
    int step = SQLITE_DONE;
    if (rc == AM_OK) {
        if (user_id)
            sqlite3_bind_int64(st, 1, user_id);
        while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < AM_JOB_KINDS * AM_JOB_STATES) {
            struct am_job_count *x = &c[(*n)++];
            x->kind = sqlite3_column_int(st, 0);
            x->state = sqlite3_column_int(st, 1);
            x->count = sqlite3_column_int64(st, 2);
            x->oldest_created_ns = sqlite3_column_int64(st, 3);
        }
        if (step != SQLITE_DONE && step != SQLITE_ROW)
            rc = sq_rc(step);
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    if (rc != AM_OK) {
        am_free(c);
        *n = 0;
        return rc;
    }
    *out = c;
    return AM_OK;
}

am_rc sq_job_list_dead(void *impl, int64_t user_id, size_t limit, struct am_job_info **out,
                       size_t *n) {
    struct sq *s = impl;
    *out = NULL;
    *n = 0;
    if (limit == 0 || limit > 1000)
        limit = 1000;
    struct am_job_info *a = am_calloc(limit, sizeof *a);
    if (!a)
        return AM_ENOMEM;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, "SELECT id, event_id, kind, state, attempts, updated_ns, error"
                               " FROM jobs WHERE user_id = ?1 AND state = 3"
                               " ORDER BY updated_ns DESC LIMIT ?2", &st);
    if (rc == AM_OK) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, (int64_t)limit);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            struct am_job_info *j = &a[(*n)++];
            j->id = sqlite3_column_int64(st, 0);
            j->event_id = sqlite3_column_int64(st, 1);
            j->kind = sqlite3_column_int(st, 2);
            j->state = sqlite3_column_int(st, 3);
            j->attempts = sqlite3_column_int(st, 4);
            j->updated_ns = sqlite3_column_int64(st, 5);
            const unsigned char *e = sqlite3_column_text(st, 6);
            snprintf(j->error, sizeof j->error, "%s", e ? (const char *)e : "");
            am_utf8_clean(j->error);
        }
        if (step != SQLITE_DONE)
            rc = sq_rc(step);
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    if (rc != AM_OK) {
        am_free(a);
        *n = 0;
        return rc;
    }
    *out = a;
    return AM_OK;
}

am_rc sq_job_next_ready(void *impl, int kind, int64_t *ts_ns) {
    struct sq *s = impl;
    *ts_ns = AM_TS_NONE;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, "SELECT min(t) FROM (SELECT min(run_after_ns) AS t FROM jobs"
                               " WHERE state = 0 AND kind = ?1 UNION ALL"
                               " SELECT min(lease_until_ns) FROM jobs"
                               " WHERE state = 1 AND kind = ?1)", &st);
    if (rc == AM_OK) {
        sqlite3_bind_int(st, 1, kind);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            *ts_ns = sqlite3_column_int64(st, 0);
        else if (step != SQLITE_ROW && step != SQLITE_DONE)
            rc = sq_rc(step);
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    return rc;
}

am_rc sq_users(void *impl, int64_t **ids, size_t *n) {
    struct sq *s = impl;
    size_t cap = 16;
    *ids = NULL;
    *n = 0;
    int64_t *a = am_malloc(cap * sizeof *a);
    if (!a)
        return AM_ENOMEM;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, "SELECT id FROM users ORDER BY id", &st);
    int step = SQLITE_DONE;
    while (rc == AM_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            int64_t *b = am_realloc(a, 2 * cap * sizeof *a);
            if (!b) {
                rc = AM_ENOMEM;
                break;
            }
            a = b;
            cap *= 2;
        }
        a[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (rc == AM_OK && step != SQLITE_DONE)
        rc = sq_rc(step);
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    if (rc != AM_OK) {
        am_free(a);
        *n = 0;
        return rc;
    }
    *ids = a;
    return AM_OK;
}

am_rc sq_vector_models(void *impl, int64_t user_id, struct am_vector_model **out, size_t *n) {
    struct sq *s = impl;
    enum { MAX_MODELS = 16 };
    *out = NULL;
    *n = 0;
    struct am_vector_model *m = am_calloc(MAX_MODELS, sizeof *m);
    if (!m)
        return AM_ENOMEM;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, "SELECT model, dim, count(*) AS n FROM vectors WHERE user_id = ?1"
                               " GROUP BY model, dim ORDER BY n DESC", &st);
    if (rc == AM_OK) {
        sqlite3_bind_int64(st, 1, user_id);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < MAX_MODELS) {
            const unsigned char *name = sqlite3_column_text(st, 0);
            snprintf(m[*n].model, sizeof m[*n].model, "%s", name ? (const char *)name : "");
            m[*n].dim = sqlite3_column_int(st, 1);
            m[*n].count = sqlite3_column_int64(st, 2);
            (*n)++;
        }
        if (step != SQLITE_DONE && step != SQLITE_ROW)
            rc = sq_rc(step);
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    if (rc != AM_OK) {
        am_free(m);
        *n = 0;
        return rc;
    }
    *out = m;
    return AM_OK;
}

am_rc sq_event_text(void *impl, int64_t user_id, int64_t event_id, char **text) {
    struct sq *s = impl;
    *text = NULL;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, "SELECT f.text FROM fts f JOIN events e ON e.id = f.rowid"
                               " WHERE f.rowid = ?2 AND e.user_id = ?1", &st);
    if (rc == AM_OK) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, event_id);
        int step = sqlite3_step(st);
        const unsigned char *t = step == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            rc = sq_rc(step);
        else if (!(*text = am_strdup(t ? (const char *)t : "")))
            rc = AM_ENOMEM;
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    return rc;
}

/* The WHERE clauses the filter adds on events e, with parameters from ?10 on. */
static void filter_sql(const struct am_search_filter *f, char *sql, size_t len) {
    size_t o = 0;
    sql[0] = '\0';
    if (!f)
        return;
    if (f->n_streams) {
        o += (size_t)snprintf(sql + o, len - o, " AND e.stream_id IN (SELECT id FROM"
                                                " user_streams WHERE user_id = ?1 AND name IN (");
        for (size_t i = 0; i < f->n_streams && o < len; i++)
            o += (size_t)snprintf(sql + o, len - o, "%s?%zu", i ? "," : "", 20 + i);
        o += (size_t)snprintf(sql + o, len - o, "))");
    }
    if (f->source && o < len)
        o += (size_t)snprintf(sql + o, len - o, " AND e.source = ?10");
    if (f->from_ns != AM_TS_NONE && o < len)
        o += (size_t)snprintf(sql + o, len - o, " AND e.ts_ns >= ?11");
    if (f->to_ns != AM_TS_NONE && o < len)
        snprintf(sql + o, len - o, " AND e.ts_ns < ?12");
}

static void filter_bind(sqlite3_stmt *st, const struct am_search_filter *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n_streams; i++)
        sqlite3_bind_text(st, (int)(20 + i), f->streams[i], -1, SQLITE_STATIC);
    if (f->source)
        sqlite3_bind_text(st, 10, f->source, -1, SQLITE_STATIC);
    if (f->from_ns != AM_TS_NONE)
        sqlite3_bind_int64(st, 11, f->from_ns);
    if (f->to_ns != AM_TS_NONE)
        sqlite3_bind_int64(st, 12, f->to_ns);
}

#define MAX_FILTER_STREAMS 64

am_rc sq_search_text(void *impl, int64_t user_id, const char *query,
                     const struct am_search_filter *f, size_t limit, struct am_hit **out,
                     size_t *n) {
    struct sq *s = impl;
    char where[2048], sql[3072];
    *out = NULL;
    *n = 0;
    if (f && f->n_streams > MAX_FILTER_STREAMS)
        return AM_ELIMIT;
    if (limit == 0 || limit > 1000)
        limit = 1000;
    filter_sql(f, where, sizeof where);
    snprintf(sql, sizeof sql,
             "SELECT f.rowid, bm25(fts), snippet(fts, 0, char(1), char(2), '…', 16)"
             " FROM fts f JOIN events e ON e.id = f.rowid"
             " WHERE fts MATCH ?2 AND e.user_id = ?1%s ORDER BY bm25(fts) LIMIT ?3", where);
    struct am_hit *hits = am_calloc(limit, sizeof *hits);
    if (!hits)
        return AM_ENOMEM;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, sql, &st);
    if (rc == AM_OK) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_text(st, 2, query, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)limit);
        filter_bind(st, f);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
            struct am_hit *h = &hits[(*n)++];
            h->event_id = sqlite3_column_int64(st, 0);
            h->score = -sqlite3_column_double(st, 1);
            const unsigned char *sn = sqlite3_column_text(st, 2);
            snprintf(h->snippet, sizeof h->snippet, "%s", sn ? (const char *)sn : "");
            am_utf8_clean(h->snippet);
        }
        /* A query FTS5 cannot parse is the caller's mistake, not a database failure. */
        if (step == SQLITE_ERROR)
            rc = AM_EINVAL;
        else if (step != SQLITE_DONE && step != SQLITE_ROW)
            rc = sq_rc(step);
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    if (rc != AM_OK) {
        am_free(hits);
        *n = 0;
        return rc;
    }
    *out = hits;
    return AM_OK;
}

/* Keeps the best `limit` hits in a min-heap on score. */
static void heap_push(struct am_hit *h, size_t *n, size_t limit, int64_t id, double score) {
    if (*n < limit) {
        size_t i = (*n)++;
        while (i > 0 && h[(i - 1) / 2].score > score) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i].event_id = id;
        h[i].score = score;
        h[i].snippet[0] = '\0';
        return;
    }
    if (score <= h[0].score)
        return;
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        double ms = score;
        if (l < *n && h[l].score < ms) {
            m = l;
            ms = h[l].score;
        }
        if (l + 1 < *n && h[l + 1].score < ms)
            m = l + 1;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    h[i].event_id = id;
    h[i].score = score;
    h[i].snippet[0] = '\0';
}

static int by_score_desc(const void *a, const void *b) {
    double x = ((const struct am_hit *)a)->score, y = ((const struct am_hit *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

am_rc sq_search_vector(void *impl, int64_t user_id, const char *model, const float *q, int dim,
                       const struct am_search_filter *f, size_t limit, struct am_hit **out,
                       size_t *n) {
    struct sq *s = impl;
    char where[2048], sql[3072];
    *out = NULL;
    *n = 0;
    if (f && f->n_streams > MAX_FILTER_STREAMS)
        return AM_ELIMIT;
    if (limit == 0 || limit > 1000)
        limit = 1000;
    filter_sql(f, where, sizeof where);
    int filtered = where[0] != '\0';
    snprintf(sql, sizeof sql,
             filtered ? "SELECT v.event_id, v.vec FROM vectors v JOIN events e ON e.id = v.event_id"
                        " WHERE v.user_id = ?1 AND v.model = ?2 AND v.dim = ?3"
                        " AND e.user_id = ?1%s"
                      : "SELECT v.event_id, v.vec FROM vectors v"
                        " WHERE v.user_id = ?1 AND v.model = ?2 AND v.dim = ?3%s",
             where);
    double qn = 0;
    for (int i = 0; i < dim; i++)
        qn += (double)q[i] * q[i];
    qn = sqrt(qn);
    struct am_hit *hits = am_calloc(limit, sizeof *hits);
    if (!hits)
        return AM_ENOMEM;
    struct sq_reader *r = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    am_rc rc = prepare_read(r, sql, &st);
    if (rc == AM_OK) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, dim);
        filter_bind(st, f);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const float *v = sqlite3_column_blob(st, 1);
            if (!v || sqlite3_column_bytes(st, 1) != dim * (int)sizeof(float))
                continue;
            /* Stored vectors are unit length (process.c normalises what servers send), so
             * the cosine is the dot product over the query's norm; four partial sums let
             * the compiler keep them in vector registers. */
            float acc[4] = {0, 0, 0, 0};
            int i = 0;
            for (; i + 4 <= dim; i += 4)
                for (int k = 0; k < 4; k++)
                    acc[k] += q[i + k] * v[i + k];
            for (; i < dim; i++)
                acc[0] += q[i] * v[i];
            double cos = qn > 0 ? (double)(acc[0] + acc[1] + acc[2] + acc[3]) / qn : 0;
            heap_push(hits, n, limit, sqlite3_column_int64(st, 0), cos);
        }
        if (step != SQLITE_DONE)
            rc = sq_rc(step);
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    if (rc != AM_OK) {
        am_free(hits);
        *n = 0;
        return rc;
    }
    qsort(hits, *n, sizeof *hits, by_score_desc);
    *out = hits;
    return AM_OK;
}
