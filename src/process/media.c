/* media.c — sound and pictures through FFmpeg: any container's audio as 16 kHz mono PCM,
 * the stretches of it that hold speech, and a video's key frames as PNG images. */
#include "process_internal.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Demuxers that read only the file they are given. Playlists and manifests (HLS, DASH,
 * concat) open other paths and URLs named inside the file: an uploaded playlist could
 * read another user's blob or reach the network, so they are not on the list. */
#define FORMAT_ALLOWLIST                                                                           \
    "wav,w64,mp3,ogg,flac,aac,matroska,webm,mov,mp4,m4a,3gp,avi,asf,flv,mpeg,mpegts,aiff,"         \
    "caf,amr,au,ivf,m4v,gif,gif_pipe"

/* Damaged packets are skipped; a stream with this many is given up as garbage. */
#define MAX_BAD_PACKETS 1000

/* Frames larger than this (8K UHD is 33 Mpx) are refused rather than converted: one
 * RGB copy would be hundreds of megabytes. */
#define MAX_FRAME_PIXELS (40LL * 1000 * 1000)

#define THUMB_W 160
#define THUMB_H 90
/* A thumbnail pixel whose grey moved by more than this counts as changed. */
#define PIXEL_DELTA 24

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

/* FFmpeg reports every damaged packet on stderr; our error text says what matters once. */
static void quiet_ffmpeg(void) {
    av_log_set_level(AV_LOG_FATAL);
}

static void averr(char *err, size_t err_len, const char *what, const char *doing, int code) {
    char msg[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(code, msg, sizeof msg);
    snprintf(err, err_len, "%s: %s (%s)", what, doing, msg);
}

/* ---------------------------------------------------------------- input */

/* An opened file with a decoder for one of its streams. */
struct input {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVStream *st;
    AVPacket *pkt;
    AVFrame *frame;
    int flushed; /* the demuxer is done and the decoder was told */
    long bad;    /* damaged packets skipped */
};

static void input_close(struct input *in) {
    av_frame_free(&in->frame);
    av_packet_free(&in->pkt);
    avcodec_free_context(&in->dec);
    avformat_close_input(&in->fmt);
}

/* Opens path and a decoder for its first stream of the given type (a video's cover art
 * is not a video). what names the caller in err ("audio", "video"). */
static am_rc input_open(const char *path, enum AVMediaType type, const char *what, struct input *in,
                        char *err, size_t err_len) {
    AVDictionary *opts = NULL;
    am_rc rc = AM_EINVAL;
    memset(in, 0, sizeof *in);
    pthread_once(&quiet_once, quiet_ffmpeg);
    if (av_dict_set(&opts, "format_whitelist", FORMAT_ALLOWLIST, 0) < 0 ||
        av_dict_set(&opts, "protocol_whitelist", "file", 0) < 0) {
        rc = AM_ENOMEM;
        goto fail;
    }
    int r = avformat_open_input(&in->fmt, path, NULL, &opts);
    if (r < 0) {
        averr(err, err_len, what, "not a media file FFmpeg can read", r);
        rc = r == AVERROR(ENOENT) ? AM_EIO : AM_EINVAL; /* ENOMEM: see next_frame */
        goto fail;
    }
    if ((r = avformat_find_stream_info(in->fmt, NULL)) < 0) {
        averr(err, err_len, what, "cannot read the streams of the file", r);
        goto fail;
    }
    for (unsigned i = 0; i < in->fmt->nb_streams && !in->st; i++) {
        AVStream *st = in->fmt->streams[i];
        if (st->codecpar->codec_type == type && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            in->st = st;
    }
    if (!in->st) {
        snprintf(err, err_len, "%s: the file (%s) has no %s stream", what, in->fmt->iformat->name,
                 av_get_media_type_string(type));
        goto fail;
    }
    const AVCodec *codec = avcodec_find_decoder(in->st->codecpar->codec_id);
    if (!codec) {
        snprintf(err, err_len, "%s: no decoder for the %s codec", what,
                 avcodec_get_name(in->st->codecpar->codec_id));
        goto fail;
    }
    in->dec = avcodec_alloc_context3(codec);
    in->pkt = av_packet_alloc();
    in->frame = av_frame_alloc();
    if (!in->dec || !in->pkt || !in->frame) {
        rc = AM_ENOMEM;
        goto fail;
    }
    if ((r = avcodec_parameters_to_context(in->dec, in->st->codecpar)) < 0 ||
        (r = avcodec_open2(in->dec, codec, NULL)) < 0) {
        averr(err, err_len, what, "cannot open the decoder", r);
        goto fail;
    }
    av_dict_free(&opts);
    return AM_OK;
fail:
    av_dict_free(&opts);
    input_close(in);
    return rc;
}

/* The next decoded frame into in->frame: 1, or 0 at the end of the stream. A damaged
 * packet is skipped and a read error ends the stream, so a cut-off or partly damaged file
 * yields what can be decoded of it. FFmpeg's ENOMEM counts as damage too: it is what a
 * corrupt size field asking for gigabytes gives, far more often than a full machine. */
static int next_frame(struct input *in) {
    for (;;) {
        int r = avcodec_receive_frame(in->dec, in->frame);
        if (r == 0)
            return 1;
        if (r == AVERROR_EOF)
            return 0;
        if (r != AVERROR(EAGAIN)) {
            if (++in->bad > MAX_BAD_PACKETS)
                return 0;
            continue;
        }
        if (in->flushed)
            return 0; /* a decoder that neither gives frames nor says EOF */
        if (av_read_frame(in->fmt, in->pkt) < 0) {
            in->flushed = 1;
            if (avcodec_send_packet(in->dec, NULL) < 0)
                return 0;
            continue;
        }
        if (in->pkt->stream_index == in->st->index) {
            r = avcodec_send_packet(in->dec, in->pkt);
            if (r < 0 && r != AVERROR(EAGAIN) && ++in->bad > MAX_BAD_PACKETS) {
                av_packet_unref(in->pkt);
                return 0;
            }
        }
        av_packet_unref(in->pkt);
    }
}

/* ---------------------------------------------------------------- audio */

struct pcm_out {
    int16_t *data;
    size_t len, cap;
    size_t max; /* samples */
};

/* Converts in_samples (NULL/0 drains the resampler) and appends them. AM_ELIMIT once
 * the audio is longer than out->max. */
static am_rc resample(SwrContext *swr, const uint8_t **in, int in_samples, struct pcm_out *out,
                      char *err, size_t err_len) {
    for (;;) {
        int room = swr_get_out_samples(swr, in_samples);
        if (room < 0 || room > INT_MAX - 32) {
            averr(err, err_len, "audio", "cannot convert the samples", room);
            return AM_EINVAL;
        }
        room += 32; /* the estimate may be a little low when draining */
        if (out->cap - out->len < (size_t)room) {
            size_t cap = out->cap ? out->cap : AM_AUDIO_RATE * 10;
            while (cap - out->len < (size_t)room)
                cap *= 2;
            int16_t *p = am_realloc(out->data, cap * sizeof *p);
            if (!p)
                return AM_ENOMEM;
            out->data = p;
            out->cap = cap;
        }
        uint8_t *dst = (uint8_t *)(out->data + out->len);
        int got = swr_convert(swr, &dst, room, in, in_samples);
        if (got < 0) {
            averr(err, err_len, "audio", "cannot convert the samples", got);
            return got == AVERROR(ENOMEM) ? AM_ENOMEM : AM_EINVAL;
        }
        out->len += (size_t)got;
        if (out->len > out->max)
            return AM_ELIMIT;
        /* One call converts all input given; only a drain may need several. */
        if (in || got == 0)
            return AM_OK;
    }
}

am_rc am_audio_decode(const char *path, double max_seconds, int16_t **pcm, size_t *n_samples,
                      char *err, size_t err_len) {
    struct input in;
    SwrContext *swr = NULL;
    AVChannelLayout swr_layout = {0}, mono = AV_CHANNEL_LAYOUT_MONO;
    int swr_rate = 0, swr_format = -1;
    struct pcm_out out = {NULL, 0, 0, 0};
    *pcm = NULL;
    *n_samples = 0;
    if (!(max_seconds > 0)) {
        snprintf(err, err_len, "audio: max_seconds must be positive");
        return AM_EINVAL;
    }
    out.max = max_seconds * AM_AUDIO_RATE >= (double)(SIZE_MAX / 4)
                  ? SIZE_MAX / 4
                  : (size_t)(max_seconds * AM_AUDIO_RATE);
    am_rc rc = input_open(path, AVMEDIA_TYPE_AUDIO, "audio", &in, err, err_len);
    if (rc != AM_OK)
        return rc;
    int r;
    while (next_frame(&in)) {
        AVFrame *f = in.frame;
        /* Real audio is at most 768 kHz and 64 channels; a damaged header claiming a
         * rate of a gigahertz would make the resampler grind for seconds per packet. */
        if (f->sample_rate <= 0 || f->sample_rate > 768000 || f->ch_layout.nb_channels <= 0 ||
            f->ch_layout.nb_channels > 64 || f->nb_samples <= 0) {
            av_frame_unref(f);
            continue;
        }
        /* A stream may change rate or layout midway (radio recordings do): drain what the
         * old settings hold and start a new resampler. */
        if (!swr || f->sample_rate != swr_rate || f->format != swr_format ||
            av_channel_layout_compare(&f->ch_layout, &swr_layout) != 0) {
            if (swr && (rc = resample(swr, NULL, 0, &out, err, err_len)) != AM_OK)
                goto fail;
            swr_free(&swr);
            av_channel_layout_uninit(&swr_layout);
            if (av_channel_layout_copy(&swr_layout, &f->ch_layout) < 0) {
                rc = AM_ENOMEM;
                goto fail;
            }
            swr_rate = f->sample_rate;
            swr_format = f->format;
            /* WAV and raw codecs often say only how many channels: mix them as the usual
             * layout of that count. */
            AVChannelLayout in_layout = {0};
            if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
                av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
            else
                in_layout = f->ch_layout; /* borrowed: not kept past the call */
            if ((r = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_S16, AM_AUDIO_RATE, &in_layout,
                                         f->format, f->sample_rate, 0, NULL)) < 0 ||
                (r = swr_init(swr)) < 0) {
                averr(err, err_len, "audio", "cannot convert the samples", r);
                rc = r == AVERROR(ENOMEM) ? AM_ENOMEM : AM_EINVAL;
                goto fail;
            }
        }
        rc = resample(swr, (const uint8_t **)f->extended_data, f->nb_samples, &out, err, err_len);
        av_frame_unref(f);
        if (rc != AM_OK)
            goto fail;
    }
    if (swr && (rc = resample(swr, NULL, 0, &out, err, err_len)) != AM_OK)
        goto fail;
    if (out.len == 0) {
        snprintf(err, err_len, "audio: no decodable %s audio in the file%s",
                 avcodec_get_name(in.st->codecpar->codec_id),
                 in.bad ? " (its packets are damaged)" : "");
        rc = AM_EINVAL;
        goto fail;
    }
    *pcm = out.data;
    *n_samples = out.len;
    out.data = NULL;
    rc = AM_OK;
fail:
    if (rc == AM_ELIMIT)
        snprintf(err, err_len, "audio: longer than the limit of %.0f s", max_seconds);
    else if (rc == AM_ENOMEM)
        snprintf(err, err_len, "audio: out of memory");
    am_free(out.data);
    swr_free(&swr);
    av_channel_layout_uninit(&swr_layout);
    input_close(&in);
    return rc;
}

/* ---------------------------------------------------------------- voice activity */

#define VAD_FRAME (AM_AUDIO_RATE * 3 / 100) /* 30 ms */
#define VAD_PAD (AM_AUDIO_RATE / 5)         /* 200 ms each side */
#define VAD_GAP (AM_AUDIO_RATE * 3 / 10)    /* pauses shorter than 300 ms join */
#define VAD_MAX ((size_t)30 * AM_AUDIO_RATE)
#define VAD_CUT_FROM ((size_t)20 * AM_AUDIO_RATE)
#define VAD_MIN_FRAMES 2        /* shorter bursts are clicks, not words */
#define VAD_ABOVE_FLOOR_DB 10.0 /* speech stands this far above the noise */
/* Below this nothing is speech however quiet the room: digital silence and dither stay
 * out (normal speech is -35..-15 dBFS). */
#define VAD_ABS_MIN_DB (-50.0)
/* The floor falls fast to quieter noise but rises slowly, so that a long stretch of
 * speech does not become the floor, while a fan switched on is learnt in ~20 s. */
#define VAD_RISE_DB_PER_FRAME (0.5 * VAD_FRAME / AM_AUDIO_RATE)
#define VAD_INIT_FRAMES 333 /* the first 10 s set the starting floor */

static double frame_db(const int16_t *x, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    double ms = sum / ((double)n * 32768.0 * 32768.0);
    return ms > 1e-10 ? 10.0 * log10(ms) : -100.0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static am_rc span_push(struct am_span **spans, size_t *n, size_t *cap, size_t start, size_t end) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct am_span *p = am_realloc(*spans, c * sizeof *p);
        if (!p)
            return AM_ENOMEM;
        *spans = p;
        *cap = c;
    }
    (*spans)[*n].start = start;
    (*spans)[*n].end = end;
    (*n)++;
    return AM_OK;
}

am_rc am_vad(const int16_t *pcm, size_t n, struct am_span **spans, size_t *n_spans) {
    struct am_span *raw = NULL, *outs = NULL;
    size_t n_raw = 0, cap_raw = 0, n_out = 0, cap_out = 0;
    size_t n_frames = (n + VAD_FRAME - 1) / VAD_FRAME;
    float *db = NULL;
    am_rc rc = AM_OK;
    *spans = NULL;
    *n_spans = 0;
    if (n_frames == 0)
        return AM_OK;
    db = am_malloc(n_frames * sizeof *db);
    if (!db)
        return AM_ENOMEM;
    for (size_t i = 0; i < n_frames; i++) {
        size_t s = i * VAD_FRAME, len = n - s < VAD_FRAME ? n - s : VAD_FRAME;
        db[i] = (float)frame_db(pcm + s, len);
    }

    /* The starting floor is the 10th percentile of the first seconds, so a recording
     * that opens with speech does not take the speech for noise. */
    float init[VAD_INIT_FRAMES];
    size_t n_init = n_frames < VAD_INIT_FRAMES ? n_frames : VAD_INIT_FRAMES;
    memcpy(init, db, n_init * sizeof *init);
    qsort(init, n_init, sizeof *init, cmp_float);
    double floor_db = init[n_init / 10];

    size_t run_start = 0, run_len = 0;
    for (size_t i = 0; i <= n_frames; i++) {
        int speech = 0;
        if (i < n_frames) {
            double e = db[i];
            speech = e > floor_db + VAD_ABOVE_FLOOR_DB && e > VAD_ABS_MIN_DB;
            if (e < floor_db)
                floor_db += (e - floor_db) * 0.5;
            else
                floor_db += fmin(e - floor_db, VAD_RISE_DB_PER_FRAME);
        }
        if (speech) {
            if (run_len++ == 0)
                run_start = i;
            continue;
        }
        if (run_len >= VAD_MIN_FRAMES) {
            size_t s = run_start * VAD_FRAME, e = (run_start + run_len) * VAD_FRAME;
            s = s > VAD_PAD ? s - VAD_PAD : 0;
            e = e + VAD_PAD < n ? e + VAD_PAD : n;
            if (n_raw && s < raw[n_raw - 1].end + VAD_GAP)
                raw[n_raw - 1].end = e; /* joined across a short pause */
            else if ((rc = span_push(&raw, &n_raw, &cap_raw, s, e)) != AM_OK)
                goto fail;
        }
        run_len = 0;
    }

    /* Long speech is cut at its quietest frame between 20 and 30 s: a transcript per
     * half minute at most, and a cut between words rather than inside one. */
    for (size_t k = 0; k < n_raw; k++) {
        size_t s = raw[k].start, e = raw[k].end;
        while (e - s > VAD_MAX) {
            size_t cut = s + VAD_MAX;
            float best = 1e9f;
            for (size_t f = (s + VAD_CUT_FROM + VAD_FRAME - 1) / VAD_FRAME;
                 f * VAD_FRAME < s + VAD_MAX && f < n_frames; f++) {
                if (db[f] < best) {
                    best = db[f];
                    cut = f * VAD_FRAME;
                }
            }
            if ((rc = span_push(&outs, &n_out, &cap_out, s, cut)) != AM_OK)
                goto fail;
            s = cut;
        }
        if ((rc = span_push(&outs, &n_out, &cap_out, s, e)) != AM_OK)
            goto fail;
    }
    *spans = outs;
    *n_spans = n_out;
    outs = NULL;
fail:
    am_free(outs);
    am_free(raw);
    am_free(db);
    return rc;
}

/* ---------------------------------------------------------------- video */

struct frames {
    struct SwsContext *thumb_sws, *rgb_sws;
    AVCodecContext *png;
    AVFrame *rgb;
    AVPacket *out;
    uint8_t *thumb, *kept; /* THUMB_W x THUMB_H grey: this frame and the last kept one */
};

static void frames_free(struct frames *v) {
    sws_freeContext(v->thumb_sws);
    sws_freeContext(v->rgb_sws);
    avcodec_free_context(&v->png);
    av_frame_free(&v->rgb);
    av_packet_free(&v->out);
    am_free(v->thumb);
    am_free(v->kept);
}

/* Encodes f as PNG (RGB24) into v->out. */
static am_rc encode_png(struct frames *v, const AVFrame *f, char *err, size_t err_len) {
    int r;
    if (!v->png || v->png->width != f->width || v->png->height != f->height) {
        avcodec_free_context(&v->png);
        av_frame_free(&v->rgb);
        const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
        if (!codec) {
            snprintf(err, err_len, "video: this FFmpeg has no PNG encoder");
            return AM_EBACKEND;
        }
        v->png = avcodec_alloc_context3(codec);
        v->rgb = av_frame_alloc();
        if (!v->png || !v->rgb)
            return AM_ENOMEM;
        v->png->width = f->width;
        v->png->height = f->height;
        v->png->pix_fmt = AV_PIX_FMT_RGB24;
        v->png->time_base = (AVRational){1, 25}; /* required of video encoders; unused */
        v->rgb->width = f->width;
        v->rgb->height = f->height;
        v->rgb->format = AV_PIX_FMT_RGB24;
        if ((r = avcodec_open2(v->png, codec, NULL)) < 0 ||
            (r = av_frame_get_buffer(v->rgb, 0)) < 0) {
            averr(err, err_len, "video", "cannot set up the PNG encoder", r);
            return r == AVERROR(ENOMEM) ? AM_ENOMEM : AM_EBACKEND;
        }
    }
    v->rgb_sws = sws_getCachedContext(v->rgb_sws, f->width, f->height, f->format, f->width,
                                      f->height, AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    if (!v->rgb_sws || av_frame_make_writable(v->rgb) < 0) {
        snprintf(err, err_len, "video: cannot convert %s pictures to RGB",
                 av_get_pix_fmt_name(f->format) ? av_get_pix_fmt_name(f->format) : "these");
        return AM_EINVAL;
    }
    sws_scale(v->rgb_sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, v->rgb->data,
              v->rgb->linesize);
    av_packet_unref(v->out);
    if ((r = avcodec_send_frame(v->png, v->rgb)) < 0 ||
        (r = avcodec_receive_packet(v->png, v->out)) < 0) {
        averr(err, err_len, "video", "PNG encoding failed", r);
        return r == AVERROR(ENOMEM) ? AM_ENOMEM : AM_EBACKEND;
    }
    return AM_OK;
}

am_rc am_video_frames(const char *path, double interval_s, double scene_threshold,
                      size_t max_frames, am_frame_cb cb, void *arg, char *err, size_t err_len) {
    struct input in;
    struct frames v;
    memset(&v, 0, sizeof v);
    size_t kept = 0, decoded = 0;
    double last_kept_s = 0, offset_s = 0;
    am_rc rc = input_open(path, AVMEDIA_TYPE_VIDEO, "video", &in, err, err_len);
    if (rc != AM_OK)
        return rc;
    v.out = av_packet_alloc();
    v.thumb = am_malloc(THUMB_W * THUMB_H);
    v.kept = am_malloc(THUMB_W * THUMB_H);
    if (!v.out || !v.thumb || !v.kept) {
        rc = AM_ENOMEM;
        goto fail;
    }
    AVRational tb = in.st->time_base;
    int64_t start = in.st->start_time != AV_NOPTS_VALUE ? in.st->start_time : 0;
    while (kept < max_frames && next_frame(&in)) {
        AVFrame *f = in.frame;
        if (f->width <= 0 || f->height <= 0) {
            av_frame_unref(f);
            continue;
        }
        if ((int64_t)f->width * f->height > MAX_FRAME_PIXELS) {
            snprintf(err, err_len, "video: %dx%d frames are larger than %lld pixels", f->width,
                     f->height, (long long)MAX_FRAME_PIXELS);
            rc = AM_EINVAL;
            goto fail;
        }
        decoded++;
        /* A frame without a time keeps the last one's: offsets never go backwards. */
        int64_t pts =
            f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
        if (pts != AV_NOPTS_VALUE && tb.den > 0) {
            double t = (double)(pts - start) * av_q2d(tb);
            if (isfinite(t) && t > offset_s)
                offset_s = t;
        }
        v.thumb_sws = sws_getCachedContext(v.thumb_sws, f->width, f->height, f->format, THUMB_W,
                                           THUMB_H, AV_PIX_FMT_GRAY8, SWS_AREA, NULL, NULL, NULL);
        if (!v.thumb_sws) {
            snprintf(err, err_len, "video: cannot convert %s pictures",
                     av_get_pix_fmt_name(f->format) ? av_get_pix_fmt_name(f->format) : "its");
            rc = AM_EINVAL;
            goto fail;
        }
        uint8_t *dst[4] = {v.thumb, NULL, NULL, NULL};
        int dst_stride[4] = {THUMB_W, 0, 0, 0};
        sws_scale(v.thumb_sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
                  dst_stride);
        int keep = kept == 0;
        if (!keep && interval_s > 0 && offset_s - last_kept_s >= interval_s)
            keep = 1;
        if (!keep) {
            /* Compared with the last kept frame, not the previous one, so that a slow pan
             * or a page scrolled bit by bit still counts as a new picture. */
            long changed = 0;
            for (int i = 0; i < THUMB_W * THUMB_H; i++)
                changed += abs((int)v.thumb[i] - (int)v.kept[i]) > PIXEL_DELTA;
            /* The share of the picture that changed, not the mean change: new text on a
             * screen recording moves few pixels a lot, which a mean would average away. */
            keep = (double)changed / (THUMB_W * THUMB_H) > scene_threshold;
        }
        if (keep) {
            if ((rc = encode_png(&v, f, err, err_len)) != AM_OK)
                goto fail;
            memcpy(v.kept, v.thumb, THUMB_W * THUMB_H);
            last_kept_s = offset_s;
            kept++;
            rc = cb(v.out->data, (size_t)v.out->size, f->width, f->height, offset_s, arg);
            av_packet_unref(v.out);
            if (rc != AM_OK)
                goto fail;
        }
        av_frame_unref(f);
    }
    if (decoded == 0 && max_frames > 0) {
        snprintf(err, err_len, "video: no decodable %s frames in the file%s",
                 avcodec_get_name(in.st->codecpar->codec_id),
                 in.bad ? " (its packets are damaged)" : "");
        rc = AM_EINVAL;
        goto fail;
    }
    rc = AM_OK;
fail:
    if (in.frame)
        av_frame_unref(in.frame);
    frames_free(&v);
    input_close(&in);
    return rc;
}
