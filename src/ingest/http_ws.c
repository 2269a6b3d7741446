/* http_ws.c — GET /v1/ws: ingest frames answered with acks by key after they are
 * durable, and a live subscription to the user's new events through the bus. */
#include "http_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

#define MAX_FILTER 32
#define OUT_MAX_BYTES (8u << 20) /* live events queued for one slow client */

/* One outgoing frame. */
struct out_msg {
    struct out_msg *next;
    size_t len;
    char text[];
};

struct ws_conn {
    struct am_http *h;
    struct mg_connection *conn;
    struct am_auth auth;
    uint64_t sub_id;
    int subscribed;
    size_t n_filter;
    char filter[MAX_FILTER][AM_STREAM_MAX + 1];
    /* Every frame to the client goes through this queue and one sender thread, so a
     * client that stops reading stalls only its own sender, never the bus or ingest. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct out_msg *head, *tail;
    size_t queued_bytes;
    int64_t dropped; /* live events dropped since the client last kept up */
    int stopping;
    pthread_t sender;
};

static void *sender_main(void *arg) {
    struct ws_conn *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        if (!w->head)
            break;
        struct out_msg *m = w->head;
        w->head = m->next;
        if (!w->head)
            w->tail = NULL;
        w->queued_bytes -= m->len;
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (!stopping) {
            mg_lock_connection(w->conn);
            mg_websocket_write(w->conn, MG_WEBSOCKET_OPCODE_TEXT, m->text, m->len);
            mg_unlock_connection(w->conn);
        }
        am_free(m);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Queues text for the client. A live event (droppable) is dropped when the queue is
 * over its bound, and the client is told how many it missed once it catches up. */
static void ws_post(struct ws_conn *w, const char *text, size_t len, int droppable) {
    char note[96];
    int n_note = 0;
    pthread_mutex_lock(&w->lock);
    if (droppable && w->queued_bytes + len > OUT_MAX_BYTES) {
        w->dropped++;
        pthread_mutex_unlock(&w->lock);
        return;
    }
    if (w->dropped && w->queued_bytes + len <= OUT_MAX_BYTES / 2) {
        n_note = snprintf(note, sizeof note, "{\"type\":\"lagged\",\"dropped\":%lld}",
                          (long long)w->dropped);
        w->dropped = 0;
    }
    pthread_mutex_unlock(&w->lock);
    const char *texts[2] = {note, text};
    size_t lens[2] = {(size_t)n_note, len};
    for (int i = n_note ? 0 : 1; i < 2; i++) {
        struct out_msg *m = am_malloc(sizeof *m + lens[i]);
        if (!m)
            return;
        m->next = NULL;
        m->len = lens[i];
        memcpy(m->text, texts[i], lens[i]);
        pthread_mutex_lock(&w->lock);
        if (w->tail)
            w->tail->next = m;
        else
            w->head = m;
        w->tail = m;
        w->queued_bytes += m->len;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
}

static void ws_send(struct ws_conn *w, json_t *msg) {
    char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!s)
        return;
    ws_post(w, s, strlen(s), 0);
    am_free(s);
}

static void ws_error(struct ws_conn *w, int status, const char *detail) {
    char clean[512];
    snprintf(clean, sizeof clean, "%s", detail);
    am_utf8_clean(clean);
    ws_send(w, json_pack("{s:s, s:i, s:s}", "type", "error", "status", status, "detail", clean));
}

/* Refusals happen before the handshake, as plain HTTP answers, so a refused client
 * never holds a worker thread. CivetWeb has already marked the connection as a
 * WebSocket here, so its response-header calls refuse: the answer is written whole. */
static int refuse(struct mg_connection *conn, int status, const char *type, const char *detail) {
    char head[256];
    json_t *p = http_problem_json(status, type, detail);
    char *body = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    size_t len = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, http_status_title(status), len);
    mg_write(conn, head, (size_t)n);
    if (body)
        mg_write(conn, body, len);
    am_free(body);
    struct am_http *h = mg_get_user_data(mg_get_context(conn));
    if (h && h->srv->metrics)
        am_metrics_http(h->srv->metrics, status);
    return 1;
}

static int ws_connect(const struct mg_connection *cconn, void *cbdata) {
    struct am_http *h = cbdata;
    struct mg_connection *conn = (struct mg_connection *)cconn;
    struct am_auth auth;
    char token[260];
    http_bearer(conn, 1, token, sizeof token);
    if (!token[0] || http_auth_token(h, token, &auth) != AM_OK) {
        return refuse(conn, 401, "unauthorized",
                      "unknown or missing token (Authorization header or ?token=)");
    }
    /* Each open WebSocket holds a CivetWeb worker: keep some for plain HTTP. */
    long cap = (long)h->srv->cfg.http_threads - 16;
    if (atomic_fetch_add(&h->ws_open, 1) >= (cap > 1 ? cap : 1)) {
        atomic_fetch_sub(&h->ws_open, 1);
        return refuse(conn, 503, "unavailable", "too many open WebSockets; retry later");
    }
    struct ws_conn *w = am_calloc(1, sizeof *w);
    if (!w) {
        atomic_fetch_sub(&h->ws_open, 1);
        return refuse(conn, 503, "unavailable", "out of memory");
    }
    w->h = h;
    w->auth = auth;
    w->conn = conn;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->sender, NULL, sender_main, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        am_free(w);
        atomic_fetch_sub(&h->ws_open, 1);
        return refuse(conn, 503, "unavailable", "cannot start a sender");
    }
    mg_set_user_connection_data(conn, w);
    return 0;
}

static void ws_ready(struct mg_connection *conn, void *cbdata) {
    (void)cbdata;
    struct ws_conn *w = mg_get_user_connection_data(conn);
    if (!w)
        return;
    if (w->h->srv->metrics)
        am_metrics_ws(w->h->srv->metrics, 1, 0);
    ws_send(w, json_pack("{s:s, s:s}", "type", "hello", "user", w->auth.user));
}

/* Bus callback, on the dispatcher thread. */
static void on_notice(const struct am_notice *n, void *arg) {
    struct ws_conn *w = arg;
    if (w->n_filter) {
        int match = 0;
        for (size_t i = 0; i < w->n_filter && !match; i++)
            match = strcmp(w->filter[i], n->stream) == 0;
        if (!match)
            return;
    }
    struct am_buf b;
    am_buf_init(&b, n->body_len + 64);
    if (am_buf_appends(&b, "{\"type\":\"event\",\"event\":") == AM_OK &&
        am_buf_append(&b, n->body, n->body_len) == AM_OK && am_buf_appends(&b, "}") == AM_OK)
        ws_post(w, b.data, b.len, 1);
    am_buf_free(&b);
}

static void handle_subscribe(struct ws_conn *w, json_t *msg) {
    if (!(w->auth.scopes & AM_SCOPE_READ)) {
        ws_error(w, 403, "this token lacks the 'read' scope");
        return;
    }
    struct am_bus *bus = &w->h->srv->bus;
    if (w->subscribed) {
        bus->ops->unsubscribe(bus->impl, w->sub_id);
        w->subscribed = 0;
    }
    w->n_filter = 0;
    json_t *streams = json_object_get(msg, "streams");
    if (streams && !json_is_null(streams)) {
        size_t i;
        json_t *s;
        if (!json_is_array(streams) || json_array_size(streams) > MAX_FILTER) {
            ws_error(w, 400, "streams: an array of at most 32 stream names");
            return;
        }
        json_array_foreach(streams, i, s) {
            if (!json_is_string(s) || !am_stream_name_valid(json_string_value(s),
                                                            json_string_length(s))) {
                ws_error(w, 400, "streams: not a stream name");
                w->n_filter = 0;
                return;
            }
            memcpy(w->filter[w->n_filter++], json_string_value(s), json_string_length(s) + 1);
        }
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "am.%lld.", (long long)w->auth.user_id);
    if (bus->ops->subscribe(bus->impl, prefix, on_notice, w, &w->sub_id) != AM_OK) {
        ws_error(w, 503, "cannot subscribe now");
        return;
    }
    w->subscribed = 1;
    ws_send(w, json_pack("{s:s}", "type", "subscribed"));
}

static void handle_ingest(struct ws_conn *w, json_t *msg) {
    struct am_server *srv = w->h->srv;
    const struct am_config *cfg = &srv->cfg;
    if (!(w->auth.scopes & AM_SCOPE_INGEST)) {
        ws_error(w, 403, "this token lacks the 'ingest' scope");
        return;
    }
    json_t *evs = json_object_get(msg, "events");
    if (!evs)
        evs = json_object_get(msg, "event");
    if (!evs) {
        ws_error(w, 400, "an ingest frame carries 'events' (array) or 'event' (object)");
        return;
    }
    struct am_limits lim = {(size_t)cfg->max_json_depth, (size_t)cfg->max_payload_bytes};
    struct am_batch b;
    char err[256];
    am_rc rc = am_batch_from_json(&b, evs, w->auth.user_id, &lim, (size_t)cfg->max_batch_events,
                                  NULL, err, sizeof err);
    if (rc) {
        ws_error(w, rc == AM_ELIMIT ? 413 : 400, err);
        return;
    }
    rc = am_batch_submit(srv, w->auth.user_id, &b);
    if (rc) {
        ws_error(w, 503, "store failed; nothing of this frame was acknowledged, retry");
        am_batch_free(&b);
        return;
    }
    if (srv->metrics)
        am_metrics_rejected(srv->metrics, b.n_items - b.n_evs);
    json_t *res = am_batch_results_json(&b);
    am_batch_free(&b);
    if (res) {
        json_object_set_new(res, "type", json_string("ack"));
        json_t *id = json_object_get(msg, "id");
        if (id)
            json_object_set(res, "id", id);
    }
    ws_send(w, res);
}

static int ws_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cbdata) {
    (void)cbdata;
    struct ws_conn *w = mg_get_user_connection_data(conn);
    int opcode = bits & 0x0f;
    if (!w)
        return 0;
    if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
        return 0;
    if (opcode == MG_WEBSOCKET_OPCODE_PING || opcode == MG_WEBSOCKET_OPCODE_PONG)
        return 1;
    if (opcode != MG_WEBSOCKET_OPCODE_TEXT && opcode != MG_WEBSOCKET_OPCODE_BINARY) {
        return 1;
    }
    if (w->h->srv->metrics)
        am_metrics_ws(w->h->srv->metrics, 0, 1);
    const struct am_config *cfg = &w->h->srv->cfg;
    if (len > (size_t)cfg->ws_max_frame_bytes) {
        ws_error(w, 413, "message over ws_max_frame_bytes");
        return 1;
    }
    json_t *msg = NULL;
    char err[200];
    am_rc rc = am_json_parse(data, len, (size_t)cfg->max_json_depth, &msg, err, sizeof err);
    if (rc) {
        ws_error(w, 400, err);
        return 1;
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!json_is_object(msg))
        ws_error(w, 400, "a frame is a JSON object with a 'type'");
    else if (type && strcmp(type, "subscribe") == 0)
        handle_subscribe(w, msg);
    else if (type && strcmp(type, "unsubscribe") == 0) {
        if (w->subscribed)
            w->h->srv->bus.ops->unsubscribe(w->h->srv->bus.impl, w->sub_id);
        w->subscribed = 0;
        ws_send(w, json_pack("{s:s}", "type", "unsubscribed"));
    } else if (type && strcmp(type, "ingest") == 0)
        handle_ingest(w, msg);
    else if (type && strcmp(type, "ping") == 0)
        ws_send(w, json_pack("{s:s}", "type", "pong"));
    else
        ws_error(w, 400, "type: ingest, subscribe, unsubscribe or ping");
    json_decref(msg);
    return 1;
}

static void ws_close(const struct mg_connection *conn, void *cbdata) {
    (void)cbdata;
    struct ws_conn *w = mg_get_user_connection_data(conn);
    if (!w)
        return;
    if (w->subscribed)
        w->h->srv->bus.ops->unsubscribe(w->h->srv->bus.impl, w->sub_id);
    pthread_mutex_lock(&w->lock);
    w->stopping = 1; /* the sender frees what is queued without writing it */
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->sender, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    if (w->h->srv->metrics)
        am_metrics_ws(w->h->srv->metrics, -1, 0);
    atomic_fetch_sub(&w->h->ws_open, 1);
    mg_set_user_connection_data(conn, NULL);
    am_free(w);
}

void http_ws_register(struct am_http *h) {
    mg_set_websocket_handler(h->ctx, "/v1/ws", ws_connect, ws_ready, ws_data, ws_close, h);
}
