"""What the agent reports, applied to placements: command progress, and the containers it sees.

Each heartbeat's container report also carries the container's health (``cloudarb.agent.health``), stored
on the placement as the agent said it (``health``, ``health_detail``, ``healthy_since``).

A placement becomes ``destroyed`` only on the agent's word: a destroy command reported ``destroyed``,
or a heartbeat (sent after the destroy command was delivered) in which the container is absent. The
agent rebuilds its containers from labels after a restart, so an absent container is proof.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudarb.agent.protocol import CommandProgress, ContainerReport
from cloudarb.config import NodesSettings
from cloudarb.db.models_nodes import (
    HOLDING_PLACEMENT_STATES,
    LIVE_PLACEMENT_STATES,
    GpuAssignment,
    Node,
    NodeCommand,
    NodeGpu,
    Placement,
)
from cloudarb.db.types import utcnow
from cloudarb.nodes import commands, placements
from cloudarb.nodes.errors import PlacementNotFound
from cloudarb.nodes.inventory import held

STARTING = ("accepted", "pulling", "creating", "starting")
HOLDING_CONTAINER_STATES = ("running", "created", "paused", "restarting")
"""Container states that hold GPUs on the host (the agent's own rule, ``cloudarb.agent.daemon``)."""


def apply(session: Session, settings: NodesSettings, node: Node, command_id: str, report: CommandProgress) -> None:
    row = session.get(NodeCommand, command_id)
    if row is None or row.node_id != node.id:
        raise PlacementNotFound(f"command {command_id} not found for this node")
    row.progress, row.message = report.state, (report.error or report.message)[:2000]
    row.updated_at = utcnow()
    p = session.get(Placement, row.placement_id)
    if p is None or row.state in ("done", "failed", "canceled"):
        return
    if report.container_id:
        p.container_id = report.container_id
    if report.published_ports:
        p.published_ports = dict(report.published_ports)
    action, state = row.action, report.state
    if action in ("place", "start"):
        _start_progress(session, settings, row, p, state, report)
    elif action == "stop":
        if state == "stopped":
            row.state = "done"
            if p.state in ("running", "starting"):
                placements.stopped(session, settings, p)
        elif state == "failed":
            row.state, p.error = "failed", report.error or report.message
    elif action == "destroy":
        if state == "destroyed":
            row.state = "done"
            placements.end(session, settings, p, state="destroyed")
        elif state == "failed":
            row.state, p.error = "failed", report.error or report.message


def _start_progress(session: Session, settings: NodesSettings, row: NodeCommand, p: Placement, state: str,
                    report: CommandProgress) -> None:
    if p.state == "destroying":
        return
    if state in STARTING:
        p.state = "starting"
    elif state == "running":
        row.state, p.state = "done", "running"
        p.started_at, p.secret_env = p.started_at or utcnow(), None
    elif state in ("failed", "destroyed"):
        row.state = "failed"
        message = report.error or report.message or f"the agent reported {state}"
        if row.action == "place":
            placements.end(session, settings, p, state="failed", error=message)
        else:  # a start that failed: the placement stays stopped and gives back the GPUs it was given
            placements.stopped(session, settings, p, error=message)


def reconcile(session: Session, settings: NodesSettings, node: Node, containers: Sequence[ContainerReport]) -> None:
    """Compare the agent's containers (rebuilt from labels) with the node's placements. Only a container
    that holds its GPUs (running, created, paused) claims units; an exited one (a stopped placement)
    keeps its GPU label but gave the GPUs back."""
    live = {p.id: p for p in session.scalars(select(Placement).where(
        Placement.node_id == node.id, or_(Placement.state.in_(LIVE_PLACEMENT_STATES),
                                          (Placement.state == "queued") & Placement.container_id.is_not(None))))}
    owners = held(session, node.id)
    seen: set[str] = set()
    for c in containers:
        seen.add(c.placement_id)
        p = live.get(c.placement_id)
        if p is None:
            _orphan(session, node, c)
            continue
        p.container_id = c.container_id or p.container_id
        if c.published_ports:
            p.published_ports = dict(c.published_ports)
        holding = c.state in HOLDING_CONTAINER_STATES
        if holding and p.state == "stopped" and c.state == "running":
            p.state = "running"  # started on the host behind our back: it holds GPUs again
        if holding and p.state in HOLDING_PLACEMENT_STATES:
            _adopt_units(session, node, p, [u for u in c.gpu_uuids if u not in owners], owners)
            wrong = [u for u in c.gpu_uuids if owners.get(u) != p.id]
            missing = [u for u in p.gpu_uuids if u not in c.gpu_uuids] if c.gpu_uuids else []
            p.flagged = (f"GPU ownership differs: container holds {wrong or ''} {missing and 'lacks ' + str(missing)}"
                         if wrong or missing else None)
        else:
            p.flagged = None
        _health(p, c)
        if c.state == "running" and p.state in ("assigned", "starting"):
            p.state, p.started_at, p.secret_env = "running", p.started_at or utcnow(), None
        elif c.state in ("exited", "dead") and p.state == "running":
            placements.stopped(session, settings, p)
    for pid, p in live.items():
        if pid in seen:
            continue
        if p.state == "destroying" and commands.delivered(session, pid, action="destroy"):
            placements.end(session, settings, p, state="destroyed")
        elif p.state in ("running", "stopped"):
            p.flagged = "the container is missing from the agent's report"


def _health(p: Placement, c: ContainerReport) -> None:
    """The agent's word on the container's health, as it reported it: None while the container is not
    running, and from an agent that does not check (an older one, or a placement made without a check)."""
    if c.state != "running" or c.health is None:
        p.health = p.health_detail = p.healthy_since = None
        return
    p.health, p.health_detail = c.health, c.health_detail or None
    p.healthy_since = c.healthy_since if c.health == "healthy" else None


def _adopt_units(session: Session, node: Node, p: Placement, units: list[str], owners: dict[str, str]) -> None:
    """Units a live container holds that the database thinks free: the host's reality wins (they are
    recorded as the placement's, so they are not handed to another placement the agent would refuse)."""
    known = {g for g in session.scalars(select(NodeGpu.uuid).where(NodeGpu.node_id == node.id))}
    for unit in units:
        if unit not in known:
            continue
        try:
            with session.begin_nested():
                session.execute(insert(GpuAssignment).values(gpu_uuid=unit, node_id=node.id, placement_id=p.id,
                                                             created_at=utcnow()))
            owners[unit] = p.id
        except IntegrityError:
            continue


def _orphan(session: Session, node: Node, c: ContainerReport) -> None:
    """A container whose placement is ended (or unknown): ask the agent to remove it."""
    p = session.get(Placement, c.placement_id)
    if p is None or p.node_id != node.id:
        return
    if commands.open_command(session, p.id, "destroy") is None:
        commands.issue(session, p, "destroy")
