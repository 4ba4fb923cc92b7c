"""Data access for forecasts, model versions, usage history and the demand opt-in.

Keyword-only functions over a session; nothing here imports the forecasting library, so the API can
use it. Price forecasts are market data (``scope = 'market'``, no organization); demand forecasts,
usage and opt-ins belong to one organization and every read names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cloudarb.db.models import (
    MARKET_SCOPE,
    DemandPolicy,
    ForecastModelVersion,
    ForecastSchedule,
    Offer,
    StoredForecast,
    UsageHour,
)
from cloudarb.db.types import utcnow


def scope_for(organization_id: str | None) -> str:
    return organization_id or MARKET_SCOPE


# ---------------------------------------------------------------- stored forecasts


@dataclass(frozen=True, kw_only=True)
class NewForecast:
    """Everything stored for one served forecast (the JSON parts already plain lists/dicts)."""

    series_key: str
    kind: str
    organization_id: str | None
    offer_key: str | None = None
    workload_id: str | None = None
    origin: datetime
    step: str
    horizon: int
    model: str
    fallback_reason: str | None
    paths: dict[str, Any]
    backtest: dict[str, Any] | None
    volatility: float | None = None
    data_hash: str | None = None
    model_version_id: str | None = None


def save_forecast(session: Session, f: NewForecast, *, keep: int) -> StoredForecast:
    """Store ``f``, replacing a forecast of the same series and origin (re-runs are idempotent), and
    keep only the ``keep`` newest forecasts of the series."""
    scope = scope_for(f.organization_id)
    session.execute(
        delete(StoredForecast).where(
            StoredForecast.scope == scope, StoredForecast.series_key == f.series_key, StoredForecast.origin == f.origin
        )
    )
    row = StoredForecast(
        scope=scope, organization_id=f.organization_id, series_key=f.series_key, kind=f.kind,
        offer_key=f.offer_key, workload_id=f.workload_id, origin=f.origin, step=f.step, horizon=f.horizon,
        model=f.model, fallback=f.fallback_reason is not None, fallback_reason=f.fallback_reason, paths=f.paths,
        backtest=f.backtest, volatility=f.volatility, data_hash=f.data_hash, model_version_id=f.model_version_id,
    )
    session.add(row)
    session.flush()
    old = session.scalars(
        select(StoredForecast.id)
        .where(StoredForecast.scope == scope, StoredForecast.series_key == f.series_key)
        .order_by(StoredForecast.created_at.desc(), StoredForecast.id.desc())
        .offset(keep)
    ).all()
    if old:
        session.execute(delete(StoredForecast).where(StoredForecast.id.in_(old)))
    return row


def latest(session: Session, *, series_key: str, organization_id: str) -> StoredForecast | None:
    """Newest forecast of a series visible to an organization (its own, or market data)."""
    return session.scalars(
        select(StoredForecast)
        .where(StoredForecast.series_key == series_key,
               StoredForecast.scope.in_([MARKET_SCOPE, organization_id]))
        .order_by(StoredForecast.created_at.desc(), StoredForecast.id.desc())
        .limit(1)
    ).first()


def _newest_ids(scopes: Sequence[str]) -> Any:
    return (
        select(func.max(StoredForecast.id).label("id"))
        .where(StoredForecast.scope.in_(list(scopes)))
        .group_by(StoredForecast.scope, StoredForecast.series_key)
        .subquery()
    )


@dataclass(frozen=True, kw_only=True)
class ForecastFilter:
    series_keys: Sequence[str] = ()
    kind: str | None = None
    providers: Sequence[str] = ()
    gpu_model: str | None = None
    regions: Sequence[str] = ()
    spot: bool | None = None


def list_latest(
    session: Session, *, organization_id: str, filters: ForecastFilter, limit: int, offset: int
) -> tuple[Sequence[tuple[StoredForecast, Offer | None]], int]:
    """The newest forecast of every matching series (market data and the organization's own), with the
    offer a price forecast belongs to."""
    newest = _newest_ids([MARKET_SCOPE, organization_id])
    stmt = (
        select(StoredForecast, Offer)
        .join(newest, newest.c.id == StoredForecast.id)
        .outerjoin(Offer, Offer.offer_key == StoredForecast.offer_key)
    )
    if filters.series_keys:
        stmt = stmt.where(StoredForecast.series_key.in_(list(filters.series_keys)))
    if filters.kind:
        stmt = stmt.where(StoredForecast.kind == filters.kind)
    if filters.providers:
        stmt = stmt.where(Offer.provider.in_([p.lower() for p in filters.providers]))
    if filters.gpu_model:
        stmt = stmt.where(func.lower(Offer.gpu_model) == filters.gpu_model.lower())
    if filters.regions:
        stmt = stmt.where(Offer.region.in_(list(filters.regions)))
    if filters.spot is not None:
        stmt = stmt.where(Offer.spot.is_(filters.spot))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(StoredForecast.series_key).limit(limit).offset(offset)).all()
    return [(r[0], r[1]) for r in rows], total


def latest_for_offers(
    session: Session, *, offer_keys: Iterable[str], not_before: datetime
) -> dict[str, StoredForecast]:
    """Newest market forecast per offer, created at or after ``not_before`` (feeds the optimizer)."""
    keys = list(offer_keys)
    out: dict[str, StoredForecast] = {}
    for i in range(0, len(keys), 500):
        rows = session.scalars(
            select(StoredForecast)
            .where(StoredForecast.scope == MARKET_SCOPE, StoredForecast.offer_key.in_(keys[i : i + 500]),
                   StoredForecast.created_at >= not_before)
            .order_by(StoredForecast.created_at, StoredForecast.id)
        ).all()
        for row in rows:
            out[row.offer_key or ""] = row
    return out


def latest_demand(
    session: Session, *, organization_id: str, workload_ids: Iterable[str], not_before: datetime
) -> dict[str, StoredForecast]:
    """Newest demand forecast per workload of one organization, created at or after ``not_before``."""
    rows = session.scalars(
        select(StoredForecast)
        .where(StoredForecast.scope == organization_id, StoredForecast.kind == "demand",
               StoredForecast.workload_id.in_(list(workload_ids)), StoredForecast.created_at >= not_before)
        .order_by(StoredForecast.created_at, StoredForecast.id)
    ).all()
    return {r.workload_id or "": r for r in rows}


# ---------------------------------------------------------------- model versions (champion/challenger)


def champion(session: Session, *, organization_id: str | None, series_key: str) -> ForecastModelVersion | None:
    return session.scalars(
        select(ForecastModelVersion)
        .where(ForecastModelVersion.scope == scope_for(organization_id),
               ForecastModelVersion.series_key == series_key, ForecastModelVersion.is_champion.is_(True))
        .order_by(ForecastModelVersion.trained_at.desc())
        .limit(1)
    ).first()


def add_version(
    session: Session, *, organization_id: str | None, series_key: str, kind: str, model: str,
    params: dict[str, Any], metrics: dict[str, Any], data_hash: str | None, trained_at: datetime,
    make_champion: bool, decision: str,
) -> ForecastModelVersion:
    """Store a trained version; when it becomes champion the previous champion steps down."""
    scope = scope_for(organization_id)
    if make_champion:
        session.execute(
            update(ForecastModelVersion)
            .where(ForecastModelVersion.scope == scope, ForecastModelVersion.series_key == series_key,
                   ForecastModelVersion.is_champion.is_(True))
            .values(is_champion=False)
        )
    row = ForecastModelVersion(
        scope=scope, organization_id=organization_id, series_key=series_key, kind=kind, model=model,
        params=params, metrics=metrics, data_hash=data_hash, trained_at=trained_at, is_champion=make_champion,
        decision=decision[:300],
    )
    session.add(row)
    session.flush()
    return row


def versions(session: Session, *, scope: str, series_key: str, limit: int = 20) -> Sequence[ForecastModelVersion]:
    return session.scalars(
        select(ForecastModelVersion)
        .where(ForecastModelVersion.scope == scope, ForecastModelVersion.series_key == series_key)
        .order_by(ForecastModelVersion.trained_at.desc(), ForecastModelVersion.id)
        .limit(limit)
    ).all()


# ---------------------------------------------------------------- usage history


class UsageReading(NamedTuple):
    """One workload's usage in one hour: GPU-hours, and optionally the scheduler's state readings."""

    workload_id: str
    hour: datetime
    gpu_hours: float
    gpus_at_end: float | None = None
    gpus_started: float | None = None


def record_usage(session: Session, *, organization_id: str, points: Iterable[UsageReading], source: str) -> int:
    """Upsert usage per (workload, hour); the hour is truncated. The last write of an hour wins
    (every field, so a reposted reading without state clears the old state), so reposting a meter
    reading is idempotent."""
    n = 0
    for p in points:
        hour = p.hour.replace(minute=0, second=0, microsecond=0)
        row = session.get(UsageHour, (organization_id, p.workload_id, hour))
        if row is None:
            row = UsageHour(organization_id=organization_id, workload_id=p.workload_id, hour=hour)
            session.add(row)
        row.gpu_hours, row.gpus_at_end, row.gpus_started, row.source = (p.gpu_hours, p.gpus_at_end, p.gpus_started,
                                                                        source)
        n += 1
    session.flush()
    return n


def usage(session: Session, *, organization_id: str, since: datetime) -> dict[str, list[UsageReading]]:
    """Usage per workload since ``since``, in time order."""
    rows = session.execute(
        select(UsageHour.workload_id, UsageHour.hour, UsageHour.gpu_hours, UsageHour.gpus_at_end,
               UsageHour.gpus_started)
        .where(UsageHour.organization_id == organization_id, UsageHour.hour >= since)
        .order_by(UsageHour.workload_id, UsageHour.hour)
    )
    out: dict[str, list[UsageReading]] = {}
    for wid, hour, gpu_hours, at_end, started in rows:
        out.setdefault(wid, []).append(UsageReading(wid, hour, gpu_hours, at_end, started))
    return out


def organizations_with_usage(session: Session, *, since: datetime) -> list[str]:
    return list(session.scalars(
        select(UsageHour.organization_id).where(UsageHour.hour >= since).distinct().order_by(UsageHour.organization_id)
    ).all())


# ---------------------------------------------------------------- demand opt-in of policies


def demand_policy(session: Session, *, organization_id: str, policy_id: str) -> DemandPolicy | None:
    return session.scalars(
        select(DemandPolicy).where(DemandPolicy.policy_id == policy_id, DemandPolicy.organization_id == organization_id)
    ).first()


def set_demand_policy(
    session: Session, *, organization_id: str, policy_id: str, quantile: float, horizon_hours: int
) -> DemandPolicy:
    row = demand_policy(session, organization_id=organization_id, policy_id=policy_id)
    if row is None:
        row = DemandPolicy(policy_id=policy_id, organization_id=organization_id, quantile=quantile,
                           horizon_hours=horizon_hours)
        session.add(row)
    else:
        row.quantile, row.horizon_hours = quantile, horizon_hours
    session.flush()
    return row


def clear_demand_policy(session: Session, *, organization_id: str, policy_id: str) -> bool:
    result = session.execute(
        delete(DemandPolicy).where(DemandPolicy.policy_id == policy_id, DemandPolicy.organization_id == organization_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- schedule


def claim_task(session: Session, *, task: str, now: datetime, interval_s: float) -> bool:
    """True when ``task`` is due and this caller won its slot (the slot moves ``interval_s`` ahead).

    A task seen for the first time is scheduled one interval from now rather than run at once, so a
    fresh install (or a test database) does not start retraining on its first tick.
    """
    row = session.get(ForecastSchedule, task)
    if row is None:
        session.add(ForecastSchedule(task=task, next_run_at=_after(now, interval_s)))
        session.flush()
        return False
    if row.next_run_at > now:
        return False
    result = session.execute(
        update(ForecastSchedule)
        .where(ForecastSchedule.task == task, ForecastSchedule.next_run_at == row.next_run_at)
        .values(next_run_at=_after(now, interval_s))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _after(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def now() -> datetime:
    return utcnow()
