/* search.h — hybrid search over one user's events: full text (SQLite FTS5, BM25,
 * diacritics folded) and vectors (the configured embedder, exact cosine), fused by
 * reciprocal rank fusion. Each hit names its event, stream, time, a highlighted
 * snippet, its blob, and what else happened around that minute. */
#ifndef AM_SEARCH_H
#define AM_SEARCH_H

#include "../core/core.h"

struct am_server;

enum am_search_mode { AM_SEARCH_HYBRID = 0, AM_SEARCH_TEXT, AM_SEARCH_VECTOR };

struct am_search_params {
    const char *q;               /* free text as a person types it */
    const char *const *streams;  /* NULL: every stream */
    size_t n_streams;
    const char *source;          /* NULL: any */
    int64_t from_ns, to_ns;      /* AM_TS_NONE: open */
    size_t limit;                /* 1..100 */
    enum am_search_mode mode;
    int context;                 /* 1: add the events around each hit */
};

/* {"query", "mode", "hits": [...], "took_ms"}; caller owns *out. AM_EINVAL (err says
 * why) for a query without words. */
am_rc am_search(struct am_server *srv, int64_t user_id, const struct am_search_params *sp,
                json_t **out, char *err, size_t err_len);

/* Turns free text into a safe FTS5 query: every word quoted (so FTS5 operators typed by a
 * person are plain words), joined by AND (any = 0) or OR (any = 1), the last word also
 * matched as a prefix. AM_EINVAL when the text has no words. */
am_rc am_search_fts_query(const char *q, int any, char *out, size_t out_len);

/* Escapes text for HTML and turns the markers \x01 and \x02 into <mark> and </mark>. */
am_rc am_search_html(const char *s, struct am_buf *out);

#endif
