"""What the optimizer gets from forecasts: interruption rates from the bundled (or configured)
spot-advisor table, the fitted performance table for every offer's GPU model, scenario shapes."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.types import utcnow
from cloudarb.forecasts import feed, store
from cloudarb.forecasts.keys import price_key
from cloudarb.optimize.problem import build_problem
from cloudarb.schemas import OptimizeRequest
from forecasting.risk import bucket_rate


def offer(key: str, *, instance_type: str, region: str, spot: bool, price: float, gpu_model: str = "A10G") -> Offer:
    return Offer(offer_key=key, provider="aws", region=region, zone="", instance_type=instance_type,
                 gpu_model=gpu_model, gpu_count=1, vram_gb=24, vcpus=8, ram_gb=32, spot=spot, price_per_hour=price,
                 price_per_gpu_hour=price, capacity="available", observed_at=utcnow())


def latest_advisor_bucket(path: Path, instance_type: str, region: str) -> int:
    rows = [r for r in csv.DictReader(path.open()) if r["instance_type"] == instance_type and r["region"] == region
            and r["os"] == "Linux"]
    return int(max(rows, key=lambda r: r["snapshot_commit_date"])["interruption_range_index"])


def test_spot_rates_from_the_bundled_advisor_table(ctx: Context) -> None:
    path = feed.advisor_path(ctx.settings)
    assert path.is_file() and path.parent.name == "data", "shipped inside the package"
    rows = [
        offer("a", instance_type="g5.2xlarge", region="us-east-1", spot=True, price=0.5),
        offer("b", instance_type="g5.2xlarge", region="us-east-1", spot=False, price=1.2),
        offer("c", instance_type="zz9.huge", region="mars-north-1", spot=True, price=0.3),
        offer("d", instance_type="g5.2xlarge", region="us-east-1", spot=True, price=0.5),
    ]
    rows[3].interruption_rate_per_hour = 0.2  # a rate the provider states wins
    with ctx.db.session() as session:
        f = feed.load_feed(session, ctx.settings, rows, horizon_hours=1)
    assert set(f.rates) == {"a", "c"}, "only spot offers that state no rate"
    bucket = latest_advisor_bucket(path, "g5.2xlarge", "us-east-1")
    assert f.rates["a"] == pytest.approx(bucket_rate(bucket)[0])
    assert 0 < f.rates["c"] < bucket_rate(4)[0] * 1.01, "unknown types get the classifier's mixture"
    problem = build_problem(OptimizeRequest(workloads=[{"id": "w", "gpus_min": 1}]), rows, feed=f)
    rates = {o.id: o.interruption_rate_per_hour for o in problem.offers}
    assert rates == {"a": f.rates["a"], "b": None, "c": f.rates["c"], "d": 0.2}


def test_performance_table_covers_every_offer_model(ctx: Context) -> None:
    rows = [offer("x", instance_type="i", region="r", spot=False, price=1.0, gpu_model=m)
            for m in ("H100 SXM", "A100 40GB", "B200", "Some Unknown GPU")]
    with ctx.db.session() as session:
        f = feed.load_feed(session, ctx.settings, rows, horizon_hours=1)
    for wtype in ("training", "inference", "batch"):
        table = f.performance[wtype]
        assert set(table) == {"H100 SXM", "A100 40GB", "B200", "Some Unknown GPU"} and min(table.values()) > 0
    assert f.performance["training"]["H100 SXM"] > f.performance["training"]["A100 40GB"]
    req = OptimizeRequest(workloads=[{"id": "w", "gpus_min": 1}, {"id": "v", "gpus_min": 1, "performance": {"B200": 3}}])
    problem = build_problem(req, rows, feed=f)
    assert problem.workloads[0].performance == f.performance["training"]
    assert problem.workloads[1].performance == {"B200": 3}, "a workload's own table is kept"


@pytest.mark.parametrize("ctx", [{"forecast_spot_advisor_path": "/nonexistent/advisor.csv"}], indirect=True)
def test_a_missing_advisor_file_degrades_to_the_default_rate(ctx: Context) -> None:
    rows = [offer("a", instance_type="g5.2xlarge", region="us-east-1", spot=True, price=0.5)]
    with ctx.db.session() as session:
        f = feed.load_feed(session, ctx.settings, rows, horizon_hours=1)
    assert f.rates == {} and any("risk model unavailable" in n for n in f.notes)


def test_scenarios_follow_the_current_price_and_share_one_shape(ctx: Context) -> None:
    rows = [offer(k, instance_type="i", region="r", spot=True, price=p) for k, p in (("p", 2.0), ("q", 1.0), ("r", 1.0))]
    origin = utcnow()
    with ctx.db.session() as session:
        for key, n_scen, last in (("p", 4, 1.0), ("q", 4, 1.0), ("r", 3, 1.0)):
            store.save_forecast(session, store.NewForecast(
                series_key=price_key(key), kind="price", organization_id=None, offer_key=key, origin=origin,
                step="h", horizon=2, model="lag_ridge", fallback_reason=None, backtest=None,
                paths={"timestamps": [], "point": [1.0, 1.0], "quantiles": {}, "last": last,
                       "scenarios": [[1.0 + i, 3.0 + i] for i in range(n_scen)]}), keep=2)
    with ctx.db.session() as session:
        f = feed.load_feed(session, ctx.settings, rows, horizon_hours=1)
        assert set(f.scenarios) == {"p", "q"}, "the odd scenario count is left out"
        assert f.scenarios["q"] == [1.0, 2.0, 3.0, 4.0], "the first hour of each path"
        assert f.scenarios["p"] == [2.0, 4.0, 6.0, 8.0], "rescaled to the offer's current price"
        assert feed.load_feed(session, ctx.settings, rows, horizon_hours=2).scenarios["q"] == [2.0, 3.0, 4.0, 5.0]
        old = ctx.settings.model_copy(update={"forecast_max_age_s": 1e-3})
        time.sleep(0.01)
        assert feed.load_feed(session, old, rows, horizon_hours=1).scenarios == {}, "stale forecasts are ignored"


TRACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "risk" / "spot_traces"


@pytest.mark.skipif(not (TRACES / "index.csv").is_file(), reason="needs ../shared/data/risk/spot_traces")
@pytest.mark.parametrize("ctx", [{"forecast_spot_traces_dir": str(TRACES)}], indirect=True)
def test_traces_calibrate_the_served_rates_to_observed_interruptions(ctx: Context) -> None:
    """With the spot traces configured, a traced type's rate moves from the advisor's bucket (4.9e-4/h for
    p3.2xlarge's '>20%' bucket) towards what the relaunched p3.2xlarge instances saw (0.31-0.74/h), and a
    traced zone's own preemptions weigh in."""
    rows = [offer("p", instance_type="p3.2xlarge", region="us-west-2", spot=True, price=0.9, gpu_model="V100"),
            offer("z", instance_type="p3.2xlarge", region="us-west-2", spot=True, price=0.9, gpu_model="V100")]
    rows[1].zone = "us-west-2b"
    with ctx.db.session() as session:
        f = feed.load_feed(session, ctx.settings, rows, horizon_hours=1)
    model = feed.risk_model(str(feed.advisor_path(ctx.settings)), str(Path(ctx.settings.data_dir) / "forecast-cache"),
                            feed.traces_dir(ctx.settings))
    advisor = model.advisor_rate("p3.2xlarge", "us-west-2")
    assert f.rates["p"] > 10 * advisor, (f.rates, advisor)
    est = model.estimate("p3.2xlarge", "us-west-2", savings_pct=60.0, vcpus=8.0, zone="us-west-2b")
    assert f.rates["z"] == pytest.approx(est.rate_per_hour, rel=1e-6), "the batched path equals estimate()"
    assert f.rates["z"] != pytest.approx(f.rates["p"]), "the traced zone's own evidence moved its rate"
