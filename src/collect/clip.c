/* clip.c — the CLIPBOARD selection as text: ConvertSelection to UTF8_STRING onto a property
 * of a window of ours, then read it. Opt-in (--clipboard): a clipboard holds passwords. */
#include <poll.h>
#include <string.h>

#include "collect/collect.h"

#define CLIP_MAX_BYTES (1024 * 1024)

static xcb_atom_t atom(struct collect_x11 *x, const char *name) {
    xcb_intern_atom_reply_t *r = xcb_intern_atom_reply(
        x->conn, xcb_intern_atom(x->conn, 0, (uint16_t)strlen(name), name), NULL);
    xcb_atom_t a = r ? r->atom : XCB_NONE;
    free(r);
    return a;
}

/* Waits for our SelectionNotify; other events are not ours to handle and are dropped. */
static xcb_selection_notify_event_t *wait_notify(struct collect_x11 *x, int timeout_ms) {
    int64_t deadline = am_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        xcb_generic_event_t *ev;
        while ((ev = xcb_poll_for_event(x->conn)) != NULL) {
            if ((ev->response_type & 0x7f) == XCB_SELECTION_NOTIFY)
                return (xcb_selection_notify_event_t *)ev;
            free(ev);
        }
        if (xcb_connection_has_error(x->conn))
            return NULL;
        int64_t left_ms = (deadline - am_mono_ns()) / 1000000;
        if (left_ms <= 0)
            return NULL;
        struct pollfd p = {.fd = xcb_get_file_descriptor(x->conn), .events = POLLIN};
        poll(&p, 1, (int)left_ms);
    }
}

am_rc collect_clip_text(struct collect_x11 *x, int timeout_ms, char **text) {
    *text = NULL;
    xcb_atom_t clipboard = atom(x, "CLIPBOARD"), prop = atom(x, "AM_COLLECT_CLIP");
    xcb_atom_t utf8 = x->ewmh.UTF8_STRING;
    if (clipboard == XCB_NONE || prop == XCB_NONE)
        return AM_EIO;
    xcb_get_selection_owner_reply_t *owner =
        xcb_get_selection_owner_reply(x->conn, xcb_get_selection_owner(x->conn, clipboard), NULL);
    int owned = owner && owner->owner != XCB_NONE;
    free(owner);
    if (!owned)
        return AM_ENOTFOUND;
    if (!x->clip_window) {
        x->clip_window = xcb_generate_id(x->conn);
        xcb_create_window(x->conn, XCB_COPY_FROM_PARENT, x->clip_window, x->root, 0, 0, 1, 1, 0,
                          XCB_WINDOW_CLASS_INPUT_ONLY, XCB_COPY_FROM_PARENT, 0, NULL);
    }
    xcb_convert_selection(x->conn, x->clip_window, clipboard, utf8, prop, XCB_CURRENT_TIME);
    xcb_flush(x->conn);
    xcb_selection_notify_event_t *n = wait_notify(x, timeout_ms);
    int converted = n && n->property != XCB_NONE;
    free(n);
    if (!converted)
        return AM_ENOTFOUND;
    xcb_get_property_reply_t *r =
        xcb_get_property_reply(x->conn,
                               xcb_get_property(x->conn, 1, x->clip_window, prop,
                                                XCB_GET_PROPERTY_TYPE_ANY, 0, CLIP_MAX_BYTES / 4),
                               NULL);
    am_rc rc = AM_ENOTFOUND;
    /* INCR (a transfer in pieces) means more than we keep anyway: skipped */
    if (r && r->format == 8 && (r->type == utf8 || r->type == XCB_ATOM_STRING) &&
        xcb_get_property_value_length(r) > 0) {
        *text = am_strndup(xcb_get_property_value(r), (size_t)xcb_get_property_value_length(r));
        if (*text) {
            am_utf8_clean(*text);
            rc = AM_OK;
        } else {
            rc = AM_ENOMEM;
        }
    }
    free(r);
    return rc;
}
