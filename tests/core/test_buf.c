/* test_buf.c — bounded growable buffers: the limit is hard, a refused append changes
 * nothing, the data is always NUL-terminated, and a failed allocation is survivable. */
#include "core/core.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static void test_limit(void) {
    struct am_buf b;
    am_buf_init(&b, 8);
    CHECK(b.data == NULL && b.len == 0 && b.max == 8);
    CHECK(am_buf_appends(&b, "1234") == AM_OK && b.len == 4 && strcmp(b.data, "1234") == 0);
    CHECK(am_buf_printf(&b, "%d", 5678) == AM_OK && b.len == 8); /* exactly at the limit */
    CHECK(strcmp(b.data, "12345678") == 0);
    CHECK(am_buf_appends(&b, "9") == AM_ELIMIT);
    CHECK(b.len == 8 && strcmp(b.data, "12345678") == 0); /* unchanged */
    CHECK(am_buf_printf(&b, "%s", "9") == AM_ELIMIT && b.len == 8);
    CHECK(am_buf_append(&b, "", 0) == AM_OK && b.len == 8); /* nothing still fits */
    CHECK(b.cap <= b.max + 1);
    am_buf_reset(&b);
    CHECK(b.len == 0 && b.data && b.data[0] == '\0' && b.cap > 0); /* memory kept */
    CHECK(am_buf_appends(&b, "abcdefgh") == AM_OK && strcmp(b.data, "abcdefgh") == 0);
    CHECK(am_buf_appends(&b, "") == AM_OK);
    am_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    am_buf_free(&b); /* twice is harmless */

    /* A length that would overflow size_t is a limit, not a wrap. */
    am_buf_init(&b, 16);
    CHECK(am_buf_appends(&b, "abc") == AM_OK);
    CHECK(am_buf_append(&b, "x", SIZE_MAX) == AM_ELIMIT);
    CHECK(am_buf_append(&b, "x", SIZE_MAX - 1) == AM_ELIMIT);
    CHECK(am_buf_append(&b, "x", 14) == AM_ELIMIT && b.len == 3);
    CHECK(strcmp(b.data, "abc") == 0);
    am_buf_free(&b);

    /* A zero limit takes nothing, but the empty string. */
    am_buf_init(&b, 0);
    CHECK(am_buf_appends(&b, "a") == AM_ELIMIT && b.len == 0);
    CHECK(am_buf_append(&b, "", 0) == AM_OK && b.data && b.data[0] == '\0');
    am_buf_free(&b);
}

static void test_printf(void) {
    struct am_buf b;
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    am_buf_init(&b, 4096);
    CHECK(am_buf_printf(&b, "<%s>", big) == AM_OK && b.len == 1001); /* past the small path */
    CHECK(b.data[0] == '<' && b.data[1000] == '>' && b.data[1001] == '\0');
    CHECK(am_buf_printf(&b, "%d-%s", 42, "x") == AM_OK && strcmp(b.data + 1001, "42-x") == 0);
    am_buf_free(&b);

    am_buf_init(&b, 1000);
    CHECK(am_buf_printf(&b, "%s", big) == AM_OK && b.len == 999);
    CHECK(am_buf_printf(&b, "%s", "z") == AM_OK && b.len == 1000);
    CHECK(am_buf_printf(&b, "%s", "z") == AM_ELIMIT && b.len == 1000);
    am_buf_reset(&b);
    CHECK(am_buf_printf(&b, "%s%s", big, "xy") == AM_ELIMIT && b.len == 0); /* 1001 > 1000 */
    CHECK(b.data[0] == '\0');
    am_buf_free(&b);
}

static void test_growth(void) {
    struct am_buf b;
    am_buf_init(&b, 1 << 20);
    int same = 1;
    for (int i = 0; i < 100000; i++) {
        char c = (char)('a' + i % 26);
        if (am_buf_append(&b, &c, 1) != AM_OK)
            same = 0;
    }
    CHECK(b.len == 100000 && strlen(b.data) == 100000 && b.cap <= b.max + 1);
    for (int i = 0; i < 100000 && same; i++)
        same = b.data[i] == (char)('a' + i % 26);
    CHECK(same);
    size_t len = 0;
    char *s = am_buf_steal(&b, &len);
    CHECK(s && len == 100000 && s[99999] == 'a' + 99999 % 26 && s[100000] == '\0');
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    am_free(s);
    /* Stealing from an empty buffer gives an empty string the caller owns. */
    s = am_buf_steal(&b, &len);
    CHECK(s && s[0] == '\0' && len == 0);
    am_free(s);
    /* The buffer is usable again after a steal. */
    CHECK(am_buf_appends(&b, "again") == AM_OK && strcmp(b.data, "again") == 0);
    am_buf_free(&b);
}

static void test_out_of_memory(void) {
    struct am_buf b;
    am_buf_init(&b, 1 << 16);
    am_alloc_fail_at(1, 0);
    CHECK(am_buf_appends(&b, "abc") == AM_ENOMEM && b.len == 0 && b.data == NULL);
    am_alloc_fail_at(0, 0);
    CHECK(am_buf_appends(&b, "abc") == AM_OK);
    char big[300];
    memset(big, 'x', sizeof big);
    am_alloc_fail_at(1, 1);
    CHECK(am_buf_append(&b, big, sizeof big) == AM_ENOMEM);
    CHECK(am_buf_printf(&b, "%.300s", big) == AM_ENOMEM);
    am_alloc_fail_at(0, 0);
    CHECK(b.len == 3 && strcmp(b.data, "abc") == 0); /* what was there stays */
    CHECK(am_buf_append(&b, big, sizeof big) == AM_OK && b.len == 303);
    am_buf_free(&b);
    am_alloc_fail_at(1, 0);
    size_t len = 7;
    char *s = am_buf_steal(&b, &len); /* nothing to steal and no memory: NULL */
    am_alloc_fail_at(0, 0);
    CHECK(s == NULL);
}

int main(void) {
    am_alloc_init();
    test_limit();
    test_printf();
    test_growth();
    test_out_of_memory();
    return TEST_END();
}
