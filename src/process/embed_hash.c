/* embed_hash.c — the built-in text embedder: folded words and their character 3-grams
 * hashed into a fixed number of signed buckets (feature hashing), for search without a
 * model server. Only integer hashing decides buckets, so vectors match across machines. */
#include "process_internal.h"

#include <math.h>
#include <string.h>

/* A word longer than this many characters is cut into pieces: no real word is, and the
 * cut keeps the per-word buffer on the stack. */
#define WORD_MAX_CHARS 64
/* Bytes one folded character can take (4 for UTF-8; "ss" and "ae" fit too). */
#define CHAR_MAX_BYTES 4

/* Whole-word matches say more than shared fragments. */
#define WEIGHT_WORD 1.0
#define WEIGHT_GRAM 0.5

/* Feature counts live in an open-addressing table; when it is half full its counts are
 * turned into weights and it starts over, so memory stays bounded on huge texts. The
 * table's size depends on the text's length alone, so a text always gives one vector. */
#define TABLE_MAX_SLOTS 16384
#define TABLE_STACK_SLOTS 512 /* used when the heap table cannot be had */

struct table {
    uint64_t *keys; /* 0 = empty slot */
    uint32_t *counts;
    size_t cap; /* power of two */
    size_t used;
};

/* ---------------------------------------------------------------- UTF-8 and characters */


static size_t utf8_encode(uint32_t c, char *out) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Marks that belong to the character before them: dropped, so "cafe\u0301" is "café". */
static int is_mark(uint32_t c) {
    return (c >= 0x300 && c <= 0x36f) || (c >= 0xfe00 && c <= 0xfe0f) ||
           (c >= 0x1ab0 && c <= 0x1aff) || (c >= 0x1dc0 && c <= 0x1dff) ||
           (c >= 0x20d0 && c <= 0x20ff);
}

/* Letters and digits without a Unicode table: whole blocks of scripts count as letters,
 * the punctuation, symbol and emoji blocks (and the commonest punctuation inside script
 * blocks) do not. Good enough to split words; no word ever holds a space or a dash. */
static int is_word_char(uint32_t c) {
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c < 0xc0)
        return c == 0xaa || c == 0xb5 || c == 0xba;
    if (c == 0xd7 || c == 0xf7)
        return 0;
    if (c < 0x2000) {
        /* punctuation inside script blocks: Greek, Armenian, Hebrew, Arabic, Devanagari */
        static const uint16_t punct[] = {0x37e, 0x387, 0x589, 0x5be, 0x5c0, 0x5c3,
                                         0x60c, 0x61b, 0x61f, 0x66a, 0x66b, 0x66c,
                                         0x66d, 0x6d4, 0x964, 0x965, 0x10fb};
        for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++)
            if (c == punct[k])
                return 0;
        return 1;
    }
    if (c < 0x2c00)
        return is_mark(c);
    if (c < 0x2e00)
        return 1;
    if (c < 0x2e80)
        return 0;
    if (c >= 0x3000 && c <= 0x303f)
        return 0;
    if (c < 0xd800)
        return 1;
    if (c < 0xf900)
        return 0; /* surrogates, private use */
    if (c < 0xfe00)
        return c != 0xfd3e && c != 0xfd3f;
    if (c < 0xfe10)
        return 1; /* variation selectors */
    if (c < 0xfe70)
        return is_mark(c) || (c >= 0xfe20 && c <= 0xfe2f);
    if (c < 0xff00)
        return c != 0xfeff;
    if (c < 0xfff0)
        return (c >= 0xff10 && c <= 0xff19) || (c >= 0xff21 && c <= 0xff3a) ||
               (c >= 0xff41 && c <= 0xff5a) || (c >= 0xff66 && c <= 0xffdc);
    if (c < 0x10000)
        return 0;
    return (c < 0x1d000) || (c >= 0x20000 && c < 0x40000);
}

/* ASCII for U+00C0..U+017F: one letter, '*' for the two-letter ones, '-' for × and ÷. */
static const char fold_latin[] = "aaaaaa*ceeeeiiii" /* U+00C0 */
                                 "dnooooo-ouuuuy**" /* U+00D0 */
                                 "aaaaaa*ceeeeiiii" /* U+00E0 */
                                 "dnooooo-ouuuuy*y" /* U+00F0 */
                                 "aaaaaaccccccccdd" /* U+0100 */
                                 "ddeeeeeeeeeegggg" /* U+0110 */
                                 "gggghhhhiiiiiiii" /* U+0120 */
                                 "ii**jjkkklllllll" /* U+0130 */
                                 "lllnnnnnnnnnoooo" /* U+0140 */
                                 "oo**rrrrrrssssss" /* U+0150 */
                                 "ssttttttuuuuuuuu" /* U+0160 */
                                 "uuuuwwyyyzzzzzzs" /* U+0170 */;

/* Lowercases and folds one character into out (CHAR_MAX_BYTES): its length there.
 * *chars gets how many characters that is: 2 for "ss", "ae" and the like, else 1. */
static size_t fold_char(uint32_t c, char *out, size_t *chars) {
    *chars = 1;
    if (c < 0x80) {
        out[0] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        return 1;
    }
    if (c >= 0xc0 && c <= 0x17f) {
        char f = fold_latin[c - 0xc0];
        if (f != '*' && f != '-') {
            out[0] = f;
            return 1;
        }
        if (f == '*') {
            *chars = 2;
            const char *two = c == 0xc6 || c == 0xe6     ? "ae"
                              : c == 0xde || c == 0xfe   ? "th"
                              : c == 0xdf                ? "ss"
                              : c == 0x132 || c == 0x133 ? "ij"
                                                         : "oe";
            memcpy(out, two, 2);
            return 2;
        }
    }
    if (c >= 0x218 && c <= 0x21b) { /* Romanian comma-below S and T */
        out[0] = c < 0x21a ? 's' : 't';
        return 1;
    }
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2)
        c += 0x20; /* Greek capitals */
    else if (c >= 0x410 && c <= 0x42f)
        c += 0x20; /* Cyrillic capitals */
    else if (c >= 0x400 && c <= 0x40f)
        c += 0x50;
    else if ((c >= 0xff10 && c <= 0xff19) || (c >= 0xff21 && c <= 0xff3a) ||
             (c >= 0xff41 && c <= 0xff5a))
        return fold_char(c - 0xfee0, out, chars); /* fullwidth ASCII */
    return utf8_encode(c, out);
}

/* ---------------------------------------------------------------- hashing */

/* FNV-1a over the bytes, then murmur3's finaliser so that every output bit depends on
 * every input bit (FNV alone leaves the low bits weak). kind keeps a word and a 3-gram
 * with the same letters apart. */
static uint64_t feature_hash(char kind, const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    h ^= (unsigned char)kind;
    h *= 0x100000001b3ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1; /* 0 marks an empty slot */
}

/* Turns every count in the table into a signed weight in its bucket and empties it.
 * The kind's weight rides in the key's lowest bit, which the bucket and sign do not use. */
static void table_flush(struct table *t, float *out, int dim) {
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t h = t->keys[i];
        if (!h)
            continue;
        double w = (1.0 + log((double)t->counts[i])) * ((h & 1) ? WEIGHT_WORD : WEIGHT_GRAM);
        size_t bucket = (size_t)(((h >> 32) * (uint64_t)dim) >> 32);
        out[bucket] += (float)((h >> 31) & 1 ? -w : w);
        t->keys[i] = 0;
        t->counts[i] = 0;
    }
    t->used = 0;
}

static void table_add(struct table *t, uint64_t h, float *out, int dim) {
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (t->keys[i] == h) {
            if (t->counts[i] < UINT32_MAX)
                t->counts[i]++;
            return;
        }
        if (!t->keys[i]) {
            t->keys[i] = h;
            t->counts[i] = 1;
            if (++t->used * 2 > t->cap)
                table_flush(t, out, dim);
            return;
        }
    }
}

/* ---------------------------------------------------------------- words */

struct word {
    char bytes[(WORD_MAX_CHARS + 2) * CHAR_MAX_BYTES]; /* "<" folded characters ">" */
    size_t len;
    size_t starts[WORD_MAX_CHARS + 3]; /* byte offset of each character, then len */
    size_t n_chars;                    /* including the two boundary marks */
};

static void word_reset(struct word *w) {
    w->bytes[0] = '<';
    w->len = 1;
    w->starts[0] = 0;
    w->n_chars = 1;
}

/* Adds the word's own feature and its 3-grams, then starts the next word. */
static void word_emit(struct word *w, struct table *t, float *out, int dim) {
    if (w->n_chars > 1) {
        w->starts[w->n_chars++] = w->len;
        w->bytes[w->len++] = '>';
        w->starts[w->n_chars] = w->len;
        uint64_t h = feature_hash('w', w->bytes + 1, w->len - 2);
        table_add(t, h | 1, out, dim);
        for (size_t i = 0; i + 3 <= w->n_chars; i++) {
            size_t from = w->starts[i], to = w->starts[i + 3];
            h = feature_hash('g', w->bytes + from, to - from);
            table_add(t, h & ~(uint64_t)1, out, dim);
        }
    }
    word_reset(w);
}

void am_embed_hash(const char *text, size_t len, float *out, int dim) {
    if (!out || dim < 1)
        return;
    memset(out, 0, sizeof(float) * (size_t)dim);
    if (!text || len == 0)
        return;

    /* Each word character gives at most two features (its 3-gram, and a share of its
     * word's), and folding at most doubles characters: 8 slots per byte never flush. */
    size_t cap = 64;
    while (cap < TABLE_MAX_SLOTS && cap / 8 < len + 2)
        cap *= 2;
    uint64_t stack_keys[TABLE_STACK_SLOTS];
    uint32_t stack_counts[TABLE_STACK_SLOTS];
    struct table t = {am_calloc(cap, sizeof(uint64_t)), am_calloc(cap, sizeof(uint32_t)), cap, 0};
    int on_heap = t.keys && t.counts;
    if (!on_heap) {
        /* Out of memory: a smaller table flushes sooner; the vector is still a fair one. */
        am_free(t.keys);
        am_free(t.counts);
        memset(stack_keys, 0, sizeof stack_keys);
        memset(stack_counts, 0, sizeof stack_counts);
        t = (struct table){stack_keys, stack_counts, TABLE_STACK_SLOTS, 0};
    }

    struct word w;
    word_reset(&w);
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        uint32_t c;
        size_t n = am_utf8_decode(s + i, len - i, &c);
        if (n == 0) { /* a stray byte ends a word like a space does */
            word_emit(&w, &t, out, dim);
            i++;
            continue;
        }
        i += n;
        if (!is_word_char(c)) {
            word_emit(&w, &t, out, dim);
            continue;
        }
        if (is_mark(c))
            continue;
        char f[CHAR_MAX_BYTES];
        size_t chars, fn = fold_char(c, f, &chars);
        if (w.n_chars - 1 + chars > WORD_MAX_CHARS)
            word_emit(&w, &t, out, dim);
        /* A two-letter fold ("ss", "ae") is two characters, as its ASCII spelling is. */
        for (size_t k = 0; k < fn;) {
            size_t cl = chars == 2 ? 1 : fn;
            w.starts[w.n_chars++] = w.len;
            memcpy(w.bytes + w.len, f + k, cl);
            w.len += cl;
            k += cl;
        }
    }
    word_emit(&w, &t, out, dim);
    table_flush(&t, out, dim);
    if (on_heap) {
        am_free(t.keys);
        am_free(t.counts);
    }

    double norm = 0;
    for (int d = 0; d < dim; d++)
        norm += (double)out[d] * out[d];
    if (norm > 0) {
        double inv = 1.0 / sqrt(norm);
        for (int d = 0; d < dim; d++)
            out[d] = (float)(out[d] * inv);
    }
}
