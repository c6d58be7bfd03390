"""A scripted OpenAI-compatible server on 127.0.0.1 for testing the HTTP provider against real sockets.

Each POST /v1/chat/completions consumes one action from `server.script`; when the script is empty the
answer is `ok()`. Everything is standard library: a ThreadingHTTPServer on an OS-chosen port, served
from a daemon thread.

    with FaultServer([status(429, {"Retry-After": "2"}), ok()]) as server:
        ...  # point a model card's base_url at server.base_url
"""

from __future__ import annotations

import itertools
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass(frozen=True)
class Action:
    """What the server does with one request."""

    kind: str  # ok | status | hang | garbled | empty | error_in_body | drop
    code: int = 200
    headers: dict = field(default_factory=dict)
    body: str = ""
    seconds: float = 0.0


def ok() -> Action:
    """A normal answer whose content is `server.answer`."""
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
        # Counted as active from the request's arrival until just before the answer goes out, so a client
        # cannot see the answer (and send its next request) while this one still counts.
        with fault._active():
            if action.kind == "hang":
                fault._stopping.wait(action.seconds)
            if action.kind in ("ok", "hang") and fault.delay:
                fault._stopping.wait(fault.delay)
        try:
            self._act(action, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): nothing to answer

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
        else:  # ok, hang
            self._json(fault._completion(body, content=fault.answer))

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
                 cost: float | None = None, delay: float = 0.0):
        self.script = list(script or [])
        self.answer = answer          # content of every ok answer
        self.cost = cost              # reported as usage.cost when not None
        self.delay = delay            # seconds every ok answer waits, to make concurrency observable
        self.requests: list[dict | None] = []   # parsed JSON bodies
        self.headers: list[dict] = []           # request headers, names lower-cased
        self.active = 0               # requests being handled now
        self.max_active = 0           # the most handled at once
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
            return self.script.pop(0) if self.script else ok()

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

    def _completion(self, body: dict | None, content: str) -> dict:
        usage = {"prompt_tokens": 40, "completion_tokens": 12}
        if self.cost is not None:
            usage["cost"] = self.cost
        return {
            "id": f"chatcmpl-fault-{next(self._ids)}",
            "object": "chat.completion",
            "model": (body or {}).get("model", "fault"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": usage,
        }


@pytest.fixture
def fault_server():
    """A started FaultServer with an empty script, closed after the test."""
    with FaultServer() as server:
        yield server
