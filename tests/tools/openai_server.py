#!/usr/bin/python3
"""openai_server.py — a small, deterministic OpenAI-compatible server for AM's tests.

Python 3 standard library only. Start it with

    python3 openai_server.py --port 0 --port-file PATH [--dim 64] [--host 127.0.0.1]

It writes its bound port (digits and a newline) to PATH once it is listening; the file
appears whole (written to PATH.tmp, then renamed). Nothing goes to stdout; stderr only on
an error. Same input, same answer: there is no randomness and no clock in any answer.

Endpoints
  POST /v1/chat/completions
      With response_format {"type":"json_schema","json_schema":{"schema":S}}: the message
      content is a JSON object built from S and the last user message's text: every
      required property (every property when S has no "required") gets a value of its
      type — strings: the first 12 words; integers: the word count; numbers: 0.5;
      booleans: false unless the text contains NOTIFY; arrays of strings: for entity-like
      names (people, persons, names, places, locations, organisations, organizations,
      orgs, companies, topics, entities, tags) the distinct capitalised words of the text,
      otherwise the first distinct lower-cased words of 4+ letters (at most 5); arrays of
      other things: one item; objects: built the same way, recursively; "enum": its first
      value; null: null.
      Any message with an image_url part (a data: URL): the content is the caption
      "an image of <N> bytes" (N: the decoded size). Otherwise plain text:
      "you said: <first 12 words>".
  POST /v1/embeddings      {"input": str | [str], "dimensions"?: n}
      Deterministic vectors of dimension ?dim=N, else "dimensions", else --dim (64): a
      signed hashed bag of lower-cased words (SHA-256), L2-normalised, so texts sharing
      words lie near each other. An empty text gives the zero vector. The "data" items
      are listed in REVERSE index order, as some batching servers do, so a client must
      sort by "index".
  POST /v1/audio/transcriptions   (multipart/form-data: file, model, response_format)
      verbose_json (the default here): {"task","language":"english","duration":1.0,
      "text":"hello from the test server (<N> bytes)","segments":[{"id":0,"start":0.0,
      "end":1.0,"text":"hello from the test server"}]}; "json": {"text"}; "text": plain.
  GET  /v1/models          one model, "test-model".
  Missing or wrong bodies get OpenAI-style 400 errors {"error":{"message","type"}}.

Markers: special answers when the chat text (last user message) contains
  AM_TEST_NOT_JSON            content is plain text, not JSON
  AM_TEST_NOT_OBJECT          content is the JSON array [1,2,3]
  AM_TEST_MISSING_REQUIRED    the first required property is left out
  AM_TEST_WRONG_TYPE          every generated property has the wrong JSON type
  AM_TEST_FENCED              the JSON content is wrapped in a ```json Markdown fence
  AM_TEST_NO_CHOICES          the answer's "choices" is []
  AM_TEST_BAD_ENVELOPE        the answer is {"choices":"nope"}
  AM_TEST_CONTENT_NOT_STRING  message.content is the number 42
  AM_TEST_NULL_CONTENT        message.content is null and message.refusal says why
  AM_TEST_NON_UTF8            the answer body carries raw bytes that are not UTF-8
  AM_TEST_HUGE_NUMBER         the answer body holds 1e999 and a 40-digit integer
  AM_TEST_TRUNCATED           the answer body is cut in the middle of the JSON
  AM_TEST_EMPTY_BODY          200 with an empty body
  AM_TEST_ARRAY_BODY          the answer body is a JSON array
and when an embeddings input text contains
  AM_TEST_EMBED_BAD_DIM       that item's vector is one shorter than the others
  AM_TEST_EMBED_BAD_VALUE     that item's vector holds a string
  AM_TEST_EMBED_BAD_INDEX     every item has index 0
  AM_TEST_EMBED_MISSING       the last item is left out
and when the uploaded audio file's bytes begin with
  AM_TEST_PLAIN               the answer is only {"text": ...} (as for response_format=json)
  AM_TEST_BAD_SEGMENTS        "segments" holds a string where an object belongs
  AM_TEST_NO_TEXT             the answer has no "text"

Fault injection, for all /v1/ requests ("model requests"), over HTTP:
  POST /control with a JSON object; keys may be combined:
    {"fail_next": N, "status": S, "retry_after": R, "message": M}
        the next N model requests answer status S (default 500) with an OpenAI-style
        error whose message is M (default "injected failure"); with a Retry-After: R
        header when R is given.
    {"delay_next": N, "seconds": X}   the next N model requests sleep X seconds first
    {"invalid_json_next": N}          the next N chat answers have non-JSON content
    {"reset": true}                   clears all faults and all counters (applied first)
  It answers {"ok": true}. Faults are taken in order delay, then fail, then invalid JSON;
  each request takes one from every counter that applies to it.
  GET /control/stats -> {"requests": {"chat": n, "embeddings": n, "transcriptions": n,
      "models": n}, "total": n, "last_authorization": str|null, "last_model": str|null,
      "last_chat": object|null (the last chat request body, image data left out)}
  Every model request is counted when it arrives, before any fault is applied, so a
  test can count retries.
"""

import argparse
import base64
import hashlib
import json
import math
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ENTITY_NAMES = {
    "people", "persons", "names", "places", "locations", "organisations", "organizations",
    "orgs", "companies", "topics", "entities", "tags",
}
ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/audio/transcriptions": "transcriptions",
    "/v1/models": "models",
}
MAX_BODY = 256 << 20


class State:
    """Counters and pending faults, shared by the handler threads."""

    def __init__(self, dim):
        self.lock = threading.Lock()
        self.dim = dim
        self.reset()

    def reset(self):
        self.counts = {name: 0 for name in ENDPOINTS.values()}
        self.total = 0
        self.fail_next = 0
        self.fail_status = 500
        self.fail_retry_after = None
        self.fail_message = "injected failure"
        self.delay_next = 0
        self.delay_seconds = 0.0
        self.invalid_json_next = 0
        self.last_authorization = None
        self.last_model = None
        self.last_chat = None


def words_of(text):
    return [w for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9'\-]*", text)
            if not w.startswith("AM_TEST") and w != "NOTIFY"]


def summary(text):
    return " ".join(text.split()[:12])


def capitalised(text):
    seen, out = set(), []
    for w in words_of(text):
        if w[0].isupper() and w not in seen:
            seen.add(w)
            out.append(w)
    return out


def keywords(text):
    seen, out = set(), []
    for w in words_of(text):
        w = w.lower()
        if len(w) >= 4 and w not in seen:
            seen.add(w)
            out.append(w)
    return out[:5]


def type_of(schema):
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), t[0] if t else None)
    if t is None and isinstance(schema.get("properties"), dict):
        t = "object"
    return t


def generate(schema, name, text, depth=0):
    """A value that satisfies schema (the parts of JSON Schema this server knows)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    t = type_of(schema)
    if t == "string":
        return summary(text)
    if t == "integer":
        return len(text.split())
    if t == "number":
        return 0.5
    if t == "boolean":
        return "NOTIFY" in text
    if t == "null":
        return None
    if t == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if type_of(items) == "string" and "enum" not in items:
            return capitalised(text) if name.lower() in ENTITY_NAMES else keywords(text)
        return [generate(items, name, text, depth + 1)]
    if t == "object":
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = schema.get("required")
        keys = [k for k in required if isinstance(k, str)] if isinstance(required, list) else list(props)
        return {k: generate(props.get(k, {}), k, text, depth + 1) for k in keys}
    return summary(text)


def wrong(value):
    return "wrong" if not isinstance(value, str) else 123


def message_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def image_size(messages):
    """The decoded size of the first image_url part, or None when there is none."""
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, list):
            continue
        for p in content:
            if isinstance(p, dict) and p.get("type") == "image_url":
                iu = p.get("image_url")
                url = iu.get("url") if isinstance(iu, dict) else iu
                if not isinstance(url, str):
                    raise ValueError("image_url has no url")
                m2 = re.match(r"data:[^;,]*;base64,(.*)\Z", url, re.S)
                if not m2:
                    raise ValueError("image_url is not a base64 data: URL")
                return len(base64.b64decode(m2.group(1), validate=True))
    return None


def embed(text, dim):
    v = [0.0] * dim
    for w in text.lower().split():
        w = re.sub(r"[^\w]", "", w)
        if not w:
            continue
        h = hashlib.sha256(w.encode("utf-8", "surrogatepass")).digest()
        i = int.from_bytes(h[:4], "little") % dim
        v[i] += 1.0 if h[4] & 1 else -1.0
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else v


def parse_multipart(body, content_type):
    """{name: (filename or None, bytes)} of a multipart/form-data body."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ValueError("multipart body without a boundary")
    delim = b"--" + m.group(1).encode("latin-1")
    parts = {}
    for chunk in body.split(delim)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without headers")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = head.decode("latin-1")
        name = re.search(r'name="([^"]*)"', headers)
        filename = re.search(r'filename="([^"]*)"', headers)
        if name:
            parts[name.group(1)] = (filename.group(1) if filename else None, data)
    return parts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "am-test-openai/1"
    # Headers and body leave in one write (flushed after each request) and without Nagle:
    # two small writes would meet the client's delayed ACK and cost 40 ms a request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: tests read their own output
        pass

    # ------------------------------------------------------------ plumbing

    def send(self, status, body, ctype="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test)

    def error(self, status, message, kind="invalid_request_error", headers=()):
        self.send(status, {"error": {"message": message, "type": kind, "code": status}},
                  headers=headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def read_json(self):
        try:
            body = json.loads(self.read_body() or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            self.error(400, "body is not JSON: %s" % e)
            return None
        if not isinstance(body, dict):
            self.error(400, "body is not a JSON object")
            return None
        return body

    # ------------------------------------------------------------ routing

    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/control/stats":
            st = self.server.state
            with st.lock:
                self.send(200, {"requests": dict(st.counts), "total": st.total,
                                "last_authorization": st.last_authorization,
                                "last_model": st.last_model, "last_chat": st.last_chat})
            return
        if path == "/v1/models":
            if self.faults("models"):
                return
            self.send(200, {"object": "list", "data": [
                {"id": "test-model", "object": "model", "created": 0, "owned_by": "am-test"}]})
            return
        self.error(404, "no such endpoint: GET %s" % path)

    def do_POST(self):
        url = urlparse(self.path)
        if url.path == "/control":
            self.control()
            return
        kind = ENDPOINTS.get(url.path)
        if kind is None or kind == "models":
            try:
                self.read_body()
            except ValueError:
                self.close_connection = True
            self.error(404, "no such endpoint: POST %s" % url.path)
            return
        if self.faults(kind):
            return
        if kind == "chat":
            self.chat()
        elif kind == "embeddings":
            self.embeddings(parse_qs(url.query))
        else:
            self.transcriptions()

    def control(self):
        body = self.read_json()
        if body is None:
            return
        st = self.server.state
        try:
            with st.lock:
                if body.get("reset"):
                    st.reset()
                if "fail_next" in body:
                    status = int(body.get("status", 500))
                    if not 100 <= status <= 599:
                        raise ValueError("status must be 100..599")
                    st.fail_next = int(body["fail_next"])
                    st.fail_status = status
                    ra = body.get("retry_after")
                    st.fail_retry_after = None if ra is None else str(ra)
                    st.fail_message = str(body.get("message", "injected failure"))
                if "delay_next" in body:
                    st.delay_next = int(body["delay_next"])
                    st.delay_seconds = float(body.get("seconds", 1.0))
                if "invalid_json_next" in body:
                    st.invalid_json_next = int(body["invalid_json_next"])
        except (TypeError, ValueError) as e:
            self.error(400, "bad control request: %s" % e)
            return
        self.send(200, {"ok": True})

    def faults(self, kind):
        """Counts the request and applies pending faults. True when it was answered."""
        st = self.server.state
        with st.lock:
            st.counts[kind] += 1
            st.total += 1
            st.last_authorization = self.headers.get("Authorization")
            delay = 0.0
            if st.delay_next > 0:
                st.delay_next -= 1
                delay = st.delay_seconds
            fail = None
            if st.fail_next > 0:
                st.fail_next -= 1
                fail = (st.fail_status, st.fail_message, st.fail_retry_after)
        if delay:
            time.sleep(delay)
        if fail:
            try:
                self.read_body()
            except ValueError:
                self.close_connection = True
            status, message, retry_after = fail
            headers = [("Retry-After", retry_after)] if retry_after is not None else []
            kind = ("server_error" if status >= 500 else "rate_limit_error" if status == 429
                    else "invalid_request_error")
            self.error(status, message, kind, headers)
            return True
        return False

    # ------------------------------------------------------------ endpoints

    def chat(self):
        body = self.read_json()
        if body is None:
            return
        st = self.server.state
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self.error(400, "messages must be a non-empty array")
            return
        try:
            size = image_size(messages)
        except (ValueError, TypeError) as e:
            self.error(400, str(e))
            return
        with st.lock:
            st.last_model = body.get("model")
            st.last_chat = json.loads(json.dumps(body))
            for m in st.last_chat.get("messages", []):
                if isinstance(m, dict) and isinstance(m.get("content"), list):
                    for p in m["content"]:
                        if isinstance(p, dict) and isinstance(p.get("image_url"), dict):
                            p["image_url"]["url"] = "(left out)"
            invalid = False
            if st.invalid_json_next > 0:
                st.invalid_json_next -= 1
                invalid = True
        user = ""
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user":
                user = message_text(m.get("content"))
        fmt = body.get("response_format")
        schema = None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            js = fmt.get("json_schema")
            schema = js.get("schema") if isinstance(js, dict) else None
            if not isinstance(schema, dict):
                self.error(400, "response_format.json_schema.schema must be an object")
                return

        # Answers that are wrong at the envelope level.
        raw = None
        if "AM_TEST_NO_CHOICES" in user:
            raw = self.envelope(body, None, choices=[])
        elif "AM_TEST_BAD_ENVELOPE" in user:
            raw = {"choices": "nope"}
        elif "AM_TEST_CONTENT_NOT_STRING" in user:
            raw = self.envelope(body, 42)
        elif "AM_TEST_NULL_CONTENT" in user:
            raw = self.envelope(body, None, refusal="I will not do that")
        elif "AM_TEST_ARRAY_BODY" in user:
            raw = [1, 2, 3]
        elif "AM_TEST_EMPTY_BODY" in user:
            self.send(200, b"")
            return
        elif "AM_TEST_NON_UTF8" in user:
            text = json.dumps(self.envelope(body, "placeholder")).encode()
            self.send(200, text.replace(b"placeholder", b"bad \xff\xfe bytes \xc3("))
            return
        elif "AM_TEST_HUGE_NUMBER" in user:
            text = json.dumps(self.envelope(body, "placeholder")).encode()
            self.send(200, text.replace(b'"placeholder"', b"1e999").replace(
                b'"index": 0', b'"index": 1234567890123456789012345678901234567890'))
            return
        elif "AM_TEST_TRUNCATED" in user:
            text = json.dumps(self.envelope(body, "some text")).encode()
            self.send(200, text[:len(text) // 2])
            return
        if raw is not None:
            self.send(200, raw)
            return

        if size is not None:
            content = "an image of %d bytes" % size
        elif invalid or "AM_TEST_NOT_JSON" in user:
            content = "Sure! Here is what you asked for: " + summary(user)
        elif schema is not None:
            if "AM_TEST_NOT_OBJECT" in user:
                obj = [1, 2, 3]
            else:
                obj = generate(schema, "", user)
                if not isinstance(obj, dict):
                    obj = {"value": obj}
                required = schema.get("required") if isinstance(schema.get("required"), list) else []
                if "AM_TEST_MISSING_REQUIRED" in user and required:
                    obj.pop(required[0], None)
                if "AM_TEST_WRONG_TYPE" in user:
                    obj = {k: wrong(v) for k, v in obj.items()}
            content = json.dumps(obj)
            if "AM_TEST_FENCED" in user:
                content = "```json\n" + content + "\n```"
        else:
            content = "you said: " + summary(user)
        self.send(200, self.envelope(body, content))

    def envelope(self, body, content, choices=None, refusal=None):
        model = body.get("model") if isinstance(body.get("model"), str) else "test-model"
        message = {"role": "assistant", "content": content}
        if refusal is not None:
            message["refusal"] = refusal
        if choices is None:
            choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000,
                "model": model, "choices": choices,
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    def embeddings(self, query):
        body = self.read_json()
        if body is None:
            return
        st = self.server.state
        with st.lock:
            st.last_model = body.get("model")
        inp = body.get("input")
        if isinstance(inp, str):
            inp = [inp]
        if not isinstance(inp, list) or not all(isinstance(t, str) for t in inp):
            self.error(400, "input must be a string or an array of strings")
            return
        dim = st.dim
        if isinstance(body.get("dimensions"), int) and body["dimensions"] > 0:
            dim = body["dimensions"]
        if "dim" in query:
            try:
                dim = int(query["dim"][0])
            except ValueError:
                dim = 0
        if not 1 <= dim <= 65536:
            self.error(400, "dimension must be 1..65536")
            return
        data = []
        for i, text in enumerate(inp):
            vec = embed(text, dim)
            if "AM_TEST_EMBED_BAD_DIM" in text:
                vec = vec[:-1]
            if "AM_TEST_EMBED_BAD_VALUE" in text:
                vec[0] = "x"
            data.append({"object": "embedding", "index": i, "embedding": vec})
        if any("AM_TEST_EMBED_BAD_INDEX" in t for t in inp):
            for d in data:
                d["index"] = 0
        if any("AM_TEST_EMBED_MISSING" in t for t in inp):
            data = data[:-1]
        data.reverse()
        self.send(200, {"object": "list", "data": data, "model": body.get("model"),
                        "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    def transcriptions(self):
        ctype = self.headers.get("Content-Type", "")
        try:
            body = self.read_body()
            parts = parse_multipart(body, ctype) if ctype.startswith("multipart/form-data") else None
        except ValueError as e:
            self.close_connection = True
            self.error(400, str(e))
            return
        if parts is None:
            self.error(400, "expected multipart/form-data")
            return
        if "file" not in parts:
            self.error(400, "no file part")
            return
        st = self.server.state
        with st.lock:
            st.last_model = parts.get("model", (None, b""))[1].decode("utf-8", "replace")
        data = parts["file"][1]
        fmt = parts.get("response_format", (None, b"json"))[1].decode("utf-8", "replace")
        said = "hello from the test server"
        text = "%s (%d bytes)" % (said, len(data))
        if fmt == "text":
            self.send(200, text, "text/plain")
            return
        if fmt == "json" or data.startswith(b"AM_TEST_PLAIN"):
            self.send(200, {"text": text})
            return
        if data.startswith(b"AM_TEST_NO_TEXT"):
            self.send(200, {"language": "english", "segments": []})
            return
        segments = [{"id": 0, "seek": 0, "start": 0.0, "end": 1.0, "text": said,
                     "tokens": [], "temperature": 0.0, "avg_logprob": -0.1,
                     "compression_ratio": 1.0, "no_speech_prob": 0.0}]
        if data.startswith(b"AM_TEST_BAD_SEGMENTS"):
            segments = ["not a segment"]
        self.send(200, {"task": "transcribe", "language": "english", "duration": 1.0,
                        "text": text, "segments": segments})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that hangs up (a timeout test does) is not an error of this server.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--dim", type=int, default=64)
    args = ap.parse_args()
    server = Server((args.host, args.port), Handler)
    server.state = State(args.dim)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
