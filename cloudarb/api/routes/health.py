"""Liveness and readiness, separate: an orchestrator restarts a process that is not alive, and only
stops sending traffic to one that is not ready. A database outage makes every API replica unready,
never restarted (restarting would not bring the database back).

- ``/livez``: the process answers; no dependency is consulted.
- ``/readyz``: the database answers and, in production mode, Redis too; 503 otherwise.
- ``/health``: the readiness body under its old name, kept for existing probes and scripts.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cloudarb.api.deps import CtxDep
from cloudarb.context import Context

router = APIRouter(tags=["health"])


def readiness(ctx: Context) -> tuple[bool, dict[str, Any]]:
    """Ping the database and (in production mode) Redis; the body names what failed."""
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

            client = redis.Redis.from_url(ctx.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
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
    return ok, body


@router.get("/livez", operation_id="livez")
def livez() -> dict[str, Any]:
    """The process is up and serving requests (no dependency is checked: never 503 for an outage)."""
    return {"status": "alive", "pid": os.getpid()}


@router.get("/readyz", operation_id="readyz")
def readyz(ctx: CtxDep) -> JSONResponse:
    """Ready for traffic: the database and (in production mode) Redis answer; 503 with the failed check otherwise."""
    ok, body = readiness(ctx)
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/health", operation_id="health")
def health(ctx: CtxDep) -> JSONResponse:
    """Checks the database and (in production mode) Redis; 503 if either is down (same as /readyz)."""
    ok, body = readiness(ctx)
    return JSONResponse(body, status_code=200 if ok else 503)
