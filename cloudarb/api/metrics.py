"""``GET /metrics`` and the request middleware: request ids for the logs, request counts and latency.

Process metrics (requests, jobs, solves) come from ``cloudarb.telemetry``: summed over every server
and work-horse process of this deployment when ``PROMETHEUS_MULTIPROC_DIR`` is set (``cloudarb serve``
sets it), so counters never go back between scrapes whichever process answers. Storage figures come
from ``business_metrics`` and pricing freshness from ``cloudarb.ingest.metrics``, both at scrape time.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudarb import logs, telemetry
from cloudarb.api.business_metrics import BusinessCollector
from cloudarb.api.deps import authenticate, credential_from
from cloudarb.context import Context
from cloudarb.errors import Forbidden, Unauthorized

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestMiddleware:
    """Plain ASGI (no BaseHTTPMiddleware task hop). Gives each request an id (the client's
    ``X-Request-ID`` when it is a short plain token, else a new one), binds it for every log line of
    the request, returns it in the answer, and counts and times the request by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        if scope["type"] == "websocket":
            with logs.bound(request=rid):
                await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), rid.encode())]
            await send(message)

        with logs.bound(request=rid):
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                telemetry.request_done(scope["method"], route, status, time.perf_counter() - start)


def metrics_reader(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """Who may scrape: a bearer of ``CLOUDARB_METRICS_TOKEN`` (the monitoring system) or an admin.
    The figures are totals over the whole installation, never broken down by organization."""
    ctx: Context = request.app.state.ctx
    credential = credential_from(authorization, x_api_key)
    if not credential:
        raise Unauthorized("metrics need 'Authorization: Bearer <CLOUDARB_METRICS_TOKEN>' or an admin's key",
                           headers={"WWW-Authenticate": "Bearer"})
    token = ctx.settings.metrics_token
    if token is not None and hmac.compare_digest(credential.encode(), token.get_secret_value().encode()):
        return
    if not authenticate(ctx, credential).at_least("admin"):
        raise Forbidden("metrics need the metrics token or the 'admin' role")


class _ProcessMetrics(Collector):
    """The deployment's process metrics, read afresh on each scrape (files appear as processes start)."""

    def collect(self) -> Iterator[Metric]:
        yield from telemetry.process_registry().collect()


def install(app: object, ctx: Context) -> APIRouter:
    from cloudarb.ingest.metrics import ProviderCollector

    telemetry.init_job_kinds(list(ctx.kinds))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(BusinessCollector(ctx))
    registry.register(ProviderCollector(ctx))

    app.add_middleware(RequestMiddleware)  # type: ignore[attr-defined]
    router = APIRouter(tags=["health"])

    @router.get("/metrics", operation_id="metrics", include_in_schema=True,
                dependencies=[Depends(metrics_reader)])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
