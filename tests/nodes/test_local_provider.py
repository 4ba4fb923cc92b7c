"""The local provider honours the Provisioner contract on top of placements and the agents' reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models_nodes import Node
from cloudarb.deploy.errors import NoCapacity, OfferGone
from cloudarb.deploy.providers import registry
from cloudarb.deploy.providers.base import LaunchSpec, ProviderConfig, Provisioner, RemoteState
from cloudarb.deploy.providers.local import LocalProvisioner
from cloudarb.nodes import health
from tests.nodes.test_core import beat, report
from tests.support import Tenant

PREFIX = "cloudarb-test1-"


def spec(key: str, *, node: str = "box1", count: int = 1, image: str = "") -> LaunchSpec:
    return LaunchSpec(key=PREFIX + key, instance_type=f"{node}/H100 SXM", region=node, gpu_model="H100 SXM",
                      gpu_count=count, spot=False, price_per_hour=1.5 * count,
                      expires_at=datetime.now(UTC) + timedelta(hours=2), image=image, ports=(22,),
                      tags={"cloudarb-deployment": "dep1"})


@pytest.fixture()
def prov(ctx: Context) -> LocalProvisioner:
    return LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))


def test_contract(ctx: Context, prov: LocalProvisioner, node_id: str, tenant: Tenant) -> None:
    assert isinstance(prov, Provisioner)
    assert prov.capabilities.stop_start and prov.capabilities.billing_minimum_s == 60
    first = prov.create(spec("a", count=2, image="cuda-base"))
    assert first.state is RemoteState.PENDING and first.raw_state == "assigned"
    assert prov.create(spec("a", count=2)).provider_id == first.provider_id  # idempotent by key
    waiting = prov.create(spec("b"))
    assert waiting.raw_state == "queued"
    assert {r.key for r in prov.list_owned(PREFIX)} == {PREFIX + "a", PREFIX + "b"}
    assert prov.list_owned("cloudarb-other-") == []
    found = prov.find(PREFIX + "a")
    assert found is not None and found.provider_id == first.provider_id
    (cmd, action, _), = beat(ctx, node_id)
    assert action == "place"
    report(ctx, node_id, cmd, "running", container_id="c1", published_ports={"22/tcp": 41022})
    running = prov.get(first.provider_id)
    assert running is not None and running.state is RemoteState.RUNNING
    assert (running.address, running.ssh_port, running.hourly_rate) == ("box1.lab", 41022, 3.0)
    prov.stop(first.provider_id)
    (cmd, action, _), = beat(ctx, node_id)
    assert action == "stop"
    report(ctx, node_id, cmd, "stopped")
    assert prov.get(first.provider_id).state is RemoteState.STOPPED  # type: ignore[union-attr]
    # the stopped placement gave its GPUs back: the queued one took one of them at once
    assert prov.get(waiting.provider_id).raw_state == "assigned"  # type: ignore[union-attr]
    prov.start(first.provider_id)  # 1 GPU free of the 2 it needs: it waits in the queue
    again = prov.get(first.provider_id)
    assert again is not None and (again.state, again.raw_state, again.queue_position) == (
        RemoteState.PENDING, "queued", 1)
    prov.start(first.provider_id)  # asking twice changes nothing
    prov.stop(first.provider_id)  # a stop while the start waits cancels the start
    assert prov.get(first.provider_id).raw_state == "stopped"  # type: ignore[union-attr]
    prov.start(first.provider_id)
    (cmd, action, pid), = beat(ctx, node_id)
    assert (action, pid) == ("place", waiting.provider_id)
    prov.destroy(waiting.provider_id)  # its place command was delivered: destroyed on the agent's word
    (cmd, action, _), = beat(ctx, node_id)
    assert action == "destroy"
    report(ctx, node_id, cmd, "destroyed")
    (cmd, action, pid), = beat(ctx, node_id)  # now both GPUs are free: the start goes out
    assert (action, pid) == ("start", first.provider_id)
    report(ctx, node_id, cmd, "running")
    assert prov.get(first.provider_id).state is RemoteState.RUNNING  # type: ignore[union-attr]
    prov.destroy(first.provider_id)
    prov.destroy(first.provider_id)  # idempotent
    assert prov.get(first.provider_id).state is RemoteState.TERMINATING  # type: ignore[union-attr]
    (cmd, action, _), = beat(ctx, node_id)
    assert action == "destroy"
    report(ctx, node_id, cmd, "destroyed")
    assert prov.get(first.provider_id) is None and prov.find(PREFIX + "a") is None
    assert prov.get(waiting.provider_id) is None
    late = prov.create(spec("c"))
    prov.destroy(late.provider_id)  # never delivered: instant
    assert prov.get(late.provider_id) is None
    prov.destroy("no-such-placement")


def test_refusals(ctx: Context, prov: LocalProvisioner, node_id: str) -> None:
    with pytest.raises(OfferGone):
        prov.create(spec("x", node="nowhere"))
    with pytest.raises(NoCapacity):
        prov.create(spec("y", count=3))
    with ctx.db.session() as session:
        session.execute(update(Node).values(last_heartbeat_at=datetime.now(UTC) - timedelta(hours=1)))
    with ctx.db.session() as session:
        health.mark_silent(session, ctx.settings.section(NodesSettings))
    with pytest.raises(NoCapacity):
        prov.create(spec("z"))


def test_registry_factory_reads_the_configured_database(ctx: Context, node_id: str) -> None:
    made = registry.provisioner("local", ProviderConfig(base_url=ctx.settings.database_url))
    again = registry.provisioner("local", ProviderConfig(base_url=ctx.settings.database_url))
    assert isinstance(made, LocalProvisioner) and isinstance(again, LocalProvisioner)
    assert made.db is again.db  # one engine per database, however many jobs build provisioners
    assert made.create(spec("via-registry")).raw_state == "assigned"
