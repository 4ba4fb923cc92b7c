"""Extending a deployment: the new expiry and, for a Kubernetes deployment, the job that writes it on
the cluster's objects, in one transaction (imports no Kubernetes client, so the API can use it).

The database is the source of truth: the sweep destroys at the stored ``expires_at`` whatever the
cluster says. The ``cloudarb.io/expires-at`` annotation is what people and the cluster's own tools
read, so an extension that left it behind would announce a deletion that no longer comes. The job
(``cloudarb.deploy.k8s_apply.expiry_job``) reads the deployment's expiry when it runs, so two quick
extensions both end with the later value on the objects; a patch that fails is a step of the job and
an alert, and never takes the extension back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cloudarb.db.models_deploy import Deployment
from cloudarb.db.types import utcnow
from cloudarb.deploy import lifetime
from cloudarb.errors import NotFound
from cloudarb.jobs.enqueue import submission
from cloudarb.storage import audit

if TYPE_CHECKING:
    from cloudarb.context import Context

EXPIRY_KIND = "deploy"
EXPIRY_FUNCTION = "cloudarb.deploy.k8s_apply.expiry_job"
SETTLING = ("pending", "deploying")


@dataclass(frozen=True)
class Extended:
    expires_at: datetime
    job_id: str | None
    """The job writing the new expiry on the cluster (Kubernetes deployments only)."""


def extend(ctx: Context, *, organization_id: str, deployment_id: str, by_s: float, actor: str) -> Extended:
    """Move the expiry by ``by_s`` (``lifetime.extend``'s rules and refusals), audited; a Kubernetes
    deployment also gets the job that annotates its objects, queued once this commits. The job becomes
    the deployment's current job (its stream) unless the apply job is still settling it."""
    with submission(ctx) as sub:
        dep = sub.session.get(Deployment, deployment_id, with_for_update=True)
        if dep is None or dep.organization_id != organization_id:
            raise NotFound(f"deployment {deployment_id} not found")
        new = lifetime.extend(sub.session, dep, by_s=by_s, now=utcnow())
        audit.record(sub.session, organization_id=organization_id, actor=actor, action="deployment.extend",
                     resource_type="deployment", resource_id=dep.id, detail={"hours": round(by_s / 3600, 6)})
        job_id = None
        if dep.target == "kubernetes":
            job = sub.job(organization_id=organization_id, kind=EXPIRY_KIND, function=EXPIRY_FUNCTION,
                          target_id=dep.id, message="write the new expiry on the cluster's objects",
                          max_attempts=ctx.settings.job_max_attempts)
            job_id = job.id
            if dep.status not in SETTLING:
                dep.job_id = job.id
    return Extended(new, job_id)
