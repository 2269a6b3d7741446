/* x11.c — the X connection: which window is active (EWMH, else the input focus), its app
 * (WM_CLASS) and title, and how long the user has been idle (XScreenSaver extension). */
#include <string.h>

#include <xcb/screensaver.h>

#include "collect/collect.h"

#define TITLE_MAX_BYTES 4096

am_rc collect_x11_open(struct collect_x11 *x, const char *display) {
    memset(x, 0, sizeof(*x));
    int screen_no = 0;
    x->conn = xcb_connect(display, &screen_no);
    if (!x->conn || xcb_connection_has_error(x->conn)) {
        am_error("am-collect: cannot connect to X display %s", display ? display : "$DISPLAY");
        if (x->conn)
            xcb_disconnect(x->conn);
        x->conn = NULL;
        return AM_EIO;
    }
    xcb_screen_iterator_t it = xcb_setup_roots_iterator(xcb_get_setup(x->conn));
    for (int i = 0; i < screen_no && it.rem; i++)
        xcb_screen_next(&it);
    x->screen = it.data;
    x->root = x->screen->root;
    xcb_intern_atom_cookie_t *ck = xcb_ewmh_init_atoms(x->conn, &x->ewmh);
    if (!ck || !xcb_ewmh_init_atoms_replies(&x->ewmh, ck, NULL)) {
        am_error("am-collect: cannot intern the EWMH atoms");
        xcb_disconnect(x->conn);
        x->conn = NULL;
        return AM_EIO;
    }
    const xcb_query_extension_reply_t *ext = xcb_get_extension_data(x->conn, &xcb_screensaver_id);
    x->has_screensaver = ext && ext->present;
    if (!x->has_screensaver)
        am_warn("am-collect: the X server lacks MIT-SCREEN-SAVER; AFK is not detected");
    return AM_OK;
}

void collect_x11_close(struct collect_x11 *x) {
    if (!x->conn)
        return;
    if (x->clip_window)
        xcb_destroy_window(x->conn, x->clip_window);
    xcb_ewmh_connection_wipe(&x->ewmh);
    xcb_disconnect(x->conn);
    x->conn = NULL;
}

/* A window-valued property whatever type a window manager (or xprop) gave it. */
static xcb_window_t window_property(struct collect_x11 *x, xcb_window_t w, xcb_atom_t atom) {
    xcb_get_property_reply_t *r = xcb_get_property_reply(
        x->conn, xcb_get_property(x->conn, 0, w, atom, XCB_GET_PROPERTY_TYPE_ANY, 0, 1), NULL);
    xcb_window_t out = XCB_NONE;
    if (r && r->format == 32 && xcb_get_property_value_length(r) >= 4)
        memcpy(&out, xcb_get_property_value(r), 4);
    free(r);
    return out;
}

/* The property's bytes as a NUL-terminated string (am_free), or NULL. */
static char *string_property(struct collect_x11 *x, xcb_window_t w, xcb_atom_t atom,
                             xcb_atom_t *type, size_t *len) {
    xcb_get_property_reply_t *r = xcb_get_property_reply(
        x->conn,
        xcb_get_property(x->conn, 0, w, atom, XCB_GET_PROPERTY_TYPE_ANY, 0, TITLE_MAX_BYTES / 4),
        NULL);
    char *out = NULL;
    if (r && r->format == 8) {
        *len = (size_t)xcb_get_property_value_length(r);
        *type = r->type;
        out = am_strndup(xcb_get_property_value(r), *len);
    }
    free(r);
    return out;
}

/* WM_NAME and WM_CLASS of type STRING are ISO 8859-1: widen to UTF-8. */
static char *latin1_to_utf8(const char *s, size_t len) {
    char *out = am_malloc(len * 2 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[o++] = (char)c;
        } else {
            out[o++] = (char)(0xc0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = 0;
    return out;
}

static char *text_property(struct collect_x11 *x, xcb_window_t w, xcb_atom_t atom) {
    xcb_atom_t type = XCB_NONE;
    size_t len = 0;
    char *raw = string_property(x, w, atom, &type, &len);
    if (!raw)
        return NULL;
    if (type == XCB_ATOM_STRING) {
        char *wide = latin1_to_utf8(raw, len);
        am_free(raw);
        return wide;
    }
    am_utf8_clean(raw);
    return raw;
}

/* The toplevel the client named: the focus may sit on a child without WM_CLASS. */
static xcb_window_t client_window(struct collect_x11 *x, xcb_window_t w) {
    for (int depth = 0; depth < 16 && w != XCB_NONE && w != x->root; depth++) {
        xcb_get_property_reply_t *r = xcb_get_property_reply(
            x->conn, xcb_get_property(x->conn, 0, w, XCB_ATOM_WM_CLASS, XCB_ATOM_STRING, 0, 64),
            NULL);
        int has_class = r && xcb_get_property_value_length(r) > 0;
        free(r);
        if (has_class)
            return w;
        xcb_query_tree_reply_t *t = xcb_query_tree_reply(x->conn, xcb_query_tree(x->conn, w), NULL);
        if (!t)
            return XCB_NONE;
        w = t->parent;
        free(t);
    }
    return XCB_NONE;
}

am_rc collect_x11_window(struct collect_x11 *x, char **app, char **title) {
    *app = *title = NULL;
    xcb_window_t w = window_property(x, x->root, x->ewmh._NET_ACTIVE_WINDOW);
    if (w == XCB_NONE) {
        /* No EWMH window manager: the input focus is the next best thing. */
        xcb_get_input_focus_reply_t *f =
            xcb_get_input_focus_reply(x->conn, xcb_get_input_focus(x->conn), NULL);
        if (f && f->focus != XCB_NONE && f->focus != XCB_INPUT_FOCUS_POINTER_ROOT)
            w = f->focus;
        free(f);
    }
    w = client_window(x, w);
    if (w == XCB_NONE)
        return AM_ENOTFOUND;

    xcb_atom_t type;
    size_t len = 0;
    char *cls = string_property(x, w, XCB_ATOM_WM_CLASS, &type, &len);
    if (cls) {
        /* "instance\0class\0": the class names the application. */
        size_t first = strnlen(cls, len);
        const char *name = first + 1 < len && cls[first + 1] ? cls + first + 1 : cls;
        *app = latin1_to_utf8(name, strlen(name));
        am_free(cls);
    }
    if (!*app || !**app) {
        am_free(*app);
        *app = am_strdup("unknown");
    }
    *title = text_property(x, w, x->ewmh._NET_WM_NAME);
    if (!*title)
        *title = text_property(x, w, XCB_ATOM_WM_NAME);
    if (!*title)
        *title = am_strdup("");
    if (!*app || !*title) {
        am_free(*app);
        am_free(*title);
        *app = *title = NULL;
        return AM_ENOMEM;
    }
    return AM_OK;
}

am_rc collect_x11_idle_ms(struct collect_x11 *x, uint32_t *idle_ms) {
    *idle_ms = 0;
    if (!x->has_screensaver)
        return AM_ENOTFOUND;
    xcb_screensaver_query_info_reply_t *r = xcb_screensaver_query_info_reply(
        x->conn, xcb_screensaver_query_info(x->conn, x->root), NULL);
    if (!r)
        return AM_EIO;
    *idle_ms = r->ms_since_user_input;
    free(r);
    return AM_OK;
}
