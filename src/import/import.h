/* import.h — importers for files a person already has: GPX tracks, Google Takeout
 * location history (Records.json and Semantic Location History), Apple Health
 * export.xml and iCalendar (.ics). Files are read front to back in fixed-size chunks
 * (memory stays flat for files of many GB), records become events, and events go to
 * am_ingest_submit in batches of cfg.import_batch_events. Nothing here writes to the
 * store except through that function and the imports table (progress).
 *
 * Every event's key is "imp:<kind>:<SHA-256 of the record's identity>", so importing
 * the same file twice stores nothing new, and an interrupted import is resumed by
 * running it again: a run that finds an unfinished import of the same file (same
 * name, size and first 64 KiB) continues that row and skips, without converting or
 * submitting them, the events the interrupted run already had committed. ICS is always
 * converted in full (its expansion window moves with the clock), duplicates and all. */
#ifndef AM_IMPORT_H
#define AM_IMPORT_H

#include "../ingest/ingest.h"

struct am_import_progress {
    int64_t import_id;                      /* the imports row; 0 for a dry run */
    int64_t bytes_total, bytes_done;
    int64_t records;                        /* source records read (points, Records, VEVENTs) */
    int64_t stored, duplicate, rejected;    /* events, this file so far (all runs) */
    int64_t skipped;                        /* events skipped on resume, this run */
    int64_t elapsed_ns;                     /* this run */
    double records_per_s;                   /* this run */
    int done;                               /* 1 on the last call */
};

struct am_import_opts {
    /* ICS: recurrences are expanded over [from, to); AM_TS_NONE (or 0): from one year
     * before now to one year after. */
    int64_t ics_from_ns, ics_to_ns;
    size_t batch_events;   /* 0: srv->cfg.import_batch_events (or 1000 without srv) */
    int no_resume;         /* 1: always start a new imports row and submit everything */
    /* Called after each batch and once at the end, on the importing thread. */
    void (*on_progress)(const struct am_import_progress *p, void *arg);
    void *arg;
};

/* "gpx", "takeout", "apple-health", "ics": 1 when the importer exists. */
int am_import_kind_valid(const char *kind);
/* The kinds, comma separated, for usage text. */
const char *am_import_kinds(void);

/* Imports one file for a user. The caller's thread does the work and blocks until the
 * end. p (may be NULL) gets the final figures. On a malformed or truncated file the
 * events of batches already submitted stay (they are whole and durable), the partial
 * batch is dropped, the imports row says "failed", and err says where (AM_EINVAL).
 * AM_EIO when the file cannot be read. o may be NULL. */
am_rc am_import_file(struct am_server *srv, int64_t user_id, const char *kind, const char *path,
                     const struct am_import_opts *o, struct am_import_progress *p, char *err,
                     size_t err_len);

/* Same, from an open file descriptor read sequentially from its current offset; name
 * identifies the file in the imports table. srv NULL is a dry run: records are parsed
 * and converted into events, counted as stored and thrown away; no row is written
 * (what the fuzz target uses). */
am_rc am_import_fd(struct am_server *srv, int64_t user_id, const char *kind, int fd,
                   const char *name, const struct am_import_opts *o,
                   struct am_import_progress *p, char *err, size_t err_len);

/* A row of the imports table as JSON (for GET /v1/imports); caller owns (json_decref). */
json_t *am_import_row_json(const struct am_import_row *row);

#endif
