"""Tables of the outputs and hooks work (migration 0011): organization hooks (webhooks and commands), their
delivery log, and the requests to apply an optimization's Kubernetes export to the configured cluster.

A delivery row is written for every hook an event matches, in the transaction of whatever emitted the
event, before anything is sent: an event that was recorded is delivered (or its failure is recorded),
never dropped. ``subject_id`` names what the event is about (a deployment, a policy), so a deployment
can list its hooks' outcomes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudarb.db.models import ID, Base
from cloudarb.db.types import JSONType, new_id, utcnow


class Hook(Base):
    __tablename__ = "hooks"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    command: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    events: Mapped[list[str]] = mapped_column(JSONType)
    payload_format: Mapped[str] = mapped_column(String(20), default="json")
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_s: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HookDelivery(Base):
    __tablename__ = "hook_deliveries"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    hook_id: Mapped[str] = mapped_column(ForeignKey("hooks.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str] = mapped_column(ID, index=True)
    event: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    blocking: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    __table_args__ = (Index("ix_hook_deliveries_org_created", "organization_id", "created_at"),)


class KubernetesApply(Base):
    """One request to server-side apply an optimization's Kubernetes manifests; its job does the calls."""

    __tablename__ = "kubernetes_applies"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    optimization_id: Mapped[str] = mapped_column(ID, index=True)
    lines: Mapped[list[int] | None] = mapped_column(JSONType, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="queued")
    job_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    applied: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
