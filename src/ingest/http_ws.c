/* http_ws.c — GET /v1/ws: ingest frames answered with acks by key after they are
 * durable, and a live subscription to the user's new events through the bus. */
#include "http_internal.h"

#include <stdio.h>
#include <string.h>

#define MAX_FILTER 32

struct ws_conn {
    struct am_http *h;
    struct mg_connection *conn;
    struct am_auth auth;
    int authed;
    int deny_status;
    uint64_t sub_id;
    int subscribed;
    size_t n_filter;
    char filter[MAX_FILTER][AM_STREAM_MAX + 1];
};

static void ws_send(struct mg_connection *conn, json_t *msg) {
    char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!s)
        return;
    mg_lock_connection(conn);
    mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_TEXT, s, strlen(s));
    mg_unlock_connection(conn);
    am_free(s);
}

static void ws_error(struct mg_connection *conn, int status, const char *detail) {
    ws_send(conn, json_pack("{s:s, s:i, s:s}", "type", "error", "status", status, "detail",
                            detail));
}

static int ws_connect(const struct mg_connection *conn, void *cbdata) {
    struct am_http *h = cbdata;
    struct ws_conn *w = am_calloc(1, sizeof *w);
    if (!w)
        return 1; /* refuse the handshake */
    w->h = h;
    const char *hdr = mg_get_header(conn, "Authorization");
    char token[260] = "";
    if (hdr && strncasecmp(hdr, "Bearer ", 7) == 0)
        snprintf(token, sizeof token, "%s", hdr + 7);
    else {
        const struct mg_request_info *ri = mg_get_request_info(conn);
        if (ri->query_string)
            mg_get_var(ri->query_string, strlen(ri->query_string), "token", token, sizeof token);
    }
    /* A refused token still gets the handshake, so the client can read why in an
     * error frame before the close; nothing else is served on it. */
    if (token[0] && http_auth_token(h, token, &w->auth) == AM_OK)
        w->authed = 1;
    else
        w->deny_status = 401;
    mg_set_user_connection_data(conn, w);
    return 0;
}

static void ws_ready(struct mg_connection *conn, void *cbdata) {
    (void)cbdata;
    struct ws_conn *w = mg_get_user_connection_data(conn);
    if (!w)
        return;
    w->conn = conn;
    if (!w->authed) {
        ws_error(conn, 401, "unknown or missing token (Authorization header or ?token=)");
        mg_lock_connection(conn);
        mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, "\x03\xf0", 2); /* 1008 */
        mg_unlock_connection(conn);
        return;
    }
    if (w->h->srv->metrics)
        am_metrics_ws(w->h->srv->metrics, 1, 0);
    ws_send(conn, json_pack("{s:s, s:s}", "type", "hello", "user", w->auth.user));
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
        am_buf_append(&b, n->body, n->body_len) == AM_OK && am_buf_appends(&b, "}") == AM_OK) {
        mg_lock_connection(w->conn);
        mg_websocket_write(w->conn, MG_WEBSOCKET_OPCODE_TEXT, b.data, b.len);
        mg_unlock_connection(w->conn);
    }
    am_buf_free(&b);
}

static void handle_subscribe(struct ws_conn *w, json_t *msg) {
    if (!(w->auth.scopes & AM_SCOPE_READ)) {
        ws_error(w->conn, 403, "this token lacks the 'read' scope");
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
            ws_error(w->conn, 400, "streams: an array of at most 32 stream names");
            return;
        }
        json_array_foreach(streams, i, s) {
            if (!json_is_string(s) || !am_stream_name_valid(json_string_value(s),
                                                            json_string_length(s))) {
                ws_error(w->conn, 400, "streams: not a stream name");
                w->n_filter = 0;
                return;
            }
            memcpy(w->filter[w->n_filter++], json_string_value(s), json_string_length(s) + 1);
        }
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "am.%lld.", (long long)w->auth.user_id);
    if (bus->ops->subscribe(bus->impl, prefix, on_notice, w, &w->sub_id) != AM_OK) {
        ws_error(w->conn, 503, "cannot subscribe now");
        return;
    }
    w->subscribed = 1;
    ws_send(w->conn, json_pack("{s:s}", "type", "subscribed"));
}

static void handle_ingest(struct ws_conn *w, json_t *msg) {
    struct am_server *srv = w->h->srv;
    const struct am_config *cfg = &srv->cfg;
    if (!(w->auth.scopes & AM_SCOPE_INGEST)) {
        ws_error(w->conn, 403, "this token lacks the 'ingest' scope");
        return;
    }
    json_t *evs = json_object_get(msg, "events");
    if (!evs)
        evs = json_object_get(msg, "event");
    if (!evs) {
        ws_error(w->conn, 400, "an ingest frame carries 'events' (array) or 'event' (object)");
        return;
    }
    struct am_limits lim = {(size_t)cfg->max_json_depth, (size_t)cfg->max_payload_bytes};
    struct am_batch b;
    char err[256];
    am_rc rc = am_batch_from_json(&b, evs, w->auth.user_id, &lim, (size_t)cfg->max_batch_events,
                                  NULL, err, sizeof err);
    if (rc) {
        ws_error(w->conn, rc == AM_ELIMIT ? 413 : 400, err);
        return;
    }
    rc = am_batch_submit(srv, w->auth.user_id, &b);
    if (rc) {
        ws_error(w->conn, 503, "store failed; nothing of this frame was acknowledged, retry");
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
    ws_send(w->conn, res);
}

static int ws_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cbdata) {
    (void)cbdata;
    struct ws_conn *w = mg_get_user_connection_data(conn);
    int opcode = bits & 0x0f;
    if (!w || !w->authed)
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
        ws_error(conn, 413, "message over ws_max_frame_bytes");
        return 1;
    }
    json_t *msg = NULL;
    char err[200];
    am_rc rc = am_json_parse(data, len, (size_t)cfg->max_json_depth, &msg, err, sizeof err);
    if (rc) {
        ws_error(conn, 400, err);
        return 1;
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!json_is_object(msg))
        ws_error(conn, 400, "a frame is a JSON object with a 'type'");
    else if (type && strcmp(type, "subscribe") == 0)
        handle_subscribe(w, msg);
    else if (type && strcmp(type, "unsubscribe") == 0) {
        if (w->subscribed)
            w->h->srv->bus.ops->unsubscribe(w->h->srv->bus.impl, w->sub_id);
        w->subscribed = 0;
        ws_send(conn, json_pack("{s:s}", "type", "unsubscribed"));
    } else if (type && strcmp(type, "ingest") == 0)
        handle_ingest(w, msg);
    else if (type && strcmp(type, "ping") == 0)
        ws_send(conn, json_pack("{s:s}", "type", "pong"));
    else
        ws_error(conn, 400, "type: ingest, subscribe, unsubscribe or ping");
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
    if (w->authed && w->conn && w->h->srv->metrics)
        am_metrics_ws(w->h->srv->metrics, -1, 0);
    mg_set_user_connection_data(conn, NULL);
    am_free(w);
}

void http_ws_register(struct am_http *h) {
    mg_set_websocket_handler(h->ctx, "/v1/ws", ws_connect, ws_ready, ws_data, ws_close, h);
}
