"""The skill gate: a model other than last value is served only where it beat last value out of sample."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from forecasting.prices import PRICE_CONFIG, evaluate_price_gate, load_price_series
from forecasting.schemas import Series
from forecasting.selection import ForecastConfig, forecast
from forecasting.skill import SkillRule, nested_coverage, sign_test_p, step_shaped, widen

CFG = ForecastConfig(horizon=4, candidates=("lag_ridge", "ets"), skill_rule=SkillRule(),
                     model_params={"ets": {"brute": False, "calibration_origins": 0},
                                   "lag_ridge": {"lags": (1, 2, 4, 8), "calibration_origins": 0}})


def weekly(values: np.ndarray, series_id: str = "p") -> Series:
    t0 = datetime(2022, 1, 2)
    return Series(series_id=series_id, timestamps=[t0 + timedelta(weeks=i) for i in range(len(values))],
                  values=[float(v) for v in values], freq="W-SUN", season_length=1)


def price_steps(n: int, seed: int) -> np.ndarray:
    """A list price: flat, with a few unannounced moves up or down."""
    rng = np.random.default_rng(seed)
    moves = np.where(rng.random(n) < 0.04, rng.choice([-0.15, 0.1, 0.2], size=n), 0.0)
    return 2.0 * np.exp(np.cumsum(moves))


def test_sign_test_and_step_detection() -> None:
    assert sign_test_p(8, 0) == pytest.approx(1 / 256)
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 5) > 0.5
    assert step_shaped(price_steps(200, 1))
    assert not step_shaped(np.random.default_rng(0).normal(size=100).cumsum())


def test_step_prices_serve_last_value_and_say_why() -> None:
    s = weekly(price_steps(220, 3))
    res, report = forecast(s, CFG)
    assert res.model == "last_value"
    assert "no_skill_over_last_value" in res.flags and "step_shaped" in res.flags
    assert res.skill is not None and not res.skill.has_skill and res.skill.step_shaped
    assert res.fallback_reason is not None and res.fallback_reason.startswith("no skill over last value")
    assert [st.step for st in res.skill.steps] == [1, 2, 3, 4]
    assert all(st.served == "last_value" and st.n_origins > 0 for st in res.skill.steps)
    assert res.point == pytest.approx([s.values[-1]] * 4)
    assert report is not None and report.selected == "last_value" and "lag_ridge" in report.metrics


def test_a_learnable_trend_is_served_where_it_wins() -> None:
    rng = np.random.default_rng(5)
    y = 10 + 0.3 * np.arange(220) + rng.normal(0, 0.2, 220)
    res, _ = forecast(weekly(y), CFG)
    assert res.skill is not None and res.skill.has_skill
    assert res.model in {"lag_ridge", "ets"}
    assert all(st.skill and st.wins >= 4 and (st.p_value or 1) <= 0.05 for st in res.skill.steps)
    assert "no_skill_over_last_value" not in res.flags
    assert res.point[-1] > y[-1] + 0.5, "a trend forecast, not the last value"
    lo, hi = res.quantiles[0.1], res.quantiles[0.9]
    assert all(a < b for a, b in zip(lo, hi))


def test_widening_reaches_the_nominal_level_on_nested_origins() -> None:
    rng = np.random.default_rng(2)
    k, h = 60, 3
    growth = np.linspace(0.5, 3.0, k)[:, None]
    errors = rng.normal(0, 1, (k, h)) * growth
    origins = list(range(0, k * h, h))
    rule = SkillRule()
    raw = nested_coverage(errors, origins, h, 0.8, 1.0)
    scale, stretch, cov = widen(errors, origins, h, 0.8, rule)
    assert raw is not None and raw < 0.8 - rule.coverage_tolerance / 2
    assert scale > 1.0 and stretch == 1.0 and cov is not None and cov >= 0.8 - rule.coverage_tolerance / 2


def test_point_mass_errors_are_widened_by_reading_wider_levels() -> None:
    """A step price: most windows exact, a move in about one of six. No scale widens a zero-width
    interval, so the quantiles are read at wider levels until nested coverage is reached."""
    k, h = 60, 2
    errors = np.zeros((k, h))
    errors[::7] = -0.2  # a cut every 7th window, a rise every 7th in between: 2 of 7 windows move
    errors[3::7] = 0.3
    origins = list(range(0, k * h, h))
    rule = SkillRule()
    assert nested_coverage(errors, origins, h, 0.8, 8.0, 1.0, rule.calibration_origins) < 0.775
    scale, stretch, cov = widen(errors, origins, h, 0.8, rule)
    assert stretch > 1.0 and cov is not None and cov >= 0.775


def test_real_price_series_walk_forward(shared_data: Path) -> None:
    hist = shared_data / "price_history"
    series = {s.series_id: s for s in load_price_series(hist / "gcp_gpu_instance_price_history_2022_2026.csv",
                                                        hist / "gcp_cyclenerd_pricing_snapshots.csv")}
    s = series["gcp/a2-highgpu-1g/us-central1/spot"]
    res, _ = forecast(s, PRICE_CONFIG)
    assert res.skill is not None and res.skill.interval_scale >= 1.0
    assert len(res.point) == PRICE_CONFIG.horizon
    ev = evaluate_price_gate(s, {"price": PRICE_CONFIG.skill_rule or SkillRule()}, start=datetime(2025, 1, 1))
    assert ev is not None and ev.eval_origins > 5
    assert ev.served_mae["price"] <= ev.last_value_mae * 1.05
