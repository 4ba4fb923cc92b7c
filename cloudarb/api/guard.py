"""The request guard: the outermost layer of the API, before routing and authentication.

It reads each request body while it streams and stops at ``max_bytes`` (413), whether the size was
declared (Content-Length) or not (chunked): memory stays bounded by the limit, and nothing behind it,
authentication included, parses a byte of an oversized body. A body within the limit is kept and
replayed to the application.

It then refuses input that the database would turn into a server error, naming the field (422):
NUL characters in the path, the query string or any JSON string; non-finite numbers (``Infinity``,
``NaN``, ``1e400``) anywhere in a JSON body; integers beyond 64 bits in a body or beyond 32 bits in a
query string (no query parameter of this API needs more). Request models check their own bounds as
well (``cloudarb.schemas``); this layer covers every route at once, including free-form JSON fields.

A ``Exception`` that escapes the application is answered here with a 500 and logged, without
re-raising, so the server keeps the client's keep-alive connection open.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudarb.api.errors import error_body

log = logging.getLogger(__name__)

MAX_BODY_INT = 2**63 - 1
MAX_QUERY_INT = 2**31 - 1


class HostileInput(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _NonFinite(ValueError):
    pass


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _parse_constant(text: str) -> float:
    raise _NonFinite(text)


def check_query(query_string: bytes) -> None:
    """Raise ``HostileInput`` for a NUL or an out-of-range integer in the query string."""
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            raise HostileInput(name.replace("\x00", "") or "query", "must not contain NUL characters")
        digits = value.strip().lstrip("+-")
        if digits.isdigit() and len(digits) > 9 and abs(int(value)) > MAX_QUERY_INT:
            raise HostileInput(name, f"must be at most {MAX_QUERY_INT}")
        try:
            number = float(value)
        except ValueError:
            continue
        if not math.isfinite(number):
            raise HostileInput(name, "must be a finite number")


def check_json(body: bytes) -> None:
    """Raise ``HostileInput`` naming the first bad field of a JSON body; a body that is not JSON is
    left to the application's own parsing (which answers 422 for it)."""
    try:
        document = json.loads(body, parse_float=_parse_float, parse_constant=_parse_constant)
    except _NonFinite as exc:
        raise HostileInput(_path_of_number(body, str(exc)), "must be a finite number") from None
    except RecursionError:
        raise HostileInput("body", "nested too deeply") from None
    except ValueError:
        return
    _walk(document, [])


def _path_of_number(body: bytes, text: str) -> str:
    """The field holding the first non-finite number: found by replacing it with a marker."""
    marker = "__cloudarb_nonfinite__"

    def mark(found: str) -> Any:
        value = float(found)
        return marker if not math.isfinite(value) else value

    def mark_constant(_: str) -> Any:
        return marker

    try:
        document = json.loads(body, parse_float=mark, parse_constant=mark_constant)
    except (ValueError, RecursionError):
        return "body"
    path = _find(document, marker, [])
    return ".".join(path) if path else "body"


def _find(node: Any, marker: str, path: list[str]) -> list[str] | None:
    if node == marker:
        return path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found = _find(child, marker, [*path, str(key)])
        if found is not None:
            return found
    return None


def _walk(node: Any, path: list[str]) -> None:
    if isinstance(node, str):
        if "\x00" in node:
            raise HostileInput(".".join(path) or "body", "must not contain NUL characters")
    elif isinstance(node, bool):
        return
    elif isinstance(node, int):
        if abs(node) > MAX_BODY_INT:
            raise HostileInput(".".join(path) or "body", f"must be at most {MAX_BODY_INT} in magnitude")
    elif isinstance(node, dict):
        for key, child in node.items():
            if "\x00" in key:
                raise HostileInput(".".join(path) or "body", "keys must not contain NUL characters")
            _walk(child, [*path, key])
    elif isinstance(node, list):
        for index, child in enumerate(node):
            _walk(child, [*path, str(index)])


class RequestGuard:
    """Plain ASGI middleware: body limit while streaming, hostile-input checks, no dropped keep-alive."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if "\x00" in scope.get("path", ""):
                raise HostileInput("path", "must not contain NUL characters")
            check_query(scope.get("query_string", b""))
        except HostileInput as exc:
            await _refuse(scope, receive, send, 422, "invalid", f"{exc.field}: {exc.message}", exc.field)
            return
        body = await self._read_body(scope, receive)
        if body is None:
            await _refuse(scope, receive, send, 413, "payload_too_large",
                          f"request body over {self.max_bytes} bytes", "body")
            return
        if body and _is_json(scope):
            try:
                check_json(body)
            except HostileInput as exc:
                await _refuse(scope, receive, send, 422, "invalid", f"{exc.field}: {exc.message}", exc.field)
                return
        await self._call_app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (declared or streamed)."""
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if not started:
                await JSONResponse(error_body("internal", "internal server error"), status_code=500)(
                    scope, receive, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                  field: str) -> None:
    await JSONResponse(error_body(code, message, field=field), status_code=status)(scope, receive, send)
