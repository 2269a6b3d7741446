/* config.c — the one table of settings: defaults, file, environment, command line,
 * --help and --check-config all come from it. */
#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum setting_type { S_STR, S_INT };

struct setting {
    const char *name;
    enum setting_type type;
    size_t offset;
    size_t size; /* for strings: the field's capacity */
    const char *def;
    int64_t min, max;
    int secret;
    const char *doc;
};

#define STR(f, def, doc)                                                                           \
    { #f, S_STR, offsetof(struct am_config, f), sizeof(((struct am_config *)0)->f), def, 0, 0, 0, doc }
#define SECRET(f, def, doc)                                                                        \
    { #f, S_STR, offsetof(struct am_config, f), sizeof(((struct am_config *)0)->f), def, 0, 0, 1, doc }
#define INT(f, def, lo, hi, doc)                                                                   \
    { #f, S_INT, offsetof(struct am_config, f), sizeof(int64_t), def, lo, hi, 0, doc }

static const struct setting settings[] = {
    STR(data_dir, "./data", "directory holding the database, blobs and nothing else"),
    STR(listen, "127.0.0.1:8686", "HOST:PORT the HTTP/WebSocket server listens on"),
    STR(log_level, "info", "debug, info, warn or error"),
    STR(config_file, "", "optional file of 'name = value' lines"),
    STR(store, "sqlite", "storage backend: sqlite"),
    STR(bus, "inproc", "notice bus backend: inproc"),
    INT(http_threads, "128", 17, 4096,
        "HTTP worker threads; each open WebSocket holds one, and 16 stay for plain HTTP"),
    INT(max_body_bytes, "16777216", 1024, 1LL << 34, "largest events request body"),
    INT(max_batch_events, "10000", 1, 1000000, "most events in one request"),
    INT(max_json_depth, "32", 2, 1000, "deepest JSON nesting accepted"),
    INT(max_payload_bytes, "262144", 64, 1LL << 30, "largest payload of one event"),
    INT(max_blob_bytes, "1073741824", 1, 1LL << 40, "largest blob upload"),
    INT(rate_limit_per_s, "1000", 0, 1000000000, "requests per second per token (0: no limit)"),
    INT(rate_limit_burst, "2000", 1, 1000000000, "requests a token may make in a burst"),
    INT(ws_max_frame_bytes, "4194304", 1024, 1LL << 30, "largest WebSocket message"),
    INT(group_commit_max_events, "20000", 1, 10000000, "most events in one transaction"),
    /* the enrichment pipeline */
    INT(workers, "0", 0, 256, "pipeline worker threads (0: one per core)"),
    STR(pipeline, "ocr,stt,frames,analyze,embed",
        "jobs new events get (ocr, stt, frames, caption, analyze, embed); caption is added"
        " when vision_url is set"),
    INT(job_max_attempts, "5", 1, 100, "attempts before a job goes to the dead letters"),
    INT(job_backoff_ms, "2000", 1, 86400000, "first retry delay; doubles each attempt, with jitter"),
    INT(job_backoff_max_ms, "600000", 1, 86400000, "longest retry delay"),
    INT(job_lease_s, "900", 1, 86400, "a claimed job not finished by then is claimed again"),
    STR(ocr_lang, "eng", "tesseract languages, e.g. eng+deu"),
    STR(tessdata_dir, "", "tesseract data directory (empty: the system's)"),
    STR(stt_backend, "pocketsphinx", "speech-to-text: pocketsphinx, openai or none"),
    STR(stt_model_dir, "/usr/share/pocketsphinx/model/en-us", "pocketsphinx model directory"),
    STR(stt_url, "", "OpenAI-compatible transcription server (stt_backend = openai)"),
    STR(stt_model, "whisper-1", "transcription model name"),
    INT(max_audio_s, "14400", 1, 1000000, "longest audio transcribed, in seconds"),
    STR(chat_url, "", "OpenAI-compatible chat server for summaries and entities (empty: none)"),
    STR(chat_model, "", "chat model name"),
    STR(vision_url, "", "OpenAI-compatible vision server for image captions (empty: none)"),
    STR(vision_model, "", "vision model name"),
    STR(embed_url, "", "OpenAI-compatible embeddings server (empty: the built-in embedder)"),
    STR(embed_model, "", "embedding model name (empty: the built-in am-hash-v1)"),
    INT(embed_dim, "256", 8, 4096, "dimension of the built-in embedder"),
    INT(embed_batch, "32", 1, 2048, "texts per embeddings request"),
    SECRET(model_api_key, "", "Bearer key for the model servers"),
    INT(model_timeout_ms, "120000", 100, 3600000, "time limit of one model request"),
    INT(model_retries, "3", 0, 20, "retries of a failed model request inside one job attempt"),
    INT(model_rate_per_s, "0", 0, 100000, "requests per second to one model server (0: no limit)"),
    INT(video_frame_interval_s, "10", 1, 86400, "a key frame at least this often"),
    INT(video_scene_percent, "3", 1, 100, "picture change (percent) that makes a key frame"),
    INT(video_max_frames, "500", 1, 100000, "most key frames taken from one clip"),
    /* sources */
    STR(mqtt_url, "", "MQTT broker to subscribe to, mqtt://HOST:PORT (empty: none)"),
    STR(mqtt_username, "", "MQTT user name"),
    SECRET(mqtt_password, "", "MQTT password"),
    STR(mqtt_client_id, "amd", "MQTT client id (a persistent session keeps QoS 1 messages)"),
    STR(mqtt_topics, "am/+/+,owntracks/#", "topics subscribed: am/<user>/<stream> and"
        " owntracks/<user>/<device>[/event...]"),
    INT(import_batch_events, "5000", 1, 100000, "events per commit when importing"),
    /* the agent and its nudges */
    INT(agent_tick_s, "30", 0, 86400, "how often the agent's triggers run (0: only on request)"),
    INT(utc_offset_min, "0", -840, 840, "the person's time zone, minutes east of UTC (quiet"
        " hours and the daily budget follow it)"),
    STR(nudge_quiet_hours, "22-7", "local hours without nudges, FROM-TO (empty: none)"),
    INT(nudge_budget_per_day, "6", 0, 1000, "most nudges a day"),
    INT(nudge_cooldown_min, "30", 0, 100000, "least minutes between two nudges of one kind"),
    INT(nudge_calendar_lead_min, "15", 1, 1440, "how long before a calendar event it is"
        " mentioned"),
    STR(notify_webhook_url, "", "POST every nudge as JSON to this URL (empty: no webhook)"),
    STR(notify_ntfy_url, "", "ntfy topic URL nudges are published to (empty: none)"),
    STR(notify_gotify_url, "", "Gotify server URL nudges are sent to (empty: none)"),
    SECRET(notify_gotify_token, "", "Gotify application token"),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static const struct setting *find(const char *name) {
    char norm[64];
    size_t i;
    for (i = 0; name[i] && i < sizeof norm - 1; i++)
        norm[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)name[i]);
    norm[i] = '\0';
    for (size_t k = 0; k < N_SETTINGS; k++)
        if (strcmp(settings[k].name, norm) == 0)
            return &settings[k];
    return NULL;
}

static am_rc apply(struct am_config *c, const struct setting *s, const char *value, char *err,
                   size_t err_len) {
    char *field = (char *)c + s->offset;
    if (s->type == S_STR) {
        size_t n = strlen(value);
        if (n >= s->size) {
            snprintf(err, err_len, "%s: value longer than %zu bytes", s->name, s->size - 1);
            return AM_EINVAL;
        }
        memcpy(field, value, n + 1);
        return AM_OK;
    }
    errno = 0;
    char *end;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < s->min || v > s->max) {
        snprintf(err, err_len, "%s: '%s' is not an integer in %lld..%lld", s->name, value,
                 (long long)s->min, (long long)s->max);
        return AM_EINVAL;
    }
    memcpy(field, &(int64_t){v}, sizeof(int64_t));
    return AM_OK;
}

void am_config_defaults(struct am_config *c) {
    char err[128];
    memset(c, 0, sizeof *c);
    for (size_t k = 0; k < N_SETTINGS; k++)
        apply(c, &settings[k], settings[k].def, err, sizeof err);
}

am_rc am_config_set(struct am_config *c, const char *name, const char *value, char *err,
                    size_t err_len) {
    const struct setting *s = find(name);
    if (!s) {
        snprintf(err, err_len, "unknown setting '%s'", name);
        return AM_EINVAL;
    }
    return apply(c, s, value, err, err_len);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

am_rc am_config_load_file(struct am_config *c, const char *path, char *err, size_t err_len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return AM_EIO;
    }
    char line[1024];
    int lineno = 0;
    am_rc rc = AM_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
            snprintf(err, err_len, "%s:%d: line longer than %zu bytes", path, lineno,
                     sizeof line - 2);
            rc = AM_EINVAL;
            break;
        }
        char *l = trim(line);
        if (*l == '\0' || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            snprintf(err, err_len, "%s:%d: expected 'name = value'", path, lineno);
            rc = AM_EINVAL;
            break;
        }
        *eq = '\0';
        char sub[256];
        rc = am_config_set(c, trim(l), trim(eq + 1), sub, sizeof sub);
        if (rc) {
            snprintf(err, err_len, "%s:%d: %s", path, lineno, sub);
            break;
        }
    }
    fclose(f);
    return rc;
}

am_rc am_config_load_env(struct am_config *c, char *err, size_t err_len) {
    for (size_t k = 0; k < N_SETTINGS; k++) {
        char env[80] = "AM_";
        size_t i;
        for (i = 0; settings[k].name[i] && i + 4 < sizeof env; i++)
            env[3 + i] = (char)toupper((unsigned char)settings[k].name[i]);
        env[3 + i] = '\0';
        const char *v = getenv(env);
        if (v && apply(c, &settings[k], v, err, err_len) != AM_OK)
            return AM_EINVAL;
    }
    return AM_OK;
}

void am_config_print_help(const struct am_config *defaults, void *file) {
    (void)defaults;
    FILE *f = file;
    fprintf(f, "Settings (command line --name VALUE, environment AM_NAME, or 'name = value' in "
               "--config-file):\n");
    for (size_t k = 0; k < N_SETTINGS; k++) {
        char opt[64];
        snprintf(opt, sizeof opt, "--%s", settings[k].name);
        for (char *p = opt + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(f, "  %-28s %s (default: %s)\n", opt, settings[k].doc, settings[k].def);
    }
}

void am_config_print(const struct am_config *c, void *file) {
    FILE *f = file;
    for (size_t k = 0; k < N_SETTINGS; k++) {
        const char *field = (const char *)c + settings[k].offset;
        if (settings[k].secret)
            fprintf(f, "%s = ****\n", settings[k].name);
        else if (settings[k].type == S_STR)
            fprintf(f, "%s = %s\n", settings[k].name, field);
        else {
            int64_t v;
            memcpy(&v, field, sizeof v);
            fprintf(f, "%s = %lld\n", settings[k].name, (long long)v);
        }
    }
}
