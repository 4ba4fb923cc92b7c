"""Saved policies: an optimization request re-run on a cron or interval schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from croniter import croniter
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloudarb.api.deps import CtxDep, Editor, IdempotencyDep, PageDep, SessionDep, Viewer
from cloudarb.api.routes.optimize import accepted
from cloudarb.db.models import Policy
from cloudarb.errors import NotFound
from cloudarb.gpu_names import resolve_workloads
from cloudarb.optimize import policy_store
from cloudarb.optimize.submit import run_policy_now
from cloudarb.schemas import JobAccepted, OptimizeRequest
from cloudarb.storage import audit

router = APIRouter(prefix="/policies", tags=["policies"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    request: OptimizeRequest
    cron: Annotated[str, Field(max_length=120)] | None = Field(default=None, description="e.g. '*/15 * * * *'")
    interval_s: Annotated[int, Field(ge=10, le=30 * 86400)] | None = None
    keep_threshold_pct: Annotated[float, Field(ge=0, le=100)] | None = Field(
        default=None, description="Savings below this (percent) keep the current allocation."
    )
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, v: str | None) -> str | None:
        if v is not None and not croniter.is_valid(v):
            raise ValueError("not a valid cron expression")
        return v

    @model_validator(mode="after")
    def _one_schedule(self) -> PolicyIn:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give exactly one of cron or interval_s")
        return self


class PolicyPatch(BaseModel):
    """Fields to change; absent fields stay. ``enabled: false`` pauses, ``true`` resumes."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    request: OptimizeRequest | None = None
    cron: Annotated[str, Field(max_length=120)] | None = Field(
        default=None, description="A new cron schedule (replaces interval_s)."
    )
    interval_s: Annotated[int, Field(ge=10, le=30 * 86400)] | None = Field(
        default=None, description="A new interval in seconds (replaces cron)."
    )
    keep_threshold_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    enabled: bool | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, v: str | None) -> str | None:
        if v is not None and not croniter.is_valid(v):
            raise ValueError("not a valid cron expression")
        return v

    @model_validator(mode="after")
    def _one_schedule(self) -> PolicyPatch:
        if self.cron is not None and self.interval_s is not None:
            raise ValueError("give at most one of cron or interval_s")
        return self


class PolicyOut(BaseModel):
    id: str
    name: str
    request: dict[str, object]
    cron: str | None
    interval_s: int | None
    keep_threshold_pct: float
    enabled: bool
    next_run_at: datetime
    current_optimization_id: str | None
    created_at: datetime


class PolicyRunOut(BaseModel):
    id: str
    optimization_id: str
    decision: str | None
    current_cost_per_hour: float | None
    new_cost_per_hour: float | None
    savings_pct: float | None
    created_at: datetime


def _owned(session: SessionDep, org: str, policy_id: str) -> Policy:
    policy = policy_store.get(session, organization_id=org, policy_id=policy_id)
    if policy is None:
        raise NotFound(f"policy {policy_id} not found")
    return policy


@router.post("", operation_id="create_policy", response_model=PolicyOut, status_code=201)
def create_policy(body: PolicyIn, principal: Editor, ctx: CtxDep, session: SessionDep) -> PolicyOut:
    now = policy_store.now()
    policy = Policy(
        organization_id=principal.organization_id,
        name=body.name,
        request=body.request.model_copy(
            update={"workloads": resolve_workloads(body.request.workloads)}
        ).model_dump(mode="json"),
        cron=body.cron,
        interval_s=body.interval_s,
        keep_threshold_pct=(
            body.keep_threshold_pct if body.keep_threshold_pct is not None else ctx.settings.keep_current_threshold_pct
        ),
        enabled=body.enabled,
        next_run_at=policy_store.next_run(cron=body.cron, interval_s=body.interval_s, after=now),
    )
    session.add(policy)
    session.flush()
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor, action="policy.create",
                 resource_type="policy", resource_id=policy.id)
    return PolicyOut.model_validate(policy, from_attributes=True)


@router.get("", operation_id="list_policies", response_model=list[PolicyOut])
def list_policies(principal: Viewer, session: SessionDep, page: PageDep) -> list[PolicyOut]:
    rows = policy_store.list_all(session, organization_id=principal.organization_id, limit=page.limit,
                                 offset=page.offset)
    return [PolicyOut.model_validate(p, from_attributes=True) for p in rows]


@router.get("/{policy_id}", operation_id="get_policy", response_model=PolicyOut)
def get_policy(policy_id: IdPath, principal: Viewer, session: SessionDep) -> PolicyOut:
    return PolicyOut.model_validate(_owned(session, principal.organization_id, policy_id), from_attributes=True)


@router.patch("/{policy_id}", operation_id="update_policy", response_model=PolicyOut)
def update_policy(policy_id: IdPath, body: PolicyPatch, principal: Editor, session: SessionDep) -> PolicyOut:
    """Edit a policy, pause it (``enabled: false``) or resume it (``enabled: true``, next run from now)."""
    policy = _owned(session, principal.organization_id, policy_id)
    request = (
        body.request.model_copy(update={"workloads": resolve_workloads(body.request.workloads)}).model_dump(mode="json")
        if body.request is not None
        else None
    )
    was_enabled = policy.enabled
    policy_store.apply_changes(
        policy, now=policy_store.now(), name=body.name, request=request, cron=body.cron,
        interval_s=body.interval_s, keep_threshold_pct=body.keep_threshold_pct, enabled=body.enabled,
    )
    session.flush()
    action = "policy.update"
    if body.enabled is not None and body.enabled != was_enabled:
        action = "policy.resume" if body.enabled else "policy.pause"
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor, action=action,
                 resource_type="policy", resource_id=policy_id)
    return PolicyOut.model_validate(policy, from_attributes=True)


@router.delete("/{policy_id}", operation_id="delete_policy", status_code=204)
def delete_policy(policy_id: IdPath, principal: Editor, session: SessionDep) -> None:
    policy = _owned(session, principal.organization_id, policy_id)
    session.delete(policy)
    audit.record(session, organization_id=principal.organization_id, actor=principal.actor, action="policy.delete",
                 resource_type="policy", resource_id=policy_id)


@router.get("/{policy_id}/runs", operation_id="list_policy_runs", response_model=list[PolicyRunOut])
def list_runs(policy_id: IdPath, principal: Viewer, session: SessionDep, page: PageDep) -> list[PolicyRunOut]:
    _owned(session, principal.organization_id, policy_id)
    rows = policy_store.runs(session, organization_id=principal.organization_id, policy_id=policy_id,
                             limit=page.limit, offset=page.offset)
    return [PolicyRunOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/{policy_id}/run", operation_id="run_policy_now", response_model=JobAccepted, status_code=202)
def run_now(
    policy_id: IdPath,
    request: Request,
    principal: Editor,
    ctx: CtxDep,
    session: SessionDep,
    idempotency: IdempotencyDep,
) -> JobAccepted:
    """Run the policy now, outside its schedule (its schedule is unchanged)."""
    policy = _owned(session, principal.organization_id, policy_id)
    return accepted(request, ctx, run_policy_now(ctx, policy, actor=principal.actor, idempotency=idempotency))
