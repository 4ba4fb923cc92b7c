"""Prometheus metrics: request latency (measured here), jobs, queue depth and solve times (read from
storage at scrape time, so they are right whichever process ran the job)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from cloudarb.context import Context
from cloudarb.jobs import store as job_store
from cloudarb.storage import optimizations as opt_store

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
        except Exception:
            depth.add_metric([], float("nan"))
        yield depth
        buckets = []
        for bound in SOLVE_BUCKETS:
            label = "+Inf" if bound == float("inf") else str(bound)
            buckets.append((label, sum(1 for d in durations if d <= bound)))
        hist = HistogramMetricFamily("cloudarb_solve_seconds", "Solver wall time per optimization")
        hist.add_metric([], buckets, sum_value=sum(durations))
        yield hist


def install(app: "object", ctx: Context) -> APIRouter:
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

    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        latency.labels(request.method, path, str(response.status_code)).observe(time.perf_counter() - start)
        return response

    app.middleware("http")(observe)  # type: ignore[attr-defined]
    router = APIRouter(tags=["health"])

    @router.get("/metrics", operation_id="metrics", include_in_schema=True)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
