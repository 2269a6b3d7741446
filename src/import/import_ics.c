/* import_ics.c — iCalendar files (.ics) to calendar.event spans with libical. Recurring
 * events (RRULE) are expanded over the import window, less their EXDATEs and the
 * instances a RECURRENCE-ID component overrides; each instance's key is its UID and
 * start, so a re-import (or a later, moved window) adds only what is new. A calendar is
 * small next to a location history, so the file is read whole (up to MAX_ICS_BYTES). */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libical/ical.h>

#define MAX_ICS_BYTES (64 * 1024 * 1024)
#define MAX_INSTANCES 10000     /* per recurring event */
#define MAX_ITERATIONS 200000   /* steps of one rule, inside the window or not */

static int64_t ns_of(struct icaltimetype t) {
    return (int64_t)icaltime_as_timet_with_zone(t, t.zone) * AM_NS_PER_S;
}

/* A property's time with its TZID resolved (libical leaves RECURRENCE-ID floating). */
static struct icaltimetype zoned(icalcomponent *cal, icalproperty *p, struct icaltimetype t) {
    icalparameter *tz = p ? icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER) : NULL;
    const char *tzid = tz ? icalparameter_get_tzid(tz) : NULL;
    if (tzid && !t.zone && !t.is_date) {
        icaltimezone *z = icalcomponent_get_timezone(cal, tzid);
        if (!z)
            z = icaltimezone_get_builtin_timezone(tzid);
        if (z)
            t.zone = z;
    }
    return t;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Overridden instances as hashes of "uid|start", sorted for bsearch. */
struct overrides {
    int64_t *h;
    size_t n, cap;
};

static int64_t instance_hash(const char *uid, int64_t start_ns) {
    char buf[600];
    uint8_t d[32];
    int64_t h;
    int n = snprintf(buf, sizeof buf, "%s|%lld", uid, (long long)start_ns);
    struct am_sha256 s;
    am_sha256_init(&s);
    am_sha256_update(&s, buf, n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    am_sha256_final(&s, d);
    memcpy(&h, d, sizeof h);
    return h;
}

static const char *text(icalcomponent *c, icalproperty_kind k) {
    icalproperty *p = icalcomponent_get_first_property(c, k);
    const char *s = p ? icalproperty_get_value_as_string(p) : NULL;
    return s ? s : "";
}

static am_rc emit_instance(struct imp *im, icalcomponent *ev, const char *uid, int64_t start_ns,
                           int64_t end_ns, int all_day, int recurring) {
    char id[600];
    json_t *p = json_pack("{s:s}", "uid", uid);
    if (!p)
        return AM_ENOMEM;
    const char *title = icalcomponent_get_summary(ev), *loc = icalcomponent_get_location(ev),
               *desc = icalcomponent_get_description(ev);
    /* json_string refuses invalid UTF-8: such a field is left out, the event kept. */
    if (title && *title)
        json_object_set_new(p, "title", json_string(title));
    if (loc && *loc)
        json_object_set_new(p, "location", json_string(loc));
    if (desc && *desc)
        json_object_set_new(p, "description", json_string(desc));
    if (all_day)
        json_object_set_new(p, "all_day", json_true());
    if (recurring)
        json_object_set_new(p, "recurring", json_true());
    json_t *e = json_pack("{s:s, s:I, s:o}", "stream", "calendar.event", "ts_ns",
                          (json_int_t)start_ns, "payload", p);
    if (e && end_ns > start_ns)
        json_object_set_new(e, "ts_end_ns", json_integer(end_ns));
    int n = snprintf(id, sizeof id, "%s|%lld", uid, (long long)start_ns);
    return imp_emit(im, e, id, n < 0 ? 0 : (size_t)n < sizeof id ? (size_t)n : sizeof id - 1);
}

static int excluded(icalcomponent *ev, struct icaltimetype t) {
    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_EXDATE_PROPERTY); p;
         p = icalcomponent_get_next_property(ev, ICAL_EXDATE_PROPERTY)) {
        struct icaltimetype x = icalproperty_get_exdate(p);
        if (x.is_date ? icaltime_compare_date_only(x, t) == 0
                      : (x.year == t.year && x.month == t.month && x.day == t.day &&
                         x.hour == t.hour && x.minute == t.minute && x.second == t.second))
            return 1;
    }
    return 0;
}

static am_rc do_event(struct imp *im, icalcomponent *ev, const struct overrides *ov,
                      int64_t from_ns, int64_t to_ns) {
    imp_record(im);
    const char *uid = text(ev, ICAL_UID_PROPERTY);
    struct icaltimetype start = icalcomponent_get_dtstart(ev);
    if (icaltime_is_null_time(start) || !icaltime_is_valid_time(start)) {
        /* Handed on without a time: counted as rejected. */
        json_t *e = json_pack("{s:s, s:{s:s}}", "stream", "calendar.event", "payload", "uid", uid);
        return imp_emit(im, e, uid, strlen(uid));
    }
    struct icaltimetype end = icalcomponent_get_dtend(ev);
    int64_t start_ns = ns_of(start), dur_ns = 0;
    if (!icaltime_is_null_time(end))
        dur_ns = ns_of(end) - start_ns;
    else if (start.is_date)
        dur_ns = 24 * 3600 * AM_NS_PER_S;
    if (dur_ns < 0)
        dur_ns = 0;
    icalproperty *rrule = icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY);
    icalproperty *recid = icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY);
    if (!rrule || recid)
        return emit_instance(im, ev, uid, start_ns, start_ns + dur_ns, start.is_date, recid != NULL);

    struct icalrecurrencetype rule = icalproperty_get_rrule(rrule);
    icalrecur_iterator *it = icalrecur_iterator_new(rule, start);
    if (!it) /* a rule libical cannot expand: the first instance at least */
        return emit_instance(im, ev, uid, start_ns, start_ns + dur_ns, start.is_date, 1);
    am_rc rc = AM_OK;
    size_t instances = 0;
    for (long steps = 0; rc == AM_OK && steps < MAX_ITERATIONS && instances < MAX_INSTANCES;
         steps++) {
        struct icaltimetype t = icalrecur_iterator_next(it);
        if (icaltime_is_null_time(t))
            break;
        t.zone = start.zone;
        int64_t t_ns = ns_of(t);
        if (t_ns >= to_ns)
            break;
        if (t_ns + dur_ns < from_ns || excluded(ev, t))
            continue;
        int64_t h = instance_hash(uid, t_ns);
        if (ov->n && bsearch(&h, ov->h, ov->n, sizeof h, cmp_i64))
            continue; /* a RECURRENCE-ID component stands for this one */
        rc = emit_instance(im, ev, uid, t_ns, t_ns + dur_ns, start.is_date, 1);
        instances++;
    }
    icalrecur_iterator_free(it);
    return rc;
}

static am_rc collect_overrides(icalcomponent *cal, struct overrides *ov) {
    for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        if (!icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY))
            continue;
        struct icaltimetype r = zoned(
            cal, icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY),
            icalcomponent_get_recurrenceid(ev));
        if (icaltime_is_null_time(r))
            continue;
        if (ov->n == ov->cap) {
            size_t cap = ov->cap ? ov->cap * 2 : 16;
            int64_t *h = am_realloc(ov->h, cap * sizeof *h);
            if (!h)
                return AM_ENOMEM;
            ov->h = h, ov->cap = cap;
        }
        ov->h[ov->n++] = instance_hash(text(ev, ICAL_UID_PROPERTY), ns_of(r));
    }
    if (ov->n)
        qsort(ov->h, ov->n, sizeof *ov->h, cmp_i64);
    return AM_OK;
}

static am_rc do_calendar(struct imp *im, icalcomponent *cal, int64_t from_ns, int64_t to_ns) {
    struct overrides ov = {0};
    am_rc rc = collect_overrides(cal, &ov);
    for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
         rc == AM_OK && ev; ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT))
        rc = do_event(im, ev, &ov, from_ns, to_ns);
    am_free(ov.h);
    return rc;
}

am_rc imp_parse_ics(struct imp *im) {
    struct am_buf b;
    char chunk[64 * 1024];
    am_rc rc = AM_OK;
    icalcomponent *root = NULL;
    int64_t from_ns, to_ns;
    am_buf_init(&b, MAX_ICS_BYTES);
    for (;;) {
        long n = imp_read(im, chunk, sizeof chunk);
        if (n < 0) {
            rc = AM_EIO;
            goto out;
        }
        if (n == 0)
            break;
        if ((rc = am_buf_append(&b, chunk, (size_t)n)) != AM_OK) {
            if (rc == AM_ELIMIT)
                rc = imp_fail(im, "an ICS file is read whole, and this one is over %d MiB",
                              MAX_ICS_BYTES >> 20);
            goto out;
        }
    }
    /* libical accepts a calendar cut short; a truncated file must not look complete. */
    size_t len = b.len;
    while (len && (b.data[len - 1] == '\n' || b.data[len - 1] == '\r' || b.data[len - 1] == ' '))
        len--;
    if (b.len == 0 || memchr(b.data, '\0', b.len)) {
        rc = imp_fail(im, "not an iCalendar file");
        goto out;
    }
    if (len < 13 || strncasecmp(b.data + len - 13, "END:VCALENDAR", 13) != 0) {
        rc = imp_fail(im, "truncated iCalendar file: it does not end with END:VCALENDAR");
        goto out;
    }
    icalerror_set_errors_are_fatal(0);
    root = icalparser_parse_string(b.data);
    if (!root) {
        rc = imp_fail(im, "not an iCalendar file (libical: %s)", icalerror_strerror(icalerrno));
        goto out;
    }
    imp_ics_window(im, &from_ns, &to_ns);
    if (icalcomponent_isa(root) == ICAL_VCALENDAR_COMPONENT) {
        rc = do_calendar(im, root, from_ns, to_ns);
    } else if (icalcomponent_isa(root) == ICAL_XROOT_COMPONENT) {
        for (icalcomponent *c = icalcomponent_get_first_component(root, ICAL_VCALENDAR_COMPONENT);
             rc == AM_OK && c; c = icalcomponent_get_next_component(root, ICAL_VCALENDAR_COMPONENT))
            rc = do_calendar(im, c, from_ns, to_ns);
    } else {
        rc = imp_fail(im, "not an iCalendar file: no VCALENDAR");
    }
out:
    if (root)
        icalcomponent_free(root);
    am_buf_free(&b);
    return rc;
}
