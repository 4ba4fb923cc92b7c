"""Forecast job bodies, run through ``cloudarb.jobs.runtime.execute`` like every job.

``price_body``: every offer with enough hourly history -> price forecasts (market data), one
progress event per series fitted. ``demand_body``: the job's organization's usage per workload ->
demand forecasts. Both are idempotent: the same history gives the same forecast origin, which
replaces the stored one, and an unchanged fit adds no model version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cloudarb.db.types import utcnow
from cloudarb.forecasts.history import price_histories, usage_histories
from cloudarb.forecasts.training import BatchSummary, Item, run_batch
from cloudarb.jobs.errors import JobInputError
from cloudarb.jobs.runtime import JobContext
from forecasting.demand import DEMAND_CONFIG
from forecasting.prices import PRICE_SKILL_RULE
from forecasting.selection import ForecastConfig


def _full_refit(jc: JobContext, kind: str) -> bool:
    target = jc.target_id
    if target not in (kind, f"{kind}:full"):
        raise JobInputError(f"a {kind} forecast job needs target '{kind}' or '{kind}:full', got {target!r}")
    return target.endswith(":full")


def config_for(jc: JobContext, kind: str) -> ForecastConfig:
    """Demand starts from the library's demand default; prices from the general one behind the price
    skill gate (``PRICE_SKILL_RULE``: a model is served at a horizon step only where it beat last value
    out of sample by the rule's margin; elsewhere last value is served, with the figures saying why).
    Calibration uses 8 origins rather than 24: thousands of price series are fitted per run."""
    s = jc.ctx.settings
    common: dict[str, Any] = {
        "horizon": s.forecast_horizon_hours, "quantiles": tuple(sorted(set(s.forecast_quantiles))),
        "n_scenarios": s.forecast_scenarios,
    }
    if kind == "demand":
        calendar = {"holidays": s.forecast_holidays, "timezone": s.forecast_timezone}
        return DEMAND_CONFIG.model_copy(update={**common, "candidates": tuple(s.forecast_demand_candidates),
                                                "model_params": {**DEMAND_CONFIG.model_params, "day_profile": calendar}})
    fast = {"calibration_origins": 8}
    params = {"lag_ridge": fast, "ets": {**fast, "brute": False}}
    return ForecastConfig(candidates=tuple(s.forecast_price_candidates), model_params=params,
                          skill_rule=PRICE_SKILL_RULE, **common)


def _progress(jc: JobContext, total_label: str) -> Callable[[int, int], None]:
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        jc.check_canceled()
        pct = 10 + 85 * (done / total if total else 1.0)
        jc.progress("fitting", percent=pct, message=f"{done}/{total} {total_label} fitted", done=done, total=total,
                    elapsed_s=round(time.monotonic() - started, 2))

    return report


def _finish(jc: JobContext, summary: BatchSummary, what: str) -> str:
    message = (f"{summary.fitted} {what} forecast, {summary.failed} failed; "
               f"{summary.promoted} new champions, {summary.kept} champions kept")
    jc.progress("done", percent=100, message=message, **summary.as_dict())
    if summary.failed and not summary.fitted:
        raise RuntimeError(f"every series failed: {'; '.join(summary.errors[:3])}")
    return "finished"


def price_body(jc: JobContext) -> str:
    full = _full_refit(jc, "price")
    s = jc.ctx.settings
    jc.progress("loading", percent=2, message="loading hourly price history")
    with jc.ctx.db.session() as session:
        hist = price_histories(session, now=utcnow(), history_hours=s.forecast_history_hours,
                               min_points=s.forecast_min_points, max_series=s.forecast_max_series)
    items = [Item(series=h.series, kind="price", offer_key=h.offer_key, last=h.last, volatility=h.volatility)
             for h in hist]
    jc.progress("fitting", percent=10, message=f"{len(items)} price series to fit", done=0, total=len(items))
    summary = run_batch(jc.ctx, items, config_for(jc, "price"), organization_id=None, cache_name="price",
                        full_refit=full, progress=_progress(jc, "price series"))
    return _finish(jc, summary, "price series")


def demand_body(jc: JobContext) -> str:
    full = _full_refit(jc, "demand")
    s = jc.ctx.settings
    org = jc.job.organization_id
    jc.progress("loading", percent=2, message="loading usage history")
    with jc.ctx.db.session() as session:
        hist = usage_histories(session, organization_id=org, now=utcnow(), history_hours=s.forecast_history_hours,
                               min_points=s.forecast_min_points)
    items = [Item(series=h.series, kind="demand", workload_id=h.workload_id,
                  last=_last_value(h.series.values)) for h in hist]
    jc.progress("fitting", percent=10, message=f"{len(items)} workloads to fit", done=0, total=len(items))
    summary = run_batch(jc.ctx, items, config_for(jc, "demand"), organization_id=org, cache_name=f"demand-{org}",
                        full_refit=full, progress=_progress(jc, "workloads"))
    return _finish(jc, summary, "workloads")


def _last_value(values: list[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)

