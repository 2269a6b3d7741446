/* process_internal.h — private to the process module: what its files share.
 * The pipeline's workers (process.c) call these pieces; each lives in its own file. */
#ifndef AM_PROCESS_INTERNAL_H
#define AM_PROCESS_INTERNAL_H

#include "process.h"

#include <stdint.h>

/* ---------------------------------------------------------------- ocr.c (tesseract) */

struct am_ocr; /* one tesseract engine; one per worker thread */
am_rc am_ocr_new(const char *tessdata_dir, const char *lang, struct am_ocr **out, char *err,
                 size_t err_len);
void am_ocr_free(struct am_ocr *o);
/* Reads the image file (JPEG, PNG, WebP, TIFF, BMP, GIF via leptonica) and recognises
 * its text. screen = 1 for screenshots (sparse text: UI labels scattered over the
 * screen), 0 for photos and frames (automatic layout). *out gets "text", "confidence"
 * (0..1), "language", "width", "height" and, when they fit in max_words, "words"
 * ([{"text","conf","x","y","w","h"}]). AM_EINVAL for a file that is not a readable
 * image or is larger than max_pixels. */
am_rc am_ocr_image(struct am_ocr *o, const char *path, int screen, int64_t max_pixels,
                   size_t max_words, json_t **out, char *err, size_t err_len);
const char *am_ocr_version(void);

/* ---------------------------------------------------------------- media.c (FFmpeg) */

#define AM_AUDIO_RATE 16000

/* Decodes the first audio stream of any container FFmpeg reads (WAV, Opus, WebM, MP3,
 * FLAC, MP4) to 16 kHz mono signed 16-bit PCM. Caller frees *pcm with am_free.
 * AM_EINVAL when there is no decodable audio (err says why), AM_ELIMIT when the audio
 * is longer than max_seconds. */
am_rc am_audio_decode(const char *path, double max_seconds, int16_t **pcm, size_t *n_samples,
                      char *err, size_t err_len);

/* A region of samples, [start, end). */
struct am_span {
    size_t start, end;
};

/* Voice activity on 16 kHz mono PCM: frames whose energy stands above an adaptive noise
 * floor are speech; regions are padded, joined across short gaps and cut at 30 s.
 * Silence yields no spans. Caller frees *spans with am_free. */
am_rc am_vad(const int16_t *pcm, size_t n, struct am_span **spans, size_t *n_spans);

/* Receives one key frame as a PNG image in memory (valid during the call only). A
 * return other than AM_OK stops the extraction with that code. */
typedef am_rc (*am_frame_cb)(const uint8_t *png, size_t png_len, int width, int height,
                             double offset_s, void *arg);

/* Key frames of a video: the first frame, then a frame whenever the picture changed
 * (the share of a 160x90 grey thumbnail's pixels that changed, above scene_threshold, 0..1) or
 * interval_s seconds passed since the last kept frame; at most max_frames. */
am_rc am_video_frames(const char *path, double interval_s, double scene_threshold,
                      size_t max_frames, am_frame_cb cb, void *arg, char *err, size_t err_len);

/* ---------------------------------------------------------------- stt_sphinx.c */

struct am_sphinx; /* one decoder; not thread-safe: one per worker thread */

/* model_dir holds en-us/, en-us.lm.bin and cmudict-en-us.dict (Debian's pocketsphinx-en-us:
 * /usr/share/pocketsphinx/model/en-us). */
am_rc am_sphinx_new(const char *model_dir, struct am_sphinx **out);
void am_sphinx_free(struct am_sphinx *s);
/* Transcribes one speech segment of 16 kHz PCM. *text is owned by the caller (am_free),
 * "" when nothing was recognised; confidence is 0..1. */
am_rc am_sphinx_transcribe(struct am_sphinx *s, const int16_t *pcm, size_t n, char **text,
                           double *confidence);

/* ---------------------------------------------------------------- openai.c
 * A client for any OpenAI-compatible server (Ollama, llama.cpp server, vLLM, whisper
 * servers, OpenAI). Transport errors, timeouts, 429 and 5xx are retried with exponential
 * backoff and jitter (Retry-After honoured); calls to one base URL are rate limited
 * across threads. */

struct am_model_cfg {
    const char *url;     /* base URL, e.g. "http://127.0.0.1:11434" ("/v1/..." is appended) */
    const char *model;   /* model name sent in requests */
    const char *api_key; /* Bearer token or NULL */
    long timeout_ms;     /* per attempt */
    int max_retries;     /* attempts after the first */
    double rate_per_s;   /* requests per second to this URL; 0 = unlimited */
};

struct am_oai; /* one per worker thread (holds a curl handle) */
am_rc am_oai_new(struct am_oai **out);
void am_oai_free(struct am_oai *c);

/* POST /v1/chat/completions asking for JSON that follows schema (response_format
 * json_schema, named schema_name). The answer's message content must parse as a JSON
 * object holding every key in the schema's "required"; otherwise the call is retried
 * (up to max_retries) and then fails with AM_EBACKEND. Caller owns *out. */
am_rc am_oai_chat_json(struct am_oai *c, const struct am_model_cfg *cfg, const char *system,
                       const char *user, const json_t *schema, const char *schema_name,
                       json_t **out, char *err, size_t err_len);

/* A one-paragraph description of an image (chat with an image_url data: URL). */
am_rc am_oai_caption(struct am_oai *c, const struct am_model_cfg *cfg, const uint8_t *img,
                     size_t len, const char *mime, char **text, char *err, size_t err_len);

/* POST /v1/embeddings for n texts in one request. *out holds n * *dim floats in input
 * order (caller frees with am_free). */
am_rc am_oai_embed(struct am_oai *c, const struct am_model_cfg *cfg, const char *const *texts,
                   size_t n, float **out, int *dim, char *err, size_t err_len);

struct am_transcript_seg {
    double start, end; /* seconds */
    char *text;        /* owned */
};
/* POST /v1/audio/transcriptions (multipart: file, model, response_format=verbose_json).
 * Caller frees *text and the segments with am_transcript_free. language may be "". */
am_rc am_oai_transcribe(struct am_oai *c, const struct am_model_cfg *cfg, const char *path,
                        char **text, struct am_transcript_seg **segs, size_t *n_segs,
                        char *language, size_t language_len, char *err, size_t err_len);
void am_transcript_free(struct am_transcript_seg *segs, size_t n);

/* ---------------------------------------------------------------- extract.c */

/* Deterministic extraction from free text: URLs, email addresses, phone numbers, dates
 * and money amounts. Adds the non-empty arrays "urls", "emails", "phones", "dates",
 * "amounts" to obj (dates as written plus "iso" when unambiguous; amounts as
 * {"text","value","currency"}). *found counts all items. Never fails on any input. */
am_rc am_extract(const char *text, size_t len, json_t *obj, size_t *found);

/* ---------------------------------------------------------------- embed_hash.c */

#define AM_EMBED_HASH_MODEL "am-hash-v1"
/* The built-in embedder, for search with no model server: lowercased, diacritics-folded
 * words and character 3-grams of each word hashed (signed) into dim buckets, sublinear
 * term weights, L2-normalised. Deterministic. An empty text gives the zero vector. */
void am_embed_hash(const char *text, size_t len, float *out, int dim);

#endif
