"""The provider_status rows: schedule slots (claimed with conditional updates) and refresh outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from cloudarb.db.models import Offer, ProviderStatus
from cloudarb.db.types import utcnow


def sync_enabled(session: Session, *, scheduled: Sequence[str], known: Sequence[str]) -> None:
    """Make sure every known provider has a row, and ``enabled`` says whether it is scheduled."""
    rows = {r.provider: r for r in session.scalars(select(ProviderStatus))}
    for key in known:
        want = key in scheduled
        row = rows.get(key)
        if row is None:
            session.add(ProviderStatus(provider=key, enabled=want, state="never_run" if want else "disabled",
                                       offers_count=0, consecutive_failures=0))
        elif row.enabled != want:
            row.enabled = want
            if not want and row.state == "never_run":
                row.state = "disabled"
            if want and row.state == "disabled":
                row.state = "never_run"
    session.flush()


def get(session: Session, provider: str) -> ProviderStatus | None:
    return session.get(ProviderStatus, provider)


def all_rows(session: Session) -> dict[str, ProviderStatus]:
    return {r.provider: r for r in session.scalars(select(ProviderStatus))}


def due(session: Session, *, now: datetime) -> list[str]:
    stmt = select(ProviderStatus.provider).where(
        ProviderStatus.enabled.is_(True),
        or_(ProviderStatus.next_run_at.is_(None), ProviderStatus.next_run_at <= now),
    )
    return list(session.scalars(stmt.order_by(ProviderStatus.provider)))


def claim(session: Session, *, provider: str, now: datetime, lease_until: datetime) -> bool:
    """Take the due slot of ``provider`` (one scheduler wins); the lease covers a lost worker."""
    result = session.execute(
        update(ProviderStatus)
        .where(
            ProviderStatus.provider == provider,
            ProviderStatus.enabled.is_(True),
            or_(ProviderStatus.next_run_at.is_(None), ProviderStatus.next_run_at <= now),
        )
        .values(next_run_at=lease_until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _row(session: Session, provider: str) -> ProviderStatus:
    row = session.get(ProviderStatus, provider, with_for_update=session.get_bind().dialect.name == "postgresql")
    if row is None:
        row = ProviderStatus(provider=provider, enabled=False, state="never_run", offers_count=0,
                             consecutive_failures=0)
        session.add(row)
    return row


def started(session: Session, *, provider: str, job_id: str, now: datetime) -> None:
    row = _row(session, provider)
    row.running_job_id = job_id
    row.last_attempt_at = now


def succeeded(
    session: Session, *, provider: str, offers: int, duration_s: float, now: datetime, next_run_at: datetime
) -> None:
    row = _row(session, provider)
    row.state = "ok"
    row.last_success_at = now
    row.offers_count = offers
    row.last_duration_s = duration_s
    row.consecutive_failures = 0
    row.next_run_at = next_run_at
    row.running_job_id = None


def failed(
    session: Session, *, provider: str, state: str, error: str, duration_s: float, now: datetime,
    next_run_at: datetime, count_failure: bool = True,
) -> int:
    """Record a failed (or skipped) refresh; returns the consecutive failures now counted."""
    row = _row(session, provider)
    row.state = state
    row.last_error_at = now
    row.last_error = error[:2000]
    row.last_duration_s = duration_s
    if count_failure:
        row.consecutive_failures = (row.consecutive_failures or 0) + 1
    row.next_run_at = next_run_at
    row.running_job_id = None
    return row.consecutive_failures


def failures(session: Session, provider: str) -> int:
    row = session.get(ProviderStatus, provider)
    return row.consecutive_failures if row is not None else 0


def offer_stats(session: Session) -> dict[str, tuple[int, datetime | None]]:
    """Per provider: offers in the current-offers table and the newest observation among them."""
    rows = session.execute(
        select(Offer.provider, func.count(), func.max(Offer.observed_at)).group_by(Offer.provider)
    ).all()
    return {p: (int(n), _aware(ts)) for p, n, ts in rows}


def _aware(ts: datetime | str | None) -> datetime | None:
    """``max()`` over a SQLite column comes back as text, not through the column type."""
    if ts is None or isinstance(ts, datetime):
        return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=utcnow().tzinfo)
    parsed = datetime.fromisoformat(ts)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)
