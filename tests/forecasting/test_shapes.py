"""Every model's outputs have the documented shapes at horizons 1, 2 and 24, hourly and daily.

A point path is ``(horizon,)`` and error paths ``(k, horizon)`` whatever the installed numeric
libraries return (scikit-learn 1.9 made a single-target ridge prediction 1-d, which once made
lag ridge's horizon-1 point 0-d and crashed the backtest's metrics).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from forecasting.backtest import backtest, point_errors
from forecasting.models.base import FitContext
from forecasting.models.registry import MODELS, make_model
from forecasting.models.state import ARRIVALS, END_STATE
from forecasting.schemas import Series
from forecasting.selection import ForecastConfig, forecast

FAST = {"ets": {"calibration_origins": 3, "brute": False}, "lag_ridge": {"calibration_origins": 3},
        "prophet": {"uncertainty_samples": 20}}


def series(freq: str, n: int) -> Series:
    """A noisy seasonal series with the demand covariates, on an hourly or daily grid."""
    rng = np.random.default_rng(7)
    season = 24 if freq == "h" else 7
    t = np.arange(n)
    y = 40 + 8 * np.sin(2 * np.pi * t / season) + rng.normal(0, 1.5, n)
    step = timedelta(hours=1) if freq == "h" else timedelta(days=1)
    stamps = [datetime(2024, 1, 1) + k * step for k in range(n)]
    state = y + rng.normal(0, 1, n)
    arrivals = np.abs(rng.normal(3, 1, n))
    return Series(series_id=f"shape-{freq}", timestamps=stamps, values=list(y), freq=freq,
                  covariates={END_STATE: list(state), ARRIVALS: list(arrivals)})


CASES = [(name, freq, h) for name in MODELS for freq in ("h", "D") for h in (1, 2, 24)]


@pytest.mark.parametrize(("name", "freq", "horizon"), CASES)
def test_model_outputs_have_documented_shapes(name: str, freq: str, horizon: int) -> None:
    s = series(freq, 24 * 10 if freq == "h" else 120)
    raw = s.to_pandas()
    y = raw.to_numpy(dtype=float)
    ctx = FitContext(season_length=s.period, index=raw.index, covariates=s.covariate_arrays())
    fc = make_model(name, **FAST.get(name, {})).fit(y, ctx).predict(horizon)
    assert fc.point.shape == (horizon,)
    assert fc.error_paths.ndim == 2 and fc.error_paths.shape[1] == horizon
    assert np.isfinite(fc.point).all()
    lo, hi = fc.interval(0.8)
    assert lo.shape == hi.shape == (horizon,)
    assert fc.scenarios(5, np.random.default_rng(0)).shape == (5, horizon)
    e = point_errors(y[-horizon:], fc.point, 1.0)
    assert np.isfinite(e.mae)

    res, _ = forecast(s, ForecastConfig(horizon=horizon, model=name, n_scenarios=6, model_params=FAST))
    assert res.model == name, res.fallback_reason
    assert len(res.point) == len(res.timestamps) == horizon
    assert res.scenario_array().shape == (6, horizon)
    assert all(len(path) == horizon for path in res.quantiles.values())


@pytest.mark.parametrize("horizon", [1, 2, 24])
def test_lag_ridge_backtests_at_every_horizon(horizon: int) -> None:
    s = series("D", 120)
    rep = backtest(s, horizon=horizon, step=7, min_train=70, models={"lag_ridge": lambda: make_model("lag_ridge", calibration_origins=0)})
    assert rep.metrics["lag_ridge"].n_origins == len(rep.origins) > 0
    assert np.isfinite(rep.metrics["lag_ridge"].mae)
