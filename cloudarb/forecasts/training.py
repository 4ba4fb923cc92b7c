"""Fit many series, judge retrained models champion/challenger, store forecasts and model versions.

Fitting goes through ``forecasting.parallel.forecast_many`` (a process pool, a disk cache of fitted
models under the data directory, incremental refits when a series only grew). A full refit reruns
model selection on a rolling-origin backtest; the selected model is the challenger and replaces the
stored champion only if ``forecasting.selection.promote`` says it wins on that same backtest (the
champion is re-scored from the same report). When the champion is kept, its model serves the
forecast. Every trained version is stored with its metrics, whether it won or not.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from cloudarb.db.models import ForecastModelVersion
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store
from forecasting.parallel import CacheEntry, DiskCache, Outcome, forecast_many, series_hash
from forecasting.schemas import BacktestReport, ForecastResult, Series
from forecasting.selection import ForecastConfig, forecast, model_version, promote

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Item:
    """One series to forecast and what its stored row needs besides the forecast."""

    series: Series
    kind: str
    offer_key: str | None = None
    workload_id: str | None = None
    last: float | None = None
    volatility: float | None = None


@dataclass
class BatchSummary:
    fitted: int = 0
    failed: int = 0
    cache: dict[str, int] = field(default_factory=dict)
    promoted: int = 0
    kept: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"fitted": self.fitted, "failed": self.failed, "cache": self.cache, "promoted": self.promoted,
                "kept": self.kept, "errors": self.errors[:20]}


def finite(value: Any) -> Any:
    """JSON-safe copy: NaN/inf (e.g. MASE of a flat training window) become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def backtest_summary(report: BacktestReport) -> dict[str, Any]:
    """What ``GET /forecasts/{series}/backtest`` shows: metrics per model on the selection backtest."""
    summary: dict[str, Any] = finite({
        "horizon": report.horizon,
        "season_length": report.season_length,
        "origins": [t.isoformat() for t in report.origins],
        "selected": report.selected,
        "metrics": {name: m.model_dump(mode="json") for name, m in report.metrics.items()},
        "notes": list(report.notes),
    })
    return summary


def paths_of(result: ForecastResult, *, last: float | None) -> dict[str, Any]:
    paths: dict[str, Any] = finite({
        "timestamps": [t.isoformat() for t in result.timestamps],
        "point": [round(v, 6) for v in result.point],
        "quantiles": {f"{q:g}": [round(v, 6) for v in path] for q, path in result.quantiles.items()},
        "scenarios": [[round(v, 6) for v in path] for path in result.scenarios],
        "flags": list(result.flags),
        "last": last,
    })
    if result.skill is not None:
        # why the forecast is (or is not) more than last value: kept beside the paths it explains
        paths["skill"] = finite(result.skill.model_dump(mode="json"))
    return paths


class RefitCache(DiskCache):
    """A full refit reads nothing from the cache (every series is reselected and backtested, so its
    report exists) but still writes it, for the incremental refreshes that follow."""

    def get(self, series_id: str, key: str) -> CacheEntry | None:
        return None


def cache_dir(ctx: Context, name: str) -> Path:
    return Path(ctx.settings.data_dir) / "forecast-cache" / name


def run_batch(
    ctx: Context, items: Sequence[Item], config: ForecastConfig, *, organization_id: str | None, cache_name: str,
    full_refit: bool, progress: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Forecast every item, store the results; returns counts for the job's last progress event."""
    summary = BatchSummary()
    if not items:
        return summary
    outcomes = forecast_many(
        [it.series for it in items], config, n_workers=ctx.settings.forecast_workers,
        cache=(RefitCache if full_refit else DiskCache)(cache_dir(ctx, cache_name)), full_refit=full_refit,
        progress=progress,
    )
    for item, outcome in zip(items, outcomes):
        summary.cache[outcome.cache] = summary.cache.get(outcome.cache, 0) + 1
        if outcome.result is None:
            summary.failed += 1
            summary.errors.append(f"{item.series.series_id}: {outcome.error}")
            continue
        try:
            _store_outcome(ctx, item, outcome, config, organization_id=organization_id, summary=summary)
            summary.fitted += 1
        except Exception as exc:  # one bad series must not lose the others
            log.exception("storing forecast failed", extra={"series": item.series.series_id})
            summary.failed += 1
            summary.errors.append(f"{item.series.series_id}: {type(exc).__name__}: {exc}")
    return summary


def _store_outcome(
    ctx: Context, item: Item, outcome: Outcome, config: ForecastConfig, *, organization_id: str | None,
    summary: BatchSummary,
) -> None:
    """Judge, refit a kept champion (outside any transaction: a fit takes seconds and SQLite would be
    locked meanwhile), then store the version and the forecast in one transaction."""
    result = outcome.result
    if result is None:
        return
    key = item.series.series_id
    digest = series_hash(item.series)
    report = outcome.report if outcome.report is not None and outcome.report.selected in outcome.report.metrics \
        else None
    with ctx.db.session() as session:
        current = store.champion(session, organization_id=organization_id, series_key=key)
        previous = store.latest(session, series_key=key, organization_id=organization_id or "")
        backtest = previous.backtest if previous is not None and previous.model == result.model else None
    verdict = decide(report, current, digest) if report is not None else None
    if verdict is not None and verdict.serve is not None:
        result = _refit_with(item.series, config, verdict.serve) or result
    with ctx.db.session() as session:
        version_id = current.id if current is not None and current.model == result.model else None
        if report is not None and verdict is not None:
            backtest = backtest_summary(report)
            version_id = record(session, item, report, current, verdict, digest, organization_id, summary)
        store.save_forecast(
            session,
            store.NewForecast(
                series_key=key, kind=item.kind, organization_id=organization_id, offer_key=item.offer_key,
                workload_id=item.workload_id, origin=result.origin, step=item.series.freq, horizon=result.horizon,
                model=result.model, fallback_reason=result.fallback_reason, paths=paths_of(result, last=item.last),
                backtest=backtest, volatility=item.volatility, data_hash=digest, model_version_id=version_id,
            ),
            keep=ctx.settings.forecast_keep_per_series,
        )


@dataclass(frozen=True)
class Verdict:
    """Champion/challenger outcome: store a version? does it become champion? which model serves?"""

    record: bool
    promote: bool
    reason: str
    serve: str | None = None


def decide(report: BacktestReport, current: ForecastModelVersion | None, digest: str) -> Verdict:
    """The selected model is the challenger; the champion is re-scored on the same backtest."""
    selected = report.selected or ""
    if current is not None and current.model == selected and current.data_hash == digest:
        return Verdict(record=False, promote=False, reason="the same fit again")
    if current is not None and current.model == selected:
        return Verdict(record=True, promote=True, reason=f"champion {selected} refitted on new data")
    key = report.series_id
    challenger = model_version(key, selected, {}, report.metrics[selected], data_hash=digest)
    rescored = None
    if current is not None and current.model in report.metrics:
        rescored = model_version(key, current.model, dict(current.params), report.metrics[current.model])
    decision = promote(rescored, challenger)
    reason = decision.reason
    if current is not None and rescored is None:
        reason = f"champion {current.model} not in this backtest; {reason}"
    serve = None if decision.promote or current is None else current.model
    return Verdict(record=True, promote=decision.promote, reason=reason, serve=serve)


def record(
    session: Session, item: Item, report: BacktestReport, current: ForecastModelVersion | None, verdict: Verdict,
    digest: str, organization_id: str | None, summary: BatchSummary,
) -> str | None:
    """Store the challenger's version (with its metrics, won or not); returns the serving version's id."""
    if not verdict.record:
        return current.id if current is not None else None
    selected = report.selected or ""
    row = store.add_version(
        session, organization_id=organization_id, series_key=item.series.series_id, kind=item.kind, model=selected,
        params={}, metrics=finite(report.metrics[selected].model_dump(mode="json")), data_hash=digest,
        trained_at=utcnow(), make_champion=verdict.promote, decision=verdict.reason,
    )
    if verdict.promote:
        if current is not None and current.model != selected:
            summary.promoted += 1
        return row.id
    summary.kept += 1
    return current.id if current is not None else row.id


def _refit_with(series: Series, config: ForecastConfig, model: str) -> ForecastResult | None:
    """The kept champion's forecast (a single fit of the named model)."""
    try:
        result, _ = forecast(series, config.model_copy(update={"model": model}))
    except Exception:
        log.warning("refitting champion %s failed; serving the challenger", model, exc_info=True)
        return None
    return result
