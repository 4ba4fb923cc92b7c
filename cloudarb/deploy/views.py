"""API and CLI shapes of deployments, instances, attempts, costs and budgets (separate from tables)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import Budget, DeployAlert, DeployAttempt, DeployInstance, Deployment
from cloudarb.db.models_nodes import Placement
from cloudarb.deploy import rates
from cloudarb.deploy.costs import deployment_cost
from cloudarb.deploy.metering import pauses_of
from cloudarb.deploy.schemas import LaunchOptions, Plan, PlannedLine

SshKey = Annotated[str, Field(min_length=20, max_length=8000, pattern=r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ \S+")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeployRequest(_In):
    """Deploy an optimization's allocation (all lines or some)."""

    lines: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, max_length=1000, description="Allocation line indexes to deploy; all when absent.")
    lifetime_hours: Annotated[float, Field(gt=0, le=24 * 365)] | None = Field(
        default=None, description="Hours until everything is destroyed (default CLOUDARB_DEPLOY_DEFAULT_LIFETIME_H).")
    override_max_lifetime: bool = Field(
        default=False, description="Allow a lifetime above the 12 h maximum (up to the override maximum).")
    name: Annotated[str, Field(max_length=200)] = ""
    ssh_public_key: SshKey | None = Field(default=None, description="Installed on every instance; when absent "
                                          "a key pair is generated and its private key returned once.")
    launch: LaunchOptions = Field(default_factory=LaunchOptions, description="Image, ports, environment per instance.")
    per_line: dict[int, LaunchOptions] = Field(default_factory=dict, max_length=1000,
                                              description="Launch options of single lines (by index).")


class OfferDeployRequest(_In):
    """Deploy one offer directly, as a GPU shopper would."""

    instances: Annotated[int, Field(ge=1, le=64)] = 1
    lifetime_hours: Annotated[float, Field(ge=1, le=24 * 365)] = Field(
        default=4.0, description="1-12 h; longer needs override_max_lifetime.")
    override_max_lifetime: bool = False
    name: Annotated[str, Field(max_length=200)] = ""
    ssh_public_key: SshKey | None = None
    launch: LaunchOptions = Field(default_factory=LaunchOptions)


class ExtendRequest(_In):
    hours: Annotated[float, Field(gt=0, le=24 * 365)] = Field(description="Hours to add to the expiry.")


class BudgetIn(_In):
    monthly_limit: Annotated[float, Field(ge=0, le=1e9)] = Field(description="USD per calendar month (UTC).")
    thresholds: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.8], max_length=10, description="Shares of the limit that raise an alert.")
    hard_stop: bool = Field(default=False, description="At 100%, tear down every deployment (verified destroys).")


class BudgetOut(BudgetIn):
    organization_id: str
    updated_at: datetime


class DeployAccepted(BaseModel):
    id: str = Field(description="The deployment id.")
    job_id: str
    status: str
    websocket_url: str
    status_url: str
    private_key: str | None = Field(default=None, description="The generated SSH private key: shown this once.")


class InstanceOut(BaseModel):
    id: str
    line: int
    replica: int
    attempt: int
    key: str
    provider: str
    offer_key: str
    region: str
    instance_type: str
    gpu_model: str
    gpu_count: int
    spot: bool
    price_per_hour: float
    reported_rate: float | None = Field(description="The hourly rate the provider reports, where it reports one "
                                        "(billing stays at price_per_hour, the launch price).")
    rate_mismatch: bool = Field(default=False, description="The reported rate differs from the launch price by "
                                "more than the tolerance (a rate_mismatch alert was raised).")
    state: str
    provider_id: str | None
    address: str | None
    ssh_port: int | None
    ssh_command: str | None = Field(description="How to connect (the generated key's file name is a suggestion).")
    expires_at: datetime | None
    state_at: datetime
    last_error: str | None
    end_reason: str | None
    destroy_attempts: int
    cost_so_far: float
    health: str | None = Field(default=None, description=(
        "A container on the team's own hosts (provider local): its health check's state as the node's agent "
        "last reported it (starting, healthy, unhealthy); None elsewhere, or while it does not run."))
    health_detail: str | None = Field(default=None, description="The last probe's outcome (a failure's reason).")
    healthy_since: datetime | None = None
    can_stop: bool = Field(default=False, description="The provider can stop and start this instance.")
    desired_state: str | None = Field(default=None, description="A stop or start asked and not yet verified "
                                      "by the provider's reported state (stopped, running).")
    paused_since: datetime | None = Field(default=None, description="Stopped, billing no compute, since then "
                                          "(where the provider bills none while stopped).")
    paused_seconds: float = Field(default=0.0, description="Seconds left out of billing while stopped so far.")


class AttemptOut(BaseModel):
    line: int
    replica: int
    attempt: int
    provider: str
    offer_key: str
    outcome: str
    reason: str
    at: datetime


class DeploymentOut(BaseModel):
    id: str
    name: str
    status: str
    optimization_id: str | None
    job_id: str | None
    created_at: datetime
    expires_at: datetime
    latest_expiry: datetime = Field(description="The maximum lifetime's end: extend stops here.")
    end_reason: str | None
    ssh_public_key: str | None
    lines: list[PlannedLine]
    instances: list[InstanceOut]
    attempts: list[AttemptOut]
    rate_per_hour: float = Field(description="USD per hour of the instances billed now.")
    cost_so_far: float
    target: str = Field(default="cloud", description=(
        "What makes the instances: 'cloud' (the providers' APIs), 'kubernetes' (server-side apply to the "
        "configured cluster: one instance per object, not metered unless asked) or 'terraform' (the "
        "organization's command hook: not metered, the resources are the Terraform configuration's)."))
    details: dict[str, Any] = Field(default_factory=dict, description=(
        "What the target reported: Kubernetes namespace and shared objects; Terraform working directory, "
        "each hook run (exit code, bounded output) and the outputs (addresses)."))


class DeploymentPage(BaseModel):
    items: list[DeploymentOut]
    total: int
    limit: int
    offset: int


class CostGroup(BaseModel):
    key: str
    amount: float
    billed_hours: float
    instances: int


class CostReport(BaseModel):
    by: str
    items: list[CostGroup]
    total: float


class AlertOut(BaseModel):
    id: int
    kind: str
    message: str
    details: dict[str, Any]
    created_at: datetime


def ssh_command(row: DeployInstance, deployment_id: str | None) -> str | None:
    if not row.address:
        return None
    port = f" -p {row.ssh_port}" if row.ssh_port and row.ssh_port != 22 else ""
    key = f" -i ~/.ssh/cloudarb-{deployment_id[:8]}" if deployment_id else ""
    return f"ssh{key}{port} {row.ssh_user}@{row.address}"


def to_out(session: Session, dep: Deployment, now: datetime) -> DeploymentOut:
    rows = list(session.scalars(select(DeployInstance).where(DeployInstance.deployment_id == dep.id)
                                .order_by(DeployInstance.line_index, DeployInstance.replica, DeployInstance.attempt)))
    attempts = session.scalars(select(DeployAttempt).where(DeployAttempt.deployment_id == dep.id)
                               .order_by(DeployAttempt.id))
    total, per = deployment_cost(session, dep.id, now)
    off = rates.mismatched(session, [r.id for r in rows])
    local = [r.key for r in rows if r.provider == "local"]
    health = {p.instance_key: p for p in session.scalars(
        select(Placement).where(Placement.instance_key.in_(local)))} if local else {}
    return DeploymentOut(
        id=dep.id, name=dep.name, status=dep.status, optimization_id=dep.optimization_id, job_id=dep.job_id,
        created_at=dep.created_at, expires_at=dep.expires_at,
        latest_expiry=dep.created_at + timedelta(seconds=dep.max_lifetime_s), end_reason=dep.end_reason,
        ssh_public_key=dep.ssh_public_key, lines=Plan.model_validate(dep.spec).lines,
        instances=[InstanceOut(
            id=r.id, line=r.line_index, replica=r.replica, attempt=r.attempt, key=r.key, provider=r.provider,
            offer_key=r.offer_key, region=r.region, instance_type=r.instance_type, gpu_model=r.gpu_model,
            gpu_count=r.gpu_count, spot=r.spot, price_per_hour=r.price_per_hour, reported_rate=r.reported_rate,
            rate_mismatch=r.id in off,
            state=r.state, provider_id=r.provider_id, address=r.address, ssh_port=r.ssh_port,
            ssh_command=ssh_command(r, dep.id), expires_at=r.expires_at, state_at=r.state_at,
            last_error=r.last_error, end_reason=r.end_reason, destroy_attempts=r.destroy_attempts,
            cost_so_far=round(per.get(r.id, 0.0), 6), **_health(health.get(r.key)), **_pause(r, now))
            for r in rows],
        attempts=[AttemptOut(line=a.line_index, replica=a.replica, attempt=a.attempt, provider=a.provider,
                             offer_key=a.offer_key, outcome=a.outcome, reason=a.reason, at=a.created_at)
                  for a in attempts],
        rate_per_hour=round(sum(r.price_per_hour for r in rows if r.billing_started_at is not None
                                and r.billing_stopped_at is None and r.paused_at is None), 6),
        cost_so_far=round(total, 6), target=dep.target or "cloud", details=dict(dep.details or {}),
    )


def _pause(r: DeployInstance, now: datetime) -> dict[str, Any]:
    """Stop/start figures of one instance: what is asked, since when it is paused, the time left out."""
    end = min(now, r.billing_stopped_at) if r.billing_stopped_at is not None else now
    paused = sum(((b or end) - a).total_seconds() for a, b in pauses_of(r) if (b or end) > a)
    return {"can_stop": r.can_stop, "desired_state": r.desired_state, "paused_since": r.paused_at,
            "paused_seconds": round(paused, 3)}


def _health(p: Placement | None) -> dict[str, Any]:
    if p is None:
        return {}
    return {"health": p.health, "health_detail": p.health_detail, "healthy_since": p.healthy_since}


def budget_out(row: Budget) -> BudgetOut:
    return BudgetOut(organization_id=row.organization_id, monthly_limit=row.monthly_limit,
                     thresholds=list(row.thresholds), hard_stop=row.hard_stop, updated_at=row.updated_at)


def alert_out(row: DeployAlert) -> AlertOut:
    return AlertOut(id=row.id, kind=row.kind, message=row.message, details=row.details, created_at=row.created_at)
