"""Hooks and deliveries in the database, always scoped to one organization."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudarb.config import Settings
from cloudarb.db.models import JobRun
from cloudarb.db.models_hooks import Hook, HookDelivery
from cloudarb.errors import Forbidden
from cloudarb.hooks import signing
from cloudarb.hooks.schemas import HookCreate

JOB_STATUS_TO_DELIVERY = {"running": "sending", "finished": "delivered", "failed": "failed", "canceled": "failed"}


def create(session: Session, settings: Settings, *, organization_id: str, body: HookCreate, actor: str) -> Hook:
    if body.kind == "command" and not settings.hooks_commands:
        raise Forbidden("command hooks are disabled on this server (set CLOUDARB_HOOKS_COMMANDS=true where every "
                        "organization admin may run programs on the worker hosts)")
    hook = Hook(
        organization_id=organization_id, name=body.name, kind=body.kind, url=body.url, command=body.command,
        secret=signing.new_secret() if body.kind == "webhook" else None, events=body.events,
        payload_format=body.payload_format, max_attempts=body.max_attempts or settings.hooks_max_attempts,
        timeout_s=body.timeout_s or settings.hooks_timeout_s, enabled=body.enabled, created_by=actor,
    )
    session.add(hook)
    session.flush()
    return hook


def get(session: Session, *, organization_id: str, hook_id: str) -> Hook | None:
    return session.scalars(select(Hook).where(Hook.id == hook_id, Hook.organization_id == organization_id)).first()


def list_hooks(session: Session, *, organization_id: str) -> Sequence[Hook]:
    return session.scalars(select(Hook).where(Hook.organization_id == organization_id)
                           .order_by(Hook.created_at, Hook.id)).all()


def enabled_hooks(session: Session, *, organization_id: str) -> Sequence[Hook]:
    return session.scalars(select(Hook).where(Hook.organization_id == organization_id, Hook.enabled.is_(True))
                           .order_by(Hook.created_at, Hook.id)).all()


def delete(session: Session, hook: Hook) -> None:
    session.delete(hook)


def deliveries(
    session: Session,
    *,
    organization_id: str,
    hook_id: str | None = None,
    subject_id: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[HookDelivery], int]:
    stmt = select(HookDelivery).where(HookDelivery.organization_id == organization_id)
    if hook_id:
        stmt = stmt.where(HookDelivery.hook_id == hook_id)
    if subject_id:
        stmt = stmt.where(HookDelivery.subject_id == subject_id)
    if status:
        stmt = stmt.where(HookDelivery.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(HookDelivery.created_at.desc(), HookDelivery.id)
                           .limit(limit).offset(offset)).all()
    return rows, total


def follow_job(session: Session, job: JobRun, status: str) -> None:
    """The status hook of ``hook_delivery`` jobs: a delivery shows its job's status in its own words."""
    delivery = session.get(HookDelivery, job.target_id)
    if delivery is None:
        return
    if status == "queued":
        delivery.status = "retrying" if delivery.attempts else "pending"
    else:
        delivery.status = JOB_STATUS_TO_DELIVERY.get(status, delivery.status)
    if status in ("failed", "canceled") and not delivery.error:
        delivery.error = job.error or status
