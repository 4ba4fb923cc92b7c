"""Metering: every second of an instance's billed life, at the price recorded at launch.

Billing runs from the moment the provider's instance exists (its reported creation time, else when
we first saw it) until the provider's proof that it is gone. A provider bills in increments
(``billing_granularity_s``) with a minimum (``billing_minimum_s``), kept on the row at launch, so
the billed seconds of a run of ``d`` seconds are ``max(minimum, ceil(d / g) * g)``. Each pass adds
one ledger entry per instance for what accrued since the last (``billed(new) - billed(old)``), claimed
with a conditional update of ``metered_until`` so two schedulers never meter the same span twice:
the ledger of an instance always sums to ``billed(total)`` and ``rate x billed / 3600``.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import CostEntry, DeployInstance


def billed_seconds(seconds: float, *, granularity_s: int, minimum_s: int) -> float:
    """What a provider bills for a run of ``seconds``."""
    if seconds <= 0:
        return 0.0
    g = max(1, granularity_s)
    return float(max(minimum_s, math.ceil(round(seconds, 6) / g) * g))


def rate_of(row: DeployInstance) -> float:
    return row.price_per_hour


def accrued(row: DeployInstance, until: datetime) -> tuple[float, float]:
    """(seconds, billed seconds) of the row's run up to ``until``."""
    if row.billing_started_at is None:
        return 0.0, 0.0
    end = min(until, row.billing_stopped_at) if row.billing_stopped_at is not None else until
    seconds = max(0.0, (end - row.billing_started_at).total_seconds())
    return seconds, billed_seconds(seconds, granularity_s=row.billing_granularity_s, minimum_s=row.billing_minimum_s)


def pending_amount(row: DeployInstance, now: datetime) -> float:
    """Spend accrued since the last metering pass (for 'cost so far' between passes)."""
    if row.billing_started_at is None:
        return 0.0
    _, total = accrued(row, now)
    _, done = accrued(row, row.metered_until) if row.metered_until is not None else (0.0, 0.0)
    return max(0.0, total - done) * rate_of(row) / 3600.0


def meter_row(session: Session, row: DeployInstance, now: datetime) -> CostEntry | None:
    """Add the row's ledger entry up to ``now`` (or its billing stop); None when nothing accrued."""
    if row.billing_started_at is None:
        return None
    end = min(now, row.billing_stopped_at) if row.billing_stopped_at is not None else now
    start = row.metered_until or row.billing_started_at
    if end <= start:
        return None
    _, before = accrued(row, start) if row.metered_until is not None else (0.0, 0.0)
    seconds, after = accrued(row, end)
    claimed = session.execute(
        update(DeployInstance)
        .where(DeployInstance.id == row.id,
               DeployInstance.metered_until.is_(None) if row.metered_until is None
               else DeployInstance.metered_until == row.metered_until)
        .values(metered_until=end).execution_options(synchronize_session=False))
    if not getattr(claimed, "rowcount", 0):
        return None  # another pass metered it first
    rate = rate_of(row)
    entry = CostEntry(organization_id=row.organization_id, instance_id=row.id, deployment_id=row.deployment_id,
                      period_start=start, period_end=end, seconds=(end - start).total_seconds(),
                      billed_seconds=after - before, rate=rate, amount=(after - before) * rate / 3600.0)
    session.add(entry)
    return entry


def close_books(session: Session, instance_id: str, until: datetime) -> CostEntry | None:
    """Meter an instance whose billing just stopped up to its stop, in the transaction that stopped it,
    so the ledger (``/costs``) holds its final amount the moment it ends, not at the next pass."""
    row = session.get(DeployInstance, instance_id, populate_existing=True)
    return meter_row(session, row, until) if row is not None else None


def meter(session: Session, now: datetime) -> int:
    """One metering pass over every billed instance; returns the entries added."""
    rows = session.scalars(
        select(DeployInstance).where(
            DeployInstance.billing_started_at.is_not(None),
            or_(DeployInstance.billing_stopped_at.is_(None), DeployInstance.metered_until.is_(None),
                DeployInstance.metered_until < DeployInstance.billing_stopped_at))
    ).all()
    added = 0
    for row in rows:
        if meter_row(session, row, now) is not None:
            added += 1
    return added
