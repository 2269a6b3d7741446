/* http_internal.h — private to the ingest module: what the http_*.c files share.
 * Nothing outside src/ingest/ includes this. */
#ifndef AM_HTTP_INTERNAL_H
#define AM_HTTP_INTERNAL_H

#include "ingest.h"

#include <civetweb.h>
#include <pthread.h>
#include <stdatomic.h>

struct am_auth {
    int64_t user_id;
    unsigned scopes;
    char user[64];
    uint8_t token_hash[32];
};

#define RL_SLOTS 1024

struct rl_slot {
    uint8_t token_hash[32];
    double tokens;
    int64_t last_ns;
    int used;
};

struct am_http {
    struct mg_context *ctx;
    struct am_server *srv;
    int port;
    atomic_long ws_open; /* WebSockets past the handshake (or about to be), and streams */
    atomic_int stopping; /* set before mg_stop: long-lived handlers (SSE) return */
    pthread_mutex_t rl_lock;
    struct rl_slot rl[RL_SLOTS];
};

/* The problem+json object (RFC 9457) for an answer; caller owns. */
json_t *http_problem_json(int status, const char *type, const char *detail);
const char *http_status_title(int status);
/* The bearer token of a request (or its ?token= when allow_query), "" when none. */
void http_bearer(struct mg_connection *c, int allow_query, char *out, size_t out_len);
/* Sends a problem+json answer (RFC 9457). type is the short name, e.g. "malformed". */
void http_problem(struct mg_connection *c, int status, const char *type, const char *detail_fmt,
                  ...) __attribute__((format(printf, 4, 5)));
/* Same, with extra members merged into the problem object (consumed). */
void http_problem_with(struct mg_connection *c, int status, const char *type, json_t *extra,
                       const char *detail);
/* Same, with one extra response header (Retry-After, Content-Range). */
void http_problem_header(struct mg_connection *c, int status, const char *type,
                         const char *header, const char *value, const char *detail);
/* Sends a JSON body; consumes body. */
void http_json(struct mg_connection *c, int status, json_t *body);
void http_text(struct mg_connection *c, int status, const char *content_type, const char *body,
               size_t len);

/* Authenticates the bearer token (or ?token= when allow_query) and checks the scope
 * and the rate limit. On failure it has answered the client and returns 0. */
int http_auth(struct am_http *h, struct mg_connection *c, unsigned scope, int allow_query,
              struct am_auth *out);
/* Token check without answering: AM_EDENIED / AM_OK. */
am_rc http_auth_token(struct am_http *h, const char *token, struct am_auth *out);

/* Sends the interim "100 Continue" when the client waits for it (after the checks
 * that could refuse the request). */
void http_continue(struct mg_connection *c);
/* Streams the body into sink in 64 KiB pieces. AM_EINVAL when it is shorter than its
 * Content-Length (the client went away); a sink's error as the sink returned it. */
am_rc http_stream_body(struct mg_connection *c,
                       am_rc (*sink)(void *arg, const void *data, size_t len), void *arg);
/* Reads the whole body up to max_bytes; answers 413 itself and returns 0 when over. */
int http_read_body(struct mg_connection *c, size_t max_bytes, struct am_buf *out);
/* A query-string parameter, URL-decoded: 1 present, 0 absent, -1 longer than out. */
int http_param(struct mg_connection *c, const char *name, char *out, size_t out_len);

/* Route handlers. */
void http_events_post(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_events_list(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                      int timeline);
void http_event_get(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                    const char *id);
void http_streams(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_blob_put(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_blob_get(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                   const char *sha);
void http_ws_register(struct am_http *h);
void http_search(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_jobs(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_jobs_retry(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_context(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_memories(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_people(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_nudge_stream(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_nudges(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_nudge_feedback(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                         const char *rest);
void http_day_summary(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_agent_tick(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_memory_patch(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                       const char *id);

/* Location apps (http_clients.c). The parsers turn one request body (or form) into events
 * appended to out (caller frees with am_event_list_free); they touch neither the network
 * nor the store, so the fuzz target calls them directly. Any thread. */
struct am_client_ctx {
    int64_t user_id;
    const char *device;    /* from the request (?d=, X-Limit-D, ?device_id=) or "" */
    struct am_limits lim;  /* as for POST /v1/events */
    size_t max_items;      /* events per request; 0 = no limit */
};
/* OwnTracks JSON (one message or an array): location -> location.gps (+ device.battery),
 * transition -> location.place, waypoint(s) -> custom.owntracks_waypoint; other _types
 * give nothing. AM_EINVAL only when the body is not JSON or not a message; an item that
 * cannot become an event is counted in *skipped. */
am_rc http_owntracks_parse(const struct am_client_ctx *cx, const char *buf, size_t len,
                           struct am_event_list *out, size_t *skipped, char *err, size_t err_len);
/* Overland {"locations":[GeoJSON Feature...]}: *n_items features seen, invalid ones
 * counted in *skipped. */
am_rc http_overland_parse(const struct am_client_ctx *cx, const char *buf, size_t len,
                          struct am_event_list *out, size_t *n_items, size_t *skipped, char *err,
                          size_t err_len);
/* GPSLogger/Traccar/OsmAnd: an application/x-www-form-urlencoded string (a query string)
 * to one location.gps (+ device.battery); now_ns stands in for a missing time. */
am_rc http_gps_parse(const struct am_client_ctx *cx, const char *form, size_t len, int64_t now_ns,
                     struct am_event_list *out, char *err, size_t err_len);
/* POST /pub authenticates itself (HTTP Basic: AM user name and token). */
void http_owntracks_post(struct am_http *h, struct mg_connection *c);
void http_overland_post(struct am_http *h, struct mg_connection *c, const struct am_auth *a);
void http_gps(struct am_http *h, struct mg_connection *c, const struct am_auth *a);

/* ActivityWatch's API, /api/0/... and /aw/<token>/api/0/... (http_aw*.c). The converters and
 * the query language touch neither network nor store (fuzz/fuzz_aw.c calls them). Any thread. */
#define HTTP_AW_BUCKET_MAX 120
void http_aw_route(struct am_http *h, struct mg_connection *c, const char *uri);
/* currentwindow -> desktop.window, afkstatus -> desktop.afk, else custom.aw_<type>. */
void http_aw_stream(const char *type, char out[AM_STREAM_MAX + 1]);
int http_aw_bucket_id_valid(const char *id, size_t len);
/* "aw-" + SHA-256 of (bucket, start, end): a resent event or heartbeat dedupes. */
void http_aw_key(const char *bucket, int64_t start_ns, int64_t end_ns, char out[AM_KEY_MAX + 1]);
/* "2026-11-25T10:00:00.123456+00:00" into out (at least 40 bytes). */
void http_aw_time_format(int64_t ts_ns, char *out, size_t out_len);
/* One AW event {timestamp, duration, data}: its span and its data (caller owns *data). */
am_rc http_aw_event_decode(const json_t *v, int64_t *start_ns, int64_t *end_ns, json_t **data,
                           char *err, size_t err_len);
/* The AM event for a span of a bucket (validated like POST /v1/events); caller frees payload. */
am_rc http_aw_event_make(int64_t user_id, const char *bucket, const char *stream,
                         const struct am_limits *lim, int64_t start_ns, int64_t end_ns,
                         const json_t *data, struct am_event *out, char *err, size_t err_len);
/* One AW event or a list of them to events appended to out (caller frees with
 * am_event_list_free); the first bad one fails the whole (err says which). */
am_rc http_aw_events_from_json(int64_t user_id, const char *bucket, const char *stream,
                               const struct am_limits *lim, size_t max_items, const json_t *v,
                               struct am_event_list *out, char *err, size_t err_len);
am_rc http_aw_events_parse(int64_t user_id, const char *bucket, const char *stream,
                           const struct am_limits *lim, size_t max_items, const char *buf,
                           size_t len, struct am_event_list *out, char *err, size_t err_len);
/* An AW event object for a stored span; caller owns. */
json_t *http_aw_event_json(int64_t id, int64_t start_ns, int64_t end_ns, const char *payload,
                           size_t payload_len);
/* Where the query language gets buckets ({id: bucket}) and a bucket's events in a period
 * (a list of AW events; AM_ENOTFOUND for no such bucket). Results are the caller's. */
struct http_aw_source {
    void *arg;
    am_rc (*buckets)(void *arg, json_t **out);
    am_rc (*events)(void *arg, const char *bucket, int64_t from_ns, int64_t to_ns, json_t **out);
};
/* Runs a query program for one period; *out (caller owns) is the value of RETURN. */
am_rc http_aw_query(const struct http_aw_source *src, const char *program, size_t len,
                    int64_t from_ns, int64_t to_ns, json_t **out, char *err, size_t err_len);

/* Metrics (metrics.c). */
void am_metrics_ingest(struct am_metrics *m, const struct am_item_result *res, size_t n,
                       int64_t latency_ns);
void am_metrics_rejected(struct am_metrics *m, size_t n);
void am_metrics_http(struct am_metrics *m, int status);
void am_metrics_blob(struct am_metrics *m, int64_t bytes);
void am_metrics_ws(struct am_metrics *m, int delta_connections, int64_t messages);
am_rc am_metrics_render(struct am_server *srv, struct am_buf *out);

#endif
