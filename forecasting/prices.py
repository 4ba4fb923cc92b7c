"""Prices: GCP weekly price history -> one series per (machine type, region, on-demand/spot).

The history file is run-length encoded (one row per run of unchanged prices between two
snapshot dates). :func:`weekly_price_panel` expands it over the snapshot dates and keeps the
last snapshot of each calendar week (weeks ending Sunday), so a series has one value per
week and NaN where the machine type was not listed. Price series are step functions: most
weeks nothing changes, so last value is hard to beat and the evaluation also reports how
often a change was anticipated at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from forecasting.backtest import ModelRun, report_from_runs, rolling_origins, run_models
from forecasting.errors import DataError
from forecasting.models.base import ModelForecast
from forecasting.schemas import BacktestReport, Series, score
from forecasting.selection import ForecastConfig, factories, point_only, walk_forward_served
from forecasting.skill import LAST_VALUE, Backtest, SkillRule, compose, decide, drop_missing, step_shaped

WEEK = "W-SUN"
KEY = ["machine_type", "region"]
PRICE_KINDS = {"on_demand": "hour_usd", "spot": "hour_spot_usd"}

#: Price default: damped-trend ETS and lag ridge against last value, 4-week horizon. Price
#: changes are rare steps, so a model must beat last value by 20% over every past origin
#: (expanding window), on at least 3 origins where prices moved, before it is served: with
#: no margin, walk-forward selection chased lucky wins and lost to last value on a third of
#: the series.
PRICE_CONFIG = ForecastConfig(
    horizon=4, candidates=("ets", "lag_ridge"), selection_origins=100, selection_step=4, selection_margin=0.2,
    selection_min_informative=3, skill_rule=SkillRule(),
    model_params={"ets": {"calibration_origins": 8, "max_history": 104, "brute": False},
                  "lag_ridge": {"lags": (1, 2, 4, 8, 13), "max_history": 104, "calibration_origins": 8}},
)


def _read(path: str | Path, required: Iterable[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read: {exc}", source=str(path)) from exc
    missing = set(required) - set(frame.columns)
    if missing:
        raise DataError(f"missing columns {sorted(missing)}", source=str(path))
    return frame


def weekly_price_panel(history_path: str | Path, snapshots_path: str | Path) -> pd.DataFrame:
    """Long frame: machine_type, region, gpu_type, gpu_count, week (Sunday end), on_demand, spot."""
    runs = _read(history_path, [*KEY, "gpu_type", "gpu_count", "valid_from", "valid_to", *PRICE_KINDS.values()])
    snaps = _read(snapshots_path, ["snapshot_date"])
    runs["valid_from"] = pd.to_datetime(runs["valid_from"])
    runs["valid_to"] = pd.to_datetime(runs["valid_to"])
    dates = pd.DataFrame({"date": pd.to_datetime(snaps["snapshot_date"]).drop_duplicates().sort_values()})
    runs = runs.sort_values("valid_from")
    # each snapshot date joins the latest run starting on/before it; keep it if the run still covers it
    expanded = pd.merge_asof(
        dates.assign(key=0).merge(runs[KEY].drop_duplicates().assign(key=0), on="key").drop(columns="key")
        .sort_values("date"),
        runs, left_on="date", right_on="valid_from", by=KEY, direction="backward",
    )
    expanded = expanded[expanded["valid_to"] >= expanded["date"]]
    expanded["week"] = expanded["date"].dt.to_period(WEEK).dt.end_time.dt.normalize()
    last = expanded.sort_values("date").groupby([*KEY, "week"], as_index=False).last()
    return last.rename(columns={v: k for k, v in PRICE_KINDS.items()})[
        [*KEY, "gpu_type", "gpu_count", "week", *PRICE_KINDS]
    ].reset_index(drop=True)


def price_series(panel: pd.DataFrame, *, min_obs: int = 8) -> list[Series]:
    """One weekly Series per (machine type, region, kind) with at least ``min_obs`` prices."""
    weeks = pd.date_range(panel["week"].min(), panel["week"].max(), freq=WEEK)
    out: list[Series] = []
    for (mt, region), grp in panel.groupby(KEY, sort=True):
        g = grp.set_index("week")
        for kind in PRICE_KINDS:
            vals = g[kind].reindex(weeks)
            first = vals.first_valid_index()
            if first is None or vals.notna().sum() < min_obs:
                continue
            vals = vals.loc[first : vals.last_valid_index()]
            out.append(Series.from_pandas(f"gcp/{mt}/{region}/{kind}", vals, freq=WEEK, season_length=1))
    return out


def load_price_series(history_path: str | Path, snapshots_path: str | Path, *, min_obs: int = 8) -> list[Series]:
    """Loader: the two GCP files -> weekly series."""
    return price_series(weekly_price_panel(history_path, snapshots_path), min_obs=min_obs)


class PriceEvaluation(BaseModel):
    """Backtest of one price series: the candidates, last value and the served forecast."""

    series_id: str
    report: BacktestReport
    served_le_last_value: bool = Field(description="Served score <= last value score on this backtest.")
    winner: str = Field(description="Best model on the whole backtest (ties -> last value).")
    change_windows: int = Field(description="Origins whose horizon saw a price change.")
    anticipated: dict[str, int] = Field(description="Per model: change windows where it moved the right way.")


def anticipated_change(last: float, forecast: np.ndarray, actual: np.ndarray, *, rel: float = 1e-6) -> bool | None:
    """None if prices did not change over the window; else whether the forecast moved in its direction."""
    ok = np.isfinite(actual)
    if not ok.any():
        return None
    change = actual[ok] - last
    tol = rel * max(abs(last), 1e-12)
    if np.all(np.abs(change) <= tol):
        return None
    moved = forecast[ok] - last
    signif = np.abs(change) > tol
    return bool(np.any(signif & (np.abs(moved) > tol) & (np.sign(moved) == np.sign(change))))


def evaluate_price_series(series: Series, *, config: ForecastConfig | None = None, step: int = 4,
                          min_train: int = 26, start: datetime | None = None) -> PriceEvaluation | None:
    """Rolling origins every ``step`` weeks after ``min_train`` weeks (and from ``start``); None if none."""
    cfg = config or PRICE_CONFIG
    s = series.to_pandas()
    y, index, m = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.period
    origins = rolling_origins(index, horizon=cfg.horizon, step=step, start=start, min_train=min_train)
    if not origins:
        return None
    runs = run_models(y, index, origins, cfg.horizon, m, factories(cfg, cfg.candidates))
    served = walk_forward_served(runs, y, index, origins, origins, cfg.horizon, m, lookback=cfg.selection_origins,
                                 margin=cfg.selection_margin,
                                 min_informative=cfg.selection_min_informative)
    all_runs: dict[str, ModelRun] = {**runs, "served": served}
    rep = report_from_runs(series.series_id, all_runs, y, index, origins, cfg.horizon, m, cfg.interval_level)
    ranked = [n for n in runs if n in rep.metrics]
    winner = min(ranked, key=lambda n: score(rep.metrics[n]))
    served_ok = "served" in rep.metrics and score(rep.metrics["served"]) <= score(rep.metrics["last_value"])
    lv_run = runs["last_value"]
    windows = 0
    hits = {n: 0 for n in all_runs}
    for i, t in enumerate(origins):
        lv_fc = lv_run.forecasts[i]
        if lv_fc is None:
            continue
        last, actual = float(lv_fc.point[0]), y[t : t + cfg.horizon]
        if anticipated_change(last, lv_fc.point, actual) is None:
            continue
        windows += 1
        for n, r in all_runs.items():
            fc = r.forecasts[i]
            hits[n] += bool(fc is not None and anticipated_change(last, fc.point, actual))
    return PriceEvaluation(series_id=series.series_id, report=rep.model_copy(update={"selected": "served"}),
                           served_le_last_value=served_ok, winner=winner, change_windows=windows, anticipated=hits)


#: The price rule (chosen on the GCP weekly history, figures in ``forecasting/README.md``).
PRICE_SKILL_RULE = PRICE_CONFIG.skill_rule or SkillRule()


class GateEvaluation(BaseModel):
    """Walk-forward evaluation of the skill gate on one price series (one entry per rule)."""

    series_id: str
    step_shaped: bool
    eval_origins: int
    served_mae: dict[str, float] = Field(description="Rule label -> MAE of the served forecast over the eval origins.")
    served_coverage: dict[str, float | None] = Field(description="Rule label -> pooled coverage of its interval.")
    skill_origins: dict[str, int] = Field(description="Rule label -> eval origins where some step was not last value.")
    last_value_mae: float
    last_value_coverage: float | None
    candidate_mae: dict[str, float] = Field(description="Each candidate served unconditionally (no gate).")


def _mae(actuals: np.ndarray, points: np.ndarray) -> float:
    err = np.abs(actuals - points)
    return float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")


def _coverage(actuals: np.ndarray, forecasts: list[ModelForecast], level: float) -> float | None:
    hits = total = 0
    for a, fc in zip(actuals, forecasts):
        if fc.error_paths.shape[0] == 0:
            continue
        lo, hi = fc.interval(level)
        ok = np.isfinite(a)
        hits += int(np.sum((a[ok] >= lo[ok] - 1e-12) & (a[ok] <= hi[ok] + 1e-12)))
        total += int(ok.sum())
    return hits / total if total else None


def evaluate_price_gate(series: Series, rules: Mapping[str, SkillRule], *, config: ForecastConfig | None = None,
                        start: datetime | None = None, min_train: int = 8) -> GateEvaluation | None:
    """Serve the series walk-forward under each rule at every gate origin from ``start``; None if none.

    Every candidate is backtested once from the gate's origins (every ``horizon`` steps); at an
    evaluation origin each rule is judged on the origins whose window ended before it, exactly
    as :func:`forecasting.selection.forecast` judges them on the whole history, and the
    composed forecast (points and widened intervals) is scored on what followed.
    """
    cfg = config or PRICE_CONFIG
    s = series.to_pandas()
    y, index, m = s.to_numpy(dtype=float), pd.DatetimeIndex(s.index), series.period
    h = cfg.horizon
    step = next(iter(rules.values())).step or h
    origins = list(range(min_train, y.shape[0] - h + 1, step))
    eval_pos = [i for i, t in enumerate(origins) if start is None or index[t] >= pd.Timestamp(start)]
    if not eval_pos:
        return None
    names = tuple(n for n in cfg.candidates if n not in ("last_value", "seasonal_naive"))
    facts = {n: point_only(f) for n, f in factories(cfg, names).items() if n == LAST_VALUE or n in names}
    runs = run_models(y, index, origins, h, m, facts)
    bt = Backtest.from_runs(y, origins, h, {n: r.forecasts for n, r in runs.items()})
    stamps = [index[t].to_pydatetime() for t in origins]
    actual = bt.actuals[eval_pos]
    lv_fcs = [runs[LAST_VALUE].forecasts[i] for i in eval_pos]
    served_mae, served_cov, skill = {}, {}, {}
    for label, rule in rules.items():
        fcs: list[ModelForecast] = []
        n_skill = 0
        for i in eval_pos:
            past = [j for j in range(i) if origins[j] + h <= origins[i]][-rule.origins :]
            sub = bt.subset(past)
            decision = decide(sub, rule, level=cfg.interval_level, stamps=[stamps[j] for j in past],
                              y_hist=y[: origins[i]])
            here = {n: f for n, r in runs.items() if (f := r.forecasts[i]) is not None}
            decision = drop_missing(decision, set(here))
            n_skill += decision.report.has_skill
            fcs.append(compose(here, decision))
        served_mae[label] = _mae(actual, np.array([f.point for f in fcs]))
        served_cov[label] = _coverage(actual, fcs, cfg.interval_level)
        skill[label] = n_skill
    lv_ok = [f for f in lv_fcs if f is not None]
    return GateEvaluation(
        series_id=series.series_id, step_shaped=step_shaped(y[: origins[eval_pos[0]]]), eval_origins=len(eval_pos),
        served_mae=served_mae, served_coverage=served_cov, skill_origins=skill,
        last_value_mae=_mae(actual, bt.points[LAST_VALUE][eval_pos]),
        last_value_coverage=_coverage(actual, lv_ok, cfg.interval_level) if len(lv_ok) == len(lv_fcs) else None,
        candidate_mae={n: _mae(actual, bt.points[n][eval_pos]) for n in names},
    )
