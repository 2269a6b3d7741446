"""test_agent.py — the agent's read side over real HTTP: GET /v1/context (the person's
"now" with the events it rests on) and memories (GET /v1/memories, PATCH verdicts that
are stored as feedback events and survive a restart), per user."""

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem, results_of

env = T.Env()
S = {}
NOW = 1795597200  # 2026-11-25T09:00:00Z: the context is asked "at" this time
NS = 10**9


def setup():
    d = env.daemon("agent", settings={"AM_AGENT_TICK_S": 0, "AM_NUDGE_BUDGET_PER_DAY": 3,
                                       "AM_NUDGE_COOLDOWN_MIN": 30, "AM_NUDGE_QUIET_HOURS": "22-7"})
    d.user_add("ada")
    d.user_add("bo")
    S["d"] = d
    S["c"] = d.client(d.token("ada"))
    S["bo"] = d.client(d.token("bo"))
    d.start()


def post(c, evs):
    r = c.post_events(evs)
    res = results_of(r)
    check(all(x["status"] == "stored" for x in res), f"stored: {res}")
    return [x["id"] for x in res]


@case
def context_gathers_the_present_with_evidence():
    c = S["c"]
    ids = {}
    ids["gps"] = post(c, [{"stream": "location.gps", "ts": NOW - 600 + i * 60, "source": "phone",
                           "payload": {"lat": 52.52 + i * 1e-4, "lon": 13.40}} for i in range(5)])
    ids["place"] = post(c, [{"stream": "location.place", "ts": NOW - 3600, "ts_end": NOW + 60,
                             "source": "am", "payload": {"name": "work", "event": "visit"}}])
    ids["win"] = post(c, [{"stream": "desktop.window", "ts": NOW - 120, "ts_end": NOW - 5,
                           "source": "laptop", "payload": {"app": "firefox", "title": "Budget 2027"}}])
    ids["screen"] = post(c, [{"stream": "screen.state", "ts": NOW - 300, "source": "phone",
                              "payload": {"state": "on"}}])
    ids["speech"] = post(c, [{"stream": "audio.transcript", "ts": NOW - 200 + i, "source": "phone",
                              "payload": {"text": f"line {i}"}} for i in range(3)])
    ids["msg"] = post(c, [{"stream": "comms.message", "ts": NOW - 3 * 3600, "source": "phone",
                           "payload": {"text": "see you at lunch", "from": "Kim"}}])
    ids["cal"] = post(c, [
        {"stream": "calendar.event", "ts": NOW - 1800, "ts_end": NOW + 1800, "source": "caldav",
         "payload": {"uid": "now", "title": "Standup"}},
        {"stream": "calendar.event", "ts": NOW + 7200, "ts_end": NOW + 9000, "source": "caldav",
         "payload": {"uid": "next", "title": "Dentist"}},
        {"stream": "calendar.event", "ts": NOW - 7200, "ts_end": NOW - 3600, "source": "caldav",
         "payload": {"uid": "past", "title": "Breakfast"}}])
    night = NOW - 10 * 3600
    ids["sleep"] = post(c, [
        {"stream": "health.sleep", "ts": night, "ts_end": night + 3 * 3600, "source": "watch",
         "payload": {"stage": "light"}},
        {"stream": "health.sleep", "ts": night + 3 * 3600, "ts_end": night + 4 * 3600,
         "source": "watch", "payload": {"stage": "awake"}},
        {"stream": "health.sleep", "ts": night + 4 * 3600, "ts_end": night + 7 * 3600,
         "source": "watch", "payload": {"stage": "deep"}}])
    hr = [{"stream": "health.heart_rate", "ts": NOW - 70 * 60 + i * 60, "source": "watch",
           "payload": {"bpm": 60 if i < 55 else 95}} for i in range(70)]
    ids["hr"] = post(c, hr)

    r = c.get("/v1/context", params={"at": NOW})
    assert_status(r, 200)
    x = r.json
    eq(x["now"], "2026-11-25T09:00:00.000000000Z", "now")
    eq(x["location"]["id"], ids["gps"][-1], "location: the newest fix")
    check(abs(x["location"]["age_s"] - 360) < 1, f"its age: {x['location']['age_s']}")
    eq(x["place"]["payload"]["name"], "work", "place")
    eq(x["app"]["payload"]["title"], "Budget 2027", "foreground window")
    eq(x["screen"]["payload"]["state"], "on", "screen")
    eq([s["id"] for s in x["speech"]], ids["speech"][::-1], "last transcript lines, newest first")
    eq(x["messages"][0]["payload"]["from"], "Kim", "recent messages")
    eq([e["payload"]["uid"] for e in x["calendar_now"]], ["now"], "what is on now")
    eq([e["payload"]["uid"] for e in x["calendar_next"]], ["next"], "what comes next")
    eq(x["calendar_next"][0]["starts_in_s"], 7200.0, "starts in two hours")
    check(abs(x["sleep"]["asleep_h"] - 6) < 1e-6 and abs(x["sleep"]["in_bed_h"] - 7) < 1e-6,
          f"last night's sleep: {x['sleep']}")
    eq(sorted(x["sleep"]["evidence"]), sorted(ids["sleep"]), "sleep cites its spans")
    eq(x["heart_rate"]["payload"]["bpm"], 95, "latest heart rate")
    eq(x["heart_rate"]["trend"], "rising", f"trend: {x['heart_rate']}")
    # an hour earlier: the window and the speech had not happened yet
    y = c.get("/v1/context", params={"at": NOW - 3600}).json
    check("speech" not in y and "app" not in y, f"the past context is the past: {list(y)}")
    # another user's now is empty
    z = S["bo"].get("/v1/context", params={"at": NOW}).json
    eq(sorted(z), ["now"], "another user sees nothing of ada's")
    assert_problem(c.get("/v1/context", params={"at": "soon"}), 400)
    p = S["d"].am("--url", S["d"].url(), "--token", c.token, "context", "--at", str(NOW))
    check('"Budget 2027"' in p.stdout, "am context prints it")


@case
def memories_take_verdicts_that_last():
    c, d = S["c"], S["d"]
    ev = post(c, [{"stream": "comms.message", "ts": NOW - 86400 * k, "source": "phone",
                   "payload": {"text": "gym at 7?"}} for k in range(1, 4)])
    mids = post(c, [
        {"stream": "derived.memory", "ts": NOW - 50, "source": "am",
         "payload": {"statement": "Ada goes to the gym on weekday mornings", "kind": "routine",
                     "confidence": 0.7, "evidence": ev}},
        {"stream": "derived.memory", "ts": NOW - 40, "source": "am",
         "payload": {"statement": "Ada dislikes coffee", "kind": "preference",
                     "confidence": 0.4, "evidence": ev[:1]}},
        {"stream": "derived.memory", "ts": NOW - 30, "source": "am",
         "payload": {"statement": "Kim is Ada's colleague", "kind": "relationship",
                     "confidence": 0.6, "evidence": ev[1:]}}])
    r = c.get("/v1/memories")
    assert_status(r, 200)
    ms = r.json["memories"]
    eq([m["id"] for m in ms], mids[::-1], "newest first")
    check(all(m["status"] == "inferred" for m in ms), "all inferred at first")
    eq(ms[-1]["evidence"], ev, "a memory cites its evidence")

    r = c.request("PATCH", f"/v1/memories/{mids[0]}", body={"status": "confirmed"})
    assert_status(r, 200)
    eq(r.json["status"], "confirmed", "confirmed")
    r = c.request("PATCH", f"/v1/memories/{mids[1]}", body={"status": "rejected"})
    eq(r.json["status"], "rejected", "rejected")
    p = d.am("--url", d.url(), "--token", c.token, "memories", "edit", str(mids[2]),
             "Kim is Ada's manager")
    check("edited" in p.stdout, f"am memories edit: {p.stdout}")

    def check_all(what):
        by = {m["id"]: m for m in c.get("/v1/memories").json["memories"]}
        eq(by[mids[0]]["status"], "confirmed", f"{what}: confirmed stays")
        eq(by[mids[1]]["status"], "rejected", f"{what}: rejected stays")
        eq(by[mids[2]]["status"], "edited", f"{what}: edited")
        eq(by[mids[2]]["statement"], "Kim is Ada's manager", f"{what}: the person's words")
        eq(by[mids[2]]["inferred_statement"], "Kim is Ada's colleague", f"{what}: AM's kept")
    check_all("after the verdicts")
    eq([m["id"] for m in c.get("/v1/memories", params={"status": "confirmed"}).json["memories"]],
       [mids[0]], "filter by status")
    fb = c.list_all("/v1/events", {"stream": "derived.feedback"})[0]
    eq(sorted(f["payload"]["target"] for f in fb), sorted(mids), "each verdict is an event")
    d.stop()
    d.start()
    check_all("after a restart")
    # a later verdict wins
    c.request("PATCH", f"/v1/memories/{mids[1]}", body={"status": "confirmed"})
    by = {m["id"]: m for m in c.get("/v1/memories").json["memories"]}
    eq(by[mids[1]]["status"], "confirmed", "a changed mind")
    p = d.am("--url", d.url(), "--token", c.token, "memories", "--status", "confirmed")
    check("gym" in p.stdout and "coffee" in p.stdout, f"am memories: {p.stdout}")


@case
def memory_verdicts_check_input_and_owner():
    c, bo = S["c"], S["bo"]
    mid = c.get("/v1/memories").json["memories"][0]["id"]
    assert_problem(bo.request("PATCH", f"/v1/memories/{mid}", body={"status": "rejected"}), 404)
    eq(bo.get("/v1/memories").json["memories"], [], "bo sees none of ada's memories")
    msg = c.list_all("/v1/events", {"stream": "comms.message"})[0][0]["id"]
    assert_problem(c.request("PATCH", f"/v1/memories/{msg}", body={"status": "confirmed"}), 404)
    assert_problem(c.request("PATCH", f"/v1/memories/{mid}", body={"status": "maybe"}), 400)
    assert_problem(c.request("PATCH", f"/v1/memories/{mid}", body=b"not json"), 400)
    assert_problem(c.request("PATCH", "/v1/memories/abc", body={"status": "confirmed"}), 404)
    assert_problem(c.get("/v1/memories", params={"status": "sure"}), 400)
    assert_problem(c.post("/v1/memories", body={}), 405)
    reader = S["d"].client(S["d"].token("ada", scope="read"))
    assert_problem(reader.request("PATCH", f"/v1/memories/{mid}", body={"status": "confirmed"}), 403)


@case
def places_are_found_and_named_from_gps():
    d = S["d"]
    d.user_add("dee")
    c = d.client(d.token("dee"))
    import datetime
    day0 = datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc)  # a Monday
    check(day0.weekday() == 0, "day0 is a Monday")
    D0 = int(day0.timestamp())
    HOME, WORK, GYM = (52.5000, 13.4000), (52.5200, 13.4500), (52.5100, 13.3800)
    rnd = T.random.Random(7)

    def at(t, p):
        return {"stream": "location.gps", "ts": t, "source": "phone",
                "payload": {"lat": p[0] + rnd.uniform(-2e-4, 2e-4),
                            "lon": p[1] + rnd.uniform(-2e-4, 2e-4), "accuracy": 10}}

    def stay(t0, t1, p):
        return [at(t, p) for t in range(t0, t1, 300)]

    def move(t0, t1, a, b):
        n = (t1 - t0) // 300
        return [at(t0 + k * 300, (a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n))
                for k in range(1, n)]

    evs = []
    for day in range(3):
        b = D0 + day * 86400
        evs += stay(b, b + 8 * 3600, HOME) + move(b + 8 * 3600, b + 9 * 3600, HOME, WORK)
        evs += stay(b + 9 * 3600, b + 17 * 3600, WORK) + move(b + 17 * 3600, b + 18 * 3600, WORK, GYM)
        evs += stay(b + 18 * 3600, b + 19 * 3600, GYM) + move(b + 19 * 3600, b + 20 * 3600, GYM, HOME)
        evs += stay(b + 20 * 3600, b + 24 * 3600, HOME)
    for i in range(0, len(evs), 5000):
        post(c, evs[i:i + 5000])
    end = D0 + 3 * 86400
    tick(c, end)
    pl = c.list_all("/v1/events", {"stream": "location.place", "source": "am.places"})[0]
    visits = [e for e in pl if e["payload"]["event"] == "visit"]
    ids = {e["payload"]["place_id"] for e in visits}
    eq(len(ids), 3, f"three places: {ids}")
    def near(e, p):
        return abs(e["payload"]["lat"] - p[0]) < 1e-3 and abs(e["payload"]["lon"] - p[1]) < 1e-3
    work = [e for e in visits if near(e, WORK)]
    gym = [e for e in visits if near(e, GYM)]
    home = [e for e in visits if near(e, HOME)]
    eq(len(work), 3, "three work visits")
    eq(len(gym), 3, "three gym visits")
    check(len(home) >= 3, f"home visits: {len(home)}")
    check(all(abs((e["ts_end_ns"] - e["ts_ns"]) / 1e9 - 8 * 3600) <= 600 for e in work),
          "work visits last the working day")
    eq(work[-1]["payload"]["name"], "work", "work is named once the hours show it")
    eq(home[-1]["payload"]["name"], "home", "home is named by the nights")
    check(gym[-1]["payload"]["name"].startswith("place-"), "the gym has no label")
    arrivals = [e for e in pl if e["payload"]["event"] == "arrival"]
    check(len(arrivals) == len(visits) + 1, f"an arrival per visit, and the open stay at home "
          f"({len(arrivals)} arrivals, {len(visits)} visits)")
    x = c.get("/v1/context", params={"at": end}).json
    eq(x["place"]["payload"]["event"], "arrival", "the context knows where the person is")
    check(near(x["place"], HOME), "at home")
    n = len(pl)
    tick(c, end)
    eq(len(c.list_all("/v1/events", {"stream": "location.place", "source": "am.places"})[0]), n,
       "a rerun adds nothing")


def tick(c, at):
    r = c.post("/v1/agent/tick", params={"at": at})
    assert_status(r, 200)
    return r.json["decisions"]


@case
def a_meeting_that_your_data_knows_about_gets_a_nudge_with_evidence():
    c = S["c"]
    T1 = NOW + 86400  # the next day, 09:00 UTC
    msg = post(c, [{"stream": "comms.message", "ts": T1 - 2 * 86400, "source": "phone",
                    "payload": {"text": "Bring the contract draft to the Acme review", "from": "Jonas"}}])[0]
    cal = post(c, [{"stream": "calendar.event", "ts": T1 + 600, "ts_end": T1 + 3600,
                    "source": "caldav", "payload": {"uid": "acme", "title": "Acme review"}},
                   {"stream": "calendar.event", "ts": T1 + 700, "ts_end": T1 + 1800,
                    "source": "caldav", "payload": {"uid": "x", "title": "Zyzzyva"}}])
    ws = T.ws_connect(S["d"], token=c.token)
    ws.send(T.json.dumps({"type": "subscribe", "streams": ["derived.nudge"]}))
    msgs = [T.ws_recv(ws, 5), T.ws_recv(ws, 5)]  # a hello, then the subscription's answer
    check(any(m and m.get("type") == "subscribed" for m in msgs), f"subscribed: {msgs}")
    d = tick(c, T1)
    sent = [x for x in d if x["sent"]]
    eq(len(sent), 1, f"one nudge: the meeting with related data ({d})")
    eq(sent[0]["event"], cal[0], "for the Acme review")
    check(all(x["event"] != cal[1] for x in d), "nothing for a meeting nothing mentions")
    live = T.ws_recv(ws, 5)
    check(live and live.get("type") == "event", f"the nudge arrives live: {live}")
    n = live["event"]
    eq(n["stream"], "derived.nudge", "as a derived.nudge event")
    eq(n["id"], sent[0]["id"], "the one just sent")
    p = n["payload"]
    eq(p["title"], "Acme review", "titled by the meeting")
    check("contract" in p["body"] and "In 10 min" in p["body"], f"body: {p['body']}")
    check(cal[0] in p["evidence"] and msg in p["evidence"], f"evidence cites both: {p['evidence']}")
    check("Acme review" in p["reason"] and "mention" in p["reason"], f"reason: {p['reason']}")
    ws.close()
    again = tick(c, T1 + 60)
    check(not any(x["sent"] for x in again), f"not twice: {again}")
    eq(len(c.get("/v1/nudges").json["nudges"]), 1, "deduplicated: still one nudge")
    r = c.post(f"/v1/nudges/{sent[0]['id']}/feedback", body={"rating": "useful"})
    assert_status(r, 200)
    ns = c.get("/v1/nudges").json["nudges"]
    eq(ns[0]["feedback"], "useful", "feedback folded into the list")
    assert_problem(c.post(f"/v1/nudges/{sent[0]['id']}/feedback", body={"rating": "meh"}), 400)
    assert_problem(S["bo"].post(f"/v1/nudges/{sent[0]['id']}/feedback", body={"rating": "useful"}), 404)
    eq(S["bo"].get("/v1/nudges").json["nudges"], [], "bo has no nudges")
    S["T1"] = T1


@case
def quiet_hours_cooldown_budget_and_fatigue_hold():
    c = S["c"]
    T2 = NOW + 2 * 86400  # 09:00 UTC, two days on
    post(c, [{"stream": "comms.email", "ts": T2 - 86400, "source": "imap",
              "payload": {"subject": f"Agenda for topic{k}", "body": f"notes on topic{k}"}}
             for k in range(8)])
    # quiet hours: 22-7 local (UTC here)
    late = T2 + 13 * 3600 + 20 * 60  # 22:20
    post(c, [{"stream": "calendar.event", "ts": late + 600, "source": "caldav",
              "payload": {"uid": "late", "title": "topic0"}}])
    d = tick(c, late)
    check(d and not d[0]["sent"] and "quiet hours" in d[0]["why"], f"quiet: {d}")
    # cooldown: two related meetings five minutes apart
    post(c, [{"stream": "calendar.event", "ts": T2 + 300, "source": "caldav",
              "payload": {"uid": "a", "title": "topic1"}},
             {"stream": "calendar.event", "ts": T2 + 600, "source": "caldav",
              "payload": {"uid": "b", "title": "topic2"}}])
    d = tick(c, T2)
    eq([x["sent"] for x in d], [True, False], f"the second waits for the cooldown: {d}")
    check("cooldown" in d[1]["why"], d[1]["why"])
    # the budget (3 a day): meetings an hour apart
    for k in range(3, 7):
        post(c, [{"stream": "calendar.event", "ts": T2 + (k - 2) * 3600 + 300, "source": "caldav",
                  "payload": {"uid": f"m{k}", "title": f"topic{k}"}}])
    results = [tick(c, T2 + (k - 2) * 3600) for k in range(3, 7)]
    sent = [x["sent"] for r in results for x in r]
    eq(sent, [True, True, False, False], f"three a day: {results}")
    check("daily budget" in results[2][0]["why"], results[2][0]["why"])
    # fatigue: two nudges rated not useful lower tomorrow's budget to 2
    ids = [x["id"] for r in results for x in r if x["sent"]]
    for i in ids:
        assert_status(c.post(f"/v1/nudges/{i}/feedback", body={"rating": "not_useful"}), 200)
    T3 = T2 + 86400
    post(c, [{"stream": "comms.email", "ts": T3 - 3600, "source": "imap",
              "payload": {"subject": f"Agenda for theme{k}", "body": "x"}} for k in range(3)])
    for k in range(3):
        post(c, [{"stream": "calendar.event", "ts": T3 + k * 3600 + 300, "source": "caldav",
                  "payload": {"uid": f"t{k}", "title": f"theme{k}"}}])
    sent = [x["sent"] for k in range(3) for x in tick(c, T3 + k * 3600)]
    eq(sent, [True, True, False], f"fatigue lowers the budget: {sent}")


@case
def the_agent_thread_nudges_on_its_own():
    d = env.daemon("ticker", settings={"AM_AGENT_TICK_S": 1, "AM_NUDGE_QUIET_HOURS": ""})
    d.user_add("cy")
    c = d.client(d.token("cy"))
    d.start()
    now = int(T.time.time())
    post(c, [{"stream": "comms.message", "ts": now - 3600, "source": "phone",
              "payload": {"text": "don't forget the Quokka offsite slides"}},
             {"stream": "calendar.event", "ts": now + 300, "source": "caldav",
              "payload": {"uid": "q", "title": "Quokka offsite"}}])
    deadline = T.time.time() + 20
    ns = []
    while T.time.time() < deadline and not ns:
        ns = c.get("/v1/nudges").json["nudges"]
        T.time.sleep(0.3)
    eq(len(ns), 1, "the thread sent one nudge")
    eq(ns[0]["payload"]["title"], "Quokka offsite", "for the offsite")
    T.time.sleep(2.5)
    eq(len(c.get("/v1/nudges").json["nudges"]), 1, "and only one")
    d.stop()


@case
def a_new_meeting_is_nudged_within_moments_of_its_commit():
    d = env.daemon("reactive", settings={"AM_AGENT_TICK_S": 3600, "AM_NUDGE_QUIET_HOURS": ""})
    d.user_add("rho")
    c = d.client(d.token("rho"))
    d.start()
    try:
        now = int(T.time.time())
        post(c, [{"stream": "comms.email", "ts": now - 86400, "source": "imap",
                  "payload": {"subject": "Wombat budget numbers", "body": "see attached"}}])
        cal = post(c, [{"stream": "calendar.event", "ts": now + 240, "source": "caldav",
                        "payload": {"uid": "w", "title": "Wombat budget"}}])[0]
        deadline = T.time.time() + 5
        ns = []
        while T.time.time() < deadline and not ns:
            ns = c.get("/v1/nudges").json["nudges"]
            T.time.sleep(0.02)
        eq(len(ns), 1, "nudged without waiting for the hourly tick")
        check(cal in ns[0]["payload"]["evidence"], "for the new meeting")
        lat = (ns[0]["received_ns"] - c.get(f"/v1/events/{cal}").json["received_ns"]) / 1e6
        print(f"#   event -> nudge: {lat:.1f} ms (server clock)")
    finally:
        d.stop()


@case
def nudges_stream_as_server_sent_events():
    import http.client
    d = env.daemon("sse", settings={"AM_AGENT_TICK_S": 0, "AM_NUDGE_QUIET_HOURS": ""})
    d.user_add("sia")
    tok = d.token("sia")
    c = d.client(tok)
    d.start()
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    conn.request("GET", "/v1/nudges/stream?token=" + tok)
    r = conn.getresponse()
    eq(r.status, 200, "stream opened")
    check(r.getheader("Content-Type", "").startswith("text/event-stream"), "an event stream")
    check(r.fp.readline().startswith(b":"), "a first comment line")
    r.fp.readline()
    post(c, [{"stream": "comms.message", "ts": NOW - 60, "source": "phone",
              "payload": {"text": "the Narwhal launch checklist"}},
             {"stream": "calendar.event", "ts": NOW + 300, "source": "caldav",
              "payload": {"uid": "n", "title": "Narwhal launch"}}])
    dec = tick(c, NOW)
    eq([x["sent"] for x in dec], [True], f"sent: {dec}")
    lines = [r.fp.readline() for _ in range(2)]
    eq(lines[0], b"event: nudge\n", f"an event line: {lines}")
    ev = T.json.loads(lines[1][len(b"data: "):])
    eq(ev["payload"]["title"], "Narwhal launch", "the nudge as data")
    eq(ev["id"], dec[0]["id"], "the one just sent")
    assert_problem(S["c"].get("/v1/nudges/stream", auth=False), 401)
    t0 = T.time.time()
    d.stop()
    check(T.time.time() - t0 < 8, "amd stops promptly with a stream open")
    conn.close()


@case
def nudges_are_pushed_to_webhook_ntfy_and_gotify():
    import http.server
    import threading
    got = []
    fail = {"left": 1}

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((self.path, dict(self.headers), body))
            if self.path == "/hook" and fail["left"] > 0:
                fail["left"] -= 1
                self.send_response(500)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    d = env.daemon("pusher", settings={
        "AM_AGENT_TICK_S": 0, "AM_NUDGE_QUIET_HOURS": "", "AM_NOTIFY_WEBHOOK_URL": base + "/hook",
        "AM_NOTIFY_NTFY_URL": base + "/ntfy/am-test", "AM_NOTIFY_GOTIFY_URL": base + "/gotify",
        "AM_NOTIFY_GOTIFY_TOKEN": "Agotifytoken"})
    d.user_add("eve")
    c = d.client(d.token("eve"))
    d.start()
    try:
        post(c, [{"stream": "comms.message", "ts": NOW - 3600, "source": "phone",
                  "payload": {"text": "the Marmot pitch deck needs the new numbers"}},
                 {"stream": "calendar.event", "ts": NOW + 300, "source": "caldav",
                  "payload": {"uid": "m", "title": "Marmot pitch"}}])
        dec = tick(c, NOW)
        eq([x["sent"] for x in dec], [True], f"sent: {dec}")
        eq(dec[0].get("delivered"), {"webhook": 200, "ntfy": 200, "gotify": 200},
           "every channel took it (the webhook after one 500)")
        hooks = [g for g in got if g[0] == "/hook"]
        eq(len(hooks), 2, "the webhook was retried once")
        ev = T.json.loads(hooks[-1][2])
        eq(ev["stream"], "derived.nudge", "the webhook gets the nudge event")
        eq(ev["payload"]["title"], "Marmot pitch", "with its title")
        nt = [g for g in got if g[0] == "/ntfy/am-test"][0]
        eq(nt[1].get("Title"), "Marmot pitch", "ntfy title header")
        check(b"numbers" in nt[2], f"ntfy body is the nudge's body: {nt[2]!r}")
        go = [g for g in got if g[0] == "/gotify/message"][0]
        eq(go[1].get("X-Gotify-Key"), "Agotifytoken", "gotify token")
        eq(T.json.loads(go[2])["title"], "Marmot pitch", "gotify message")
    finally:
        d.stop()
        srv.shutdown()


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
