/* openai.c — the client for OpenAI-compatible model servers: chat answers that follow a
 * JSON schema, image captions, embeddings and transcriptions, over libcurl with retries,
 * backoff with jitter, bounded answers and a per-URL rate limit shared by all threads. */
#include "process_internal.h"

#include <curl/curl.h>
#include <sodium.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_ANSWER_BYTES (64u << 20) /* a model server's answer; embeddings of a batch fit */
#define MAX_ANSWER_DEPTH 64
#define MAX_EXCERPT_BYTES 200 /* of a server's error message, in err */
#define MAX_IMAGE_BYTES (32u << 20)
#define MAX_EMBED_DIM 65536
#define MAX_RETRIES 20 /* a config typo of 1000 must not mean an hour of retrying */
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 10000
#define RETRY_AFTER_MAX_S 60 /* a server asking for an hour is not waited for */
#define DEFAULT_TIMEOUT_MS 120000
#define CONNECT_TIMEOUT_MAX_MS 10000

#define CAPTION_PROMPT                                                                             \
    "Describe this image in one paragraph: what it shows, any readable text, and the people, "     \
    "places and objects in it."

struct am_oai {
    CURL *curl;
    struct am_buf answer; /* the body of the last answer */
    int answer_too_large;
    int answer_oom;
    long retry_after_s; /* from the last answer's Retry-After; -1 when none */
    char curl_err[CURL_ERROR_SIZE];
};

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    am_utf8_clean(err); /* truncation may have cut a character of a server's words */
}

/* ---------------------------------------------------------------- process-wide setup */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

/* curl_global_init is not safe to race with other threads' first use, so it runs once
 * and is never undone: the daemon's workers live as long as the process. */
static void global_init(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (am_crypto_init() != AM_OK) /* the backoff's jitter draws random bytes */
        global_rc = CURLE_FAILED_INIT;
}

am_rc am_oai_new(struct am_oai **out) {
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return AM_EBACKEND;
    struct am_oai *c = am_calloc(1, sizeof *c);
    if (!c)
        return AM_ENOMEM;
    c->curl = curl_easy_init();
    if (!c->curl) {
        am_free(c);
        return AM_ENOMEM;
    }
    am_buf_init(&c->answer, MAX_ANSWER_BYTES);
    *out = c;
    return AM_OK;
}

void am_oai_free(struct am_oai *c) {
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    am_buf_free(&c->answer);
    am_free(c);
}

/* ---------------------------------------------------------------- waiting */

static void sleep_ns(int64_t ns) {
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / AM_NS_PER_S, .tv_nsec = ns % AM_NS_PER_S};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* The rate limiter: one bucket per base URL, shared by every worker thread, because the
 * limit belongs to the server, not to a thread. Each bucket holds the earliest time the
 * next request may start (a token bucket of depth one); a caller reserves its slot under
 * the lock and sleeps outside it. Process-wide by nature, so it lives here rather than
 * in struct am_server. */
#define RATE_BUCKETS 32
#define RATE_URL_MAX 256

struct rate_bucket {
    char url[RATE_URL_MAX]; /* longer URLs share a bucket by their first 255 bytes */
    int64_t next_ns;        /* monotonic */
};

static struct rate_bucket rate_buckets[RATE_BUCKETS];
static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;

static void rate_wait(const char *url, double per_s) {
    if (!(per_s > 0) || !isfinite(per_s))
        return;
    double interval = 1e9 / per_s;
    int64_t interval_ns = interval < 1        ? 1
                          : interval > 3600e9 ? (int64_t)3600e9
                                              : (int64_t)interval;
    pthread_mutex_lock(&rate_lock);
    int64_t now = am_mono_ns();
    struct rate_bucket *b = NULL, *oldest = &rate_buckets[0];
    for (size_t i = 0; i < RATE_BUCKETS && !b; i++) {
        if (!strncmp(rate_buckets[i].url, url, RATE_URL_MAX - 1))
            b = &rate_buckets[i];
        else if (rate_buckets[i].next_ns < oldest->next_ns)
            oldest = &rate_buckets[i];
    }
    if (!b) {
        /* The bucket whose slot lies furthest in the past is idle: reusing it loses
         * nothing (a never-used one has 0). */
        b = oldest;
        snprintf(b->url, sizeof b->url, "%s", url);
        b->next_ns = 0;
    }
    int64_t slot = b->next_ns > now ? b->next_ns : now;
    b->next_ns = slot + interval_ns;
    pthread_mutex_unlock(&rate_lock);
    sleep_ns(slot - now);
}

/* Exponential backoff with "equal jitter": half the step is certain, half random, so
 * workers that failed together do not come back together. */
static int64_t backoff_ns(int retry, long retry_after_s) {
    int64_t ms = BACKOFF_BASE_MS;
    for (int i = 0; i < retry && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    uint32_t r = 0;
    am_random_bytes(&r, sizeof r);
    ms = ms / 2 + (int64_t)(r % (uint32_t)(ms / 2 + 1));
    if (retry_after_s >= 0) {
        long s = retry_after_s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : retry_after_s;
        if ((int64_t)s * 1000 > ms)
            ms = (int64_t)s * 1000;
    }
    return ms * 1000000;
}

/* ---------------------------------------------------------------- one request */

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    struct am_oai *c = arg;
    size_t len = size * n;
    am_rc rc = am_buf_append(&c->answer, data, len);
    if (rc == AM_ELIMIT)
        c->answer_too_large = 1;
    else if (rc)
        c->answer_oom = 1;
    return rc ? 0 : len;
}

/* Retry-After in seconds; the HTTP-date form is left to the backoff. */
static size_t on_header(char *data, size_t size, size_t n, void *arg) {
    struct am_oai *c = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
        c->retry_after_s = -1; /* a new answer (after a 100 Continue) starts afresh */
    } else if (len > sizeof name - 1 && !strncasecmp(data, name, sizeof name - 1)) {
        size_t i = sizeof name - 1;
        while (i < len && (data[i] == ' ' || data[i] == '\t'))
            i++;
        long v = 0;
        size_t digits = 0;
        for (; i < len && data[i] >= '0' && data[i] <= '9'; i++, digits++)
            if (v < 1000000)
                v = v * 10 + (data[i] - '0');
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
            i++;
        if (digits && i == len)
            c->retry_after_s = v;
    }
    return len;
}

/* A bounded, printable excerpt of an error answer: the server's own message when the
 * body is OpenAI's {"error":{"message":...}} (or a near variant), else the raw text. */
static void excerpt(const struct am_oai *c, char *out, size_t out_len) {
    const char *text = c->answer.data ? c->answer.data : "";
    size_t len = c->answer.len;
    json_t *doc = NULL;
    if (len && am_json_parse(text, len, MAX_ANSWER_DEPTH, &doc, NULL, 0) == AM_OK) {
        json_t *e = json_is_object(doc) ? json_object_get(doc, "error") : NULL;
        json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
        if (!json_is_string(m) && json_is_object(doc))
            m = json_object_get(doc, "message");
        if (!json_is_string(m) && json_is_object(doc))
            m = json_object_get(doc, "detail");
        if (json_is_string(m)) {
            text = json_string_value(m);
            len = json_string_length(m);
        }
    }
    if (!len) {
        snprintf(out, out_len, "(no message)");
        json_decref(doc);
        return;
    }
    size_t cut = len < MAX_EXCERPT_BYTES ? len : MAX_EXCERPT_BYTES;
    if (cut > out_len - 4)
        cut = out_len - 4;
    size_t o = 0;
    for (size_t i = 0; i < cut; i++) {
        unsigned char ch = (unsigned char)text[i];
        out[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    if (cut < len)
        for (int k = 0; k < 3; k++)
            out[o++] = '.';
    out[o] = '\0';
    am_utf8_clean(out);
    json_decref(doc);
}

struct request {
    const char *path; /* "/v1/..." */
    const char *json; /* the body, or NULL for a transcription's form */
    size_t json_len;
    const char *file; /* the form's file, sent with model and response_format=verbose_json */
    const char *model;
};

/* The multipart form of a transcription. It is built anew for every attempt: curl
 * 7.88 does not send a reused form a second time after curl_easy_reset. */
static curl_mime *transcription_form(CURL *h, const struct request *req) {
    curl_mime *mime = curl_mime_init(h);
    curl_mimepart *part;
    if (!mime)
        return NULL;
    if (!(part = curl_mime_addpart(mime)) || curl_mime_name(part, "file") ||
        curl_mime_filedata(part, req->file) || !(part = curl_mime_addpart(mime)) ||
        curl_mime_name(part, "model") ||
        curl_mime_data(part, req->model ? req->model : "", CURL_ZERO_TERMINATED) ||
        !(part = curl_mime_addpart(mime)) || curl_mime_name(part, "response_format") ||
        curl_mime_data(part, "verbose_json", CURL_ZERO_TERMINATED)) {
        curl_mime_free(mime);
        return NULL;
    }
    return mime;
}

/* CURLcodes that will come out the same however often they are retried. */
static int transient(CURLcode cc) {
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_READ_ERROR:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_LOGIN_DENIED:
        return 0;
    default:
        return 1;
    }
}

/* One attempt. AM_OK for a 2xx answer (in c->answer); otherwise why says what went wrong
 * and *retry whether another attempt may fare better. */
static am_rc attempt(struct am_oai *c, const struct am_model_cfg *cfg, const char *url,
                     const struct request *req, int *retry, char *why, size_t why_len) {
    CURL *h = c->curl;
    struct curl_slist *headers = NULL;
    curl_mime *mime = NULL;
    struct am_buf auth;
    am_rc rc = AM_ENOMEM;
    am_buf_init(&auth, 8192);
    *retry = 0;

    static const char *const fixed[] = {"Accept: application/json",
                                        "Expect:"}; /* no 1 s wait for 100 Continue */
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        struct curl_slist *l = curl_slist_append(headers, fixed[i]);
        if (!l)
            goto fail;
        headers = l;
    }
    if (req->json) {
        struct curl_slist *l = curl_slist_append(headers, "Content-Type: application/json");
        if (!l)
            goto fail;
        headers = l;
    }
    if (cfg->api_key && cfg->api_key[0]) {
        for (const char *p = cfg->api_key; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) { /* no header injection */
                set_err(why, why_len, "api_key holds a control character");
                rc = AM_EINVAL;
                goto fail;
            }
        }
        if ((rc = am_buf_printf(&auth, "Authorization: Bearer %s", cfg->api_key)) != AM_OK) {
            if (rc == AM_ELIMIT) {
                set_err(why, why_len, "api_key is too long");
                rc = AM_EINVAL;
            }
            goto fail;
        }
        rc = AM_ENOMEM;
        struct curl_slist *l = curl_slist_append(headers, auth.data);
        if (!l)
            goto fail;
        headers = l;
    }

    long timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    curl_easy_reset(h); /* keeps the connection cache: the next request reuses the socket */
    am_buf_reset(&c->answer);
    c->answer_too_large = c->answer_oom = 0;
    c->retry_after_s = -1;
    c->curl_err[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM for DNS */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < CONNECT_TIMEOUT_MAX_MS ? timeout_ms : CONNECT_TIMEOUT_MAX_MS);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "am");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_ANSWER_BYTES);
    if (req->file) {
        if (!(mime = transcription_form(h, req)))
            goto fail;
        curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->json_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->json);
    }

    CURLcode cc = curl_easy_perform(h);
    /* The handle must not keep pointers into this call's memory. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (cc != CURLE_OK) {
        if (c->answer_oom || cc == CURLE_OUT_OF_MEMORY) {
            rc = AM_ENOMEM;
        } else if (c->answer_too_large || cc == CURLE_FILESIZE_EXCEEDED) {
            set_err(why, why_len, "the answer is larger than %u bytes", MAX_ANSWER_BYTES);
            rc = AM_EBACKEND;
        } else {
            set_err(why, why_len, "%s%s%s", curl_easy_strerror(cc), c->curl_err[0] ? ": " : "",
                    c->curl_err);
            *retry = transient(cc);
            rc = AM_EBACKEND;
        }
        goto fail;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        rc = AM_OK;
        goto fail;
    }
    char msg[MAX_EXCERPT_BYTES + 8];
    excerpt(c, msg, sizeof msg);
    set_err(why, why_len, "HTTP %ld: %s", status, msg);
    *retry = status == 408 || status == 429 || status >= 500;
    rc = AM_EBACKEND;
fail:
    if (rc == AM_ENOMEM)
        set_err(why, why_len, "out of memory");
    curl_slist_free_all(headers);
    curl_mime_free(mime); /* unbinds it from the handle too */
    am_buf_free(&auth);
    return rc;
}

/* Turns a 2xx answer (c->answer) into the caller's result. AM_EBACKEND means the answer
 * was unusable (why says how) and another attempt may be made; other codes end the call. */
typedef am_rc (*answer_fn)(struct am_oai *c, void *arg, char *why, size_t why_len);

/* A request with its retries: transport failures, timeouts, 408, 429 and 5xx, and
 * answers the caller could not use, are tried again after a backoff, up to
 * cfg->max_retries times. */
static am_rc call(struct am_oai *c, const struct am_model_cfg *cfg, const struct request *req,
                  answer_fn fn, void *arg, char *err, size_t err_len) {
    if (!cfg || !cfg->url || !cfg->url[0]) {
        set_err(err, err_len, "no model server URL");
        return AM_EINVAL;
    }
    /* "http://host:port/v1" is a common way to write the base URL: /v1 is not doubled. */
    size_t base_len = strlen(cfg->url);
    while (base_len && cfg->url[base_len - 1] == '/')
        base_len--;
    if (base_len >= 3 && !strncmp(cfg->url + base_len - 3, "/v1", 3))
        base_len -= 3;
    char url[2048];
    int n = snprintf(url, sizeof url, "%.*s%s", (int)base_len, cfg->url, req->path);
    if (n < 0 || (size_t)n >= sizeof url) {
        set_err(err, err_len, "model server URL is too long");
        return AM_EINVAL;
    }
    int retries = cfg->max_retries < 0             ? 0
                  : cfg->max_retries > MAX_RETRIES ? MAX_RETRIES
                                                   : cfg->max_retries;
    char why[512] = "";
    am_rc rc = AM_EBACKEND;
    int tries = 0;
    for (int i = 0; i <= retries; i++) {
        if (i > 0)
            sleep_ns(backoff_ns(i - 1, c->retry_after_s));
        rate_wait(cfg->url, cfg->rate_per_s);
        tries++;
        int retry = 0;
        rc = attempt(c, cfg, url, req, &retry, why, sizeof why);
        if (rc == AM_OK) {
            c->retry_after_s = -1;
            rc = fn(c, arg, why, sizeof why);
            if (rc == AM_OK)
                return AM_OK;
            retry = rc == AM_EBACKEND;
        }
        if (!retry)
            break;
    }
    if (rc == AM_ENOMEM)
        set_err(err, err_len, "POST %s: out of memory", req->path);
    else if (rc == AM_EBACKEND)
        set_err(err, err_len, "POST %s: %s (%d attempt%s)", req->path, why, tries,
                tries == 1 ? "" : "s");
    else
        set_err(err, err_len, "POST %s: %s", req->path, why);
    return rc;
}

/* ---------------------------------------------------------------- answers */

/* The answer as a JSON object. */
static am_rc answer_json(struct am_oai *c, json_t **out, char *why, size_t why_len) {
    *out = NULL;
    if (!c->answer.len) {
        set_err(why, why_len, "the answer is empty");
        return AM_EBACKEND;
    }
    char perr[160];
    am_rc rc =
        am_json_parse(c->answer.data, c->answer.len, MAX_ANSWER_DEPTH, out, perr, sizeof perr);
    if (rc == AM_ENOMEM)
        return rc;
    if (rc) {
        set_err(why, why_len, "the answer is not JSON: %s", perr);
        return AM_EBACKEND;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        set_err(why, why_len, "the answer is not a JSON object");
        return AM_EBACKEND;
    }
    return AM_OK;
}

/* choices[0].message.content as text; content given as parts has its text parts joined.
 * Caller frees *text. */
static am_rc chat_content(struct am_oai *c, char **text, char *why, size_t why_len) {
    json_t *doc = NULL;
    struct am_buf b;
    am_buf_init(&b, MAX_ANSWER_BYTES);
    *text = NULL;
    am_rc rc = answer_json(c, &doc, why, why_len);
    if (rc)
        goto fail;
    rc = AM_EBACKEND;
    json_t *choices = json_object_get(doc, "choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        set_err(why, why_len, "the answer has no choices");
        goto fail;
    }
    json_t *msg = json_object_get(json_array_get(choices, 0), "message");
    if (!json_is_object(msg)) {
        set_err(why, why_len, "choices[0] has no message");
        goto fail;
    }
    json_t *content = json_object_get(msg, "content");
    if (json_is_string(content)) {
        if ((rc = am_buf_append(&b, json_string_value(content), json_string_length(content))))
            goto fail;
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t) &&
                (rc = am_buf_append(&b, json_string_value(t), json_string_length(t))))
                goto fail;
        }
    } else {
        json_t *refusal = json_object_get(msg, "refusal");
        if (json_is_string(refusal))
            set_err(why, why_len, "the model refused: %.200s", json_string_value(refusal));
        else
            set_err(why, why_len, "choices[0].message.content is not text");
        goto fail;
    }
    /* jansson allows \u0000 in strings; the text goes on as a C string. */
    if (b.len && memchr(b.data, '\0', b.len)) {
        set_err(why, why_len, "the message content holds a NUL character");
        goto fail;
    }
    *text = am_buf_steal(&b, NULL);
    rc = *text ? AM_OK : AM_ENOMEM;
fail:
    if (rc == AM_ELIMIT) {
        set_err(why, why_len, "the message content is too long");
        rc = AM_EBACKEND;
    }
    am_buf_free(&b);
    json_decref(doc);
    return rc;
}

static int type_is(const json_t *v, const char *type) {
    if (!strcmp(type, "string"))
        return json_is_string(v);
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "integer"))
        return json_is_integer(v) || (json_is_real(v) && isfinite(json_real_value(v)) &&
                                      json_real_value(v) == floor(json_real_value(v)));
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "array"))
        return json_is_array(v);
    if (!strcmp(type, "object"))
        return json_is_object(v);
    if (!strcmp(type, "null"))
        return json_is_null(v);
    return 1; /* a type this check does not know is not held against the answer */
}

/* The cheap part of JSON Schema, on the top level only: required keys and the basic types
 * of the properties present. Strict mode should make both hold; small local models and
 * servers that ignore response_format break them. */
static am_rc check_schema(const json_t *schema, const json_t *obj, char *why, size_t why_len) {
    json_t *required = json_object_get(schema, "required");
    size_t i;
    json_t *key;
    json_array_foreach(required, i, key) {
        if (json_is_string(key) && !json_object_get(obj, json_string_value(key))) {
            set_err(why, why_len, "the model's JSON lacks the required key \"%.64s\"",
                    json_string_value(key));
            return AM_EBACKEND;
        }
    }
    json_t *props = json_object_get(schema, "properties");
    const char *name;
    json_t *prop;
    json_object_foreach(props, name, prop) {
        json_t *v = json_object_get(obj, name);
        json_t *type = json_object_get(prop, "type");
        if (!v || !type)
            continue;
        int ok = 1;
        if (json_is_string(type)) {
            ok = type_is(v, json_string_value(type));
        } else if (json_is_array(type) && json_array_size(type)) {
            size_t j;
            json_t *t;
            ok = 0;
            json_array_foreach(type, j, t) {
                if (!json_is_string(t) || type_is(v, json_string_value(t)))
                    ok = 1;
            }
        }
        if (!ok) {
            set_err(why, why_len, "in the model's JSON, \"%.64s\" has the wrong type", name);
            return AM_EBACKEND;
        }
    }
    return AM_OK;
}

/* The text between a Markdown code fence, which some models put around JSON whatever
 * response_format says. */
static void unfence(const char *s, size_t len, const char **start, size_t *out_len) {
    while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++, len--;
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    if (len >= 6 && !strncmp(s, "```", 3) && !strncmp(s + len - 3, "```", 3)) {
        const char *nl = memchr(s, '\n', len - 3);
        if (nl) {
            len -= (size_t)(nl + 1 - s) + 3;
            s = nl + 1;
        }
    }
    *start = s;
    *out_len = len;
}

struct chat_json_arg {
    const json_t *schema;
    json_t *result;
};

static am_rc on_chat_json(struct am_oai *c, void *arg, char *why, size_t why_len) {
    struct chat_json_arg *a = arg;
    char *content = NULL;
    json_t *obj = NULL;
    am_rc rc = chat_content(c, &content, why, why_len);
    if (rc)
        goto fail;
    const char *s;
    size_t len;
    unfence(content, strlen(content), &s, &len);
    char perr[160];
    rc = len ? am_json_parse(s, len, MAX_ANSWER_DEPTH, &obj, perr, sizeof perr) : AM_EINVAL;
    if (rc == AM_ENOMEM)
        goto fail;
    if (rc || !json_is_object(obj)) {
        set_err(why, why_len, "the model's content is not a JSON object%s%s", rc ? ": " : "",
                rc ? (len ? perr : "empty") : "");
        rc = AM_EBACKEND;
        goto fail;
    }
    if ((rc = check_schema(a->schema, obj, why, why_len)))
        goto fail;
    a->result = obj;
    obj = NULL;
fail:
    json_decref(obj);
    am_free(content);
    return rc;
}

/* The request body in insertion order (am_json_dump sorts keys, and a schema's property
 * order is the order a strict-mode model writes them in). Caller frees. */
static char *dump_json(const json_t *v, size_t *len) {
    long failures = am_alloc_failures();
    char *s = json_dumps(v, JSON_COMPACT);
    if (s && am_alloc_failures() != failures) { /* jansson may go on with damaged text */
        am_free(s);
        s = NULL;
    }
    if (s)
        *len = strlen(s);
    return s;
}

/* A JSON string of s; text that is not valid UTF-8 (jansson refuses it) goes with its
 * bad bytes as '?'. NULL when out of memory. */
static json_t *jstring(const char *s) {
    json_t *v = json_string(s);
    if (v)
        return v;
    char *clean = am_strdup(s);
    if (!clean)
        return NULL;
    am_utf8_clean(clean);
    v = json_string(clean);
    am_free(clean);
    return v;
}

/* obj[key] = value, taking value; -1 (value freed) when out of memory or obj is NULL.
 * Requests are built with this rather than json_pack, which leaks when an allocation
 * fails inside it (jansson 2.14). */
static int put(json_t *obj, const char *key, json_t *value) {
    if (!obj) {
        json_decref(value);
        return -1;
    }
    return json_object_set_new(obj, key, value);
}

/* {"type": type, key: value}; NULL when out of memory. Takes value, also on failure. */
static json_t *typed(const char *type, const char *key, json_t *value) {
    json_t *o = json_object();
    if (put(o, "type", json_string(type))) {
        json_decref(value);
        json_decref(o);
        return NULL;
    }
    if (put(o, key, value)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"role", "content"}; NULL when out of memory. Takes content, also on failure. */
static json_t *message(const char *role, json_t *content) {
    json_t *m = json_object();
    json_t *r = json_string(role);
    if (!m || !r || !content) {
        json_decref(m);
        json_decref(r);
        json_decref(content);
        return NULL;
    }
    if (json_object_set_new(m, "role", r)) { /* r is freed by the failed set */
        json_decref(content);
        json_decref(m);
        return NULL;
    }
    if (json_object_set_new(m, "content", content)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* A chat request body with the given messages; NULL when out of memory. Takes messages,
 * also on failure. */
static json_t *chat_body(const struct am_model_cfg *cfg, json_t *messages) {
    json_t *body = json_object();
    if (!body) {
        json_decref(messages);
        return NULL;
    }
    /* messages first: a failed set frees the value, so nothing is left to free by hand */
    if (json_object_set_new(body, "messages", messages) ||
        (cfg->model && json_object_set_new(body, "model", jstring(cfg->model))) ||
        json_object_set_new(body, "temperature", json_integer(0))) {
        json_decref(body);
        return NULL;
    }
    return body;
}

am_rc am_oai_chat_json(struct am_oai *c, const struct am_model_cfg *cfg, const char *system,
                       const char *user, const json_t *schema, const char *schema_name,
                       json_t **out, char *err, size_t err_len) {
    json_t *body = NULL;
    char *text = NULL;
    struct chat_json_arg arg = {schema, NULL};
    am_rc rc = AM_ENOMEM;
    *out = NULL;
    if (!json_is_object(schema) || !user) {
        set_err(err, err_len, "chat_json needs a user message and a schema object");
        return AM_EINVAL;
    }
    json_t *messages = json_array();
    if (!messages)
        goto fail;
    if (system && json_array_append_new(messages, message("system", jstring(system))))
        goto fail_messages;
    if (json_array_append_new(messages, message("user", jstring(user))))
        goto fail_messages;
    if (!(body = chat_body(cfg, messages)))
        goto fail;
    /* The schema is referenced, not copied: jansson's refcounts are atomic, so workers
     * may share one. */
    json_t *js = json_object();
    if (put(js, "name", jstring(schema_name ? schema_name : "result")) ||
        json_object_set(js, "schema", (json_t *)schema) || put(js, "strict", json_true())) {
        json_decref(js);
        goto fail;
    }
    if (put(body, "response_format", typed("json_schema", "json_schema", js)))
        goto fail;
    size_t len = 0;
    if (!(text = dump_json(body, &len)))
        goto fail;
    struct request req = {"/v1/chat/completions", text, len, NULL, NULL};
    rc = call(c, cfg, &req, on_chat_json, &arg, err, err_len);
    *out = arg.result;
    goto out;
fail_messages:
    json_decref(messages);
fail:
    set_err(err, err_len, "out of memory");
out:
    json_decref(body);
    am_free(text);
    return rc;
}

/* ---------------------------------------------------------------- captions */

static am_rc on_caption(struct am_oai *c, void *arg, char *why, size_t why_len) {
    char **text = arg;
    char *content = NULL;
    am_rc rc = chat_content(c, &content, why, why_len);
    if (rc)
        return rc;
    const char *s;
    size_t len;
    unfence(content, strlen(content), &s, &len);
    if (!len) {
        am_free(content);
        set_err(why, why_len, "the caption is empty");
        return AM_EBACKEND;
    }
    *text = am_strndup(s, len);
    am_free(content);
    return *text ? AM_OK : AM_ENOMEM;
}

/* A MIME type goes into the data: URL as it is only when it looks like one. */
static int mime_ok(const char *mime) {
    size_t n = 0;
    for (const char *p = mime; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '.' || *p == '+' || *p == '-'))
            return 0;
    return n > 0 && n <= 100 && strchr(mime, '/');
}

am_rc am_oai_caption(struct am_oai *c, const struct am_model_cfg *cfg, const uint8_t *img,
                     size_t len, const char *mime, char **text, char *err, size_t err_len) {
    char *url = NULL, *dump = NULL;
    json_t *body = NULL;
    am_rc rc = AM_ENOMEM;
    *text = NULL;
    if (!img || !len || len > MAX_IMAGE_BYTES) {
        set_err(err, err_len, "the image is empty or larger than %u bytes", MAX_IMAGE_BYTES);
        return len > MAX_IMAGE_BYTES ? AM_ELIMIT : AM_EINVAL;
    }
    if (!mime || !mime_ok(mime))
        mime = "application/octet-stream";
    size_t head = strlen("data:;base64,") + strlen(mime);
    size_t b64_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    if (!(url = am_malloc(head + b64_len)))
        goto fail;
    snprintf(url, head + 1, "data:%s;base64,", mime);
    sodium_bin2base64(url + head, b64_len, img, len, sodium_base64_VARIANT_ORIGINAL);
    json_t *image = json_object();
    if (put(image, "url", json_string(url))) {
        json_decref(image);
        image = NULL;
    }
    am_free(url); /* the JSON holds its own copy; a big image need not be held thrice */
    url = NULL;
    json_t *text_part = typed("text", "text", json_string(CAPTION_PROMPT));
    json_t *image_part = typed("image_url", "image_url", image);
    json_t *content = json_array();
    if (!content || !text_part || !image_part) {
        json_decref(text_part);
        json_decref(image_part);
        json_decref(content);
        goto fail;
    }
    if (json_array_append_new(content, text_part)) {
        json_decref(image_part);
        json_decref(content);
        goto fail;
    }
    if (json_array_append_new(content, image_part)) {
        json_decref(content);
        goto fail;
    }
    json_t *msg = message("user", content);
    json_t *messages = json_array();
    if (!messages || json_array_append_new(messages, msg)) {
        if (!messages)
            json_decref(msg);
        json_decref(messages);
        goto fail;
    }
    if (!(body = chat_body(cfg, messages)))
        goto fail;
    size_t dump_len = 0;
    if (!(dump = dump_json(body, &dump_len)))
        goto fail;
    json_decref(body);
    body = NULL;
    struct request req = {"/v1/chat/completions", dump, dump_len, NULL, NULL};
    rc = call(c, cfg, &req, on_caption, text, err, err_len);
    goto out;
fail:
    set_err(err, err_len, "out of memory");
out:
    am_free(url);
    json_decref(body);
    am_free(dump);
    return rc;
}

/* ---------------------------------------------------------------- embeddings */

struct embed_arg {
    size_t n;
    float *vecs;
    int dim;
};

static am_rc on_embed(struct am_oai *c, void *arg, char *why, size_t why_len) {
    struct embed_arg *a = arg;
    json_t *doc = NULL;
    float *vecs = NULL;
    unsigned char *seen = NULL;
    size_t dim = 0;
    am_rc rc = answer_json(c, &doc, why, why_len);
    if (rc)
        goto fail;
    rc = AM_EBACKEND;
    json_t *data = json_object_get(doc, "data");
    if (!json_is_array(data) || json_array_size(data) != a->n) {
        set_err(why, why_len, "the answer holds %zu embeddings, not %zu",
                json_is_array(data) ? json_array_size(data) : 0, a->n);
        goto fail;
    }
    if (!(seen = am_calloc(a->n, 1))) {
        rc = AM_ENOMEM;
        goto fail;
    }
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
        json_t *index = json_object_get(item, "index");
        json_t *emb = json_object_get(item, "embedding");
        json_int_t at =
            index ? (json_is_integer(index) ? json_integer_value(index) : -1) : (json_int_t)i;
        if (at < 0 || (uint64_t)at >= a->n || seen[at]) {
            set_err(why, why_len, "data[%zu] has a missing, repeated or wrong index", i);
            goto fail;
        }
        seen[at] = 1;
        size_t d = json_array_size(emb);
        if (!json_is_array(emb) || d == 0 || d > MAX_EMBED_DIM) {
            set_err(why, why_len, "data[%zu].embedding is not an array of 1 to %d numbers", i,
                    MAX_EMBED_DIM);
            goto fail;
        }
        if (!vecs) {
            dim = d;
            if (!(vecs = am_malloc(a->n * dim * sizeof *vecs))) {
                rc = AM_ENOMEM;
                goto fail;
            }
        } else if (d != dim) {
            set_err(why, why_len, "embeddings differ in dimension (%zu and %zu)", dim, d);
            goto fail;
        }
        for (size_t j = 0; j < d; j++) {
            json_t *x = json_array_get(emb, j);
            double v = json_number_value(x);
            if (!json_is_number(x) || !isfinite(v) || fabs(v) > FLT_MAX) {
                set_err(why, why_len, "data[%zu].embedding[%zu] is not a finite number", i, j);
                goto fail;
            }
            vecs[(size_t)at * dim + j] = (float)v;
        }
    }
    a->vecs = vecs;
    a->dim = (int)dim;
    vecs = NULL;
    rc = AM_OK;
fail:
    am_free(vecs);
    am_free(seen);
    json_decref(doc);
    return rc;
}

am_rc am_oai_embed(struct am_oai *c, const struct am_model_cfg *cfg, const char *const *texts,
                   size_t n, float **out, int *dim, char *err, size_t err_len) {
    json_t *body = NULL;
    char *dump = NULL;
    struct embed_arg arg = {n, NULL, 0};
    am_rc rc = AM_ENOMEM;
    *out = NULL;
    *dim = 0;
    if (n == 0)
        return AM_OK; /* nothing to ask */
    json_t *input = json_array();
    if (!input)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (!texts[i]) {
            json_decref(input);
            set_err(err, err_len, "text %zu is NULL", i);
            return AM_EINVAL;
        }
        if (json_array_append_new(input, jstring(texts[i]))) {
            json_decref(input);
            goto fail;
        }
    }
    if (!(body = json_object()) || json_object_set_new(body, "input", input)) {
        if (!body)
            json_decref(input);
        goto fail;
    }
    if (cfg->model && json_object_set_new(body, "model", jstring(cfg->model)))
        goto fail;
    size_t len = 0;
    if (!(dump = dump_json(body, &len)))
        goto fail;
    struct request req = {"/v1/embeddings", dump, len, NULL, NULL};
    rc = call(c, cfg, &req, on_embed, &arg, err, err_len);
    if (rc == AM_OK) {
        *out = arg.vecs;
        *dim = arg.dim;
    }
    goto out;
fail:
    set_err(err, err_len, "out of memory");
out:
    json_decref(body);
    am_free(dump);
    return rc;
}

/* ---------------------------------------------------------------- transcription */

void am_transcript_free(struct am_transcript_seg *segs, size_t n) {
    if (!segs)
        return;
    for (size_t i = 0; i < n; i++)
        am_free(segs[i].text);
    am_free(segs);
}

struct transcribe_arg {
    char *text;
    struct am_transcript_seg *segs;
    size_t n_segs;
    char *language;
    size_t language_len;
};

/* A copy of a JSON string for C; NUL characters inside would cut it, so they become ' '. */
static char *cstring(const json_t *s) {
    size_t len = json_string_length(s);
    char *p = am_strndup(json_string_value(s), len);
    if (p)
        for (size_t i = 0; i < len; i++)
            if (!p[i])
                p[i] = ' ';
    return p;
}

static am_rc on_transcribe(struct am_oai *c, void *arg, char *why, size_t why_len) {
    struct transcribe_arg *a = arg;
    json_t *doc = NULL;
    char *text = NULL;
    struct am_transcript_seg *segs = NULL;
    size_t n = 0;
    am_rc rc = answer_json(c, &doc, why, why_len);
    if (rc)
        goto fail;
    rc = AM_EBACKEND;
    json_t *t = json_object_get(doc, "text");
    if (!json_is_string(t)) {
        set_err(why, why_len, "the answer has no \"text\"");
        goto fail;
    }
    json_t *list = json_object_get(doc, "segments");
    if (list && !json_is_array(list) && !json_is_null(list)) {
        set_err(why, why_len, "\"segments\" is not an array");
        goto fail;
    }
    if (!(text = cstring(t)))
        goto oom;
    size_t count = json_array_size(list);
    if (count && !(segs = am_calloc(count, sizeof *segs)))
        goto oom;
    for (; n < count; n++) {
        json_t *seg = json_array_get(list, n);
        json_t *start = json_object_get(seg, "start"), *end = json_object_get(seg, "end");
        json_t *st = json_object_get(seg, "text");
        if (!json_is_object(seg) || (start && !json_is_number(start)) ||
            (end && !json_is_number(end)) || (st && !json_is_string(st))) {
            set_err(why, why_len, "segments[%zu] is not {start, end, text}", n);
            goto fail;
        }
        segs[n].start = json_number_value(start);
        segs[n].end = json_number_value(end);
        if (!isfinite(segs[n].start) || !isfinite(segs[n].end)) {
            set_err(why, why_len, "segments[%zu] has a time that is not finite", n);
            goto fail;
        }
        if (!(segs[n].text = st ? cstring(st) : am_strdup("")))
            goto oom;
    }
    if (a->language && a->language_len) {
        json_t *lang = json_object_get(doc, "language");
        a->language[0] = '\0';
        if (json_is_string(lang)) {
            snprintf(a->language, a->language_len, "%s", json_string_value(lang));
            am_utf8_clean(a->language);
        }
    }
    a->text = text;
    a->segs = segs;
    a->n_segs = n;
    json_decref(doc);
    return AM_OK;
oom:
    rc = AM_ENOMEM;
fail:
    am_transcript_free(segs, n);
    am_free(text);
    json_decref(doc);
    return rc;
}

am_rc am_oai_transcribe(struct am_oai *c, const struct am_model_cfg *cfg, const char *path,
                        char **text, struct am_transcript_seg **segs, size_t *n_segs,
                        char *language, size_t language_len, char *err, size_t err_len) {
    struct transcribe_arg arg = {NULL, NULL, 0, language, language_len};
    *text = NULL;
    *segs = NULL;
    *n_segs = 0;
    if (language && language_len)
        language[0] = '\0';
    /* curl reads the file only while sending: a missing one is told apart here, before
     * it could pass for a transport failure worth retrying. */
    struct stat st;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        set_err(err, err_len, "cannot read %s: %s", path ? path : "(null)",
                f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return AM_EIO;
    }
    fclose(f);
    struct request req = {"/v1/audio/transcriptions", NULL, 0, path, cfg->model};
    am_rc rc = call(c, cfg, &req, on_transcribe, &arg, err, err_len);
    if (rc == AM_OK) {
        *text = arg.text;
        *segs = arg.segs;
        *n_segs = arg.n_segs;
    }
    return rc;
}
