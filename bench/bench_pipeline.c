/* bench_pipeline.c — the enrichment pipeline's figures beside baselines from the same run:
 * OCR throughput through amd against tesseract called directly on the same images, search
 * latency (text, vector, hybrid over HTTP) against raw FTS5, a raw exact vector scan and
 * sqlite-vec, and pocketsphinx's real-time factor alone and through amd. It starts its own
 * amd processes (one per part) in a scratch directory and removes them and it on exit.
 * Speed is printed, never judged: it exits non-zero only when something is broken.
 * usage: bench_pipeline [BIN_DIR [SCRATCH_PARENT]]   (BIN_DIR: $AM_BIN_DIR, else its own dir) */
#include "core/core.h"
#include "process/process_internal.h"
#include "search/search.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ANSWER_MAX_BYTES (64u << 20)
#define BODY_MAX_BYTES (64u << 20)
#define MAX_ROUNDS 15
#define MAX_CHILDREN 8
#define OCR_W 1280
#define OCR_H 720
#define OCR_MAX_PIXELS 100000000 /* what amd's OCR job passes */
#define OCR_MAX_WORDS 4000
#define POLL_OCR_MS 20
#define POLL_STT_MS 10
#define FILL_BATCH 5000
#define VOCAB 3000
#define QUERY_MIN_RANK 20 /* query words skip the few most frequent ones, as people do */
#define TOP_K 10
#define BASE_TS_MS 1795597200000LL /* 2026-11-26T07:00:00Z */
#define SPEECH_WAV "/usr/share/sounds/alsa/Front_Center.wav"
#define SPHINX_MODEL "/usr/share/pocketsphinx/model/en-us"

static char bin_dir[PATH_MAX], work_dir[PATH_MAX];
static volatile pid_t children[MAX_CHILDREN]; /* amd processes, killed on any exit */
static int workers; /* amd's pipeline workers, and the direct baseline's threads */
static int broken;  /* something failed that is not a matter of speed */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        printf("error: " __VA_ARGS__);                                                             \
        printf("\n");                                                                              \
        broken = 1;                                                                                \
    } while (0)

/* ---------------------------------------------------------------- small things */

static double now_s(void) {
    return (double)am_mono_ns() / 1e9;
}

static long env_long(const char *name, long fallback, long min, long max) {
    const char *s = getenv(name);
    char *end;
    if (!s || !*s)
        return fallback;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) {
        printf("warning: %s=%s is not a number in %ld..%ld; using %ld\n", name, s, min, max,
               fallback);
        return fallback;
    }
    return (long)v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of v[0..n-1]; v is sorted in place. */
static double percentile(double *v, size_t n, double p) {
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    return v[rank ? rank - 1 : 0];
}

/* The median of v[0..n-1] (n <= MAX_ROUNDS); v is left as it was. */
static double median(const double *v, int n) {
    double s[MAX_ROUNDS];
    if (n <= 0)
        return 0;
    memcpy(s, v, sizeof *v * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double ratio(double a, double b) {
    return b > 0 ? a / b : 0;
}

/* splitmix64: the same seed gives the same texts, images and queries in every run. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n) {
    return (size_t)(rng_next(s) % n);
}

/* CPU seconds (user + system) of a process; -1 when they cannot be read. */
static double proc_cpu_s(pid_t pid) {
    char path[64], line[1024];
    double s = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    unsigned long long utime, stime;
    if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) == 2)
        s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    fclose(f);
    return s;
}

static double self_cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The whole file into memory (caller frees with am_free); NULL when it cannot be read. */
static char *read_file(const char *path, size_t *len) {
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f)
        return NULL;
    if (fstat(fileno(f), &st) == 0 && (data = am_malloc((size_t)st.st_size + 1))) {
        *len = fread(data, 1, (size_t)st.st_size, f);
        if (*len != (size_t)st.st_size) {
            am_free(data);
            data = NULL;
        } else {
            data[*len] = '\0';
        }
    }
    fclose(f);
    return data;
}

/* ---------------------------------------------------------------- processes and cleanup */

static void register_child(pid_t pid) {
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (!children[i]) {
            children[i] = pid;
            return;
        }
}

static void forget_child(pid_t pid) {
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* Only async-signal-safe calls: kill the amds, remove the scratch directory with rm. */
static void on_signal(int sig) {
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    if (work_dir[0]) {
        pid_t rm = fork();
        if (rm == 0) {
            char *const argv[] = {"rm", "-rf", work_dir, NULL};
            execv("/bin/rm", argv);
            _exit(127);
        }
        if (rm > 0)
            waitpid(rm, NULL, 0);
    }
    _exit(128 + sig);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) {
    if (dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs argv (a path in argv[0]) with stdout into out (out_len bytes, cut) and stderr
 * appended to log_path; the exit status, or -1 when it could not run. */
static int run_capture(char *const argv[], char *out, size_t out_len, const char *log_path) {
    int fds[2];
    if (out_len)
        out[0] = '\0';
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int log = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
        dup2(fds[1], 1);
        if (log >= 0)
            dup2(log, 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    char sink[4096];
    for (;;) {
        ssize_t n = out_len > used + 1 ? read(fds[0], out + used, out_len - used - 1)
                                       : read(fds[0], sink, sizeof sink);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out_len > used + 1)
            used += (size_t)n;
    }
    if (out_len)
        out[used] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---------------------------------------------------------------- HTTP client */

struct http {
    CURL *curl;
    struct curl_slist *json_headers, *raw_headers;
    struct am_buf answer;
    long status;
    char error[CURL_ERROR_SIZE];
    char base[128];
};

static size_t keep_answer(char *data, size_t size, size_t n, void *arg) {
    struct http *h = arg;
    return am_buf_append(&h->answer, data, size * n) == AM_OK ? size * n : 0;
}

static void http_close(struct http *h) {
    curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->json_headers);
    curl_slist_free_all(h->raw_headers);
    am_buf_free(&h->answer);
    memset(h, 0, sizeof *h);
}

static struct curl_slist *headers(const char *token, const char *type) {
    char auth[256], ct[128];
    struct curl_slist *l = NULL, *n;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(ct, sizeof ct, "Content-Type: %s", type);
    const char *lines[] = {auth, ct, "Expect:"}; /* no 100-continue round trip */
    for (size_t i = 0; i < 3; i++) {
        if (!(n = curl_slist_append(l, lines[i]))) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = n;
    }
    return l;
}

static am_rc http_open(struct http *h, const char *base, const char *token) {
    memset(h, 0, sizeof *h);
    am_buf_init(&h->answer, ANSWER_MAX_BYTES);
    snprintf(h->base, sizeof h->base, "%s", base);
    h->json_headers = headers(token, "application/json");
    h->raw_headers = headers(token, "application/octet-stream");
    if (!h->json_headers || !h->raw_headers || !(h->curl = curl_easy_init())) {
        http_close(h);
        return AM_ENOMEM;
    }
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, keep_answer);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
    curl_easy_setopt(h->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 600L);
    return AM_OK;
}

/* GET when body is NULL, else POST (raw = octet-stream, else JSON); the status, 0 when the
 * request failed below HTTP. */
static long http_call(struct http *h, const char *path, const char *body, size_t len, int raw) {
    char url[2048];
    snprintf(url, sizeof url, "%s%s", h->base, path);
    am_buf_reset(&h->answer);
    h->error[0] = '\0';
    h->status = 0;
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, raw ? h->raw_headers : h->json_headers);
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

static const char *http_why(const struct http *h, char *out, size_t out_len) {
    if (h->status == 0)
        snprintf(out, out_len, "no answer (%s)", h->error[0] ? h->error : "transport error");
    else
        snprintf(out, out_len, "HTTP %ld: %.300s", h->status, h->answer.data ? h->answer.data : "");
    return out;
}

/* The parsed answer of the last call; NULL when it is not JSON. Caller decrefs. */
static json_t *http_answer_json(const struct http *h) {
    return h->answer.data ? json_loadb(h->answer.data, h->answer.len, 0, NULL) : NULL;
}

static json_t *http_get_json(struct http *h, const char *path) {
    return http_call(h, path, NULL, 0, 0) == 200 ? http_answer_json(h) : NULL;
}

/* Posts a JSON array of events; the "stored" count of the answer, -1 on failure. */
static long post_events(struct http *h, const char *body, size_t len) {
    long st = http_call(h, "/v1/events", body, len, 0), stored = -1;
    if (st != 200 && st != 207)
        return -1;
    json_t *a = http_answer_json(h);
    json_t *s = json_object_get(a, "stored");
    if (json_is_integer(s))
        stored = (long)json_integer_value(s);
    json_decref(a);
    return stored;
}

/* Uploads a blob; its SHA-256 in sha (65 bytes), AM_OK when stored. */
static am_rc upload_blob(struct http *h, const char *data, size_t len, char *sha) {
    long st = http_call(h, "/v1/blobs", data, len, 1);
    json_t *a = st == 200 || st == 201 ? http_answer_json(h) : NULL;
    const char *s = json_string_value(json_object_get(a, "sha256"));
    am_rc rc = s && strlen(s) == 64 ? AM_OK : AM_EIO;
    if (rc == AM_OK)
        memcpy(sha, s, 65);
    json_decref(a);
    return rc;
}

struct kind_counts {
    long pending, running, done, dead;
};

/* One job kind's counts from GET /v1/jobs; AM_OK when they could be read. */
static am_rc job_counts(struct http *h, const char *kind, struct kind_counts *c) {
    json_t *a = http_get_json(h, "/v1/jobs");
    json_t *k = json_object_get(json_object_get(a, "kinds"), kind);
    memset(c, 0, sizeof *c);
    am_rc rc = json_is_object(k) ? AM_OK : AM_EIO;
    c->pending = (long)json_integer_value(json_object_get(k, "pending"));
    c->running = (long)json_integer_value(json_object_get(k, "running"));
    c->done = (long)json_integer_value(json_object_get(k, "done"));
    c->dead = (long)json_integer_value(json_object_get(k, "dead"));
    json_decref(a);
    return rc;
}

/* Polls until `kind` has nothing pending or running and at least `finished` jobs done or
 * dead; AM_OK then, AM_ELIMIT after timeout_s, AM_EIO when /v1/jobs fails. */
static am_rc wait_jobs(struct http *h, const char *kind, long finished, int poll_ms,
                       double timeout_s, struct kind_counts *c) {
    double deadline = now_s() + timeout_s;
    struct timespec nap = {poll_ms / 1000, (long)(poll_ms % 1000) * 1000000L};
    for (;;) {
        if (job_counts(h, kind, c) != AM_OK)
            return AM_EIO;
        if (c->pending == 0 && c->running == 0 && c->done + c->dead >= finished)
            return AM_OK;
        if (now_s() > deadline)
            return AM_ELIMIT;
        nanosleep(&nap, NULL);
    }
}

/* The count amd gives for a stream in /v1/streams; -1 when it cannot be read. */
static long stream_count(struct http *h, const char *stream) {
    json_t *a = http_get_json(h, "/v1/streams"), *s;
    long count = -1;
    size_t i;
    json_array_foreach(json_object_get(a, "streams"), i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (name && !strcmp(name, stream))
            count = (long)json_integer_value(json_object_get(s, "count"));
    }
    json_decref(a);
    return count;
}

/* ---------------------------------------------------------------- amd */

struct amd {
    pid_t pid;
    char dir[PATH_MAX], data[PATH_MAX + 8], log[PATH_MAX + 8], url[128], token[160];
    struct http h;
};

static void amd_stop(struct amd *d) {
    if (d->h.curl)
        http_close(&d->h);
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    int status;
    double deadline = now_s() + 30;
    while (waitpid(d->pid, &status, WNOHANG) == 0) {
        if (now_s() > deadline) {
            printf("warning: amd (%s) did not stop within 30 s of SIGTERM; killed\n", d->dir);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            break;
        }
        usleep(20000);
    }
    forget_child(d->pid);
    d->pid = 0;
}

/* amd's warnings and errors, if it logged any (its log level is warn). */
static void amd_show_log(const struct amd *d, const char *name) {
    size_t len = 0;
    char *log = read_file(d->log, &len);
    if (log && len) {
        const char *tail = log;
        int lines = 0;
        for (const char *p = log + len; p > log; p--)
            if (p[-1] == '\n' && ++lines > 10) {
                tail = p;
                break;
            }
        printf("amd (%s) logged (last lines):\n%s", name, tail);
        if (log[len - 1] != '\n')
            printf("\n");
    }
    am_free(log);
}

/* A fresh data dir WORK/NAME with a user and token, and amd on a free port with the
 * given pipeline; AM_OK when it answers /healthz. */
static am_rc amd_start(struct amd *d, const char *name, const char *pipeline) {
    char amd_bin[PATH_MAX + 8], am_bin[PATH_MAX + 8], out[4096], why[400];
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s/%s", work_dir, name);
    snprintf(d->data, sizeof d->data, "%s/data", d->dir);
    snprintf(d->log, sizeof d->log, "%s/amd.log", d->dir);
    snprintf(amd_bin, sizeof amd_bin, "%s/amd", bin_dir);
    snprintf(am_bin, sizeof am_bin, "%s/am", bin_dir);
    if (mkdir(d->dir, 0700) != 0 || mkdir(d->data, 0700) != 0) {
        FAIL("cannot make %s: %s", d->data, strerror(errno));
        return AM_EIO;
    }
    char *user_add[] = {am_bin, "--data-dir", d->data, "user", "add", "bench", NULL};
    char *token[] = {am_bin,   "--data-dir", d->data,   "token",       "create",
                     "--user", "bench",      "--scope", "ingest,read", NULL};
    char am_log[PATH_MAX + 16];
    snprintf(am_log, sizeof am_log, "%s/am.log", d->dir);
    if (run_capture(user_add, out, sizeof out, am_log) != 0 ||
        run_capture(token, out, sizeof out, am_log) != 0) {
        FAIL("am could not create the bench user and token (log: %s)", am_log);
        return AM_EIO;
    }
    /* The token is the last line. */
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    const char *last = strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out;
    snprintf(d->token, sizeof d->token, "%s", last);
    if (!d->token[0]) {
        FAIL("am token create printed no token");
        return AM_EIO;
    }
    char workers_s[16];
    snprintf(workers_s, sizeof workers_s, "%d", workers);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        FAIL("fork: %s", strerror(errno));
        return AM_EIO;
    }
    if (pid == 0) {
        /* amd dies with this process, even if it is killed with SIGKILL. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int log = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        if (null >= 0)
            dup2(null, 0);
        unsetenv("AM_CONFIG_FILE");
        setenv("AM_PIPELINE", pipeline, 1);
        setenv("AM_WORKERS", workers_s, 1);
        setenv("AM_RATE_LIMIT_PER_S", "0", 1);
        setenv("AM_LOG_LEVEL", "warn", 1);
        char *argv[] = {amd_bin, "--data-dir", d->data, "--listen", "127.0.0.1:0", NULL};
        execv(amd_bin, argv);
        _exit(127);
    }
    d->pid = pid;
    register_child(pid);
    /* amd writes DATA/amd.url once it listens (the port is the kernel's pick). */
    char url_path[PATH_MAX + 16];
    snprintf(url_path, sizeof url_path, "%s/amd.url", d->data);
    double deadline = now_s() + 30;
    for (;;) {
        size_t len = 0;
        char *url = read_file(url_path, &len);
        if (url) {
            url[strcspn(url, "\r\n")] = '\0';
            snprintf(d->url, sizeof d->url, "%s", url);
            am_free(url);
            if (d->url[0])
                break;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            forget_child(pid);
            d->pid = 0;
            FAIL("amd (%s) exited before it listened", name);
            amd_show_log(d, name);
            return AM_EIO;
        }
        if (now_s() > deadline) {
            FAIL("amd (%s) did not write %s within 30 s", name, url_path);
            amd_show_log(d, name);
            amd_stop(d);
            return AM_EIO;
        }
        usleep(20000);
    }
    if (http_open(&d->h, d->url, d->token) != AM_OK ||
        http_call(&d->h, "/healthz", NULL, 0, 0) != 200) {
        FAIL("amd (%s) at %s does not answer /healthz: %s", name, d->url,
             http_why(&d->h, why, sizeof why));
        amd_stop(d);
        return AM_EIO;
    }
    return AM_OK;
}

/* ---------------------------------------------------------------- words
 * Real English words for the screenshots (tesseract reads them as a person would), and a
 * generated vocabulary of VOCAB distinct words for the search corpus: two consonant-vowel
 * syllables plus, for every third word, a closing consonant. Word k's syllables are a
 * bijection of k, so no two words are alike. Texts draw words by Zipf's law (rank r with
 * weight 1/r), as natural text does, which gives posting lists of every length. */

static const char *const english[] = {
    "account",  "address",  "agenda",    "airport",  "answer",   "appointment", "archive",
    "balance",  "bank",     "birthday",  "booking",  "budget",   "calendar",    "camera",
    "cancel",   "chapter",  "checkout",  "client",   "coffee",   "comment",     "company",
    "contract", "customer", "dashboard", "deadline", "delivery", "design",      "dinner",
    "doctor",   "document", "download",  "draft",    "editor",   "email",       "evening",
    "export",   "family",   "feedback",  "files",    "finance",  "flight",      "folder",
    "friday",   "garden",   "grocery",   "holiday",  "hotel",    "import",      "inbox",
    "invoice",  "journal",  "kitchen",   "language", "library",  "meeting",     "message",
    "monday",   "morning",  "network",   "notes",    "office",   "order",       "package",
    "password", "payment",  "people",    "picture",  "planning", "project",     "question",
    "receipt",  "recipe",   "release",   "report",   "request",  "review",      "schedule",
    "school",   "search",   "settings",  "shopping", "station",  "status",      "summary",
    "support",  "system",   "ticket",    "timeline", "today",    "travel",      "tuesday",
    "update",   "upload",   "vacation",  "version",  "weather",  "website",     "weekend",
    "window",   "workshop", "quarterly", "Berlin",   "Annika",   "Lisbon",      "Marcus",
    "train",    "server",   "backup",    "storage",  "privacy",  "health",      "running",
    "sleep",    "water",    "music",     "podcast",  "episode",  "reading",     "chess",
    "lunch",    "brunch",   "team",      "sprint",   "launch",
};
#define N_ENGLISH (sizeof english / sizeof english[0])

static const char *const onsets[] = {"b", "d", "f", "g", "k", "l", "m",  "n",
                                     "p", "r", "s", "t", "v", "z", "ch", "sh"};
static const char *const vowels[] = {"a", "e", "i", "o", "u"};
static const char *const codas[] = {"n", "r", "s", "l", "m", "k"};
#define N_SYL 80 /* onsets x vowels */

static char vocab[VOCAB][12];
static double zipf_cdf[VOCAB];

static void make_vocab(void) {
    double sum = 0;
    for (size_t k = 0; k < VOCAB; k++) {
        size_t code = (k * 7919) % (N_SYL * N_SYL), a = code / N_SYL, b = code % N_SYL;
        snprintf(vocab[k], sizeof vocab[k], "%s%s%s%s%s", onsets[a / 5], vowels[a % 5],
                 onsets[b / 5], vowels[b % 5], k % 3 == 0 ? codas[(k / 3) % 6] : "");
        sum += 1.0 / (double)(k + 1);
        zipf_cdf[k] = sum;
    }
    for (size_t k = 0; k < VOCAB; k++)
        zipf_cdf[k] /= sum;
}

static const char *zipf_word(uint64_t *s) {
    double u = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return vocab[lo];
}

/* A message of 5..20 words into out. */
static void sentence(uint64_t *s, char *out, size_t out_len) {
    size_t n = 5 + rng_below(s, 16), o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o + 16 < out_len; i++) {
        const char *w = zipf_word(s);
        int len = snprintf(out + o, out_len - o, "%s%s", i ? " " : "", w);
        if (i == 0)
            out[o] = (char)(out[o] - 'a' + 'A');
        o += (size_t)len;
    }
    if (o + 1 < out_len) {
        out[o++] = '.';
        out[o] = '\0';
    }
}

/* ---------------------------------------------------------------- 1. OCR */

/* An argv under construction, its strings in one arena. */
struct args {
    char *v[200];
    int n;
    char arena[16384];
    size_t used;
};

static void arg_add(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg_add(struct args *a, const char *fmt, ...) {
    va_list ap;
    if (a->n + 2 >= (int)(sizeof a->v / sizeof a->v[0]) || a->used + 2 >= sizeof a->arena)
        return;
    va_start(ap, fmt);
    int len = vsnprintf(a->arena + a->used, sizeof a->arena - a->used, fmt, ap);
    va_end(ap);
    if (len < 0 || a->used + (size_t)len + 1 > sizeof a->arena)
        return;
    a->v[a->n++] = a->arena + a->used;
    a->v[a->n] = NULL;
    a->used += (size_t)len + 1;
}

static void english_words(uint64_t *s, size_t n, char *out, size_t out_len) {
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o < out_len; i++)
        o += (size_t)snprintf(out + o, out_len - o, "%s%s", i ? " " : "",
                              english[rng_below(s, N_ENGLISH)]);
}

/* The convert command for screenshot number index: a window with a title bar, a menu
 * of single words down the left, a dozen lines of text in several sizes and a status
 * bar; 1280x720 RGB like a real capture. */
static void screenshot_args(struct args *a, const char *path, int index) {
    uint64_t s = 0x5eedULL + (uint64_t)index * 7919;
    char line[400];
    a->n = 0;
    a->used = 0;
    arg_add(a, "convert");
    arg_add(a, "-size");
    arg_add(a, "%dx%d", OCR_W, OCR_H);
    arg_add(a, "xc:white");
    arg_add(a, "-fill");
    arg_add(a, "#e4e4e4");
    arg_add(a, "-draw");
    arg_add(a, "rectangle 0,0 %d,40", OCR_W);
    arg_add(a, "-draw");
    arg_add(a, "rectangle 0,690 %d,%d", OCR_W, OCR_H);
    arg_add(a, "-fill");
    arg_add(a, "#f2f2f2");
    arg_add(a, "-draw");
    arg_add(a, "rectangle 0,41 200,689");
    arg_add(a, "-font");
    arg_add(a, "DejaVu-Sans");
    arg_add(a, "-fill");
    arg_add(a, "black");
    arg_add(a, "-pointsize");
    arg_add(a, "16");
    english_words(&s, 3, line, sizeof line);
    arg_add(a, "-annotate");
    arg_add(a, "+14+27");
    arg_add(a, "%s - Notes %d", line, index + 1);
    for (int i = 0; i < 10; i++) {
        arg_add(a, "-annotate");
        arg_add(a, "+20+%d", 80 + i * 40);
        arg_add(a, "%s", english[rng_below(&s, N_ENGLISH)]);
    }
    for (int i = 0; i < 12; i++) {
        arg_add(a, "-pointsize");
        arg_add(a, "%d", 18 + (int)rng_below(&s, 8));
        english_words(&s, 4 + rng_below(&s, 6), line, sizeof line);
        arg_add(a, "-annotate");
        arg_add(a, "+236+%d", 86 + i * 48);
        arg_add(a, "%s", line);
    }
    arg_add(a, "-pointsize");
    arg_add(a, "14");
    arg_add(a, "-annotate");
    arg_add(a, "+14+710");
    arg_add(a, "Ln %d, Col %d   UTF-8   %s", 10 + index, 4 + index % 7,
            english[rng_below(&s, N_ENGLISH)]);
    arg_add(a, "-type");
    arg_add(a, "TrueColor");
    arg_add(a, "-depth");
    arg_add(a, "8");
    arg_add(a, "PNG24:%s", path);
}

/* Renders the n screenshots (and a small warm-up image as number n), up to `cores`
 * convert processes at a time; AM_OK when every one was made. */
static am_rc render_images(char (*paths)[PATH_MAX], int n, int cores) {
    int running = 0, next = 0, failed = 0;
    struct args *a = am_malloc(sizeof *a);
    if (!a)
        return AM_ENOMEM;
    while (next <= n || running > 0) {
        if (next <= n && running < cores) {
            if (next < n) {
                screenshot_args(a, paths[next], next);
            } else {
                a->n = 0;
                a->used = 0;
                const char *w[] = {"convert",
                                   "-size",
                                   "400x80",
                                   "xc:white",
                                   "-font",
                                   "DejaVu-Sans",
                                   "-pointsize",
                                   "28",
                                   "-fill",
                                   "black",
                                   "-annotate",
                                   "+16+52",
                                   "Warm up the engine",
                                   "-type",
                                   "TrueColor",
                                   "-depth",
                                   "8"};
                for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
                    arg_add(a, "%s", w[i]);
                arg_add(a, "PNG24:%s", paths[n]);
            }
            pid_t pid = fork();
            if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                if (null >= 0)
                    dup2(null, 1);
                execvp("convert", a->v);
                _exit(127);
            }
            if (pid < 0) {
                failed++;
                break;
            }
            running++;
            next++;
            continue;
        }
        int status;
        if (wait(&status) < 0)
            break;
        running--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    while (running > 0 && wait(NULL) > 0)
        running--;
    am_free(a);
    return failed ? AM_EIO : AM_OK;
}

struct direct_ocr {
    char (*paths)[PATH_MAX];
    int n;
    atomic_int next, with_text, failed;
    char first_error[256];
};

struct direct_thread {
    struct direct_ocr *d;
    struct am_ocr *ocr;
};

/* Takes images from the shared list until it is empty, as amd's workers take jobs. */
static void *direct_main(void *arg) {
    struct direct_thread *t = arg;
    struct direct_ocr *d = t->d;
    int i;
    while ((i = atomic_fetch_add(&d->next, 1)) < d->n) {
        json_t *out = NULL;
        char err[256] = "";
        am_rc rc = am_ocr_image(t->ocr, d->paths[i], 1, OCR_MAX_PIXELS, OCR_MAX_WORDS, &out, err,
                                sizeof err);
        if (rc != AM_OK) {
            if (atomic_fetch_add(&d->failed, 1) == 0)
                snprintf(d->first_error, sizeof d->first_error, "%s: %s", d->paths[i], err);
        } else {
            const char *text = json_string_value(json_object_get(out, "text"));
            if (text && strlen(text) > 20)
                atomic_fetch_add(&d->with_text, 1);
        }
        json_decref(out);
    }
    return NULL;
}

/* OCRs images [0, n) with n_threads threads, engine i on thread i; images/s, or 0 when
 * it failed. */
static double direct_round(struct am_ocr **engines, int n_threads, char (*paths)[PATH_MAX], int n,
                           int *with_text, double *cpu_cores) {
    struct direct_ocr d = {.paths = paths, .n = n};
    struct direct_thread t[64];
    pthread_t th[64];
    pthread_attr_t attr;
    int started = 0;
    atomic_init(&d.next, 0);
    atomic_init(&d.with_text, 0);
    atomic_init(&d.failed, 0);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20); /* as amd's workers: tesseract recurses */
    double cpu0 = self_cpu_s(), t0 = now_s();
    for (; started < n_threads && started < 64; started++) {
        t[started] = (struct direct_thread){&d, engines[started]};
        if (pthread_create(&th[started], &attr, direct_main, &t[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double wall = now_s() - t0;
    *cpu_cores = (self_cpu_s() - cpu0) / wall;
    pthread_attr_destroy(&attr);
    *with_text = atomic_load(&d.with_text);
    if (atomic_load(&d.failed)) {
        FAIL("direct OCR failed on %d image(s); first: %s", atomic_load(&d.failed), d.first_error);
        return 0;
    }
    return started ? n / wall : 0;
}

/* Posts n screenshot events at once (one request) and waits until amd's OCR queue is
 * empty; images/s from the post, or 0 when it failed. */
static double am_round(struct amd *d, char (*shas)[65], int n, const char *tag, long *done_total,
                       double *cpu_cores) {
    struct am_buf body;
    struct kind_counts c;
    char why[400];
    double rate = 0;
    am_buf_init(&body, BODY_MAX_BYTES);
    am_buf_appends(&body, "[");
    for (int i = 0; i < n; i++)
        am_buf_printf(&body,
                      "%s{\"stream\":\"image.screenshot\",\"ts\":%lld,\"source\":\"bench\","
                      "\"key\":\"%s-%d\",\"blob\":\"%s\",\"payload\":{\"width\":%d,"
                      "\"height\":%d,\"app\":\"notes\"}}",
                      i ? "," : "", BASE_TS_MS + *done_total * 1000 + i, tag, i, shas[i], OCR_W,
                      OCR_H);
    am_buf_appends(&body, "]");
    double cpu0 = proc_cpu_s(d->pid), t0 = now_s();
    long stored = post_events(&d->h, body.data, body.len);
    if (stored != n) {
        FAIL("amd stored %ld of %d screenshot events: %s", stored, n,
             http_why(&d->h, why, sizeof why));
        goto out;
    }
    am_rc rc = wait_jobs(&d->h, "ocr", *done_total + n, POLL_OCR_MS, 600, &c);
    double wall = now_s() - t0;
    *cpu_cores = (proc_cpu_s(d->pid) - cpu0) / wall;
    if (rc != AM_OK) {
        FAIL("amd's OCR queue did not empty (%s; pending %ld, running %ld)",
             rc == AM_ELIMIT ? "600 s" : "GET /v1/jobs failed", c.pending, c.running);
        goto out;
    }
    if (c.dead) {
        FAIL("%ld OCR job(s) are dead in amd (see GET /v1/jobs)", c.dead);
        goto out;
    }
    *done_total = c.done;
    rate = n / wall;
out:
    am_buf_free(&body);
    return rate;
}

static void bench_ocr(int n_images, int rounds, int cores, struct amd *d) {
    char(*paths)[PATH_MAX] = am_calloc((size_t)n_images + 1, sizeof *paths);
    char(*shas)[65] = am_calloc((size_t)n_images + 1, sizeof *shas);
    struct am_ocr *engines[64] = {0};
    char dir[PATH_MAX + 8], err[256];
    double am_rate[MAX_ROUNDS], direct_rate[MAX_ROUNDS], ratios[MAX_ROUNDS];
    int done_rounds = 0;
    printf("\n== 1. OCR: %d screenshots (%dx%d PNG, ~130 words each), %d round(s), %d worker(s)"
           " / thread(s)\n",
           n_images, OCR_W, OCR_H, rounds, workers);
    if (!paths || !shas)
        goto out;
    snprintf(dir, sizeof dir, "%s/images", work_dir);
    mkdir(dir, 0700);
    for (int i = 0; i <= n_images; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s-%02d.png", dir, i < n_images ? "shot" : "warm",
                 i);
    double t0 = now_s();
    if (render_images(paths, n_images, cores) != AM_OK) {
        FAIL("ImageMagick's convert could not render the screenshots (is it installed, with"
             " the DejaVu fonts?)");
        goto out;
    }
    printf("images rendered in %.1f s\n", now_s() - t0);

    /* The direct baseline's engines, loaded before any clock starts (amd's workers load
     * theirs on their first job, which the warm-up below gives them). */
    t0 = now_s();
    for (int i = 0; i < workers && i < 64; i++)
        if (am_ocr_new(NULL, "eng", &engines[i], err, sizeof err) != AM_OK) {
            FAIL("direct OCR: %s", err);
            goto out;
        }
    printf("direct: %d tesseract engine(s) (%s) loaded in %.2f s\n", workers, am_ocr_version(),
           now_s() - t0);

    if (amd_start(d, "ocr", "ocr,stt") != AM_OK)
        goto out;
    for (int i = 0; i <= n_images; i++) {
        size_t len = 0;
        char *data = read_file(paths[i], &len);
        am_rc rc = data ? upload_blob(&d->h, data, len, shas[i]) : AM_EIO;
        am_free(data);
        if (rc != AM_OK) {
            FAIL("uploading %s to amd failed: %s", paths[i], http_why(&d->h, err, sizeof err));
            goto out;
        }
    }
    /* Warm-up: two small images per worker, so that each loads its engine. */
    long done = 0;
    double cores_used, am_cpu[MAX_ROUNDS], direct_cpu[MAX_ROUNDS];
    char(*warm)[65] = am_calloc((size_t)workers * 2, sizeof *warm);
    for (int i = 0; warm && i < workers * 2; i++)
        memcpy(warm[i], shas[n_images], 65);
    int with_text = 0;
    double warm_rate = warm ? am_round(d, warm, workers * 2, "warm", &done, &cores_used) : 0;
    am_free(warm);
    if (warm_rate == 0)
        goto out;
    for (int i = 0; i < workers; i++)
        direct_round(&engines[i], 1, paths + n_images, 1, &with_text, &cores_used);
    printf("warm-up done (each engine has read one image)\n");

    /* Rounds alternate which side goes first, so neither always meets a cold cache. */
    for (int r = 0; r < rounds; r++) {
        char tag[32];
        snprintf(tag, sizeof tag, "round%d", r + 1);
        am_rate[r] = direct_rate[r] = 0;
        for (int side = 0; side < 2; side++) {
            if ((side == 0) == (r % 2 == 0)) {
                am_rate[r] = am_round(d, shas, n_images, tag, &done, &am_cpu[r]);
            } else {
                direct_rate[r] =
                    direct_round(engines, workers, paths, n_images, &with_text, &direct_cpu[r]);
                if (with_text < n_images)
                    printf("warning: direct OCR found text on only %d of %d images\n", with_text,
                           n_images);
            }
        }
        if (am_rate[r] == 0 || direct_rate[r] == 0)
            goto out;
        ratios[r] = ratio(am_rate[r], direct_rate[r]);
        printf("round %d (%s first): amd %.2f images/s (amd CPU %.2f cores), direct %.2f"
               " images/s (CPU %.2f cores), ratio amd/direct %.2f\n",
               r + 1, r % 2 == 0 ? "amd" : "direct", am_rate[r], am_cpu[r], direct_rate[r],
               direct_cpu[r], ratios[r]);
        done_rounds++;
    }
    long ocr_events = stream_count(&d->h, "image.ocr");
    printf("image.ocr events in amd: %ld (expected %d: one per screenshot with text)\n", ocr_events,
           rounds * n_images + workers * 2);
    if (ocr_events != rounds * n_images + workers * 2)
        printf("warning: amd's OCR event count differs from the screenshots it read\n");
    double am_med = median(am_rate, done_rounds), direct_med = median(direct_rate, done_rounds);
    printf("ocr through amd (post -> queue empty, median): %.2f images/s (%.0f ms/image per"
           " worker)\n",
           am_med, am_med > 0 ? 1000.0 * workers / am_med : 0);
    printf("ocr direct (am_ocr_image, %d threads, median): %.2f images/s (%.0f ms/image per"
           " thread)\n",
           workers, direct_med, direct_med > 0 ? 1000.0 * workers / direct_med : 0);
    printf("ratio ocr amd/direct: %.2f (target >= 0.8; median of the rounds' ratios)\n",
           median(ratios, done_rounds));
out:
    for (int i = 0; i < 64; i++)
        am_ocr_free(engines[i]);
    am_free(paths);
    am_free(shas);
}

/* ---------------------------------------------------------------- 2. search */

struct search_ctx {
    struct amd *d;
    long filled;     /* events stored so far */
    long embed_from; /* filled when the current fill began */
    double embed_t0; /* and when */
    int64_t user_id;
    char model[128];
    int dim;
    float *vecs; /* the user's vectors of `model`, in memory, for the in-memory scan */
    int64_t *ids;
    size_t n_vecs;
    sqlite3 *db;  /* amd's database, read-only */
    sqlite3 *vdb; /* sqlite-vec in memory */
    char vec_skip[512];
};

/* Appends events [filled, target) in requests of FILL_BATCH; AM_OK when all were stored. */
static am_rc fill(struct search_ctx *c, long target) {
    struct am_buf body;
    char text[400], why[400];
    uint64_t s = 0xfeedULL + (uint64_t)c->filled;
    am_rc rc = AM_OK;
    am_buf_init(&body, BODY_MAX_BYTES);
    double t0 = now_s(), last = t0;
    long first = c->filled;
    while (c->filled < target) {
        long n = target - c->filled < FILL_BATCH ? target - c->filled : FILL_BATCH;
        am_buf_reset(&body);
        am_buf_appends(&body, "[");
        for (long i = 0; i < n; i++) {
            long k = c->filled + i;
            sentence(&s, text, sizeof text);
            rc = am_buf_printf(&body,
                               "%s{\"stream\":\"comms.message\",\"ts\":%lld,\"source\":"
                               "\"bench\",\"key\":\"m-%ld\",\"payload\":{\"text\":\"%s\","
                               "\"app\":\"sms\"}}",
                               i ? "," : "", BASE_TS_MS + k * 1000, k, text);
        }
        if (rc == AM_OK)
            rc = am_buf_appends(&body, "]");
        if (rc != AM_OK) {
            FAIL("building a batch of messages: %s", am_strerror(rc));
            break;
        }
        long stored = post_events(&c->d->h, body.data, body.len);
        if (stored != n) {
            FAIL("amd stored %ld of %ld messages: %s", stored, n,
                 http_why(&c->d->h, why, sizeof why));
            rc = AM_EIO;
            break;
        }
        c->filled += n;
        if (now_s() - last > 15) {
            last = now_s();
            printf("progress: %ld/%ld messages stored\n", c->filled, target);
        }
    }
    am_buf_free(&body);
    if (rc == AM_OK)
        printf("filled %ld messages through HTTP (batches of %d) at %.0f events/s\n",
               c->filled - first, FILL_BATCH, (double)(c->filled - first) / (now_s() - t0));
    return rc;
}

/* Reads the user's vectors into memory and builds the sqlite-vec table from them. */
static am_rc load_vectors(struct search_ctx *c) {
    sqlite3_stmt *st = NULL;
    am_rc rc = AM_EIO;
    am_free(c->vecs);
    am_free(c->ids);
    c->vecs = NULL;
    c->ids = NULL;
    c->n_vecs = 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT user_id, model, dim, count(*) FROM vectors GROUP BY 1, 2, 3"
                           " ORDER BY 4 DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        FAIL("no vectors in amd's database: %s", sqlite3_errmsg(c->db));
        goto out;
    }
    c->user_id = sqlite3_column_int64(st, 0);
    snprintf(c->model, sizeof c->model, "%s", (const char *)sqlite3_column_text(st, 1));
    c->dim = sqlite3_column_int(st, 2);
    size_t count = (size_t)sqlite3_column_int64(st, 3);
    sqlite3_finalize(st);
    st = NULL;
    c->vecs = am_malloc(count * (size_t)c->dim * sizeof(float) + 1);
    c->ids = am_malloc(count * sizeof *c->ids + 1);
    if (!c->vecs || !c->ids)
        goto out;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT event_id, vec FROM vectors WHERE user_id = ?1 AND"
                           " model = ?2 AND dim = ?3",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, c->user_id);
    sqlite3_bind_text(st, 2, c->model, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, c->dim);
    size_t bytes = (size_t)c->dim * sizeof(float);
    while (sqlite3_step(st) == SQLITE_ROW && c->n_vecs < count) {
        if ((size_t)sqlite3_column_bytes(st, 1) != bytes)
            continue;
        c->ids[c->n_vecs] = sqlite3_column_int64(st, 0);
        memcpy(c->vecs + c->n_vecs * (size_t)c->dim, sqlite3_column_blob(st, 1), bytes);
        c->n_vecs++;
    }
    rc = AM_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* sqlite-vec's vec0 table in memory, filled with the same vectors. */
static void load_sqlite_vec(struct search_ctx *c) {
    const char *so = getenv("BENCH_VEC0");
    char *err = NULL, sql[256];
    sqlite3_stmt *st = NULL;
    if (c->vdb) {
        sqlite3_close(c->vdb);
        c->vdb = NULL;
    }
    if (getenv("BENCH_VEC0_SKIP") && *getenv("BENCH_VEC0_SKIP")) {
        snprintf(c->vec_skip, sizeof c->vec_skip, "%s", getenv("BENCH_VEC0_SKIP"));
        return;
    }
    if (!so || !*so || access(so, R_OK) != 0) {
        snprintf(c->vec_skip, sizeof c->vec_skip,
                 "BENCH_VEC0 does not name sqlite-vec's vec0.so (scripts/bench.sh installs"
                 " it with npm)");
        return;
    }
    double t0 = now_s();
    if (sqlite3_open(":memory:", &c->vdb) != SQLITE_OK ||
        sqlite3_enable_load_extension(c->vdb, 1) != SQLITE_OK ||
        sqlite3_load_extension(c->vdb, so, NULL, &err) != SQLITE_OK) {
        snprintf(c->vec_skip, sizeof c->vec_skip, "loading %s failed: %s", so,
                 err ? err : sqlite3_errmsg(c->vdb));
        goto fail;
    }
    /* Cosine, as amd ranks (the built-in embedder's vectors are unit length anyway). */
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE v USING vec0(embedding float[%d] distance_metric=cosine)",
             c->dim);
    if (sqlite3_exec(c->vdb, sql, NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->vdb, "BEGIN", NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_prepare_v2(c->vdb, "INSERT INTO v(rowid, embedding) VALUES (?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(c->vec_skip, sizeof c->vec_skip, "sqlite-vec: %s",
                 err ? err : sqlite3_errmsg(c->vdb));
        goto fail;
    }
    for (size_t i = 0; i < c->n_vecs; i++) {
        sqlite3_bind_int64(st, 1, c->ids[i]);
        sqlite3_bind_blob(st, 2, c->vecs + i * (size_t)c->dim, c->dim * (int)sizeof(float),
                          SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            snprintf(c->vec_skip, sizeof c->vec_skip, "sqlite-vec insert: %s",
                     sqlite3_errmsg(c->vdb));
            goto fail;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(c->vdb, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
        snprintf(c->vec_skip, sizeof c->vec_skip, "sqlite-vec commit: %s", err);
        goto fail;
    }
    sqlite3_stmt *v = NULL;
    const char *version = "?";
    if (sqlite3_prepare_v2(c->vdb, "SELECT vec_version()", -1, &v, NULL) == SQLITE_OK &&
        sqlite3_step(v) == SQLITE_ROW)
        version = (const char *)sqlite3_column_text(v, 0);
    printf("sqlite-vec %s: vec0 table of %zu vectors (float[%d], cosine) built in memory in"
           " %.1f s\n",
           version, c->n_vecs, c->dim, now_s() - t0);
    sqlite3_finalize(v);
    c->vec_skip[0] = '\0';
    return;
fail:
    sqlite3_free(err);
    sqlite3_finalize(st);
    sqlite3_close(c->vdb);
    c->vdb = NULL;
}

/* The best TOP_K by cosine, kept sorted (best first). */
struct top {
    int64_t id[TOP_K];
    double score[TOP_K];
    int n;
};

static void top_push(struct top *t, int64_t id, double score) {
    if (t->n == TOP_K && score <= t->score[TOP_K - 1])
        return;
    int i = t->n < TOP_K ? t->n++ : TOP_K - 1;
    while (i > 0 && t->score[i - 1] < score) {
        t->id[i] = t->id[i - 1];
        t->score[i] = t->score[i - 1];
        i--;
    }
    t->id[i] = id;
    t->score[i] = score;
}

/* The same arithmetic as amd's scan: dot product and norms in double, per vector. */
static double cosine(const float *q, double qn, const float *v, int dim) {
    double dot = 0, vn = 0;
    for (int i = 0; i < dim; i++) {
        dot += (double)q[i] * v[i];
        vn += (double)v[i] * v[i];
    }
    return qn > 0 && vn > 0 ? dot / (qn * sqrt(vn)) : 0;
}

static double norm(const float *q, int dim) {
    double n = 0;
    for (int i = 0; i < dim; i++)
        n += (double)q[i] * q[i];
    return sqrt(n);
}

static int overlap(const int64_t *a, int na, const int64_t *b, int nb) {
    int same = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (a[i] == b[j]) {
                same++;
                break;
            }
    return same;
}

enum {
    M_TEXT,
    M_VECTOR,
    M_HYBRID,
    M_RAW_FTS,
    M_RAW_FTS_AMD,
    M_RAW_SCAN,
    M_MEM_SCAN,
    M_VEC0,
    M_TOOK_TEXT,
    M_TOOK_VECTOR,
    M_TOOK_HYBRID,
    N_MEASURES
};

/* The statements amd's text half runs (store_sqlite_jobs.c), with no filter: every word,
 * then, when that finds fewer than `depth`, any word. Rows they return. */
#define AMD_FTS_SQL                                                                                \
    "SELECT f.rowid, bm25(fts), snippet(fts, 0, char(1), char(2), '\u2026', 16) FROM fts f"        \
    " JOIN events e ON e.id = f.rowid WHERE fts MATCH ?2 AND e.user_id = ?1 ORDER BY bm25(fts)"    \
    " LIMIT ?3"
#define AMD_FTS_DEPTH 30 /* amd asks each half for max(30, 3 * limit) */

static long fts_as_amd(sqlite3_stmt *st, int64_t user_id, const char *q) {
    char match[512];
    long rows = 0;
    for (int any = 0; any < 2; any++) {
        if (am_search_fts_query(q, any, match, sizeof match) != AM_OK ||
            (any && (rows >= AMD_FTS_DEPTH || !strchr(match, ' '))))
            break;
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_text(st, 2, match, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, AMD_FTS_DEPTH);
        while (sqlite3_step(st) == SQLITE_ROW)
            rows += sqlite3_column_bytes(st, 2) >= 0;
        sqlite3_reset(st);
    }
    return rows;
}

/* One query through amd's HTTP search; round-trip ms, or -1 when it failed. Its hit ids
 * go to ids (at most TOP_K) and amd's own took_ms to took. */
static double http_search(struct search_ctx *c, const char *q, const char *mode, int64_t *ids,
                          int *n_ids, double *took) {
    char path[1024], why[400];
    char *esc = curl_easy_escape(c->d->h.curl, q, 0);
    snprintf(path, sizeof path, "/v1/search?q=%s&mode=%s&limit=%d&context=0", esc ? esc : "", mode,
             TOP_K);
    curl_free(esc);
    double t0 = now_s();
    long st = http_call(&c->d->h, path, NULL, 0, 0);
    double ms = (now_s() - t0) * 1e3;
    if (st != 200) {
        FAIL("search '%s' (%s): %s", q, mode, http_why(&c->d->h, why, sizeof why));
        return -1;
    }
    json_t *a = http_answer_json(&c->d->h), *h;
    size_t i;
    *n_ids = 0;
    *took = json_number_value(json_object_get(a, "took_ms"));
    json_array_foreach(json_object_get(a, "hits"), i, h) {
        if (*n_ids < TOP_K)
            ids[(*n_ids)++] = (int64_t)json_integer_value(json_object_get(h, "id"));
    }
    json_decref(a);
    return ms;
}

static void bench_search_at(struct search_ctx *c, int n_queries) {
    double *m[N_MEASURES];
    sqlite3_stmt *fts = NULL, *fts_amd = NULL, *scan = NULL, *knn = NULL;
    uint64_t s = 0x9e7ULL;
    long hits_text = 0, hits_vector = 0, hits_hybrid = 0, hits_fts = 0;
    long vec0_agree = 0, am_vector_agree = 0, vec0_queries = 0;
    int failed = 0;
    memset(m, 0, sizeof m);
    for (int k = 0; k < N_MEASURES; k++)
        if (!(m[k] = am_calloc((size_t)n_queries, sizeof(double))))
            goto out;
    if (load_vectors(c) != AM_OK)
        goto out;
    printf("vectors: %zu of model %s (dim %d) for %ld messages\n", c->n_vecs, c->model, c->dim,
           c->filled);
    load_sqlite_vec(c);
    if (c->vec_skip[0])
        printf("sqlite-vec comparison skipped: %s\n", c->vec_skip);
    if (sqlite3_prepare_v2(c->db,
                           "SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY bm25(fts) LIMIT 10",
                           -1, &fts, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, AMD_FTS_SQL, -1, &fts_amd, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db,
                           "SELECT event_id, vec FROM vectors WHERE user_id = ?1 AND"
                           " model = ?2 AND dim = ?3",
                           -1, &scan, NULL) != SQLITE_OK) {
        FAIL("preparing the raw queries: %s", sqlite3_errmsg(c->db));
        goto out;
    }
    if (c->vdb && sqlite3_prepare_v2(c->vdb,
                                     "SELECT rowid, distance FROM v WHERE embedding"
                                     " MATCH ?1 AND k = 10",
                                     -1, &knn, NULL) != SQLITE_OK) {
        printf("sqlite-vec comparison skipped: %s\n", sqlite3_errmsg(c->vdb));
        sqlite3_close(c->vdb);
        c->vdb = NULL;
    }
    float *qv = am_malloc(sizeof(float) * (size_t)c->dim);
    if (!qv)
        goto out;
    printf("queries: %d of 1-3 words (vocabulary ranks %d..%d, uniform), limit %d, context=0;"
           " each runs every way in turn\n",
           n_queries, QUERY_MIN_RANK, VOCAB, TOP_K);
    for (int i = 0; i < n_queries && !failed; i++) {
        char q[128] = "", match[512];
        size_t words = 1 + rng_below(&s, 3), o = 0;
        for (size_t w = 0; w < words; w++)
            o += (size_t)snprintf(q + o, sizeof q - o, "%s%s", w ? " " : "",
                                  vocab[QUERY_MIN_RANK + rng_below(&s, VOCAB - QUERY_MIN_RANK)]);
        int64_t ids[TOP_K], am_vec_ids[TOP_K];
        int n_ids, n_am_vec = 0;
        /* amd over HTTP, the three modes. */
        m[M_TEXT][i] = http_search(c, q, "text", ids, &n_ids, &m[M_TOOK_TEXT][i]);
        hits_text += n_ids;
        m[M_VECTOR][i] = http_search(c, q, "vector", am_vec_ids, &n_am_vec, &m[M_TOOK_VECTOR][i]);
        hits_vector += n_am_vec;
        m[M_HYBRID][i] = http_search(c, q, "hybrid", ids, &n_ids, &m[M_TOOK_HYBRID][i]);
        hits_hybrid += n_ids;
        if (m[M_TEXT][i] < 0 || m[M_VECTOR][i] < 0 || m[M_HYBRID][i] < 0) {
            failed = 1;
            break;
        }
        /* Raw FTS5: the first statement amd runs for the same words (all of them, the
         * last also as a prefix), without the join, snippet and events around it. */
        am_search_fts_query(q, 0, match, sizeof match);
        double t0 = now_s();
        sqlite3_bind_text(fts, 1, match, -1, SQLITE_STATIC);
        while (sqlite3_step(fts) == SQLITE_ROW)
            hits_fts++;
        sqlite3_reset(fts);
        m[M_RAW_FTS][i] = (now_s() - t0) * 1e3;
        t0 = now_s();
        fts_as_amd(fts_amd, c->user_id, q);
        m[M_RAW_FTS_AMD][i] = (now_s() - t0) * 1e3;
        /* Raw exact scan: every vector blob of the user and model from SQLite, cosine in
         * C; the query embedded as amd does. */
        t0 = now_s();
        am_embed_hash(q, strlen(q), qv, c->dim);
        double qn = norm(qv, c->dim);
        struct top raw = {0};
        sqlite3_bind_int64(scan, 1, c->user_id);
        sqlite3_bind_text(scan, 2, c->model, -1, SQLITE_STATIC);
        sqlite3_bind_int(scan, 3, c->dim);
        while (sqlite3_step(scan) == SQLITE_ROW) {
            const float *v = sqlite3_column_blob(scan, 1);
            if (v && sqlite3_column_bytes(scan, 1) == c->dim * (int)sizeof(float))
                top_push(&raw, sqlite3_column_int64(scan, 0), cosine(qv, qn, v, c->dim));
        }
        sqlite3_reset(scan);
        m[M_RAW_SCAN][i] = (now_s() - t0) * 1e3;
        /* The same scan over floats already in memory: the arithmetic alone. */
        t0 = now_s();
        am_embed_hash(q, strlen(q), qv, c->dim);
        qn = norm(qv, c->dim);
        struct top mem = {0};
        for (size_t k = 0; k < c->n_vecs; k++)
            top_push(&mem, c->ids[k], cosine(qv, qn, c->vecs + k * (size_t)c->dim, c->dim));
        m[M_MEM_SCAN][i] = (now_s() - t0) * 1e3;
        am_vector_agree += overlap(am_vec_ids, n_am_vec, raw.id, raw.n);
        /* sqlite-vec kNN over the same vectors. */
        if (knn) {
            int64_t vids[TOP_K];
            int nv = 0;
            t0 = now_s();
            am_embed_hash(q, strlen(q), qv, c->dim);
            sqlite3_bind_blob(knn, 1, qv, c->dim * (int)sizeof(float), SQLITE_STATIC);
            while (sqlite3_step(knn) == SQLITE_ROW)
                if (nv < TOP_K)
                    vids[nv++] = sqlite3_column_int64(knn, 0);
            sqlite3_reset(knn);
            m[M_VEC0][i] = (now_s() - t0) * 1e3;
            vec0_agree += overlap(vids, nv, raw.id, raw.n);
            vec0_queries++;
        }
    }
    am_free(qv);
    if (failed)
        goto out;
    int n = n_queries;
    double p50[N_MEASURES], p95[N_MEASURES];
    for (int k = 0; k < N_MEASURES; k++) {
        p50[k] = percentile(m[k], (size_t)n, 50);
        p95[k] = percentile(m[k], (size_t)n, 95);
    }
    const char *label[N_MEASURES] = {
        "amd text (HTTP)",        "amd vector (HTTP)",       "amd hybrid (HTTP)",
        "raw fts5 MATCH",         "raw fts5 as amd's SQL",   "raw exact scan (sqlite)",
        "exact scan (in memory)", "sqlite-vec kNN (k = 10)", "amd text took_ms",
        "amd vector took_ms",     "amd hybrid took_ms"};
    printf("search latency at %ld messages (%d queries):\n", c->filled, n);
    for (int k = 0; k < N_MEASURES; k++) {
        if (k == M_VEC0 && !knn)
            continue;
        printf("  %-28s p50 %8.3f ms   p95 %8.3f ms\n", label[k], p50[k], p95[k]);
    }
    printf("  hits per query: text %.1f, vector %.1f, hybrid %.1f, raw fts5 %.1f\n",
           (double)hits_text / n, (double)hits_vector / n, (double)hits_hybrid / n,
           (double)hits_fts / n);
    printf("  amd vector top-%d vs raw exact top-%d: %.0f%% the same events\n", TOP_K, TOP_K,
           100.0 * (double)am_vector_agree / ((double)n * TOP_K));
    if (knn)
        printf("  sqlite-vec top-%d vs raw exact top-%d: %.0f%% the same events\n", TOP_K, TOP_K,
               100.0 * (double)vec0_agree / ((double)vec0_queries * TOP_K));
    printf("ratio search text amd/raw_fts5 (p50): %.2f\n", ratio(p50[M_TEXT], p50[M_RAW_FTS]));
    printf("ratio search text amd/raw_fts5_as_amd_sql (p50): %.2f\n",
           ratio(p50[M_TEXT], p50[M_RAW_FTS_AMD]));
    printf("ratio search vector amd/raw_exact_scan (p50): %.2f\n",
           ratio(p50[M_VECTOR], p50[M_RAW_SCAN]));
    if (knn)
        printf("ratio search vector amd/sqlite_vec (p50): %.2f\n",
               ratio(p50[M_VECTOR], p50[M_VEC0]));
    printf("ratio search hybrid amd/(raw_fts5 + raw_exact_scan) (p50): %.2f\n",
           ratio(p50[M_HYBRID], p50[M_RAW_FTS] + p50[M_RAW_SCAN]));
out:
    sqlite3_finalize(fts);
    sqlite3_finalize(fts_amd);
    sqlite3_finalize(scan);
    sqlite3_finalize(knn);
    for (int k = 0; k < N_MEASURES; k++)
        am_free(m[k]);
}

/* Embedding runs while the messages arrive; this waits for the rest. */
static am_rc wait_embedded(struct search_ctx *c, double t_fill_end) {
    struct kind_counts k;
    am_rc rc = wait_jobs(&c->d->h, "embed", c->filled, 250, 3600, &k);
    if (rc != AM_OK) {
        FAIL("embedding did not finish (pending %ld, running %ld)", k.pending, k.running);
        return rc;
    }
    if (k.dead)
        printf("warning: %ld embed job(s) are dead\n", k.dead);
    printf("embed queue empty %.1f s after the last message (%ld embed jobs done, %.0f"
           " vectors/s from the first message on)\n",
           now_s() - t_fill_end, k.done,
           (double)(c->filled - c->embed_from) / (now_s() - c->embed_t0));
    return AM_OK;
}

/* Where the database's bytes are (dbstat): the vectors, the full-text index, the rest. */
static void print_sizes(struct search_ctx *c, const char *path) {
    struct stat st;
    sqlite3_stmt *q = NULL;
    double total = stat(path, &st) == 0 ? (double)st.st_size : 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT sum(pgsize) FILTER (WHERE name = 'vectors'),"
                           " sum(pagetype = 'overflow') FILTER (WHERE name = 'vectors'),"
                           " sum(pgsize) FILTER (WHERE name LIKE 'fts%') FROM dbstat",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        double vec = sqlite3_column_double(q, 0), fts = sqlite3_column_double(q, 2);
        printf("am.db: %.0f MiB; vectors %.0f MiB (%.0f bytes per %d-byte vector, %lld overflow"
               " pages), full-text index %.0f MiB\n",
               total / 1048576, vec / 1048576, c->filled ? vec / (double)c->filled : 0,
               c->dim * (int)sizeof(float), (long long)sqlite3_column_int64(q, 1), fts / 1048576);
    } else {
        printf("am.db: %.0f MiB (no dbstat for a breakdown: %s)\n", total / 1048576,
               sqlite3_errmsg(c->db));
    }
    sqlite3_finalize(q);
}

static void bench_search(long events, int n_queries, int n_queries_1m, int big) {
    struct amd d;
    struct search_ctx c;
    char path[PATH_MAX + 16];
    memset(&c, 0, sizeof c);
    c.d = &d;
    printf("\n== 3. search: %ld comms.message events (generated sentences of 5-20 words from %d"
           " words, Zipf), AM_PIPELINE=embed\n",
           events, VOCAB);
    if (amd_start(&d, "search", "embed") != AM_OK)
        return;
    double t0 = c.embed_t0 = now_s();
    if (fill(&c, events) != AM_OK || wait_embedded(&c, now_s()) != AM_OK)
        goto out;
    printf("fill and embedding took %.1f s in all\n", now_s() - t0);
    snprintf(path, sizeof path, "%s/am.db", d.data);
    if (sqlite3_open_v2(path, &c.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        FAIL("opening %s read-only: %s", path, sqlite3_errmsg(c.db));
        goto out;
    }
    bench_search_at(&c, n_queries);
    print_sizes(&c, path);
    if (!big) {
        printf("search at 1M messages skipped (set BENCH_SEARCH_1M=1; filling takes minutes)\n");
        goto out;
    }
    t0 = c.embed_t0 = now_s();
    c.embed_from = c.filled;
    if (fill(&c, 1000000) != AM_OK || wait_embedded(&c, now_s()) != AM_OK)
        goto out;
    printf("fill and embedding to 1M took %.1f s in all\n", now_s() - t0);
    bench_search_at(&c, n_queries_1m);
    print_sizes(&c, path);
out:
    sqlite3_close(c.db);
    sqlite3_close(c.vdb);
    am_free(c.vecs);
    am_free(c.ids);
    amd_stop(&d);
    amd_show_log(&d, "search");
}

/* ---------------------------------------------------------------- 3. STT */

/* Decode, voice activity and recognition of the file; seconds taken, -1 on failure. */
static double stt_direct(struct am_sphinx *sp, const char *path, double *audio_s, char *text,
                         size_t text_len) {
    int16_t *pcm = NULL;
    size_t n = 0, n_spans = 0;
    struct am_span *spans = NULL;
    char err[256] = "";
    double t0 = now_s(), took = -1;
    size_t o = 0;
    if (am_audio_decode(path, 14400, &pcm, &n, err, sizeof err) != AM_OK) {
        FAIL("am_audio_decode %s: %s", path, err);
        goto out;
    }
    if (am_vad(pcm, n, &spans, &n_spans) != AM_OK) {
        FAIL("am_vad failed");
        goto out;
    }
    text[0] = '\0';
    for (size_t i = 0; i < n_spans; i++) {
        char *t = NULL;
        double conf;
        if (am_sphinx_transcribe(sp, pcm + spans[i].start, spans[i].end - spans[i].start, &t,
                                 &conf) != AM_OK) {
            FAIL("am_sphinx_transcribe failed");
            goto out;
        }
        if (o < text_len)
            o += (size_t)snprintf(text + o, text_len - o, "%s%s", o ? " " : "", t);
        am_free(t);
    }
    took = now_s() - t0;
    *audio_s = (double)n / AM_AUDIO_RATE;
out:
    am_free(spans);
    am_free(pcm);
    return took;
}

/* Posts recordings [first, first + n) of the run at once (one request each) and waits
 * until amd's STT queue is empty; seconds from the first post, -1 on failure. */
static double am_stt(struct amd *d, const char *sha, double audio_s, int first, int n,
                     long *finished) {
    char body[512], err[400];
    struct kind_counts k;
    double t0 = now_s();
    for (int i = first; i < first + n; i++) {
        long long ts = BASE_TS_MS + i * 10000LL;
        int len = snprintf(body, sizeof body,
                           "[{\"stream\":\"audio.chunk\",\"ts\":%lld,\"ts_end\":%lld,"
                           "\"source\":\"bench\",\"key\":\"stt-%d\",\"blob\":\"%s\","
                           "\"payload\":{\"codec\":\"wav\",\"duration\":%.3f}}]",
                           ts, ts + (long long)(audio_s * 1000), i, sha, audio_s);
        if (post_events(&d->h, body, (size_t)len) != 1) {
            FAIL("amd did not store the audio.chunk event: %s", http_why(&d->h, err, sizeof err));
            return -1;
        }
    }
    *finished += n;
    if (wait_jobs(&d->h, "stt", *finished, POLL_STT_MS, 300, &k) != AM_OK || k.dead) {
        FAIL("amd's STT jobs did not finish (pending %ld, running %ld, dead %ld)", k.pending,
             k.running, k.dead);
        return -1;
    }
    return now_s() - t0;
}

static void bench_stt(struct amd *d, int runs) {
    struct am_sphinx *sp = NULL;
    char text[1024], sha[65], err[400];
    double direct[MAX_ROUNDS], through[MAX_ROUNDS], audio_s = 0;
    size_t len = 0;
    char *wav = NULL;
    struct kind_counts k;
    printf("\n== 2. speech to text: pocketsphinx on %s, %d run(s), direct and through amd in"
           " turn\n",
           SPEECH_WAV, runs);
    if (access(SPEECH_WAV, R_OK) != 0) {
        FAIL("%s is missing (alsa-utils)", SPEECH_WAV);
        return;
    }
    if (!d->pid) {
        FAIL("no amd to run speech to text through");
        return;
    }
    double t0 = now_s();
    if (am_sphinx_new(SPHINX_MODEL, &sp) != AM_OK) {
        FAIL("pocketsphinx cannot load %s", SPHINX_MODEL);
        return;
    }
    printf("direct: pocketsphinx model loaded in %.2f s\n", now_s() - t0);
    /* The duration comes from the decoded audio, which amd's payload carries too. */
    if (stt_direct(sp, SPEECH_WAV, &audio_s, text, sizeof text) < 0)
        goto out;
    if (!(wav = read_file(SPEECH_WAV, &len)) || upload_blob(&d->h, wav, len, sha) != AM_OK) {
        FAIL("uploading the recording: %s", http_why(&d->h, err, sizeof err));
        goto out;
    }
    if (job_counts(&d->h, "stt", &k) != AM_OK) {
        FAIL("GET /v1/jobs failed");
        goto out;
    }
    long finished = k.done + k.dead, transcripts0 = stream_count(&d->h, "audio.transcript");
    /* Warm-up: two recordings per worker at once, so that each loads its model. */
    double warm = am_stt(d, sha, audio_s, 0, workers * 2, &finished);
    if (warm < 0)
        goto out;
    printf("through amd, warm-up: %d recordings at once, done in %.2f s (each worker loads its"
           " model on its first job)\n",
           workers * 2, warm);
    /* Then one recording at a time, as a phone sends them, in turn with the direct run. */
    for (int r = 0; r < runs; r++) {
        if ((direct[r] = stt_direct(sp, SPEECH_WAV, &audio_s, text, sizeof text)) < 0 ||
            (through[r] = am_stt(d, sha, audio_s, workers * 2 + r, 1, &finished)) < 0)
            goto out;
    }
    long transcripts = stream_count(&d->h, "audio.transcript") - transcripts0;
    double direct_med = median(direct, runs), through_med = median(through, runs);
    printf("direct, each run:     ");
    for (int r = 0; r < runs; r++)
        printf(" %.3f s", direct[r]);
    printf("\nthrough amd, each run:");
    for (int r = 0; r < runs; r++)
        printf(" %.3f s", through[r]);
    printf("\n");
    printf("stt direct (decode + VAD + recognition, median): %.3f s for %.2f s of audio,"
           " real-time factor %.3f; text: \"%s\"\n",
           direct_med, audio_s, ratio(direct_med, audio_s), text);
    printf("stt through amd (post -> job done, one recording at a time, median): %.3f s,"
           " real-time factor %.3f\n",
           through_med, ratio(through_med, audio_s));
    printf("audio.transcript events from amd: %ld for %d recordings\n", transcripts,
           workers * 2 + runs);
    if (transcripts < workers * 2 + runs)
        FAIL("amd made fewer transcripts than recordings");
    printf("ratio stt time amd/direct: %.2f (amd's includes the ack, the queue, reading the"
           " blob and storing the transcript)\n",
           ratio(through_med, direct_med));
out:
    am_free(wav);
    am_sphinx_free(sp);
}

/* ---------------------------------------------------------------- main */

static int part_on(const char *parts, const char *name) {
    char list[256];
    snprintf(list, sizeof list, "%s", parts);
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        if (!strcmp(t, name))
            return 1;
    return 0;
}

int main(int argc, char **argv) {
    /* tesseract's OpenMP reads OMP_THREAD_LIMIT only at process start; amd starts itself
     * again with it set, and so must this process for the direct baseline to be fair. */
    if (!getenv("OMP_THREAD_LIMIT")) {
        setenv("OMP_THREAD_LIMIT", "1", 1);
        execv("/proc/self/exe", argv);
        printf("warning: could not restart with OMP_THREAD_LIMIT=1 (%s); direct OCR may be"
               " slow\n",
               strerror(errno));
    }
    if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
        fprintf(stderr,
                "usage: bench_pipeline [BIN_DIR [SCRATCH_PARENT]]\n"
                "  BIN_DIR holds am and amd (default: $AM_BIN_DIR, else this program's dir)\n"
                "  BENCH_PARTS=ocr,search,stt  the parts to run (default: all)\n"
                "  BENCH_OCR_IMAGES=N (40)  BENCH_OCR_ROUNDS=N (3)  AM_WORKERS=N (cores)\n"
                "  BENCH_SEARCH_EVENTS=N (100000)  BENCH_QUERIES=N (200)\n"
                "  BENCH_SEARCH_1M=1 (also at 1M messages)  BENCH_QUERIES_1M=N (30)\n"
                "  BENCH_STT_RUNS=N (5)  BENCH_VEC0=path/to/vec0.so (sqlite-vec)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    am_log_set_level(AM_LOG_WARN);
    am_alloc_init();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const char *bins = argc > 1 ? argv[1] : getenv("AM_BIN_DIR");
    if (bins && *bins) {
        snprintf(bin_dir, sizeof bin_dir, "%s", bins);
    } else {
        ssize_t n = readlink("/proc/self/exe", bin_dir, sizeof bin_dir - 1);
        bin_dir[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(bin_dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(bin_dir, sizeof bin_dir, ".");
    }
    char amd_path[PATH_MAX + 8];
    snprintf(amd_path, sizeof amd_path, "%s/amd", bin_dir);
    if (access(amd_path, X_OK) != 0) {
        fprintf(stderr, "bench_pipeline: no amd in %s (pass BIN_DIR or set AM_BIN_DIR)\n", bin_dir);
        return 1;
    }
    const char *parent = argc > 2 ? argv[2] : getenv("TMPDIR");
    snprintf(work_dir, sizeof work_dir, "%s/am-bench-pipeline.XXXXXX",
             parent && *parent ? parent : "/tmp");
    if (!mkdtemp(work_dir)) {
        fprintf(stderr, "bench_pipeline: mkdtemp %s: %s\n", work_dir, strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cores = cores > 0 ? cores : 1;
    workers = (int)env_long("AM_WORKERS", 0, 0, 64);
    workers = workers > 0 ? workers : (int)cores;
    const char *parts =
        getenv("BENCH_PARTS") && *getenv("BENCH_PARTS") ? getenv("BENCH_PARTS") : "ocr,search,stt";
    int ocr_images = (int)env_long("BENCH_OCR_IMAGES", 40, 1, 10000);
    int ocr_rounds = (int)env_long("BENCH_OCR_ROUNDS", 3, 1, MAX_ROUNDS);
    long search_events = env_long("BENCH_SEARCH_EVENTS", 100000, 1000, 10000000);
    int queries = (int)env_long("BENCH_QUERIES", 200, 1, 100000);
    /* At 1M each vector query scans ~1 GB of blobs: seconds, three times per query. */
    int queries_1m = (int)env_long("BENCH_QUERIES_1M", 30, 1, 100000);
    int big = env_long("BENCH_SEARCH_1M", 0, 0, 1) == 1;
    int stt_runs = (int)env_long("BENCH_STT_RUNS", 5, 1, MAX_ROUNDS);
    make_vocab();
    printf("bench_pipeline: amd from %s, %ld cores, %d pipeline worker(s), scratch %s, parts %s\n",
           bin_dir, cores, workers, work_dir, parts);

    double t0 = now_s();
    struct amd ocr_amd;
    memset(&ocr_amd, 0, sizeof ocr_amd);
    /* OCR and speech share one amd; it stops before the search part starts its own. */
    if (part_on(parts, "ocr"))
        bench_ocr(ocr_images, ocr_rounds, (int)cores, &ocr_amd);
    if (part_on(parts, "stt")) {
        if (!ocr_amd.pid && !ocr_amd.dir[0] && amd_start(&ocr_amd, "stt", "ocr,stt") != AM_OK)
            printf("through amd: amd did not start\n");
        bench_stt(&ocr_amd, stt_runs);
    }
    amd_stop(&ocr_amd);
    if (ocr_amd.dir[0])
        amd_show_log(&ocr_amd, "ocr, stt");
    if (part_on(parts, "search"))
        bench_search(search_events, queries, queries_1m, big);
    remove_tree(work_dir);
    printf("\nbench_pipeline: %.0f s in all%s\n", now_s() - t0,
           broken ? "; SOMETHING FAILED (see the error lines above)" : "");
    curl_global_cleanup();
    return broken ? 1 : 0;
}
