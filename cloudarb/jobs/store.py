"""Job runs and their events in the database: the source of truth for every status.

Status changes are conditional updates (``WHERE status IN ...``), so a late writer (a worker finishing
after a cancel, a reaper racing a heartbeat) can never overwrite a terminal status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudarb.db.models import JobEvent, JobRun
from cloudarb.db.types import utcnow
from cloudarb.jobs.kinds import JobKinds

STATUSES = ("queued", "running", "finished", "infeasible", "failed", "canceled")
TERMINAL_STATUSES = frozenset({"finished", "infeasible", "failed", "canceled"})
ACTIVE = ("queued", "running")


def create_job(
    session: Session, *, organization_id: str, kind: str, function: str, target_id: str, max_attempts: int
) -> JobRun:
    job = JobRun(
        organization_id=organization_id,
        kind=kind,
        function=function,
        target_id=target_id,
        max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: str, *, organization_id: str | None = None) -> JobRun | None:
    stmt = select(JobRun).where(JobRun.id == job_id)
    if organization_id is not None:
        stmt = stmt.where(JobRun.organization_id == organization_id)
    return session.scalars(stmt).first()


def list_jobs(
    session: Session, *, organization_id: str, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[Sequence[JobRun], int]:
    base = select(JobRun).where(JobRun.organization_id == organization_id)
    if status:
        base = base.where(JobRun.status == status)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(JobRun.created_at.desc()).limit(limit).offset(offset)).all()
    return rows, total


def transition(
    session: Session,
    job_id: str,
    *,
    to: str,
    when: Sequence[str],
    kinds: JobKinds,
    error: str | None = None,
    worker: str | None = None,
) -> bool:
    """Move a job to ``to`` if its status is one of ``when``; returns whether it moved.

    The job's target follows through its kind's hook in the same transaction."""
    now = utcnow()
    values: dict[str, Any] = {"status": to}
    if to == "running":
        values.update(started_at=now, heartbeat_at=now, attempts=JobRun.attempts + 1, worker=worker)
    if to == "queued":
        values["heartbeat_at"] = now  # back on the queue: the reaper measures its wait from here
    if to in TERMINAL_STATUSES:
        values["finished_at"] = now
    if error is not None:
        values["error"] = error[:4000]
    result = session.execute(
        update(JobRun).where(JobRun.id == job_id, JobRun.status.in_(list(when))).values(**values)
    )
    moved = bool(result.rowcount)  # type: ignore[attr-defined]
    if moved:
        job = session.get(JobRun, job_id)
        if job is not None:
            session.refresh(job)
            kinds.follow(session, job, to)
    return moved


def heartbeat(session: Session, job_id: str) -> bool:
    """Record that the job is alive; returns whether cancellation was requested."""
    session.execute(
        update(JobRun).where(JobRun.id == job_id, JobRun.status == "running").values(heartbeat_at=utcnow())
    )
    return cancel_requested(session, job_id)


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(JobRun.cancel_requested).where(JobRun.id == job_id)))


def request_cancel(session: Session, job_id: str) -> None:
    session.execute(update(JobRun).where(JobRun.id == job_id).values(cancel_requested=True))


def stale_running(session: Session, *, older_than: timedelta) -> Sequence[JobRun]:
    cutoff: datetime = utcnow() - older_than
    return session.scalars(
        select(JobRun).where(JobRun.status == "running", JobRun.heartbeat_at < cutoff)
    ).all()


def waiting_jobs(session: Session, *, older_than: timedelta, limit: int = 500) -> Sequence[JobRun]:
    """Jobs ``queued`` for longer than ``older_than``: since they were created, or since their last
    heartbeat for a job put back after a failed attempt (the moment it went back to the queue)."""
    cutoff: datetime = utcnow() - older_than
    since = func.coalesce(JobRun.heartbeat_at, JobRun.created_at)
    return session.scalars(
        select(JobRun).where(JobRun.status == "queued", since < cutoff).order_by(since).limit(limit)
    ).all()


def queued_since(job: JobRun) -> datetime:
    return job.heartbeat_at or job.created_at


def append_event(session: Session, job_id: str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Persist one event with the next sequence number and return it as sent to subscribers."""
    for _ in range(5):
        seq = (session.scalar(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)) or 0) + 1
        row = JobEvent(job_id=job_id, seq=seq, type=event_type, payload=payload)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue
        return event_dict(row)
    raise RuntimeError(f"could not append an event to job {job_id}")


def event_dict(row: JobEvent) -> dict[str, Any]:
    return {"job_id": row.job_id, "seq": row.seq, "type": row.type, "ts": row.created_at.isoformat(), **row.payload}


def events_after(session: Session, job_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after_seq).order_by(JobEvent.seq)
    ).all()
    return [event_dict(r) for r in rows]


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(JobRun.status, func.count()).group_by(JobRun.status)).all()
    counts = {s: 0 for s in STATUSES}
    counts.update({status: n for status, n in rows})
    return counts
