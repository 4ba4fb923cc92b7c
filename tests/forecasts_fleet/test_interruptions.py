"""The deploy stage records a spot interruption: flagged, dated, alerted, and billed only until then."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from cloudarb.db.models_deploy import CostEntry, DeployAlert, DeployInstance
from cloudarb.deploy import states as st
from cloudarb.deploy.create import launch, wait_ready
from cloudarb.deploy.metering import meter
from cloudarb.deploy.providers.base import RemoteInstance, RemoteState
from cloudarb.deploy.reconcile import reconcile
from tests.deploy.conftest import World, line
from tests.deploy.memory_provider import Faults, Held, MemoryProvider


def _row(world: World, instance_id: str) -> DeployInstance:
    with world.env.db.session() as session:
        row = session.get(DeployInstance, instance_id)
        assert row is not None
        return row


def _alerts(world: World) -> list[str]:
    with world.env.db.session() as session:
        return list(session.scalars(select(DeployAlert.kind).order_by(DeployAlert.id)))


def _running_spot(world: World, *, spot: bool = True) -> DeployInstance:
    [row] = world.intents(world.deployment(line(spot=spot, zone="us-east-1a")))
    launch(world.env, row.id)
    assert wait_ready(world.env, row.id, timeout_s=60, poll_s=5) == st.RUNNING
    return _row(world, row.id)


def test_a_spot_instance_ended_by_the_provider_is_an_interruption_dated_at_last_seen_billed_to_proof(world: World) -> None:
    row = _running_spot(world)
    world.clock.advance(world.mem.capabilities.listing_lag_s + 1)
    reconcile(world.env, "lambda")  # listed present: last seen now
    seen = world.clock()
    assert _row(world, row.id).last_seen_at == seen
    world.clock.advance(3600)
    reconcile(world.env, "lambda")
    seen = world.clock()
    world.clock.advance(600)
    world.mem.ever[row.provider_id or ""].ended_at = world.clock()  # the provider reclaims it
    world.clock.advance(world.mem.capabilities.listing_lag_s + world.env.settings.deploy_ghost_grace_s + 1)
    report = reconcile(world.env, "lambda")
    proof = world.clock()
    assert report.ghosts == 1
    ended = _row(world, row.id)
    assert ended.state == st.TERMINATED and ended.end_reason == "interrupted by the provider (spot)"
    assert ended.interrupted_at == seen and ended.billing_stopped_at == proof
    assert _alerts(world) == ["interruption"]  # not a ghost, not an orphan
    with world.env.db.session() as session:
        meter(session, world.clock() + timedelta(hours=5))
    with world.env.db.session() as session:
        billed = sum(session.scalars(select(CostEntry.billed_seconds).where(CostEntry.instance_id == row.id)))
    assert ended.billing_started_at is not None
    assert billed == (proof - ended.billing_started_at).total_seconds()  # metering stopped at the proof
    world.assert_sound()


def test_an_on_demand_instance_that_vanishes_stays_a_ghost(world: World) -> None:
    row = _running_spot(world, spot=False)
    world.mem.ever[row.provider_id or ""].ended_at = world.clock()
    world.clock.advance(world.mem.capabilities.listing_lag_s + world.env.settings.deploy_ghost_grace_s + 1)
    assert reconcile(world.env, "lambda").ghosts == 1
    ended = _row(world, row.id)
    assert ended.interrupted_at is None and ended.end_reason == "vanished at the provider"
    assert _alerts(world) == ["ghost"]


def test_a_spot_instance_we_destroy_is_not_an_interruption(world: World) -> None:
    from cloudarb.deploy.destroy import destroy

    row = _running_spot(world)
    assert destroy(world.env, row.id, reason="done") == st.TERMINATED
    world.clock.advance(world.mem.capabilities.listing_lag_s + world.env.settings.deploy_ghost_grace_s + 1)
    reconcile(world.env, "lambda")
    assert _row(world, row.id).interrupted_at is None and not _alerts(world)


def test_a_spot_instance_reclaimed_while_booting_is_an_interruption(world: World) -> None:
    [row] = world.intents(world.deployment(line(spot=True)))
    launch(world.env, row.id)
    pid = _row(world, row.id).provider_id or ""
    world.mem.ever[pid].ended_at = world.clock()
    assert wait_ready(world.env, row.id, timeout_s=10, poll_s=5) == st.TERMINATED
    ended = _row(world, row.id)
    assert ended.interrupted_at == world.clock() and ended.billing_stopped_at == world.clock()


class StoppingProvider(MemoryProvider):
    """The in-memory provider whose interruptible instances can be stopped by the provider (RunPod's and
    Vast's interruptible pods stop when outbid; the instance and its disk stay)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopped: set[str] = set()

    def _read(self, held: Held) -> RemoteInstance:
        inst = super()._read(held)
        if held.instance.provider_id in self.stopped and inst.state is RemoteState.RUNNING:
            return replace(inst, state=RemoteState.STOPPED, raw_state="exited")
        return inst


def test_a_spot_instance_the_provider_stops_is_an_interruption_and_is_still_destroyed(world: World) -> None:
    world.providers["lambda"] = StoppingProvider("lambda", clock=world.clock, faults=Faults())
    row = _running_spot(world)
    world.clock.advance(world.mem.capabilities.listing_lag_s + 1)
    reconcile(world.env, "lambda")
    seen = world.clock()
    world.clock.advance(1800)
    prov = world.providers["lambda"]
    assert isinstance(prov, StoppingProvider)
    prov.stopped.add(row.provider_id or "")
    reconcile(world.env, "lambda")
    stopped = _row(world, row.id)
    assert stopped.state == st.STOPPED and stopped.interrupted_at == seen
    assert stopped.billing_stopped_at is None, "it still exists: billed until it is destroyed"
    assert _alerts(world) == ["interruption"]
    reconcile(world.env, "lambda")
    assert _alerts(world) == ["interruption"], "raised once"
    world.assert_sound()
    from cloudarb.deploy.run import teardown

    assert teardown(world.env, row.deployment_id or "", reason="done") == []
    ended = _row(world, row.id)
    assert ended.state == st.TERMINATED and ended.interrupted_at == seen
    world.assert_sound()
