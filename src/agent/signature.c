/* signature.c — the DSPy idea of a signature, in C: named input and output fields with
 * types and descriptions, rendered to a prompt and a JSON schema, answered by the chat
 * model, parsed and validated (the client retries invalid JSON). Every call is logged as
 * a derived.model_call event (signature, model, latency, outcome), so the person can see
 * what was asked of a model on their behalf. */
#include "agent.h"
#include "../ingest/ingest.h"
#include "../process/process.h"

#include <stdio.h>
#include <string.h>

static json_t *schema_of(const struct am_signature *sig) {
    json_t *props = json_object(), *req = json_array();
    for (size_t i = 0; props && req && i < sig->n_out; i++) {
        const struct am_sig_field *f = &sig->out[i];
        json_t *t = json_pack("{s:s, s:s}", "type", f->type, "description", f->desc);
        if (t && !strcmp(f->type, "array"))
            json_object_set_new(t, "items", json_pack("{s:s}", "type", "string"));
        json_object_set_new(props, f->name, t);
        json_array_append_new(req, json_string(f->name));
    }
    return json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props, "required",
                     req, "additionalProperties", 0);
}

static void log_call(struct am_server *srv, int64_t user_id, const struct am_signature *sig,
                     const char *outcome, double ms, const char *err) {
    char key[AM_KEY_MAX + 1], reason[256];
    int64_t now = am_now_ns();
    uint32_t r;
    am_random_bytes(&r, sizeof r);
    snprintf(key, sizeof key, "call:%s:%lld:%08x", sig->name, (long long)now, r);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s, s:f, s:i}}", "stream",
                          "derived.model_call", "source", "am.agent", "ts_ns", (json_int_t)now,
                          "key", key, "payload", "signature", sig->name, "outcome", outcome,
                          "latency_ms", ms, "prompt_version", sig->version);
    if (o && srv->cfg.chat_model[0])
        json_object_set_new(json_object_get(o, "payload"), "model",
                            json_string(srv->cfg.chat_model));
    if (o && err && *err)
        json_object_set_new(json_object_get(o, "payload"), "error", json_string(err));
    struct am_event e;
    struct am_item_result res;
    struct am_limits lim = {.max_depth = 32, .max_payload_bytes = 65536};
    memset(&e, 0, sizeof e);
    if (o && am_event_from_json(o, user_id, &lim, &e, reason, sizeof reason) == AM_OK)
        am_ingest_submit(srv, user_id, &e, 1, &res);
    am_event_clear(&e);
    json_decref(o);
}

am_rc am_predict(struct am_server *srv, int64_t user_id, const struct am_signature *sig,
                 const json_t *inputs, json_t **outputs, char *err, size_t err_len) {
    struct am_buf sys, user;
    *outputs = NULL;
    if (!srv->process || !srv->cfg.chat_url[0]) {
        snprintf(err, err_len, "no chat model is configured");
        return AM_ENOTFOUND;
    }
    am_buf_init(&sys, 1u << 16);
    am_buf_init(&user, 1u << 20);
    am_buf_printf(&sys, "%s\nAnswer with one JSON object with these fields:\n",
                  sig->instructions);
    for (size_t i = 0; i < sig->n_out; i++)
        am_buf_printf(&sys, "- %s (%s): %s\n", sig->out[i].name, sig->out[i].type,
                      sig->out[i].desc);
    for (size_t i = 0; i < sig->n_in; i++) {
        json_t *v = json_object_get(inputs, sig->in[i].name);
        char *text = v ? (json_is_string(v) ? am_strdup(json_string_value(v)) : am_json_dump(v, NULL))
                       : am_strdup("");
        am_buf_printf(&user, "%s (%s): %s\n", sig->in[i].name, sig->in[i].desc,
                      text ? text : "");
        am_free(text);
    }
    json_t *schema = schema_of(sig);
    int64_t t0 = am_mono_ns();
    am_rc rc = schema ? am_process_chat_json(srv->process, sys.data, user.data, schema, sig->name,
                                             outputs, err, err_len)
                      : AM_ENOMEM;
    log_call(srv, user_id, sig, rc == AM_OK ? "ok" : "failed",
             (double)(am_mono_ns() - t0) / 1e6, rc == AM_OK ? NULL : err);
    json_decref(schema);
    am_buf_free(&sys);
    am_buf_free(&user);
    return rc;
}
