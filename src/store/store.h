/* store.h — durable storage of events, users, tokens and blobs behind one interface.
 * The embedded backend is SQLite in WAL mode (store_sqlite.c); PostgreSQL can be
 * added as another struct am_store_ops without touching callers.
 * Every function that reads or writes user data takes the user id first. */
#ifndef AM_STORE_H
#define AM_STORE_H

#include "../core/core.h"

/* Per-item outcome of an append. */
enum am_item_status { AM_ITEM_STORED = 0, AM_ITEM_DUPLICATE, AM_ITEM_REJECTED };

struct am_item_result {
    enum am_item_status status;
    int64_t id;          /* the stored row, or the original row for a duplicate */
    char reason[160];    /* for rejected items */
};

/* Scopes of an API token (a bit set). */
#define AM_SCOPE_INGEST 1u
#define AM_SCOPE_READ 2u
#define AM_SCOPE_ADMIN 4u
/* Parses "ingest,read" into bits; 0 on an unknown name. */
unsigned am_scopes_parse(const char *s);
void am_scopes_format(unsigned scopes, char *out, size_t out_len);

struct am_query {
    const char *stream;   /* NULL: all streams merged (the timeline) */
    const char *source;   /* NULL: any */
    int64_t from_ns;      /* inclusive; AM_TS_NONE: open */
    int64_t to_ns;        /* exclusive; AM_TS_NONE: open */
    size_t limit;         /* rows to return (1..10000) */
    int has_cursor;       /* resume strictly after (after_ts_ns, after_id) */
    int64_t after_ts_ns;
    int64_t after_id;
    int descending;       /* newest first; the cursor then means strictly before */
};

struct am_stream_stat {
    char stream[AM_STREAM_MAX + 1];
    int64_t count;
    int64_t first_ts_ns;
    int64_t last_ts_ns;
    int64_t last_received_ns;
    int64_t count_last_hour; /* events received in the last hour, for a recent rate */
};

struct am_blob_info {
    char sha256[AM_BLOB_HEX + 1];
    int64_t size;
    char mime[96];
    int64_t created_ns;
};

struct am_store_stats {
    int64_t commits;           /* group commits done */
    int64_t events_stored;
    int64_t events_duplicate;
    int64_t events_rejected;   /* rejected inside the store (e.g. unknown blob) */
    int64_t queue_depth;       /* appends waiting for the writer */
    int64_t commit_ns_total;   /* time spent committing, for an average */
    int64_t batch_events_max;  /* largest group commit so far */
};

struct am_store_config {
    const char *data_dir;           /* the database lives at DIR/am.db */
    size_t group_commit_max_events; /* upper bound of one transaction */
    int read_connections;           /* pool size for readers */
    unsigned job_kinds;             /* jobs written with new events (1u << am_job_kind) */
    const char *embed_model;        /* the model embed jobs are written for */
};

/* ---------------------------------------------------------------- jobs */

struct am_job {
    int64_t id;
    int64_t user_id;
    int64_t event_id;
    int kind;           /* enum am_job_kind */
    char arg[64];       /* embed: the model */
    int attempts;       /* counting the one just claimed */
    int64_t created_ns;
};

/* How a job ended: done, to run again after a time, or dead with an error. */
struct am_job_outcome {
    int64_t job_id;
    int state;            /* AM_JOB_DONE, AM_JOB_PENDING (retry) or AM_JOB_DEAD */
    int64_t run_after_ns; /* retry: not before */
    const char *error;    /* retry/dead: why (kept) */
};

/* Jobs of one kind in one state, for /v1/jobs and /metrics. */
struct am_job_count {
    int kind, state;
    int64_t count;
    int64_t oldest_created_ns; /* of the pending ones; 0 when none */
};

/* A dead job as /v1/jobs lists it. */
struct am_job_info {
    int64_t id, event_id;
    int kind, state, attempts;
    int64_t updated_ns;
    char error[256];
};

/* ---------------------------------------------------------------- search */

struct am_search_filter {
    const char *const *streams; /* NULL: any */
    size_t n_streams;
    const char *source;         /* NULL: any */
    int64_t from_ns, to_ns;     /* AM_TS_NONE: open */
};

struct am_vector {
    int64_t user_id, event_id;
    const char *model;
    const float *v;
    int dim;
};

struct am_vector_model {
    char model[128];
    int dim;
    int64_t count;
};

struct am_hit {
    int64_t event_id;
    double score;        /* text: -bm25 (higher is better); vector: cosine */
    char snippet[512];   /* text hits: the match, marked by \x01 … \x02 */
};

/* ---------------------------------------------------------------- imports
 * One run of a file importer (src/import) and how far it got. */

enum am_import_state { AM_IMPORT_RUNNING = 0, AM_IMPORT_DONE, AM_IMPORT_FAILED };

struct am_import_row {
    int64_t id;              /* 0 before import_put first stores it */
    int64_t user_id;
    char kind[16];           /* gpx, takeout, apple-health, ics */
    char name[512];          /* the file, as given */
    char fingerprint[65];    /* SHA-256 of the file's size and first 64 KiB */
    int64_t bytes_total, bytes_done;
    int64_t records, stored, duplicate, rejected;
    int state;               /* enum am_import_state */
    char error[256];
    int64_t started_ns, updated_ns, finished_ns; /* finished_ns 0 while running */
};

struct am_store_ops {
    const char *name;
    am_rc (*open)(const struct am_store_config *cfg, void **impl);
    void (*close)(void *impl);
    /* Appends events for one user. Blocks until they are committed and fsynced (or
     * rejected); fills res[i] per event. Duplicates by (user, key) return the
     * original id. Events naming a blob the user does not own are rejected.
     * Any thread; appends from many threads are group-committed together. */
    am_rc (*append)(void *impl, int64_t user_id, struct am_event *evs, size_t n,
                    struct am_item_result *res);
    am_rc (*query)(void *impl, int64_t user_id, const struct am_query *q,
                   struct am_event_list *out);
    am_rc (*get_event)(void *impl, int64_t user_id, int64_t id, struct am_event *out);
    /* Caller frees *out with am_free. */
    am_rc (*streams)(void *impl, int64_t user_id, struct am_stream_stat **out, size_t *n);
    /* Records that a user owns a blob already written to disk; durable on return. */
    am_rc (*blob_add)(void *impl, int64_t user_id, const struct am_blob_info *info);
    /* AM_ENOTFOUND unless this user owns the blob. */
    am_rc (*blob_get)(void *impl, int64_t user_id, const char *sha256, struct am_blob_info *out);
    /* Users and tokens. user_add gives AM_ECONFLICT for an existing name. */
    am_rc (*user_add)(void *impl, const char *name, int64_t *user_id);
    am_rc (*user_find)(void *impl, const char *name, int64_t *user_id);
    am_rc (*token_add)(void *impl, int64_t user_id, const uint8_t hash[32], unsigned scopes,
                       const char *label);
    /* Revokes the token with this hash from now on; AM_ENOTFOUND when no live token has it. */
    am_rc (*token_revoke)(void *impl, const uint8_t hash[32]);
    /* AM_EDENIED for an unknown or revoked token. */
    am_rc (*token_lookup)(void *impl, const uint8_t hash[32], int64_t *user_id, unsigned *scopes,
                          char *user_name, size_t user_name_len);
    void (*stats)(void *impl, struct am_store_stats *out);
    /* Database health: AM_OK when a read succeeds. */
    am_rc (*ping)(void *impl);

    /* Jobs (the outbox). Called when a commit wrote new jobs, on the writer thread. */
    void (*set_job_notify)(void *impl, void (*cb)(void *arg), void *arg);
    /* Claims up to max ready jobs of one kind: pending ones whose time has come and
     * running ones whose lease ran out. Each claim counts an attempt; a job claimed
     * more than max_attempts times (it crashed the worker or hung) goes dead instead. */
    am_rc (*job_claim)(void *impl, int kind, int64_t now_ns, int64_t lease_ns, int max_attempts,
                       struct am_job *out, size_t max, size_t *n);
    am_rc (*job_finish)(void *impl, const struct am_job_outcome *o, size_t n);
    /* Makes every running job claimable now (at start: their worker is gone). */
    am_rc (*job_recover)(void *impl, int64_t *n);
    /* Adds embed jobs for the model for every searchable text event without its vector. */
    am_rc (*job_reembed)(void *impl, const char *model, int64_t *n);
    /* Dead jobs of one user (kind -1: all) back to pending with attempts reset. */
    am_rc (*job_retry_dead)(void *impl, int64_t user_id, int kind, int64_t *n);
    /* Counts by kind and state; user_id 0 counts everyone's (metrics). Caller frees. */
    am_rc (*job_counts)(void *impl, int64_t user_id, struct am_job_count **out, size_t *n);
    am_rc (*job_list_dead)(void *impl, int64_t user_id, size_t limit, struct am_job_info **out,
                           size_t *n);
    /* The earliest time a pending job becomes ready, or AM_TS_NONE when none is pending. */
    am_rc (*job_next_ready)(void *impl, int kind, int64_t *ts_ns);

    /* Vectors and search. vectors_put replaces each event's vector for its model, all
     * in one transaction. */
    am_rc (*vectors_put)(void *impl, const struct am_vector *v, size_t n);
    /* Every user's id (for work that runs per user, like the agent's triggers). Caller frees. */
    am_rc (*users)(void *impl, int64_t **ids, size_t *n);
    /* The models a user's vectors were made with, most vectors first. Caller frees. */
    am_rc (*vector_models)(void *impl, int64_t user_id, struct am_vector_model **out, size_t *n);
    /* The text an event contributes to the full-text index ("" when none). Caller frees. */
    am_rc (*event_text)(void *impl, int64_t user_id, int64_t event_id, char **text);
    /* Full-text (BM25) hits for query (FTS5 syntax), best first. Caller frees *out. */
    am_rc (*search_text)(void *impl, int64_t user_id, const char *query,
                         const struct am_search_filter *f, size_t limit, struct am_hit **out,
                         size_t *n);
    /* Exact k nearest neighbours by cosine over the user's vectors of the model. */
    am_rc (*search_vector)(void *impl, int64_t user_id, const char *model, const float *q,
                           int dim, const struct am_search_filter *f, size_t limit,
                           struct am_hit **out, size_t *n);

    /* Imports (store_sqlite_imports.c). import_put inserts the row when row->id is 0
     * (and sets it), else updates that row of row->user_id; durable on return. */
    am_rc (*import_put)(void *impl, struct am_import_row *row);
    /* A user's imports, newest first. Caller frees *out with am_free. */
    am_rc (*import_list)(void *impl, int64_t user_id, size_t limit, struct am_import_row **out,
                         size_t *n);
    /* The newest unfinished import of this kind, name and fingerprint (to resume it);
     * AM_ENOTFOUND when there is none. */
    am_rc (*import_find_unfinished)(void *impl, int64_t user_id, const char *kind,
                                    const char *name, const char *fingerprint,
                                    struct am_import_row *out);
};

extern const struct am_store_ops am_store_sqlite_ops;

struct am_store {
    const struct am_store_ops *ops;
    void *impl;
};

/* Picks the backend by name ("sqlite"). */
am_rc am_store_open(struct am_store *s, const char *backend, const struct am_store_config *cfg);
void am_store_close(struct am_store *s);

/* ---------------------------------------------------------------- blob files
 * Content-addressed files under DIR/blobs/<first two hex>/<sha256>, written through
 * DIR/tmp/ and renamed in place after fsync of the file and its directory. */

struct am_blob_upload; /* opaque */

/* Starts an upload; max_bytes bounds it. Caller ends it with _finish or _abort. */
am_rc am_blob_upload_begin(const char *data_dir, int64_t max_bytes,
                           struct am_blob_upload **out);
am_rc am_blob_upload_write(struct am_blob_upload *u, const void *data, size_t len);
/* Verifies expected_sha256 when given (else NULL), fsyncs, sniffs the MIME type with
 * libmagic, moves the file into place (or drops it when the same content is there)
 * and fills info. Frees u in every case. */
am_rc am_blob_upload_finish(struct am_blob_upload *u, const char *expected_sha256,
                            struct am_blob_info *info);
void am_blob_upload_abort(struct am_blob_upload *u);
/* Path of a stored blob into out; AM_ENOTFOUND if the file is missing. */
am_rc am_blob_path(const char *data_dir, const char *sha256, char *out, size_t out_len);

#endif
