/* ingest.c — am_ingest_submit: the one function every door calls. It hands events
 * to the store (which answers after fsync) and then tells the bus what was stored. */
#include "http_internal.h"

#include <string.h>

am_rc am_ingest_submit(struct am_server *srv, int64_t user_id, struct am_event *evs, size_t n,
                       struct am_item_result *res) {
    for (size_t i = 0; i < n; i++)
        evs[i].user_id = user_id; /* the caller's user, never the client's claim */
    int64_t t0 = am_mono_ns();
    am_rc rc = srv->store.ops->append(srv->store.impl, user_id, evs, n, res);
    if (rc != AM_OK)
        return rc;
    if (srv->metrics)
        am_metrics_ingest(srv->metrics, res, n, am_mono_ns() - t0);
    for (size_t i = 0; i < n; i++) {
        if (res[i].status != AM_ITEM_STORED)
            continue;
        evs[i].id = res[i].id;
        struct am_notice note;
        memset(&note, 0, sizeof note);
        am_bus_subject(note.subject, sizeof note.subject, user_id, evs[i].stream, "stored");
        if (!srv->bus.ops->interested(srv->bus.impl, note.subject))
            continue;
        note.user_id = user_id;
        note.event_id = res[i].id;
        memcpy(note.stream, evs[i].stream, sizeof note.stream);
        note.ts_ns = evs[i].ts_ns;
        json_t *j = am_event_to_json(&evs[i]);
        char *body = j ? am_json_dump(j, &note.body_len) : NULL;
        json_decref(j);
        note.body = body;
        /* A lost notice costs a live view an update, never data: the event is stored. */
        if (body && srv->bus.ops->publish(srv->bus.impl, &note) != AM_OK)
            am_debug("bus: notice for event %lld dropped", (long long)res[i].id);
        am_free(body);
    }
    return AM_OK;
}
