"""Stop and start (issue 13/14 lifecycle): intent first, verified by the provider's state, finished by
the reconciler after a crash, idempotent, refused where the provider cannot stop, and metered for
running time only where the provider bills no compute while stopped."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cloudarb.db.models_deploy import CostEntry, DeployInstance, Deployment
from cloudarb.deploy import invariants, run, stopstart, stopstart_job
from cloudarb.deploy import states as st
from cloudarb.deploy.metering import accrued, billed_runs, close_pause, meter, running_spans
from cloudarb.deploy.reconcile import reconcile
from cloudarb.errors import Conflict, InvalidInput
from tests.deploy.conftest import World, line
from tests.deploy.memory_provider import CAPS

STOPPABLE = replace(CAPS, stop_start=True, minimum_per_run=True)
AWS_LINE = {"provider": "aws", "offer_key": "aws:us-east-1:p4d", "instance_type": "p4d.24xlarge", "price_per_hour": 36.0}


@pytest.fixture()
def stoppable(world: World) -> World:
    world.providers["aws"].capabilities = STOPPABLE
    return world


def _deployed(world: World, **overrides: object) -> tuple[Deployment, DeployInstance]:
    dep = world.deployment(line(**{**AWS_LINE, **overrides}))
    run.deploy(world.env, dep.id)
    [row] = world.rows(dep.id)
    assert row.state == st.RUNNING
    return dep, row


def _ask(world: World, dep: Deployment, action: str, **kw: object) -> list[str]:
    with world.env.db.session() as session:
        fresh = session.get(Deployment, dep.id)
        assert fresh is not None
        return stopstart.record(session, fresh, action=action, now=world.clock(), **kw)  # type: ignore[arg-type]


def _row(world: World, instance_id: str) -> DeployInstance:
    with world.env.db.session() as session:
        row = session.get(DeployInstance, instance_id)
        assert row is not None
        return row


def _ledger(world: World, instance_id: str) -> float:
    with world.env.db.session() as session:
        return float(session.scalar(select(func.coalesce(func.sum(CostEntry.billed_seconds), 0.0))
                                    .where(CostEntry.instance_id == instance_id)) or 0.0)


def _meter(world: World) -> None:
    with world.env.db.session() as session:
        meter(session, world.clock())


def test_a_stopped_instance_is_billed_for_running_time_only(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    world.clock.advance(600)
    _meter(world)
    assert _ask(world, dep, "stop") == [row.id]
    assert _row(world, row.id).state == st.STOPPING and _row(world, row.id).desired_state == "stopped"
    assert stopstart_job.carry_out(world.env, dep.id) == [(row.id, st.STOPPED)]
    stopped = _row(world, row.id)
    assert stopped.desired_state is None and stopped.paused_at is not None
    world.clock.advance(3600)  # an hour stopped: no compute billed
    _meter(world)
    assert _ledger(world, row.id) == pytest.approx(accrued(stopped, stopped.paused_at)[1])
    _ask(world, dep, "start")
    assert stopstart_job.carry_out(world.env, dep.id) == [(row.id, st.RUNNING)]
    started = _row(world, row.id)
    assert started.paused_at is None and started.pauses and len(started.pauses) == 1
    world.clock.advance(300)
    run.teardown(world.env, dep.id, reason="done")
    _meter(world)
    done = _row(world, row.id)
    assert done.state == st.TERMINATED and done.billing_started_at and done.billing_stopped_at
    life = (done.billing_stopped_at - done.billing_started_at).total_seconds()
    spans = running_spans(done, done.billing_stopped_at)
    assert len(spans) == 2 and sum(spans) <= life - 3600
    assert _ledger(world, row.id) == pytest.approx(sum(spans))  # > 60 s each: the per-run minimum is no factor
    world.assert_sound()


def test_each_run_is_rounded_and_the_minimum_applies_per_run_or_once() -> None:
    assert billed_runs([10.0, 10.0], granularity_s=1, minimum_s=60, per_run=True) == 120.0  # EC2: a minute per start
    assert billed_runs([10.0, 10.0], granularity_s=1, minimum_s=60, per_run=False) == 60.0
    assert billed_runs([10.0, 10.0], granularity_s=3600, minimum_s=0, per_run=False) == 7200.0  # hourly per run
    assert billed_runs([], granularity_s=1, minimum_s=60, per_run=False) == 0.0


def test_a_short_second_run_bills_another_minute_on_ec2(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    world.clock.advance(120)
    _ask(world, dep, "stop")
    stopstart_job.carry_out(world.env, dep.id)
    world.clock.advance(1000)
    _ask(world, dep, "start")
    stopstart_job.carry_out(world.env, dep.id)
    world.clock.advance(20)
    run.teardown(world.env, dep.id, reason="done")  # the second run lasts 20 s: under a minute
    _meter(world)
    done = _row(world, row.id)
    spans = running_spans(done, done.billing_stopped_at or world.clock())
    assert len(spans) == 2 and spans[1] < 60
    assert _ledger(world, row.id) == pytest.approx(spans[0] + 60.0)
    world.assert_sound()


def test_refused_before_any_job_where_the_provider_cannot_stop(world: World, stoppable: World) -> None:
    dep, row = _deployed(world, provider="lambda", offer_key="lambda:us-east-1:gpu_1x_a100",
                         instance_type="gpu_1x_a100")
    with pytest.raises(Conflict, match="lambda instances cannot be stopped"):
        _ask(world, dep, "stop")
    spot_dep, spot = _deployed(world, spot=True)
    with pytest.raises(Conflict, match="persistent spot"):
        _ask(world, spot_dep, "stop")
    assert _row(world, row.id).desired_state is None and _row(world, spot.id).desired_state is None
    assert _row(world, spot.id).state == st.RUNNING
    assert not [c for p in world.providers.values() for c in p.calls if c.startswith("stop")]


def test_unknown_instances_and_lines_are_named(stoppable: World) -> None:
    dep, row = _deployed(stoppable)
    with pytest.raises(InvalidInput, match="nope"):
        _ask(stoppable, dep, "stop", instances=["nope"])
    with pytest.raises(InvalidInput, match="line 7"):
        _ask(stoppable, dep, "stop", lines=[7])
    assert _ask(stoppable, dep, "stop", instances=[row.provider_id]) == [row.id]


def test_a_crash_between_intent_and_call_is_finished_by_the_reconciler(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    _ask(world, dep, "stop")  # the worker dies here: the provider was never asked
    reconcile(world.env, "aws")  # asks again
    assert f"stop {row.provider_id}" in world.providers["aws"].calls
    reconcile(world.env, "aws")  # and sees it stopped
    stopped = _row(world, row.id)
    assert stopped.state == st.STOPPED and stopped.desired_state is None and stopped.paused_at is not None
    world.assert_sound()


def test_a_stop_lost_by_the_provider_stays_asked_until_it_holds(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    world.providers["aws"].faults.stop_ignored = 1
    _ask(world, dep, "stop")
    assert stopstart_job.carry_out(world.env, dep.id) == [(row.id, st.STOPPING)]  # never billed paused unverified
    assert _row(world, row.id).paused_at is None and _row(world, row.id).desired_state == "stopped"
    reconcile(world.env, "aws")
    reconcile(world.env, "aws")
    assert _row(world, row.id).state == st.STOPPED and _row(world, row.id).paused_at is not None


def test_repeats_are_idempotent(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    for _ in range(2):
        _ask(world, dep, "stop")
        stopstart_job.carry_out(world.env, dep.id)
    calls = [c for c in world.providers["aws"].calls if c.startswith(("stop", "start"))]
    assert calls == [f"stop {row.provider_id}"]
    first = _row(world, row.id).paused_at
    world.clock.advance(60)
    reconcile(world.env, "aws")
    assert _row(world, row.id).paused_at == first  # one pause, not a new one per pass
    for _ in range(2):
        _ask(world, dep, "start")
        stopstart_job.carry_out(world.env, dep.id)
    calls = [c for c in world.providers["aws"].calls if c.startswith(("stop", "start"))]
    assert calls == [f"stop {row.provider_id}", f"start {row.provider_id}"]
    assert len(_row(world, row.id).pauses or []) == 1


def test_a_stop_the_provider_made_itself_pauses_billing_too(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    world.providers["aws"].set_stopped(row.provider_id or "")
    world.clock.advance(30)
    reconcile(world.env, "aws")
    seen = _row(world, row.id)
    assert seen.state == st.STOPPED and seen.paused_at == world.clock()
    world.clock.advance(3600)
    reconcile(world.env, "aws")  # still stopped: paused at least until this pass
    world.clock.advance(3600)
    world.providers["aws"].set_stopped(row.provider_id or "", False)  # started again, some time since
    reconcile(world.env, "aws")
    back = _row(world, row.id)
    assert back.state == st.RUNNING and back.paused_at is None
    assert back.pauses == [[seen.paused_at.isoformat(), (seen.paused_at + timedelta(hours=1)).isoformat()]]
    _meter(world)  # when it started again is unknown: billed from the last pass that saw it stopped
    spans = running_spans(back, world.clock())
    assert _ledger(world, row.id) == pytest.approx(accrued(back, world.clock())[1])  # a short first run: 60 s
    assert sum(spans) == pytest.approx((world.clock() - (back.billing_started_at or world.clock())).total_seconds()
                                       - 3600)
    world.assert_sound()


def test_a_restart_seen_after_metering_passed_it_books_a_correction(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    world.providers["aws"].set_stopped(row.provider_id or "")
    reconcile(world.env, "aws")
    world.clock.advance(600)
    reconcile(world.env, "aws")
    world.providers["aws"].set_stopped(row.provider_id or "", False)
    world.clock.advance(600)
    _meter(world)  # metering passes while the pause still looks open
    before = _ledger(world, row.id)
    world.clock.advance(60)
    reconcile(world.env, "aws")  # closes the pause at the previous pass: 600 s ago, before metering
    with world.env.db.session() as session:
        correction = session.scalars(select(CostEntry).where(CostEntry.instance_id == row.id)
                                     .order_by(CostEntry.id.desc())).first()
    assert correction is not None and correction.billed_seconds == pytest.approx(600.0)
    assert _ledger(world, row.id) == pytest.approx(before + 600.0)
    world.assert_sound()


def test_ending_deployments_and_booting_instances_are_refused(stoppable: World) -> None:
    world = stoppable
    dep, row = _deployed(world)
    with world.env.db.session() as session:
        session.execute(DeployInstance.__table__.update().where(DeployInstance.id == row.id)
                        .values(state=st.BOOTING))
    with pytest.raises(Conflict, match="is booting"):
        _ask(world, dep, "stop")
    run.set_status(world.env, dep.id, "ending")
    with pytest.raises(Conflict, match="ending"):
        _ask(world, dep, "stop")


def test_metering_never_rewrites_what_the_ledger_holds(stoppable: World) -> None:
    """Pauses open and close at or after ``metered_until``: metering passes between every step keep
    the ledger equal to the rows' own billed seconds."""
    world = stoppable
    dep, row = _deployed(world)
    for step in range(6):
        world.clock.advance(45 + step * 17)
        _meter(world)
        _ask(world, dep, "stop" if step % 2 == 0 else "start")
        stopstart_job.carry_out(world.env, dep.id)
        _meter(world)
        fresh = _row(world, row.id)
        assert _ledger(world, row.id) == pytest.approx(accrued(fresh, fresh.metered_until or world.clock())[1])
    world.clock.advance(timedelta(minutes=5).total_seconds())
    run.teardown(world.env, dep.id, reason="done")
    _meter(world)
    world.assert_sound()


def test_the_invariant_catches_a_pause_over_time_the_instance_ran(stoppable: World) -> None:
    world = stoppable
    _, row = _deployed(world)
    mem = world.providers["aws"]
    mem.set_stopped(row.provider_id or "")
    reconcile(world.env, "aws")
    mem.set_stopped(row.provider_id or "", False)
    world.clock.advance(600)
    with world.env.db.session() as session:  # closed when first seen running: 600 s it ran, unbilled
        close_pause(session, row.id, world.clock())

    def found() -> list[str]:
        history = [invariants.Lived(pid, h.instance.key, h.created_at, h.ended_at,
                                    stopped=tuple((a, b) for a, b in h.stops if a is not None))
                   for pid, h in mem.ever.items()]
        with world.env.db.session() as session:
            return invariants.check(session, provider="aws", prefix=world.env.prefix(),
                                    present=[(h.instance.provider_id, h.instance.key) for h in mem.live()],
                                    history=history)["unaccounted"]

    assert [p for p in found() if "while it ran" in p]


def test_a_spot_instance_the_provider_stopped_is_an_interruption_and_pauses(stoppable: World) -> None:
    world = stoppable
    _, row = _deployed(world, spot=True)
    assert not row.can_stop
    world.clock.advance(300)
    world.providers["aws"].set_stopped(row.provider_id or "")
    reconcile(world.env, "aws")
    seen = _row(world, row.id)
    assert seen.state == st.STOPPED and seen.interrupted_at is not None and seen.paused_at == world.clock()
    world.clock.advance(3600)
    _meter(world)
    ran = ((seen.paused_at or world.clock()) - (seen.billing_started_at or world.clock())).total_seconds()
    assert 300 <= ran < 330 and _ledger(world, row.id) == pytest.approx(ran)  # nothing while held stopped
    world.assert_sound()
