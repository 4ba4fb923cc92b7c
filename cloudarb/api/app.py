"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudarb.api import errors, metrics
from cloudarb.api.deps import PrincipalCache
from cloudarb.api.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from cloudarb.api.routes import (
    auth,
    forecasts,
    gpus,
    health,
    jobs,
    offers,
    optimize,
    policies,
    prices,
    providers,
)
from cloudarb.config import Settings, get_settings
from cloudarb.context import Context, build_context
from cloudarb.security import burn_password_check

log = logging.getLogger(__name__)


class BodyLimitMiddleware:
    """Refuse a declared body over the limit with 413 before anything reads it (plain ASGI)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit() or int(value) > self.max_bytes:
                        body = errors.error_body(
                            "payload_too_large", f"request body over {self.max_bytes} bytes", field="body"
                        )
                        await JSONResponse(body, status_code=413)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, ctx: Context | None = None, scheduler: bool = True) -> FastAPI:
    """Build the app. Pass ``ctx`` to share a context (tests, embedded CLI); else one is built."""
    settings = settings or (ctx.settings if ctx else get_settings())
    own_ctx = ctx is None
    context = ctx or build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the unknown-user password check's dummy hash, off the request path and off import
        threading.Thread(target=burn_password_check, args=("",), name="cloudarb-warm", daemon=True).start()
        sched = None
        if scheduler and settings.embedded:
            from cloudarb.scheduler import Scheduler

            sched = Scheduler(context)
            sched.start()
        try:
            yield
        finally:
            if sched is not None:
                sched.stop()
            if own_ctx:
                context.close()

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
    app.state.principals = PrincipalCache()
    errors.install(app)

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(metrics.install(app, context))
    for module in (health, auth, offers, gpus, optimize, jobs, policies, providers, prices, forecasts):
        app.include_router(module.router)
    return app
