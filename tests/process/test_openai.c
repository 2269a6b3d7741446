/* test_openai.c — the OpenAI-compatible client against a real HTTP server
 * (tests/tools/openai_server.py, started here): answers, retries, backoff, Retry-After,
 * timeouts, refused connections, broken answers, rate limits and failed allocations. */
#include "process/process_internal.h"
#include "test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t server_pid;
static char base[128];
static char tmpdir[64] = "/tmp/am-test-openai-XXXXXX";

/* ---------------------------------------------------------------- the server */

static int server_start(void) {
    const char *src = getenv("AM_SOURCE_DIR");
    char script[1024], port_file[128];
    snprintf(script, sizeof script, "%s/tests/tools/openai_server.py", src ? src : ".");
    if (!mkdtemp(tmpdir))
        return 0;
    snprintf(port_file, sizeof port_file, "%s/port", tmpdir);
    server_pid = fork();
    if (server_pid < 0)
        return 0;
    if (server_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan server if this test dies */
        execl("/usr/bin/python3", "python3", script, "--port", "0", "--port-file", port_file,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) { /* 30 s */
        FILE *f = fopen(port_file, "r");
        int port = 0;
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0) {
            snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
            return 1;
        }
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = 0;
            return 0;
        }
        usleep(100000);
    }
    return 0;
}

static void server_stop(void) {
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/port", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/audio.bin", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    return am_buf_append(arg, p, size * n) == AM_OK ? size * n : 0;
}

/* GET (body NULL) or POST of JSON to the server's control API; the answer as JSON. */
static json_t *control_call(const char *path, const char *body) {
    char url[256];
    struct am_buf out;
    json_t *v = NULL;
    am_buf_init(&out, 1 << 20);
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK && out.len)
        am_json_parse(out.data, out.len, 0, &v, NULL, 0);
    curl_easy_cleanup(h);
    am_buf_free(&out);
    return v;
}

static int control(const char *body) {
    json_t *v = control_call("/control", body);
    int ok = json_is_true(json_object_get(v, "ok"));
    json_decref(v);
    return ok;
}

/* Requests the server saw at one endpoint ("chat", "embeddings", ...). */
static long count(const char *kind) {
    json_t *v = control_call("/control/stats", NULL);
    long n = (long)json_integer_value(json_object_get(json_object_get(v, "requests"), kind));
    json_decref(v);
    return n;
}

/* One field of the stats, as a string ("" when absent or not a string). */
static void stat_string(const char *key, char *out, size_t out_len) {
    json_t *v = control_call("/control/stats", NULL);
    json_t *s = json_object_get(v, key);
    snprintf(out, out_len, "%s", json_is_string(s) ? json_string_value(s) : "");
    json_decref(v);
}

static json_t *last_chat(void) {
    json_t *v = control_call("/control/stats", NULL);
    json_t *c = json_incref(json_object_get(v, "last_chat"));
    json_decref(v);
    return c;
}

static void reset(void) {
    CHECK(control("{\"reset\": true}"));
}

static struct am_model_cfg cfg_for(int retries, long timeout_ms) {
    struct am_model_cfg cfg = {base, "test-model", NULL, timeout_ms, retries, 0};
    return cfg;
}

static double seconds_since(int64_t t0) {
    return (double)(am_mono_ns() - t0) / 1e9;
}

/* ---------------------------------------------------------------- chat with a schema */

static json_t *schema;

static am_rc chat(struct am_oai *c, const struct am_model_cfg *cfg, const char *user, json_t **out,
                  char *err, size_t err_len) {
    err[0] = '\0';
    return am_oai_chat_json(c, cfg, "You extract facts as JSON.", user, schema, "analysis", out,
                            err, err_len);
}

static void test_chat_json(struct am_oai *c) {
    char err[1024], auth[128];
    json_t *out = NULL;
    struct am_model_cfg cfg = cfg_for(2, 5000);
    cfg.api_key = "sk-test-key";
    reset();
    CHECK(chat(c, &cfg, "Alice met Bob in Paris about the budget. NOTIFY me", &out, err,
               sizeof err) == AM_OK);
    CHECK(json_is_object(out));
    CHECK(json_is_string(json_object_get(out, "summary")));
    json_t *people = json_object_get(out, "people");
    CHECK(json_is_array(people) && json_array_size(people) == 3);
    CHECK(!strcmp(json_string_value(json_array_get(people, 0)), "Alice"));
    CHECK(json_is_true(json_object_get(out, "notify")));
    CHECK(json_is_number(json_object_get(out, "score")));
    json_decref(out);
    CHECK(count("chat") == 1);
    stat_string("last_authorization", auth, sizeof auth);
    CHECK(!strcmp(auth, "Bearer sk-test-key"));

    /* What went over the wire: system then user, strict json_schema, temperature 0,
     * the schema's properties in their own order. */
    json_t *req = last_chat();
    json_t *msgs = json_object_get(req, "messages");
    CHECK(json_array_size(msgs) == 2);
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system"));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(msgs, 1), "role")), "user"));
    CHECK(!strcmp(json_string_value(json_object_get(req, "model")), "test-model"));
    CHECK(json_number_value(json_object_get(req, "temperature")) == 0);
    json_t *fmt = json_object_get(req, "response_format");
    json_t *js = json_object_get(fmt, "json_schema");
    CHECK(!strcmp(json_string_value(json_object_get(fmt, "type")), "json_schema"));
    CHECK(!strcmp(json_string_value(json_object_get(js, "name")), "analysis"));
    CHECK(json_is_true(json_object_get(js, "strict")));
    CHECK(json_equal(json_object_get(js, "schema"), schema));
    json_decref(req);

    /* No key, no Authorization header; a base URL ending in /v1 is not doubled; no
     * system message. */
    char v1[160];
    snprintf(v1, sizeof v1, "%s/v1/", base);
    cfg.url = v1;
    cfg.api_key = NULL;
    CHECK(am_oai_chat_json(c, &cfg, NULL, "just a user", schema, NULL, &out, err, sizeof err) ==
          AM_OK);
    json_decref(out);
    stat_string("last_authorization", auth, sizeof auth);
    CHECK(!strcmp(auth, ""));
    req = last_chat();
    CHECK(json_array_size(json_object_get(req, "messages")) == 1);
    json_decref(req);

    /* Text that is not UTF-8 is sent with '?' for the bad bytes, not refused. */
    cfg.url = base;
    CHECK(chat(c, &cfg, "caf\xe9 Zurich", &out, err, sizeof err) == AM_OK);
    json_decref(out);
    req = last_chat();
    const char *sent = json_string_value(
        json_object_get(json_array_get(json_object_get(req, "messages"), 1), "content"));
    CHECK(sent && !strcmp(sent, "caf? Zurich"));
    json_decref(req);

    /* A schema that is not an object is the caller's mistake. */
    json_t *not_schema = json_string("x");
    CHECK(am_oai_chat_json(c, &cfg, NULL, "x", not_schema, "x", &out, err, sizeof err) ==
              AM_EINVAL &&
          out == NULL);
    json_decref(not_schema);
}

static void test_chat_retries(struct am_oai *c) {
    char err[1024];
    json_t *out = NULL;
    struct am_model_cfg cfg = cfg_for(3, 5000);

    /* Content that is not JSON, then good content: retried, and fine. */
    reset();
    CHECK(control("{\"invalid_json_next\": 1}"));
    CHECK(chat(c, &cfg, "Carol writes", &out, err, sizeof err) == AM_OK && out);
    json_decref(out);
    CHECK(count("chat") == 2);

    /* Two 500s, then an answer. */
    reset();
    CHECK(control("{\"fail_next\": 2, \"status\": 500}"));
    CHECK(chat(c, &cfg, "Dave writes", &out, err, sizeof err) == AM_OK && out);
    json_decref(out);
    CHECK(count("chat") == 3);

    /* 503 and 502 are retried as well. */
    reset();
    CHECK(control("{\"fail_next\": 1, \"status\": 503}"));
    CHECK(chat(c, &cfg, "Erin writes", &out, err, sizeof err) == AM_OK);
    json_decref(out);
    CHECK(count("chat") == 2);

    /* 500 forever: max_retries + 1 attempts, then AM_EBACKEND naming the status and the
     * server's message. */
    reset();
    CHECK(control("{\"fail_next\": 1000, \"status\": 500, \"message\": \"model crashed\"}"));
    cfg.max_retries = 2;
    CHECK(chat(c, &cfg, "Frank writes", &out, err, sizeof err) == AM_EBACKEND && out == NULL);
    CHECK(strstr(err, "HTTP 500") != NULL);
    CHECK(strstr(err, "model crashed") != NULL);
    CHECK(strstr(err, "3 attempts") != NULL);
    CHECK(count("chat") == 3);

    /* max_retries 0: one attempt. */
    reset();
    CHECK(control("{\"fail_next\": 1000, \"status\": 502}"));
    cfg.max_retries = 0;
    CHECK(chat(c, &cfg, "Gina writes", &out, err, sizeof err) == AM_EBACKEND);
    CHECK(strstr(err, "HTTP 502") != NULL && count("chat") == 1);

    /* A 400 is the request's fault: not retried. */
    reset();
    CHECK(control("{\"fail_next\": 5, \"status\": 400, \"message\": \"model 'x' not found\"}"));
    cfg.max_retries = 3;
    CHECK(chat(c, &cfg, "Hank writes", &out, err, sizeof err) == AM_EBACKEND && out == NULL);
    CHECK(strstr(err, "HTTP 400") != NULL);
    CHECK(strstr(err, "model 'x' not found") != NULL);
    CHECK(count("chat") == 1);

    /* 401 neither; a long message is cut to a bounded excerpt. */
    reset();
    struct am_buf msg;
    am_buf_init(&msg, 1 << 20);
    CHECK(am_buf_appends(&msg, "{\"fail_next\": 5, \"status\": 401, \"message\": \"") == AM_OK);
    for (int i = 0; i < 5000; i++)
        CHECK(am_buf_appends(&msg, "x") == AM_OK);
    CHECK(am_buf_appends(&msg, "\"}") == AM_OK);
    CHECK(control(msg.data));
    am_buf_free(&msg);
    CHECK(chat(c, &cfg, "Ivy writes", &out, err, sizeof err) == AM_EBACKEND);
    CHECK(strstr(err, "HTTP 401") != NULL && strstr(err, "xxx...") != NULL);
    CHECK(strlen(err) < 400);
    CHECK(count("chat") == 1);

    /* 429 with Retry-After: 1 waits at least that second, then succeeds. */
    reset();
    CHECK(control("{\"fail_next\": 1, \"status\": 429, \"retry_after\": 1}"));
    int64_t t0 = am_mono_ns();
    CHECK(chat(c, &cfg, "Jack writes", &out, err, sizeof err) == AM_OK);
    CHECK(seconds_since(t0) >= 0.95);
    json_decref(out);
    CHECK(count("chat") == 2);

    /* An answer slower than the timeout: that attempt is given up, the next one is fine. */
    reset();
    CHECK(control("{\"delay_next\": 1, \"seconds\": 2}"));
    cfg.timeout_ms = 500;
    t0 = am_mono_ns();
    CHECK(chat(c, &cfg, "Kate writes", &out, err, sizeof err) == AM_OK && out);
    CHECK(seconds_since(t0) >= 0.45);
    json_decref(out);
    CHECK(count("chat") == 2);

    /* Slow every time: AM_EBACKEND saying it timed out. */
    reset();
    CHECK(control("{\"delay_next\": 2, \"seconds\": 1}"));
    cfg.timeout_ms = 200;
    cfg.max_retries = 1;
    CHECK(chat(c, &cfg, "Liam writes", &out, err, sizeof err) == AM_EBACKEND);
    CHECK(strstr(err, "imeout") != NULL || strstr(err, "timed out") != NULL);
    CHECK(count("chat") == 2);
    reset();
}

/* Answers that are wrong in every way a server can be wrong: each is retried once, then
 * a clear AM_EBACKEND; nothing crashes. */
static void test_chat_broken_answers(struct am_oai *c) {
    static const char *markers[] = {
        "AM_TEST_NOT_JSON",    "AM_TEST_NOT_OBJECT",         "AM_TEST_MISSING_REQUIRED",
        "AM_TEST_WRONG_TYPE",  "AM_TEST_NO_CHOICES",         "AM_TEST_BAD_ENVELOPE",
        "AM_TEST_NON_UTF8",    "AM_TEST_CONTENT_NOT_STRING", "AM_TEST_NULL_CONTENT",
        "AM_TEST_HUGE_NUMBER", "AM_TEST_TRUNCATED",          "AM_TEST_EMPTY_BODY",
        "AM_TEST_ARRAY_BODY",
    };
    char err[1024], user[128];
    json_t *out = NULL;
    struct am_model_cfg cfg = cfg_for(1, 5000);
    for (size_t i = 0; i < sizeof markers / sizeof *markers; i++) {
        reset();
        snprintf(user, sizeof user, "Mona says %s", markers[i]);
        am_rc rc = chat(c, &cfg, user, &out, err, sizeof err);
        CHECK(rc == AM_EBACKEND && out == NULL);
        CHECK(strstr(err, "2 attempts") != NULL);
        CHECK(count("chat") == 2);
        if (rc != AM_EBACKEND)
            fprintf(stderr, "  marker %s: rc %d\n", markers[i], rc);
    }
    reset();
    CHECK(chat(c, &cfg, "Ned AM_TEST_MISSING_REQUIRED", &out, err, sizeof err) == AM_EBACKEND);
    CHECK(strstr(err, "required key \"summary\"") != NULL);
    CHECK(chat(c, &cfg, "Ned AM_TEST_NULL_CONTENT", &out, err, sizeof err) == AM_EBACKEND);
    CHECK(strstr(err, "refused") != NULL);
    /* A Markdown fence around good JSON is taken. */
    reset();
    CHECK(chat(c, &cfg, "Olga AM_TEST_FENCED", &out, err, sizeof err) == AM_OK && out);
    CHECK(json_is_string(json_object_get(out, "summary")));
    json_decref(out);
    CHECK(count("chat") == 1);
}

/* ---------------------------------------------------------------- captions */

static void test_caption(struct am_oai *c) {
    char err[1024];
    char *text = NULL;
    uint8_t img[100];
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 7);
    struct am_model_cfg cfg = cfg_for(1, 5000);
    reset();
    CHECK(am_oai_caption(c, &cfg, img, sizeof img, "image/png", &text, err, sizeof err) == AM_OK);
    CHECK(text && !strcmp(text, "an image of 100 bytes"));
    am_free(text);
    json_t *req = last_chat();
    json_t *content =
        json_object_get(json_array_get(json_object_get(req, "messages"), 0), "content");
    CHECK(json_array_size(content) == 2);
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(content, 0), "type")), "text"));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(content, 1), "type")),
                  "image_url"));
    json_decref(req);
    /* No MIME type (or a strange one) still makes a data: URL the server decodes. */
    CHECK(am_oai_caption(c, &cfg, img, 1, "x\"y", &text, err, sizeof err) == AM_OK);
    CHECK(text && !strcmp(text, "an image of 1 bytes"));
    am_free(text);
    CHECK(am_oai_caption(c, &cfg, img, 0, NULL, &text, err, sizeof err) == AM_EINVAL && !text);
    CHECK(count("chat") == 2);
}

/* ---------------------------------------------------------------- embeddings */

static double cosine(const float *a, const float *b, int dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa && bb ? ab / sqrt(aa * bb) : 0;
}

static void test_embed(struct am_oai *c) {
    char err[1024];
    float *vecs = NULL, *one = NULL;
    int dim = 0, dim1 = 0;
    struct am_model_cfg cfg = cfg_for(1, 5000);
    const char *texts[] = {
        "the quick brown fox jumps over the lazy dog",
        "stock markets fell sharply on monday morning",
        "the quick brown fox leaps over the lazy cat",
    };
    reset();
    CHECK(am_oai_embed(c, &cfg, texts, 3, &vecs, &dim, err, sizeof err) == AM_OK);
    CHECK(vecs && dim == 64);
    CHECK(count("embeddings") == 1);
    if (vecs && dim == 64) {
        /* In input order although the server lists them in reverse: each equals the
         * vector of its text alone. */
        for (int i = 0; i < 3; i++) {
            CHECK(am_oai_embed(c, &cfg, &texts[i], 1, &one, &dim1, err, sizeof err) == AM_OK);
            CHECK(dim1 == dim && one && !memcmp(one, vecs + i * dim, sizeof(float) * dim));
            am_free(one);
            one = NULL;
        }
        double near = cosine(vecs, vecs + 2 * dim, dim);
        double far = cosine(vecs, vecs + dim, dim);
        CHECK(near > far);
        CHECK(fabs(cosine(vecs, vecs, dim) - 1) < 1e-5);
    }
    am_free(vecs);
    vecs = NULL;

    /* No texts: no request, no vectors. */
    CHECK(am_oai_embed(c, &cfg, texts, 0, &vecs, &dim, err, sizeof err) == AM_OK && !vecs &&
          dim == 0);

    /* Broken answers: AM_EBACKEND, nothing handed out. */
    static const char *bad[] = {"AM_TEST_EMBED_BAD_DIM", "AM_TEST_EMBED_BAD_VALUE",
                                "AM_TEST_EMBED_BAD_INDEX", "AM_TEST_EMBED_MISSING"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *two[] = {"fine text", bad[i]};
        reset();
        CHECK(am_oai_embed(c, &cfg, two, 2, &vecs, &dim, err, sizeof err) == AM_EBACKEND);
        CHECK(vecs == NULL && dim == 0 && err[0]);
        CHECK(count("embeddings") == 2);
    }
    /* A 500 then the answer. */
    reset();
    CHECK(control("{\"fail_next\": 1, \"status\": 500}"));
    CHECK(am_oai_embed(c, &cfg, texts, 3, &vecs, &dim, err, sizeof err) == AM_OK && vecs);
    am_free(vecs);
    CHECK(count("embeddings") == 2);
}

/* ---------------------------------------------------------------- transcription */

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static void test_transcribe(struct am_oai *c) {
    char err[1024], language[32], path[128], model[64];
    char *text = NULL;
    struct am_transcript_seg *segs = NULL;
    size_t n = 0;
    struct am_model_cfg cfg = cfg_for(1, 5000);
    cfg.model = "whisper-1";
    snprintf(path, sizeof path, "%s/audio.bin", tmpdir);
    uint8_t audio[1000];
    for (size_t i = 0; i < sizeof audio; i++)
        audio[i] = (uint8_t)(i * 13 + 1);
    CHECK(write_file(path, audio, sizeof audio));
    reset();
    CHECK(am_oai_transcribe(c, &cfg, path, &text, &segs, &n, language, sizeof language, err,
                            sizeof err) == AM_OK);
    CHECK(text && !strcmp(text, "hello from the test server (1000 bytes)"));
    CHECK(!strcmp(language, "english"));
    CHECK(n == 1 && segs && segs[0].start == 0 && segs[0].end == 1.0 &&
          !strcmp(segs[0].text, "hello from the test server"));
    am_free(text);
    am_transcript_free(segs, n);
    stat_string("last_model", model, sizeof model);
    CHECK(!strcmp(model, "whisper-1"));

    /* Retried after a 500: the file is sent again whole. */
    reset();
    CHECK(control("{\"fail_next\": 1, \"status\": 500}"));
    CHECK(am_oai_transcribe(c, &cfg, path, &text, &segs, &n, NULL, 0, err, sizeof err) == AM_OK);
    CHECK(text && strstr(text, "(1000 bytes)") != NULL && n == 1);
    am_free(text);
    am_transcript_free(segs, n);
    CHECK(count("transcriptions") == 2);

    /* A plain {"text"} answer: no segments, no language. */
    CHECK(write_file(path, "AM_TEST_PLAIN and more", 22));
    CHECK(am_oai_transcribe(c, &cfg, path, &text, &segs, &n, language, sizeof language, err,
                            sizeof err) == AM_OK);
    CHECK(text && !strcmp(text, "hello from the test server (22 bytes)"));
    CHECK(n == 0 && segs == NULL && !strcmp(language, ""));
    am_free(text);

    static const char *bad[] = {"AM_TEST_BAD_SEGMENTS", "AM_TEST_NO_TEXT"};
    for (size_t i = 0; i < 2; i++) {
        CHECK(write_file(path, bad[i], strlen(bad[i])));
        CHECK(am_oai_transcribe(c, &cfg, path, &text, &segs, &n, language, sizeof language, err,
                                sizeof err) == AM_EBACKEND);
        CHECK(!text && !segs && n == 0 && err[0]);
    }

    /* A missing file is told at once, without a request. */
    reset();
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no-such-file", tmpdir);
    CHECK(am_oai_transcribe(c, &cfg, missing, &text, &segs, &n, NULL, 0, err, sizeof err) ==
          AM_EIO);
    CHECK(strstr(err, "no-such-file") != NULL && count("transcriptions") == 0);
}

/* ---------------------------------------------------------------- transport */

/* A port nobody listens on: bound, looked at, closed. */
static int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void test_refused(struct am_oai *c) {
    char err[1024], url[64];
    json_t *out = NULL;
    float *vecs = NULL;
    int dim = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", dead_port());
    struct am_model_cfg cfg = {url, "m", NULL, 2000, 1, 0};
    int64_t t0 = am_mono_ns();
    CHECK(chat(c, &cfg, "anyone there?", &out, err, sizeof err) == AM_EBACKEND && !out);
    CHECK(strstr(err, "onnect") != NULL && strstr(err, "2 attempts") != NULL);
    const char *t = "x";
    CHECK(am_oai_embed(c, &cfg, &t, 1, &vecs, &dim, err, sizeof err) == AM_EBACKEND && !vecs);
    CHECK(seconds_since(t0) < 10); /* refused is not a timeout */
    /* Not http(s): refused without retrying. */
    cfg.url = "file:///etc";
    CHECK(chat(c, &cfg, "x", &out, err, sizeof err) == AM_EBACKEND);
    CHECK(strstr(err, "1 attempt") != NULL);
    cfg.url = "";
    CHECK(chat(c, &cfg, "x", &out, err, sizeof err) == AM_EINVAL);
}

/* ---------------------------------------------------------------- rate limit */

struct rate_arg {
    const struct am_model_cfg *cfg;
    int ok;
};

static void *rate_worker(void *p) {
    struct rate_arg *a = p;
    struct am_oai *c = NULL;
    char err[256];
    if (am_oai_new(&c) != AM_OK)
        return NULL;
    for (int i = 0; i < 3; i++) {
        const char *t = "rate";
        float *v = NULL;
        int dim = 0;
        a->ok += am_oai_embed(c, a->cfg, &t, 1, &v, &dim, err, sizeof err) == AM_OK;
        am_free(v);
    }
    am_oai_free(c);
    return NULL;
}

/* Two threads, three requests each, at 10 per second to one URL: the six requests are
 * spaced by the shared limiter, so the whole takes at least five intervals. */
static void test_rate_limit(void) {
    char url[160];
    snprintf(url, sizeof url, "%s/", base); /* a URL of its own: a fresh bucket */
    struct am_model_cfg cfg = {url, "m", NULL, 5000, 0, 10.0};
    struct rate_arg a[2] = {{&cfg, 0}, {&cfg, 0}};
    pthread_t th[2];
    reset();
    int64_t t0 = am_mono_ns();
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, rate_worker, &a[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(a[0].ok == 3 && a[1].ok == 3);
    CHECK(seconds_since(t0) >= 0.45);
    CHECK(count("embeddings") == 6);
}

/* ---------------------------------------------------------------- failed allocations */

/* Every allocation of a call fails in turn (and, when sticky, all after it): the call
 * gives AM_ENOMEM (or gets by), hands out nothing on failure, and leaks nothing (ASan's
 * leak check runs at exit). Lone failures skip the chat: jansson 2.14 asserts when one
 * hits while it parses a string with escapes (lex_scan_string), and the chat's content
 * is JSON in a JSON string. */
static void test_alloc_failures(struct am_oai *c, int sticky) {
    char err[1024], path[128];
    struct am_model_cfg cfg = cfg_for(0, 5000);
    snprintf(path, sizeof path, "%s/audio.bin", tmpdir);
    CHECK(write_file(path, "some audio bytes", 16));
    reset();
    for (int which = sticky ? 0 : 1; which < 4; which++) {
        int bad = 0, failed = 0;
        for (long nth = 1; nth < 2000; nth++) {
            json_t *out = NULL;
            char *text = NULL;
            float *vecs = NULL;
            struct am_transcript_seg *segs = NULL;
            size_t n = 0;
            int dim = 0;
            const char *texts[] = {"one", "two"};
            uint8_t img[16] = {1, 2, 3};
            long before = am_alloc_count();
            am_alloc_fail_at(nth, sticky);
            am_rc rc = AM_OK;
            switch (which) {
            case 0:
                rc = chat(c, &cfg, "Alice and Bob", &out, err, sizeof err);
                break;
            case 1:
                rc = am_oai_embed(c, &cfg, texts, 2, &vecs, &dim, err, sizeof err);
                break;
            case 2:
                rc = am_oai_caption(c, &cfg, img, sizeof img, "image/png", &text, err, sizeof err);
                break;
            case 3:
                rc = am_oai_transcribe(c, &cfg, path, &text, &segs, &n, NULL, 0, err, sizeof err);
                break;
            }
            long used = am_alloc_count() - before;
            am_alloc_fail_at(0, 0);
            if (rc != AM_OK && rc != AM_ENOMEM)
                bad++;
            if (rc != AM_OK && (out || text || vecs || segs))
                bad++;
            failed += rc == AM_ENOMEM;
            json_decref(out);
            am_free(text);
            am_free(vecs);
            am_transcript_free(segs, n);
            if (used < nth) /* the call finished before the failure point */
                break;
        }
        CHECK(bad == 0);
        CHECK(failed > 5);
    }
}

int main(void) {
    am_alloc_init();
    CHECK(am_crypto_init() == AM_OK);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    if (!server_start()) {
        fprintf(stderr, "cannot start tests/tools/openai_server.py\n");
        server_stop();
        return 1;
    }
    json_error_t je;
    schema = json_loads("{\"type\": \"object\", \"properties\": {"
                        "\"summary\": {\"type\": \"string\"},"
                        "\"people\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"
                        "\"notify\": {\"type\": \"boolean\"},"
                        "\"score\": {\"type\": \"number\"}},"
                        "\"required\": [\"summary\", \"people\", \"notify\", \"score\"],"
                        "\"additionalProperties\": false}",
                        0, &je);
    CHECK(schema != NULL);
    struct am_oai *c = NULL;
    CHECK(am_oai_new(&c) == AM_OK && c);
    if (c && schema) {
        test_chat_json(c);
        test_chat_retries(c);
        test_chat_broken_answers(c);
        test_caption(c);
        test_embed(c);
        test_transcribe(c);
        test_refused(c);
        test_rate_limit();
        test_alloc_failures(c, 1);
        test_alloc_failures(c, 0);
    }
    am_oai_free(c);
    am_oai_free(NULL);
    json_decref(schema);
    server_stop();
    curl_global_cleanup();
    return TEST_END();
}
