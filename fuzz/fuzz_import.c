/* fuzz_import.c — libFuzzer target for the file importers: the input, written to a memfd,
 * through each parser (GPX, Takeout JSON, Apple Health XML, ICS) as a dry run, which
 * parses and converts every record into an event without a store. */
#include "import/import.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    am_log_set_level((enum am_log_level)(AM_LOG_ERROR + 1));
    if (am_crypto_init() != AM_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const kinds[] = {"gpx", "takeout", "apple-health", "ics"};
    int fd = memfd_create("fuzz_import", MFD_CLOEXEC);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    struct am_import_opts o = {0};
    o.batch_events = 7; /* several batches from small inputs */
    o.ics_from_ns = 1700000000LL * AM_NS_PER_S;
    o.ics_to_ns = 1800000000LL * AM_NS_PER_S;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct am_import_progress p;
        char err[300];
        if (lseek(fd, 0, SEEK_SET) != 0)
            abort();
        am_rc rc = am_import_fd(NULL, 1, kinds[i], fd, "fuzz", &o, &p, err, sizeof err);
        if (p.bytes_done > (int64_t)size || p.stored + p.rejected < 0)
            abort();
        if (rc == AM_EINVAL && !err[0])
            abort(); /* a refused file always says why */
    }
    close(fd);
    return 0;
}
