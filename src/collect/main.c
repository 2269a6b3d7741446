/* main.c — am-collect: options, the sampling loop that turns focus and idleness into
 * desktop.window and desktop.afk spans (plus screenshots, clipboard and system readings),
 * and the spool drain. SIGINT/SIGTERM close the open spans, flush and exit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "collect/collect.h"

#define DRAIN_BATCH 500
#define BACKOFF_MAX_NS (60 * AM_NS_PER_S)

struct options {
    const char *url, *token, *spool, *display, *power_supply;
    char source[AM_SOURCE_MAX + 1];
    double interval_s, screenshots_s, system_s, afk_after_s;
    int clipboard, once, verbose;
};

struct state {
    struct options *opt;
    struct collect_x11 x;
    struct collect_spool *spool;
    struct collect_send send;
    struct collect_sys sys;
    char *app, *title; /* the open desktop.window span; NULL when none */
    int64_t window_start_ns;
    int afk_known, afk;
    int64_t afk_start_ns;
    uint8_t shot_hash[32];
    int64_t next_shot_ns, next_system_ns, next_drain_ns, backoff_ns;
    char *clip;
    char last_battery[64];
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: am-collect [options]\n"
            "  --url URL            AM's base URL (default http://127.0.0.1:8686)\n"
            "  --token T            API token with scope ingest (or AM_TOKEN)\n"
            "  --spool PATH         spool file (default $HOME/.am-collect.db)\n"
            "  --source NAME        source of the events (default am-collect@<host>)\n"
            "  --interval S         seconds between samples (default 5)\n"
            "  --afk-after S        idle seconds before AFK (default 180)\n"
            "  --screenshots S      a screenshot every S seconds when the screen changed (0: off)\n"
            "  --system S           seconds between device.system readings (default 60)\n"
            "  --clipboard          also record copied text (device.clipboard)\n"
            "  --display D          X display (default $DISPLAY)\n"
            "  --once               sample once, send, exit\n"
            "  --verbose            debug logging\n");
}

static int parse_seconds(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || v > 86400 * 365)
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o) {
    o->url = "http://127.0.0.1:8686";
    o->token = getenv("AM_TOKEN");
    o->power_supply = "/sys/class/power_supply";
    o->interval_s = 5;
    o->afk_after_s = 180;
    o->system_s = 60;
    char host[64] = "localhost";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = 0;
    snprintf(o->source, sizeof(o->source), "am-collect@%s", host);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "--once")) {
            o->once = 1, takes = 0;
        } else if (!strcmp(a, "--clipboard")) {
            o->clipboard = 1, takes = 0;
        } else if (!strcmp(a, "--verbose")) {
            o->verbose = 1, takes = 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!v) {
            fprintf(stderr, "am-collect: %s needs a value (or is unknown)\n", a);
            return -1;
        } else if (!strcmp(a, "--url")) {
            o->url = v;
        } else if (!strcmp(a, "--token")) {
            o->token = v;
        } else if (!strcmp(a, "--spool")) {
            o->spool = v;
        } else if (!strcmp(a, "--display")) {
            o->display = v;
        } else if (!strcmp(a, "--power-supply")) { /* for tests: a fake sysfs directory */
            o->power_supply = v;
        } else if (!strcmp(a, "--source")) {
            if (!*v || strlen(v) > AM_SOURCE_MAX) {
                fprintf(stderr, "am-collect: --source must be 1..%d bytes\n", AM_SOURCE_MAX);
                return -1;
            }
            snprintf(o->source, sizeof(o->source), "%s", v);
        } else if (!strcmp(a, "--interval") || !strcmp(a, "--screenshots") ||
                   !strcmp(a, "--system") || !strcmp(a, "--afk-after")) {
            double *dst = !strcmp(a, "--interval")      ? &o->interval_s
                          : !strcmp(a, "--screenshots") ? &o->screenshots_s
                          : !strcmp(a, "--system")      ? &o->system_s
                                                        : &o->afk_after_s;
            if (parse_seconds(v, dst) != 0) {
                fprintf(stderr, "am-collect: %s: not a number of seconds: %s\n", a, v);
                return -1;
            }
        } else {
            fprintf(stderr, "am-collect: unknown option %s\n", a);
            return -1;
        }
        i += takes;
    }
    if (!o->token || !*o->token) {
        fprintf(stderr, "am-collect: no token (--token or AM_TOKEN)\n");
        return -1;
    }
    if (o->interval_s < 0.05)
        o->interval_s = 0.05;
    return 0;
}

static int64_t seconds_ns(double s) {
    return (int64_t)(s * (double)AM_NS_PER_S);
}

static void spool_event(struct state *st, const char *stream, int64_t ts, int64_t ts_end,
                        json_t *payload, const char *blob) {
    if (!payload) {
        am_error("am-collect: out of memory building a %s event", stream);
        return;
    }
    if (collect_spool_event(st->spool, stream, st->opt->source, ts, ts_end, payload, blob) != AM_OK)
        am_error("am-collect: could not spool a %s event", stream);
    json_decref(payload);
}

/* Ends the open window span at end_ns. */
static void close_window(struct state *st, int64_t end_ns) {
    if (!st->app)
        return;
    if (end_ns < st->window_start_ns)
        end_ns = st->window_start_ns;
    spool_event(st, "desktop.window", st->window_start_ns, end_ns,
                json_pack("{s:s,s:s}", "app", st->app, "title", st->title), NULL);
    am_free(st->app);
    am_free(st->title);
    st->app = st->title = NULL;
}

static void close_afk(struct state *st, int64_t end_ns) {
    if (!st->afk_known)
        return;
    if (end_ns < st->afk_start_ns)
        end_ns = st->afk_start_ns;
    spool_event(st, "desktop.afk", st->afk_start_ns, end_ns,
                json_pack("{s:s}", "status", st->afk ? "afk" : "not-afk"), NULL);
    st->afk_start_ns = end_ns;
}

static void sample_afk(struct state *st, int64_t now) {
    uint32_t idle_ms;
    if (collect_x11_idle_ms(&st->x, &idle_ms) != AM_OK)
        return;
    int afk = (double)idle_ms >= st->opt->afk_after_s * 1000.0;
    int64_t last_input = now - (int64_t)idle_ms * 1000000;
    if (!st->afk_known) {
        st->afk_known = 1;
        st->afk = afk;
        st->afk_start_ns = afk ? last_input : now;
        return;
    }
    if (afk == st->afk)
        return;
    /* Both turns happen at the last input: AFK began when input stopped, and ended
     * when it came back. */
    close_afk(st, last_input);
    if (afk)
        close_window(st, last_input);
    st->afk = afk;
}

static void sample_window(struct state *st, int64_t now) {
    if (st->afk_known && st->afk)
        return;
    char *app = NULL, *title = NULL;
    am_rc rc = collect_x11_window(&st->x, &app, &title);
    if (rc != AM_OK) {
        if (rc == AM_ENOTFOUND)
            close_window(st, now);
        return;
    }
    if (st->app && !strcmp(st->app, app) && !strcmp(st->title, title)) {
        am_free(app);
        am_free(title);
        return;
    }
    close_window(st, now);
    st->app = app;
    st->title = title;
    st->window_start_ns = now;
}

static void sample_screenshot(struct state *st, int64_t now) {
    if (st->opt->screenshots_s <= 0 || now < st->next_shot_ns || (st->afk_known && st->afk))
        return;
    st->next_shot_ns = now + seconds_ns(st->opt->screenshots_s);
    uint8_t *png = NULL;
    size_t len = 0;
    int w, h;
    am_rc rc = collect_shot(&st->x, st->shot_hash, &png, &len, &w, &h);
    if (rc == AM_ENOTFOUND) {
        am_debug("am-collect: screen unchanged, no screenshot");
        return;
    }
    if (rc != AM_OK)
        return;
    char sha[65];
    if (collect_spool_blob(st->spool, png, len, sha) == AM_OK) {
        json_t *p = json_pack("{s:i,s:i}", "width", (json_int_t)w, "height", (json_int_t)h);
        if (p && st->app)
            json_object_set_new(p, "app", json_string(st->app));
        spool_event(st, "image.screenshot", now, AM_TS_NONE, p, sha);
    } else {
        /* a failed blob write must not leave the hash claiming it was taken */
        memset(st->shot_hash, 0, sizeof(st->shot_hash));
    }
    am_free(png);
}

static void sample_clipboard(struct state *st, int64_t now) {
    if (!st->opt->clipboard)
        return;
    char *text = NULL;
    if (collect_clip_text(&st->x, 500, &text) != AM_OK)
        return;
    if (st->clip && !strcmp(st->clip, text)) {
        am_free(text);
        return;
    }
    am_free(st->clip);
    st->clip = text;
    spool_event(st, "device.clipboard", now, AM_TS_NONE, json_pack("{s:s}", "text", text), NULL);
}

static void sample_system(struct state *st, int64_t now) {
    if (now < st->next_system_ns)
        return;
    st->next_system_ns = now + seconds_ns(st->opt->system_s);
    json_t *p = NULL;
    if (collect_sys_system(&st->sys, st->opt->spool, &p) == AM_OK)
        spool_event(st, "device.system", now, AM_TS_NONE, p, NULL);
    if (collect_sys_battery(st->opt->power_supply, &p) == AM_OK) {
        /* the battery is an event when it changes, not a reading every minute */
        char *text = am_json_dump(p, NULL);
        if (text && strcmp(text, st->last_battery) != 0) {
            snprintf(st->last_battery, sizeof(st->last_battery), "%s", text);
            spool_event(st, "device.battery", now, AM_TS_NONE, p, NULL);
            p = NULL;
        }
        am_free(text);
        json_decref(p);
    }
}

static void drain(struct state *st, int64_t now, int force) {
    if (!force && now < st->next_drain_ns)
        return;
    size_t sent = 0;
    am_rc rc = collect_spool_drain(st->spool, &st->send, DRAIN_BATCH, &sent);
    if (sent)
        am_info("am-collect: sent %zu events", sent);
    if (rc == AM_OK) {
        st->backoff_ns = 0;
        st->next_drain_ns = now;
        return;
    }
    st->backoff_ns = st->backoff_ns ? st->backoff_ns * 2 : AM_NS_PER_S;
    if (st->backoff_ns > BACKOFF_MAX_NS)
        st->backoff_ns = BACKOFF_MAX_NS;
    st->next_drain_ns = am_mono_ns() + st->backoff_ns;
    am_warn("am-collect: AM not reachable (%s); %ld events spooled, next try in %llds",
            am_strerror(rc), collect_spool_pending(st->spool),
            (long long)(st->backoff_ns / AM_NS_PER_S));
}

static void sleep_s(double s) {
    int64_t until = am_mono_ns() + seconds_ns(s);
    while (!stopping) {
        int64_t left = until - am_mono_ns();
        if (left <= 0)
            return;
        if (left > 100000000)
            left = 100000000;
        struct timespec ts = {0, (long)left};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    struct options opt = {0};
    struct state st = {0};
    int code = 1;
    am_alloc_init();
    if (parse_options(argc, argv, &opt) != 0) {
        usage(stderr);
        return 2;
    }
    am_log_set_level(opt.verbose ? AM_LOG_DEBUG : AM_LOG_INFO);
    char default_spool[600];
    if (!opt.spool) {
        const char *home = getenv("HOME");
        snprintf(default_spool, sizeof(default_spool), "%s/.am-collect.db", home ? home : ".");
        opt.spool = default_spool;
    }
    st.opt = &opt;
    if (am_crypto_init() != AM_OK)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(st.send.url, sizeof(st.send.url), "%s", opt.url);
    size_t ul = strlen(st.send.url);
    while (ul && st.send.url[ul - 1] == '/')
        st.send.url[--ul] = 0;
    snprintf(st.send.auth, sizeof(st.send.auth), "Authorization: Bearer %s", opt.token);
    st.send.timeout_ms = 30000;
    collect_sys_init(&st.sys);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (collect_spool_open(opt.spool, &st.spool) != AM_OK)
        goto out;
    if (collect_x11_open(&st.x, opt.display) != AM_OK)
        goto out;
    am_info("am-collect: sampling every %gs as %s, spool %s, AM at %s", opt.interval_s, opt.source,
            opt.spool, st.send.url);
    code = 0;
    while (!stopping) {
        int64_t now = am_now_ns();
        sample_afk(&st, now);
        sample_window(&st, now);
        sample_screenshot(&st, now);
        sample_clipboard(&st, now);
        sample_system(&st, now);
        if (xcb_connection_has_error(st.x.conn)) {
            am_error("am-collect: lost the X connection");
            code = 1;
            break;
        }
        if (opt.once)
            break;
        drain(&st, am_mono_ns(), 0);
        sleep_s(opt.interval_s);
    }
    /* the spans still open end now, and everything spooled gets one more try */
    int64_t end = am_now_ns();
    close_window(&st, end);
    close_afk(&st, end);
    drain(&st, am_mono_ns(), 1);
    long left = collect_spool_pending(st.spool);
    if (left > 0)
        am_info("am-collect: %ld events stay spooled in %s for the next run", left, opt.spool);
out:
    collect_x11_close(&st.x);
    collect_spool_close(st.spool);
    am_free(st.app);
    am_free(st.title);
    am_free(st.clip);
    curl_global_cleanup();
    return code;
}
