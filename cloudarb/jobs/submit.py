"""Creating and cancelling jobs: shared by the API, the CLI and the scheduler.

Imports no solver code: bodies are named by dotted path and loaded by the worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from cloudarb.context import Context
from cloudarb.db.models import JobRun, OptimizationRequest
from cloudarb.jobs import store
from cloudarb.jobs.runtime import broadcast, move, status_payload
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage import audit, idempotency
from cloudarb.storage import optimizations as opt_store

log = logging.getLogger(__name__)


class IdempotencyMismatch(Exception):
    """The key was used before with a different request body."""


class QueueUnavailable(Exception):
    """The job was stored but could not be queued; it is marked failed."""


@dataclass(frozen=True)
class Submitted:
    optimization: OptimizationRequest
    job: JobRun
    replayed: dict[str, Any] | None = None


def submit_optimization(
    ctx: Context,
    *,
    organization_id: str,
    request: OptimizeRequest,
    actor: str,
    policy_id: str | None = None,
    function: str = opt_store.OPTIMIZE_FUNCTION,
    kind: str = "optimize",
    idempotency_key: str | None = None,
    render: Any = None,
) -> Submitted:
    """Store the request and its job (one transaction), then enqueue it by id.

    With an idempotency key, ``render(opt, job)`` gives the response to store; a repeat of the same
    key and body returns that stored response in ``replayed`` and creates nothing.
    """
    payload = request.model_dump(mode="json")
    digest = idempotency.fingerprint(payload)
    if idempotency_key:
        replay = _replay(ctx, organization_id, idempotency_key, digest)
        if replay is not None:
            return replay
    try:
        with ctx.db.session() as session:
            opt, job = opt_store.create(
                session,
                organization_id=organization_id,
                request=payload,
                name=request.name,
                created_by=actor,
                max_attempts=ctx.settings.job_max_attempts,
                policy_id=policy_id,
                function=function,
                kind=kind,
            )
            if idempotency_key:
                idempotency.save(
                    session,
                    organization_id=organization_id,
                    key=idempotency_key,
                    request_hash=digest,
                    status_code=202,
                    response=render(opt, job) if render else {"id": opt.id, "job_id": job.id},
                )
            queued = store.append_event(session, job.id, "status", status_payload("queued", "waiting for a worker"))
            audit.record(
                session,
                organization_id=organization_id,
                actor=actor,
                action="optimization.create",
                resource_type="optimization",
                resource_id=opt.id,
                detail={"workloads": len(request.workloads), "policy_id": policy_id},
            )
    except IntegrityError:
        if idempotency_key:
            replay = _replay(ctx, organization_id, idempotency_key, digest)
            if replay is not None:
                return replay
        raise
    start(ctx, job, queued)
    return Submitted(opt, job)


def start(ctx: Context, job: JobRun, queued_event: dict[str, Any]) -> JobRun:
    """Broadcast a new job's stored 'queued' event and enqueue it; a queue failure fails the job."""
    broadcast(ctx, job.id, queued_event)
    try:
        ctx.queue.enqueue(job.id, job.function)
    except Exception as exc:
        move(ctx, job.id, to="failed", when=("queued",), message="the job queue is unavailable",
             error=f"queue unavailable: {exc}")
        raise QueueUnavailable(str(exc)) from exc
    return job


def _replay(ctx: Context, organization_id: str, key: str, digest: str) -> Submitted | None:
    with ctx.db.session() as session:
        row = idempotency.lookup(session, organization_id=organization_id, key=key)
        if row is None:
            return None
        if row.request_hash != digest:
            raise IdempotencyMismatch(key)
        opt = opt_store.get(session, organization_id=organization_id, optimization_id=row.response["id"])
        job = store.get_job(session, row.response["job_id"])
        if opt is None or job is None:
            return None
        return Submitted(opt, job, replayed=row.response)


def cancel_job(ctx: Context, job: JobRun, *, actor: str) -> bool:
    """Cancel a queued or running job; returns False if it had already ended."""
    with ctx.db.session() as session:
        store.request_cancel(session, job.id)
        audit.record(
            session,
            organization_id=job.organization_id,
            actor=actor,
            action="job.cancel",
            resource_type="job",
            resource_id=job.id,
        )
    if move(ctx, job.id, to="canceled", when=("queued",), message=f"canceled by {actor} before it started"):
        return True
    try:
        ctx.queue.stop(job.id)
    except Exception:
        log.warning("hard stop failed; the job will stop at its next check", exc_info=True)
    if move(ctx, job.id, to="canceled", when=("running",), message=f"canceled by {actor} while running"):
        return True
    with ctx.db.session() as session:  # the job may have seen the flag and stopped itself first
        current = store.get_job(session, job.id)
        return current is not None and current.status == "canceled"
