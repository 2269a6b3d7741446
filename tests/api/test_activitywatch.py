"""test_activitywatch.py — ActivityWatch's REST API (/api/0/) against a real amd, with the
JSON that aw-client, aw-watcher-window and aw-watcher-afk send: buckets, heartbeats merged
by pulsetime, inserted events, events by start/end, info, the query language, export and
import, the token as Bearer and in the /aw/<token>/ prefix, and users kept apart. Each
case also checks the AM events the calls made on /v1/events (docs/api.md, ActivityWatch)."""

import datetime
import urllib.parse

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem

env = T.Env()
S = {}

T0 = 1795597200  # 2026-11-25T09:00:00Z
NS = 10**9
HOST = "laptop"
WIN = f"aw-watcher-window_{HOST}"
AFK = f"aw-watcher-afk_{HOST}"


def iso(t):
    """What aw-core sends: ISO 8601 with microseconds and an offset."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


def parse(ts):
    return datetime.datetime.fromisoformat(ts).timestamp()


def setup():
    d = env.daemon("aw")
    for u in ("alice", "bob", "carol"):
        d.user_add(u)
    S["d"] = d
    S["alice_tok"] = d.token("alice", "ingest,read")
    S["alice_ro"] = d.token("alice", "read")
    S["bob_tok"] = d.token("bob", "ingest,read")
    S["carol_tok"] = d.token("carol", "ingest,read")
    d.start()


class AW:
    """An aw-client speaking to AM: the server URL holds the token (/aw/<token>) unless
    bearer is set, in which case the token goes in the Authorization header."""

    def __init__(self, token, bearer=False):
        self.token, self.bearer = token, bearer
        self.c = S["d"].client(token if bearer else None)

    def path(self, p):
        return p if self.bearer else f"/aw/{self.token}{p}"

    def get(self, p, params=None):
        return self.c.get(self.path(p), params=params)

    def post(self, p, body, params=None):
        return self.c.post(self.path(p), body, params=params, ctype="application/json")

    def delete(self, p):
        return self.c.request("DELETE", self.path(p))

    def create_bucket(self, bid, etype, client="aw-watcher-window"):
        return self.post(f"/api/0/buckets/{bid}",
                         {"client": client, "hostname": HOST, "type": etype})

    def heartbeat(self, bid, t, data, pulsetime, duration=0.0):
        return self.post(f"/api/0/buckets/{bid}/heartbeat",
                         {"timestamp": iso(t), "duration": duration, "data": data},
                         params={"pulsetime": pulsetime})

    def events(self, bid, **params):
        r = self.get(f"/api/0/buckets/{bid}/events", params=params or {"limit": -1})
        assert_status(r, 200)
        return r.json


def am_events(token, **params):
    got, _ = S["d"].client(token).list_all("/v1/events", params)
    return got


@case
def info_and_auth():
    a = AW(S["alice_tok"])
    r = a.get("/api/0/info")
    assert_status(r, 200)
    for k in ("hostname", "version", "testing", "device_id"):
        check(k in r.json, f"info has {k}: {r.json}")
    r = AW(S["alice_tok"], bearer=True).get("/api/0/info")
    assert_status(r, 200)
    # aw-client sends no token by default: refused, there is no user to pick.
    assert_problem(S["d"].client().get("/api/0/info"), 401, "unauthorized")
    assert_problem(S["d"].client().get("/api/0/buckets/"), 401, "unauthorized")
    assert_problem(S["d"].client().get("/aw/am_not_a_token_at_all/api/0/info"), 401,
                   "unauthorized")
    # A read-only token reads but cannot write.
    ro = AW(S["alice_ro"])
    assert_status(ro.get("/api/0/buckets/"), 200)
    assert_problem(ro.create_bucket("x", "currentwindow"), 403, "forbidden")


@case
def buckets_create_list_get():
    a = AW(S["alice_tok"])
    r = a.create_bucket(WIN, "currentwindow")
    assert_status(r, 200)
    eq(a.create_bucket(WIN, "currentwindow").status, 304, "second create")
    assert_status(a.create_bucket(AFK, "afkstatus", client="aw-watcher-afk"), 200)
    r = a.get("/api/0/buckets/")
    assert_status(r, 200)
    check(WIN in r.json and AFK in r.json, f"both buckets listed: {list(r.json)}")
    b = r.json[WIN]
    eq(b["id"], WIN, "id")
    eq(b["type"], "currentwindow", "type")
    eq(b["client"], "aw-watcher-window", "client")
    eq(b["hostname"], HOST, "hostname")
    check(parse(b["created"]) > 0, "created is ISO 8601")
    r = a.get(f"/api/0/buckets/{WIN}")
    assert_status(r, 200)
    eq(r.json["id"], WIN, "GET bucket")
    assert_problem(a.get("/api/0/buckets/nope"), 404, "not-found")
    assert_problem(a.heartbeat("nope", T0, {"app": "x"}, 2), 404, "not-found")


@case
def heartbeats_merge_by_pulsetime():
    a = AW(S["alice_tok"])
    ff = {"app": "Firefox", "title": "AM docs"}
    # aw-watcher-window: one heartbeat a second, pulsetime = poll time + 1.
    for i in range(6):
        r = a.heartbeat(WIN, T0 + i, ff, 2.0)
        assert_status(r, 200)
    eq(r.json["data"], ff, "answer data")
    eq(abs(r.json["duration"] - 5.0) < 1e-6, True, f"merged duration 5 s: {r.json}")
    eq(parse(r.json["timestamp"]), T0, "merged start")
    # A resent heartbeat changes nothing.
    assert_status(a.heartbeat(WIN, T0 + 5, ff, 2.0), 200)
    # New data: a new event. A gap longer than pulsetime: a new event too.
    term = {"app": "Terminal", "title": "make"}
    assert_status(a.heartbeat(WIN, T0 + 6, term, 2.0), 200)
    assert_status(a.heartbeat(WIN, T0 + 7, term, 2.0), 200)
    assert_status(a.heartbeat(WIN, T0 + 20, term, 2.0), 200)
    evs = a.events(WIN)
    eq(len(evs), 3, f"three events: {evs}")
    eq([parse(e["timestamp"]) for e in evs], [T0 + 20, T0 + 6, T0], "newest first")
    eq([round(e["duration"], 6) for e in evs], [0.0, 1.0, 5.0], "durations")
    eq(evs[2]["data"], ff, "data")
    check(all(isinstance(e["id"], int) for e in evs), "ids")
    # In AM: desktop.window spans from source aw/<bucket>; the newest version per start
    # covers the merged span.
    got = am_events(S["alice_tok"], stream="desktop.window", source=f"aw/{WIN}")
    check(got, "AM has desktop.window events")
    starts = {}
    for e in got:
        starts[e["ts_ns"]] = max(starts.get(e["ts_ns"], 0), e["ts_end_ns"])
        check(e["key"].startswith("aw-"), "key derived from bucket and time")
    eq(starts.get(T0 * NS), (T0 + 5) * NS, "the merged span in AM")
    eq(starts.get((T0 + 6) * NS), (T0 + 7) * NS, "the second span in AM")
    # AFK: aw-watcher-afk's heartbeats.
    for i in range(4):
        assert_status(a.heartbeat(AFK, T0 + i * 10, {"status": "not-afk"}, 61), 200)
    assert_status(a.heartbeat(AFK, T0 + 40, {"status": "afk"}, 61), 200)
    evs = a.events(AFK)
    eq([(e["data"]["status"], round(e["duration"])) for e in evs],
       [("afk", 0), ("not-afk", 30)], "afk events")
    got = am_events(S["alice_tok"], stream="desktop.afk")
    check(got and all(e["source"] == f"aw/{AFK}" for e in got), "desktop.afk spans")


@case
def insert_and_get_with_start_end():
    a = AW(S["alice_tok"], bearer=True)
    bid = "aw-watcher-vscode_laptop"
    assert_status(a.create_bucket(bid, "app.editor.activity", client="aw-watcher-vscode"), 200)
    evs = [{"timestamp": iso(T0 + 100 + 60 * i), "duration": 30.5,
            "data": {"file": f"f{i}.c", "project": "am", "language": "c"}} for i in range(5)]
    r = a.post(f"/api/0/buckets/{bid}/events", evs)
    assert_status(r, 200)
    eq(len(r.json), 5, "inserted")
    # Resending is idempotent.
    assert_status(a.post(f"/api/0/buckets/{bid}/events", evs), 200)
    # One event, not a list, is fine too.
    assert_status(a.post(f"/api/0/buckets/{bid}/events",
                         {"timestamp": iso(T0 + 1000), "duration": 1, "data": {"file": "z"}}), 200)
    got = a.events(bid)
    eq(len(got), 6, "six events")
    got = a.events(bid, start=iso(T0 + 160), end=iso(T0 + 280))
    eq(sorted(e["data"]["file"] for e in got), ["f1.c", "f2.c"], "start/end window")
    got = a.events(bid, limit=2)
    eq([e["data"]["file"] for e in got], ["z", "f4.c"], "limit, newest first")
    # In AM: custom.aw_<type> with the data as payload.
    am = am_events(S["alice_tok"], stream="custom.aw_app_editor_activity")
    eq(len(am), 6, "AM events")
    check(all(e["source"] == f"aw/{bid}" for e in am), "source")
    e0 = [e for e in am if e["payload"].get("file") == "f0.c"][0]
    eq(e0["ts_ns"], (T0 + 100) * NS, "ts")
    eq(e0["ts_end_ns"], (T0 + 100) * NS + 30_500_000_000, "ts_end")
    # Bad events are refused whole.
    assert_problem(a.post(f"/api/0/buckets/{bid}/events", [{"duration": 1, "data": {}}]), 400,
                   "malformed")
    assert_problem(a.post(f"/api/0/buckets/{WIN}/events",
                          [{"timestamp": iso(T0), "duration": 1, "data": {"title": "no app"}}]),
                   400, "malformed")


@case
def query_language():
    a = AW(S["alice_tok"])
    period = f"{iso(T0 - 3600)}/{iso(T0 + 3600)}"
    q = [f'events = query_bucket(find_bucket("aw-watcher-window_"));',
         'RETURN = events;']
    r = a.post("/api/0/query/", {"query": q, "timeperiods": [period]})
    assert_status(r, 200)
    eq(len(r.json), 1, "one result per period")
    eq(len(r.json[0]), 3, f"window events: {r.json}")
    # The web UI's style: flood, AFK filter, merge by app, sum.
    q = ['afk = flood(query_bucket(find_bucket("aw-watcher-afk_")));',
         'not_afk = filter_keyvals(afk, "status", ["not-afk"]);',
         'events = flood(query_bucket(find_bucket("aw-watcher-window_")));',
         'events = filter_period_intersect(events, not_afk);',
         'by_app = sort_by_duration(merge_events_by_keys(events, ["app"]));',
         'RETURN = {"apps": by_app, "total": sum_durations(events), '
         '"firefox": limit_events(filter_keyvals(by_app, "app", ["Firefox"]), 1)};']
    r = a.post("/api/0/query/", {"query": q, "timeperiods": [period]})
    assert_status(r, 200)
    res = r.json[0]
    apps = [e["data"]["app"] for e in res["apps"]]
    eq(apps[0], "Firefox", f"longest app first: {res}")
    check(set(apps) <= {"Firefox", "Terminal"}, "apps")
    eq(res["apps"][0]["data"], {"app": "Firefox"}, "merged data has only the keys")
    check(abs(res["total"] - 7.0) < 1e-6, f"flooded window time while not afk ({res['total']})")
    eq(len(res["firefox"]), 1, "filter_keyvals + limit_events")
    # Two periods give two answers.
    r = a.post("/api/0/query/", {"query": ['RETURN = query_bucket("%s");' % WIN],
                                 "timeperiods": [period, f"{iso(T0 + 3)}/{iso(T0 + 6.5)}"]})
    assert_status(r, 200)
    eq(len(r.json[0]), 3, "the first period holds all three")
    eq([(parse(e["timestamp"]) - T0, e["duration"]) for e in r.json[1]], [(6, 0.5), (3, 2.0)],
       "the second period's events, clipped to it")
    for bad in (["RETURN = nosuch(1);"], ["events = ;"], ["x = 1;"],
                ['RETURN = query_bucket(find_bucket("nobody_"));'], ["RETURN = \"open"]):
        assert_problem(a.post("/api/0/query/", {"query": bad, "timeperiods": [period]}), 400,
                       "malformed")


@case
def export_then_import_into_another_user():
    a = AW(S["alice_tok"])
    r = a.get("/api/0/export")
    assert_status(r, 200)
    dump = r.json
    check(WIN in dump["buckets"] and AFK in dump["buckets"], "export holds the buckets")
    eq(len(dump["buckets"][WIN]["events"]), 3, "export holds the events")
    r = a.get(f"/api/0/buckets/{WIN}/export")
    assert_status(r, 200)
    eq(list(r.json["buckets"]), [WIN], "one bucket's export")
    c = AW(S["carol_tok"])
    eq(c.get("/api/0/buckets/").json, {}, "carol starts empty")
    r = c.post("/api/0/import", dump)
    assert_status(r, 200)
    r = c.post("/api/0/import", dump)  # again: nothing doubles
    assert_status(r, 200)
    eq(sorted(c.get("/api/0/buckets/").json), sorted(dump["buckets"]), "carol's buckets")
    mine = [(e["timestamp"], e["duration"], e["data"]) for e in a.events(WIN)]
    hers = [(e["timestamp"], e["duration"], e["data"]) for e in c.events(WIN)]
    eq(hers, mine, "the same window events")
    got = am_events(S["carol_tok"], stream="desktop.window")
    eq(len(got), 3, f"carol's AM desktop.window events: {len(got)}")


@case
def users_are_isolated():
    b = AW(S["bob_tok"])
    eq(b.get("/api/0/buckets/").json, {}, "bob sees no buckets")
    assert_problem(b.get(f"/api/0/buckets/{WIN}/events"), 404, "not-found")
    r = b.post("/api/0/query/", {"query": ['RETURN = query_bucket("%s");' % WIN],
                                 "timeperiods": [f"{iso(T0 - 10)}/{iso(T0 + 100)}"]})
    assert_problem(r, 400, "malformed")
    eq(b.get("/api/0/export").json, {"buckets": {}}, "bob's export is empty")
    # Bob's bucket with alice's id is his own.
    assert_status(b.create_bucket(WIN, "currentwindow"), 200)
    assert_status(b.heartbeat(WIN, T0, {"app": "Bob's app", "title": ""}, 2), 200)
    eq(len(b.events(WIN)), 1, "bob's one event")
    eq(len(AW(S["alice_tok"]).events(WIN)), 3, "alice's three")
    check(all(e["payload"]["app"] != "Bob's app"
              for e in am_events(S["alice_tok"], stream="desktop.window")), "no leak into alice")


@case
def delete_bucket_hides_it():
    a = AW(S["alice_tok"])
    assert_status(a.create_bucket("tmp_bucket", "test"), 200)
    r = a.delete("/api/0/buckets/tmp_bucket")
    assert_status(r, 200)
    check("tmp_bucket" not in a.get("/api/0/buckets/").json, "deleted")
    assert_status(a.create_bucket("tmp_bucket", "test"), 200)
    check("tmp_bucket" in a.get("/api/0/buckets/").json, "created again")


@case
def survives_restart():
    S["d"].restart()
    a = AW(S["alice_tok"])
    evs = a.events(WIN)
    eq(len(evs), 3, "events after a restart")
    # The heartbeat still merges with what was stored before.
    r = a.heartbeat(WIN, T0 + 21, {"app": "Terminal", "title": "make"}, 2.0)
    assert_status(r, 200)
    eq(round(r.json["duration"]), 1, "merged after restart")
    eq(len(a.events(WIN)), 3, "still three")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
