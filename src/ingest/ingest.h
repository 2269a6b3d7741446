/* ingest.h — the doors into AM and the one function they all call.
 * am_ingest_submit() is the single entry point for events (client, importer or
 * derived); the HTTP/WebSocket server (http_*.c, CivetWeb) is the first door and
 * also serves the read API, /healthz, /readyz and /metrics. */
#ifndef AM_INGEST_H
#define AM_INGEST_H

#include "../bus/bus.h"
#include "../core/core.h"
#include "../store/store.h"

struct am_http;     /* opaque: the HTTP server */
struct am_process;  /* opaque: the enrichment pipeline (process.h) */
struct am_agent;    /* opaque: the agent's triggers (agent.h) */
struct am_metrics;  /* opaque: counters for /metrics */
struct am_mqtt;     /* opaque: the MQTT subscriber (mqtt.c) */

/* Everything amd runs, wired once in main. No global mutable state outside it. */
struct am_server {
    struct am_config cfg;
    struct am_store store;
    struct am_bus bus;
    struct am_http *http;
    struct am_metrics *metrics;
    struct am_process *process; /* the enrichment pipeline (src/process), or NULL */
    struct am_agent *agent;     /* the agent's trigger thread (src/agent), or NULL */
    struct am_mqtt *mqtt;       /* the MQTT door (mqtt.c), or NULL when mqtt_url is empty */
    int64_t started_ns;
};

/* Stores events for one user (blocking until durable) and publishes a "stored"
 * notice for each newly stored one. Fills res[i]. Any thread. */
am_rc am_ingest_submit(struct am_server *srv, int64_t user_id, struct am_event *evs, size_t n,
                       struct am_item_result *res);

/* A parsed request body: events that passed validation sit in evs (index[i] is their
 * position in the body); those that did not are already marked rejected in res. */
struct am_batch {
    size_t n_items;              /* items in the body */
    struct am_item_result *res;  /* n_items results */
    char (*keys)[AM_KEY_MAX + 1];/* n_items keys as given or derived ("" when unknown) */
    struct am_event *evs;        /* valid events */
    size_t *index;               /* body position of evs[i] */
    size_t n_evs;
};

/* Parses a JSON array, one object, or (ndjson = 1) NDJSON, and validates each item.
 * A body that is not well-formed fails whole (AM_EINVAL / AM_ELIMIT, err says where)
 * and leaves *b empty. trace is the request's traceparent or NULL. */
am_rc am_batch_parse(struct am_batch *b, const char *buf, size_t len, int ndjson,
                     int64_t user_id, const struct am_limits *lim, size_t max_items,
                     const char *trace, char *err, size_t err_len);
/* Same, from an already parsed JSON value (a WebSocket frame). */
am_rc am_batch_from_json(struct am_batch *b, const json_t *v, int64_t user_id,
                         const struct am_limits *lim, size_t max_items, const char *trace,
                         char *err, size_t err_len);
/* Submits the valid events and fills in their results. */
am_rc am_batch_submit(struct am_server *srv, int64_t user_id, struct am_batch *b);
/* {"results": [...], "stored": n, "duplicate": n, "rejected": n}; caller owns. */
json_t *am_batch_results_json(const struct am_batch *b);
void am_batch_free(struct am_batch *b);

/* Starts serving on cfg.listen; returns once the socket listens. */
am_rc am_http_start(struct am_server *srv, char *err, size_t err_len);
/* Stops accepting, closes WebSockets, waits for workers. */
void am_http_stop(struct am_server *srv);
/* The bound port (useful when listening on port 0). */
int am_http_port(const struct am_server *srv);

/* The MQTT door (mqtt.c): subscribes to cfg.mqtt_topics at QoS 1 with a persistent
 * session (cfg.mqtt_client_id) on its own thread, reconnecting with backoff; a message is
 * acknowledged only once its events are durable. Returns at once (the broker may be down).
 * Main thread only; am_mqtt_stop(NULL) is a no-op. */
am_rc am_mqtt_start(struct am_server *srv, struct am_mqtt **out, char *err, size_t err_len);
void am_mqtt_stop(struct am_mqtt *m);

enum am_mqtt_door { AM_MQTT_EVENTS = 1, AM_MQTT_OWNTRACKS };
struct am_mqtt_topic {
    enum am_mqtt_door door;
    char user[64];                 /* the AM user name */
    char name[AM_SOURCE_MAX + 1];  /* the stream (am/) or the device (owntracks/) */
};
/* am/<user>/<stream>, owntracks/<user>/<device>[/event|/waypoint|/waypoints]: AM_OK;
 * another OwnTracks subtopic (info, cmd, ...): AM_ENOTFOUND; anything else AM_EINVAL. */
am_rc am_mqtt_topic_parse(const char *topic, size_t len, struct am_mqtt_topic *out);
/* One message's payload to events appended to out (caller frees with am_event_list_free):
 * AM JSON (object, array or NDJSON; the topic's stream when an event has none) or OwnTracks
 * JSON. Items that cannot be events are counted in *skipped; a payload that is not JSON
 * fails (AM_EINVAL/AM_ELIMIT, err says why). Touches neither network nor store. */
am_rc am_mqtt_events(const struct am_mqtt_topic *t, int64_t user_id, const struct am_limits *lim,
                     size_t max_items, const char *buf, size_t len, struct am_event_list *out,
                     size_t *skipped, char *err, size_t err_len);

enum am_mqtt_outcome {
    AM_MQTT_RECEIVED, /* every message */
    AM_MQTT_STORED,   /* its events are durable (or were already there) */
    AM_MQTT_IGNORED,  /* nothing to store in it (an OwnTracks lwt, card, info ...) */
    AM_MQTT_REJECTED, /* dropped: bad topic, unknown user, not JSON */
    AM_MQTT_UNACKED,  /* not acknowledged (store failure); the broker delivers it again */
    AM_MQTT_N_OUTCOMES
};
void am_metrics_mqtt(struct am_metrics *m, enum am_mqtt_outcome outcome);

am_rc am_metrics_new(struct am_metrics **out);
void am_metrics_free(struct am_metrics *m);

#endif
