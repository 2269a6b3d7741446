/* store_blobs.c — content-addressed blob files: streamed into DIR/tmp while hashed,
 * fsynced, type-sniffed with libmagic, renamed to DIR/blobs/<2 hex>/<sha256>. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct am_blob_upload {
    char data_dir[512];
    char tmp_path[600];
    int fd;
    int64_t size, max_bytes;
    am_rc failed; /* a write failed: the upload can only be aborted (finish says why) */
    struct am_sha256 hash;
};

static int fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Creates dir if missing; fsyncs its parent when it was created. */
static int ensure_dir(const char *dir, const char *parent) {
    if (mkdir(dir, 0700) == 0)
        return fsync_dir(parent);
    return errno == EEXIST ? 0 : -1;
}

am_rc am_blob_upload_begin(const char *data_dir, int64_t max_bytes, struct am_blob_upload **out) {
    char dir[600];
    *out = NULL;
    struct am_blob_upload *u = am_calloc(1, sizeof *u);
    if (!u)
        return AM_ENOMEM;
    u->fd = -1;
    int len = snprintf(u->data_dir, sizeof u->data_dir, "%s", data_dir);
    if (len < 0 || (size_t)len >= sizeof u->data_dir) {
        am_free(u);
        return AM_EINVAL;
    }
    snprintf(dir, sizeof dir, "%s/tmp", data_dir);
    if (ensure_dir(dir, data_dir) != 0)
        goto fail;
    snprintf(u->tmp_path, sizeof u->tmp_path, "%s/blob-XXXXXX", dir);
    u->fd = mkostemp(u->tmp_path, O_CLOEXEC);
    if (u->fd < 0)
        goto fail;
    u->max_bytes = max_bytes;
    am_sha256_init(&u->hash);
    *out = u;
    return AM_OK;
fail:
    am_error("blob: cannot create a temporary file in %s: %s", dir, strerror(errno));
    am_free(u);
    return AM_EIO;
}

/* Stops an upload that cannot succeed; its temporary file goes at once. */
static am_rc upload_fail(struct am_blob_upload *u, am_rc rc) {
    if (!u->failed) {
        u->failed = rc;
        unlink(u->tmp_path);
    }
    return rc;
}

am_rc am_blob_upload_write(struct am_blob_upload *u, const void *data, size_t len) {
    if (u->failed)
        return u->failed;
    if (len > (size_t)(u->max_bytes - u->size))
        return upload_fail(u, AM_ELIMIT);
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(u->fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            am_error("blob: writing %s: %s", u->tmp_path, strerror(errno));
            return upload_fail(u, AM_EIO);
        }
        p += n;
        left -= (size_t)n;
    }
    am_sha256_update(&u->hash, data, len);
    u->size += (int64_t)len;
    return AM_OK;
}

void am_blob_upload_abort(struct am_blob_upload *u) {
    if (!u)
        return;
    close(u->fd);
    if (!u->failed)
        unlink(u->tmp_path);
    am_free(u);
}

/* libmagic is not thread-safe: one handle, one caller at a time. */
static pthread_mutex_t magic_lock = PTHREAD_MUTEX_INITIALIZER;
static magic_t magic_handle;

struct sniff_job {
    const char *path;
    char *mime;
    size_t mime_len;
};

static void *sniff_thread(void *arg) {
    struct sniff_job *j = arg;
    pthread_mutex_lock(&magic_lock);
    if (!magic_handle) {
        magic_handle = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
        if (magic_handle && magic_load(magic_handle, NULL) != 0) {
            magic_close(magic_handle);
            magic_handle = NULL;
        }
    }
    const char *m = magic_handle ? magic_file(magic_handle, j->path) : NULL;
    if (m)
        snprintf(j->mime, j->mime_len, "%s", m);
    pthread_mutex_unlock(&magic_lock);
    return NULL;
}

/* libmagic needs more stack than an HTTP worker thread has (CivetWeb's are small),
 * so it runs on a thread of its own with a roomy stack. */
static void sniff(const char *path, char *mime, size_t mime_len) {
    struct sniff_job j = {path, mime, mime_len};
    pthread_attr_t attr;
    pthread_t t;
    snprintf(mime, mime_len, "application/octet-stream");
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    if (pthread_create(&t, &attr, sniff_thread, &j) == 0)
        pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

am_rc am_blob_upload_finish(struct am_blob_upload *u, const char *expected_sha256,
                            struct am_blob_info *info) {
    uint8_t d[32];
    char sub[600], final_path[700], blobs[600];
    am_rc rc = AM_OK;
    if (!u)
        return AM_EINVAL;
    am_sha256_final(&u->hash, d);
    memset(info, 0, sizeof *info);
    am_hex(d, 32, info->sha256);
    info->size = u->size;
    info->created_ns = am_now_ns();
    if (u->failed) {
        rc = u->failed;
        goto fail;
    }
    if (expected_sha256 && (strlen(expected_sha256) != AM_BLOB_HEX ||
                            strncasecmp(expected_sha256, info->sha256, AM_BLOB_HEX) != 0)) {
        rc = AM_EINVAL;
        goto fail;
    }
    if (fsync(u->fd) != 0) {
        am_error("blob: fsync %s: %s", u->tmp_path, strerror(errno));
        rc = AM_EIO;
        goto fail;
    }
    sniff(u->tmp_path, info->mime, sizeof info->mime);
    snprintf(blobs, sizeof blobs, "%s/blobs", u->data_dir);
    snprintf(sub, sizeof sub, "%s/%.2s", blobs, info->sha256);
    snprintf(final_path, sizeof final_path, "%s/%s", sub, info->sha256);
    if (ensure_dir(blobs, u->data_dir) != 0 || ensure_dir(sub, blobs) != 0) {
        am_error("blob: cannot create %s: %s", sub, strerror(errno));
        rc = AM_EIO;
        goto fail;
    }
    struct stat st;
    if (stat(final_path, &st) == 0 && st.st_size == u->size)
        goto fail; /* the same content is already in place: drop the copy, rc stays OK */
    /* A file of another size under this name is a torn copy: the rename replaces it. */
    if (rename(u->tmp_path, final_path) != 0 || fsync_dir(sub) != 0) {
        am_error("blob: cannot move %s into place: %s", final_path, strerror(errno));
        rc = AM_EIO;
        goto fail;
    }
    close(u->fd);
    am_free(u);
    return AM_OK;
fail:
    am_blob_upload_abort(u);
    return rc;
}

am_rc am_blob_path(const char *data_dir, const char *sha256, char *out, size_t out_len) {
    if (strlen(sha256) != AM_BLOB_HEX || !am_is_hex(sha256, AM_BLOB_HEX))
        return AM_EINVAL;
    snprintf(out, out_len, "%s/blobs/%.2s/%s", data_dir, sha256, sha256);
    return access(out, R_OK) == 0 ? AM_OK : AM_ENOTFOUND;
}
