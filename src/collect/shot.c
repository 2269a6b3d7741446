/* shot.c — a screenshot of the root window (xcb_get_image), skipped when its pixels hash to
 * the last one's, encoded as PNG by leptonica (already linked for OCR, so no new library). */
#include <string.h>

#include <leptonica/allheaders.h>

#include "collect/collect.h"

/* Bits per pixel the server uses for ZPixmap images of this depth. */
static int bits_per_pixel(struct collect_x11 *x, uint8_t depth) {
    xcb_format_iterator_t it = xcb_setup_pixmap_formats_iterator(xcb_get_setup(x->conn));
    for (; it.rem; xcb_format_next(&it))
        if (it.data->depth == depth)
            return it.data->bits_per_pixel;
    return 0;
}

am_rc collect_shot(struct collect_x11 *x, uint8_t last_hash[32], uint8_t **png, size_t *png_len,
                   int *width, int *height) {
    *png = NULL;
    *png_len = 0;
    int w = x->screen->width_in_pixels, h = x->screen->height_in_pixels;
    *width = w;
    *height = h;
    xcb_generic_error_t *err = NULL;
    xcb_get_image_reply_t *img =
        xcb_get_image_reply(x->conn,
                            xcb_get_image(x->conn, XCB_IMAGE_FORMAT_Z_PIXMAP, x->root, 0, 0,
                                          (uint16_t)w, (uint16_t)h, ~0u),
                            &err);
    PIX *pix = NULL;
    l_uint8 *lept_png = NULL;
    am_rc rc = AM_EIO;
    if (!img) {
        am_warn("am-collect: screenshot: GetImage failed (error %d)", err ? err->error_code : 0);
        goto out;
    }
    if ((img->depth != 24 && img->depth != 32) || bits_per_pixel(x, img->depth) != 32 ||
        x->screen->root_visual == 0) {
        am_warn("am-collect: screenshot: depth %d is not supported", img->depth);
        rc = AM_EINVAL;
        goto out;
    }
    const uint8_t *data = xcb_get_image_data(img);
    size_t len = (size_t)xcb_get_image_data_length(img);
    if (len < (size_t)w * (size_t)h * 4) {
        rc = AM_EIO;
        goto out;
    }
    uint8_t hash[32];
    struct am_sha256 sh;
    am_sha256_init(&sh);
    am_sha256_update(&sh, data, (size_t)w * (size_t)h * 4);
    am_sha256_final(&sh, hash);
    if (memcmp(hash, last_hash, 32) == 0) {
        rc = AM_ENOTFOUND; /* nothing changed on screen */
        goto out;
    }
    pix = pixCreate(w, h, 32);
    if (!pix) {
        rc = AM_ENOMEM;
        goto out;
    }
    pixSetSpp(pix, 3);
    l_uint32 *words = pixGetData(pix);
    l_int32 wpl = pixGetWpl(pix);
    /* ZPixmap at depth 24/32 on a little-endian server: B, G, R, pad per pixel. The masks
     * of TrueColor visuals on every X server one meets today are 0xff0000/0xff00/0xff. */
    for (int row = 0; row < h; row++) {
        const uint8_t *src = data + (size_t)row * (size_t)w * 4;
        l_uint32 *dst = words + (size_t)row * (size_t)wpl;
        for (int col = 0; col < w; col++, src += 4)
            dst[col] =
                ((l_uint32)src[2] << 24) | ((l_uint32)src[1] << 16) | ((l_uint32)src[0] << 8);
    }
    size_t size = 0;
    if (pixWriteMemPng(&lept_png, &size, pix, 0.0) != 0 || !lept_png) {
        am_warn("am-collect: screenshot: PNG encoding failed");
        goto out;
    }
    *png = am_malloc(size);
    if (!*png) {
        rc = AM_ENOMEM;
        goto out;
    }
    memcpy(*png, lept_png, size);
    *png_len = size;
    memcpy(last_hash, hash, 32);
    rc = AM_OK;
out:
    if (lept_png)
        lept_free(lept_png);
    pixDestroy(&pix);
    free(err);
    free(img);
    return rc;
}
