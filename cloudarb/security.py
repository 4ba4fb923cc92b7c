"""Passwords, JWTs and API keys. Secrets are never stored in clear: bcrypt for passwords, SHA-256 for
API keys (they are 256-bit random, so a fast hash is safe and lets each request be checked quickly)."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import bcrypt
import jwt

from cloudarb.config import Settings
from cloudarb.db.types import utcnow

Role = Literal["admin", "editor", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "editor", "viewer")
ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2}
API_KEY_PREFIX = "ca_"
ALGORITHM = "HS256"


class TokenError(Exception):
    """A token that is malformed, expired or of the wrong kind."""


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=12)).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:72], hashed.encode())
    except ValueError:
        return False


@functools.cache
def _dummy_hash() -> str:
    """A real hash to check against when the user does not exist (computed on first use: 0.3-1 s
    that no process should pay at import)."""
    return bcrypt.hashpw(b"timing-equalizer", bcrypt.gensalt(rounds=12)).decode()


def burn_password_check(password: str) -> None:
    """Spend the same time as a real check, so unknown e-mails cannot be told apart by timing."""
    verify_password(password, _dummy_hash())


def signing_key(settings: Settings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.data_dir).expanduser() / "secret.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def issue_token(settings: Settings, *, user_id: str, org_id: str, role: str, kind: Literal["access", "refresh"],
                jti: str | None = None, family: str | None = None) -> str:
    now = utcnow()
    ttl = (
        timedelta(minutes=settings.access_token_minutes)
        if kind == "access"
        else timedelta(days=settings.refresh_token_days)
    )
    claims = {"sub": user_id, "org": org_id, "role": role, "typ": kind, "iat": now, "exp": now + ttl,
              "jti": jti or secrets.token_hex(8)}
    if family is not None:
        claims["fam"] = family
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


def read_token(settings: Settings, token: str, *, kind: Literal["access", "refresh"]) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, signing_key(settings), algorithms=[ALGORITHM], options={"require": ["exp", "sub", "org", "typ"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("invalid token") from exc
    if claims.get("typ") != kind:
        raise TokenError(f"expected a {kind} token")
    return claims


def new_api_key() -> tuple[str, str, str]:
    """Return (the key to show once, its display prefix, its hash to store)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:10], hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
