"""test_simulate.py — `am simulate` writes a synthetic life through the public API, and
the agent finds what was planted in it: the places (home, work, the gym) from GPS, the
context in the middle of a workday, and a nudge before the weekly meeting with Priya,
citing her email. Running the simulation again stores nothing new."""

import re

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem

env = T.Env()
S = {}
START = "2026-10-26T00:00:00Z"  # a Monday
END = "2026-11-16T00:00:00Z"  # three weeks later


def setup():
    d = env.daemon("sim", settings={"AM_AGENT_TICK_S": 0, "AM_NUDGE_QUIET_HOURS": "",
                                    "AM_PIPELINE": "analyze"})
    d.user_add("sam")
    S["d"] = d
    S["tok"] = d.token("sam")
    S["c"] = d.client(S["tok"])
    d.start()


def simulate():
    d = S["d"]
    return d.am("--url", d.url(), "--token", S["tok"], "simulate", "--days", "21", "--seed",
                "3", "--from", START)


@case
def simulate_writes_a_life_once():
    p = simulate()
    m = re.search(r"(\d+) stored, (\d+) duplicate, (\d+) rejected", p.stdout)
    check(m, f"summary: {p.stdout} {p.stderr}")
    stored, dup, rej = map(int, m.groups())
    check(stored > 4000, f"three weeks of events: {stored}")
    eq(rej, 0, "nothing rejected")
    S["stored"] = stored
    p = simulate()
    m = re.search(r"(\d+) stored, (\d+) duplicate", p.stdout)
    eq(int(m.group(1)), 0, "again: nothing new")
    eq(int(m.group(2)), stored, "all duplicates")


@case
def the_agent_finds_the_places():
    c = S["c"]
    r = c.post("/v1/agent/tick", params={"at": END})
    assert_status(r, 200)
    pl = c.list_all("/v1/events", {"stream": "location.place", "source": "am.places"})[0]
    visits = [e for e in pl if e["payload"]["event"] == "visit"]
    names = {}
    for v in visits:
        names.setdefault(v["payload"]["place_id"], set()).add(v["payload"]["name"])
    eq(len(names), 3, f"home, work and the gym: {names}")
    last = {}
    for v in visits:
        last[v["payload"]["place_id"]] = v["payload"]["name"]
    check(sorted(n for n in last.values() if not n.startswith("place-")) == ["home", "work"],
          f"home and work named: {last}")
    gym = [v for v in visits if abs(v["payload"]["lat"] - 52.51) < 2e-3 and
           abs(v["payload"]["lon"] - 13.38) < 2e-3]
    eq(len(gym), 8, f"gym on Mon/Wed/Fri for three weeks, minus the skipped last Wednesday: {[g['ts'] for g in gym]} of {len(visits)} visits")
    habits = c.list_all("/v1/events", {"stream": "derived.habit"})[0]
    routines = {(h["payload"]["weekday"], h["payload"]["hour"]) for h in habits
                if h["payload"]["kind"] == "routine" and h["payload"]["place_id"] ==
                gym[0]["payload"]["place_id"]}
    eq(sorted(routines), [("Friday", 18), ("Monday", 18), ("Wednesday", 18)],
       "the gym routine: Mon/Wed/Fri at 18:00")
    r = [h for h in habits if h["payload"]["kind"] == "routine"][0]
    check(len(r["payload"]["evidence"]) >= 2, f"a routine cites its visits: {r['payload']}")
    S["gym"] = gym[0]["payload"]["place_id"]
    corr = c.list_all("/v1/events", {"stream": "derived.correlation"})[0]
    late = [x for x in corr if x["payload"]["a"] == "screen_off_hour" and
            x["payload"]["b"] == "sleep_hours" and x["payload"]["lag_days"] == 0]
    eq(len(late), 1, f"late screens vs sleep found: {[x['payload']['text'] for x in corr]}")
    p = late[0]["payload"]
    check(p["r"] < -0.9 and p["p"] < 0.01 and p["n"] >= 18, f"strong and significant: {p}")
    check(abs(p["slope"] + 1) < 0.05, f"an hour later off, an hour less sleep: {p['slope']}")
    check(len(p["evidence"]) >= 10, "cites screen and sleep events")
    check(not [x for x in corr if x["payload"]["a"] == "workout_minutes"],
          f"nothing made up about workouts: {[x['payload']['text'] for x in corr]}")


@case
def the_context_mid_meeting():
    x = S["c"].get("/v1/context", params={"at": "2026-11-10T10:30:00Z"}).json
    eq(x["calendar_now"][0]["payload"]["title"], "Design sync with Priya", "in the meeting")
    check(any("Priya" in s["payload"]["text"] for s in x.get("speech", [])), "Priya heard")
    check(abs(x["location"]["payload"]["lat"] - 52.52) < 2e-3, "at work")
    check(x["sleep"]["asleep_h"] > 5, f"slept: {x['sleep']}")


@case
def a_nudge_before_the_meeting_cites_priyas_email():
    c = S["c"]
    r = c.post("/v1/agent/tick", params={"at": "2026-11-10T09:50:00Z"})
    d = r.json["decisions"]
    sent = [x for x in d if x["sent"]]
    eq(len(sent), 1, f"one nudge: {d}")
    n = [e for e in c.list_all("/v1/events", {"stream": "derived.nudge"})[0]
         if e["id"] == sent[0]["id"]][0]
    eq(n["payload"]["title"], "Design sync with Priya", "for the meeting")
    emails = c.list_all("/v1/events", {"stream": "comms.email"})[0]
    check(any(e["id"] in n["payload"]["evidence"] for e in emails),
          f"cites Priya's email: {n['payload']}")
    hits = c.get("/v1/search", params={"q": "Priya", "limit": 50, "context": 0}).json["hits"]
    streams = {h["stream"] for h in hits}
    check({"comms.email", "comms.message", "audio.transcript", "calendar.event"} <= streams,
          f"Priya across streams: {streams}")


@case
def the_skipped_wednesday_is_a_lapse_and_a_nudge():
    c = S["c"]
    r = c.post("/v1/agent/tick", params={"at": "2026-11-11T21:00:00Z"})
    d = [x for x in r.json["decisions"] if x.get("trigger") == "habit"]
    eq(len(d), 1, f"one lapse: {r.json['decisions']}")
    check(d[0]["sent"], f"nudged: {d[0]}")
    lapses = [h for h in c.list_all("/v1/events", {"stream": "derived.habit"})[0]
              if h["payload"]["kind"] == "lapse"]
    eq(len(lapses), 1, "one lapse recorded")
    eq(lapses[0]["payload"]["weekday"], "Wednesday", "on the Wednesday")
    eq(lapses[0]["payload"]["place_id"], S["gym"], "at the gym")
    # a Wednesday that was kept is no lapse
    r = c.post("/v1/agent/tick", params={"at": "2026-11-04T21:00:00Z"})
    check(not [x for x in r.json["decisions"] if x.get("trigger") == "habit"],
          f"no lapse when the routine was kept: {r.json['decisions']}")


@case
def an_unusual_heart_rate_is_an_anomaly_and_a_nudge():
    c = S["c"]
    r = c.post("/v1/agent/tick", params={"at": "2026-11-09T11:00:30Z"})
    check(not [x for x in r.json["decisions"] if x.get("trigger") == "anomaly"],
          "an ordinary Monday morning is no anomaly")
    base = 1794823200  # 2026-11-16T10:00:00Z, a Monday, after the simulated weeks
    evs = [{"stream": "health.heart_rate", "ts": base + k * 300, "source": "watch",
            "payload": {"bpm": 140}} for k in range(12)]
    r = c.post_events(evs)
    assert_status(r, 200)
    r = c.post("/v1/agent/tick", params={"at": "2026-11-16T11:00:30Z"})
    d = [x for x in r.json["decisions"] if x.get("trigger") == "anomaly"]
    eq(len(d), 1, f"one anomaly nudge: {r.json['decisions']}")
    check(d[0]["sent"], f"sent: {d[0]}")
    an = c.list_all("/v1/events", {"stream": "derived.anomaly"})[0]
    eq(len(an), 1, "one anomaly stored")
    p = an[0]["payload"]
    check(p["value"] == 140 and 65 < p["median"] < 85 and p["z"] > 3.5, f"against the baseline: {p}")
    check(len(p["evidence"]) == 8, "cites the readings")


@case
def a_day_is_summarised_from_its_events():
    c = S["c"]
    r = c.post("/v1/agent/summary", params={"day": "2026-11-10"})
    assert_status(r, 200)
    e = r.json
    eq(e["stream"], "derived.summary", "a summary event")
    t = e["payload"]["text"]
    for want in ("work", "home", "Design sync with Priya", "10:00", "Slept"):
        check(want in t, f"the summary says '{want}': {t}")
    check(len(e["payload"]["evidence"]) >= 3, "cites the day's events")
    again = c.post("/v1/agent/summary", params={"day": "2026-11-10"}).json
    eq(again["id"], e["id"], "one summary per day")
    assert_problem(c.post("/v1/agent/summary", params={"day": "1999-01-01"}), 404)
    assert_problem(c.post("/v1/agent/summary", params={"day": "tomorrow"}), 400)


@case
def memories_are_inferred_with_evidence_and_rejection_sticks():
    c = S["c"]
    ms = c.get("/v1/memories", params={"limit": 1000}).json["memories"]
    by_kind = {}
    for m in ms:
        by_kind.setdefault(m["kind"], []).append(m)
    gym = [m for m in by_kind.get("routine", []) if S["gym"] in m.get("finding", "") or
           "place-" in m["statement"] and "18:00" in m["statement"]]
    check(len(gym) >= 3, f"gym routines as memories: {[m['statement'] for m in ms]}")
    priya = [m for m in by_kind.get("relationship", []) if "Priya" in m["statement"]]
    eq(len(priya), 1, f"Priya as a relationship: {[m['statement'] for m in ms]}")
    check(len(priya[0]["evidence"]) >= 3, "with evidence")
    check(any("sleep" in m["statement"] for m in by_kind.get("fact", [])),
          f"the screen/sleep link as a fact: {[m['statement'] for m in by_kind.get('fact', [])]}")
    people = c.get("/v1/people").json["people"]
    eq(people[0]["name"], "Priya Raman", f"the most present person: {people[:2]}")
    check(set(people[0]["where"]) >= {"email", "messages", "calendar", "speech"},
          f"in four streams: {people[0]['where']}")
    r = c.request("PATCH", f"/v1/memories/{priya[0]['id']}", body={"status": "rejected"})
    assert_status(r, 200)
    c.post("/v1/agent/tick", params={"at": END})
    ms = c.get("/v1/memories", params={"limit": 1000}).json["memories"]
    priya = [m for m in ms if m["kind"] == "relationship" and "Priya" in m["statement"]]
    eq(len(priya), 1, "not inferred again")
    eq(priya[0]["status"], "rejected", "and still rejected")


@case
def with_a_chat_model_memories_come_from_the_infer_memory_signature():
    import os
    import subprocess
    import sys
    port_file = os.path.join(env.root, "oai.port")
    srv = subprocess.Popen([sys.executable, os.path.join(T.SOURCE_DIR, "tests", "tools",
                                                         "openai_server.py"),
                            "--port", "0", "--port-file", port_file],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = T.time.time() + 20
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            check(T.time.time() < deadline, "the model server started")
            T.time.sleep(0.05)
        url = "http://127.0.0.1:" + open(port_file).read().strip()
        d = env.daemon("simllm", settings={"AM_AGENT_TICK_S": 0, "AM_NUDGE_QUIET_HOURS": "",
                                           "AM_PIPELINE": "", "AM_CHAT_URL": url,
                                           "AM_CHAT_MODEL": "test-chat"})
        d.user_add("lu")
        tok = d.token("lu")
        c = d.client(tok)
        d.start()
        d.am("--url", d.url(), "--token", tok, "simulate", "--days", "21", "--seed", "3",
             "--from", START)
        r = c.post_events([{"stream": "comms.message", "ts": "2026-11-15T22:00:00Z",
                            "source": "phone", "payload": {"text": "NOTIFY: the boiler service"
                                                                   " is due tomorrow"}}])
        assert_status(r, 200)
        r = c.post("/v1/agent/tick", params={"at": END})
        assert_status(r, 200)
        llm = [x for x in r.json["decisions"] if x.get("trigger") == "DecideNudge"]
        eq(len(llm), 1, f"the model decided to nudge: {r.json['decisions']}")
        check(llm[0]["sent"], f"and it was sent: {llm[0]}")
        n = [e for e in c.list_all("/v1/events", {"stream": "derived.nudge"})[0]
             if e["id"] == llm[0]["id"]][0]
        check(n["payload"]["title"] and n["payload"]["evidence"], f"with title and evidence: {n}")
        ms = c.get("/v1/memories", params={"limit": 1000}).json["memories"]
        check(ms and all(m.get("model") == "test-chat" for m in ms),
              f"every memory phrased by the model: {ms[:2]}")
        check(all(m["statement"] and m["statement"] != m["finding"] for m in ms),
              "statements come from the model, findings are kept beside them")
        calls = c.list_all("/v1/events", {"stream": "derived.model_call"})[0]
        check(len(calls) >= len(ms), f"every call logged: {len(calls)} for {len(ms)} memories")
        eq({x["payload"]["signature"] for x in calls}, {"InferMemory", "DecideNudge"},
           "by signature")
        check(all(x["payload"]["outcome"] == "ok" and x["payload"]["latency_ms"] >= 0
                  for x in calls), "with outcome and latency")
        d.stop()
    finally:
        srv.kill()
        srv.wait()


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=600)
