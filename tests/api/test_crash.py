"""test_crash.py — durability under kill -9. Loader threads post batches of events with
unique keys and remember every key acknowledged with 2xx; the main thread kills amd
with SIGKILL at random moments and restarts it on the same data directory, again and
again. A batch whose answer was lost is sent again after the restart, as a client
retry would. At the end every acknowledged key must be stored exactly once, with the
id its acknowledgement named, and no key twice."""

import http.client
import os
import random
import threading
import time

import amtest as T
from amtest import case, check, eq, assert_status, results_of, custom

env = T.Env()
S = {}
T0 = 1795597200
CYCLES = int(os.environ.get("AM_CRASH_CYCLES", "25"))
LOADERS = 3
BATCH = 50
STREAM = "custom.crash"


def setup():
    d = env.daemon("crash")
    d.user_add("carl")
    S["d"] = d
    S["tok"] = d.token("carl")
    d.start()


class Loader(threading.Thread):
    def __init__(self, n, daemon, token, stop):
        super().__init__(name=f"loader-{n}", daemon=True)
        self.n, self.stop_evt = n, stop
        self.client = T.Client(daemon, token)
        self.lock = threading.Lock()
        self.acked = {}          # key -> id from the acknowledgement
        self.last_acked = None   # (events, ids) of the newest acked batch
        self.batches = 0
        self.retried = 0         # batches that needed more than one attempt
        self.retry_dups = 0      # events a retry found already committed
        self.failed_tries = 0
        self.truncated = 0       # answers cut off by the kill (no headers/body)
        self.errors = []
        self.hard_stop = threading.Event()

    def batch(self, b):
        base = T0 + self.n * 10**6 + b * BATCH
        return [custom(STREAM, base + i, {"loader": self.n, "batch": b, "i": i},
                       key=f"L{self.n}-b{b:05d}-{i:02d}") for i in range(BATCH)]

    def run(self):
        b = 0
        try:
            while not self.stop_evt.is_set():
                evs = self.batch(b)
                tries = 0
                while True:
                    if self.hard_stop.is_set():
                        return
                    tries += 1
                    try:
                        r = self.client.post_events(evs, timeout=30)
                    except (OSError, http.client.HTTPException):
                        self.failed_tries += 1
                        time.sleep(0.02)
                        continue
                    if r.status == 503:  # shutting down or store unavailable: nothing acked
                        self.failed_tries += 1
                        time.sleep(0.02)
                        continue
                    if r.header("Content-Length") is None and r.json is None:
                        # amd died while writing the answer (status line only, then EOF):
                        # no client can read that as an acknowledgement; retry
                        self.truncated += 1
                        self.failed_tries += 1
                        continue
                    break
                if r.status != 200:
                    self.errors.append(f"batch {b}: status {r.status}: {r.text()[:300]}")
                    return
                res = results_of(r)
                if len(res) != BATCH:
                    self.errors.append(f"batch {b}: {len(res)} results")
                    return
                dups = 0
                with self.lock:
                    for ev, it in zip(evs, res):
                        if it.get("key") != ev["key"] or it.get("status") not in ("stored",
                                                                                  "duplicate"):
                            self.errors.append(f"batch {b}: bad result {it} for {ev['key']}")
                            return
                        if not isinstance(it.get("id"), int):
                            self.errors.append(f"batch {b}: no id in {it}")
                            return
                        dups += it["status"] == "duplicate"
                        self.acked[ev["key"]] = it["id"]
                    self.last_acked = (evs, [it["id"] for it in res])
                if tries == 1 and dups:
                    self.errors.append(f"batch {b}: {dups} duplicates on the first try "
                                       f"(keys are new)")
                    return
                if tries > 1:
                    self.retried += 1
                    self.retry_dups += dups
                self.batches += 1
                b += 1
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"loader crashed: {e!r}")


@case
def kill9_during_ingest_loses_no_ack():
    d = S["d"]
    stop = threading.Event()
    loaders = [Loader(n, d, S["tok"], stop) for n in range(LOADERS)]
    for l in loaders:
        l.start()
    rnd = random.Random(int(os.environ.get("AM_CRASH_SEED", str(int(time.time())))))
    cycles = 0
    replay_checked = 0
    t_end = time.monotonic() + 150
    try:
        while cycles < CYCLES and time.monotonic() < t_end:
            time.sleep(rnd.uniform(0.2, 1.0))
            errs = [e for l in loaders for e in l.errors]
            check(not errs, f"loader errors: {errs[:5]}")
            d.kill9()
            cycles += 1
            d.start(timeout=60)
            # What was acknowledged before the kill is there: the newest acked batch of
            # one loader, sent again, is all duplicates with the same ids.
            l = loaders[cycles % LOADERS]
            with l.lock:
                last = l.last_acked
            if last:
                evs, ids = last
                r = T.Client(d, S["tok"]).post_events(evs, timeout=30)
                assert_status(r, 200)
                res = results_of(r)
                eq([it["status"] for it in res], ["duplicate"] * len(evs),
                   f"cycle {cycles}: re-sent acked batch statuses")
                eq([it["id"] for it in res], ids, f"cycle {cycles}: re-sent acked batch ids")
                replay_checked += 1
    finally:
        stop.set()
        if not d.alive():
            d.start(timeout=60)
        for l in loaders:
            l.join(60)
        for l in loaders:
            if l.is_alive():
                l.hard_stop.set()
                l.join(10)
    errs = [e for l in loaders for e in l.errors]
    check(not errs, f"loader errors: {errs[:5]}")
    check(not any(l.is_alive() for l in loaders), "a loader did not finish")
    check(cycles >= 20, f"only {cycles} kill -9 cycles ran")
    acked = {}
    for l in loaders:
        acked.update(l.acked)
    batches = sum(l.batches for l in loaders)
    check(batches >= cycles, f"only {batches} batches were acknowledged in {cycles} cycles")

    c = T.Client(d, S["tok"])
    got, pages = c.list_all(params={"stream": STREAM}, limit=10000)
    counts = {}
    for e in got:
        counts[e["key"]] = counts.get(e["key"], 0) + 1
    twice = sorted(k for k, n in counts.items() if n > 1)
    eq(twice[:10], [], "keys stored more than once")
    missing = sorted(k for k in acked if k not in counts)
    eq(missing[:10], [], f"acknowledged keys missing ({len(missing)} of {len(acked)})")
    ids = {e["key"]: e["id"] for e in got}
    wrong = [(k, acked[k], ids[k]) for k in acked if ids[k] != acked[k]]
    eq(wrong[:10], [], "stored id differs from the acknowledged id")
    unknown = sorted(k for k in counts if k not in acked)
    eq(unknown[:10], [], "stored keys nobody sent (every batch was retried until acked)")
    eq(len({e["id"] for e in got}), len(got), "distinct ids")
    # the timeline agrees, and so does /v1/streams
    tl, _ = c.list_all("/v1/timeline", limit=10000)
    eq(len(tl), len(got), "timeline count")
    st = {s["name"]: s for s in c.get("/v1/streams").json["streams"]}
    eq(st.get(STREAM, {}).get("count"), len(got), "/v1/streams count")
    S["n"] = len(got)
    print(f"#   {cycles} kill -9 cycles, {len(acked)} acked events in {batches} batches, "
          f"{sum(l.retried for l in loaders)} batches retried after a failed try "
          f"({sum(l.retry_dups for l in loaders)} of their events already committed), "
          f"{sum(l.failed_tries for l in loaders)} failed tries "
          f"({sum(l.truncated for l in loaders)} answers cut off), {replay_checked} acked batches "
          f"re-sent after restarts, {pages} page(s) read back")


@case
def sigterm_under_load_acks_only_what_is_stored():
    """SIGTERM while loaders post: amd may refuse (503) or drop connections, but every
    2xx answer names stored events, and it exits 0 in time."""
    d = S["d"]
    stop = threading.Event()
    loaders = [Loader(n, d, S["tok"], stop) for n in range(10, 10 + LOADERS)]
    for l in loaders:
        l.start()
    rnd = random.Random(5)
    try:
        for cycle in range(5):
            time.sleep(rnd.uniform(0.3, 0.8))
            rc = d.stop(timeout=20)
            eq(rc, 0, f"cycle {cycle}: exit status on SIGTERM under load (None: hung, killed)")
            d.start(timeout=60)
    finally:
        stop.set()
        if not d.alive():
            d.start(timeout=60)
        for l in loaders:
            l.join(60)
            if l.is_alive():
                l.hard_stop.set()
                l.join(10)
    errs = [e for l in loaders for e in l.errors]
    check(not errs, f"loader errors: {errs[:5]}")
    acked = {}
    for l in loaders:
        acked.update(l.acked)
    check(len(acked) >= BATCH, f"only {len(acked)} events acked")
    got, _ = T.Client(d, S["tok"]).list_all(params={"stream": STREAM}, limit=10000)
    ids = {}
    for e in got:
        check(e["key"] not in ids, f"key {e['key']} stored twice")
        ids[e["key"]] = e["id"]
    missing = [k for k in acked if k not in ids]
    eq(missing[:10], [], f"acked keys missing after SIGTERM restarts ({len(missing)})")
    wrong = [(k, acked[k], ids[k]) for k in acked if ids[k] != acked[k]]
    eq(wrong[:10], [], "stored id differs from the acknowledged id")
    S["n"] = len(got)
    print(f"#   5 SIGTERM restarts under load: {len(acked)} acked events, "
          f"{sum(l.failed_tries for l in loaders)} failed tries")


@case
def graceful_restart_after_crashes_keeps_everything():
    d = S["d"]
    check("n" in S, "the crash case ran")
    eq(d.stop(), 0, "exit status on SIGTERM")
    d.start()
    c = T.Client(d, S["tok"])
    got, _ = c.list_all(params={"stream": STREAM}, limit=10000)
    eq(len(got), S["n"], "events after a graceful restart")
    r = c.get("/readyz", auth=False)
    assert_status(r, 200)
    # still takes new writes
    r = c.post_events([custom(STREAM, T0, {}, key="after-crash")])
    assert_status(r, 200)
    eq(results_of(r)[0]["status"], "stored", "new event after all the crashes")


if __name__ == "__main__":
    T.main(setup, env=env, watchdog_s=420)
