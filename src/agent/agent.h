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

#endif
