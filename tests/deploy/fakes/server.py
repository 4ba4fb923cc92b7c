"""A tiny harness for stateful provider fakes served over real HTTP on loopback.

A fake is a ``FakeApp`` subclass: it lists its routes (method, path regex, handler), keeps its
state under ``self.lock``, answers in the provider's documented shapes, and maps the harness's
named errors (``no_capacity``, ``quota``, ``auth``, ``rate_limit``, ``server_error``, ...) to the
provider's own error bodies in ``error_response``. ``FakeServer`` runs it on 127.0.0.1 on a free
port in a thread (``ThreadingHTTPServer``: a delayed answer does not block other calls).

Control endpoints (real HTTP, as the tests and chaos scripts drive them):

``POST /_control`` with a JSON object; every key is optional and stays until reset::

    {"faults": [{"op": "create", "error": "no_capacity", "times": 1}],
     "listing_lag_calls": 2,      # a new instance is missing from the next 2 list calls
     "listing_lag_s": 0.0,        # ... and from lists for this many seconds
     "page_size": 25,             # items per page where the provider pages
     "destroy_linger_calls": 0}   # after an accepted destroy, reads still show it this many times

A fault: ``op`` (the fake's operation name: create, list, get, destroy, stop, start, ...);
``error`` (a named error) or ``status`` + ``body`` (raw); ``retry_after`` (the 429 header value,
omitted = no header); ``times`` (how many calls it hits, -1 = until reset); ``after_effect`` (the
operation is carried out first and then the error or delay is answered: create-then-500);
``delay_s`` (hang before answering: with ``after_effect`` and no error this is create-then-timeout);
``skip`` (let this many calls through first: a second page failing).

``POST /_control/reset`` forgets instances, faults and settings. ``GET /_control/state`` answers
``{"instances": [...], "requests": N}`` with every instance the fake holds, hidden or not, so a test
can check what really exists at the "provider".
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass
class Request:
    """One HTTP request as a fake sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    """What a fake answers: a JSON-able body (or raw bytes), a status and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


@dataclass
class Fault:
    """One injected misbehaviour of an operation (see the module docstring)."""

    op: str
    error: str | None = None
    status: int | None = None
    body: Any = None
    retry_after: str | None = None
    times: int = 1
    after_effect: bool = False
    delay_s: float = 0.0
    skip: int = 0

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Fault:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        if "op" not in data:
            raise ValueError("a fault needs 'op'")
        ra = data.get("retry_after")
        return cls(**{**data, "retry_after": None if ra is None else str(ra)})


class FaultBook:
    """Faults by operation, consumed in order as calls hit them."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def take(self, op: str) -> Fault | None:
        for fault in self._faults:
            if fault.op == op and fault.times != 0:
                if fault.skip > 0:  # let this call through untouched
                    fault.skip -= 1
                    return None
                if fault.times > 0:
                    fault.times -= 1
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()


Handler = Callable[[Request, re.Match[str]], Response]


@dataclass
class Lag:
    """How long a new instance stays out of lists: a number of list calls and/or seconds."""

    calls_left: int
    visible_at: float


class FakeApp:
    """Base of a provider fake: routing, faults, listing lag, control and the state endpoint."""

    SETTINGS: dict[str, Any] = {
        "listing_lag_calls": 0,
        "listing_lag_s": 0.0,
        "page_size": 25,
        "destroy_linger_calls": 0,
    }

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.faults = FaultBook()
        self.settings: dict[str, Any] = dict(self.SETTINGS)
        self.requests: list[tuple[str, str]] = []
        self._lags: dict[str, Lag] = {}
        self._compiled = [(m, re.compile(p + r"\Z"), h) for m, p, h in self.routes()]

    # -- to override -------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def error_response(self, name: str, fault: Fault) -> Response:
        """The provider's documented answer for a named error."""
        raise NotImplementedError

    def not_found(self, request: Request) -> Response:
        return Response(404, {"error": "no route"})

    def reset_state(self) -> None:
        """Forget instances (called under the lock by reset)."""
        raise NotImplementedError

    def state(self) -> list[dict[str, Any]]:
        """Every instance held, for GET /_control/state."""
        raise NotImplementedError

    def authorized(self, request: Request) -> bool:
        return True

    # -- shared mechanics --------------------------------------------------------------------------
    def control(self, payload: dict[str, Any]) -> None:
        with self.lock:
            for key, value in payload.items():
                if key == "faults":
                    for item in value:
                        self.faults.add(Fault.parse(item))
                elif key in self.settings:
                    self.settings[key] = value
                else:
                    raise ValueError(f"unknown control setting {key!r}")

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.settings = dict(self.SETTINGS)
            self.requests.clear()
            self._lags.clear()
            self.reset_state()

    def born(self, instance_id: str) -> None:
        """Start the listing lag of a new instance (call when it is created)."""
        self._lags[instance_id] = Lag(
            int(self.settings["listing_lag_calls"]), time.monotonic() + float(self.settings["listing_lag_s"])
        )

    def listed(self, ids: list[str]) -> set[str]:
        """One list call: the ids visible in it (lagging ones are hidden and count this call)."""
        now = time.monotonic()
        visible: set[str] = set()
        for instance_id in ids:
            lag = self._lags.get(instance_id)
            if lag is None:
                visible.add(instance_id)
                continue
            hidden = lag.calls_left > 0 or now < lag.visible_at
            lag.calls_left = max(0, lag.calls_left - 1)
            if not hidden:
                visible.add(instance_id)
                del self._lags[instance_id]
        return visible

    def call(self, op: str, action: Callable[[], Response]) -> Response:
        """Run an operation through its faults: before, after (``after_effect``) or delayed."""
        with self.lock:
            fault = self.faults.take(op)
            if fault is None or not fault.after_effect:
                result = None if fault is not None else action()
            else:
                result = action()
        if fault is None:
            assert result is not None
            return result
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.error is None and fault.status is None:
            if result is None:  # a slow call: the delay, then the operation
                with self.lock:
                    result = action()
            return result
        if fault.error is not None:
            return self.error_response(fault.error, fault)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return Response(fault.status or 500, fault.body, headers)

    def dispatch(self, request: Request) -> Response:
        if request.path == "/_control" and request.method == "POST":
            try:
                self.control(request.json() or {})
            except (ValueError, TypeError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(200, {"ok": True})
        if request.path == "/_control/reset" and request.method == "POST":
            self.reset()
            return Response(200, {"ok": True})
        if request.path == "/_control/state" and request.method == "GET":
            with self.lock:
                return Response(200, {"instances": self.state(), "requests": len(self.requests)})
        with self.lock:
            self.requests.append((request.method, request.path))
        for method, pattern, handler in self._compiled:
            if method != request.method:
                continue
            match = pattern.match(request.path)
            if match:
                if not self.authorized(request):
                    return self.error_response("auth", Fault(op="auth"))
                return handler(request, match)
        return self.not_found(request)


def _handler_class(app: FakeApp) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in separate writes: with Nagle's algorithm on, a keep-alive client
        # waited ~40 ms (delayed ACK) on every call; 45 -> 1.6 ms a request measured
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            response = app.dispatch(request)
            if response.raw is not None:
                payload = response.raw
            elif response.body is None and response.status in (204, 304):
                payload = b""
            else:
                payload = json.dumps(response.body).encode()
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if payload or response.status not in (204, 304):
                    self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout fault): the effect happened anyway

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout fault, a stopped test) is expected; others are not."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class FakeServer:
    """Serve a ``FakeApp`` on 127.0.0.1 on a free port in a daemon thread."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self._server = _QuietServer(("127.0.0.1", 0), _handler_class(app))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def control(self, **payload: Any) -> None:
        """Set faults and settings through the real control endpoint."""
        response = httpx.post(f"{self.url}/_control", json=payload, timeout=5)
        response.raise_for_status()

    def fault(self, op: str, **fields: Any) -> None:
        self.control(faults=[{"op": op, **fields}])

    def reset(self) -> None:
        httpx.post(f"{self.url}/_control/reset", timeout=5).raise_for_status()

    def instances(self) -> list[dict[str, Any]]:
        """Everything the fake holds (hidden from lists or not)."""
        body: dict[str, Any] = httpx.get(f"{self.url}/_control/state", timeout=5).json()
        return list(body["instances"])


@contextmanager
def serving(app: FakeApp) -> Iterator[FakeServer]:
    """``with serving(MyFake()) as server: ...`` -- started, and stopped on exit."""
    server = FakeServer(app).start()
    try:
        yield server
    finally:
        server.stop()
