"""One error shape for every failure, and the one place where errors become HTTP status codes.

Routes raise ``cloudarb.errors`` categories (or the features' subclasses of them) and never map
errors to codes themselves.

Every error body is ``{"error": {"code": ..., "message": ..., "field": ..., "details": [...]}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloudarb.errors import (
    RETRY_AFTER_S,
    BadRequest,
    CloudArbError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
)

__all__ = ["STATUS_CODES", "error_body", "install", "status_code", "translate"]

log = logging.getLogger(__name__)


# The one table from error categories to HTTP status codes (the most specific class wins).
STATUS_CODES: dict[type[CloudArbError], int] = {
    InvalidInput: 422,
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    RateLimited: 429,
    Unavailable: 503,
}


def translate(exc: Exception) -> CloudArbError | None:
    """A foreign error as one of ours, or None: the database or Redis unreachable is ``Unavailable``
    (503 with Retry-After), a value the database refuses is ``InvalidInput`` (422)."""
    import redis
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DataError):
        return InvalidInput("a value is out of the range the database can store")
    if isinstance(exc, (sa.OperationalError, sa.InterfaceError, sa.TimeoutError)) or (
        isinstance(exc, sa.DBAPIError) and exc.connection_invalidated
    ):
        return Unavailable("the database is unavailable; retry shortly",
                           headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return Unavailable("the job queue or event bus is unavailable; retry shortly",
                           headers={"Retry-After": str(RETRY_AFTER_S)})
    return None


def status_code(exc: CloudArbError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_body(code: str, message: str, *, field: str | None = None, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, "details": details or []}}


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def respond(exc: CloudArbError) -> JSONResponse:
    code = status_code(exc)
    if code >= 500:
        log.error("request failed", extra={"code": exc.code, "error": exc.message})
    return JSONResponse(
        error_body(exc.code, exc.message, field=exc.field, details=exc.details), status_code=code,
        headers=exc.headers,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(CloudArbError)
    async def _app_error(_: Request, exc: CloudArbError) -> JSONResponse:
        return respond(exc)

    async def _foreign(_: Request, exc: Exception) -> JSONResponse:
        ours = translate(exc)
        if ours is None:
            log.exception("unhandled error", exc_info=exc)
            return JSONResponse(error_body("internal", "internal server error"), status_code=500)
        if isinstance(ours, Unavailable):
            log.warning("service unavailable", extra={"error": type(exc).__name__})
        return respond(ours)

    import redis
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    for foreign in (DBAPIError, SQLAlchemyError, redis.RedisError):
        app.add_exception_handler(foreign, _foreign)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": _loc_to_field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()[:50]
        ]
        first = details[0] if details else {"field": "body", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(error_body("invalid", message, field=first["field"], details=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal", "internal server error"), status_code=500)
