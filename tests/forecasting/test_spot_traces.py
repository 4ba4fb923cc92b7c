"""Interruption risk calibrated on observed preemptions and launch refusals (the shared spot traces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecasting.errors import ForecastingError
from forecasting.risk import RiskModel, choose_table_weight, load_spot_advisor
from forecasting.spot_traces import SpotTrace, calibrate_rates, load_spot_traces, nb_logpmf


@pytest.fixture(scope="module")
def calibrated(shared_data: Path) -> tuple[RiskModel, RiskModel, list[SpotTrace]]:
    base = RiskModel.fit(load_spot_advisor(shared_data / "risk" / "aws_spot_advisor_gpu_interruption_savings.csv"))
    traces = load_spot_traces(shared_data / "risk" / "spot_traces")
    return base, base.calibrate(traces), traces


def test_interruptions_are_alive_to_dead_transitions() -> None:
    t = SpotTrace("preemption", "us-east-1c", "p3.2xlarge", 3600.0, np.array([0, 1, 1, 0, 1, 0, 0, 1.0]))
    assert t.interruptions() == (2, 4.0)
    assert t.region == "us-east-1"
    assert t.part(0.0, 0.5).data.tolist() == [0, 1, 1, 0]


def test_negative_binomial_is_a_distribution() -> None:
    total = sum(np.exp(nb_logpmf(k, 3.0, 2.0, 5.0)) for k in range(400))
    assert total == pytest.approx(1.0, abs=1e-9)


def test_held_out_zones_are_predicted_within_the_observed_range(calibrated) -> None:  # type: ignore[no-untyped-def]
    base, model, traces = calibrated
    cal = model.rates
    assert cal is not None
    observed = [z.observed_rate for z in cal.held_out]
    assert len(observed) == 4
    assert cal.kappa > 100, "the advisor's '>20%' bucket is orders of magnitude below observed preemptions"
    for z in cal.held_out:
        assert min(observed) <= z.predicted_rate <= max(observed)
        assert z.lower < z.predicted_rate < z.upper
    assert sum(z.inside for z in cal.held_out) >= 2
    assert cal.time_split_inside >= 2
    assert cal.held_out_loglik > cal.advisor_loglik
    # the prior weight was chosen, not fixed: refitting on three zones can move it
    three = calibrate_rates([t for t in traces if t.kind == "preemption" and t.zone != "us-east-1c"],
                            {("p3.2xlarge", r): base.advisor_rate("p3.2xlarge", r) for r in ("us-east-1", "us-west-2")})
    assert three.shape > 0 and len(three.held_out) == 3


def test_zone_estimates_use_the_zone_and_report_launch_success(calibrated) -> None:  # type: ignore[no-untyped-def]
    base, model, _ = calibrated
    plain = base.estimate("p3.2xlarge", "us-east-1", savings_pct=70, vcpus=8)
    region = model.estimate("p3.2xlarge", "us-east-1", savings_pct=70, vcpus=8)
    east_c = model.estimate("p3.2xlarge", "us-east-1", savings_pct=70, vcpus=8, zone="us-east-1c")
    west_b = model.estimate("p3.2xlarge", "us-west-2", savings_pct=70, vcpus=8, zone="us-west-2b")
    refused = model.estimate("p3.2xlarge", "us-east-1", savings_pct=70, vcpus=8, zone="us-east-1a")
    assert plain.launch_success is None and plain.source == "table"
    assert region.rate_per_hour > 500 * plain.rate_per_hour and region.source == "table+traces"
    assert east_c.source.endswith("+zone") and east_c.evidence_hours > 50
    assert west_b.rate_per_hour < region.rate_per_hour < east_c.rate_per_hour
    assert east_c.lower < east_c.rate_per_hour < east_c.upper
    assert refused.launch_success is not None and refused.launch_success < 0.2
    assert refused.launch_upper is not None and refused.launch_upper < 0.5
    assert west_b.launch_success is not None and west_b.launch_success > 0.85
    own = model.estimate("p3.2xlarge", "us-west-2", savings_pct=70, vcpus=8, zone="us-west-2b",
                         observed_drops=0, exposure_hours=500)
    assert own.rate_per_hour < west_b.rate_per_hour and own.source.endswith("+drops")
    other = model.estimate("g5.xlarge", "us-east-1", savings_pct=60, vcpus=4, zone="us-east-1a")
    assert other.launch_success is None, "launch capacity is per instance type; g5 was not traced"


def test_older_snapshot_predicting_the_newer_chooses_the_bucket_weights(shared_data: Path) -> None:
    frame = load_spot_advisor(shared_data / "risk" / "aws_spot_advisor_gpu_interruption_savings.csv")
    v = choose_table_weight(frame)
    assert v.rows > 300
    # a row's 2021 bucket held as certain predicts 2025 badly: that is what the weights repair
    assert v.log_loss["mixture"] < min(v.log_loss["table_only"], v.log_loss["base_rate"])
    assert v.interval_inside["mixture"] > v.interval_inside["table_only"]
    model = RiskModel.fit(frame, table_weight=v.table_weight, base_weight=v.base_weight)
    est = model.estimate("p3.2xlarge", "us-east-1", savings_pct=70, vcpus=8)
    assert sum(est.bucket_probabilities) == pytest.approx(1.0)
    assert est.lower < est.upper
    with pytest.raises(ForecastingError):
        RiskModel.fit(frame, table_weight=0.8, base_weight=0.5)
