"""Rolling-origin backtesting: how much to trust a forecast, always next to the baselines.

At each origin ``t`` (position of the first forecast step) every candidate model is fitted
on ``y[:t]`` only and forecasts ``y[t : t + horizon]``. Metrics per origin:

* ``MAE``   = mean |a - f| over the finite actuals of the window;
* ``MAPE``  = 100 * mean |a - f| / |a| over actuals != 0 (zeros skipped, NaN if none left);
* ``sMAPE`` = 100 * mean 2|a - f| / (|a| + |f|), a term with a = f = 0 counts as 0;
* ``MASE``  = MAE / scale, where **scale is the in-sample seasonal-naive MAE** of the
  training data, mean |y_i - y_(i-m)| with ``m = season_length`` (24 for hourly series, so
  the daily cycle; 1 for weekly prices, i.e. the one-step naive MAE). If that scale is 0 (a
  flat history) ``m = 1`` is tried; if still 0 the origin's MASE is NaN and it is left out of
  the mean. A model with MASE 1 is as wrong out of sample as seasonal naive was in sample;
* ``coverage`` = share of actuals inside the model's central ``interval_level`` interval.

Per-series aggregates are the mean over origins of MAE, MAPE, sMAPE and MASE (NaNs
skipped) and the pooled coverage. Models are ranked by :func:`score` (MASE, then MAE, so
series where MASE is undefined everywhere are still ranked).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from forecasting.errors import ForecastingError, InsufficientDataError
from forecasting.models.base import FitContext, Forecaster, ModelForecast
from forecasting.models.baselines import LastValue, SeasonalNaive
from forecasting.schemas import BacktestReport, ModelMetrics, OriginResult, Series

log = logging.getLogger(__name__)

ModelFactory = Callable[[], Forecaster]


def mase_scale(train: np.ndarray, season_length: int) -> float:
    """In-sample seasonal-naive MAE of ``train`` (falls back to lag 1 when that is 0 or impossible)."""
    for m in dict.fromkeys((max(1, season_length), 1)):
        if train.shape[0] <= m:
            continue
        d = np.abs(train[m:] - train[:-m])
        d = d[np.isfinite(d)]
        if d.size and float(d.mean()) > 0.0:
            return float(d.mean())
    return 0.0


@dataclass(frozen=True)
class PointErrors:
    """Error metrics of one forecast window (see the module docstring)."""

    mae: float
    mape: float
    smape: float
    mase: float


def point_errors(actual: np.ndarray, forecast: np.ndarray, scale: float) -> PointErrors:
    """Metrics of one window; NaN actuals (gaps) are ignored."""
    actual = np.asarray(actual, dtype=float).reshape(-1)
    forecast = np.broadcast_to(np.asarray(forecast, dtype=float).reshape(-1), actual.shape)
    ok = np.isfinite(actual)
    a, f = actual[ok], forecast[ok]
    if a.size == 0:
        nan = float("nan")
        return PointErrors(nan, nan, nan, nan)
    err = np.abs(a - f)
    mae = float(err.mean())
    nz = a != 0
    mape = float(100.0 * np.mean(err[nz] / np.abs(a[nz]))) if nz.any() else float("nan")
    denom = np.abs(a) + np.abs(f)
    terms = np.divide(2.0 * err, denom, out=np.zeros_like(err), where=denom > 0)
    smape = float(100.0 * terms.mean())
    mase = mae / scale if scale > 0 else float("nan")
    return PointErrors(mae, mape, smape, mase)


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[int, int]:
    """(hits, count) of finite actuals inside [lower, upper]."""
    ok = np.isfinite(actual)
    hits = int(((actual[ok] >= lower[ok]) & (actual[ok] <= upper[ok])).sum())
    return hits, int(ok.sum())


def rolling_origins(
    index: pd.DatetimeIndex, *, horizon: int, step: int, start: datetime | None = None, min_train: int = 1
) -> list[int]:
    """Origin positions from ``start`` (or ``min_train``) every ``step`` points, each with a full horizon."""
    if step < 1 or horizon < 1:
        raise ForecastingError("step and horizon must be >= 1")
    first = min_train if start is None else max(min_train, int(index.searchsorted(pd.Timestamp(start))))
    return list(range(first, index.shape[0] - horizon + 1, step))


def baseline_factories(calibration_window: int = 672) -> dict[str, ModelFactory]:
    """The two baselines every backtest includes."""
    return {
        "last_value": lambda: LastValue(calibration_window=calibration_window),
        "seasonal_naive": lambda: SeasonalNaive(calibration_window=calibration_window),
    }


def forecast_at(
    factory: ModelFactory, y: np.ndarray, index: pd.DatetimeIndex | None, origin: int, horizon: int, season_length: int,
    covariates: Mapping[str, np.ndarray] | None = None,
) -> ModelForecast:
    """Fit on ``y[:origin]`` (and the covariates up to the same point) and forecast ``horizon`` steps."""
    ctx = FitContext(season_length=season_length, index=index, covariates=dict(covariates or {})).upto(origin)
    return factory().fit(y[:origin], ctx).predict(horizon)


@dataclass
class ModelRun:
    """Raw backtest output of one model: forecasts per origin (None where it failed)."""

    name: str
    forecasts: list[ModelForecast | None]


def run_models(
    y: np.ndarray,
    index: pd.DatetimeIndex | None,
    origins: Sequence[int],
    horizon: int,
    season_length: int,
    factories: Mapping[str, ModelFactory],
    covariates: Mapping[str, np.ndarray] | None = None,
) -> dict[str, ModelRun]:
    """Fit every model at every origin; a model failing at an origin is logged and skipped there.

    ``covariates`` (aligned with ``y``) are cut at each origin like the values, so no model sees
    anything observed after its origin.
    """
    runs: dict[str, ModelRun] = {}
    for name, factory in factories.items():
        out: list[ModelForecast | None] = []
        for t in origins:
            try:
                out.append(forecast_at(factory, y, index, t, horizon, season_length, covariates))
            except ForecastingError as exc:
                log.debug("backtest: %s failed at origin %d: %s", name, t, exc)
                out.append(None)
        runs[name] = ModelRun(name, out)
    return runs


def evaluate_run(
    run: ModelRun, y: np.ndarray, origins: Sequence[int], horizon: int, season_length: int, interval_level: float,
    stamps: Sequence[datetime],
) -> tuple[ModelMetrics | None, list[OriginResult]]:
    """Per-origin results and the aggregate of one model (None if it never produced a forecast)."""
    details: list[OriginResult] = []
    hits = total = 0
    for t, fc, stamp in zip(origins, run.forecasts, stamps):
        if fc is None:
            continue
        actual = y[t : t + horizon]
        scale = mase_scale(y[:t], season_length)
        e = point_errors(actual, fc.point, scale)
        cov: float | None = None
        if fc.error_paths.shape[0] > 0:
            lo, hi = fc.interval(interval_level)
            h, c = interval_coverage(actual, lo, hi)
            hits, total = hits + h, total + c
            cov = h / c if c else None
        details.append(OriginResult(model=run.name, origin=stamp, mae=e.mae, mape=e.mape, smape=e.smape,
                                    mase=e.mase, coverage=cov, scale=scale))
    if not details:
        return None, details

    def mean(vals: list[float]) -> float:
        arr = np.array(vals, dtype=float)
        arr = arr[np.isfinite(arr)]
        return float(arr.mean()) if arr.size else float("nan")

    metrics = ModelMetrics(
        mape=mean([d.mape for d in details]), smape=mean([d.smape for d in details]),
        mase=mean([d.mase for d in details]), mae=mean([d.mae for d in details]),
        coverage=hits / total if total else None, interval_level=interval_level, n_origins=len(details),
    )
    return metrics, details


def backtest(
    series: Series,
    *,
    horizon: int,
    step: int,
    start: datetime | None = None,
    models: Mapping[str, ModelFactory] | None = None,
    interval_level: float = 0.8,
    min_train: int | None = None,
) -> BacktestReport:
    """Rolling-origin backtest of ``models`` plus both baselines on one series.

    Origins are every ``step`` points from ``start`` (default: after ``min_train`` points,
    which defaults to two seasons or ``horizon``, whichever is larger).
    """
    s = series.to_pandas()
    y, index, m = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.period
    need = min_train if min_train is not None else max(2 * m, horizon, 2)
    origins = rolling_origins(index, horizon=horizon, step=step, start=start, min_train=need)
    if not origins:
        raise InsufficientDataError("no backtest origin with a full horizon", n_obs=len(y), required=need + horizon)
    factories: dict[str, ModelFactory] = {**baseline_factories(), **(models or {})}
    runs = run_models(y, index, origins, horizon, m, factories, series.covariate_arrays())
    return report_from_runs(series.series_id, runs, y, index, origins, horizon, m, interval_level)


def report_from_runs(
    series_id: str, runs: Mapping[str, ModelRun], y: np.ndarray, index: pd.DatetimeIndex,
    origins: Sequence[int], horizon: int, season_length: int, interval_level: float,
) -> BacktestReport:
    """Aggregate raw runs into the typed report."""
    stamps = [index[t].to_pydatetime() for t in origins]
    metrics: dict[str, ModelMetrics] = {}
    details: list[OriginResult] = []
    notes: list[str] = []
    for name, run in runs.items():
        agg, det = evaluate_run(run, y, origins, horizon, season_length, interval_level, stamps)
        details.extend(det)
        if agg is None:
            notes.append(f"{name}: failed at every origin")
        else:
            metrics[name] = agg
    return BacktestReport(series_id=series_id, horizon=horizon, season_length=season_length, origins=stamps,
                          metrics=metrics, details=details, notes=notes)
