"""Last state: repeat the latest *end-of-period* state instead of the last period's mean.

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

from typing import ClassVar

import numpy as np

from forecasting.errors import ModelFitError
from forecasting.models.base import FitContext
from forecasting.models.baselines import _Closed

#: Covariate name: the series' state at the end of each period (e.g. GPUs running at the hour's end).
END_STATE = "end_state"


class LastState(_Closed):
    """Repeat the end-of-period state of the last period; last value where the state is missing."""

    name: ClassVar[str] = "last_state"
    min_obs: ClassVar[int] = 1

    def __init__(self, *, calibration_window: int = 672) -> None:
        super().__init__(calibration_window=calibration_window)
        self._state: np.ndarray | None = None

    def _fit(self, y: np.ndarray, ctx: FitContext) -> None:
        super()._fit(y, ctx)
        state = ctx.covariates.get(END_STATE)
        if state is None or not np.isfinite(state).any():
            raise ModelFitError(f"needs the covariate {END_STATE!r}", model=self.name)
        if state.shape[0] != y.shape[0]:
            raise ModelFitError(f"covariate {END_STATE!r} is not aligned with the values", model=self.name)
        filled = self._filled()
        self._state = np.where(np.isfinite(state), state, filled)

    def _paths_from(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        if self._state is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        return np.repeat(self._state[origins - 1][:, None], horizon, axis=1)
