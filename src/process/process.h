/* process.h — the enrichment pipeline: workers that take jobs from the store's durable
 * queue (rows written in the same transaction as their event: an outbox), run them
 * (OCR, speech-to-text, key frames, captions, text analysis, embeddings) and store what
 * they derive through am_ingest_submit with keys derived from input and job kind, so a
 * rerun after a crash never duplicates. Failures retry with backoff and jitter, then go
 * to the dead-letter state with their error. */
#ifndef AM_PROCESS_H
#define AM_PROCESS_H

#include "../core/core.h"

struct am_server;
struct am_process; /* opaque: the worker pool */

/* The job kinds new events get (for the store's configuration), from cfg.pipeline. */
unsigned am_process_kinds(const struct am_config *cfg);
/* The embedding model embed jobs are written for (the built-in one unless a server is set). */
void am_process_embed_model(const struct am_config *cfg, char *out, size_t out_len);

/* Starts cfg.workers threads (0: one per core). */
am_rc am_process_start(struct am_server *srv, struct am_process **out);
/* Stops taking jobs, lets running ones finish, joins the workers. NULL is a no-op. */
void am_process_stop(struct am_process *p);
/* Appends the pipeline's Prometheus metrics (queue depth by kind and state, job
 * latency) to out. */
void am_process_metrics(struct am_process *p, struct am_buf *out);

/* Embeds a query with the configured embedder (the built-in one when no model server is
 * set). *model names the model; *out (dim floats) is the caller's to am_free. */
am_rc am_process_embed_query(struct am_process *p, const char *text, float **out, int *dim,
                             char *model, size_t model_len, char *err, size_t err_len);

/* Same, with a named model: the built-in one at the dimension its name gives
 * ("am-hash-v1-256"), or that model on the configured embeddings server. Lets search
 * keep using the vectors of a previous model while a new one is backfilled. */
am_rc am_process_embed_query_with(struct am_process *p, const char *model, const char *text,
                                  float **out, int *dim, char *err, size_t err_len);

/* Asks the configured chat model (chat_url/chat_model) for a JSON object that follows
 * schema; validated and retried by the client. AM_ENOTFOUND when no chat model is set. */
am_rc am_process_chat_json(struct am_process *p, const char *system, const char *user,
                           const json_t *schema, const char *schema_name, json_t **out,
                           char *err, size_t err_len);

#endif
