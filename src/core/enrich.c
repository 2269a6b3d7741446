/* enrich.c — routing of events into the pipeline: which jobs a stream's events need
 * and which payload fields are searchable text. Kept as data beside the catalog so the
 * store can write jobs and full-text rows in the event's transaction without knowing
 * about the workers. */
#include "core.h"

#include <string.h>

static const char *const kind_names[AM_JOB_KINDS] = {"ocr",     "stt",     "frames",
                                                     "caption", "analyze", "embed"};
static const char *const state_names[AM_JOB_STATES] = {"pending", "running", "done", "dead"};

const char *am_job_kind_name(int kind) {
    return kind >= 0 && kind < AM_JOB_KINDS ? kind_names[kind] : "unknown";
}

const char *am_job_state_name(int state) {
    return state >= 0 && state < AM_JOB_STATES ? state_names[state] : "unknown";
}

int am_job_kind_parse(const char *name) {
    for (int k = 0; k < AM_JOB_KINDS; k++)
        if (!strcmp(name, kind_names[k]))
            return k;
    return -1;
}

#define BIT(k) (1u << (k))

/* Streams whose text is worth a vector and an analysis: what a person wrote, read or
 * said. Short labels (window titles, app names) go to the full-text index only. */
static const char *const text_streams[] = {
    "image.ocr",      "image.caption",    "audio.transcript", "screen.text",
    "device.clipboard", "comms.email",    "comms.message",    "app.notification",
    "calendar.event", "calendar.todo",    "external.feed",    "external.social",
    "web.visit",
    "derived.memory", "derived.summary",
};
/* Searchable besides the text streams. */
static const char *const label_streams[] = {
    "desktop.window", "app.usage",      "web.search",     "comms.call",
    "location.place", "derived.habit",  "derived.anomaly", "derived.correlation",
    "derived.nudge",  "health.workout",
};

static int in(const char *const *list, size_t n, const char *stream) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], stream))
            return 1;
    return 0;
}
#define IN(list, s) in(list, sizeof list / sizeof list[0], s)

unsigned am_stream_jobs(const char *stream, int has_blob) {
    if (has_blob) {
        if (!strcmp(stream, "image.photo") || !strcmp(stream, "image.screenshot") ||
            !strcmp(stream, "video.frame"))
            return BIT(AM_JOB_OCR) | BIT(AM_JOB_CAPTION);
        if (!strcmp(stream, "audio.chunk"))
            return BIT(AM_JOB_STT);
        if (!strcmp(stream, "video.clip"))
            return BIT(AM_JOB_FRAMES);
    }
    if (IN(text_streams, stream)) {
        /* Derived text about the person is embedded, not analysed again. */
        if (!strncmp(stream, "derived.", 8) || !strcmp(stream, "image.caption"))
            return BIT(AM_JOB_EMBED);
        return BIT(AM_JOB_ANALYZE) | BIT(AM_JOB_EMBED);
    }
    return 0;
}

int am_stream_searchable(const char *stream) {
    return IN(text_streams, stream) || IN(label_streams, stream);
}

/* Payload fields that hold words a person would search for, in the order they read. */
static const char *const text_fields[] = {
    "title", "subject", "statement", "name", "query", "text", "body", "description",
    "summary", "from", "to", "contact", "location", "app", "url", "kind",
};

am_rc am_payload_text(const char *payload, size_t len, struct am_buf *out) {
    json_t *obj = NULL;
    /* Payloads were validated on the way in; the depth bound only guards the parser. */
    am_rc rc = am_json_parse(payload, len, 64, &obj, NULL, 0);
    if (rc != AM_OK)
        return rc;
    if (!json_is_object(obj)) {
        json_decref(obj);
        return AM_EINVAL;
    }
    for (size_t i = 0; i < sizeof text_fields / sizeof text_fields[0]; i++) {
        json_t *v = json_object_get(obj, text_fields[i]);
        if (!json_is_string(v) || json_string_length(v) == 0)
            continue;
        if (out->len && (rc = am_buf_append(out, "\n", 1)) != AM_OK)
            break;
        if ((rc = am_buf_append(out, json_string_value(v), json_string_length(v))) != AM_OK)
            break;
    }
    json_decref(obj);
    return rc;
}
