"""Alerts a person must see: orphans destroyed, leaked instances, vanished instances, budgets,
provider-reported rates off the launch price, failed after-hooks, a Kubernetes object still announcing
an expiry that an extension moved.

Each alert has a dedupe key, so a condition seen on every pass is raised once.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import DeployAlert
from cloudarb.db.types import utcnow

AlertKind = Literal["orphan", "leaked", "ghost", "interruption", "budget", "rate_mismatch", "hook_failed",
                    "expiry_sync"]
log = logging.getLogger(__name__)


def raise_alert(session: Session, *, kind: AlertKind, dedupe: str, message: str,
                organization_id: str | None = None, **details: Any) -> bool:
    """Record an alert once per ``dedupe``; True if it is new."""
    if session.scalar(select(DeployAlert.id).where(DeployAlert.dedupe == dedupe)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(DeployAlert(kind=kind, dedupe=dedupe, message=message, organization_id=organization_id,
                                    details=details, created_at=utcnow()))
    except IntegrityError:
        return False
    log.warning("deploy alert", extra={"kind": kind, "alert": message})
    return True


def list_alerts(session: Session, *, organization_id: str | None, limit: int = 100) -> list[DeployAlert]:
    stmt = select(DeployAlert).order_by(DeployAlert.id.desc()).limit(limit)
    if organization_id is not None:
        stmt = stmt.where((DeployAlert.organization_id == organization_id) | DeployAlert.organization_id.is_(None))
    return list(session.scalars(stmt))
