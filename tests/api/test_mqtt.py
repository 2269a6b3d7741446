"""test_mqtt.py — the MQTT door against a real Mosquitto broker and a real amd: AM events on
am/<user>/<stream> (object, array, NDJSON), OwnTracks on owntracks/<user>/<device>, bad
messages dropped, redelivery deduplicated, QoS 1 messages published while amd is down
delivered after it starts (persistent session), and reconnection after the broker restarts."""

import json
import os
import re
import shutil
import subprocess
import time

import amtest as T
from amtest import case, check, eq

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"

env = T.Env()
S = {}

T0 = 1795597200  # 2026-11-25T09:00:00Z
NS = 10**9


class Broker:
    """One mosquitto on a loopback port, no persistence (a restart forgets every session)."""

    def __init__(self, root):
        self.port = T.free_port()
        self.conf = os.path.join(root, "mosquitto.conf")
        self.log = os.path.join(root, "mosquitto.log")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\n")
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, f"mosquitto exited: {self.tail()}")
            try:
                import socket
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def tail(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return "(no log)"


def pub(topic, payload, qos=1):
    """mosquitto_pub -q 1 (the payload on stdin, bytes as they are): returns once the
    broker has the message."""
    if isinstance(payload, bytes):
        data = payload
    else:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    p = subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(S["broker"].port),
                        "-q", str(qos), "-i", "amtest-pub", "-t", topic, "-s"],
                       input=data, capture_output=True, timeout=20)
    check(p.returncode == 0, f"mosquitto_pub {topic}: {p.stderr!r}")


def events(client, since=None, until=None, **params):
    """GET /v1/events; since/until in ns, as epoch seconds from (inclusive) to (exclusive)."""
    if since is not None:
        params["from"] = str(since // NS)
    if until is not None:
        params["to"] = str(-(-until // NS))
    got, _ = client.list_all("/v1/events", params)
    return got


def wait_for(fn, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


_marks = [0]


def barrier(user="alice"):
    """Messages are handled in order on one connection: once a fresh marker event is
    stored, everything published before it has been handled."""
    _marks[0] += 1
    ts = T0 + 100000 + _marks[0]
    pub(f"am/{user}/health.heart_rate", {"ts": ts, "payload": {"bpm": 42}})
    c = S[user]

    def seen():
        got = events(c, stream="health.heart_rate", since=ts * NS, until=ts * NS + 1)
        return got
    wait_for(seen, f"marker {ts} of {user}")


def metric(name, label):
    r = S["alice"].get("/metrics")
    T.assert_status(r, 200)
    m = re.search(rf'^{name}\{{outcome="{label}"\}} (\d+)$', r.text(), re.M)
    check(m, f"{name}{{outcome={label}}} in /metrics")
    return int(m.group(1))


def setup():
    b = Broker(env.root)
    b.start()
    S["broker"] = b
    d = env.daemon("mqtt", settings={"AM_MQTT_URL": f"mqtt://127.0.0.1:{b.port}",
                                      "AM_MQTT_CLIENT_ID": "amd-test",
                                      # the app sends transitions on owntracks/<u>/<d>/event
                                      "AM_MQTT_TOPICS": "am/+/+,owntracks/#"})
    for u in ("alice", "bob"):
        d.user_add(u)
    S["d"] = d
    S["alice"] = d.client(d.token("alice", "ingest,read"))
    S["bob"] = d.client(d.token("bob", "ingest,read"))
    d.start()
    # The first subscription makes the session: markers until one arrives.
    deadline = time.monotonic() + 30
    while True:
        try:
            barrier()
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def teardown():
    try:
        eq(S["d"].stop(), 0, "amd exit status on SIGTERM (a sanitizer report makes it fail)")
    finally:
        S["broker"].stop()


OT_LOCATION = {"_type": "location", "tid": "ph", "lat": 52.5200, "lon": 13.4050, "tst": T0,
               "acc": 12, "alt": 34, "vac": 3, "vel": 18, "cog": 90, "batt": 80, "bs": 1,
               "conn": "w", "t": "u", "topic": "owntracks/alice/phone"}


@case
def owntracks_location():
    """An OwnTracks location becomes location.gps (vel km/h -> m/s) and device.battery."""
    pub("owntracks/alice/phone", OT_LOCATION)
    c = S["alice"]
    got = wait_for(lambda: events(c, stream="location.gps", since=T0 * NS, until=T0 * NS + 1),
                   "the OwnTracks fix")
    eq(len(got), 1, "fixes")
    p = got[0]["payload"]
    eq((p["lat"], p["lon"]), (52.52, 13.405), "lat/lon")
    check(abs(p["speed"] - 5.0) < 1e-9, f"speed 18 km/h = 5 m/s, got {p['speed']}")
    eq(p["accuracy"], 12, "accuracy")
    eq(got[0]["source"], "owntracks/phone", "source from the topic's device")
    bat = wait_for(lambda: events(c, stream="device.battery", since=T0 * NS, until=T0 * NS + 1),
                   "the battery reading")
    eq(bat[0]["payload"]["level"], 80, "battery level")
    eq(bat[0]["payload"].get("charging"), False, "bs 1 = unplugged")


@case
def owntracks_redelivery_is_deduplicated():
    """The same message again (a redelivery, or retained and sent on resubscribe) is a
    duplicate: no second event."""
    c = S["alice"]
    before = metric("am_mqtt_messages_total", "stored")
    pub("owntracks/alice/phone", OT_LOCATION)
    pub("owntracks/alice/phone", dict(OT_LOCATION, batt=79))  # same fix, other extras
    barrier()
    eq(len(events(c, stream="location.gps", since=T0 * NS, until=T0 * NS + 1)), 1, "fixes")
    eq(len(events(c, stream="device.battery", since=T0 * NS, until=T0 * NS + 1)), 1, "battery")
    check(metric("am_mqtt_messages_total", "stored") >= before + 2, "stored (as duplicates)")


@case
def owntracks_transition_and_lwt():
    """A transition on .../event is a location.place arrival; lwt and info carry nothing."""
    tr = {"_type": "transition", "tid": "ph", "event": "enter", "desc": "Office", "rid": "r1",
          "lat": 52.5, "lon": 13.4, "acc": 10, "t": "c", "tst": T0 + 60, "wtst": T0 - 999}
    pub("owntracks/alice/phone/event", tr)
    pub("owntracks/alice/phone", {"_type": "lwt", "tst": T0 + 61})
    pub("owntracks/alice/phone/info", {"_type": "card", "name": "Alice"})
    barrier()
    got = events(S["alice"], stream="location.place", since=(T0 + 60) * NS,
                 until=(T0 + 60) * NS + 1)
    eq(len(got), 1, "transitions")
    eq(got[0]["payload"]["event"], "arrival", "enter -> arrival")
    eq(got[0]["payload"]["name"], "Office", "region name")


@case
def am_event_with_stream_from_topic():
    """am/<user>/<stream>: an event without "stream" takes the topic's."""
    ts = T0 + 1000
    pub("am/alice/health.heart_rate", {"ts": ts, "payload": {"bpm": 61}})
    got = wait_for(lambda: events(S["alice"], stream="health.heart_rate", since=ts * NS,
                                  until=ts * NS + 1), "the heart-rate event")
    eq(len(got), 1, "events")
    eq(got[0]["payload"], {"bpm": 61}, "payload")
    eq(got[0]["stream"], "health.heart_rate", "stream")


@case
def am_array_and_ndjson():
    """An array and NDJSON each store every event; an event's own stream wins."""
    ts = T0 + 2000
    pub("am/alice/health.heart_rate",
        [{"ts": ts, "payload": {"bpm": 70}}, {"ts": ts + 1, "payload": {"bpm": 71}},
         T.gps(ts + 2, lat=1.5, lon=2.5)])
    nd = "\n".join(json.dumps({"ts": ts + 10 + i, "payload": {"bpm": 80 + i}}) for i in range(3))
    pub("am/alice/health.heart_rate", nd + "\n")
    barrier()
    c = S["alice"]
    hrs = events(c, stream="health.heart_rate", since=ts * NS, until=(ts + 20) * NS)
    eq(sorted(e["payload"]["bpm"] for e in hrs), [70, 71, 80, 81, 82], "bpm values")
    g = events(c, stream="location.gps", since=(ts + 2) * NS, until=(ts + 2) * NS + 1)
    eq([(e["payload"]["lat"], e["payload"]["lon"]) for e in g], [(1.5, 2.5)], "the gps item")


@case
def bad_messages_are_dropped():
    """Malformed JSON, an invalid event, an unknown user and a foreign topic are dropped
    (and counted); amd carries on and bob's data is his own."""
    before = metric("am_mqtt_messages_total", "rejected")
    ts = T0 + 3000
    pub("am/alice/health.heart_rate", "{not json")
    pub("am/alice/health.heart_rate", b"\x00\xff garbage")
    pub("am/nobody/health.heart_rate", {"ts": ts, "payload": {"bpm": 99}})
    pub("owntracks/nobody/phone", dict(OT_LOCATION, tst=ts))
    pub("am/alice/health.heart_rate", {"ts": ts + 1, "payload": {"bpm": "fast"}})
    pub("am/bob/health.heart_rate", {"ts": ts + 2, "payload": {"bpm": 50}})
    barrier()
    check(S["d"].alive(), "amd survived")
    eq(events(S["alice"], since=ts * NS, until=(ts + 3) * NS), [], "nothing for alice")
    got = events(S["bob"], since=ts * NS, until=(ts + 3) * NS)
    eq([e["payload"] for e in got], [{"bpm": 50}], "bob's event")
    check(metric("am_mqtt_messages_total", "rejected") >= before + 4,
          "rejected messages counted")
    check("no AM user 'nobody'" in S["d"].log_tail(200), "the unknown user is logged")


@case
def queued_while_down_then_delivered():
    """QoS 1 messages published while amd is stopped wait in its persistent session and
    are stored once it is back."""
    d = S["d"]
    eq(d.stop(), 0, "amd exit status on SIGTERM")
    ts = T0 + 4000
    for i in range(5):
        pub("am/alice/health.heart_rate", {"ts": ts + i, "payload": {"bpm": 90 + i}})
    pub("owntracks/alice/phone", dict(OT_LOCATION, tst=ts + 10))
    d.start()
    c = S["alice"]
    got = wait_for(lambda: (lambda g: g if len(g) == 5 else None)(
        events(c, stream="health.heart_rate", since=ts * NS, until=(ts + 5) * NS)),
        "the five queued events")
    eq(sorted(e["payload"]["bpm"] for e in got), [90, 91, 92, 93, 94], "bpm")
    wait_for(lambda: events(c, stream="location.gps", since=(ts + 10) * NS,
                            until=(ts + 10) * NS + 1), "the queued fix")


@case
def reconnects_after_broker_restart():
    """The broker goes away and comes back (without the session: persistence is off):
    amd reconnects, subscribes again and stores what is published then."""
    b = S["broker"]
    b.stop()
    time.sleep(1.5)
    check(S["d"].alive(), "amd survives the broker going away")
    b.start()
    ts = T0 + 5000
    deadline = time.monotonic() + 40
    c = S["alice"]
    while True:  # until amd has subscribed again, a message may find nobody
        pub("am/alice/health.heart_rate", {"ts": ts, "payload": {"bpm": 77}})
        if events(c, stream="health.heart_rate", since=ts * NS, until=ts * NS + 1):
            break
        check(time.monotonic() < deadline, "amd did not come back to the broker")
        time.sleep(0.5)
    eq(len(events(c, stream="health.heart_rate", since=ts * NS, until=ts * NS + 1)), 1,
       "one event however often it was sent")


if __name__ == "__main__":
    T.main(setup, teardown, env=env, watchdog_s=300)
