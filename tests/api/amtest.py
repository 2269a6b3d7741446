"""amtest.py — the harness the end-to-end tests share: temp data directories, the
`am` CLI, starting/stopping/killing a real `amd`, HTTP and WebSocket helpers, and a
tiny case runner that prints one line per case and "N passed, M failed".

Only Python 3.11's standard library and Debian's python3-websocket are used.
Environment: AM_BIN_DIR (directory holding amd and am), AM_SOURCE_DIR (repo root),
AM_KEEP=1 keeps the temp directories, AM_VERBOSE=1 prints amd's log for passing cases.
"""

import faulthandler
import hashlib
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

SOURCE_DIR = os.environ.get("AM_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN_DIR = os.environ.get("AM_BIN_DIR") or os.path.join(SOURCE_DIR, "build")
AMD = os.path.join(BIN_DIR, "amd")
AM = os.path.join(BIN_DIR, "am")
KEEP = os.environ.get("AM_KEEP") == "1"
VERBOSE = os.environ.get("AM_VERBOSE") == "1"

PROBLEM_CT = "application/problem+json"


# ---------------------------------------------------------------- assertions

class Skip(Exception):
    """Raised by a case that cannot run here (e.g. a tool is missing)."""


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what="value"):
    if got != want:
        raise AssertionError(f"{what}: expected {short(want, 1500)}, got {short(got, 1500)}")


def short(x, n=600):
    s = x if isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def assert_status(r, *want):
    if r.status not in want:
        raise AssertionError(f"{r.method} {r.path}: expected status {' or '.join(map(str, want))}, "
                             f"got {r.status}; body: {short(r.text())}")


def assert_problem(r, status, type_name=None):
    """An RFC 9457 answer: the status, Content-Type application/problem+json, and a body
    with type urn:am:problem:<type_name>, title, status and detail."""
    assert_status(r, status)
    ct = r.header("Content-Type") or ""
    check(ct.split(";")[0].strip().lower() == PROBLEM_CT,
          f"{r.method} {r.path}: status {status} with Content-Type {ct!r}, want {PROBLEM_CT}; "
          f"body {short(r.text())}")
    j = r.json
    check(isinstance(j, dict), f"{r.method} {r.path}: problem body is not a JSON object: "
          f"{short(r.text())}")
    for k in ("type", "title", "status", "detail"):
        check(k in j, f"{r.method} {r.path}: problem body lacks '{k}': {short(r.text())}")
    check(isinstance(j["title"], str) and j["title"], f"problem title empty: {j}")
    check(isinstance(j["detail"], str), f"problem detail not a string: {j}")
    eq(j["status"], status, f"{r.method} {r.path}: problem 'status' member")
    if type_name is not None:
        eq(j["type"], "urn:am:problem:" + type_name, f"{r.method} {r.path}: problem type")
    return j


# ---------------------------------------------------------------- HTTP

class Resp:
    """One HTTP answer. Unpacks as (status, headers, data) where data is the parsed
    JSON for JSON answers and the raw bytes otherwise."""

    def __init__(self, method, path, status, headers, body):
        self.method, self.path = method, path
        self.status, self.headers, self.body = status, headers, body
        self.json = None
        ct = (headers.get("Content-Type") or "").lower() if headers is not None else ""
        if "json" in ct and body:
            try:
                self.json = json.loads(body)
            except ValueError:
                self.json = None

    def header(self, name):
        return self.headers.get(name) if self.headers is not None else None

    def text(self):
        try:
            return self.body.decode("utf-8", "replace")
        except AttributeError:
            return str(self.body)

    def __iter__(self):
        yield self.status
        yield self.headers
        yield self.json if self.json is not None else self.body

    def __repr__(self):
        return f"<{self.method} {self.path} -> {self.status} {short(self.text(), 300)}>"


def encode_body(body):
    if body is None or isinstance(body, (bytes, bytearray)):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "__iter__") and not isinstance(body, (list, dict)):
        return body  # an iterator: sent chunked
    return json.dumps(body).encode("utf-8")


def qs(path, params):
    if not params:
        return path
    params = {k: v for k, v in params.items() if v is not None}
    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(params)


class Client:
    """HTTP client for one amd and (optionally) one token. port may be a callable so
    that a restarted daemon on a new port is followed."""

    def __init__(self, daemon, token=None, host="127.0.0.1"):
        self.daemon, self.token, self.host = daemon, token, host

    def port(self):
        return self.daemon.port

    def request(self, method, path, body=None, headers=None, ctype=None, params=None,
                timeout=60, token=None, auth=True):
        path = qs(path, params)
        hdrs = {}
        tok = token if token is not None else self.token
        if auth and tok:
            hdrs["Authorization"] = "Bearer " + tok
        data = encode_body(body)
        if ctype is None and body is not None and not isinstance(body, (bytes, bytearray, str)) \
                and isinstance(body, (list, dict)):
            ctype = "application/json"
        if ctype:
            hdrs["Content-Type"] = ctype
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection(self.host, self.port(), timeout=timeout)
        try:
            chunked = data is not None and not isinstance(data, (bytes, bytearray))
            conn.request(method, path, body=data, headers=hdrs, encode_chunked=chunked)
            r = conn.getresponse()
            out = r.read()
            return Resp(method, path, r.status, r.headers, out)
        finally:
            conn.close()

    def get(self, path, params=None, **kw):
        return self.request("GET", path, params=params, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def post_events(self, events, **kw):
        return self.post("/v1/events", events, ctype=kw.pop("ctype", "application/json"), **kw)

    def post_ndjson(self, events_or_text, **kw):
        if isinstance(events_or_text, (str, bytes)):
            body = events_or_text
        else:
            body = "".join(json.dumps(e) + "\n" for e in events_or_text)
        return self.post("/v1/events", body, ctype="application/x-ndjson", **kw)

    def list_all(self, path="/v1/events", params=None, limit=1000, max_pages=100000):
        """Follows next_cursor to the end; returns (events, pages)."""
        p = dict(params or {})
        p["limit"] = limit
        events, pages, cursor, seen = [], 0, None, set()
        while True:
            if cursor is not None:
                p["cursor"] = cursor
            r = self.get(path, params=p)
            assert_status(r, 200)
            j = r.json
            check(isinstance(j, dict) and isinstance(j.get("events"), list),
                  f"GET {path}: no 'events' array: {short(r.text())}")
            check(len(j["events"]) <= limit, f"page of {len(j['events'])} > limit {limit}")
            events.extend(j["events"])
            pages += 1
            cursor = j.get("next_cursor")
            if cursor is None:
                return events, pages
            check(cursor not in seen, f"next_cursor {cursor!r} repeated: pagination loops")
            seen.add(cursor)
            check(pages < max_pages, "too many pages")

    def count(self, params=None, path="/v1/timeline"):
        return len(self.list_all(path, params, limit=10000)[0])


def raw_request(port, method, path, headers, body_chunks, total_len=None, chunked=False,
                timeout=60):
    """Sends a request the way a careful client does: the body in pieces, watching for
    an early answer (e.g. 413 before the whole body went out), then reads the answer.
    body_chunks: an iterable of bytes. Returns a Resp (status 0 when none came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        for k, v in headers.items():
            lines.append(f"{k}: {v}")
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        elif total_len is not None:
            lines.append(f"Content-Length: {total_len}")
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        early = False
        try:
            for chunk in body_chunks:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    early = True
                    break
                if chunked:
                    s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                else:
                    s.sendall(chunk)
            if chunked and not early:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            early = True
        try:
            resp = http.client.HTTPResponse(s, method=method)
            resp.begin()
            body = resp.read()
            return Resp(method, path, resp.status, resp.headers, body)
        except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError) as e:
            return Resp(method, path, 0, None, f"no answer: {e!r}".encode())
    finally:
        s.close()


def send_truncated(port, method, path, headers, body, declared_len, timeout=5):
    """A request whose body is shorter than its Content-Length: the client sends what it
    has, then half-closes (its connection dropped). Returns the answer's status (int),
    or None when the server answered nothing (or only part of a status line)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                f"Content-Length: {declared_len}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        time.sleep(0.2)
        s.shutdown(socket.SHUT_WR)
        buf = b""
        try:
            while b"\r\n" not in buf:
                chunk = s.recv(1024)
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
        m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
        return int(m.group(1)) if m else None
    finally:
        s.close()


def gen_chunks(data_or_size, chunk=65536, seed=1):
    """Yields bytes: the given data in pieces, or size random-ish bytes."""
    if isinstance(data_or_size, (bytes, bytearray)):
        for i in range(0, len(data_or_size), chunk):
            yield bytes(data_or_size[i:i + chunk])
        return
    rnd = random.Random(seed)
    left = data_or_size
    while left > 0:
        n = min(chunk, left)
        yield rnd.randbytes(n)
        left -= n


# ---------------------------------------------------------------- processes

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def clean_env(extra=None):
    """The test process's environment without any AM_* setting, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AM_")}
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


SETPRIV = shutil.which("setpriv")


def run_am(args, env=None, input=None, cwd=None, timeout=120, check_rc=True):
    """Runs the `am` CLI; returns the CompletedProcess (text)."""
    cmd = [AM] + [str(a) for a in args]
    p = subprocess.run(cmd, env=clean_env(env), input=input, cwd=cwd, capture_output=True,
                       text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise AssertionError(f"`{' '.join(cmd)}` exited {p.returncode}\nstdout: {p.stdout}\n"
                             f"stderr: {p.stderr}")
    return p


class Daemon:
    """One amd on one data directory. Start, stop (SIGTERM), kill -9 and restart; its
    stderr/stdout go to a log file printed when a case fails."""

    def __init__(self, env_root, name, data_dir=None, settings=None, cwd=None, home=None,
                 use_flags=True, extra_env=None):
        self.root = env_root
        self.name = name
        self.data_dir = data_dir or os.path.join(env_root.root, name + "-data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.settings = dict(settings or {})
        self.extra_env = dict(extra_env or {})
        self.cwd = cwd
        self.home = home
        self.use_flags = use_flags
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(env_root.root, f"{name}.log")
        self.starts = 0
        self.expected_running = False  # started by us and not yet stopped/killed by us
        self.crashes = []  # exit statuses of unexpected deaths the runner found

    # -- CLI on this data directory
    def am(self, *args, env=None, input=None, check_rc=True, cwd=None):
        return run_am(["--data-dir", self.data_dir] + list(args), env=env, input=input,
                      check_rc=check_rc, cwd=cwd or self.root.root)

    def user_add(self, name):
        return self.am("user", "add", name)

    def token(self, user, scope="ingest,read", label=None):
        args = ["token", "create", "--user", user, "--scope", scope]
        if label:
            args += ["--label", label]
        p = self.am(*args)
        lines = [l.strip() for l in p.stdout.splitlines() if l.strip()]
        check(lines, f"token create printed nothing; stderr: {p.stderr}")
        return lines[-1]

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def client(self, token=None):
        return Client(self, token)

    # -- process control
    def env(self):
        env = clean_env(self.extra_env)
        for k, v in self.settings.items():
            env[k] = str(v)
        if self.home:
            env["HOME"] = self.home
        if not self.use_flags:
            env["AM_DATA_DIR"] = self.data_dir
            env["AM_LISTEN"] = f"127.0.0.1:{self.port}"
        return env

    def cmd(self):
        base = [AMD]
        if self.use_flags:
            base += ["--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"]
        if SETPRIV and threading.current_thread() is threading.main_thread():
            # amd dies with this test process (a hung or killed test leaves nothing behind).
            return [SETPRIV, "--pdeathsig", "KILL", "--"] + base
        return base

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30, new_port_on_fail=True):
        check(not self.alive(), "amd already running")
        check(os.path.exists(AMD), f"no amd at {AMD} (set AM_BIN_DIR)")
        attempt = busy = 0
        while attempt < 3:
            attempt += 1
            self.starts += 1
            with open(self.log_path, "ab") as log:
                log.write(f"==== start #{self.starts} on port {self.port} at {time.time():.3f}"
                          f" ====\n".encode())
                log.flush()
                try:
                    self.proc = subprocess.Popen(self.cmd(), env=self.env(), stdout=log,
                                                 stderr=log, stdin=subprocess.DEVNULL,
                                                 cwd=self.cwd or self.root.root)
                except OSError as e:  # exec failed: the binary is being relinked?
                    log.write(f"failed to execute {AMD}: {e}\n".encode())
                    self.proc = None
            if self.proc is None:
                if busy < 40:
                    busy += 1
                    attempt -= 1
                    time.sleep(0.5)
                    continue
                break
            if self.wait_healthy(timeout):
                self.expected_running = True
                return self
            tail = self.log_tail(3)
            if self.proc.poll() is not None and re.search(
                    r"failed to execute|text file busy|exec format error", tail, re.I) and \
                    busy < 40:
                # the binary is being relinked (a rebuild while tests run): wait for it
                busy += 1
                attempt -= 1
                time.sleep(0.5)
                continue
            if self.proc.poll() is not None and new_port_on_fail and \
                    re.search(r"listen|bind|address", tail, re.I):
                self.port = free_port()
                continue
            break
        tail = self.log_tail(40)
        if self.proc is not None:
            self.kill9()
        raise AssertionError(f"amd ({self.name}) did not become healthy; log tail:\n{tail}")

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                conn.close()
                if r.status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.03)
        return False

    def stop(self, timeout=20):
        """SIGTERM and wait; kill -9 if it hangs. Returns the exit status (None if it
        had to be killed)."""
        self.expected_running = False
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self.proc = None
            return rc
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.proc = None
        return rc

    def kill9(self):
        self.expected_running = False
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout)

    def log_tail(self, n=60):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"


class Env:
    """A temp root holding data directories and logs; removed at exit unless AM_KEEP=1."""

    def __init__(self, prefix="amtest-"):
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.daemons = []

    def daemon(self, name="amd", **kw):
        d = Daemon(self, name, **kw)
        self.daemons.append(d)
        return d

    def mkdtemp(self, name):
        p = os.path.join(self.root, name)
        os.makedirs(p, exist_ok=True)
        return p

    def close(self):
        for d in self.daemons:
            try:
                d.stop(timeout=10)
            except Exception:
                d.kill9()
        if KEEP:
            print(f"# kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------- WebSocket

def ws_connect(daemon, token=None, query_token=None, timeout=10, header=None):
    import websocket  # Debian's python3-websocket (websocket-client)
    url = f"ws://127.0.0.1:{daemon.port}/v1/ws"
    if query_token is not None:
        url += "?token=" + urllib.parse.quote(query_token)
    hdr = list(header or [])
    if token is not None:
        hdr.append(f"Authorization: Bearer {token}")
    return websocket.create_connection(url, header=hdr, timeout=timeout)


def ws_recv(ws, timeout):
    """The next JSON message, or None when nothing came within timeout."""
    import websocket
    ws.settimeout(max(timeout, 0.01))
    try:
        msg = ws.recv()
    except websocket.WebSocketTimeoutException:
        return None
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    if msg == "":
        raise AssertionError("WebSocket closed by the server")
    try:
        return json.loads(msg)
    except ValueError:
        raise AssertionError(f"WebSocket frame is not JSON: {short(msg)}")


def ws_wait(ws, pred, timeout=10, what="message", skip_types=("hello", "pong")):
    """Reads messages until pred(msg) holds; returns (msg, others). Messages of
    skip_types are dropped; anything else read on the way is returned in others."""
    deadline = time.monotonic() + timeout
    others = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {what} within {timeout}s; got meanwhile: {short(others)}")
        m = ws_recv(ws, left)
        if m is None:
            continue
        if pred(m):
            return m, others
        if isinstance(m, dict) and m.get("type") in skip_types:
            continue
        others.append(m)


def ws_drain(ws, seconds, skip_types=("hello", "pong")):
    """Everything that arrives within seconds."""
    out = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        m = ws_recv(ws, left)
        if m is not None and not (isinstance(m, dict) and m.get("type") in skip_types):
            out.append(m)


# ---------------------------------------------------------------- data helpers

def rand_key(prefix="k"):
    return prefix + "-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=12))


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def hr(ts, bpm=60, key=None, source=None, **extra):
    e = {"stream": "health.heart_rate", "ts": ts, "payload": {"bpm": bpm}}
    if key is not None:
        e["key"] = key
    if source is not None:
        e["source"] = source
    e.update(extra)
    return e


def gps(ts, lat=52.52, lon=13.405, key=None, source=None, **extra):
    e = {"stream": "location.gps", "ts": ts, "payload": {"lat": lat, "lon": lon}}
    if key is not None:
        e["key"] = key
    if source is not None:
        e["source"] = source
    e.update(extra)
    return e


def custom(stream, ts, payload=None, key=None, source=None, **extra):
    e = {"stream": stream, "ts": ts, "payload": payload if payload is not None else {}}
    if key is not None:
        e["key"] = key
    if source is not None:
        e["source"] = source
    e.update(extra)
    return e


def results_of(r):
    j = r.json
    check(isinstance(j, dict) and isinstance(j.get("results"), list),
          f"{r.method} {r.path} -> {r.status}: no 'results' array: {short(r.text())}")
    return j["results"]


# ---------------------------------------------------------------- runner

_cases = []


def case(fn):
    """Registers a test case (runs in definition order)."""
    _cases.append(fn)
    return fn


def revive_dead(env):
    """A daemon that died under a case (a crash of amd) is recorded and started again,
    so that the following cases test something rather than fail in a cascade."""
    if env is None:
        return
    for d in env.daemons:
        if d.expected_running and d.proc is not None and d.proc.poll() is not None:
            rc = d.proc.returncode
            d.crashes.append(rc)
            print(f"#   amd '{d.name}' DIED (exit status {rc}); log tail:\n{d.log_tail(15)}")
            print(f"#   restarting amd '{d.name}' for the remaining cases")
            d.proc = None
            d.expected_running = False
            try:
                d.start()
            except Exception as e:  # noqa: BLE001
                print(f"#   restart failed: {e}")


def main(setup=None, teardown=None, env=None, watchdog_s=600):
    """Runs setup, every case, teardown; prints one line per case and the summary line;
    exits 1 on any failure."""
    faulthandler.dump_traceback_later(watchdog_s, exit=True)
    passed = failed = 0
    t_all = time.monotonic()

    def dump_logs():
        if env is None:
            return
        for d in env.daemons:
            print(f"---- amd log ({d.name}, {d.log_path}), last lines:")
            print(d.log_tail(60))
            print("----")

    setup_error = None
    if setup is not None:
        try:
            setup()
        except BaseException as e:  # noqa: BLE001 - a failed setup fails every case
            setup_error = e
            print("FAIL setup")
            traceback.print_exc(file=sys.stdout)
            dump_logs()
    for fn in _cases:
        name = fn.__name__
        if setup_error is not None:
            print(f"FAIL {name} (setup failed: {short(str(setup_error), 200)})")
            failed += 1
            continue
        t0 = time.monotonic()
        try:
            fn()
        except Skip as e:
            print(f"ok   {name} (skipped: {e})")
            passed += 1
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.2f}s)")
            traceback.print_exc(file=sys.stdout)
            dump_logs()
        else:
            passed += 1
            print(f"ok   {name} ({time.monotonic() - t0:.2f}s)")
        sys.stdout.flush()
        revive_dead(env)
    if teardown is not None:
        try:
            teardown()
        except BaseException:  # noqa: BLE001
            print("FAIL teardown")
            traceback.print_exc(file=sys.stdout)
            failed += 1
    if env is not None:
        env.close()
    faulthandler.cancel_dump_traceback_later()
    print(f"# {time.monotonic() - t_all:.1f}s")
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
