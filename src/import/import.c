/* import.c — the importer framework: reads a file sequentially, lets the format's parser
 * turn records into events, gives events deterministic keys, submits them in batches
 * through am_ingest_submit, and keeps the imports row (progress, resume) up to date. */
#include "import_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/xmlreader.h>

#define FINGERPRINT_BYTES (64 * 1024)

struct imp {
    struct am_server *srv;
    int64_t user_id;
    const char *kind;
    int fd;
    struct am_import_opts opts;
    struct am_import_row row;
    struct am_import_progress prog;
    struct am_limits lim;
    size_t batch_max, n;
    struct am_event *evs;
    struct am_item_result *res;
    int64_t pending_rejected; /* conversion rejects of the batch being filled */
    int64_t skip;             /* events left to skip on resume */
    int64_t t0_ns;
    int failed;
    char err[256];
    char xml_err[200];
    int xml_line;
};

struct kind_def {
    const char *name;
    const char *source; /* the events' source */
    am_rc (*parse)(struct imp *im);
    int resumable;      /* the event sequence does not depend on the clock */
};

static const struct kind_def kinds[] = {
    {"gpx", "import.gpx", imp_parse_gpx, 1},
    {"takeout", "import.google-takeout", imp_parse_takeout, 1},
    {"apple-health", "import.apple-health", imp_parse_apple, 1},
    {"ics", "import.ics", imp_parse_ics, 0},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static const struct kind_def *find_kind(const char *kind) {
    for (size_t i = 0; kind && i < N_KINDS; i++)
        if (!strcmp(kinds[i].name, kind))
            return &kinds[i];
    return NULL;
}

int am_import_kind_valid(const char *kind) { return find_kind(kind) != NULL; }

const char *am_import_kinds(void) { return "gpx, takeout, apple-health, ics"; }

/* ---------------------------------------------------------------- what parsers call */

long imp_read(struct imp *im, char *buf, size_t cap) {
    if (im->failed)
        return -1;
    for (;;) {
        ssize_t n = read(im->fd, buf, cap);
        if (n >= 0) {
            im->prog.bytes_done += n;
            return (long)n;
        }
        if (errno != EINTR) {
            imp_fail(im, "reading the file: %s", strerror(errno));
            return -1;
        }
    }
}

void imp_record(struct imp *im) { im->prog.records++; }

int64_t imp_bytes_done(const struct imp *im) { return im->prog.bytes_done; }

am_rc imp_fail(struct imp *im, const char *fmt, ...) {
    if (!im->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(im->err, sizeof im->err, fmt, ap);
        va_end(ap);
        am_utf8_clean(im->err);
        im->failed = 1;
    }
    return AM_EINVAL;
}

void imp_ics_window(const struct imp *im, int64_t *from_ns, int64_t *to_ns) {
    const int64_t year_ns = 366LL * 24 * 3600 * AM_NS_PER_S;
    int64_t now = am_now_ns();
    *from_ns = im->opts.ics_from_ns && im->opts.ics_from_ns != AM_TS_NONE ? im->opts.ics_from_ns
                                                                          : now - year_ns;
    *to_ns = im->opts.ics_to_ns && im->opts.ics_to_ns != AM_TS_NONE ? im->opts.ics_to_ns
                                                                    : now + year_ns;
}

int imp_number(const char *s, double *out) {
    char *end;
    if (!s || !*s)
        return 0;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
        end++;
    if (*end || errno || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static void drop_batch(struct imp *im) {
    for (size_t i = 0; i < im->n; i++)
        am_event_clear(&im->evs[i]);
    im->n = 0;
    im->pending_rejected = 0;
}

static void report(struct imp *im, int done) {
    struct am_import_progress *p = &im->prog;
    p->elapsed_ns = am_mono_ns() - im->t0_ns;
    p->records_per_s = p->elapsed_ns > 0 ? (double)p->records * 1e9 / (double)p->elapsed_ns : 0;
    p->done = done;
    if (im->opts.on_progress)
        im->opts.on_progress(p, im->opts.arg);
}

static am_rc save_row(struct imp *im) {
    if (!im->srv)
        return AM_OK;
    struct am_import_row *r = &im->row;
    r->bytes_total = im->prog.bytes_total;
    r->bytes_done = im->prog.bytes_done;
    r->records = im->prog.records;
    r->stored = im->prog.stored;
    r->duplicate = im->prog.duplicate;
    r->rejected = im->prog.rejected;
    r->updated_ns = am_now_ns();
    am_rc rc = im->srv->store.ops->import_put(im->srv->store.impl, r);
    im->prog.import_id = r->id;
    return rc;
}

/* Submits the batch being filled; its events are durable (or duplicates) on return. */
static am_rc flush(struct imp *im) {
    am_rc rc = AM_OK;
    if (im->n > 0) {
        memset(im->res, 0, im->n * sizeof *im->res);
        if (im->srv) {
            rc = am_ingest_submit(im->srv, im->user_id, im->evs, im->n, im->res);
            if (rc != AM_OK) {
                imp_fail(im, "storing a batch: %s", am_strerror(rc));
                drop_batch(im);
                return rc;
            }
            for (size_t i = 0; i < im->n; i++) {
                if (im->res[i].status == AM_ITEM_STORED)
                    im->prog.stored++;
                else if (im->res[i].status == AM_ITEM_DUPLICATE)
                    im->prog.duplicate++;
                else
                    im->prog.rejected++;
            }
        } else {
            im->prog.stored += (int64_t)im->n;
        }
    }
    im->prog.rejected += im->pending_rejected;
    for (size_t i = 0; i < im->n; i++)
        am_event_clear(&im->evs[i]);
    im->n = 0;
    im->pending_rejected = 0;
    if ((rc = save_row(im)) != AM_OK)
        return rc;
    report(im, 0);
    return AM_OK;
}

am_rc imp_emit(struct imp *im, json_t *ev, const char *identity, size_t identity_len) {
    am_rc rc = AM_OK;
    if (!ev)
        return AM_ENOMEM;
    if (im->failed)
        goto out;
    if (im->skip > 0) { /* committed by the interrupted run this one resumes */
        im->skip--;
        im->prog.skipped++;
        goto out;
    }
    struct am_sha256 h;
    uint8_t digest[32];
    char hex[65], key[AM_KEY_MAX + 1];
    am_sha256_init(&h);
    am_sha256_update(&h, identity, identity_len);
    am_sha256_final(&h, digest);
    am_hex(digest, 32, hex);
    snprintf(key, sizeof key, "imp:%s:%s", im->kind, hex);
    if (json_object_set_new(ev, "key", json_string(key)) ||
        (!json_object_get(ev, "source") &&
         json_object_set_new(ev, "source", json_string(find_kind(im->kind)->source)))) {
        rc = AM_ENOMEM;
        goto out;
    }
    char reason[200];
    rc = am_event_from_json(ev, im->user_id, &im->lim, &im->evs[im->n], reason, sizeof reason);
    if (rc == AM_EINVAL) {
        if (im->prog.rejected + im->pending_rejected < 5)
            am_info("import %s: record %lld rejected: %s", im->kind, (long long)im->prog.records,
                    reason);
        im->pending_rejected++;
        rc = AM_OK;
        goto out;
    }
    if (rc != AM_OK)
        goto out;
    if (++im->n == im->batch_max)
        rc = flush(im);
out:
    json_decref(ev);
    return rc;
}

/* ---------------------------------------------------------------- libxml2 */

static int xml_read(void *ctx, char *buf, int len) {
    long n = imp_read(ctx, buf, (size_t)len);
    return n < 0 ? -1 : (int)n;
}

static void xml_error(void *arg, const char *msg, xmlParserSeverities severity,
                      xmlTextReaderLocatorPtr loc) {
    struct imp *im = arg;
    if (severity != XML_PARSER_SEVERITY_ERROR || im->xml_err[0])
        return;
    snprintf(im->xml_err, sizeof im->xml_err, "%s", msg ? msg : "malformed XML");
    size_t len = strlen(im->xml_err);
    while (len && (im->xml_err[len - 1] == '\n' || im->xml_err[len - 1] == ' '))
        im->xml_err[--len] = '\0';
    im->xml_line = loc ? xmlTextReaderLocatorLineNumber(loc) : 0;
}

/* libxml2 reports some errors (bad encodings) through its generic handler, which prints
 * to stderr; the reader's own handler has the ones the run reports. */
static void xml_quiet(void *ctx, const char *msg, ...) {
    (void)ctx;
    (void)msg;
}

am_rc imp_xml_open(struct imp *im, struct _xmlTextReader **out) {
    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, xml_quiet); /* this thread's handler (libxml2 keeps it per thread) */
    /* No network, no external DTDs, entities left unexpanded (a hostile file cannot make
     * one small entity into gigabytes). */
    xmlTextReaderPtr r = xmlReaderForIO(xml_read, NULL, im, NULL, NULL,
                                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!r)
        return AM_ENOMEM;
    xmlTextReaderSetErrorHandler(r, xml_error, im);
    *out = r;
    return AM_OK;
}

am_rc imp_xml_fail(struct imp *im, struct _xmlTextReader *r) {
    (void)r;
    if (im->failed)
        return AM_EINVAL;
    if (im->xml_err[0])
        return imp_fail(im, "malformed XML at line %d (byte %lld): %s", im->xml_line,
                        (long long)im->prog.bytes_done, im->xml_err);
    return imp_fail(im, "malformed or truncated XML near byte %lld",
                    (long long)im->prog.bytes_done);
}

/* ---------------------------------------------------------------- the run */

static void fingerprint(int fd, int64_t size, char out[65]) {
    struct am_sha256 h;
    uint8_t d[32];
    char *buf = am_malloc(FINGERPRINT_BYTES);
    am_sha256_init(&h);
    am_sha256_update(&h, &size, sizeof size);
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (buf && at >= 0) {
        ssize_t n = pread(fd, buf, FINGERPRINT_BYTES, at);
        if (n > 0)
            am_sha256_update(&h, buf, (size_t)n);
    }
    am_free(buf);
    am_sha256_final(&h, d);
    am_hex(d, 32, out);
}

am_rc am_import_fd(struct am_server *srv, int64_t user_id, const char *kind, int fd,
                   const char *name, const struct am_import_opts *o,
                   struct am_import_progress *p, char *err, size_t err_len) {
    am_rc rc = AM_OK;
    const struct kind_def *k = find_kind(kind);
    struct imp *im = NULL;
    if (err && err_len)
        err[0] = '\0';
    if (!k) {
        if (err)
            snprintf(err, err_len, "unknown import kind '%s' (kinds: %s)", kind ? kind : "",
                     am_import_kinds());
        return AM_EINVAL;
    }
    if (!(im = am_calloc(1, sizeof *im)))
        return AM_ENOMEM;
    im->srv = srv;
    im->user_id = user_id;
    im->kind = k->name;
    im->fd = fd;
    if (o)
        im->opts = *o;
    im->batch_max = im->opts.batch_events;
    if (!im->batch_max)
        im->batch_max = srv && srv->cfg.import_batch_events > 0
                            ? (size_t)srv->cfg.import_batch_events : 1000;
    if (im->batch_max > 100000)
        im->batch_max = 100000;
    im->lim.max_depth = srv && srv->cfg.max_json_depth > 0 ? (size_t)srv->cfg.max_json_depth : 32;
    im->lim.max_payload_bytes =
        srv && srv->cfg.max_payload_bytes > 0 ? (size_t)srv->cfg.max_payload_bytes : 1 << 20;
    im->evs = am_calloc(im->batch_max, sizeof *im->evs);
    im->res = am_calloc(im->batch_max, sizeof *im->res);
    if (!im->evs || !im->res) {
        rc = AM_ENOMEM;
        goto out;
    }
    struct stat stt;
    if (fstat(fd, &stt) == 0 && S_ISREG(stt.st_mode)) {
        off_t at = lseek(fd, 0, SEEK_CUR);
        im->prog.bytes_total = (int64_t)stt.st_size - (at > 0 ? (int64_t)at : 0);
    }
    im->t0_ns = am_mono_ns();

    if (srv) {
        struct am_import_row *r = &im->row;
        char fp[65];
        fingerprint(fd, im->prog.bytes_total, fp);
        if (!im->opts.no_resume && k->resumable &&
            srv->store.ops->import_find_unfinished(srv->store.impl, user_id, k->name,
                                                   name ? name : "", fp, r) == AM_OK) {
            im->skip = r->stored + r->duplicate + r->rejected;
            im->prog.stored = r->stored;
            im->prog.duplicate = r->duplicate;
            im->prog.rejected = r->rejected;
            am_info("import %s: resuming import %lld of %s after %lld events", k->name,
                    (long long)r->id, r->name, (long long)im->skip);
        } else {
            memset(r, 0, sizeof *r);
            r->user_id = user_id;
            snprintf(r->kind, sizeof r->kind, "%s", k->name);
            snprintf(r->name, sizeof r->name, "%s", name ? name : "");
            am_utf8_clean(r->name);
            r->started_ns = am_now_ns();
        }
        memcpy(r->fingerprint, fp, sizeof fp);
        r->state = AM_IMPORT_RUNNING;
        r->error[0] = '\0';
        r->finished_ns = 0;
        if ((rc = save_row(im)) != AM_OK) {
            snprintf(im->err, sizeof im->err, "recording the import: %s", am_strerror(rc));
            goto out;
        }
    }

    rc = k->parse(im);
    if (rc == AM_OK && im->failed)
        rc = AM_EINVAL;
    if (rc == AM_OK) {
        rc = flush(im);
    } else {
        /* Whole batches are kept; the one being filled is not. */
        drop_batch(im);
        if (!im->failed)
            imp_fail(im, "%s", am_strerror(rc));
    }
    if (srv) {
        im->row.state = rc == AM_OK ? AM_IMPORT_DONE : AM_IMPORT_FAILED;
        snprintf(im->row.error, sizeof im->row.error, "%s", im->err);
        im->row.finished_ns = am_now_ns();
        am_rc wrc = save_row(im);
        if (rc == AM_OK && wrc != AM_OK) {
            rc = wrc;
            snprintf(im->err, sizeof im->err, "recording the import: %s", am_strerror(rc));
        }
    }
    report(im, 1);
out:
    if (err && err_len && im->err[0])
        snprintf(err, err_len, "%s", im->err);
    if (p)
        *p = im->prog;
    drop_batch(im);
    am_free(im->evs);
    am_free(im->res);
    am_free(im);
    return rc;
}

am_rc am_import_file(struct am_server *srv, int64_t user_id, const char *kind, const char *path,
                     const struct am_import_opts *o, struct am_import_progress *p, char *err,
                     size_t err_len) {
    if (!find_kind(kind))
        return am_import_fd(srv, user_id, kind, -1, path, o, p, err, err_len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return AM_EIO;
    }
    /* The name identifies the file for resuming: the absolute path when there is one. */
    char *abs = realpath(path, NULL);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    am_rc rc = am_import_fd(srv, user_id, kind, fd, abs ? abs : path, o, p, err, err_len);
    free(abs); /* realpath's memory is malloc's */
    close(fd);
    return rc;
}

json_t *am_import_row_json(const struct am_import_row *r) {
    static const char *const states[] = {"running", "done", "failed"};
    char started[48], updated[48], finished[48];
    am_time_format(r->started_ns, started, sizeof started);
    am_time_format(r->updated_ns, updated, sizeof updated);
    am_time_format(r->finished_ns, finished, sizeof finished);
    double secs = (double)((r->finished_ns ? r->finished_ns : r->updated_ns) - r->started_ns) / 1e9;
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:f}", "id",
        (json_int_t)r->id, "kind", r->kind, "name", r->name, "bytes_total",
        (json_int_t)r->bytes_total, "bytes_done", (json_int_t)r->bytes_done, "records",
        (json_int_t)r->records, "stored", (json_int_t)r->stored, "duplicate",
        (json_int_t)r->duplicate, "rejected", (json_int_t)r->rejected, "state",
        r->state >= 0 && r->state <= 2 ? states[r->state] : "unknown", "started", started,
        "updated", updated, "records_per_s", secs > 0 ? (double)r->records / secs : 0.0);
    if (!j)
        return NULL;
    if (r->finished_ns)
        json_object_set_new(j, "finished", json_string(finished));
    else
        json_object_set_new(j, "finished", json_null());
    if (r->error[0])
        json_object_set_new(j, "error", json_string(r->error));
    return j;
}
