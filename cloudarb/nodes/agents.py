"""The agent endpoints' work: registration with a one-time join token, heartbeats, node credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudarb.agent.protocol import Heartbeat, HeartbeatReply, HostReport, RegisterRequest, RegisterResponse
from cloudarb.config import NodesSettings
from cloudarb.db.models_nodes import JoinToken, Node, Placement
from cloudarb.db.types import utcnow
from cloudarb.nodes import commands, placements, progress
from cloudarb.nodes.errors import BadJoinToken, BadNodeToken
from cloudarb.nodes.inventory import sync_gpus
from cloudarb.nodes.secrets import NODE_TOKEN_PREFIX, digest, new_secret

_NOT_NAME = re.compile(r"[^a-z0-9_.-]+")


def node_name_from(hostname: str) -> str:
    """A node name from a host name: lowercase letters, digits, '.', '_' and '-' (the offers' seller)."""
    name = _NOT_NAME.sub("-", hostname.lower()).strip("-.") or "node"
    return name[:50]


def _unique_name(session: Session, wanted: str) -> str:
    name, n = wanted, 1
    while session.scalar(select(Node.id).where(Node.name == name)) is not None:
        n += 1
        name = f"{wanted[:50]}-{n}"
    return name


@dataclass(frozen=True)
class Registered:
    response: RegisterResponse
    node: Node


def register(session: Session, settings: NodesSettings, body: RegisterRequest) -> Registered:
    """Use a join token once: create the node (or re-bind the token's named node of the same organization,
    for a host re-installed), store its GPUs, put its free GPUs on the market. The node's token is
    returned once and stored hashed."""
    now = utcnow()
    token = session.scalars(select(JoinToken).where(JoinToken.token_hash == digest(body.join_token))).first()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise BadJoinToken("join token unknown, already used or expired: ask an admin for a new one")
    claimed = session.execute(update(JoinToken).where(JoinToken.id == token.id, JoinToken.used_at.is_(None))
                              .values(used_at=now).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise BadJoinToken("join token unknown, already used or expired: ask an admin for a new one")
    secret, hashed = new_secret(NODE_TOKEN_PREFIX)
    node = None
    if token.node_name:
        node = session.scalars(select(Node).where(Node.name == token.node_name,
                                                  Node.organization_id == token.organization_id)).first()
    if node is None:
        node = Node(organization_id=token.organization_id,
                    name=_unique_name(session, token.node_name or node_name_from(body.host.hostname)),
                    hostname=body.host.hostname, site=token.site, status="healthy", drained=False,
                    price_per_gpu_hour=token.price_per_gpu_hour, model_prices={}, token_hash=hashed, host_report={})
        session.add(node)
    node.token_hash = hashed
    _record_host(session, node, body.host)
    node.status, node.unhealthy_since = "healthy", None
    session.flush()
    token.node_id = node.id
    placements.drain_queue(session, settings, node)
    return Registered(RegisterResponse(node_id=node.id, node_token=secret,
                                       heartbeat_interval_s=settings.node_heartbeat_interval_s), node)


def _record_host(session: Session, node: Node, host: HostReport) -> None:
    node.hostname = host.hostname
    node.host_report = host.model_dump(mode="json", exclude={"gpus"})
    node.last_heartbeat_at = utcnow()
    session.flush()
    sync_gpus(session, node.id, host.gpus)


def authenticate(session: Session, node_token: str | None) -> Node:
    if not node_token:
        raise BadNodeToken("missing node credentials: send 'Authorization: Bearer <node token>'")
    node = session.scalars(select(Node).where(Node.token_hash == digest(node_token))).first()
    if node is None:
        raise BadNodeToken("unknown node token (was the node removed?)")
    return node


def heartbeat(session: Session, settings: NodesSettings, node: Node, body: Heartbeat) -> HeartbeatReply:
    """Record the host and its containers, mend what they show, and reply with the commands due."""
    recovered = node.status != "healthy"
    _record_host(session, node, body.host)
    if recovered:
        node.status, node.unhealthy_since = "healthy", None
        session.execute(update(Placement).where(Placement.node_id == node.id,
                                                Placement.flagged == MISSED_HEARTBEATS)
                        .values(flagged=None).execution_options(synchronize_session=False))
    progress.reconcile(session, settings, node, body.containers)
    placements.drain_queue(session, settings, node)
    due = commands.due(session, node.id, interval_s=settings.node_heartbeat_interval_s)
    live = session.scalars(select(Placement).where(Placement.node_id == node.id,
                                                   Placement.state.not_in(("queued", "destroyed", "failed")))).all()
    return HeartbeatReply(commands=[commands.to_wire(session, c) for c in due],
                          heartbeat_interval_s=settings.node_heartbeat_interval_s, drained=node.drained,
                          expiries=commands.expiries(session, live))


MISSED_HEARTBEATS = "the node missed its heartbeats"
