"""test_clients.py — the location apps' own protocols against a real amd: OwnTracks HTTP
mode (POST /pub), Overland (POST /v1/overland) and the GPSLogger/Traccar/OsmAnd query style
(GET/POST /v1/gps), with the payloads those apps send (docs/api.md, "Location apps")."""

import base64
import json
import urllib.parse

import amtest as T
from amtest import case, check, eq, assert_status, assert_problem

env = T.Env()
S = {}

T0 = 1795597200  # 2026-11-25T09:00:00Z
NS = 10**9


def setup():
    d = env.daemon("clients")
    for u in ("alice", "bob", "ov", "gl"):
        d.user_add(u)
    S["d"] = d
    S["alice_tok"] = d.token("alice", "ingest,read")
    S["alice_ro"] = d.token("alice", "read")
    S["bob_tok"] = d.token("bob", "ingest,read")
    S["ov_tok"] = d.token("ov", "ingest,read")
    S["gl_tok"] = d.token("gl", "ingest,read")
    S["alice"] = d.client(S["alice_tok"])
    S["ov"] = d.client(S["ov_tok"])
    S["gl"] = d.client(S["gl_tok"])
    d.start()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def pub(body, user="alice", token=None, params=None, headers=None, auth=None):
    """POST /pub as the OwnTracks app does it in HTTP mode."""
    c = S["d"].client()
    h = {"Authorization": auth or basic(user, token or S["alice_tok"])}
    h.update(headers or {})
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return c.post("/pub", data, ctype="application/json", headers=h,
                  params=params if params is not None else {"u": user, "d": "phone"})


def events(client, **params):
    got, _ = client.list_all("/v1/events", params)
    return got


def approx(got, want, what, tol=1e-6):
    check(isinstance(got, (int, float)) and abs(got - want) <= tol,
          f"{what}: expected {want}, got {got!r}")


def accepted_array(r):
    assert_status(r, 200)
    eq((r.header("Content-Type") or "").split(";")[0], "application/json", "Content-Type")
    eq(r.json, [], "OwnTracks answer")


# ---------------------------------------------------------------- OwnTracks

OT_LOCATION = {"_type": "location", "acc": 10, "alt": 42, "batt": 85, "bs": 2, "conn": "w",
               "cog": 270, "lat": 52.520008, "lon": 13.404954, "tid": "JP", "tst": T0,
               "vac": 3, "vel": 36, "t": "u", "topic": "owntracks/alice/phone",
               "inregions": ["home"], "SSID": "mywifi", "BSSID": "aa:bb:cc:dd:ee:ff",
               "created_at": T0 + 1, "m": 1}


@case
def owntracks_location():
    r = pub(OT_LOCATION)
    accepted_array(r)
    c = S["alice"]
    gps = events(c, stream="location.gps", source="owntracks/phone")
    eq(len(gps), 1, "location.gps events")
    e = gps[0]
    eq(e["ts_ns"], T0 * NS, "ts_ns from tst")
    p = e["payload"]
    approx(p["lat"], 52.520008, "lat")
    approx(p["lon"], 13.404954, "lon")
    approx(p["speed"], 10.0, "speed: vel 36 km/h is 10 m/s")
    approx(p["accuracy"], 10, "accuracy from acc")
    approx(p["vertical_accuracy"], 3, "vertical_accuracy from vac")
    approx(p["alt"], 42, "alt")
    approx(p["bearing"], 270, "bearing from cog")
    approx(p["battery"], 85, "battery")
    eq(p.get("ssid"), "mywifi", "ssid")
    eq(p.get("inregions"), ["home"], "inregions")
    bat = events(c, stream="device.battery", source="owntracks/phone")
    eq(len(bat), 1, "device.battery events")
    approx(bat[0]["payload"]["level"], 85, "battery level")
    eq(bat[0]["payload"].get("charging"), True, "bs 2 is charging")
    eq(bat[0]["ts_ns"], T0 * NS, "battery ts")


@case
def owntracks_resend_is_deduplicated():
    c = S["alice"]
    before = len(events(c))
    again = dict(OT_LOCATION, created_at=T0 + 99, conn="m")  # the app resends after a failure
    accepted_array(pub(again))
    accepted_array(pub(OT_LOCATION))
    eq(len(events(c)), before, "events after resending the same fix twice")


@case
def owntracks_device_from_headers_or_tid():
    c = S["alice"]
    loc = dict(OT_LOCATION, tst=T0 + 10, batt=None)
    del loc["batt"]
    accepted_array(pub(loc, params={}, headers={"X-Limit-U": "alice", "X-Limit-D": "tablet"}))
    eq(len(events(c, source="owntracks/tablet")), 1, "events from X-Limit-D tablet")
    accepted_array(pub(dict(loc, tst=T0 + 11), params={}))
    eq(len(events(c, source="owntracks/JP", stream="location.gps")), 1,
       "without a device the tracker id names the source")
    eq(len(events(c, stream="device.battery", source="owntracks/tablet")), 0,
       "no battery event without batt")


@case
def owntracks_transition_enter_leave():
    c = S["alice"]
    enter = {"_type": "transition", "wtst": T0 - 86400, "lat": 52.5, "lon": 13.4,
             "tst": T0 + 100, "acc": 130, "tid": "JP", "event": "enter", "desc": "Home",
             "t": "c", "rid": "r-home"}
    leave = dict(enter, tst=T0 + 200, event="leave", acc=481)
    accepted_array(pub(enter))
    accepted_array(pub(leave))
    accepted_array(pub(leave))  # resent: not stored twice
    places = events(c, stream="location.place", source="owntracks/phone")
    eq([(e["ts_ns"], e["payload"]["event"], e["payload"]["name"]) for e in places],
       [((T0 + 100) * NS, "arrival", "Home"), ((T0 + 200) * NS, "departure", "Home")],
       "transitions as places")
    eq(places[0]["payload"].get("place_id"), "r-home", "place_id from rid")
    accepted_array(pub(dict(enter, event="wobble", tst=T0 + 300)))
    eq(len(events(c, stream="location.place")), 2, "an unknown transition event is dropped")


@case
def owntracks_waypoint():
    c = S["alice"]
    wp = {"_type": "waypoint", "desc": "Office", "lat": 52.51, "lon": 13.39, "rad": 150,
          "tst": T0 - 3600, "rid": "r-office"}
    accepted_array(pub(wp))
    accepted_array(pub({"_type": "waypoints", "waypoints": [dict(wp, desc="Gym", tst=T0 - 7200,
                                                                  rid="r-gym"), wp]}))
    got = events(c, stream="custom.owntracks_waypoint")
    eq(sorted(e["payload"]["name"] for e in got), ["Gym", "Office"], "waypoints stored once each")
    office = [e for e in got if e["payload"]["name"] == "Office"][0]
    approx(office["payload"]["radius"], 150, "radius")


@case
def owntracks_lwt_and_unknown_types_are_accepted_and_ignored():
    c = S["alice"]
    before = len(events(c))
    accepted_array(pub({"_type": "lwt", "tst": T0}))
    accepted_array(pub({"_type": "card", "name": "Alice", "face": "iVBORw0KGgo="}))
    accepted_array(pub({"_type": "something-new", "tst": T0, "lat": 1, "lon": 2}))
    accepted_array(pub({"_type": "location", "tst": T0 + 5, "lat": 123, "lon": 2}))
    eq(len(events(c)), before, "nothing stored for lwt, card, unknown _type or lat 123")


@case
def owntracks_auth():
    body = dict(OT_LOCATION, tst=T0 + 500)
    r = pub(body, user="bob")  # alice's token with bob's name
    assert_problem(r, 401, "unauthorized")
    check("Basic" in (r.header("WWW-Authenticate") or ""), "401 asks for Basic auth")
    assert_problem(pub(body, token="am_not_a_real_token_at_all_000000"), 401, "unauthorized")
    c = S["d"].client()
    assert_problem(c.post("/pub", json.dumps(body), ctype="application/json"), 401,
                   "unauthorized")
    assert_problem(pub(body, auth="Basic !!!"), 401, "unauthorized")
    assert_problem(pub(body, params={"u": "bob", "d": "phone"}, user="alice"), 401,
                   "unauthorized")
    assert_problem(pub(body, token=S["alice_ro"]), 403, "forbidden")
    eq(len(events(S["alice"], stream="location.gps", **{"from": str(T0 + 500)})), 0,
       "nothing stored by refused requests")
    # Bob's own token and name work, and his fix is his.
    accepted_array(pub(body, user="bob", token=S["bob_tok"]))
    eq(len(events(S["d"].client(S["bob_tok"]), stream="location.gps")), 1, "bob's fix")
    # A Bearer token works too.
    accepted_array(pub(dict(body, tst=T0 + 501), auth="Bearer " + S["alice_tok"]))
    eq(len(events(S["alice"], stream="location.gps", **{"from": str(T0 + 500)})), 1,
       "alice's fix sent with a Bearer token")
    assert_problem(S["d"].client().get("/pub"), 405)


@case
def owntracks_malformed():
    for bad in ("{not json", "[1, 2", "", "42", '{"_type": 7}'):
        assert_problem(pub(bad), 400, "malformed")


# ---------------------------------------------------------------- Overland

OVERLAND = {"locations": [
    {"type": "Feature",
     "geometry": {"type": "Point", "coordinates": [-122.030581, 37.331800]},
     "properties": {"timestamp": "2026-11-25T01:00:00-0800", "altitude": 80, "speed": 4,
                    "horizontal_accuracy": 30, "vertical_accuracy": 10,
                    "motion": ["driving", "stationary"], "pauses": False,
                    "activity": "other_navigation", "desired_accuracy": 100, "deferred": 1000,
                    "significant_change": "disabled", "locations_in_payload": 3,
                    "battery_state": "charging", "battery_level": 0.89, "device_id": "iphone",
                    "wifi": "cafe"}},
    {"type": "Feature",
     "geometry": {"type": "Point"},
     "properties": {"timestamp": "2026-11-25T09:00:30Z", "device_id": "iphone"}},
    {"type": "Feature",
     "geometry": {"type": "Point", "coordinates": [-122.031, 37.332]},
     "properties": {"timestamp": "2026-11-25T09:01:00Z", "altitude": 81, "speed": -1,
                    "horizontal_accuracy": 5, "vertical_accuracy": -1,
                    "battery_state": "unplugged", "battery_level": 0.5, "device_id": "iphone"}},
], "trip": {"mode": "car"}}


@case
def overland_batch_with_one_invalid():
    c = S["ov"]
    r = c.post("/v1/overland", OVERLAND)
    assert_status(r, 200)
    eq(r.body, b'{"result":"ok"}', "Overland's answer, exactly")
    gps = events(c, stream="location.gps", source="overland/iphone")
    eq([e["ts_ns"] for e in gps], [T0 * NS, (T0 + 60) * NS], "the two valid fixes")
    p = gps[0]["payload"]
    approx(p["lat"], 37.3318, "lat is coordinates[1]")
    approx(p["lon"], -122.030581, "lon is coordinates[0]")
    approx(p["speed"], 4, "speed m/s")
    approx(p["alt"], 80, "alt")
    approx(p["accuracy"], 30, "accuracy")
    approx(p["battery"], 89, "battery percent")
    eq(p.get("motion"), ["driving", "stationary"], "motion")
    check("speed" not in gps[1]["payload"], "speed -1 (unknown) is left out")
    bat = events(c, stream="device.battery", source="overland/iphone")
    eq([(round(e["payload"]["level"], 6), e["payload"].get("charging")) for e in bat],
       [(89, True), (50, False)], "battery events")
    # The app resends the batch when it missed the answer: stored once.
    r = c.post("/v1/overland", OVERLAND)
    eq(r.body, b'{"result":"ok"}', "answer to the resend")
    eq(len(events(c)), 4, "events after the resend")


@case
def overland_refusals():
    c = S["ov"]
    bad = {"locations": [OVERLAND["locations"][1], {"type": "Feature"}, 7]}
    assert_problem(c.post("/v1/overland", bad), 422, "rejected")
    assert_problem(c.post("/v1/overland", "{oops", ctype="application/json"), 400, "malformed")
    assert_problem(c.post("/v1/overland", {"points": []}), 400, "malformed")
    assert_problem(c.post("/v1/overland", OVERLAND, token="am_bogus_token_0000000000"), 401,
                   "unauthorized")
    assert_problem(c.post("/v1/overland", OVERLAND, auth=False), 401, "unauthorized")
    r = c.post("/v1/overland", {"locations": []})
    eq(r.body, b'{"result":"ok"}', "an empty batch is fine")
    one = {"locations": [dict(OVERLAND["locations"][2])]}
    one["locations"][0]["properties"] = dict(one["locations"][0]["properties"],
                                             timestamp="2026-11-25T09:02:00Z")
    r = c.post("/v1/overland", one, auth=False, params={"token": S["ov_tok"]})
    eq(r.body, b'{"result":"ok"}', "?token= works (Overland's URL setting)")
    eq(len(events(c, stream="location.gps")), 3, "the ?token= fix")


# ---------------------------------------------------------------- GPSLogger / Traccar / OsmAnd

@case
def gps_get_query():
    c = S["gl"]
    q = {"lat": "48.137154", "lon": "11.576124", "timestamp": str(T0), "alt": "519.5",
         "acc": "4.5", "spd": "1.5", "bearing": "90", "batt": "77", "id": "pixel",
         "token": S["gl_tok"]}
    r = c.get("/v1/gps", params=q, auth=False)
    assert_status(r, 200)
    eq(r.body, b"OK", "answer")
    gps = events(c, stream="location.gps", source="gps/pixel")
    eq(len(gps), 1, "one fix")
    p = gps[0]["payload"]
    eq(gps[0]["ts_ns"], T0 * NS, "ts")
    approx(p["lat"], 48.137154, "lat")
    approx(p["lon"], 11.576124, "lon")
    approx(p["alt"], 519.5, "alt")
    approx(p["accuracy"], 4.5, "accuracy")
    approx(p["speed"], 1.5, "speed m/s")
    approx(p["bearing"], 90, "bearing")
    approx(p["battery"], 77, "battery")
    bat = events(c, stream="device.battery", source="gps/pixel")
    eq([b["payload"]["level"] for b in bat], [77], "battery event")
    r = c.get("/v1/gps", params=q, auth=False)  # resent
    eq(r.body, b"OK", "answer to the resend")
    eq(len(events(c)), 2, "resend stored nothing new")


@case
def gps_post_form():
    c = S["gl"]
    form = urllib.parse.urlencode({"latitude": "48.2", "longitude": "11.6",
                                   "time": "2026-11-25T10:00:05.250+01:00", "altitude": "500",
                                   "accuracy": "8", "speed": "2.25", "dir": "180",
                                   "battery": "40", "charging": "true", "deviceid": "osmand"})
    r = c.post("/v1/gps", form, ctype="application/x-www-form-urlencoded")
    assert_status(r, 200)
    eq(r.body, b"OK", "answer")
    gps = events(c, stream="location.gps", source="gps/osmand")
    eq(len(gps), 1, "the form fix")
    eq(gps[0]["ts_ns"], (T0 + 5) * NS + 250_000_000, "ISO 8601 time with an offset")
    approx(gps[0]["payload"]["speed"], 2.25, "speed")
    approx(gps[0]["payload"]["bearing"], 180, "bearing from dir")
    bat = events(c, stream="device.battery", source="gps/osmand")
    eq([(b["payload"]["level"], b["payload"].get("charging")) for b in bat], [(40, True)],
       "battery")
    r = c.get("/v1/gps", params={"lat": "1.5", "lon": "2.5", "t": str((T0 + 7) * 1000),
                                 "device": "ms"})
    eq(r.body, b"OK", "epoch milliseconds")
    eq([e["ts_ns"] for e in events(c, source="gps/ms")], [(T0 + 7) * NS], "ms time")


@case
def gps_refusals():
    c = S["gl"]
    assert_problem(c.get("/v1/gps", params={"lon": "2", "timestamp": str(T0)}), 400, "malformed")
    assert_problem(c.get("/v1/gps", params={"lat": "x", "lon": "2"}), 400, "malformed")
    assert_problem(c.get("/v1/gps", params={"lat": "95", "lon": "2", "timestamp": str(T0)}),
                   400, "malformed")
    assert_problem(c.get("/v1/gps", params={"lat": "1", "lon": "2", "timestamp": "yesterday"}),
                   400, "malformed")
    assert_problem(c.get("/v1/gps", params={"lat": "1", "lon": "2", "token": "am_nope_nope_nope"},
                         auth=False), 401, "unauthorized")
    assert_problem(c.post("/v1/gps", {"lat": 1, "lon": 2}), 415)
    assert_problem(c.put("/v1/gps", "lat=1&lon=2"), 405)


@case
def stored_events_are_ordinary_events():
    """What the doors stored reads back like any other event, in /v1/events and by id."""
    c = S["alice"]
    got = events(c)
    streams = {e["stream"] for e in got}
    check({"location.gps", "device.battery", "location.place",
           "custom.owntracks_waypoint"} <= streams, f"streams stored for alice: {streams}")
    e = got[0]
    r = c.get(f"/v1/events/{e['id']}")
    assert_status(r, 200)
    eq(r.json["payload"], e["payload"], "the event by id")
    check(all(x["key"] for x in got), "every event has a key")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
