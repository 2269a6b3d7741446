/* bus_inproc.c — the embedded notice bus: a bounded in-memory queue drained by one
 * dispatcher thread that calls subscribers whose prefix matches the subject.
 * Durability is not its job: work that must survive a crash lives in the store. */
#include "bus.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define QUEUE_MAX 65536

struct queued {
    struct am_notice n;
    char *body; /* owned copy */
    struct queued *next;
};

struct sub {
    uint64_t id;
    char prefix[AM_SUBJECT_MAX];
    size_t prefix_len;
    am_bus_cb cb;
    void *arg;
};

struct inproc {
    pthread_mutex_t lock;       /* queue and counters */
    pthread_cond_t cond;
    struct queued *head, *tail;
    int64_t depth, published, dropped;
    int stopping;
    pthread_mutex_t subs_lock;  /* the subscriber array; never held while calling out */
    pthread_mutex_t deliver_lock; /* held while calling subscribers */
    struct sub *subs;
    size_t n_subs, cap_subs;
    uint64_t next_id;
    pthread_t thread;
};

/* The matching subscribers are looked up under subs_lock and called under
 * deliver_lock only, so a slow callback never holds up publish(), interested() or
 * subscribe() on other threads; unsubscribe() waits for deliver_lock, so after it
 * returns its callback is not running. */
static void deliver(struct inproc *b, struct queued *q) {
    pthread_mutex_lock(&b->deliver_lock);
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&b->subs_lock);
        while (i < b->n_subs &&
               strncmp(q->n.subject, b->subs[i].prefix, b->subs[i].prefix_len) != 0)
            i++;
        struct sub s;
        int found = i < b->n_subs;
        if (found)
            s = b->subs[i];
        pthread_mutex_unlock(&b->subs_lock);
        if (!found)
            break;
        s.cb(&q->n, s.arg);
    }
    pthread_mutex_unlock(&b->deliver_lock);
}

static void *dispatcher(void *arg) {
    struct inproc *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->head && !b->stopping)
            pthread_cond_wait(&b->cond, &b->lock);
        if (!b->head && b->stopping)
            break;
        struct queued *q = b->head;
        b->head = q->next;
        if (!b->head)
            b->tail = NULL;
        b->depth--;
        pthread_mutex_unlock(&b->lock);
        deliver(b, q);
        am_free(q->body);
        am_free(q);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

static am_rc inproc_open(const char *url, void **impl) {
    (void)url;
    struct inproc *b = am_calloc(1, sizeof *b);
    if (!b)
        return AM_ENOMEM;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->subs_lock, NULL);
    pthread_mutex_init(&b->deliver_lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->next_id = 1;
    if (pthread_create(&b->thread, NULL, dispatcher, b) != 0) {
        pthread_mutex_destroy(&b->lock);
        pthread_mutex_destroy(&b->subs_lock);
        pthread_mutex_destroy(&b->deliver_lock);
        pthread_cond_destroy(&b->cond);
        am_free(b);
        return AM_EBACKEND;
    }
    *impl = b;
    return AM_OK;
}

static void inproc_close(void *impl) {
    struct inproc *b = impl;
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL); /* it drains what is queued first */
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->subs_lock);
    pthread_mutex_destroy(&b->deliver_lock);
    pthread_cond_destroy(&b->cond);
    am_free(b->subs);
    am_free(b);
}

static am_rc inproc_publish(void *impl, const struct am_notice *n) {
    struct inproc *b = impl;
    am_rc rc = AM_OK;
    struct queued *q = am_calloc(1, sizeof *q);
    if (!q)
        return AM_ENOMEM;
    q->n = *n;
    if (n->body) {
        q->body = am_strndup(n->body, n->body_len);
        if (!q->body) {
            am_free(q);
            return AM_ENOMEM;
        }
    }
    q->n.body = q->body;
    pthread_mutex_lock(&b->lock);
    if (b->stopping || b->depth >= QUEUE_MAX) {
        b->dropped++;
        rc = b->stopping ? AM_ECLOSED : AM_ELIMIT;
    } else {
        if (b->tail)
            b->tail->next = q;
        else
            b->head = q;
        b->tail = q;
        b->depth++;
        b->published++;
        q = NULL;
        pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
    if (q) {
        am_free(q->body);
        am_free(q);
    }
    return rc;
}

static am_rc inproc_subscribe(void *impl, const char *prefix, am_bus_cb cb, void *arg,
                              uint64_t *sub_id) {
    struct inproc *b = impl;
    size_t len = strlen(prefix);
    if (len >= AM_SUBJECT_MAX)
        return AM_EINVAL;
    am_rc rc = AM_OK;
    pthread_mutex_lock(&b->subs_lock);
    if (b->n_subs == b->cap_subs) {
        size_t cap = b->cap_subs ? b->cap_subs * 2 : 8;
        struct sub *p = am_realloc(b->subs, cap * sizeof *p);
        if (!p) {
            rc = AM_ENOMEM;
            goto out;
        }
        b->subs = p;
        b->cap_subs = cap;
    }
    struct sub *s = &b->subs[b->n_subs++];
    s->id = b->next_id++;
    memcpy(s->prefix, prefix, len + 1);
    s->prefix_len = len;
    s->cb = cb;
    s->arg = arg;
    *sub_id = s->id;
out:
    pthread_mutex_unlock(&b->subs_lock);
    return rc;
}

/* Taking deliver_lock waits out a delivery in progress, so cb is idle on return.
 * Must not be called from inside a callback. */
static void inproc_unsubscribe(void *impl, uint64_t sub_id) {
    struct inproc *b = impl;
    pthread_mutex_lock(&b->subs_lock);
    for (size_t i = 0; i < b->n_subs; i++) {
        if (b->subs[i].id == sub_id) {
            memmove(&b->subs[i], &b->subs[i + 1], (b->n_subs - i - 1) * sizeof b->subs[0]);
            b->n_subs--;
            break;
        }
    }
    pthread_mutex_unlock(&b->subs_lock);
    pthread_mutex_lock(&b->deliver_lock);
    pthread_mutex_unlock(&b->deliver_lock);
}

static void inproc_stats(void *impl, int64_t *published, int64_t *dropped, int64_t *depth) {
    struct inproc *b = impl;
    pthread_mutex_lock(&b->lock);
    *published = b->published;
    *dropped = b->dropped;
    *depth = b->depth;
    pthread_mutex_unlock(&b->lock);
}

static int inproc_interested(void *impl, const char *subject) {
    struct inproc *b = impl;
    int yes = 0;
    pthread_mutex_lock(&b->subs_lock);
    for (size_t i = 0; i < b->n_subs && !yes; i++)
        yes = strncmp(subject, b->subs[i].prefix, b->subs[i].prefix_len) == 0;
    pthread_mutex_unlock(&b->subs_lock);
    return yes;
}

const struct am_bus_ops am_bus_inproc_ops = {
    .name = "inproc",
    .open = inproc_open,
    .close = inproc_close,
    .publish = inproc_publish,
    .subscribe = inproc_subscribe,
    .unsubscribe = inproc_unsubscribe,
    .stats = inproc_stats,
    .interested = inproc_interested,
};
