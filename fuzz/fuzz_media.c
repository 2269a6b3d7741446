/* fuzz_media.c — libFuzzer target for what AM does with an uploaded recording or clip:
 * audio decoding to 16 kHz PCM, voice activity on whatever came out, and key frames.
 * FFmpeg does the parsing; this checks that AM's use of it survives any bytes (bounded
 * lengths, damaged packets, refused formats) and frees what it took. */
#include "process/process_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    return 0;
}

static am_rc on_frame(const uint8_t *png, size_t len, int w, int h, double off, void *arg) {
    (void)arg;
    /* A frame handed over is a whole PNG of a real size at a real time. */
    if (len < 8 || png[1] != 'P' || w <= 0 || h <= 0 || !(off >= 0))
        abort();
    return AM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-media", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int16_t *pcm = NULL;
    size_t n = 0;
    if (am_audio_decode(path, 30, &pcm, &n, err, sizeof err) == AM_OK) {
        struct am_span *spans = NULL;
        size_t ns = 0;
        if (am_vad(pcm, n, &spans, &ns) == AM_OK)
            for (size_t i = 0; i < ns; i++)
                if (spans[i].start >= spans[i].end || spans[i].end > n)
                    abort();
        am_free(spans);
    }
    am_free(pcm);
    (void)am_video_frames(path, 1, 0.03, 4, on_frame, NULL, err, sizeof err);
    close(fd);
    return 0;
}
