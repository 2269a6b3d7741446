/* test_config.c — the settings table: defaults, the config file, AM_* environment
 * variables and am_config_set, in that order of precedence; bad values and names. */
#include "core/core.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static const char *env_names[] = {
    "AM_DATA_DIR",
    "AM_LISTEN",
    "AM_LOG_LEVEL",
    "AM_CONFIG_FILE",
    "AM_STORE",
    "AM_BUS",
    "AM_HTTP_THREADS",
    "AM_MAX_BODY_BYTES",
    "AM_MAX_BATCH_EVENTS",
    "AM_MAX_JSON_DEPTH",
    "AM_MAX_PAYLOAD_BYTES",
    "AM_MAX_BLOB_BYTES",
    "AM_RATE_LIMIT_PER_S",
    "AM_RATE_LIMIT_BURST",
    "AM_WS_MAX_FRAME_BYTES",
    "AM_GROUP_COMMIT_MAX_EVENTS",
};

static char path[64];

/* Writes text to a fresh temporary file named in `path`. */
static void write_file(const char *text) {
    snprintf(path, sizeof path, "/tmp/am_test_config_XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        CHECK(!"cannot write a temporary file");
        return;
    }
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void) {
    struct am_config c;
    memset(&c, 0x5a, sizeof c);
    am_config_defaults(&c);
    CHECK(strcmp(c.data_dir, "./data") == 0);
    CHECK(strcmp(c.listen, "127.0.0.1:8686") == 0);
    CHECK(strcmp(c.log_level, "info") == 0);
    CHECK(strcmp(c.config_file, "") == 0);
    CHECK(strcmp(c.store, "sqlite") == 0 && strcmp(c.bus, "inproc") == 0);
    CHECK(c.http_threads == 128);
    CHECK(c.max_body_bytes == 16777216);
    CHECK(c.max_batch_events == 10000);
    CHECK(c.max_json_depth == 32);
    CHECK(c.max_payload_bytes == 262144);
    CHECK(c.max_blob_bytes == 1073741824);
    CHECK(c.rate_limit_per_s == 1000 && c.rate_limit_burst == 2000);
    CHECK(c.ws_max_frame_bytes == 4194304);
    CHECK(c.group_commit_max_events == 20000);
}

static void test_set(void) {
    struct am_config c;
    char err[200];
    am_config_defaults(&c);
    CHECK(am_config_set(&c, "max-json-depth", "20", err, sizeof err) == AM_OK &&
          c.max_json_depth == 20);
    CHECK(am_config_set(&c, "max_json_depth", "21", err, sizeof err) == AM_OK &&
          c.max_json_depth == 21);
    CHECK(am_config_set(&c, "MAX-JSON-DEPTH", "22", err, sizeof err) == AM_OK &&
          c.max_json_depth == 22);
    CHECK(am_config_set(&c, "listen", "0.0.0.0:9000", err, sizeof err) == AM_OK &&
          strcmp(c.listen, "0.0.0.0:9000") == 0);
    CHECK(am_config_set(&c, "data-dir", "", err, sizeof err) == AM_OK && c.data_dir[0] == '\0');
    CHECK(am_config_set(&c, "rate_limit_per_s", "0", err, sizeof err) == AM_OK &&
          c.rate_limit_per_s == 0); /* 0 means no limit */
    CHECK(am_config_set(&c, "max_blob_bytes", "1099511627776", err, sizeof err) == AM_OK &&
          c.max_blob_bytes == 1099511627776LL); /* 64-bit values */

    /* Bad values are refused with the setting's name, and change nothing. */
    static const char *bad_depth[] = {
        "0", "1", "1001", "-5", "", "x", "12x", "12 ", "1e3", "0x20", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_depth / sizeof bad_depth[0]; i++) {
        err[0] = '\0';
        CHECK(am_config_set(&c, "max_json_depth", bad_depth[i], err, sizeof err) == AM_EINVAL);
        CHECK(strstr(err, "max_json_depth") != NULL && c.max_json_depth == 22);
    }
    CHECK(am_config_set(&c, "max_json_depth", "2", err, sizeof err) == AM_OK);    /* lowest */
    CHECK(am_config_set(&c, "max_json_depth", "1000", err, sizeof err) == AM_OK); /* highest */
    CHECK(am_config_set(&c, "rate_limit_per_s", "-1", err, sizeof err) == AM_EINVAL);
    CHECK(am_config_set(&c, "http_threads", "1", err, sizeof err) == AM_EINVAL);

    /* Strings must fit their field. */
    char longv[200];
    memset(longv, 'h', sizeof longv);
    longv[127] = '\0';
    CHECK(am_config_set(&c, "listen", longv, err, sizeof err) == AM_OK); /* 127 + NUL */
    longv[127] = 'h';
    longv[128] = '\0';
    CHECK(am_config_set(&c, "listen", longv, err, sizeof err) == AM_EINVAL &&
          strstr(err, "listen") && strlen(c.listen) == 127);

    CHECK(am_config_set(&c, "nope", "1", err, sizeof err) == AM_EINVAL && strstr(err, "nope"));
    CHECK(am_config_set(&c, "", "1", err, sizeof err) == AM_EINVAL);
    CHECK(am_config_set(&c, "max_json_depth_", "1", err, sizeof err) == AM_EINVAL);
    memset(longv, 'n', sizeof longv);
    longv[sizeof longv - 1] = '\0';
    CHECK(am_config_set(&c, longv, "1", err, sizeof err) == AM_EINVAL);
}

static void test_file(void) {
    struct am_config c;
    char err[300];
    am_config_defaults(&c);
    write_file("# AM settings\n"
               "\n"
               "   max-json-depth   =   12   \n"
               "listen=10.0.0.1:1\n"
               "\tdata_dir = /var/lib/am data\n"
               "log_level = debug\r\n"
               "# max_batch_events = 5\n");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_OK);
    CHECK(c.max_json_depth == 12 && strcmp(c.listen, "10.0.0.1:1") == 0);
    CHECK(strcmp(c.data_dir, "/var/lib/am data") == 0); /* inner blanks are kept */
    CHECK(strcmp(c.log_level, "debug") == 0);           /* CRLF is a line end */
    CHECK(c.max_batch_events == 10000);                 /* comments are comments */
    unlink(path);

    /* The first '=' splits; the value may hold more. */
    write_file("data_dir = /a=b\n");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_OK &&
          strcmp(c.data_dir, "/a=b") == 0);
    unlink(path);

    /* Errors name the file and the line. */
    write_file("listen = 1.2.3.4:5\n\nbogus = 1\n");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_EINVAL);
    CHECK(strstr(err, path) && strstr(err, ":3:") && strstr(err, "bogus"));
    unlink(path);
    write_file("# ok\nmax_json_depth 12\n");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_EINVAL && strstr(err, ":2:"));
    unlink(path);
    write_file("max_json_depth = 5000\n");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_EINVAL &&
          strstr(err, "max_json_depth") && c.max_json_depth == 12);
    unlink(path);
    write_file("= 5\n");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_EINVAL);
    unlink(path);
    write_file("");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_OK);
    unlink(path);
    CHECK(am_config_load_file(&c, "/nonexistent/am.conf", err, sizeof err) == AM_EIO &&
          strstr(err, "/nonexistent/am.conf"));

    /* A long comment is one comment: its tail is not read as a setting of its own. */
    char text[1200];
    memset(text, 'c', sizeof text);
    text[0] = '#';
    snprintf(text + 1023, sizeof text - 1023, "listen = 6.6.6.6:66\n");
    am_config_defaults(&c);
    write_file(text);
    am_rc rc = am_config_load_file(&c, path, err, sizeof err);
    /* am_config_load_file reads lines with fgets into 1024 bytes: the 1024th byte on starts a
     * "line" of its own, here a setting inside a comment. */
    CHECK(rc != AM_OK || strcmp(c.listen, "127.0.0.1:8686") == 0);
    unlink(path);
}

static void test_env(void) {
    struct am_config c;
    char err[200];
    am_config_defaults(&c);
    CHECK(am_config_load_env(&c, err, sizeof err) == AM_OK); /* none set: no change */
    CHECK(c.max_json_depth == 32 && strcmp(c.listen, "127.0.0.1:8686") == 0);
    setenv("AM_MAX_JSON_DEPTH", "12", 1);
    setenv("AM_LISTEN", "[::1]:7", 1);
    setenv("AM_GROUP_COMMIT_MAX_EVENTS", "7", 1);
    setenv("AM_max_batch_events", "5", 1); /* only the upper-case names are read */
    CHECK(am_config_load_env(&c, err, sizeof err) == AM_OK);
    CHECK(c.max_json_depth == 12 && strcmp(c.listen, "[::1]:7") == 0);
    CHECK(c.group_commit_max_events == 7 && c.max_batch_events == 10000);
    unsetenv("AM_max_batch_events");
    setenv("AM_MAX_JSON_DEPTH", "x", 1);
    CHECK(am_config_load_env(&c, err, sizeof err) == AM_EINVAL && strstr(err, "max_json_depth"));
    CHECK(c.max_json_depth == 12);
    setenv("AM_MAX_JSON_DEPTH", "", 1);
    CHECK(am_config_load_env(&c, err, sizeof err) == AM_EINVAL);
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]);
}

/* default < file < environment < command line, each layer changing only what it names. */
static void test_precedence(void) {
    struct am_config c;
    char err[200];
    am_config_defaults(&c);
    write_file("max_json_depth = 10\nmax_batch_events = 11\nlisten = file:1\n");
    CHECK(am_config_load_file(&c, path, err, sizeof err) == AM_OK);
    unlink(path);
    setenv("AM_MAX_BATCH_EVENTS", "21", 1);
    setenv("AM_LISTEN", "env:2", 1);
    CHECK(am_config_load_env(&c, err, sizeof err) == AM_OK);
    CHECK(am_config_set(&c, "listen", "cli:3", err, sizeof err) == AM_OK);
    CHECK(c.max_payload_bytes == 262144);  /* default */
    CHECK(c.max_json_depth == 10);         /* file */
    CHECK(c.max_batch_events == 21);       /* environment over file */
    CHECK(strcmp(c.listen, "cli:3") == 0); /* command line over both */
    unsetenv("AM_MAX_BATCH_EVENTS");
    unsetenv("AM_LISTEN");
}

static void test_print(void) {
    struct am_config c;
    char err[200], text[8192];
    am_config_defaults(&c);
    CHECK(am_config_set(&c, "max_json_depth", "17", err, sizeof err) == AM_OK);
    FILE *f = tmpfile();
    am_config_print(&c, f);
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    CHECK(strstr(text, "max_json_depth = 17\n") && strstr(text, "listen = 127.0.0.1:8686\n"));
    CHECK(strstr(text, "data_dir = ./data\n") && strstr(text, "group_commit_max_events = 20000\n"));
    fclose(f);
    f = tmpfile();
    am_config_print_help(&c, f);
    rewind(f);
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    CHECK(strstr(text, "--max-json-depth") && strstr(text, "(default: 32)"));
    CHECK(strstr(text, "--data-dir") && !strstr(text, "--data_dir"));
    fclose(f);
}

int main(void) {
    am_alloc_init();
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]); /* the tests own the environment */
    test_defaults();
    test_set();
    test_file();
    test_env();
    test_precedence();
    test_print();
    return TEST_END();
}
