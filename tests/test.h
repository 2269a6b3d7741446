/* test.h — the smallest test harness: CHECK records a failure with file:line and
 * goes on; TEST_END prints "N passed, N failed" and gives the exit code. */
#ifndef AM_TEST_H
#define AM_TEST_H

#include <stdio.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                          \
    } while (0)

#define TEST_END()                                                                                 \
    (printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

#endif
