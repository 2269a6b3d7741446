/* agent.h — what AM knows about a person's "now" and what it believes about them.
 * Context: the latest place, motion, app, screen, speech, calendar, messages, sleep and
 * heart rate, each with the events it rests on and their age. Memories: derived.memory
 * events with the person's verdicts (derived.feedback) folded in. Everything is read
 * through the store for one user; verdicts are written through am_ingest_submit. */
#ifndef AM_AGENT_H
#define AM_AGENT_H

#include "../core/core.h"

struct am_server;

/* The context at `now` (UTC ns) as JSON; caller owns *out. */
am_rc am_agent_context(struct am_server *srv, int64_t user_id, int64_t now, json_t **out);

/* Memories newest first, each {"id", "statement", "kind", "confidence", "evidence",
 * "status", "first_seen", "last_seen", ...}; status NULL for all. Caller owns *out. */
am_rc am_agent_memories(struct am_server *srv, int64_t user_id, const char *status, size_t limit,
                        json_t **out);

/* Records the person's verdict on a memory: "confirmed", "rejected", or a new statement
 * (edited). AM_ENOTFOUND when the user has no such memory; AM_EINVAL for a bad verdict.
 * *out is the memory as it now reads. */
am_rc am_agent_memory_verdict(struct am_server *srv, int64_t user_id, int64_t memory_id,
                              const char *status, const char *statement, json_t **out,
                              char *err, size_t err_len);

/* ---------------------------------------------------------------- nudges */

struct am_nudge {
    const char *kind;   /* "calendar", "place", ...: the cooldown is per kind */
    const char *dedup;  /* one nudge per dedup string, ever */
    const char *title, *body, *reason;
    const int64_t *evidence;
    size_t n_evidence;
    int priority;       /* 0 low, 1 normal, 2 high: high skips the cooldown, nothing else */
};

/* Applies the policy at `now` — quiet hours, the daily budget (less after nudges rated
 * not useful), the cooldown per kind, deduplication — and when it allows, stores the
 * nudge as a derived.nudge event (which reaches live subscribers like any event).
 * *decision: {"sent": true, "id"} or {"sent": false, "why"}; caller owns it. */
am_rc am_nudge_offer(struct am_server *srv, int64_t user_id, const struct am_nudge *n,
                     int64_t now, json_t **decision);
/* The nudges, newest first, with the person's feedback folded in. */
am_rc am_nudges(struct am_server *srv, int64_t user_id, size_t limit, json_t **out);
/* useful, not_useful or snooze, stored as a derived.feedback event. */
am_rc am_nudge_feedback(struct am_server *srv, int64_t user_id, int64_t nudge_id,
                        const char *rating, json_t **out, char *err, size_t err_len);

/* The places analyzer: stay points since the last stored visit become location.place
 * visits (spans) with their arrival and departure, named home / work when the hours
 * spent there say so. *visits counts the finished visits it stored. */
am_rc am_places_run(struct am_server *srv, int64_t user_id, int64_t now, size_t *visits);

/* Routines from place visits (the same place, weekday and hour in most of the last four
 * weeks) and their lapses, stored as derived.habit events (kind routine / lapse). A lapse
 * found now is also appended to lapses ({"text", "dedup", "ts", "evidence"}) when given. */
am_rc am_habits_run(struct am_server *srv, int64_t user_id, int64_t now, json_t *lapses);

/* Correlations between daily aggregates (screen off at night, sleep hours, lowest heart
 * rate, workout minutes) at lag 0 and 1 day; the well-supported ones are stored as
 * derived.correlation events. *found counts them. */
am_rc am_correlate_run(struct am_server *srv, int64_t user_id, int64_t now, size_t *found);

/* Who appears where: {"people": [{"key", "name", "mentions", "streams", "where":
 * {"email": n, ...}, "evidence"}]}, most mentioned first. Caller owns *out. */
am_rc am_people(struct am_server *srv, int64_t user_id, int64_t now, json_t **out);

/* ---------------------------------------------------------------- signatures (DSPy-style) */

struct am_sig_field {
    const char *name;
    const char *type; /* string, number, integer, boolean, array (of strings) */
    const char *desc;
};

struct am_signature {
    const char *name;          /* InferMemory, DecideNudge, SummarizeDay */
    const char *instructions;  /* what the model is asked to do */
    const struct am_sig_field *in, *out;
    size_t n_in, n_out;
    int version;               /* bumped when the prompt changes; logged with each call */
};

/* Predict: renders the signature and inputs to a prompt and a JSON schema, asks the chat
 * model, returns the validated output object (caller owns). Logged as derived.model_call.
 * AM_ENOTFOUND when no chat model is configured: callers fall back to templates. */
am_rc am_predict(struct am_server *srv, int64_t user_id, const struct am_signature *sig,
                 const json_t *inputs, json_t **outputs, char *err, size_t err_len);

/* Anomalies: the last hour's heart rate against the same hour of the previous four weeks
 * (median and MAD, robust z beyond 3.5), stored as derived.anomaly events; each new one is
 * appended to found ({"id", "text", "evidence"}) when given. */
am_rc am_anomalies_run(struct am_server *srv, int64_t user_id, int64_t now, json_t *found);

/* Memories from what the analyzers found (routines, correlations, people who appear in
 * several streams), with their evidence. A restated memory is a duplicate by its key, so
 * one rejected is never inferred again. With a chat model the statement is phrased by
 * the InferMemory signature; without one by a template. *n counts new memories. */
am_rc am_memories_infer(struct am_server *srv, int64_t user_id, int64_t now, size_t *n);

/* Runs the analyzers and then the triggers for one user at `now`; a decision per offered nudge is appended to
 * decisions (an array). */
am_rc am_agent_tick(struct am_server *srv, int64_t user_id, int64_t now, json_t *decisions);

/* A day's summary (SummarizeDay with a chat model, else a template) stored as a
 * derived.summary span keyed by the date; day_utc_ns is the day's local midnight given as
 * a UTC date (YYYY-MM-DD at 00:00Z). AM_ENOTFOUND when the day holds nothing to say. */
am_rc am_agent_summarize_day(struct am_server *srv, int64_t user_id, int64_t day_utc_ns,
                             json_t **out);

/* A synthetic life of `days` days from start_ns (see simulate.c for what is planted),
 * handed over as NDJSON lines, one event each. */
am_rc am_simulate(int days, uint64_t seed, int64_t start_ns, int utc_offset_min,
                  am_rc (*emit)(const char *line, size_t len, void *arg), void *arg);

struct am_agent; /* opaque: the thread that runs the triggers every cfg.agent_tick_s */
am_rc am_agent_start(struct am_server *srv, struct am_agent **out);
void am_agent_stop(struct am_agent *a);

#endif
