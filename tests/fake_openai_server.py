"""A scripted OpenAI-compatible `/v1/chat/completions` server for tests.

Runs on 127.0.0.1 (port 0: the OS picks) in a daemon thread. Each request is
answered by a `Reply` chosen by a responder (a list consumed in order, or a
function of the request); it can send chat choices, an HTTP error with headers,
a raw (malformed) body, or wait before answering (bounded, to model a slow
server; a client that hangs up meanwhile is not answered). Every request body
received is recorded, and so is the most requests the server was answering at
one time for clients still connected (`peak_active`).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

#: Longest a scripted reply may wait, so a test can never hang on the server.
MAX_DELAY_S = 3.0


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    Attributes:
        contents: message contents of the choices (a 200 reply).
        status: HTTP status; non-200 sends an OpenAI-style error body.
        headers: extra headers (e.g. {"Retry-After": "0"}).
        body: raw body bytes sent as is (malformed JSON tests); overrides contents.
        delay_s: wait before answering (capped at MAX_DELAY_S).
        usage: the `usage` object; None leaves it out.
        honour_n: False returns only the first choice whatever `n` asked.
    """

    contents: Sequence[str] = ()
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes | None = None
    delay_s: float = 0.0
    usage: dict | None = field(default_factory=lambda: {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150})
    honour_n: bool = True


Responder = Callable[[int, dict], Reply]


def scripted(replies: Sequence[Reply], then: Reply | None = None) -> Responder:
    """Answer request i with replies[i]; after the list, with `then` (default: a 500)."""
    fallback = then or Reply(status=500)

    def respond(index: int, request: dict) -> Reply:
        return replies[index] if index < len(replies) else fallback

    return respond


def _hung_up(connection: socket.socket) -> bool:
    """Has the client closed this connection (EOF or an error waiting to be read)?"""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and not connection.recv(1, socket.MSG_PEEK)
    except OSError:
        return True


class FakeOpenAIServer:
    """The server; use as a context manager. `url` is the `base_url` to give the client."""

    def __init__(self, responder: Responder):
        self.responder = responder
        self.requests: list[dict] = []
        self.write_failures = 0
        self.abandoned = 0  # requests whose client hung up while the reply waited
        self.active = 0  # requests being answered now
        self._live: dict[int, socket.socket] = {}  # request index -> its connection, while answered
        self.peak_active = 0  # the most answered at one time
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _record(self, body: dict, connection: socket.socket) -> int:
        with self._lock:
            self.requests.append(body)
            index = len(self.requests) - 1
            self._live[index] = connection
            self.active += 1
            # a request whose client already hung up (a timeout, then the retry that brought this
            # one) still has its handler waiting to notice; it is not in flight for the client
            live = sum(1 for c in self._live.values() if not _hung_up(c))
            self.peak_active = max(self.peak_active, live)
            return index

    def _done(self, index: int) -> None:
        with self._lock:
            self.active -= 1
            self._live.pop(index, None)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
                return None

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = {"_unparsable": raw.decode("utf-8", "replace")}
                index = server._record(body, self.connection)
                try:
                    self._answer(index, body)
                finally:
                    server._done(index)

            def _answer(self, index: int, body: dict) -> None:
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}, {})
                    return
                reply = server.responder(index, body)
                if reply.delay_s and not self._wait(min(reply.delay_s, MAX_DELAY_S)):
                    with server._lock:
                        server.abandoned += 1
                    return
                if reply.status != 200:
                    self._send(reply.status, {"error": {"message": f"scripted {reply.status}", "type": "server_error"}}, reply.headers)
                    return
                if reply.body is not None:
                    self._send_bytes(200, reply.body, reply.headers)
                    return
                n = int(body.get("n", 1) or 1) if reply.honour_n else 1
                contents = list(reply.contents)[:n] if reply.honour_n else list(reply.contents)[:1]
                payload = {
                    "id": f"chatcmpl-{index}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [
                        {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
                        for i, c in enumerate(contents)
                    ],
                }
                if reply.usage is not None:
                    payload["usage"] = reply.usage
                self._send(200, payload, reply.headers)

            def _wait(self, seconds: float) -> bool:
                """Wait `seconds`; False as soon as the client hangs up (e.g. it timed out)."""
                end = time.monotonic() + seconds
                while (left := end - time.monotonic()) > 0:
                    readable, _, _ = select.select([self.connection], [], [], min(left, 0.02))
                    if not readable:
                        continue
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return False
                    except OSError:
                        return False
                    time.sleep(max(0.0, end - time.monotonic()))  # bytes from a live client: just wait
                return True

            def _send(self, status: int, payload: dict, headers: dict) -> None:
                self._send_bytes(status, json.dumps(payload).encode("utf-8"), headers)

            def _send_bytes(self, status: int, data: bytes, headers: dict) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    with server._lock:
                        server.write_failures += 1

        return Handler
