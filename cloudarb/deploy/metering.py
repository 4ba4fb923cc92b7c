"""Metering: every second of an instance's billed life, at the price recorded at launch.

Billing runs from the moment the provider's instance exists (its reported creation time, else when
we first saw it) until the provider's proof that it is gone. A provider bills in increments
(``billing_granularity_s``) with a minimum (``billing_minimum_s``), kept on the row at launch, so
the billed seconds of a run of ``d`` seconds are ``max(minimum, ceil(d / g) * g)``. Each pass adds
one ledger entry per instance for what accrued since the last (``billed(new) - billed(old)``), claimed
with a conditional update of ``metered_until`` so two schedulers never meter the same span twice:
the ledger of an instance always sums to ``billed(total)`` and ``rate x billed / 3600``.

Pauses (stop and start, migration 0016): where the provider bills no compute while an instance is
stopped (``Capabilities.stopped_billed`` False: EC2 on-demand, RunPod, Vast, local placements), the
spans during which it was seen stopped are left out, so an instance's billed life is a list of running
spans. The billing increment applies to each span (a provider that bills in increments starts a new
increment with each run); the minimum applies once to the total, or to each span where the provider
charges it per start (``billing_minimum_per_run``: EC2 bills at least one minute each time a stopped
instance starts). A pause opens at the first read that sees the instance stopped (never before
``metered_until``: the row is metered up to it in the same transaction) and closes at the last moment
the instance was known stopped before it was seen running (the start call, or the previous reconcile
pass), so a pause never covers time the instance ran; a restart seen after metering passed it books a
correction entry.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

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


def _when(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def pauses_of(row: DeployInstance) -> list[tuple[datetime, datetime | None]]:
    """The row's pauses, closed ones first by start, the open one (``paused_at``) with no end."""
    spans: list[tuple[datetime, datetime | None]] = [(_when(a), _when(b)) for a, b in (row.pauses or [])]
    if row.paused_at is not None:
        spans.append((row.paused_at, None))
    return sorted(spans, key=lambda p: p[0])


Pauses = list[tuple[datetime, datetime | None]]


def running_spans(row: DeployInstance, until: datetime, pauses: Pauses | None = None) -> list[float]:
    """Seconds of each run of the row up to ``until``: its billing span less its pauses (``pauses``
    in place of the row's own, to price a change before making it)."""
    if row.billing_started_at is None:
        return []
    end = min(until, row.billing_stopped_at) if row.billing_stopped_at is not None else until
    cursor, spans = row.billing_started_at, []
    for start, stop in (pauses_of(row) if pauses is None else sorted(pauses, key=lambda p: p[0])):
        if cursor >= end:
            break
        if start > cursor:
            spans.append((min(start, end) - cursor).total_seconds())
        cursor = end if stop is None else max(cursor, stop)
    if cursor < end:
        spans.append((end - cursor).total_seconds())
    return [s for s in spans if s > 0]


def billed_runs(spans: list[float], *, granularity_s: int, minimum_s: int, per_run: bool) -> float:
    """What a provider bills for runs of ``spans`` seconds (increments per run; the minimum per run or
    once over the total)."""
    if per_run:
        return sum(billed_seconds(s, granularity_s=granularity_s, minimum_s=minimum_s) for s in spans)
    total = sum(billed_seconds(s, granularity_s=granularity_s, minimum_s=0) for s in spans)
    return float(max(minimum_s, total)) if total > 0 else 0.0


def accrued(row: DeployInstance, until: datetime, pauses: Pauses | None = None) -> tuple[float, float]:
    """(running seconds, billed seconds) of the row up to ``until``."""
    spans = running_spans(row, until, pauses)
    return sum(spans), billed_runs(spans, granularity_s=row.billing_granularity_s, minimum_s=row.billing_minimum_s,
                                   per_run=bool(row.billing_minimum_per_run))


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
    ran, before = accrued(row, start) if row.metered_until is not None else (0.0, 0.0)
    seconds, after = accrued(row, end)
    claimed = session.execute(
        update(DeployInstance)
        .where(DeployInstance.id == row.id,
               DeployInstance.metered_until.is_(None) if row.metered_until is None
               else DeployInstance.metered_until == row.metered_until)
        .values(metered_until=end).execution_options(synchronize_session=False))
    if not getattr(claimed, "rowcount", 0):
        return None  # another pass metered it first
    if after - before <= 0 and seconds - ran <= 0:
        return None  # paused throughout: nothing to book
    rate = rate_of(row)
    entry = CostEntry(organization_id=row.organization_id, instance_id=row.id, deployment_id=row.deployment_id,
                      period_start=start, period_end=end, seconds=seconds - ran,
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


def open_pause(session: Session, instance_id: str, now: datetime) -> bool:
    """The instance was seen stopped: meter it up to now, then open a pause there (never before what the
    ledger holds). True if a pause was opened (False: one is open already, or nothing is billed)."""
    row = session.get(DeployInstance, instance_id, populate_existing=True)
    if row is None or row.paused_at is not None or row.billing_started_at is None \
            or row.billing_stopped_at is not None:
        return False
    meter_row(session, row, now)
    row = session.get(DeployInstance, instance_id, populate_existing=True)
    assert row is not None
    at = max(now, row.metered_until or now)
    return _claimed(session, row, paused_at=at)


def close_pause(session: Session, instance_id: str, at: datetime) -> bool:
    """The instance runs again, since ``at`` at the latest (the last moment it was known stopped: a
    pause never covers time it ran): the pause closes there. Where metering has already passed ``at``
    (a restart seen late), the span it ran since is booked as a correction entry, so the ledger still
    equals the row's billed seconds. True if a pause was closed."""
    row = session.get(DeployInstance, instance_id, populate_existing=True)
    if row is None or row.paused_at is None:
        return False
    at = max(at, row.paused_at)
    closed: Pauses = [(a, b) for a, b in pauses_of(row) if b is not None]
    closed.append((row.paused_at, at))
    if not _claimed(session, row, paused_at=None,
                    pauses=[*(row.pauses or []), [row.paused_at.isoformat(), at.isoformat()]]):
        return False
    if row.metered_until is not None and at < row.metered_until:
        ran_before, before = accrued(row, row.metered_until)
        ran_after, after = accrued(row, row.metered_until, closed)
        if after > before:
            session.add(CostEntry(organization_id=row.organization_id, instance_id=row.id,
                                  deployment_id=row.deployment_id, period_start=at, period_end=row.metered_until,
                                  seconds=ran_after - ran_before, billed_seconds=after - before, rate=rate_of(row),
                                  amount=(after - before) * rate_of(row) / 3600.0))
    return True


def _claimed(session: Session, row: DeployInstance, **values: object) -> bool:
    """Write ``values`` only if the row's pause and metering are still as read (a pass beside this one
    that metered further, or opened or closed the pause, wins; the caller sees False)."""
    result = session.execute(
        update(DeployInstance).where(
            DeployInstance.id == row.id,
            DeployInstance.paused_at.is_(None) if row.paused_at is None else DeployInstance.paused_at == row.paused_at,
            DeployInstance.metered_until.is_(None) if row.metered_until is None
            else DeployInstance.metered_until == row.metered_until)
        .values(**values).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))
