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
