/* bench_ingest.c — HTTP ingest throughput against a raw SQLite bulk insert of the
 * same rows in the same run, single-event ack latency, and amd's memory.
 * usage: bench_ingest URL TOKEN AMD_PID [SCRATCH_DIR]   (BENCH_EVENTS scales it) */
#include "core/core.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1000
#define CLIENTS 2

static const char *url, *token;
static long total_events = 200000;

static size_t sink(char *p, size_t s, size_t n, void *arg) {
    (void)p;
    (void)arg;
    return s * n;
}

static CURL *client(struct curl_slist **hdrs) {
    CURL *c = curl_easy_init();
    char auth[400], u[600];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    *hdrs = curl_slist_append(NULL, auth);
    *hdrs = curl_slist_append(*hdrs, "Content-Type: application/x-ndjson");
    snprintf(u, sizeof u, "%s/v1/events", url);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    return c;
}

/* One NDJSON batch of small heart-rate events with unique keys. */
static size_t make_batch(char *buf, size_t cap, const char *tag, long first, long n) {
    size_t len = 0;
    for (long i = first; i < first + n; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"stream\":\"health.heart_rate\",\"ts\":%ld,\"source\":\"bench\","
                                "\"key\":\"%s-%ld\",\"payload\":{\"bpm\":%ld}}\n",
                                1700000000000L + i, tag, i, 40 + i % 100);
    return len;
}

static long post(CURL *c, const char *body, size_t len) {
    long status = 0;
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

struct worker {
    int id;
    long from, count, failed;
    const char *tag;
};

static void *ingest_worker(void *arg) {
    struct worker *w = arg;
    struct curl_slist *h;
    CURL *c = client(&h);
    size_t cap = (size_t)BATCH * 200;
    char *buf = malloc(cap);
    for (long i = w->from; i < w->from + w->count; i += BATCH) {
        size_t len = make_batch(buf, cap, w->tag, i, BATCH);
        if (post(c, buf, len) != 200)
            w->failed++;
    }
    free(buf);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return NULL;
}

static double http_ingest(const char *tag, long first, long n) {
    pthread_t t[CLIENTS];
    struct worker w[CLIENTS];
    int64_t t0 = am_mono_ns();
    for (int i = 0; i < CLIENTS; i++) {
        w[i] = (struct worker){i, first + i * (n / CLIENTS), n / CLIENTS, 0, tag};
        pthread_create(&t[i], NULL, ingest_worker, &w[i]);
    }
    long failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        failed += w[i].failed;
    }
    if (failed)
        printf("warning: %ld batches failed\n", failed);
    return (double)n / ((double)(am_mono_ns() - t0) / 1e9);
}

/* The same rows, the same indexes, the same durability, straight into SQLite. */
static double raw_sqlite(const char *dir, long n) {
    char path[600];
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(path, sizeof path, "%s/raw.db", dir);
    remove(path);
    sqlite3_open(path, &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE events(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
                 " stream_id INTEGER NOT NULL, source TEXT NOT NULL, ts_ns INTEGER NOT NULL,"
                 " ts_end_ns INTEGER, payload TEXT NOT NULL, blob TEXT, key TEXT NOT NULL,"
                 " trace TEXT, received_ns INTEGER NOT NULL);"
                 "CREATE UNIQUE INDEX events_key ON events(user_id, key);"
                 "CREATE INDEX events_stream_ts ON events(user_id, stream_id, ts_ns, id);"
                 "CREATE INDEX events_ts ON events(user_id, ts_ns, id);",
                 NULL, NULL, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO events(user_id, stream_id, source, ts_ns, payload, key,"
                       " received_ns) VALUES(1, 1, 'bench', ?1, ?2, ?3, ?4)",
                       -1, &st, NULL);
    int64_t t0 = am_mono_ns();
    char payload[64], key[64];
    for (long i = 0; i < n; i++) {
        if (i % BATCH == 0)
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        snprintf(payload, sizeof payload, "{\"bpm\":%ld}", 40 + i % 100);
        snprintf(key, sizeof key, "raw-%ld", i);
        sqlite3_bind_int64(st, 1, (1700000000000L + i) * 1000000);
        sqlite3_bind_text(st, 2, payload, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, am_now_ns());
        sqlite3_step(st);
        sqlite3_reset(st);
        if (i % BATCH == BATCH - 1 || i == n - 1)
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double rate = (double)n / ((double)(am_mono_ns() - t0) / 1e9);
    sqlite3_finalize(st);
    sqlite3_close(db);
    remove(path);
    return rate;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void latency(int n) {
    struct curl_slist *h;
    CURL *c = client(&h);
    int64_t *lat = malloc(sizeof *lat * (size_t)n);
    char body[256];
    for (int i = 0; i < n; i++) {
        size_t len = make_batch(body, sizeof body, "lat", i, 1);
        int64_t t0 = am_mono_ns();
        post(c, body, len);
        lat[i] = am_mono_ns() - t0;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp64);
    printf("single-event ack latency p50: %.3f ms\n", (double)lat[n / 2] / 1e6);
    printf("single-event ack latency p99: %.3f ms\n", (double)lat[n * 99 / 100] / 1e6);
    free(lat);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

static long rss_kb(const char *pid) {
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_ingest URL TOKEN AMD_PID [SCRATCH_DIR]\n");
        return 2;
    }
    url = argv[1];
    token = argv[2];
    const char *pid = argv[3], *dir = argc > 4 ? argv[4] : "/tmp";
    long big = 1000000;
    if (getenv("BENCH_EVENTS"))
        big = strtol(getenv("BENCH_EVENTS"), NULL, 10);
    if (big < 20000)
        big = 20000;
    total_events = big / 5;
    total_events -= total_events % (BATCH * CLIENTS);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    printf("amd RSS idle: %.1f MiB\n", (double)rss_kb(pid) / 1024);
    double http = http_ingest("tp", 0, total_events);
    double raw = raw_sqlite(dir, total_events);
    printf("http ingest (%d clients, batches of %d, %ld events): %.0f events/s\n", CLIENTS, BATCH,
           total_events, http);
    printf("raw sqlite bulk insert (same rows, WAL, synchronous=FULL): %.0f rows/s\n", raw);
    printf("ratio http/raw_sqlite: %.2f (target >= 0.5)\n", http / raw);
    latency(2000);
    long done = total_events;
    while (done < big) {
        long n = big - done < 100000 ? big - done : 100000;
        n -= n % (BATCH * CLIENTS);
        if (n <= 0)
            break;
        http_ingest("fill", done, n);
        done += n;
    }
    printf("amd RSS after %ld events: %.1f MiB\n", done, (double)rss_kb(pid) / 1024);
    curl_global_cleanup();
    return 0;
}
