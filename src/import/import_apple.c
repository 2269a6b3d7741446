/* import_apple.c — Apple Health export.xml: <Record> (heart rate, steps, weight, SpO2,
 * HRV, body temperature, sleep analysis) and <Workout> to health.* events, with units
 * converted (lb -> kg, degF -> degC, fraction -> %, km/mi -> m, kJ -> kcal).
 * libxml2's streaming reader: memory stays flat however big the export is. */
#include "import_internal.h"

#include <stdio.h>
#include <string.h>

#include <libxml/xmlreader.h>

/* "2026-11-25 08:00:00 +0100" (Apple's form) or RFC 3339 to UTC ns and the offset. */
static int apple_time(const char *s, int64_t *ts_ns, int *offset_min) {
    char buf[40];
    size_t len = s ? strlen(s) : 0;
    if (len == 25 && s[10] == ' ' && s[19] == ' ' && (s[20] == '+' || s[20] == '-')) {
        /* -> "2026-11-25T08:00:00+01:00" */
        snprintf(buf, sizeof buf, "%.10sT%.8s%c%.2s:%.2s", s, s + 11, s[20], s + 21, s + 23);
        s = buf;
        len = strlen(buf);
    }
    return len && am_time_parse_rfc3339(s, len, ts_ns, offset_min) == AM_OK;
}

static xmlChar *attr(xmlTextReaderPtr r, const char *name) {
    return xmlTextReaderGetAttribute(r, BAD_CAST name);
}

static const char *str(const xmlChar *s) { return s ? (const char *)s : ""; }

/* Sleep values to the catalog's stages. */
static const char *sleep_stage(const char *v) {
    static const char *const map[][2] = {
        {"HKCategoryValueSleepAnalysisInBed", "in_bed"},
        {"HKCategoryValueSleepAnalysisAsleepUnspecified", "asleep"},
        {"HKCategoryValueSleepAnalysisAsleep", "asleep"},
        {"HKCategoryValueSleepAnalysisAwake", "awake"},
        {"HKCategoryValueSleepAnalysisAsleepCore", "light"},
        {"HKCategoryValueSleepAnalysisAsleepDeep", "deep"},
        {"HKCategoryValueSleepAnalysisAsleepREM", "rem"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(v, map[i][0]))
            return map[i][1];
    return NULL;
}

/* A quantity in the catalog's unit; 0 when the unit is not one we know. */
static int convert(const char *type, const char *unit, double v, const char **stream,
                   const char **field, double *out) {
    *out = v;
    if (!strcmp(type, "HKQuantityTypeIdentifierHeartRate")) {
        *stream = "health.heart_rate", *field = "bpm";
        if (!strcmp(unit, "count/s"))
            return *out = v * 60, 1;
        return !strcmp(unit, "count/min");
    }
    if (!strcmp(type, "HKQuantityTypeIdentifierStepCount")) {
        *stream = "health.steps", *field = "count";
        return !strcmp(unit, "count");
    }
    if (!strcmp(type, "HKQuantityTypeIdentifierBodyMass")) {
        *stream = "health.weight", *field = "kg";
        if (!strcmp(unit, "lb"))
            return *out = v * 0.45359237, 1;
        if (!strcmp(unit, "g"))
            return *out = v / 1000, 1;
        return !strcmp(unit, "kg");
    }
    if (!strcmp(type, "HKQuantityTypeIdentifierOxygenSaturation")) {
        *stream = "health.spo2", *field = "percent";
        return !strcmp(unit, "%") ? (*out = v <= 1 ? v * 100 : v, 1) : 0;
    }
    if (!strcmp(type, "HKQuantityTypeIdentifierHeartRateVariabilitySDNN")) {
        *stream = "health.hrv", *field = "sdnn";
        return !strcmp(unit, "ms");
    }
    if (!strcmp(type, "HKQuantityTypeIdentifierBodyTemperature")) {
        *stream = "health.temperature", *field = "celsius";
        if (!strcmp(unit, "degF"))
            return *out = (v - 32) * 5 / 9, 1;
        return !strcmp(unit, "degC");
    }
    return 0;
}

/* Keeps the common identity of a record: its type, source and times, plus what varies. */
static size_t identity(char *out, size_t cap, const char *what, const char *source,
                       const char *start, const char *end, const char *value) {
    int n = snprintf(out, cap, "%s|%s|%s|%s|%s", what, source, start, end, value);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static am_rc span_event(const char *stream, int64_t start, int64_t end, int offset_min,
                        const char *device, json_t *payload, json_t **out) {
    if (offset_min)
        json_object_set_new(payload, "tz_offset_min", json_integer(offset_min));
    if (device[0])
        json_object_set_new(payload, "device", json_string(device));
    *out = json_pack("{s:s, s:I, s:o}", "stream", stream, "ts_ns", (json_int_t)start, "payload",
                     payload);
    const struct am_stream_def *d = am_catalog_find(stream);
    if (*out && end > start && d && d->span) /* point streams keep the start only */
        json_object_set_new(*out, "ts_end_ns", json_integer(end));
    return *out ? AM_OK : AM_ENOMEM;
}

static am_rc do_record(struct imp *im, xmlTextReaderPtr r) {
    am_rc rc = AM_OK;
    xmlChar *type = attr(r, "type"), *unit = attr(r, "unit"), *value = attr(r, "value"),
            *start = attr(r, "startDate"), *end = attr(r, "endDate"), *src = attr(r, "sourceName");
    int64_t ts = 0, te = 0;
    int off = 0, off_end = 0;
    double v;
    const char *stream = NULL, *field = NULL;
    json_t *payload = NULL, *ev = NULL;
    char device[AM_SOURCE_MAX + 1], id[1024];
    imp_record(im);
    snprintf(device, sizeof device, "%s", str(src));
    am_utf8_clean(device);
    if (!apple_time(str(start), &ts, &off) || !apple_time(str(end), &te, &off_end) || te < ts)
        goto reject; /* counted as rejected below */
    if (!strcmp(str(type), "HKCategoryTypeIdentifierSleepAnalysis")) {
        const char *stage = sleep_stage(str(value));
        if (!stage)
            goto out; /* a sleep value this version does not know: not an event */
        payload = json_pack("{s:s}", "stage", stage);
        stream = "health.sleep";
    } else if (imp_number(str(value), &v) &&
               convert(str(type), str(unit), v, &stream, &field, &v)) {
        if (!strcmp(field, "count"))
            payload = json_pack("{s:I}", field, (json_int_t)(v + 0.5));
        else
            payload = json_pack("{s:f}", field, v);
    } else if (stream) {
        goto reject; /* a type we take, in a unit or value we do not understand */
    } else {
        goto out; /* a type AM does not import (yet) */
    }
    if (!payload) {
        rc = AM_ENOMEM;
        goto out;
    }
    if ((rc = span_event(stream, ts, te, off, device, payload, &ev)) != AM_OK)
        goto out;
    rc = imp_emit(im, ev, id,
                  identity(id, sizeof id, str(type), str(src), str(start), str(end), str(value)));
    goto out;
reject:
    /* Handed on without a time so the catalog's checks count it as rejected. */
    ev = json_pack("{s:s, s:{}}", "stream", stream ? stream : "health.heart_rate", "payload");
    rc = imp_emit(im, ev, id,
                  identity(id, sizeof id, str(type), str(src), str(start), str(end), str(value)));
out:
    xmlFree(type), xmlFree(unit), xmlFree(value), xmlFree(start), xmlFree(end), xmlFree(src);
    return rc;
}

/* "HKWorkoutActivityTypeTraditionalStrengthTraining" -> "traditional_strength_training". */
static void workout_kind(const char *t, char *out, size_t cap) {
    const char *p = "HKWorkoutActivityType";
    if (!strncmp(t, p, strlen(p)))
        t += strlen(p);
    size_t o = 0;
    for (; *t && o + 2 < cap; t++) {
        char c = *t;
        if (c >= 'A' && c <= 'Z') {
            if (o)
                out[o++] = '_';
            c = (char)(c - 'A' + 'a');
        }
        out[o++] = c;
    }
    out[o] = '\0';
    am_utf8_clean(out);
}

static am_rc do_workout(struct imp *im, xmlTextReaderPtr r) {
    am_rc rc;
    xmlChar *type = attr(r, "workoutActivityType"), *dist = attr(r, "totalDistance"),
            *dist_unit = attr(r, "totalDistanceUnit"), *energy = attr(r, "totalEnergyBurned"),
            *energy_unit = attr(r, "totalEnergyBurnedUnit"), *start = attr(r, "startDate"),
            *end = attr(r, "endDate"), *src = attr(r, "sourceName");
    int64_t ts = 0, te = 0;
    int off = 0, off_end = 0;
    double v;
    char kind[64], device[AM_SOURCE_MAX + 1], id[1024];
    json_t *payload = json_object(), *ev = NULL;
    imp_record(im);
    snprintf(device, sizeof device, "%s", str(src));
    am_utf8_clean(device);
    workout_kind(str(type), kind, sizeof kind);
    if (!payload) {
        rc = AM_ENOMEM;
        goto out;
    }
    json_object_set_new(payload, "kind", json_string(kind));
    if (imp_number(str(dist), &v)) {
        const char *u = str(dist_unit);
        double m = !strcmp(u, "km") ? v * 1000 : !strcmp(u, "mi") ? v * 1609.344
                   : !strcmp(u, "m") ? v : -1;
        if (m >= 0)
            json_object_set_new(payload, "distance", json_real(m));
    }
    if (imp_number(str(energy), &v)) {
        const char *u = str(energy_unit);
        double kcal = !strcmp(u, "kcal") || !strcmp(u, "Cal") ? v : !strcmp(u, "kJ") ? v / 4.184 : -1;
        if (kcal >= 0)
            json_object_set_new(payload, "calories", json_real(kcal));
    }
    if (!apple_time(str(start), &ts, &off) || !apple_time(str(end), &te, &off_end) || te < ts) {
        json_decref(payload);
        ev = json_pack("{s:s, s:{}}", "stream", "health.workout", "payload");
    } else if ((rc = span_event("health.workout", ts, te, off, device, payload, &ev)) != AM_OK) {
        goto out;
    }
    rc = imp_emit(im, ev, id,
                  identity(id, sizeof id, "workout", str(src), str(start), str(end), kind));
out:
    xmlFree(type), xmlFree(dist), xmlFree(dist_unit), xmlFree(energy), xmlFree(energy_unit);
    xmlFree(start), xmlFree(end), xmlFree(src);
    return rc;
}

am_rc imp_parse_apple(struct imp *im) {
    xmlTextReaderPtr r = NULL;
    am_rc rc = imp_xml_open(im, &r);
    int ret = 0, saw_root = 0;
    if (rc != AM_OK)
        return rc;
    while (rc == AM_OK && (ret = xmlTextReaderRead(r)) == 1) {
        if (xmlTextReaderNodeType(r) != XML_READER_TYPE_ELEMENT)
            continue;
        int depth = xmlTextReaderDepth(r);
        const char *name = (const char *)xmlTextReaderConstLocalName(r);
        if (depth == 0) {
            if (!name || strcmp(name, "HealthData") != 0) {
                rc = imp_fail(im, "not an Apple Health export: the root element is <%.40s>",
                              name ? name : "?");
                break;
            }
            saw_root = 1;
        } else if (depth == 1 && name && !strcmp(name, "Record")) {
            rc = do_record(im, r);
        } else if (depth == 1 && name && !strcmp(name, "Workout")) {
            rc = do_workout(im, r);
        }
    }
    if (rc == AM_OK && ret != 0)
        rc = imp_xml_fail(im, r);
    else if (rc == AM_OK && !saw_root)
        rc = imp_fail(im, "not an Apple Health export: no <HealthData> element");
    xmlFreeTextReader(r);
    return rc;
}
