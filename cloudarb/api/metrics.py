"""Prometheus metrics: request latency (measured here), jobs, queue depth and solve times (read from
storage at scrape time, so they are right whichever process ran the job)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudarb.api.deps import authenticate, credential_from
from cloudarb.context import Context
from cloudarb.errors import Forbidden, Unauthorized
from cloudarb.jobs import store as job_store
from cloudarb.optimize import store as opt_store

SOLVE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, float("inf"))


class StorageCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        with self.ctx.db.session() as session:
            counts = job_store.count_by_status(session)
            durations = list(opt_store.solve_seconds(session))
        jobs = GaugeMetricFamily("cloudarb_jobs", "Jobs by status", labels=["status"])
        for status, n in counts.items():
            jobs.add_metric([status], n)
        yield jobs
        depth = GaugeMetricFamily("cloudarb_queue_depth", "Jobs waiting in the queue")
        try:
            depth.add_metric([], self.ctx.queue.depth())
        except Exception:  # noqa: BLE001 - a scrape reports NaN, never fails
            depth.add_metric([], float("nan"))
        yield depth
        buckets = []
        for bound in SOLVE_BUCKETS:
            label = "+Inf" if bound == float("inf") else str(bound)
            buckets.append((label, sum(1 for d in durations if d <= bound)))
        hist = HistogramMetricFamily("cloudarb_solve_seconds", "Solver wall time per optimization")
        hist.add_metric([], buckets, sum_value=sum(durations))
        yield hist


class LatencyMiddleware:
    """Plain ASGI (no BaseHTTPMiddleware task hop): time each request, label it by route template."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.histogram.labels(scope["method"], path, str(status)).observe(time.perf_counter() - start)


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


def install(app: object, ctx: Context) -> APIRouter:
    registry = CollectorRegistry()
    latency = Histogram(
        "cloudarb_http_request_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    registry.register(StorageCollector(ctx))
    from cloudarb.ingest.metrics import ProviderCollector

    registry.register(ProviderCollector(ctx))

    app.add_middleware(LatencyMiddleware, histogram=latency)  # type: ignore[attr-defined]
    router = APIRouter(tags=["health"])

    @router.get("/metrics", operation_id="metrics", include_in_schema=True,
                dependencies=[Depends(metrics_reader)])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
