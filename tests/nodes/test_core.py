"""Storage units of the nodes feature: registration, GPUs, offers, assignment, queue, progress, health."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from cloudarb.agent.protocol import CommandProgress, ContainerReport, Heartbeat, RegisterRequest
from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.models_nodes import GpuAssignment, Node, Placement, Template
from cloudarb.db.types import utcnow
from cloudarb.nodes import agents, health, placements, progress, service, templates
from cloudarb.nodes.errors import BadJoinToken, NoSuchGpu, PlacementState, TemplateNotAllowed, UnknownTemplate
from cloudarb.scheduler import tick
from tests.nodes.helpers import host, join_token, place, register_node
from tests.support import Tenant


def offers(ctx: Context, node: str = "box1") -> dict[str, int | None]:
    with ctx.db.session() as session:
        rows = session.scalars(select(Offer).where(Offer.provider == "local", Offer.seller == node)).all()
        return {r.instance_type: r.available_instances for r in rows}


def beat(ctx: Context, node_id: str, containers: list[ContainerReport] | None = None, *, name: str = "box1",
         gpus: int = 2) -> list[tuple[str, str, str]]:
    with ctx.db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        reply = agents.heartbeat(session, ctx.settings.section(NodesSettings), node,
                                 Heartbeat(host=host(f"{name}.lab", gpus), containers=containers or []))
        return [(c.id, c.action, c.placement_id) for c in reply.commands]


def report(ctx: Context, node_id: str, command_id: str, state: str, **kw: object) -> None:
    with ctx.db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        progress.apply(session, ctx.settings.section(NodesSettings), node, command_id,
                       CommandProgress.model_validate({"state": state, **kw}))


def state_of(ctx: Context, placement_id: str) -> Placement:
    with ctx.db.session() as session:
        p = session.get(Placement, placement_id)
        assert p is not None
        return p


def test_join_token_is_one_time_and_expires(ctx: Context, tenant: Tenant, settings: NodesSettings) -> None:
    token = join_token(ctx, tenant.org_id, name="gpu-a")
    with ctx.db.session() as session:
        reg = agents.register(session, settings, RegisterRequest(join_token=token, host=host("gpu-a", 1)))
    assert reg.response.node_token.startswith("canode_")
    with pytest.raises(BadJoinToken), ctx.db.session() as session:
        agents.register(session, settings, RegisterRequest(join_token=token, host=host("gpu-a", 1)))
    expired = join_token(ctx, tenant.org_id)
    with ctx.db.session() as session:
        session.execute(update(service.JoinToken).values(expires_at=utcnow() - timedelta(seconds=1))
                        .where(service.JoinToken.used_at.is_(None)))
    with pytest.raises(BadJoinToken), ctx.db.session() as session:
        agents.register(session, settings, RegisterRequest(join_token=expired, host=host("gpu-b", 1)))
    with ctx.db.session() as session:
        assert agents.authenticate(session, reg.response.node_token).name == "gpu-a"


def test_free_gpus_are_offers_at_the_owner_price(ctx: Context, node_id: str) -> None:
    assert offers(ctx) == {"box1/H100 SXM": 2, "box1/H100 SXM/x2": 1}  # sizes: tests/nodes/test_multi_gpu.py
    with ctx.db.session() as session:
        row = session.scalars(select(Offer).where(Offer.seller == "box1", Offer.instance_type == "box1/H100 SXM")).one()
        assert (row.provider, row.region, row.gpu_count, row.price_per_hour, row.spot) == ("local", "box1", 1, 1.5, False)
        assert row.vram_gb == 80.0  # the data sheet's, not the driver's 81,559 MiB


def test_mig_devices_are_units_and_offers(ctx: Context, tenant: Tenant) -> None:
    reg = register_node(ctx, tenant.org_id, name="migbox", gpus=1, mig=True, price=3.5)
    assert offers(ctx, "migbox") == {"migbox/H100 SXM MIG 3g.40gb": 2}
    with ctx.db.session() as session:
        row = session.scalars(select(Offer).where(Offer.seller == "migbox")).one()
        assert row.price_per_hour == pytest.approx(1.5)  # 3 of 7 slices of 3.5
        assert row.vram_gb == 40.0
    pid, state = place(ctx, tenant.org_id, reg.node_id, "k-mig", label="H100 SXM MIG 3g.40gb")
    assert state == "assigned"
    assert state_of(ctx, pid).gpu_uuids == ["MIG-migbox.lab-0-0"]
    with pytest.raises(NoSuchGpu):
        place(ctx, tenant.org_id, reg.node_id, "k-whole", label="H100 SXM")


def test_placement_takes_gpus_and_the_queue_drains(ctx: Context, tenant: Tenant, node_id: str) -> None:
    a, sa = place(ctx, tenant.org_id, node_id, "k-a", count=2)
    b, sb = place(ctx, tenant.org_id, node_id, "k-b")
    c, sc = place(ctx, tenant.org_id, node_id, "k-c")
    assert (sa, sb, sc) == ("assigned", "queued", "queued")
    assert offers(ctx) == {}
    with ctx.db.session() as session:
        entries = {e.placement.id: e for e in service.queue(session, ctx.settings.section(NodesSettings),
                                                            organization_id=tenant.org_id)}
    assert (entries[b].position, entries[c].position) == (1, 2)
    assert entries[b].estimated_start_at is not None and entries[a].position is None
    cmds = beat(ctx, node_id)
    assert [(action, pid) for _, action, pid in cmds] == [("place", a)]
    report(ctx, node_id, cmds[0][0], "running", container_id="c1", published_ports={"22/tcp": 40022})
    assert state_of(ctx, a).state == "running" and state_of(ctx, a).published_ports == {"22/tcp": 40022}
    assert beat(ctx, node_id) == []
    # canceling a started one is refused; a queued one goes at once
    with ctx.db.session() as session:
        with pytest.raises(PlacementState):
            placements.cancel(session, ctx.settings.section(NodesSettings), session.get(Placement, a))
    with ctx.db.session() as session:
        placements.cancel(session, ctx.settings.section(NodesSettings), session.get(Placement, c))
    assert state_of(ctx, c).state == "destroyed"
    with ctx.db.session() as session:
        placements.request_destroy(session, ctx.settings.section(NodesSettings), session.get(Placement, a))
    cmds = beat(ctx, node_id, [ContainerReport(placement_id=a, container_id="c1", state="running",
                                               gpu_uuids=["GPU-box1.lab-0", "GPU-box1.lab-1"])])
    assert [(action, pid) for _, action, pid in cmds] == [("destroy", a)]
    assert state_of(ctx, b).state == "queued"
    report(ctx, node_id, cmds[0][0], "destroyed")
    assert state_of(ctx, a).state == "destroyed"
    assert state_of(ctx, b).state == "assigned"
    assert offers(ctx) == {"box1/H100 SXM": 1}


def test_absent_container_after_delivered_destroy_is_proof(ctx: Context, tenant: Tenant, node_id: str) -> None:
    a, _ = place(ctx, tenant.org_id, node_id, "k-a")
    (cmd, _, _), = beat(ctx, node_id)
    report(ctx, node_id, cmd, "running", container_id="c1")
    with ctx.db.session() as session:
        placements.request_destroy(session, ctx.settings.section(NodesSettings), session.get(Placement, a))
    beat(ctx, node_id, [ContainerReport(placement_id=a, container_id="c1", state="running")])  # delivers destroy
    assert state_of(ctx, a).state == "destroying"
    beat(ctx, node_id, [])
    assert state_of(ctx, a).state == "destroyed"
    with ctx.db.session() as session:
        assert session.scalars(select(GpuAssignment)).all() == []


def test_destroy_before_delivery_is_instant(ctx: Context, tenant: Tenant, node_id: str) -> None:
    a, state = place(ctx, tenant.org_id, node_id, "k-a")
    assert state == "assigned"
    with ctx.db.session() as session:
        placements.request_destroy(session, ctx.settings.section(NodesSettings), session.get(Placement, a))
    assert state_of(ctx, a).state == "destroyed"
    assert beat(ctx, node_id) == []


def test_failed_place_releases_gpus(ctx: Context, tenant: Tenant, node_id: str) -> None:
    a, _ = place(ctx, tenant.org_id, node_id, "k-a", count=2)
    (cmd, _, _), = beat(ctx, node_id)
    report(ctx, node_id, cmd, "failed", error="image not found")
    p = state_of(ctx, a)
    assert (p.state, p.error) == ("failed", "image not found")
    assert offers(ctx) == {"box1/H100 SXM": 2, "box1/H100 SXM/x2": 1}


def test_same_instance_key_is_one_placement(ctx: Context, tenant: Tenant, node_id: str) -> None:
    assert place(ctx, tenant.org_id, node_id, "k-a") == place(ctx, tenant.org_id, node_id, "k-a")


def test_priority_orders_the_queue(ctx: Context, tenant: Tenant, node_id: str) -> None:
    vip = Tenant(ctx, "VIP")
    ctx.settings.node_queue_priorities = {"VIP": 5}
    a, _ = place(ctx, tenant.org_id, node_id, "k-a", count=2)
    low, _ = place(ctx, tenant.org_id, node_id, "k-low")
    high, _ = place(ctx, vip.org_id, node_id, "k-high")
    with ctx.db.session() as session:
        placements.request_destroy(session, ctx.settings.section(NodesSettings), session.get(Placement, a))
    assert (state_of(ctx, high).state, state_of(ctx, low).state) == ("assigned", "assigned")
    assert state_of(ctx, high).assigned_at is not None
    assert state_of(ctx, high).gpu_uuids == ["GPU-box1.lab-0"]


def test_missed_heartbeats_make_the_node_unhealthy(ctx: Context, tenant: Tenant, node_id: str) -> None:
    a, _ = place(ctx, tenant.org_id, node_id, "k-a")
    settings = ctx.settings.section(NodesSettings)
    with ctx.db.session() as session:
        assert health.mark_silent(session, settings) == []
        session.execute(update(Node).values(last_heartbeat_at=utcnow() - timedelta(seconds=10)))
    with ctx.db.session() as session:
        assert health.mark_silent(session, settings) == ["box1"]
    assert offers(ctx) == {}
    assert state_of(ctx, a).flagged == agents.MISSED_HEARTBEATS
    beat(ctx, node_id)
    assert offers(ctx) == {"box1/H100 SXM": 1}
    assert state_of(ctx, a).flagged is None


def test_drain_removes_offers_and_holds_the_queue(ctx: Context, tenant: Tenant, node_id: str) -> None:
    settings = ctx.settings.section(NodesSettings)
    with ctx.db.session() as session:
        service.set_drained(session, settings, session.get(Node, node_id), True)
    assert offers(ctx) == {}
    _, state = place(ctx, tenant.org_id, node_id, "k-a")
    assert state == "queued"
    with ctx.db.session() as session:
        service.set_drained(session, settings, session.get(Node, node_id), False)
    assert state_of(ctx, _).state == "assigned"


def test_the_scheduler_tick_marks_silent_nodes(ctx: Context, node_id: str) -> None:
    with ctx.db.session() as session:
        session.execute(update(Node).values(last_heartbeat_at=utcnow() - timedelta(minutes=5)))
    tick(ctx)
    with ctx.db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None and node.status == "unhealthy" and node.unhealthy_since is not None
    assert offers(ctx) == {}


def test_reports_flag_gpu_mismatch_and_remove_orphans(ctx: Context, tenant: Tenant, node_id: str) -> None:
    a, _ = place(ctx, tenant.org_id, node_id, "k-a")
    (cmd, _, _), = beat(ctx, node_id)
    report(ctx, node_id, cmd, "running", container_id="c1")
    wrong = ContainerReport(placement_id=a, container_id="c1", state="running", gpu_uuids=["GPU-box1.lab-1"])
    beat(ctx, node_id, [wrong])
    assert "GPU ownership differs" in (state_of(ctx, a).flagged or "")
    # the unit the container really holds is recorded as its own: no other placement is given it
    assert offers(ctx) == {}
    b, state = place(ctx, tenant.org_id, node_id, "k-b")
    assert state == "queued"
    with ctx.db.session() as session:
        placements.cancel(session, ctx.settings.section(NodesSettings), session.get(Placement, b))
    beat(ctx, node_id, [wrong.model_copy(update={"gpu_uuids": ["GPU-box1.lab-0"]})])
    assert state_of(ctx, a).flagged is None
    # a container whose placement has ended is removed
    with ctx.db.session() as session:
        placements.end(session, ctx.settings.section(NodesSettings), session.get(Placement, a), state="failed")
    cmds = beat(ctx, node_id, [wrong.model_copy(update={"gpu_uuids": ["GPU-box1.lab-0"]})])
    assert [(action, pid) for _, action, pid in cmds] == [("destroy", a)]
    report(ctx, node_id, cmds[0][0], "destroyed")
    assert state_of(ctx, a).state == "destroyed"


def test_a_token_naming_an_existing_node_rebinds_it(ctx: Context, tenant: Tenant, node_id: str,
                                                    settings: NodesSettings) -> None:
    token = join_token(ctx, tenant.org_id, name="box1")
    with ctx.db.session() as session:
        again = agents.register(session, settings, RegisterRequest(join_token=token, host=host("box1.lab", 2)))
    assert again.response.node_id == node_id
    with ctx.db.session() as session:
        assert agents.authenticate(session, again.response.node_token).id == node_id
        assert len(service.list_nodes(session, organization_id=tenant.org_id)) == 1


def test_templates_per_organization_and_custom_images(ctx: Context, tenant: Tenant, other: Tenant) -> None:
    with ctx.db.session() as session:
        templates.ensure_catalog(session)
        session.add(Template(name="private", title="", image="reg/x:1", ports=[], command=None, env={},
                             health_check={}, organization_ids=[tenant.org_id], builtin=False))
    with ctx.db.session() as session:
        mine = [t.name for t in templates.list_templates(session, organization_id=tenant.org_id)]
        theirs = [t.name for t in templates.list_templates(session, organization_id=other.org_id)]
        assert "private" in mine and "private" not in theirs and "vllm-openai" in theirs
        with pytest.raises(UnknownTemplate) as unseen:  # a template another may not see is not revealed
            templates.resolve(session, organization_id=other.org_id, name="private", image=None, custom_images=True)
        assert "private" not in unseen.value.message.split("known:")[1]
        with pytest.raises(UnknownTemplate):
            templates.resolve(session, organization_id=other.org_id, name="nope", image=None, custom_images=True)
        with pytest.raises(TemplateNotAllowed):
            templates.resolve(session, organization_id=other.org_id, name=None, image="reg/y:2", custom_images=False)
        assert templates.resolve(session, organization_id=other.org_id, name=None, image="reg/y:2",
                                 custom_images=True) == ("custom", None)


def test_a_failed_destroy_is_issued_again_when_asked_again(ctx: Context, tenant: Tenant, node_id: str) -> None:
    a, _ = place(ctx, tenant.org_id, node_id, "k-a")
    (cmd, _, _), = beat(ctx, node_id)
    report(ctx, node_id, cmd, "running", container_id="c1")
    settings = ctx.settings.section(NodesSettings)
    with ctx.db.session() as session:
        placements.request_destroy(session, settings, session.get(Placement, a))
    (cmd, action, _), = beat(ctx, node_id, [ContainerReport(placement_id=a, container_id="c1", state="running")])
    report(ctx, node_id, cmd, "failed", error="engine busy")
    with ctx.db.session() as session:
        placements.request_destroy(session, settings, session.get(Placement, a))
        placements.request_destroy(session, settings, session.get(Placement, a))  # one open command at most
    cmds = beat(ctx, node_id, [ContainerReport(placement_id=a, container_id="c1", state="running")])
    assert [(action, pid) for _, action, pid in cmds] == [("destroy", a)]
    assert state_of(ctx, a).state == "destroying"
