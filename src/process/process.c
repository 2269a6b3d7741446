/* process.c — the pipeline's worker pool. Each worker claims ready jobs from the store
 * (one kind at a time, round robin, so a backlog of one kind cannot starve the others),
 * runs them, stores what they derive through am_ingest_submit, and records the outcome.
 * Idle workers only read (is anything ready, and when?) and sleep until the store says
 * a commit wrote jobs or the next retry falls due: an idle amd writes nothing. */
#include "process_internal.h"
#include "../ingest/ingest.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLAIM 64
/* Job latency buckets (seconds, from the event's commit to the job's outcome). */
static const double lat_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800};
#define N_LAT (sizeof lat_bounds / sizeof lat_bounds[0])

struct kind_metrics {
    int64_t done, retried, dead;
    int64_t lat_count[N_LAT + 1];
    double lat_sum, run_sum;
};

struct am_process {
    struct am_server *srv;
    const struct am_config *cfg;
    unsigned kinds;
    int n_workers;
    pthread_t *threads;
    struct worker *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t generation; /* bumped whenever a commit wrote jobs */
    int stopping;
    struct kind_metrics m[AM_JOB_KINDS];
    struct am_model_cfg chat, vision, embed, stt;
    char embed_model[128];
    int embed_builtin;
};

struct worker {
    struct am_process *p;
    int index;
    int next_kind;
    struct am_ocr *ocr;
    struct am_sphinx *sphinx;
    struct am_oai *oai;
};

/* ---------------------------------------------------------------- helpers */

static void on_jobs(void *arg) {
    struct am_process *p = arg;
    pthread_mutex_lock(&p->lock);
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

static int64_t rand_unit_ppm(void) {
    uint32_t r;
    am_random_bytes(&r, sizeof r);
    return (int64_t)(r % 1000000u);
}

/* Exponential backoff with jitter: base * 2^(attempt-1), capped, times 0.5..1.5. */
static int64_t backoff_ns(const struct am_config *cfg, int attempt) {
    double ms = (double)cfg->job_backoff_ms * pow(2.0, attempt > 1 ? attempt - 1 : 0);
    if (ms > (double)cfg->job_backoff_max_ms)
        ms = (double)cfg->job_backoff_max_ms;
    ms *= 0.5 + (double)rand_unit_ppm() / 1e6;
    return (int64_t)(ms * 1e6);
}

/* Builds a derived event from JSON the way a client's is checked, so derived data obeys
 * the catalog too, and submits it. */
static am_rc submit_derived(struct am_process *p, int64_t user_id, json_t *obj, char *err,
                            size_t err_len) {
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {.max_depth = (size_t)p->cfg->max_json_depth,
                            .max_payload_bytes = (size_t)p->cfg->max_payload_bytes};
    char reason[256];
    memset(&e, 0, sizeof e);
    am_rc rc = am_event_from_json(obj, user_id, &lim, &e, reason, sizeof reason);
    if (rc != AM_OK) {
        snprintf(err, err_len, "derived event refused: %s", reason);
        return rc;
    }
    rc = am_ingest_submit(p->srv, user_id, &e, 1, &res);
    if (rc == AM_OK && res.status == AM_ITEM_REJECTED) {
        snprintf(err, err_len, "derived event rejected: %s", res.reason);
        rc = AM_EINVAL;
    } else if (rc != AM_OK) {
        snprintf(err, err_len, "storing the derived event: %s", am_strerror(rc));
    }
    am_event_clear(&e);
    return rc;
}

/* The common part of a derived event: the input's time, source and trace, a key made
 * of the input and the job (so a rerun is absorbed as a duplicate). */
static json_t *derived_base(const struct am_event *in, const char *stream, const char *key,
                            json_t *payload) {
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o}", "stream", stream, "source", in->source,
                          "ts_ns", (json_int_t)in->ts_ns, "key", key, "payload", payload);
    if (o && in->trace[0])
        json_object_set_new(o, "trace", json_string(in->trace));
    return o;
}

/* ---------------------------------------------------------------- handlers
 * Each returns AM_OK (done), AM_EINVAL (the input can never succeed: dead at once), or
 * another code (worth retrying). err says why. */

static am_rc blob_file(struct am_process *p, const struct am_event *e, char *path, size_t len,
                       char *err, size_t err_len) {
    if (!e->blob[0]) {
        snprintf(err, err_len, "event %lld has no blob", (long long)e->id);
        return AM_EINVAL;
    }
    am_rc rc = am_blob_path(p->cfg->data_dir, e->blob, path, len);
    if (rc != AM_OK)
        snprintf(err, err_len, "blob %s is missing from the data directory", e->blob);
    return rc == AM_ENOTFOUND ? AM_EIO : rc;
}

static am_rc job_ocr(struct worker *w, const struct am_job *j, const struct am_event *e,
                     char *err, size_t err_len) {
    struct am_process *p = w->p;
    char path[700], key[AM_KEY_MAX + 1];
    am_rc rc = blob_file(p, e, path, sizeof path, err, err_len);
    if (rc != AM_OK)
        return rc;
    if (!w->ocr && (rc = am_ocr_new(p->cfg->tessdata_dir, p->cfg->ocr_lang, &w->ocr, err,
                                    err_len)) != AM_OK)
        return rc;
    json_t *payload = NULL;
    int screen = strcmp(e->stream, "image.screenshot") == 0;
    rc = am_ocr_image(w->ocr, path, screen, 100000000, 4000, &payload, err, err_len);
    if (rc != AM_OK)
        return rc;
    /* Nothing legible is an answer too: the job is done, no event says so. */
    const char *text = json_string_value(json_object_get(payload, "text"));
    size_t tl = text ? strlen(text) : 0;
    while (tl && (text[tl - 1] == '\n' || text[tl - 1] == ' '))
        tl--;
    if (tl == 0) {
        json_decref(payload);
        return AM_OK;
    }
    json_object_set_new(payload, "source_event", json_integer(e->id));
    /* Word boxes are for highlighting; when they would make the payload too big, the
     * text alone is kept. */
    char *dump = am_json_dump(payload, NULL);
    if (dump && strlen(dump) > (size_t)p->cfg->max_payload_bytes)
        json_object_del(payload, "words");
    am_free(dump);
    snprintf(key, sizeof key, "d:ocr:%lld", (long long)e->id);
    json_t *o = derived_base(e, "image.ocr", key, payload);
    if (!o)
        return AM_ENOMEM;
    json_object_set_new(o, "blob", json_string(e->blob));
    rc = submit_derived(p, j->user_id, o, err, err_len);
    json_decref(o);
    return rc;
}

/* A WAV header in front of 16 kHz mono PCM, for servers that take a file. */
static am_rc write_wav(const char *path, const int16_t *pcm, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return AM_EIO;
    uint32_t data = (uint32_t)(n * 2), riff = 36 + data, rate = AM_AUDIO_RATE,
             byte_rate = AM_AUDIO_RATE * 2, fmt_len = 16;
    uint16_t pcm_fmt = 1, channels = 1, align = 2, bits = 16;
    int ok = fwrite("RIFF", 1, 4, f) == 4 && fwrite(&riff, 4, 1, f) == 1 &&
             fwrite("WAVEfmt ", 1, 8, f) == 8 && fwrite(&fmt_len, 4, 1, f) == 1 &&
             fwrite(&pcm_fmt, 2, 1, f) == 1 && fwrite(&channels, 2, 1, f) == 1 &&
             fwrite(&rate, 4, 1, f) == 1 && fwrite(&byte_rate, 4, 1, f) == 1 &&
             fwrite(&align, 2, 1, f) == 1 && fwrite(&bits, 2, 1, f) == 1 &&
             fwrite("data", 1, 4, f) == 4 && fwrite(&data, 4, 1, f) == 1 &&
             fwrite(pcm, 2, n, f) == n;
    ok = fclose(f) == 0 && ok;
    return ok ? AM_OK : AM_EIO;
}

static am_rc transcribe_span(struct worker *w, const int16_t *pcm, size_t n, char **text,
                             double *conf, char *err, size_t err_len) {
    struct am_process *p = w->p;
    if (!strcmp(p->cfg->stt_backend, "openai")) {
        char tmp[700];
        snprintf(tmp, sizeof tmp, "%s/tmp/stt-%d-%lld.wav", p->cfg->data_dir, w->index,
                 (long long)am_mono_ns());
        am_rc rc = write_wav(tmp, pcm, n);
        if (rc != AM_OK) {
            snprintf(err, err_len, "stt: cannot write %s", tmp);
            return rc;
        }
        struct am_transcript_seg *segs = NULL;
        size_t n_segs = 0;
        char lang[32] = "";
        if (!w->oai && (rc = am_oai_new(&w->oai)) != AM_OK) {
            unlink(tmp);
            return rc;
        }
        rc = am_oai_transcribe(w->oai, &p->stt, tmp, text, &segs, &n_segs, lang, sizeof lang,
                               err, err_len);
        unlink(tmp);
        am_transcript_free(segs, n_segs);
        *conf = 0.9; /* such servers give no overall confidence */
        /* A model server that refuses is a backend failure, not a bad recording. */
        return rc == AM_EINVAL ? AM_EBACKEND : rc;
    }
    if (!w->sphinx) {
        am_rc rc = am_sphinx_new(p->cfg->stt_model_dir, &w->sphinx);
        if (rc != AM_OK) {
            snprintf(err, err_len, "stt: pocketsphinx cannot load its model from %s",
                     p->cfg->stt_model_dir);
            return AM_EBACKEND;
        }
    }
    return am_sphinx_transcribe(w->sphinx, pcm, n, text, conf);
}

static am_rc job_stt(struct worker *w, const struct am_job *j, const struct am_event *e,
                     char *err, size_t err_len) {
    struct am_process *p = w->p;
    char path[700], key[AM_KEY_MAX + 1];
    int16_t *pcm = NULL;
    size_t n = 0, n_spans = 0;
    struct am_span *spans = NULL;
    am_rc rc = blob_file(p, e, path, sizeof path, err, err_len);
    if (rc != AM_OK)
        return rc;
    if (!strcmp(p->cfg->stt_backend, "none"))
        return AM_OK;
    if ((rc = am_audio_decode(path, (double)p->cfg->max_audio_s, &pcm, &n, err, err_len)) !=
        AM_OK)
        return rc == AM_ELIMIT ? AM_EINVAL : rc;
    if ((rc = am_vad(pcm, n, &spans, &n_spans)) != AM_OK)
        goto out;
    /* One transcript per stretch of speech, at its own time: a search hit can play the
     * recording from the right offset, and silence costs nothing. */
    for (size_t i = 0; i < n_spans && rc == AM_OK; i++) {
        char *text = NULL;
        double conf = 0;
        size_t len = spans[i].end - spans[i].start;
        rc = transcribe_span(w, pcm + spans[i].start, len, &text, &conf, err, err_len);
        if (rc != AM_OK)
            break;
        if (text && text[0]) {
            am_utf8_clean(text);
            double off = (double)spans[i].start / AM_AUDIO_RATE;
            double dur = (double)len / AM_AUDIO_RATE;
            json_t *payload = json_pack(
                "{s:s, s:f, s:s, s:s, s:I, s:f, s:f}", "text", text, "confidence",
                conf < 0 ? 0 : conf > 1 ? 1 : conf, "language", "en", "backend",
                p->cfg->stt_backend, "source_event", (json_int_t)e->id, "offset", off,
                "duration", dur);
            snprintf(key, sizeof key, "d:stt:%lld:%zu", (long long)e->id, i);
            json_t *o = payload ? derived_base(e, "audio.transcript", key, payload) : NULL;
            if (!o) {
                rc = AM_ENOMEM;
            } else {
                int64_t ts = e->ts_ns + (int64_t)(off * 1e9);
                json_object_set_new(o, "ts_ns", json_integer(ts));
                json_object_set_new(o, "ts_end_ns", json_integer(ts + (int64_t)(dur * 1e9)));
                json_object_set_new(o, "blob", json_string(e->blob));
                rc = submit_derived(p, j->user_id, o, err, err_len);
            }
            json_decref(o);
        }
        am_free(text);
    }
out:
    am_free(spans);
    am_free(pcm);
    return rc;
}

struct frame_ctx {
    struct am_process *p;
    const struct am_job *j;
    const struct am_event *e;
    char *err;
    size_t err_len;
    size_t count;
};

/* Each key frame becomes a blob and a video.frame event, which the pipeline then OCRs
 * (and captions) like any image. */
static am_rc on_frame(const uint8_t *png, size_t png_len, int width, int height,
                      double offset_s, void *arg) {
    struct frame_ctx *c = arg;
    struct am_process *p = c->p;
    struct am_blob_upload *u = NULL;
    struct am_blob_info info;
    char key[AM_KEY_MAX + 1];
    am_rc rc = am_blob_upload_begin(p->cfg->data_dir, p->cfg->max_blob_bytes, &u);
    if (rc == AM_OK && (rc = am_blob_upload_write(u, png, png_len)) != AM_OK)
        am_blob_upload_abort(u);
    if (rc == AM_OK)
        rc = am_blob_upload_finish(u, NULL, &info);
    if (rc == AM_OK)
        rc = p->srv->store.ops->blob_add(p->srv->store.impl, c->j->user_id, &info);
    if (rc != AM_OK) {
        snprintf(c->err, c->err_len, "frames: storing a frame: %s", am_strerror(rc));
        return rc;
    }
    json_t *payload = json_pack("{s:f, s:I, s:i, s:i}", "offset", offset_s, "source_event",
                                (json_int_t)c->e->id, "width", width, "height", height);
    snprintf(key, sizeof key, "d:frames:%lld:%lld", (long long)c->e->id,
             (long long)llround(offset_s * 1000));
    json_t *o = payload ? derived_base(c->e, "video.frame", key, payload) : NULL;
    if (!o)
        return AM_ENOMEM;
    json_object_set_new(o, "ts_ns", json_integer(c->e->ts_ns + (int64_t)(offset_s * 1e9)));
    json_object_set_new(o, "blob", json_string(info.sha256));
    rc = submit_derived(p, c->j->user_id, o, c->err, c->err_len);
    json_decref(o);
    c->count++;
    return rc;
}

static am_rc job_frames(struct worker *w, const struct am_job *j, const struct am_event *e,
                        char *err, size_t err_len) {
    struct am_process *p = w->p;
    char path[700];
    am_rc rc = blob_file(p, e, path, sizeof path, err, err_len);
    if (rc != AM_OK)
        return rc;
    struct frame_ctx c = {p, j, e, err, err_len, 0};
    return am_video_frames(path, (double)p->cfg->video_frame_interval_s,
                           (double)p->cfg->video_scene_percent / 100.0,
                           (size_t)p->cfg->video_max_frames, on_frame, &c, err, err_len);
}

static am_rc job_caption(struct worker *w, const struct am_job *j, const struct am_event *e,
                         char *err, size_t err_len) {
    struct am_process *p = w->p;
    char path[700], key[AM_KEY_MAX + 1];
    struct am_blob_info info;
    am_rc rc = blob_file(p, e, path, sizeof path, err, err_len);
    if (rc != AM_OK)
        return rc;
    if (!p->vision.url || !p->vision.url[0])
        return AM_OK; /* no vision model: nothing to do */
    if ((rc = p->srv->store.ops->blob_get(p->srv->store.impl, j->user_id, e->blob, &info)) !=
        AM_OK)
        return rc;
    if (info.size > 20 * 1024 * 1024) {
        snprintf(err, err_len, "caption: image of %lld bytes is too large to send",
                 (long long)info.size);
        return AM_EINVAL;
    }
    FILE *f = fopen(path, "rb");
    uint8_t *img = am_malloc((size_t)info.size + 1);
    size_t got = f && img ? fread(img, 1, (size_t)info.size, f) : 0;
    if (f)
        fclose(f);
    if (!img || got != (size_t)info.size) {
        am_free(img);
        snprintf(err, err_len, "caption: cannot read the image");
        return img ? AM_EIO : AM_ENOMEM;
    }
    char *text = NULL;
    if (!w->oai && (rc = am_oai_new(&w->oai)) != AM_OK) {
        am_free(img);
        return rc;
    }
    rc = am_oai_caption(w->oai, &p->vision, img, got, info.mime, &text, err, err_len);
    am_free(img);
    if (rc != AM_OK)
        return rc == AM_EINVAL ? AM_EBACKEND : rc;
    am_utf8_clean(text);
    json_t *payload = json_pack("{s:s, s:I, s:s}", "text", text, "source_event",
                                (json_int_t)e->id, "model", p->vision.model);
    am_free(text);
    snprintf(key, sizeof key, "d:caption:%lld", (long long)e->id);
    json_t *o = payload ? derived_base(e, "image.caption", key, payload) : NULL;
    if (!o)
        return AM_ENOMEM;
    json_object_set_new(o, "blob", json_string(e->blob));
    rc = submit_derived(p, j->user_id, o, err, err_len);
    json_decref(o);
    return rc;
}

/* The schema the chat model fills for every analysed text. */
static json_t *analysis_schema(void) {
    return json_pack(
        "{s:s, s:{s:{s:s}, s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}},"
        " s:{s:s, s:{s:s}}}, s:[s,s,s,s,s], s:b}",
        "type", "object", "properties", "summary", "type", "string", "people", "type", "array",
        "items", "type", "string", "places", "type", "array", "items", "type", "string",
        "organisations", "type", "array", "items", "type", "string", "topics", "type", "array",
        "items", "type", "string", "required", "summary", "people", "places", "organisations",
        "topics", "additionalProperties", 0);
}

static am_rc job_analyze(struct worker *w, const struct am_job *j, const struct am_event *e,
                         char *err, size_t err_len) {
    struct am_process *p = w->p;
    char *text = NULL, key[AM_KEY_MAX + 1];
    size_t found = 0;
    am_rc rc = p->srv->store.ops->event_text(p->srv->store.impl, j->user_id, e->id, &text);
    if (rc != AM_OK)
        return rc;
    json_t *payload = json_object();
    if (!payload) {
        am_free(text);
        return AM_ENOMEM;
    }
    if ((rc = am_extract(text, strlen(text), payload, &found)) != AM_OK)
        goto out;
    int llm = p->chat.url && p->chat.url[0] && strlen(text) >= 20;
    if (llm) {
        json_t *schema = analysis_schema(), *ans = NULL;
        if (!w->oai && (rc = am_oai_new(&w->oai)) != AM_OK) {
            json_decref(schema);
            goto out;
        }
        /* Long texts are cut: a summary needs the gist, and the context window is finite. */
        size_t max = 24000, tl = strlen(text);
        if (tl > max) {
            while (max > 0 && ((unsigned char)text[max] & 0xC0) == 0x80)
                max--;
            text[max] = '\0';
        }
        rc = am_oai_chat_json(w->oai, &p->chat,
                              "You analyse one item from a person's own data (a message, an"
                              " email, text seen on screen, a transcript). Summarise it in one"
                              " sentence and list the people, places, organisations and topics"
                              " it names. Answer with JSON only.",
                              text, schema, "analysis", &ans, err, err_len);
        json_decref(schema);
        if (rc != AM_OK) {
            rc = rc == AM_EINVAL ? AM_EBACKEND : rc;
            goto out;
        }
        json_object_set(payload, "summary", json_object_get(ans, "summary"));
        json_t *ents = json_object();
        const char *names[] = {"people", "places", "organisations", "topics"};
        for (size_t i = 0; ents && i < 4; i++)
            json_object_set(ents, names[i], json_object_get(ans, names[i]));
        json_object_set_new(payload, "entities", ents);
        json_object_set_new(payload, "model", json_string(p->chat.model));
        json_decref(ans);
    }
    if (!found && !llm)
        goto out; /* nothing to say: no event */
    json_object_set_new(payload, "source_event", json_integer(e->id));
    snprintf(key, sizeof key, "d:analyze:%lld", (long long)e->id);
    json_t *o = derived_base(e, "derived.analysis", key, payload);
    payload = NULL;
    if (!o) {
        rc = AM_ENOMEM;
        goto out;
    }
    rc = submit_derived(p, j->user_id, o, err, err_len);
    json_decref(o);
out:
    json_decref(payload);
    am_free(text);
    return rc;
}

/* ---------------------------------------------------------------- embeddings */

/* Embeds n texts with the configured model: the built-in one, or a server in batches. */
static am_rc embed_texts(struct am_process *p, struct am_oai **oai, const char *const *texts,
                         size_t n, float **out, int *dim, char *err, size_t err_len) {
    *out = NULL;
    if (p->embed_builtin) {
        int d = (int)p->cfg->embed_dim;
        float *v = am_malloc(sizeof(float) * (size_t)d * (n ? n : 1));
        if (!v)
            return AM_ENOMEM;
        for (size_t i = 0; i < n; i++)
            am_embed_hash(texts[i], strlen(texts[i]), v + i * (size_t)d, d);
        *out = v;
        *dim = d;
        return AM_OK;
    }
    am_rc rc = AM_OK;
    if (!*oai && (rc = am_oai_new(oai)) != AM_OK)
        return rc;
    rc = am_oai_embed(*oai, &p->embed, texts, n, out, dim, err, err_len);
    return rc == AM_EINVAL ? AM_EBACKEND : rc;
}

am_rc am_process_embed_query(struct am_process *p, const char *text, float **out, int *dim,
                             char *model, size_t model_len, char *err, size_t err_len) {
    struct am_oai *oai = NULL;
    snprintf(model, model_len, "%s", p->embed_model);
    am_rc rc = embed_texts(p, &oai, &text, 1, out, dim, err, err_len);
    am_oai_free(oai);
    return rc;
}

am_rc am_process_embed_query_with(struct am_process *p, const char *model, const char *text,
                                  float **out, int *dim, char *err, size_t err_len) {
    size_t pl = strlen(AM_EMBED_HASH_MODEL);
    *out = NULL;
    if (!strncmp(model, AM_EMBED_HASH_MODEL, pl) && model[pl] == '-') {
        char *end;
        long d = strtol(model + pl + 1, &end, 10);
        if (*end || d < 8 || d > 4096) {
            snprintf(err, err_len, "embed: '%s' is not a built-in model", model);
            return AM_EINVAL;
        }
        float *v = am_malloc(sizeof(float) * (size_t)d);
        if (!v)
            return AM_ENOMEM;
        am_embed_hash(text, strlen(text), v, (int)d);
        *out = v;
        *dim = (int)d;
        return AM_OK;
    }
    if (!p->embed.url || !p->embed.url[0]) {
        snprintf(err, err_len, "embed: no embeddings server for '%s'", model);
        return AM_EINVAL;
    }
    struct am_model_cfg cfg = p->embed;
    cfg.model = model;
    struct am_oai *oai = NULL;
    am_rc rc = am_oai_new(&oai);
    if (rc == AM_OK)
        rc = am_oai_embed(oai, &cfg, &text, 1, out, dim, err, err_len);
    am_oai_free(oai);
    return rc;
}

am_rc am_process_chat_json(struct am_process *p, const char *system, const char *user,
                           const json_t *schema, const char *schema_name, json_t **out,
                           char *err, size_t err_len) {
    *out = NULL;
    if (!p || !p->chat.url || !p->chat.url[0]) {
        snprintf(err, err_len, "no chat model is configured (chat_url)");
        return AM_ENOTFOUND;
    }
    struct am_oai *oai = NULL;
    am_rc rc = am_oai_new(&oai);
    if (rc == AM_OK)
        rc = am_oai_chat_json(oai, &p->chat, system, user, schema, schema_name, out, err,
                              err_len);
    am_oai_free(oai);
    return rc;
}

/* Claimed embed jobs run as one batch: one request to the server, one transaction. */
static void run_embed_batch(struct worker *w, struct am_job *jobs, size_t n, am_rc *rcs,
                            char (*errs)[256]) {
    struct am_process *p = w->p;
    char **texts = am_calloc(n, sizeof *texts);
    size_t *idx = am_calloc(n, sizeof *idx);
    struct am_vector *vecs = am_calloc(n, sizeof *vecs);
    float *v = NULL;
    size_t m = 0;
    int dim = 0;
    am_rc rc = AM_OK;
    if (!texts || !idx || !vecs) {
        rc = AM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rcs[i] = AM_OK;
        /* A job for a model no longer configured is moot; the current one has its own. */
        if (strcmp(jobs[i].arg, p->embed_model) != 0)
            continue;
        char *t = NULL;
        rcs[i] = p->srv->store.ops->event_text(p->srv->store.impl, jobs[i].user_id,
                                                 jobs[i].event_id, &t);
        if (rcs[i] != AM_OK) {
            snprintf(errs[i], 256, "embed: reading the text: %s", am_strerror(rcs[i]));
            continue;
        }
        if (!t[0]) {
            am_free(t);
            continue;
        }
        texts[m] = t;
        idx[m++] = i;
    }
    if (m == 0)
        goto out;
    char err[256] = "";
    rc = embed_texts(p, &w->oai, (const char *const *)texts, m, &v, &dim, err, sizeof err);
    if (rc == AM_OK) {
        for (size_t k = 0; k < m; k++) {
            /* Unit length on disk: search's scan is then a dot product. */
            float *x = v + k * (size_t)dim;
            double norm = 0;
            for (int i = 0; i < dim; i++)
                norm += (double)x[i] * x[i];
            norm = sqrt(norm);
            for (int i = 0; norm > 0 && i < dim; i++)
                x[i] = (float)(x[i] / norm);
            vecs[k] = (struct am_vector){jobs[idx[k]].user_id, jobs[idx[k]].event_id,
                                         p->embed_model, x, dim};
        }
        rc = p->srv->store.ops->vectors_put(p->srv->store.impl, vecs, m);
        if (rc != AM_OK)
            snprintf(err, sizeof err, "embed: storing vectors: %s", am_strerror(rc));
    }
    if (rc != AM_OK)
        for (size_t k = 0; k < m; k++) {
            rcs[idx[k]] = rc;
            snprintf(errs[idx[k]], 256, "%s", err);
        }
out:
    if (rc == AM_ENOMEM && m == 0)
        for (size_t i = 0; i < n; i++)
            rcs[i] = AM_ENOMEM;
    for (size_t k = 0; texts && k < m; k++)
        am_free(texts[k]);
    am_free(texts);
    am_free(idx);
    am_free(vecs);
    am_free(v);
}

/* ---------------------------------------------------------------- the worker loop */

static am_rc run_one(struct worker *w, const struct am_job *j, char *err, size_t err_len) {
    struct am_process *p = w->p;
    struct am_event e;
    memset(&e, 0, sizeof e);
    am_rc rc = p->srv->store.ops->get_event(p->srv->store.impl, j->user_id, j->event_id, &e);
    if (rc == AM_ENOTFOUND)
        return AM_OK; /* the event is gone (erased): nothing left to do */
    if (rc != AM_OK) {
        snprintf(err, err_len, "reading event %lld: %s", (long long)j->event_id,
                 am_strerror(rc));
        return rc;
    }
    switch (j->kind) {
    case AM_JOB_OCR:
        rc = job_ocr(w, j, &e, err, err_len);
        break;
    case AM_JOB_STT:
        rc = job_stt(w, j, &e, err, err_len);
        break;
    case AM_JOB_FRAMES:
        rc = job_frames(w, j, &e, err, err_len);
        break;
    case AM_JOB_CAPTION:
        rc = job_caption(w, j, &e, err, err_len);
        break;
    case AM_JOB_ANALYZE:
        rc = job_analyze(w, j, &e, err, err_len);
        break;
    default:
        snprintf(err, err_len, "unknown job kind %d", j->kind);
        rc = AM_EINVAL;
    }
    if (rc != AM_OK && !err[0])
        snprintf(err, err_len, "%s failed: %s", am_job_kind_name(j->kind), am_strerror(rc));
    am_event_clear(&e);
    return rc;
}

static void record(struct am_process *p, const struct am_job *j, int state, int64_t run_ns) {
    struct kind_metrics *m = &p->m[j->kind];
    double lat = (double)(am_now_ns() - j->created_ns) / 1e9;
    pthread_mutex_lock(&p->lock);
    if (state == AM_JOB_DONE) {
        m->done++;
        size_t b = 0;
        while (b < N_LAT && lat > lat_bounds[b])
            b++;
        m->lat_count[b]++;
        m->lat_sum += lat < 0 ? 0 : lat;
        m->run_sum += (double)run_ns / 1e9;
    } else if (state == AM_JOB_DEAD) {
        m->dead++;
    } else {
        m->retried++;
    }
    pthread_mutex_unlock(&p->lock);
}

static void outcome(struct am_process *p, const struct am_job *j, am_rc rc, const char *err,
                    struct am_job_outcome *o) {
    memset(o, 0, sizeof *o);
    o->job_id = j->id;
    if (rc == AM_OK) {
        o->state = AM_JOB_DONE;
    } else if (rc == AM_EINVAL || j->attempts >= p->cfg->job_max_attempts) {
        /* Bad input fails the same way every time: straight to the dead letters. */
        o->state = AM_JOB_DEAD;
        o->error = err;
        am_warn("process: %s job %lld (event %lld) is dead after %d attempt(s): %s",
                am_job_kind_name(j->kind), (long long)j->id, (long long)j->event_id,
                j->attempts, err);
    } else {
        o->state = AM_JOB_PENDING;
        o->run_after_ns = am_now_ns() + backoff_ns(p->cfg, j->attempts);
        o->error = err;
        am_info("process: %s job %lld (event %lld) failed (attempt %d), retrying: %s",
                am_job_kind_name(j->kind), (long long)j->id, (long long)j->event_id,
                j->attempts, err);
    }
}

/* Claims and runs one batch of `kind`; returns how many jobs it ran. */
static size_t work_kind(struct worker *w, int kind) {
    struct am_process *p = w->p;
    struct am_store *st = &p->srv->store;
    int64_t next = AM_TS_NONE, now = am_now_ns();
    /* A read first: claiming is a write, and an idle pool must not write. */
    if (st->ops->job_next_ready(st->impl, kind, &next) != AM_OK || next == AM_TS_NONE ||
        next > now)
        return 0;
    struct am_job jobs[MAX_CLAIM];
    size_t max = kind == AM_JOB_EMBED ? (size_t)p->cfg->embed_batch : 1, n = 0;
    if (max > MAX_CLAIM)
        max = MAX_CLAIM;
    if (st->ops->job_claim(st->impl, kind, now, p->cfg->job_lease_s * AM_NS_PER_S,
                           (int)p->cfg->job_max_attempts, jobs, max, &n) != AM_OK ||
        n == 0)
        return 0;
    am_rc rcs[MAX_CLAIM];
    char errs[MAX_CLAIM][256];
    struct am_job_outcome outs[MAX_CLAIM];
    int64_t t0 = am_mono_ns();
    memset(errs, 0, sizeof errs);
    if (kind == AM_JOB_EMBED) {
        run_embed_batch(w, jobs, n, rcs, errs);
    } else {
        for (size_t i = 0; i < n; i++)
            rcs[i] = run_one(w, &jobs[i], errs[i], sizeof errs[i]);
    }
    int64_t run_ns = (am_mono_ns() - t0) / (int64_t)n;
    for (size_t i = 0; i < n; i++)
        outcome(p, &jobs[i], rcs[i], errs[i], &outs[i]);
    /* If this fails the lease runs out and the job runs again: derived keys absorb it. */
    if (st->ops->job_finish(st->impl, outs, n) != AM_OK)
        am_error("process: recording %zu job outcome(s) failed", n);
    else
        for (size_t i = 0; i < n; i++)
            record(p, &jobs[i], outs[i].state, run_ns);
    return n;
}

/* The soonest time any enabled kind has a job due; AM_TS_NONE when none is waiting. */
static int64_t next_due(struct am_process *p) {
    int64_t best = AM_TS_NONE;
    for (int k = 0; k < AM_JOB_KINDS; k++) {
        int64_t t;
        if (!(p->kinds & (1u << k)))
            continue;
        if (p->srv->store.ops->job_next_ready(p->srv->store.impl, k, &t) == AM_OK &&
            t != AM_TS_NONE && (best == AM_TS_NONE || t < best))
            best = t;
    }
    return best;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct am_process *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        uint64_t gen = p->generation;
        int stop = p->stopping;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        size_t ran = 0;
        for (int i = 0; i < AM_JOB_KINDS && !ran; i++) {
            int k = (w->next_kind + i) % AM_JOB_KINDS;
            if (p->kinds & (1u << k))
                ran = work_kind(w, k);
        }
        w->next_kind = (w->next_kind + 1) % AM_JOB_KINDS;
        if (ran)
            continue;
        /* Sleep until new jobs are committed or the next retry (or lease) falls due. */
        int64_t due = next_due(p), now = am_now_ns();
        int64_t wait = due == AM_TS_NONE ? 30 * AM_NS_PER_S : due - now;
        if (wait > 30 * AM_NS_PER_S)
            wait = 30 * AM_NS_PER_S;
        if (wait <= 0)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t until = (int64_t)ts.tv_sec * AM_NS_PER_S + ts.tv_nsec + wait;
        ts.tv_sec = (time_t)(until / AM_NS_PER_S);
        ts.tv_nsec = (long)(until % AM_NS_PER_S);
        pthread_mutex_lock(&p->lock);
        while (!p->stopping && p->generation == gen)
            if (pthread_cond_timedwait(&p->wake, &p->lock, &ts) != 0)
                break;
        pthread_mutex_unlock(&p->lock);
    }
    am_ocr_free(w->ocr);
    am_sphinx_free(w->sphinx);
    am_oai_free(w->oai);
    return NULL;
}

/* ---------------------------------------------------------------- start, stop, metrics */

static void model_cfg(const struct am_config *c, struct am_model_cfg *m, const char *url,
                      const char *model) {
    m->url = url;
    m->model = model;
    m->api_key = c->model_api_key[0] ? c->model_api_key : NULL;
    m->timeout_ms = (long)c->model_timeout_ms;
    m->max_retries = (int)c->model_retries;
    m->rate_per_s = (double)c->model_rate_per_s;
}

/* The job kinds named in cfg.pipeline ("ocr,stt,..."); caption needs a vision model. */
unsigned am_process_kinds(const struct am_config *cfg) {
    unsigned kinds = 0;
    char list[sizeof cfg->pipeline];
    snprintf(list, sizeof list, "%s", cfg->pipeline);
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int k = am_job_kind_parse(t);
        if (k >= 0)
            kinds |= 1u << k;
    }
    if (cfg->vision_url[0])
        kinds |= 1u << AM_JOB_CAPTION;
    else
        kinds &= ~(1u << AM_JOB_CAPTION);
    return kinds;
}

/* The built-in model's dimension is part of its name: vectors of two sizes never mix. */
void am_process_embed_model(const struct am_config *cfg, char *out, size_t out_len) {
    if (cfg->embed_url[0] && cfg->embed_model[0])
        snprintf(out, out_len, "%s", cfg->embed_model);
    else
        snprintf(out, out_len, "%s-%lld", AM_EMBED_HASH_MODEL, (long long)cfg->embed_dim);
}

am_rc am_process_start(struct am_server *srv, struct am_process **out) {
    *out = NULL;
    struct am_process *p = am_calloc(1, sizeof *p);
    if (!p)
        return AM_ENOMEM;
    p->srv = srv;
    p->cfg = &srv->cfg;
    p->kinds = am_process_kinds(p->cfg);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    model_cfg(p->cfg, &p->chat, p->cfg->chat_url, p->cfg->chat_model);
    model_cfg(p->cfg, &p->vision, p->cfg->vision_url, p->cfg->vision_model);
    model_cfg(p->cfg, &p->embed, p->cfg->embed_url, p->cfg->embed_model);
    model_cfg(p->cfg, &p->stt, p->cfg->stt_url, p->cfg->stt_model);
    am_process_embed_model(p->cfg, p->embed_model, sizeof p->embed_model);
    p->embed_builtin = !(p->cfg->embed_url[0] && p->cfg->embed_model[0]);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->n_workers = p->cfg->workers > 0 ? (int)p->cfg->workers : (int)(cores > 0 ? cores : 1);
    p->threads = am_calloc((size_t)p->n_workers, sizeof *p->threads);
    p->workers = am_calloc((size_t)p->n_workers, sizeof *p->workers);
    if (!p->threads || !p->workers) {
        am_process_stop(p);
        return AM_ENOMEM;
    }
    struct am_store *st = &srv->store;
    int64_t recovered = 0, reembed = 0;
    /* One amd owns the data directory (amd.lock): whatever was running died with it. */
    if (st->ops->job_recover(st->impl, &recovered) == AM_OK && recovered)
        am_info("process: %lld interrupted job(s) will run again", (long long)recovered);
    /* Text without a vector of the current model (new model, or first start) is embedded
     * in the background while search keeps working. */
    if ((p->kinds & (1u << AM_JOB_EMBED)) &&
        st->ops->job_reembed(st->impl, p->embed_model, &reembed) == AM_OK && reembed)
        am_info("process: %lld event(s) queued for embedding with %s", (long long)reembed,
                p->embed_model);
    st->ops->set_job_notify(st->impl, on_jobs, p);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20); /* tesseract and FFmpeg recurse deeply */
    for (int i = 0; i < p->n_workers; i++) {
        p->workers[i] = (struct worker){.p = p, .index = i, .next_kind = i % AM_JOB_KINDS};
        if (pthread_create(&p->threads[i], &attr, worker_main, &p->workers[i]) != 0) {
            p->n_workers = i;
            break;
        }
    }
    pthread_attr_destroy(&attr);
    am_info("process: %d worker(s); jobs: %s; embeddings: %s", p->n_workers, p->cfg->pipeline,
            p->embed_model);
    *out = p;
    return AM_OK;
}

void am_process_stop(struct am_process *p) {
    if (!p)
        return;
    if (p->srv)
        p->srv->store.ops->set_job_notify(p->srv->store.impl, NULL, NULL);
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; p->threads && i < p->n_workers; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    am_free(p->threads);
    am_free(p->workers);
    am_free(p);
}

void am_process_metrics(struct am_process *p, struct am_buf *out) {
    if (!p)
        return;
    struct am_job_count *c = NULL;
    size_t n = 0;
    int64_t now = am_now_ns();
    am_buf_appends(out, "# HELP am_jobs Pipeline jobs waiting, running or dead, by kind.\n"
                        "# TYPE am_jobs gauge\n");
    if (p->srv->store.ops->job_counts(p->srv->store.impl, 0, &c, &n) == AM_OK) {
        for (int k = 0; k < AM_JOB_KINDS; k++)
            for (int s = 0; s < AM_JOB_STATES; s++) {
                if (s == AM_JOB_DONE)
                    continue;
                int64_t v = 0;
                for (size_t i = 0; i < n; i++)
                    if (c[i].kind == k && c[i].state == s)
                        v = c[i].count;
                am_buf_printf(out, "am_jobs{kind=\"%s\",state=\"%s\"} %lld\n",
                              am_job_kind_name(k), am_job_state_name(s), (long long)v);
            }
        am_buf_appends(out, "# HELP am_job_oldest_pending_seconds Age of the oldest waiting"
                            " job, by kind.\n# TYPE am_job_oldest_pending_seconds gauge\n");
        for (int k = 0; k < AM_JOB_KINDS; k++) {
            double age = 0;
            for (size_t i = 0; i < n; i++)
                if (c[i].kind == k && c[i].state == AM_JOB_PENDING && c[i].oldest_created_ns)
                    age = (double)(now - c[i].oldest_created_ns) / 1e9;
            am_buf_printf(out, "am_job_oldest_pending_seconds{kind=\"%s\"} %.3f\n",
                          am_job_kind_name(k), age);
        }
    }
    am_free(c);
    pthread_mutex_lock(&p->lock);
    am_buf_appends(out, "# HELP am_job_outcomes_total Job attempts by kind and outcome.\n"
                        "# TYPE am_job_outcomes_total counter\n");
    for (int k = 0; k < AM_JOB_KINDS; k++) {
        const struct kind_metrics *m = &p->m[k];
        am_buf_printf(out,
                      "am_job_outcomes_total{kind=\"%s\",outcome=\"done\"} %lld\n"
                      "am_job_outcomes_total{kind=\"%s\",outcome=\"retry\"} %lld\n"
                      "am_job_outcomes_total{kind=\"%s\",outcome=\"dead\"} %lld\n",
                      am_job_kind_name(k), (long long)m->done, am_job_kind_name(k),
                      (long long)m->retried, am_job_kind_name(k), (long long)m->dead);
    }
    am_buf_appends(out, "# HELP am_job_latency_seconds From an event's commit to its job's"
                        " completion.\n# TYPE am_job_latency_seconds histogram\n");
    for (int k = 0; k < AM_JOB_KINDS; k++) {
        const struct kind_metrics *m = &p->m[k];
        int64_t cum = 0;
        for (size_t b = 0; b < N_LAT; b++) {
            cum += m->lat_count[b];
            am_buf_printf(out, "am_job_latency_seconds_bucket{kind=\"%s\",le=\"%g\"} %lld\n",
                          am_job_kind_name(k), lat_bounds[b], (long long)cum);
        }
        cum += m->lat_count[N_LAT];
        am_buf_printf(out,
                      "am_job_latency_seconds_bucket{kind=\"%s\",le=\"+Inf\"} %lld\n"
                      "am_job_latency_seconds_sum{kind=\"%s\"} %.6f\n"
                      "am_job_latency_seconds_count{kind=\"%s\"} %lld\n",
                      am_job_kind_name(k), (long long)cum, am_job_kind_name(k), m->lat_sum,
                      am_job_kind_name(k), (long long)cum);
    }
    am_buf_appends(out, "# HELP am_job_run_seconds_total Time workers spent running jobs.\n"
                        "# TYPE am_job_run_seconds_total counter\n");
    for (int k = 0; k < AM_JOB_KINDS; k++)
        am_buf_printf(out, "am_job_run_seconds_total{kind=\"%s\"} %.6f\n",
                      am_job_kind_name(k), p->m[k].run_sum);
    pthread_mutex_unlock(&p->lock);
}
