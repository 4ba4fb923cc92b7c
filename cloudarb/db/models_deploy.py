"""Tables of the deploy stage: deployments, instance intent rows, attempts, blocked offers, the cost
ledger, budgets and alerts (migration 0009).

An instance row is written (state ``requested``, with its unique ``key``) and committed before any
provider call; it is the intent that names whatever the provider creates. Money columns are USD.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from cloudarb.db.models import ID, Base
from cloudarb.db.types import JSONType, new_id, utcnow

_BIGID = BigInteger().with_variant(Integer, "sqlite")


class DeployMeta(Base):
    """Installation-wide values of the deploy stage (the install id that prefixes every mark)."""

    __tablename__ = "deploy_meta"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Deployment(Base):
    __tablename__ = "deployments"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    optimization_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    spec: Mapped[dict[str, Any]] = mapped_column()
    lifetime_s: Mapped[float] = mapped_column(Float)
    max_lifetime_s: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    ssh_public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    ssh_private_key_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    private_key_shown: Mapped[bool] = mapped_column(Boolean, default=False)
    job_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    target: Mapped[str] = mapped_column(String(20), default="cloud", server_default="cloud")
    """What makes its instances (0014): ``cloud`` (the providers' APIs), ``kubernetes`` (server-side apply
    to the configured cluster) or ``terraform`` (the organization's command hook)."""
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    """What the target reported (0014): hook runs (exit code, bounded output), Terraform outputs, shared
    objects of an apply."""


class DeployInstance(Base):
    """One instance's intent and life. ``key`` is the idempotency key and provider-side mark."""

    __tablename__ = "deploy_instances"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), nullable=True, index=True)
    line_index: Mapped[int] = mapped_column(Integer, default=0)
    replica: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    workload_id: Mapped[str] = mapped_column(String(200), default="")
    provider: Mapped[str] = mapped_column(String(40))
    account: Mapped[str] = mapped_column(String(80), default="default")
    offer_key: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(120), default="")
    zone: Mapped[str | None] = mapped_column(String(120), nullable=True)
    instance_type: Mapped[str] = mapped_column(String(200), default="")
    gpu_model: Mapped[str] = mapped_column(String(80), default="")
    gpu_count: Mapped[int] = mapped_column(Integer, default=0)
    spot: Mapped[bool] = mapped_column(Boolean, default=False)
    price_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    reported_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    billing_granularity_s: Mapped[int] = mapped_column(Integer, default=1)
    billing_minimum_s: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20), default="requested", index=True)
    provider_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ssh_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ssh_user: Mapped[str] = mapped_column(String(40), default="root")
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state_at: Mapped[datetime] = mapped_column(default=utcnow)
    launched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    running_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    billing_started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    billing_stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    metered_until: Mapped[datetime | None] = mapped_column(nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    interrupted_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    """When the provider ended this (spot) instance without our asking (migration 0012)."""
    last_seen_at: Mapped[datetime | None] = mapped_column(nullable=True)
    """The last reconcile pass that listed the instance present (0012)."""
    destroy_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_action_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    desired_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """A stop or start asked and not yet verified: ``stopped`` | ``running`` (0016)."""
    paused_at: Mapped[datetime | None] = mapped_column(nullable=True)
    """Start of the open pause: seen stopped where a stopped instance bills no compute (0016)."""
    pauses: Mapped[list[list[str]] | None] = mapped_column(JSONType, nullable=True)
    """Closed pauses as ``[[start, end], ...]`` (ISO times); metering leaves them out (0016)."""
    can_stop: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The provider can stop and start this instance (its capability at launch; 0016)."""
    billing_minimum_per_run: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The minimum charge applies to each run (EC2 bills a minute per start) rather than once (0016)."""
    __table_args__ = (Index("ix_deploy_instances_provider_account", "provider", "account"),)


class DeployAttempt(Base):
    """One try of one line's replica on one offer, and how it went (shown as a table)."""

    __tablename__ = "deploy_attempts"
    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    line_index: Mapped[int] = mapped_column(Integer)
    replica: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str] = mapped_column(String(40))
    offer_key: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlockedOffer(Base):
    """An offer left out of failover until ``until`` (it answered no capacity, quota or gone)."""

    __tablename__ = "deploy_blocked_offers"
    offer_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    until: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CostEntry(Base):
    """Metered spend of one instance over [period_start, period_end): billed_seconds x rate / 3600."""

    __tablename__ = "cost_ledger"
    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    organization_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("deploy_instances.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column(index=True)
    seconds: Mapped[float] = mapped_column(Float)
    billed_seconds: Mapped[float] = mapped_column(Float)
    rate: Mapped[float] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)


class Budget(Base):
    """An organization's monthly spend limit; alerts at each threshold (share of the limit)."""

    __tablename__ = "budgets"
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    monthly_limit: Mapped[float] = mapped_column(Float)
    thresholds: Mapped[list[float]] = mapped_column(JSONType)
    hard_stop: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeployAlert(Base):
    """Something a person must know: an orphan destroyed, a leaked or vanished instance, a budget."""

    __tablename__ = "deploy_alerts"
    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    organization_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    dedupe: Mapped[str] = mapped_column(String(300), unique=True)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
