"""Shared request dependencies as ``Annotated`` aliases: context, session, caller, role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request, WebSocket
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloudarb.context import Context
from cloudarb.errors import CloudArbError, Forbidden, RateLimited, Unauthorized
from cloudarb.security import API_KEY_PREFIX, ROLE_RANK, TokenError, read_token
from cloudarb.storage import accounts
from cloudarb.storage.idempotency import Idempotency


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (JWT) or a program (API key), always inside one organization."""

    organization_id: str
    role: str
    actor: str
    subject_id: str
    kind: str

    def at_least(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    """The request's transaction. It ends with the route function (``scope="function"``), before the
    response is sent: a client that got its 201 reads its write on the next request, on any process."""
    with ctx.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def authenticate(ctx: Context, credential: str) -> Principal:
    """Resolve a bearer token or API key to a principal; raises Unauthorized.

    Resolved on every request, never cached: a revoked key or a deactivated user is refused by the
    very next request, in every API process. It costs one indexed read (the key's hash, or the user's
    id); recording a key's use writes at most once a minute."""
    return _resolve(ctx, credential)


def _resolve(ctx: Context, credential: str) -> Principal:
    if credential.startswith(API_KEY_PREFIX):
        with ctx.db.session() as session:
            key = accounts.api_key_by_secret(session, secret=credential)
            if key is None:
                raise Unauthorized("invalid or revoked API key")
            accounts.touch_api_key(session, key_id=key.id)
            return Principal(key.organization_id, key.role, f"api-key:{key.name}", key.id, "api_key")
    try:
        claims = read_token(ctx.settings, credential, kind="access")
    except TokenError as exc:
        raise Unauthorized(str(exc)) from exc
    with ctx.db.session() as session:
        user = accounts.get_user(session, user_id=str(claims["sub"]))
        if user is None or not user.is_active or user.organization_id != claims["org"]:
            raise Unauthorized("user no longer active")
        return Principal(user.organization_id, user.role, user.email, user.id, "user")


def credential_from(authorization: str | None, api_key: str | None) -> str | None:
    if api_key:
        return api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def get_principal(
    request: Request,
    ctx: CtxDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    credential = credential_from(authorization, x_api_key)
    if not credential:
        raise Unauthorized(
            "missing credentials: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = authenticate(ctx, credential)
    retry_after = request.app.state.rate_limiter.hit(principal.subject_id)
    if retry_after is not None:
        raise RateLimited(
            f"rate limit of {ctx.settings.rate_limit_per_minute} requests per minute exceeded",
            headers={"Retry-After": str(retry_after)},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(role: str) -> Callable[[Principal], Principal]:
    def check(principal: PrincipalDep) -> Principal:
        if not principal.at_least(role):
            raise Forbidden(f"this action needs the '{role}' role; you have '{principal.role}'")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Editor = Annotated[Principal, Depends(require("editor"))]
Admin = Annotated[Principal, Depends(require("admin"))]


BEARER_SUBPROTOCOL = "cloudarb.bearer"


def _subprotocol_credential(offered: list[str]) -> str | None:
    """The token offered right after ``cloudarb.bearer`` in Sec-WebSocket-Protocol, if any."""
    if BEARER_SUBPROTOCOL in offered:
        index = offered.index(BEARER_SUBPROTOCOL)
        if index + 1 < len(offered):
            return offered[index + 1]
    return None


async def accept_authenticated(websocket: WebSocket, token: str | None) -> Principal | None:
    """Accept a WebSocket and authenticate it; on refusal close it with 4401 and return None.

    Credentials: a bearer header or X-API-Key (programs, the CLI), or the subprotocol pair
    ``cloudarb.bearer, <token>`` (browsers cannot set headers on a WebSocket; the server answers with
    ``cloudarb.bearer``); ``?token=`` still works for old clients, and server logs show it redacted.
    The handshake is accepted first, so a refusal is the documented close code, not an HTTP 403."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    credential = (
        _subprotocol_credential(offered)
        or credential_from(websocket.headers.get("authorization"), websocket.headers.get("x-api-key"))
        or token
    )
    await websocket.accept(subprotocol=BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None)
    if not credential:
        await websocket.close(code=4401, reason="missing credentials")
        return None
    ctx: Context = websocket.app.state.ctx
    try:
        return await run_in_threadpool(authenticate, ctx, credential)
    except CloudArbError as exc:
        await websocket.close(code=4401, reason=exc.message[:120])
        return None


def job_ws_url(request: Request, ctx: Context, job_id: str) -> str:
    """The WebSocket URL of a job's event stream, from ``public_url`` (never the request's Host header,
    which a client chooses); without it, the path alone, relative to the API's own base URL."""
    path = f"/ws/jobs/{job_id}"
    base = ctx.settings.public_url.rstrip("/")
    if not base:
        return path
    scheme = "wss" if base.startswith("https") else "ws"
    return f"{scheme}://{base.split('://', 1)[-1]}{path}"


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Retry-safe key: one job per key and body."),
]


def get_idempotency(principal: PrincipalDep, key: IdempotencyKey = None) -> Idempotency | None:
    """The caller's ``Idempotency-Key`` for this command, scoped to its organization."""
    return Idempotency(principal.organization_id, key) if key else None


IdempotencyDep = Annotated[Idempotency | None, Depends(get_idempotency)]
