"""test_bad_input.py — hostile and broken requests: malformed bodies, wrong types, bad
times and names, limits (413/400 too-deep), content types, auth and scopes, rate limits.
Every error is application/problem+json; nothing partial is ever stored; amd survives."""

import json
import os
import time

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem, results_of, hr, gps, custom, short

env = T.Env()
S = {}
T0 = 1795597200
MAX_BODY = 65536
MAX_BATCH = 50
MAX_DEPTH = 8


def setup():
    d = env.daemon("bad", settings={"AM_MAX_BODY_BYTES": MAX_BODY,
                                     "AM_MAX_BATCH_EVENTS": MAX_BATCH,
                                     "AM_MAX_JSON_DEPTH": MAX_DEPTH})
    d.user_add("eve")
    S["d"] = d
    S["c"] = d.client(d.token("eve", "ingest,read"))
    S["ro"] = d.client(d.token("eve", "read"))
    S["wo"] = d.client(d.token("eve", "ingest"))
    S["revokee"] = d.client(d.token("eve", "ingest,read", label="revoke-me"))
    d.start()
    S["expected"] = 0  # events this file means to have stored


def total():
    return S["c"].count(path="/v1/timeline")


class Unchanged:
    """with Unchanged(): ...  — asserts the user's event count did not move."""

    def __enter__(self):
        self.before = total()
        eq(self.before, S["expected"], "events stored before this step")

    def __exit__(self, et, ev, tb):
        after = total()
        if after != self.before:
            # keep later cases independent of this one; the last case reports leaks
            S["expected"] = after
            S["leaked"] = S.get("leaked", 0) + after - self.before
            if et is None:
                eq(after, self.before, "events stored after a request that must store nothing")
        return False


def stored(r, n):
    assert_status(r, 200)
    eq(r.json.get("stored"), n, "stored")
    S["expected"] += n


def rejected_alone(ev, what, reason_word=None):
    """Posting ev alone must answer 422 rejected with a reason; returns the reason."""
    r = S["c"].post_events([ev])
    j = assert_problem(r, 422, "rejected")
    res = j.get("results")
    check(isinstance(res, list) and len(res) == 1, f"{what}: 422 with one result: {j}")
    eq(res[0].get("status"), "rejected", f"{what}: status")
    reason = res[0].get("reason")
    check(isinstance(reason, str) and reason, f"{what}: reason: {res[0]}")
    if reason_word:
        check(reason_word in reason, f"{what}: reason {reason!r} should mention {reason_word!r}")
    return reason


# ---------------------------------------------------------------- malformed bodies

@case
def malformed_json_is_400():
    c = S["c"]
    bodies = {
        "truncated object": '[{"stream": "custom.x", "ts": 1795597200',
        "truncated array": '[{"stream":"custom.x","ts":1795597200,"payload":{}}',
        "open string": '{"stream": "custom.x',
        "garbage": "not json at all",
        "trailing garbage": '{"stream":"custom.x","ts":1795597200} xyz',
        "single quotes": "{'stream': 'custom.x', 'ts': 1795597200}",
        "trailing comma": '[{"stream":"custom.x","ts":1795597200},]',
        "bare NaN": '{"stream":"health.heart_rate","ts":1795597200,"payload":{"bpm":NaN}}',
        "bare Infinity": '{"stream":"health.heart_rate","ts":1795597200,"payload":{"bpm":Infinity}}',
        "invalid utf-8": b'{"stream":"custom.x","ts":1795597200,"payload":{"s":"\xff\xfe"}}',
        "nul byte": '{"stream":"custom.x","ts":1795597200,"payload":{"s":"a\x00b"}}',
        "empty": "",
        "whitespace": "  \n ",
    }
    with Unchanged():
        for what, body in bodies.items():
            r = c.post("/v1/events", body, ctype="application/json")
            try:
                assert_problem(r, 400, "malformed")
            except AssertionError as e:
                raise AssertionError(f"{what}: {e}") from None
        # valid JSON that is not an event or array of events
        for body in ('"a string"', "42", "null", "[]", "[1, 2]"):
            r = c.post("/v1/events", body, ctype="application/json")
            check(r.status in (400, 422), f"body {body}: status {r.status}")
            assert_problem(r, r.status)


@case
def wrong_types_rejected():
    with Unchanged():
        rejected_alone({"stream": "custom.x", "ts": {"s": 1}, "payload": {}}, "ts as object", "ts")
        rejected_alone({"stream": "custom.x", "ts": [T0], "payload": {}}, "ts as array", "ts")
        rejected_alone({"stream": "custom.x", "ts": True, "payload": {}}, "ts as bool", "ts")
        rejected_alone({"stream": "custom.x", "ts": T0, "payload": [1, 2]}, "payload as array",
                       "payload")
        rejected_alone({"stream": "custom.x", "ts": T0, "payload": "x"}, "payload as string",
                       "payload")
        rejected_alone(gps(T0, lat="52.5"), "lat as string", "lat")
        rejected_alone(gps(T0, lat=None), "lat null (required)", "lat")
        rejected_alone({"stream": "location.gps", "ts": T0, "payload": {"lon": 1}}, "lat missing",
                       "lat")
        rejected_alone(hr(T0, True), "bpm as bool", "bpm")
        rejected_alone({"stream": 7, "ts": T0, "payload": {}}, "stream as number", "stream")
        rejected_alone({"ts": T0, "payload": {}}, "stream missing", "stream")
        rejected_alone({"stream": "custom.x", "payload": {}}, "ts missing", "ts")
        rejected_alone({"stream": "screen.state", "ts": T0, "payload": {"state": 1}},
                       "state as number", "state")
        rejected_alone(custom("custom.x", T0, {}, source=5), "source as number", "source")
        rejected_alone(custom("custom.x", T0, {}, source=""), "empty source", "source")
        rejected_alone(custom("custom.x", T0, {}, key=17), "key as number", "key")
        rejected_alone(custom("custom.x", T0, {}, key=""), "empty key", "key")
        rejected_alone(custom("custom.x", T0, {}, blob=123), "blob as number", "blob")
        rejected_alone(custom("custom.x", T0, {}, blob="zz"), "blob not hex", "blob")
        r = S["c"].post_events([42, "x", None])
        j = assert_problem(r, 422, "rejected")
        eq([it["status"] for it in j["results"]], ["rejected"] * 3, "non-objects in an array")


@case
def ranges():
    with Unchanged():
        for lat, lon in ((91, 0), (-90.0001, 0), (0, 180.5), (0, -181), (1e308, 0)):
            rejected_alone(gps(T0, lat=lat, lon=lon), f"lat={lat} lon={lon}")
        for bpm in (0, -1, 301, 1e6):
            rejected_alone(hr(T0, bpm), f"bpm={bpm}", "bpm")
    r = S["c"].post_events([gps(T0, lat=90, lon=180, key="edge-1"),
                            gps(T0, lat=-90, lon=-180, key="edge-2"),
                            hr(T0, 300, key="edge-3"), hr(T0, 1, key="edge-4")])
    stored(r, 4)


@case
def nan_and_infinity():
    c = S["c"]
    with Unchanged():
        rejected_alone(hr(T0, "NaN"), 'bpm "NaN" string', "bpm")
        rejected_alone(gps(T0, lat="NaN"), 'lat "NaN" string', "lat")
        rejected_alone(gps(T0, lat="Infinity"), 'lat "Infinity" string', "lat")
        for lit in ("1e999", "-1e999"):
            body = '[{"stream":"location.gps","ts":1795597200,"payload":{"lat":%s,"lon":1}}]' % lit
            r = c.post("/v1/events", body, ctype="application/json")
            # A parser may refuse the number (400) or turn it into inf (then: rejected).
            check(r.status in (400, 422), f"lat {lit}: status {r.status}: {r.text()[:300]}")
            assert_problem(r, r.status, "malformed" if r.status == 400 else "rejected")
        for lit in ("1e999", "-1e999", "1" + "0" * 30, "-1" + "0" * 30, "1e30"):
            body = '[{"stream":"custom.x","ts":%s,"payload":{}}]' % lit
            r = c.post("/v1/events", body, ctype="application/json")
            check(r.status in (400, 422), f"ts {lit}: status {r.status}: {r.text()[:300]}")
            assert_problem(r, r.status)


@case
def bad_timestamps():
    with Unchanged():
        for ts in ("2026-13-45T99:00:00Z", "2026-02-30T10:00:00Z", "2026-11-25T24:00:00Z",
                   "2026-11-25T10:61:00Z", "yesterday", "", " ", "2026-11-25",
                   "2026-11-25T10:00:00",  # no zone: names no instant
                   "2026-11-25T10:00:00+25:00", "2026-11-25T10:00:00.Z", "1795597200abc",
                   "12:00", "0x6A", "1e9", "-", "9" * 30, "NaN", None):
            rejected_alone(custom("custom.x", ts, {}), f"ts={ts!r}", "ts")
        rejected_alone(custom("custom.x", T0, {}, ts_end=T0 - 1), "ts_end < ts", "ts_end")
        rejected_alone(custom("custom.x", "2026-11-25T10:00:00Z", {},
                              ts_end="2026-11-25T09:59:59.999Z"), "ts_end < ts (rfc)", "ts_end")
        rejected_alone(custom("custom.x", T0, {}, ts_end="tomorrow"), "ts_end garbage", "ts_end")
    r = S["c"].post_events([custom("custom.span", T0, {}, ts_end=T0, key="span-eq"),
                            custom("custom.span", T0, {}, ts_end=T0 + 60, key="span-60")])
    stored(r, 2)


@case
def stream_names():
    c = S["c"]
    with Unchanged():
        rejected_alone(custom("foo.bar", T0, {}), "unknown stream foo.bar", "stream")
        rejected_alone(custom("health.heart_rat", T0, {"bpm": 60}), "unknown catalog-like name")
        bad = ["Custom.Foo", "custom.Foo", "custom..x", "custom.x y", "custom.x/y", "custom.",
               ".custom", "nodot", "custom.\u00e9t\u00e9", "custom.x\n", "custom.x;drop",
               "custom." + "a" * 70, ""]
        evs = [custom(n, T0, {}) for n in bad]
        r = c.post_events(evs)
        j = assert_problem(r, 422, "rejected")
        eq([it["status"] for it in j["results"]], ["rejected"] * len(bad), "bad stream names")
    r = c.post_events([custom("custom.foo", T0, {"any": {"thing": [1, "x", None]}}, key="cf-1"),
                       custom("custom.foo.bar-baz_2", T0, {}, key="cf-2")])
    stored(r, 2)


@case
def key_length():
    with Unchanged():
        rejected_alone(custom("custom.keys", T0, {}, key="k" * 129), "key of 129 chars", "key")
        rejected_alone(custom("custom.keys", T0, {}, key="k\tx"), "key with a control char",
                       "key")
    r = S["c"].post_events([custom("custom.keys", T0, {}, key="k" * 128)])
    stored(r, 1)
    eq(results_of(r)[0]["key"], "k" * 128, "128-char key kept")


# ---------------------------------------------------------------- limits

@case
def body_over_max_is_413():
    c, d = S["c"], S["d"]
    pad = "x" * 2000
    evs = [custom("custom.big", T0 + i, {"pad": pad}, key=f"big-{i}") for i in range(40)]
    body = json.dumps(evs).encode()
    check(len(body) > MAX_BODY, "body is over the limit")
    with Unchanged():
        r = T.raw_request(d.port, "POST", "/v1/events",
                          {"Authorization": "Bearer " + c.token,
                           "Content-Type": "application/json"},
                          T.gen_chunks(body, 4096), total_len=len(body))
        assert_problem(r, 413, "too-large")
        # chunked, so the server cannot know the size up front
        r = T.raw_request(d.port, "POST", "/v1/events",
                          {"Authorization": "Bearer " + c.token,
                           "Content-Type": "application/json"},
                          T.gen_chunks(body, 4096), chunked=True)
        assert_problem(r, 413, "too-large")
        nd = b"".join(json.dumps(e).encode() + b"\n" for e in evs)
        r = T.raw_request(d.port, "POST", "/v1/events",
                          {"Authorization": "Bearer " + c.token,
                           "Content-Type": "application/x-ndjson"},
                          T.gen_chunks(nd, 4096), total_len=len(nd))
        assert_problem(r, 413, "too-large")
    assert_status(c.get("/healthz"), 200)


@case
def batch_over_max_is_413():
    c = S["c"]
    evs = [custom("custom.batch", T0 + i, {}, key=f"batch-{i}") for i in range(MAX_BATCH + 1)]
    with Unchanged():
        assert_problem(c.post_events(evs), 413, "too-large")
        assert_problem(c.post_ndjson(evs), 413, "too-large")
    stored(c.post_events(evs[:MAX_BATCH]), MAX_BATCH)


def nested(depth):
    v = 1
    for _ in range(depth):
        v = {"a": v}
    return v


@case
def nesting_over_max_is_400_too_deep():
    c = S["c"]
    with Unchanged():
        for depth in (MAX_DEPTH + 5, 200, 5000):
            body = '[{"stream":"custom.deep","ts":1795597200,"payload":' + \
                   '{"a":' * depth + "1" + "}" * depth + "}]"
            r = c.post("/v1/events", body, ctype="application/json")
            assert_problem(r, 400, "too-deep")
            r = c.post("/v1/events", "[" * depth + "]" * depth, ctype="application/json")
            assert_problem(r, 400, "too-deep")
        line = json.dumps(custom("custom.deep", T0, nested(MAX_DEPTH + 3)))
        r = c.post_ndjson(json.dumps(custom("custom.deep", T0, {}, key="deep-ok")) + "\n" + line)
        assert_problem(r, 400, "too-deep")
    # within the limit: [ { payload { a { a 1 } } } ] is 4 deep
    stored(c.post_events([custom("custom.deep", T0, nested(2), key="deep-2")]), 1)


@case
def ndjson_with_one_bad_line_stores_nothing():
    c = S["c"]
    lines = [json.dumps(custom("custom.ndbad", T0 + i, {"i": i}, key=f"ndbad-{i}"))
             for i in range(5)]
    lines[2] = '{"stream": "custom.ndbad", "ts": 1795597202, "payload": {'  # line 3 broken
    with Unchanged():
        r = c.post_ndjson("\n".join(lines) + "\n")
        j = assert_problem(r, 400, "malformed")
        check("3" in j["detail"], f"detail names line 3: {j['detail']!r}")
        # a line that is valid JSON but not an object is not malformed JSON: either the
        # whole body is refused or that line is rejected; the others may then be stored
    got, _ = c.list_all(params={"stream": "custom.ndbad"})
    eq(got, [], "nothing of the NDJSON body stored")
    # a JSON array inside an NDJSON line is refused or rejected, never crashes
    ok_line = json.dumps(custom("custom.ndarr", T0, {}, key="ndarr-0"))
    r = c.post_ndjson(ok_line + "\n[1,2]\n")
    check(r.status in (400, 207, 422), f"array line: {r.status} {r.text()[:200]}")
    if r.status == 207:
        S["expected"] += 1
    else:
        assert_problem(r, r.status)


@case
def truncated_bodies_store_nothing():
    """A body shorter than its Content-Length is an incomplete request (the client's
    connection dropped): nothing of it may be stored, and it is not acknowledged."""
    c, d = S["c"], S["d"]
    hdrs = {"Authorization": "Bearer " + c.token}
    nd = "".join(json.dumps(custom("custom.trunc", T0 + i, {}, key=f"trunc-nd-{i}")) + "\n"
                 for i in range(5)).encode()
    arr = json.dumps([custom("custom.trunc", T0, {}, key="trunc-arr-0")]).encode()
    with Unchanged():
        for ct, body in (("application/x-ndjson", nd), ("application/json", arr)):
            st = T.send_truncated(d.port, "POST", "/v1/events", dict(hdrs, **{"Content-Type": ct}),
                                  body, len(body) + 1000)
            check(st is None or st >= 400,
                  f"{ct}: body of {len(body)} bytes with Content-Length {len(body) + 1000} "
                  f"then EOF: answered {st} (acknowledged an incomplete request)")
    got, _ = c.list_all(params={"stream": "custom.trunc"})
    eq(got, [], "events stored from truncated requests")


@case
def unsupported_content_type_is_415():
    c = S["c"]
    body = json.dumps([custom("custom.ct", T0, {}, key="ct-1")])
    with Unchanged():
        # (application/x-www-form-urlencoded is what `curl -d` sends; amd reads it as
        # JSON on purpose, and docs/api.md does not forbid that)
        for ct in ("text/plain", "application/xml", "multipart/form-data; boundary=x",
                   "image/png", "application/octet-stream", "text/csv"):
            r = c.post("/v1/events", body, ctype=ct)
            assert_problem(r, 415, "unsupported-media-type")


# ---------------------------------------------------------------- auth

@case
def missing_or_garbage_token_is_401():
    c = S["c"]
    body = [custom("custom.auth", T0, {}, key="auth-1")]
    with Unchanged():
        for hdr in (None, "Bearer", "Bearer ", "Bearer garbage", "Bearer " + "A" * 43,
                    "Bearer " + c.token + "x", "Bearer " + c.token[:-1], "Basic dXNlcjpwYXNz",
                    c.token, "Bearer " + "z" * 5000):
            h = {} if hdr is None else {"Authorization": hdr}
            for method, path, b in (("POST", "/v1/events", body), ("GET", "/v1/events", None),
                                    ("GET", "/v1/timeline", None), ("GET", "/v1/streams", None),
                                    ("GET", "/v1/events/1", None), ("POST", "/v1/blobs", b"abc"),
                                    ("GET", "/v1/blobs/" + "0" * 64, None)):
                r = c.request(method, path, body=b, headers=h, auth=False,
                              ctype="application/json" if method == "POST" else None)
                try:
                    assert_problem(r, 401, "unauthorized")
                except AssertionError as e:
                    raise AssertionError(f"Authorization {str(hdr)[:40]!r}: {e}") from None
        # the token in the query string is for WebSockets only
        r = c.request("GET", "/v1/events", params={"token": c.token}, auth=False)
        assert_problem(r, 401, "unauthorized")


@case
def revoked_token_is_401():
    """`am token revoke` while amd runs: the token is refused from the next request on,
    a second revoke and an unknown token are errors, and other tokens keep working."""
    c = S["revokee"]
    d = S["d"]
    assert_status(c.get("/v1/events"), 200)
    p = d.am("token", "revoke", c.token)
    check("revoked" in p.stdout, f"revoke printed {p.stdout!r}")
    assert_problem(c.get("/v1/events"), 401, "unauthorized")
    assert_problem(c.post_events([custom("custom.after_revoke", T0, {})]), 401, "unauthorized")
    p = d.am("token", "revoke", c.token, check_rc=False)
    check(p.returncode != 0, "revoking a revoked token fails")
    p = d.am("token", "revoke", "am_no-such-token-0123456789", check_rc=False)
    check(p.returncode != 0 and "no live token" in p.stderr, f"unknown token: {p.stderr!r}")
    assert_status(S["c"].get("/v1/events"), 200)
    with Unchanged():
        assert_problem(c.post_events([custom("custom.revoked", T0, {}, key="rev-1")]), 401,
                       "unauthorized")
    assert_problem(c.post("/v1/blobs", b"x", ctype="application/octet-stream"), 401,
                   "unauthorized")
    import websocket
    try:
        ws = T.ws_connect(S["d"], token=c.token)
    except websocket.WebSocketBadStatusException:
        return
    try:
        m = T.ws_recv(ws, 5)
        check(m is not None and m.get("type") == "error" and m.get("status") == 401,
              f"revoked token on a WebSocket: first frame {m}")
    finally:
        ws.close()


@case
def token_without_scope_is_403():
    ro, wo = S["ro"], S["wo"]
    with Unchanged():
        assert_problem(ro.post_events([custom("custom.scope", T0, {}, key="sc-1")]), 403,
                       "forbidden")
        assert_problem(ro.post_ndjson([custom("custom.scope", T0, {}, key="sc-2")]), 403,
                       "forbidden")
        assert_problem(ro.post("/v1/blobs", b"hello", ctype="application/octet-stream"), 403,
                       "forbidden")
        assert_problem(ro.put("/v1/blobs", b"hello", ctype="application/octet-stream"), 403,
                       "forbidden")
        for path in ("/v1/events", "/v1/timeline", "/v1/streams", "/v1/events/1",
                     "/v1/blobs/" + "0" * 64):
            assert_problem(wo.get(path), 403, "forbidden")
    assert_status(ro.get("/v1/events"), 200)
    stored(wo.post_events([custom("custom.scope", T0, {}, key="sc-ok")]), 1)


@case
def routes_methods_and_query_errors():
    c = S["c"]
    assert_problem(c.request("DELETE", "/v1/events"), 405, "method-not-allowed")
    assert_problem(c.request("PUT", "/v1/events", body=b"[]"), 405, "method-not-allowed")
    assert_problem(c.request("POST", "/v1/streams", body=b"{}"), 405, "method-not-allowed")
    assert_problem(c.get("/v1/nope"), 404, "not-found")
    assert_problem(c.get("/nope"), 404, "not-found")
    for params in ({"limit": 0}, {"limit": 10001}, {"limit": "ten"}, {"limit": -5},
                   {"order": "up"}, {"from": "yesterday"}, {"to": "2026-13-01T00:00:00Z"},
                   {"cursor": "garbage!!"}, {"cursor": "MTIz"}, {"stream": "Not A Stream"}):
        r = c.get("/v1/events", params=params)
        try:
            assert_problem(r, 400, "malformed")
        except AssertionError as e:
            raise AssertionError(f"GET /v1/events {params}: {e}") from None
    assert_problem(c.get("/v1/timeline", params={"limit": 0}), 400, "malformed")


@case
def overlong_query_parameters_are_not_ignored():
    c = S["c"]
    # a filter that cannot be honoured must not be dropped: that would answer with
    # other streams' / sources' events
    long_stream = "custom." + "a" * 70
    r = c.get("/v1/events", params={"stream": long_stream})
    if r.status == 200:
        eq(r.json["events"], [], f"GET /v1/events?stream=<{len(long_stream)} chars> lists events of "
           f"other streams")
    else:
        assert_problem(r, 400, "malformed")
    r = c.get("/v1/events", params={"source": "s" * 300})
    if r.status == 200:
        eq(r.json["events"], [], "GET /v1/events?source=<300 chars> lists other sources' events")
    else:
        assert_problem(r, 400, "malformed")
    for params in ({"order": "descending"}, {"order": "sideways"}, {"cursor": "A" * 300},
                   {"limit": "1" + "0" * 40}, {"from": "9" * 100}, {"to": "x" * 100}):
        r = c.get("/v1/events", params=params)
        try:
            assert_problem(r, 400, "malformed")
        except AssertionError as e:
            raise AssertionError(f"GET /v1/events {short(params)}: {e}") from None


@case
def keep_alive_survives_refused_bodies():
    """Answers given before reading the body (401, 403, 405, 415, 400) must not leave the
    body on a keep-alive connection to be read as the next request."""
    import http.client
    c, d = S["c"], S["d"]
    smuggled = b"GET /v1/streams HTTP/1.1\r\nHost: x\r\n\r\n"
    tok, ro = c.token, S["ro"].token
    steps = [
        ("POST", "/v1/events", smuggled, {"Authorization": "Bearer garbage-token-1234",
                                          "Content-Type": "application/json"}, 401),
        ("POST", "/v1/events", smuggled, {"Authorization": "Bearer " + ro,
                                          "Content-Type": "application/json"}, 403),
        ("POST", "/v1/events", smuggled, {"Authorization": "Bearer " + tok,
                                          "Content-Type": "text/plain"}, 415),
        ("DELETE", "/v1/events", smuggled, {"Authorization": "Bearer " + tok}, 405),
        ("POST", "/v1/blobs", smuggled, {"Authorization": "Bearer " + ro}, 403),
        ("POST", "/v1/blobs?sha256=zz", smuggled, {"Authorization": "Bearer " + tok}, 400),
        ("POST", "/v1/events", b"x" * 100, {"Authorization": "Bearer " + tok,
                                            "Content-Type": "application/json"}, 400),
    ]
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        with Unchanged():
            for method, path, body, hdrs, want in steps:
                conn.request(method, path, body=body, headers=hdrs)
                r = conn.getresponse()
                r.read()
                eq(r.status, want, f"{method} {path} on a kept-alive connection")
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                eq((r.status, r.read()), (200, b"ok\n"),
                   f"the next request after {method} {path} ({want}) on the same connection")
    finally:
        conn.close()


@case
def rate_limit_is_429_with_retry_after():
    d = env.daemon("ratelimited", settings={"AM_RATE_LIMIT_PER_S": 5, "AM_RATE_LIMIT_BURST": 5})
    d.user_add("rl")
    tok = d.token("rl")
    other = d.token("rl")
    d.start()
    try:
        c = d.client(tok)
        statuses, retry = [], []
        for i in range(30):
            r = c.get("/v1/events", timeout=10)
            statuses.append(r.status)
            if r.status == 429:
                assert_problem(r, 429, "rate-limited")
                ra = r.header("Retry-After")
                check(ra is not None and ra.strip().isdigit() and int(ra) >= 1,
                      f"Retry-After header (seconds): {ra!r}")
                retry.append(int(ra))
        n429 = statuses.count(429)
        check(n429 >= 10, f"30 quick requests at 5/s burst 5: {n429} answered 429: {statuses}")
        check(statuses.count(200) >= 5, f"the burst is served: {statuses}")
        eq(set(statuses) - {200, 429}, set(), "only 200 and 429")
        # per token: another token of the same user is not limited yet
        assert_status(d.client(other).get("/v1/events"), 200)
        # health and metrics need no token and are not limited
        for _ in range(20):
            assert_status(c.get("/healthz", auth=False), 200)
        time.sleep(max(retry) + 0.2)
        assert_status(c.get("/v1/events"), 200)
    finally:
        d.stop()


@case
def still_alive_and_nothing_partial():
    c = S["c"]
    assert_status(c.get("/healthz", auth=False), 200)
    assert_status(c.get("/readyz", auth=False), 200)
    check(S["d"].alive(), "amd process alive")
    eq(S["d"].crashes, [], "exit statuses of amd deaths during this file")
    eq(S.get("leaked", 0), 0, "events stored by requests that had to store nothing")
    got, _ = c.list_all(path="/v1/timeline", limit=10000)
    eq(len(got), S["expected"], "events stored in total by this file")
    keys = [e["key"] for e in got]
    eq(len(keys), len(set(keys)), "no key stored twice")
    check(not any(k.startswith(("ndbad-", "big-", "auth-", "sc-1", "sc-2", "ct-")) for k in keys),
          "an event from a refused body was stored")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
