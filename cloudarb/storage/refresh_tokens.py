"""Refresh-token rotation with reuse detection (RFC 9700 section 4.14.2).

A login starts a family and issues its first refresh token; each refresh marks the presented token
used (a conditional update: two concurrent uses cannot both win) and issues the next one of the same
family. A token that is presented again after its use, or after its family was revoked, was copied:
the whole family is revoked, so the thief's and the user's next refresh both fail and the user signs in
again. Only the token's ``jti`` is stored, never the token.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from cloudarb.db.models import RefreshToken
from cloudarb.db.types import new_id, utcnow


def new_family() -> str:
    return new_id()


def record(session: Session, *, user_id: str, family_id: str, ttl: timedelta) -> str:
    """Store a refresh token about to be issued; returns its ``jti``."""
    jti = secrets.token_hex(16)
    session.add(RefreshToken(jti=jti, user_id=user_id, family_id=family_id, expires_at=utcnow() + ttl))
    session.flush()
    return jti


def use(session: Session, *, jti: str, user_id: str) -> bool:
    """Mark the token used if it is live and unused; False means it is unknown, used or revoked."""
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.jti == jti, RefreshToken.user_id == user_id, RefreshToken.used_at.is_(None),
               RefreshToken.revoked_at.is_(None))
        .values(used_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_family(session: Session, *, family_id: str) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
