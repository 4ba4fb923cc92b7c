"""Direct multi-horizon ridge regression on lag differences.

Predicts the change ``y[t+h] - y[t-1]`` for every step h at once from the recent changes
``y[t-1] - y[t-1-k]`` and the distance of the last value from its recent means. Targets are
changes, not levels, so the model degrades to last value when nothing is learnable and the
ridge penalty shrinks it there; values are scaled by the in-sample one-step MAE so one
penalty fits every series.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from forecasting.errors import InsufficientDataError, ModelFitError
from forecasting.models.base import FitContext, Forecaster


class LagRidge(Forecaster):
    """Ridge on lag differences, one output per horizon step."""

    name: ClassVar[str] = "lag_ridge"
    min_obs: ClassVar[int] = 12

    def __init__(
        self, *, alpha: float = 10.0, lags: tuple[int, ...] = (1, 2, 3, 6, 12, 24, 48, 168),
        max_history: int = 24 * 56, calibration_origins: int = 24, calibration_window: int | None = None,
    ) -> None:
        super().__init__(calibration_origins=calibration_origins, calibration_window=calibration_window)
        self.alpha = alpha
        self.lags = lags
        self.max_history = max_history
        self._y_fit: np.ndarray | None = None
        self._lags: tuple[int, ...] = ()
        self._cache: dict[int, np.ndarray] = {}

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "lags": list(self.lags), "max_history": self.max_history,
                "calibration_origins": self.calibration_origins, "calibration_window": self.calibration_window}

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        y = y[-self.max_history :]
        usable = [k for k in self.lags if k < y.shape[0] // 3]
        if not usable:
            raise InsufficientDataError("lag_ridge: history too short for any lag", n_obs=y.shape[0], required=4)
        self._lags = tuple(usable)
        self._y_fit = y
        self._cache = {}

    def _features(self, y: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Rows of features for origins whose last observation is ``y[ends]``."""
        last = y[ends]
        cols = [last - y[ends - k] for k in self._lags]
        csum = np.concatenate([[0.0], np.cumsum(y)])
        for w in sorted({min(self._lags[-1], 24), self._lags[-1]}):
            mean = (csum[ends + 1] - csum[ends + 1 - w]) / w
            cols.append(last - mean)
        return np.column_stack(cols)

    def _point(self, horizon: int) -> np.ndarray:
        from sklearn.linear_model import Ridge

        if self._y_fit is None:
            raise RuntimeError("lag_ridge: predict() before fit()")
        if horizon in self._cache:
            return self._cache[horizon]
        y = self._y_fit
        n, kmax = y.shape[0], self._lags[-1]
        ends = np.arange(kmax, n - horizon)
        if ends.shape[0] < 5:
            raise ModelFitError("too few training windows", model=self.name)
        scale = float(np.mean(np.abs(np.diff(y)))) or 1.0
        x = self._features(y, ends) / scale
        target = (y[ends[:, None] + 1 + np.arange(horizon)[None, :]] - y[ends][:, None]) / scale
        model = Ridge(alpha=self.alpha).fit(x, target)
        # scikit-learn >= 1.9 returns shape (1,) for a single target, older versions (1, 1)
        raw = np.asarray(model.predict(self._features(y, np.array([n - 1])) / scale), dtype=float)
        step = raw.reshape(1, horizon)[0] * scale
        out = np.asarray(y[-1] + step, dtype=float)
        self._cache[horizon] = out
        return out
