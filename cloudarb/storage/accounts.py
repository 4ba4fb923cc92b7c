"""Organizations, users and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cloudarb.db.models import ApiKey, Organization, User
from cloudarb.db.types import utcnow
from cloudarb.security import hash_api_key, hash_password, new_api_key


def get_or_create_org(session: Session, *, name: str) -> Organization:
    org = session.scalars(select(Organization).where(Organization.name == name)).first()
    if org is None:
        org = Organization(name=name)
        session.add(org)
        session.flush()
    return org


def user_by_email(session: Session, *, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.lower())).first()


def get_user(session: Session, *, user_id: str) -> User | None:
    return session.get(User, user_id)


def create_user(session: Session, *, organization_id: str, email: str, password: str, role: str) -> User:
    user = User(organization_id=organization_id, email=email.lower(), password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, *, organization_id: str) -> Sequence[User]:
    return session.scalars(select(User).where(User.organization_id == organization_id).order_by(User.email)).all()


def create_api_key(
    session: Session, *, organization_id: str, name: str, role: str, created_by: str | None
) -> tuple[ApiKey, str]:
    secret, prefix, digest = new_api_key()
    row = ApiKey(
        organization_id=organization_id, name=name, prefix=prefix, key_hash=digest, role=role, created_by=created_by
    )
    session.add(row)
    session.flush()
    return row, secret


def api_key_by_secret(session: Session, *, secret: str) -> ApiKey | None:
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def touch_api_key(session: Session, *, key_id: str) -> None:
    """Record use at most once a minute per key, so busy keys do not turn every read into a write."""
    now = utcnow()
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - timedelta(seconds=60)))
        .values(last_used_at=now)
    )


def list_api_keys(session: Session, *, organization_id: str) -> Sequence[ApiKey]:
    return session.scalars(
        select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.created_at)
    ).all()


def revoke_api_key(session: Session, *, organization_id: str, key_id: str) -> bool:
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.organization_id == organization_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
