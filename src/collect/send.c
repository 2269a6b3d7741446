/* send.c — AM's HTTP API over libcurl: POST /v1/blobs and POST /v1/events, reading the
 * per-item results so the spool knows what it may forget. */
#include <string.h>

#include <curl/curl.h>

#include "collect/collect.h"

#define ANSWER_MAX_BYTES (8 * 1024 * 1024)

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
    struct am_buf *b = userdata;
    return am_buf_append(b, data, size * n) == AM_OK ? size * n : 0;
}

/* One POST; *status is the HTTP status (0 when AM was not reached). */
static am_rc post(struct collect_send *s, const char *path, const char *ctype, const void *body,
                  size_t len, long *status, struct am_buf *answer) {
    *status = 0;
    CURL *c = curl_easy_init();
    if (!c)
        return AM_ENOMEM;
    char url[1024], ct[128];
    snprintf(url, sizeof(url), "%s%s", s->url, path);
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    struct curl_slist *h = curl_slist_append(NULL, ct);
    struct curl_slist *h2 = h ? curl_slist_append(h, s->auth) : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, "Expect:") : NULL;
    am_rc rc = AM_ENOMEM;
    if (!h3) {
        curl_slist_free_all(h2 ? h2 : h);
        goto out;
    }
    h = h3;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms < 5000 ? s->timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        am_debug("am-collect: POST %s: %s", url, curl_easy_strerror(cc));
        rc = AM_EBACKEND; /* AM not reached */
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        rc = AM_OK;
    }
    curl_slist_free_all(h);
out:
    curl_easy_cleanup(c);
    return rc;
}

static am_rc status_rc(long status) {
    if (status == 401 || status == 403)
        return AM_EDENIED;
    return AM_EBACKEND;
}

am_rc collect_send_blob(struct collect_send *s, const uint8_t *data, size_t len,
                        const char *sha256_hex) {
    struct am_buf answer;
    am_buf_init(&answer, ANSWER_MAX_BYTES);
    char path[128];
    snprintf(path, sizeof(path), "/v1/blobs?sha256=%s", sha256_hex);
    long status;
    json_t *j = NULL;
    am_rc rc = post(s, path, "application/octet-stream", data, len, &status, &answer);
    if (rc != AM_OK)
        goto out;
    if (status != 200 && status != 201) {
        am_warn("am-collect: POST /v1/blobs answered %ld: %.200s", status,
                answer.data ? answer.data : "");
        rc = status_rc(status);
        goto out;
    }
    rc = am_json_parse(answer.data ? answer.data : "", answer.len, 8, &j, NULL, 0);
    const char *got = rc == AM_OK ? json_string_value(json_object_get(j, "sha256")) : NULL;
    rc = got && strcmp(got, sha256_hex) == 0 ? AM_OK : AM_EBACKEND;
out:
    json_decref(j);
    am_buf_free(&answer);
    return rc;
}

am_rc collect_send_events(struct collect_send *s, const char *body, size_t body_len, size_t n,
                          uint8_t *done) {
    memset(done, 0, n);
    struct am_buf answer;
    am_buf_init(&answer, ANSWER_MAX_BYTES);
    long status;
    json_t *j = NULL;
    am_rc rc = post(s, "/v1/events", "application/json", body, body_len, &status, &answer);
    if (rc != AM_OK)
        goto out;
    if (status != 200 && status != 207 && status != 422) {
        am_warn("am-collect: POST /v1/events answered %ld: %.200s", status,
                answer.data ? answer.data : "");
        rc = status_rc(status);
        goto out;
    }
    rc = am_json_parse(answer.data ? answer.data : "", answer.len, 16, &j, NULL, 0);
    json_t *results = rc == AM_OK ? json_object_get(j, "results") : NULL;
    if (!json_is_array(results)) {
        rc = AM_EBACKEND;
        goto out;
    }
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        json_int_t index = json_integer_value(json_object_get(r, "index"));
        const char *st = json_string_value(json_object_get(r, "status"));
        if (index < 0 || (size_t)index >= n || !st)
            continue;
        if (strcmp(st, "rejected") == 0)
            am_warn("am-collect: AM rejected a spooled event for good: %s",
                    json_string_value(json_object_get(r, "reason")));
        /* stored, duplicate and rejected all end the event's life in the spool */
        done[index] = 1;
    }
    rc = AM_OK;
out:
    json_decref(j);
    am_buf_free(&answer);
    return rc;
}
