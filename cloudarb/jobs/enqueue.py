"""Creating, queueing and cancelling jobs: the one submit sequence every feature uses.

A command runs in one transaction: the feature writes its own rows (a request, a policy run, an
idempotency record, an audit line) and the job rows with their stored 'queued' events through a
``Submission``; only after that transaction commits are the jobs broadcast and put on the queue. So a
worker never sees a job whose rows are not there yet, and a crash before the commit leaves nothing.
Imports no solver code: bodies are named by dotted path and loaded by the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloudarb.jobs import store
from cloudarb.jobs.runtime import broadcast, move, publish, status_payload
from cloudarb.storage import audit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cloudarb.context import Context
    from cloudarb.db.models import JobRun

log = logging.getLogger(__name__)


@dataclass
class Submission:
    """The open transaction of one command; ``job(...)`` adds a job that is queued after the commit."""

    ctx: Context
    session: Session
    _pending: list[tuple[JobRun, dict[str, Any]]] = field(default_factory=list)

    def job(
        self,
        *,
        organization_id: str,
        kind: str,
        function: str,
        target_id: str,
        message: str,
        max_attempts: int | None = None,
    ) -> JobRun:
        self.ctx.kinds[kind]  # an unknown kind fails here, before anything is stored
        job = store.create_job(
            self.session,
            organization_id=organization_id,
            kind=kind,
            function=function,
            target_id=target_id,
            max_attempts=max_attempts if max_attempts is not None else self.ctx.settings.job_max_attempts,
        )
        queued = store.append_event(self.session, job.id, "status", status_payload("queued", message))
        self._pending.append((job, queued))
        return job


@contextmanager
def submission(ctx: Context) -> Iterator[Submission]:
    """One command's transaction; its jobs are queued once it has committed."""
    with ctx.db.session() as session:
        sub = Submission(ctx, session)
        yield sub
    for job, queued in sub._pending:
        start(ctx, job, queued)


def enqueue(
    ctx: Context,
    *,
    organization_id: str,
    kind: str,
    function: str,
    target_id: str,
    message: str,
    max_attempts: int | None = None,
) -> JobRun:
    """Store one job (with its 'queued' event) and queue it: for commands that write nothing else."""
    with submission(ctx) as sub:
        job = sub.job(organization_id=organization_id, kind=kind, function=function, target_id=target_id,
                      message=message, max_attempts=max_attempts)
    return job


def start(ctx: Context, job: JobRun, queued_event: dict[str, Any]) -> JobRun:
    """Broadcast a new job's stored 'queued' event and enqueue it.

    The job is already accepted (its rows committed), so a broker that is down now does not fail it
    (the API process's rate limiter shares that broker, so an outage that begins before the request
    answers 503 and stores nothing; this is the outage that begins between the two). The job stays
    ``queued``, a stored progress event says it waits for the queue, and the queue pushes it as soon
    as the broker answers again (``enqueue_when_up``: within seconds, from this process); should
    this process die first, the reaper (``runtime.reap_waiting``) queues it after
    ``job_lost_after_s``. The attempt's queue id is fixed and the worker claims a job atomically, so
    it runs once however many of them pushed it; still queued after ``job_queued_max_s``, it fails
    with the reason. The caller gets its 202 and the job's id to follow."""
    broadcast(ctx, job.id, queued_event)
    try:
        ctx.queue.enqueue(job.id, job.function)
    except Exception:
        log.warning("the job queue is unavailable; the job is queued when it answers", extra={"job_id": job.id},
                    exc_info=True)
        ctx.queue.enqueue_when_up(job.id, job.function)
        try:
            publish(ctx, job.id, "progress", {"phase": "waiting_for_queue", "percent": None,
                                              "message": "the job queue is unavailable; the job starts once "
                                                         "it answers again"})
        except Exception:  # the job is accepted and will be queued; only its explanation is lost
            log.warning("could not record that the job waits for the queue", extra={"job_id": job.id},
                        exc_info=True)
    return job


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
