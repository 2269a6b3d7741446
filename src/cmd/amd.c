/* amd.c — the AM daemon: reads the settings, opens the store and the bus, serves
 * HTTP/WebSocket until SIGINT/SIGTERM, then closes everything in order. */
#include "ingest/ingest.h"
#include "process/process.h"
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f) {
    struct am_config d;
    am_config_defaults(&d);
    fprintf(f, "usage: amd [--data-dir DIR] [--listen HOST:PORT] [--SETTING VALUE ...]\n"
               "           [--check-config] [--help]\n\n");
    am_config_print_help(&d, f);
}

/* mkdir -p for the data directory. */
static int make_dirs(const char *path) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return (mkdir(tmp, 0700) != 0 && errno != EEXIST) ? -1 : 0;
}

/* Writes DIR/amd.url so the CLI finds the running daemon; atomically, by rename. */
static void write_url(const struct am_server *srv) {
    char path[600], tmp[620], url[200];
    const char *listen = srv->cfg.listen;
    const char *colon = strrchr(listen, ':');
    size_t host_len = colon ? (size_t)(colon - listen) : 0;
    char host[128] = "127.0.0.1";
    if (host_len && host_len < sizeof host) {
        memcpy(host, listen, host_len);
        host[host_len] = '\0';
        if (strcmp(host, "0.0.0.0") == 0)
            snprintf(host, sizeof host, "127.0.0.1");
    }
    snprintf(url, sizeof url, "http://%s:%d\n", host, am_http_port(srv));
    snprintf(path, sizeof path, "%s/amd.url", srv->cfg.data_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fputs(url, f);
    fclose(f);
    rename(tmp, path);
    am_info("amd: listening on %.*s", (int)strlen(url) - 1, url);
}

int main(int argc, char **argv) {
    /* tesseract's OpenMP reads OMP_THREAD_LIMIT only at process start: set it and
     * start again, so OCR later runs one thread per worker (FACTS.md: ~10x faster). */
    if (!getenv("OMP_THREAD_LIMIT")) {
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        setenv("OMP_THREAD_LIMIT", "1", 1);
        if (n > 0) {
            self[n] = '\0';
            execv(self, argv); /* the real path keeps the process named "amd" */
        }
    }
    struct am_server srv;
    char err[512];
    int check = 0, rc = 1, lock_fd = -1;
    memset(&srv, 0, sizeof srv);
    am_alloc_init();
    am_config_defaults(&srv.cfg);

    /* The config file comes first in precedence order, so find it before the rest. */
    const char *file = getenv("AM_CONFIG_FILE");
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--config-file") || !strcmp(argv[i], "--config"))
            file = argv[i + 1];
    if (file && *file && am_config_load_file(&srv.cfg, file, err, sizeof err) != AM_OK) {
        fprintf(stderr, "amd: %s\n", err);
        return 2;
    }
    if (am_config_load_env(&srv.cfg, err, sizeof err) != AM_OK) {
        fprintf(stderr, "amd: environment: %s\n", err);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--check-config")) {
            check = 1;
            continue;
        }
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "amd: unexpected argument '%s' (see amd --help)\n", a);
            return 2;
        }
        if (am_config_set(&srv.cfg, a + 2, argv[++i], err, sizeof err) != AM_OK) {
            fprintf(stderr, "amd: %s\n", err);
            return 2;
        }
    }
    if (check) {
        am_config_print(&srv.cfg, stdout);
        return 0;
    }
    enum am_log_level level;
    if (!am_log_level_parse(srv.cfg.log_level, &level)) {
        fprintf(stderr, "amd: log_level: debug, info, warn or error\n");
        return 2;
    }
    am_log_set_level(level);
    if (am_crypto_init() != AM_OK) {
        fprintf(stderr, "amd: libsodium failed to initialise\n");
        return 1;
    }
    if (make_dirs(srv.cfg.data_dir) != 0) {
        fprintf(stderr, "amd: cannot create %s: %s\n", srv.cfg.data_dir, strerror(errno));
        return 1;
    }
    char lock_path[600];
    snprintf(lock_path, sizeof lock_path, "%s/amd.lock", srv.cfg.data_dir);
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "amd: %s is in use by another amd\n", srv.cfg.data_dir);
        return 1;
    }

    /* Signals are taken by sigwait below; every thread started after this inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv.started_ns = am_now_ns();
    char embed_model[128];
    am_process_embed_model(&srv.cfg, embed_model, sizeof embed_model);
    struct am_store_config sc = {.data_dir = srv.cfg.data_dir,
                                 .group_commit_max_events =
                                     (size_t)srv.cfg.group_commit_max_events,
                                 .read_connections = 8,
                                 .job_kinds = am_process_kinds(&srv.cfg),
                                 .embed_model = embed_model};
    am_rc r = am_store_open(&srv.store, srv.cfg.store, &sc);
    if (r) {
        fprintf(stderr, "amd: store '%s' in %s: %s\n", srv.cfg.store, srv.cfg.data_dir,
                am_strerror(r));
        goto out;
    }
    r = am_bus_open(&srv.bus, srv.cfg.bus, NULL);
    if (r) {
        fprintf(stderr, "amd: bus '%s': %s\n", srv.cfg.bus, am_strerror(r));
        goto out_store;
    }
    if (am_metrics_new(&srv.metrics) != AM_OK)
        goto out_bus;
    if (am_process_start(&srv, &srv.process) != AM_OK) {
        fprintf(stderr, "amd: the pipeline's workers did not start\n");
        goto out_metrics;
    }
    /* Before HTTP: once the server answers, amd.url follows at once (clients wait on it). */
    if (am_agent_start(&srv, &srv.agent) != AM_OK)
        am_warn("amd: the agent's triggers did not start; nudges only on request");
    if (am_http_start(&srv, err, sizeof err) != AM_OK) {
        fprintf(stderr, "amd: %s\n", err);
        goto out_process;
    }
    write_url(&srv);
    /* After HTTP: an amd that cannot bind its port exits before it has taken (and
     * acknowledged) anything from the broker's queue; the connect itself is asynchronous,
     * so a broker that is down delays nothing. */
    if (srv.cfg.mqtt_url[0] && am_mqtt_start(&srv, &srv.mqtt, err, sizeof err) != AM_OK) {
        fprintf(stderr, "amd: %s\n", err);
        am_http_stop(&srv);
        goto out_process;
    }
    int sig = 0;
    sigwait(&sigs, &sig);
    am_info("amd: signal %d, stopping", sig);
    rc = 0;
    /* First: a message in hand is stored and acknowledged before the store closes. */
    am_mqtt_stop(srv.mqtt);
    srv.mqtt = NULL;
    am_http_stop(&srv);
out_process:
    am_agent_stop(srv.agent);
    srv.agent = NULL;
    /* After HTTP: no request can reach search's embedder once the workers are gone. */
    am_process_stop(srv.process);
    srv.process = NULL;
out_metrics:
    am_metrics_free(srv.metrics);
    srv.metrics = NULL;
out_bus:
    am_bus_close(&srv.bus);
out_store:
    am_store_close(&srv.store);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
