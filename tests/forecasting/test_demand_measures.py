"""Demand measures (allocated vs mean GPUs per hour), the arrivals covariate, state + arrivals,
and phase-matched calibration of the closed-form models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.demand import (
    allocated_gpus_per_hour,
    arrivals_per_period,
    demand_series,
    running_gpus_at_period_ends,
    running_gpus_per_hour,
)
from forecasting.errors import ModelFitError
from forecasting.models.base import FitContext
from forecasting.models.baselines import MIN_PHASE_PATHS, LastValue
from forecasting.models.registry import make_model
from forecasting.models.state import ARRIVALS, END_STATE, StateArrivals


def _jobs() -> pd.DataFrame:
    return pd.DataFrame({
        "submit": pd.to_datetime(["2024-01-01 00:30", "2024-01-01 00:10", "2024-01-01 01:00", "2024-01-01 00:45"]),
        "duration_s": [3600.0, 600.0, 3600.0, 0.0],
        "num_gpus": [2.0, 8.0, 1.0, 4.0],
    })


def test_allocated_counts_every_job_active_in_the_hour_and_arrivals_count_starts() -> None:
    jobs = _jobs()
    # hour 0: 2 (00:30-01:30) + 8 (00:10-00:20) + 4 (zero-length at 00:45); hour 1: 2 + 1 (01:00-02:00)
    alloc = allocated_gpus_per_hour(jobs)
    np.testing.assert_allclose(alloc.to_numpy(), [14.0, 3.0])
    assert list(alloc.index) == list(running_gpus_per_hour(jobs).index)
    np.testing.assert_allclose(running_gpus_per_hour(jobs).to_numpy(), [2 * 0.5 + 8 / 6, 2 * 0.5 + 1.0])
    np.testing.assert_allclose(arrivals_per_period(jobs, pd.DatetimeIndex(alloc.index)).to_numpy(), [14.0, 1.0])
    s = demand_series("t", jobs, measure="allocated")
    assert s.values == [14.0, 3.0] and s.covariates[ARRIVALS] == [14.0, 1.0] and s.covariates[END_STATE] == [3.0, 0.0]


def test_allocated_is_the_carried_state_plus_the_hours_arrivals() -> None:
    rng = np.random.default_rng(11)
    n = 400
    jobs = pd.DataFrame({
        "submit": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 72 * 3600, n).round(3), unit="s"),
        "duration_s": rng.exponential(3 * 3600, n).round(3),
        "num_gpus": rng.choice([1.0, 2.0, 4.0, 8.0], n),
    })
    alloc = allocated_gpus_per_hour(jobs)
    index = pd.DatetimeIndex(alloc.index)
    state = running_gpus_at_period_ends(jobs, index).to_numpy()
    arrivals = arrivals_per_period(jobs, index).to_numpy()
    np.testing.assert_allclose(alloc.to_numpy()[1:], state[:-1] + arrivals[1:])
    assert (alloc.to_numpy() >= running_gpus_per_hour(jobs).reindex(index).to_numpy() - 1e-9).all()


def test_state_arrivals_adds_the_recent_mean_arrivals_to_the_state() -> None:
    y = np.array([5.0, 6, 7, 8, 9, 10])
    state = np.array([4.0, 5, 6, 7, 8, 3])
    arrivals = np.array([1.0, 2, 3, 4, 5, 6])
    ctx = FitContext(season_length=1, covariates={END_STATE: state, ARRIVALS: arrivals})
    fc = StateArrivals(arrival_window=2, calibration_window=10).fit(y, ctx).predict(2)
    np.testing.assert_allclose(fc.point, [3.0 + 5.5, 3.0 + 5.5])
    # origins 1..4: state[o-1] + mean(arrivals[max(o-2,0):o]) = 4+1, 5+1.5, 6+2.5, 7+3.5
    expected = np.array([[6, 7], [7, 8], [8, 9], [9, 10]]) - np.array([[5.0], [6.5], [8.5], [10.5]])
    np.testing.assert_allclose(fc.error_paths, expected)
    assert make_model("state_arrivals", arrival_window=3).params()["arrival_window"] == 3
    with pytest.raises(ModelFitError, match=ARRIVALS):
        StateArrivals().fit(y, FitContext(season_length=1, covariates={END_STATE: state}))
    with pytest.raises(ValueError, match="arrival_window"):
        StateArrivals(arrival_window=0)


@pytest.mark.parametrize("n", [24 * 40, 24 * 40 + 7, 24 * 10])
def test_closed_form_calibration_uses_same_phase_origins_when_there_are_enough(n: int) -> None:
    y = np.arange(n, dtype=float) % 24 + np.arange(n) / 100
    fc = LastValue(calibration_window=672).fit(y, FitContext(season_length=24)).predict(24)
    latest = n - 24
    origins = np.arange(max(24, latest - 672), latest + 1)
    phase = origins[(n - origins) % 24 == 0]
    expected = phase if phase.size >= MIN_PHASE_PATHS else origins
    assert fc.error_paths.shape == (expected.size, 24)
    actual = y[expected[:, None] + np.arange(24)] - y[expected - 1][:, None]
    np.testing.assert_allclose(fc.error_paths, actual)
