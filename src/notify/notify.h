/* notify.h — delivery of nudges beyond AM's own WebSocket: a generic webhook (the nudge
 * event as JSON), ntfy (a topic URL) and Gotify (server URL + application token), each
 * set in the configuration. Delivery is best effort with a few quick retries; the nudge
 * is already stored (and live on the WebSocket) whatever happens here. */
#ifndef AM_NOTIFY_H
#define AM_NOTIFY_H

#include "../core/core.h"

struct am_server;

/* Sends one nudge (its stored event as JSON) to every configured channel. Adds
 * {"webhook"|"ntfy"|"gotify": HTTP status or 0} to outcome. Blocking; bounded by
 * cfg.model_timeout_ms per attempt. */
void am_notify_push(struct am_server *srv, const json_t *nudge_event, json_t *outcome);

#endif
