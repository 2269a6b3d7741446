"""test_ops.py — /healthz, /readyz, /metrics (validated by promtool), amd --help and
--check-config, AM_LISTEN/AM_DATA_DIR instead of flags, DIR/amd.url, graceful SIGTERM,
and that amd writes nothing outside its data directory."""

import os
import time
import re
import shutil
import subprocess

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem, hr, custom

env = T.Env()
S = {}
T0 = 1795597200
SETTINGS = ("data_dir", "listen", "max_body_bytes", "max_batch_events", "max_json_depth",
            "max_blob_bytes", "rate_limit_per_s", "rate_limit_burst")


def setup():
    d = env.daemon("ops")
    d.user_add("olga")
    S["d"] = d
    S["c"] = d.client(d.token("olga"))
    d.start()


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)(\s+\S+)?$', line)
        check(m is not None, f"metrics line does not parse: {line!r}")
        labels = {}
        if m.group(3):
            for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3)):
                labels[lm.group(1)] = lm.group(2)
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def events_counter(samples, outcome):
    """The value of the events-<outcome> counter, whatever its exact spelling:
    am_events_total{status="stored"}, am_events_stored_total, ..."""
    found = []
    for (name, labels), v in samples.items():
        if not name.startswith("am_") or "event" not in name or not name.endswith("_total"):
            continue
        lv = " ".join(v for _, v in labels)
        if outcome in name or outcome in lv:
            others = [o for o in ("stored", "duplicate", "rejected") if o != outcome]
            if any(o in name or o in lv for o in others):
                continue
            found.append(((name, labels), v))
    check(len(found) == 1, f"one counter of {outcome} events in /metrics: {found}")
    return found[0][1]


def get_metrics():
    r = S["c"].get("/metrics", auth=False)
    assert_status(r, 200)
    ct = r.header("Content-Type") or ""
    check(ct.startswith("text/plain"), f"/metrics Content-Type: {ct}")
    return r.text()


@case
def healthz_and_readyz():
    c = S["c"]
    r = c.get("/healthz", auth=False)
    assert_status(r, 200)
    eq(r.text().strip(), "ok", "/healthz body")
    r = c.get("/readyz", auth=False)
    assert_status(r, 200)
    eq(r.text().strip(), "ready", "/readyz body")
    # a garbage token does not matter on ops endpoints
    assert_status(c.get("/healthz", token="garbage"), 200)
    assert_problem(c.post("/healthz", b"x"), 405, "method-not-allowed")


@case
def metrics_count_and_promtool():
    c = S["c"]
    before = parse_metrics(get_metrics())
    s0 = events_counter(before, "stored")
    d0 = events_counter(before, "duplicate")
    r0 = events_counter(before, "rejected")
    r = c.post_events([hr(T0 + i, 60 + i, key=f"m-{i}") for i in range(7)])
    assert_status(r, 200)
    r = c.post_events([hr(T0, 60, key="m-0"), hr(T0, "x", key="m-bad"), hr(T0, 61, key="m-7")])
    assert_status(r, 207)
    c.post("/v1/blobs", b"metrics blob " * 100, ctype="application/octet-stream")
    c.get("/v1/events/999999")
    text = get_metrics()
    check(any(l.startswith("am_") for l in text.splitlines()), "a metric named am_*")
    after = parse_metrics(text)
    eq(events_counter(after, "stored") - s0, 8, "stored counter delta")
    eq(events_counter(after, "duplicate") - d0, 1, "duplicate counter delta")
    eq(events_counter(after, "rejected") - r0, 1, "rejected counter delta")
    names = {n for n, _ in after}
    check(any("request" in n for n in names), f"a requests counter: {sorted(names)}")
    by_code = {dict(l).get("code"): v for (n, l), v in after.items() if "request" in n}
    check(all(by_code.get(k, 0) >= 1 for k in ("200", "207", "404")),
          f"requests counted by code (200, 207 and 404 were answered): {by_code}")
    check(any(n.endswith("_bucket") for n in names), "a latency histogram")
    promtool = shutil.which("promtool")
    if not promtool:
        raise T.Skip("promtool not installed (Debian package prometheus)")
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0, f"promtool check metrics exited {p.returncode}:\n{p.stdout}\n"
          f"{p.stderr}\n--- metrics ---\n{text}")
    if p.stdout.strip() or p.stderr.strip():
        print(f"#   promtool: {(p.stdout + p.stderr).strip()[:500]}")


@case
def amd_help_lists_settings():
    p = subprocess.run([T.AMD, "--help"], capture_output=True, text=True, timeout=30,
                       env=T.clean_env())
    eq(p.returncode, 0, f"amd --help exit status (stderr {p.stderr!r})")
    out = p.stdout + p.stderr
    for s in SETTINGS:
        check(s in out or s.replace("_", "-") in out, f"amd --help mentions {s}:\n{out}")


@case
def amd_check_config_prints_effective_values():
    tmp = env.mkdtemp("checkcfg")
    data = os.path.join(tmp, "data-never-created")
    p = subprocess.run([T.AMD, "--check-config", "--data-dir", data, "--listen", "127.0.0.1:9"],
                       capture_output=True, text=True, timeout=30,
                       env=T.clean_env({"AM_MAX_BATCH_EVENTS": "123", "AM_RATE_LIMIT_PER_S": "77"}),
                       cwd=tmp)
    eq(p.returncode, 0, f"amd --check-config exit status (stderr {p.stderr!r})")
    out = p.stdout
    for want in ("127.0.0.1:9", data, "123", "77"):
        check(want in out, f"--check-config shows {want!r}:\n{out}")
    check(re.search(r"max_batch_events\W+123", out) or re.search(r"max-batch-events\W+123", out),
          f"max_batch_events = 123 from the environment:\n{out}")
    # a command-line flag beats the environment
    p = subprocess.run([T.AMD, "--check-config", "--max-batch-events", "456"], capture_output=True,
                       text=True, timeout=30, env=T.clean_env({"AM_MAX_BATCH_EVENTS": "123"}),
                       cwd=tmp)
    eq(p.returncode, 0, "exit status")
    check(re.search(r"max.batch.events\W+456", p.stdout), f"flag beats env:\n{p.stdout}")
    # a bad value is refused
    p = subprocess.run([T.AMD, "--check-config"], capture_output=True, text=True, timeout=30,
                       env=T.clean_env({"AM_MAX_BATCH_EVENTS": "lots"}), cwd=tmp)
    check(p.returncode != 0, f"AM_MAX_BATCH_EVENTS=lots accepted:\n{p.stdout}")
    check(not os.path.exists(data), "--check-config created the data directory")
    eq(sorted(os.listdir(tmp)), [], "--check-config wrote into its cwd")


@case
def env_vars_instead_of_flags_and_nothing_written_outside():
    cwd = env.mkdtemp("empty-cwd")
    home = env.mkdtemp("empty-home")
    tmpdir = env.mkdtemp("empty-tmp")
    data = os.path.join(env.root, "envdata", "nested")  # amd creates it
    d = env.daemon("envd", data_dir=os.path.join(env.root, "envdata-unused"), use_flags=False,
                   cwd=cwd, home=home, extra_env={"TMPDIR": tmpdir})
    os.rmdir(d.data_dir)
    d.data_dir = data
    d.start()
    try:
        check(os.path.isdir(data), "AM_DATA_DIR created")
        # amd writes amd.url just after it starts answering: give it that moment
        deadline = time.time() + 5
        while not os.path.exists(os.path.join(data, "amd.url")) and time.time() < deadline:
            time.sleep(0.01)
        with open(os.path.join(data, "amd.url")) as f:
            url = f.read().strip()
        eq(url, f"http://127.0.0.1:{d.port}", "DIR/amd.url")
        d.user_add("envuser")
        tok = d.token("envuser")
        c = d.client(tok)
        r = c.post_events([custom("custom.env", T0 + i, {"i": i}, key=f"env-{i}") for i in range(5)])
        assert_status(r, 200)
        r = c.post("/v1/blobs", os.urandom(70000), ctype="application/octet-stream")
        assert_status(r, 201)
        c.post("/v1/blobs", os.urandom(100), ctype="application/octet-stream",
               params={"sha256": "0" * 64})
        # the CLI finds amd through DIR/amd.url (no --url)
        p = d.am("events", "--json", "--stream", "custom.env", env={"AM_TOKEN": tok}, cwd=cwd)
        check("env-4" in p.stdout, f"am events via amd.url: {p.stdout[:300]}")
        eq(sorted(os.listdir(cwd)), [], "files written into amd's cwd (and am's)")
        rc = d.stop()
        eq(rc, 0, "amd exit status after SIGTERM")
        eq(sorted(os.listdir(cwd)), [], "files written into amd's cwd")
        eq(sorted(os.listdir(home)), [], "files written into HOME")
        eq(sorted(os.listdir(tmpdir)), [], "files written into TMPDIR")
        # data survives a graceful restart
        d.start()
        got, _ = c.list_all(params={"stream": "custom.env"})
        eq(len(got), 5, "events after restart")
    finally:
        d.stop()


@case
def sigterm_is_graceful_and_data_persists():
    d, c = S["d"], S["c"]
    r = c.post_events([custom("custom.term", T0, {}, key="term-1")])
    assert_status(r, 200)
    rc = d.stop()
    eq(rc, 0, "exit status on SIGTERM")
    d.start()
    got, _ = c.list_all(params={"stream": "custom.term"})
    eq([e["key"] for e in got], ["term-1"], "event after restart")
    assert_status(c.get("/readyz", auth=False), 200)


@case
def unknown_routes_are_problem_json():
    c = S["c"]
    assert_problem(c.get("/", auth=False), 404, "not-found")
    assert_problem(c.get("/nope", auth=False), 404, "not-found")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
