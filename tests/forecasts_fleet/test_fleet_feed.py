"""Our fleet's record moves the served figures: interruptions pull the rate toward what we saw, long
clean exposure pulls it down, refused launches lower the launch-success share; the rate cache never
serves a rate that ignores new evidence."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.models_deploy import DeployAttempt, DeployInstance, Deployment
from cloudarb.db.types import utcnow
from cloudarb.forecasts import feed
from cloudarb.forecasts.fleet import fleet_evidence, pool_key
from cloudarb.storage import accounts
from tests.support import Tenant, wait_for

TRACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "risk" / "spot_traces"
ZONE = "us-east-1a"


def offer(key: str = "aws:p3", *, zone: str = ZONE, spot: bool = True, price: float = 0.92) -> Offer:
    return Offer(offer_key=key, provider="aws", region="us-east-1", zone=zone, instance_type="p3.2xlarge",
                 gpu_model="V100", gpu_count=1, vram_gb=16, vcpus=8, ram_gb=61, spot=spot, price_per_hour=price,
                 price_per_gpu_hour=price, capacity="available", observed_at=utcnow())


class Fleet:
    """Deploy rows written as the deploy stage writes them, for one spot pool."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        now = utcnow()
        with ctx.db.session() as session:
            org = accounts.get_or_create_org(session, name="FleetCo").id
            dep = Deployment(organization_id=org, name="f", status="running", spec={}, lifetime_s=3600.0,
                             max_lifetime_s=3600.0, expires_at=now, created_at=now, updated_at=now)
            session.add(dep)
            session.flush()
            self.org, self.dep = org, dep.id
        self.n = 0

    def instance(self, *, started: datetime, interrupted: datetime | None = None, stopped: datetime | None = None,
                 outcome: str = "created", zone: str = ZONE, spot: bool = True) -> None:
        self.n += 1
        end = stopped or interrupted
        with self.ctx.db.session() as session:
            session.add(DeployInstance(
                organization_id=self.org, deployment_id=self.dep, line_index=0, replica=self.n, attempt=0,
                key=f"k{self.n}", provider="aws", region="us-east-1", zone=zone, instance_type="p3.2xlarge",
                spot=spot, price_per_hour=0.92, state="terminated" if end else "running", provider_id=f"i-{self.n}",
                created_at=started, state_at=started, launched_at=started,
                running_at=started + timedelta(seconds=90), billing_started_at=started,
                billing_stopped_at=end, ended_at=end, interrupted_at=interrupted))
            session.add(DeployAttempt(deployment_id=self.dep, line_index=0, replica=self.n, attempt=0,
                                      provider="aws", offer_key="aws:p3", outcome=outcome, created_at=started))

    def refused(self, count: int, *, code: str = "no_capacity") -> None:
        now = utcnow() - timedelta(minutes=1)
        for _ in range(count):
            self.n += 1
            with self.ctx.db.session() as session:
                session.add(DeployInstance(
                    organization_id=self.org, deployment_id=self.dep, line_index=0, replica=self.n, attempt=0,
                    key=f"k{self.n}", provider="aws", region="us-east-1", zone=ZONE, instance_type="p3.2xlarge",
                    spot=True, state="failed", created_at=now, state_at=now, ended_at=now))
                session.add(DeployAttempt(deployment_id=self.dep, line_index=0, replica=self.n, attempt=0,
                                          provider="aws", offer_key="aws:p3", outcome=code, created_at=now))


def served(ctx: Context, *rows: Offer) -> feed.Feed:
    with ctx.db.session() as session:
        return feed.load_feed(session, ctx.settings, list(rows) or [offer()], horizon_hours=1)


def test_evidence_per_pool_counts_exposure_interruptions_launches_and_refusals(ctx: Context) -> None:
    fleet, now = Fleet(ctx), utcnow()
    fleet.instance(started=now - timedelta(hours=3), interrupted=now - timedelta(hours=1))
    fleet.instance(started=now - timedelta(hours=5))  # still running: 5 h so far
    fleet.instance(started=now - timedelta(days=40), stopped=now - timedelta(days=31))  # outside the window
    fleet.instance(started=now - timedelta(days=31), stopped=now - timedelta(days=29))  # 1 day inside
    fleet.instance(started=now - timedelta(hours=2), zone="us-east-1b")  # another pool
    fleet.instance(started=now - timedelta(hours=2), spot=False)  # on-demand: no spot evidence
    fleet.refused(3)
    fleet.refused(2, code="quota_exceeded")
    fleet.refused(1, code="provider_unavailable")
    with ctx.db.session() as session:
        ev = fleet_evidence(session, now=now, window=timedelta(days=30))
    mine = ev[pool_key("aws", "p3.2xlarge", "us-east-1", ZONE)]
    assert mine.interruptions == 1
    assert mine.exposure_hours == pytest.approx(2 + 5 + 24, abs=1e-6)
    assert (mine.launches, mine.refusals, mine.quota_refusals) == (2, 3, 2)  # the 31-day-old launch is out
    assert mine.mean_time_to_running_s == pytest.approx(90.0)
    assert ev[pool_key("aws", "p3.2xlarge", "us-east-1", "us-east-1b")].exposure_hours == pytest.approx(2.0)
    assert len(ev) == 2


def test_interruptions_pull_the_served_rate_toward_the_observed_one_and_say_so(ctx: Context) -> None:
    before = served(ctx)
    prior = before.rates["aws:p3"]
    assert before.risk["aws:p3"].source == "advisor" and before.risk["aws:p3"].fleet is None
    fleet, now = Fleet(ctx), utcnow()
    for i in range(20):  # 20 instances, each interrupted after 2 h: 0.5 per hour observed
        start = now - timedelta(hours=2 * i + 3)
        fleet.instance(started=start, interrupted=start + timedelta(hours=2))
    after = served(ctx)  # the same cached prior, new evidence: never the stale rate
    observed = 0.5
    assert prior < after.rates["aws:p3"] < observed
    # the uncalibrated advisor prior weighs ~20,000 pseudo-hours, so 40 h only double it (traces: see below)
    assert after.rates["aws:p3"] > 2 * prior
    risk = after.risk["aws:p3"]
    assert risk.prior_rate_per_hour == pytest.approx(prior)
    assert risk.source == "advisor; our fleet: 20 interruptions in 40.0 h, 20 of 20 launches got capacity"
    assert any("20 interruptions in 40.0 h" in n for n in after.notes)
    other = served(ctx, offer("aws:p3b", zone="us-east-1b"))  # another zone's pool is untouched
    assert other.rates["aws:p3b"] == pytest.approx(prior)


def test_long_clean_exposure_lowers_the_served_rate(ctx: Context) -> None:
    prior = served(ctx).rates["aws:p3"]
    fleet, now = Fleet(ctx), utcnow()
    for _ in range(10):
        fleet.instance(started=now - timedelta(days=25))  # 6,000 instance-hours, no interruption
    after = served(ctx).rates["aws:p3"]
    assert 0 < after < prior * 0.9


@pytest.mark.parametrize("ctx", [{"forecast_fleet_window_days": 0}], indirect=True)
def test_a_zero_window_ignores_the_fleet(ctx: Context) -> None:
    prior = served(ctx).rates["aws:p3"]
    fleet, now = Fleet(ctx), utcnow()
    fleet.instance(started=now - timedelta(hours=3), interrupted=now - timedelta(hours=1))
    assert served(ctx).rates["aws:p3"] == prior


def test_refused_launches_lower_the_launch_success_estimate_without_traces(ctx: Context) -> None:
    assert "aws:p3" not in served(ctx).launch_success, "no traces and no fleet: nothing to say"
    fleet = Fleet(ctx)
    fleet.instance(started=utcnow() - timedelta(hours=1))
    fleet.refused(7)
    share = served(ctx).launch_success["aws:p3"]
    assert share == pytest.approx((1 + 1) / (2 + 8))  # uniform prior, 1 of 8 launches got capacity


@pytest.mark.skipif(not (TRACES / "index.csv").is_file(), reason="needs ../shared/data/risk/spot_traces")
@pytest.mark.parametrize("ctx", [{"forecast_spot_traces_dir": str(TRACES)}], indirect=True)
def test_with_traces_the_fleet_updates_the_calibrated_prior_and_the_traced_launch_share(ctx: Context) -> None:
    before = served(ctx)
    prior, launch = before.rates["aws:p3"], before.launch_success["aws:p3"]
    assert before.risk["aws:p3"].source == "advisor+traces"
    model = feed.risk_model(str(feed.advisor_path(ctx.settings)), str(Path(ctx.settings.data_dir) / "forecast-cache"),
                            feed.traces_dir(ctx.settings))
    est = model.estimate("p3.2xlarge", "us-east-1", savings_pct=70.0, vcpus=8.0, zone=ZONE, observed_drops=3,
                         exposure_hours=2.0)
    fleet, now = Fleet(ctx), utcnow()
    fleet.instance(started=now - timedelta(hours=3), interrupted=now - timedelta(hours=2))
    fleet.instance(started=now - timedelta(hours=6), interrupted=now - timedelta(hours=5, minutes=30))
    fleet.instance(started=now - timedelta(hours=9), interrupted=now - timedelta(hours=8, minutes=30))
    fleet.refused(30)
    after = served(ctx)
    assert after.rates["aws:p3"] == pytest.approx(est.rate_per_hour, rel=1e-6), "equals the library's own update"
    assert after.rates["aws:p3"] > prior
    assert after.launch_success["aws:p3"] < launch


def test_refused_launches_move_the_plan_from_a_cheap_spot_offer_to_on_demand(ctx: Context) -> None:
    """The feed's launch share reaches the optimizer: a spot offer 30% below its on-demand twin wins while
    nothing says its launches are refused, and loses once 7 of our 8 launches on it were refused."""
    from cloudarb.optimize.problem import build_problem
    from cloudarb.schemas import OptimizeRequest
    from optimizer import solve
    from optimizer.schemas import SolveConfig

    rows = [offer(), offer("aws:p3-od", spot=False, price=round(0.92 / 0.7, 4))]
    req = OptimizeRequest.model_validate({"workloads": [{"id": "w", "gpus_min": 1, "spot_tolerant": True}]})

    def chosen(problem: object) -> list[str]:
        sol = solve(problem, SolveConfig(time_limit_s=10, isolate="never"))  # type: ignore[arg-type]
        assert sol.status == "optimal"
        return [a.offer_id for a in sol.allocations]

    before = build_problem(req, rows, feed=served(ctx, *rows), settings=ctx.settings)
    assert before.offers[0].launch_success_probability is None
    assert chosen(before) == ["aws:p3"]
    fleet = Fleet(ctx)
    fleet.instance(started=utcnow() - timedelta(hours=1))
    fleet.refused(7)
    now = served(ctx, *rows)
    after = build_problem(req, rows, feed=now, settings=ctx.settings)
    assert after.offers[0].launch_success_probability == pytest.approx(0.2) == now.launch_success["aws:p3"]
    assert after.offers[1].launch_success_probability is None  # on-demand: no launch share served
    assert chosen(after) == ["aws:p3-od"]
    floor = OptimizeRequest.model_validate({**req.model_dump(), "constraints": {"min_launch_success_probability": 0.5}})
    assert build_problem(floor, rows, feed=now, settings=ctx.settings).min_launch_success_probability == 0.5


def test_a_spot_offer_stating_its_rate_still_gets_our_fleets_launch_share(ctx: Context) -> None:
    stated = offer()
    stated.interruption_rate_per_hour = 0.02
    assert "aws:p3" not in served(ctx, stated).launch_success
    fleet = Fleet(ctx)
    fleet.instance(started=utcnow() - timedelta(hours=1))
    fleet.refused(3)
    now = served(ctx, stated)
    assert "aws:p3" not in now.rates  # the provider's rate is not the model's business
    assert now.launch_success["aws:p3"] == pytest.approx((1 + 1) / (2 + 4))


def test_an_optimize_job_stores_each_lines_launch_share(ctx: Context, client: TestClient, tenant: Tenant) -> None:
    """The optimize job keeps the launch share it priced a spot line with on the stored line (GET
    /optimize/{id}/allocations), and the CLI's allocation table shows it once some line has it below 1."""
    from cloudarb.cli import render
    from cloudarb.db.models import AllocationLine

    with ctx.db.session() as session:
        session.add(offer("aws:test:p3-cheap", price=0.05))
    fleet = Fleet(ctx)
    fleet.instance(started=utcnow() - timedelta(hours=1))
    fleet.refused(7)
    with ctx.db.session() as session:
        pool = list(session.query(Offer).filter_by(offer_key="aws:test:p3-cheap"))
    share = served(ctx, *pool).launch_success["aws:test:p3-cheap"]
    assert 0 < share < 0.5
    request = {"workloads": [{"id": "w", "gpus_min": 1, "min_vram_gb": 16, "spot_tolerant": True}],
               "offers": {"providers": ["aws"], "regions": ["us-east-1"]}}
    r = client.post("/optimize", json=request, headers=tenant.headers())
    assert r.status_code == 202, r.text
    opt_id = r.json()["id"]
    wait_for(lambda: client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()["status"] == "finished")
    lines = client.get(f"/optimize/{opt_id}/allocations", headers=tenant.headers("viewer")).json()
    [line] = [ln for ln in lines if ln["offer_key"] == "aws:test:p3-cheap"]
    assert line["spot"] and line["launch_success_probability"] == pytest.approx(share)
    assert all(ln["launch_success_probability"] is None for ln in lines if not ln["spot"])
    with ctx.db.session() as session:
        stored = session.query(AllocationLine).filter_by(optimization_id=opt_id, offer_key="aws:test:p3-cheap").one()
        assert stored.launch_success_probability == pytest.approx(share)
    opt = client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()
    with render.console.capture() as shown:
        render.result(opt, lines)
    assert "launch ok" in shown.get() and f"{share:.0%}" in shown.get()
    with render.console.capture() as plain:
        render.result(opt, [{**ln, "launch_success_probability": None} for ln in lines])
    assert "launch ok" not in plain.get()
