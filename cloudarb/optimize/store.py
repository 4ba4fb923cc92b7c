"""Optimization requests, their results and allocation lines (always scoped to one organization)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cloudarb.db.models import AllocationLine, JobRun, OptimizationRequest, OptimizationResult
from cloudarb.db.types import utcnow
from optimizer.schemas import Solution


def follow_job(session: Session, job: JobRun, status: str) -> None:
    """The status hook of optimize and policy-run jobs: the request shows its job's status."""
    session.execute(
        update(OptimizationRequest)
        .where(OptimizationRequest.id == job.target_id)
        .values(status=status, updated_at=utcnow())
    )


def get(session: Session, *, organization_id: str, optimization_id: str) -> OptimizationRequest | None:
    return session.scalars(
        select(OptimizationRequest).where(
            OptimizationRequest.id == optimization_id, OptimizationRequest.organization_id == organization_id
        )
    ).first()


def get_unscoped(session: Session, *, optimization_id: str) -> OptimizationRequest | None:
    """For jobs, which act on ids they were given by the system, not by a caller."""
    return session.get(OptimizationRequest, optimization_id)


def list_page(
    session: Session,
    *,
    organization_id: str,
    status: str | None = None,
    policy_id: str | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[OptimizationRequest], int]:
    stmt = select(OptimizationRequest).where(OptimizationRequest.organization_id == organization_id)
    if status:
        stmt = stmt.where(OptimizationRequest.status == status)
    if policy_id:
        stmt = stmt.where(OptimizationRequest.policy_id == policy_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(OptimizationRequest.created_at.desc(), OptimizationRequest.id).limit(limit).offset(offset)
    ).all()
    return rows, total


def result(session: Session, *, optimization_id: str) -> OptimizationResult | None:
    return session.get(OptimizationResult, optimization_id)


def allocations(session: Session, *, optimization_id: str) -> Sequence[AllocationLine]:
    return session.scalars(
        select(AllocationLine).where(AllocationLine.optimization_id == optimization_id).order_by(AllocationLine.id)
    ).all()


def store_solution(
    session: Session,
    *,
    optimization_id: str,
    solution: Solution,
    offers_considered: int,
    prices_as_of: Any,
    extra: dict[str, Any] | None = None,
) -> OptimizationResult:
    """Replace any earlier result of this optimization (a retried attempt) with this solution."""
    session.execute(delete(AllocationLine).where(AllocationLine.optimization_id == optimization_id))
    session.execute(delete(OptimizationResult).where(OptimizationResult.optimization_id == optimization_id))
    summary = solution.model_dump(mode="json", exclude={"allocations"})
    if extra:
        summary.update(extra)
    row = OptimizationResult(
        optimization_id=optimization_id,
        solver_status=solution.status,
        cost_per_hour=solution.totals.cost_per_hour if solution.totals else None,
        gpus=solution.totals.gpus if solution.totals else None,
        solve_seconds=solution.stats.solve_seconds,
        summary=summary,
        infeasibility_reason=solution.infeasibility_reason,
        offers_considered=offers_considered,
        prices_as_of=prices_as_of,
    )
    session.add(row)
    session.add_all(
        AllocationLine(
            optimization_id=optimization_id,
            workload_id=a.workload_id,
            offer_key=a.offer_id,
            provider=a.provider.partition(":")[0],
            seller=a.provider.partition(":")[2],
            region=a.region,
            instance_type=a.instance_type,
            gpu_model=a.gpu_model,
            instances=a.instances,
            gpus=a.gpus,
            hourly_cost=a.hourly_cost,
            spot=a.spot,
            launch_success_probability=a.launch_success_probability,
        )
        for a in solution.allocations
    )
    return row


def solve_seconds(session: Session) -> Sequence[float]:
    return session.scalars(select(OptimizationResult.solve_seconds)).all()
