"""Requesting a Kubernetes deployment: the deployment row (target ``kubernetes``), the apply request and
its job in one transaction (imports no Kubernetes client).

The API and the CLI call this; the job (``cloudarb.deploy.k8s_apply.apply_job``) runs in a worker,
where the official client and the kubeconfig live. Refused up front when no kubeconfig is configured
or the optimization cannot be exported, so a caller never waits for a job that cannot work. The apply
request keeps its own row (``GET /kubernetes-applies/{id}``) under the deployment's id.

``target_deployment`` is shared with the Terraform target (``terraform_submit``): a deployment of an
optimization's lines whose instances are made by something other than a provider's API, with the
deploy stage's lifetime rules (default, 12 h maximum, override) and its audit line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlalchemy.orm import Session

from cloudarb.db.models import JobRun
from cloudarb.db.models_deploy import Deployment
from cloudarb.db.models_hooks import KubernetesApply
from cloudarb.db.types import utcnow
from cloudarb.deploy import budgets, lifetime
from cloudarb.deploy.export import load_plan
from cloudarb.deploy.submit import DeployOrder, plan_from_optimization
from cloudarb.errors import Conflict
from cloudarb.jobs.enqueue import submission
from cloudarb.storage import audit

if TYPE_CHECKING:
    from cloudarb.context import Context

APPLY_KIND = "k8s_apply"
APPLY_FUNCTION = "cloudarb.deploy.k8s_apply.apply_job"
NOT_METERED = ("the cluster is the team's own: CloudArb meters nothing for it (the lines' prices are "
               "kept for reference); set meter to charge them per second")


class KubernetesApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[int] | None = Field(default=None, max_length=10_000, description="Line numbers; default all.")
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    image: str = Field(default="nvidia/cuda:12.4.1-base-ubuntu22.04", min_length=1, max_length=500)
    command: list[str] | None = Field(default=None, min_length=1, max_length=64,
                                      description="Container command; default a GPU check (services stay up).")
    region_selector: bool = True
    provider_label: str | None = Field(default=None, pattern=r"^[A-Za-z0-9./_-]{1,253}$",
                                       description="The node label naming the provider (multi-provider clusters).")
    instance_type_selector: bool = False
    kueue_cluster_queue: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                                            max_length=63)
    lifetime_hours: float | None = Field(default=None, gt=0, le=24 * 365, description=(
        "Hours until the objects are deleted (default CLOUDARB_DEPLOY_DEFAULT_LIFETIME_H; 12 h at most "
        "without override_max_lifetime), as for any deployment."))
    override_max_lifetime: bool = False
    name: str = Field(default="", max_length=200)
    meter: bool = Field(default=False, description=(
        "Charge each workload object its line's price per second to the cost ledger (for clusters whose "
        "nodes are rented per use). Default: nothing is metered, the cluster is the team's."))


@dataclass(frozen=True)
class ApplySubmitted:
    apply_id: str
    job_id: str
    status: str

    @property
    def deployment_id(self) -> str:
        return self.apply_id


def follow_job(session: Session, job: JobRun, status: str) -> None:
    """The status hook of ``k8s_apply`` jobs: the apply request shows its job's status, and a job that
    failed or was canceled before the deployment settled leaves the deployment ``failed``."""
    row = session.get(KubernetesApply, job.target_id)
    if row is not None:
        row.status = status
        if status == "failed":
            row.error = row.error or job.error
    if status in ("failed", "canceled"):
        session.execute(update(Deployment).where(
            Deployment.id == job.target_id, Deployment.status.in_(("pending", "deploying"))
        ).values(status="failed", end_reason=f"apply job {status}" + (f": {job.error}" if job.error else ""),
                 updated_at=utcnow()))


def target_deployment(
    ctx: Context, session: Session, *, organization_id: str, optimization_id: str, lines: list[int] | None,
    target: str, lifetime_hours: float | None, override: bool, name: str, actor: str,
    details: dict[str, Any], admit: bool,
) -> Deployment:
    """A deployment row of ``target`` for the optimization's lines (flushed, not committed). With
    ``admit`` the lines' spend until expiry must fit the organization's remaining monthly budget."""
    settings = ctx.settings
    lifetime_s = (lifetime_hours or settings.deploy_default_lifetime_h) * 3600.0
    lifetime.check_lifetime(settings, lifetime_s, override=override)
    order = DeployOrder(lifetime_s=lifetime_s, override_max_lifetime=override, name=name)
    plan = plan_from_optimization(session, organization_id=organization_id, optimization_id=optimization_id,
                                  lines=lines, order=order)
    now = utcnow()
    if admit:
        rate = sum(ln.price_per_hour * ln.instances for ln in plan.lines)
        budgets.admit(session, organization_id, new_spend=rate * lifetime_s / 3600.0, now=now)
    dep = Deployment(
        organization_id=organization_id, optimization_id=optimization_id, name=name, status="pending",
        spec=plan.model_dump(mode="json"), lifetime_s=lifetime_s,
        max_lifetime_s=lifetime.max_lifetime_s(settings, override=override),
        expires_at=now + timedelta(seconds=lifetime_s), created_by=actor, target=target, details=details,
        created_at=now, updated_at=now)
    session.add(dep)
    session.flush()
    audit.record(session, organization_id=organization_id, actor=actor, action="deployment.create",
                 resource_type="deployment", resource_id=dep.id,
                 detail={"optimization_id": optimization_id, "target": target,
                         "lines": [ln.index for ln in plan.lines]})
    return dep


def submit_apply(
    ctx: Context, *, organization_id: str, optimization_id: str, body: KubernetesApplyRequest, actor: str
) -> ApplySubmitted:
    with submission(ctx) as sub:
        # ownership first: another organization's optimization is 'not found', whatever is configured
        load_plan(sub.session, organization_id=organization_id, optimization_id=optimization_id, lines=body.lines)
        if ctx.settings.deploy_kubeconfig is None:
            raise Conflict("no cluster is configured: set CLOUDARB_DEPLOY_KUBECONFIG on the workers and the API "
                           "(or export the manifests and apply them yourself)")
        dep = target_deployment(
            ctx, sub.session, organization_id=organization_id, optimization_id=optimization_id, lines=body.lines,
            target="kubernetes", lifetime_hours=body.lifetime_hours, override=body.override_max_lifetime,
            name=body.name, actor=actor, admit=body.meter,
            details={"namespace": body.namespace, "context": ctx.settings.deploy_kube_context,
                     "metering": "lines' prices metered per second" if body.meter else NOT_METERED})
        row = KubernetesApply(id=dep.id, organization_id=organization_id, optimization_id=optimization_id,
                              lines=body.lines, options=body.model_dump(exclude={"lines"}), status="queued",
                              created_by=actor, applied=[])
        sub.session.add(row)
        sub.session.flush()
        job = sub.job(organization_id=organization_id, kind=APPLY_KIND, function=APPLY_FUNCTION, target_id=dep.id,
                      message="waiting for a worker", max_attempts=ctx.settings.job_max_attempts)
        row.job_id = dep.job_id = job.id
        audit.record(sub.session, organization_id=organization_id, actor=actor, action="kubernetes.apply",
                     resource_type="optimization", resource_id=optimization_id, detail={"apply_id": row.id})
        done = ApplySubmitted(row.id, job.id, job.status)
    return done
