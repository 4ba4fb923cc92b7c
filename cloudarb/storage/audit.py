"""The audit log: who changed what, when."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.db.models import AuditLog


def record(
    session: Session,
    *,
    organization_id: str | None,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            organization_id=organization_id,
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            detail=detail or {},
        )
    )


def list_entries(session: Session, *, organization_id: str, limit: int, offset: int) -> Sequence[AuditLog]:
    return session.scalars(
        select(AuditLog)
        .where(AuditLog.organization_id == organization_id)
        .order_by(AuditLog.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
