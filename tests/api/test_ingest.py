"""test_ingest.py — POST /v1/events in every body form, per-item results, reading back
with filters and cursors, the timeline, streams, timestamps, idempotency, traceparent,
and the `am` CLI against a running amd (docs/api.md)."""

import json
import os
import random
import re

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem, results_of, hr, gps, custom

env = T.Env()
S = {}  # filled by setup: daemon, clients

# 2026-11-25T09:00:00Z (docs/api.md's example: 10:00:00.5+01:00 -> 1795597200500000000)
T0_S = 1795597200
T0_NS = T0_S * 10**9
NS = 10**9


def iso(ns):
    """UTC RFC 3339 with nanoseconds for an epoch-ns value."""
    import datetime
    s, frac = divmod(ns, NS)
    d = datetime.datetime.fromtimestamp(s, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def setup():
    d = env.daemon("ingest")
    for u in ("main", "pag", "tl", "st", "cli"):
        d.user_add(u)
    S["d"] = d
    S["main"] = d.client(d.token("main"))
    S["pag"] = d.client(d.token("pag"))
    S["tl"] = d.client(d.token("tl"))
    S["st"] = d.client(d.token("st"))
    S["cli_token"] = d.token("cli")
    S["cli"] = d.client(S["cli_token"])
    d.start()


def stored_ok(r, n):
    """200 with n results, all stored, counts right; returns the results."""
    assert_status(r, 200)
    ct = (r.header("Content-Type") or "").split(";")[0].strip()
    eq(ct, "application/json", "Content-Type of a 200 ingest answer")
    res = results_of(r)
    eq(len(res), n, "number of results")
    for i, it in enumerate(res):
        eq(it.get("index"), i, f"results[{i}].index")
        eq(it.get("status"), "stored", f"results[{i}].status ({it})")
        check(isinstance(it.get("id"), int) and it["id"] > 0, f"results[{i}].id: {it}")
        check(isinstance(it.get("key"), str) and it["key"], f"results[{i}].key: {it}")
    eq((r.json.get("stored"), r.json.get("duplicate"), r.json.get("rejected")), (n, 0, 0),
       "(stored, duplicate, rejected)")
    ids = [it["id"] for it in res]
    eq(len(set(ids)), n, "distinct ids")
    return res


# ---------------------------------------------------------------- body forms

@case
def post_json_array():
    c = S["main"]
    evs = [hr(T0_S + i, 60 + i, key=f"arr-{i}", source="watch") for i in range(3)]
    res = stored_ok(c.post_events(evs), 3)
    eq([it["key"] for it in res], ["arr-0", "arr-1", "arr-2"], "keys in results")
    for i, it in enumerate(res):
        g = c.get(f"/v1/events/{it['id']}")
        assert_status(g, 200)
        e = g.json
        eq(e["id"], it["id"], "id")
        eq(e["stream"], "health.heart_rate", "stream")
        eq(e["source"], "watch", "source")
        eq(e["ts_ns"], T0_NS + i * NS, "ts_ns")
        eq(e["payload"], {"bpm": 60 + i}, "payload")
        eq(e["key"], f"arr-{i}", "key")
        check(isinstance(e.get("received_ns"), int) and e["received_ns"] > 1.7e18,
              f"received_ns: {e.get('received_ns')}")
        check(isinstance(e.get("ts"), str) and e["ts"].endswith("Z"), f"ts: {e.get('ts')}")
        check(e["ts"].startswith(iso(T0_NS + i * NS)[:19]), f"ts {e['ts']} vs {iso(T0_NS)}")
        for absent in ("ts_end", "blob", "trace"):
            check(e.get(absent) is None, f"'{absent}' should be absent when unset: {e}")


@case
def post_single_object():
    c = S["main"]
    r = c.post_events(custom("custom.single", T0_S, {"a": 1}, key="single-1"))
    res = stored_ok(r, 1)
    e = c.get(f"/v1/events/{res[0]['id']}").json
    eq(e["payload"], {"a": 1}, "payload")
    eq(e["source"], "api", "default source")


@case
def post_ndjson():
    c = S["main"]
    lines = [json.dumps(custom("custom.nd", T0_S + i, {"i": i}, key=f"nd-{i}")) for i in range(4)]
    body = lines[0] + "\n\n" + lines[1] + "\r\n" + "   \n" + lines[2] + "\n" + lines[3]  # no final \n
    res = stored_ok(c.post_ndjson(body), 4)
    eq([it["key"] for it in res], [f"nd-{i}" for i in range(4)], "keys")
    evs, _ = c.list_all(params={"stream": "custom.nd"})
    eq(sorted(e["payload"]["i"] for e in evs), [0, 1, 2, 3], "stored payloads")
    # application/json with charset is JSON too
    r = c.post("/v1/events", [custom("custom.nd", T0_S + 9, {"i": 9}, key="nd-9")],
               ctype="application/json; charset=utf-8")
    stored_ok(r, 1)


@case
def partial_rejection_is_207():
    c = S["main"]
    evs = [hr(T0_S, 70, key="mix-ok-0"),
           hr(T0_S, "seventy", key="mix-bad-1"),
           gps(T0_S, lat=123.0, key="mix-bad-2"),
           hr(T0_S + 1, 71, key="mix-ok-3")]
    r = c.post_events(evs)
    assert_status(r, 207)
    res = results_of(r)
    eq([it["status"] for it in res], ["stored", "rejected", "rejected", "stored"], "statuses")
    eq([it["index"] for it in res], [0, 1, 2, 3], "indexes")
    for it in res[1:3]:
        check(isinstance(it.get("reason"), str) and it["reason"], f"rejected has reason: {it}")
        check("id" not in it or it["id"] in (None, 0), f"rejected item has an id: {it}")
    check("bpm" in res[1]["reason"], f"reason names the field: {res[1]['reason']}")
    check("lat" in res[2]["reason"], f"reason names the field: {res[2]['reason']}")
    eq((r.json["stored"], r.json["duplicate"], r.json["rejected"]), (2, 0, 2), "counts")
    for it in (res[0], res[3]):
        assert_status(c.get(f"/v1/events/{it['id']}"), 200)
    evs, _ = c.list_all(params={"stream": "location.gps"})
    check(not any(e["key"] == "mix-bad-2" for e in evs), "rejected gps event was stored")


@case
def all_rejected_is_422_problem_with_results():
    c = S["main"]
    r = c.post_events([hr(T0_S, -5, key="rej-0"), hr(T0_S, 400, key="rej-1")])
    j = assert_problem(r, 422, "rejected")
    res = j.get("results")
    check(isinstance(res, list) and len(res) == 2, f"422 carries results: {j}")
    eq([it["status"] for it in res], ["rejected", "rejected"], "statuses")
    eq(j.get("rejected"), 2, "rejected count")
    evs, _ = c.list_all(params={"stream": "health.heart_rate"})
    check(not any(e["key"].startswith("rej-") for e in evs), "rejected events were stored")


@case
def duplicates_by_key():
    c = S["main"]
    r1 = c.post_events([hr(T0_S + 100, 80, key="dup-a")])
    id_a = stored_ok(r1, 1)[0]["id"]
    # same key, even with a different payload: duplicate, original id, nothing written
    r2 = c.post_events([hr(T0_S + 100, 99, key="dup-a"), hr(T0_S + 101, 81, key="dup-b")])
    assert_status(r2, 200)
    res = results_of(r2)
    eq(res[0]["status"], "duplicate", "status of a repeated key")
    eq(res[0]["id"], id_a, "duplicate returns the original id")
    eq(res[0]["key"], "dup-a", "duplicate key")
    eq(res[1]["status"], "stored", "new key")
    eq((r2.json["stored"], r2.json["duplicate"], r2.json["rejected"]), (1, 1, 0), "counts")
    eq(c.get(f"/v1/events/{id_a}").json["payload"], {"bpm": 80}, "original payload kept")
    # the same key twice inside one batch: the second is a duplicate of the first
    r3 = c.post_events([hr(T0_S + 102, 82, key="dup-c"), hr(T0_S + 102, 82, key="dup-c")])
    assert_status(r3, 200)
    res = results_of(r3)
    eq([it["status"] for it in res], ["stored", "duplicate"], "same key twice in one batch")
    eq(res[0]["id"], res[1]["id"], "both name the same row")
    evs, _ = c.list_all(params={"stream": "health.heart_rate"})
    eq(sum(1 for e in evs if e["key"] in ("dup-a", "dup-b", "dup-c")), 3, "rows for dup-*")


@case
def get_event_by_id_and_404():
    c = S["main"]
    r = c.post_events([{"stream": "health.sleep", "ts": T0_S + 200, "ts_end": T0_S + 260,
                        "payload": {"stage": "deep"}, "key": "span-1", "source": "ring"}])
    id_ = stored_ok(r, 1)[0]["id"]
    e = c.get(f"/v1/events/{id_}").json
    eq(e["ts_ns"], T0_NS + 200 * NS, "ts_ns")
    eq(e.get("ts_end_ns"), T0_NS + 260 * NS, "ts_end_ns")
    check(isinstance(e.get("ts_end"), str) and e["ts_end"].endswith("Z"), f"ts_end: {e}")
    for bad in ("999999999", "0", "-1", "abc", "1.5"):
        assert_problem(c.get(f"/v1/events/{bad}"), 404, "not-found")


# ---------------------------------------------------------------- reading back

@case
def read_back_with_filters():
    c = S["main"]
    base = T0_S + 10_000
    evs = []
    for i in range(10):
        evs.append(hr(base + i, 60 + i, key=f"flt-hr-{i}", source="watch" if i % 2 else "band"))
        evs.append({"stream": "screen.state", "ts": base + i, "payload": {"state": "on"},
                    "key": f"flt-sc-{i}", "source": "phone"})
    stored_ok(c.post_events(evs), 20)
    window = {"from": base, "to": base + 10}
    got, _ = c.list_all(params=dict(window, stream="health.heart_rate"))
    eq(sorted(e["key"] for e in got), sorted(f"flt-hr-{i}" for i in range(10)), "stream filter")
    check(all(e["stream"] == "health.heart_rate" for e in got), "stream filter leaks")
    got, _ = c.list_all(params=dict(window, stream="health.heart_rate", source="watch"))
    eq(sorted(e["key"] for e in got), sorted(f"flt-hr-{i}" for i in range(1, 10, 2)),
       "stream+source filter")
    got, _ = c.list_all(params=dict(window, source="phone"))
    eq(sorted(e["key"] for e in got), sorted(f"flt-sc-{i}" for i in range(10)), "source filter")
    # from inclusive, to exclusive, in every accepted form
    for frm, to in ((base + 3, base + 6),
                    (iso((base + 3) * NS), iso((base + 6) * NS)),
                    ((base + 3) * 1000, (base + 6) * 1000),
                    ((base + 3) * NS, (base + 6) * NS)):
        got, _ = c.list_all(params={"stream": "health.heart_rate", "from": frm, "to": to})
        eq(sorted(e["key"] for e in got), [f"flt-hr-{i}" for i in (3, 4, 5)],
           f"from={frm} (inclusive) to={to} (exclusive)")
    got, _ = c.list_all(params={"stream": "screen.state", "from": base + 8})
    eq(sorted(e["key"] for e in got), ["flt-sc-8", "flt-sc-9"], "open-ended from")
    got, _ = c.list_all(params={"stream": "screen.state", "to": base + 1})
    eq([e["key"] for e in got], ["flt-sc-0"], "open-ended to")
    r = c.get("/v1/events", params={"stream": "custom.never-used"})
    assert_status(r, 200)
    eq(r.json.get("events"), [], "unused stream")
    check("next_cursor" not in r.json or r.json["next_cursor"] is None, "no next_cursor")


@case
def cursor_pagination_250():
    c = S["pag"]
    n = 250
    # ties on purpose: three events share each timestamp, so pages split inside a tie
    evs = [custom("custom.page", T0_S + 50_000 + i // 3, {"i": i}, key=f"pg-{i:03d}")
           for i in range(n)]
    random.Random(7).shuffle(evs)
    stored_ok(c.post_events(evs[:120]), 120)
    stored_ok(c.post_ndjson(evs[120:]), 130)
    for order in ("asc", "desc"):
        seen, sizes, cursor, pages = [], [], None, 0
        while True:
            p = {"stream": "custom.page", "limit": 100, "order": order}
            if cursor:
                p["cursor"] = cursor
            r = c.get("/v1/events", params=p)
            assert_status(r, 200)
            page = r.json["events"]
            sizes.append(len(page))
            seen.extend(page)
            pages += 1
            cursor = r.json.get("next_cursor")
            if cursor is None:
                break
            check(isinstance(cursor, str) and cursor, f"next_cursor: {cursor!r}")
            check(pages < 10, "pagination does not end")
        eq(sizes, [100, 100, 50], f"page sizes ({order})")
        keys = [e["key"] for e in seen]
        eq(len(keys), len(set(keys)), f"an event was visited twice ({order})")
        eq(sorted(keys), sorted(f"pg-{i:03d}" for i in range(n)), f"visited set ({order})")
        ts = [e["ts_ns"] for e in seen]
        want = sorted(ts) if order == "asc" else sorted(ts, reverse=True)
        eq(ts, want, f"time order ({order})")
        if order == "desc":
            eq(seen[0]["ts_ns"], (T0_S + 50_000 + (n - 1) // 3) * NS, "desc starts at the newest")
    # exactly one full page: no next_cursor
    r = c.get("/v1/events", params={"stream": "custom.page", "limit": 250})
    assert_status(r, 200)
    eq(len(r.json["events"]), 250, "limit=250")
    check(r.json.get("next_cursor") is None, f"next_cursor on the last page: {r.json.get('next_cursor')}")
    # default limit is 100
    r = c.get("/v1/events", params={"stream": "custom.page"})
    eq(len(r.json["events"]), 100, "default limit")
    check(r.json.get("next_cursor"), "default page has a next_cursor")


@case
def timeline_merges_streams_in_time_order():
    c = S["tl"]
    rnd = random.Random(11)
    evs = []
    for i in range(60):
        ts_ns = T0_NS + rnd.randrange(0, 3600) * NS + rnd.randrange(0, 1000) * 10**6
        kind = i % 3
        if kind == 0:
            evs.append(hr(str(ts_ns), 60 + i % 50, key=f"tl-{i}"))
        elif kind == 1:
            evs.append(gps(str(ts_ns), key=f"tl-{i}"))
        else:
            evs.append(custom("custom.tl", str(ts_ns), {"i": i}, key=f"tl-{i}"))
    # several requests, out of time order
    for chunk in (evs[0:25], evs[25:40], evs[40:]):
        stored_ok(c.post_events(chunk), len(chunk))
    got, pages = c.list_all("/v1/timeline", limit=7)
    eq(len(got), 60, "events on the timeline")
    eq(sorted(e["key"] for e in got), sorted(f"tl-{i}" for i in range(60)), "keys")
    ts = [e["ts_ns"] for e in got]
    eq(ts, sorted(ts), "timeline in time order")
    eq({e["stream"] for e in got}, {"health.heart_rate", "location.gps", "custom.tl"}, "streams")
    check(pages >= 9, f"limit=7 paginated ({pages} pages)")
    got, _ = c.list_all("/v1/timeline", params={"order": "desc"})
    ts = [e["ts_ns"] for e in got]
    eq(ts, sorted(ts, reverse=True), "timeline desc")
    mid = sorted(ts)[30]
    got, _ = c.list_all("/v1/timeline", params={"from": mid})
    check(all(e["ts_ns"] >= mid for e in got) and len(got) >= 30, "timeline from")


# ---------------------------------------------------------------- time and keys

@case
def timestamp_forms_land_on_same_ns():
    c = S["main"]
    want = 1795597200500000000  # 2026-11-25T09:00:00.5Z
    forms = {
        "rfc-offset": "2026-11-25T10:00:00.5+01:00",
        "rfc-neg-offset": "2026-11-25T04:30:00.500-04:30",
        "rfc-z": "2026-11-25T09:00:00.500000000Z",
        "s-float": 1795597200.5,
        "s-str-float": "1795597200.5",
        "ms": 1795597200500,
        "ms-str": "1795597200500",
        "us": 1795597200500000,
        "us-str": "1795597200500000",
        "ns": 1795597200500000000,
        "ns-str": "1795597200500000000",
    }
    evs = [custom("custom.tsforms", v, {"form": k}, key=f"tsf-{k}") for k, v in forms.items()]
    res = stored_ok(c.post_events(evs), len(evs))
    for it, (k, v) in zip(res, forms.items()):
        e = c.get(f"/v1/events/{it['id']}").json
        eq(e["ts_ns"], want, f"ts_ns for ts={v!r} ({k})")
        check(e["ts"].startswith("2026-11-25T09:00:00.5") and e["ts"].endswith("Z"),
              f"ts for {k}: {e['ts']}")
    # whole seconds as an integer and as a digit string
    whole = {"s": 1795597200, "s-str": "1795597200", "rfc": "2026-11-25T09:00:00Z",
             "rfc-lower": "2026-11-25t09:00:00z", "rfc-off": "2026-11-25T09:00:00+00:00"}
    evs = [custom("custom.tsforms", v, {"form": k}, key=f"tsw-{k}") for k, v in whole.items()]
    res = stored_ok(c.post_events(evs), len(evs))
    for it, (k, v) in zip(res, whole.items()):
        eq(c.get(f"/v1/events/{it['id']}").json["ts_ns"], T0_NS, f"ts_ns for ts={v!r} ({k})")


@case
def batch_replay_returns_same_ids():
    c = S["main"]
    evs = [custom("custom.replay", T0_S + i, {"i": i}, key=f"rp-{i}") for i in range(30)]
    first = stored_ok(c.post_events(evs), 30)
    before = c.count({"stream": "custom.replay"}, path="/v1/events")
    eq(before, 30, "rows after first post")
    for attempt in range(2):
        r = c.post_events(evs)
        assert_status(r, 200)
        res = results_of(r)
        eq([it["status"] for it in res], ["duplicate"] * 30, "replay statuses")
        eq([it["id"] for it in res], [it["id"] for it in first], "replay ids")
        eq([it["key"] for it in res], [it["key"] for it in first], "replay keys")
        eq((r.json["stored"], r.json["duplicate"]), (0, 30), "replay counts")
    # the same batch as NDJSON is still the same events
    r = c.post_ndjson(evs)
    eq([it["status"] for it in results_of(r)], ["duplicate"] * 30, "ndjson replay")
    eq(c.count({"stream": "custom.replay"}, path="/v1/events"), 30, "rows after replays")


@case
def derived_key_when_absent():
    c = S["main"]
    e = {"stream": "health.heart_rate", "ts": "2026-11-25T11:11:11Z", "source": "derive",
         "payload": {"bpm": 77, "context": "rest"}}
    r1 = c.post_events([e])
    it1 = stored_ok(r1, 1)[0]
    check(re.fullmatch(r"[0-9a-f]{64}", it1["key"]) is not None,
          f"derived key looks like a SHA-256: {it1['key']!r}")
    # same content again, members in another order and the payload keys swapped
    e2 = {"payload": {"context": "rest", "bpm": 77}, "source": "derive",
          "ts": 1795605071, "stream": "health.heart_rate"}
    r2 = c.post_events(e2)
    assert_status(r2, 200)
    it2 = results_of(r2)[0]
    eq(it2["status"], "duplicate", "same content, no key: duplicate")
    eq(it2["id"], it1["id"], "same id")
    eq(it2["key"], it1["key"], "same derived key")
    # different payload / source / ts: new events
    for variant in ({"payload": {"bpm": 78, "context": "rest"}}, {"source": "derive2"},
                    {"ts": "2026-11-25T11:11:12Z"}):
        v = dict(e, **variant)
        r = c.post_events([v])
        it = stored_ok(r, 1)[0]
        check(it["key"] != it1["key"], f"variant {variant} got the same key")
    eq(c.get(f"/v1/events/{it1['id']}").json["key"], it1["key"], "stored key is the derived one")


@case
def traceparent_header_copied():
    c = S["main"]
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = c.post_events([custom("custom.trace", T0_S, {"n": 1}, key="tr-1"),
                       custom("custom.trace", T0_S, {"n": 2}, key="tr-2", trace=own)],
                      headers={"traceparent": tp})
    res = stored_ok(r, 2)
    eq(c.get(f"/v1/events/{res[0]['id']}").json.get("trace"), tp, "trace from the header")
    eq(c.get(f"/v1/events/{res[1]['id']}").json.get("trace"), own, "event's own trace wins")
    r = c.post_events([custom("custom.trace", T0_S, {"n": 3}, key="tr-3")])
    e = c.get(f"/v1/events/{stored_ok(r, 1)[0]['id']}").json
    check(e.get("trace") is None, f"no traceparent, no trace: {e}")


@case
def concurrent_posts_of_one_key_make_one_row():
    import threading
    c = S["main"]
    for rnd in range(10):
        n = 10
        barrier = threading.Barrier(n)
        out = [None] * n

        def worker(i, rnd=rnd):
            evs = [custom("custom.race", T0_S + rnd, {"r": rnd, "who": i}, key=f"race-{rnd}")]
            if i % 2:  # no key: the derived key races too
                evs.append(custom("custom.race2", T0_S + rnd, {"r": rnd}))
            barrier.wait()
            try:
                out[i] = c.post_events(evs)
            except Exception as e:  # noqa: BLE001
                out[i] = e

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        for o in out:
            check(isinstance(o, T.Resp) and o.status == 200, f"round {rnd}: {o!r}")
        first = [results_of(o)[0] for o in out]
        eq(sorted(it["status"] for it in first), ["duplicate"] * (n - 1) + ["stored"],
           f"round {rnd}: statuses for one key posted {n} times at once")
        eq(len({it["id"] for it in first}), 1, f"round {rnd}: ids for one key")
        second = [results_of(o)[1] for o in out if len(results_of(o)) > 1]
        eq(sorted(it["status"] for it in second), ["duplicate"] * 4 + ["stored"],
           f"round {rnd}: statuses for one derived key")
        eq(len({it["id"] for it in second}), 1, f"round {rnd}: ids for one derived key")
    eq(c.count({"stream": "custom.race"}, path="/v1/events"), 10, "rows of custom.race")
    eq(c.count({"stream": "custom.race2"}, path="/v1/events"), 10, "rows of custom.race2")


@case
def times_before_1970_and_far_ahead():
    c = S["main"]
    evs = [custom("custom.old", "1678-01-01T00:00:00Z", {}, key="old-min"),
           custom("custom.old", -1, {}, key="old-neg-int"),
           custom("custom.old", "1969-12-31T23:59:59.5Z", {}, key="old-neg-frac"),
           custom("custom.old", 0, {}, key="old-zero"),
           custom("custom.old", "2261-12-31T23:59:59.999999999Z", {}, key="old-max")]
    res = stored_ok(c.post_events(evs), 5)
    want = {"old-min": -9214560000000000000, "old-neg-int": -NS, "old-neg-frac": -NS // 2,
            "old-zero": 0, "old-max": 9214646399999999999}
    for it in res:
        eq(c.get(f"/v1/events/{it['id']}").json["ts_ns"], want[it["key"]], f"ts_ns of {it['key']}")
    got, _ = c.list_all(params={"stream": "custom.old"}, limit=2)
    eq([e["key"] for e in got], sorted(want, key=want.get), "asc order across 1970, limit 2")
    got, _ = c.list_all(params={"stream": "custom.old", "order": "desc"}, limit=2)
    eq([e["key"] for e in got], sorted(want, key=want.get, reverse=True), "desc order")
    got, _ = c.list_all(params={"stream": "custom.old", "from": "1969-12-31T23:59:59Z", "to": 0})
    eq([e["key"] for e in got], ["old-neg-int", "old-neg-frac"], "window before 1970")
    s = {x["name"]: x for x in c.get("/v1/streams").json["streams"]}["custom.old"]
    eq((s["count"], s["first_ns"], s["last_ns"]), (5, want["old-min"], want["old-max"]),
       "streams first/last")
    # a stream whose only event is at the epoch itself still has a first and a last
    stored_ok(c.post_events([custom("custom.epoch", 0, {}, key="epoch-0")]), 1)
    s = {x["name"]: x for x in c.get("/v1/streams").json["streams"]}["custom.epoch"]
    eq((s["count"], s.get("first_ns"), s.get("last_ns")), (1, 0, 0),
       "an event at 1970-01-01T00:00:00Z: first_ns/last_ns")
    check(isinstance(s.get("first"), str) and s["first"].startswith("1970-01-01T00:00:00"),
          f"first of the epoch event: {s.get('first')!r}")


@case
def payloads_round_trip_exactly():
    c = S["main"]
    payload = {"emoji": "\U0001F600 \u00e9 \u4e2d\u6587", "esc": "q\" b\\ nl\n tab\t \u0001",
               "big": 9223372036854775807, "neg": -9223372036854775808, "f": 0.1,
               "tiny": 1e-300, "huge": 1.7976931348623157e308, "": "empty key",
               "nested": {"a": [1, {"b": None}], "t": True, "f": False, "arr": []},
               "uni\u00e9": 1}
    r = c.post_events([custom("custom.uni", T0_S, payload, key="uni-\u00e9-\U0001F600",
                              source="s\u00f6urce")])
    it = stored_ok(r, 1)[0]
    eq(it["key"], "uni-\u00e9-\U0001F600", "unicode key in the answer")
    e = c.get(f"/v1/events/{it['id']}").json
    eq(e["payload"], payload, "payload read back")
    eq((e["key"], e["source"]), ("uni-\u00e9-\U0001F600", "s\u00f6urce"), "key and source")
    got, _ = c.list_all(params={"source": "s\u00f6urce"})
    eq([x["key"] for x in got], ["uni-\u00e9-\U0001F600"], "source filter with unicode")


@case
def default_limits_batch_and_payload():
    c = S["pag"]
    evs = [custom("custom.bulk", T0_S + i, {"i": i}, key=f"bulk-{i}") for i in range(10001)]
    assert_problem(c.post_ndjson(evs), 413, "too-large")
    r = c.post_ndjson(evs[:10000], timeout=120)
    assert_status(r, 200)
    eq(r.json["stored"], 10000, "10000 events (the default max_batch_events) in one request")
    eq(c.count({"stream": "custom.bulk"}, path="/v1/events"), 10000, "rows")
    # payloads: 256 KiB by default (max_payload_bytes)
    big = {"text": "y" * 300_000}
    ok = {"text": "y" * 200_000}
    r = c.post_events([custom("custom.bigpayload", T0_S, big, key="bp-big"),
                       custom("custom.bigpayload", T0_S, ok, key="bp-ok")])
    assert_status(r, 207)
    eq([it["status"] for it in results_of(r)], ["rejected", "stored"], "payload sizes")
    e = c.get(f"/v1/events/{results_of(r)[1]['id']}").json
    eq(len(e["payload"]["text"]), 200_000, "200 kB payload read back")


# ---------------------------------------------------------------- streams

@case
def streams_catalog_and_custom():
    c = S["st"]
    r = c.get("/v1/streams")
    assert_status(r, 200)
    streams = {s["name"]: s for s in r.json["streams"]}
    for name in ("location.gps", "health.heart_rate", "screen.state"):
        check(name in streams, f"catalog stream {name} listed")
        eq(streams[name]["count"], 0, f"{name} count before use")
    check(not any(n.startswith("custom.") for n in streams), "no custom.* before use")
    fields = {f["name"]: f for f in streams["location.gps"].get("fields", [])}
    check("lat" in fields and "lon" in fields, f"gps fields: {list(fields)}")
    eq(fields["lat"].get("required"), True, "lat required")
    eq(fields["lat"].get("type"), "number", "lat type")
    eq((fields["lat"].get("min"), fields["lat"].get("max")), (-90, 90), "lat range")
    check(isinstance(streams["location.gps"].get("doc"), str), "doc")
    check(isinstance(streams["location.gps"].get("retention"), str), "retention")

    g = [gps(T0_S + 5, key="st-g0"), gps(T0_S + 1, key="st-g1"), gps(T0_S + 9, key="st-g2")]
    m = [custom("custom.mything", T0_S + 3, {"x": 1}, key="st-m0"),
         custom("custom.mything", T0_S + 4, {"x": 2}, key="st-m1")]
    stored_ok(c.post_events(g + m), 5)
    streams = {s["name"]: s for s in c.get("/v1/streams").json["streams"]}
    s = streams["location.gps"]
    eq(s["count"], 3, "gps count")
    eq(s.get("first_ns"), (T0_S + 1) * NS, "gps first_ns")
    eq(s.get("last_ns"), (T0_S + 9) * NS, "gps last_ns")
    check(isinstance(s.get("first"), str) and s["first"].startswith(iso((T0_S + 1) * NS)[:19]),
          f"gps first: {s.get('first')}")
    check(isinstance(s.get("last"), str) and s["last"].startswith(iso((T0_S + 9) * NS)[:19]),
          f"gps last: {s.get('last')}")
    check(isinstance(s.get("last_received_ns"), int) and s["last_received_ns"] > 1.7e18,
          f"last_received_ns: {s.get('last_received_ns')}")
    check(s.get("rate_per_hour") == 3, f"rate_per_hour (3 received just now): {s.get('rate_per_hour')}")
    check("custom.mything" in streams, "used custom stream listed")
    eq(streams["custom.mything"]["count"], 2, "custom count")
    eq(streams["custom.mything"].get("first_ns"), (T0_S + 3) * NS, "custom first_ns")
    eq(streams["health.heart_rate"]["count"], 0, "unused stream still 0")
    check("custom.other" not in streams, "unused custom stream not listed")


# ---------------------------------------------------------------- the CLI

@case
def cli_ingest_events_streams():
    d, tok = S["d"], S["cli_token"]
    path = os.path.join(env.root, "cli-events.json")
    evs = [custom("custom.cli", T0_S + i, {"i": i}, key=f"cli-{i}") for i in range(7)]
    with open(path, "w") as f:
        json.dump(evs, f)
    p = d.am("ingest", path, env={"AM_TOKEN": tok})
    check("7" in p.stdout, f"am ingest reports 7 stored: {p.stdout!r}")
    # again: all duplicates, still exit 0
    p = d.am("ingest", path, env={"AM_TOKEN": tok})
    check(re.search(r"duplicate\D*7", p.stdout), f"second ingest: 7 duplicates: {p.stdout!r}")
    # NDJSON with --token
    nd = os.path.join(env.root, "cli-events.ndjson")
    with open(nd, "w") as f:
        for i in range(7, 10):
            f.write(json.dumps(custom("custom.cli", T0_S + i, {"i": i}, key=f"cli-{i}")) + "\n")
    d.am("--token", tok, "ingest", nd)
    # one object from stdin
    d.am("--token", tok, "ingest", "-",
         input=json.dumps(custom("custom.cli", T0_S + 10, {"i": 10}, key="cli-10")))
    p = d.am("events", "--json", "--stream", "custom.cli", "--limit", "1000",
             env={"AM_TOKEN": tok})
    j = json.loads(p.stdout)
    got = j["events"] if isinstance(j, dict) else j
    eq(sorted(e["key"] for e in got), sorted(f"cli-{i}" for i in range(11)), "am events --json")
    p = d.am("timeline", "--json", env={"AM_TOKEN": tok})
    j = json.loads(p.stdout)
    got = j["events"] if isinstance(j, dict) else j
    eq(len(got), 11, "am timeline --json")
    p = d.am("streams", "--json", env={"AM_TOKEN": tok})
    streams = {s["name"]: s for s in json.loads(p.stdout)["streams"]}
    eq(streams.get("custom.cli", {}).get("count"), 11, "am streams --json count")
    # plain (non-JSON) output works too
    p = d.am("events", "--stream", "custom.cli", env={"AM_TOKEN": tok})
    check("custom.cli" in p.stdout, f"am events table: {p.stdout[:300]!r}")
    # a rejected event makes am ingest fail
    bad = os.path.join(env.root, "cli-bad.json")
    with open(bad, "w") as f:
        json.dump([hr(T0_S, "x", key="cli-bad")], f)
    p = d.am("ingest", bad, env={"AM_TOKEN": tok}, check_rc=False)
    check(p.returncode != 0, f"am ingest of a rejected event exits non-zero: {p.returncode}")
    # the URL from --url or AM_URL instead of DIR/amd.url; time filters
    p = T.run_am(["--url", d.url(), "--token", tok, "events", "--json", "--stream", "custom.cli",
                  "--from", str(T0_S + 3), "--to", iso((T0_S + 6) * NS)])
    got = json.loads(p.stdout)["events"]
    eq(sorted(e["key"] for e in got), ["cli-3", "cli-4", "cli-5"], "am --url events --from --to")
    p = T.run_am(["events", "--json", "--stream", "custom.cli", "--limit", "2"],
                 env={"AM_URL": d.url(), "AM_TOKEN": tok})
    eq(len(json.loads(p.stdout)["events"]), 2, "am events --limit 2 via AM_URL")
    # no token: fails
    p = d.am("events", check_rc=False)
    check(p.returncode != 0, "am events without a token fails")


@case
def cli_user_and_token_while_running():
    d = S["d"]
    check(d.alive(), "amd running")
    d.user_add("late")
    tok = d.token("late", "ingest,read", label="made while amd runs")
    c = d.client(tok)
    stored_ok(c.post_events([hr(T0_S, 65, key="late-1")]), 1)
    got, _ = c.list_all()
    eq([e["key"] for e in got], ["late-1"], "the new user's events")
    p = d.am("user", "add", "late", check_rc=False)
    check(p.returncode != 0, "adding an existing user fails")
    p = d.am("token", "create", "--user", "nobody", "--scope", "read", check_rc=False)
    check(p.returncode != 0, "token for an unknown user fails")
    ro = d.client(d.token("late", "read"))
    assert_status(ro.get("/v1/events"), 200)
    assert_problem(ro.post_events([hr(T0_S, 66, key="late-2")]), 403, "forbidden")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
