"""Last state (end-of-period state covariate): arithmetic, no look-ahead, selection only on a walk-forward win."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import baseline_factories, forecast_at, run_models
from forecasting.demand import demand_series, evaluate_demand, running_gpus_at_period_ends
from forecasting.errors import ModelFitError
from forecasting.models.base import FitContext
from forecasting.models.registry import make_model
from forecasting.models.state import END_STATE, LastState
from forecasting.parallel import series_hash
from forecasting.schemas import Series
from forecasting.selection import ForecastConfig, forecast


def with_state(values: np.ndarray, state: np.ndarray, series_id: str = "s") -> Series:
    t0 = datetime(2024, 1, 1)
    stamps = [t0 + timedelta(hours=i) for i in range(len(values))]
    return Series(series_id=series_id, timestamps=stamps, values=[float(v) for v in values], freq="h",
                  covariates={END_STATE: [float(v) for v in state]})


def test_last_state_repeats_the_latest_state_and_its_error_paths_are_realized_errors() -> None:
    y = np.array([1.0, 2, 3, 4, 5])
    state = np.array([1.5, 2.5, 3.5, 4.5, 6.0])
    fc = LastState(calibration_window=10).fit(y, FitContext(season_length=1, covariates={END_STATE: state})).predict(2)
    np.testing.assert_allclose(fc.point, [6.0, 6.0])
    # origins 1..3: [2,3]-1.5, [3,4]-2.5, [4,5]-3.5
    np.testing.assert_allclose(fc.error_paths, [[0.5, 1.5]] * 3)


def test_last_state_fills_missing_states_with_the_value_and_needs_the_covariate() -> None:
    y = np.array([1.0, 2, 3, 4, 5])
    state = np.array([1.5, 2.5, 3.5, 4.5, np.nan])
    fc = LastState().fit(y, FitContext(season_length=1, covariates={END_STATE: state})).predict(3)
    np.testing.assert_allclose(fc.point, [5.0, 5.0, 5.0])
    with pytest.raises(ModelFitError, match=END_STATE):
        LastState().fit(y, FitContext(season_length=1))
    with pytest.raises(ModelFitError, match="aligned"):
        LastState().fit(y, FitContext(season_length=1, covariates={END_STATE: state[:3]}))


def test_forecast_at_cuts_the_covariates_at_the_origin() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 2, 60)
    state = rng.normal(10, 2, 60)
    factory = lambda: make_model("last_state")  # noqa: E731
    base = forecast_at(factory, y, None, 40, 5, 1, {END_STATE: state})
    future_y, future_s = y.copy(), state.copy()
    future_y[40:] += 1000.0
    future_s[40:] -= 1000.0
    moved = forecast_at(factory, future_y, None, 40, 5, 1, {END_STATE: future_s})
    np.testing.assert_allclose(base.point, np.full(5, state[39]))
    np.testing.assert_array_equal(base.point, moved.point)
    np.testing.assert_array_equal(base.error_paths, moved.error_paths)


def test_end_state_is_the_running_count_at_each_hour_end() -> None:
    jobs = pd.DataFrame({
        "submit": pd.to_datetime(["2024-01-01 00:30", "2024-01-01 00:10", "2024-01-01 01:00"]),
        "duration_s": [3600.0, 600.0, 3600.0],
        "num_gpus": [2.0, 8.0, 1.0],
    })
    index = pd.date_range("2024-01-01 00:00", periods=3, freq="h")
    # 01:00: job 1 runs (2), job 2 ended 00:20, job 3 starts exactly at 01:00 (1) -> 3
    # 02:00: job 1 ended 01:30, job 3 ends exactly at 02:00 -> 0; 03:00 -> 0
    np.testing.assert_allclose(running_gpus_at_period_ends(jobs, index).to_numpy(), [3.0, 0.0, 0.0])
    s = demand_series("t", jobs)
    assert s.covariates[END_STATE] == [3.0, 0.0]


def test_series_covariates_are_validated_aligned_and_hashed() -> None:
    t0 = datetime(2024, 1, 1)
    stamps = [t0, t0 + timedelta(hours=1), t0 + timedelta(hours=3)]
    s = Series(series_id="g", timestamps=stamps, values=[1.0, 2.0, 4.0], freq="h", covariates={"c": [1.0, None, 3.0]})
    np.testing.assert_allclose(s.covariate_arrays()["c"], [1.0, np.nan, np.nan, 3.0])
    with pytest.raises(ValueError, match="one entry per timestamp"):
        Series(series_id="g", timestamps=stamps, values=[1.0, 2.0, 4.0], freq="h", covariates={"c": [1.0]})
    other = s.model_copy(update={"covariates": {"c": [1.0, 2.0, 3.0]}})
    assert series_hash(s) != series_hash(other)


def _step_series(days: int, informative: bool, seed: int) -> Series:
    """A level that jumps once a day, at a random instant inside the hour before midnight.

    The hour's value is the time-weighted mix of the old and new level, so at a midnight origin
    last value is off by part of the jump for the whole next day while the state at the hour's
    end is exact (``informative``) or the level plus heavy noise.
    """
    rng = np.random.default_rng(seed)
    levels = rng.uniform(100, 900, days + 1)
    frac = rng.uniform(0.1, 0.9, days + 1)
    values, state = [], []
    for d in range(days):
        day = np.full(24, levels[d])
        day[23] = frac[d] * levels[d] + (1 - frac[d]) * levels[d + 1]
        end = np.full(24, levels[d])
        end[23] = levels[d + 1]
        values.append(day)
        state.append(end if informative else end + rng.normal(0, 300, 24))
    return with_state(np.concatenate(values), np.concatenate(state), "informative" if informative else "noise")


@pytest.mark.parametrize("informative", [True, False])
def test_selection_serves_last_state_only_when_it_wins_the_backtest(informative: bool) -> None:
    s = _step_series(12, informative, seed=5)
    cfg = ForecastConfig(horizon=24, candidates=("last_state",), selection_origins=6, selection_step=24)
    res, report = forecast(s, cfg)
    assert report is not None
    ls, lv = report.metrics["last_state"].mase, report.metrics["last_value"].mase
    assert (ls < lv) == informative
    assert res.model == ("last_state" if informative else "last_value")
    if informative:
        np.testing.assert_allclose(res.point, np.full(24, s.covariates[END_STATE][-1]))


def test_walk_forward_serving_uses_last_state_only_after_it_won_before_the_origin() -> None:
    s = _step_series(20, True, seed=7)
    cfg = ForecastConfig(horizon=24, candidates=("last_state",), selection_origins=4, selection_step=24)
    ev = evaluate_demand(s, start=datetime(2024, 1, 8), step=48, horizon=24, config=cfg)
    served = ev.report.metrics["served"]
    assert ev.served_models and set(ev.served_models) <= {"last_state", "last_value", "seasonal_naive"}
    assert ev.served_models == ["last_state"] * len(ev.report.origins)
    assert served.mase < ev.report.metrics["last_value"].mase
    # the baselines' runs are unaffected by the covariate
    y = np.array(s.values, dtype=float)
    plain = run_models(y, None, [200], 24, 24, baseline_factories())
    cov = run_models(y, None, [200], 24, 24, baseline_factories(), s.covariate_arrays())
    assert plain["last_value"].forecasts[0] is not None and cov["last_value"].forecasts[0] is not None
    np.testing.assert_array_equal(plain["last_value"].forecasts[0].point, cov["last_value"].forecasts[0].point)


def test_walk_forward_at_any_hour_serves_what_the_service_would_have_served() -> None:
    rng = np.random.default_rng(11)
    base = _step_series(16, True, seed=9)
    values = np.array(base.values, dtype=float) * rng.uniform(0.8, 1.2, len(base.values))
    s = with_state(values, np.array(base.covariates[END_STATE], dtype=float))
    cfg = ForecastConfig(horizon=24, candidates=("last_state",), selection_origins=5, selection_step=24,
                         selection_margin=0.05)
    ev = evaluate_demand(s, start=datetime(2024, 1, 9), step=7, horizon=24, config=cfg)
    assert len(set(ev.served_models)) > 1  # the choice changes along the way: the test can tell
    for origin, served in zip(ev.report.origins, ev.served_models):
        t = s.timestamps.index(origin)
        cut = Series(series_id="s", timestamps=s.timestamps[:t], values=s.values[:t], freq="h",
                     covariates={END_STATE: s.covariates[END_STATE][:t]})
        res, _ = forecast(cut, cfg)
        assert res.model == served, origin
