"""The team's own GPU hosts: nodes, join tokens, the placement queue (templates: ``templates.py``); and the agent endpoints
(``/agent/v1/...``, authenticated by each node's own token, stored hashed)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from cloudarb.agent.protocol import (
    API_PREFIX,
    CommandProgress,
    Heartbeat,
    HeartbeatReply,
    RegisterRequest,
    RegisterResponse,
)
from cloudarb.api.deps import Admin, CtxDep, Editor, SessionDep, Viewer, credential_from
from cloudarb.config import NodesSettings
from cloudarb.db.models_nodes import Node, NodeGpu
from cloudarb.errors import InvalidInput
from cloudarb.gpu_names import resolve
from cloudarb.nodes import agents, placements, progress, service
from cloudarb.nodes.service import QueueEntry
from cloudarb.storage import audit

router = APIRouter()
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
NodeName = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class JoinTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_name: NodeName | None = Field(default=None, description="The node's name (default: from its host name); "
                                       "a token naming an existing node of this organization re-binds it.")
    site: Annotated[str, Field(max_length=120)] = Field(default="", description="Where it is (the offers' region).")
    price_per_gpu_hour: Annotated[float, Field(ge=0, le=1000)] = Field(default=0.0, description="Owner's USD per GPU-hour.")
    ttl_s: Annotated[float, Field(gt=0, le=30 * 86400)] | None = Field(default=None, description="Lifetime, seconds.")


class JoinTokenOut(BaseModel):
    id: str
    join_token: str = Field(description="Shown once: give it to `cloudarb agent --join-token`.")
    node_name: str | None
    expires_at: datetime


class NodeOut(BaseModel):
    id: str
    name: str
    hostname: str
    site: str
    status: str = Field(description="healthy or unhealthy (missed heartbeats)")
    drained: bool
    price_per_gpu_hour: float
    model_prices: dict[str, float]
    gpus_total: int = Field(description="Allocatable units (whole GPUs, or MIG devices of MIG-enabled GPUs).")
    gpus_free: int
    engine: dict[str, Any]
    last_heartbeat_at: datetime | None
    created_at: datetime


class GpuOut(BaseModel):
    uuid: str
    index: int
    name: str
    model: str
    model_known: bool
    memory_total_mib: int
    mig_enabled: bool
    mig_profile: str
    parent_uuid: str | None
    present: bool
    placement_id: str | None = Field(description="The placement holding this unit, if any.")


class PlacementOut(BaseModel):
    id: str
    node_id: str
    node_name: str
    instance_key: str
    deployment_id: str | None
    template: str
    image: str
    gpu_model: str
    gpu_count: int
    gpu_uuids: list[str]
    state: str
    priority: int
    position: int | None = Field(description="Place in its node's queue (1 = next); None unless queued.")
    estimated_start_at: datetime | None = Field(description="When enough GPUs should be free, if queued.")
    price_per_hour: float
    container_id: str | None
    published_ports: dict[str, int]
    flagged: str | None
    error: str | None
    health: str | None = Field(default=None, description=(
        "The container's health as its agent last reported it: starting (not passed yet, inside the grace), "
        "healthy, unhealthy; None while it does not run or is not checked."))
    health_detail: str | None = Field(default=None, description="The last probe's outcome (a failure's reason).")
    healthy_since: datetime | None = None
    queued_at: datetime
    started_at: datetime | None
    expires_at: datetime | None
    destroyed_at: datetime | None


class NodeDetail(NodeOut):
    host: dict[str, Any]
    gpus: list[GpuOut]
    placements: list[PlacementOut]


class PricingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_per_gpu_hour: Annotated[float, Field(ge=0, le=1000)] | None = None
    model_prices: dict[str, Annotated[float, Field(ge=0, le=1000)]] | None = Field(
        default=None, description="USD per GPU-hour per GPU model (any spelling the GPU table knows).")


def node_out(session: SessionDep, node: Node) -> dict[str, Any]:
    cap = service.capacity(session, node.id)
    return {
        "id": node.id, "name": node.name, "hostname": node.hostname, "site": node.site, "status": node.status,
        "drained": node.drained, "price_per_gpu_hour": node.price_per_gpu_hour, "model_prices": node.model_prices,
        "gpus_total": len(cap.units), "gpus_free": cap.free, "engine": node.host_report.get("engine") or {},
        "last_heartbeat_at": node.last_heartbeat_at, "created_at": node.created_at,
    }


def placement_out(entry: QueueEntry) -> PlacementOut:
    p = entry.placement
    return PlacementOut(
        id=p.id, node_id=p.node_id, node_name=entry.node_name, instance_key=p.instance_key,
        deployment_id=p.deployment_id, template=p.template, image=p.image, gpu_model=p.gpu_model,
        gpu_count=p.gpu_count, gpu_uuids=p.gpu_uuids, state=p.state, priority=p.priority, position=entry.position,
        estimated_start_at=entry.estimated_start_at, price_per_hour=p.price_per_hour, container_id=p.container_id,
        published_ports=p.published_ports, flagged=p.flagged, error=p.error, health=p.health,
        health_detail=p.health_detail, healthy_since=p.healthy_since, queued_at=p.queued_at,
        started_at=p.started_at, expires_at=p.expires_at, destroyed_at=p.destroyed_at)


def gpu_out(g: NodeGpu, holders: dict[str, str]) -> GpuOut:
    return GpuOut(uuid=g.uuid, index=g.index, name=g.name, model=g.model, model_known=g.model_known,
                  memory_total_mib=g.memory_total_mib, mig_enabled=g.mig_enabled, mig_profile=g.mig_profile,
                  parent_uuid=g.parent_uuid, present=g.present, placement_id=holders.get(g.uuid))


def _settings(ctx: CtxDep) -> NodesSettings:
    return ctx.settings.section(NodesSettings)


@router.post("/nodes/join-tokens", operation_id="create_join_token", response_model=JoinTokenOut, status_code=201,
             tags=["nodes"])
def create_join_token(body: JoinTokenIn, principal: Admin, ctx: CtxDep, session: SessionDep) -> JoinTokenOut:
    """A one-time, expiring token with which one agent registers its host (admins only)."""
    made = service.create_join_token(
        session, _settings(ctx), organization_id=principal.organization_id, actor=principal.actor,
        node_name=body.node_name, site=body.site, price_per_gpu_hour=body.price_per_gpu_hour, ttl_s=body.ttl_s)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="node.join_token", resource_type="node_join_token", resource_id=made.row.id)
    return JoinTokenOut(id=made.row.id, join_token=made.secret, node_name=made.row.node_name,
                        expires_at=made.row.expires_at)


@router.get("/nodes", operation_id="list_nodes", response_model=list[NodeOut], tags=["nodes"])
def list_nodes(principal: Viewer, session: SessionDep) -> list[NodeOut]:
    return [NodeOut.model_validate(node_out(session, n))
            for n in service.list_nodes(session, organization_id=principal.organization_id)]


@router.get("/nodes/placements", operation_id="list_placements", response_model=list[PlacementOut], tags=["nodes"])
def list_placements(principal: Viewer, ctx: CtxDep, session: SessionDep, include_ended: bool = False) -> list[PlacementOut]:
    """The organization's placements on its own hosts: the queue first (with positions and estimates)."""
    entries = service.queue(session, _settings(ctx), organization_id=principal.organization_id,
                            include_ended=include_ended)
    return [placement_out(e) for e in entries]


@router.delete("/nodes/placements/{placement_id}", operation_id="cancel_placement", response_model=PlacementOut,
               tags=["nodes"])
def cancel_placement(placement_id: IdPath, principal: Editor, ctx: CtxDep, session: SessionDep) -> PlacementOut:
    """Cancel a queued placement (instant). A started one is destroyed through its deployment."""
    p = service.get_placement(session, organization_id=principal.organization_id, placement_id=placement_id)
    placements.cancel(session, _settings(ctx), p)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="node.placement_cancel", resource_type="node_placement", resource_id=p.id)
    node = session.get(Node, p.node_id)
    return placement_out(QueueEntry(p, node.name if node else "", None, None))


class CredentialsOut(BaseModel):
    placement_id: str
    password: str = Field(description="Shown once: the container's CLOUDARB_ACCESS_PASSWORD and JUPYTER_TOKEN.")
    address: str = Field(description="The node's host name.")
    published_ports: dict[str, int] = Field(description="'22/tcp' -> host port, once the container runs.")


@router.post("/nodes/placements/{placement_id}/credentials", operation_id="reveal_placement_credentials",
             response_model=CredentialsOut, tags=["nodes"])
def reveal_placement_credentials(placement_id: IdPath, principal: Editor, session: SessionDep) -> CredentialsOut:
    """The generated access password of a placement's container (SSH, Jupyter), shown once: a second
    request answers 409, and only its hash is kept."""
    p = service.get_placement(session, organization_id=principal.organization_id, placement_id=placement_id)
    password = placements.reveal_credential(session, p)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="node.placement_credentials", resource_type="node_placement", resource_id=p.id)
    node = session.get(Node, p.node_id)
    return CredentialsOut(placement_id=p.id, password=password, address=node.hostname if node else "",
                          published_ports=p.published_ports)


@router.get("/nodes/{node_id}", operation_id="get_node", response_model=NodeDetail, tags=["nodes"])
def get_node(node_id: IdPath, principal: Viewer, session: SessionDep) -> NodeDetail:
    node = service.get_node(session, organization_id=principal.organization_id, node_id=node_id)
    holders = service.capacity(session, node.id).held
    return NodeDetail.model_validate({
        **node_out(session, node), "host": node.host_report,
        "gpus": [gpu_out(g, holders) for g in service.gpus(session, node.id)],
        "placements": [placement_out(QueueEntry(p, node.name, None, None))
                       for p in service.node_placements(session, node.id)],
    })


def _drain(node_id: str, principal: Admin, ctx: CtxDep, session: SessionDep, drained: bool) -> NodeOut:
    node = service.get_node(session, organization_id=principal.organization_id, node_id=node_id)
    service.set_drained(session, _settings(ctx), node, drained)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="node.drain" if drained else "node.undrain", resource_type="node", resource_id=node.id)
    return NodeOut.model_validate(node_out(session, node))


@router.post("/nodes/{node_id}/drain", operation_id="drain_node", response_model=NodeOut, tags=["nodes"])
def drain_node(node_id: IdPath, principal: Admin, ctx: CtxDep, session: SessionDep) -> NodeOut:
    """No new placement starts here and its offers leave the market; running containers stay."""
    return _drain(node_id, principal, ctx, session, True)


@router.post("/nodes/{node_id}/undrain", operation_id="undrain_node", response_model=NodeOut, tags=["nodes"])
def undrain_node(node_id: IdPath, principal: Admin, ctx: CtxDep, session: SessionDep) -> NodeOut:
    return _drain(node_id, principal, ctx, session, False)


@router.delete("/nodes/{node_id}", operation_id="delete_node", status_code=204, tags=["nodes"])
def delete_node(node_id: IdPath, principal: Admin, session: SessionDep) -> Response:
    """Remove a node that holds no live placement (its token stops working at once)."""
    node = service.get_node(session, organization_id=principal.organization_id, node_id=node_id)
    service.remove(session, node)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="node.remove", resource_type="node", resource_id=node_id)
    return Response(status_code=204)


@router.put("/nodes/{node_id}/pricing", operation_id="set_node_pricing", response_model=NodeOut, tags=["nodes"])
def set_node_pricing(node_id: IdPath, body: PricingIn, principal: Admin, ctx: CtxDep, session: SessionDep) -> NodeOut:
    """The owner's price per GPU-hour (default and per model); the node's offers follow at once."""
    node = service.get_node(session, organization_id=principal.organization_id, node_id=node_id)
    by_model: dict[str, float] | None = None
    if body.model_prices is not None:
        by_model = {}
        for name, price in body.model_prices.items():
            for model in resolve(name, field=f"model_prices.{name}").models:
                by_model[model] = price
    if body.price_per_gpu_hour is None and by_model is None:
        raise InvalidInput("give price_per_gpu_hour or model_prices", field="price_per_gpu_hour")
    service.set_pricing(session, _settings(ctx), node, price_per_gpu_hour=body.price_per_gpu_hour,
                        model_prices=by_model)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor,
                 action="node.pricing", resource_type="node", resource_id=node.id,
                 detail=body.model_dump(mode="json"))
    return NodeOut.model_validate(node_out(session, node))


# ------------------------------------------------------------------ the agent's endpoints

AuthHeader = Annotated[str | None, Header(description="Bearer <node token>")]


@router.post(f"{API_PREFIX}/register", operation_id="agent_register", response_model=RegisterResponse,
             status_code=201, tags=["agent"])
def agent_register(body: RegisterRequest, ctx: CtxDep, session: SessionDep) -> RegisterResponse:
    """Register a host with a one-time join token; answers the node's own token (shown once)."""
    done = agents.register(session, _settings(ctx), body)
    audit.record(session, organization_id=done.node.organization_id, actor=f"node:{done.node.name}",
                 action="node.register", resource_type="node", resource_id=done.node.id)
    return done.response


@router.post(f"{API_PREFIX}/heartbeat", operation_id="agent_heartbeat", response_model=HeartbeatReply,
             tags=["agent"])
def agent_heartbeat(body: Heartbeat, ctx: CtxDep, session: SessionDep, authorization: AuthHeader = None) -> HeartbeatReply:
    node = agents.authenticate(session, credential_from(authorization, None))
    return agents.heartbeat(session, _settings(ctx), node, body)


@router.post(f"{API_PREFIX}/commands/{{command_id}}/progress", operation_id="agent_command_progress",
             status_code=204, tags=["agent"])
def agent_command_progress(command_id: IdPath, body: CommandProgress, ctx: CtxDep, session: SessionDep,
                           authorization: AuthHeader = None) -> Response:
    node = agents.authenticate(session, credential_from(authorization, None))
    progress.apply(session, _settings(ctx), node, command_id, body)
    return Response(status_code=204)
