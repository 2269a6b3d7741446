/* mqtt.c — the MQTT door: a libmosquitto subscriber (persistent session, QoS 1) that turns
 * am/<user>/<stream> (AM events) and owntracks/<user>/<device> (OwnTracks JSON) messages
 * into events and stores them through am_ingest_submit before the broker is acknowledged.
 *
 * Trust: the broker authenticates publishers and its ACL decides who may publish to which
 * topic; amd believes the <user> in the topic. Run the broker with per-user ACLs. */
#include "http_internal.h"

#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define KEEPALIVE_S 60

struct am_mqtt {
    struct am_server *srv;
    struct mosquitto *mosq;
    pthread_t thread;
    atomic_int stopping;
    atomic_int connacked; /* the broker accepted us since the last (re)connect */
    char host[256];
    int port;
    char topics[sizeof((struct am_config *)0)->mqtt_topics];
};

/* ---------------------------------------------------------------- topics and payloads */

/* Copies segment [a, z) of topic into out (out_len bytes with the NUL); 0 when it is
 * empty, too long, or holds a wildcard or a NUL. */
static int segment(const char *a, const char *z, char *out, size_t out_len) {
    size_t n = (size_t)(z - a);
    if (n == 0 || n >= out_len)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] == '\0' || a[i] == '+' || a[i] == '#')
            return 0;
    memcpy(out, a, n);
    out[n] = '\0';
    return 1;
}

am_rc am_mqtt_topic_parse(const char *topic, size_t len, struct am_mqtt_topic *out) {
    const char *seg[5];
    size_t n_seg = 0;
    const char *end = topic + len, *p = topic;
    memset(out, 0, sizeof *out);
    seg[n_seg++] = p;
    while (p < end && n_seg < 5) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        if (!slash)
            break;
        p = slash + 1;
        seg[n_seg++] = p;
    }
    if (n_seg < 3 || n_seg > 4 || memchr(p, '/', (size_t)(end - p)))
        return AM_EINVAL;
    /* seg[i] runs to the next '/' (or the end). */
    const char *stop[4];
    for (size_t i = 0; i < n_seg; i++)
        stop[i] = i + 1 < n_seg ? seg[i + 1] - 1 : end;
    char root[16];
    if (!segment(seg[0], stop[0], root, sizeof root) ||
        !segment(seg[1], stop[1], out->user, sizeof out->user))
        return AM_EINVAL;
    if (!strcmp(root, "am") && n_seg == 3) {
        out->door = AM_MQTT_EVENTS;
        return segment(seg[2], stop[2], out->name, AM_STREAM_MAX + 1) ? AM_OK : AM_EINVAL;
    }
    if (strcmp(root, "owntracks") != 0)
        return AM_EINVAL;
    if (!segment(seg[2], stop[2], out->name, sizeof out->name))
        return AM_EINVAL;
    out->door = AM_MQTT_OWNTRACKS;
    if (n_seg == 3)
        return AM_OK;
    /* The app's subtopics: transitions come on .../event, waypoints on .../waypoint(s);
     * info, cmd, card, dump and the rest carry nothing AM stores. */
    char sub[16];
    if (segment(seg[3], stop[3], sub, sizeof sub) &&
        (!strcmp(sub, "event") || !strcmp(sub, "waypoint") || !strcmp(sub, "waypoints")))
        return AM_OK;
    return AM_ENOTFOUND;
}

/* NDJSON: one JSON value a line; blank lines are skipped, a bad line fails the whole. */
static am_rc parse_lines(const char *buf, size_t len, size_t max_depth, size_t max_items,
                         json_t **out, char *err, size_t err_len) {
    json_t *arr = json_array();
    size_t line = 0, pos = 0;
    if (!arr)
        return AM_ENOMEM;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t a = pos, z = nl ? (size_t)(nl - buf) : len;
        pos = z + 1;
        line++;
        while (a < z && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r'))
            a++;
        while (z > a && (buf[z - 1] == ' ' || buf[z - 1] == '\t' || buf[z - 1] == '\r'))
            z--;
        if (a == z)
            continue;
        if (json_array_size(arr) >= max_items) {
            snprintf(err, err_len, "more than %zu events in one message", max_items);
            json_decref(arr);
            return AM_ELIMIT;
        }
        char sub[200];
        json_t *v = NULL;
        am_rc rc = am_json_parse(buf + a, z - a, max_depth, &v, sub, sizeof sub);
        if (rc) {
            snprintf(err, err_len, "line %zu: %s", line, sub);
            json_decref(arr);
            return rc;
        }
        if (json_array_append_new(arr, v)) {
            json_decref(arr);
            return AM_ENOMEM;
        }
    }
    *out = arr;
    return AM_OK;
}

/* am/<user>/<stream>: one event object, an array of them, or NDJSON; the topic's stream
 * stands in for a missing "stream". Validation is POST /v1/events' (am_batch_from_json). */
static am_rc am_events(const struct am_mqtt_topic *t, const struct am_client_ctx *cx,
                       const char *buf, size_t len, struct am_event_list *out, size_t *skipped,
                       char *err, size_t err_len) {
    size_t depth = cx->lim.max_depth ? cx->lim.max_depth : 32;
    size_t max_items = cx->max_items ? cx->max_items : 1000;
    json_t *v = NULL;
    struct am_batch b;
    am_rc rc = am_json_parse(buf, len, depth, &v, err, err_len);
    if (rc == AM_EINVAL && memchr(buf, '\n', len))
        rc = parse_lines(buf, len, depth, max_items, &v, err, err_len);
    if (rc)
        return rc;
    json_t *stream = json_string(t->name);
    if (!stream) {
        /* A broker checks that topics are UTF-8; this one did not. */
        json_decref(v);
        snprintf(err, err_len, "the topic's stream is not UTF-8");
        return AM_EINVAL;
    }
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n && rc == AM_OK; i++) {
        json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
        if (json_is_object(item) && !json_object_get(item, "stream") &&
            json_object_set(item, "stream", stream))
            rc = AM_ENOMEM;
    }
    json_decref(stream);
    if (rc) {
        json_decref(v);
        snprintf(err, err_len, "out of memory");
        return rc;
    }
    rc = am_batch_from_json(&b, v, cx->user_id, &cx->lim, max_items, NULL, err, err_len);
    json_decref(v);
    if (rc)
        return rc;
    for (size_t i = 0; i < b.n_items; i++)
        if (b.res[i].status == AM_ITEM_REJECTED) {
            if (*skipped == 0)
                am_warn("mqtt: am/%s/%s: item %zu rejected: %s", t->user, t->name, i,
                        b.res[i].reason);
            (*skipped)++;
        }
    for (size_t i = 0; i < b.n_evs && rc == AM_OK; i++)
        rc = am_event_list_push(out, &b.evs[i]); /* takes the payload */
    am_batch_free(&b);
    if (rc)
        snprintf(err, err_len, "out of memory");
    return rc;
}

am_rc am_mqtt_events(const struct am_mqtt_topic *t, int64_t user_id, const struct am_limits *lim,
                     size_t max_items, const char *buf, size_t len, struct am_event_list *out,
                     size_t *skipped, char *err, size_t err_len) {
    struct am_client_ctx cx = {
        .user_id = user_id, .device = t->name, .lim = *lim, .max_items = max_items};
    if (t->door == AM_MQTT_EVENTS)
        return am_events(t, &cx, buf, len, out, skipped, err, err_len);
    /* OwnTracks keys come from (user, device, tst, _type): a redelivered message, or the
     * same fix over HTTP, is a duplicate, never a second event. */
    return http_owntracks_parse(&cx, buf, len, out, skipped, err, err_len);
}

/* ---------------------------------------------------------------- the subscriber */

static void count(struct am_mqtt *m, enum am_mqtt_outcome o) {
    if (m->srv->metrics)
        am_metrics_mqtt(m->srv->metrics, o);
}

/* Leaves the message unacknowledged: the socket is shut before libmosquitto writes the
 * PUBACK it queued, so the broker delivers the message again after we reconnect. */
static void refuse(struct am_mqtt *m, struct mosquitto *mosq, const char *topic, am_rc rc) {
    am_warn("mqtt: %s: %s; not acknowledged, the broker will deliver it again", topic,
            am_strerror(rc));
    count(m, AM_MQTT_UNACKED);
    int fd = mosquitto_socket(mosq);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* Runs on the MQTT thread. libmosquitto queues the PUBACK of a QoS 1 message before it
 * calls this; since the client is in threaded mode (mosquitto_threaded_set) nothing is
 * written until this returns and the loop writes. am_ingest_submit returns after the
 * fsync'd commit, so a PUBACK on the wire means the events are durable. */
static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg) {
    struct am_mqtt *m = obj;
    struct am_server *srv = m->srv;
    const struct am_config *cfg = &srv->cfg;
    const char *topic = msg->topic ? msg->topic : "";
    const char *payload = msg->payload ? (const char *)msg->payload : "";
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    struct am_mqtt_topic t;
    struct am_event_list evs = {0};
    struct am_item_result *res = NULL;
    char err[256] = "";
    size_t skipped = 0;

    count(m, AM_MQTT_RECEIVED);
    am_rc rc = am_mqtt_topic_parse(topic, strlen(topic), &t);
    if (rc == AM_ENOTFOUND) {
        count(m, AM_MQTT_IGNORED);
        return;
    }
    if (rc) {
        am_warn("mqtt: %s: not am/<user>/<stream> or owntracks/<user>/<device>; dropped", topic);
        goto rejected;
    }
    if (len > (size_t)cfg->max_body_bytes) {
        am_warn("mqtt: %s: %zu bytes, over max_body_bytes; dropped", topic, len);
        goto rejected;
    }
    struct am_limits lim = {(size_t)cfg->max_json_depth, (size_t)cfg->max_payload_bytes};
    int64_t user_id = 0;
    rc = srv->store.ops->user_find(srv->store.impl, t.user, &user_id);
    if (rc == AM_ENOTFOUND) {
        am_warn("mqtt: %s: no AM user '%s'; dropped", topic, t.user);
        goto rejected;
    }
    if (rc) {
        refuse(m, mosq, topic, rc);
        goto out;
    }
    rc = am_mqtt_events(&t, user_id, &lim, (size_t)cfg->max_batch_events, payload, len, &evs,
                        &skipped, err, sizeof err);
    if (rc == AM_ENOMEM) {
        refuse(m, mosq, topic, rc);
        goto out;
    }
    if (rc) {
        /* A message that can never be stored is dropped (acknowledged), or the broker
         * would deliver it forever and hold up everything queued behind it. */
        am_warn("mqtt: %s: %s; dropped", topic, err);
        goto rejected;
    }
    if (evs.n) {
        res = am_calloc(evs.n, sizeof *res);
        rc = res ? am_ingest_submit(srv, user_id, evs.items, evs.n, res) : AM_ENOMEM;
        if (rc) {
            refuse(m, mosq, topic, rc);
            goto out;
        }
        for (size_t i = 0; i < evs.n; i++)
            skipped += res[i].status == AM_ITEM_REJECTED;
    }
    if (skipped && srv->metrics)
        am_metrics_rejected(srv->metrics, skipped);
    count(m, evs.n ? AM_MQTT_STORED : AM_MQTT_IGNORED);
    goto out;
rejected:
    count(m, AM_MQTT_REJECTED);
out:
    am_free(res);
    am_event_list_free(&evs);
}

/* Subscribes on every connect: a broker that lost our session (restarted without
 * persistence) would otherwise send nothing. With a session, it is a no-op. */
static void on_connect(struct mosquitto *mosq, void *obj, int rc) {
    struct am_mqtt *m = obj;
    if (rc != 0) {
        am_warn("mqtt: %s:%d refused the connection: %s", m->host, m->port,
                mosquitto_connack_string(rc));
        return;
    }
    atomic_store(&m->connacked, 1);
    am_info("mqtt: connected to %s:%d", m->host, m->port);
    char list[sizeof m->topics];
    memcpy(list, m->topics, sizeof list);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (!n)
            continue;
        int r = mosquitto_subscribe(mosq, NULL, tok, 1);
        if (r != MOSQ_ERR_SUCCESS)
            am_warn("mqtt: subscribe %s: %s", tok, mosquitto_strerror(r));
    }
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc) {
    struct am_mqtt *m = obj;
    (void)mosq;
    if (rc != 0 && !atomic_load(&m->stopping))
        am_warn("mqtt: lost the connection to %s:%d", m->host, m->port);
}

/* Sleeps ms unless stopping; in small steps so SIGTERM is not held up. */
static void nap(struct am_mqtt *m, int ms) {
    while (ms > 0 && !atomic_load(&m->stopping)) {
        int step = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Our own loop rather than mosquitto_loop_start: it retries every failure (a refused
 * login, a name that does not resolve) with backoff instead of giving up, and it keeps
 * the client in threaded mode so the PUBACK waits for on_message (see there). */
static void *mqtt_thread(void *arg) {
    struct am_mqtt *m = arg;
    int delay_ms = BACKOFF_MIN_MS, first = 1;
    while (!atomic_load(&m->stopping)) {
        atomic_store(&m->connacked, 0);
        int rc = first ? mosquitto_connect_async(m->mosq, m->host, m->port, KEEPALIVE_S)
                       : mosquitto_reconnect_async(m->mosq);
        first = 0;
        while (rc == MOSQ_ERR_SUCCESS && !atomic_load(&m->stopping))
            rc = mosquitto_loop(m->mosq, 200, 1);
        if (atomic_load(&m->stopping))
            break;
        if (atomic_load(&m->connacked))
            delay_ms = BACKOFF_MIN_MS;
        am_warn("mqtt: %s:%d: %s; trying again in %d ms", m->host, m->port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc), delay_ms);
        nap(m, delay_ms);
        delay_ms = delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay_ms * 2;
    }
    /* Say goodbye so the broker keeps the session without publishing a will. */
    if (mosquitto_disconnect(m->mosq) == MOSQ_ERR_SUCCESS)
        for (int i = 0; i < 10 && mosquitto_loop(m->mosq, 50, 1) == MOSQ_ERR_SUCCESS; i++)
            ;
    return NULL;
}

/* mqtt://HOST[:PORT], mqtts://..., tcp://...; [v6]:PORT too. */
static am_rc parse_url(const char *url, char *host, size_t host_len, int *port, int *tls, char *err,
                       size_t err_len) {
    const char *p = strstr(url, "://");
    const char *scheme_end = p;
    *tls = 0;
    *port = 1883;
    if (p) {
        size_t n = (size_t)(scheme_end - url);
        if (n == 5 && !strncmp(url, "mqtts", 5)) {
            *tls = 1;
            *port = 8883;
        } else if (!((n == 4 && !strncmp(url, "mqtt", 4)) || (n == 3 && !strncmp(url, "tcp", 3)))) {
            snprintf(err, err_len, "mqtt_url: the scheme is mqtt:// or mqtts://");
            return AM_EINVAL;
        }
        p += 3;
    } else {
        p = url;
    }
    const char *hs = p, *he, *rest;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he)
            goto bad;
        rest = he + 1;
    } else {
        he = p + strcspn(p, ":/");
        rest = he;
    }
    if (he == hs || (size_t)(he - hs) >= host_len)
        goto bad;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (*rest == ':') {
        char *end = NULL;
        long v = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || v < 1 || v > 65535 || (*end && *end != '/'))
            goto bad;
        *port = (int)v;
    } else if (*rest && *rest != '/') {
        goto bad;
    }
    return AM_OK;
bad:
    snprintf(err, err_len, "mqtt_url '%s': expected mqtt://HOST:PORT", url);
    return AM_EINVAL;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
/* Once per process; never cleaned up, as other parts may use OpenSSL until exit. */
static void lib_init(void) {
    mosquitto_lib_init();
}

am_rc am_mqtt_start(struct am_server *srv, struct am_mqtt **out, char *err, size_t err_len) {
    const struct am_config *cfg = &srv->cfg;
    int tls = 0;
    am_rc rc = AM_OK;
    *out = NULL;
    struct am_mqtt *m = am_calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_len, "mqtt: out of memory");
        return AM_ENOMEM;
    }
    m->srv = srv;
    snprintf(m->topics, sizeof m->topics, "%s", cfg->mqtt_topics);
    rc = parse_url(cfg->mqtt_url, m->host, sizeof m->host, &m->port, &tls, err, err_len);
    if (rc)
        goto fail;
    if (!cfg->mqtt_client_id[0]) {
        /* A persistent session is found again by its client id. */
        snprintf(err, err_len, "mqtt_client_id: needed for a persistent session");
        rc = AM_EINVAL;
        goto fail;
    }
    pthread_once(&lib_once, lib_init);
    m->mosq = mosquitto_new(cfg->mqtt_client_id, false, m);
    if (!m->mosq) {
        snprintf(err, err_len, "mqtt: mosquitto_new: %s", strerror(errno));
        rc = AM_ENOMEM;
        goto fail;
    }
    mosquitto_threaded_set(m->mosq, true);
    if (cfg->mqtt_username[0] &&
        mosquitto_username_pw_set(m->mosq, cfg->mqtt_username,
                                  cfg->mqtt_password[0] ? cfg->mqtt_password : NULL) !=
            MOSQ_ERR_SUCCESS) {
        snprintf(err, err_len, "mqtt: cannot set the user name");
        rc = AM_EINVAL;
        goto fail;
    }
    if (tls && mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1) != MOSQ_ERR_SUCCESS) {
        snprintf(err, err_len, "mqtt: TLS is not available in this libmosquitto");
        rc = AM_EINVAL;
        goto fail;
    }
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
    mosquitto_message_callback_set(m->mosq, on_message);
    /* The broker being down is no reason not to start: the thread connects when it can. */
    if (pthread_create(&m->thread, NULL, mqtt_thread, m) != 0) {
        snprintf(err, err_len, "mqtt: cannot start its thread");
        rc = AM_ENOMEM;
        goto fail;
    }
    am_info("mqtt: subscribing to %s on %s:%d as '%s'", m->topics, m->host, m->port,
            cfg->mqtt_client_id);
    *out = m;
    return AM_OK;
fail:
    if (m->mosq)
        mosquitto_destroy(m->mosq);
    am_free(m);
    return rc;
}

void am_mqtt_stop(struct am_mqtt *m) {
    if (!m)
        return;
    atomic_store(&m->stopping, 1);
    pthread_join(m->thread, NULL);
    mosquitto_destroy(m->mosq);
    am_free(m);
}
