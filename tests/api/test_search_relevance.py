"""test_search_relevance.py — search quality on a small labelled set: a seeded corpus of
messages, emails, notes, calendar entries and window titles, and queries whose relevant
events are known. recall@10 is computed and printed for text-only, vector-only (the
built-in embedder, no model server) and hybrid search; hybrid must not be worse than
either half and must find most of what is relevant."""

import amtest as T
from amtest import case, check, eq, assert_status, results_of

env = T.Env()
S = {}
T0 = 1795597200

# (stream, payload, labels): labels name the queries this event is relevant to.
CORPUS = [
    ("comms.message", {"text": "Can we move the dentist appointment to Thursday morning?"}, ["dentist"]),
    ("calendar.event", {"uid": "c1", "title": "Dentist check-up", "location": "Smile Clinic"}, ["dentist"]),
    ("comms.email", {"subject": "Your dental cleaning reminder", "body": "Dr. Novak's clinic: "
                     "your dentist visit is booked."}, ["dentist"]),
    ("comms.message", {"text": "Flight to Lisbon leaves at 7:40, gate B12"}, ["lisbon trip"]),
    ("comms.email", {"subject": "Booking confirmed: Hotel Alfama, Lisbon", "body": "3 nights"}, ["lisbon trip"]),
    ("calendar.event", {"uid": "c2", "title": "Trip to Lisbon", "description": "conference + weekend"}, ["lisbon trip"]),
    ("screen.text", {"text": "Lisbon tram 28 timetable and tickets"}, ["lisbon trip"]),
    ("comms.message", {"text": "The quarterly budget spreadsheet is ready for review"}, ["budget"]),
    ("comms.email", {"subject": "Budget 2027 draft", "body": "Please review the budget numbers "
                     "before Friday's finance meeting"}, ["budget"]),
    ("desktop.window", {"app": "libreoffice", "title": "budget-2027-final.ods"}, ["budget"]),
    ("comms.message", {"text": "Running club tonight: 10k along the river"}, ["running"]),
    ("health.workout", {"kind": "running", "distance": 10000}, ["running"]),
    ("calendar.event", {"uid": "c3", "title": "Marathon training run"}, ["running"]),
    ("comms.message", {"text": "Mum's birthday is on Sunday, get flowers"}, ["birthday"]),
    ("calendar.todo", {"uid": "t1", "title": "Order birthday cake for Mum"}, ["birthday"]),
    ("comms.email", {"subject": "Invitation: surprise birthday party", "body": "Saturday 8pm"}, ["birthday"]),
    ("device.clipboard", {"text": "ssh deploy@build-server-03 'systemctl restart api'"}, ["server restart"]),
    ("app.notification", {"app": "pagerduty", "title": "API server down", "text": "restart required on build-server-03"}, ["server restart"]),
    ("comms.message", {"text": "Restarted the API server, all green now"}, ["server restart"]),
    ("comms.email", {"subject": "Car insurance renewal", "body": "Your policy renews on 1 Dec"}, ["insurance"]),
    ("screen.text", {"text": "Compare car insurance quotes"}, ["insurance"]),
    ("comms.message", {"text": "Pick up the kids from school at 3"}, []),
    ("comms.message", {"text": "Great match yesterday!"}, []),
    ("web.visit", {"url": "https://news.example/weather", "title": "Weather: rain all week"}, []),
    ("comms.email", {"subject": "Newsletter: ten recipes for autumn", "body": "pumpkin soup"}, []),
    ("screen.text", {"text": "Terminal: make test passed 22/22"}, []),
    ("comms.message", {"text": "Lunch at the Thai place?"}, []),
    ("calendar.event", {"uid": "c4", "title": "Weekly team sync"}, []),
    ("device.clipboard", {"text": "https://maps.example/place/bakery"}, []),
    ("comms.message", {"text": "Thanks for the book recommendation"}, []),
]

QUERIES = {
    "dentist": "dentist appointment",
    "lisbon trip": "lisbon trip",
    "budget": "budget review",
    "running": "running",
    "birthday": "mum birthday",
    "server restart": "restart api server",
    "insurance": "car insurance",
}


def setup():
    d = env.daemon("rel", settings={"AM_WORKERS": 2})
    d.user_add("rex")
    d.start()
    c = d.client(d.token("rex"))
    evs = [{"stream": s, "ts": T0 + 60 * i, "source": "seed", "payload": p}
           for i, (s, p, _) in enumerate(CORPUS)]
    r = c.post_events(evs)
    res = results_of(r)
    check(all(x["status"] == "stored" for x in res), f"corpus stored: {res}")
    S["ids"] = [x["id"] for x in res]
    S["c"] = c
    deadline = T.time.time() + 60
    while T.time.time() < deadline:
        j = c.get("/v1/jobs").json
        if j["pending"] == 0 and j["running"] == 0:
            break
        T.time.sleep(0.2)


def recall_at_10(mode):
    c, total, found = S["c"], 0, 0
    per = {}
    for label, q in QUERIES.items():
        want = {S["ids"][i] for i, (_, _, ls) in enumerate(CORPUS) if label in ls}
        r = c.get("/v1/search", params={"q": q, "mode": mode, "limit": 10, "context": 0})
        assert_status(r, 200)
        got = {h["id"] for h in r.json["hits"]}
        per[label] = len(want & got) / len(want)
        total += len(want)
        found += len(want & got)
    return found / total, per


@case
def recall_at_10_is_printed_and_hybrid_is_best():
    figures = {m: recall_at_10(m) for m in ("text", "vector", "hybrid")}
    for m, (r, per) in figures.items():
        print(f"#   recall@10 {m:6s} {r:.3f}  " +
              " ".join(f"{k}={v:.2f}" for k, v in per.items()))
    text, vec, hyb = (figures[m][0] for m in ("text", "vector", "hybrid"))
    check(hyb >= max(text, vec) - 1e-9, f"hybrid {hyb:.3f} >= text {text:.3f} and vector {vec:.3f}")
    check(hyb >= 0.8, f"hybrid recall@10 {hyb:.3f} >= 0.8")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
