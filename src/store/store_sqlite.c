/* store_sqlite.c — the embedded store: SQLite in WAL mode with synchronous=FULL,
 * one writer thread (store_sqlite_writer.c) and a pool of read connections
 * (store_sqlite_read.c). This file opens and closes it and queues the writes. */
#include "store_sqlite.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- SQLite memory
 * SQLite allocates through am_malloc so the fail-the-Nth tests reach the store too.
 * Each block carries its size in an 8-byte header (xSize needs it; 8 keeps SQLite's
 * required 8-byte alignment). */

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
    if (!p)
        return mem_malloc(n);
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
    static const sqlite3_mem_methods mm = {mem_malloc,  mem_free, mem_realloc,  mem_size,
                                           mem_roundup, mem_init, mem_shutdown, NULL};
    /* Both must come before SQLite initialises; memory statistics would add a global
     * mutex to every allocation. */
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mm) != SQLITE_OK)
        am_warn("store: SQLite was initialised before its allocator could be set");
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

/* ---------------------------------------------------------------- connections */

am_rc sq_rc(int rc) {
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return AM_OK;
    case SQLITE_NOMEM:
        return AM_ENOMEM;
    default:
        return AM_EIO;
    }
}

am_rc sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK) {
        *out = NULL;
        return sq_rc(rc) == AM_OK ? AM_EIO : sq_rc(rc);
    }
    return AM_OK;
}

am_rc sq_open_conn(const char *path, int readonly, sqlite3 **out) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    *out = NULL;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        am_error("store: open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return sq_rc(rc) == AM_OK ? AM_EIO : sq_rc(rc);
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 10000);
    /* synchronous=FULL: with WAL, NORMAL survives a process crash but not power loss,
     * and an ack promises the latter. */
    /* Readers map the file: a vector scan then reads pages in place instead of copying. */
    const char *pragmas = readonly ? "PRAGMA query_only = 1; PRAGMA foreign_keys = ON;"
                                     " PRAGMA mmap_size = 1073741824"
                                   : "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                     " PRAGMA foreign_keys = ON";
    rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        am_error("store: %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return sq_rc(rc);
    }
    *out = db;
    return AM_OK;
}

/* ---------------------------------------------------------------- open and close */

static void sq_free(struct sq *s) {
    sq_writer_finalize(s);
    sq_jobs_finalize(s);
    sqlite3_close(s->wdb);
    sq_readers_close(s);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    pthread_cond_destroy(&s->rfree);
    am_free(s);
}

static am_rc sq_open(const struct am_store_config *cfg, void **impl) {
    *impl = NULL;
    if (!cfg || !cfg->data_dir)
        return AM_EINVAL;
    struct sq *s = am_calloc(1, sizeof *s);
    if (!s)
        return AM_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    pthread_cond_init(&s->rfree, NULL);
    am_rc rc = AM_EINVAL;
    int len = snprintf(s->path, sizeof s->path, "%s/am.db", cfg->data_dir);
    if (len < 0 || (size_t)len >= sizeof s->path)
        goto fail;
    s->max_events = cfg->group_commit_max_events ? cfg->group_commit_max_events : 20000;
    s->job_kinds = cfg->job_kinds;
    snprintf(s->embed_model, sizeof s->embed_model, "%s", cfg->embed_model ? cfg->embed_model : "");
    if ((rc = sq_open_conn(s->path, 0, &s->wdb)) != AM_OK || (rc = sq_migrate(s->wdb)) != AM_OK ||
        (rc = sq_writer_prepare(s)) != AM_OK || (rc = sq_jobs_prepare(s)) != AM_OK)
        goto fail;
    int n = cfg->read_connections > 0 ? cfg->read_connections : 4;
    if (n > SQ_MAX_READERS)
        n = SQ_MAX_READERS;
    for (int i = 0; i < n; i++) {
        if ((rc = sq_open_conn(s->path, 1, &s->readers[i].db)) != AM_OK)
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

/* Pending writes are committed first: the writer leaves only with an empty queue, and
 * their callers have returned before anything is freed. Writes submitted after this
 * started get AM_ECLOSED; none may start after it returned. */
static void sq_close(void *impl) {
    struct sq *s = impl;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer, NULL);
    /* Callers woken by the last commit may not have left sq_submit yet. */
    pthread_mutex_lock(&s->lock);
    while (s->callers > 0)
        pthread_cond_wait(&s->done, &s->lock);
    pthread_mutex_unlock(&s->lock);
    sq_free(s);
}

/* ---------------------------------------------------------------- writes */

am_rc sq_submit(struct sq *s, struct sq_req *r) {
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
    s->callers++;
    pthread_cond_signal(&s->work);
    while (!r->done)
        pthread_cond_wait(&s->done, &s->lock);
    if (--s->callers == 0 && s->stopping)
        pthread_cond_broadcast(&s->done); /* close is waiting for the last of us */
    pthread_mutex_unlock(&s->lock);
    return r->rc;
}

static am_rc sq_append(void *impl, int64_t user_id, struct am_event *evs, size_t n,
                       struct am_item_result *res) {
    struct sq_req r = {.kind = SQ_APPEND, .user_id = user_id, .evs = evs, .n = n, .res = res};
    if (n == 0)
        return AM_OK;
    if (!evs || !res)
        return AM_EINVAL;
    return sq_submit(impl, &r);
}

static am_rc sq_blob_add(void *impl, int64_t user_id, const struct am_blob_info *info) {
    struct sq_req r = {.kind = SQ_BLOB_ADD, .user_id = user_id, .blob = info};
    if (strlen(info->sha256) != AM_BLOB_HEX || !am_is_hex(info->sha256, AM_BLOB_HEX))
        return AM_EINVAL;
    return sq_submit(impl, &r);
}

/* Users and tokens go through the writer like everything else; a second process
 * (the am CLI) has a writer of its own, and busy_timeout orders the two. */
static am_rc sq_user_add(void *impl, const char *name, int64_t *user_id) {
    struct sq_req r = {.kind = SQ_USER_ADD, .text = name};
    if (!name || !name[0])
        return AM_EINVAL;
    am_rc rc = sq_submit(impl, &r);
    if (rc == AM_OK && user_id)
        *user_id = r.new_id;
    return rc;
}

static am_rc sq_token_add(void *impl, int64_t user_id, const uint8_t hash[32], unsigned scopes,
                          const char *label) {
    struct sq_req r = {
        .kind = SQ_TOKEN_ADD, .user_id = user_id, .hash = hash, .scopes = scopes, .text = label};
    return sq_submit(impl, &r);
}

static am_rc sq_token_revoke(void *impl, const uint8_t hash[32]) {
    struct sq_req r = {.kind = SQ_TOKEN_REVOKE, .hash = hash};
    return sq_submit(impl, &r);
}

static void sq_stats(void *impl, struct am_store_stats *out) {
    struct sq *s = impl;
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
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
    .token_revoke = sq_token_revoke,
    .token_lookup = sq_token_lookup,
    .stats = sq_stats,
    .ping = sq_ping,
    .set_job_notify = sq_set_job_notify,
    .job_claim = sq_job_claim,
    .job_finish = sq_job_finish,
    .job_recover = sq_job_recover,
    .job_reembed = sq_job_reembed,
    .job_retry_dead = sq_job_retry_dead,
    .job_counts = sq_job_counts,
    .job_list_dead = sq_job_list_dead,
    .job_next_ready = sq_job_next_ready,
    .vectors_put = sq_vectors_put,
    .vector_models = sq_vector_models,
    .users = sq_users,
    .event_text = sq_event_text,
    .search_text = sq_search_text,
    .search_vector = sq_search_vector,
    .import_put = sq_import_put,
    .import_list = sq_import_list,
    .import_find_unfinished = sq_import_find_unfinished,
};
