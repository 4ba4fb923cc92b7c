"""Placements: a container on a node holding exactly its assigned GPUs, or waiting in the node's queue.

Assignment is atomic in the database. A queued placement moves to ``assigned`` with a conditional update
(``WHERE state = 'queued'``) and its units are inserted into ``node_gpu_assignments``, whose primary key
is the unit's UUID, inside one savepoint: two transactions racing for one GPU cannot both commit (the
loser's insert fails on the key, or its conditional update finds the row already moved), and the loser
stays queued. Units are released by deleting their rows when the placement is destroyed or fails, and
when it stops: a stopped placement keeps its container and workspace volume but not its GPUs, so queued
work can use them. Starting it again puts it back in the queue (at the back: ``queued_at`` is the
start request) and the same atomic assignment serves it: the GPUs it had when they are still free, else
any free units of its label, else it waits with a position like any other. Its command is then
``start`` (not ``place``) carrying the spec with the GPUs now assigned, and the agent recreates the
container when they differ (a container's devices are fixed when it is created). A queued placement
with a container (``container_id`` set) is such a restart; canceling it returns it to ``stopped``.

Queue order per node: priority (higher first; per organization, ``CLOUDARB_NODE_QUEUE_PRIORITIES``),
then arrival. A placement that cannot be served blocks later ones of the same unit label only, so a
small request for another model is not stuck behind a large one it does not compete with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudarb.agent.protocol import GPU_ENV
from cloudarb.config import NodesSettings
from cloudarb.db.models import Organization
from cloudarb.db.models_nodes import GpuAssignment, Node, NodeCommand, Placement
from cloudarb.db.types import utcnow
from cloudarb.errors import InvalidInput
from cloudarb.nodes import commands, templates
from cloudarb.nodes.errors import NoSuchGpu, PlacementState
from cloudarb.nodes.inventory import Unit, free_units, units
from cloudarb.nodes.market import refresh_offers
from cloudarb.nodes.secrets import access_password, digest

ENDED = ("destroyed", "failed")
ASSIGN_ATTEMPTS = 8


@dataclass(frozen=True)
class PlacementRequest:
    """One container to place, fully decided by the caller (the local provisioner, or a test)."""

    organization_id: str
    node: Node
    gpu_label: str
    instance_key: str
    image: str
    template: str = "custom"
    gpu_count: int = 1
    deployment_id: str | None = None
    command: Sequence[str] | None = None
    env: Mapping[str, str] | None = None
    ports: Sequence[Mapping[str, Any]] = ()
    cpus: float | None = None
    memory_mib: int | None = None
    price_per_hour: float = 0.0
    expires_at: datetime | None = None
    created_by: str = ""
    workspace_owner: str = ""
    """Whose workspace volume to mount (a user); the instance key when empty."""
    health_check: Mapping[str, Any] | None = None
    """The container's health check; None: the template's (``running`` for a custom image)."""


@dataclass(frozen=True)
class Created:
    placement: Placement
    credential: str | None
    """The container's access password (SSH, Jupyter token), shown once; None when the key existed."""


def workspace_volume(organization_id: str, owner: str) -> str:
    return "cloudarb-ws-" + digest(f"{organization_id}|{owner}")[:16]


def priority_of(session: Session, settings: NodesSettings, organization_id: str) -> int:
    table = settings.node_queue_priorities
    if organization_id in table:
        return table[organization_id]
    org = session.get(Organization, organization_id)
    return table.get(org.name, 0) if org is not None else 0


def create(session: Session, settings: NodesSettings, req: PlacementRequest) -> Created:
    """Record a placement (idempotent by instance key) and start it at once if its GPUs are free,
    else leave it queued. Raises ``NoSuchGpu`` when the node could never serve it."""
    existing = session.scalars(select(Placement).where(Placement.instance_key == req.instance_key)).first()
    if existing is not None:
        return Created(existing, None)
    chosen = sorted(set(req.env or {}) & set(GPU_ENV))
    if chosen:
        raise InvalidInput(f"env: {', '.join(chosen)} would choose GPUs past the placement's own; remove it",
                           field="env")
    have = [u for u in units(session, req.node.id) if u.label == req.gpu_label]
    if len(have) < req.gpu_count:
        labels = sorted({u.label for u in units(session, req.node.id)})
        raise NoSuchGpu(f"node {req.node.name} has {len(have)} unit(s) of {req.gpu_label!r}, {req.gpu_count} asked; "
                        f"it has: {', '.join(labels) or 'no GPU'}", field="gpu")
    password = access_password()
    check = dict(req.health_check) if req.health_check is not None else _template_check(session, req)
    placement = Placement(
        organization_id=req.organization_id, node_id=req.node.id, instance_key=req.instance_key,
        deployment_id=req.deployment_id, template=req.template, image=req.image,
        command=list(req.command) if req.command is not None else None, env=dict(req.env or {}), secret_env={
            "CLOUDARB_ACCESS_PASSWORD": password, "JUPYTER_TOKEN": password}, ports=[dict(p) for p in req.ports],
        gpu_model=req.gpu_label, gpu_count=req.gpu_count, gpu_uuids=[], cpus=req.cpus, memory_mib=req.memory_mib,
        workspace_volume=workspace_volume(req.organization_id, req.workspace_owner or req.instance_key),
        state="queued", priority=priority_of(session, settings, req.organization_id),
        price_per_hour=req.price_per_hour, credentials_hash=digest(password), credential_unshown=password,
        created_by=req.created_by, health_check=check,
        queued_at=utcnow(), expires_at=req.expires_at,
    )
    session.add(placement)
    session.flush()
    drain_queue(session, settings, req.node)
    session.refresh(placement)
    return Created(placement, password)


def _template_check(session: Session, req: PlacementRequest) -> dict[str, Any]:
    """The health check of the placement's template, copied now (a later edit changes no container)."""
    row = (templates.find(session, organization_id=req.organization_id, name=req.template)
           if req.template != templates.CUSTOM else None)
    return dict(row.health_check) if row is not None and row.health_check else {"kind": "running"}


def restarting(placement: Placement) -> bool:
    """A queued placement that has a container: a stopped one waiting for GPUs to start again."""
    return placement.state == "queued" and placement.container_id is not None


def _prefer(placement: Placement, candidates: list[Unit]) -> list[Unit]:
    """The units it held before first (a restart keeps its GPUs, and its container, when it can)."""
    before = set(placement.gpu_uuids or [])
    return sorted(candidates, key=lambda u: u.uuid not in before)


def _try_assign(session: Session, placement: Placement, chosen: Sequence[Unit]) -> str:
    """Move one queued placement to ``assigned`` holding ``chosen``: "ok", "unit_taken" (another
    transaction holds one of the units: look again) or "moved" (another transaction moved the placement)."""
    now = utcnow()
    try:
        with session.begin_nested():
            moved = session.execute(
                update(Placement).where(Placement.id == placement.id, Placement.state == "queued")
                .values(state="assigned", gpu_uuids=[u.uuid for u in chosen], assigned_at=now, updated_at=now)
                .execution_options(synchronize_session=False))
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                return "moved"
            session.execute(insert(GpuAssignment).values([
                {"gpu_uuid": u.uuid, "node_id": placement.node_id, "placement_id": placement.id, "created_at": now}
                for u in chosen]))
            commands.issue(session, placement, "start" if placement.container_id is not None else "place")
            session.flush()
    except IntegrityError:
        return "unit_taken"
    finally:
        session.expire(placement)
    return "ok"


def queued(session: Session, node_id: str) -> list[Placement]:
    return list(session.scalars(
        select(Placement).where(Placement.node_id == node_id, Placement.state == "queued")
        .order_by(Placement.priority.desc(), Placement.queued_at, Placement.id)))


def drain_queue(session: Session, settings: NodesSettings, node: Node) -> list[str]:
    """Assign free units to the node's queued placements in queue order; returns the ids started.
    A node that is unhealthy or drained starts nothing (its queue waits). A unit another transaction
    took meanwhile (its commit made our insert fail) sends us back to read the free units again."""
    started: list[str] = []
    if node.status == "healthy" and not node.drained:
        session.flush()
        free = free_units(session, node.id)
        blocked: set[str] = set()
        for p in queued(session, node.id):
            label, count = p.gpu_model, p.gpu_count
            outcome = "unit_taken"
            for _ in range(ASSIGN_ATTEMPTS):
                fits = _prefer(p, [u for u in free if u.label == label])[:count] if label not in blocked else []
                if len(fits) < count:
                    break
                outcome = _try_assign(session, p, fits)
                if outcome != "unit_taken":
                    break
                free = free_units(session, node.id)
            if outcome == "ok":
                started.append(p.id)
                free = [u for u in free if u not in fits]
            elif outcome != "moved":
                blocked.add(label)
    refresh_offers(session, node, mig_offers=settings.node_mig_offers)
    return started


def release(session: Session, placement: Placement) -> None:
    session.execute(delete(GpuAssignment).where(GpuAssignment.placement_id == placement.id))


def end(session: Session, settings: NodesSettings, placement: Placement, *, state: str, error: str | None = None) -> None:
    """Mark a placement destroyed (or failed), release its units and start what waits for them."""
    now = utcnow()
    placement.state = state
    placement.error = error if error is not None else placement.error
    placement.destroyed_at = placement.destroyed_at or now
    placement.health = placement.health_detail = placement.healthy_since = None
    commands.cancel_pending(session, placement.id)
    release(session, placement)
    node = session.get(Node, placement.node_id)
    if node is not None:
        drain_queue(session, settings, node)


def request_destroy(session: Session, settings: NodesSettings, placement: Placement) -> None:
    """Destroy: instant for a queued placement (nothing exists) and for one whose place command never
    reached the agent; otherwise a destroy command, and ``destroyed`` only on the agent's report."""
    if placement.state in ENDED:
        return
    if (placement.state == "queued" and not restarting(placement)) or (
            placement.state == "assigned" and not commands.delivered(session, placement.id)):
        end(session, settings, placement, state="destroyed")
        return
    if placement.state != "destroying":
        placement.state = "destroying"
        commands.cancel_pending(session, placement.id)
        commands.issue(session, placement, "destroy")
    elif commands.open_command(session, placement.id, "destroy") is None:
        commands.issue(session, placement, "destroy")  # the last one failed on the host: try again


def request_stop(session: Session, placement: Placement) -> None:
    """Stop the container; ``stopped`` (which gives its GPUs back) on the agent's report."""
    if placement.state not in ("running", "starting"):
        raise PlacementState(f"placement {placement.id} is {placement.state}; only a running one can stop")
    if commands.open_command(session, placement.id, "stop") is None:
        commands.issue(session, placement, "stop")


def stopped(session: Session, settings: NodesSettings, placement: Placement, *, error: str | None = None) -> None:
    """The container stopped (or a start of it failed): give its GPUs back and start what waits for them.
    ``gpu_uuids`` keeps the GPUs it had, which a later start prefers."""
    now = utcnow()
    placement.state, placement.stopped_at = "stopped", now
    placement.health = placement.health_detail = placement.healthy_since = None
    placement.error = error if error is not None else placement.error
    release(session, placement)
    node = session.get(Node, placement.node_id)
    if node is not None:
        drain_queue(session, settings, node)


def request_start(session: Session, settings: NodesSettings, placement: Placement) -> None:
    """Start a stopped placement again: back in the queue, served by the same atomic assignment (its
    GPUs if free, else others of its label, else it waits)."""
    if placement.state != "stopped":
        raise PlacementState(f"placement {placement.id} is {placement.state}; only a stopped one can start")
    if placement.container_id is None:  # pragma: no cover - a stopped placement had a container
        raise PlacementState(f"placement {placement.id} has no container to start")
    now = utcnow()
    placement.state, placement.queued_at, placement.error = "queued", now, None
    placement.priority = priority_of(session, settings, placement.organization_id)
    session.flush()
    node = session.get(Node, placement.node_id)
    if node is not None:
        drain_queue(session, settings, node)
    session.refresh(placement)


def cancel(session: Session, settings: NodesSettings, placement: Placement) -> None:
    """Cancel a queued placement (instant): a new one ends, a stopped one waiting to start again stays
    stopped. Anything else is refused (destroy it instead)."""
    if placement.state != "queued":
        raise PlacementState(f"placement {placement.id} is {placement.state}; only a queued one can be canceled "
                             "(destroy a started one)")
    if restarting(placement):
        placement.state = "stopped"
        return
    end(session, settings, placement, state="destroyed")


def reveal_credential(session: Session, placement: Placement) -> str:
    """The container's generated access password (SSH user password, Jupyter token), once: a second
    request is refused, and only the hash stays in the database."""
    password = placement.credential_unshown
    if password is None:
        raise PlacementState(f"the credentials of placement {placement.id} were shown already (or never made)")
    shown = session.execute(update(Placement).where(Placement.id == placement.id,
                                                    Placement.credential_unshown.is_not(None))
                            .values(credential_unshown=None).execution_options(synchronize_session=False))
    if shown.rowcount != 1:  # type: ignore[attr-defined]
        raise PlacementState(f"the credentials of placement {placement.id} were shown already")
    session.expire(placement)
    return password


def pending_commands(session: Session, node_id: str) -> Sequence[NodeCommand]:
    return commands.due(session, node_id)
