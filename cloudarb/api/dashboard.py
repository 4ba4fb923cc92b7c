"""The built dashboard (``frontend/dist``) served by the API process, and the API again under ``/api``.

The dashboard calls its API at ``/api`` on its own origin (the Vite dev server proxies that prefix),
so the same build works behind the dev proxy and here, from any host name, without CORS: this layer
strips ``/api`` before the application sees the request (HTTP and WebSocket alike). Other GET/HEAD
requests that no API route answers get the dashboard's files, and ``index.html`` for page requests
the dashboard routes itself (its screens live in the URL's hash, but a reload of ``/x`` must not be
a JSON 404). Vite names its bundles by content hash, so ``/assets/*`` are cached for a year;
``index.html`` is revalidated on every load so a new release is picked up at once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

API_PREFIX = "/api"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def default_directory() -> Path:
    """``frontend/dist`` of a source checkout (beside the ``cloudarb`` package)."""
    return Path(__file__).resolve().parents[2] / "frontend" / "dist"


def _strip_prefix(scope: Scope) -> Scope:
    path: str = scope["path"]
    rest = path[len(API_PREFIX):] or "/"
    new = dict(scope)
    new["path"] = rest
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(API_PREFIX.encode()):
        new["raw_path"] = raw[len(API_PREFIX):] or b"/"
    return new


class DashboardMiddleware:
    """Pure ASGI (no response buffering, WebSockets pass through): the outermost layer of the app."""

    def __init__(self, app: ASGIApp, *, directory: Path, routes: list[BaseRoute]) -> None:
        self.app = app
        self.root = directory.resolve()
        self.routes = routes
        self.index = self.root / "index.html"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await self.app(_strip_prefix(scope), receive, send)
            return
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            response = self._static(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _static(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        if path in ("/", "/index.html"):
            return self._file(self.index, REVALIDATE)
        target = self._inside(path)
        if target is not None and target.is_file():
            return self._file(target, IMMUTABLE if path.startswith("/assets/") else REVALIDATE)
        if path.startswith("/assets/") or self._api_route(scope):
            return None
        if _wants_html(scope):
            return self._file(self.index, REVALIDATE)
        return None

    def _inside(self, path: str) -> Path | None:
        try:
            target = (self.root / path.lstrip("/")).resolve()
        except (OSError, ValueError):
            return None
        return target if target.is_relative_to(self.root) else None

    def _api_route(self, scope: Scope) -> bool:
        """Whether an API route answers this path (by any method: a wrong method stays a 405)."""
        return any(route.matches(scope)[0] != Match.NONE for route in self.routes)

    @staticmethod
    def _file(path: Path, cache: str) -> Response:
        if not path.is_file():
            return Response("dashboard not built", status_code=404, media_type="text/plain")
        return FileResponse(path, headers={"Cache-Control": cache})


def _wants_html(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept":
            return b"text/html" in value
    return False


def dashboard_directory(configured: Path | None) -> Path | None:
    """The directory to serve, or None (with a log line) when no built dashboard is there."""
    directory = configured or default_directory()
    if (directory / "index.html").is_file():
        return directory
    if configured is not None:
        log.warning("CLOUDARB_DASHBOARD_DIR=%s has no index.html; the dashboard is not served", configured)
    return None
