"""Exponential smoothing (Holt-Winters, statsmodels) with an additive damped trend.

Damping keeps multi-step trends from running away, which matters at 24..168-step
horizons. Seasonal initial states are estimated by default; ``initialization="heuristic"``
is about 2-3x faster but costs accuracy (Philly served MASE 0.588 -> 0.642), so it is kept
for bulk jobs where throughput matters more. The seasonal component is used only where the history holds at least two full
seasons. Calibration refits reuse the smoothing parameters estimated on the full history
(``optimized=False``), so the error paths cost a few recursions, not a few optimizations.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from forecasting.errors import ModelFitError
from forecasting.models.base import FitContext, Forecaster, fill_gaps, finite_rows


class ETS(Forecaster):
    """Additive damped-trend Holt-Winters; seasonal when the data supports it."""

    name: ClassVar[str] = "ets"
    min_obs: ClassVar[int] = 6

    def __init__(
        self, *, damped: bool = True, seasonal: bool = True, max_history: int = 24 * 28,
        initialization: str = "estimated", brute: bool = True, calibration_origins: int = 24, calibration_window: int | None = None,
    ) -> None:
        super().__init__(calibration_origins=calibration_origins, calibration_window=calibration_window)
        self.damped = damped
        self.seasonal = seasonal
        self.max_history = max_history
        self.initialization = initialization
        self.brute = brute
        self._res: Any = None
        self._params: dict[str, float] = {}
        self._spec: dict[str, Any] = {}
        self._flat: float | None = None

    def params(self) -> dict[str, Any]:
        return {"damped": self.damped, "seasonal": self.seasonal, "max_history": self.max_history,
                "initialization": self.initialization, "brute": self.brute, "calibration_origins": self.calibration_origins, "calibration_window": self.calibration_window}

    def _spec_for(self, n: int, m: int) -> dict[str, Any]:
        seasonal = self.seasonal and m > 1 and n >= 2 * m + 2
        return {"trend": "add", "damped_trend": self.damped,
                "seasonal": "add" if seasonal else None, "seasonal_periods": m if seasonal else None}

    def _init(self) -> str:
        """Heuristic initial states need two full seasons, which a seasonal spec guarantees."""
        return self.initialization if self._spec["seasonal"] else "estimated"

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        y = y[-self.max_history :]
        self._spec = self._spec_for(y.shape[0], ctx.season_length)
        self._flat = float(y[-1]) if float(np.ptp(y)) == 0.0 else None
        if self._flat is not None:
            # A constant history has a constant ETS forecast; skip the optimizer (most prices).
            self._res, self._params = None, {}
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._res = ExponentialSmoothing(y, initialization_method=self._init(), **self._spec).fit(use_brute=self.brute)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ModelFitError(str(exc), model=self.name) from exc
        p = self._res.params
        self._params = {k: float(p[k]) for k in ("smoothing_level", "smoothing_trend", "smoothing_seasonal",
                                                 "damping_trend") if p.get(k) is not None and np.isfinite(p[k])}

    def update(self, y: np.ndarray, ctx: FitContext) -> Forecaster:
        """Incremental refit: keep the smoothing parameters, rerun the recursions on the new data."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        y = np.asarray(y, dtype=float)
        hist = fill_gaps(y)[-self.max_history :]
        spec = self._spec_for(hist.shape[0], ctx.season_length)
        if not self._params or spec != self._spec or float(np.ptp(hist)) == 0.0:
            return self.fit(y, ctx)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                init = "heuristic" if spec["seasonal"] else "estimated"
                res = ExponentialSmoothing(hist, initialization_method=init, **spec).fit(optimized=False, **self._params)
        except (ValueError, np.linalg.LinAlgError):
            return self.fit(y, ctx)
        self._y, self._ctx, self._res, self._flat = y, ctx, res, None
        return self

    def _point(self, horizon: int) -> np.ndarray:
        if self._flat is not None:
            return np.full(horizon, self._flat)
        if self._res is None:
            raise RuntimeError("ets: predict() before fit()")
        out = np.asarray(self._res.forecast(horizon), dtype=float)
        if not np.isfinite(out).all():
            raise ModelFitError("non-finite forecast", model=self.name)
        return out

    def _error_paths(self, y: np.ndarray, ctx: FitContext, horizon: int) -> np.ndarray:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        n = y.shape[0]
        latest = n - horizon
        window = self.calibration_window or self.calibration_origins * max(1, horizon // 2)
        earliest = max(self.min_obs + 2 * ctx.season_length, latest - window)
        if latest <= earliest or self.calibration_origins <= 0:
            return np.empty((0, horizon))
        if self._flat is not None:
            return super()._error_paths(y, ctx, horizon)
        filled = fill_gaps(y)
        origins = np.unique(np.linspace(earliest, latest, num=min(self.calibration_origins, latest - earliest + 1)))
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in origins.astype(int):
                hist = filled[max(0, t - self.max_history) : t]
                spec = self._spec_for(hist.shape[0], ctx.season_length)
                if spec["seasonal"] != self._spec["seasonal"]:
                    continue
                try:
                    res = ExponentialSmoothing(hist, initialization_method="heuristic" if spec["seasonal"]
                                               else "estimated", **spec).fit(optimized=False, **self._params)
                    rows.append(y[t : t + horizon] - np.asarray(res.forecast(horizon), dtype=float))
                except (ValueError, np.linalg.LinAlgError):
                    continue
        return finite_rows(np.array(rows).reshape(-1, horizon))
