/* push.c — webhook, ntfy and Gotify delivery with libcurl. */
#include "notify.h"
#include "../ingest/ingest.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static size_t discard(char *p, size_t size, size_t n, void *arg) {
    (void)p;
    (void)arg;
    return size * n;
}

/* POSTs body; retries transport errors and 5xx twice. The final HTTP status, 0 when none. */
static long post(const char *url, const char *ctype, const char *body,
                 const struct curl_slist *extra, long timeout_ms) {
    long status = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        CURL *c = curl_easy_init();
        if (!c)
            return 0;
        char ct[96];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        struct curl_slist *h = curl_slist_append(NULL, ct);
        for (const struct curl_slist *x = extra; x; x = x->next)
            h = curl_slist_append(h, x->data);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (status >= 200 && status < 500)
            break;
        struct timespec ts = {0, 200000000L * (attempt + 1)};
        nanosleep(&ts, NULL);
    }
    return status;
}

void am_notify_push(struct am_server *srv, const json_t *ev, json_t *outcome) {
    const struct am_config *cfg = &srv->cfg;
    const json_t *p = json_object_get(ev, "payload");
    const char *title = json_string_value(json_object_get(p, "title"));
    const char *body = json_string_value(json_object_get(p, "body"));
    long timeout = (long)cfg->model_timeout_ms;
    if (!title)
        return;
    if (cfg->notify_webhook_url[0]) {
        char *j = am_json_dump(ev, NULL);
        if (j)
            json_object_set_new(outcome, "webhook",
                                json_integer(post(cfg->notify_webhook_url, "application/json", j,
                                                  NULL, timeout)));
        am_free(j);
    }
    if (cfg->notify_ntfy_url[0]) {
        /* ntfy: the message is the body; the title travels in a header, which must be one
         * line of printable text. */
        char th[300];
        snprintf(th, sizeof th, "Title: %s", title);
        for (char *c = th; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        struct curl_slist *h = curl_slist_append(NULL, th);
        h = curl_slist_append(h, "Tags: bell");
        json_object_set_new(outcome, "ntfy",
                            json_integer(post(cfg->notify_ntfy_url, "text/plain; charset=utf-8",
                                              body && *body ? body : title, h, timeout)));
        curl_slist_free_all(h);
    }
    if (cfg->notify_gotify_url[0] && cfg->notify_gotify_token[0]) {
        char url[600];
        snprintf(url, sizeof url, "%s/message", cfg->notify_gotify_url);
        char auth[300];
        snprintf(auth, sizeof auth, "X-Gotify-Key: %s", cfg->notify_gotify_token);
        struct curl_slist *h = curl_slist_append(NULL, auth);
        json_t *m = json_pack("{s:s, s:s, s:i}", "title", title, "message",
                              body && *body ? body : title, "priority", 5);
        char *j = m ? am_json_dump(m, NULL) : NULL;
        if (j)
            json_object_set_new(outcome, "gotify",
                                json_integer(post(url, "application/json", j, h, timeout)));
        am_free(j);
        json_decref(m);
        curl_slist_free_all(h);
    }
}
