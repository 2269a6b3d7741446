/* import_gpx.c — GPX 1.0/1.1 tracks, routes and waypoints (trkpt, rtept, wpt) to
 * location.gps events; a Garmin TrackPointExtension heart rate becomes health.heart_rate.
 * libxml2's streaming reader: one point in memory at a time. */
#include "import_internal.h"

#include <stdio.h>
#include <string.h>

#include <libxml/xmlreader.h>

struct point {
    char lat[40], lon[40], ele[40], time[64], speed[40], course[40], hr[40];
    char *field; /* the child whose text is being read, or NULL */
    size_t field_cap;
};

static void set(char *dst, size_t cap, const xmlChar *s) {
    snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

static am_rc emit_point(struct imp *im, const struct point *pt) {
    double lat, lon, v;
    int64_t ts_ns = 0;
    int offset_min = 0;
    imp_record(im);
    json_t *payload = json_object();
    if (!payload)
        return AM_ENOMEM;
    /* A point that does not parse is still handed on, so it is counted as rejected with
     * the reason the catalog gives. */
    if (imp_number(pt->lat, &lat))
        json_object_set_new(payload, "lat", json_real(lat));
    if (imp_number(pt->lon, &lon))
        json_object_set_new(payload, "lon", json_real(lon));
    if (imp_number(pt->ele, &v))
        json_object_set_new(payload, "alt", json_real(v));
    if (imp_number(pt->speed, &v))
        json_object_set_new(payload, "speed", json_real(v)); /* m/s in GPX */
    if (imp_number(pt->course, &v))
        json_object_set_new(payload, "bearing", json_real(v));
    int has_time = pt->time[0] &&
                   am_time_parse_rfc3339(pt->time, strlen(pt->time), &ts_ns, &offset_min) == AM_OK;
    if (has_time && offset_min)
        json_object_set_new(payload, "tz_offset_min", json_integer(offset_min));
    json_t *ev = json_pack("{s:s, s:o}", "stream", "location.gps", "payload", payload);
    if (!ev)
        return AM_ENOMEM;
    if (has_time)
        json_object_set_new(ev, "ts_ns", json_integer(ts_ns));
    char id[256];
    int n = snprintf(id, sizeof id, "gps|%s|%s|%s|%s", pt->lat, pt->lon, pt->time, pt->ele);
    am_rc rc = imp_emit(im, ev, id, (size_t)n < sizeof id ? (size_t)n : sizeof id - 1);
    if (rc == AM_OK && has_time && imp_number(pt->hr, &v)) {
        ev = json_pack("{s:s, s:I, s:{s:f}}", "stream", "health.heart_rate", "ts_ns",
                       (json_int_t)ts_ns, "payload", "bpm", v);
        n = snprintf(id, sizeof id, "hr|%s|%s", pt->time, pt->hr);
        rc = imp_emit(im, ev, id, (size_t)n < sizeof id ? (size_t)n : sizeof id - 1);
    }
    return rc;
}

am_rc imp_parse_gpx(struct imp *im) {
    xmlTextReaderPtr r = NULL;
    am_rc rc = imp_xml_open(im, &r);
    struct point pt;
    int in_point = 0, point_depth = 0, saw_gpx = 0, ret = 0;
    if (rc != AM_OK)
        return rc;
    while (rc == AM_OK && (ret = xmlTextReaderRead(r)) == 1) {
        int type = xmlTextReaderNodeType(r);
        const char *name = (const char *)xmlTextReaderConstLocalName(r);
        int depth = xmlTextReaderDepth(r);
        if (type == XML_READER_TYPE_ELEMENT && depth == 0) {
            if (!name || strcmp(name, "gpx") != 0) {
                rc = imp_fail(im, "not a GPX file: the root element is <%.40s>, not <gpx>",
                              name ? name : "?");
                break;
            }
            saw_gpx = 1;
        } else if (type == XML_READER_TYPE_ELEMENT && !in_point && name &&
                   (!strcmp(name, "trkpt") || !strcmp(name, "rtept") || !strcmp(name, "wpt"))) {
            memset(&pt, 0, sizeof pt);
            xmlChar *a = xmlTextReaderGetAttribute(r, BAD_CAST "lat");
            set(pt.lat, sizeof pt.lat, a);
            xmlFree(a);
            a = xmlTextReaderGetAttribute(r, BAD_CAST "lon");
            set(pt.lon, sizeof pt.lon, a);
            xmlFree(a);
            if (xmlTextReaderIsEmptyElement(r)) {
                rc = emit_point(im, &pt);
            } else {
                in_point = 1;
                point_depth = depth;
            }
        } else if (in_point && type == XML_READER_TYPE_ELEMENT && name) {
            pt.field = !strcmp(name, "ele")      ? pt.ele
                       : !strcmp(name, "time")   ? pt.time
                       : !strcmp(name, "speed")  ? pt.speed
                       : !strcmp(name, "course") ? pt.course
                       : !strcmp(name, "hr")     ? pt.hr
                                                 : NULL;
            pt.field_cap = pt.field == pt.time ? sizeof pt.time : sizeof pt.ele;
            if (pt.field)
                pt.field[0] = '\0';
        } else if (in_point && (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA) &&
                   pt.field) {
            set(pt.field, pt.field_cap, xmlTextReaderConstValue(r));
        } else if (in_point && type == XML_READER_TYPE_END_ELEMENT) {
            pt.field = NULL;
            if (depth == point_depth) {
                in_point = 0;
                rc = emit_point(im, &pt);
            }
        }
    }
    if (rc == AM_OK && ret != 0)
        rc = imp_xml_fail(im, r);
    else if (rc == AM_OK && !saw_gpx)
        rc = imp_fail(im, "not a GPX file: no <gpx> element");
    xmlFreeTextReader(r);
    return rc;
}
