/* ocr.c — text from images with tesseract's C API; leptonica decodes the file.
 * Runs on pipeline worker threads (8 MiB stacks: tesseract recurses deeply). amd starts
 * itself with OMP_THREAD_LIMIT=1 so each engine uses one thread (FACTS.md). */
#include "process_internal.h"

#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

#include <stdio.h>
#include <string.h>

struct am_ocr {
    TessBaseAPI *api;
    char lang[64];
};

const char *am_ocr_version(void) {
    return TessVersion();
}

am_rc am_ocr_new(const char *tessdata_dir, const char *lang, struct am_ocr **out, char *err,
                 size_t err_len) {
    *out = NULL;
    /* leptonica reports unreadable files on stderr; our error says it once, clearly. */
    setMsgSeverity(L_SEVERITY_NONE);
    struct am_ocr *o = am_calloc(1, sizeof *o);
    if (!o)
        return AM_ENOMEM;
    snprintf(o->lang, sizeof o->lang, "%s", lang && *lang ? lang : "eng");
    o->api = TessBaseAPICreate();
    if (!o->api) {
        am_free(o);
        return AM_ENOMEM;
    }
    if (TessBaseAPIInit3(o->api, tessdata_dir && *tessdata_dir ? tessdata_dir : NULL,
                         o->lang) != 0) {
        snprintf(err, err_len, "tesseract: cannot load language '%s' (is tesseract-ocr-%s"
                 " installed, or tessdata_dir right?)", o->lang, o->lang);
        TessBaseAPIDelete(o->api);
        am_free(o);
        return AM_EBACKEND;
    }
    /* Tesseract's diagnostics ("Estimating resolution as ...") would fill amd's log. */
    TessBaseAPISetVariable(o->api, "debug_file", "/dev/null");
    *out = o;
    return AM_OK;
}

void am_ocr_free(struct am_ocr *o) {
    if (!o)
        return;
    TessBaseAPIEnd(o->api);
    TessBaseAPIDelete(o->api);
    am_free(o);
}

/* The words with their boxes; NULL when there are more than max_words. */
static json_t *words_json(TessBaseAPI *api, size_t max_words) {
    TessResultIterator *it = TessBaseAPIGetIterator(api);
    json_t *words = json_array();
    if (!it || !words)
        goto fail;
    TessPageIterator *pit = TessResultIteratorGetPageIterator(it);
    do {
        char *w = TessResultIteratorGetUTF8Text(it, RIL_WORD);
        if (!w)
            continue;
        int x1, y1, x2, y2;
        json_t *o = NULL;
        if (w[0] && TessPageIteratorBoundingBox(pit, RIL_WORD, &x1, &y1, &x2, &y2))
            o = json_pack("{s:s, s:f, s:i, s:i, s:i, s:i}", "text", w, "conf",
                          TessResultIteratorConfidence(it, RIL_WORD) / 100.0, "x", x1, "y", y1,
                          "w", x2 - x1, "h", y2 - y1);
        TessDeleteText(w);
        if (o && json_array_append_new(words, o) != 0)
            goto fail;
        if (json_array_size(words) > max_words)
            goto fail;
    } while (TessResultIteratorNext(it, RIL_WORD));
    TessResultIteratorDelete(it);
    return words;
fail:
    if (it)
        TessResultIteratorDelete(it);
    json_decref(words);
    return NULL;
}

am_rc am_ocr_image(struct am_ocr *o, const char *path, int screen, int64_t max_pixels,
                   size_t max_words, json_t **out, char *err, size_t err_len) {
    l_int32 format = 0, w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
    *out = NULL;
    /* The header first: a small file may declare an enormous image. */
    if (pixReadHeader(path, &format, &w, &h, &bps, &spp, &cmap) != 0 || w <= 0 || h <= 0) {
        snprintf(err, err_len, "ocr: not an image leptonica can read (JPEG, PNG, WebP, TIFF,"
                               " BMP, GIF)");
        return AM_EINVAL;
    }
    if ((int64_t)w * h > max_pixels) {
        snprintf(err, err_len, "ocr: image of %dx%d pixels is larger than the limit of %lld",
                 w, h, (long long)max_pixels);
        return AM_EINVAL;
    }
    PIX *pix = pixRead(path);
    if (!pix) {
        snprintf(err, err_len, "ocr: the image could not be decoded (damaged or truncated)");
        return AM_EINVAL;
    }
    /* Screens are mostly text, but in labels and panels rather than one column. */
    TessBaseAPISetPageSegMode(o->api, screen ? PSM_SPARSE_TEXT : PSM_AUTO);
    TessBaseAPISetImage2(o->api, pix);
    am_rc rc = AM_OK;
    char *text = NULL;
    if (TessBaseAPIRecognize(o->api, NULL) != 0) {
        snprintf(err, err_len, "ocr: tesseract could not recognise the image");
        rc = AM_EBACKEND;
        goto out;
    }
    text = TessBaseAPIGetUTF8Text(o->api);
    if (!text) {
        rc = AM_ENOMEM;
        goto out;
    }
    int conf = TessBaseAPIMeanTextConf(o->api);
    /* Tesseract writes UTF-8, but a cut character at a limit must not reach jansson. */
    am_utf8_clean(text);
    json_t *p = json_pack("{s:s, s:f, s:s, s:i, s:i, s:s}", "text", text, "confidence",
                          (conf < 0 ? 0 : conf) / 100.0, "language", o->lang, "width", w,
                          "height", h, "engine", "tesseract");
    if (!p) {
        rc = AM_ENOMEM;
        goto out;
    }
    json_t *words = words_json(o->api, max_words);
    if (words)
        json_object_set_new(p, "words", words);
    *out = p;
out:
    if (text)
        TessDeleteText(text);
    TessBaseAPIClear(o->api);
    pixDestroy(&pix);
    return rc;
}
