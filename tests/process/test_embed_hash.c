/* test_embed_hash.c — the built-in embedder: unit vectors, zero for no words, the same
 * vector on every run and machine, related texts closer than unrelated ones, diacritics
 * and case folded away, typos survived through 3-grams, sublinear term weights. */
#include "process/process_internal.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIM 256
#define PINNED_SIGNATURE 1695287854223802080ULL

static void embed(const char *s, float *v, int dim) {
    am_embed_hash(s, strlen(s), v, dim);
}

static double norm(const float *v, int dim) {
    double n = 0;
    for (int i = 0; i < dim; i++)
        n += (double)v[i] * v[i];
    return sqrt(n);
}

static double cosine(const char *a, const char *b) {
    float va[DIM], vb[DIM];
    embed(a, va, DIM);
    embed(b, vb, DIM);
    double dot = 0;
    for (int i = 0; i < DIM; i++)
        dot += (double)va[i] * vb[i];
    return dot; /* both are unit vectors */
}

static int same(const char *a, const char *b) {
    float va[DIM], vb[DIM];
    embed(a, va, DIM);
    embed(b, vb, DIM);
    int ok = memcmp(va, vb, sizeof va) == 0;
    if (!ok)
        fprintf(stderr, "  \"%s\" and \"%s\" differ (cosine %.3f)\n", a, b, cosine(a, b));
    return ok;
}

static int is_zero(const float *v, int dim) {
    for (int i = 0; i < dim; i++)
        if (v[i] != 0.0f)
            return 0;
    return 1;
}

static void test_norm_and_zero(void) {
    float v[DIM];
    static const char *const texts[] = {
        "meeting with Anna about the budget", "a", "x y z", "Привет", "会议", "2026 11 25"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        embed(texts[k], v, DIM);
        CHECK(fabs(norm(v, DIM) - 1.0) < 1e-5);
    }
    /* no words: the zero vector, whatever was in out before */
    static const char *const empty[] = {"", "   ", "!!! ... ---", "\xff\xfe\xc3", "—", "😀 €"};
    for (size_t k = 0; k < sizeof empty / sizeof empty[0]; k++) {
        for (int i = 0; i < DIM; i++)
            v[i] = 7.0f;
        embed(empty[k], v, DIM);
        CHECK(is_zero(v, DIM));
    }
    for (int i = 0; i < DIM; i++)
        v[i] = 7.0f;
    am_embed_hash(NULL, 0, v, DIM);
    CHECK(is_zero(v, DIM));

    /* dim 1: the sign of the sum; dim < 1 writes nothing */
    float one = 0;
    embed("hello world", &one, 1);
    CHECK(one == 1.0f || one == -1.0f || one == 0.0f);
    float untouched = 3.0f;
    am_embed_hash("hello", 5, &untouched, 0);
    am_embed_hash("hello", 5, &untouched, -4);
    CHECK(untouched == 3.0f);
    am_embed_hash("hello", 5, NULL, DIM); /* no crash */
}

static void test_determinism(void) {
    const char *s = "Dinner at Café Müller, 19:30 - bring the receipts!";
    float a[DIM], b[DIM];
    embed(s, a, DIM);
    embed(s, b, DIM);
    CHECK(memcmp(a, b, sizeof a) == 0);

    /* Pinned: the hash decides buckets and signs the same on every machine. A change
     * here changes every stored vector, so it comes with a new AM_EMBED_HASH_MODEL. */
    float v[64];
    embed("hello", v, 64);
    uint64_t sig = 1469598103934665603ULL;
    for (int i = 0; i < 64; i++) {
        int s3 = v[i] > 0 ? 1 : v[i] < 0 ? 2 : 0;
        sig = (sig ^ (uint64_t)(i * 3 + s3)) * 1099511628211ULL;
    }
    if (sig != PINNED_SIGNATURE)
        fprintf(stderr, "signature of \"hello\" at 64: %llu\n", (unsigned long long)sig);
    CHECK(sig == PINNED_SIGNATURE);
}

static void test_similarity(void) {
    const char *q = "meeting with Anna about the budget";
    double near = cosine(q, "budget meeting Anna"), far = cosine(q, "went running in the park");
    fprintf(stderr, "cosine near %.3f far %.3f\n", near, far);
    CHECK(near > far);
    CHECK(near > 0.5);
    CHECK(far < 0.3);

    /* a bag of words: order and punctuation do not matter */
    CHECK(same("hello, world", "world hello"));
    CHECK(same("e-mail", "e mail"));
    CHECK(cosine("anna", "anna's") > 0.5);
}

static void test_folding(void) {
    CHECK(same("café", "cafe"));
    CHECK(same("CAFÉ", "cafe"));
    CHECK(same("cafe\u0301", "cafe")); /* e + combining acute (NFD) */
    CHECK(same("Müller", "muller"));
    CHECK(same("Straße", "strasse"));
    CHECK(same("Łódź", "lodz"));
    CHECK(same("Æsop", "aesop"));
    CHECK(same("œuvre", "oeuvre"));
    CHECK(same("Ștefănescu", "stefanescu"));
    CHECK(same("HELLO World", "hello world"));
    CHECK(same("ＡＢＣ", "abc")); /* fullwidth */
    CHECK(same("ПРИВЕТ", "привет"));
    CHECK(same("ΑΘΗΝΑ", "αθηνα"));
    CHECK(cosine("cafe", "cafes") < 0.99); /* folding is not stemming */
}

static void test_typos_and_weights(void) {
    double typo = cosine("restaurant", "restaurnat");
    double other = cosine("restaurant", "banana");
    fprintf(stderr, "cosine typo %.3f other %.3f\n", typo, other);
    CHECK(typo > 0.3);
    CHECK(other < 0.2);
    CHECK(cosine("restaurants", "restaurant") > 0.6);

    /* Sublinear: eight times "x" does not drown one "y" (linear counts would give 0.12). */
    double y = cosine("x x x x x x x x y", "y");
    fprintf(stderr, "cosine with a rare word %.3f\n", y);
    CHECK(y > 0.25 && y < 0.5);
}

static void test_large_and_hostile(void) {
    /* A big text with many distinct words: the table flushes; still one unit vector. */
    size_t n = 2 << 20;
    char *s = malloc(n + 1);
    uint64_t x = 42;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int r = (int)(x >> 59); /* 0..31 */
        s[i] = r < 6 ? ' ' : (char)('a' + r % 26);
    }
    s[n] = '\0';
    float *a = malloc(sizeof(float) * 1024), *b = malloc(sizeof(float) * 1024);
    am_embed_hash(s, n, a, 1024);
    am_embed_hash(s, n, b, 1024);
    CHECK(fabs(norm(a, 1024) - 1.0) < 1e-4);
    CHECK(memcmp(a, b, sizeof(float) * 1024) == 0);

    /* every byte value, words longer than a word may be */
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(i * 131 + (i >> 8));
    am_embed_hash(s, n, a, 1024);
    double nn = norm(a, 1024);
    CHECK(fabs(nn - 1.0) < 1e-4 || nn == 0);
    memset(s, 'q', 5000);
    am_embed_hash(s, 5000, a, 1024);
    CHECK(fabs(norm(a, 1024) - 1.0) < 1e-4);
    free(s);
    free(a);
    free(b);
}

/* Out of memory the embedder falls back to a table on the stack: a short text gives the
 * very same vector. */
static void test_alloc_failure(void) {
    const char *s = "meeting with Anna about the budget at Café Central";
    float a[DIM], b[DIM];
    embed(s, a, DIM);
    for (int sticky = 0; sticky <= 1; sticky++) {
        for (long nth = 1; nth <= 2; nth++) {
            am_alloc_fail_at(nth, sticky);
            embed(s, b, DIM);
            am_alloc_fail_at(0, 0);
            CHECK(memcmp(a, b, sizeof a) == 0);
        }
    }
}

int main(void) {
    am_alloc_init();
    test_norm_and_zero();
    test_determinism();
    test_similarity();
    test_folding();
    test_typos_and_weights();
    test_large_and_hostile();
    test_alloc_failure();
    return TEST_END();
}
