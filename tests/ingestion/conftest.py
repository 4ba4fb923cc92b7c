"""A real HTTP server on 127.0.0.1 that replays recorded provider responses, and a fake sleep.

Requests really cross a socket (httpx's default transport, or botocore's), so timeouts, headers,
status codes and bodies behave as they would against the provider. Replies are scripted per
(method, path): each request takes the next reply; the last one repeats.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

RECORDED = Path(__file__).resolve().parent / "recorded"
FIXED_NOW = datetime(2026, 7, 30, 12, 0, tzinfo=UTC)


@dataclass
class Reply:
    status: int = 200
    body: str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ReplayServer:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], deque[Reply]] = {}
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        handler = self._handler_class()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, method: str, path: str, *replies: Reply) -> None:
        self._routes[(method.upper(), path)] = deque(replies)

    def seen(self, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == path]

    def _next(self, method: str, path: str) -> Reply:
        with self._lock:
            queue = self._routes.get((method, path))
            if not queue:
                return Reply(404, json.dumps({"error": f"no route {method} {path}"}))
            return queue.popleft() if len(queue) > 1 else queue[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append(
                        SeenRequest(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                    )
                reply = server._next(self.command, parts.path)
                payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    srv = ReplayServer()
    srv.start()
    yield srv
    srv.stop()


class FakeSleep:
    """Records the waits the retry policy asked for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> FakeSleep:
    return FakeSleep()


def recorded(name: str, **subs: str) -> str:
    """A recorded response body; '{{base_url}}'-style placeholders are filled in (paging links)."""
    text = (RECORDED / name).read_text()
    for key, value in subs.items():
        text = text.replace("{{" + key + "}}", value)
    return text
