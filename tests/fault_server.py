"""A scripted OpenAI-compatible server on 127.0.0.1 for testing the HTTP provider against real sockets.

Each POST /v1/chat/completions consumes one action from `server.script`; when the script is empty the
answer is `ok()`, or, with a `rate`, a fault drawn from `kinds`. Everything is standard library (plus the
product's schema filler): a ThreadingHTTPServer on an OS-chosen port, served from a daemon thread.

    with FaultServer([status(429, {"Retry-After": "2"}), ok()]) as server:
        ...  # point a model card's base_url at server.base_url

    with FaultServer(schema=True, rate=0.2, kinds=ALL_FAULTS, seed=1) as server:
        ...  # a whole run: ok answers fit the request's schema; about 20% of requests fail, in every kind

The draw is deterministic. With `schema=True` an ok answer is filled from a hash of the request body, as
the test model fills it from the request key. Whether a request fails, and how, depends on its body and
the seed and, for the faults a client retries with the same body (`TRANSIENT`), on how many times that
body was seen before; so a rerun of the same requests meets the same faults and the same answers.
`counts` tallies every response by `Action.label`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from timepoint.llm.providers.test import _WORD, _fill


@dataclass(frozen=True)
class Action:
    """What the server does with one request."""

    kind: str  # ok | status | hang | garbled | empty | error_in_body | drop | cut_off | invalid | broken_stream
    code: int = 200
    headers: dict = field(default_factory=dict)
    body: str = ""
    seconds: float = 0.0

    @property
    def label(self) -> str:
        """The key this response is counted under in `FaultServer.counts`: the kind, with the code for status."""
        return f"status {self.code}" if self.kind == "status" else self.kind


def ok() -> Action:
    """A normal answer whose content is `server.answer`, or with `schema=True` an instance of the request's schema."""
    return Action("ok")


def status(code: int, headers: dict | None = None, body: str = "") -> Action:
    """An HTTP error (or any status) with the given headers and body, e.g. 429 with Retry-After."""
    return Action("status", code=code, headers=dict(headers or {}), body=body)


def hang(seconds: float) -> Action:
    """Wait `seconds` (or until the server closes), then answer ok: long enough to trip a client timeout."""
    return Action("hang", seconds=seconds)


def garbled() -> Action:
    """HTTP 200 whose body is not JSON."""
    return Action("garbled")


def empty() -> Action:
    """HTTP 200 whose choices[0].message.content is the empty string."""
    return Action("empty")


def error_in_body(code: int = 502, message: str = "upstream provider failed") -> Action:
    """HTTP 200 carrying {"error": {...}}, as OpenRouter reports mid-generation failures."""
    return Action("error_in_body", code=code, body=message)


def drop() -> Action:
    """Close the connection without sending any response."""
    return Action("drop")


def cut_off() -> Action:
    """HTTP 200 whose content is the ok answer cut off mid-JSON, with finish_reason "length"."""
    return Action("cut_off")


def invalid() -> Action:
    """HTTP 200 whose content is JSON that parses but does not fit the request's schema."""
    return Action("invalid")


def broken_stream() -> Action:
    """A streamed answer (`stream: true`) that sends its first pieces, then closes the connection mid-answer."""
    return Action("broken_stream")


# Every kind of failure a whole run meets in the fault tests (Retry-After kept at 0 so they stay quick).
ALL_FAULTS = (status(500), status(429, {"Retry-After": "0"}), garbled(), drop(), cut_off(), invalid(), empty())
# Answers a client retries with the same body: drawn afresh per occurrence of a body. Any other fault (a
# cut-off or unfit answer) is what the server answers that body every time, as a deterministic model would.
TRANSIENT = {"status", "hang", "garbled", "empty", "error_in_body", "drop"}


def body_hash(body: dict | None) -> str:
    """The content address of a request body (keys sorted): the same request, the same hash."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def request_schema(body: dict | None) -> dict | None:
    """The JSON schema a request asks for: json_schema's response_format, or the grammar mode's."""
    fmt = (body or {}).get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    return fmt.get("schema")


def schema_answer(body: dict | None) -> str | None:
    """A valid instance of the request's schema, filled from the body's hash and the last message's words
    exactly as the test model fills it; None when the request carries no schema."""
    schema = request_schema(body)
    if not schema:
        return None
    messages = body.get("messages") or [{"content": ""}]
    words = _WORD.findall(messages[-1].get("content") or "") or ["nothing"]
    return json.dumps(_fill(schema, schema, random.Random(body_hash(body)), words))


def unfit_answer(body: dict | None, answer: str) -> str:
    """JSON that parses but breaks the schema: the first required field left out, else the object as a list."""
    schema = request_schema(body) or {}
    value = json.loads(answer)
    required = [name for name in schema.get("required", []) if isinstance(value, dict) and name in value]
    if required:
        del value[required[0]]
        return json.dumps(value)
    return json.dumps([value])


def truncated(answer: str) -> str:
    """The answer cut off mid-JSON: it stops inside the object, brackets open, as at max_tokens."""
    return answer[:max(1, len(answer) // 2)]


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = 10  # a stuck client cannot hold a handler thread (and so shutdown) for long

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def do_POST(self):
        fault = self.server.fault
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, b'{"error": "not found"}')
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        action = fault._record(body, {k.lower(): v for k, v in self.headers.items()})
        try:
            # Counted as active from the request's arrival until just before the answer goes out, so a client
            # cannot see the answer (and send its next request) while this one still counts.
            with fault._active():
                if action.kind == "hang":
                    fault._stopping.wait(action.seconds)
                if action.kind in ("ok", "hang", "cut_off", "invalid") and fault.delay:
                    fault._stopping.wait(fault.delay)
            try:
                self._act(action, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout): nothing to answer
        finally:
            with fault._lock:
                fault.pending -= 1

    def _act(self, action: Action, body: dict | None) -> None:
        fault = self.server.fault
        if action.kind == "drop":
            self.close_connection = True
            return
        if action.kind == "status":
            headers = {"Content-Type": "text/plain", **action.headers}
            self._send(action.code, action.body.encode(), headers)
        elif action.kind == "garbled":
            self._send(200, b"<html>502 Bad Gateway</html>\n{not json", {"Content-Type": "application/json"})
        elif action.kind == "error_in_body":
            self._json({"error": {"code": action.code, "message": action.body}})
        elif action.kind == "empty":
            self._json(fault._completion(body, content=""))
        elif action.kind == "cut_off":
            self._json(fault._completion(body, content=truncated(fault._answer(body)), finish_reason="length"))
        elif action.kind == "invalid":
            self._json(fault._completion(body, content=unfit_answer(body, fault._answer(body))))
        elif action.kind == "broken_stream":
            self._stream(fault._answer(body), {}, broken=True)
        elif body and body.get("stream"):  # ok, hang: server-sent events, usage in the last one
            self._stream(fault._answer(body), fault._completion(body, "")["usage"])
        else:  # ok, hang
            self._json(fault._completion(body, content=fault._answer(body)))

    def _stream(self, answer: str, usage: dict, broken: bool = False) -> None:
        """The answer as `chat.completion.chunk` events, three characters each, as an OpenAI server streams;
        `broken` stops after the first two pieces without ending the stream."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        pieces = [answer[i:i + 3] for i in range(0, len(answer), 3)]
        for n, piece in enumerate(pieces):
            if broken and n == 2:
                self.wfile.flush()
                self.close_connection = True
                return
            event = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece},
                                                                     "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        final = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                 "usage": usage}
        self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        self.close_connection = True

    def _json(self, payload: dict) -> None:
        self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _send(self, code: int, data: bytes, headers: dict | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fault: FaultServer


class FaultServer:
    """The scripted server; `requests` and `headers` hold what each request sent, in arrival order."""

    def __init__(self, script: list[Action] | None = None, *, answer: str = '{"ok": true}',
                 cost: float | None = None, delay: float = 0.0, schema: bool = False, rate: float = 0.0,
                 kinds: tuple[Action, ...] | list[Action] = ALL_FAULTS, seed: int = 0):
        self.script = list(script or [])
        self.answer = answer          # content of every ok answer (unless `schema`)
        self.schema = schema          # ok answers are instances of the request's schema (`schema_answer`)
        self.cost = cost              # reported as usage.cost when not None
        self.delay = delay            # seconds every ok answer waits, to make concurrency observable
        self.rate = rate              # the share of unscripted requests that fail, in one of `kinds`
        self.kinds = tuple(kinds)
        self.seed = seed              # another seed, other faults (the same requests)
        self.requests: list[dict | None] = []   # parsed JSON bodies
        self.headers: list[dict] = []           # request headers, names lower-cased
        self.counts: Counter[str] = Counter()   # responses by Action.label
        self.active = 0               # requests being handled now
        self.max_active = 0           # the most handled at once
        self.pending = 0              # requests received whose response is not yet written out
        self._seen: Counter[str] = Counter()    # occurrences of each request body (by body_hash)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *actions: Action) -> None:
        with self._lock:
            self.script.extend(actions)

    def start(self) -> FaultServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fault = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; hanging and delayed handlers wake up at once, and their threads are joined."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- called from handler threads ---

    def _record(self, body: dict | None, headers: dict) -> Action:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.pending += 1
            key = body_hash(body)
            self._seen[key] += 1
            action = self.script.pop(0) if self.script else self._draw(key, self._seen[key])
            self.counts[action.label] += 1
            return action

    def _draw(self, key: str, nth: int) -> Action:
        """The response to an unscripted request: a fault with probability about `rate`, deterministic in
        the body's hash, the seed and (for transient faults) the body's occurrence `nth`."""
        if not self.rate or not self.kinds:
            return ok()
        share = self.rate / len(self.kinds)
        sticky = [a for a in self.kinds if a.kind not in TRANSIENT]
        transient = [a for a in self.kinds if a.kind in TRANSIENT]
        rng = random.Random(f"{self.seed}:{key}")
        if sticky and rng.random() < share * len(sticky):
            return rng.choice(sticky)
        rng = random.Random(f"{self.seed}:{key}:{nth}")
        if transient and rng.random() < share * len(transient):
            return rng.choice(transient)
        return ok()

    def _answer(self, body: dict | None) -> str:
        """An ok answer's content: the request's schema filled in (`schema=True`), else `answer`."""
        return (self.schema and schema_answer(body)) or self.answer

    @contextmanager
    def _active(self):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1

    def _completion(self, body: dict | None, content: str, finish_reason: str = "stop") -> dict:
        usage = {"prompt_tokens": 40, "completion_tokens": 12}
        if self.cost is not None:
            usage["cost"] = self.cost
        return {
            "id": f"chatcmpl-fault-{next(self._ids)}",
            "object": "chat.completion",
            "model": (body or {}).get("model", "fault"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}],
            "usage": usage,
        }


@pytest.fixture
def fault_server():
    """A started FaultServer with an empty script, closed after the test."""
    with FaultServer() as server:
        yield server
