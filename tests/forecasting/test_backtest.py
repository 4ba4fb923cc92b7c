"""Backtest arithmetic against hand-computed cases."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import (
    backtest,
    interval_coverage,
    mase_scale,
    point_errors,
    rolling_origins,
)
from forecasting.schemas import Series


def hourly(values: list[float | None], season_length: int | None = None) -> Series:
    t0 = datetime(2024, 1, 1)
    return Series(series_id="s", timestamps=[t0 + timedelta(hours=i) for i in range(len(values))],
                  values=values, freq="h", season_length=season_length)


def test_point_errors_last_value_case() -> None:
    # train 1..4, last value forecasts 4, 4 for actuals 5, 6; one-step naive MAE of train = 1.
    scale = mase_scale(np.array([1.0, 2, 3, 4]), 1)
    e = point_errors(np.array([5.0, 6.0]), np.array([4.0, 4.0]), scale)
    assert scale == 1.0
    assert e.mae == pytest.approx(1.5)
    assert e.mase == pytest.approx(1.5)
    assert e.mape == pytest.approx(100 * (1 / 5 + 2 / 6) / 2)
    assert e.smape == pytest.approx(100 * (2 / 9 + 4 / 10) / 2)


def test_mase_scale_seasonal_and_flat_fallback() -> None:
    assert mase_scale(np.array([1.0, 5, 2, 7, 4]), 2) == pytest.approx((1 + 2 + 2) / 3)
    # period-2 pattern has zero seasonal-naive error: falls back to lag 1.
    assert mase_scale(np.array([1.0, 3, 1, 3, 1, 3]), 2) == pytest.approx(2.0)
    assert mase_scale(np.array([2.0, 2, 2]), 1) == 0.0
    assert math.isnan(point_errors(np.array([3.0]), np.array([2.0]), 0.0).mase)


def test_zero_actuals_are_skipped_by_mape_and_smape_zero_over_zero_is_zero() -> None:
    e = point_errors(np.array([0.0, 2.0, np.nan]), np.array([0.0, 1.0, 5.0]), 1.0)
    assert e.mape == pytest.approx(50.0)
    assert e.smape == pytest.approx(100 * (0 + 2 * 1 / 3) / 2)
    assert e.mae == pytest.approx(0.5)


def test_interval_coverage_counts_finite_actuals_only() -> None:
    hits, n = interval_coverage(np.array([1.0, 2, 3, np.nan]), np.array([0.0, 2.5, 3, 0]), np.array([2.0, 3, 3, 1]))
    assert (hits, n) == (2, 3)


def test_rolling_origins_step_start_and_full_horizon() -> None:
    idx = pd.date_range("2024-01-01", periods=10, freq="h")
    assert rolling_origins(idx, horizon=3, step=2, min_train=2) == [2, 4, 6]
    assert rolling_origins(idx, horizon=2, step=3, start=datetime(2024, 1, 1, 5)) == [5, 8]


def test_backtest_reports_both_baselines_with_hand_computed_metrics() -> None:
    # period-2 series with a level shift at position 6.
    s = hourly([1.0, 3, 1, 3, 1, 3, 2, 4, 2, 4], season_length=2)
    rep = backtest(s, horizon=2, step=2, start=datetime(2024, 1, 1, 6), min_train=4)
    assert [o.hour for o in rep.origins] == [6, 8]
    sn = rep.metrics["seasonal_naive"]
    lv = rep.metrics["last_value"]
    # origin 6: SN [1,3] vs [2,4] -> MAE 1, scale (lag-2 MAE 0 -> lag-1 MAE 2) -> MASE 0.5
    # origin 8: SN [2,4] vs [2,4] -> MAE 0;  scale lag-2 on [1,3,1,3,1,3,2,4] = 2/6
    assert sn.mae == pytest.approx(0.5)
    assert sn.mase == pytest.approx((0.5 + 0.0) / 2)
    # LV origin 6: [3,3] vs [2,4] -> MAE 1; origin 8: [4,4] vs [2,4] -> MAE 1 -> MASE 1/(1/3) = 3
    assert lv.mae == pytest.approx(1.0)
    assert lv.mase == pytest.approx((0.5 + 3.0) / 2)
    assert rep.best_baseline() == "seasonal_naive"
    assert len(rep.details) == 4
