/* bench_ingest.c — ingest figures from one run, so that ratios compare like with like: HTTP
 * ingest throughput beside the same rows appended in-process through the store and
 * bulk-inserted into bare SQLite, single-event ack latency, and amd's memory idle and after
 * BENCH_EVENTS (default 1M) events. Speed is printed, never judged: it exits 0 unless it
 * could not run at all.
 * usage: bench_ingest URL TOKEN AMD_PID SCRATCH_DIR   (scripts/bench.sh passes them) */
#include "core/core.h"
#include "store/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_EVENTS 1000
#define CLIENTS 2
#define THROUGHPUT_EVENTS 200000L /* the three throughput phases, fewer if BENCH_EVENTS is */
#define LATENCY_REQUESTS 2000
#define MAX_ROUNDS 99
#define FILL_CHUNK_EVENTS 100000L /* progress is printed after each chunk */
#define EVENT_MAX_BYTES 160       /* one NDJSON line below, with room to spare */
#define ANSWER_MAX_BYTES (16u << 20)
#define BASE_TS_MS 1700000000000LL
#define SOURCE "bench"

static const char *base_url, *token;

/* ---------------------------------------------------------------- the rows
 * Row i is the same in every phase: a heart rate at BASE_TS_MS + i ms, bpm 40..139, and the
 * key "<tag>-<i>". Only the tag differs, so the HTTP phases never collide in amd. */

static int64_t row_ts_ns(long i) {
    return (BASE_TS_MS + i) * 1000000LL;
}

static int row_payload(long i, char *out, size_t out_len) {
    return snprintf(out, out_len, "{\"bpm\":%ld}", 40 + i % 100);
}

static int row_key(const char *tag, long i, char *out, size_t out_len) {
    return snprintf(out, out_len, "%s-%09ld", tag, i);
}

/* Rows first..first+n-1 as NDJSON into out (cap bytes); 0 when they do not fit. */
static size_t ndjson_rows(char *out, size_t cap, const char *tag, long first, long n) {
    size_t len = 0;
    for (long i = first; i < first + n; i++) {
        char payload[32], key[64];
        row_payload(i, payload, sizeof payload);
        row_key(tag, i, key, sizeof key);
        int w = snprintf(out + len, cap - len,
                         "{\"stream\":\"health.heart_rate\",\"ts\":%lld,\"source\":\"" SOURCE
                         "\",\"key\":\"%s\",\"payload\":%s}\n",
                         (long long)(BASE_TS_MS + i), key, payload);
        if (w < 0 || (size_t)w >= cap - len)
            return 0;
        len += (size_t)w;
    }
    return len;
}

/* ---------------------------------------------------------------- HTTP client
 * One keep-alive connection per client; the answer body is kept for checking. */

struct http {
    CURL *curl;
    struct curl_slist *headers;
    struct am_buf answer;
    long status; /* of the last request; 0 when it failed below HTTP */
    char error[CURL_ERROR_SIZE];
};

static size_t keep_answer(char *data, size_t size, size_t n, void *arg) {
    struct http *h = arg;
    return am_buf_append(&h->answer, data, size * n) == AM_OK ? size * n : 0;
}

static void http_close(struct http *h);

static am_rc http_open(struct http *h, const char *content_type) {
    char auth[512], type[128];
    const char *lines[] = {auth, type, "Expect:"}; /* no 100-continue round trip */
    memset(h, 0, sizeof *h);
    am_buf_init(&h->answer, ANSWER_MAX_BYTES);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(type, sizeof type, "Content-Type: %s", content_type);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct curl_slist *l = curl_slist_append(h->headers, lines[i]);
        if (!l)
            goto fail;
        h->headers = l;
    }
    if (!(h->curl = curl_easy_init()))
        goto fail;
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, keep_answer);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
    curl_easy_setopt(h->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 120L);
    return AM_OK;
fail:
    http_close(h);
    return AM_ENOMEM;
}

static void http_close(struct http *h) {
    curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    am_buf_free(&h->answer);
    h->curl = NULL;
    h->headers = NULL;
}

/* GET when body is NULL, else POST; the status is returned and kept in h->status. */
static long http_request(struct http *h, const char *path, const char *body, size_t len) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    am_buf_reset(&h->answer);
    h->error[0] = '\0';
    h->status = 0;
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    }
    if (curl_easy_perform(h->curl) == CURLE_OK)
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &h->status);
    return h->status;
}

/* The number an events answer gives as "stored"; -1 when it has none. A scan rather than a
 * JSON parse, to leave the CPU to amd: "stored" followed by ':' is only the top-level count
 * (per-item statuses have it as a value). */
static long answer_stored(const struct http *h) {
    const char *p = h->answer.data;
    while (p && (p = strstr(p, "\"stored\""))) {
        p += strlen("\"stored\"");
        p += strspn(p, " \t\r\n");
        if (*p != ':')
            continue;
        char *end;
        errno = 0;
        long v = strtol(p + 1, &end, 10);
        return errno || end == p + 1 ? -1 : v;
    }
    return -1;
}

/* One line about a failed request, for a warning. */
static void describe_failure(const struct http *h, char *out, size_t out_len) {
    if (h->status == 0)
        snprintf(out, out_len, "no answer (%s)", h->error[0] ? h->error : "transport error");
    else
        snprintf(out, out_len, "HTTP %ld: %.200s", h->status, h->answer.data ? h->answer.data : "");
}

/* ---------------------------------------------------------------- amd's side */

/* A "Vm...:" line of /proc/PID/status in kB; -1 when it cannot be read. */
static long proc_kb(const char *pid, const char *field) {
    char path[64], line[256];
    long kb = -1;
    size_t flen = strlen(field);
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            char *end;
            errno = 0;
            long v = strtol(line + flen + 1, &end, 10);
            if (errno == 0 && end != line + flen + 1)
                kb = v;
            break;
        }
    }
    fclose(f);
    return kb;
}

/* CPU seconds (user + system) a process has used; -1 when they cannot be read. */
static double proc_cpu_s(const char *pid) {
    char path[64], line[1024];
    double s = -1;
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    /* Fields after the command name, which may hold spaces, so start after its ')'. */
    char *p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    unsigned long long utime, stime;
    if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) == 2)
        s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    fclose(f);
    return s;
}

/* CPU seconds this process has used. */
static double self_cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double mib(long kb) {
    return kb < 0 ? -1.0 : (double)kb / 1024.0;
}

/* A counter or gauge from amd's /metrics; -1 when absent. */
static double metric(const char *name) {
    struct http h;
    double v = -1;
    if (http_open(&h, "text/plain") != AM_OK)
        goto out;
    if (http_request(&h, "/metrics", NULL, 0) != 200 || !h.answer.data)
        goto out;
    size_t nlen = strlen(name);
    for (const char *p = h.answer.data; p; p = strchr(p, '\n')) {
        p += *p == '\n';
        if (strncmp(p, name, nlen) == 0 && p[nlen] == ' ') {
            v = strtod(p + nlen + 1, NULL);
            break;
        }
    }
out:
    http_close(&h);
    return v;
}

/* The count amd gives for health.heart_rate in /v1/streams; -1 when it cannot be read. */
static long stored_count(void) {
    struct http h;
    long count = -1;
    json_t *root = NULL;
    if (http_open(&h, "application/json") != AM_OK)
        goto out;
    if (http_request(&h, "/v1/streams", NULL, 0) != 200 || !h.answer.data)
        goto out;
    root = json_loadb(h.answer.data, h.answer.len, 0, NULL);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(root, "streams"), i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        json_t *c = json_object_get(s, "count");
        if (name && strcmp(name, "health.heart_rate") == 0 && json_is_integer(c))
            count = (long)json_integer_value(c);
    }
out:
    json_decref(root);
    http_close(&h);
    return count;
}

/* ---------------------------------------------------------------- HTTP ingest */

struct ingest_worker {
    char **bodies; /* this worker's prebuilt batches */
    size_t *lens;
    long batches;
    long stored, failed;
    char first_failure[300];
};

static void *ingest_main(void *arg) {
    struct ingest_worker *w = arg;
    struct http h;
    if (http_open(&h, "application/x-ndjson") != AM_OK) {
        w->failed = w->batches;
        snprintf(w->first_failure, sizeof w->first_failure, "no curl handle");
        return NULL;
    }
    for (long b = 0; b < w->batches; b++) {
        long stored = -1;
        if (http_request(&h, "/v1/events", w->bodies[b], w->lens[b]) == 200)
            stored = answer_stored(&h);
        if (stored == BATCH_EVENTS) {
            w->stored += stored;
            continue;
        }
        if (w->failed++ == 0)
            describe_failure(&h, w->first_failure, sizeof w->first_failure);
        if (stored > 0)
            w->stored += stored;
    }
    http_close(&h);
    return NULL;
}

/* Posts rows first..first+n-1 (n a multiple of CLIENTS * BATCH_EVENTS) from CLIENTS
 * connections at once, each waiting for its ack before the next batch. The bodies are built
 * before the clock starts. Out: events/s and how many amd acknowledged as stored. */
static am_rc http_ingest(const char *tag, long first, long n, double *rate, long *stored) {
    struct ingest_worker w[CLIENTS];
    pthread_t t[CLIENTS];
    long batches = n / BATCH_EVENTS, per = batches / CLIENTS;
    size_t cap = (size_t)BATCH_EVENTS * EVENT_MAX_BYTES;
    char **bodies = am_calloc((size_t)batches, sizeof *bodies);
    size_t *lens = am_calloc((size_t)batches, sizeof *lens);
    am_rc rc = AM_ENOMEM;
    int started = 0;
    *rate = 0;
    *stored = 0;
    if (!bodies || !lens)
        goto out;
    for (long b = 0; b < batches; b++) {
        if (!(bodies[b] = am_malloc(cap)))
            goto out;
        lens[b] = ndjson_rows(bodies[b], cap, tag, first + b * BATCH_EVENTS, BATCH_EVENTS);
        if (lens[b] == 0) {
            rc = AM_ELIMIT;
            goto out;
        }
    }
    int64_t t0 = am_mono_ns();
    for (; started < CLIENTS; started++) {
        w[started] =
            (struct ingest_worker){bodies + started * per, lens + started * per, per, 0, 0, ""};
        if (pthread_create(&t[started], NULL, ingest_main, &w[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        *stored += w[i].stored;
        if (w[i].failed)
            printf("warning: %ld of %ld batches not fully stored; first: %s\n", w[i].failed,
                   w[i].batches, w[i].first_failure);
    }
    *rate = (double)*stored / ((double)(am_mono_ns() - t0) / 1e9);
    rc = started == CLIENTS ? AM_OK : AM_EBACKEND;
out:
    for (long b = 0; bodies && b < batches; b++)
        am_free(bodies[b]);
    am_free(bodies);
    am_free(lens);
    return rc;
}

/* ---------------------------------------------------------------- in-process store
 * The same rows through the store's own append, as amd's HTTP handler calls it, but with no
 * HTTP, JSON or validation: what is left of the gap to raw SQLite is the store's. */

struct store_worker {
    struct am_store *store;
    long first, count, stored;
    am_rc rc;
};

static void *store_main(void *arg) {
    struct store_worker *w = arg;
    struct am_event *evs = am_calloc(BATCH_EVENTS, sizeof *evs);
    struct am_item_result *res = am_calloc(BATCH_EVENTS, sizeof *res);
    char(*payloads)[32] = am_calloc(BATCH_EVENTS, sizeof *payloads);
    w->rc = AM_ENOMEM;
    if (!evs || !res || !payloads)
        goto out;
    w->rc = AM_OK;
    for (long i = w->first; i < w->first + w->count && w->rc == AM_OK; i += BATCH_EVENTS) {
        for (long k = 0; k < BATCH_EVENTS; k++) {
            struct am_event *e = &evs[k];
            memset(e, 0, sizeof *e);
            snprintf(e->stream, sizeof e->stream, "health.heart_rate");
            snprintf(e->source, sizeof e->source, SOURCE);
            e->ts_ns = row_ts_ns(i + k);
            e->ts_end_ns = AM_TS_NONE;
            int len = row_payload(i + k, payloads[k], sizeof payloads[k]);
            e->payload = payloads[k];
            e->payload_len = (size_t)len;
            row_key("store", i + k, e->key, sizeof e->key);
        }
        w->rc = w->store->ops->append(w->store->impl, 1, evs, BATCH_EVENTS, res);
        for (long k = 0; w->rc == AM_OK && k < BATCH_EVENTS; k++)
            w->stored += res[k].status == AM_ITEM_STORED;
    }
out:
    am_free(evs);
    am_free(res);
    am_free(payloads);
    return NULL;
}

/* A store in DIR/NAME (made here), opened as amd opens its own. */
static am_rc store_open(const char *dir, const char *name, struct am_store *s, char *path,
                        size_t path_len) {
    snprintf(path, path_len, "%s/%s", dir, name);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return AM_EIO;
    struct am_store_config cfg = {
        .data_dir = path, .group_commit_max_events = 20000, .read_connections = 1};
    return am_store_open(s, "sqlite", &cfg);
}

/* Appends rows first..first+n-1 from CLIENTS threads at once, in batches. */
static am_rc store_append_rate(struct am_store *s, long first, long n, double *rate, long *stored) {
    struct store_worker w[CLIENTS];
    pthread_t t[CLIENTS];
    int started = 0;
    am_rc rc = AM_OK;
    *stored = 0;
    int64_t t0 = am_mono_ns();
    for (; started < CLIENTS; started++) {
        w[started] =
            (struct store_worker){s, first + started * (n / CLIENTS), n / CLIENTS, 0, AM_OK};
        if (pthread_create(&t[started], NULL, store_main, &w[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        *stored += w[i].stored;
        if (w[i].rc != AM_OK)
            rc = w[i].rc;
    }
    *rate = (double)*stored / ((double)(am_mono_ns() - t0) / 1e9);
    return started == CLIENTS ? rc : AM_EBACKEND;
}

/* ---------------------------------------------------------------- raw SQLite
 * The baseline: the same rows into a database whose schema the store itself made (so it
 * cannot drift from the real one: same table, same three indexes), with the same pragmas
 * (WAL, synchronous=FULL) and allocator, by a bare loop of INSERTs, 1000 rows a transaction.
 * None of the store's per-request work: no savepoint, stream lookup or statistics row. */

struct raw {
    sqlite3 *db;
    sqlite3_stmt *insert;
};

static void raw_close(struct raw *r) {
    sqlite3_finalize(r->insert);
    sqlite3_close(r->db);
    r->insert = NULL;
    r->db = NULL;
}

static am_rc raw_open(const char *dir, struct raw *r) {
    struct am_store s;
    char path[1024], db_path[1100];
    int src;
    memset(r, 0, sizeof *r);
    am_rc rc = store_open(dir, "raw", &s, path, sizeof path);
    if (rc != AM_OK)
        return rc;
    am_store_close(&s);
    snprintf(db_path, sizeof db_path, "%s/am.db", path);
    if ((src = sqlite3_open_v2(db_path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                               NULL)) != SQLITE_OK ||
        (src = sqlite3_exec(r->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL", NULL,
                            NULL, NULL)) != SQLITE_OK ||
        (src = sqlite3_prepare_v2(r->db,
                                  "INSERT INTO events(user_id, stream_id, source, ts_ns, payload,"
                                  " key, received_ns) VALUES(1, 1, '" SOURCE "', ?1, ?2, ?3, ?4)",
                                  -1, &r->insert, NULL)) != SQLITE_OK) {
        printf("warning: raw sqlite: %s\n", r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(src));
        raw_close(r);
        return AM_EBACKEND;
    }
    return AM_OK;
}

/* Inserts rows first..first+n-1, BATCH_EVENTS rows a transaction. */
static am_rc raw_insert_rate(struct raw *r, long first, long n, double *rate) {
    sqlite3_stmt *ins = r->insert;
    int src = SQLITE_OK;
    *rate = 0;
    int64_t t0 = am_mono_ns();
    for (long i = first; i < first + n; i++) {
        char payload[32], key[64];
        if ((i - first) % BATCH_EVENTS == 0 &&
            (src = sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
            goto fail;
        int plen = row_payload(i, payload, sizeof payload);
        int klen = row_key("raw", i, key, sizeof key);
        sqlite3_bind_int64(ins, 1, row_ts_ns(i));
        sqlite3_bind_text(ins, 2, payload, plen, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, key, klen, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, am_now_ns());
        src = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (src != SQLITE_DONE)
            goto fail;
        if (((i - first) % BATCH_EVENTS == BATCH_EVENTS - 1 || i == first + n - 1) &&
            (src = sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
            goto fail;
    }
    *rate = (double)n / ((double)(am_mono_ns() - t0) / 1e9);
    return AM_OK;
fail:
    printf("warning: raw sqlite: %s\n", sqlite3_errmsg(r->db));
    if (!sqlite3_get_autocommit(r->db))
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return AM_EBACKEND;
}

/* ---------------------------------------------------------------- ack latency */

static int cmp_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct latency {
    double p50_ms, p90_ms, p99_ms, max_ms, mean_ms;
    long stored, failed;
};

/* Sequential one-event POSTs over one keep-alive connection, each timed to its ack. */
static am_rc ack_latency(long first, int n, struct latency *out) {
    struct http h;
    int64_t *ns = am_calloc((size_t)n, sizeof *ns);
    char first_failure[300] = "";
    int64_t sum = 0;
    am_rc rc = AM_ENOMEM;
    memset(out, 0, sizeof *out);
    if (!ns || (rc = http_open(&h, "application/json")) != AM_OK)
        goto out;
    for (int i = 0; i < n; i++) {
        char body[EVENT_MAX_BYTES];
        size_t len = ndjson_rows(body, sizeof body, "lat", first + i, 1);
        if (len == 0) {
            rc = AM_ELIMIT;
            http_close(&h);
            goto out;
        }
        int64_t t0 = am_mono_ns();
        long status = http_request(&h, "/v1/events", body, len - 1); /* one object, no '\n' */
        ns[i] = am_mono_ns() - t0;
        sum += ns[i];
        if (status == 200 && answer_stored(&h) == 1)
            out->stored++;
        else if (out->failed++ == 0)
            describe_failure(&h, first_failure, sizeof first_failure);
    }
    http_close(&h);
    if (out->failed)
        printf("warning: %ld of %d single-event requests not stored; first: %s\n", out->failed, n,
               first_failure);
    qsort(ns, (size_t)n, sizeof *ns, cmp_int64);
    out->p50_ms = (double)ns[n / 2] / 1e6;
    out->p90_ms = (double)ns[n * 90 / 100] / 1e6;
    out->p99_ms = (double)ns[n * 99 / 100] / 1e6;
    out->max_ms = (double)ns[n - 1] / 1e6;
    out->mean_ms = (double)sum / n / 1e6;
    rc = AM_OK;
out:
    am_free(ns);
    return rc;
}

/* ---------------------------------------------------------------- main */

static long env_long(const char *name, long fallback, long min, long max) {
    const char *s = getenv(name);
    char *end;
    if (!s || !*s)
        return fallback;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) {
        fprintf(stderr, "bench_ingest: %s=%s is not a number in %ld..%ld; using %ld\n", name, s,
                min, max, fallback);
        return fallback;
    }
    return (long)v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n-1] (n <= MAX_ROUNDS); v is left as it was. */
static double median(const double *v, int n) {
    double s[MAX_ROUNDS];
    memcpy(s, v, sizeof *v * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr,
                "usage: bench_ingest URL TOKEN AMD_PID SCRATCH_DIR\n"
                "  BENCH_EVENTS=N  events through HTTP before amd's RSS is read again"
                " (default 1000000)\n"
                "  BENCH_ROUNDS=N  throughput rounds, http/store/raw in turn (default 3)\n");
        return 2;
    }
    base_url = argv[1];
    token = argv[2];
    const char *pid = argv[3], *dir = argv[4];
    long unit = CLIENTS * BATCH_EVENTS;
    long total = env_long("BENCH_EVENTS", 1000000, unit, 1000000000);
    int rounds = (int)env_long("BENCH_ROUNDS", 3, 1, MAX_ROUNDS);
    long tp = total / rounds < THROUGHPUT_EVENTS ? total / rounds : THROUGHPUT_EVENTS;
    tp = tp < unit ? unit : tp - tp % unit;
    setvbuf(stdout, NULL, _IOLBF, 0);
    am_log_set_level(AM_LOG_WARN);
    am_alloc_init();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;

    long rss_idle = proc_kb(pid, "VmRSS");
    if (rss_idle < 0) {
        fprintf(stderr, "bench_ingest: cannot read /proc/%s/status (is amd running?)\n", pid);
        return 1;
    }
    printf("amd RSS idle: %.1f MiB\n", mib(rss_idle));
    struct http probe;
    if (http_open(&probe, "text/plain") == AM_OK &&
        http_request(&probe, "/healthz", NULL, 0) != 200) {
        char why[300];
        describe_failure(&probe, why, sizeof why);
        fprintf(stderr, "bench_ingest: %s/healthz: %s\n", base_url, why);
        http_close(&probe);
        return 1;
    }
    http_close(&probe);

    /* 1-2. Throughput: in each round the same rows go to amd over HTTP, to a store in this
     * process and to bare SQLite, one after the other, so a slow spell of the disk or the
     * CPU shows up as one odd round rather than as a skewed ratio; all three databases grow
     * alike from round to round. The figures are medians over the rounds. */
    struct am_store store;
    struct raw raw;
    char store_path[1024];
    am_rc rc;
    int have_store = 0, have_raw = 0;
    if ((rc = store_open(dir, "store", &store, store_path, sizeof store_path)) != AM_OK)
        printf("warning: cannot open a store in %s: %s\n", store_path, am_strerror(rc));
    have_store = rc == AM_OK;
    if ((rc = raw_open(dir, &raw)) != AM_OK)
        printf("warning: cannot open the raw SQLite database: %s\n", am_strerror(rc));
    have_raw = rc == AM_OK;
    double http[MAX_ROUNDS], stored_rate[MAX_ROUNDS], raw_rate[MAX_ROUNDS];
    double ratio[MAX_ROUNDS], store_ratio[MAX_ROUNDS], http_store[MAX_ROUNDS];
    double commits = 0, commit_s = 0;
    long http_stored = 0;
    printf("throughput: %d rounds of %ld events each (http, store, raw sqlite in turn)\n", rounds,
           tp);
    for (int r = 0; r < rounds; r++) {
        long first = r * tp, stored = 0, store_stored = 0;
        double c0 = metric("am_store_commits_total"), s0 = metric("am_store_commit_seconds_total");
        double amd_cpu0 = proc_cpu_s(pid), self_cpu0 = self_cpu_s();
        rc = http_ingest("tp", first, tp, &http[r], &stored);
        double amd_cpu = proc_cpu_s(pid) - amd_cpu0, self_cpu = self_cpu_s() - self_cpu0;
        double c = metric("am_store_commits_total") - c0,
               cs = metric("am_store_commit_seconds_total") - s0;
        double wall_s = stored > 0 ? (double)stored / http[r] : 0;
        if (r == 0 && (rc != AM_OK || stored == 0)) {
            fprintf(stderr, "bench_ingest: amd stored none of the events (%s); stopping\n",
                    rc != AM_OK ? am_strerror(rc) : "see the warnings above");
            if (have_store)
                am_store_close(&store);
            if (have_raw)
                raw_close(&raw);
            return 1;
        }
        http_stored += stored;
        commits += c;
        commit_s += cs;
        stored_rate[r] = raw_rate[r] = 0;
        if (have_store &&
            (rc = store_append_rate(&store, first, tp, &stored_rate[r], &store_stored)) != AM_OK)
            printf("warning: in-process store append failed: %s\n", am_strerror(rc));
        if (have_raw && (rc = raw_insert_rate(&raw, first, tp, &raw_rate[r])) != AM_OK)
            printf("warning: raw sqlite insert failed: %s\n", am_strerror(rc));
        ratio[r] = raw_rate[r] > 0 ? http[r] / raw_rate[r] : 0;
        store_ratio[r] = raw_rate[r] > 0 ? stored_rate[r] / raw_rate[r] : 0;
        http_store[r] = stored_rate[r] > 0 ? http[r] / stored_rate[r] : 0;
        /* Where the HTTP time went: the share amd's writer spent in transactions (near 100%:
         * the store is the bottleneck), and the cores amd and this client kept busy. */
        printf("round %d: http %.0f events/s, store %.0f events/s, raw sqlite %.0f rows/s,"
               " ratio http/raw_sqlite %.2f; during http: amd writer busy %.0f%%, amd CPU %.2f"
               " cores, client CPU %.2f cores\n",
               r + 1, http[r], stored_rate[r], raw_rate[r], ratio[r],
               wall_s > 0 ? 100.0 * cs / wall_s : 0, wall_s > 0 ? amd_cpu / wall_s : 0,
               wall_s > 0 ? self_cpu / wall_s : 0);
    }
    if (have_store)
        am_store_close(&store);
    if (have_raw)
        raw_close(&raw);
    double http_med = median(http, rounds), store_med = median(stored_rate, rounds),
           raw_med = median(raw_rate, rounds), ratio_med = median(ratio, rounds);
    printf("http ingest (%d clients, NDJSON batches of %d, median of %d rounds): %.0f events/s\n",
           CLIENTS, BATCH_EVENTS, rounds, http_med);
    if (commits > 0)
        printf("http ingest group commits: %.0f (%.0f events and %.2f ms each on average)\n",
               commits, (double)http_stored / commits, commit_s * 1e3 / commits);
    printf("store append in-process (%d threads, batches of %d, median): %.0f events/s\n", CLIENTS,
           BATCH_EVENTS, store_med);
    printf("raw sqlite bulk insert (same rows and indexes, WAL, synchronous=FULL, %d rows a "
           "transaction, median): %.0f rows/s\n",
           BATCH_EVENTS, raw_med);
    printf("ratio http/raw_sqlite: %.2f (target >= 0.5; median of the rounds' ratios)\n",
           ratio_med);
    printf("ratio store/raw_sqlite: %.2f\n", median(store_ratio, rounds));
    printf("ratio http/store: %.2f\n", median(http_store, rounds));

    /* 3. Ack latency of single events. */
    struct latency lat;
    if ((rc = ack_latency(0, LATENCY_REQUESTS, &lat)) != AM_OK)
        printf("warning: latency run failed: %s\n", am_strerror(rc));
    printf("single-event ack latency p50: %.3f ms\n", lat.p50_ms);
    printf("single-event ack latency p90: %.3f ms\n", lat.p90_ms);
    printf("single-event ack latency p99: %.3f ms\n", lat.p99_ms);
    printf("single-event ack latency max: %.3f ms\n", lat.max_ms);
    printf("single-event ack latency mean: %.3f ms (%d sequential requests, keep-alive)\n",
           lat.mean_ms, LATENCY_REQUESTS);

    /* 4. Fill amd up to the total, then read its memory again. */
    long sent = rounds * tp + LATENCY_REQUESTS, expected = http_stored + lat.stored, fill_sent = 0;
    int64_t fill_t0 = am_mono_ns();
    while (sent < total) {
        long n = total - sent < FILL_CHUNK_EVENTS ? total - sent : FILL_CHUNK_EVENTS;
        n = (n + unit - 1) / unit * unit;
        double r;
        long stored;
        if ((rc = http_ingest("fill", fill_sent, n, &r, &stored)) != AM_OK) {
            printf("warning: fill stopped: %s\n", am_strerror(rc));
            break;
        }
        sent += n;
        fill_sent += n;
        expected += stored;
        printf("progress: %ld/%ld events sent, %.0f events/s, amd RSS %.1f MiB\n", sent, total, r,
               mib(proc_kb(pid, "VmRSS")));
    }
    double fill_rate = 0;
    if (fill_sent > 0) {
        fill_rate = (double)fill_sent / ((double)(am_mono_ns() - fill_t0) / 1e9);
        printf("http ingest sustained (%ld more events on a growing database): %.0f events/s\n",
               fill_sent, fill_rate);
    }
    long rss_after = proc_kb(pid, "VmRSS"), rss_peak = proc_kb(pid, "VmHWM");
    printf("amd RSS after %ld events: %.1f MiB\n", sent, mib(rss_after));
    printf("amd RSS peak: %.1f MiB\n", mib(rss_peak));
    long count = stored_count();
    printf("events stored in amd: %ld (acknowledged %ld)\n", count, expected);
    if (count != expected)
        printf("warning: amd's count differs from what it acknowledged\n");

    printf("\n== summary (%ld events through HTTP; noisy: compare ratios within a run)\n", sent);
    printf("http ingest:            %9.0f events/s\n", http_med);
    printf("store append:           %9.0f events/s (in-process)\n", store_med);
    printf("raw sqlite:             %9.0f rows/s\n", raw_med);
    printf("ratio http/raw_sqlite:  %9.2f (target >= 0.5)\n", ratio_med);
    if (fill_sent > 0)
        printf("http ingest sustained:  %9.0f events/s\n", fill_rate);
    printf("ack latency p50 / p99:  %.3f / %.3f ms\n", lat.p50_ms, lat.p99_ms);
    printf("amd RSS idle -> after:  %.1f -> %.1f MiB (peak %.1f MiB)\n", mib(rss_idle),
           mib(rss_after), mib(rss_peak));
    curl_global_cleanup();
    return 0;
}
