/* bus.c — picks the bus backend by name and builds subjects. */
#include "bus.h"

#include <stdio.h>
#include <string.h>

am_rc am_bus_open(struct am_bus *b, const char *backend, const char *url) {
    b->ops = NULL;
    b->impl = NULL;
    if (strcmp(backend, "inproc") == 0)
        b->ops = &am_bus_inproc_ops;
    else
        return AM_EINVAL;
    return b->ops->open(url, &b->impl);
}

void am_bus_close(struct am_bus *b) {
    if (b->ops && b->impl)
        b->ops->close(b->impl);
    b->impl = NULL;
}

void am_bus_subject(char *out, size_t out_len, int64_t user_id, const char *stream,
                    const char *stage) {
    snprintf(out, out_len, "am.%lld.%s.%s", (long long)user_id, stream, stage);
}
