"""Login with JWT access/refresh tokens, API keys for programs, and users of an organization."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy.exc import IntegrityError

from cloudarb.api.deps import Admin, CtxDep, PrincipalDep, SessionDep
from cloudarb.errors import Conflict, NotFound, RateLimited, Unauthorized
from cloudarb.security import Role, TokenError, burn_password_check, issue_token, read_token, verify_password
from cloudarb.storage import accounts, audit, refresh_tokens

router = APIRouter(prefix="/auth", tags=["auth"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class RefreshIn(_In):
    refresh_token: Annotated[str, Field(min_length=10, max_length=4000)]


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    organization_id: str
    role: str
    actor: str
    kind: str


class ApiKeyIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role = "viewer"


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown once and never again.")


class UserIn(_In):
    email: EmailStr
    password: Annotated[str, Field(min_length=12, max_length=200)]
    role: Role = "viewer"


class UserOut(BaseModel):
    id: str
    email: str
    role: str
    is_active: bool
    created_at: datetime


def _tokens(ctx: CtxDep, session: SessionDep, user_id: str, org_id: str, role: str, family: str) -> TokensOut:
    """An access token and the next refresh token of ``family`` (stored by its jti, see
    ``cloudarb.storage.refresh_tokens``)."""
    s = ctx.settings
    jti = refresh_tokens.record(session, user_id=user_id, family_id=family,
                                ttl=timedelta(days=s.refresh_token_days))
    return TokensOut(
        access_token=issue_token(s, user_id=user_id, org_id=org_id, role=role, kind="access"),
        refresh_token=issue_token(s, user_id=user_id, org_id=org_id, role=role, kind="refresh", jti=jti,
                                  family=family),
        expires_in=s.access_token_minutes * 60,
    )


def _throttle_login(request: Request, email: str) -> None:
    """Count a login attempt against its account and its client address (password guessing is slowed
    per account whatever the address, and per address whatever the accounts it tries)."""
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    address = request.client.host if request.client else "unknown"
    for limiter, key, what in ((request.app.state.login_per_account, f"login:acct:{account}", "this account"),
                               (request.app.state.login_per_address, f"login:addr:{address}", "this address")):
        retry_after = limiter.hit(key)
        if retry_after is not None:
            raise RateLimited(f"too many login attempts for {what}; retry later",
                              headers={"Retry-After": str(retry_after)})


@router.post("/login", operation_id="login", response_model=TokensOut,
             responses={429: {"description": "Too many attempts for the account or the address."}})
def login(body: LoginIn, request: Request, ctx: CtxDep, session: SessionDep) -> TokensOut:
    _throttle_login(request, body.email)
    user = accounts.user_by_email(session, email=body.email)
    if user is None:
        burn_password_check(body.password)
        raise Unauthorized("wrong e-mail or password")
    if not verify_password(body.password, user.password_hash) or not user.is_active:
        raise Unauthorized("wrong e-mail or password")
    audit.record(session, organization_id=user.organization_id, actor=user.email, action="auth.login",
                 resource_type="user", resource_id=user.id)
    return _tokens(ctx, session, user.id, user.organization_id, user.role, refresh_tokens.new_family())


@router.post("/refresh", operation_id="refresh_token", response_model=TokensOut)
def refresh(body: RefreshIn, ctx: CtxDep, session: SessionDep) -> TokensOut:
    """Trade a refresh token for new tokens. Each refresh token works once: presenting one again
    revokes every token of its login (its family), and the user signs in again."""
    try:
        claims = read_token(ctx.settings, body.refresh_token, kind="refresh")
    except TokenError as exc:
        raise Unauthorized(str(exc), field="refresh_token") from exc
    user = accounts.get_user(session, user_id=str(claims["sub"]))
    if user is None or not user.is_active:
        raise Unauthorized("user no longer active")
    family = str(claims.get("fam") or "")
    if not family or not refresh_tokens.use(session, jti=str(claims["jti"]), user_id=user.id):
        session.rollback()  # let go of this request's locks before the revocation's own transaction
        if family:
            with ctx.db.session() as own:  # committed although this request fails
                refresh_tokens.revoke_family(own, family_id=family)
                audit.record(own, organization_id=user.organization_id, actor=user.email,
                             action="auth.refresh_reuse", resource_type="user", resource_id=user.id)
        raise Unauthorized("refresh token already used or revoked; sign in again", field="refresh_token")
    return _tokens(ctx, session, user.id, user.organization_id, user.role, family)


@router.get("/me", operation_id="whoami", response_model=MeOut)
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(organization_id=principal.organization_id, role=principal.role, actor=principal.actor,
                 kind=principal.kind)


@router.post("/api-keys", operation_id="create_api_key", response_model=ApiKeyCreated, status_code=201)
def create_api_key(body: ApiKeyIn, principal: Admin, session: SessionDep) -> ApiKeyCreated:
    row, secret = accounts.create_api_key(
        session, organization_id=principal.organization_id, name=body.name, role=body.role,
        created_by=principal.subject_id,
    )
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="api_key.create", resource_type="api_key", resource_id=row.id, detail={"role": body.role})
    return ApiKeyCreated(**ApiKeyOut.model_validate(row, from_attributes=True).model_dump(), key=secret)


@router.get("/api-keys", operation_id="list_api_keys", response_model=list[ApiKeyOut])
def list_api_keys(principal: Admin, session: SessionDep) -> list[ApiKeyOut]:
    rows = accounts.list_api_keys(session, organization_id=principal.organization_id)
    return [ApiKeyOut.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/api-keys/{key_id}", operation_id="revoke_api_key", status_code=204)
def revoke_api_key(
    key_id: Annotated[str, Path(max_length=64)], principal: Admin, session: SessionDep
) -> None:
    if not accounts.revoke_api_key(session, organization_id=principal.organization_id, key_id=key_id):
        raise NotFound(f"API key {key_id} not found")
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="api_key.revoke", resource_type="api_key", resource_id=key_id)


@router.post("/users", operation_id="create_user", response_model=UserOut, status_code=201)
def create_user(body: UserIn, principal: Admin, session: SessionDep) -> UserOut:
    if accounts.user_by_email(session, email=body.email) is not None:
        raise Conflict("a user with this e-mail already exists", field="email")
    try:
        user = accounts.create_user(session, organization_id=principal.organization_id, email=body.email,
                                    password=body.password, role=body.role)
    except IntegrityError as exc:
        raise Conflict("a user with this e-mail already exists", field="email") from exc
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="user.create", resource_type="user", resource_id=user.id, detail={"role": body.role})
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/users", operation_id="list_users", response_model=list[UserOut])
def list_users(principal: Admin, session: SessionDep) -> list[UserOut]:
    return [UserOut.model_validate(u, from_attributes=True)
            for u in accounts.list_users(session, organization_id=principal.organization_id)]
