"""test_pipeline.py — the enrichment pipeline end to end, over real HTTP against a real
amd: a PNG rendered with ImageMagick is OCR'd and found by search; real recorded speech
(Debian's alsa-utils) is transcribed by pocketsphinx and found; an MP4 made with ffmpeg
yields key frames that are OCR'd; text gets deterministic extraction, a chat model's
summary and entities, and a vector. Model calls go to the suite's own OpenAI-compatible
test server (tests/tools/openai_server.py), which fails or stalls on command: failures
are retried, a poisoned input lands in the dead letters with a clear error, and kill -9
in the middle of a busy queue loses no job and duplicates no derived event."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem, results_of

env = T.Env()
S = {}
T0 = 1795597200  # 2026-11-25T09:00:00Z
SPEECH = "/usr/share/sounds/alsa/Front_Center.wav"
PNG_CT = {"Content-Type": "application/octet-stream"}


# ---------------------------------------------------------------- the model server

class ModelServer:
    def __init__(self, root):
        self.port_file = os.path.join(root, "openai.port")
        script = os.path.join(T.SOURCE_DIR, "tests", "tools", "openai_server.py")
        self.log = open(os.path.join(root, "openai.log"), "ab")
        self.proc = subprocess.Popen([sys.executable, script, "--port", "0", "--port-file",
                                      self.port_file], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(self.port_file) and open(self.port_file).read().strip():
                self.port = int(open(self.port_file).read().strip())
                return
            time.sleep(0.05)
        raise AssertionError("the OpenAI-compatible test server did not start")

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def control(self, body):
        req = urllib.request.Request(self.url() + "/control", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def stats(self):
        with urllib.request.urlopen(self.url() + "/control/stats", timeout=10) as r:
            return json.loads(r.read())

    def close(self):
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------- fixtures

def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"{' '.join(cmd)} failed: {p.stderr[-800:]}")


def render_png(path, text, size="1000x160", pointsize=44):
    """Black text on white, the way a screen shows it."""
    run(["convert", "-size", size, "xc:white", "-font", "DejaVu-Sans", "-pointsize",
         str(pointsize), "-fill", "black", "-annotate", "+24+100", text,
         # one pixel format for every frame: ffmpeg's concat needs them alike
         "-type", "TrueColor", "-depth", "8", "PNG24:" + path])


def make_clip(path, texts, seconds=3):
    """An MP4 (H.264) showing each text for a few seconds."""
    d = env.mkdtemp("clip-" + os.path.basename(path))
    lst = os.path.join(d, "list.txt")
    with open(lst, "w") as f:
        for i, t in enumerate(texts):
            png = os.path.join(d, f"f{i}.png")
            render_png(png, t, size="640x360", pointsize=40)
            f.write(f"file '{png}'\nduration {seconds}\n")
        f.write(f"file '{png}'\n")
    run(["ffmpeg", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", lst,
         "-vf", "fps=5,format=yuv420p", "-c:v", "libx264", path])


def upload(c, data):
    r = c.post("/v1/blobs", body=data, headers=PNG_CT)
    assert_status(r, 200, 201)
    return r.json["sha256"]


def post_one(c, ev):
    r = c.post_events([ev])
    assert_status(r, 200, 201, 207)
    res = results_of(r)[0]
    check(res.get("status") in ("stored", "duplicate"), f"event not stored: {res}")
    return res["id"]


def jobs(c):
    r = c.get("/v1/jobs")
    assert_status(r, 200)
    return r.json


def wait_idle(c, timeout=120, what="the pipeline"):
    """Until nothing is pending or running for this user."""
    deadline = time.time() + timeout
    j = None
    while time.time() < deadline:
        j = jobs(c)
        if j["pending"] == 0 and j["running"] == 0:
            return j
        time.sleep(0.2)
    raise AssertionError(f"{what} did not finish in {timeout}s: {json.dumps(j)[:1500]}")


def events(c, stream):
    return c.list_all("/v1/events", {"stream": stream})[0]


def derived_of(c, stream, source_event):
    return [e for e in events(c, stream) if e["payload"].get("source_event") == source_event]


def search(c, q, **params):
    params["q"] = q
    r = c.get("/v1/search", params=params)
    assert_status(r, 200)
    return r.json


# ---------------------------------------------------------------- setup

def setup():
    for tool in ("convert", "ffmpeg"):
        check(shutil.which(tool), f"{tool} is missing (scripts/setup-debian.sh installs it)")
    check(os.path.exists(SPEECH), f"{SPEECH} is missing (alsa-utils)")
    S["models"] = ModelServer(env.root)
    url = S["models"].url()
    settings = {"AM_WORKERS": 2, "AM_JOB_BACKOFF_MS": 100, "AM_JOB_BACKOFF_MAX_MS": 400,
                "AM_JOB_MAX_ATTEMPTS": 4, "AM_CHAT_URL": url, "AM_CHAT_MODEL": "test-chat",
                "AM_VISION_URL": url, "AM_VISION_MODEL": "test-vision",
                "AM_MODEL_TIMEOUT_MS": 1500, "AM_MODEL_RETRIES": 1,
                "AM_VIDEO_FRAME_INTERVAL_S": 60}
    d = env.daemon("pipe", settings=settings)
    d.user_add("pia")
    d.user_add("other")
    S["d"] = d
    S["c"] = d.client(d.token("pia"))
    S["other"] = d.client(d.token("other"))
    d.start()


# ---------------------------------------------------------------- cases

@case
def screenshot_is_ocrd_and_found_by_search():
    c = S["c"]
    png = os.path.join(env.root, "shot.png")
    render_png(png, "Quarterly budget review with Annika")
    sha = upload(c, open(png, "rb").read())
    eid = post_one(c, {"stream": "image.screenshot", "ts": T0, "source": "laptop",
                       "blob": sha, "payload": {"app": "slides"}})
    wait_idle(c, what="OCR of the screenshot")
    ocr = derived_of(c, "image.ocr", eid)
    eq(len(ocr), 1, "one image.ocr event for the screenshot")
    o = ocr[0]
    text = o["payload"]["text"].lower()
    for w in ("quarterly", "budget", "review"):
        check(w in text, f"OCR text has '{w}': {o['payload']['text']!r}")
    check(o.get("blob") == sha, "the OCR event links the image")
    eq(o["ts_ns"], T0 * 10**9, "OCR event at the screenshot's time")
    words = o["payload"].get("words") or []
    check(any(x["text"].lower().startswith("budget") for x in words),
          f"word boxes include 'budget': {words[:6]}")
    check(all(x["w"] > 0 and x["h"] > 0 for x in words), "word boxes have sizes")
    hits = search(c, "budget")["hits"]
    check(hits, "search for a word on the screenshot finds it")
    h = hits[0]
    eq(h["stream"], "image.ocr", "best hit's stream")
    eq(h["id"], o["id"], "best hit is the OCR event")
    check("<mark>" in h["snippet"] and "budget" in h["snippet"].lower(),
          f"snippet highlights the word: {h['snippet']!r}")
    eq(h.get("blob"), f"/v1/blobs/{sha}", "hit links the image")
    eq(h.get("source_event"), eid, "hit names the screenshot it came from")
    check(any(x["id"] == eid for x in h.get("context", [])),
          f"context around the hit includes the screenshot: {h.get('context')}")
    S["shot"] = (eid, o["id"], sha)


@case
def captions_come_from_the_vision_model():
    c = S["c"]
    eid, _, _ = S["shot"]
    cap = derived_of(c, "image.caption", eid)
    eq(len(cap), 1, "one caption for the screenshot")
    check(cap[0]["payload"]["text"].strip(), "caption has text")
    eq(cap[0]["payload"].get("model"), "test-vision", "caption names its model")


@case
def rerun_is_absorbed_by_derived_keys():
    """Submitting the same derived event again (as a rerun after a crash would) is a
    duplicate of the first, by its key."""
    c = S["c"]
    eid, ocr_id, sha = S["shot"]
    o = [e for e in events(c, "image.ocr") if e["id"] == ocr_id][0]
    r = c.post_events([{k: o[k] for k in ("stream", "ts_ns", "source", "payload", "key", "blob")}])
    res = results_of(r)[0]
    eq(res["status"], "duplicate", "the same derived key again")
    eq(res["id"], ocr_id, "duplicate names the original")
    eq(len(derived_of(c, "image.ocr", eid)), 1, "still one OCR event")


@case
def speech_is_transcribed_and_found():
    c = S["c"]
    sha = upload(c, open(SPEECH, "rb").read())
    eid = post_one(c, {"stream": "audio.chunk", "ts": T0 + 60, "ts_end": T0 + 62,
                       "source": "phone", "blob": sha, "payload": {"codec": "wav"}})
    wait_idle(c, what="speech-to-text")
    tr = derived_of(c, "audio.transcript", eid)
    check(len(tr) >= 1, "a transcript for the recording")
    text = " ".join(t["payload"]["text"] for t in tr).lower()
    check("front" in text or "center" in text, f"transcript has the spoken words: {text!r}")
    t = tr[0]
    eq(t["payload"].get("backend"), "pocketsphinx", "backend named")
    check(t["ts_ns"] >= (T0 + 60) * 10**9 and t.get("ts_end_ns", 0) > t["ts_ns"],
          "transcript is a span inside the recording")
    check(0 <= t["payload"]["offset"] < 3, "offset into the recording")
    word = "front" if "front" in text else "center"
    hits = search(c, word, streams="audio.transcript")["hits"]
    check(any(h["id"] == t["id"] for h in hits), f"search '{word}' finds the transcript")
    check(all(h["stream"] == "audio.transcript" for h in hits), "streams filter holds")


@case
def silence_is_not_transcribed():
    c = S["c"]
    wav = os.path.join(env.root, "silence.wav")
    run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "anullsrc=r=16000:cl=mono", "-t", "3", wav])
    sha = upload(c, open(wav, "rb").read())
    eid = post_one(c, {"stream": "audio.chunk", "ts": T0 + 90, "source": "phone",
                       "blob": sha, "payload": {}})
    wait_idle(c)
    eq(derived_of(c, "audio.transcript", eid), [], "no transcript of silence")
    check(jobs(c)["kinds"]["stt"]["dead"] == 0, "silence is not an error")


@case
def video_key_frames_are_ocrd():
    c = S["c"]
    mp4 = os.path.join(env.root, "clip.mp4")
    make_clip(mp4, ["ALPHA invoice overdue", "BRAVO receipt printed"])
    sha = upload(c, open(mp4, "rb").read())
    eid = post_one(c, {"stream": "video.clip", "ts": T0 + 120, "ts_end": T0 + 126,
                       "source": "phone", "blob": sha, "payload": {"duration": 6}})
    wait_idle(c, what="key frames and their OCR")
    frames = derived_of(c, "video.frame", eid)
    offs = sorted(f["payload"]["offset"] for f in frames)
    # the interval is 60 s here, so the second frame can only come from the scene change
    eq(len(frames), 2, f"one key frame per scene (offsets {offs})")
    check(offs[0] < 0.5 and 2.5 <= offs[1] <= 3.5, f"frames where the scenes start: {offs}")
    for f in frames:
        eq(f["ts_ns"], (T0 + 120) * 10**9 + round(f["payload"]["offset"] * 1e9), "frame time",)
        check(f.get("blob"), "frame has its image")
    texts = " ".join(o["payload"]["text"] for f in frames
                     for o in derived_of(c, "image.ocr", f["id"])).lower()
    check("invoice" in texts and "receipt" in texts, f"both scenes OCR'd: {texts!r}")
    hits = search(c, "receipt")["hits"]
    check(hits and hits[0]["stream"] == "image.ocr", f"search finds a frame's text: {hits[:2]}")
    src = hits[0]["source_event"]
    check(src in [f["id"] for f in frames], "the hit leads back to its frame")


@case
def text_gets_extraction_summary_and_vector():
    c = S["c"]
    msg = ("Annika: the venue deposit of $450.00 is due 2026-12-03, details at "
           "https://example.org/venue and questions to annika@example.org or +44 20 7946 0958")
    eid = post_one(c, {"stream": "comms.message", "ts": T0 + 300, "source": "phone",
                       "payload": {"text": msg, "from": "Annika", "app": "signal"}})
    wait_idle(c, what="analysis and embedding")
    an = derived_of(c, "derived.analysis", eid)
    eq(len(an), 1, "one analysis of the message")
    p = an[0]["payload"]
    check("https://example.org/venue" in json.dumps(p.get("urls")), f"URL found: {p}")
    check("annika@example.org" in json.dumps(p.get("emails")), f"email found: {p}")
    check(any(abs(a.get("value", 0) - 450) < 1e-9 for a in p.get("amounts", [])),
          f"amount found: {p.get('amounts')}")
    check(any(d.get("iso") == "2026-12-03" for d in p.get("dates", [])), f"date: {p.get('dates')}")
    check(p.get("phones"), f"phone found: {p}")
    check(isinstance(p.get("summary"), str) and p["summary"], "summary from the chat model")
    check(isinstance(p.get("entities"), dict) and "people" in p["entities"], f"entities: {p}")
    # the vector half alone finds it by words it shares
    hits = search(c, "deposit for the venue", mode="vector")["hits"]
    check(any(h["id"] == eid for h in hits), f"vector search finds the message: {hits[:3]}")
    check(all("vector_rank" in h for h in hits), "vector mode hits carry their rank")
    j = jobs(c)
    check(j["kinds"]["embed"]["done"] >= 1 and j["kinds"]["analyze"]["done"] >= 1,
          f"jobs counted: {j['kinds']}")
    S["msg"] = eid


@case
def diacritics_are_folded_and_prefixes_match():
    c = S["c"]
    eid = post_one(c, {"stream": "comms.message", "ts": T0 + 400, "source": "phone",
                       "payload": {"text": "Rendez-vous au café de la Gare, très bientôt"}})
    hits = search(c, "cafe", mode="text")["hits"]
    check(any(h["id"] == eid for h in hits), "'cafe' finds 'café'")
    hits = search(c, "rendez", mode="text")["hits"]
    check(any(h["id"] == eid for h in hits), "a prefix finds the word")
    hits = search(c, 'tres" OR "NEAR(', mode="text")["hits"]  # FTS5 syntax is just words
    check(any(h["id"] == eid for h in hits), "operators typed by a person are words")
    wait_idle(c)


@case
def failing_backend_is_retried():
    c, m = S["c"], S["models"]
    before = m.stats()
    m.control({"fail_next": 3, "status": 500})
    eid = post_one(c, {"stream": "comms.email", "ts": T0 + 500, "source": "imap",
                       "payload": {"subject": "Invoice 7781", "body": "Please pay the invoice "
                                   "for the catering by Friday. Thanks, Marta"}})
    wait_idle(c, what="analysis behind a failing backend")
    eq(len(derived_of(c, "derived.analysis", eid)), 1, "analysed after the failures")
    after = m.stats()
    chat = lambda s: s["requests"]["chat"]
    check(chat(after) - chat(before) >= 4, f"3 failures then a success: {before} -> {after}")


@case
def backend_timeout_is_retried():
    c, m = S["c"], S["models"]
    m.control({"delay_next": 1, "seconds": 3})  # > AM_MODEL_TIMEOUT_MS
    eid = post_one(c, {"stream": "comms.message", "ts": T0 + 600, "source": "phone",
                       "payload": {"text": "Dinner with Jonas and Priya at the Lighthouse on Sunday"}})
    wait_idle(c, what="analysis behind a stalling backend")
    an = derived_of(c, "derived.analysis", eid)
    eq(len(an), 1, "analysed after the timeout")
    check(an[0]["payload"].get("summary"), "with the model's summary")


@case
def invalid_json_from_the_model_is_retried():
    c, m = S["c"], S["models"]
    m.control({"invalid_json_next": 1})
    eid = post_one(c, {"stream": "comms.message", "ts": T0 + 650, "source": "phone",
                       "payload": {"text": "Remember to renew the passport before the trip to Lisbon"}})
    wait_idle(c)
    an = derived_of(c, "derived.analysis", eid)
    eq(len(an), 1, "analysed after an answer that was not JSON")
    check(an[0]["payload"].get("summary"), "with a valid summary")


@case
def poisoned_input_goes_to_dead_letters():
    c, d = S["c"], S["d"]
    sha = upload(c, b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
    eid = post_one(c, {"stream": "image.screenshot", "ts": T0 + 700, "source": "laptop",
                       "blob": sha, "payload": {}})
    wait_idle(c)
    j = jobs(c)
    eq(j["kinds"]["ocr"]["dead"], 1, "the OCR job is dead")
    dl = [x for x in j["dead_letters"] if x["event_id"] == eid and x["kind"] == "ocr"]
    eq(len(dl), 1, "dead letter names the event")
    check("image" in dl[0]["error"] and len(dl[0]["error"]) > 20,
          f"clear error: {dl[0]['error']!r}")
    p = d.am("--url", d.url(), "--token", c.token, "jobs", "status")
    check("dead letters" in p.stdout and str(eid) in p.stdout, f"am jobs status: {p.stdout}")
    p = d.am("--url", d.url(), "--token", c.token, "jobs", "retry", "--dead", "--kind", "ocr")
    check("1 dead job" in p.stdout, f"am jobs retry --dead: {p.stdout}")
    wait_idle(c)
    eq(jobs(c)["kinds"]["ocr"]["dead"], 1, "dead again: the input is still bad")
    eq(derived_of(c, "image.ocr", eid), [], "no OCR event from garbage")
    check(d.alive(), "amd survived the poisoned image")


@case
def search_is_per_user_and_checks_its_input():
    c, o = S["c"], S["other"]
    eq(search(o, "budget")["hits"], [], "another user finds nothing of pia's")
    check(search(c, "budget")["hits"], "pia finds hers")
    for params in ({}, {"q": ""}, {"q": "   ...  "}, {"q": "x", "mode": "fuzzy"},
                   {"q": "x", "limit": "0"}, {"q": "x", "from": "yesterday"},
                   {"q": "x", "streams": "Not A Stream"}):
        assert_problem(c.get("/v1/search", params=params), 400)
    ocr_id = S["shot"][1]
    j = search(c, "budget", streams="comms.message")
    check(all(h["stream"] == "comms.message" for h in j["hits"]),
          f"streams filter keeps only messages: {j['hits'][:2]}")
    j = search(c, "budget", streams="image.ocr,audio.transcript")
    check(j["hits"] and j["hits"][0]["id"] == ocr_id, "a streams list keeps the OCR hit")
    j = search(c, "budget", **{"from": T0 + 1, "to": T0 + 10**6})
    check(all(h["id"] != ocr_id and h["ts_ns"] >= (T0 + 1) * 10**9 for h in j["hits"]),
          "time filter excludes the OCR hit")
    j = search(c, "budget", source="laptop")
    check(j["hits"], "source filter keeps it")
    p = S["d"].am("--url", S["d"].url(), "--token", c.token, "search", "budget")
    check("image.ocr" in p.stdout and "budget" in p.stdout.lower(), f"am search: {p.stdout}")
    assert_problem(c.post("/v1/search", body=b"{}"), 405)
    r = o.post("/v1/jobs/retry", params={"state": "dead"})
    assert_status(r, 200)
    eq(r.json["retried"], 0, "another user's retry touches none of pia's dead jobs")
    eq(jobs(o)["dead"], 0, "and sees none of them")


@case
def metrics_show_queues_and_latency():
    r = S["c"].get("/metrics", auth=False)
    assert_status(r, 200)
    t = r.text()
    for m in ('am_jobs{kind="ocr",state="pending"}', 'am_job_latency_seconds_bucket{kind="ocr"',
              'am_job_outcomes_total{kind="analyze",outcome="retry"}',
              "am_job_oldest_pending_seconds"):
        check(m in t, f"/metrics has {m}")


@case
def kill9_in_a_busy_queue_finishes_every_job_once():
    c, d = S["c"], S["d"]
    shots = []
    for i in range(30):
        png = os.path.join(env.root, f"busy{i}.png")
        render_png(png, f"Ticket number {1000 + i} closed", size="1600x300")
        shots.append(upload(c, open(png, "rb").read()))
    evs = [{"stream": "image.screenshot", "ts": T0 + 1000 + i, "source": "laptop",
            "blob": s, "payload": {}} for i, s in enumerate(shots)]
    evs += [{"stream": "comms.message", "ts": T0 + 2000 + i, "source": "phone",
             "payload": {"text": f"Order {i} ships to order{i}@example.org at 10:{i % 60:02d}"}}
            for i in range(400)]
    r = c.post_events(evs)
    ids = [x["id"] for x in results_of(r)]
    check(all(x["status"] == "stored" for x in results_of(r)), "all stored")
    time.sleep(0.3)
    mid = jobs(c)
    d.kill9()
    d.start()
    j = wait_idle(c, timeout=240, what="the queue after kill -9")
    check(mid["pending"] + mid["running"] > 0, f"the queue was busy when killed: {mid}")
    eq(j["kinds"]["ocr"]["dead"], 1, "only the poisoned image is dead")
    ocr = [e for e in events(c, "image.ocr") if e["payload"]["source_event"] in ids[:30]]
    eq(len(ocr), 30, "each screenshot OCR'd exactly once")
    eq(len({e["payload"]["source_event"] for e in ocr}), 30, "no duplicates")
    an = [e for e in events(c, "derived.analysis") if e["payload"]["source_event"] in ids[30:]]
    eq(len(an), 400, "each message analysed exactly once")
    eq(len({e["payload"]["source_event"] for e in an}), 400, "no duplicated analysis")
    hits = search(c, "ticket 1007")["hits"]
    check(hits and "1007" in hits[0]["snippet"], f"a restarted queue's work is searchable: {hits[:1]}")


@case
def model_server_backends_for_speech_and_embeddings():
    """A second amd that sends speech and embeddings to the model server; changing the
    embedding model re-embeds everything in the background."""
    m = S["models"]
    d = env.daemon("remote", settings={
        "AM_WORKERS": 2, "AM_STT_BACKEND": "openai", "AM_STT_URL": m.url(),
        "AM_STT_MODEL": "test-whisper", "AM_EMBED_URL": m.url(), "AM_EMBED_MODEL": "test-embed-a",
        "AM_EMBED_BATCH": 8, "AM_JOB_BACKOFF_MS": 100, "AM_MODEL_RETRIES": 1})
    d.user_add("rita")
    c = d.client(d.token("rita"))
    d.start()
    before = m.stats()["requests"]
    sha = upload(c, open(SPEECH, "rb").read())
    eid = post_one(c, {"stream": "audio.chunk", "ts": T0, "source": "phone", "blob": sha,
                       "payload": {}})
    msgs = [post_one(c, {"stream": "comms.message", "ts": T0 + 10 + i, "source": "phone",
                         "payload": {"text": t}})
            for i, t in enumerate(["the ferry to the island leaves at noon",
                                   "bring sunscreen and the blue towel",
                                   "quarterly tax forms are due", "ferry tickets booked",
                                   "call the plumber about the leak",
                                   "island picnic with the kids", "renew the library card",
                                   "dentist on tuesday", "ferry timetable changed",
                                   "pay the electricity bill"])]
    wait_idle(c, what="remote transcription and embeddings")
    tr = derived_of(c, "audio.transcript", eid)
    check(tr and "hello from the test server" in tr[0]["payload"]["text"],
          f"transcript from the server: {tr}")
    eq(tr[0]["payload"]["backend"], "openai", "backend named")
    after = m.stats()["requests"]
    check(after["transcriptions"] > before["transcriptions"], "the server transcribed it")
    # 11 texts (10 messages + the transcript) in batches of 8: at least 2 requests, far fewer than 11
    n_embed = after["embeddings"] - before["embeddings"]
    check(2 <= n_embed <= 6, f"embeddings were batched: {n_embed} requests")
    j = search(c, "ferry island", mode="vector")
    eq(j.get("model"), "test-embed-a", "search embeds the query with the same model")
    check(any(h["id"] in (msgs[0], msgs[3], msgs[5], msgs[8]) for h in j["hits"][:3]),
          f"vector hits from the server's embeddings: {j['hits'][:3]}")
    # a new model: every text event is embedded again, in the background; while the
    # backfill's first requests stall at the server, the old model's vectors keep serving
    d.stop()
    m.control({"delay_next": 2, "seconds": 5})
    d.settings["AM_EMBED_MODEL"] = "test-embed-b"
    d.start()
    j = search(c, "ferry island", mode="hybrid")
    eq(j.get("previous_model"), "test-embed-a", "the old model still serves")
    check(any("vector_rank" in h for h in j["hits"]), f"with vector hits: {j['hits'][:2]}")
    check(jobs(c)["kinds"]["embed"]["pending"] + jobs(c)["kinds"]["embed"]["running"] > 0,
          "the backfill is queued")
    wait_idle(c, what="re-embedding with the new model")
    eq(jobs(c)["kinds"]["embed"]["done"], 22, "11 texts embedded once per model")
    j = search(c, "ferry island", mode="vector")
    eq(j.get("model"), "test-embed-b", "search now uses the new model")
    check("previous_model" not in j, "and only it, once the backfill is done")
    check(j["hits"], "the new model's vectors serve")
    d.stop()


def teardown():
    if "models" in S:
        S["models"].close()


if __name__ == "__main__":
    T.main(setup, teardown=teardown, env=env, watchdog_s=800)
