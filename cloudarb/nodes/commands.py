"""Commands to a node's agent: issued with the placement change that needs them, delivered in heartbeat
replies, finished by the agent's progress reports.

A command is delivered while ``pending``, and again when the agent has said nothing of it for
``REDELIVER_INTERVALS`` heartbeat intervals (a reply lost on the way); the agent deduplicates by the
command id, which it also puts on the container as a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cloudarb.agent.protocol import Command, PlacementSpec, PortSpec
from cloudarb.db.models_deploy import DeployInstance
from cloudarb.db.models_nodes import NodeCommand, NodeGpu, Placement
from cloudarb.db.types import utcnow
from cloudarb.nodes.templates import wire_check

OPEN = ("pending", "sent")
REDELIVER_INTERVALS = 3


def issue(session: Session, placement: Placement, action: str) -> NodeCommand:
    row = NodeCommand(node_id=placement.node_id, placement_id=placement.id, action=action, state="pending")
    session.add(row)
    session.flush()
    return row


def cancel_pending(session: Session, placement_id: str) -> None:
    """Open commands of a placement that a newer decision replaces (a destroy replaces a place)."""
    session.execute(update(NodeCommand).where(NodeCommand.placement_id == placement_id, NodeCommand.state.in_(OPEN))
                    .values(state="canceled", updated_at=utcnow()).execution_options(synchronize_session=False))


def delivered(session: Session, placement_id: str, *, action: str | None = None) -> bool:
    """Whether a command of the placement (of ``action``, if given) reached the agent (it may have acted)."""
    stmt = select(NodeCommand.id).where(NodeCommand.placement_id == placement_id, NodeCommand.delivered_at.is_not(None))
    if action is not None:
        stmt = stmt.where(NodeCommand.action == action)
    return session.scalar(stmt.limit(1)) is not None


def open_command(session: Session, placement_id: str, action: str) -> NodeCommand | None:
    return session.scalars(select(NodeCommand).where(
        NodeCommand.placement_id == placement_id, NodeCommand.action == action, NodeCommand.state.in_(OPEN))).first()


def due(session: Session, node_id: str, *, interval_s: float = 15.0) -> Sequence[NodeCommand]:
    """Commands to put in this heartbeat's reply (marked delivered now)."""
    now = utcnow()
    stale = now - timedelta(seconds=interval_s * REDELIVER_INTERVALS)
    rows = session.scalars(select(NodeCommand).where(
        NodeCommand.node_id == node_id,
        or_(NodeCommand.state == "pending", (NodeCommand.state == "sent") & (NodeCommand.updated_at < stale)),
    ).order_by(NodeCommand.created_at, NodeCommand.id)).all()
    for row in rows:
        row.state, row.delivered_at, row.updated_at = "sent", now, now
    return rows


def to_wire(session: Session, row: NodeCommand) -> Command:
    placement = session.get(Placement, row.placement_id)
    if placement is None:  # pragma: no cover - the foreign key cascades
        raise LookupError(row.placement_id)
    spec = placement_spec(session, placement) if row.action in ("place", "start") else None
    return Command(id=row.id, action=row.action, placement_id=row.placement_id, spec=spec)


def placement_spec(session: Session, p: Placement) -> PlacementSpec:
    gpus = {g.uuid: g for g in session.scalars(select(NodeGpu).where(
        NodeGpu.node_id == p.node_id, NodeGpu.uuid.in_(p.gpu_uuids)))}
    indices = [gpus[u].index for u in p.gpu_uuids if u in gpus and gpus[u].parent_uuid is None]
    return PlacementSpec(
        placement_id=p.id, instance_key=p.instance_key, deployment_id=p.deployment_id, image=p.image,
        command=p.command, env={**p.env, **(p.secret_env or {})},
        ports=[PortSpec.model_validate(port) for port in p.ports], gpu_uuids=list(p.gpu_uuids),
        gpu_indices=indices if len(indices) == len(p.gpu_uuids) else [], cpus=p.cpus, memory_mib=p.memory_mib,
        workspace_volume=p.workspace_volume, expires_at=expiries(session, [p])[p.id],
        health_check=wire_check(p.health_check),
    )


def expiries(session: Session, placements: Sequence[Placement]) -> dict[str, datetime | None]:
    """Each placement's expiry now: its deploy instance's (which ``extend`` moves) when the deploy stage
    made it, else its own. The agent stops a container past it on its own, so it must be current."""
    keys = [p.instance_key for p in placements]
    moved: dict[str, datetime | None] = {key: at for key, at in session.execute(
        select(DeployInstance.key, DeployInstance.expires_at).where(DeployInstance.key.in_(keys)))} if keys else {}
    return {p.id: moved.get(p.instance_key) or p.expires_at for p in placements}
