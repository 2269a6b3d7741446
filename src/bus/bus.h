/* bus.h — notices between modules ("an event was stored") behind one interface.
 * Subjects are "am.<user_id>.<category>.<kind>.<stage>", stage raw|stored|derived,
 * so one user's traffic can be routed, limited and deleted by prefix. The embedded
 * backend (bus_inproc.c) delivers in-process from one dispatcher thread; NATS
 * JetStream can implement the same ops. A notice is not durability: the store is. */
#ifndef AM_BUS_H
#define AM_BUS_H

#include "../core/core.h"

#define AM_SUBJECT_MAX 160

struct am_notice {
    char subject[AM_SUBJECT_MAX];
    int64_t user_id;
    int64_t event_id;
    char stream[AM_STREAM_MAX + 1];
    int64_t ts_ns;
    const char *body;   /* the event as JSON; valid only during the callback */
    size_t body_len;
};

/* Called on the bus's dispatcher thread; must not block for long. */
typedef void (*am_bus_cb)(const struct am_notice *n, void *arg);

struct am_bus_ops {
    const char *name;
    am_rc (*open)(const char *url, void **impl);
    void (*close)(void *impl); /* delivers nothing after it returns */
    /* Copies the notice; never blocks the caller for a slow subscriber. AM_ELIMIT
     * when the in-memory queue is full (the notice is dropped and counted). */
    am_rc (*publish)(void *impl, const struct am_notice *n);
    /* prefix matches subjects by string prefix, e.g. "am.7." for all of user 7. */
    am_rc (*subscribe)(void *impl, const char *prefix, am_bus_cb cb, void *arg,
                       uint64_t *sub_id);
    /* After it returns, cb is not running and will not be called again. */
    void (*unsubscribe)(void *impl, uint64_t sub_id);
    void (*stats)(void *impl, int64_t *published, int64_t *dropped, int64_t *depth);
    /* 1 when some subscriber would receive a notice on this subject, so a publisher
     * can skip building one nobody reads (a remote bus answers 1). */
    int (*interested)(void *impl, const char *subject);
};

extern const struct am_bus_ops am_bus_inproc_ops;

struct am_bus {
    const struct am_bus_ops *ops;
    void *impl;
};

am_rc am_bus_open(struct am_bus *b, const char *backend, const char *url);
void am_bus_close(struct am_bus *b);
/* Fills n->subject for a user, stream ("location.gps") and stage ("stored"). */
void am_bus_subject(char *out, size_t out_len, int64_t user_id, const char *stream,
                    const char *stage);

#endif
