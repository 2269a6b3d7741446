"""test_collect.py — am-collect, the X11 desktop collector, against a real Xvfb, real X
clients (xmessage; xprop plays the window manager's part by setting _NET_ACTIVE_WINDOW) and a
real amd: window spans with the right titles, screenshots only when the screen changed,
system readings, AFK spans, and a spool that survives AM being down and drains in order,
exactly once, even when it is sent twice."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import amtest as T  # noqa: E402
from amtest import case, check, eq  # noqa: E402

COLLECT = os.path.join(T.BIN_DIR, "am-collect")
env = T.Env(prefix="amcollect-")
S = {"procs": []}
AWAKE = ["--afk-after", "100000"]


# ---------------------------------------------------------------- X helpers

def start_xvfb():
    r, w = os.pipe()
    p = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "800x600x24",
                          "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(env.root, "xvfb.log"), "wb"))
    os.close(w)
    S["procs"].append(p)
    buf = b""
    deadline = time.monotonic() + 20
    while not buf.endswith(b"\n") and time.monotonic() < deadline:
        chunk = os.read(r, 16)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    check(buf.strip().isdigit(), f"Xvfb gave no display number: {buf!r}")
    return ":" + buf.strip().decode()


def xenv():
    return dict(T.clean_env(), DISPLAY=S["display"])


def window_id(title, timeout=30):  # a loaded CI machine can take seconds
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = subprocess.run(["xwininfo", "-name", title], env=xenv(), capture_output=True,
                           text=True)
        m = re.search(r"Window id: (0x[0-9a-f]+)", p.stdout)
        if m and "IsViewable" in p.stdout:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no window titled {title!r}")


def open_window(title, text="hello"):
    p = subprocess.Popen(["xmessage", "-title", title, "-geometry", "+%d+%d" % (
        20 * len(S["procs"]), 20 * len(S["procs"])), text], env=xenv(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    S["procs"].append(p)
    wid = window_id(title)
    return p, wid


def activate(wid):
    subprocess.run(["xprop", "-root", "-f", "_NET_ACTIVE_WINDOW", "32x", "-set",
                    "_NET_ACTIVE_WINDOW", wid], env=xenv(), check=True)


def set_title(wid, title):
    subprocess.run(["xprop", "-id", wid, "-f", "WM_NAME", "8s", "-set", "WM_NAME", title],
                   env=xenv(), check=True)


def x_request(data):
    """Sends one core request on a fresh connection to the X server (no auth: Xvfb)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/tmp/.X11-unix/X" + S["display"][1:])
    s.sendall(struct.pack("<BxHHHHxx", ord("l"), 11, 0, 0, 0))
    head = s.recv(8)
    check(head[:1] == b"\x01", f"X connection refused: {head!r}")
    _, _, _, more = struct.unpack("<BxHHH", head)
    left = more * 4
    while left > 0:
        left -= len(s.recv(left))
    s.sendall(data)
    s.sendall(struct.pack("<BxH", 43, 1))  # GetInputFocus: its reply says the first was done
    s.recv(32)
    s.close()


def user_input():
    """ForceScreenSaver(Reset): the server counts it as user input, so idle time restarts."""
    x_request(struct.pack("<BBH", 115, 0, 1))


# ---------------------------------------------------------------- collector helpers

def collect_args(spool, *extra):
    return [COLLECT, "--url", S["d"].url(), "--spool", spool, "--display", S["display"],
            "--source", "desk-test"] + list(extra)


def run_once(spool, *extra, timeout=60):
    p = subprocess.run(collect_args(spool, "--once", *extra), env=dict(
        xenv(), AM_TOKEN=S["token"]), capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, f"am-collect --once exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def start_collector(spool, *extra):
    log = open(os.path.join(env.root, "am-collect.log"), "ab")
    p = subprocess.Popen(collect_args(spool, "--interval", "0.1", *extra),
                         env=dict(xenv(), AM_TOKEN=S["token"]), stdout=log, stderr=log)
    S["procs"].append(p)
    return p


def stop_collector(p, timeout=60):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout)
    eq(rc, 0, "am-collect exit status after SIGTERM")


def spooled(spool):
    db = sqlite3.connect(spool)
    try:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        db.close()


def events(stream, source="desk-test"):
    evs, _ = S["c"].list_all("/v1/events", {"stream": stream, "source": source})
    return sorted(evs, key=lambda e: (e["ts_ns"], e["id"]))


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def new_spool(name):
    return os.path.join(env.root, name + ".db")


def setup():
    for tool in ("Xvfb", "xmessage", "xprop", "xwininfo"):
        if not shutil.which(tool):
            raise T.Skip(f"{tool} not installed")
    check(os.path.exists(COLLECT), f"no am-collect at {COLLECT}")
    S["display"] = start_xvfb()
    d = env.daemon("collect")
    d.user_add("dana")
    S["token"] = d.token("dana", scope="ingest,read")
    d.start()
    S["d"] = d
    S["c"] = d.client(S["token"])
    _, S["w1"] = open_window("AM test window one")
    activate(S["w1"])


def teardown():
    for p in reversed(S["procs"]):
        if p.poll() is None:
            p.kill()
            p.wait()


# ---------------------------------------------------------------- cases

@case
def once_sends_window_system_and_screenshot():
    spool = new_spool("once")
    run_once(spool, "--screenshots", "1", *AWAKE)
    win = events("desktop.window")
    check(win, "no desktop.window event")
    eq(win[-1]["payload"]["title"], "AM test window one", "window title")
    eq(win[-1]["payload"]["app"], "Xmessage", "window app (WM_CLASS class)")
    check(win[-1]["ts_end_ns"] >= win[-1]["ts_ns"], "window span ends after it starts")
    sysev = events("device.system")
    check(sysev and sysev[-1]["payload"].get("memory_used", 0) > 0,
          f"device.system with memory_used: {sysev}")
    check(sysev[-1]["payload"].get("disk_free", 0) > 0, "device.system with disk_free")
    shots = events("image.screenshot")
    eq(len(shots), 1, "screenshots")
    eq(shots[0]["payload"].get("width"), 800, "screenshot width")
    eq(shots[0]["payload"].get("height"), 600, "screenshot height")
    r = S["c"].get("/v1/blobs/" + shots[0]["blob"])
    T.assert_status(r, 200)
    check(r.body.startswith(b"\x89PNG\r\n\x1a\n"), "screenshot blob is a PNG")
    eq(T.sha256_hex(r.body), shots[0]["blob"], "blob hash")
    eq(spooled(spool), 0, "events left in the spool after a successful run")


@case
def screenshot_only_when_screen_changed():
    spool = new_spool("shots")
    before = len(events("image.screenshot"))
    p = start_collector(spool, "--screenshots", "0.2", *AWAKE)
    wait_for(lambda: len(events("image.screenshot")) == before + 1, what="first screenshot")
    time.sleep(1.5)  # about seven more chances to take one: the screen did not change
    eq(len(events("image.screenshot")), before + 1, "screenshots of an unchanged screen")
    _, wid = open_window("AM test window two", "a second window changes the screen")
    wait_for(lambda: len(events("image.screenshot")) == before + 2,
             what="a screenshot after the screen changed")
    stop_collector(p)
    shots = events("image.screenshot")[-2:]
    check(shots[0]["blob"] != shots[1]["blob"], "the two screenshots differ")
    S["w2"] = wid


@case
def title_changes_make_spans_in_order():
    spool = new_spool("spans")
    activate(S["w1"])
    p = start_collector(spool, *AWAKE)
    titles = ["span alpha", "span beta", "span gamma"]
    for t in titles:
        time.sleep(0.4)
        set_title(S["w1"], t)
    time.sleep(0.4)
    activate(S["w2"])
    time.sleep(0.4)
    stop_collector(p)
    win = [e for e in events("desktop.window") if e["ts_ns"] >= 0]
    got = [e["payload"]["title"] for e in win]
    i = got.index("span alpha")
    eq(got[i:i + 4], titles + ["AM test window two"], "window spans in order")
    for a, b in zip(win[i:i + 3], win[i + 1:i + 4]):
        eq(a["ts_end_ns"], b["ts_ns"], "one span ends where the next begins")
    eq(spooled(spool), 0, "spool after SIGTERM")
    set_title(S["w1"], "AM test window one")
    activate(S["w1"])


@case
def afk_spans_from_idle_time():
    spool = new_spool("afk")
    user_input()
    p = start_collector(spool, "--afk-after", "0.8")
    time.sleep(2.0)       # not-afk, then afk after 0.8 s without input
    user_input()          # back
    time.sleep(0.5)
    stop_collector(p)
    afk = [e for e in events("desktop.afk")]
    got = [e["payload"]["status"] for e in afk]
    check(got[-3:] == ["not-afk", "afk", "not-afk"], f"afk spans: {got}")
    a = afk[-2]
    span_s = (a["ts_end_ns"] - a["ts_ns"]) / 1e9
    check(0.5 < span_s < 2.5, f"the afk span lasts about 1.2 s: {span_s}")
    eq(afk[-3]["ts_end_ns"], a["ts_ns"], "afk begins where not-afk ends")
    win = events("desktop.window")
    check(any(e["ts_end_ns"] <= a["ts_ns"] + 1 for e in win[-2:]),
          "the window span was closed when AFK began")


@case
def spool_survives_am_down_and_drains_once_in_order():
    spool = new_spool("offline")
    d = S["d"]
    base_ids = {e["id"] for e in events("desktop.window")}
    d.stop()
    activate(S["w1"])
    p = start_collector(spool, "--screenshots", "0.3", *AWAKE)
    titles = [f"offline {i}" for i in range(6)]
    for t in titles:
        time.sleep(0.3)
        set_title(S["w1"], t)
    time.sleep(0.3)
    stop_collector(p)
    n = spooled(spool)
    check(n >= 6, f"events spooled while AM was down: {n}")
    set_title(S["w1"], "AM test window one")  # what --once below sees is not an offline span
    copy = new_spool("offline-copy")
    shutil.copy(spool, copy)
    d.start()
    run_once(spool, *AWAKE)
    eq(spooled(spool), 0, "spool after AM came back")
    win = [e for e in events("desktop.window") if e["id"] not in base_ids]
    got = [e["payload"]["title"] for e in win]
    for t in titles:
        eq(got.count(t), 1, f"spans titled {t!r}")
    order = [got.index(t) for t in titles]
    eq(order, sorted(order), "spooled spans in time order")
    ids = [e["id"] for e in win]
    eq(ids, sorted(ids), "spooled spans stored in the order they happened")
    shots = [e for e in events("image.screenshot")]
    r = S["c"].get("/v1/blobs/" + shots[-1]["blob"])
    T.assert_status(r, 200)
    # the same spool sent again (as after an answer lost on the way): nothing is stored twice
    total = S["c"].count({"source": "desk-test"})
    run_once(copy, "--system", "100000", *AWAKE)
    eq(spooled(copy), 0, "copy drained (its events answered duplicate)")
    after = S["c"].count({"source": "desk-test"})
    check(after <= total + 2, f"resending a drained spool stored {after - total} events")
    win2 = [e["payload"]["title"] for e in events("desktop.window")]
    for t in titles:
        eq(win2.count(t), 1, f"spans titled {t!r} after the resend")


@case
def bad_token_keeps_events_spooled():
    spool = new_spool("denied")
    p = subprocess.run(collect_args(spool, "--once", *AWAKE), env=dict(
        xenv(), AM_TOKEN="am_not-a-token"), capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, f"exit status: {p.stderr[-1000:]}")
    check(spooled(spool) >= 2, "events stay spooled when AM refuses the token")
    run_once(spool, *AWAKE)
    eq(spooled(spool), 0, "they go once the token is right")


@case
def battery_from_power_supply():
    ps = env.mkdtemp("power_supply")
    os.makedirs(os.path.join(ps, "BAT0"), exist_ok=True)
    for name, value in (("type", "Battery"), ("capacity", "73"), ("status", "Charging")):
        with open(os.path.join(ps, "BAT0", name), "w") as f:
            f.write(value + "\n")
    run_once(new_spool("battery"), "--power-supply", ps, *AWAKE)
    bat = events("device.battery")
    check(bat, "no device.battery event")
    eq(bat[-1]["payload"], {"level": 73, "charging": True}, "battery payload")


@case
def usage_errors():
    p = subprocess.run([COLLECT, "--url", "http://127.0.0.1:1"], env=T.clean_env(),
                       capture_output=True, text=True)
    eq(p.returncode, 2, "exit status without a token")
    check("token" in p.stderr, f"says the token is missing: {p.stderr}")
    p = subprocess.run([COLLECT, "--token", "x", "--interval", "soon"], env=T.clean_env(),
                       capture_output=True, text=True)
    eq(p.returncode, 2, "exit status for a bad --interval")


if __name__ == "__main__":
    T.main(setup, teardown, env)
