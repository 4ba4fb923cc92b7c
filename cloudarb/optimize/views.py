"""Read models assembled from several tables, shared by the API and the CLI."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cloudarb.db.models import OptimizationRequest
from cloudarb.jobs import store as job_store
from cloudarb.optimize import store as opt_store
from cloudarb.schemas import OptimizationOut, OptimizationResultOut


def to_out(session: Session, opt: OptimizationRequest) -> OptimizationOut:
    res = opt_store.result(session, optimization_id=opt.id)
    job = job_store.get_job(session, opt.job_id) if opt.job_id else None
    result = None
    if res is not None:
        fields = {k: v for k, v in res.summary.items() if k in OptimizationResultOut.model_fields}
        result = OptimizationResultOut.model_validate(
            {**fields, "cost_per_hour": res.cost_per_hour, "offers_considered": res.offers_considered,
             "prices_as_of": res.prices_as_of}
        )
    return OptimizationOut(
        id=opt.id,
        name=opt.name,
        status=opt.status,
        job_id=opt.job_id,
        policy_id=opt.policy_id,
        created_at=opt.created_at,
        updated_at=opt.updated_at,
        request=opt.request,
        result=result,
        error=job.error if job is not None and opt.status == "failed" else None,
    )
