/* http_clients.c — doors for the location apps people already run: OwnTracks (HTTP mode,
 * POST /pub), Overland (POST /v1/overland) and the GPSLogger/Traccar/OsmAnd query style
 * (GET or POST /v1/gps). Each format is parsed into events by a function that needs no
 * connection (the fuzz target calls them), and every event goes through am_ingest_submit. */
#include "http_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- shared helpers */

/* A device or tracker id as a source: printable, at most AM_SOURCE_MAX bytes, valid UTF-8. */
static void make_source(char out[AM_SOURCE_MAX + 1], const char *prefix, const char *device) {
    size_t n = (size_t)snprintf(out, AM_SOURCE_MAX + 1, "%s%s%s", prefix,
                                device && *device ? "/" : "", device ? device : "");
    if (n > AM_SOURCE_MAX)
        n = AM_SOURCE_MAX;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '_';
    am_utf8_clean(out);
}

/* The idempotency key: the same fix sent again (the apps resend until they see a 2xx)
 * gets the same key, whatever else in the message changed. */
static void make_key(char out[AM_KEY_MAX + 1], const char *format, const struct am_client_ctx *cx,
                     const char *source, const char *kind, int64_t ts_ns, const char *stream) {
    char id[32], ts[32], hex[65];
    struct am_sha256 h;
    uint8_t sum[32];
    snprintf(id, sizeof id, "%lld", (long long)cx->user_id);
    snprintf(ts, sizeof ts, "%lld", (long long)ts_ns);
    const char *parts[] = {format, id, source, kind, ts, stream};
    am_sha256_init(&h);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        am_sha256_update(&h, parts[i], strlen(parts[i]) + 1);
    am_sha256_final(&h, sum);
    am_hex(sum, sizeof sum, hex);
    snprintf(out, AM_KEY_MAX + 1, "%s-%s", format, hex);
}

static int get_num(const json_t *o, const char *name, double *out) {
    const json_t *v = json_object_get(o, name);
    if (!json_is_number(v))
        return 0;
    *out = json_number_value(v);
    return isfinite(*out);
}

static const char *get_str(const json_t *o, const char *name) {
    const json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Sets payload[name] = v (a new reference) unless v is NULL; 0 on success. */
static int put(json_t *payload, const char *name, json_t *v) {
    return v ? json_object_set_new(payload, name, v) : 0;
}

/* Turns one converted item into an event through the same validation as POST /v1/events
 * and appends it to out. An item the catalog refuses is skipped (counted), never fatal.
 * Consumes payload. */
static am_rc add_event(const struct am_client_ctx *cx, const char *format, const char *stream,
                       int64_t ts_ns, const char *source, const char *kind, json_t *payload,
                       struct am_event_list *out, size_t *skipped) {
    char key[AM_KEY_MAX + 1], reason[256];
    am_rc rc = AM_OK;
    struct am_event e;
    memset(&e, 0, sizeof e);
    if (!payload)
        return AM_ENOMEM;
    if (cx->max_items && out->n >= cx->max_items) {
        json_decref(payload);
        return AM_ELIMIT;
    }
    make_key(key, format, cx, source, kind, ts_ns, stream);
    json_t *obj = json_pack("{s:s, s:I, s:s, s:s, s:O}", "stream", stream, "ts_ns",
                            (json_int_t)ts_ns, "source", source, "key", key, "payload", payload);
    json_decref(payload);
    if (!obj)
        return AM_ENOMEM;
    rc = am_event_from_json(obj, cx->user_id, &cx->lim, &e, reason, sizeof reason);
    json_decref(obj);
    if (rc == AM_EINVAL) {
        am_debug("%s: item skipped: %s", format, reason);
        (*skipped)++;
        return AM_OK;
    }
    if (rc)
        return rc;
    rc = am_event_list_push(out, &e);
    am_free(e.payload);
    return rc;
}

/* device.battery from a level in percent and an optional charging state (-1 unknown). */
static am_rc add_battery(const struct am_client_ctx *cx, const char *format, int64_t ts_ns,
                         const char *source, double level_percent, int charging,
                         struct am_event_list *out, size_t *skipped) {
    json_t *p = json_object();
    if (p && (put(p, "level", json_real(level_percent)) ||
              (charging >= 0 && put(p, "charging", json_boolean(charging))))) {
        json_decref(p);
        return AM_ENOMEM;
    }
    return add_event(cx, format, "device.battery", ts_ns, source, "battery", p, out, skipped);
}

static am_rc parse_json(const struct am_client_ctx *cx, const char *buf, size_t len, json_t **out,
                        char *err, size_t err_len) {
    size_t depth = cx->lim.max_depth ? cx->lim.max_depth : 32;
    return am_json_parse(buf, len, depth, out, err, err_len);
}

/* ---------------------------------------------------------------- OwnTracks */

/* OwnTracks "_type":"location" -> location.gps (vel is km/h there, m/s here) and
 * device.battery when batt is present. */
static am_rc owntracks_location(const struct am_client_ctx *cx, const json_t *m, int64_t ts_ns,
                                const char *source, struct am_event_list *out, size_t *skipped) {
    double lat, lon, v;
    if (!get_num(m, "lat", &lat) || !get_num(m, "lon", &lon)) {
        (*skipped)++;
        return AM_OK;
    }
    json_t *p = json_object();
    if (!p)
        return AM_ENOMEM;
    int bad = put(p, "lat", json_real(lat)) || put(p, "lon", json_real(lon));
    if (get_num(m, "alt", &v))
        bad |= put(p, "alt", json_real(v));
    if (get_num(m, "acc", &v) && v >= 0)
        bad |= put(p, "accuracy", json_real(v));
    if (get_num(m, "vac", &v) && v >= 0)
        bad |= put(p, "vertical_accuracy", json_real(v));
    if (get_num(m, "vel", &v) && v >= 0)
        bad |= put(p, "speed", json_real(v / 3.6));
    if (get_num(m, "cog", &v) && v >= 0)
        bad |= put(p, "bearing", json_real(v));
    double batt = -1;
    if (get_num(m, "batt", &batt) && batt >= 0)
        bad |= put(p, "battery", json_real(batt));
    /* What else the app tells that a person may ask about later. */
    static const char *const strings[][2] = {
        {"tid", "tid"}, {"t", "trigger"}, {"conn", "conn"}, {"SSID", "ssid"}, {"BSSID", "bssid"}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const char *s = get_str(m, strings[i][0]);
        if (s)
            bad |= put(p, strings[i][1], json_string(s));
    }
    const json_t *regions = json_object_get(m, "inregions");
    if (json_is_array(regions))
        bad |= put(p, "inregions", json_deep_copy(regions));
    if (bad) {
        json_decref(p);
        return AM_ENOMEM;
    }
    am_rc rc =
        add_event(cx, "owntracks", "location.gps", ts_ns, source, "location", p, out, skipped);
    if (rc == AM_OK && batt >= 0) {
        /* bs: 0 unknown, 1 unplugged, 2 charging, 3 full (and so plugged in). */
        double bs = 0;
        int charging = get_num(m, "bs", &bs) && bs >= 1 && bs <= 3 ? bs >= 2 : -1;
        rc = add_battery(cx, "owntracks", ts_ns, source, batt, charging, out, skipped);
    }
    return rc;
}

/* "_type":"transition" -> location.place: entering a region is an arrival, leaving it
 * a departure, named by the region's description. */
static am_rc owntracks_transition(const struct am_client_ctx *cx, const json_t *m, int64_t ts_ns,
                                  const char *source, struct am_event_list *out, size_t *skipped) {
    const char *ev = get_str(m, "event");
    const char *what = ev && !strcmp(ev, "enter")   ? "arrival"
                       : ev && !strcmp(ev, "leave") ? "departure"
                                                    : NULL;
    if (!what) {
        (*skipped)++;
        return AM_OK;
    }
    json_t *p = json_object();
    if (!p)
        return AM_ENOMEM;
    double v;
    int bad = put(p, "event", json_string(what));
    const char *desc = get_str(m, "desc");
    if (desc)
        bad |= put(p, "name", json_string(desc));
    const char *rid = get_str(m, "rid");
    if (rid)
        bad |= put(p, "place_id", json_string(rid));
    if (get_num(m, "lat", &v))
        bad |= put(p, "lat", json_real(v));
    if (get_num(m, "lon", &v))
        bad |= put(p, "lon", json_real(v));
    if (get_num(m, "acc", &v) && v >= 0)
        bad |= put(p, "accuracy", json_real(v));
    const char *t = get_str(m, "t");
    if (t)
        bad |= put(p, "trigger", json_string(t));
    bad |= put(p, "source_format", json_string("owntracks"));
    if (bad) {
        json_decref(p);
        return AM_ENOMEM;
    }
    /* enter and leave at the same second are two events: the kind tells them apart. */
    return add_event(cx, "owntracks", "location.place", ts_ns, source, what, p, out, skipped);
}

/* "_type":"waypoint" (a region made on the phone) -> custom.owntracks_waypoint: it
 * defines a place, it does not say anyone was there, so it is not a location.place. */
static am_rc owntracks_waypoint(const struct am_client_ctx *cx, const json_t *m, int64_t ts_ns,
                                const char *source, struct am_event_list *out, size_t *skipped) {
    json_t *p = json_object();
    if (!p)
        return AM_ENOMEM;
    double v;
    int bad = 0;
    const char *desc = get_str(m, "desc");
    if (desc)
        bad |= put(p, "name", json_string(desc));
    const char *rid = get_str(m, "rid");
    if (rid)
        bad |= put(p, "place_id", json_string(rid));
    if (get_num(m, "lat", &v))
        bad |= put(p, "lat", json_real(v));
    if (get_num(m, "lon", &v))
        bad |= put(p, "lon", json_real(v));
    if (get_num(m, "rad", &v))
        bad |= put(p, "radius", json_real(v));
    if (bad) {
        json_decref(p);
        return AM_ENOMEM;
    }
    return add_event(cx, "owntracks", "custom.owntracks_waypoint", ts_ns, source, "waypoint", p,
                     out, skipped);
}

static am_rc owntracks_message(const struct am_client_ctx *cx, const json_t *m,
                               struct am_event_list *out, size_t *skipped) {
    const char *type = get_str(m, "_type");
    if (!type)
        return AM_EINVAL;
    /* lwt is MQTT's "the client went away"; cards, commands, steps and the rest carry
     * nothing AM stores: accepted and dropped, so the app does not resend them. */
    int loc = !strcmp(type, "location"), tr = !strcmp(type, "transition"),
        wp = !strcmp(type, "waypoint");
    if (!strcmp(type, "waypoints")) {
        const json_t *list = json_object_get(m, "waypoints");
        size_t i;
        const json_t *w;
        json_array_foreach(list, i, w) {
            am_rc rc = AM_EINVAL;
            /* Only waypoints here: a nested list would let the input choose the recursion. */
            const char *wt = json_is_object(w) ? get_str(w, "_type") : NULL;
            if (wt && !strcmp(wt, "waypoint"))
                rc = owntracks_message(cx, w, out, skipped);
            if (rc == AM_EINVAL)
                (*skipped)++;
            else if (rc)
                return rc;
        }
        return AM_OK;
    }
    if (!loc && !tr && !wp)
        return AM_OK;
    int64_t ts_ns;
    const json_t *tst = json_object_get(m, "tst");
    if (!json_is_integer(tst) || am_time_from_json(tst, &ts_ns, NULL) != AM_OK) {
        (*skipped)++;
        return AM_OK;
    }
    const char *device = cx->device && *cx->device ? cx->device : get_str(m, "tid");
    char source[AM_SOURCE_MAX + 1];
    make_source(source, "owntracks", device);
    if (loc)
        return owntracks_location(cx, m, ts_ns, source, out, skipped);
    if (tr)
        return owntracks_transition(cx, m, ts_ns, source, out, skipped);
    return owntracks_waypoint(cx, m, ts_ns, source, out, skipped);
}

am_rc http_owntracks_parse(const struct am_client_ctx *cx, const char *buf, size_t len,
                           struct am_event_list *out, size_t *skipped, char *err, size_t err_len) {
    json_t *root = NULL;
    am_rc rc = parse_json(cx, buf, len, &root, err, err_len);
    if (rc)
        return rc;
    if (json_is_object(root)) {
        rc = owntracks_message(cx, root, out, skipped);
        if (rc == AM_EINVAL)
            snprintf(err, err_len, "an OwnTracks message needs a string _type");
    } else if (json_is_array(root)) {
        /* Some versions send a queue of messages at once. */
        size_t i;
        json_t *m;
        json_array_foreach(root, i, m) {
            am_rc r = json_is_object(m) ? owntracks_message(cx, m, out, skipped) : AM_EINVAL;
            if (r == AM_EINVAL)
                (*skipped)++;
            else if (r) {
                rc = r;
                break;
            }
        }
    } else {
        snprintf(err, err_len, "an OwnTracks message is a JSON object");
        rc = AM_EINVAL;
    }
    json_decref(root);
    if (rc == AM_ELIMIT)
        snprintf(err, err_len, "more than %zu events in one request", cx->max_items);
    return rc;
}

/* ---------------------------------------------------------------- Overland */

static am_rc overland_feature(const struct am_client_ctx *cx, const json_t *f,
                              struct am_event_list *out, size_t *skipped) {
    const json_t *coords = json_object_get(json_object_get(f, "geometry"), "coordinates");
    const json_t *props = json_object_get(f, "properties");
    int64_t ts_ns;
    if (!json_is_array(coords) || json_array_size(coords) < 2 ||
        !json_is_number(json_array_get(coords, 0)) || !json_is_number(json_array_get(coords, 1)) ||
        !json_is_object(props) || !json_object_get(props, "timestamp") ||
        am_time_from_json(json_object_get(props, "timestamp"), &ts_ns, NULL) != AM_OK) {
        (*skipped)++;
        return AM_OK;
    }
    char source[AM_SOURCE_MAX + 1];
    const char *dev = get_str(props, "device_id");
    make_source(source, "overland", dev && *dev ? dev : cx->device);
    json_t *p = json_object();
    if (!p)
        return AM_ENOMEM;
    double v;
    /* GeoJSON puts longitude first. */
    int bad = put(p, "lat", json_real(json_number_value(json_array_get(coords, 1)))) ||
              put(p, "lon", json_real(json_number_value(json_array_get(coords, 0))));
    if (get_num(props, "altitude", &v))
        bad |= put(p, "alt", json_real(v));
    if (get_num(props, "horizontal_accuracy", &v) && v >= 0)
        bad |= put(p, "accuracy", json_real(v));
    if (get_num(props, "vertical_accuracy", &v) && v >= 0)
        bad |= put(p, "vertical_accuracy", json_real(v));
    if (get_num(props, "speed", &v) && v >= 0)
        bad |= put(p, "speed", json_real(v));
    if (get_num(props, "course", &v) && v >= 0)
        bad |= put(p, "bearing", json_real(v));
    double level = -1;
    if (get_num(props, "battery_level", &level) && level >= 0 && level <= 1)
        bad |= put(p, "battery", json_real(level * 100));
    else
        level = -1;
    const json_t *motion = json_object_get(props, "motion");
    if (json_is_array(motion))
        bad |= put(p, "motion", json_deep_copy(motion));
    static const char *const strings[] = {"activity", "wifi", "battery_state"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const char *s = get_str(props, strings[i]);
        if (s && *s)
            bad |= put(p, strings[i], json_string(s));
    }
    if (bad) {
        json_decref(p);
        return AM_ENOMEM;
    }
    am_rc rc =
        add_event(cx, "overland", "location.gps", ts_ns, source, "location", p, out, skipped);
    if (rc == AM_OK && level >= 0) {
        const char *st = get_str(props, "battery_state");
        int charging = !st                                              ? -1
                       : !strcmp(st, "charging") || !strcmp(st, "full") ? 1
                       : !strcmp(st, "unplugged")                       ? 0
                                                                        : -1;
        rc = add_battery(cx, "overland", ts_ns, source, level * 100, charging, out, skipped);
    }
    return rc;
}

am_rc http_overland_parse(const struct am_client_ctx *cx, const char *buf, size_t len,
                          struct am_event_list *out, size_t *n_items, size_t *skipped, char *err,
                          size_t err_len) {
    json_t *root = NULL;
    *n_items = 0;
    am_rc rc = parse_json(cx, buf, len, &root, err, err_len);
    if (rc)
        return rc;
    const json_t *locs = json_object_get(root, "locations");
    if (!json_is_array(locs)) {
        snprintf(err, err_len, "an Overland body is an object with a 'locations' array");
        rc = AM_EINVAL;
        goto out;
    }
    size_t i;
    const json_t *f;
    json_array_foreach(locs, i, f) {
        (*n_items)++;
        if (!json_is_object(f)) {
            (*skipped)++;
            continue;
        }
        if ((rc = overland_feature(cx, f, out, skipped)) != AM_OK)
            break;
    }
    if (rc == AM_ELIMIT)
        snprintf(err, err_len, "more than %zu events in one request", cx->max_items);
out:
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- GPSLogger / Traccar / OsmAnd */

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* URL-decodes s[0..n) into out (cap bytes with the NUL); 0 when it does not fit. */
static int url_decode(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+')
            c = ' ';
        else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (o + 1 >= cap)
            return 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return 1;
}

enum gps_field {
    G_LAT,
    G_LON,
    G_TIME,
    G_ALT,
    G_ACC,
    G_SPEED,
    G_BEARING,
    G_BATT,
    G_CHARGING,
    G_DEVICE,
    G_FIELDS
};

static int gps_field_of(const char *name) {
    static const struct {
        const char *name;
        int field;
    } names[] = {{"lat", G_LAT},
                 {"latitude", G_LAT},
                 {"lon", G_LON},
                 {"lng", G_LON},
                 {"longitude", G_LON},
                 {"timestamp", G_TIME},
                 {"time", G_TIME},
                 {"t", G_TIME},
                 {"alt", G_ALT},
                 {"altitude", G_ALT},
                 {"acc", G_ACC},
                 {"accuracy", G_ACC},
                 {"hdop", -1},
                 {"spd", G_SPEED},
                 {"speed", G_SPEED},
                 {"bearing", G_BEARING},
                 {"dir", G_BEARING},
                 {"heading", G_BEARING},
                 {"batt", G_BATT},
                 {"battery", G_BATT},
                 {"charging", G_CHARGING},
                 {"ischarging", G_CHARGING},
                 {"id", G_DEVICE},
                 {"deviceid", G_DEVICE},
                 {"device", G_DEVICE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i].name))
            return names[i].field;
    return -1;
}

static int to_double(const char *s, double *out) {
    char *end;
    if (!*s)
        return 0;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out);
}

am_rc http_gps_parse(const struct am_client_ctx *cx, const char *form, size_t len, int64_t now_ns,
                     struct am_event_list *out, char *err, size_t err_len) {
    char vals[G_FIELDS][AM_SOURCE_MAX + 1];
    int have[G_FIELDS] = {0};
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && form[end] != '&' && form[end] != ';')
            end++;
        size_t eq = i;
        while (eq < end && form[eq] != '=')
            eq++;
        char name[32];
        if (eq < end && url_decode(form + i, eq - i, name, sizeof name)) {
            int f = gps_field_of(name);
            /* The first of repeated names wins, as a query string is usually read. */
            if (f >= 0 && !have[f]) {
                if (!url_decode(form + eq + 1, end - eq - 1, vals[f], sizeof vals[f])) {
                    snprintf(err, err_len, "%s: longer than %d bytes", name, AM_SOURCE_MAX);
                    return AM_EINVAL;
                }
                have[f] = 1;
            }
        }
        i = end + 1;
    }
    double lat, lon, v;
    if (!have[G_LAT] || !have[G_LON] || !to_double(vals[G_LAT], &lat) ||
        !to_double(vals[G_LON], &lon)) {
        snprintf(err, err_len, "lat and lon: required, as decimal degrees");
        return AM_EINVAL;
    }
    int64_t ts_ns = now_ns;
    if (have[G_TIME] && am_time_from_string(vals[G_TIME], &ts_ns) != AM_OK) {
        snprintf(err, err_len, "timestamp: not epoch seconds or milliseconds or an ISO 8601 time");
        return AM_EINVAL;
    }
    char source[AM_SOURCE_MAX + 1];
    make_source(source, "gps", have[G_DEVICE] ? vals[G_DEVICE] : cx->device);
    json_t *p = json_object();
    if (!p)
        return AM_ENOMEM;
    int bad = put(p, "lat", json_real(lat)) || put(p, "lon", json_real(lon));
    if (have[G_ALT] && to_double(vals[G_ALT], &v))
        bad |= put(p, "alt", json_real(v));
    if (have[G_ACC] && to_double(vals[G_ACC], &v) && v >= 0)
        bad |= put(p, "accuracy", json_real(v));
    if (have[G_SPEED] && to_double(vals[G_SPEED], &v) && v >= 0)
        bad |= put(p, "speed", json_real(v));
    if (have[G_BEARING] && to_double(vals[G_BEARING], &v) && v >= 0)
        bad |= put(p, "bearing", json_real(v));
    double batt = -1;
    if (have[G_BATT] && to_double(vals[G_BATT], &batt) && batt >= 0)
        bad |= put(p, "battery", json_real(batt));
    else
        batt = -1;
    if (bad) {
        json_decref(p);
        return AM_ENOMEM;
    }
    size_t skipped = 0;
    am_rc rc = add_event(cx, "gps", "location.gps", ts_ns, source, "location", p, out, &skipped);
    if (rc == AM_OK && skipped) {
        snprintf(err, err_len, "not a valid fix (lat in -90..90, lon in -180..180)");
        return AM_EINVAL;
    }
    if (rc == AM_OK && batt >= 0) {
        int charging = -1;
        if (have[G_CHARGING]) {
            const char *c = vals[G_CHARGING];
            charging = !strcasecmp(c, "true") || !strcmp(c, "1")    ? 1
                       : !strcasecmp(c, "false") || !strcmp(c, "0") ? 0
                                                                    : -1;
        }
        rc = add_battery(cx, "gps", ts_ns, source, batt, charging, out, &skipped);
    }
    return rc;
}

/* ---------------------------------------------------------------- the HTTP side */

/* Submits the events as one batch (stored and durable when it returns). The number that
 * were refused by the store is added to *rejected. 0 after answering an error. */
static int submit(struct am_http *h, struct mg_connection *c, int64_t user_id,
                  struct am_event_list *evs, size_t *rejected) {
    if (evs->n == 0)
        return 1;
    struct am_item_result *res = am_calloc(evs->n, sizeof *res);
    if (!res) {
        http_problem(c, 503, "unavailable", "out of memory; nothing was stored, retry");
        return 0;
    }
    am_rc rc = am_ingest_submit(h->srv, user_id, evs->items, evs->n, res);
    if (rc == AM_OK)
        for (size_t i = 0; i < evs->n; i++)
            *rejected += res[i].status == AM_ITEM_REJECTED;
    am_free(res);
    if (rc) {
        http_problem(c, rc == AM_ECLOSED ? 503 : 500, rc == AM_ECLOSED ? "unavailable" : "internal",
                     "store: %s; nothing of this request was acknowledged, retry", am_strerror(rc));
        return 0;
    }
    return 1;
}

static void client_ctx(struct am_http *h, const struct am_auth *a, const char *device,
                       struct am_client_ctx *cx) {
    const struct am_config *cfg = &h->srv->cfg;
    memset(cx, 0, sizeof *cx);
    cx->user_id = a->user_id;
    cx->device = device;
    cx->lim.max_depth = (size_t)cfg->max_json_depth;
    cx->lim.max_payload_bytes = (size_t)cfg->max_payload_bytes;
    cx->max_items = (size_t)cfg->max_batch_events;
}

static void parse_failed(struct mg_connection *c, am_rc rc, const char *err) {
    if (rc == AM_ELIMIT && strstr(err, "deeper"))
        http_problem(c, 400, "too-deep", "%s", err);
    else if (rc == AM_ELIMIT)
        http_problem(c, 413, "too-large", "%s", err);
    else if (rc == AM_ENOMEM)
        http_problem(c, 503, "unavailable", "out of memory; nothing was stored, retry");
    else
        http_problem(c, 400, "malformed", "%s", err);
}

static void unauthorized_basic(struct mg_connection *c, const char *detail) {
    http_problem_header(c, 401, "unauthorized", "WWW-Authenticate", "Basic realm=\"am\"", detail);
}

/* OwnTracks signs in with HTTP Basic: the user name is the AM user and the password an
 * AM token of that user. A Bearer token works too. 0 after answering. */
static int owntracks_auth(struct am_http *h, struct mg_connection *c, struct am_auth *a) {
    const char *hdr = mg_get_header(c, "Authorization");
    if (!hdr || strncasecmp(hdr, "Basic ", 6) != 0) {
        if (hdr && strncasecmp(hdr, "Bearer ", 7) == 0)
            return http_auth(h, c, AM_SCOPE_INGEST, 0, a);
        unauthorized_basic(c, "send HTTP Basic auth: your AM user name and an ingest token");
        return 0;
    }
    const char *b64 = hdr + 6;
    while (*b64 == ' ')
        b64++;
    /* Standard base64 as base64url: swap the two letters that differ, drop the padding. */
    char url[512];
    size_t n = 0;
    for (; b64[n] && b64[n] != '=' && n + 1 < sizeof url; n++)
        url[n] = b64[n] == '+' ? '-' : b64[n] == '/' ? '_' : b64[n];
    url[n] = '\0';
    uint8_t raw[400];
    long len = am_b64url_decode(url, n, raw, sizeof raw - 1);
    char *colon = len > 0 ? memchr(raw, ':', (size_t)len) : NULL;
    if (!colon) {
        unauthorized_basic(c, "malformed Basic credentials");
        return 0;
    }
    raw[len] = '\0';
    *colon = '\0';
    const char *user = (const char *)raw, *token = colon + 1;
    am_rc rc = http_auth_token(h, token, a);
    if (rc == AM_EDENIED || rc == AM_ENOTFOUND) {
        unauthorized_basic(c, "unknown or revoked token");
        return 0;
    }
    if (rc) {
        http_problem(c, 503, "unavailable", "store: %s", am_strerror(rc));
        return 0;
    }
    if (strcmp(a->user, user) != 0) {
        unauthorized_basic(c, "the token does not belong to this user name");
        return 0;
    }
    if (!(a->scopes & AM_SCOPE_INGEST)) {
        http_problem(c, 403, "forbidden", "this token lacks the 'ingest' scope");
        return 0;
    }
    return 1;
}

/* A value from the query string, else from a header (OwnTracks' X-Limit-U/-D). */
static void param_or_header(struct mg_connection *c, const char *param, const char *header,
                            char *out, size_t out_len) {
    if (http_param(c, param, out, out_len) == 1 && out[0])
        return;
    const char *v = mg_get_header(c, header);
    snprintf(out, out_len, "%s", v ? v : "");
}

void http_owntracks_post(struct am_http *h, struct mg_connection *c) {
    struct am_auth a;
    if (!owntracks_auth(h, c, &a))
        return;
    char user[128], device[AM_SOURCE_MAX + 1];
    param_or_header(c, "u", "X-Limit-U", user, sizeof user);
    if (user[0] && strcmp(user, a.user) != 0) {
        unauthorized_basic(c, "the user named by ?u= or X-Limit-U is not the token's user");
        return;
    }
    param_or_header(c, "d", "X-Limit-D", device, sizeof device);
    struct am_buf body;
    if (!http_read_body(c, (size_t)h->srv->cfg.max_body_bytes, &body))
        return;
    struct am_client_ctx cx;
    client_ctx(h, &a, device, &cx);
    struct am_event_list evs = {0};
    size_t skipped = 0;
    char err[256] = "";
    am_rc rc = http_owntracks_parse(&cx, body.data, body.len, &evs, &skipped, err, sizeof err);
    am_buf_free(&body);
    if (rc) {
        parse_failed(c, rc, err);
        goto out;
    }
    /* A message that can never be stored is dropped, not refused: the app would resend
     * it forever and hold up everything queued behind it. */
    if (skipped)
        am_warn("owntracks: %zu item(s) from user %s skipped as invalid", skipped, a.user);
    if (!submit(h, c, a.user_id, &evs, &skipped))
        goto out;
    if (skipped && h->srv->metrics)
        am_metrics_rejected(h->srv->metrics, skipped);
    http_text(c, 200, "application/json", "[]", 2);
out:
    am_event_list_free(&evs);
}

void http_overland_post(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    struct am_buf body;
    if (!http_read_body(c, (size_t)h->srv->cfg.max_body_bytes, &body))
        return;
    struct am_client_ctx cx;
    char device[AM_SOURCE_MAX + 1] = "";
    if (http_param(c, "device_id", device, sizeof device) != 1)
        device[0] = '\0';
    client_ctx(h, a, device, &cx);
    struct am_event_list evs = {0};
    size_t n_items = 0, skipped = 0;
    char err[256] = "";
    am_rc rc =
        http_overland_parse(&cx, body.data, body.len, &evs, &n_items, &skipped, err, sizeof err);
    am_buf_free(&body);
    if (rc) {
        parse_failed(c, rc, err);
        goto out;
    }
    if (n_items > 0 && evs.n == 0) {
        http_problem(c, 422, "rejected", "none of the %zu locations is valid", n_items);
        goto out;
    }
    if (!submit(h, c, a->user_id, &evs, &skipped))
        goto out;
    if (skipped) {
        am_warn("overland: %zu of %zu location(s) from user %s skipped as invalid", skipped,
                n_items, a->user);
        if (h->srv->metrics)
            am_metrics_rejected(h->srv->metrics, skipped);
    }
    /* Overland deletes its queue only on exactly this answer. */
    http_text(c, 200, "application/json", "{\"result\":\"ok\"}", 15);
out:
    am_event_list_free(&evs);
}

static int content_is_form(struct mg_connection *c) {
    const char *ct = mg_get_header(c, "Content-Type");
    if (!ct || !*ct)
        return 1;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return (n == 33 && !strncasecmp(ct, "application/x-www-form-urlencoded", n)) ||
           (n == 10 && !strncasecmp(ct, "text/plain", n));
}

void http_gps(struct am_http *h, struct mg_connection *c, const struct am_auth *a) {
    const struct mg_request_info *ri = mg_get_request_info(c);
    struct am_buf form;
    am_buf_init(&form, (size_t)h->srv->cfg.max_body_bytes + 8192);
    am_rc rc = am_buf_appends(&form, ri->query_string ? ri->query_string : "");
    if (rc == AM_OK && !strcmp(ri->request_method, "POST")) {
        if (!content_is_form(c)) {
            http_problem(c, 415, "unsupported-media-type",
                         "send the fields in the query string or as "
                         "application/x-www-form-urlencoded");
            am_buf_free(&form);
            return;
        }
        struct am_buf body;
        if (!http_read_body(c, (size_t)h->srv->cfg.max_body_bytes, &body)) {
            am_buf_free(&form);
            return;
        }
        /* Query and body together; the query's value wins when a name is in both. */
        rc = am_buf_append(&form, "&", 1);
        if (rc == AM_OK)
            rc = am_buf_append(&form, body.data, body.len);
        am_buf_free(&body);
    }
    if (rc) {
        am_buf_free(&form);
        parse_failed(c, rc == AM_ELIMIT ? AM_ELIMIT : AM_ENOMEM, "request too large");
        return;
    }
    struct am_client_ctx cx;
    client_ctx(h, a, "", &cx);
    struct am_event_list evs = {0};
    char err[256] = "";
    size_t rejected = 0;
    rc = http_gps_parse(&cx, form.data ? form.data : "", form.len, am_now_ns(), &evs, err,
                        sizeof err);
    am_buf_free(&form);
    if (rc)
        parse_failed(c, rc, err);
    else if (submit(h, c, a->user_id, &evs, &rejected))
        http_text(c, 200, "text/plain; charset=utf-8", "OK", 2);
    am_event_list_free(&evs);
}
