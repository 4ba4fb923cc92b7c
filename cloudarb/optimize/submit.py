"""Submitting optimizations and policy runs: shared by the API, the CLI and the scheduler.

One transaction per command: the request row, its job (with the stored 'queued' event), the policy
run row for a policy's run, the idempotency answer and the audit line; the job is queued only after
that commit (``cloudarb.jobs.enqueue``). So a policy run that finishes at once still finds its run
row and records its decision. Imports no solver code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from cloudarb.db.models import OptimizationRequest, Policy, PolicyRun
from cloudarb.gpu_names import resolve_workloads
from cloudarb.jobs.enqueue import submission
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage import audit
from cloudarb.storage.idempotency import Idempotency

if TYPE_CHECKING:
    from cloudarb.context import Context

OPTIMIZE_FUNCTION = "cloudarb.optimize.jobs.body"
POLICY_FUNCTION = "cloudarb.optimize.policy_runs.body"


@dataclass(frozen=True)
class Submitted:
    """What a submit answers: the optimization and its job, and whether this is a replayed answer."""

    optimization_id: str
    job_id: str
    status: str
    replayed: bool = False

    def answer(self) -> dict[str, str]:
        return {"id": self.optimization_id, "job_id": self.job_id, "status": self.status}


def _replay(ctx: Context, idempotency: Idempotency | None, payload: object) -> Submitted | None:
    if idempotency is None:
        return None
    with ctx.db.session() as session:
        answer = idempotency.answer(session, payload)
    if answer is None:
        return None
    return Submitted(answer["id"], answer["job_id"], answer.get("status", "queued"), replayed=True)


def submit_optimization(
    ctx: Context,
    *,
    organization_id: str,
    request: OptimizeRequest,
    actor: str,
    policy: Policy | None = None,
    idempotency: Idempotency | None = None,
) -> Submitted:
    """Store the request, its job (and a policy's run row) in one transaction, then queue the job.

    With an idempotency key, a repeat of the same key and body answers what the first did and
    creates nothing; the same key with another body raises ``IdempotencyMismatch``. GPU names are
    resolved through the identity table first (``UnknownGpu``, a 422, names the field otherwise), so
    the stored request holds canonical models.
    """
    request = request.model_copy(update={"workloads": resolve_workloads(request.workloads)})
    payload = request.model_dump(mode="json")
    replayed = _replay(ctx, idempotency, payload)
    if replayed is not None:
        return replayed
    try:
        with submission(ctx) as sub:
            opt = OptimizationRequest(organization_id=organization_id, request=payload, name=request.name,
                                      created_by=actor, policy_id=policy.id if policy else None)
            sub.session.add(opt)
            sub.session.flush()
            job = sub.job(
                organization_id=organization_id,
                kind="policy_run" if policy else "optimize",
                function=POLICY_FUNCTION if policy else OPTIMIZE_FUNCTION,
                target_id=opt.id,
                message="waiting for a worker",
            )
            opt.job_id = job.id
            if policy is not None:
                sub.session.add(PolicyRun(policy_id=policy.id, organization_id=organization_id,
                                          optimization_id=opt.id))
            done = Submitted(opt.id, job.id, job.status)
            if idempotency is not None:
                idempotency.record(sub.session, payload, done.answer())
            audit.record(
                sub.session,
                organization_id=organization_id,
                actor=actor,
                action="optimization.create",
                resource_type="optimization",
                resource_id=opt.id,
                detail={"workloads": len(request.workloads), "policy_id": policy.id if policy else None},
            )
    except IntegrityError:
        replayed = _replay(ctx, idempotency, payload)  # a twin with the same key committed first
        if replayed is not None:
            return replayed
        raise
    return done


def run_policy_now(
    ctx: Context, policy: Policy, *, actor: str, idempotency: Idempotency | None = None
) -> Submitted:
    """Start one run of a policy (its schedule is unchanged); a run-now key is scoped to the policy."""
    request = OptimizeRequest.model_validate(policy.request)
    scoped = idempotency.scoped(f"policy-run:{policy.id}") if idempotency is not None else None
    return submit_optimization(ctx, organization_id=policy.organization_id, request=request, actor=actor,
                               policy=policy, idempotency=scoped)
