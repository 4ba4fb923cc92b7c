"""Last state: repeat the latest *end-of-period* state instead of the last period's mean; and
state + arrivals, its variant for series that count every job active during a period.

For demand, the value of hour ``i`` is the mean number of GPUs running during that hour,
while what the scheduler knows at the forecast origin is the number running *now*, at the
end of the hour (covariate :data:`END_STATE`). On a series that moves in steps (jobs start
and stop), the instantaneous state is the fresher estimate of the next hours: a job that
started or stopped during the last hour counts fully instead of in proportion to the time it
ran. Like last value it extrapolates nothing, so it inherits last value's robustness.

Error paths are closed-form over every origin of the calibration window, as for the
baselines. The covariate is cut at each origin like the values, so entry ``origin - 1`` (the
state at the origin itself) is the latest one used.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from forecasting.errors import ModelFitError
from forecasting.models.base import FitContext
from forecasting.models.baselines import _Closed

#: Covariate name: the series' state at the end of each period (e.g. GPUs running at the hour's end).
END_STATE = "end_state"
#: Covariate name: what entered during each period (e.g. GPUs of the jobs started in the hour).
ARRIVALS = "arrivals"


def _covariate(ctx: FitContext, name: str, n: int, model: str) -> np.ndarray:
    """A covariate aligned with the values, or a ModelFitError naming it."""
    arr = ctx.covariates.get(name)
    if arr is None or not np.isfinite(arr).any():
        raise ModelFitError(f"needs the covariate {name!r}", model=model)
    if arr.shape[0] != n:
        raise ModelFitError(f"covariate {name!r} is not aligned with the values", model=model)
    return arr


class LastState(_Closed):
    """Repeat the end-of-period state of the last period; last value where the state is missing."""

    name: ClassVar[str] = "last_state"
    min_obs: ClassVar[int] = 1

    def __init__(self, *, calibration_window: int = 672) -> None:
        super().__init__(calibration_window=calibration_window)
        self._state: np.ndarray | None = None

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        super()._fit(y, ctx)
        state = _covariate(ctx, END_STATE, y.shape[0], self.name)
        filled = self._filled()
        self._state = np.where(np.isfinite(state), state, filled)

    def _paths_from(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        if self._state is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        return np.repeat(self._state[origins - 1][:, None], horizon, axis=1)


class StateArrivals(LastState):
    """Carry-over plus arrivals, for a series that counts everything active during a period.

    If a period's value is what was running at its start (the previous period's end state)
    plus what entered during it (covariate :data:`ARRIVALS`), then every future period is the
    carried-over state plus its own arrivals. The forecast keeps the state as last state does
    and adds the mean arrivals of the last ``arrival_window`` periods: arrivals are a flow with
    a steadier level than the stock they join.
    """

    name: ClassVar[str] = "state_arrivals"

    def __init__(self, *, calibration_window: int = 672, arrival_window: int = 6) -> None:
        super().__init__(calibration_window=calibration_window)
        if arrival_window < 1:
            raise ValueError("arrival_window must be >= 1")
        self.arrival_window = arrival_window
        self._cum: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        return {**super().params(), "arrival_window": self.arrival_window}

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        super()._fit(y, ctx)
        arrivals = _covariate(ctx, ARRIVALS, y.shape[0], self.name)
        self._cum = np.concatenate([[0.0], np.cumsum(np.where(np.isfinite(arrivals), arrivals, 0.0))])

    def _paths_from(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        if self._cum is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        lo = np.maximum(origins - self.arrival_window, 0)
        rate = (self._cum[origins] - self._cum[lo]) / np.maximum(origins - lo, 1)
        paths: np.ndarray = super()._paths_from(origins, horizon) + rate[:, None]
        return paths
