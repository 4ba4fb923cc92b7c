"""How a deployment follows its deploy job (the job kind's one status hook): a deploy job that fails
or is canceled before the deployment settled leaves it ``failed`` (its rows stay; the reconciler
and the sweep take care of anything they name). Teardown jobs need no hook: an ``ending``
deployment whose job ended is picked up again by the sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import update

from cloudarb.db.models_deploy import Deployment
from cloudarb.db.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cloudarb.db.models import JobRun

DEPLOY_FUNCTION = "cloudarb.deploy.jobs.deploy_body"
DEPLOY_FUNCTIONS = (DEPLOY_FUNCTION, "cloudarb.deploy.terraform_apply.apply_job")


def follow_job(session: Session, job: JobRun, status: str) -> None:
    if job.function not in DEPLOY_FUNCTIONS or status not in ("failed", "canceled"):
        return
    session.execute(update(Deployment).where(
        Deployment.id == job.target_id, Deployment.status.in_(("pending", "deploying"))
    ).values(status="failed", end_reason=f"deploy job {status}", updated_at=utcnow()))
