/* http_blobs.c — POST/PUT /v1/blobs (streamed to disk, hashed, fsynced) and
 * GET /v1/blobs/{sha256} (CivetWeb serves the file, with Range). */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static am_rc upload_sink(void *arg, const void *data, size_t len) {
    return am_blob_upload_write(arg, data, len);
}

void http_blob_put(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    const struct am_config *cfg = &h->srv->cfg;
    struct am_store *s = &h->srv->store;
    const struct mg_request_info *ri = mg_get_request_info(c);
    char expect[80] = "";
    const char *hdr = mg_get_header(c, "X-Content-SHA256");
    if (hdr)
        snprintf(expect, sizeof expect, "%s", hdr);
    else
        http_param(c, "sha256", expect, sizeof expect);
    for (char *p = expect; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    if (expect[0] && (strlen(expect) != AM_BLOB_HEX || !am_is_hex(expect, AM_BLOB_HEX))) {
        http_problem(c, 400, "malformed", "sha256: 64 hex digits");
        return;
    }
    if (ri->content_length > 0 && ri->content_length > cfg->max_blob_bytes) {
        http_problem(c, 413, "too-large", "blob of %lld bytes is over the limit of %lld bytes",
                     ri->content_length, (long long)cfg->max_blob_bytes);
        return;
    }
    http_continue(c);
    struct am_blob_upload *u = NULL;
    am_rc rc = am_blob_upload_begin(cfg->data_dir, cfg->max_blob_bytes, &u);
    if (rc) {
        http_problem(c, 503, "unavailable", "cannot store blobs: %s", am_strerror(rc));
        return;
    }
    rc = http_stream_body(c, upload_sink, u);
    if (rc) {
        am_blob_upload_abort(u);
        if (rc == AM_ELIMIT)
            http_problem(c, 413, "too-large", "blob is over the limit of %lld bytes",
                         (long long)cfg->max_blob_bytes);
        else if (rc == AM_EINVAL)
            http_problem(c, 400, "malformed", "body shorter than its Content-Length");
        else
            http_problem(c, 503, "unavailable", "writing the blob: %s", am_strerror(rc));
        return;
    }
    struct am_blob_info info;
    memset(&info, 0, sizeof info);
    rc = am_blob_upload_finish(u, expect[0] ? expect : NULL, &info);
    if (rc == AM_EINVAL) {
        http_problem(c, 422, "hash-mismatch", "the body's SHA-256 is not %s", expect);
        return;
    }
    if (rc) {
        http_problem(c, 503, "unavailable", "storing the blob: %s", am_strerror(rc));
        return;
    }
    struct am_blob_info had;
    int existed = s->ops->blob_get(s->impl, a->user_id, info.sha256, &had) == AM_OK;
    if (!existed) {
        rc = s->ops->blob_add(s->impl, a->user_id, &info);
        if (rc) {
            http_problem(c, 503, "unavailable", "recording the blob: %s", am_strerror(rc));
            return;
        }
    }
    if (h->srv->metrics)
        am_metrics_blob(h->srv->metrics, info.size);
    http_json(c, existed ? 200 : 201,
              json_pack("{s:s, s:I, s:s}", "sha256", info.sha256, "size", (json_int_t)info.size,
                        "mime", info.mime));
}

void http_blob_get(struct am_http *h, struct mg_connection *c, const struct am_auth *a,
                   const char *sha) {
    struct am_store *s = &h->srv->store;
    struct am_blob_info info;
    char path[1024];
    if (strlen(sha) != AM_BLOB_HEX || !am_is_hex(sha, AM_BLOB_HEX) ||
        s->ops->blob_get(s->impl, a->user_id, sha, &info) != AM_OK ||
        am_blob_path(h->srv->cfg.data_dir, sha, path, sizeof path) != AM_OK) {
        http_problem(c, 404, "not-found", "no blob %.64s", sha);
        return;
    }
    /* CivetWeb serves ranges, but answers a range past the end with an empty 206;
     * RFC 9110 wants 416, so that one case is checked here. */
    const char *range = mg_get_header(c, "Range");
    if (range && strncmp(range, "bytes=", 6) == 0 && range[6] >= '0' && range[6] <= '9') {
        long long start = strtoll(range + 6, NULL, 10);
        if (start >= info.size) {
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%lld", (long long)info.size);
            http_problem_header(c, 416, "range-not-satisfiable", "Content-Range", cr,
                                "the range starts past the end of the blob");
            return;
        }
    }
    if (h->srv->metrics)
        am_metrics_http(h->srv->metrics, range ? 206 : 200);
    mg_send_mime_file2(c, path, info.mime[0] ? info.mime : "application/octet-stream",
                       "X-Content-Type-Options: nosniff\r\n");
}
