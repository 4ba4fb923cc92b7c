"""The one small model interface, and the empirical path bootstrap every model shares.

A model is fitted on a numpy history (NaN = gap) and predicts a point path. Uncertainty is
*empirical*: the model is re-run from past origins inside its own training data and the
resulting error paths (actual - forecast, one row per origin, one column per horizon step)
are kept. Scenarios are the point path plus whole error paths drawn with replacement, so a
scenario is joint over periods (a bad first week tends to stay bad), and quantiles are
empirical quantiles of those paths, hence ordered by level at every step. This is split
conformal prediction with path-valued residuals; it calibrates far better than the
parametric intervals of the models themselves on the data we hold (see the demand backtest).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from forecasting.errors import ForecastingError, InsufficientDataError, ModelFitError


@dataclass(frozen=True)
class ModelForecast:
    """Internal forecast: point path (h,), error paths (k, h) around it, and flags."""

    point: np.ndarray
    error_paths: np.ndarray
    nonnegative: bool = False
    fallback_reason: str | None = None
    flags: tuple[str, ...] = ()
    #: Quantile level q is read at 0.5 + (q - 0.5) x stretch (clipped to [0, 1]): widens intervals
    #: whose error paths are point masses (step prices), where scaling the errors cannot.
    level_stretch: float = 1.0

    @property
    def horizon(self) -> int:
        return int(self.point.shape[0])

    def quantiles(self, levels: tuple[float, ...]) -> dict[float, np.ndarray]:
        """Empirical quantile paths; monotone in the level because np.quantile is."""
        if self.error_paths.shape[0] == 0:
            return {q: self.point.copy() for q in levels}
        read = np.clip(0.5 + (np.asarray(levels, dtype=float) - 0.5) * self.level_stretch, 0.0, 1.0)
        qs = np.quantile(self.error_paths, read, axis=0)
        out = {q: self.point + qs[i] for i, q in enumerate(levels)}
        if self.nonnegative:
            out = {q: np.maximum(v, 0.0) for q, v in out.items()}
        return out

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central interval of nominal probability ``level``."""
        lo, hi = (1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0
        q = self.quantiles((lo, hi))
        return q[lo], q[hi]

    def scenarios(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint paths, shape (n, horizon): point + whole bootstrapped error paths."""
        if self.error_paths.shape[0] == 0:
            return np.tile(self.point, (n, 1))
        rows = rng.integers(0, self.error_paths.shape[0], size=n)
        paths = self.point[None, :] + self.error_paths[rows]
        out: np.ndarray = np.maximum(paths, 0.0) if self.nonnegative else paths
        return out


@dataclass
class FitContext:
    """What a model may know besides the values: the time index, the seasonal period and covariates.

    ``covariates`` are observed side series aligned with the training values (entry ``i`` is
    known at the end of period ``i``), cut at the same origin as the values.
    """

    season_length: int
    index: pd.DatetimeIndex | None = None
    flags: list[str] = field(default_factory=list)
    covariates: dict[str, np.ndarray] = field(default_factory=dict)

    def upto(self, origin: int) -> FitContext:
        """The context of a fit on the first ``origin`` points (index and covariates cut there)."""
        return FitContext(season_length=self.season_length, index=None if self.index is None else self.index[:origin],
                          covariates={k: v[:origin] for k, v in self.covariates.items()})


class Forecaster(abc.ABC):
    """Base of every model: ``fit(y, ctx)`` then ``predict(horizon)``.

    Subclasses implement :meth:`_fit` and :meth:`_point`; they may override
    :meth:`_error_paths` with a vectorized version (the baselines do). The default
    re-fits the model at ``calibration_origins`` past origins, which is exact but costs
    that many extra fits.
    """

    name: ClassVar[str] = "base"
    min_obs: ClassVar[int] = 1

    def __init__(self, *, calibration_origins: int = 12, calibration_window: int | None = None) -> None:
        self.calibration_origins = calibration_origins
        self.calibration_window = calibration_window
        self._y: np.ndarray | None = None
        self._ctx: FitContext | None = None

    def params(self) -> dict[str, Any]:
        """Hyper-parameters that identify this model (part of the cache key and ModelVersion)."""
        return {"calibration_origins": self.calibration_origins, "calibration_window": self.calibration_window}

    def fit(self, y: np.ndarray, ctx: FitContext) -> Forecaster:
        y = np.asarray(y, dtype=float)
        n_obs = int(np.isfinite(y).sum())
        if n_obs < self.min_obs:
            raise InsufficientDataError(f"{self.name} needs more data", n_obs=n_obs, required=self.min_obs)
        self._y = y
        self._ctx = ctx
        try:
            self._fit(fill_gaps(y), ctx)
        except ForecastingError:
            raise
        except Exception as exc:  # foreign errors are translated at the edge
            raise ModelFitError(f"{type(exc).__name__}: {exc}", model=self.name) from exc
        return self

    def update(self, y: np.ndarray, ctx: FitContext) -> Forecaster:
        """Refit on a longer history; models with cheap warm starts override this."""
        return self.fit(y, ctx)

    def predict(self, horizon: int) -> ModelForecast:
        """Point path of shape ``(horizon,)`` and error paths of shape ``(k, horizon)``, always.

        Numeric libraries change the shapes they return between versions (scikit-learn 1.9
        returns a 1-d prediction for a single target where 1.4 returned a 2-d one, which once
        made a horizon-1 forecast 0-dimensional); every model's output is therefore checked
        and reshaped here, and any foreign exception a model raises is translated to
        :class:`ModelFitError`, so a caller only ever sees forecasting errors.
        """
        if horizon < 1:
            raise ModelFitError(f"horizon must be >= 1, got {horizon}", model=self.name)
        try:
            fc = self._forecast(horizon)
        except ForecastingError:
            raise
        except Exception as exc:  # translated at the edge, see the docstring
            raise ModelFitError(f"{type(exc).__name__}: {exc}", model=self.name) from exc
        point = as_path(fc.point, horizon, self.name)
        errs = as_error_paths(fc.error_paths, horizon, self.name)
        return ModelForecast(point=point, error_paths=errs, nonnegative=fc.nonnegative,
                             fallback_reason=fc.fallback_reason, flags=fc.flags)

    def _forecast(self, horizon: int) -> ModelForecast:
        """The model's forecast before the shape checks of :meth:`predict` (Prophet overrides it)."""
        y, ctx = self._fitted()
        point = self._point(horizon)
        errs = self._error_paths(y, ctx, horizon)
        nonneg = bool(np.nanmin(y) >= 0.0)
        return ModelForecast(point=point, error_paths=errs, nonnegative=nonneg, flags=tuple(ctx.flags))

    def _fitted(self) -> tuple[np.ndarray, FitContext]:
        if self._y is None or self._ctx is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        return self._y, self._ctx

    @abc.abstractmethod
    def _fit(self, y: np.ndarray, ctx: FitContext) -> None: ...

    @abc.abstractmethod
    def _point(self, horizon: int) -> np.ndarray: ...

    def _clone(self) -> Forecaster:
        return type(self)(**self.params())

    def _error_paths(self, y: np.ndarray, ctx: FitContext, horizon: int) -> np.ndarray:
        """Refit at past origins spread over the last part of the history."""
        n = y.shape[0]
        k = self.calibration_origins
        latest = n - horizon
        earliest = max(self.min_obs, latest - (self.calibration_window or k * max(1, horizon // 2)))
        if latest <= earliest or k <= 0:
            return np.empty((0, horizon))
        origins = np.unique(np.linspace(earliest, latest, num=min(k, latest - earliest + 1)).astype(int))
        rows = []
        for t in origins:
            sub = self._clone()
            sub_ctx = ctx.upto(int(t))
            try:
                sub.fit(y[:t], sub_ctx)
                rows.append(y[t : t + horizon] - as_path(sub._point(horizon), horizon, self.name))
            except Exception:  # noqa: BLE001 - a failed calibration fit only loses one path
                continue
        return finite_rows(np.array(rows).reshape(-1, horizon))


def as_path(values: object, horizon: int, model: str) -> np.ndarray:
    """``values`` as a float array of shape ``(horizon,)``; ModelFitError if it has another size."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape[0] != horizon:
        raise ModelFitError(f"point forecast has {arr.shape[0]} values for horizon {horizon}", model=model)
    return arr


def as_error_paths(values: object, horizon: int, model: str) -> np.ndarray:
    """``values`` as a float array of shape ``(k, horizon)`` (k may be 0); ModelFitError otherwise."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return np.empty((0, horizon))
    if arr.ndim == 1 and horizon == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != horizon:
        raise ModelFitError(f"error paths have shape {arr.shape} for horizon {horizon}", model=model)
    return arr


def fill_gaps(y: np.ndarray) -> np.ndarray:
    """Linear interpolation inside, carry the edge values outside; models never see NaN."""
    ok = np.isfinite(y)
    if ok.all() or not ok.any():
        return y.copy()
    x = np.arange(y.shape[0])
    return np.asarray(np.interp(x, x[ok], y[ok]), dtype=float)


def finite_rows(paths: np.ndarray) -> np.ndarray:
    """Drop error paths that touch a gap (their actuals are unknown)."""
    if paths.size == 0:
        return paths
    kept: np.ndarray = paths[np.isfinite(paths).all(axis=1)]
    return kept


def windows(y: np.ndarray, width: int) -> np.ndarray:
    """All contiguous windows of ``width`` as rows (a read-only strided view)."""
    return np.lib.stride_tricks.sliding_window_view(y, width)
