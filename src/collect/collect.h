/* collect.h — what the files of am-collect (the Linux/X11 desktop collector) share:
 * the X connection, the screenshot and clipboard readers, system sensors, the SQLite
 * spool and the HTTP sender. Everything here runs on the collector's one thread. */
#ifndef AM_COLLECT_H
#define AM_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include <xcb/xcb.h>
#include <xcb/xcb_ewmh.h>

#include "core/core.h"

/* ---------------------------------------------------------------- x11.c */

struct collect_x11 {
    xcb_connection_t *conn;
    xcb_ewmh_connection_t ewmh;
    xcb_screen_t *screen;
    xcb_window_t root;
    int has_screensaver;
    xcb_window_t clip_window; /* ours, created on first clipboard read */
};

/* Connects to display (NULL: $DISPLAY). Caller closes with collect_x11_close. */
am_rc collect_x11_open(struct collect_x11 *x, const char *display);
void collect_x11_close(struct collect_x11 *x);
/* The active window's app (WM_CLASS class) and title (_NET_WM_NAME, else WM_NAME), each
 * owned by the caller (am_free). AM_ENOTFOUND when no window is active. */
am_rc collect_x11_window(struct collect_x11 *x, char **app, char **title);
/* Milliseconds since the last user input (the XScreenSaver extension). */
am_rc collect_x11_idle_ms(struct collect_x11 *x, uint32_t *idle_ms);

/* ---------------------------------------------------------------- shot.c */

/* The root window as PNG, unless its pixels hash to last_hash (then AM_ENOTFOUND and no
 * PNG). last_hash (32 bytes, zeroes at first) is updated. *png is owned by the caller (am_free). */
am_rc collect_shot(struct collect_x11 *x, uint8_t last_hash[32], uint8_t **png, size_t *png_len,
                   int *width, int *height);

/* ---------------------------------------------------------------- clip.c */

/* The CLIPBOARD selection as UTF-8 text, owned by the caller (am_free). AM_ENOTFOUND when
 * nobody owns it or it holds no text; waits at most timeout_ms for the owner. */
am_rc collect_clip_text(struct collect_x11 *x, int timeout_ms, char **text);

/* ---------------------------------------------------------------- sys.c */

struct collect_sys {
    uint64_t cpu_busy, cpu_total; /* the last /proc/stat reading */
    int have_cpu;
    long cpus;
};

void collect_sys_init(struct collect_sys *s);
/* A device.system payload {cpu_percent?, memory_used, disk_free}; caller owns (json_decref).
 * disk_path is the file system whose free space is reported. */
am_rc collect_sys_system(struct collect_sys *s, const char *disk_path, json_t **payload);
/* A device.battery payload {level, charging}; AM_ENOTFOUND when there is no battery. */
am_rc collect_sys_battery(const char *power_supply_dir, json_t **payload);

/* ---------------------------------------------------------------- send.c */

struct collect_send {
    char url[512];  /* AM's base URL, no trailing slash */
    char auth[600]; /* "Authorization: Bearer ..." */
    long timeout_ms;
};

/* POST /v1/blobs; AM_OK once AM answered 200/201 with the same sha256. */
am_rc collect_send_blob(struct collect_send *s, const uint8_t *data, size_t len,
                        const char *sha256_hex);
/* POST /v1/events with body (a JSON array of n events). On AM_OK, done[i] is 1 for each
 * event AM stored, found a duplicate of, or rejected for good (a resend cannot help);
 * AM_EBACKEND when AM could not be reached or failed, AM_EDENIED when it refused the token. */
am_rc collect_send_events(struct collect_send *s, const char *body, size_t body_len, size_t n,
                          uint8_t *done);

/* ---------------------------------------------------------------- spool.c */

struct collect_spool;

/* Opens (creating) the spool file. Caller closes with collect_spool_close. */
am_rc collect_spool_open(const char *path, struct collect_spool **out);
void collect_spool_close(struct collect_spool *sp);
/* Stores a blob (kept until uploaded); sha256_hex gets its hash. */
am_rc collect_spool_blob(struct collect_spool *sp, const uint8_t *data, size_t len,
                         char sha256_hex[65]);
/* Stores one event, with a fresh idempotency key, durably. ts_end_ns may be AM_TS_NONE,
 * blob NULL. Takes nothing from payload. */
am_rc collect_spool_event(struct collect_spool *sp, const char *stream, const char *source,
                          int64_t ts_ns, int64_t ts_end_ns, const json_t *payload,
                          const char *blob);
/* Sends what is spooled, oldest first, in batches of at most batch events, blobs before
 * the events naming them; stops at the first failure (what is left stays spooled).
 * *sent counts the events AM acknowledged. AM_EIO only for the spool's own failures. */
am_rc collect_spool_drain(struct collect_spool *sp, struct collect_send *s, size_t batch,
                          size_t *sent);
/* Events still spooled. */
long collect_spool_pending(struct collect_spool *sp);

#endif
