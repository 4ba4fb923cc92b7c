"""Stored history -> ``forecasting.Series``: hourly closes of offers, and usage per workload.

Prices: the hourly aggregate (``price_ticks_hourly``) gives one close per hour in which an offer was
seen. A price is a step function that holds until the next observation, so hours without a tick
(a missed refresh) are forward-filled from the last close; only hours before the first observation
are left out. Usage: hours without a reading stay missing (``None``): a missing meter reading is not
zero demand, and the library's gap handling decides whether the series is usable. The optional
scheduler readings (GPUs running at each hour's end, GPUs started in it) become the series'
``end_state`` and ``arrivals`` covariates when a workload reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudarb.db.models import PriceSeries, PriceTickHourly
from cloudarb.forecasts import store
from cloudarb.forecasts.keys import demand_key, price_key
from forecasting.models.state import ARRIVALS, END_STATE
from forecasting.schemas import Series

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class PriceHistory:
    offer_key: str
    series: Series
    last: float
    volatility: float


@dataclass(frozen=True)
class UsageHistory:
    workload_id: str
    series: Series


def hour_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def price_histories(
    session: Session, *, now: datetime, history_hours: int, min_points: int, max_series: int
) -> list[PriceHistory]:
    """One hourly series per offer with at least ``min_points`` observed hours in the window."""
    start = hour_floor(now) - history_hours * HOUR
    h, ps = PriceTickHourly, PriceSeries
    keys = session.scalars(
        select(ps.offer_key)
        .join(h, h.series_id == ps.id)
        .where(h.bucket >= start)
        .group_by(ps.offer_key)
        .having(func.count() >= min_points)
        .order_by(ps.offer_key)
        .limit(max_series)
    ).all()
    out: list[PriceHistory] = []
    for i in range(0, len(keys), 200):
        chunk = list(keys[i : i + 200])
        rows = session.execute(
            select(ps.offer_key, h.bucket, h.close).join(h, h.series_id == ps.id)
            .where(ps.offer_key.in_(chunk), h.bucket >= start)
            .order_by(ps.offer_key, h.bucket)
        ).all()
        by_key: dict[str, list[tuple[datetime, float]]] = {}
        for key, bucket, close in rows:
            by_key.setdefault(key, []).append((bucket, close))
        out.extend(_price_history(key, by_key[key]) for key in chunk if key in by_key)
    return out


def _price_history(offer_key: str, points: list[tuple[datetime, float]]) -> PriceHistory:
    observed = pd.Series([p for _, p in points], index=pd.DatetimeIndex([hour_floor(t) for t, _ in points]))
    observed = observed[~observed.index.duplicated(keep="last")]
    grid = pd.date_range(observed.index[0], observed.index[-1], freq="h")
    filled = observed.reindex(grid).ffill()
    positive = observed[observed > 0].to_numpy(dtype=float)
    changes = np.diff(np.log(positive)) if positive.size > 1 else np.zeros(0)
    volatility = float(np.std(changes)) if changes.size else 0.0
    series = Series.from_pandas(price_key(offer_key), filled, freq="h", season_length=24)
    return PriceHistory(offer_key=offer_key, series=series, last=float(filled.iloc[-1]),
                        volatility=volatility if math.isfinite(volatility) else 0.0)


def usage_histories(session: Session, *, organization_id: str, now: datetime, history_hours: int,
                    min_points: int) -> list[UsageHistory]:
    """One hourly GPU-hours series per workload with at least ``min_points`` readings."""
    since = hour_floor(now) - history_hours * HOUR
    out: list[UsageHistory] = []
    for workload_id, points in store.usage(session, organization_id=organization_id, since=since).items():
        if len(points) < min_points:
            continue
        hours = pd.DatetimeIndex([hour_floor(p.hour) for p in points])
        observed = pd.Series([p.gpu_hours for p in points], index=hours)
        grid = pd.date_range(observed.index[0], observed.index[-1], freq="h")
        readings = {END_STATE: [p.gpus_at_end for p in points], ARRIVALS: [p.gpus_started for p in points]}
        covariates = {name: pd.Series([np.nan if v is None else v for v in values], index=hours,
                                      dtype=float).reindex(grid)
                      for name, values in readings.items() if any(v is not None for v in values)}
        series = Series.from_pandas(demand_key(workload_id), observed.reindex(grid), freq="h", season_length=24,
                                    covariates=covariates or None)
        out.append(UsageHistory(workload_id=workload_id, series=series))
    return out
