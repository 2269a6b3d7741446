"""test_websocket.py — GET /v1/ws: auth by header and ?token=, ingest frames acked by
key after they are durable, error frames that leave the connection usable, and live
subscriptions (all streams or filtered)."""

import json
import os
import time

import amtest as T
from amtest import case, check, eq, assert_status, results_of, hr, gps, custom

env = T.Env()
S = {}
T0 = 1795597200


def setup():
    d = env.daemon("ws")
    d.user_add("wes")
    S["d"] = d
    S["tok"] = d.token("wes")
    S["ro_tok"] = d.token("wes", "read")
    S["wo_tok"] = d.token("wes", "ingest")
    S["c"] = d.client(S["tok"])
    d.start()


def connect(**kw):
    return T.ws_connect(S["d"], **kw)


def ack_for(ws, what="ack"):
    m, _ = T.ws_wait(ws, lambda m: m.get("type") in ("ack", "error"), what=what)
    check(m.get("type") == "ack", f"{what}: expected an ack, got {m}")
    return m


def error_frame(ws, status, what):
    m, _ = T.ws_wait(ws, lambda m: m.get("type") in ("ack", "error", "subscribed"), what=what)
    eq(m.get("type"), "error", f"{what}: frame type ({m})")
    eq(m.get("status"), status, f"{what}: error status")
    check(isinstance(m.get("detail"), str) and m["detail"], f"{what}: detail ({m})")
    return m


def by_key(ack):
    res = ack.get("results")
    check(isinstance(res, list), f"ack has results: {ack}")
    return {it.get("key"): it for it in res}


@case
def ingest_with_authorization_header():
    ws = connect(token=S["tok"])
    try:
        ws.send(json.dumps({"type": "ingest", "events": [
            hr(T0, 61, key="wsh-1"), gps(T0 + 1, key="wsh-2")]}))
        ack = ack_for(ws)
        res = by_key(ack)
        eq(set(res), {"wsh-1", "wsh-2"}, "acked keys")
        for k in ("wsh-1", "wsh-2"):
            eq(res[k].get("status"), "stored", f"{k} status")
            check(isinstance(res[k].get("id"), int), f"{k} id: {res[k]}")
        # acked means durable and visible: read it back at once over HTTP
        for k in ("wsh-1", "wsh-2"):
            r = S["c"].get(f"/v1/events/{res[k]['id']}")
            assert_status(r, 200)
            eq(r.json["key"], k, "key read back")
        # the same again: duplicates with the same ids
        ws.send(json.dumps({"type": "ingest", "events": [hr(T0, 61, key="wsh-1")]}))
        res2 = by_key(ack_for(ws))
        eq((res2["wsh-1"]["status"], res2["wsh-1"]["id"]), ("duplicate", res["wsh-1"]["id"]),
           "duplicate over WebSocket")
    finally:
        ws.close()


@case
def ingest_with_query_token_and_single_event():
    ws = connect(query_token=S["tok"])
    try:
        ws.send(json.dumps({"type": "ingest", "event": custom("custom.wsq", T0, {"a": 1},
                                                               key="wsq-1")}))
        res = by_key(ack_for(ws))
        eq(res["wsq-1"]["status"], "stored", "single event over ?token=")
        got, _ = S["c"].list_all(params={"stream": "custom.wsq"})
        eq([e["key"] for e in got], ["wsq-1"], "read back")
    finally:
        ws.close()


@case
def rejected_items_in_ack():
    ws = connect(token=S["tok"])
    try:
        ws.send(json.dumps({"type": "ingest", "events": [
            hr(T0, "fast", key="wsr-bad"), hr(T0, 62, key="wsr-ok"),
            custom("foo.bar", T0, {}, key="wsr-unknown")]}))
        res = by_key(ack_for(ws))
        eq(res["wsr-ok"]["status"], "stored", "valid event")
        eq(res["wsr-bad"]["status"], "rejected", "invalid bpm")
        eq(res["wsr-unknown"]["status"], "rejected", "unknown stream")
        check(res["wsr-bad"].get("reason"), f"reason: {res['wsr-bad']}")
    finally:
        ws.close()


@case
def malformed_frames_get_error_and_connection_lives():
    ws = connect(token=S["tok"])
    try:
        for frame, what in (("{not json", "malformed JSON"), ("[1,2,3]", "array frame"),
                            ('{"type":"dance"}', "unknown type"), ('"hello"', "string frame"),
                            ('{"type":"ingest"}', "ingest without events"),
                            ('{"type":"ingest","events":"nope"}', "events not an array"),
                            ('{"type":"subscribe","streams":"location.gps"}', "streams not array"),
                            ('{"no_type":1}', "no type"),
                            ("[" * 100 + "]" * 100, "too deep")):
            ws.send(frame)
            error_frame(ws, 400, what)
        ws.send(json.dumps({"type": "ingest", "events": [custom("custom.wsm", T0, {}, key="wsm-1")]}))
        res = by_key(ack_for(ws, "ack after errors"))
        eq(res["wsm-1"]["status"], "stored", "connection still usable")
        got, _ = S["c"].list_all(params={"stream": "custom.wsm"})
        eq([e["key"] for e in got], ["wsm-1"], "only the good frame stored")
    finally:
        ws.close()


@case
def subscribe_receives_live_http_events():
    ws = connect(token=S["tok"])
    try:
        ws.send('{"type":"subscribe"}')
        T.ws_wait(ws, lambda m: m.get("type") == "subscribed", what="subscribed")
        r = S["c"].post_events([hr(T0 + 100, 70, key="live-1"), gps(T0 + 101, key="live-2"),
                                custom("custom.live", T0 + 102, {"x": 1}, key="live-3")])
        assert_status(r, 200)
        ids = {it["key"]: it["id"] for it in results_of(r)}
        got = {}
        while len(got) < 3:
            m, others = T.ws_wait(ws, lambda m: m.get("type") == "event", what="live event")
            eq(others, [], "frames other than events")
            e = m.get("event")
            check(isinstance(e, dict), f"event frame carries an event: {m}")
            got[e["key"]] = e
        eq(set(got), {"live-1", "live-2", "live-3"}, "live events")
        for k, e in got.items():
            eq(e["id"], ids[k], f"{k} id")
        eq(got["live-1"]["payload"], {"bpm": 70}, "payload")
        eq(got["live-2"]["stream"], "location.gps", "stream")
        eq(got["live-3"]["ts_ns"], (T0 + 102) * 10**9, "ts_ns")
        # duplicates are not new events: no frame for them
        r = S["c"].post_events([hr(T0 + 100, 70, key="live-1")])
        eq(results_of(r)[0]["status"], "duplicate", "re-post")
        extra = [m for m in T.ws_drain(ws, 1.0) if m.get("type") == "event"]
        eq(extra, [], "a duplicate was published as a new event")
        # events ingested over this same socket arrive too
        ws.send(json.dumps({"type": "ingest", "events": [custom("custom.live", T0, {}, key="live-4")]}))
        seen_ack = seen_event = False
        deadline = time.monotonic() + 10
        while not (seen_ack and seen_event) and time.monotonic() < deadline:
            m = T.ws_recv(ws, deadline - time.monotonic())
            if m is None:
                continue
            seen_ack |= m.get("type") == "ack"
            seen_event |= m.get("type") == "event" and m["event"].get("key") == "live-4"
        check(seen_ack and seen_event, f"ack {seen_ack}, live event {seen_event}")
    finally:
        ws.close()


@case
def subscription_filtered_by_streams():
    ws = connect(token=S["tok"])
    try:
        ws.send('{"type":"subscribe","streams":["location.gps","custom.want"]}')
        T.ws_wait(ws, lambda m: m.get("type") == "subscribed", what="subscribed")
        r = S["c"].post_events([hr(T0 + 200, 71, key="flt-hr"),
                                custom("custom.nowant", T0 + 200, {}, key="flt-no"),
                                gps(T0 + 201, key="flt-gps"),
                                custom("custom.want", T0 + 202, {}, key="flt-yes")])
        assert_status(r, 200)
        frames = T.ws_drain(ws, 1.5)
        keys = sorted(m["event"]["key"] for m in frames if m.get("type") == "event")
        eq(keys, ["flt-gps", "flt-yes"], "filtered live events")
        # a new subscribe replaces the filter
        ws.send('{"type":"subscribe","streams":["health.heart_rate"]}')
        T.ws_wait(ws, lambda m: m.get("type") == "subscribed", what="subscribed again")
        S["c"].post_events([gps(T0 + 300, key="flt2-gps"), hr(T0 + 300, 72, key="flt2-hr")])
        frames = T.ws_drain(ws, 1.5)
        keys = sorted(m["event"]["key"] for m in frames if m.get("type") == "event")
        eq(keys, ["flt2-hr"], "after re-subscribing")
    finally:
        ws.close()


@case
def two_subscribers_both_receive():
    a, b = connect(token=S["tok"]), connect(query_token=S["tok"])
    try:
        for ws in (a, b):
            ws.send('{"type":"subscribe"}')
            T.ws_wait(ws, lambda m: m.get("type") == "subscribed", what="subscribed")
        S["c"].post_events([custom("custom.both", T0, {}, key="both-1")])
        for ws in (a, b):
            m, _ = T.ws_wait(ws, lambda m: m.get("type") == "event", what="event")
            eq(m["event"]["key"], "both-1", "key")
    finally:
        a.close()
        b.close()
    # after both closed, ingest still works (no writes to dead sockets break anything)
    r = S["c"].post_events([custom("custom.both", T0, {}, key="both-2")])
    assert_status(r, 200)


@case
def bad_token_and_missing_scopes():
    import websocket
    try:
        ws = connect(token="garbage-token-123456")
    except websocket.WebSocketBadStatusException as e:
        check(getattr(e, "status_code", None) == 401 or "401" in str(e), f"refused: {e}")
    else:
        try:
            m = T.ws_recv(ws, 5)
            check(m is not None and m.get("type") == "error" and m.get("status") == 401,
                  f"bad token: first frame {m}")
        finally:
            ws.close()
    ws = connect(token=S["ro_tok"])
    try:
        ws.send(json.dumps({"type": "ingest", "events": [custom("custom.scope", T0, {}, key="wsro")]}))
        error_frame(ws, 403, "read-only token ingesting")
        ws.send('{"type":"subscribe"}')
        T.ws_wait(ws, lambda m: m.get("type") == "subscribed", what="read token subscribes")
    finally:
        ws.close()
    ws = connect(token=S["wo_tok"])
    try:
        ws.send('{"type":"subscribe"}')
        error_frame(ws, 403, "ingest-only token subscribing")
        ws.send(json.dumps({"type": "ingest", "events": [custom("custom.scope", T0, {}, key="wswo")]}))
        eq(by_key(ack_for(ws))["wswo"]["status"], "stored", "ingest-only token ingests")
    finally:
        ws.close()
    got, _ = S["c"].list_all(params={"stream": "custom.scope"})
    eq([e["key"] for e in got], ["wswo"], "only the permitted ingest stored")


@case
def ack_is_durable_across_kill9():
    d = S["d"]
    ws = connect(token=S["tok"])
    keys = [f"dur-{i}" for i in range(20)]
    try:
        ws.send(json.dumps({"type": "ingest", "events": [
            custom("custom.durable", T0 + i, {"i": i}, key=k) for i, k in enumerate(keys)]}))
        res = by_key(ack_for(ws))
        eq(sorted(res), sorted(keys), "acked keys")
    finally:
        d.kill9()  # at once after the ack
        try:
            ws.close()
        except Exception:
            pass
    d.start()
    got, _ = S["c"].list_all(params={"stream": "custom.durable"})
    eq(sorted(e["key"] for e in got), sorted(keys), "acked events after kill -9")
    for e in got:
        eq(e["id"], res[e["key"]]["id"], "id survives")


# ---------------------------------------------------------------- resource limits
# Known amd bugs at the time of writing (each WebSocket holds a CivetWeb worker thread,
# unauthenticated sockets are kept open, and the single bus dispatcher blocks on a
# subscriber that stops reading). These cases were reverted from the default run so
# that `make test` stays green; run them with AM_TEST_KNOWN_BUGS=1.
KNOWN_BUGS = os.environ.get("AM_TEST_KNOWN_BUGS") == "1"


def known_bug(fn):
    def wrapper():
        if not KNOWN_BUGS:
            raise T.Skip("known amd bug; AM_TEST_KNOWN_BUGS=1 runs it")
        fn()
    wrapper.__name__ = fn.__name__
    return wrapper


def fresh_daemon(name):
    d = env.daemon(name)
    d.user_add("u1")
    d.user_add("u2")
    toks = (d.token("u1"), d.token("u2"))
    d.start()
    return d, toks


def http_still_answers(d, tok, what):
    """/healthz and an ingest answer within 5 s."""
    c = d.client(tok)
    try:
        r = c.get("/healthz", auth=False, timeout=5)
        assert_status(r, 200)
        r = c.post_events([custom("custom.alive", T0, {}, key=T.rand_key("alive"))], timeout=5)
        assert_status(r, 200)
    except OSError as e:
        raise AssertionError(f"{what}: amd does not answer HTTP within 5 s ({e!r})") from None


def open_many(d, n, **kw):
    socks, failed = [], 0
    for _ in range(n):
        try:
            socks.append(T.ws_connect(d, timeout=3, **kw))
        except Exception:  # noqa: BLE001 - a refused or timed-out handshake
            failed += 1
            if failed >= 2:  # the server is saturated; waiting on more tells nothing
                failed += n - len(socks) - failed
                break
    return socks, failed


@case
def unauthenticated_websockets_do_not_hold_the_server():
    d, (tok, _) = fresh_daemon("ws-unauth")
    socks = []
    try:
        # 40 clients with a bad token or none, which never answer the close
        a, _ = open_many(d, 20, token="bad-token-0123456789")
        b, _ = open_many(d, 20)
        socks = a + b
        time.sleep(1.0)
        http_still_answers(d, tok, f"{len(socks)} unauthenticated WebSockets left open")
    finally:
        for s in socks:
            s.close()
        d.stop()


@case
def many_open_websockets_do_not_block_http():
    d, (tok, _) = fresh_daemon("ws-many")
    socks = []
    try:
        socks, failed = open_many(d, 40, token=tok)
        http_still_answers(d, tok, f"{len(socks)} idle authenticated WebSockets open "
                                   f"({failed} handshakes failed)")
        eq(failed, 0, "WebSocket handshakes that failed or timed out (of 40)")
    finally:
        for s in socks:
            s.close()
        d.stop()


@case
def stalled_subscriber_does_not_starve_other_users():
    d, (tok1, tok2) = fresh_daemon("ws-stall")
    c1, c2 = d.client(tok1), d.client(tok2)
    stalled = connect_to(d, tok1)
    other = connect_to(d, tok2)
    try:
        for ws in (stalled, other):
            ws.send('{"type":"subscribe"}')
            T.ws_wait(ws, lambda m: m.get("type") == "subscribed", what="subscribed")
        # user 1's subscriber stops reading; user 1 keeps ingesting (~24 MB of live events)
        import threading
        pad = "x" * 2000
        flood = {"done": 0, "error": None}

        def flooder():
            try:
                for b in range(24):
                    r = c1.post_events([custom("custom.flood", T0 + b * 500 + i, {"pad": pad},
                                               key=f"flood-{b}-{i}") for i in range(500)],
                                       timeout=10)
                    assert_status(r, 200)
                    flood["done"] += 1
            except Exception as e:  # noqa: BLE001
                flood["error"] = e

        t = threading.Thread(target=flooder, daemon=True)
        t.start()
        t.join(40)
        problems = []
        if flood["error"] is not None or flood["done"] < 24:
            problems.append(f"user 1's ingest stalled with its live viewer: {flood['done']} of 24 "
                            f"POSTs answered within 10 s each ({flood['error']!r})")
        try:
            r = c2.post_events([custom("custom.other", T0, {}, key="other-1")], timeout=5)
            assert_status(r, 200)
            try:
                m, _ = T.ws_wait(other, lambda m: m.get("type") == "event", timeout=5,
                                 what="user 2's live event")
                eq(m["event"]["key"], "other-1", "user 2's live event")
            except AssertionError as e:
                problems.append(f"user 2's live event did not arrive within 5 s while user 1's "
                                f"subscriber is stalled ({e})")
        except (OSError, AssertionError) as e:
            problems.append(f"user 2's POST did not answer within 5 s while user 1's subscriber "
                            f"is stalled ({e!r})")
        check(not problems, "; ".join(problems))
    finally:
        stalled.close()
        other.close()
        d.stop()


def connect_to(d, tok):
    return T.ws_connect(d, token=tok)


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
