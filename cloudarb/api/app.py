"""The FastAPI application factory."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cloudarb import telemetry
from cloudarb.api import errors, metrics
from cloudarb.api.dashboard import DashboardMiddleware, dashboard_directory
from cloudarb.api.guard import RequestGuard
from cloudarb.api.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, make_limiter
from cloudarb.api.routes import (
    auth,
    costs,
    deployments,
    exports,
    forecasts,
    gpus,
    health,
    hooks,
    jobs,
    nodes,
    offers,
    optimize,
    policies,
    prices,
    providers,
    templates,
)
from cloudarb.config import Settings, get_settings
from cloudarb.context import Context, build_context
from cloudarb.security import burn_password_check

log = logging.getLogger(__name__)

_QUERY_SECRET = re.compile(r"((?:token|access_token|refresh_token|api_key|key)=)[^&\s\"']+", re.IGNORECASE)


class RedactQuerySecrets(logging.Filter):
    """Mask credentials in URLs that the server logs (``?token=`` of old WebSocket clients)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _QUERY_SECRET.sub(r"\1[redacted]", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY_SECRET.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def redact_server_logs() -> None:
    """Install the filter on the server's loggers once per process."""
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
            logger.addFilter(RedactQuerySecrets())


def create_app(settings: Settings | None = None, *, ctx: Context | None = None, scheduler: bool = True) -> FastAPI:
    """Build the app. Pass ``ctx`` to share a context (tests, embedded CLI); else one is built."""
    settings = settings or (ctx.settings if ctx else get_settings())
    redact_server_logs()
    own_ctx = ctx is None
    context = ctx or build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the unknown-user password check's dummy hash, off the request path and off import
        warm = threading.Thread(target=burn_password_check, args=("",), name="cloudarb-warm", daemon=True)
        warm.start()
        sched = None
        if scheduler and settings.embedded:
            from cloudarb.scheduler import Scheduler

            sched = Scheduler(context)
            sched.start()
        try:
            yield
        finally:
            # a process that exits while bcrypt runs on a daemon thread aborts ("exception not rethrown")
            warm.join(timeout=5)
            if sched is not None:
                sched.stop()
            if own_ctx:
                context.close()
            telemetry.process_exiting()  # this server process's live gauges end with it; counts stay

    app = FastAPI(
        title="CloudArb",
        version="0.1.0",
        description="GPU-compute cost optimizer: offers, optimizations, policies and live job progress.",
        lifespan=lifespan,
    )
    app.state.ctx = context
    limiter: RateLimiter = (
        RedisRateLimiter(settings.redis_url, settings.rate_limit_per_minute)
        if settings.redis_url
        else MemoryRateLimiter(settings.rate_limit_per_minute)
    )
    app.state.rate_limiter = limiter
    app.state.login_per_account = make_limiter(settings.redis_url, settings.login_attempts_per_minute)
    app.state.login_per_address = make_limiter(settings.redis_url, settings.login_attempts_per_address_per_minute)
    errors.install(app)

    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes)
    app.include_router(metrics.install(app, context))
    for module in (health, auth, offers, gpus, optimize, jobs, policies, providers, prices, forecasts, nodes, exports,
                   hooks, deployments, costs, templates):
        app.include_router(module.router)
    dashboard = dashboard_directory(settings.dashboard_dir) if settings.serve_dashboard else None
    if dashboard is not None:  # added last: the outermost layer, it sees /api/... before the rest
        app.add_middleware(DashboardMiddleware, directory=dashboard, routes=app.router.routes)
    return app
