/* store.c — picks the store backend by name; scope names. */
#include "store.h"

#include <stdio.h>
#include <string.h>

am_rc am_store_open(struct am_store *s, const char *backend, const struct am_store_config *cfg) {
    static const struct am_store_ops *const backends[] = {&am_store_sqlite_ops};
    s->ops = NULL;
    s->impl = NULL;
    for (size_t i = 0; backend && i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(backend, backends[i]->name) == 0)
            s->ops = backends[i];
    if (!s->ops)
        return AM_EINVAL;
    am_rc rc = s->ops->open(cfg, &s->impl);
    if (rc != AM_OK)
        s->ops = NULL;
    return rc;
}

void am_store_close(struct am_store *s) {
    if (s && s->ops && s->impl)
        s->ops->close(s->impl);
    if (s) {
        s->ops = NULL;
        s->impl = NULL;
    }
}

unsigned am_scopes_parse(const char *s) {
    unsigned out = 0;
    while (s && *s) {
        size_t n = strcspn(s, ",");
        if (n == 6 && !strncmp(s, "ingest", 6))
            out |= AM_SCOPE_INGEST;
        else if (n == 4 && !strncmp(s, "read", 4))
            out |= AM_SCOPE_READ;
        else if (n == 5 && !strncmp(s, "admin", 5))
            out |= AM_SCOPE_ADMIN;
        else if (n != 0)
            return 0;
        s += n;
        if (*s == ',')
            s++;
    }
    return out;
}

void am_scopes_format(unsigned scopes, char *out, size_t out_len) {
    snprintf(out, out_len, "%s%s%s%s%s", scopes & AM_SCOPE_INGEST ? "ingest" : "",
             (scopes & AM_SCOPE_INGEST) && (scopes & (AM_SCOPE_READ | AM_SCOPE_ADMIN)) ? "," : "",
             scopes & AM_SCOPE_READ ? "read" : "",
             (scopes & AM_SCOPE_READ) && (scopes & AM_SCOPE_ADMIN) ? "," : "",
             scopes & AM_SCOPE_ADMIN ? "admin" : "");
}
