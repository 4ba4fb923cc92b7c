"""Saved re-optimization policies and their runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudarb.db.models import Policy, PolicyRun
from cloudarb.db.types import utcnow


def next_run(*, cron: str | None, interval_s: int | None, after: datetime) -> datetime:
    if cron:
        nxt: datetime = croniter(cron, after).get_next(datetime)
        return nxt
    if interval_s:
        return after + timedelta(seconds=interval_s)
    raise ValueError("a policy needs a cron expression or an interval")


def get(session: Session, *, organization_id: str, policy_id: str) -> Policy | None:
    return session.scalars(
        select(Policy).where(Policy.id == policy_id, Policy.organization_id == organization_id)
    ).first()


def list_all(session: Session, *, organization_id: str, limit: int, offset: int) -> Sequence[Policy]:
    return session.scalars(
        select(Policy)
        .where(Policy.organization_id == organization_id)
        .order_by(Policy.created_at.desc(), Policy.id)
        .limit(limit)
        .offset(offset)
    ).all()


def due(session: Session, *, now: datetime, limit: int = 100) -> Sequence[Policy]:
    return session.scalars(
        select(Policy).where(Policy.enabled.is_(True), Policy.next_run_at <= now).order_by(Policy.next_run_at).limit(limit)
    ).all()


def claim_slot(session: Session, *, policy: Policy, now: datetime) -> bool:
    """Advance a due policy's next run; only one scheduler wins when several look at once."""
    nxt = next_run(cron=policy.cron, interval_s=policy.interval_s, after=now)
    result = session.execute(
        update(Policy)
        .where(Policy.id == policy.id, Policy.next_run_at == policy.next_run_at)
        .values(next_run_at=nxt)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def runs(session: Session, *, organization_id: str, policy_id: str, limit: int, offset: int) -> Sequence[PolicyRun]:
    return session.scalars(
        select(PolicyRun)
        .where(PolicyRun.policy_id == policy_id, PolicyRun.organization_id == organization_id)
        .order_by(PolicyRun.created_at.desc(), PolicyRun.id)
        .limit(limit)
        .offset(offset)
    ).all()


def run_for_optimization(session: Session, *, optimization_id: str) -> PolicyRun | None:
    return session.scalars(select(PolicyRun).where(PolicyRun.optimization_id == optimization_id)).first()


def now() -> datetime:
    return utcnow()


def apply_changes(
    policy: Policy,
    *,
    now: datetime,
    name: str | None = None,
    request: dict[str, Any] | None = None,
    cron: str | None = None,
    interval_s: int | None = None,
    keep_threshold_pct: float | None = None,
    enabled: bool | None = None,
) -> None:
    """Edit a policy in place; ``None`` leaves a field as it is.

    A new schedule replaces the old one (cron and interval exclude each other) and moves the next run
    to the new schedule's first slot after ``now``; resuming a paused policy does the same, so a policy
    paused for a week does not fire at once for the slot it missed.
    """
    if cron is not None and interval_s is not None:
        raise ValueError("give at most one of cron or interval_s")
    if name is not None:
        policy.name = name
    if request is not None:
        policy.request = request
    if keep_threshold_pct is not None:
        policy.keep_threshold_pct = keep_threshold_pct
    rescheduled = cron is not None or interval_s is not None
    if cron is not None:
        policy.cron, policy.interval_s = cron, None
    if interval_s is not None:
        policy.cron, policy.interval_s = None, interval_s
    resumed = enabled is True and not policy.enabled
    if enabled is not None:
        policy.enabled = enabled
    if rescheduled or resumed:
        policy.next_run_at = next_run(cron=policy.cron, interval_s=policy.interval_s, after=now)
