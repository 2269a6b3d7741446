/* am.c — the command line. User and token commands open the data directory's store
 * directly (they work while amd runs); the rest talk to amd's HTTP API. */
#include "ingest/ingest.h"
#include "agent/agent.h"
#include "import/import.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct opts {
    const char *data_dir;
    const char *url;
    const char *token;
    int json;
    const char *user, *scope, *label;
    const char *stream, *source, *from, *to, *limit, *order;
    const char *streams, *mode, *kind, *days, *seed;
    int all, dead;
    const char *args[4];
    int n_args;
};

static void usage(void) {
    fprintf(stderr,
            "usage: am [--data-dir DIR] [--url URL] [--token TOKEN] [--json] COMMAND\n"
            "  user add NAME\n"
            "  token create --user NAME --scope ingest,read[,admin] [--label TEXT]\n"
            "  token revoke TOKEN       (refused from the next request on)\n"
            "  ingest FILE|-            (JSON array, one object, or NDJSON)\n"
            "  events [--stream S] [--source S] [--from T] [--to T] [--limit N] [--order asc|desc] "
            "[--all]\n"
            "  timeline [--from T] [--to T] [--limit N] [--all]\n"
            "  streams\n"
            "  search TEXT [--streams S,S] [--source S] [--from T] [--to T] [--limit N]\n"
            "         [--mode hybrid|text|vector]\n"
            "  jobs status              (pipeline queues, dead letters)\n"
            "  jobs retry --dead [--kind ocr|stt|frames|caption|analyze|embed]\n"
            "  simulate --days N [--seed S] [--from T]   (a synthetic life, through the API)\n"
            "  context [--at T]         (place, app, calendar, sleep, heart rate ... now)\n"
            "  memories [--status S] | memories confirm|reject ID | memories edit ID TEXT\n"
            "  import KIND FILE --user NAME [--from T --to T]   (into DIR's store, in-process;\n"
            "         KIND: gpx, takeout, apple-health, ics; ics expands recurrences over\n"
            "         --from..--to, by default a year back to a year ahead)\n"
            "The URL comes from --url, AM_URL or DIR/amd.url; the token from --token or AM_TOKEN.\n");
}

static int open_store(const struct opts *o, struct am_store *s) {
    if (!o->data_dir) {
        fprintf(stderr, "am: --data-dir is required for this command\n");
        return 0;
    }
    mkdir(o->data_dir, 0700); /* a first user may come before amd's first start */
    struct am_store_config sc = {.data_dir = o->data_dir, .group_commit_max_events = 1000,
                                 .read_connections = 1};
    am_rc rc = am_store_open(s, "sqlite", &sc);
    if (rc) {
        fprintf(stderr, "am: cannot open the store in %s: %s\n", o->data_dir, am_strerror(rc));
        return 0;
    }
    return 1;
}

static int cmd_user_add(const struct opts *o) {
    struct am_store s;
    int64_t id = 0;
    if (o->n_args < 3) {
        usage();
        return 2;
    }
    const char *name = o->args[2];
    size_t len = strlen(name);
    if (len == 0 || len > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                             "0123456789_.-@") != len) {
        fprintf(stderr, "am: a user name is 1..63 letters, digits, '_', '.', '-' or '@'\n");
        return 2;
    }
    if (!open_store(o, &s))
        return 1;
    am_rc rc = s.ops->user_add(s.impl, name, &id);
    am_store_close(&s);
    if (rc == AM_ECONFLICT) {
        fprintf(stderr, "am: user '%s' already exists\n", name);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "am: adding user '%s': %s\n", name, am_strerror(rc));
        return 1;
    }
    printf("user %s created (id %lld)\n", name, (long long)id);
    return 0;
}

static int cmd_token_create(const struct opts *o) {
    struct am_store s;
    int64_t uid;
    if (!o->user || !o->scope) {
        fprintf(stderr, "am: token create needs --user NAME and --scope LIST\n");
        return 2;
    }
    unsigned scopes = am_scopes_parse(o->scope);
    if (!scopes) {
        fprintf(stderr, "am: --scope is a comma list of ingest, read, admin\n");
        return 2;
    }
    if (!open_store(o, &s))
        return 1;
    am_rc rc = s.ops->user_find(s.impl, o->user, &uid);
    if (rc) {
        am_store_close(&s);
        fprintf(stderr, "am: no user '%s' (am user add %s)\n", o->user, o->user);
        return 1;
    }
    char token[64];
    uint8_t hash[32];
    am_token_generate(token);
    am_token_hash(token, strlen(token), hash);
    rc = s.ops->token_add(s.impl, uid, hash, scopes, o->label ? o->label : "");
    am_store_close(&s);
    if (rc) {
        fprintf(stderr, "am: creating the token: %s\n", am_strerror(rc));
        return 1;
    }
    char sc[64];
    am_scopes_format(scopes, sc, sizeof sc);
    printf("token for %s with scopes %s (shown once; only its hash is kept):\n%s\n", o->user, sc,
           token);
    return 0;
}

static int cmd_token_revoke(const struct opts *o) {
    struct am_store s;
    if (o->n_args < 3) {
        usage();
        return 2;
    }
    const char *token = o->args[2];
    uint8_t hash[32];
    am_token_hash(token, strlen(token), hash);
    if (!open_store(o, &s))
        return 1;
    am_rc rc = s.ops->token_revoke(s.impl, hash);
    am_store_close(&s);
    if (rc == AM_ENOTFOUND) {
        fprintf(stderr, "am: no live token matches\n");
        return 1;
    }
    if (rc) {
        fprintf(stderr, "am: revoking the token: %s\n", am_strerror(rc));
        return 1;
    }
    printf("token revoked\n");
    return 0;
}

/* ---------------------------------------------------------------- HTTP commands */

struct http {
    CURL *curl;
    char base[512];
    char auth[400];
};

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    struct am_buf *b = arg;
    return am_buf_append(b, p, size * n) == AM_OK ? size * n : 0;
}

static int http_init(const struct opts *o, struct http *h) {
    const char *url = o->url ? o->url : getenv("AM_URL");
    char file_url[512] = "";
    if (!url && o->data_dir) {
        char path[600];
        snprintf(path, sizeof path, "%s/amd.url", o->data_dir);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(file_url, sizeof file_url, f))
                file_url[strcspn(file_url, "\r\n")] = '\0';
            fclose(f);
            if (file_url[0])
                url = file_url;
        }
    }
    if (!url)
        url = "http://127.0.0.1:8686";
    const char *token = o->token ? o->token : getenv("AM_TOKEN");
    if (!token) {
        fprintf(stderr, "am: no token: pass --token or set AM_TOKEN\n");
        return 0;
    }
    snprintf(h->base, sizeof h->base, "%s", url);
    size_t n = strlen(h->base);
    while (n && h->base[n - 1] == '/')
        h->base[--n] = '\0';
    snprintf(h->auth, sizeof h->auth, "Authorization: Bearer %s", token);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h->curl = curl_easy_init();
    return h->curl != NULL;
}

static void http_done(struct http *h) {
    curl_easy_cleanup(h->curl);
    curl_global_cleanup();
}

/* One request; the answer in out. Returns the HTTP status, or 0 when none came. */
static long http_do(struct http *h, const char *method, const char *path, const char *ctype,
                    const char *body, size_t body_len, struct am_buf *out) {
    char url[4096];
    snprintf(url, sizeof url, "%s%s", h->base, path);
    struct curl_slist *hdrs = curl_slist_append(NULL, h->auth);
    char ct[128];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, ct);
    }
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    long status = 0;
    CURLcode cr = curl_easy_perform(c);
    if (cr == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "am: %s: %s\n", url, curl_easy_strerror(cr));
    curl_slist_free_all(hdrs);
    return status;
}

static void print_problem(const struct am_buf *b, long status) {
    json_error_t je;
    json_t *p = json_loadb(b->data ? b->data : "", b->len, 0, &je);
    const char *detail = json_string_value(json_object_get(p, "detail"));
    fprintf(stderr, "am: HTTP %ld: %s\n", status, detail ? detail : (b->data ? b->data : ""));
    json_decref(p);
}

/* Sends one chunk of NDJSON; adds the outcome to the totals. */
static int send_chunk(struct http *h, const struct opts *o, const char *body, size_t len,
                      long long totals[3]) {
    struct am_buf out;
    am_buf_init(&out, 1 << 28);
    long st = http_do(h, "POST", "/v1/events", "application/x-ndjson", body, len, &out);
    int ok = st == 200 || st == 207 || st == 422;
    if (!ok) {
        print_problem(&out, st);
        am_buf_free(&out);
        return 0;
    }
    json_error_t je;
    json_t *r = json_loadb(out.data, out.len, 0, &je);
    if (o->json)
        printf("%s\n", out.data);
    totals[0] += json_integer_value(json_object_get(r, "stored"));
    totals[1] += json_integer_value(json_object_get(r, "duplicate"));
    totals[2] += json_integer_value(json_object_get(r, "rejected"));
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(r, "results"), i, it) {
        const char *reason = json_string_value(json_object_get(it, "reason"));
        if (reason && !o->json)
            fprintf(stderr, "rejected: %s\n", reason);
    }
    json_decref(r);
    am_buf_free(&out);
    return 1;
}

/* Reads the file, turns a JSON array or object into NDJSON lines, and sends it in
 * chunks of 5000 events so a large file never hits the server's batch limit. */
static int cmd_ingest(const struct opts *o) {
    if (o->n_args < 2) {
        usage();
        return 2;
    }
    const char *path = o->args[1];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "am: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct am_buf in;
    am_buf_init(&in, (size_t)1 << 34);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (am_buf_append(&in, chunk, n) != AM_OK)
            break;
    if (f != stdin)
        fclose(f);
    struct am_buf lines;
    am_buf_init(&lines, (size_t)1 << 34);
    json_error_t je;
    json_t *whole = json_loadb(in.data ? in.data : "", in.len, 0, &je);
    if (whole) {
        size_t i;
        json_t *it;
        if (json_is_object(whole)) {
            json_t *arr = json_array();
            json_array_append(arr, whole);
            json_decref(whole);
            whole = arr;
        }
        json_array_foreach(whole, i, it) {
            char *s = json_dumps(it, JSON_COMPACT);
            if (s) {
                am_buf_appends(&lines, s);
                am_buf_appends(&lines, "\n");
                am_free(s);
            }
        }
        json_decref(whole);
    } else {
        lines = in;
        am_buf_init(&in, 0);
    }
    struct http h;
    int rc = 1;
    if (!http_init(o, &h))
        goto out;
    long long totals[3] = {0, 0, 0};
    size_t start = 0, count = 0, pos = 0;
    rc = 0;
    while (pos < lines.len) {
        char *nl = memchr(lines.data + pos, '\n', lines.len - pos);
        pos = nl ? (size_t)(nl - lines.data) + 1 : lines.len;
        if (++count == 5000 || pos == lines.len) {
            if (!send_chunk(&h, o, lines.data + start, pos - start, totals)) {
                rc = 1;
                break;
            }
            start = pos;
            count = 0;
        }
    }
    if (!o->json)
        printf("stored %lld, duplicate %lld, rejected %lld\n", totals[0], totals[1], totals[2]);
    if (totals[2])
        rc = 1;
    http_done(&h);
out:
    am_buf_free(&in);
    am_buf_free(&lines);
    return rc;
}

static void add_param(char *q, size_t len, CURL *c, const char *name, const char *value) {
    if (!value)
        return;
    char *esc = curl_easy_escape(c, value, 0);
    size_t used = strlen(q);
    snprintf(q + used, len - used, "%s%s=%s", strchr(q, '?') ? "&" : "?", name, esc ? esc : "");
    curl_free(esc);
}

static int cmd_list(const struct opts *o, const char *route) {
    struct http h;
    if (!http_init(o, &h))
        return 1;
    char cursor[256] = "";
    int rc = 0;
    json_t *all = json_array();
    do {
        char path[2048];
        snprintf(path, sizeof path, "%s", route);
        if (strcmp(route, "/v1/events") == 0) {
            add_param(path, sizeof path, h.curl, "stream", o->stream);
            add_param(path, sizeof path, h.curl, "source", o->source);
        }
        add_param(path, sizeof path, h.curl, "from", o->from);
        add_param(path, sizeof path, h.curl, "to", o->to);
        add_param(path, sizeof path, h.curl, "limit", o->limit);
        add_param(path, sizeof path, h.curl, "order", o->order);
        if (cursor[0])
            add_param(path, sizeof path, h.curl, "cursor", cursor);
        struct am_buf out;
        am_buf_init(&out, 1 << 30);
        long st = http_do(&h, "GET", path, NULL, NULL, 0, &out);
        if (st != 200) {
            print_problem(&out, st);
            am_buf_free(&out);
            rc = 1;
            break;
        }
        json_error_t je;
        json_t *r = json_loadb(out.data, out.len, 0, &je);
        am_buf_free(&out);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(r, "events"), i, e) {
            if (o->json) {
                json_array_append(all, e);
                continue;
            }
            char *p = json_dumps(json_object_get(e, "payload"), JSON_COMPACT);
            printf("%s  %-20s %-12s %s\n", json_string_value(json_object_get(e, "ts")),
                   json_string_value(json_object_get(e, "stream")),
                   json_string_value(json_object_get(e, "source")), p ? p : "");
            am_free(p);
        }
        const char *next = json_string_value(json_object_get(r, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next && o->all ? next : "");
        if (next && !o->all && !o->json)
            fprintf(stderr, "(more: --all)\n");
        json_decref(r);
    } while (cursor[0]);
    if (o->json && rc == 0) {
        json_t *wrap = json_pack("{s:O}", "events", all);
        char *s = json_dumps(wrap, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        am_free(s);
        json_decref(wrap);
    }
    json_decref(all);
    http_done(&h);
    return rc;
}

static int cmd_streams(const struct opts *o) {
    struct http h;
    if (!http_init(o, &h))
        return 1;
    struct am_buf out;
    am_buf_init(&out, 1 << 28);
    long st = http_do(&h, "GET", "/v1/streams", NULL, NULL, 0, &out);
    int rc = 0;
    if (st != 200) {
        print_problem(&out, st);
        rc = 1;
    } else if (o->json) {
        printf("%s\n", out.data);
    } else {
        json_error_t je;
        json_t *r = json_loadb(out.data, out.len, 0, &je);
        size_t i;
        json_t *s;
        printf("%-24s %10s  %-32s %s\n", "STREAM", "COUNT", "LAST", "PER HOUR");
        json_array_foreach(json_object_get(r, "streams"), i, s) {
            json_int_t count = json_integer_value(json_object_get(s, "count"));
            if (count == 0)
                continue;
            const char *last = json_string_value(json_object_get(s, "last"));
            printf("%-24s %10lld  %-32s %lld\n", json_string_value(json_object_get(s, "name")),
                   (long long)count, last ? last : "-",
                   (long long)json_integer_value(json_object_get(s, "rate_per_hour")));
        }
        json_decref(r);
    }
    am_buf_free(&out);
    http_done(&h);
    return rc;
}

/* Sends a request (body: JSON text or NULL) and hands back the parsed answer; prints
 * the problem itself. */
static json_t *api_call_body(const struct opts *o, const char *method, const char *path,
                             const char *body) {
    struct http h;
    if (!http_init(o, &h))
        return NULL;
    struct am_buf out;
    am_buf_init(&out, 1 << 28);
    if (!body && strcmp(method, "GET") != 0)
        body = "";
    long st = http_do(&h, method, path, body && *body ? "application/json" : NULL, body,
                      body ? strlen(body) : 0, &out);
    json_t *r = NULL;
    if (st != 200) {
        print_problem(&out, st);
    } else {
        json_error_t je;
        r = json_loadb(out.data, out.len, 0, &je);
        if (!r)
            fprintf(stderr, "am: the answer is not JSON: %s\n", je.text);
    }
    am_buf_free(&out);
    http_done(&h);
    return r;
}

static json_t *api_call(const struct opts *o, const char *method, const char *path) {
    return api_call_body(o, method, path, NULL);
}

static void print_json(json_t *r) {
    char *s = json_dumps(r, JSON_INDENT(2));
    printf("%s\n", s ? s : "{}");
    am_free(s);
}

static int cmd_search(const struct opts *o) {
    if (o->n_args < 2) {
        fprintf(stderr, "am: search needs the words to find\n");
        return 2;
    }
    char path[4096] = "/v1/search";
    CURL *c = curl_easy_init();
    if (!c)
        return 1;
    add_param(path, sizeof path, c, "q", o->args[1]);
    add_param(path, sizeof path, c, "streams", o->streams);
    add_param(path, sizeof path, c, "source", o->source);
    add_param(path, sizeof path, c, "from", o->from);
    add_param(path, sizeof path, c, "to", o->to);
    add_param(path, sizeof path, c, "limit", o->limit);
    add_param(path, sizeof path, c, "mode", o->mode);
    curl_easy_cleanup(c);
    json_t *r = api_call(o, "GET", path);
    if (!r)
        return 1;
    if (o->json) {
        print_json(r);
    } else {
        size_t i;
        json_t *hit;
        json_array_foreach(json_object_get(r, "hits"), i, hit) {
            /* The snippet's <mark> tags become terminal emphasis; entities are undone. */
            const char *sn = json_string_value(json_object_get(hit, "snippet"));
            struct am_buf b;
            am_buf_init(&b, 1 << 20);
            for (const char *p = sn ? sn : ""; *p; p++) {
                static const struct { const char *from, *to; } tr[] = {
                    {"<mark>", "\033[1m"}, {"</mark>", "\033[0m"}, {"&lt;", "<"},
                    {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
                size_t k = 0;
                for (; k < sizeof tr / sizeof tr[0]; k++)
                    if (!strncmp(p, tr[k].from, strlen(tr[k].from)))
                        break;
                if (k < sizeof tr / sizeof tr[0]) {
                    am_buf_appends(&b, isatty(1) || tr[k].from[1] != 'm' ? tr[k].to : "");
                    p += strlen(tr[k].from) - 1;
                } else {
                    am_buf_append(&b, p, 1);
                }
            }
            printf("%s  %-18s #%-8lld %s\n", json_string_value(json_object_get(hit, "ts")),
                   json_string_value(json_object_get(hit, "stream")),
                   (long long)json_integer_value(json_object_get(hit, "id")), b.data ? b.data : "");
            am_buf_free(&b);
        }
        if (i == 0)
            fprintf(stderr, "(no hits)\n");
    }
    json_decref(r);
    return 0;
}

static int cmd_jobs(const struct opts *o, const char *sub) {
    if (!strcmp(sub, "retry")) {
        if (!o->dead) {
            fprintf(stderr, "am: jobs retry takes --dead (only dead jobs are retried)\n");
            return 2;
        }
        char path[256] = "/v1/jobs/retry?state=dead";
        if (o->kind)
            snprintf(path + strlen(path), sizeof path - strlen(path), "&kind=%s", o->kind);
        json_t *r = api_call(o, "POST", path);
        if (!r)
            return 1;
        printf("%lld dead job(s) queued again\n",
               (long long)json_integer_value(json_object_get(r, "retried")));
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "status") != 0 && sub[0]) {
        fprintf(stderr, "am: jobs status | jobs retry --dead\n");
        return 2;
    }
    json_t *r = api_call(o, "GET", "/v1/jobs");
    if (!r)
        return 1;
    if (o->json) {
        print_json(r);
        json_decref(r);
        return 0;
    }
    printf("%-8s %9s %8s %9s %6s %12s\n", "KIND", "PENDING", "RUNNING", "DONE", "DEAD",
           "OLDEST (s)");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(r, "kinds"), k, v) {
        printf("%-8s %9lld %8lld %9lld %6lld %12.1f\n", k,
               (long long)json_integer_value(json_object_get(v, "pending")),
               (long long)json_integer_value(json_object_get(v, "running")),
               (long long)json_integer_value(json_object_get(v, "done")),
               (long long)json_integer_value(json_object_get(v, "dead")),
               json_real_value(json_object_get(v, "oldest_pending_s")));
    }
    size_t i;
    json_array_foreach(json_object_get(r, "dead_letters"), i, v) {
        if (i == 0)
            printf("\ndead letters (am jobs retry --dead):\n");
        printf("  job %lld  %-7s event %lld  after %lld attempt(s): %s\n",
               (long long)json_integer_value(json_object_get(v, "id")),
               json_string_value(json_object_get(v, "kind")),
               (long long)json_integer_value(json_object_get(v, "event_id")),
               (long long)json_integer_value(json_object_get(v, "attempts")),
               json_string_value(json_object_get(v, "error")));
    }
    json_decref(r);
    return 0;
}

struct sim_out {
    struct http *h;
    const struct opts *o;
    struct am_buf buf;
    size_t lines;
    long long totals[3];
};

static am_rc sim_line(const char *line, size_t len, void *arg) {
    struct sim_out *so = arg;
    if (am_buf_append(&so->buf, line, len) != AM_OK || am_buf_append(&so->buf, "\n", 1) != AM_OK)
        return AM_ENOMEM;
    if (++so->lines < 2000)
        return AM_OK;
    int ok = send_chunk(so->h, so->o, so->buf.data, so->buf.len, so->totals);
    am_buf_reset(&so->buf);
    so->lines = 0;
    return ok ? AM_OK : AM_EBACKEND;
}

static int cmd_simulate(const struct opts *o) {
    long days = o->days ? strtol(o->days, NULL, 10) : 0;
    unsigned long long seed = o->seed ? strtoull(o->seed, NULL, 10) : 1;
    int64_t start = am_now_ns() - (int64_t)days * 86400 * AM_NS_PER_S;
    if (days < 1 || days > 3650) {
        fprintf(stderr, "am: simulate --days N (1..3650)\n");
        return 2;
    }
    if (o->from && am_time_from_string(o->from, &start) != AM_OK) {
        fprintf(stderr, "am: --from: an RFC 3339 time or epoch number\n");
        return 2;
    }
    struct http h;
    if (!http_init(o, &h))
        return 1;
    struct sim_out so = {.h = &h, .o = o};
    am_buf_init(&so.buf, 1 << 28);
    am_rc rc = am_simulate((int)days, seed, start, 0, sim_line, &so);
    if (rc == AM_OK && so.lines &&
        !send_chunk(&h, o, so.buf.data, so.buf.len, so.totals))
        rc = AM_EBACKEND;
    am_buf_free(&so.buf);
    http_done(&h);
    if (rc != AM_OK) {
        fprintf(stderr, "am: simulate: %s\n", am_strerror(rc));
        return 1;
    }
    printf("simulated %ld day(s): %lld stored, %lld duplicate, %lld rejected\n", days,
           so.totals[0], so.totals[1], so.totals[2]);
    return so.totals[2] ? 1 : 0;
}

static int cmd_context(const struct opts *o) {
    char path[256] = "/v1/context";
    CURL *c = curl_easy_init();
    if (!c)
        return 1;
    add_param(path, sizeof path, c, "at", o->from);
    curl_easy_cleanup(c);
    json_t *r = api_call(o, "GET", path);
    if (!r)
        return 1;
    print_json(r);
    json_decref(r);
    return 0;
}

/* am memories [--status S] | confirm ID | reject ID | edit ID TEXT */
static int cmd_memories(const struct opts *o, const char *sub) {
    if (!strcmp(sub, "confirm") || !strcmp(sub, "reject") || !strcmp(sub, "edit")) {
        if (o->n_args < 3 || (!strcmp(sub, "edit") && o->n_args < 4)) {
            fprintf(stderr, "am: memories %s ID%s\n", sub, strcmp(sub, "edit") ? "" : " TEXT");
            return 2;
        }
        char path[128];
        snprintf(path, sizeof path, "/v1/memories/%s", o->args[2]);
        json_t *b = !strcmp(sub, "edit")
                        ? json_pack("{s:s}", "statement", o->args[3])
                        : json_pack("{s:s}", "status", sub[0] == 'c' ? "confirmed" : "rejected");
        char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        json_t *r = body ? api_call_body(o, "PATCH", path, body) : NULL;
        am_free(body);
        if (!r)
            return 1;
        printf("memory %lld: %s — %s\n", (long long)json_integer_value(json_object_get(r, "id")),
               json_string_value(json_object_get(r, "status")),
               json_string_value(json_object_get(r, "statement")));
        json_decref(r);
        return 0;
    }
    if (sub[0]) {
        fprintf(stderr, "am: memories [--status S] | confirm ID | reject ID | edit ID TEXT\n");
        return 2;
    }
    char path[256] = "/v1/memories";
    CURL *c = curl_easy_init();
    if (!c)
        return 1;
    add_param(path, sizeof path, c, "status", o->kind);
    add_param(path, sizeof path, c, "limit", o->limit);
    curl_easy_cleanup(c);
    json_t *r = api_call(o, "GET", path);
    if (!r)
        return 1;
    if (o->json) {
        print_json(r);
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(r, "memories"), i, m) {
            printf("#%-8lld %-9s %-12s %s\n", (long long)json_integer_value(json_object_get(m, "id")),
                   json_string_value(json_object_get(m, "status")),
                   json_string_value(json_object_get(m, "kind"))
                       ? json_string_value(json_object_get(m, "kind"))
                       : "-",
                   json_string_value(json_object_get(m, "statement")));
        }
    }
    json_decref(r);
    return 0;
}

/* ---------------------------------------------------------------- import */

struct bar {
    int tty;
    int64_t last_ns;
};

static void human_bytes(int64_t n, char *out, size_t len) {
    if (n >= (1LL << 30))
        snprintf(out, len, "%.2f GiB", (double)n / (1LL << 30));
    else if (n >= (1LL << 20))
        snprintf(out, len, "%.1f MiB", (double)n / (1LL << 20));
    else
        snprintf(out, len, "%.1f KiB", (double)n / 1024);
}

static void draw_bar(const struct am_import_progress *p, void *arg) {
    struct bar *b = arg;
    int64_t now = am_mono_ns();
    if (!b->tty || (!p->done && now - b->last_ns < 200 * 1000000LL))
        return;
    b->last_ns = now;
    char done[32], total[32];
    human_bytes(p->bytes_done, done, sizeof done);
    human_bytes(p->bytes_total, total, sizeof total);
    double frac = p->bytes_total > 0 ? (double)p->bytes_done / (double)p->bytes_total : 0;
    if (frac > 1)
        frac = 1;
    char cells[31];
    int full = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        cells[i] = i < full ? '#' : '.';
    cells[30] = '\0';
    fprintf(stderr, "\r[%s] %3.0f%% %s/%s  %lld records  %.0f rec/s  %lld new  %lld dup  ", cells,
            frac * 100, done, total, (long long)p->records, p->records_per_s,
            (long long)p->stored, (long long)p->duplicate);
    if (p->done)
        fputc('\n', stderr);
    fflush(stderr);
}

static int cmd_import(const struct opts *o) {
    struct am_server srv;
    struct am_import_opts io;
    struct am_import_progress p;
    struct bar bar = {isatty(2), 0};
    char err[300];
    int64_t uid;
    memset(&srv, 0, sizeof srv);
    memset(&io, 0, sizeof io);
    memset(&p, 0, sizeof p);
    if (o->n_args < 3 || !o->user) {
        fprintf(stderr, "am: import KIND FILE --user NAME (kinds: %s)\n", am_import_kinds());
        return 2;
    }
    const char *kind = o->args[1], *path = o->args[2];
    if (!am_import_kind_valid(kind)) {
        fprintf(stderr, "am: unknown import kind '%s' (kinds: %s)\n", kind, am_import_kinds());
        return 2;
    }
    if ((o->from && am_time_from_string(o->from, &io.ics_from_ns) != AM_OK) ||
        (o->to && am_time_from_string(o->to, &io.ics_to_ns) != AM_OK)) {
        fprintf(stderr, "am: --from/--to take RFC 3339 or epoch times\n");
        return 2;
    }
    am_config_defaults(&srv.cfg);
    if (am_config_load_env(&srv.cfg, err, sizeof err) != AM_OK) {
        fprintf(stderr, "am: %s\n", err);
        return 2;
    }
    if (!open_store(o, &srv.store))
        return 1;
    /* Nobody in this process listens for "stored" notices: the bus stays idle, and amd
     * (if it runs) learns of the events through its own store like any other reader. */
    if (am_bus_open(&srv.bus, "inproc", NULL) != AM_OK) {
        fprintf(stderr, "am: cannot start the in-process bus\n");
        am_store_close(&srv.store);
        return 1;
    }
    int ret = 1;
    if (srv.store.ops->user_find(srv.store.impl, o->user, &uid) != AM_OK) {
        fprintf(stderr, "am: no user '%s' (am user add %s)\n", o->user, o->user);
        goto out;
    }
    io.on_progress = draw_bar;
    io.arg = &bar;
    am_rc rc = am_import_file(&srv, uid, kind, path, &io, &p, err, sizeof err);
    if (rc != AM_OK && p.import_id == 0 && !err[0])
        snprintf(err, sizeof err, "%s", am_strerror(rc));
    printf("import %lld: %s %s: %lld records, %lld events stored, %lld duplicate, %lld rejected"
           "%s%lld skipped; %.1f s, %.0f records/s\n",
           (long long)p.import_id, kind, rc == AM_OK ? "done" : "FAILED", (long long)p.records,
           (long long)p.stored, (long long)p.duplicate, (long long)p.rejected, ", ",
           (long long)p.skipped, (double)p.elapsed_ns / 1e9, p.records_per_s);
    if (rc != AM_OK) {
        fprintf(stderr, "am: import failed: %s\n", err);
        fprintf(stderr, "am: events of whole batches are kept; run the same command again "
                        "(with the whole file) to resume\n");
        goto out;
    }
    ret = 0;
out:
    am_bus_close(&srv.bus);
    am_store_close(&srv.store);
    return ret;
}

int main(int argc, char **argv) {
    struct opts o;
    memset(&o, 0, sizeof o);
    am_alloc_init();
    if (am_crypto_init() != AM_OK)
        return 1;
    o.data_dir = getenv("AM_DATA_DIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                                                                           \
    if (!strcmp(a, name)) {                                                                        \
        if (!v) {                                                                                  \
            fprintf(stderr, "am: %s needs a value\n", name);                                       \
            return 2;                                                                              \
        }                                                                                          \
        o.field = v;                                                                               \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        OPT("--data-dir", data_dir)
        OPT("--url", url)
        OPT("--token", token)
        OPT("--user", user)
        OPT("--scope", scope)
        OPT("--label", label)
        OPT("--stream", stream)
        OPT("--source", source)
        OPT("--from", from)
        OPT("--to", to)
        OPT("--limit", limit)
        OPT("--order", order)
        OPT("--streams", streams)
        OPT("--mode", mode)
        OPT("--kind", kind)
        OPT("--days", days)
        OPT("--seed", seed)
        OPT("--status", kind)
        OPT("--at", from)
#undef OPT
        if (!strcmp(a, "--dead")) {
            o.dead = 1;
            continue;
        }
        if (!strcmp(a, "--json")) {
            o.json = 1;
            continue;
        }
        if (!strcmp(a, "--all")) {
            o.all = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "am: unknown option %s\n", a);
            return 2;
        }
        if (o.n_args < 4)
            o.args[o.n_args++] = a;
    }
    if (o.n_args == 0) {
        usage();
        return 2;
    }
    const char *cmd = o.args[0];
    const char *sub = o.n_args > 1 ? o.args[1] : "";
    if (!strcmp(cmd, "user") && !strcmp(sub, "add"))
        return cmd_user_add(&o);
    if (!strcmp(cmd, "token") && !strcmp(sub, "create"))
        return cmd_token_create(&o);
    if (!strcmp(cmd, "token") && !strcmp(sub, "revoke"))
        return cmd_token_revoke(&o);
    if (!strcmp(cmd, "ingest"))
        return cmd_ingest(&o);
    if (!strcmp(cmd, "events"))
        return cmd_list(&o, "/v1/events");
    if (!strcmp(cmd, "timeline"))
        return cmd_list(&o, "/v1/timeline");
    if (!strcmp(cmd, "streams"))
        return cmd_streams(&o);
    if (!strcmp(cmd, "search"))
        return cmd_search(&o);
    if (!strcmp(cmd, "jobs"))
        return cmd_jobs(&o, sub);
    if (!strcmp(cmd, "context"))
        return cmd_context(&o);
    if (!strcmp(cmd, "simulate"))
        return cmd_simulate(&o);
    if (!strcmp(cmd, "memories"))
        return cmd_memories(&o, sub);
    if (!strcmp(cmd, "import"))
        return cmd_import(&o);
    usage();
    return 2;
}
