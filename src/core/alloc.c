/* alloc.c — the one allocator, with a hook that fails the Nth allocation for tests,
 * and errors as words. */
#include "core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long alloc_seen;
static atomic_long alloc_fail_nth; /* absolute allocation number that fails; 0 = never */
static atomic_int alloc_fail_sticky;

void am_alloc_fail_at(long nth, int sticky) {
    long now = atomic_load(&alloc_seen);
    atomic_store(&alloc_fail_sticky, sticky);
    atomic_store(&alloc_fail_nth, nth > 0 ? now + nth : 0);
}

long am_alloc_count(void) {
    return atomic_load(&alloc_seen);
}

static _Thread_local long thread_failures;

long am_alloc_failures(void) {
    return thread_failures;
}

/* Returns 1 when this allocation must fail. */
static int should_fail(void) {
    long n = atomic_fetch_add(&alloc_seen, 1) + 1;
    long at = atomic_load(&alloc_fail_nth);
    if (at == 0)
        return 0;
    int fail = atomic_load(&alloc_fail_sticky) ? n >= at : n == at;
    thread_failures += fail;
    return fail;
}

void *am_malloc(size_t n) {
    if (should_fail())
        return NULL;
    void *p = malloc(n ? n : 1);
    thread_failures += p == NULL;
    return p;
}

void *am_calloc(size_t count, size_t n) {
    if (should_fail())
        return NULL;
    void *p = calloc(count ? count : 1, n ? n : 1);
    thread_failures += p == NULL;
    return p;
}

void *am_realloc(void *p, size_t n) {
    if (should_fail())
        return NULL;
    void *q = realloc(p, n ? n : 1);
    thread_failures += q == NULL;
    return q;
}

void am_free(void *p) {
    free(p);
}

char *am_strndup(const char *s, size_t n) {
    char *d = am_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *am_strdup(const char *s) {
    return am_strndup(s, strlen(s));
}

static void init_once(void) {
    json_set_alloc_funcs(am_malloc, am_free);
}

void am_alloc_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
}

const char *am_strerror(am_rc rc) {
    switch (rc) {
    case AM_OK: return "ok";
    case AM_EINVAL: return "invalid input";
    case AM_ENOMEM: return "out of memory";
    case AM_EIO: return "input/output error";
    case AM_ENOTFOUND: return "not found";
    case AM_EDENIED: return "denied";
    case AM_ECONFLICT: return "already exists";
    case AM_ELIMIT: return "limit exceeded";
    case AM_EBACKEND: return "backend failure";
    case AM_ECLOSED: return "shutting down";
    }
    return "unknown error";
}
