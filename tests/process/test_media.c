/* test_media.c — FFmpeg decoding of real containers, voice activity, video key frames
 * and pocketsphinx, on fixtures the ffmpeg CLI makes at run time from the recorded
 * speech alsa-utils ships ("front center"); plus garbage, cut-off and hostile files. */
#include "process/process_internal.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RATE AM_AUDIO_RATE
#define ALSA "/usr/share/sounds/alsa/"
#define SPEECH_WAV ALSA "Front_Center.wav"
#define SPHINX_MODEL "/usr/share/pocketsphinx/model/en-us"

static char dir[64];

static const char *fx(const char *name) {
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

/* Runs an ffmpeg command line (quiet, no stdin) and says so when it fails. */
static int ffmpeg(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && ffmpeg -nostdin -v error -y %s", dir, args);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "fixture command failed (%d): %s\n", rc, cmd);
    return rc == 0;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
}

/* The first len bytes of src as dst: an upload cut short. */
static void truncate_copy(const char *src, const char *dst, size_t len) {
    FILE *f = fopen(src, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    char *buf = am_malloc(len);
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    CHECK(got == len);
    write_file(dst, buf, got);
    am_free(buf);
}

static int make_fixtures(void) {
    int ok = 1;
    /* 2 s silence, the recorded words, 2 s silence: speech at about 2.0..3.43 s. */
    ok &= ffmpeg("-f lavfi -i anullsrc=r=48000:cl=mono:d=2 -i " SPEECH_WAV
                 " -f lavfi -i anullsrc=r=48000:cl=mono:d=2"
                 " -filter_complex '[0:a][1:a][2:a]concat=n=3:v=0:a=1' speech.wav");
    ok &= ffmpeg("-i speech.wav -c:a libopus speech.webm");
    ok &= ffmpeg("-i speech.wav -c:a libmp3lame speech.mp3");
    ok &= ffmpeg("-i speech.wav -ac 2 -ar 44100 -c:a flac speech_stereo.flac");
    /* The same under steady pink noise at about -35 dBFS: the floor is learnt. */
    ok &= ffmpeg("-i speech.wav -f lavfi -i anoisesrc=c=pink:a=0.03:r=48000:d=5.43"
                 " -filter_complex '[0:a][1:a]amix=inputs=2:normalize=0' noisy.wav");
    /* A phone clip: H.264 and AAC in MP4. */
    ok &= ffmpeg("-f lavfi -i color=c=gray:s=160x120:d=5.43 -i speech.wav -c:v libx264"
                 " -pix_fmt yuv420p -c:a aac -shortest talk.mp4");
    /* All eight recordings in a row: "front center, front left, ... side right". */
    ok &= ffmpeg("-i " ALSA "Front_Center.wav -i " ALSA "Front_Left.wav -i " ALSA
                 "Front_Right.wav -i " ALSA "Rear_Center.wav -i " ALSA "Rear_Left.wav -i " ALSA
                 "Rear_Right.wav -i " ALSA "Side_Left.wav -i " ALSA "Side_Right.wav"
                 " -filter_complex concat=n=8:v=0:a=1 words.wav");
    ok &= ffmpeg("-f lavfi -i anullsrc=r=44100:cl=stereo:d=5 silence.wav");
    ok &= ffmpeg("-f lavfi -i sine=f=440:r=22050:d=30 -c:a libopus long.ogg");
    ok &= ffmpeg("-f lavfi -i color=c=red:s=320x240:d=2 -f lavfi -i color=c=white:s=320x240:d=2"
                 " -f lavfi -i color=c=blue:s=320x240:d=2"
                 " -filter_complex '[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p'"
                 " -c:v libx264 video.mp4");
    return ok;
}

static double secs(size_t samples) {
    return (double)samples / RATE;
}

/* ---------------------------------------------------------------- decoding */

static am_rc count_frame(const uint8_t *png, size_t len, int width, int height, double offset_s,
                         void *arg) {
    (void)png, (void)len, (void)width, (void)height, (void)offset_s;
    ++*(size_t *)arg;
    return AM_OK;
}

static void test_decode_containers(void) {
    const char *names[] = {"speech.wav", "speech.webm", "speech.mp3", "speech_stereo.flac"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        int16_t *pcm = NULL;
        size_t n = 0;
        char err[256] = "";
        am_rc rc = am_audio_decode(fx(names[k]), 60, &pcm, &n, err, sizeof err);
        if (rc != AM_OK)
            fprintf(stderr, "%s: %s\n", names[k], err);
        CHECK(rc == AM_OK);
        /* 5.43 s; lossy codecs add a few ms of priming. */
        printf("%s: %zu samples (%.3f s)\n", names[k], n, secs(n));
        CHECK(fabs(secs(n) - 5.43) < 0.1);
        /* The opening second is silence, the speech loud. */
        int peak_quiet = 0, peak_speech = 0;
        for (size_t i = 0; i < n && i < RATE; i++)
            peak_quiet = abs(pcm[i]) > peak_quiet ? abs(pcm[i]) : peak_quiet;
        for (size_t i = 2 * RATE; i < n && i < 3 * RATE; i++)
            peak_speech = abs(pcm[i]) > peak_speech ? abs(pcm[i]) : peak_speech;
        CHECK(peak_quiet < 50);
        CHECK(peak_speech > 3000);

        struct am_span *spans = NULL;
        size_t n_spans = 99;
        CHECK(am_vad(pcm, n, &spans, &n_spans) == AM_OK);
        CHECK(n_spans == 1);
        if (n_spans == 1) {
            printf("%s: speech %.2f..%.2f s\n", names[k], secs(spans[0].start), secs(spans[0].end));
            CHECK(secs(spans[0].start) > 1.5 && secs(spans[0].start) < 2.05);
            CHECK(secs(spans[0].end) > 3.3 && secs(spans[0].end) < 3.9);
        }
        am_free(spans);
        am_free(pcm);
    }
}

/* Speech found the same way in noise and in a video's soundtrack. */
static void test_noise_and_soundtrack(void) {
    const char *names[] = {"noisy.wav", "talk.mp4"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        int16_t *pcm = NULL;
        size_t n = 0, n_spans = 99;
        struct am_span *spans = NULL;
        char err[256] = "";
        CHECK(am_audio_decode(fx(names[k]), 60, &pcm, &n, err, sizeof err) == AM_OK);
        CHECK(fabs(secs(n) - 5.43) < 0.1);
        CHECK(am_vad(pcm, n, &spans, &n_spans) == AM_OK);
        CHECK(n_spans == 1);
        if (n_spans == 1) {
            printf("%s: speech %.2f..%.2f s\n", names[k], secs(spans[0].start), secs(spans[0].end));
            CHECK(secs(spans[0].start) > 1.5 && secs(spans[0].start) < 2.05);
            CHECK(secs(spans[0].end) > 3.3 && secs(spans[0].end) < 3.9);
        }
        am_free(spans);
        am_free(pcm);
    }
    /* The clip's picture never changes: one frame. */
    size_t frames = 0;
    char err[256] = "";
    CHECK(am_video_frames(fx("talk.mp4"), 100, 0.12, 50, count_frame, &frames, err, sizeof err) ==
          AM_OK);
    CHECK(frames == 1);
}

static void test_silence(void) {
    int16_t *pcm = NULL;
    size_t n = 0, n_spans = 99;
    struct am_span *spans = NULL;
    char err[256] = "";
    CHECK(am_audio_decode(fx("silence.wav"), 60, &pcm, &n, err, sizeof err) == AM_OK);
    printf("silence.wav: %zu samples\n", n);
    CHECK(n > 5 * RATE - 20 && n < 5 * RATE + 20); /* the resampler's edges */
    CHECK(am_vad(pcm, n, &spans, &n_spans) == AM_OK);
    CHECK(n_spans == 0 && spans == NULL);
    am_free(pcm);
}

static void test_limits(void) {
    int16_t *pcm = NULL;
    size_t n = 0;
    char err[256] = "";
    CHECK(am_audio_decode(fx("long.ogg"), 10, &pcm, &n, err, sizeof err) == AM_ELIMIT);
    CHECK(pcm == NULL && n == 0 && strstr(err, "limit"));
    CHECK(am_audio_decode(fx("long.ogg"), 31, &pcm, &n, err, sizeof err) == AM_OK);
    CHECK(fabs(secs(n) - 30) < 0.05);
    am_free(pcm);
    CHECK(am_audio_decode(fx("speech.wav"), 0, &pcm, &n, err, sizeof err) == AM_EINVAL);
}

/* Every bad file is a clear AM_EINVAL (or AM_EIO when missing), never a crash. */
static void expect_refused(const char *name, const char *why_audio, const char *why_video) {
    int16_t *pcm = NULL;
    size_t n = 0;
    char err[256] = "";
    am_rc rc = am_audio_decode(fx(name), 60, &pcm, &n, err, sizeof err);
    printf("%s (audio): %s: %s\n", name, am_strerror(rc), err);
    CHECK(rc == AM_EINVAL && pcm == NULL && n == 0);
    CHECK(strstr(err, why_audio) != NULL);
    err[0] = 0;
    size_t frames = 0;
    rc = am_video_frames(fx(name), 10, 0.1, 10, count_frame, &frames, err, sizeof err);
    printf("%s (video): %s: %s\n", name, am_strerror(rc), err);
    CHECK(rc == AM_EINVAL && frames == 0);
    CHECK(strstr(err, why_video) != NULL);
}

static void test_bad_files(void) {
    /* Deterministic noise (the same bytes every run). */
    size_t len = 64 * 1024;
    uint8_t *junk = am_malloc(len);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    write_file(fx("garbage.bin"), junk, len);
    am_free(junk);
    write_file(fx("text.txt"), "this is not a recording\n", 24);
    write_file(fx("empty"), "", 0);
    expect_refused("garbage.bin", "not a media file", "not a media file");
    expect_refused("text.txt", "not a media file", "not a media file");
    expect_refused("empty", "not a media file", "not a media file");

    /* Cut off: the MP4's index comes last, the WebM loses its headers. */
    truncate_copy(fx("video.mp4"), fx("cut.mp4"), 2000);
    truncate_copy(fx("speech.webm"), fx("cut.webm"), 100);
    expect_refused("cut.mp4", "audio", "video");
    expect_refused("cut.webm", "audio", "video");

    /* A playlist or concat script would make FFmpeg open the files it names (another
     * user's blob): such formats are not read at all. */
    char script[512];
    snprintf(script, sizeof script, "ffconcat version 1.0\nfile '%s'\n", fx("speech.wav"));
    write_file(fx("list.ffconcat"), script, strlen(script));
    snprintf(script, sizeof script,
             "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:5.4,\n%s\n#EXT-X-ENDLIST\n",
             fx("speech.mp3"));
    write_file(fx("list.m3u8"), script, strlen(script));
    expect_refused("list.ffconcat", "not a media file", "not a media file");
    expect_refused("list.m3u8", "not a media file", "not a media file");

    /* Right kind of file, wrong kind of stream. */
    int16_t *pcm = NULL;
    size_t n = 0;
    char err[256] = "";
    CHECK(am_audio_decode(fx("video.mp4"), 60, &pcm, &n, err, sizeof err) == AM_EINVAL);
    CHECK(strstr(err, "no audio stream") != NULL && pcm == NULL);
    size_t frames = 0;
    CHECK(am_video_frames(fx("speech.mp3"), 10, 0.1, 10, count_frame, &frames, err, sizeof err) ==
          AM_EINVAL);
    CHECK(strstr(err, "no video stream") != NULL);
    CHECK(am_audio_decode(fx("no-such-file"), 60, &pcm, &n, err, sizeof err) != AM_OK);
    CHECK(pcm == NULL);

    /* A WAV cut in the middle still holds the audio before the cut. */
    truncate_copy(fx("speech.wav"), fx("half.wav"), 48000 * 2 * 2 + 44);
    CHECK(am_audio_decode(fx("half.wav"), 60, &pcm, &n, err, sizeof err) == AM_OK);
    CHECK(fabs(secs(n) - 2.0) < 0.01);
    am_free(pcm);
}

/* ---------------------------------------------------------------- voice activity */

static void fill_noise(int16_t *x, size_t n, double amplitude, uint32_t *seed) {
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        x[i] = (int16_t)(((double)(*seed >> 8) / (1 << 24) * 2 - 1) * amplitude);
    }
}

static void add_tone(int16_t *x, size_t from, size_t to, double amplitude) {
    for (size_t i = from; i < to; i++)
        x[i] = (int16_t)(x[i] + amplitude * sin(2 * M_PI * 300 * (double)i / RATE));
}

static void test_vad_synthetic(void) {
    struct am_span *spans = NULL;
    size_t n_spans = 99;
    CHECK(am_vad(NULL, 0, &spans, &n_spans) == AM_OK && n_spans == 0);

    size_t n = 80 * RATE;
    int16_t *x = am_calloc(n, sizeof *x);
    uint32_t seed = 1;
    /* Digital silence and faint hiss (-66 dBFS) are not speech. */
    CHECK(am_vad(x, n, &spans, &n_spans) == AM_OK && n_spans == 0);
    fill_noise(x, n, 30, &seed);
    CHECK(am_vad(x, n, &spans, &n_spans) == AM_OK && n_spans == 0);

    /* In steady noise at -36 dBFS, louder bursts are found where they are: two 1 s
     * bursts 2 s apart, two 0.5 s ones 150 ms apart (joined), and a 1-frame click. */
    fill_noise(x, n, 1000, &seed);
    add_tone(x, 5 * RATE, 6 * RATE, 8000);
    add_tone(x, 8 * RATE, 9 * RATE, 8000);
    add_tone(x, 12 * RATE, 12 * RATE + RATE / 2, 8000);
    add_tone(x, 12 * RATE + RATE / 2 + RATE * 15 / 100, 13 * RATE + RATE * 15 / 100, 8000);
    add_tone(x, 16 * RATE, 16 * RATE + RATE / 100, 20000);
    CHECK(am_vad(x, 20 * RATE, &spans, &n_spans) == AM_OK);
    CHECK(n_spans == 3);
    for (size_t i = 0; i < n_spans; i++)
        printf("burst %zu: %.2f..%.2f s\n", i, secs(spans[i].start), secs(spans[i].end));
    if (n_spans == 3) {
        CHECK(fabs(secs(spans[0].start) - 4.8) < 0.05 && fabs(secs(spans[0].end) - 6.2) < 0.05);
        CHECK(fabs(secs(spans[1].start) - 7.8) < 0.05 && fabs(secs(spans[1].end) - 9.2) < 0.05);
        CHECK(fabs(secs(spans[2].start) - 11.8) < 0.05 && fabs(secs(spans[2].end) - 13.35) < 0.05);
    }
    am_free(spans);

    /* 70 s of talk without a pause longer than 100 ms comes back as pieces of at most
     * 30 s, end to end. */
    fill_noise(x, n, 1000, &seed);
    for (size_t t = 5 * RATE; t < 75 * RATE; t += RATE / 2)
        add_tone(x, t, t + RATE * 2 / 5, 8000);
    CHECK(am_vad(x, n, &spans, &n_spans) == AM_OK);
    CHECK(n_spans == 3);
    for (size_t i = 0; i < n_spans; i++) {
        printf("talk %zu: %.2f..%.2f s\n", i, secs(spans[i].start), secs(spans[i].end));
        CHECK(spans[i].end - spans[i].start <= (size_t)30 * RATE);
        CHECK(spans[i].end - spans[i].start >= (size_t)20 * RATE || i == n_spans - 1);
        CHECK(i == 0 || spans[i].start == spans[i - 1].end);
        /* Cut in a pause (the last 100 ms of each half second), not inside a word. */
        CHECK(i == 0 || fmod(secs(spans[i].start) - 5, 0.5) >= 0.39);
    }
    if (n_spans == 3)
        CHECK(fabs(secs(spans[0].start) - 4.8) < 0.05 && fabs(secs(spans[2].end) - 75.1) < 0.05);
    am_free(spans);
    am_free(x);
}

/* ---------------------------------------------------------------- video */

struct got_frames {
    size_t n;
    double offset[32];
    int width[32], height[32];
    int png_ok[32];
    size_t fail_at; /* the callback refuses this frame (1-based); 0 never */
};

static am_rc on_frame(const uint8_t *png, size_t len, int width, int height, double offset_s,
                      void *arg) {
    struct got_frames *g = arg;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (g->n < 32) {
        g->offset[g->n] = offset_s;
        g->width[g->n] = width;
        g->height[g->n] = height;
        /* Signature, then IHDR with the size in big-endian. */
        g->png_ok[g->n] = len > 24 && !memcmp(png, sig, 8) && !memcmp(png + 12, "IHDR", 4) &&
                          ((png[16] << 24 | png[17] << 16 | png[18] << 8 | png[19]) == width) &&
                          ((png[20] << 24 | png[21] << 16 | png[22] << 8 | png[23]) == height);
    }
    g->n++;
    return g->fail_at && g->n == g->fail_at ? AM_EIO : AM_OK;
}

static void test_video(void) {
    char err[256] = "";
    struct got_frames g = {0};
    /* Red, white, blue for 2 s each: a frame per scene. */
    am_rc rc = am_video_frames(fx("video.mp4"), 100, 0.12, 50, on_frame, &g, err, sizeof err);
    if (rc != AM_OK)
        fprintf(stderr, "video: %s\n", err);
    CHECK(rc == AM_OK);
    CHECK(g.n == 3);
    for (size_t i = 0; i < g.n && i < 32; i++) {
        printf("frame %zu: %dx%d at %.3f s png %d\n", i, g.width[i], g.height[i], g.offset[i],
               g.png_ok[i]);
        CHECK(g.png_ok[i]);
        CHECK(g.width[i] == 320 && g.height[i] == 240);
        CHECK(fabs(g.offset[i] - 2.0 * (double)i) < 0.1);
    }

    /* Every second as well when the interval says so. */
    memset(&g, 0, sizeof g);
    CHECK(am_video_frames(fx("video.mp4"), 1, 0.12, 50, on_frame, &g, err, sizeof err) == AM_OK);
    CHECK(g.n == 6);
    for (size_t i = 1; i < g.n && i < 32; i++)
        CHECK(g.offset[i] > g.offset[i - 1] && fabs(g.offset[i] - (double)i) < 0.1);

    /* At most max_frames. */
    memset(&g, 0, sizeof g);
    CHECK(am_video_frames(fx("video.mp4"), 1, 0.12, 2, on_frame, &g, err, sizeof err) == AM_OK);
    CHECK(g.n == 2);

    /* A threshold above any change leaves the first frame only. */
    memset(&g, 0, sizeof g);
    CHECK(am_video_frames(fx("video.mp4"), 100, 1.0, 50, on_frame, &g, err, sizeof err) == AM_OK);
    CHECK(g.n == 1);

    /* The callback's refusal stops the extraction with its code. */
    memset(&g, 0, sizeof g);
    g.fail_at = 2;
    CHECK(am_video_frames(fx("video.mp4"), 100, 0.12, 50, on_frame, &g, err, sizeof err) == AM_EIO);
    CHECK(g.n == 2);
}

/* ---------------------------------------------------------------- pocketsphinx */

static void test_sphinx(void) {
    struct am_sphinx *s = NULL;
    am_sphinx_free(NULL);
    CHECK(am_sphinx_new("/nonexistent", &s) != AM_OK && s == NULL);
    CHECK(am_sphinx_new(SPHINX_MODEL, &s) == AM_OK);
    if (!s)
        return;

    int16_t *pcm = NULL;
    size_t n = 0, n_spans = 0;
    struct am_span *spans = NULL;
    char err[256] = "";
    CHECK(am_audio_decode(fx("speech.wav"), 60, &pcm, &n, err, sizeof err) == AM_OK);
    CHECK(am_vad(pcm, n, &spans, &n_spans) == AM_OK && n_spans == 1);
    if (n_spans == 1) {
        char *text = NULL;
        double conf = -1;
        size_t len = spans[0].end - spans[0].start;
        int64_t t0 = am_mono_ns();
        CHECK(am_sphinx_transcribe(s, pcm + spans[0].start, len, &text, &conf) == AM_OK);
        double took = (double)(am_mono_ns() - t0) / 1e9;
        printf("pocketsphinx: \"%s\" confidence %.3f; %.2f s of audio in %.3f s (RTF %.3f)\n",
               text ? text : "(null)", conf, secs(len), took, took / secs(len));
        /* It hears "friend center" (or "brent center"): the second word is the sure one. */
        CHECK(text && (strstr(text, "front") || strstr(text, "center")));
        CHECK(conf > 0.1 && conf <= 1);
        am_free(text);

        /* The opus copy, decoded the same way, says the same words. */
        int16_t *pcm2 = NULL;
        size_t n2 = 0;
        CHECK(am_audio_decode(fx("speech.webm"), 60, &pcm2, &n2, err, sizeof err) == AM_OK);
        CHECK(am_sphinx_transcribe(s, pcm2, n2, &text, &conf) == AM_OK);
        printf("pocketsphinx (opus, whole file): \"%s\" confidence %.3f\n", text, conf);
        CHECK(text && (strstr(text, "front") || strstr(text, "center")));
        am_free(text);
        am_free(pcm2);
    }
    /* In a run of words it does better: most of the 13 that can be spelt right are. */
    am_free(pcm);
    pcm = NULL;
    CHECK(am_audio_decode(fx("words.wav"), 60, &pcm, &n, err, sizeof err) == AM_OK);
    if (pcm) {
        char *text = NULL;
        double conf = -1;
        int64_t t0 = am_mono_ns();
        CHECK(am_sphinx_transcribe(s, pcm, n, &text, &conf) == AM_OK);
        double took = (double)(am_mono_ns() - t0) / 1e9;
        printf("pocketsphinx: \"%s\" confidence %.3f; %.2f s of audio in %.3f s (RTF %.3f)\n",
               text ? text : "(null)", conf, secs(n), took, took / secs(n));
        static const struct {
            const char *word;
            int times;
        } expect[] = {{"front", 3}, {"center", 2}, {"left", 3}, {"right", 3}, {"side", 2}};
        int right = 0;
        for (size_t i = 0; text && i < sizeof expect / sizeof *expect; i++) {
            int seen = 0;
            for (const char *p = text; (p = strstr(p, expect[i].word)); p++)
                seen++;
            right += seen < expect[i].times ? seen : expect[i].times;
        }
        printf("pocketsphinx: %d of 13 words right\n", right);
        CHECK(right >= 9);
        CHECK(conf > 0.3 && conf <= 1);
        am_free(text);
    }
    /* Nothing, or only silence, is an empty transcript rather than an error. */
    char *text = NULL;
    double conf = -1;
    int16_t *quiet = am_calloc(RATE, sizeof *quiet);
    CHECK(am_sphinx_transcribe(s, quiet, 0, &text, &conf) == AM_OK);
    CHECK(text && !strcmp(text, "") && conf == 0);
    am_free(text);
    CHECK(am_sphinx_transcribe(s, quiet, RATE, &text, &conf) == AM_OK);
    printf("pocketsphinx on 1 s of silence: \"%s\"\n", text ? text : "(null)");
    CHECK(text != NULL && conf >= 0 && conf <= 1);
    am_free(text);
    am_free(quiet);
    am_free(spans);
    am_free(pcm);
    am_sphinx_free(s);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/am-test-media-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* The fixtures need the ffmpeg CLI and alsa-utils' recording: without them the test
     * fails and says why rather than passing having checked nothing. */
    if (system("ffmpeg -version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "FAIL: the ffmpeg command is needed to make the fixtures\n");
        return 1;
    }
    if (access(SPEECH_WAV, R_OK) != 0) {
        fprintf(stderr, "FAIL: %s (alsa-utils) is needed: it is the recorded speech\n", SPEECH_WAV);
        return 1;
    }
    if (access(SPHINX_MODEL "/en-us.lm.bin", R_OK) != 0) {
        fprintf(stderr, "FAIL: %s (pocketsphinx-en-us) is needed\n", SPHINX_MODEL);
        return 1;
    }
    if (!make_fixtures()) {
        fprintf(stderr, "FAIL: could not make the fixtures in %s\n", dir);
        return 1;
    }
    test_decode_containers();
    test_noise_and_soundtrack();
    test_silence();
    test_limits();
    test_bad_files();
    test_vad_synthetic();
    test_video();
    test_sphinx();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return TEST_END();
}
