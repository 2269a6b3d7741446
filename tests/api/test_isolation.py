"""test_isolation.py — users never meet: with bob's token, every endpoint called with
alice's ids, hashes, keys and cursors shows nothing of alice; live WebSocket events go
only to their owner; and every /v1 endpoint refuses a request without a token."""

import os
import time

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem, results_of, hr, gps, custom

env = T.Env()
S = {}
T0 = 1795597200


def setup():
    d = env.daemon("iso")
    d.user_add("alice")
    d.user_add("bob")
    S["d"] = d
    S["alice"] = d.client(d.token("alice"))
    S["bob"] = d.client(d.token("bob"))
    d.start()
    a = S["alice"]
    evs = [hr(T0 + i, 60 + i, key=f"shared-{i}", source="alice-watch") for i in range(5)]
    evs += [custom("custom.alice_only", T0 + 10, {"secret": "alice's"}, key="alice-custom")]
    r = a.post_events(evs)
    assert_status(r, 200)
    S["alice_ids"] = [it["id"] for it in results_of(r)]
    S["alice_keys"] = [it["key"] for it in results_of(r)]
    S["blob"] = os.urandom(2048)
    r = a.post("/v1/blobs", S["blob"], ctype="application/octet-stream")
    assert_status(r, 201)
    S["sha"] = r.json["sha256"]
    r = a.post_events([{"stream": "image.photo", "ts": T0 + 20, "blob": S["sha"], "payload": {},
                        "key": "alice-photo"}])
    assert_status(r, 200)
    S["alice_ids"].append(results_of(r)[0]["id"])
    r = a.get("/v1/events", params={"limit": 2})
    S["alice_cursor"] = r.json.get("next_cursor")


@case
def bob_cannot_get_alice_event_by_id():
    b, a = S["bob"], S["alice"]
    for id_ in S["alice_ids"]:
        assert_status(a.get(f"/v1/events/{id_}"), 200)
        assert_problem(b.get(f"/v1/events/{id_}"), 404, "not-found")


@case
def bob_cannot_get_alice_blob():
    b, a = S["bob"], S["alice"]
    assert_status(a.get("/v1/blobs/" + S["sha"]), 200)
    assert_problem(b.get("/v1/blobs/" + S["sha"]), 404, "not-found")
    assert_problem(b.get("/v1/blobs/" + S["sha"], headers={"Range": "bytes=0-9"}), 404,
                   "not-found")
    # bob referencing alice's blob in an event: not his blob, rejected
    r = b.post_events([{"stream": "image.photo", "ts": T0, "blob": S["sha"], "payload": {},
                        "key": "bob-steals-photo"}])
    assert_problem(r, 422, "rejected")
    # bob uploading the same bytes gets his own copy (201: he did not have it)
    r = b.post("/v1/blobs", S["blob"], ctype="application/octet-stream")
    assert_status(r, 201)
    eq(r.json["sha256"], S["sha"], "content address")
    assert_status(b.get("/v1/blobs/" + S["sha"]), 200)
    r = b.post_events([{"stream": "image.photo", "ts": T0, "blob": S["sha"], "payload": {},
                        "key": "bob-photo"}])
    assert_status(r, 200)
    S["bob_extra"] = 1


@case
def bob_lists_see_nothing_of_alice():
    b = S["bob"]
    alice_keys = set(S["alice_keys"]) | {"alice-photo"}
    for path, params in (("/v1/events", None), ("/v1/events", {"stream": "health.heart_rate"}),
                         ("/v1/events", {"source": "alice-watch"}),
                         ("/v1/events", {"stream": "custom.alice_only"}),
                         ("/v1/events", {"order": "desc"}), ("/v1/timeline", None),
                         ("/v1/timeline", {"from": T0 - 100, "to": T0 + 100})):
        got, _ = b.list_all(path, params)
        leaked = [e for e in got if e.get("key") in alice_keys]
        eq(leaked, [], f"bob's {path} {params} shows alice's events")
        check(not any(e.get("source") == "alice-watch" for e in got), f"{path}: alice's source")
    # alice's cursor in bob's hands leads to bob's data only
    if S["alice_cursor"]:
        r = b.get("/v1/events", params={"cursor": S["alice_cursor"]})
        check(r.status in (200, 400), f"alice's cursor for bob: {r.status}")
        if r.status == 200:
            check(not any(e.get("key") in alice_keys for e in r.json["events"]),
                  "alice's cursor shows bob alice's events")
        else:
            assert_problem(r, 400, "malformed")
    r = b.get("/v1/streams")
    assert_status(r, 200)
    streams = {s["name"]: s for s in r.json["streams"]}
    check("custom.alice_only" not in streams, "alice's custom stream listed for bob")
    eq(streams["health.heart_rate"]["count"], 0, "bob's heart_rate count")
    eq(streams["image.photo"]["count"], S.get("bob_extra", 0), "bob's image.photo count")
    r = S["alice"].get("/v1/streams")
    eq({s["name"]: s for s in r.json["streams"]}["health.heart_rate"]["count"], 5,
       "alice's own count")


@case
def bob_using_alice_key_stores_new_row():
    a, b = S["alice"], S["bob"]
    r = b.post_events([hr(T0, 99, key="shared-0", source="bob-watch")])
    assert_status(r, 200)
    it = results_of(r)[0]
    eq(it["status"], "stored", "same key, other user: a new event")
    e = b.get(f"/v1/events/{it['id']}").json
    eq((e["payload"], e["source"]), ({"bpm": 99}, "bob-watch"), "bob's event")
    e = a.get(f"/v1/events/{S['alice_ids'][0]}").json
    eq((e["payload"], e["source"]), ({"bpm": 60}, "alice-watch"), "alice's event unchanged")
    # derived keys: the same content from both users is two events
    same = hr(T0 + 500, 88, source="phone")
    ra, rb = a.post_events([same]), b.post_events([same])
    eq(results_of(ra)[0]["status"], "stored", "alice derived-key event")
    eq(results_of(rb)[0]["status"], "stored", "bob derived-key event (same content)")
    # and alice re-posting her own key is still her duplicate
    r = a.post_events([hr(T0, 60, key="shared-0", source="alice-watch")])
    eq((results_of(r)[0]["status"], results_of(r)[0]["id"]), ("duplicate", S["alice_ids"][0]),
       "alice's duplicate")


@case
def websocket_events_go_to_their_owner_only():
    d = S["d"]
    ws_a = T.ws_connect(d, token=S["alice"].token)
    ws_b = T.ws_connect(d, token=S["bob"].token)
    try:
        for ws in (ws_a, ws_b):
            ws.send('{"type":"subscribe"}')
            T.ws_wait(ws, lambda m: m.get("type") == "subscribed", what="subscribed")
        r = S["alice"].post_events([gps(T0 + 1000, key="alice-live-1"),
                                    hr(T0 + 1001, 70, key="alice-live-2")])
        assert_status(r, 200)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            m, _ = T.ws_wait(ws_a, lambda m: m.get("type") == "event", timeout=10,
                             what="alice's live event")
            got.append(m["event"]["key"])
        eq(sorted(got), ["alice-live-1", "alice-live-2"], "alice's subscription")
        # bob: nothing of alice's, then his own event proves his subscription works
        r = S["bob"].post_events([gps(T0 + 1002, key="bob-live-1")])
        assert_status(r, 200)
        m, others = T.ws_wait(ws_b, lambda m: m.get("type") == "event", timeout=10,
                              what="bob's live event")
        eq(m["event"]["key"], "bob-live-1", "bob's first live event is his own")
        eq(others, [], "other frames bob received")
        extra = T.ws_drain(ws_b, 1.0)
        eq(extra, [], "bob received more frames")
        extra = T.ws_drain(ws_a, 0.5)
        check(not any(x.get("type") == "event" and x["event"].get("key") == "bob-live-1"
                      for x in extra), f"alice received bob's event: {extra}")
        # ingest over bob's socket with alice's key: bob's own new event
        ws_b.send('{"type":"ingest","events":[{"stream":"custom.ws","ts":1795597200,'
                  '"key":"alice-custom","payload":{}}]}')
        m, _ = T.ws_wait(ws_b, lambda m: m.get("type") == "ack", what="ack")
        eq(m["results"][0]["status"], "stored", "alice's key over bob's socket")
        e = S["bob"].get(f"/v1/events/{m['results'][0]['id']}").json
        eq(e.get("stream"), "custom.ws", "bob's event by the ack's id")
        e = S["alice"].get(f"/v1/events/{S['alice_ids'][5]}").json
        eq(e.get("stream"), "custom.alice_only", "alice's event with that key unchanged")
    finally:
        ws_a.close()
        ws_b.close()


@case
def every_v1_endpoint_needs_a_token():
    c = S["alice"]
    sha = S["sha"]
    calls = [("GET", "/v1/events", None), ("POST", "/v1/events", b"[]"),
             ("GET", f"/v1/events/{S['alice_ids'][0]}", None), ("GET", "/v1/timeline", None),
             ("GET", "/v1/streams", None), ("POST", "/v1/blobs", b"abc"),
             ("PUT", "/v1/blobs", b"abc"), ("GET", f"/v1/blobs/{sha}", None),
             ("GET", "/v1/ws", None), ("GET", "/v1/unknown", None),
             ("DELETE", "/v1/events", None)]
    for method, path, body in calls:
        r = c.request(method, path, body=body, auth=False,
                      ctype="application/json" if body is not None else None)
        try:
            assert_problem(r, 401, "unauthorized")
        except AssertionError as e:
            # a wrong method may be refused before auth; it must not succeed either way
            if method == "DELETE" and r.status == 405:
                continue
            raise AssertionError(f"{method} {path} without a token: {e}") from None
    # a WebSocket without a token: the handshake is refused, or an error frame says 401
    import websocket
    try:
        ws = T.ws_connect(S["d"])
    except websocket.WebSocketBadStatusException as e:
        check("401" in str(e) or getattr(e, "status_code", 0) == 401, f"handshake refused: {e}")
        return
    try:
        m = T.ws_recv(ws, 5)
        check(m is not None and m.get("type") == "error" and m.get("status") == 401,
              f"unauthenticated WebSocket: first frame {m}")
        try:
            ws.send('{"type":"subscribe"}')
            m = T.ws_recv(ws, 2)
            check(m is None or m.get("type") != "subscribed", f"subscribed without a token: {m}")
        except (websocket.WebSocketConnectionClosedException, BrokenPipeError,
                ConnectionResetError, AssertionError):
            pass
    finally:
        ws.close()


@case
def cross_user_counts_add_up():
    a, b = S["alice"], S["bob"]
    ga, _ = a.list_all("/v1/timeline")
    gb, _ = b.list_all("/v1/timeline")
    # alice: 5 heart rates, her custom event, her photo, a derived-key event, 2 live ones
    eq(len(ga), 10, f"alice's timeline: {sorted(e['key'] for e in ga)}")
    # bob: his photo, 'shared-0', a derived-key event, a live one, 'alice-custom' over WS
    eq(len(gb), 5, f"bob's timeline: {sorted(e['key'] for e in gb)}")
    check(not any(e["source"] == "alice-watch" for e in gb), "alice's source in bob's timeline")
    check(not any(e["source"] == "bob-watch" for e in ga), "bob's source in alice's timeline")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
