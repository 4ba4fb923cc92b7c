"""Submitting deployments and their teardown: shared by the API and the CLI. Imports no provider.

One transaction per command: the deployment row with its plan, the deploy job (with its 'queued'
event), the idempotency answer and the audit line; the job is queued after that commit. Admission
control runs inside the same transaction: a deployment whose committed spend to expiry exceeds what
is left of the organization's monthly budget is refused with the figures. A generated private key is
returned once in the submit answer and stored only encrypted (never in the idempotency record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudarb.db.models import Offer
from cloudarb.db.models_deploy import Deployment
from cloudarb.db.types import utcnow
from cloudarb.deploy import budgets, lifetime, secrets
from cloudarb.deploy.follow import DEPLOY_FUNCTION
from cloudarb.deploy.schemas import LaunchOptions, Plan, PlannedLine
from cloudarb.errors import Conflict, InvalidInput, NotFound
from cloudarb.jobs.enqueue import submission
from cloudarb.optimize import store as opt_store
from cloudarb.storage import audit
from cloudarb.storage.idempotency import Idempotency

if TYPE_CHECKING:
    from cloudarb.context import Context

TEARDOWN_FUNCTION = "cloudarb.deploy.jobs.teardown_body"
TEARDOWN_FUNCTIONS = {"terraform": "cloudarb.deploy.terraform_apply.teardown_job"}
"""A target whose instances are not rows the deploy core destroys (a Terraform stack) tears down its own way."""
KIND = "deploy"


@dataclass(frozen=True)
class DeployOrder:
    """What a deploy command asks, whatever face it came through."""

    lifetime_s: float
    override_max_lifetime: bool = False
    name: str = ""
    ssh_public_key: str | None = None
    launch: LaunchOptions = field(default_factory=LaunchOptions)
    per_line: dict[int, LaunchOptions] | None = None


@dataclass(frozen=True)
class Accepted:
    deployment_id: str
    job_id: str
    status: str
    private_key: str | None = None
    replayed: bool = False

    def answer(self) -> dict[str, Any]:
        return {"id": self.deployment_id, "job_id": self.job_id, "status": self.status}


def plan_from_optimization(session: Session, *, organization_id: str, optimization_id: str,
                           lines: list[int] | None, order: DeployOrder) -> Plan:
    opt = opt_store.get(session, organization_id=organization_id, optimization_id=optimization_id)
    if opt is None:
        raise NotFound(f"optimization {optimization_id} not found")
    if opt.status != "finished":
        raise Conflict(f"optimization {optimization_id} is {opt.status}; only a finished one can be deployed")
    allocations = list(opt_store.allocations(session, optimization_id=optimization_id))
    if not allocations:
        raise Conflict(f"optimization {optimization_id} allocated nothing")
    chosen = range(len(allocations)) if lines is None else lines
    planned = []
    for index in chosen:
        if not 0 <= index < len(allocations):
            raise InvalidInput(f"line {index} does not exist (the allocation has lines 0-{len(allocations) - 1})",
                               field="lines")
        a = allocations[index]
        offer = session.get(Offer, a.offer_key)
        per = max(1, a.gpus // max(1, a.instances))
        planned.append(PlannedLine(
            index=index, workload_id=a.workload_id, offer_key=a.offer_key, provider=a.provider, seller=a.seller,
            region=a.region, zone=offer.zone if offer is not None and offer.zone else None,
            instance_type=a.instance_type, gpu_model=a.gpu_model, gpus_per_instance=per, instances=a.instances,
            spot=a.spot, price_per_hour=a.hourly_cost / max(1, a.instances),
            launch=(order.per_line or {}).get(index, order.launch)))
    return Plan(lines=planned)


def plan_from_offer(session: Session, *, offer_key: str, instances: int, order: DeployOrder) -> Plan:
    offer = session.get(Offer, offer_key)
    if offer is None:
        raise NotFound(f"offer {offer_key} not found")
    return Plan(lines=[PlannedLine(
        index=0, workload_id="direct", offer_key=offer.offer_key, provider=offer.provider, seller=offer.seller or "",
        region=offer.region, zone=offer.zone or None, instance_type=offer.instance_type, gpu_model=offer.gpu_model,
        gpus_per_instance=offer.gpu_count, instances=instances, spot=offer.spot,
        price_per_hour=offer.price_per_hour, launch=order.launch)])


def submit_deployment(
    ctx: Context, *, organization_id: str, actor: str, order: DeployOrder, optimization_id: str | None = None,
    lines: list[int] | None = None, offer_key: str | None = None, instances: int = 1,
    idempotency: Idempotency | None = None,
) -> Accepted:
    """Store the deployment and its deploy job in one transaction, then queue the job."""
    payload = {"optimization_id": optimization_id, "lines": lines, "offer_key": offer_key, "instances": instances,
               "lifetime_s": order.lifetime_s, "override": order.override_max_lifetime, "name": order.name,
               "ssh_public_key": order.ssh_public_key, "launch": order.launch.model_dump(),
               "per_line": {k: v.model_dump() for k, v in (order.per_line or {}).items()}}
    replayed = _replay(ctx, idempotency, payload)
    if replayed is not None:
        return replayed
    settings = ctx.settings
    lifetime.check_lifetime(settings, order.lifetime_s, override=order.override_max_lifetime)
    now = utcnow()
    try:
        with submission(ctx) as sub:
            if optimization_id is not None:
                plan = plan_from_optimization(sub.session, organization_id=organization_id,
                                              optimization_id=optimization_id, lines=lines, order=order)
            elif offer_key is not None:
                plan = plan_from_offer(sub.session, offer_key=offer_key, instances=instances, order=order)
            else:
                raise InvalidInput("deploy an optimization or an offer", field="offer_key")
            rate = sum(ln.price_per_hour * ln.instances for ln in plan.lines)
            budgets.admit(sub.session, organization_id, new_spend=rate * order.lifetime_s / 3600.0, now=now)
            public, private = order.ssh_public_key, None
            if public is None:
                public, private = secrets.generate_ssh_key(f"cloudarb-deploy-{now:%Y%m%d%H%M%S}")
            dep = Deployment(
                organization_id=organization_id, optimization_id=optimization_id, name=order.name,
                status="pending", spec=plan.model_dump(mode="json"), lifetime_s=order.lifetime_s,
                max_lifetime_s=lifetime.max_lifetime_s(settings, override=order.override_max_lifetime),
                expires_at=now + timedelta(seconds=order.lifetime_s), created_by=actor, ssh_public_key=public,
                ssh_private_key_enc=secrets.encrypt(settings, private) if private else None,
                private_key_shown=private is not None, created_at=now, updated_at=now)
            sub.session.add(dep)
            sub.session.flush()
            job = sub.job(organization_id=organization_id, kind=KIND, function=DEPLOY_FUNCTION, target_id=dep.id,
                          message="waiting for a worker", max_attempts=settings.job_max_attempts)
            dep.job_id = job.id
            done = Accepted(dep.id, job.id, job.status, private_key=private)
            if idempotency is not None:
                idempotency.record(sub.session, payload, done.answer())
            audit.record(sub.session, organization_id=organization_id, actor=actor, action="deployment.create",
                         resource_type="deployment", resource_id=dep.id,
                         detail={"optimization_id": optimization_id, "offer_key": offer_key,
                                 "lines": [ln.index for ln in plan.lines], "rate_per_hour": rate})
    except IntegrityError:
        replayed = _replay(ctx, idempotency, payload)
        if replayed is not None:
            return replayed
        raise
    return done


def _replay(ctx: Context, idempotency: Idempotency | None, payload: object) -> Accepted | None:
    if idempotency is None:
        return None
    with ctx.db.session() as session:
        answer = idempotency.answer(session, payload)
    if answer is None:
        return None
    return Accepted(answer["id"], answer["job_id"], answer.get("status", "queued"), replayed=True)


def submit_teardown(ctx: Context, deployment: Deployment, *, actor: str, reason: str) -> str:
    """Mark the deployment ending and queue the job that destroys its instances with proof."""
    with submission(ctx) as sub:
        dep = sub.session.get(Deployment, deployment.id)
        assert dep is not None
        if dep.status == "ended":
            raise Conflict(f"deployment {dep.id} has ended already")
        dep.status, dep.end_reason, dep.updated_at = "ending", reason, utcnow()
        job = sub.job(organization_id=dep.organization_id, kind=KIND,
                      function=TEARDOWN_FUNCTIONS.get(dep.target, TEARDOWN_FUNCTION),
                      target_id=dep.id, message=f"tearing down: {reason}", max_attempts=10)
        dep.job_id = job.id
        audit.record(sub.session, organization_id=dep.organization_id, actor=actor, action="deployment.teardown",
                     resource_type="deployment", resource_id=dep.id, detail={"reason": reason})
    return job.id
