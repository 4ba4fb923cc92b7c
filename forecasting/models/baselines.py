"""The two simple baselines every forecast is judged against: last value and seasonal naive.

Both have closed-form error paths, so their calibration uses every past origin in the
calibration window (at the forecast origin's phase of the season when there are enough) at no
extra fitting cost.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from forecasting.models.base import FitContext, Forecaster, finite_rows


def forward_fill(y: np.ndarray) -> np.ndarray:
    """Carry the last observation over gaps (leading gaps take the first observation)."""
    ok = np.isfinite(y)
    if ok.all() or not ok.any():
        return y.copy()
    idx = np.where(ok, np.arange(y.shape[0]), 0)
    np.maximum.accumulate(idx, out=idx)
    out = y[idx]
    first = int(np.argmax(ok))
    out[:first] = y[first]
    return out


#: Fewest same-phase calibration paths for phase-matched intervals (else every origin is used).
MIN_PHASE_PATHS = 20


class _Closed(Forecaster):
    """Shared machinery: point path from an origin index, error paths by vectorization."""

    def __init__(self, *, calibration_window: int = 672, calibration_origins: int = 0) -> None:
        super().__init__(calibration_origins=calibration_origins, calibration_window=calibration_window)
        self._ff: np.ndarray | None = None
        self._m = 1

    def params(self) -> dict[str, Any]:
        return {"calibration_window": self.calibration_window}

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        raw, _ = self._fitted()
        self._ff = forward_fill(raw)
        self._m = max(1, ctx.season_length)

    def _filled(self) -> np.ndarray:
        if self._ff is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        return self._ff

    def _paths_from(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        raise NotImplementedError

    def _point(self, horizon: int) -> np.ndarray:
        return np.asarray(self._paths_from(np.array([self._filled().shape[0]]), horizon)[0], dtype=float)

    def _error_paths(self, y: np.ndarray, ctx: FitContext, horizon: int) -> np.ndarray:
        """Realized error paths from past origins of the calibration window.

        With a season (``m`` > 1) and at least :data:`MIN_PHASE_PATHS` of them, only origins
        at the same phase of the season as the forecast's own origin are used (for hourly
        demand: the same hour of the day): a path's errors depend on where in the cycle it
        starts, so those are the residuals exchangeable with the forecast's. A model whose
        errors grow with some known quantity (:meth:`_error_scale`) has each past path rescaled
        to the forecast origin's scale (locally weighted split conformal).
        """
        n = y.shape[0]
        latest = n - horizon
        earliest = max(self._m, latest - (self.calibration_window or n))
        if latest < earliest:
            return np.empty((0, horizon))
        origins = np.arange(earliest, latest + 1)
        if self._m > 1:
            phase = origins[(n - origins) % self._m == 0]
            if phase.size >= MIN_PHASE_PATHS:
                origins = phase
        actual = y[origins[:, None] + np.arange(horizon)[None, :]]
        errors = actual - self._paths_from(origins, horizon)
        scale = self._error_scale(np.append(origins, n))
        if scale is not None:
            errors = errors * (scale[-1] / scale[:-1])[:, None]
        return finite_rows(errors)

    def _error_scale(self, origins: np.ndarray) -> np.ndarray | None:
        """Positive scale of the errors expected from each origin (None: errors do not scale)."""
        return None


class LastValue(_Closed):
    """Tomorrow looks like today: repeat the last observation."""

    name: ClassVar[str] = "last_value"
    min_obs: ClassVar[int] = 1

    def _paths_from(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(self._filled()[origins - 1][:, None], horizon, axis=1)


class SeasonalNaive(_Closed):
    """Repeat the last full season (period ``season_length``; last value when it is 1)."""

    name: ClassVar[str] = "seasonal_naive"
    min_obs: ClassVar[int] = 1

    def _paths_from(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        m = self._m if origins.min() >= self._m else 1
        steps = np.arange(horizon) % m
        return self._filled()[origins[:, None] - m + steps[None, :]]
