"""Additive damped Holt-Winters in numpy, smoothing parameters picked from a grid.

Built for bulk forecasting (hundreds of series in seconds): instead of a numerical
optimizer, every (alpha, beta, gamma, phi) of a small grid runs in one vectorized pass over
the history and the grid point with the lowest in-sample one-step squared error wins. A
second pass with the winner keeps the state at every step, so forecasts from *every* past
origin come for free: the error paths behind the intervals use all origins of the
calibration window, not a few refits.

Recursions (m = season length, h = steps ahead, phi_h = phi + ... + phi^h)::

    level_t  = alpha (y_t - s_(t-m)) + (1 - alpha)(level_(t-1) + phi trend_(t-1))
    trend_t  = beta (level_t - level_(t-1)) + (1 - beta) phi trend_(t-1)
    s_t      = gamma (y_t - level_t) + (1 - gamma) s_(t-m)
    yhat_(t+h|t) = level_t + phi_h trend_t + s_(t+h-m*ceil(h/m))
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np

from forecasting.errors import InsufficientDataError
from forecasting.models.base import FitContext, Forecaster, finite_rows

ALPHAS = (0.1, 0.3, 0.5, 0.8, 1.0)
BETAS = (0.0, 0.05, 0.2)
GAMMAS = (0.0, 0.1, 0.3)
PHIS = (0.8, 0.9, 0.98)


def _init_states(y: np.ndarray, m: int) -> tuple[float, float, np.ndarray]:
    """Level/trend from the first two seasons' means, seasonals from the first two seasons."""
    if m > 1:
        first, second = y[:m], y[m : 2 * m]
        level = float(first.mean())
        trend = float((second.mean() - first.mean()) / m)
        season = ((first - first.mean()) + (second - second.mean())) / 2.0
        return level, trend, season
    return float(y[0]), float(y[1] - y[0]) if y.shape[0] > 1 else 0.0, np.zeros(1)


def _run(y: np.ndarray, m: int, alpha: np.ndarray, beta: np.ndarray, gamma: np.ndarray, phi: np.ndarray,
         keep: bool) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """One pass for k parameter sets at once; returns one-step SSE per set (and states if ``keep``)."""
    k, n = alpha.shape[0], y.shape[0]
    l0, b0, s0 = _init_states(y, m)
    level = np.full(k, l0)
    trend = np.full(k, b0)
    season = np.tile(s0, (k, 1)) if m > 1 else np.zeros((k, 1))
    sse = np.zeros(k)
    if keep:
        levels, trends, seasons = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
    for t in range(n):
        j = t % m if m > 1 else 0
        s_old = season[:, j]
        pred = level + phi * trend + s_old
        err = y[t] - pred
        sse += err * err
        new_level = alpha * (y[t] - s_old) + (1 - alpha) * (level + phi * trend)
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
        if m > 1:
            season[:, j] = gamma * (y[t] - level) + (1 - gamma) * s_old
        if keep:
            levels[t], trends[t], seasons[t] = level, trend, season[:, j]
    return sse, ((levels, trends, seasons) if keep else None)


class HoltWintersGrid(Forecaster):
    """Fast additive damped Holt-Winters (seasonal when two full seasons are available)."""

    name: ClassVar[str] = "hw_grid"
    min_obs: ClassVar[int] = 4

    def __init__(self, *, max_history: int = 24 * 28, calibration_window: int = 24 * 14,
                 calibration_origins: int = 0) -> None:
        super().__init__(calibration_origins=calibration_origins, calibration_window=calibration_window)
        self.max_history = max_history
        self._hist: np.ndarray | None = None
        self._m = 1
        self._par: tuple[float, float, float, float] = (0.5, 0.0, 0.0, 0.9)
        self._states: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def params(self) -> dict[str, Any]:
        return {"max_history": self.max_history, "calibration_window": self.calibration_window}

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        hist = y[-self.max_history :]
        m = ctx.season_length if ctx.season_length > 1 and hist.shape[0] >= 2 * ctx.season_length + 2 else 1
        if hist.shape[0] < 2 * m + 2:
            raise InsufficientDataError("hw_grid needs two seasons", n_obs=hist.shape[0], required=2 * m + 2)
        grid = np.array(list(itertools.product(ALPHAS, BETAS, GAMMAS if m > 1 else (0.0,), PHIS)))
        _, states = _run(hist, m, grid[:, 0], grid[:, 1], grid[:, 2], grid[:, 3], keep=True)
        if states is None:
            raise RuntimeError("hw_grid: states not kept")
        best = self._select(hist, m, grid, states)
        self._par = (float(grid[best, 0]), float(grid[best, 1]), float(grid[best, 2]), float(grid[best, 3]))
        self._hist, self._m = hist, m
        self._states = (states[0][:, [best]], states[1][:, [best]], states[2][:, [best]])

    def _select(self, hist: np.ndarray, m: int, grid: np.ndarray,
                states: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
        """Grid point with the lowest in-sample multi-step MAE (steps 1..max(m, 8)).

        One-step error favours reactive parameters that extrapolate noise over a day-long
        horizon; scoring the horizon the model is used for does not.
        """
        steps = max(m, 8)
        n = hist.shape[0]
        ends = np.arange(max(2 * m, n // 2), n - steps, max(1, m // 4))
        if ends.size == 0:
            ends = np.arange(max(1, 2 * m), n - 1)
            steps = 1
        h = np.arange(1, steps + 1)
        levels, trends, seasons = states
        damp = np.cumsum(grid[:, 3][None, :] ** h[:, None], axis=0)  # (steps, k)
        fc = levels[ends][:, None, :] + trends[ends][:, None, :] * damp[None, :, :]
        if m > 1:
            idx = ends[:, None] + h[None, :] - m * np.ceil(h / m).astype(int)[None, :]
            fc = fc + seasons[idx]
        actual = hist[ends[:, None] + h[None, :]]
        mae = np.abs(actual[:, :, None] - fc).mean(axis=(0, 1))
        return int(np.argmin(mae))

    def _paths_from(self, ends: np.ndarray, horizon: int) -> np.ndarray:
        """Forecast paths from the states after observations ``ends`` (indices into the history)."""
        if self._states is None or self._hist is None:
            raise RuntimeError("hw_grid: predict() before fit()")
        levels, trends, seasons = (a[:, 0] for a in self._states)
        phi, m = self._par[3], self._m
        h = np.arange(1, horizon + 1)
        damp = np.cumsum(phi ** h)
        out = levels[ends][:, None] + trends[ends][:, None] * damp[None, :]
        if m > 1:
            # the seasonal for step h was last updated at time end + h - m * ceil(h / m)
            idx = ends[:, None] + h[None, :] - m * np.ceil(h / m).astype(int)[None, :]
            out = out + seasons[idx]
        return np.asarray(out)

    def _point(self, horizon: int) -> np.ndarray:
        if self._hist is None:
            raise RuntimeError("hw_grid: predict() before fit()")
        return np.asarray(self._paths_from(np.array([self._hist.shape[0] - 1]), horizon)[0], dtype=float)

    def _error_paths(self, y: np.ndarray, ctx: FitContext, horizon: int) -> np.ndarray:
        if self._hist is None:
            raise RuntimeError("hw_grid: predict() before fit()")
        n = self._hist.shape[0]
        offset = y.shape[0] - n
        last_end = n - 1 - horizon
        first_end = max(2 * self._m, last_end - (self.calibration_window or n))
        if last_end < first_end:
            return np.empty((0, horizon))
        ends = np.arange(first_end, last_end + 1)
        actual = y[offset + ends[:, None] + 1 + np.arange(horizon)[None, :]]
        return finite_rows(actual - self._paths_from(ends, horizon))
