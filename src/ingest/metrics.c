/* metrics.c — counters for /metrics in the Prometheus text format. Lock-free
 * atomics on the hot paths; rendering reads them plus store and bus stats. */
#include "http_internal.h"
#include "../process/process.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const int codes[] = {200, 201, 206, 207, 400, 401, 403, 404, 405,
                            413, 415, 416, 422, 429, 500, 503};
#define N_CODES (sizeof codes / sizeof codes[0])
static const double buckets_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define N_BUCKETS (sizeof buckets_s / sizeof buckets_s[0])

struct am_metrics {
    atomic_llong http[N_CODES + 1]; /* the last slot counts other codes */
    atomic_llong events[3];         /* stored, duplicate, rejected */
    atomic_llong ack_bucket[N_BUCKETS + 1];
    atomic_llong ack_count;
    atomic_llong ack_ns_sum;
    atomic_llong blobs, blob_bytes;
    atomic_llong ws_open, ws_messages;
    atomic_llong mqtt[AM_MQTT_N_OUTCOMES];
};

am_rc am_metrics_new(struct am_metrics **out) {
    *out = am_calloc(1, sizeof **out);
    return *out ? AM_OK : AM_ENOMEM;
}

void am_metrics_free(struct am_metrics *m) {
    am_free(m);
}

void am_metrics_ingest(struct am_metrics *m, const struct am_item_result *res, size_t n,
                       int64_t latency_ns) {
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add(&m->events[res[i].status], 1);
    double s = (double)latency_ns / 1e9;
    size_t b = 0;
    while (b < N_BUCKETS && s > buckets_s[b])
        b++;
    atomic_fetch_add(&m->ack_bucket[b], 1);
    atomic_fetch_add(&m->ack_count, 1);
    atomic_fetch_add(&m->ack_ns_sum, latency_ns);
}

void am_metrics_rejected(struct am_metrics *m, size_t n) {
    atomic_fetch_add(&m->events[AM_ITEM_REJECTED], (long long)n);
}

void am_metrics_http(struct am_metrics *m, int status) {
    size_t i = 0;
    while (i < N_CODES && codes[i] != status)
        i++;
    atomic_fetch_add(&m->http[i], 1);
}

void am_metrics_blob(struct am_metrics *m, int64_t bytes) {
    atomic_fetch_add(&m->blobs, 1);
    atomic_fetch_add(&m->blob_bytes, bytes);
}

void am_metrics_ws(struct am_metrics *m, int delta_connections, int64_t messages) {
    atomic_fetch_add(&m->ws_open, delta_connections);
    atomic_fetch_add(&m->ws_messages, messages);
}

void am_metrics_mqtt(struct am_metrics *m, enum am_mqtt_outcome outcome) {
    if ((unsigned)outcome < AM_MQTT_N_OUTCOMES)
        atomic_fetch_add(&m->mqtt[outcome], 1);
}

static long long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

#define HELP(name, type, help)                                                                     \
    am_buf_printf(out, "# HELP " name " " help "\n# TYPE " name " " type "\n")

am_rc am_metrics_render(struct am_server *srv, struct am_buf *out) {
    struct am_metrics *m = srv->metrics;
    am_rc rc = AM_OK;
    if (!m)
        return AM_EINVAL;
    rc |= HELP("am_http_requests_total", "counter", "HTTP requests answered, by status code.");
    for (size_t i = 0; i <= N_CODES; i++) {
        long long v = atomic_load(&m->http[i]);
        if (i < N_CODES)
            rc |= am_buf_printf(out, "am_http_requests_total{code=\"%d\"} %lld\n", codes[i], v);
        else
            rc |= am_buf_printf(out, "am_http_requests_total{code=\"other\"} %lld\n", v);
    }
    static const char *st[] = {"stored", "duplicate", "rejected"};
    rc |= HELP("am_events_total", "counter", "Events received, by outcome.");
    for (int i = 0; i < 3; i++)
        rc |= am_buf_printf(out, "am_events_total{status=\"%s\"} %lld\n", st[i],
                            (long long)atomic_load(&m->events[i]));
    rc |= HELP("am_ingest_ack_seconds", "histogram",
               "Time from handing a batch to the store to its durable commit.");
    long long cum = 0;
    for (size_t b = 0; b < N_BUCKETS; b++) {
        cum += atomic_load(&m->ack_bucket[b]);
        rc |= am_buf_printf(out, "am_ingest_ack_seconds_bucket{le=\"%g\"} %lld\n", buckets_s[b],
                            cum);
    }
    cum += atomic_load(&m->ack_bucket[N_BUCKETS]);
    rc |= am_buf_printf(out, "am_ingest_ack_seconds_bucket{le=\"+Inf\"} %lld\n", cum);
    rc |= am_buf_printf(out, "am_ingest_ack_seconds_sum %.9f\n",
                        (double)atomic_load(&m->ack_ns_sum) / 1e9);
    rc |= am_buf_printf(out, "am_ingest_ack_seconds_count %lld\n",
                        (long long)atomic_load(&m->ack_count));
    rc |= HELP("am_blobs_uploaded_total", "counter", "Blob uploads accepted.");
    rc |= am_buf_printf(out, "am_blobs_uploaded_total %lld\n", (long long)atomic_load(&m->blobs));
    rc |= HELP("am_blob_bytes_total", "counter", "Bytes of accepted blob uploads.");
    rc |= am_buf_printf(out, "am_blob_bytes_total %lld\n", (long long)atomic_load(&m->blob_bytes));
    rc |= HELP("am_websocket_connections", "gauge", "Open WebSocket connections.");
    rc |= am_buf_printf(out, "am_websocket_connections %lld\n",
                        (long long)atomic_load(&m->ws_open));
    rc |= HELP("am_websocket_messages_total", "counter", "WebSocket messages received.");
    rc |= am_buf_printf(out, "am_websocket_messages_total %lld\n",
                        (long long)atomic_load(&m->ws_messages));
    static const char *mq[AM_MQTT_N_OUTCOMES] = {"received", "stored", "ignored", "rejected",
                                                  "unacked"};
    rc |= HELP("am_mqtt_messages_total", "counter", "MQTT messages, by outcome.");
    for (int i = 0; i < AM_MQTT_N_OUTCOMES; i++)
        rc |= am_buf_printf(out, "am_mqtt_messages_total{outcome=\"%s\"} %lld\n", mq[i],
                            (long long)atomic_load(&m->mqtt[i]));

    struct am_store_stats ss;
    memset(&ss, 0, sizeof ss);
    srv->store.ops->stats(srv->store.impl, &ss);
    rc |= HELP("am_store_commits_total", "counter", "Group commits (transactions fsynced).");
    rc |= am_buf_printf(out, "am_store_commits_total %lld\n", (long long)ss.commits);
    rc |= HELP("am_store_commit_seconds_total", "counter", "Time spent in group commits.");
    rc |= am_buf_printf(out, "am_store_commit_seconds_total %.9f\n",
                        (double)ss.commit_ns_total / 1e9);
    rc |= HELP("am_store_queue_depth", "gauge", "Appends waiting for the writer thread.");
    rc |= am_buf_printf(out, "am_store_queue_depth %lld\n", (long long)ss.queue_depth);
    rc |= HELP("am_store_batch_events_max", "gauge", "Largest group commit so far, in events.");
    rc |= am_buf_printf(out, "am_store_batch_events_max %lld\n", (long long)ss.batch_events_max);

    int64_t published = 0, dropped = 0, depth = 0;
    srv->bus.ops->stats(srv->bus.impl, &published, &dropped, &depth);
    rc |= HELP("am_bus_published_total", "counter", "Notices published on the bus.");
    rc |= am_buf_printf(out, "am_bus_published_total %lld\n", (long long)published);
    rc |= HELP("am_bus_dropped_total", "counter", "Notices dropped (queue full or closing).");
    rc |= am_buf_printf(out, "am_bus_dropped_total %lld\n", (long long)dropped);
    rc |= HELP("am_bus_queue_depth", "gauge", "Notices waiting for delivery.");
    rc |= am_buf_printf(out, "am_bus_queue_depth %lld\n", (long long)depth);

    rc |= HELP("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    rc |= am_buf_printf(out, "process_resident_memory_bytes %lld\n", rss_bytes());
    rc |= HELP("process_start_time_seconds", "gauge", "Start time since the epoch in seconds.");
    rc |= am_buf_printf(out, "process_start_time_seconds %.3f\n", (double)srv->started_ns / 1e9);
    if (srv->process) {
        size_t before = out->len;
        am_process_metrics(srv->process, out);
        if (out->len == before)
            rc |= AM_ENOMEM;
    }
    return rc ? AM_ENOMEM : AM_OK;
}
