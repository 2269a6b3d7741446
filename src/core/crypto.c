/* crypto.c — hashing, randomness, tokens and encodings on libsodium. */
#include "core.h"

#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((struct am_sha256 *)0)->state),
               "am_sha256 too small for libsodium's state");

am_rc am_crypto_init(void) {
    return sodium_init() < 0 ? AM_EBACKEND : AM_OK;
}

void am_random_bytes(void *buf, size_t len) {
    randombytes_buf(buf, len);
}

void am_hex(const uint8_t *in, size_t len, char *out) {
    sodium_bin2hex(out, len * 2 + 1, in, len);
}

int am_is_hex(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

void am_sha256_init(struct am_sha256 *h) {
    crypto_hash_sha256_init((crypto_hash_sha256_state *)h->state);
}

void am_sha256_update(struct am_sha256 *h, const void *data, size_t len) {
    crypto_hash_sha256_update((crypto_hash_sha256_state *)h->state, data, len);
}

void am_sha256_final(struct am_sha256 *h, uint8_t out[32]) {
    crypto_hash_sha256_final((crypto_hash_sha256_state *)h->state, out);
}

void am_sha256_hex(const void *data, size_t len, char out[65]) {
    uint8_t d[32];
    crypto_hash_sha256(d, data, len);
    am_hex(d, 32, out);
}

void am_token_generate(char out[64]) {
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, "am_", 3);
    sodium_bin2base64(out + 3, 61, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

/* Tokens carry 256 random bits, so one fast hash suffices (no password stretching);
 * only the hash is stored, so a stolen database grants nothing. */
void am_token_hash(const char *token, size_t len, uint8_t out[32]) {
    static const uint8_t context[] = "am token v1";
    crypto_generichash(out, 32, (const uint8_t *)token, len, context, sizeof context - 1);
}

int am_memeq(const void *a, const void *b, size_t len) {
    return sodium_memcmp(a, b, len) == 0;
}

void am_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_len) {
    sodium_bin2base64(out, out_len, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

long am_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_len) {
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, out_len, in, len, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != in + len)
        return -1;
    return (long)n;
}
