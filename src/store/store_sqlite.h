/* store_sqlite.h — private to the store module: what the SQLite files share. */
#ifndef AM_STORE_SQLITE_H
#define AM_STORE_SQLITE_H

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>

#define SQ_MAX_READERS 16

struct sq_req {
    int64_t user_id;
    struct am_event *evs;          /* append */
    size_t n;
    struct am_item_result *res;
    const struct am_blob_info *blob; /* blob_add */
    am_rc rc;
    int done;
    struct sq_req *next;
};

struct sq {
    char path[600];
    size_t max_events;
    /* writer */
    sqlite3 *wdb;
    sqlite3_stmt *st_stream_get, *st_stream_add, *st_blob_owned, *st_insert, *st_dup,
        *st_stats, *st_blob_add, *st_user_blob_add;
    pthread_t writer;
    pthread_mutex_t lock;      /* queue, done flags and stats */
    pthread_cond_t work;       /* the writer waits for requests */
    pthread_cond_t done;       /* appenders wait for their commit */
    struct sq_req *head, *tail;
    int stopping;
    struct am_store_stats stats;
    /* readers */
    pthread_mutex_t rlock;
    pthread_cond_t rfree;
    sqlite3 *rdb[SQ_MAX_READERS];
    int rbusy[SQ_MAX_READERS];
    int n_readers;
};

am_rc sq_migrate(sqlite3 *db);
am_rc sq_open_conn(const char *path, int readonly, sqlite3 **out);
/* The writer thread (store_sqlite_writer.c). */
am_rc sq_writer_prepare(struct sq *s);
void sq_writer_finalize(struct sq *s);
void *sq_writer_main(void *arg);

#endif
