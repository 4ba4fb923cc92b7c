"""Providers that queue (local nodes): billed from running, never given up by the boot timeout while
queued, the queue position published; and the tags every launch carries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.models_deploy import CostEntry, DeployAttempt, DeployInstance
from cloudarb.deploy import run
from cloudarb.deploy import states as st
from cloudarb.deploy.create import launch, wait_ready
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.providers import registry
from cloudarb.deploy.providers.base import LaunchSpec, RegionalListing, RemoteInstance, RemoteState
from cloudarb.deploy.reconcile import reconcile
from tests.deploy.conftest import World, line
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


def test_a_spot_line_on_a_provider_without_spot_fails_over_to_the_next_offer(world: World, ctx: Context) -> None:
    for key in registry.keys():  # every deployable provider answers in memory; RunPod as REST v2 (no spot)
        world.providers.setdefault(key, MemoryProvider(key, clock=world.clock, faults=Faults()))
    runpod_v2 = world.providers["runpod"] = MemoryProvider("runpod", clock=world.clock, faults=Faults(),
                                                            capabilities=replace(CAPS, spot=False))
    with ctx.db.session() as session:
        other = session.scalars(select(Offer).where(Offer.spot.is_(True), Offer.provider != "runpod",
                                                    Offer.provider.in_(registry.keys()))
                                .order_by(Offer.price_per_hour)).first()
    assert other is not None  # a spot offer of the same GPUs elsewhere; the RunPod line asks for spot
    dep = world.deployment(line(offer_key=f"runpod:US-TX-3:{other.gpu_model}:spot", provider="runpod",
                                region="US-TX-3", instance_type=other.gpu_model, gpu_model=other.gpu_model,
                                gpus_per_instance=other.gpu_count, price_per_hour=other.price_per_hour * 0.9,
                                spot=True))
    [result] = run.deploy(world.env, dep.id)
    assert result.state == st.RUNNING, result
    rows = world.rows(dep.id)
    assert rows[0].state == st.FAILED and rows[0].end_reason is not None
    assert rows[0].end_reason.startswith("unsupported: runpod cannot launch spot instances")
    assert rows[-1].provider != "runpod" and rows[-1].spot
    assert not any(c.startswith("create") for c in runpod_v2.calls)  # refused before any provider call
    with world.env.db.session() as session:
        outcomes = [a.outcome for a in session.scalars(select(DeployAttempt).order_by(DeployAttempt.id))]
    assert outcomes[0] == "unsupported" and outcomes[-1] == "created"


class RegionalProvider(MemoryProvider):
    """The in-memory provider listing only the regions it knows of (as EC2 with configured regions)."""

    def __init__(self, world: World, regions: list[str]) -> None:
        super().__init__("aws", clock=world.clock, faults=Faults())
        self.regions = list(regions)
        self.region_of: dict[str, str] = {}

    def also_list(self, regions: Iterable[str]) -> None:
        self.regions += [r for r in regions if r not in self.regions]

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        return [i for i in super().list_owned(prefix) if self.region_of.get(i.provider_id, "us-east-1") in self.regions]


def test_reconcile_lists_every_region_where_a_row_of_ours_is(world: World) -> None:
    prov = world.providers["aws"] = RegionalProvider(world, ["us-east-1"])
    assert isinstance(prov, RegionalListing)
    dep = world.deployment(line(provider="aws", offer_key="aws:eu-west-1:g5.xlarge", region="eu-west-1",
                                instance_type="g5.xlarge"))
    [row] = world.intents(dep)
    with world.env.db.session() as session:  # its create's outcome was unknown and it ended as failed
        st.move(session, row.id, to=st.FAILED, when=(st.REQUESTED,), now=world.clock(), ended_at=world.clock())
    leaked = prov.leak(row.key)  # ... but the instance appeared later, in eu-west-1
    prov.region_of[leaked] = "eu-west-1"
    report = reconcile(world.env, "aws")
    assert report.orphans_seen == 1 and "eu-west-1" in prov.regions


def test_a_placement_that_leaves_the_queue_unfollowed_is_billed_from_the_pass_that_sees_it_run(
        world: World) -> None:
    _queueing(world)
    world.env.settings = world.env.settings.model_copy(update={"deploy_queue_timeout_s": 50.0})
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    assert wait_ready(world.env, row.id, timeout_s=900, poll_s=5.0) == st.BOOTING  # the job stopped following
    world.clock.advance(QUEUED_READS * 5.0)
    reconcile(world.env, "lambda")  # seen, still queued: nothing billed
    assert _row(world, row.id).billing_started_at is None
    for _ in range(QUEUED_READS):  # the listing's reads move it through the queue until it runs
        reconcile(world.env, "lambda")
        if _row(world, row.id).billing_started_at is not None:
            break
    assert _row(world, row.id).billing_started_at == world.clock()
