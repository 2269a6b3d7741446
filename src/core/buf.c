/* buf.c — growable, bounded, NUL-terminated byte buffers (curl's dynbuf). */
#include "core.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s, or 0 (overlongs and surrogates refused). */
static size_t utf8_seq(const unsigned char *s) {
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
        return 0;
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;
    return n;
}

void am_utf8_clean(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            *p++ = '?';
        } else {
            p += n;
        }
    }
}

void am_buf_init(struct am_buf *b, size_t max_bytes) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max_bytes;
}

static am_rc grow(struct am_buf *b, size_t need) {
    if (need > b->max)
        return AM_ELIMIT;
    if (need + 1 <= b->cap)
        return AM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = am_realloc(b->data, cap);
    if (!p)
        return AM_ENOMEM;
    b->data = p;
    b->cap = cap;
    return AM_OK;
}

am_rc am_buf_append(struct am_buf *b, const void *data, size_t len) {
    if (len > b->max || b->len > b->max - len)
        return AM_ELIMIT;
    am_rc rc = grow(b, b->len + len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return AM_OK;
}

am_rc am_buf_appends(struct am_buf *b, const char *s) {
    return am_buf_append(b, s, strlen(s));
}

am_rc am_buf_printf(struct am_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return AM_EINVAL;
    if ((size_t)n < sizeof small)
        return am_buf_append(b, small, (size_t)n);
    if ((size_t)n > b->max || b->len > b->max - (size_t)n)
        return AM_ELIMIT;
    am_rc rc = grow(b, b->len + (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return AM_OK;
}

void am_buf_reset(struct am_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void am_buf_free(struct am_buf *b) {
    am_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *am_buf_steal(struct am_buf *b, size_t *len) {
    char *p = b->data;
    if (!p)
        p = am_strdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* Decodes the valid UTF-8 sequence at s (at most n bytes): its length, or 0 for a byte
 * that does not start one (overlongs, surrogates and cut sequences refused). */
size_t am_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t c = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    *cp = c;
    return len;
}
