"""Prophet: piecewise-linear trend with changepoints, daily/weekly seasonality, intervals.

Prophet (and its Stan backend) are imported only inside :meth:`ProphetModel._fit`, so
importing :mod:`forecasting` stays light. Their loggers are silenced to WARNING once, after
the import (cmdstanpy sets its own level when imported). Each
seasonality is switched on only where the history spans enough cycles to estimate it
(>= 2 days for daily, >= 2 weeks for weekly, >= 2 years for yearly). Scenarios come from
Prophet's own predictive samples (trend changepoint simulation plus noise), joint over
the horizon.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from forecasting.errors import ModelFitError
from forecasting.models.base import FitContext, Forecaster, ModelForecast, as_path

_QUIET = False


def _quiet_prophet() -> None:
    global _QUIET
    if not _QUIET:
        for name in ("prophet", "cmdstanpy", "prophet.plot"):
            logger = logging.getLogger(name)
            if not logger.handlers:
                # cmdstanpy installs a chatty INFO handler on first use unless one exists.
                logger.addHandler(logging.NullHandler())
            logger.setLevel(logging.WARNING)
        _QUIET = True


class ProphetModel(Forecaster):
    """Prophet with data-dependent seasonalities; needs a time index."""

    name: ClassVar[str] = "prophet"
    min_obs: ClassVar[int] = 10

    def __init__(
        self, *, changepoint_prior_scale: float = 0.05,
        seasonality_mode: Literal["additive", "multiplicative"] = "additive",
        uncertainty_samples: int = 200, max_history: int = 24 * 28, calibration_origins: int = 0,
        calibration_window: int | None = None,
    ) -> None:
        super().__init__(calibration_origins=calibration_origins, calibration_window=calibration_window)
        self.changepoint_prior_scale = changepoint_prior_scale
        self.seasonality_mode = seasonality_mode
        self.uncertainty_samples = uncertainty_samples
        self.max_history = max_history
        self._model: Any = None
        self._future: pd.DataFrame | None = None

    def params(self) -> dict[str, Any]:
        return {"changepoint_prior_scale": self.changepoint_prior_scale, "seasonality_mode": self.seasonality_mode,
                "uncertainty_samples": self.uncertainty_samples, "max_history": self.max_history}

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        if ctx.index is None:
            raise ModelFitError("needs timestamps", model=self.name)
        from prophet import Prophet

        _quiet_prophet()

        raw, _ = self._fitted()
        frame = pd.DataFrame({"ds": ctx.index, "y": raw}).iloc[-self.max_history :].dropna()
        span = frame["ds"].iloc[-1] - frame["ds"].iloc[0]
        step = ctx.index[1] - ctx.index[0] if len(ctx.index) > 1 else pd.Timedelta(days=7)
        model = Prophet(
            changepoint_prior_scale=self.changepoint_prior_scale, seasonality_mode=self.seasonality_mode,
            daily_seasonality=bool(step < pd.Timedelta(days=1) and span >= pd.Timedelta(days=2)),
            weekly_seasonality=bool(step < pd.Timedelta(days=7) and span >= pd.Timedelta(days=14)),
            yearly_seasonality=bool(span >= pd.Timedelta(days=730)),
            interval_width=0.8, uncertainty_samples=self.uncertainty_samples,
        )
        try:
            model.fit(frame)
        except (RuntimeError, ValueError) as exc:
            raise ModelFitError(str(exc), model=self.name) from exc
        self._model = model
        self._step = step
        self._last = ctx.index[-1]

    def _future_frame(self, horizon: int) -> pd.DataFrame:
        stamps = self._last + self._step * np.arange(1, horizon + 1)
        return pd.DataFrame({"ds": pd.DatetimeIndex(stamps)})

    def _point(self, horizon: int) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("prophet: predict() before fit()")
        return np.asarray(self._model.predict(self._future_frame(horizon))["yhat"], dtype=float)

    def _forecast(self, horizon: int) -> ModelForecast:
        y, ctx = self._fitted()
        point = as_path(self._point(horizon), horizon, self.name)
        samples = np.asarray(self._model.predictive_samples(self._future_frame(horizon))["yhat"], dtype=float)
        # (horizon, n_samples) in Prophet 1.x; reshaped so a horizon of 1 cannot collapse an axis
        errs = samples.reshape(horizon, -1).T - point[None, :]
        nonneg = bool(np.nanmin(y) >= 0.0)
        return ModelForecast(point=point, error_paths=errs, nonnegative=nonneg, flags=tuple(ctx.flags))
