/* stt_sphinx.c — offline speech to text with pocketsphinx (Debian's 0.8 "5prealpha" API)
 * and its US English model: rough, but it needs no server and no network. */
#include "process_internal.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct am_sphinx {
    cmd_ln_t *config;
    ps_decoder_t *ps;
};

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void discard_log(void *user_data, err_lvl_t level, const char *fmt, ...) {
    (void)user_data;
    (void)level;
    (void)fmt;
}

/* pocketsphinx logs pages per utterance to stderr. Its -logfn option is no way out: every
 * decoder that opens its log file closes the process-wide one another thread may be
 * writing to. Logging switched off once, before any decoder exists, is safe: no log
 * file (the configuration dump writes there directly) and a callback that drops all. */
static void quiet_sphinx(void) {
    err_set_logfp(NULL);
    err_set_callback(discard_log, NULL);
}

am_rc am_sphinx_new(const char *model_dir, struct am_sphinx **out) {
    char hmm[1024], lm[1024], dict[1024];
    am_rc rc = AM_EBACKEND;
    *out = NULL;
    pthread_once(&quiet_once, quiet_sphinx);
    if (!model_dir || !*model_dir)
        return AM_EINVAL;
    if ((size_t)snprintf(hmm, sizeof hmm, "%s/en-us", model_dir) >= sizeof hmm ||
        (size_t)snprintf(lm, sizeof lm, "%s/en-us.lm.bin", model_dir) >= sizeof lm ||
        (size_t)snprintf(dict, sizeof dict, "%s/cmudict-en-us.dict", model_dir) >= sizeof dict)
        return AM_EINVAL;
    /* Some of pocketsphinx's loaders end the process on a missing file (E_FATAL): make
     * sure the model is there before it looks. */
    char mdef[1100];
    snprintf(mdef, sizeof mdef, "%s/mdef", hmm);
    if (access(mdef, R_OK) != 0 || access(lm, R_OK) != 0 || access(dict, R_OK) != 0)
        return AM_ENOTFOUND;
    struct am_sphinx *s = am_calloc(1, sizeof *s);
    if (!s)
        return AM_ENOMEM;
    s->config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict,
                            "-samprate", "16000", NULL);
    if (!s->config)
        goto fail;
    s->ps = ps_init(s->config);
    if (!s->ps)
        goto fail;
    *out = s;
    return AM_OK;
fail:
    am_sphinx_free(s);
    return rc;
}

void am_sphinx_free(struct am_sphinx *s) {
    if (!s)
        return;
    if (s->ps)
        ps_free(s->ps);
    if (s->config)
        cmd_ln_free_r(s->config);
    am_free(s);
}

/* Silence, breath and sentence marks: "<sil>", "<s>", "[NOISE]", "+um+". */
static int is_filler(const char *w) {
    return !w || w[0] == '<' || w[0] == '[' || w[0] == '+';
}

/* The lattice posteriors of the recognised words, averaged by their length in frames.
 * ps_get_prob, the posterior of the whole sentence, is a product over its words: it
 * falls to 0 on any span longer than a few words however clear, so it says nothing. */
static double word_confidence(ps_decoder_t *ps) {
    logmath_t *lmath = ps_get_logmath(ps);
    double sum = 0, frames = 0;
    for (ps_seg_t *seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
        int32 ascr, lscr, lback;
        int sf, ef;
        if (is_filler(ps_seg_word(seg)))
            continue;
        ps_seg_frames(seg, &sf, &ef);
        double p = logmath_exp(lmath, ps_seg_prob(seg, &ascr, &lscr, &lback));
        double len = ef >= sf ? ef - sf + 1 : 1;
        sum += p * len;
        frames += len;
    }
    if (frames > 0)
        return sum / frames;
    return logmath_exp(lmath, ps_get_prob(ps));
}

am_rc am_sphinx_transcribe(struct am_sphinx *s, const int16_t *pcm, size_t n, char **text,
                           double *confidence) {
    *text = NULL;
    *confidence = 0;
    const char *hyp = NULL;
    int32 score = 0;
    if (n > 0) {
        if (ps_start_utt(s->ps) < 0)
            return AM_EBACKEND;
        /* The whole segment at once (full_utt): cepstral means come from all of it
         * rather than from a running estimate, which helps short segments. */
        int r = ps_process_raw(s->ps, pcm, n, FALSE, TRUE);
        if (ps_end_utt(s->ps) < 0 || r < 0)
            return AM_EBACKEND;
        hyp = ps_get_hyp(s->ps, &score);
    }
    *text = am_strdup(hyp ? hyp : "");
    if (!*text)
        return AM_ENOMEM;
    if (hyp && *hyp) {
        double p = word_confidence(s->ps);
        *confidence = p > 1 ? 1 : p > 0 ? p : 0;
    }
    return AM_OK;
}
