"""Operators' actions on nodes: join tokens, listing, drain/undrain, removal, pricing, the queue view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cloudarb.config import NodesSettings
from cloudarb.db.models_nodes import (
    HOLDING_PLACEMENT_STATES,
    LIVE_PLACEMENT_STATES,
    JoinToken,
    Node,
    NodeGpu,
    Placement,
)
from cloudarb.db.types import utcnow
from cloudarb.nodes import placements
from cloudarb.nodes.errors import NodeBusy, NodeNotFound, PlacementNotFound
from cloudarb.nodes.inventory import Unit, free_units, held, units
from cloudarb.nodes.market import refresh_offers, remove_offers
from cloudarb.nodes.secrets import JOIN_TOKEN_PREFIX, new_secret


@dataclass(frozen=True)
class NewJoinToken:
    row: JoinToken
    secret: str


def create_join_token(session: Session, settings: NodesSettings, *, organization_id: str, actor: str,
                      node_name: str | None, site: str, price_per_gpu_hour: float,
                      ttl_s: float | None) -> NewJoinToken:
    secret, hashed = new_secret(JOIN_TOKEN_PREFIX)
    row = JoinToken(organization_id=organization_id, token_hash=hashed, node_name=node_name, site=site,
                    price_per_gpu_hour=price_per_gpu_hour, created_by=actor,
                    expires_at=utcnow() + timedelta(seconds=ttl_s or settings.node_join_token_ttl_s))
    session.add(row)
    session.flush()
    return NewJoinToken(row, secret)


def list_nodes(session: Session, *, organization_id: str) -> Sequence[Node]:
    return session.scalars(select(Node).where(Node.organization_id == organization_id).order_by(Node.name)).all()


def get_node(session: Session, *, organization_id: str, node_id: str) -> Node:
    node = session.get(Node, node_id)
    if node is None or node.organization_id != organization_id:
        raise NodeNotFound(f"node {node_id} not found")
    return node


def gpus(session: Session, node_id: str) -> Sequence[NodeGpu]:
    return session.scalars(select(NodeGpu).where(NodeGpu.node_id == node_id)
                           .order_by(NodeGpu.parent_uuid.is_not(None), NodeGpu.index)).all()


@dataclass(frozen=True)
class Capacity:
    units: list[Unit]
    held: dict[str, str]

    @property
    def free(self) -> int:
        return sum(1 for u in self.units if u.uuid not in self.held)


def capacity(session: Session, node_id: str) -> Capacity:
    return Capacity(units(session, node_id), held(session, node_id))


def set_drained(session: Session, settings: NodesSettings, node: Node, drained: bool) -> None:
    """Drain: no new placement starts and the node's offers leave the market (running ones stay);
    undrain: offers come back and the queue moves."""
    node.drained = drained
    if drained:
        remove_offers(session, node.name)
    else:
        placements.drain_queue(session, settings, node)


def remove(session: Session, node: Node) -> None:
    live = session.scalar(select(func.count()).select_from(Placement).where(
        Placement.node_id == node.id, or_(Placement.state.in_(LIVE_PLACEMENT_STATES), Placement.container_id.is_not(
            None) & (Placement.state == "queued")))) or 0
    if live:
        raise NodeBusy(f"node {node.name} still holds {live} live placement(s): drain it and destroy them first")
    remove_offers(session, node.name)
    session.delete(node)


def set_pricing(session: Session, settings: NodesSettings, node: Node, *, price_per_gpu_hour: float | None,
                model_prices: dict[str, float] | None) -> None:
    if price_per_gpu_hour is not None:
        node.price_per_gpu_hour = price_per_gpu_hour
    if model_prices is not None:
        node.model_prices = dict(model_prices)
    refresh_offers(session, node, mig_offers=settings.node_mig_offers)


@dataclass(frozen=True)
class QueueEntry:
    placement: Placement
    node_name: str
    position: int | None
    """1-based position among the node's queued placements of the same unit label; None when not queued."""
    estimated_start_at: datetime | None
    """When enough units should be free, from the running placements' expiry (None: unknown)."""


def queue(session: Session, settings: NodesSettings, *, organization_id: str,
          include_ended: bool = False) -> list[QueueEntry]:
    """The organization's placements (queued first, in order) with queue positions and estimates."""
    stmt = select(Placement, Node.name).join(Node, Node.id == Placement.node_id).where(
        Placement.organization_id == organization_id)
    if not include_ended:
        stmt = stmt.where(Placement.state.not_in(("destroyed", "failed")))
    mine = session.execute(stmt.order_by(Placement.queued_at, Placement.id)).all()
    estimates: dict[str, tuple[int, datetime | None]] = {}
    for node_id in {p.node_id for p, _ in mine if p.state == "queued"}:
        estimates.update(_node_estimates(session, settings, node_id))
    out = [QueueEntry(p, name, *(estimates.get(p.id, (None, None)))) for p, name in mine]
    return sorted(out, key=lambda e: (e.position is None, e.position or 0, e.placement.queued_at))


def _node_estimates(session: Session, settings: NodesSettings, node_id: str) -> dict[str, tuple[int, datetime | None]]:
    """Per queued placement of one node: (position within its label, estimated start)."""
    now = utcnow()
    free: dict[str, int] = {}
    for u in free_units(session, node_id):
        free[u.label] = free.get(u.label, 0) + 1
    running = session.scalars(select(Placement).where(Placement.node_id == node_id,
                                                      Placement.state.in_(HOLDING_PLACEMENT_STATES))).all()
    ends: dict[str, list[tuple[datetime, int]]] = {}
    for r in running:
        expected = r.expires_at or (r.started_at or r.assigned_at or now) + timedelta(
            seconds=settings.node_default_lifetime_s)
        ends.setdefault(r.gpu_model, []).append((max(expected, now), r.gpu_count))
    out: dict[str, tuple[int, datetime | None]] = {}
    need: dict[str, int] = {}
    position: dict[str, int] = {}
    for p in placements.queued(session, node_id):
        label = p.gpu_model
        position[label] = position.get(label, 0) + 1
        need[label] = need.get(label, 0) + p.gpu_count
        short = need[label] - free.get(label, 0)
        out[p.id] = (position[label], now if short <= 0 else _when(sorted(ends.get(label, [])), short))
    return out


def _when(ends: list[tuple[datetime, int]], short: int) -> datetime | None:
    freed = 0
    for at, count in ends:
        freed += count
        if freed >= short:
            return at
    return None


def get_placement(session: Session, *, organization_id: str, placement_id: str) -> Placement:
    p = session.get(Placement, placement_id)
    if p is None or p.organization_id != organization_id:
        raise PlacementNotFound(f"placement {placement_id} not found")
    return p


def node_placements(session: Session, node_id: str) -> Sequence[Placement]:
    return session.scalars(select(Placement).where(
        Placement.node_id == node_id, Placement.state.not_in(("destroyed", "failed")))
        .order_by(Placement.queued_at)).all()
