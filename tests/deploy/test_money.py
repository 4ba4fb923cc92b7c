"""Metering, costs, budgets and lifetimes on a fake clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cloudarb.db.models_deploy import CostEntry, DeployInstance, Deployment
from cloudarb.deploy import budgets, lifetime
from cloudarb.deploy.create import launch
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.metering import billed_seconds, meter
from cloudarb.errors import Conflict, InvalidInput
from tests.deploy.conftest import World, line


@pytest.mark.parametrize(("seconds", "granularity", "minimum", "billed"), [
    (0, 1, 60, 0), (5, 1, 60, 60), (61.2, 1, 60, 62), (61, 60, 0, 120), (3599, 3600, 0, 3600), (90, 60, 60, 120),
])
def test_billed_seconds_follow_granularity_and_minimum(seconds: float, granularity: int, minimum: int,
                                                       billed: float) -> None:
    assert billed_seconds(seconds, granularity_s=granularity, minimum_s=minimum) == billed


def _meter(world: World) -> None:
    with world.env.db.session() as session:
        meter(session, world.clock())


def test_the_ledger_is_rate_times_metered_seconds_with_the_minimum(world: World) -> None:
    [row] = world.intents(world.deployment(line(price_per_hour=3.6)))
    launch(world.env, row.id)
    world.clock.advance(10)
    _meter(world)  # 10 s into a 60 s minimum: 60 s billed now
    world.clock.advance(100)
    _meter(world)
    _meter(world)  # nothing new: no second entry
    destroy(world.env, row.id, reason="done")
    world.clock.advance(500)
    _meter(world)
    with world.env.db.session() as session:
        entries = session.scalars(select(CostEntry).order_by(CostEntry.id)).all()
        done = session.get(DeployInstance, row.id)
    assert done is not None and done.billing_started_at and done.billing_stopped_at
    run_s = (done.billing_stopped_at - done.billing_started_at).total_seconds()
    assert [e.billed_seconds for e in entries][:2] == [60.0, 50.0]
    assert sum(e.billed_seconds for e in entries) == billed_seconds(run_s, granularity_s=1, minimum_s=60)
    assert sum(e.amount for e in entries) == pytest.approx(3.6 * sum(e.billed_seconds for e in entries) / 3600)
    world.assert_sound()


def test_budget_admission_refuses_with_the_figures(world: World) -> None:
    now = world.clock()
    with world.env.db.session() as session:
        budgets.set_budget(session, world.org_id, monthly_limit=100.0, thresholds=[], hard_stop=False, now=now)
        budgets.admit(session, world.org_id, new_spend=90.0, now=now)
    [row] = world.intents(world.deployment(line(price_per_hour=10.0), lifetime_h=4))
    launch(world.env, row.id)  # commits $40 until it expires
    with world.env.db.session() as session, pytest.raises(budgets.BudgetExceeded) as refused:
        budgets.admit(session, world.org_id, new_spend=70.0, now=now)
    figures = refused.value.details[0]
    assert figures["committed"] == pytest.approx(40.0) and figures["remaining"] == pytest.approx(60.0)
    assert "$60.00" in refused.value.message


def test_budget_threshold_alerts_once_and_the_hard_stop_ends_deployments(world: World) -> None:
    from cloudarb.deploy.sweep import check_budgets

    now = world.clock()
    with world.env.db.session() as session:
        budgets.set_budget(session, world.org_id, monthly_limit=1.0, thresholds=[0.5, 0.8], hard_stop=True, now=now)
    dep = world.deployment(line(price_per_hour=3.6))
    [row] = world.intents(dep)
    launch(world.env, row.id)
    world.clock.advance(600)  # $0.60 spent
    _meter(world)
    assert check_budgets(None, world.env, world.clock()) == (1, 0)
    assert check_budgets(None, world.env, world.clock()) == (0, 0)
    world.clock.advance(600)
    _meter(world)
    assert check_budgets(None, world.env, world.clock()) == (1, 1)
    with world.env.db.session() as session:
        stopped = session.get(Deployment, dep.id)
        assert stopped is not None and stopped.status == "ending"
        assert "budget" in (stopped.end_reason or "")


def test_extend_moves_expiry_but_never_past_the_maximum(world: World) -> None:
    dep = world.deployment(lifetime_h=4, max_h=12)
    world.intents(dep)
    now = world.clock()
    with world.env.db.session() as session:
        d = session.get(Deployment, dep.id)
        assert d is not None
        new = lifetime.extend(session, d, by_s=6 * 3600, now=now)
        assert new == dep.expires_at + timedelta(hours=6)
        with pytest.raises(Conflict, match="maximum lifetime"):
            lifetime.extend(session, d, by_s=3 * 3600, now=now)
        expiries = set(session.scalars(select(DeployInstance.expires_at).where(
            DeployInstance.deployment_id == dep.id)))
    assert expiries == {new}


def test_lifetimes_above_the_maximum_need_the_override(world: World) -> None:
    settings = world.env.settings
    assert lifetime.parse_duration("90m", field="lifetime") == 5400
    with pytest.raises(InvalidInput, match="override"):
        lifetime.check_lifetime(settings, 13 * 3600, override=False)
    assert lifetime.check_lifetime(settings, 13 * 3600, override=True) == 13 * 3600
    with pytest.raises(InvalidInput) as bad:
        lifetime.parse_duration("soon", field="lifetime")
    assert bad.value.field == "lifetime"


def test_the_ledger_sums_per_organization(world: World) -> None:
    [row] = world.intents(world.deployment(line(price_per_hour=1.0)))
    launch(world.env, row.id)
    world.clock.advance(3600)
    _meter(world)
    with world.env.db.session() as session:
        total = session.scalar(select(func.sum(CostEntry.amount)).where(CostEntry.organization_id == world.org_id))
        assert total == pytest.approx(1.0)
        assert budgets.month_spend(session, world.org_id, world.clock()) == pytest.approx(1.0)
