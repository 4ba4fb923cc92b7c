"""Serving a forecast: data checks and fallbacks, model selection by backtest, promotion.

The served model is chosen on a rolling-origin backtest over the most recent origins of the
series, among candidates that always include both baselines (ties go to the simpler model),
so on that backtest the served forecast is never worse than the best simple baseline.
Series too short to backtest, flat, or mostly missing skip selection and fall back to a
baseline, and the result says why in ``fallback_reason``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting.backtest import (
    ModelFactory,
    ModelRun,
    mase_scale,
    point_errors,
    report_from_runs,
    run_models,
)
from forecasting.errors import ForecastingError
from forecasting.models.base import FitContext, Forecaster, ModelForecast
from forecasting.models.registry import make_model
from forecasting.schemas import (
    BASELINES,
    BacktestReport,
    ForecastResult,
    ModelMetrics,
    ModelVersion,
    PromotionDecision,
    Series,
    SkillReport,
    score,
)
from forecasting.skill import LAST_VALUE, Backtest, SkillRule, compose, decide, drop_missing, gate_origins

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES: tuple[str, ...] = ("last_value", "seasonal_naive", "ets", "lag_ridge")


class ForecastConfig(BaseModel):
    """How to forecast one series; keyword-only config passed by the caller."""

    model_config = ConfigDict(frozen=True)

    horizon: int = Field(ge=1, description="Steps ahead.")
    quantiles: tuple[float, ...] = Field(default=(0.1, 0.5, 0.9), description="Levels in (0, 1).")
    n_scenarios: int = Field(default=200, ge=1)
    candidates: tuple[str, ...] = Field(default=DEFAULT_CANDIDATES, description="Model names; baselines are added.")
    model_params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-model keyword params.")
    model: str | None = Field(default=None, description="Force this model (skips selection, keeps fallbacks).")
    selection_origins: int = Field(default=4, ge=1, description="Most recent backtest origins used to select.")
    selection_step: int | None = Field(default=None, ge=1, description="Spacing of those origins; default horizon.")
    selection_margin: float = Field(
        default=0.0, ge=0, lt=1, description="A non-baseline model must beat the best baseline by this fraction."
    )
    selection_min_informative: int = Field(
        default=1, ge=1, description="Walk-forward: past origins where the baselines erred needed before a switch."
    )
    skill_rule: SkillRule | None = Field(
        default=None, description="Judge candidates per horizon step against last value out of sample and serve "
        "last value where none passes (see forecasting.skill); replaces the selection backtest when set.",
    )
    interval_level: float = Field(default=0.8, gt=0, lt=1)
    max_gap_share: float = Field(default=0.3, ge=0, le=1, description="More missing than this -> fallback.")
    seed: int = 0


def factories(cfg: ForecastConfig, names: tuple[str, ...]) -> dict[str, ModelFactory]:
    """Model factories for ``names`` with the configured params (baselines first)."""
    ordered = list(BASELINES) + [n for n in names if n not in BASELINES]
    out: dict[str, ModelFactory] = {}
    for name in ordered:
        params = cfg.model_params.get(name, {})
        make_model(name, **params)  # fail fast on an unknown name or bad params
        out[name] = lambda name=name, params=params: make_model(name, **params)  # type: ignore[misc]
    return out


def diagnose(y: np.ndarray, season_length: int, cfg: ForecastConfig) -> tuple[str | None, str | None, list[str]]:
    """(fallback model, reason, flags) for a series; (None, None, flags) when selection can run."""
    finite = np.isfinite(y)
    n_obs = int(finite.sum())
    flags: list[str] = []
    if n_obs and not finite.all():
        flags.append("gaps_filled")
    if n_obs and not finite[-1]:
        flags.append("trailing_gap")
    m = max(1, season_length)
    step = cfg.selection_step or cfg.horizon
    required = max(2 * m, 8) + cfg.horizon + step
    simple = "seasonal_naive" if m > 1 and n_obs >= 2 * m else "last_value"
    if n_obs == 0:
        raise ForecastingError("series has no observations")
    if y.shape[0] < required:
        return simple, f"short series: {y.shape[0]} points < {required} needed to backtest", flags
    if y.shape[0] and 1.0 - n_obs / y.shape[0] > cfg.max_gap_share:
        return simple, f"gappy series: {100 * (1 - n_obs / y.shape[0]):.0f}% missing", flags
    recent = y[-max(2 * m, cfg.horizon, 8) :]
    recent = recent[np.isfinite(recent)]
    if recent.size and float(np.ptp(recent)) == 0.0:
        return "last_value", "flat series: no change over the recent window", flags
    return None, None, flags


def select_model(report: BacktestReport, candidates: list[str], *, margin: float = 0.0) -> str:
    """Best candidate by :func:`score`; the first listed wins ties (list baselines first).

    With ``margin`` > 0 a non-baseline model is served only if its score (MASE, or MAE
    where MASE is undefined) is below ``(1 - margin)`` times the best baseline's: on step-like
    series a model that won a short lookback by luck otherwise loses out of sample.
    """
    present = [c for c in candidates if c in report.metrics]
    if not present:
        raise ForecastingError(f"no candidate produced a backtest for {report.series_id}")
    best = min(present, key=lambda c: score(report.metrics[c]))
    baselines = [c for c in present if c in BASELINES]
    if margin <= 0.0 or best in BASELINES or not baselines:
        return best
    base = min(baselines, key=lambda c: score(report.metrics[c]))
    b, c = score(report.metrics[base]), score(report.metrics[best])
    use_mase = np.isfinite(b[0]) and np.isfinite(c[0])
    wins = c[0] < (1 - margin) * b[0] if use_mase else c[1] < (1 - margin) * b[1]
    return best if wins else base


def selection_origins_at(n: int, cfg: ForecastConfig, season_length: int) -> list[int]:
    """Origins (ascending) of the selection backtest of a series of ``n`` points: every
    ``selection_step`` back from the last one with a full horizon, at most ``selection_origins``,
    none before two seasons (or 8 points) of training data."""
    step = cfg.selection_step or cfg.horizon
    first_allowed = max(2 * season_length, 8)
    return list(range(n - cfg.horizon, first_allowed - 1, -step))[: cfg.selection_origins][::-1]


def selection_backtest(series: Series, cfg: ForecastConfig, names: tuple[str, ...]) -> BacktestReport:
    """Backtest ``names`` (plus baselines) on the origins of :func:`selection_origins_at`."""
    s = series.to_pandas()
    y, index, m = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.period
    origins = selection_origins_at(y.shape[0], cfg, m)
    runs = run_models(y, index, origins, cfg.horizon, m, factories(cfg, names), series.covariate_arrays())
    return report_from_runs(series.series_id, runs, y, index, origins, cfg.horizon, m, cfg.interval_level)


def forecast(series: Series, config: ForecastConfig) -> tuple[ForecastResult, BacktestReport | None]:
    """Serve a forecast for ``series``: fallback checks, selection by backtest, then refit on all data.

    Returns the forecast and the selection backtest (None when a fallback skipped it).
    """
    res, report, _ = serve(series, config)
    return res, report


def serve(series: Series, config: ForecastConfig) -> tuple[ForecastResult, BacktestReport | None, Forecaster]:
    """:func:`forecast`, also returning the fitted model (for caching and incremental refits)."""
    s = series.to_pandas()
    y, index, m = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.period
    fallback, reason, flags = diagnose(y, m, config)
    report: BacktestReport | None = None
    if config.skill_rule is not None and config.model is None and reason is not None and reason.startswith("flat"):
        # a price flat of late still has a history of steps to judge the candidates on
        fallback = reason = None
    if fallback is not None:
        name = fallback
    elif config.model is not None:
        name = config.model
    elif config.skill_rule is not None:
        return _serve_gated(series, config, config.skill_rule, flags)
    else:
        report = selection_backtest(series, config, config.candidates)
        name = select_model(report, list(factories(config, config.candidates)), margin=config.selection_margin)
        report = report.model_copy(update={"selected": name})
    model, fc, name, reason = _fit_with_fallback(name, y, index, m, config, reason, series.covariate_arrays())
    return _result(series, index, fc, name, reason, flags, config), report, model


def point_only(factory: ModelFactory) -> ModelFactory:
    """The same model without calibration refits (a backtest that scores points needs none)."""
    def make() -> Forecaster:
        model = factory()
        model.calibration_origins = 0
        return model
    return make


def _serve_gated(
    series: Series, cfg: ForecastConfig, rule: SkillRule, flags: list[str],
) -> tuple[ForecastResult, BacktestReport | None, Forecaster]:
    """Serve under a :class:`SkillRule`: judge the candidates per step against last value, then compose."""
    s = series.to_pandas()
    y, index, m = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.period
    covariates = series.covariate_arrays()
    names = tuple(n for n in cfg.candidates if n not in BASELINES)
    facts = {n: point_only(f) for n, f in factories(cfg, names).items() if n == LAST_VALUE or n in names}
    origins = gate_origins(y.shape[0], cfg.horizon, rule, min_train=max(2 * m, 8))
    runs = run_models(y, index, origins, cfg.horizon, m, facts, covariates)
    bt = Backtest.from_runs(y, origins, cfg.horizon, {n: r.forecasts for n, r in runs.items()})
    decision = decide(bt, rule, level=cfg.interval_level, stamps=[index[t].to_pydatetime() for t in origins], y_hist=y)
    ctx = FitContext(season_length=m, index=index, covariates=covariates)
    fitted: dict[str, tuple[Forecaster, ModelForecast]] = {}
    for name in dict.fromkeys([LAST_VALUE, *decision.choice]):
        try:
            model = factories(cfg, (name,))[name]().fit(y, ctx)
            fitted[name] = (model, model.predict(cfg.horizon))
        except ForecastingError as exc:
            if name == LAST_VALUE:
                raise
            log.warning("forecast: %s failed on the full history (%s); its steps serve last value", name, exc)
    decision = drop_missing(decision, set(fitted))
    fc = compose({n: f for n, (_, f) in fitted.items()}, decision)
    main = decision.main_model
    report = report_from_runs(series.series_id, runs, y, index, origins, cfg.horizon, m, cfg.interval_level)
    report = report.model_copy(update={"selected": main, "notes": [*report.notes, decision.report.reason]})
    res = _result(series, index, fc, main, fc.fallback_reason, flags, cfg, skill=decision.report)
    return res, report, fitted[main][0]


def _fit_with_fallback(
    name: str, y: np.ndarray, index: pd.DatetimeIndex, m: int, cfg: ForecastConfig, reason: str | None,
    covariates: dict[str, np.ndarray] | None = None,
) -> tuple[Forecaster, ModelForecast, str, str | None]:
    ctx = FitContext(season_length=m, index=index, covariates=covariates or {})
    try:
        model = factories(cfg, (name,))[name]().fit(y, ctx)
        return model, model.predict(cfg.horizon), name, reason
    except ForecastingError as exc:
        if name == "last_value":
            raise
        log.warning("forecast: %s failed (%s); falling back to last_value", name, exc)
        model = factories(cfg, ())["last_value"]().fit(y, ctx)
        return model, model.predict(cfg.horizon), "last_value", f"{name} failed: {exc}"


def _result(
    series: Series, index: pd.DatetimeIndex, fc: ModelForecast, name: str, reason: str | None,
    flags: list[str], cfg: ForecastConfig, *, skill: SkillReport | None = None,
) -> ForecastResult:
    step = pd.tseries.frequencies.to_offset(series.freq)
    stamps = pd.date_range(index[-1] + step, periods=cfg.horizon, freq=series.freq)
    rng = np.random.default_rng(cfg.seed)
    qs = fc.quantiles(tuple(sorted(cfg.quantiles)))
    return ForecastResult(
        series_id=series.series_id, model=name, origin=stamps[0].to_pydatetime(),
        timestamps=[t.to_pydatetime() for t in stamps], point=fc.point.tolist(),
        quantiles={q: v.tolist() for q, v in qs.items()}, scenarios=fc.scenarios(cfg.n_scenarios, rng).tolist(),
        fallback_reason=reason, flags=flags + list(fc.flags), skill=skill,
    )


def model_version(series_id: str, name: str, params: dict[str, Any], metrics: ModelMetrics,
                  *, data_hash: str | None = None, trained_at: datetime | None = None) -> ModelVersion:
    """A ModelVersion record for the caller to store."""
    return ModelVersion(series_id=series_id, name=name, params=params, metrics=metrics, data_hash=data_hash,
                        trained_at=trained_at or datetime.now(UTC))


def promote(current: ModelVersion | None, challenger: ModelVersion, *, min_improvement: float = 0.0) -> PromotionDecision:
    """Champion/challenger: the challenger replaces ``current`` only if it wins the backtest.

    Winning means a strictly better :func:`score` (MASE, then MAE), by at least
    ``min_improvement`` relative on MASE when both are defined. Both versions must carry
    metrics from the same backtest (same origins); the caller re-scores the champion on the
    new data before asking.
    """
    ch = score(challenger.metrics)
    if current is None:
        return PromotionDecision(promote=True, reason="no champion yet", champion_score=None, challenger_score=ch[0])
    cur = score(current.metrics)
    threshold = cur[0] * (1.0 - min_improvement) if np.isfinite(cur[0]) else cur[0]
    wins = ch[0] < threshold or (ch[0] == cur[0] and min_improvement == 0.0 and ch[1] < cur[1])
    reason = (f"challenger {challenger.name} wins: MASE {ch[0]:.4g} vs {cur[0]:.4g}" if wins
              else f"champion {current.name} kept: challenger MASE {ch[0]:.4g} vs {cur[0]:.4g}")
    return PromotionDecision(promote=wins, reason=reason, champion_score=cur[0], challenger_score=ch[0])


def walk_forward_served(
    runs: dict[str, ModelRun], y: np.ndarray, index: pd.DatetimeIndex, origins: list[int], eval_origins: list[int],
    horizon: int, season_length: int, *, lookback: int = 4, candidates: list[str] | None = None,
    margin: float = 0.0, min_informative: int = 1, selection: ForecastConfig | None = None,
) -> ModelRun:
    """The forecast that would have been served at each of ``eval_origins``.

    At an evaluation origin ``t`` the model is chosen as :func:`select_model` would, on the
    ``lookback`` most recent origins of ``origins`` whose horizon has ended by ``t`` (no
    look-ahead); before any such origin, last value is served. With a ``selection`` config the
    lookback is exactly the origins :func:`selection_backtest` would use at ``t``
    (:func:`selection_origins_at`; ``origins`` must hold them), so evaluation origins at any
    hour are judged by the service's own rule. ``runs`` must hold forecasts
    at every origin in ``origins`` (a superset of ``eval_origins``). A non-baseline model is
    only eligible once ``min_informative`` of those origins had a non-zero last-value error:
    on price steps, one lucky window is no evidence.
    """
    names = [n for n in (candidates or list(runs)) if n in runs]
    pos = {t: i for i, t in enumerate(origins)}
    mase = np.full((len(names), len(origins)), np.nan)
    mae = np.full((len(names), len(origins)), np.nan)
    for j, t in enumerate(origins):
        scale = mase_scale(y[:t], season_length)
        for i, n in enumerate(names):
            fc = runs[n].forecasts[j]
            if fc is not None:
                e = point_errors(y[t : t + horizon], fc.point, scale)
                mase[i, j], mae[i, j] = e.mase, e.mae
    served: list[ModelForecast | None] = []
    for t in eval_origins:
        if selection is not None:
            past = [pos[o] for o in selection_origins_at(t, selection, season_length)]
        else:
            past = [pos[o] for o in origins if o + horizon <= t][-lookback:]
        choice = "last_value"
        informative = int(np.sum(mae[names.index("last_value"), past] > 0)) if "last_value" in names and past else 0
        eligible = names if informative >= min_informative else [n for n in names if n in BASELINES]
        if past:
            metrics = {}
            for i, n in enumerate(names):
                if n not in eligible or np.isnan(mae[i, past]).all():
                    continue
                with np.errstate(all="ignore"):
                    mm = float(np.nanmean(mase[i, past])) if np.isfinite(mase[i, past]).any() else float("nan")
                metrics[n] = ModelMetrics(mape=0, smape=0, mase=mm, mae=float(np.nanmean(mae[i, past])),
                                          coverage=None, interval_level=0.8, n_origins=len(past))
            if metrics:
                rep = BacktestReport(series_id="walk_forward", horizon=horizon, season_length=season_length,
                                     origins=[], metrics=metrics, details=[])
                choice = select_model(rep, eligible, margin=margin)
        served.append(runs[choice].forecasts[pos[t]])
    return ModelRun("served", served)
