"""A stopped placement gives its GPUs back; starting it again takes GPUs through the same atomic
assignment (its own if free, else others of its model, else it waits in the queue)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloudarb.agent.protocol import ContainerReport
from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models_nodes import GpuAssignment, NodeCommand, Placement
from cloudarb.nodes import commands, placements
from tests.nodes.helpers import place, register_node
from tests.nodes.test_core import beat, report, state_of
from tests.support import Tenant


def _node(ctx: Context, tenant: Tenant, gpus: int = 2) -> str:
    return register_node(ctx, tenant.org_id, name="box1", gpus=gpus).node_id


def _run(ctx: Context, node_id: str, pid: str, *, gpus: int = 2) -> None:
    """Deliver the open commands and report each place/start running (the placement's among them)."""
    if state_of(ctx, pid).state == "running":
        return
    for cmd, action, target in beat(ctx, node_id, gpus=gpus):
        if action in ("place", "start"):
            report(ctx, node_id, cmd, "running", container_id=f"c-{target[:6]}")
    assert state_of(ctx, pid).state == "running"


def _stop(ctx: Context, node_id: str, pid: str, *, gpus: int = 2) -> None:
    with ctx.db.session() as session:
        p = session.get(Placement, pid)
        assert p is not None
        placements.request_stop(session, p)
    (cmd, action, _), = [c for c in beat(ctx, node_id, gpus=gpus) if c[2] == pid]
    assert action == "stop"
    report(ctx, node_id, cmd, "stopped")


def _start(ctx: Context, pid: str) -> None:
    with ctx.db.session() as session:
        p = session.get(Placement, pid)
        assert p is not None
        placements.request_start(session, ctx.settings.section(NodesSettings), p)


def _held(ctx: Context, pid: str) -> list[str]:
    with ctx.db.session() as session:
        return sorted(session.scalars(select(GpuAssignment.gpu_uuid).where(GpuAssignment.placement_id == pid)))


def _start_spec_gpus(ctx: Context, node_id: str, pid: str) -> list[str]:
    with ctx.db.session() as session:
        row = session.scalars(select(NodeCommand).where(NodeCommand.placement_id == pid, NodeCommand.action == "start")
                              .order_by(NodeCommand.created_at.desc())).first()
        assert row is not None
        wire = commands.to_wire(session, row)
        assert wire.spec is not None and wire.spec.placement_id == pid
        return wire.spec.gpu_uuids


def test_stop_releases_gpus_to_the_queue_and_start_takes_others(ctx: Context, tenant: Tenant) -> None:
    node_id = _node(ctx, tenant, gpus=1)
    a, _ = place(ctx, tenant.org_id, node_id, "k-a")
    _run(ctx, node_id, a, gpus=1)
    b, b_state = place(ctx, tenant.org_id, node_id, "k-b")
    assert b_state == "queued"
    _stop(ctx, node_id, a, gpus=1)
    stopped = state_of(ctx, a)
    assert stopped.state == "stopped" and _held(ctx, a) == [] and stopped.gpu_uuids == ["GPU-box1.lab-0"]
    assert state_of(ctx, b).state == "assigned" and _held(ctx, b) == ["GPU-box1.lab-0"]
    _run(ctx, node_id, b, gpus=1)
    # starting again: nothing free, so it queues with a position, holding nothing
    _start(ctx, a)
    waiting = state_of(ctx, a)
    assert waiting.state == "queued" and _held(ctx, a) == []
    with ctx.db.session() as session:
        from cloudarb.nodes import service

        entries = {e.placement.id: e for e in service.queue(session, ctx.settings.section(NodesSettings),
                                                            organization_id=tenant.org_id)}
    assert entries[a].position == 1
    # the agent's report of the exited container neither re-claims GPUs nor calls it an orphan
    beat(ctx, node_id, [ContainerReport(placement_id=a, container_id=waiting.container_id or "", state="exited",
                                        gpu_uuids=["GPU-box1.lab-0"]),
                        ContainerReport(placement_id=b, container_id="c-b", state="running",
                                        gpu_uuids=["GPU-box1.lab-0"])], gpus=1)
    assert state_of(ctx, a).state == "queued" and _held(ctx, a) == [] and state_of(ctx, a).flagged is None
    with ctx.db.session() as session:
        assert commands.open_command(session, a, "destroy") is None
        p = session.get(Placement, b)
        assert p is not None and p.flagged is None
        placements.request_destroy(session, ctx.settings.section(NodesSettings), p)
    (cmd, action, _), = beat(ctx, node_id, gpus=1)
    report(ctx, node_id, cmd, "destroyed")
    # b's GPU is free: a's start goes out as 'start' (its container exists) with the GPU it now holds
    assert state_of(ctx, a).state == "assigned" and _held(ctx, a) == ["GPU-box1.lab-0"]
    (cmd, action, pid), = beat(ctx, node_id, gpus=1)
    assert (action, pid) == ("start", a)
    assert _start_spec_gpus(ctx, node_id, a) == ["GPU-box1.lab-0"]
    report(ctx, node_id, cmd, "running")
    assert state_of(ctx, a).state == "running"


def test_start_prefers_its_own_gpus_else_any_free_one(ctx: Context, tenant: Tenant) -> None:
    node_id = _node(ctx, tenant, gpus=3)
    x, _ = place(ctx, tenant.org_id, node_id, "k-x")
    a, _ = place(ctx, tenant.org_id, node_id, "k-a")
    _run(ctx, node_id, x, gpus=3)
    _run(ctx, node_id, a, gpus=3)
    assert _held(ctx, a) == ["GPU-box1.lab-1"]
    _stop(ctx, node_id, a, gpus=3)
    _stop(ctx, node_id, x, gpus=3)  # GPU 0 frees too: it comes first, but a wants its own GPU 1
    _start(ctx, a)
    assert _held(ctx, a) == ["GPU-box1.lab-1"] and _start_spec_gpus(ctx, node_id, a) == ["GPU-box1.lab-1"]
    # another placement takes GPU 0 while x is stopped ... and then GPU 2; x starts on what is left
    y, _ = place(ctx, tenant.org_id, node_id, "k-y")
    assert _held(ctx, y) == ["GPU-box1.lab-0"]
    _start(ctx, x)
    assert _held(ctx, x) == ["GPU-box1.lab-2"] and _start_spec_gpus(ctx, node_id, x) == ["GPU-box1.lab-2"]


def test_cancel_a_waiting_start_and_a_failed_start(ctx: Context, tenant: Tenant) -> None:
    node_id = _node(ctx, tenant, gpus=1)
    a, _ = place(ctx, tenant.org_id, node_id, "k-a")
    _run(ctx, node_id, a, gpus=1)
    _stop(ctx, node_id, a, gpus=1)
    b, _ = place(ctx, tenant.org_id, node_id, "k-b")
    _start(ctx, a)
    assert state_of(ctx, a).state == "queued"
    with ctx.db.session() as session:
        p = session.get(Placement, a)
        assert p is not None
        placements.cancel(session, ctx.settings.section(NodesSettings), p)  # back to stopped, container kept
    assert state_of(ctx, a).state == "stopped"
    with ctx.db.session() as session:  # a stopped placement keeps the node busy: it has a container
        from cloudarb.nodes import service
        from cloudarb.nodes.errors import NodeBusy

        node = service.get_node(session, organization_id=tenant.org_id, node_id=node_id)
        p = session.get(Placement, b)
        assert p is not None
        placements.request_destroy(session, ctx.settings.section(NodesSettings), p)
        with pytest.raises(NodeBusy):  # a node with a stopped container is never removed
            service.remove(session, node)
    for cmd, action, _ in beat(ctx, node_id, gpus=1):
        if action == "destroy":
            report(ctx, node_id, cmd, "destroyed")
    _start(ctx, a)
    (cmd, action, pid), = [c for c in beat(ctx, node_id, gpus=1) if c[2] == a]
    assert action == "start"
    report(ctx, node_id, cmd, "failed", error="image gone")
    failed = state_of(ctx, a)
    assert (failed.state, failed.error) == ("stopped", "image gone") and _held(ctx, a) == []
    # destroying a stopped placement goes through the agent (its container exists)
    with ctx.db.session() as session:
        p = session.get(Placement, a)
        assert p is not None
        placements.request_destroy(session, ctx.settings.section(NodesSettings), p)
    assert state_of(ctx, a).state == "destroying"
