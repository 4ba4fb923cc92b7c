"""Optimizations: submit (202 + job id + WebSocket URL), list, read, allocations, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from cloudarb.api.deps import (
    CtxDep,
    Editor,
    IdempotencyDep,
    PageDep,
    Principal,
    SessionDep,
    Viewer,
    job_ws_url,
)
from cloudarb.context import Context
from cloudarb.db.models import OptimizationRequest
from cloudarb.errors import NotFound
from cloudarb.jobs import store as job_store
from cloudarb.jobs.enqueue import cancel_job
from cloudarb.optimize import store as opt_store
from cloudarb.optimize.original import AnyOptimizeRequest, to_current
from cloudarb.optimize.submit import Submitted, submit_optimization
from cloudarb.optimize.views import to_out
from cloudarb.schemas import (
    AllocationOut,
    JobAccepted,
    JobStatus,
    OptimizationOut,
    OptimizeRequest,
    Page,
    QuickOptimizeRequest,
)

router = APIRouter(prefix="/optimize", tags=["optimize"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


def accepted(request: Request, ctx: Context, done: Submitted) -> JobAccepted:
    return JobAccepted(
        id=done.optimization_id,
        job_id=done.job_id,
        status=done.status,
        websocket_url=job_ws_url(request, ctx, done.job_id),
        status_url=f"/optimize/{done.optimization_id}",
    )


def submit(
    request: Request, ctx: Context, principal: Principal, body: OptimizeRequest, idempotency: IdempotencyDep
) -> JSONResponse:
    done = submit_optimization(ctx, organization_id=principal.organization_id, request=body,
                               actor=principal.actor, idempotency=idempotency)
    headers = {"Location": f"/optimize/{done.optimization_id}"}
    if done.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(accepted(request, ctx, done).model_dump(), status_code=202, headers=headers)


@router.post("", operation_id="submit_optimization", status_code=202, response_model=JobAccepted)
def optimize(
    body: AnyOptimizeRequest, request: Request, ctx: CtxDep, principal: Editor, idempotency: IdempotencyDep
) -> JSONResponse:
    """Queue an optimization of the given workloads over the current offers.

    Takes today's request (``workloads``) or the original API's shape (``gpu_type``, ``min_count``,
    ``max_count``, ``objective`` minimize_cost/maximize_performance/balanced, ``constraints`` as a list
    of ``{name, type, operator, value}``, ``time_horizon_hours``), translated as README's "The original
    API" says. GPU names are resolved through the identity table; an unknown one is a 422 naming the
    field and the closest known names.
    """
    return submit(request, ctx, principal, to_current(body), idempotency)


@router.post("/", include_in_schema=False, status_code=202)
def optimize_slash(
    body: AnyOptimizeRequest, request: Request, ctx: CtxDep, principal: Editor, idempotency: IdempotencyDep
) -> JSONResponse:
    """``POST /optimize/``, as the original API's examples spell it."""
    return submit(request, ctx, principal, to_current(body), idempotency)


@router.post("/quick-optimize", operation_id="quick_optimize", status_code=202, response_model=JobAccepted)
def quick_optimize(
    body: QuickOptimizeRequest, request: Request, ctx: CtxDep, principal: Editor, idempotency: IdempotencyDep
) -> JSONResponse:
    """The shortest question: N GPUs of one type for one kind of workload, under a budget
    (``{"gpu_type": "a100", "gpu_count": 4, "workload_type": "training", "budget_per_hour": 50}``)."""
    return submit(request, ctx, principal, body.to_request(), idempotency)


@router.get("", operation_id="list_optimizations", response_model=Page[OptimizationOut])
def list_optimizations(
    principal: Viewer,
    session: SessionDep,
    page: PageDep,
    status: Annotated[JobStatus | None, Query()] = None,
) -> Page[OptimizationOut]:
    rows, total = opt_store.list_page(
        session, organization_id=principal.organization_id, status=status, limit=page.limit, offset=page.offset
    )
    return Page[OptimizationOut](
        items=[to_out(session, r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


def _owned(session: Any, principal: Principal, optimization_id: str) -> OptimizationRequest:
    opt = opt_store.get(session, organization_id=principal.organization_id, optimization_id=optimization_id)
    if opt is None:
        raise NotFound(f"optimization {optimization_id} not found")
    return opt


@router.get("/{optimization_id}", operation_id="get_optimization", response_model=OptimizationOut)
def get_optimization(optimization_id: IdPath, principal: Viewer, session: SessionDep) -> OptimizationOut:
    return to_out(session, _owned(session, principal, optimization_id))


@router.get("/{optimization_id}/allocations", operation_id="get_allocations", response_model=list[AllocationOut])
def get_allocations(optimization_id: IdPath, principal: Viewer, session: SessionDep) -> list[AllocationOut]:
    opt = _owned(session, principal, optimization_id)
    return [AllocationOut.model_validate(a, from_attributes=True)
            for a in opt_store.allocations(session, optimization_id=opt.id)]


@router.delete("/{optimization_id}", operation_id="cancel_optimization", response_model=OptimizationOut)
def cancel_optimization(
    optimization_id: IdPath, principal: Editor, ctx: CtxDep, session: SessionDep
) -> OptimizationOut:
    """Cancel a queued or running optimization (a finished one is left as it is)."""
    opt = _owned(session, principal, optimization_id)
    job = job_store.get_job(session, opt.job_id) if opt.job_id else None
    if job is not None and job.status in job_store.ACTIVE:
        cancel_job(ctx, job, actor=principal.actor)
    session.expire_all()
    return to_out(session, _owned(session, principal, optimization_id))
