/* store_sqlite.h — private to the store module: what the SQLite files share. */
#ifndef AM_STORE_SQLITE_H
#define AM_STORE_SQLITE_H

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>

#define SQ_MAX_READERS 16
/* Query shapes: one bit per optional clause (stream, source, from, to, cursor, descending). */
#define SQ_QUERY_SHAPES 64

enum sq_kind {
    SQ_APPEND, SQ_BLOB_ADD, SQ_USER_ADD, SQ_TOKEN_ADD, SQ_TOKEN_REVOKE,
    /* jobs and vectors (store_sqlite_jobs.c) */
    SQ_JOB_CLAIM, SQ_JOB_FINISH, SQ_JOB_RECOVER, SQ_JOB_REEMBED, SQ_JOB_RETRY, SQ_VECTOR_PUT,
    /* imports (store_sqlite_imports.c) */
    SQ_IMPORT_PUT
};

/* One write waiting for, or inside, a group commit. Lives on its caller's stack. */
struct sq_req {
    enum sq_kind kind;
    int64_t user_id;
    struct am_event *evs; /* append */
    size_t n;
    struct am_item_result *res;
    const struct am_blob_info *blob; /* blob_add */
    const char *text;                /* user_add: the name; token_add: the label */
    const uint8_t *hash;             /* token_add: 32 bytes */
    unsigned scopes;                 /* token_add */
    int64_t new_id;                  /* user_add: the new user's id */
    int64_t counts[3];               /* stored, duplicate, rejected: added to stats on commit */
    /* jobs and vectors */
    int job_kind;                    /* claim, retry (-1: all) */
    int64_t now_ns, lease_ns;        /* claim */
    int max_attempts;                /* claim */
    struct am_job *jobs;             /* claim: room for n, filled with new_id of them */
    const struct am_job_outcome *outcomes; /* finish: n */
    const struct am_vector *vecs;    /* vectors_put: n */
    struct am_import_row *import_row; /* import_put */
    am_rc rc;
    int failed; /* rolled back on its own; left out when the transaction is run again */
    int done;   /* set under sq.lock; the caller may return (and free the request) after it */
    struct sq_req *next;
};

/* A read connection with its prepared statements (persistent, reset after each use). */
struct sq_reader {
    sqlite3 *db;
    int busy;
    sqlite3_stmt *query[SQ_QUERY_SHAPES];
    sqlite3_stmt *get_event, *streams, *blob_get, *user_find, *token_lookup, *ping;
};

struct sq {
    char path[600];
    size_t max_events;
    /* writer: only the writer thread touches these after open */
    sqlite3 *wdb;
    sqlite3_stmt *st_begin, *st_commit, *st_rollback, *st_savepoint, *st_rollback_to, *st_release;
    sqlite3_stmt *st_stream_get, *st_stream_add, *st_blob_owned, *st_insert, *st_dup, *st_stats,
        *st_blob_add, *st_user_blob_add, *st_user_add, *st_token_add, *st_token_revoke;
    /* the outbox: jobs and full-text rows written with each new event */
    unsigned job_kinds;
    char embed_model[64];
    sqlite3_stmt *st_fts_insert, *st_job_insert, *st_job_ready, *st_job_expired, *st_job_claim,
        *st_job_dead, *st_job_finish, *st_job_recover, *st_job_retry, *st_job_retry_kind,
        *st_vector_put;
    int jobs_written;                    /* by the group being committed */
    void (*job_notify)(void *arg);       /* set once before jobs flow */
    void *job_notify_arg;
    pthread_t writer;
    int writer_started;
    pthread_mutex_t lock; /* queue, done flags, stopping and stats */
    pthread_cond_t work;  /* the writer waits for requests */
    pthread_cond_t done;  /* appenders wait for their commit */
    struct sq_req *head, *tail;
    int callers; /* threads inside sq_submit: close waits until they have left */
    int stopping;
    struct am_store_stats stats;
    /* readers */
    pthread_mutex_t rlock;
    pthread_cond_t rfree;
    struct sq_reader readers[SQ_MAX_READERS];
    int n_readers;
};

/* SQLite's result code in AM's terms: SQLITE_NOMEM is AM_ENOMEM, the rest AM_EIO. */
am_rc sq_rc(int sqlite_rc);
am_rc sq_migrate(sqlite3 *db);
/* A connection with busy_timeout, foreign keys, and (read-write) WAL + synchronous=FULL. */
am_rc sq_open_conn(const char *path, int readonly, sqlite3 **out);
/* Prepares a statement that lives as long as its connection. */
am_rc sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
/* Queues a write for the writer thread and waits until it is committed (or failed). */
am_rc sq_submit(struct sq *s, struct sq_req *r);
/* The writer thread (store_sqlite_writer.c). */
am_rc sq_writer_prepare(struct sq *s);
void sq_writer_finalize(struct sq *s);
void *sq_writer_main(void *arg);
/* Bucketed count of events received in the last hour (see store_sqlite_writer.c). */
int64_t sq_hour_estimate(int64_t now_ns, int64_t hour_start, int64_t hour_count,
                         int64_t prev_hour_count);
#define SQ_NS_PER_HOUR (3600 * AM_NS_PER_S)
/* Readers (store_sqlite_read.c): the pool, and the read half of the ops. */
void sq_readers_close(struct sq *s);
am_rc sq_query(void *impl, int64_t user_id, const struct am_query *q, struct am_event_list *out);
am_rc sq_get_event(void *impl, int64_t user_id, int64_t id, struct am_event *out);
am_rc sq_streams(void *impl, int64_t user_id, struct am_stream_stat **out, size_t *n);
am_rc sq_blob_get(void *impl, int64_t user_id, const char *sha256, struct am_blob_info *out);
am_rc sq_user_find(void *impl, const char *name, int64_t *user_id);
am_rc sq_token_lookup(void *impl, const uint8_t hash[32], int64_t *user_id, unsigned *scopes,
                      char *user_name, size_t user_name_len);
am_rc sq_ping(void *impl);
struct sq_reader *sq_reader_get(struct sq *s);
void sq_reader_put(struct sq *s, struct sq_reader *r);
/* Jobs, full text and vectors (store_sqlite_jobs.c). */
am_rc sq_jobs_prepare(struct sq *s);
void sq_jobs_finalize(struct sq *s);
/* In an append's savepoint: the event's full-text row and its jobs. */
am_rc sq_outbox_add(struct sq *s, int64_t user_id, const struct am_event *e);
am_rc sq_do_job_request(struct sq *s, struct sq_req *r);
void sq_set_job_notify(void *impl, void (*cb)(void *arg), void *arg);
am_rc sq_job_claim(void *impl, int kind, int64_t now_ns, int64_t lease_ns, int max_attempts,
                   struct am_job *out, size_t max, size_t *n);
am_rc sq_job_finish(void *impl, const struct am_job_outcome *o, size_t n);
am_rc sq_job_recover(void *impl, int64_t *n);
am_rc sq_job_reembed(void *impl, const char *model, int64_t *n);
am_rc sq_job_retry_dead(void *impl, int64_t user_id, int kind, int64_t *n);
am_rc sq_job_counts(void *impl, int64_t user_id, struct am_job_count **out, size_t *n);
am_rc sq_job_list_dead(void *impl, int64_t user_id, size_t limit, struct am_job_info **out,
                       size_t *n);
am_rc sq_job_next_ready(void *impl, int kind, int64_t *ts_ns);
am_rc sq_vectors_put(void *impl, const struct am_vector *v, size_t n);
am_rc sq_users(void *impl, int64_t **ids, size_t *n);
am_rc sq_vector_models(void *impl, int64_t user_id, struct am_vector_model **out, size_t *n);
am_rc sq_event_text(void *impl, int64_t user_id, int64_t event_id, char **text);
am_rc sq_search_text(void *impl, int64_t user_id, const char *query,
                     const struct am_search_filter *f, size_t limit, struct am_hit **out,
                     size_t *n);
am_rc sq_search_vector(void *impl, int64_t user_id, const char *model, const float *q, int dim,
                       const struct am_search_filter *f, size_t limit, struct am_hit **out,
                       size_t *n);
/* Imports (store_sqlite_imports.c). */
am_rc sq_do_import_request(struct sq *s, struct sq_req *r);
am_rc sq_import_put(void *impl, struct am_import_row *row);
am_rc sq_import_list(void *impl, int64_t user_id, size_t limit, struct am_import_row **out,
                     size_t *n);
am_rc sq_import_find_unfinished(void *impl, int64_t user_id, const char *kind, const char *name,
                                const char *fingerprint, struct am_import_row *out);

#endif
