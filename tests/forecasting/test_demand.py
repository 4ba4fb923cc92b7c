"""Demand series construction and the GPU requirement bound."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.demand import demand_upper_bound, load_demand_series, load_jobs, running_gpus_per_hour
from forecasting.errors import DataError
from forecasting.schemas import Series
from forecasting.selection import ForecastConfig


def test_running_gpus_per_hour_is_exact_gpu_hours() -> None:
    jobs = pd.DataFrame({
        "submit": pd.to_datetime(["2024-01-01 00:30", "2024-01-01 01:00", "2024-01-01 00:00"]),
        "duration_s": [3600.0, 1800.0, 900.0],
        "num_gpus": [2.0, 4.0, 1.0],
    })
    s = running_gpus_per_hour(jobs)
    # hour 0: 2 GPUs x 0.5 h + 1 GPU x 0.25 h = 1.25; hour 1: 2 x 0.5 + 4 x 0.5 = 3.0
    assert list(s.index) == [pd.Timestamp("2024-01-01 00:00"), pd.Timestamp("2024-01-01 01:00")]
    np.testing.assert_allclose(s.to_numpy(), [1.25, 3.0])


def test_philly_loader_builds_an_hourly_series(shared_data: Path) -> None:
    path = shared_data / "demand" / "philly_jobs_pollux.csv"
    jobs = load_jobs(path)
    s = load_demand_series(path)
    vals = np.array(s.values, dtype=float)
    assert len(jobs) > 80_000 and s.period == 24
    # total GPU-hours are conserved by the binning
    assert vals.sum() == pytest.approx((jobs["duration_s"] * jobs["num_gpus"]).sum() / 3600, rel=1e-9)
    assert s.timestamps[0] < datetime(2017, 11, 20) < s.timestamps[-1]


def test_loader_rejects_a_file_without_the_columns(tmp_path: Path) -> None:
    bad = tmp_path / "jobs.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="missing columns"):
        load_jobs(bad)


def test_demand_upper_bound_is_a_rounded_upper_quantile() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(24 * 14)
    y = np.maximum(0, 40 + 8 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, t.size))
    t0 = datetime(2024, 1, 1)
    s = Series(series_id="team-a", timestamps=[t0 + timedelta(hours=int(i)) for i in t], values=list(y), freq="h")
    cfg = ForecastConfig(horizon=24, candidates=("ets",), selection_origins=2)
    bound, res = demand_upper_bound(s, horizon=24, quantile=0.9, config=cfg)
    assert len(bound.gpus) == 24 and bound.model == res.model
    assert all(g >= u for g, u in zip(bound.gpus, bound.upper))
    assert all(u >= p - 1e-9 for u, p in zip(bound.upper, res.quantiles[0.5]))
