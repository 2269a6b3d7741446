/* store_sqlite_imports.c — the imports table: one row per run of a file importer with
 * its progress. Writes go through the writer thread like every other write (a progress
 * update is one small request per batch); reads use the reader pool. */
#include "store_sqlite.h"

#include <stdio.h>
#include <string.h>

#define IMPORT_COLUMNS                                                                             \
    "id, user_id, kind, name, fingerprint, bytes_total, bytes_done, records, stored,"              \
    " duplicate, rejected, state, error, started_ns, updated_ns, coalesce(finished_ns, 0)"

/* Progress is written once per batch, so a statement prepared per request costs little
 * and keeps the writer's own statement list untouched. */
am_rc sq_do_import_request(struct sq *s, struct sq_req *r) {
    struct am_import_row *row = r->import_row;
    const char *sql =
        row->id == 0
            ? "INSERT INTO imports(user_id, kind, name, fingerprint, bytes_total, bytes_done,"
              " records, stored, duplicate, rejected, state, error, started_ns, updated_ns,"
              " finished_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
              " ?14, nullif(?15, 0))"
            : "UPDATE imports SET kind = ?2, name = ?3, fingerprint = ?4, bytes_total = ?5,"
              " bytes_done = ?6, records = ?7, stored = ?8, duplicate = ?9, rejected = ?10,"
              " state = ?11, error = ?12, started_ns = ?13, updated_ns = ?14,"
              " finished_ns = nullif(?15, 0) WHERE user_id = ?1 AND id = ?16";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_rc(rc);
    sqlite3_bind_int64(st, 1, row->user_id);
    sqlite3_bind_text(st, 2, row->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, row->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, row->bytes_total);
    sqlite3_bind_int64(st, 6, row->bytes_done);
    sqlite3_bind_int64(st, 7, row->records);
    sqlite3_bind_int64(st, 8, row->stored);
    sqlite3_bind_int64(st, 9, row->duplicate);
    sqlite3_bind_int64(st, 10, row->rejected);
    sqlite3_bind_int(st, 11, row->state);
    sqlite3_bind_text(st, 12, row->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, row->started_ns);
    sqlite3_bind_int64(st, 14, row->updated_ns);
    sqlite3_bind_int64(st, 15, row->finished_ns);
    if (row->id)
        sqlite3_bind_int64(st, 16, row->id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_rc(rc) == AM_OK ? AM_EIO : sq_rc(rc);
    if (row->id == 0)
        r->new_id = sqlite3_last_insert_rowid(s->wdb);
    else if (sqlite3_changes(s->wdb) != 1)
        return AM_ENOTFOUND;
    return AM_OK;
}

am_rc sq_import_put(void *impl, struct am_import_row *row) {
    if (!row || row->user_id <= 0 || !row->kind[0])
        return AM_EINVAL;
    struct sq_req r = {.kind = SQ_IMPORT_PUT, .user_id = row->user_id, .import_row = row};
    am_rc rc = sq_submit(impl, &r);
    if (rc == AM_OK && row->id == 0)
        row->id = r.new_id;
    return rc;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src) {
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static void read_row(sqlite3_stmt *st, struct am_import_row *x) {
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(st, 0);
    x->user_id = sqlite3_column_int64(st, 1);
    copy_text(x->kind, sizeof x->kind, sqlite3_column_text(st, 2));
    copy_text(x->name, sizeof x->name, sqlite3_column_text(st, 3));
    copy_text(x->fingerprint, sizeof x->fingerprint, sqlite3_column_text(st, 4));
    x->bytes_total = sqlite3_column_int64(st, 5);
    x->bytes_done = sqlite3_column_int64(st, 6);
    x->records = sqlite3_column_int64(st, 7);
    x->stored = sqlite3_column_int64(st, 8);
    x->duplicate = sqlite3_column_int64(st, 9);
    x->rejected = sqlite3_column_int64(st, 10);
    x->state = sqlite3_column_int(st, 11);
    copy_text(x->error, sizeof x->error, sqlite3_column_text(st, 12));
    x->started_ns = sqlite3_column_int64(st, 13);
    x->updated_ns = sqlite3_column_int64(st, 14);
    x->finished_ns = sqlite3_column_int64(st, 15);
}

/* Runs a one-off read; rows go to out (room for max). */
static am_rc select_rows(struct sq *s, const char *sql, int64_t user_id, const char *kind,
                         const char *name, const char *fingerprint, size_t max,
                         struct am_import_row *out, size_t *n) {
    struct sq_reader *rd = sq_reader_get(s);
    sqlite3_stmt *st = NULL;
    *n = 0;
    int rc = sqlite3_prepare_v2(rd->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, (int64_t)max);
        if (kind) {
            sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, fingerprint, -1, SQLITE_STATIC);
        }
        while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
            read_row(st, &out[(*n)++]);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    sq_reader_put(s, rd);
    return rc == SQLITE_OK ? AM_OK : (sq_rc(rc) == AM_OK ? AM_EIO : sq_rc(rc));
}

am_rc sq_import_list(void *impl, int64_t user_id, size_t limit, struct am_import_row **out,
                     size_t *n) {
    *out = NULL;
    *n = 0;
    if (limit == 0 || limit > 1000)
        limit = 1000;
    struct am_import_row *rows = am_calloc(limit, sizeof *rows);
    if (!rows)
        return AM_ENOMEM;
    am_rc rc = select_rows(impl,
                           "SELECT " IMPORT_COLUMNS " FROM imports WHERE user_id = ?1"
                           " ORDER BY id DESC LIMIT ?2",
                           user_id, NULL, NULL, NULL, limit, rows, n);
    if (rc != AM_OK) {
        am_free(rows);
        *n = 0;
        return rc;
    }
    *out = rows;
    return AM_OK;
}

am_rc sq_import_find_unfinished(void *impl, int64_t user_id, const char *kind, const char *name,
                                const char *fingerprint, struct am_import_row *out) {
    size_t n = 0;
    am_rc rc = select_rows(impl,
                           "SELECT " IMPORT_COLUMNS " FROM imports WHERE user_id = ?1"
                           " AND kind = ?3 AND name = ?4 AND fingerprint = ?5 AND state != 1"
                           " ORDER BY id DESC LIMIT ?2",
                           user_id, kind, name, fingerprint, 1, out, &n);
    if (rc == AM_OK && n == 0)
        rc = AM_ENOTFOUND;
    return rc;
}
