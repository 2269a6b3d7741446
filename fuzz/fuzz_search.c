/* fuzz_search.c — libFuzzer target for what search does with a person's text: the FTS5
 * query builder (its output must be a query FTS5 accepts: run against a real in-memory
 * FTS5 table), the snippet HTML escaper (no raw '<' may survive except our <mark> tags),
 * and the searchable-text extraction from payloads. */
#include "search/search.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static sqlite3 *db;
static sqlite3_stmt *st;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE VIRTUAL TABLE fts USING fts5(text, tokenize = 'unicode61"
                     " remove_diacritics 2'); INSERT INTO fts VALUES('café budget meeting')",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT rowid FROM fts WHERE fts MATCH ?", -1, &st, NULL) !=
            SQLITE_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1), q[2048];
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    for (int any = 0; any < 2; any++) {
        if (am_search_fts_query(s, any, q, sizeof q) != AM_OK)
            continue;
        /* Whatever a person types must never be an FTS5 syntax error. */
        sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            ;
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            abort();
    }
    struct am_buf b;
    am_buf_init(&b, 1u << 26);
    if (am_search_html(s, &b) == AM_OK && b.data) {
        for (const char *p = strchr(b.data, '<'); p; p = strchr(p + 1, '<'))
            if (strncmp(p, "<mark>", 6) != 0 && strncmp(p, "</mark>", 7) != 0)
                abort();
    }
    am_buf_free(&b);
    am_buf_init(&b, 1u << 24);
    (void)am_payload_text(s, size, &b);
    am_buf_free(&b);
    free(s);
    return 0;
}
