"""Liveness of the API and its dependencies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cloudarb.api.deps import CtxDep

router = APIRouter(tags=["health"])


@router.get("/health", operation_id="health")
def health(ctx: CtxDep) -> JSONResponse:
    """Checks the database and (in production mode) Redis; 503 if either is down."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        ctx.db.ping()
        checks["database"] = {"ok": True, "dialect": ctx.db.dialect}
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready"
        ok = False
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    if ctx.settings.redis_url:
        try:
            import redis

            client = redis.Redis.from_url(ctx.settings.redis_url, socket_timeout=2)
            client.ping()
            client.close()
            checks["redis"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any failure is "not ready"
            ok = False
            checks["redis"] = {"ok": False, "error": type(exc).__name__}
    else:
        checks["redis"] = {"ok": True, "mode": "embedded (not used)"}
    body = {"status": "ok" if ok else "degraded", "mode": "embedded" if ctx.settings.embedded else "production",
            "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)
