"""test_import.py — `am import KIND FILE` against the data directory of a running amd:
the events are read back through /v1/events, a second import stores nothing new, and a
truncated file fails with a clear message (docs/api.md, "Importing")."""

import os

import amtest as T
from amtest import case, check, eq

env = T.Env()
S = {}

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
<trk><trkseg>
<trkpt lat="52.5200" lon="13.4050"><ele>34</ele><time>2026-11-25T07:00:00Z</time></trkpt>
<trkpt lat="52.5210" lon="13.4060"><ele>35</ele><time>2026-11-25T08:00:10+01:00</time></trkpt>
<trkpt lat="52.5220" lon="13.4070"><ele>36</ele><time>2026-11-25T07:00:20Z</time></trkpt>
</trkseg></trk></gpx>
"""

RECORDS = ('{"locations": [' + ", ".join(
    '{"latitudeE7": %d, "longitudeE7": %d, "accuracy": 10, "velocity": 2, '
    '"timestamp": "2026-11-25T10:%02d:00Z"}' % (525000000 + i, 134000000 + i, i)
    for i in range(50)) + "]}\n")


def write(name, text):
    path = os.path.join(env.root, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def setup():
    d = env.daemon("import")
    d.user_add("imp")
    d.start()
    S["d"] = d
    S["c"] = d.client(d.token("imp"))


@case
def gpx_import_then_read_back():
    d, c = S["d"], S["c"]
    check(d.alive(), "amd running")
    path = write("run.gpx", GPX)
    p = d.am("import", "gpx", path, "--user", "imp")
    check("3 events stored" in p.stdout, f"summary: {p.stdout}")
    got, _ = c.list_all(params={"stream": "location.gps"})
    eq(len(got), 3, "points read back from amd")
    eq(sorted(round(e["payload"]["lat"], 4) for e in got), [52.52, 52.521, 52.522], "latitudes")
    check(all(e["key"].startswith("imp:gpx:") for e in got), "import keys")
    again = d.am("import", "gpx", path, "--user", "imp")
    check("0 events stored, 3 duplicate" in again.stdout, f"re-import: {again.stdout}")
    got2, _ = c.list_all(params={"stream": "location.gps"})
    eq(len(got2), 3, "nothing new after a re-import")


@case
def takeout_import_and_truncated_file():
    d, c = S["d"], S["c"]
    path = write("Records.json", RECORDS)
    p = d.am("import", "takeout", path, "--user", "imp")
    check("50 events stored" in p.stdout, f"summary: {p.stdout}")
    got, _ = c.list_all(params={"stream": "location.gps", "source": "import.google-takeout"})
    eq(len(got), 50, "Takeout points read back")
    e = min(got, key=lambda e: e["payload"]["lat"])
    eq(round(e["payload"]["lat"], 7), 52.5, "E7 to degrees")
    eq(e["payload"]["speed"], 2, "velocity in m/s")
    cut = write("cut.json", RECORDS[: len(RECORDS) // 2])
    bad = d.am("import", "takeout", cut, "--user", "imp", check_rc=False)
    check(bad.returncode != 0, "a truncated file fails")
    check("truncated" in bad.stderr, f"the error says so: {bad.stderr}")
    nobody = d.am("import", "gpx", path, "--user", "nobody", check_rc=False)
    check(nobody.returncode != 0 and "no user" in nobody.stderr, "unknown user refused")
    kind = d.am("import", "fit", path, "--user", "imp", check_rc=False)
    check(kind.returncode == 2 and "unknown import kind" in kind.stderr, "unknown kind refused")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=300)
