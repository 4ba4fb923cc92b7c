"""Tables of the team's own GPU hosts (migration 0010): nodes, join tokens, GPUs, placements, the GPU
assignments that make double booking impossible, the commands sent to agents, and templates.

A GPU (or, on a MIG-enabled GPU, each MIG device) is an allocatable *unit* named by its UUID. A unit
belongs to at most one live placement because ``node_gpu_assignments`` has the unit's UUID as its
primary key: two transactions that both try to take a unit cannot both commit, whatever the isolation
level, and the row is deleted when the placement releases the unit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloudarb.db.models import ID, Base
from cloudarb.db.types import JSONType, new_id, utcnow

NODE_STATUSES = ("healthy", "unhealthy")
PLACEMENT_STATES = ("queued", "assigned", "starting", "running", "stopped", "destroying", "destroyed", "failed")
LIVE_PLACEMENT_STATES = ("assigned", "starting", "running", "stopped", "destroying")
"""Placements whose container exists or is being made (a queued one has none, unless it is a stopped one
waiting for GPUs to start again: see ``cloudarb.nodes.placements``)."""
HOLDING_PLACEMENT_STATES = ("assigned", "starting", "running", "destroying")
"""Placements that hold GPUs: a stopped one gave its GPUs back (they are assigned again when it starts)."""


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    hostname: Mapped[str] = mapped_column(String(255))
    site: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[str] = mapped_column(String(20), default="healthy")
    drained: Mapped[bool] = mapped_column(Boolean, default=False)
    price_per_gpu_hour: Mapped[float] = mapped_column(Float, default=0.0)
    model_prices: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    host_report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    unhealthy_since: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JoinToken(Base):
    __tablename__ = "node_join_tokens"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    node_name: Mapped[str | None] = mapped_column(String(60), nullable=True)
    site: Mapped[str] = mapped_column(String(120), default="")
    price_per_gpu_hour: Mapped[float] = mapped_column(Float, default=0.0)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    node_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeGpu(Base):
    """A GPU, or a MIG device of one (``parent_uuid`` set). Units: whole GPUs without MIG, and MIG devices."""

    __tablename__ = "node_gpus"
    __table_args__ = (UniqueConstraint("node_id", "uuid", name="uq_node_gpus_node_uuid"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    uuid: Mapped[str] = mapped_column(String(100))
    index: Mapped[int] = mapped_column(Integer)
    parent_uuid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    mig_profile: Mapped[str] = mapped_column(String(40), default="")
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(80))
    model_known: Mapped[bool] = mapped_column(Boolean, default=True)
    memory_total_mib: Mapped[int] = mapped_column(Integer, default=0)
    mig_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Placement(Base):
    __tablename__ = "node_placements"
    __table_args__ = (Index("ix_node_placements_queue", "node_id", "state", "priority", "queued_at"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    instance_key: Mapped[str] = mapped_column(String(200), unique=True)
    deployment_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    template: Mapped[str] = mapped_column(String(80), default="custom")
    image: Mapped[str] = mapped_column(String(300))
    command: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    env: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    secret_env: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    """Generated credentials until the agent reports the container created (then cleared)."""
    ports: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    gpu_model: Mapped[str] = mapped_column(String(80))
    gpu_count: Mapped[int] = mapped_column(Integer, default=1)
    gpu_uuids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    cpus: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)
    workspace_volume: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    price_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    credentials_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    credential_unshown: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The generated access password until its one showing (then only its hash remains)."""
    container_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    published_ports: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    flagged: Mapped[str | None] = mapped_column(String(300), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    health_check: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    """The template's health check when the placement was made (migration 0017); None: not checked."""
    health: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """The agent's last word: starting, healthy, unhealthy; None while not running or not checked."""
    health_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    healthy_since: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    destroyed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GpuAssignment(Base):
    """One unit held by one live placement; the primary key is the unit, so it is held at most once."""

    __tablename__ = "node_gpu_assignments"
    gpu_uuid: Mapped[str] = mapped_column(String(100), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    placement_id: Mapped[str] = mapped_column(ForeignKey("node_placements.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeCommand(Base):
    """What the control plane asked a node's agent to do, delivered in heartbeat replies until done."""

    __tablename__ = "node_commands"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    placement_id: Mapped[str] = mapped_column(ForeignKey("node_placements.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    progress: Mapped[str] = mapped_column(String(20), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Template(Base):
    """A container template: the catalog's (``organization_id`` None: built-in, or installation-wide) or an
    organization's own. Names are unique per owner (``scope`` = the organization's id, "" for the catalog),
    so one organization's names never collide with, or reveal, another's (migration 0013)."""

    __tablename__ = "node_templates"
    __table_args__ = (UniqueConstraint("scope", "name", name="uq_node_templates_scope_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(64), default="")
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                        nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str] = mapped_column(String(300))
    ports: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    command: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    env: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    health_check: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    organization_ids: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    """For a catalog template: the organizations that may use it; None = every organization."""
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TemplatePolicy(Base):
    """Which templates an organization may use (an allow-list; None = all it can see) and whether its
    placements may name a custom image (None = the server's setting, which an organization can only narrow)."""

    __tablename__ = "node_template_policies"
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    allowed_templates: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    custom_images: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(320), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
