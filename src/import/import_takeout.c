/* import_takeout.c — Google Takeout location history: Records.json ({"locations": [...]}
 * with latitudeE7/longitudeE7, accuracy, altitude, velocity, heading, timestamp or
 * timestampMs) to location.gps, and Semantic Location History ({"timelineObjects":
 * [{placeVisit}|{activitySegment}]}) to location.place and motion.activity spans.
 * yajl's event parser over fixed chunks: one record's fields in memory at a time. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#define MAX_DEPTH 64
#define MAX_FIELDS 24
#define CHUNK (64 * 1024)

enum rec_kind { REC_NONE, REC_LOCATION, REC_VISIT, REC_SEGMENT };

struct field {
    char path[64];   /* relative to the record: "latitudeE7", "location.name" */
    char value[192];
};

struct tk {
    struct imp *im;
    am_rc rc;
    int depth;                   /* open containers */
    char keys[MAX_DEPTH + 1][48]; /* the key last seen in the map at each depth */
    int is_array[MAX_DEPTH + 1];
    int saw_root_map, saw_known;
    enum rec_kind rec;
    int rec_depth;               /* the record's own map */
    int arrays_in_rec;           /* values inside arrays in a record are not kept */
    struct field fields[MAX_FIELDS];
    int n_fields;
};

static const char *get(const struct tk *t, const char *path) {
    for (int i = 0; i < t->n_fields; i++)
        if (!strcmp(t->fields[i].path, path))
            return t->fields[i].value;
    return NULL;
}

static int num(const struct tk *t, const char *path, double *v) {
    return imp_number(get(t, path), v);
}

/* A timestamp as RFC 3339 in path, or epoch ms in path + "Ms". */
static int when(const struct tk *t, const char *path, int64_t *ts_ns) {
    const char *s = get(t, path);
    int off;
    if (s && am_time_parse_rfc3339(s, strlen(s), ts_ns, &off) == AM_OK)
        return 1;
    char ms_path[64];
    double ms;
    snprintf(ms_path, sizeof ms_path, "%sMs", path);
    if (num(t, ms_path, &ms) && ms > -9.2e15 && ms < 9.2e15) {
        *ts_ns = (int64_t)ms * 1000000;
        return 1;
    }
    return 0;
}

static void put_e7(json_t *p, const struct tk *t, const char *path, const char *name) {
    double v;
    if (num(t, path, &v))
        json_object_set_new(p, name, json_real(v / 1e7));
}

static void put_num(json_t *p, const struct tk *t, const char *path, const char *name) {
    double v;
    if (num(t, path, &v))
        json_object_set_new(p, name, json_real(v));
}

static void put_str(json_t *p, const struct tk *t, const char *path, const char *name) {
    const char *s = get(t, path);
    if (s && *s)
        json_object_set_new(p, name, json_string(s));
}

static const char *activity_name(const char *type, char *buf, size_t cap) {
    static const char *const map[][2] = {
        {"STILL", "still"},         {"WALKING", "walk"},      {"ON_FOOT", "walk"},
        {"RUNNING", "run"},         {"CYCLING", "bike"},      {"ON_BICYCLE", "bike"},
        {"IN_VEHICLE", "vehicle"},  {"IN_PASSENGER_VEHICLE", "vehicle"},
        {"IN_BUS", "vehicle"},      {"IN_TRAIN", "vehicle"},  {"IN_SUBWAY", "vehicle"},
        {"IN_TRAM", "vehicle"},     {"FLYING", "flying"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(type, map[i][0]))
            return map[i][1];
    size_t o = 0;
    for (; *type && o + 1 < cap; type++)
        buf[o++] = (char)(*type >= 'A' && *type <= 'Z' ? *type - 'A' + 'a' : *type);
    buf[o] = '\0';
    return o ? buf : "unknown";
}

static am_rc emit_record(struct tk *t) {
    struct imp *im = t->im;
    json_t *p = json_object(), *ev = NULL;
    int64_t ts = 0, te = 0;
    char id[512], buf[64];
    int n = 0, ok;
    if (!p)
        return AM_ENOMEM;
    imp_record(im);
    if (t->rec == REC_LOCATION) {
        ok = when(t, "timestamp", &ts);
        put_e7(p, t, "latitudeE7", "lat");
        put_e7(p, t, "longitudeE7", "lon");
        put_num(p, t, "accuracy", "accuracy");
        put_num(p, t, "altitude", "alt");
        put_num(p, t, "verticalAccuracy", "vertical_accuracy");
        put_num(p, t, "velocity", "speed"); /* m/s */
        put_num(p, t, "heading", "bearing");
        ev = json_pack("{s:s, s:o}", "stream", "location.gps", "payload", p);
        n = snprintf(id, sizeof id, "loc|%lld|%s|%s", ok ? (long long)ts : -1LL,
                     get(t, "latitudeE7") ? get(t, "latitudeE7") : "",
                     get(t, "longitudeE7") ? get(t, "longitudeE7") : "");
    } else if (t->rec == REC_VISIT) {
        ok = when(t, "duration.startTimestamp", &ts) && when(t, "duration.endTimestamp", &te);
        put_e7(p, t, "location.latitudeE7", "lat");
        put_e7(p, t, "location.longitudeE7", "lon");
        put_str(p, t, "location.name", "name");
        put_str(p, t, "location.address", "address");
        put_str(p, t, "location.placeId", "place_id");
        json_object_set_new(p, "event", json_string("visit"));
        ev = json_pack("{s:s, s:o}", "stream", "location.place", "payload", p);
        n = snprintf(id, sizeof id, "visit|%lld|%lld|%s", (long long)ts, (long long)te,
                     get(t, "location.placeId") ? get(t, "location.placeId") : "");
    } else {
        ok = when(t, "duration.startTimestamp", &ts) && when(t, "duration.endTimestamp", &te);
        const char *type = get(t, "activityType");
        json_object_set_new(p, "activity", json_string(activity_name(type ? type : "", buf,
                                                                     sizeof buf)));
        put_num(p, t, "distance", "distance");
        ev = json_pack("{s:s, s:o}", "stream", "motion.activity", "payload", p);
        n = snprintf(id, sizeof id, "segment|%lld|%lld|%s", (long long)ts, (long long)te,
                     type ? type : "");
    }
    if (!ev)
        return AM_ENOMEM;
    /* Without a time the catalog's checks reject it, and it is counted so. */
    if (ok)
        json_object_set_new(ev, "ts_ns", json_integer(ts));
    if (ok && t->rec != REC_LOCATION)
        json_object_set_new(ev, "ts_end_ns", json_integer(te));
    return imp_emit(im, ev, id, n < 0 ? 0 : (size_t)n < sizeof id ? (size_t)n : sizeof id - 1);
}

/* ---------------------------------------------------------------- yajl callbacks */

static int scalar(void *ctx, const char *s, size_t len) {
    struct tk *t = ctx;
    if (t->rec == REC_NONE || t->arrays_in_rec || t->n_fields == MAX_FIELDS ||
        t->depth <= t->rec_depth - 1)
        return 1;
    struct field *f = &t->fields[t->n_fields];
    /* The path from the record's map down to this value. */
    size_t o = 0;
    f->path[0] = '\0';
    for (int d = t->rec_depth; d <= t->depth; d++) {
        int w = snprintf(f->path + o, sizeof f->path - o, "%s%s", o ? "." : "", t->keys[d]);
        if (w < 0 || (size_t)w >= sizeof f->path - o)
            return 1; /* too deep to be a field we read */
        o += (size_t)w;
    }
    if (len >= sizeof f->value)
        len = sizeof f->value - 1;
    memcpy(f->value, s, len);
    f->value[len] = '\0';
    t->n_fields++;
    return 1;
}

static int on_null(void *ctx) { return scalar(ctx, "", 0); }
static int on_bool(void *ctx, int b) { return scalar(ctx, b ? "true" : "false", b ? 4 : 5); }
static int on_number(void *ctx, const char *s, size_t len) { return scalar(ctx, s, len); }
static int on_string(void *ctx, const unsigned char *s, size_t len) {
    return scalar(ctx, (const char *)s, len);
}

static int open_container(struct tk *t, int array) {
    if (t->depth == MAX_DEPTH) {
        t->rc = imp_fail(t->im, "JSON nested deeper than %d levels", MAX_DEPTH);
        return 0;
    }
    t->depth++;
    t->is_array[t->depth] = array;
    t->keys[t->depth][0] = '\0';
    return 1;
}

static int on_start_map(void *ctx) {
    struct tk *t = ctx;
    if (t->depth == 0)
        t->saw_root_map = 1;
    if (t->rec != REC_NONE) {
        return open_container(t, 0);
    }
    /* {"locations": [ {record} ]} */
    if (t->depth == 2 && t->is_array[2] && !t->is_array[1] && !strcmp(t->keys[1], "locations")) {
        t->rec = REC_LOCATION;
    } else if (t->depth == 3 && !t->is_array[3] && t->is_array[2] &&
               !strcmp(t->keys[1], "timelineObjects")) {
        /* {"timelineObjects": [ {"placeVisit": {record}} ]} */
        if (!strcmp(t->keys[3], "placeVisit"))
            t->rec = REC_VISIT;
        else if (!strcmp(t->keys[3], "activitySegment"))
            t->rec = REC_SEGMENT;
    }
    if (!open_container(t, 0))
        return 0;
    if (t->rec != REC_NONE) {
        t->rec_depth = t->depth;
        t->n_fields = 0;
        t->arrays_in_rec = 0;
    }
    return 1;
}

static int on_key(void *ctx, const unsigned char *k, size_t len) {
    struct tk *t = ctx;
    if (len >= sizeof t->keys[0])
        len = sizeof t->keys[0] - 1;
    memcpy(t->keys[t->depth], k, len);
    t->keys[t->depth][len] = '\0';
    if (t->depth == 1 && (!strcmp(t->keys[1], "locations") ||
                          !strcmp(t->keys[1], "timelineObjects")))
        t->saw_known = 1;
    return 1;
}

static int on_end_map(void *ctx) {
    struct tk *t = ctx;
    if (t->rec != REC_NONE && t->depth == t->rec_depth) {
        t->rc = emit_record(t);
        t->rec = REC_NONE;
        if (t->rc != AM_OK)
            return 0;
    }
    t->depth--;
    return 1;
}

static int on_start_array(void *ctx) {
    struct tk *t = ctx;
    if (!open_container(t, 1))
        return 0;
    if (t->rec != REC_NONE)
        t->arrays_in_rec++;
    return 1;
}

static int on_end_array(void *ctx) {
    struct tk *t = ctx;
    if (t->rec != REC_NONE && t->arrays_in_rec)
        t->arrays_in_rec--;
    t->depth--;
    return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

static void *y_malloc(void *ctx, size_t n) { return (void)ctx, am_malloc(n); }
static void *y_realloc(void *ctx, void *p, size_t n) { return (void)ctx, am_realloc(p, n); }
static void y_free(void *ctx, void *p) { (void)ctx, am_free(p); }

am_rc imp_parse_takeout(struct imp *im) {
    yajl_alloc_funcs af = {y_malloc, y_realloc, y_free, NULL};
    struct tk *t = am_calloc(1, sizeof *t);
    char *buf = am_malloc(CHUNK);
    yajl_handle h = NULL;
    am_rc rc = AM_OK;
    if (!t || !buf || !(h = yajl_alloc(&callbacks, &af, t))) {
        rc = AM_ENOMEM;
        goto out;
    }
    t->im = im;
    yajl_status st = yajl_status_ok;
    for (;;) {
        long n = imp_read(im, buf, CHUNK);
        if (n < 0) {
            rc = AM_EIO;
            goto out;
        }
        st = n ? yajl_parse(h, (const unsigned char *)buf, (size_t)n) : yajl_complete_parse(h);
        if (st != yajl_status_ok || n == 0)
            break;
    }
    if (t->rc != AM_OK) {
        rc = t->rc;
    } else if (st != yajl_status_ok) {
        unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
        char *nl = msg ? strchr((char *)msg, '\n') : NULL;
        if (nl)
            *nl = '\0';
        rc = imp_fail(im, "malformed or truncated JSON near byte %lld: %s",
                      (long long)imp_bytes_done(im), msg ? (char *)msg : "parse error");
        yajl_free_error(h, msg);
    } else if (!t->saw_root_map || !t->saw_known) {
        rc = imp_fail(im, "not a Google Takeout location history file (no \"locations\" or "
                          "\"timelineObjects\")");
    }
out:
    if (h)
        yajl_free(h);
    am_free(buf);
    am_free(t);
    return rc;
}
