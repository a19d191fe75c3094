"""A real local HTTP server speaking OpenAI's chat-completions streaming protocol (SSE).

Each request takes the next :class:`Reply` from the script (``server.script(...)``), or
the default one: a stream of tokens at an interval, a refusal (429 with ``Retry-After``,
500), a connection cut after some tokens, or a whole non-streamed JSON answer. It records
every request (body and headers) and every stream its client abandoned (a cancel), so
tests wait on those facts instead of sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIServer", "Recorded", "Reply", "running"]


@dataclass(frozen=True)
class Reply:
    """How to answer one request."""

    tokens: Sequence[str] = ("Hello", " there", ".", " I am", " TARS", ".")
    interval: float = 0.0  # seconds before each token
    status: int = 200
    retry_after: float | None = None
    body: str = ""  # of a refusal
    cut_after: int | None = None  # close the connection after this many tokens
    stream: bool = True  # False: one JSON body, as servers that ignore "stream" do


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        return "\n".join(m.get("content", "") for m in self.body.get("messages", []))


class OpenAIServer:
    """``with running() as server``: ``server.url`` is the ``/v1`` base address."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.abandoned = 0  # streams the client closed before the end
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                outer._record(Recorded(self.path, dict(self.headers.items()), body))
                reply = outer._next()
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "no such path"}}')
                elif reply.status != 200:
                    self._send(reply.status, reply.body.encode(), reply.retry_after)
                elif not reply.stream:
                    self._whole(reply)
                else:
                    self._stream(reply)

            def _send(self, status: int, body: bytes, retry_after: float | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if retry_after is not None:
                    self.send_header("Retry-After", f"{retry_after:g}")
                self.end_headers()
                self.wfile.write(body)

            def _whole(self, reply: Reply) -> None:
                answer = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": "".join(reply.tokens)}}]}
                self._send(200, json.dumps(answer).encode())

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    self._chunk(": a comment, which clients ignore\n\n")
                    for n, token in enumerate(reply.tokens):
                        if reply.cut_after is not None and n >= reply.cut_after:
                            self.close_connection = True
                            self.wfile.flush()
                            return  # no terminating chunk: the client sees a cut stream
                        if reply.interval:
                            time.sleep(reply.interval)
                        self._event({"choices": [{"index": 0, "delta": {"content": token},
                                                  "finish_reason": None}]})
                    self._event({"choices": [{"index": 0, "delta": {},
                                              "finish_reason": "stop"}]})
                    self._chunk("data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    outer._abandon()

            def _event(self, chunk: dict[str, Any]) -> None:
                self._chunk(f"data: {json.dumps(chunk)}\n\n")

            def _chunk(self, text: str) -> None:
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="openai-server", daemon=True)

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order, then with ``default``."""
        with self._cond:
            self._script.extend(replies)

    def wait(self, predicate: Callable[[OpenAIServer], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(server)`` holds (checked whenever a request comes or ends)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"not within {timeout} s: {len(self.requests)} requests,"
                                     f" {self.abandoned} abandoned")

    def _next(self) -> Reply:
        with self._cond:
            return self._script.popleft() if self._script else self.default

    def _record(self, recorded: Recorded) -> None:
        with self._cond:
            self.requests.append(recorded)
            self._cond.notify_all()

    def _abandon(self) -> None:
        with self._cond:
            self.abandoned += 1
            self._cond.notify_all()


@contextmanager
def running() -> Iterator[OpenAIServer]:
    server = OpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()
