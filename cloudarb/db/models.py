"""Table models (SQLAlchemy 2). API schemas live in ``cloudarb.api.schemas``, separate from these.

Every row that belongs to a customer carries ``organization_id``; data-access functions always filter
on it. Market data (offers, price ticks) is shared by all organizations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloudarb.db.types import JSONType, UTCDateTime, new_id, utcnow

ID = String(32)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RefreshToken(Base):
    """One issued refresh token (by its ``jti``; the token itself is never stored). Tokens of one login
    form a family: each refresh uses its token once and issues the next; presenting a used one again
    means it was copied, and revokes the whole family."""

    __tablename__ = "refresh_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(ID, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Offer(Base):
    """The latest quote of every offer: maintained on ingest, never computed by scanning ticks."""

    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_provider_seller", "provider", "seller"),)
    offer_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40), index=True)
    seller: Mapped[str] = mapped_column(String(60), default="", server_default="")
    region: Mapped[str] = mapped_column(String(120), default="")
    zone: Mapped[str] = mapped_column(String(120), default="")
    instance_type: Mapped[str] = mapped_column(String(200))
    gpu_model: Mapped[str] = mapped_column(String(80), index=True)
    gpu_model_raw: Mapped[str] = mapped_column(String(200), default="")
    gpu_model_known: Mapped[bool] = mapped_column(Boolean, default=True)
    gpu_count: Mapped[int] = mapped_column(Integer)
    vram_gb: Mapped[float] = mapped_column(Float, default=0.0)
    vcpus: Mapped[float | None] = mapped_column(Float, nullable=True)
    ram_gb: Mapped[float | None] = mapped_column(Float, nullable=True)
    spot: Mapped[bool] = mapped_column(Boolean, default=False)
    price_per_hour: Mapped[float] = mapped_column(Float)
    price_per_gpu_hour: Mapped[float] = mapped_column(Float, index=True)
    capacity: Mapped[str] = mapped_column(String(20), default="unknown")
    available_instances: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reliability: Mapped[float | None] = mapped_column(Float, nullable=True)
    interruption_rate_per_hour: Mapped[float | None] = mapped_column(Float, nullable=True)
    observed_at: Mapped[datetime] = mapped_column(index=True)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class PriceSeries(Base):
    """The integer id of each offer's price time series (migration 0004). Ticks and hourly rows carry
    this id rather than the offer key: rows and index entries half as wide, integer comparisons in the
    primary key, which is what the bulk write path spends its time maintaining."""

    __tablename__ = "price_series"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    offer_key: Mapped[str] = mapped_column(String(32), unique=True)


class PriceTick(Base):
    """One observed price of one offer's series; a TimescaleDB hypertable on ``observed_at`` when
    available. The primary key (series_id, observed_at) serves every query (one offer over a time range)."""

    __tablename__ = "price_ticks"
    series_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    observed_at: Mapped[datetime] = mapped_column(primary_key=True)
    price_per_hour: Mapped[float] = mapped_column(Float)
    available_instances: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OptimizationRequest(Base):
    __tablename__ = "optimization_requests"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    request: Mapped[dict[str, Any]] = mapped_column()
    job_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    policy_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    created_by: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OptimizationResult(Base):
    __tablename__ = "optimization_results"
    optimization_id: Mapped[str] = mapped_column(
        ForeignKey("optimization_requests.id", ondelete="CASCADE"), primary_key=True
    )
    solver_status: Mapped[str] = mapped_column(String(20))
    cost_per_hour: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    solve_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    summary: Mapped[dict[str, Any]] = mapped_column()
    infeasibility_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    offers_considered: Mapped[int] = mapped_column(Integer, default=0)
    prices_as_of: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AllocationLine(Base):
    __tablename__ = "allocation_lines"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    optimization_id: Mapped[str] = mapped_column(
        ForeignKey("optimization_requests.id", ondelete="CASCADE"), index=True
    )
    workload_id: Mapped[str] = mapped_column(String(200))
    offer_key: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(40))
    seller: Mapped[str] = mapped_column(String(60), default="", server_default="")
    region: Mapped[str] = mapped_column(String(120))
    instance_type: Mapped[str] = mapped_column(String(200))
    gpu_model: Mapped[str] = mapped_column(String(80))
    instances: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer)
    hourly_cost: Mapped[float] = mapped_column(Float)
    spot: Mapped[bool] = mapped_column(Boolean)
    launch_success_probability: Mapped[float | None] = mapped_column(Float, nullable=True)


class JobRun(Base):
    __tablename__ = "job_runs"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    function: Mapped[str] = mapped_column(String(200))
    target_id: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)


class JobEvent(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_job_events_job_seq"),)


class Policy(Base):
    __tablename__ = "policies"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column()
    cron: Mapped[str | None] = mapped_column(String(120), nullable=True)
    interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keep_threshold_pct: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime] = mapped_column(index=True)
    current_optimization_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyRun(Base):
    __tablename__ = "policy_runs"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    optimization_id: Mapped[str] = mapped_column(ForeignKey("optimization_requests.id", ondelete="CASCADE"))
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    current_cost_per_hour: Mapped[float | None] = mapped_column(Float, nullable=True)
    new_cost_per_hour: Mapped[float | None] = mapped_column(Float, nullable=True)
    savings_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    organization_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(80))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderStatus(Base):
    """One row per pricing provider: its schedule and the outcome of its last refreshes."""

    __tablename__ = "provider_status"
    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(40), default="never_run")
    last_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    offers_count: Mapped[int] = mapped_column(Integer, default=0)
    last_duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    running_job_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PriceTickHourly(Base):
    """Hourly open/high/low/close per offer series (`PriceSeries`). A table maintained on ingest on SQLite and plain
    PostgreSQL; a TimescaleDB continuous aggregate (same name, same columns) when the extension is there."""

    __tablename__ = "price_ticks_hourly"
    series_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    open_at: Mapped[datetime] = mapped_column()
    close_at: Mapped[datetime] = mapped_column()
    ticks: Mapped[int] = mapped_column(Integer)


class PriceEvent(Base):
    """A change of an offer's current price, persisted before it is broadcast on the 'prices' channel."""

    __tablename__ = "price_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    offer_key: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(40))
    region: Mapped[str] = mapped_column(String(120))
    gpu_model: Mapped[str] = mapped_column(String(80))
    instance_type: Mapped[str] = mapped_column(String(200))
    spot: Mapped[bool] = mapped_column(Boolean)
    gpu_count: Mapped[int] = mapped_column(Integer)
    old_price_per_hour: Mapped[float | None] = mapped_column(Float, nullable=True)
    new_price_per_hour: Mapped[float] = mapped_column(Float)
    observed_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# ---------------------------------------------------------------- forecasts (migration 0003)

MARKET_SCOPE = "market"
"""``scope`` of market-data forecasts (prices), which belong to no organization."""


class ForecastModelVersion(Base):
    """One trained model version of one series, with its backtest metrics (champion/challenger)."""

    __tablename__ = "forecast_models"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(32))
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    series_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column()
    data_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    is_champion: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[str] = mapped_column(String(300), default="")
    __table_args__ = (Index("ix_forecast_models_series", "scope", "series_key", "is_champion"),)


class StoredForecast(Base):
    """A served forecast of one series: point, quantile paths, joint scenarios and its backtest summary."""

    __tablename__ = "forecasts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(32))
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    series_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    offer_key: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    workload_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    origin: Mapped[datetime] = mapped_column()
    step: Mapped[str] = mapped_column(String(16))
    horizon: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(40))
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    paths: Mapped[dict[str, Any]] = mapped_column()
    backtest: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    volatility: Mapped[float | None] = mapped_column(Float, nullable=True)
    data_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_version_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    __table_args__ = (
        UniqueConstraint("scope", "series_key", "origin", name="uq_forecasts_scope_series_origin"),
        Index("ix_forecasts_series_created", "scope", "series_key", "created_at"),
    )


class UsageHour(Base):
    """GPU-hours used in one hour by one workload of one organization (the demand history).

    ``gpus_at_end`` (GPUs running when the hour ended) and ``gpus_started`` (GPUs of the jobs
    started in it) are optional scheduler readings; the demand models that use them (last
    state, state + arrivals) compete only where they are reported.
    """

    __tablename__ = "usage_history"
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    workload_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    gpu_hours: Mapped[float] = mapped_column(Float)
    gpus_at_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpus_started: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(20), default="api")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DemandPolicy(Base):
    """Opt-in: a policy's scheduled runs take each workload's GPU requirement from its demand forecast."""

    __tablename__ = "demand_policies"
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    quantile: Mapped[float] = mapped_column(Float)
    horizon_hours: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ForecastSchedule(Base):
    """Next due time of each scheduled retraining task, claimed with a conditional update."""

    __tablename__ = "forecast_schedule"
    task: Mapped[str] = mapped_column(String(80), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column()
    last_job_id: Mapped[str | None] = mapped_column(ID, nullable=True)

