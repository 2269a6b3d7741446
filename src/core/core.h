/* core.h — AM's foundation: errors, allocation, buffers, logging, time, ids, crypto,
 * JSON limits, configuration, the event model and the stream catalog.
 * Every other module includes this header and nothing private of core. */
#ifndef AM_CORE_H
#define AM_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ---------------------------------------------------------------- errors */

typedef enum am_rc {
    AM_OK = 0,
    AM_EINVAL,    /* bad input from a caller or a client */
    AM_ENOMEM,    /* allocation failed */
    AM_EIO,       /* file system or database failure */
    AM_ENOTFOUND, /* no such thing (for this user) */
    AM_EDENIED,   /* authentication or authorisation failed */
    AM_ECONFLICT, /* already exists */
    AM_ELIMIT,    /* a size, count or rate limit was exceeded */
    AM_EBACKEND,  /* a backend (database, broker, model server) failed */
    AM_ECLOSED,   /* the component is shutting down */
} am_rc;

const char *am_strerror(am_rc rc);

/* ---------------------------------------------------------------- allocation
 * All heap memory goes through these so tests can fail the Nth allocation
 * (SQLite's OOM testing). am_free(NULL) is a no-op. Thread-safe. */
void *am_malloc(size_t n);
void *am_calloc(size_t count, size_t n);
void *am_realloc(void *p, size_t n);
void am_free(void *p);
char *am_strdup(const char *s);                 /* caller frees with am_free */
char *am_strndup(const char *s, size_t n);      /* caller frees with am_free */

/* Test hook: the Nth allocation from now on (1-based) and all after it fail
 * when sticky, or just that one when not. 0 disables. Returns allocations seen. */
void am_alloc_fail_at(long nth, int sticky);
long am_alloc_count(void);
/* Allocations that failed on the calling thread so far: a parser that cannot say
 * "out of memory" itself (jansson) is judged by whether this moved. */
long am_alloc_failures(void);
/* Installs am_malloc & co. into jansson (and SQLite, via the store) once. */
void am_alloc_init(void);

/* ---------------------------------------------------------------- buffers
 * A growable byte buffer that knows its limit (curl's dynbuf). Always NUL-terminated. */
struct am_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len; appends past it fail with AM_ELIMIT */
};

void am_buf_init(struct am_buf *b, size_t max_bytes);
am_rc am_buf_append(struct am_buf *b, const void *data, size_t len);
am_rc am_buf_appends(struct am_buf *b, const char *s);
am_rc am_buf_printf(struct am_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void am_buf_reset(struct am_buf *b);          /* len = 0, keeps memory */
void am_buf_free(struct am_buf *b);           /* frees memory, buffer reusable after init */
char *am_buf_steal(struct am_buf *b, size_t *len); /* caller owns the returned string */

/* Makes s safe to put in a JSON string: every byte that is not part of a valid
 * UTF-8 sequence (a character cut by truncation, a raw byte) becomes '?'. In place. */
void am_utf8_clean(char *s);
/* Decodes the valid UTF-8 sequence at s (at most n bytes) into *cp: its length, or 0 for
 * a byte that does not start one (overlongs, surrogates and cut sequences refused). */
size_t am_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* ---------------------------------------------------------------- logging */

enum am_log_level { AM_LOG_DEBUG = 0, AM_LOG_INFO, AM_LOG_WARN, AM_LOG_ERROR };
void am_log_set_level(enum am_log_level level);
int am_log_level_parse(const char *s, enum am_log_level *out);
void am_log(enum am_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define am_debug(...) am_log(AM_LOG_DEBUG, __VA_ARGS__)
#define am_info(...) am_log(AM_LOG_INFO, __VA_ARGS__)
#define am_warn(...) am_log(AM_LOG_WARN, __VA_ARGS__)
#define am_error(...) am_log(AM_LOG_ERROR, __VA_ARGS__)

/* ---------------------------------------------------------------- time
 * Storage time is UTC nanoseconds since the epoch in an int64_t. */

#define AM_NS_PER_S 1000000000LL
int64_t am_now_ns(void);        /* wall clock, UTC */
int64_t am_mono_ns(void);       /* monotonic, for durations */

/* Parses RFC 3339 ("2026-11-25T10:00:00.123+01:00", "Z" or offset, 'T' or ' ').
 * Out: UTC ns and the offset the client used, in minutes east of UTC. */
am_rc am_time_parse_rfc3339(const char *s, size_t len, int64_t *ts_ns, int *offset_min);
/* Epoch in s, ms, µs or ns, told apart by magnitude (|v| < 1e11 s, < 1e14 ms,
 * < 1e17 µs, else ns); a fractional value is taken as seconds. */
am_rc am_time_from_epoch(double v, int is_integer, int64_t iv, int64_t *ts_ns);
/* A JSON value (string RFC 3339 or digits, or number) to UTC ns. offset_min may be NULL. */
am_rc am_time_from_json(const json_t *v, int64_t *ts_ns, int *offset_min);
/* A query parameter: RFC 3339 or epoch digits. */
am_rc am_time_from_string(const char *s, int64_t *ts_ns);
/* Formats as "2026-11-25T10:00:00.123456789Z" into out (at least 40 bytes). */
void am_time_format(int64_t ts_ns, char *out, size_t out_len);

/* ---------------------------------------------------------------- crypto and ids
 * libsodium underneath. am_crypto_init() must be called once before use. */

am_rc am_crypto_init(void);
void am_random_bytes(void *buf, size_t len);
void am_hex(const uint8_t *in, size_t len, char *out); /* out holds 2*len+1 */
int am_is_hex(const char *s, size_t len);
/* SHA-256 */
struct am_sha256 {
    unsigned char state[128]; /* opaque: crypto_hash_sha256_state fits */
};
void am_sha256_init(struct am_sha256 *h);
void am_sha256_update(struct am_sha256 *h, const void *data, size_t len);
void am_sha256_final(struct am_sha256 *h, uint8_t out[32]);
void am_sha256_hex(const void *data, size_t len, char out[65]);
/* A new API token "am_" + 43 base64url chars; token_hash is what is stored. */
void am_token_generate(char out[64]);
void am_token_hash(const char *token, size_t len, uint8_t out[32]);
/* Constant-time compare. */
int am_memeq(const void *a, const void *b, size_t len);
/* URL-safe base64 without padding; out holds len*4/3+4. Decode returns bytes or -1. */
void am_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_len);
long am_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_len);

/* ---------------------------------------------------------------- JSON
 * jansson underneath. Parsing never trusts the input: sizes and depth are checked. */

/* Parses exactly one JSON value from buf. Fails with AM_EINVAL (err says where),
 * AM_ELIMIT (deeper than max_depth) or AM_ENOMEM. Caller owns *out (json_decref). */
am_rc am_json_parse(const char *buf, size_t len, size_t max_depth, json_t **out, char *err,
                    size_t err_len);
size_t am_json_depth(const json_t *v);
/* Compact, key-sorted serialisation; caller frees with am_free. */
char *am_json_dump(const json_t *v, size_t *len);

/* ---------------------------------------------------------------- configuration
 * One table of settings (name, type, default, doc) drives defaults, the config file,
 * AM_* environment variables, the command line, --help and --check-config.
 * Precedence: default < file < environment < command line. */

struct am_config {
    char data_dir[512];
    char listen[128];       /* HOST:PORT */
    char log_level[16];
    char config_file[512];
    char store[32];         /* "sqlite" */
    char bus[32];           /* "inproc" */
    int64_t http_threads;
    int64_t max_body_bytes;
    int64_t max_batch_events;
    int64_t max_json_depth;
    int64_t max_payload_bytes;
    int64_t max_blob_bytes;
    int64_t rate_limit_per_s;   /* per token, requests; 0 = unlimited */
    int64_t rate_limit_burst;
    int64_t ws_max_frame_bytes;
    int64_t group_commit_max_events;
    /* the enrichment pipeline */
    int64_t workers;
    char pipeline[128];
    int64_t job_max_attempts, job_backoff_ms, job_backoff_max_ms, job_lease_s;
    char ocr_lang[64];
    char tessdata_dir[512];
    char stt_backend[32];
    char stt_model_dir[512];
    char stt_url[256], stt_model[128];
    int64_t max_audio_s;
    char chat_url[256], chat_model[128];
    char vision_url[256], vision_model[128];
    char embed_url[256], embed_model[128];
    int64_t embed_dim, embed_batch;
    char model_api_key[256];
    int64_t model_timeout_ms, model_retries, model_rate_per_s;
    int64_t video_frame_interval_s, video_scene_percent, video_max_frames;
    /* sources */
    char mqtt_url[256], mqtt_username[128], mqtt_password[256], mqtt_client_id[64];
    char mqtt_topics[256];
    int64_t import_batch_events;
    /* the agent and its nudges */
    int64_t agent_tick_s, utc_offset_min;
    char nudge_quiet_hours[16];
    int64_t nudge_budget_per_day, nudge_cooldown_min, nudge_calendar_lead_min;
    char notify_webhook_url[256], notify_ntfy_url[256], notify_gotify_url[256];
    char notify_gotify_token[128];
};

void am_config_defaults(struct am_config *c);
/* Applies "name = value" lines from a file; unknown names are errors. */
am_rc am_config_load_file(struct am_config *c, const char *path, char *err, size_t err_len);
/* Applies AM_<NAME> environment variables. */
am_rc am_config_load_env(struct am_config *c, char *err, size_t err_len);
/* Sets one setting by its name (with '-' or '_'). */
am_rc am_config_set(struct am_config *c, const char *name, const char *value, char *err,
                    size_t err_len);
/* Prints every setting with its doc (for --help) or its effective value (--check-config). */
void am_config_print_help(const struct am_config *defaults, void *file);
void am_config_print(const struct am_config *c, void *file);

/* ---------------------------------------------------------------- the event model */

#define AM_STREAM_MAX 64
#define AM_SOURCE_MAX 128
#define AM_KEY_MAX 128
#define AM_TRACE_MAX 64
#define AM_BLOB_HEX 64
#define AM_TS_NONE INT64_MIN

struct am_event {
    int64_t id;      /* store row id; 0 before it is stored */
    int64_t user_id; /* set by the caller of ingest, never from the client */
    char stream[AM_STREAM_MAX + 1];
    char source[AM_SOURCE_MAX + 1];
    int64_t ts_ns;
    int64_t ts_end_ns;   /* AM_TS_NONE for point events */
    char *payload;       /* compact JSON object text, owned (am_free) */
    size_t payload_len;
    char blob[AM_BLOB_HEX + 1]; /* lowercase hex SHA-256 or "" */
    char key[AM_KEY_MAX + 1];
    char trace[AM_TRACE_MAX + 1];
    int64_t received_ns;
};

void am_event_clear(struct am_event *e); /* frees the payload, zeroes the struct */

struct am_event_list {
    struct am_event *items;
    size_t n;
    size_t cap;
};
am_rc am_event_list_push(struct am_event_list *l, struct am_event *e); /* takes e's payload */
void am_event_list_free(struct am_event_list *l);

struct am_limits {
    size_t max_depth;
    size_t max_payload_bytes;
};

/* Turns one client JSON object into an event: checks field types, stream name,
 * timestamps, payload against the catalog, and fills in the key when the client
 * gave none (SHA-256 of user, stream, source, ts and canonical payload).
 * On AM_EINVAL, reason says why in words a client can act on. */
am_rc am_event_from_json(const json_t *obj, int64_t user_id, const struct am_limits *lim,
                         struct am_event *out, char *reason, size_t reason_len);
/* The event as a JSON object for API answers; caller owns (json_decref). */
json_t *am_event_to_json(const struct am_event *e);

/* ---------------------------------------------------------------- the stream catalog */

enum am_field_type { AM_F_NUMBER, AM_F_INTEGER, AM_F_STRING, AM_F_BOOL, AM_F_OBJECT, AM_F_ARRAY };
enum am_retention { AM_RETAIN_FOREVER, AM_RETAIN_DAYS_THEN_SUMMARY, AM_RETAIN_BLOB_POLICY };

struct am_field {
    const char *name;
    enum am_field_type type;
    int required;
    double min, max; /* numbers: range; strings: length; ignored when min > max */
    const char *unit;
    const char *doc;
};

struct am_stream_def {
    const char *name;
    const char *doc;
    enum am_retention retention;
    int span;           /* 1 when events usually carry ts_end */
    int blob;           /* 1 when a blob is expected */
    const struct am_field *fields;
    size_t n_fields;
};

const struct am_stream_def *am_catalog_find(const char *stream);
const struct am_stream_def *am_catalog_all(size_t *n);
const char *am_retention_name(enum am_retention r);
/* 1 when the name has the shape "<category>.<kind>[.more]" in [a-z0-9_]. */
int am_stream_name_valid(const char *name, size_t len);
/* Validates a payload object for a stream; custom.* streams take any object. */
am_rc am_catalog_validate(const char *stream, const json_t *payload, char *reason,
                          size_t reason_len);
/* The catalog as JSON (for GET /v1/streams); caller owns. */
json_t *am_catalog_to_json(const struct am_stream_def *d);

/* ---------------------------------------------------------------- enrichment routing
 * Which pipeline jobs an event needs, and which of its text is searchable. The store
 * writes the jobs and the full-text row in the event's own transaction (an outbox). */

enum am_job_kind {
    AM_JOB_OCR = 0, /* image → image.ocr */
    AM_JOB_STT,     /* audio → audio.transcript */
    AM_JOB_FRAMES,  /* video.clip → video.frame (each then OCR'd and captioned) */
    AM_JOB_CAPTION, /* image → image.caption (needs a vision model) */
    AM_JOB_ANALYZE, /* text → derived.analysis */
    AM_JOB_EMBED,   /* text → a vector (not an event) */
    AM_JOB_KINDS
};
enum am_job_state { AM_JOB_PENDING = 0, AM_JOB_RUNNING, AM_JOB_DONE, AM_JOB_DEAD, AM_JOB_STATES };

const char *am_job_kind_name(int kind);
const char *am_job_state_name(int state);
int am_job_kind_parse(const char *name); /* -1 when unknown */
/* Bit (1u << kind) for each job an event of this stream needs. */
unsigned am_stream_jobs(const char *stream, int has_blob);
/* 1 when the stream's text goes into the full-text index. */
int am_stream_searchable(const char *stream);
/* The searchable text of a payload (its text fields, one per line) into out. Empty when
 * the payload holds none; AM_EINVAL when it is not a JSON object. */
am_rc am_payload_text(const char *payload, size_t len, struct am_buf *out);

#endif
