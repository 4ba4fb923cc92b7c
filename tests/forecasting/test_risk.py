"""Interruption-risk model: bucket arithmetic, table lookups, generalization, calibration."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from forecasting.errors import ForecastingError
from forecasting.risk import (
    RiskModel,
    bucket_rate,
    gamma_update,
    load_spot_advisor,
    monthly_to_hourly,
    validate,
)


@pytest.fixture(scope="module")
def advisor(shared_data: Path):  # type: ignore[no-untyped-def]
    return load_spot_advisor(shared_data / "risk" / "aws_spot_advisor_gpu_interruption_savings.csv")


def test_monthly_frequency_to_hourly_hazard() -> None:
    # 5% of instances interrupted within 730 h <=> exp(-730 * rate) = 0.95
    assert monthly_to_hourly(0.05) == pytest.approx(-math.log(0.95) / 730)
    assert monthly_to_hourly(0.0) == 0.0
    mean, lo, hi = bucket_rate(4)
    assert lo == pytest.approx(monthly_to_hourly(0.2)) and hi == pytest.approx(monthly_to_hourly(0.4))
    assert lo < mean < hi
    with pytest.raises(ForecastingError):
        monthly_to_hourly(1.0)


def test_table_rows_are_served_from_the_latest_snapshot(advisor) -> None:  # type: ignore[no-untyped-def]
    model = RiskModel.fit(advisor)
    row = advisor.sort_values("snapshot").iloc[-1]
    est = model.estimate(row.instance_type, row.region, savings_pct=row.savings_pct, vcpus=2 ** row.log2_vcpus,
                         os=row.os)
    assert est.source == "table" and est.bucket_probabilities[int(row.bucket)] == 1.0
    assert est.rate_per_hour == pytest.approx(bucket_rate(int(row.bucket))[0])
    assert est.lower <= est.rate_per_hour <= est.upper


def test_unseen_instance_type_and_region_get_a_model_estimate(advisor) -> None:  # type: ignore[no-untyped-def]
    model = RiskModel.fit(advisor)
    est = model.estimate("g9e.12xlarge", "mars-north-1", savings_pct=65, vcpus=48)
    assert est.source == "model"
    assert sum(est.bucket_probabilities) == pytest.approx(1.0)
    assert 0 < est.lower < est.rate_per_hour < est.upper < bucket_rate(4)[2]


def test_held_out_regions_are_calibrated_and_beat_the_base_rate(advisor) -> None:  # type: ignore[no-untyped-def]
    v = validate(advisor, group="region")
    assert v.log_loss < v.base_rate_log_loss
    assert v.mean_predicted_rate == pytest.approx(v.mean_observed_rate, rel=0.1)
    pred = np.array([c[0] for c in v.calibration])
    obs = np.array([c[1] for c in v.calibration])
    assert np.all(np.diff(obs) > 0), "riskier predicted quintiles must be riskier observed"
    assert np.max(np.abs(pred - obs) / obs) < 0.35


def test_capacity_drops_update_the_rate_towards_the_observed_rate() -> None:
    mean, lo, hi = bucket_rate(0)
    up = gamma_update(mean, lo, hi, drops=5, hours=1000)
    down = gamma_update(mean, lo, hi, drops=0, hours=20000)
    assert up[0] > mean and down[0] < mean
    assert up[1] < up[0] < up[2]
