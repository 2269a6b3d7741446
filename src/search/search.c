/* search.c — hybrid search: BM25 hits and nearest vectors, fused by reciprocal rank
 * (score = sum of 1 / (60 + rank) over the lists a hit appears in; Cormack et al. 2009).
 * RRF needs no score calibration between BM25 and cosine, which is why it is used. */
#include "search.h"
#include "../ingest/ingest.h"
#include "../process/process.h"

#include <stdio.h>
#include <string.h>

#define RRF_K 60.0
#define LIST_MAX 100
#define CONTEXT_WINDOW_NS (60 * AM_NS_PER_S)
/* Below this a vector neighbour is noise (the built-in embedder's unrelated texts sit
 * near 0); hits under it are not fused in. */
#define MIN_COSINE 0.1

static int word_byte(unsigned char ch) {
    return ch >= 0x80 || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch >= 'A' && ch <= 'Z') || ch == '_';
}

am_rc am_search_fts_query(const char *q, int any, char *out, size_t out_len) {
    size_t o = 0, words = 0, last_start = 0, last_len = 0;
    if (out_len < 8)
        return AM_ELIMIT;
    out[0] = '\0';
    for (const char *p = q; *p;) {
        if (!word_byte((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *s = p;
        while (*p && word_byte((unsigned char)*p))
            p++;
        size_t len = (size_t)(p - s);
        /* quoted word plus separator; a word cannot hold '"' so no escaping is needed */
        size_t need = len + 2 + (words ? (any ? 4 : 1) : 0) + 2;
        if (o + need >= out_len)
            break; /* a query this long is cut at a word */
        if (words)
            o += (size_t)snprintf(out + o, out_len - o, "%s", any ? " OR " : " ");
        last_start = o;
        o += (size_t)snprintf(out + o, out_len - o, "\"%.*s\"", (int)len, s);
        last_len = len;
        words++;
    }
    if (!words)
        return AM_EINVAL;
    /* "meet" finds "meeting": a person types the start of a word. */
    if (last_len >= 3 && o + 1 < out_len) {
        (void)last_start;
        out[o++] = '*';
        out[o] = '\0';
    }
    return AM_OK;
}

am_rc am_search_html(const char *s, struct am_buf *out) {
    am_rc rc = AM_OK;
    for (; *s && rc == AM_OK; s++) {
        switch (*s) {
        case '\x01': rc = am_buf_appends(out, "<mark>"); break;
        case '\x02': rc = am_buf_appends(out, "</mark>"); break;
        case '<': rc = am_buf_appends(out, "&lt;"); break;
        case '>': rc = am_buf_appends(out, "&gt;"); break;
        case '&': rc = am_buf_appends(out, "&amp;"); break;
        case '"': rc = am_buf_appends(out, "&quot;"); break;
        case '\'': rc = am_buf_appends(out, "&#39;"); break;
        default: rc = am_buf_append(out, s, 1);
        }
    }
    return rc;
}

struct fused {
    int64_t id;
    double score;
    int text_rank, vector_rank; /* 1-based; 0 when absent from that list */
    double cosine;
    const char *snippet;
};

static struct fused *find_or_add(struct fused *f, size_t *n, int64_t id) {
    for (size_t i = 0; i < *n; i++)
        if (f[i].id == id)
            return &f[i];
    memset(&f[*n], 0, sizeof f[*n]);
    f[*n].id = id;
    return &f[(*n)++];
}

static int by_fused(const void *a, const void *b) {
    double x = ((const struct fused *)a)->score, y = ((const struct fused *)b)->score;
    if (x != y)
        return x < y ? 1 : -1;
    int64_t i = ((const struct fused *)a)->id, j = ((const struct fused *)b)->id;
    return i < j ? 1 : i > j ? -1 : 0; /* newer first on ties */
}

/* The first line of an event's searchable text, cut at about max bytes on a character. */
static void first_line(const char *payload, size_t len, char *out, size_t max) {
    struct am_buf b;
    am_buf_init(&b, 1u << 20);
    out[0] = '\0';
    if (am_payload_text(payload, len, &b) == AM_OK && b.len) {
        size_t n = strcspn(b.data, "\n");
        if (n >= max) {
            n = max - 1;
            while (n > 0 && ((unsigned char)b.data[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(out, b.data, n);
        out[n] = '\0';
    }
    am_buf_free(&b);
}

/* What else happened within a minute of the hit: up to 6 other events. */
static json_t *context_json(struct am_server *srv, int64_t user_id, const struct am_event *e) {
    struct am_query q = {.from_ns = e->ts_ns - CONTEXT_WINDOW_NS,
                         .to_ns = e->ts_ns + CONTEXT_WINDOW_NS, .limit = 7};
    struct am_event_list l = {0};
    json_t *arr = json_array();
    if (!arr || srv->store.ops->query(srv->store.impl, user_id, &q, &l) != AM_OK)
        return arr;
    for (size_t i = 0; i < l.n && json_array_size(arr) < 6; i++) {
        const struct am_event *c = &l.items[i];
        if (c->id == e->id)
            continue;
        char ts[48], label[160];
        am_time_format(c->ts_ns, ts, sizeof ts);
        first_line(c->payload, c->payload_len ? c->payload_len : strlen(c->payload), label,
                   sizeof label);
        json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)c->id, "stream",
                              c->stream, "ts", ts, "label", label);
        if (o)
            json_array_append_new(arr, o);
    }
    am_event_list_free(&l);
    return arr;
}

static json_t *hit_json(struct am_server *srv, int64_t user_id, const struct fused *f,
                        int context) {
    struct am_event e;
    memset(&e, 0, sizeof e);
    if (srv->store.ops->get_event(srv->store.impl, user_id, f->id, &e) != AM_OK)
        return NULL; /* gone since the index was read */
    char ts[48];
    am_time_format(e.ts_ns, ts, sizeof ts);
    struct am_buf snip;
    am_buf_init(&snip, 1u << 16);
    if (f->snippet && f->snippet[0]) {
        am_search_html(f->snippet, &snip);
    } else {
        char line[300];
        first_line(e.payload, e.payload_len ? e.payload_len : strlen(e.payload), line,
                   sizeof line);
        am_search_html(line, &snip);
    }
    json_t *h = json_pack("{s:I, s:s, s:s, s:s, s:f, s:s}", "id", (json_int_t)e.id, "stream",
                          e.stream, "source", e.source, "ts", ts, "score", f->score, "snippet",
                          snip.data ? snip.data : "");
    am_buf_free(&snip);
    if (!h)
        goto out;
    json_object_set_new(h, "ts_ns", json_integer(e.ts_ns));
    if (f->text_rank)
        json_object_set_new(h, "text_rank", json_integer(f->text_rank));
    if (f->vector_rank) {
        json_object_set_new(h, "vector_rank", json_integer(f->vector_rank));
        json_object_set_new(h, "cosine", json_real(f->cosine));
    }
    if (e.blob[0]) {
        char link[100];
        snprintf(link, sizeof link, "/v1/blobs/%s", e.blob);
        json_object_set_new(h, "blob", json_string(link));
    }
    json_t *payload = NULL;
    if (am_json_parse(e.payload, e.payload_len ? e.payload_len : strlen(e.payload), 64,
                      &payload, NULL, 0) == AM_OK) {
        /* Where a transcript or a frame sits in its recording, and what it came from. */
        const char *keep[] = {"source_event", "offset", "duration"};
        for (size_t i = 0; i < 3; i++) {
            json_t *v = json_object_get(payload, keep[i]);
            if (v)
                json_object_set(h, keep[i], v);
        }
        json_decref(payload);
    }
    if (context)
        json_object_set_new(h, "context", context_json(srv, user_id, &e));
out:
    am_event_clear(&e);
    return h;
}

am_rc am_search(struct am_server *srv, int64_t user_id, const struct am_search_params *sp,
                json_t **out, char *err, size_t err_len) {
    struct am_store *st = &srv->store;
    struct am_search_filter f = {sp->streams, sp->n_streams, sp->source, sp->from_ns, sp->to_ns};
    struct am_hit *th = NULL, *vh = NULL, *vh2 = NULL;
    size_t tn = 0, vn = 0, vn2 = 0, nf = 0;
    char prev_model[128] = "";
    float *qv = NULL;
    char fts[2048], model[128] = "";
    int64_t t0 = am_mono_ns();
    am_rc rc = AM_OK;
    struct fused *fu = NULL;
    json_t *res = NULL, *hits = NULL;
    *out = NULL;
    size_t limit = sp->limit ? sp->limit : 20;
    if (limit > 100)
        limit = 100;
    size_t depth = limit * 3 < LIST_MAX ? (limit * 3 < 30 ? 30 : limit * 3) : LIST_MAX;

    if ((rc = am_search_fts_query(sp->q, 0, fts, sizeof fts)) != AM_OK) {
        snprintf(err, err_len, "q: needs at least one word");
        return AM_EINVAL;
    }
    if (sp->mode != AM_SEARCH_VECTOR) {
        if ((rc = st->ops->search_text(st->impl, user_id, fts, &f, depth, &th, &tn)) != AM_OK)
            goto fail;
        /* Every word rarely appears in a short text: fill up with any of them. */
        if (tn < depth && am_search_fts_query(sp->q, 1, fts, sizeof fts) == AM_OK &&
            strchr(fts, ' ')) {
            struct am_hit *more = NULL;
            size_t mn = 0;
            if ((rc = st->ops->search_text(st->impl, user_id, fts, &f, depth, &more, &mn)) !=
                AM_OK)
                goto fail;
            struct am_hit *all = am_realloc(th, (tn + mn + 1) * sizeof *all);
            if (!all) {
                am_free(more);
                rc = AM_ENOMEM;
                goto fail;
            }
            th = all;
            for (size_t i = 0; i < mn && tn < depth; i++) {
                size_t k = 0;
                while (k < tn && th[k].event_id != more[i].event_id)
                    k++;
                if (k == tn)
                    th[tn++] = more[i];
            }
            am_free(more);
        }
    }
    if (sp->mode != AM_SEARCH_TEXT && srv->process) {
        int dim = 0;
        rc = am_process_embed_query(srv->process, sp->q, &qv, &dim, model, sizeof model, err,
                                    err_len);
        if (rc == AM_OK)
            rc = st->ops->search_vector(st->impl, user_id, model, qv, dim, &f, depth, &vh, &vn);
        if (rc != AM_OK) {
            /* A model server that is down must not take text search with it. */
            if (sp->mode == AM_SEARCH_VECTOR)
                goto fail;
            am_warn("search: vector half skipped: %s", err[0] ? err : am_strerror(rc));
            err[0] = '\0';
            rc = AM_OK;
            vn = 0;
        }
    }
    /* While a new embedding model is backfilled, the previous one (still holding more
     * vectors) keeps serving: its neighbours are fused in as a list of their own. */
    if (sp->mode != AM_SEARCH_TEXT && srv->process && model[0]) {
        struct am_vector_model *vm = NULL;
        size_t nvm = 0;
        if (st->ops->vector_models(st->impl, user_id, &vm, &nvm) == AM_OK) {
            int64_t cur = 0;
            const struct am_vector_model *old = NULL;
            for (size_t i = 0; i < nvm; i++) {
                if (!strcmp(vm[i].model, model))
                    cur += vm[i].count;
                else if (!old)
                    old = &vm[i]; /* most vectors first */
            }
            if (old && old->count > cur) {
                char e2[256] = "";
                float *q2 = NULL;
                int d2 = 0;
                if (am_process_embed_query_with(srv->process, old->model, sp->q, &q2, &d2, e2,
                                                sizeof e2) == AM_OK &&
                    d2 == old->dim &&
                    st->ops->search_vector(st->impl, user_id, old->model, q2, d2, &f, depth,
                                           &vh2, &vn2) == AM_OK)
                    snprintf(prev_model, sizeof prev_model, "%s", old->model);
                else
                    am_warn("search: previous model %s not consulted: %s", old->model,
                            e2[0] ? e2 : "its query could not be embedded");
                am_free(q2);
            }
        }
        am_free(vm);
    }
    fu = am_calloc(tn + vn + vn2 + 1, sizeof *fu);
    if (!fu) {
        rc = AM_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < tn; i++) {
        struct fused *x = find_or_add(fu, &nf, th[i].event_id);
        x->text_rank = (int)i + 1;
        x->snippet = th[i].snippet;
        x->score += 1.0 / (RRF_K + (double)(i + 1));
    }
    for (size_t i = 0; i < vn; i++) {
        /* Vectors rank everything; a near-orthogonal one is noise, not a hit. */
        if (vh[i].score < MIN_COSINE)
            break;
        struct fused *x = find_or_add(fu, &nf, vh[i].event_id);
        x->vector_rank = (int)i + 1;
        x->cosine = vh[i].score;
        x->score += 1.0 / (RRF_K + (double)(i + 1));
    }
    for (size_t i = 0; i < vn2; i++) {
        if (vh2[i].score < MIN_COSINE)
            break;
        struct fused *x = find_or_add(fu, &nf, vh2[i].event_id);
        if (!x->vector_rank || (int)i + 1 < x->vector_rank) {
            x->vector_rank = (int)i + 1;
            x->cosine = vh2[i].score;
        }
        x->score += 1.0 / (RRF_K + (double)(i + 1));
    }
    qsort(fu, nf, sizeof *fu, by_fused);
    res = json_object();
    hits = json_array();
    if (!res || !hits) {
        rc = AM_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < nf && json_array_size(hits) < limit; i++) {
        json_t *h = hit_json(srv, user_id, &fu[i], sp->context);
        if (h)
            json_array_append_new(hits, h);
    }
    static const char *modes[] = {"hybrid", "text", "vector"};
    json_object_set_new(res, "query", json_string(sp->q));
    json_object_set_new(res, "mode", json_string(modes[sp->mode]));
    if (model[0])
        json_object_set_new(res, "model", json_string(model));
    if (prev_model[0]) /* say so: vector recall is partial until the backfill ends */
        json_object_set_new(res, "previous_model", json_string(prev_model));
    json_object_set_new(res, "hits", hits);
    hits = NULL;
    json_object_set_new(res, "took_ms", json_real((double)(am_mono_ns() - t0) / 1e6));
    *out = res;
    res = NULL;
fail:
    if (rc == AM_EINVAL && !err[0])
        snprintf(err, err_len, "q: not a query the index understands");
    json_decref(hits);
    json_decref(res);
    am_free(fu);
    am_free(th);
    am_free(vh);
    am_free(vh2);
    am_free(qv);
    return rc;
}
