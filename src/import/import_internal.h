/* import_internal.h — private to src/import: what the framework (import.c) offers the
 * format parsers (import_gpx.c, import_takeout.c, import_apple.c, import_ics.c). */
#ifndef AM_IMPORT_INTERNAL_H
#define AM_IMPORT_INTERNAL_H

#include "import.h"

struct imp; /* one run over one file */

/* Reads the next bytes of the file: their count, 0 at its end, -1 on a read error
 * (the run has failed then). Counts bytes done. */
long imp_read(struct imp *im, char *buf, size_t cap);
/* Bytes of the file read so far (for error messages). */
int64_t imp_bytes_done(const struct imp *im);
/* One source record seen (a point, a Record, a VEVENT). */
void imp_record(struct imp *im);
/* Hands over one event: ev is a JSON object with stream, ts_ns, optional ts_end_ns and
 * payload (the reference is taken). identity names the record it came from and makes
 * the key. AM_OK also when the event was rejected (counted); another code stops the run. */
am_rc imp_emit(struct imp *im, json_t *ev, const char *identity, size_t identity_len);
/* Marks the run failed with a message (first one wins); returns AM_EINVAL. */
am_rc imp_fail(struct imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The ICS expansion window. */
void imp_ics_window(const struct imp *im, int64_t *from_ns, int64_t *to_ns);

/* The parsers: each reads the whole input through imp_read. */
am_rc imp_parse_gpx(struct imp *im);
am_rc imp_parse_takeout(struct imp *im);
am_rc imp_parse_apple(struct imp *im);
am_rc imp_parse_ics(struct imp *im);

/* libxml2's streaming reader over imp_read, with errors kept instead of printed. */
struct _xmlTextReader;
am_rc imp_xml_open(struct imp *im, struct _xmlTextReader **out);
/* After xmlTextReaderRead returned -1: fails the run with libxml2's message and line. */
am_rc imp_xml_fail(struct imp *im, struct _xmlTextReader *r);

/* Number parsing that refuses garbage: 1 on success. */
int imp_number(const char *s, double *out);

#endif
