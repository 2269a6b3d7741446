/* catalog.c — the stream catalog: every known stream, its payload fields with types,
 * units and ranges, and its retention class; payload validation against it. */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NO_MIN 1
#define NO_MAX 0
#define F(n, t, req, lo, hi, unit, doc) {n, t, req, lo, hi, unit, doc}
#define NUM(n, req, lo, hi, unit, doc) F(n, AM_F_NUMBER, req, lo, hi, unit, doc)
#define INTF(n, req, lo, hi, unit, doc) F(n, AM_F_INTEGER, req, lo, hi, unit, doc)
#define STRF(n, req, doc) F(n, AM_F_STRING, req, 0, 65536, NULL, doc)
#define TEXT(n, req, doc) F(n, AM_F_STRING, req, 0, 16777216, NULL, doc)
#define BOOLF(n, doc) F(n, AM_F_BOOL, 0, NO_MIN, NO_MAX, NULL, doc)
#define ARR(n, req, doc) F(n, AM_F_ARRAY, req, NO_MIN, NO_MAX, NULL, doc)
#define OBJ(n, req, doc) F(n, AM_F_OBJECT, req, NO_MIN, NO_MAX, NULL, doc)

static const struct am_field f_gps[] = {
    NUM("lat", 1, -90, 90, "deg", "latitude, WGS84"),
    NUM("lon", 1, -180, 180, "deg", "longitude, WGS84"),
    NUM("alt", 0, -12000, 100000, "m", "altitude above sea level"),
    NUM("accuracy", 0, 0, 1e7, "m", "horizontal accuracy radius"),
    NUM("vertical_accuracy", 0, -1, 1e7, "m", "vertical accuracy"),
    NUM("speed", 0, -1, 1e4, "m/s", "ground speed (-1: unknown)"),
    NUM("bearing", 0, -1, 360, "deg", "course over ground"),
    NUM("battery", 0, 0, 100, "%", "device battery level when sampled"),
};
static const struct am_field f_place[] = {
    STRF("name", 0, "place label (home, work, ...)"),
    NUM("lat", 0, -90, 90, "deg", "centre latitude"),
    NUM("lon", 0, -180, 180, "deg", "centre longitude"),
    NUM("radius", 0, 0, 1e6, "m", "radius"),
    STRF("place_id", 0, "stable id of the place"),
    STRF("event", 0, "visit, arrival, departure or trip"),
};
static const struct am_field f_wifi[] = {
    STRF("ssid", 0, "network name"),
    STRF("bssid", 0, "access point"),
    NUM("rssi", 0, -200, 50, "dBm", "signal strength"),
};
static const struct am_field f_xyz[] = {
    NUM("x", 1, -1e9, 1e9, NULL, "x axis"),
    NUM("y", 1, -1e9, 1e9, NULL, "y axis"),
    NUM("z", 1, -1e9, 1e9, NULL, "z axis"),
    STRF("unit", 0, "unit of x, y, z (m/s2, rad/s, uT)"),
};
static const struct am_field f_activity[] = {
    STRF("activity", 1, "still, walk, run, vehicle, bike, ..."),
    NUM("confidence", 0, 0, 100, "%", "classifier confidence"),
};
static const struct am_field f_steps[] = {
    INTF("count", 1, 0, 1e9, "steps", "steps in the interval"),
};
static const struct am_field f_hr[] = {
    NUM("bpm", 1, 1, 300, "1/min", "heart rate"),
    STRF("context", 0, "rest, active, workout, ..."),
};
static const struct am_field f_hrv[] = {
    NUM("rmssd", 0, 0, 5000, "ms", "RMSSD"),
    NUM("sdnn", 0, 0, 5000, "ms", "SDNN"),
};
static const struct am_field f_spo2[] = {
    NUM("percent", 1, 0, 100, "%", "oxygen saturation"),
};
static const struct am_field f_sleep[] = {
    STRF("stage", 1, "awake, light, deep, rem, asleep, in_bed"),
};
static const struct am_field f_workout[] = {
    STRF("kind", 0, "running, cycling, strength, ..."),
    NUM("calories", 0, 0, 1e6, "kcal", "energy"),
    NUM("distance", 0, 0, 1e8, "m", "distance"),
};
static const struct am_field f_weight[] = {
    NUM("kg", 1, 0, 1000, "kg", "body mass"),
    NUM("fat_percent", 0, 0, 100, "%", "body fat"),
};
static const struct am_field f_stress[] = {
    NUM("level", 1, 0, 100, NULL, "stress score"),
};
static const struct am_field f_temp[] = {
    NUM("celsius", 1, -100, 100, "degC", "temperature"),
};
static const struct am_field f_wave[] = {
    NUM("rate_hz", 0, 0, 1e6, "Hz", "sample rate"),
    ARR("channels", 0, "channel names"),
    ARR("samples", 0, "samples (channel-major), or a blob for compressed blocks"),
    STRF("unit", 0, "unit of the samples (uV, uS)"),
};
static const struct am_field f_audio[] = {
    NUM("duration", 0, 0, 1e6, "s", "length"),
    STRF("codec", 0, "wav, opus, webm, mp3, flac"),
    INTF("sample_rate", 0, 0, 1e7, "Hz", "sample rate"),
};
static const struct am_field f_text[] = {
    TEXT("text", 1, "the text"),
    STRF("language", 0, "BCP 47 language tag"),
    NUM("confidence", 0, 0, 1, NULL, "0..1"),
    INTF("source_event", 0, 0, 9.2e18, NULL, "event this was derived from"),
};
static const struct am_field f_image[] = {
    INTF("width", 0, 0, 1e6, "px", "width"),
    INTF("height", 0, 0, 1e6, "px", "height"),
    STRF("app", 0, "foreground app when captured"),
};
static const struct am_field f_video[] = {
    NUM("duration", 0, 0, 1e7, "s", "length"),
    NUM("offset", 0, 0, 1e7, "s", "offset of a frame in its clip"),
};
static const struct am_field f_screen[] = {
    STRF("state", 1, "on, off, locked, unlocked"),
};
static const struct am_field f_lifecycle[] = {
    STRF("app", 1, "package or application name"),
    STRF("event", 1, "launch, foreground, background, close"),
    STRF("title", 0, "window or activity title"),
};
static const struct am_field f_usage[] = {
    STRF("app", 1, "package or application name"),
    STRF("title", 0, "window title"),
};
static const struct am_field f_notification[] = {
    STRF("app", 1, "posting app"),
    STRF("title", 0, "title"),
    TEXT("text", 0, "body"),
};
static const struct am_field f_battery[] = {
    NUM("level", 1, 0, 100, "%", "charge"),
    BOOLF("charging", "plugged in"),
};
static const struct am_field f_network[] = {
    STRF("type", 0, "wifi, cellular, ethernet, none"),
    STRF("ssid", 0, "wifi network"),
    BOOLF("vpn", "VPN active"),
};
static const struct am_field f_system[] = {
    NUM("cpu_percent", 0, 0, 100000, "%", "CPU use (100 per core)"),
    NUM("memory_used", 0, 0, 1e15, "bytes", "memory in use"),
    NUM("disk_free", 0, 0, 1e18, "bytes", "free disk"),
};
static const struct am_field f_clip[] = {
    TEXT("text", 1, "copied text"),
};
static const struct am_field f_keyboard[] = {
    INTF("keys", 1, 0, 1e9, NULL, "key presses in the interval (never the keys)"),
};
static const struct am_field f_window[] = {
    STRF("app", 1, "application"),
    STRF("title", 0, "window title"),
    STRF("url", 0, "browser URL"),
};
static const struct am_field f_afk[] = {
    STRF("status", 1, "afk or not-afk"),
};
static const struct am_field f_email[] = {
    STRF("from", 0, "sender"),
    ARR("to", 0, "recipients"),
    STRF("subject", 0, "subject"),
    TEXT("body", 0, "text body"),
    STRF("message_id", 0, "Message-ID"),
    STRF("thread", 0, "thread id"),
};
static const struct am_field f_message[] = {
    TEXT("text", 0, "message text"),
    STRF("from", 0, "sender"),
    STRF("to", 0, "recipient or chat"),
    STRF("app", 0, "sms, telegram, whatsapp, ..."),
};
static const struct am_field f_call[] = {
    STRF("contact", 0, "name or number"),
    STRF("direction", 0, "incoming, outgoing, missed"),
    NUM("duration", 0, 0, 1e7, "s", "length"),
};
static const struct am_field f_cal[] = {
    STRF("uid", 1, "iCalendar UID"),
    STRF("title", 0, "summary"),
    STRF("location", 0, "location"),
    ARR("attendees", 0, "attendees"),
    TEXT("description", 0, "description"),
};
static const struct am_field f_todo[] = {
    STRF("uid", 1, "iCalendar UID"),
    STRF("title", 0, "summary"),
    BOOLF("completed", "done"),
};
static const struct am_field f_visit[] = {
    STRF("url", 1, "URL"),
    STRF("title", 0, "page title"),
};
static const struct am_field f_search[] = {
    STRF("query", 1, "what was searched"),
    STRF("engine", 0, "search engine"),
};
static const struct am_field f_weather[] = {
    NUM("celsius", 0, -100, 100, "degC", "temperature"),
    STRF("condition", 0, "condition"),
};
static const struct am_field f_finance[] = {
    NUM("amount", 1, -1e15, 1e15, NULL, "amount"),
    STRF("currency", 0, "ISO 4217"),
    STRF("description", 0, "description"),
};
static const struct am_field f_feed[] = {
    STRF("title", 0, "title"),
    STRF("url", 0, "link"),
    TEXT("text", 0, "text"),
    STRF("feed", 0, "feed or platform"),
};
static const struct am_field f_embedding[] = {
    STRF("model", 1, "model id"),
    INTF("dim", 0, 1, 65536, NULL, "dimension"),
    ARR("vector", 0, "the vector"),
};
static const struct am_field f_memory[] = {
    TEXT("statement", 1, "what AM believes"),
    STRF("kind", 0, "fact, preference, routine, relationship, event"),
    NUM("confidence", 0, 0, 1, NULL, "0..1"),
    ARR("evidence", 0, "event ids"),
    STRF("status", 0, "inferred, confirmed, edited, rejected"),
};
static const struct am_field f_nudge[] = {
    STRF("title", 1, "headline"),
    TEXT("body", 0, "text"),
    STRF("reason", 0, "why it was sent"),
    ARR("evidence", 0, "event ids"),
};
static const struct am_field f_feedback[] = {
    INTF("target", 1, 0, 9.2e18, NULL, "event the feedback is about"),
    STRF("rating", 1, "useful, not_useful, snooze, confirm, reject, edit"),
};
static const struct am_field f_analysis[] = {
    TEXT("summary", 0, "summary by the chat model"),
    OBJ("entities", 0, "people, places, organisations, topics"),
    ARR("urls", 0, "URLs found"),
    ARR("emails", 0, "email addresses found"),
    ARR("phones", 0, "phone numbers found"),
    ARR("dates", 0, "dates found"),
    ARR("amounts", 0, "money amounts found"),
    INTF("source_event", 1, 0, 9.2e18, NULL, "event the text came from"),
};
static const struct am_field f_model_call[] = {
    STRF("signature", 1, "the signature called (InferMemory, DecideNudge, ...)"),
    STRF("model", 0, "model name"),
    STRF("outcome", 1, "ok, invalid, failed"),
    NUM("latency_ms", 0, 0, 1e9, "ms", "time the call took"),
    INTF("prompt_version", 0, 0, 1e9, NULL, "version of the rendered prompt"),
    STRF("error", 0, "why it failed"),
};
static const struct am_field f_derived[] = {
    TEXT("text", 0, "description"),
    ARR("evidence", 0, "event ids"),
};

#define S(name, ret, span, blob, fields, doc)                                                      \
    {name, doc, ret, span, blob, fields, sizeof fields / sizeof fields[0]}
#define FOREVER AM_RETAIN_FOREVER
#define SUMMARY AM_RETAIN_DAYS_THEN_SUMMARY
#define BLOBS AM_RETAIN_BLOB_POLICY

static const struct am_stream_def catalog[] = {
    S("location.gps", FOREVER, 0, 0, f_gps, "GPS fixes"),
    S("location.place", FOREVER, 1, 0, f_place, "visits and trips (derived)"),
    S("location.wifi", FOREVER, 0, 0, f_wifi, "Wi-Fi scans"),
    S("motion.accel", SUMMARY, 0, 0, f_xyz, "accelerometer"),
    S("motion.gyro", SUMMARY, 0, 0, f_xyz, "gyroscope"),
    S("motion.magnet", SUMMARY, 0, 0, f_xyz, "magnetometer"),
    S("motion.activity", FOREVER, 1, 0, f_activity, "activity recognition"),
    S("motion.steps", FOREVER, 1, 0, f_steps, "step counter"),
    S("health.heart_rate", FOREVER, 0, 0, f_hr, "heart rate"),
    S("health.hrv", FOREVER, 0, 0, f_hrv, "heart rate variability"),
    S("health.spo2", FOREVER, 0, 0, f_spo2, "blood oxygen"),
    S("health.sleep", FOREVER, 1, 0, f_sleep, "sleep stages as spans"),
    S("health.steps", FOREVER, 1, 0, f_steps, "daily or interval steps"),
    S("health.workout", FOREVER, 1, 0, f_workout, "workouts"),
    S("health.weight", FOREVER, 0, 0, f_weight, "body weight"),
    S("health.stress", FOREVER, 0, 0, f_stress, "stress score"),
    S("health.temperature", FOREVER, 0, 0, f_temp, "body temperature"),
    S("health.ecg", SUMMARY, 1, 1, f_wave, "ECG in uV, 125-500 Hz"),
    S("signal.eeg", SUMMARY, 1, 1, f_wave, "EEG blocks, channels x samples in uV"),
    S("signal.emg", SUMMARY, 1, 1, f_wave, "EMG blocks"),
    S("signal.gsr", SUMMARY, 1, 0, f_wave, "skin conductance"),
    S("audio.chunk", BLOBS, 1, 1, f_audio, "audio recording (blob)"),
    S("audio.transcript", FOREVER, 1, 0, f_text, "speech to text (derived)"),
    S("image.photo", BLOBS, 0, 1, f_image, "photo (blob)"),
    S("image.screenshot", BLOBS, 0, 1, f_image, "screenshot (blob)"),
    S("image.ocr", FOREVER, 0, 0, f_text, "text read from an image (derived)"),
    S("image.caption", FOREVER, 0, 0, f_text, "image description (derived)"),
    S("video.clip", BLOBS, 1, 1, f_video, "video (blob)"),
    S("video.frame", BLOBS, 0, 1, f_video, "key frame of a clip (derived)"),
    S("screen.state", FOREVER, 0, 0, f_screen, "screen on/off/locked"),
    S("screen.text", FOREVER, 0, 0, f_text, "text on screen"),
    S("app.lifecycle", FOREVER, 0, 0, f_lifecycle, "app launch/foreground/background/close"),
    S("app.usage", FOREVER, 1, 0, f_usage, "app usage spans"),
    S("app.notification", FOREVER, 0, 0, f_notification, "notifications"),
    S("device.battery", FOREVER, 0, 0, f_battery, "battery level"),
    S("device.network", FOREVER, 0, 0, f_network, "network state"),
    S("device.system", SUMMARY, 0, 0, f_system, "CPU, memory, disk"),
    S("device.clipboard", FOREVER, 0, 0, f_clip, "copied text"),
    S("device.keyboard", FOREVER, 1, 0, f_keyboard, "typing counts"),
    S("desktop.window", FOREVER, 1, 0, f_window, "active window (ActivityWatch)"),
    S("desktop.afk", FOREVER, 1, 0, f_afk, "idle spans (ActivityWatch)"),
    S("comms.email", FOREVER, 0, 0, f_email, "email"),
    S("comms.message", FOREVER, 0, 0, f_message, "chat, SMS, social messages"),
    S("comms.call", FOREVER, 1, 0, f_call, "phone calls"),
    S("calendar.event", FOREVER, 1, 0, f_cal, "calendar events (recurrences expanded)"),
    S("calendar.todo", FOREVER, 0, 0, f_todo, "tasks"),
    S("web.visit", FOREVER, 0, 0, f_visit, "page visits"),
    S("web.search", FOREVER, 0, 0, f_search, "searches"),
    S("external.weather", FOREVER, 0, 0, f_weather, "weather"),
    S("external.finance", FOREVER, 0, 0, f_finance, "transactions"),
    S("external.feed", FOREVER, 0, 0, f_feed, "RSS/Atom items"),
    S("external.social", FOREVER, 0, 0, f_feed, "posts and likes"),
    S("derived.embedding", FOREVER, 0, 0, f_embedding, "text embeddings"),
    S("derived.summary", FOREVER, 1, 0, f_text, "summaries"),
    S("derived.analysis", FOREVER, 0, 0, f_analysis, "what text analysis found in an event"),
    S("derived.habit", FOREVER, 0, 0, f_derived, "habits and routines"),
    S("derived.anomaly", FOREVER, 0, 0, f_derived, "anomalies"),
    S("derived.correlation", FOREVER, 0, 0, f_derived, "correlations"),
    S("derived.memory", FOREVER, 0, 0, f_memory, "inferred memories"),
    S("derived.nudge", FOREVER, 0, 0, f_nudge, "nudges sent"),
    S("derived.feedback", FOREVER, 0, 0, f_feedback, "feedback on nudges and memories"),
    S("derived.model_call", FOREVER, 0, 0, f_model_call, "calls to language models (a log)"),
};
#define N_CATALOG (sizeof catalog / sizeof catalog[0])

const struct am_stream_def *am_catalog_all(size_t *n) {
    *n = N_CATALOG;
    return catalog;
}

const struct am_stream_def *am_catalog_find(const char *stream) {
    for (size_t i = 0; i < N_CATALOG; i++)
        if (strcmp(catalog[i].name, stream) == 0)
            return &catalog[i];
    return NULL;
}

const char *am_retention_name(enum am_retention r) {
    switch (r) {
    case AM_RETAIN_FOREVER: return "raw-forever";
    case AM_RETAIN_DAYS_THEN_SUMMARY: return "raw-days-then-summary";
    case AM_RETAIN_BLOB_POLICY: return "blob-policy";
    }
    return "raw-forever";
}

int am_stream_name_valid(const char *name, size_t len) {
    if (len < 3 || len > AM_STREAM_MAX)
        return 0;
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '.') {
            if (i == 0 || i == len - 1 || name[i - 1] == '.')
                return 0;
            dots++;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return 0;
        }
    }
    return dots >= 1 && name[0] >= 'a' && name[0] <= 'z';
}

static const char *type_name(enum am_field_type t) {
    static const char *names[] = {"number", "integer", "string", "boolean", "object", "array"};
    return names[t];
}

static am_rc check_field(const struct am_field *f, const json_t *v, char *reason,
                         size_t reason_len) {
    int has_range = f->min <= f->max;
    switch (f->type) {
    case AM_F_NUMBER:
    case AM_F_INTEGER: {
        if (f->type == AM_F_INTEGER ? !json_is_integer(v) : !json_is_number(v))
            goto bad_type;
        double d = json_number_value(v);
        if (!isfinite(d)) {
            snprintf(reason, reason_len, "payload.%s: must be a finite number", f->name);
            return AM_EINVAL;
        }
        if (has_range && (d < f->min || d > f->max)) {
            snprintf(reason, reason_len, "payload.%s: %g is outside %g..%g%s%s", f->name, d,
                     f->min, f->max, f->unit ? " " : "", f->unit ? f->unit : "");
            return AM_EINVAL;
        }
        return AM_OK;
    }
    case AM_F_STRING:
        if (!json_is_string(v))
            goto bad_type;
        if (has_range && json_string_length(v) > (size_t)f->max) {
            snprintf(reason, reason_len, "payload.%s: longer than %.0f bytes", f->name, f->max);
            return AM_EINVAL;
        }
        return AM_OK;
    case AM_F_BOOL:
        if (!json_is_boolean(v))
            goto bad_type;
        return AM_OK;
    case AM_F_OBJECT:
        if (!json_is_object(v))
            goto bad_type;
        return AM_OK;
    case AM_F_ARRAY:
        if (!json_is_array(v))
            goto bad_type;
        return AM_OK;
    }
bad_type:
    snprintf(reason, reason_len, "payload.%s: must be %s %s", f->name,
             f->type == AM_F_INTEGER || f->type == AM_F_ARRAY ? "an" : "a", type_name(f->type));
    return AM_EINVAL;
}

am_rc am_catalog_validate(const char *stream, const json_t *payload, char *reason,
                          size_t reason_len) {
    if (!json_is_object(payload)) {
        snprintf(reason, reason_len, "payload: must be an object");
        return AM_EINVAL;
    }
    if (strncmp(stream, "custom.", 7) == 0)
        return AM_OK;
    const struct am_stream_def *d = am_catalog_find(stream);
    if (!d) {
        snprintf(reason, reason_len, "stream '%s' is not in the catalog (use custom.* for your own)",
                 stream);
        return AM_EINVAL;
    }
    for (size_t i = 0; i < d->n_fields; i++) {
        const struct am_field *f = &d->fields[i];
        const json_t *v = json_object_get(payload, f->name);
        if (!v || json_is_null(v)) {
            if (f->required) {
                snprintf(reason, reason_len, "payload.%s: required for %s", f->name, stream);
                return AM_EINVAL;
            }
            continue;
        }
        if (check_field(f, v, reason, reason_len) != AM_OK)
            return AM_EINVAL;
    }
    return AM_OK;
}

json_t *am_catalog_to_json(const struct am_stream_def *d) {
    json_t *fields = json_array();
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b}", "name", d->name, "doc", d->doc,
                          "retention", am_retention_name(d->retention), "span", d->span, "blob",
                          d->blob);
    if (!fields || !o)
        goto fail;
    for (size_t i = 0; i < d->n_fields; i++) {
        const struct am_field *f = &d->fields[i];
        json_t *jf = json_pack("{s:s, s:s, s:b, s:s}", "name", f->name, "type",
                               type_name(f->type), "required", f->required, "doc", f->doc);
        if (!jf)
            goto fail;
        if (f->unit)
            json_object_set_new(jf, "unit", json_string(f->unit));
        if (f->min <= f->max && f->type != AM_F_STRING) {
            json_object_set_new(jf, "min", json_real(f->min));
            json_object_set_new(jf, "max", json_real(f->max));
        }
        if (json_array_append_new(fields, jf))
            goto fail;
    }
    if (json_object_set_new(o, "fields", fields))
        goto fail_o;
    return o;
fail:
    json_decref(fields);
fail_o:
    json_decref(o);
    return NULL;
}
