"""Requesting a Kubernetes apply: a row and its job in one transaction (imports no Kubernetes client).

The API and the CLI call this; the job (``cloudarb.deploy.k8s_apply.apply_job``) runs in a worker,
where the official client and the kubeconfig live. Refused up front when no kubeconfig is configured
or the optimization cannot be exported, so a caller never waits for a job that cannot work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from cloudarb.db.models import JobRun
from cloudarb.db.models_hooks import KubernetesApply
from cloudarb.deploy.export import load_plan
from cloudarb.errors import Conflict
from cloudarb.jobs.enqueue import submission
from cloudarb.storage import audit

if TYPE_CHECKING:
    from cloudarb.context import Context

APPLY_KIND = "k8s_apply"
APPLY_FUNCTION = "cloudarb.deploy.k8s_apply.apply_job"


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


@dataclass(frozen=True)
class ApplySubmitted:
    apply_id: str
    job_id: str
    status: str


def follow_job(session: Session, job: JobRun, status: str) -> None:
    """The status hook of ``k8s_apply`` jobs: the apply request shows its job's status."""
    row = session.get(KubernetesApply, job.target_id)
    if row is not None:
        row.status = status
        if status == "failed":
            row.error = row.error or job.error


def submit_apply(
    ctx: Context, *, organization_id: str, optimization_id: str, body: KubernetesApplyRequest, actor: str
) -> ApplySubmitted:
    with submission(ctx) as sub:
        # ownership first: another organization's optimization is 'not found', whatever is configured
        load_plan(sub.session, organization_id=organization_id, optimization_id=optimization_id, lines=body.lines)
        if ctx.settings.deploy_kubeconfig is None:
            raise Conflict("no cluster is configured: set CLOUDARB_DEPLOY_KUBECONFIG on the workers and the API "
                           "(or export the manifests and apply them yourself)")
        row = KubernetesApply(organization_id=organization_id, optimization_id=optimization_id, lines=body.lines,
                              options=body.model_dump(exclude={"lines"}), status="queued", created_by=actor,
                              applied=[])
        sub.session.add(row)
        sub.session.flush()
        job = sub.job(organization_id=organization_id, kind=APPLY_KIND, function=APPLY_FUNCTION, target_id=row.id,
                      message="waiting for a worker")
        row.job_id = job.id
        audit.record(sub.session, organization_id=organization_id, actor=actor, action="kubernetes.apply",
                     resource_type="optimization", resource_id=optimization_id, detail={"apply_id": row.id})
        done = ApplySubmitted(row.id, job.id, job.status)
    return done
