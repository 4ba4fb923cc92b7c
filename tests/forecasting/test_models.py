"""Models, fallbacks, scenario sampling and promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from forecasting.errors import UnknownModelError
from forecasting.models.base import FitContext
from forecasting.models.baselines import LastValue, SeasonalNaive
from forecasting.models.registry import make_model
from forecasting.schemas import ModelMetrics, ModelVersion, Series
from forecasting.selection import ForecastConfig, forecast, promote

CHEAP = {"ets": {"calibration_origins": 3}, "lag_ridge": {"calibration_origins": 3}}


def hourly(values: np.ndarray | list[float | None], series_id: str = "s") -> Series:
    t0 = datetime(2024, 1, 1)
    vals = [None if v is None or not np.isfinite(v) else float(v) for v in values]
    return Series(series_id=series_id, timestamps=[t0 + timedelta(hours=i) for i in range(len(vals))],
                  values=vals, freq="h")


def daily_cycle(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, n)


def test_seasonal_naive_repeats_last_season_and_last_value_repeats_last() -> None:
    y = np.arange(48, dtype=float)
    sn = SeasonalNaive().fit(y, FitContext(season_length=24)).predict(30)
    lv = LastValue().fit(y, FitContext(season_length=24)).predict(3)
    np.testing.assert_allclose(sn.point, np.r_[np.arange(24, 48), np.arange(24, 30)])
    np.testing.assert_allclose(lv.point, [47, 47, 47])


def test_last_value_error_paths_are_the_realized_naive_errors() -> None:
    y = np.array([1.0, 2, 4, 7, 11])
    fc = LastValue(calibration_window=10).fit(y, FitContext(season_length=1)).predict(2)
    # origins 1..3: [2,4]-1, [4,7]-2, [7,11]-4
    np.testing.assert_allclose(fc.error_paths, [[1, 3], [2, 5], [3, 7]])


@pytest.mark.parametrize("name", ["last_value", "seasonal_naive", "ets", "lag_ridge", "hw_grid"])
def test_scenario_shapes_and_quantile_ordering(name: str) -> None:
    y = daily_cycle(24 * 12)
    cfg = ForecastConfig(horizon=24, model=name, n_scenarios=37, quantiles=(0.9, 0.1, 0.5, 0.05))
    res, _ = forecast(hourly(y), cfg)
    assert res.model == name
    assert res.scenario_array().shape == (37, 24)
    assert len(res.timestamps) == 24 and res.timestamps[0] == datetime(2024, 1, 13)
    q = np.array([res.quantiles[k] for k in sorted(res.quantiles)])
    assert q.shape == (4, 24)
    assert (np.diff(q, axis=0) >= 0).all()
    assert (q[0] < q[-1]).any(), "intervals must have width"


def test_scenarios_are_joint_paths_not_independent_draws() -> None:
    # a random walk: whole error paths are resampled, so scenario steps stay correlated.
    rng = np.random.default_rng(3)
    y = 100 + np.cumsum(rng.normal(0, 1, 24 * 30))
    res, _ = forecast(hourly(y), ForecastConfig(horizon=24, model="last_value", n_scenarios=400))
    sc = res.scenario_array()
    assert np.corrcoef(sc[:, 0], sc[:, -1])[0, 1] > 0.2


def test_short_series_falls_back_flagged() -> None:
    res, rep = forecast(hourly(np.arange(10.0)), ForecastConfig(horizon=24))
    assert rep is None and res.model == "last_value"
    assert res.fallback_reason is not None and res.fallback_reason.startswith("short series")
    assert res.scenario_array().shape == (200, 24)


def test_flat_series_falls_back_flagged() -> None:
    res, _ = forecast(hourly(np.full(24 * 10, 3.5)), ForecastConfig(horizon=24))
    assert res.model == "last_value" and "flat" in (res.fallback_reason or "")
    np.testing.assert_allclose(res.point, 3.5)
    np.testing.assert_allclose(res.quantiles[0.9], 3.5)


def test_gappy_series_falls_back_flagged_and_small_gaps_are_filled() -> None:
    y = daily_cycle(24 * 10)
    gappy = y.copy()
    gappy[::2] = np.nan
    res, _ = forecast(hourly(gappy), ForecastConfig(horizon=24))
    assert res.model == "seasonal_naive" and "gappy" in (res.fallback_reason or "")
    assert "gaps_filled" in res.flags and np.isfinite(res.point).all()
    few = y.copy()
    few[[30, 31, 100]] = np.nan
    res2, rep = forecast(hourly(few), ForecastConfig(horizon=24, candidates=("ets",), model_params=CHEAP))
    assert res2.fallback_reason is None and rep is not None and "gaps_filled" in res2.flags
    assert np.isfinite(res2.scenario_array()).all()


def test_selection_never_serves_worse_than_best_baseline() -> None:
    for seed in range(2):
        y = daily_cycle(24 * 8, seed) + np.linspace(0, 10 * seed, 24 * 8)
        res, rep = forecast(hourly(y), ForecastConfig(horizon=24, selection_origins=3, model_params=CHEAP))
        assert rep is not None and rep.selected == res.model
        best = rep.metrics[rep.best_baseline()].mase
        assert rep.metrics[res.model].mase <= best


def test_unknown_model_names_valid_keys() -> None:
    with pytest.raises(UnknownModelError, match="last_value"):
        make_model("arima")


def _version(name: str, mase: float, mae: float = 1.0) -> ModelVersion:
    m = ModelMetrics(mape=1, smape=1, mase=mase, mae=mae, coverage=0.8, interval_level=0.8, n_origins=4)
    return ModelVersion(series_id="s", name=name, metrics=m, trained_at=datetime(2024, 1, 1, tzinfo=UTC))


def test_promotion_only_on_a_win() -> None:
    champ = _version("ets", 0.8)
    assert promote(None, champ).promote
    assert promote(champ, _version("prophet", 0.7)).promote
    assert not promote(champ, _version("prophet", 0.8)).promote
    assert not promote(champ, _version("prophet", 0.9)).promote
    assert not promote(champ, _version("prophet", 0.79), min_improvement=0.05).promote
    assert not promote(champ, _version("prophet", float("nan"))).promote
    assert promote(_version("ets", float("nan"), 2.0), _version("prophet", float("nan"), 1.0)).promote


def test_prophet_fits_quietly_with_joint_samples(caplog: pytest.LogCaptureFixture) -> None:
    y = daily_cycle(24 * 6)
    res, _ = forecast(hourly(y), ForecastConfig(horizon=12, model="prophet", n_scenarios=20,
                                                 model_params={"prophet": {"uncertainty_samples": 50}}))
    assert res.model == "prophet" and res.fallback_reason is None
    assert res.scenario_array().shape == (20, 12)
    assert not [r for r in caplog.records if r.name.startswith("cmdstanpy") and r.levelname == "INFO"]
    assert np.abs(np.array(res.point) - (50 + 10 * np.sin(2 * np.pi * np.arange(144, 156) / 24))).mean() < 3


def test_hw_grid_tracks_trend_and_season_with_error_paths_from_every_origin() -> None:
    from forecasting.models.hw_grid import HoltWintersGrid

    t = np.arange(24 * 10)
    y = 100 + 0.2 * t + 10 * np.sin(2 * np.pi * t / 24)
    model = HoltWintersGrid(calibration_window=48).fit(y, FitContext(season_length=24))
    fc = model.predict(24)
    future = 100 + 0.2 * (t[-1] + 1 + np.arange(24)) + 10 * np.sin(2 * np.pi * (t[-1] + 1 + np.arange(24)) / 24)
    assert np.abs(fc.point - future).mean() < 1.5
    assert fc.error_paths.shape == (49, 24)
