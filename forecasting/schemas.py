"""Typed boundary schemas of the forecasting library.

The application (``cloudarb.jobs``) builds a :class:`Series` from stored rows, calls the
library and stores what comes back: :class:`ForecastResult` for ``GET /forecasts``,
:class:`BacktestReport` for ``GET /forecasts/{series}/backtest`` and :class:`ModelVersion`
for champion/challenger bookkeeping. Inside the library, models work on numpy arrays for
speed; these models exist only at the edges.

Documented DataFrame alternative: :meth:`Series.from_frame` accepts a frame with columns
``timestamp`` (datetime-like, regular grid at ``freq``) and ``value`` (float, NaN for gaps).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from forecasting.errors import DataError

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class Series(BaseModel):
    """One regular time series: ``values[i]`` observed at ``timestamps[i]``; ``None`` marks a gap."""

    model_config = ConfigDict(frozen=True)

    series_id: str = Field(description="Stable key, e.g. 'gcp/a2-highgpu-1g/us-central1/spot'.")
    timestamps: list[datetime] = Field(description="Strictly increasing, on the grid of `freq`.")
    values: list[float | None] = Field(description="Observation per timestamp; None (or NaN) = missing.")
    freq: str = Field(description="pandas offset alias of the grid: 'h' hourly, 'W-WED' weekly, 'D' daily.")
    season_length: int | None = Field(
        default=None, ge=1, description="Main seasonal period in steps; default from `freq` (24 for 'h', 7 for 'D', 1 otherwise)."
    )
    covariates: dict[str, list[float | None]] = Field(
        default_factory=dict,
        description="Observed side series aligned with `values` (same timestamps; None = missing). Entry i must be "
        "known at the end of period i, e.g. 'end_state': GPUs running at the end of each hour.",
    )

    @model_validator(mode="after")
    def _check_lengths(self) -> Series:
        if len(self.timestamps) != len(self.values):
            raise ValueError("timestamps and values must have the same length")
        for name, vals in self.covariates.items():
            if len(vals) != len(self.values):
                raise ValueError(f"covariate {name!r} must have one entry per timestamp")
        if any(b <= a for a, b in zip(self.timestamps, self.timestamps[1:])):
            raise ValueError("timestamps must be strictly increasing")
        return self

    @property
    def period(self) -> int:
        """Seasonal period used by seasonal naive and by the MASE scale."""
        if self.season_length is not None:
            return self.season_length
        return default_season_length(self.freq)

    def to_pandas(self) -> pd.Series:
        """Values on a complete regular index (missing grid points become NaN)."""
        idx = pd.DatetimeIndex(self.timestamps)
        raw = pd.Series(np.array([np.nan if v is None else v for v in self.values], dtype=float), index=idx)
        if len(idx) == 0:
            return raw
        full = pd.date_range(idx[0], idx[-1], freq=self.freq)
        if not idx.isin(full).all():
            raise DataError(f"timestamps are not on the {self.freq!r} grid", source=self.series_id)
        return raw.reindex(full)

    def covariate_arrays(self) -> dict[str, np.ndarray]:
        """Covariates on the same complete regular index as :meth:`to_pandas` (NaN where missing)."""
        idx = pd.DatetimeIndex(self.timestamps)
        out: dict[str, np.ndarray] = {}
        for name, vals in self.covariates.items():
            raw = pd.Series(np.array([np.nan if v is None else v for v in vals], dtype=float), index=idx)
            full = raw if len(idx) == 0 else raw.reindex(pd.date_range(idx[0], idx[-1], freq=self.freq))
            out[name] = full.to_numpy(dtype=float)
        return out

    @classmethod
    def from_pandas(
        cls, series_id: str, values: pd.Series, *, freq: str, season_length: int | None = None,
        covariates: dict[str, pd.Series] | None = None,
    ) -> Series:
        """Build from a pandas Series indexed by timestamps (covariates are aligned to its index)."""
        def as_list(s: pd.Series) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in s.to_numpy(dtype=float)]

        stamps = [t.to_pydatetime() for t in pd.DatetimeIndex(values.index)]
        covs = {k: as_list(v.reindex(values.index)) for k, v in (covariates or {}).items()}
        return cls(series_id=series_id, timestamps=stamps, values=as_list(values), freq=freq,
                   season_length=season_length, covariates=covs)

    @classmethod
    def from_frame(cls, series_id: str, frame: pd.DataFrame, *, freq: str, season_length: int | None = None) -> Series:
        """Build from the documented frame (columns ``timestamp``, ``value``)."""
        missing = {"timestamp", "value"} - set(frame.columns)
        if missing:
            raise DataError(f"frame lacks columns {sorted(missing)}", source=series_id)
        s = pd.Series(frame["value"].to_numpy(dtype=float), index=pd.to_datetime(frame["timestamp"]))
        return cls.from_pandas(series_id, s.sort_index(), freq=freq, season_length=season_length)


def default_season_length(freq: str) -> int:
    """Daily cycle for hourly data, weekly cycle for daily data, none otherwise."""
    f = freq.upper()
    if f in {"H", "1H"}:
        return 24
    if f in {"D", "1D"}:
        return 7
    return 1


class StepSkill(BaseModel):
    """The skill check at one horizon step: the best non-baseline candidate against last value."""

    step: int = Field(ge=1, description="Steps ahead (1 = the first forecast step).")
    served: str = Field(description="Model whose forecast is served at this step.")
    candidate: str | None = Field(description="Best non-baseline candidate checked at this step (lowest MAE).")
    n_origins: int = Field(ge=0, description="Backtest origins with an actual at this step.")
    wins: int = Field(ge=0, description="Origins where the candidate's absolute error was below last value's.")
    losses: int = Field(ge=0, description="Origins where it was above (ties are neither).")
    p_value: float | None = Field(description="One-sided sign test of wins against losses (None: no candidate).")
    candidate_mae: float | None
    last_value_mae: float | None
    skill: bool = Field(description="The candidate passed the rule here and is served at this step.")


class SkillReport(BaseModel):
    """Why a forecast is or is not more than last value: the out-of-sample figures it was judged on."""

    rule: str = Field(description="The rule a candidate had to pass, in words.")
    origins: list[datetime] = Field(description="Backtest origins (first forecast step) the rule was judged on.")
    steps: list[StepSkill]
    has_skill: bool = Field(description="Some step is served by a model other than last value.")
    reason: str = Field(description="One line for the API, CLI and dashboard, e.g. 'no skill over last value: ...'.")
    step_shaped: bool = Field(description="The history moves in rare steps (list prices), not continuous noise.")
    interval_scale: float = Field(ge=1.0, description="Factor by which the error paths were widened for coverage.")
    backtest_coverage: float | None = Field(
        description="Coverage of the served central interval at the backtest origins, each judged with the errors "
        "of earlier origins only, after widening.")
    interval_level: float
    interval_read_at: float = Field(
        description="Level at which the error quantiles were read for the nominal interval (> interval_level: widened).")


class ForecastResult(BaseModel):
    """A served forecast: point path, quantile paths and joint scenarios over the horizon."""

    series_id: str
    model: str = Field(description="Registry name of the model that produced the forecast.")
    origin: datetime = Field(description="Timestamp of the first forecast step.")
    timestamps: list[datetime] = Field(description="One per horizon step.")
    point: list[float] = Field(description="Point forecast (median-like) per step.")
    quantiles: dict[float, list[float]] = Field(
        description="Quantile level -> path; for every step values are non-decreasing in the level."
    )
    scenarios: list[list[float]] = Field(
        description="Sampled joint paths, shape (n_scenarios, horizon): the optimizer's price/demand scenarios."
    )
    fallback_reason: str | None = Field(
        default=None, description="Set when a simpler model was used because the series is short/flat/gappy."
    )
    flags: list[str] = Field(default_factory=list, description="Data-quality notes, e.g. 'gaps_filled'.")
    skill: SkillReport | None = Field(
        default=None, description="Out-of-sample check against last value, per horizon step (configs with a "
        "`skill_rule`, e.g. prices); `skill.has_skill` False means last value is served: 'no skill over last value'.",
    )

    @property
    def horizon(self) -> int:
        return len(self.point)

    def scenario_array(self) -> np.ndarray:
        """Scenarios as a float array of shape (n_scenarios, horizon)."""
        return np.asarray(self.scenarios, dtype=float).reshape(len(self.scenarios), self.horizon)


class ModelMetrics(BaseModel):
    """Backtest accuracy of one model on one series, aggregated over origins."""

    mape: float = Field(description="Mean absolute percentage error, percent; zero actuals skipped.")
    smape: float = Field(description="Symmetric MAPE, percent in [0, 200].")
    mase: float = Field(description="Mean over origins of MAE / in-sample seasonal-naive MAE (see backtest).")
    mae: float = Field(description="Mean absolute error over all forecast points.")
    coverage: float | None = Field(description="Share of actuals inside the central interval; None if no interval.")
    interval_level: float = Field(description="Nominal probability of the central interval, e.g. 0.8.")
    n_origins: int


class OriginResult(BaseModel):
    """Accuracy of one model at one rolling origin."""

    model: str
    origin: datetime
    mae: float
    mape: float
    smape: float
    mase: float
    coverage: float | None
    scale: float = Field(description="The MASE denominator used at this origin.")


BASELINES: tuple[str, str] = ("last_value", "seasonal_naive")
"""The two simple baselines every backtest includes."""


def score(metrics: ModelMetrics) -> tuple[float, float]:
    """Ranking key, lower is better: MASE (undefined counts as worst), then MAE."""
    mase = metrics.mase if math.isfinite(metrics.mase) else math.inf
    mae = metrics.mae if math.isfinite(metrics.mae) else math.inf
    return (mase, mae)


class BacktestReport(BaseModel):
    """Rolling-origin backtest of candidate models on one series, always with the baselines."""

    series_id: str
    horizon: int
    season_length: int
    origins: list[datetime]
    metrics: dict[str, ModelMetrics] = Field(description="Model name -> aggregated metrics.")
    details: list[OriginResult] = Field(description="Per model and origin.")
    selected: str | None = Field(default=None, description="Model served after selection by this backtest.")
    notes: list[str] = Field(default_factory=list)

    def best_baseline(self) -> str:
        """Name of the better of the two simple baselines on this backtest."""
        present = [b for b in BASELINES if b in self.metrics]
        return min(present, key=lambda b: score(self.metrics[b]))


class ModelVersion(BaseModel):
    """One trained model version for a series, as stored by the caller (champion/challenger)."""

    series_id: str
    name: str = Field(description="Registry name of the model.")
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: ModelMetrics
    trained_at: datetime
    data_hash: str | None = Field(default=None, description="Hash of the training data (cache key part).")


class PromotionDecision(BaseModel):
    """Outcome of :func:`forecasting.selection.promote`."""

    promote: bool
    reason: str
    champion_score: float | None
    challenger_score: float
