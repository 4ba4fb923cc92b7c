"""Providers that queue (local nodes): billed from running, never given up by the boot timeout while
queued, the queue position published; and the tags every launch carries."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from cloudarb.db.models_deploy import CostEntry, DeployInstance
from cloudarb.deploy import states as st
from cloudarb.deploy.create import launch, wait_ready
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.providers.base import LaunchSpec, RemoteInstance, RemoteState
from tests.deploy.conftest import World
from tests.deploy.memory_provider import CAPS, Faults, MemoryProvider

QUEUED_READS = 240
"""At a 5 s poll: 20 minutes in the queue, longer than the 900 s boot timeout."""


class QueueingProvider(MemoryProvider):
    """The in-memory provider as a node queue: a new instance waits (pending, with its position) for
    ``boot_reads`` reads, and nothing is billed until it runs."""

    def __init__(self, world: World) -> None:
        super().__init__("lambda", clock=world.clock, faults=Faults(boot_reads=QUEUED_READS),
                         capabilities=replace(CAPS, billing_starts="running", queues=True))
        self.specs: list[LaunchSpec] = []

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        self.specs.append(spec)
        return super().create(spec)

    def _read(self, held: Any) -> RemoteInstance:
        inst = super()._read(held)
        if inst.state is RemoteState.PENDING:
            return replace(inst, raw_state="queued", queue_position=1 + (QUEUED_READS - held.reads) // 100)
        return inst


def _row(world: World, instance_id: str) -> DeployInstance:
    with world.env.db.session() as session:
        row = session.scalars(select(DeployInstance).where(DeployInstance.id == instance_id)).one()
        return row


def _queueing(world: World) -> tuple[QueueingProvider, list[tuple[str, dict[str, Any]]]]:
    prov = world.providers["lambda"] = QueueingProvider(world)
    events: list[tuple[str, dict[str, Any]]] = []
    world.env = world.env.with_emit(lambda step, payload: events.append((step, payload)))
    return prov, events


def test_a_queued_placement_is_not_billed_and_outlasts_the_boot_timeout(world: World) -> None:
    prov, events = _queueing(world)
    [row] = world.intents(world.deployment())
    assert launch(world.env, row.id).state == st.CREATED
    created = _row(world, row.id)
    assert created.billing_started_at is None  # queued: nothing billed yet
    start = world.clock()
    state = wait_ready(world.env, row.id, timeout_s=world.env.settings.deploy_boot_timeout_s, poll_s=5.0)
    assert state == st.RUNNING
    assert (world.clock() - start).total_seconds() > world.env.settings.deploy_boot_timeout_s
    ran = _row(world, row.id)
    assert ran.billing_started_at == ran.running_at
    positions = [p["position"] for step, p in events if step == "queued"]
    assert positions == [3, 2, 1]  # published each time it moved up, once per position
    world.clock.advance(600)
    assert destroy(world.env, row.id, reason="done") == st.TERMINATED
    with world.env.db.session() as session:
        billed = sum(e.billed_seconds for e in session.scalars(select(CostEntry)))
    assert billed == 600  # from running to the proven end: the 20 queued minutes cost nothing


def test_a_boot_that_never_runs_still_stops_at_the_boot_timeout(world: World) -> None:
    prov = world.providers["lambda"] = MemoryProvider("lambda", clock=world.clock, faults=Faults(boot_reads=10_000))
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    start = world.clock()
    assert wait_ready(world.env, row.id, timeout_s=60, poll_s=5.0) == st.BOOTING
    assert (world.clock() - start).total_seconds() == 60
    assert _row(world, row.id).billing_started_at is not None  # a cloud bills a booting VM
    assert prov.live()


def test_a_queue_timeout_setting_bounds_the_wait(world: World) -> None:
    _queueing(world)
    world.env.settings = world.env.settings.model_copy(update={"deploy_queue_timeout_s": 100.0})
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    start = world.clock()
    assert wait_ready(world.env, row.id, timeout_s=900, poll_s=5.0) == st.BOOTING
    assert (world.clock() - start).total_seconds() == 100


def test_every_launch_carries_organization_user_workload_deployment_and_expiry_tags(world: World) -> None:
    prov, _ = _queueing(world)
    dep = world.deployment()
    [row] = world.intents(dep)
    launch(world.env, row.id)
    [spec] = prov.specs
    assert spec.tags["cloudarb-organization"] == world.org_id
    assert spec.tags["cloudarb-user"] == "test"
    assert spec.tags["cloudarb-workload"] == "w"
    assert spec.tags["cloudarb-deployment"] == dep.id
    assert spec.tags["cloudarb-key"] == row.key
    assert spec.tags["cloudarb-expires-at"].startswith(dep.expires_at.isoformat(timespec="seconds")[:16])
