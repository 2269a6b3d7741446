/* fuzz_mqtt.c — libFuzzer target for the MQTT door's parsing (mqtt.c): the input's first
 * line is a topic, the rest a message. The topic parser must give a user and a name that
 * are whole topic levels; every event a message makes must be one POST /v1/events accepts
 * again unchanged. The payload is also tried as AM events under a fixed topic. */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    am_alloc_init();
    if (am_crypto_init() != AM_OK)
        abort();
    return 0;
}

static const struct am_limits lim = {32, 256 * 1024};
#define USER_ID 7
#define MAX_ITEMS 1000

static void check_events(const struct am_event_list *l) {
    if (l->n > 2 * MAX_ITEMS)
        abort();
    for (size_t i = 0; i < l->n; i++) {
        const struct am_event *e = &l->items[i];
        if (!e->payload || strlen(e->payload) != e->payload_len || !e->key[0] ||
            e->user_id != USER_ID)
            abort();
        json_t *j = am_event_to_json(e);
        if (!j)
            abort();
        struct am_event again;
        char reason[200];
        if (am_event_from_json(j, USER_ID, &lim, &again, reason, sizeof reason) != AM_OK)
            abort();
        if (again.ts_ns != e->ts_ns || strcmp(again.key, e->key) ||
            strcmp(again.stream, e->stream) || again.payload_len != e->payload_len ||
            memcmp(again.payload, e->payload, e->payload_len))
            abort();
        am_free(again.payload);
        json_decref(j);
    }
}

static void run(const struct am_mqtt_topic *t, const char *buf, size_t len) {
    struct am_event_list l = {0};
    size_t skipped = 0;
    char err[256] = "";
    am_rc rc = am_mqtt_events(t, USER_ID, &lim, MAX_ITEMS, buf, len, &l, &skipped, err, sizeof err);
    if (rc == AM_OK)
        check_events(&l);
    else if ((rc != AM_EINVAL && rc != AM_ELIMIT) || !err[0])
        abort();
    am_event_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    long failures = am_alloc_failures();
    const char *nl = memchr(buf, '\n', size);
    size_t topic_len = nl ? (size_t)(nl - buf) : size;
    const char *payload = nl ? nl + 1 : buf + size;
    size_t payload_len = size - (size_t)(payload - buf);

    struct am_mqtt_topic t;
    am_rc rc = am_mqtt_topic_parse(buf, topic_len, &t);
    if (rc == AM_OK || rc == AM_ENOTFOUND) {
        size_t ul = strlen(t.user), nlen = strlen(t.name);
        if (!ul || !nlen || strchr(t.user, '/') || strchr(t.name, '/') ||
            memcmp(buf + (t.door == AM_MQTT_EVENTS ? 3 : 10), t.user, ul) != 0)
            abort();
        if (t.door != AM_MQTT_EVENTS && t.door != AM_MQTT_OWNTRACKS)
            abort();
        if (rc == AM_OK)
            run(&t, payload, payload_len);
    } else if (rc != AM_EINVAL) {
        abort();
    }
    struct am_mqtt_topic fixed = {.door = AM_MQTT_EVENTS, .user = "u", .name = "health.heart_rate"};
    run(&fixed, payload, payload_len);

    if (am_alloc_failures() != failures)
        abort();
    return 0;
}
