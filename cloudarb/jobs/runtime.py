"""The one code path every job runs through, in a RQ worker or in the embedded thread pool.

``execute`` claims the job (queued -> running, atomically), keeps a heartbeat, runs the body, and
records the outcome with a terminal event. Transient failures are re-enqueued with backoff up to the
job's ``max_attempts``; a worker that dies leaves a silent heartbeat that ``reap_stale`` turns into a
retry or a failure, so no job stays ``running`` forever.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError

from cloudarb import logs, telemetry
from cloudarb.db.types import utcnow
from cloudarb.jobs import store
from cloudarb.jobs.errors import JobCanceled, JobInputError, JobTimedOut, TransientJobError
from cloudarb.jobs.store import TERMINAL_STATUSES

if TYPE_CHECKING:
    from cloudarb.context import Context
    from cloudarb.db.models import JobRun

log = logging.getLogger(__name__)

JobBody = Callable[["JobContext"], str]


class JobContext:
    """What a job body sees: its row, the application context, progress and cancellation."""

    def __init__(self, ctx: Context, job: JobRun) -> None:
        self.ctx = ctx
        self.job = job
        self.job_id = job.id
        self.target_id = job.target_id
        self._cancel = threading.Event()
        self._last_poll = 0.0
        self._deadline = time.monotonic() + ctx.settings.job_timeout_s

    @property
    def canceled(self) -> bool:
        return self._cancel.is_set()

    def check_canceled(self) -> None:
        """Raise ``JobCanceled`` if a cancel was requested (reads the flag at most twice a second), or
        ``JobTimedOut`` past the job timeout (RQ also enforces it by killing the work horse)."""
        now = time.monotonic()
        if now > self._deadline:
            raise JobTimedOut(f"the job ran longer than its {self.ctx.settings.job_timeout_s}s timeout")
        if not self._cancel.is_set() and now - self._last_poll >= 0.5:
            self._last_poll = now
            with self.ctx.db.session() as session:
                if store.cancel_requested(session, self.job_id):
                    self._cancel.set()
        if self._cancel.is_set():
            raise JobCanceled(self.job_id)

    def progress(self, phase: str, *, percent: float | None = None, message: str = "", **extra: Any) -> None:
        payload = {"phase": phase, "percent": percent, "message": message}
        payload.update({k: v for k, v in extra.items() if v is not None})
        publish(self.ctx, self.job_id, "progress", payload)


def broadcast(ctx: Context, job_id: str, event: dict[str, Any]) -> None:
    try:
        ctx.bus.publish(job_id, event)
    except Exception:  # the event is stored; subscribers poll the database when live delivery fails
        log.warning("event broadcast failed", extra={"job_id": job_id}, exc_info=True)


def publish(ctx: Context, job_id: str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Persist an event, then broadcast it (a late subscriber replays it from the database)."""
    with ctx.db.session() as session:
        event = store.append_event(session, job_id, event_type, payload)
    broadcast(ctx, job_id, event)
    return event


def status_payload(status: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {"status": status, "message": message, "terminal": status in TERMINAL_STATUSES, **extra}


def move(
    ctx: Context,
    job_id: str,
    *,
    to: str,
    when: tuple[str, ...],
    message: str = "",
    error: str | None = None,
    worker: str | None = None,
    **extra: Any,
) -> bool:
    """Change a job's status and record its status event in one transaction, then broadcast it.

    A status and its event can never disagree, even if the process dies right after the commit.
    """
    with ctx.db.session() as session:
        if not store.transition(session, job_id, to=to, when=when, kinds=ctx.kinds, error=error, worker=worker):
            return False
        event = store.append_event(session, job_id, "status", status_payload(to, message, **extra))
    broadcast(ctx, job_id, event)
    return True


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


class _Heartbeat(threading.Thread):
    def __init__(self, jc: JobContext, interval: float) -> None:
        super().__init__(name=f"heartbeat-{jc.job_id}", daemon=True)
        self.jc = jc
        self.interval = interval
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                with self.jc.ctx.db.session() as session:
                    if store.heartbeat(session, self.jc.job_id):
                        self.jc._cancel.set()
            except Exception:
                log.warning("heartbeat failed", extra={"job_id": self.jc.job_id}, exc_info=True)


def load_body(function: str) -> JobBody:
    module_name, _, attr = function.rpartition(".")
    body = getattr(importlib.import_module(module_name), attr)
    return body  # type: ignore[no-any-return]


def execute(job_id: str, ctx: Context) -> str | None:
    """Run one attempt of a job; returns its terminal status, or None if it was not runnable.

    The caller gives the context: the in-process queue its own, an RQ work horse the one its worker
    process built before forking (``cloudarb.worker``)."""
    if not move(ctx, job_id, to="running", when=("queued",), worker=_worker_name()):
        return None
    with ctx.db.session() as session:
        job = store.get_job(session, job_id)
    if job is None:
        return None
    jc = JobContext(ctx, job)
    started = time.monotonic()
    with logs.bound(job=job_id):
        beat = _Heartbeat(jc, ctx.settings.job_heartbeat_s)
        beat.start()
        try:
            status, message = _run_body(jc)
        finally:
            beat.stop.set()
        if status == "retry":
            final = _retry(ctx, job, message)
            telemetry.job_ended(job.kind, "retried" if final == "queued" else final, time.monotonic() - started)
            return final
        move(ctx, job_id, to=status, when=("running",), message=message,
             error=message if status == "failed" else None)
        telemetry.job_ended(job.kind, status, time.monotonic() - started)
        return status


def _run_body(jc: JobContext) -> tuple[str, str]:
    try:
        jc.check_canceled()
        body = load_body(jc.job.function)
        return body(jc), ""
    except JobCanceled:
        return "canceled", "canceled on request"
    except (JobInputError, JobTimedOut) as exc:
        return "failed", str(exc)
    except (TransientJobError, OperationalError) as exc:
        log.warning("transient job failure", extra={"job_id": jc.job_id}, exc_info=True)
        return "retry", f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        log.exception("job failed", extra={"job_id": jc.job_id})
        cause = _timeout_in(exc) or exc
        return "failed", f"{type(cause).__name__}: {cause}"


def _timeout_in(exc: BaseException) -> BaseException | None:
    """The timeout behind ``exc``, if any. RQ's job timeout is raised by a signal wherever the body is;
    landing inside a database call it leaves the connection mid-query, and the clean-up's own error (e.g.
    psycopg's "can't change 'autocommit' now") is what propagates, with the timeout as its context."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, JobTimedOut) or type(seen).__name__ == "JobTimeoutException":
            return seen
        seen = seen.__context__
    return None


def backoff_seconds(attempt: int) -> float:
    return float(min(60, 2 ** max(0, attempt - 1)))


def _retry(ctx: Context, job: JobRun, reason: str) -> str:
    if job.attempts >= job.max_attempts:
        message = f"gave up after {job.attempts} attempts: {reason}"
        move(ctx, job.id, to="failed", when=("running",), message=message, error=reason)
        return "failed"
    delay = backoff_seconds(job.attempts)
    message = f"retrying in {delay:.0f}s: {reason}"
    if move(ctx, job.id, to="queued", when=("running",), message=message, error=reason, attempt=job.attempts):
        ctx.queue.enqueue(job.id, job.function, delay_s=delay, attempt=job.attempts + 1)
    return "queued"


def reap_stale(ctx: Context) -> int:
    """Bring every unfinished job back on a path to a terminal status; returns how many were handled.

    Two kinds of job can be forgotten: a ``running`` one whose worker stopped sending heartbeats
    (retried or failed), and a ``queued`` one that no queue will ever run (``reap_waiting``)."""
    return _reap_running(ctx) + reap_waiting(ctx)


def _reap_running(ctx: Context) -> int:
    older = timedelta(seconds=ctx.settings.job_stale_after_s)
    with ctx.db.session() as session:
        stale = list(store.stale_running(session, older_than=older))
    for job in stale:
        reason = f"worker {job.worker or '?'} stopped responding (no heartbeat for {older.total_seconds():.0f}s)"
        if job.attempts < job.max_attempts and not job.cancel_requested:
            message = f"retrying: {reason}"
            if move(ctx, job.id, to="queued", when=("running",), message=message, error=reason, attempt=job.attempts):
                ctx.queue.enqueue(job.id, job.function, attempt=job.attempts + 1)
        else:
            final = "canceled" if job.cancel_requested else "failed"
            move(ctx, job.id, to=final, when=("running",), message=reason, error=reason)
    return len(stale)


def reap_waiting(ctx: Context) -> int:
    """Re-enqueue ``queued`` jobs that their queue no longer holds, and fail those queued too long.

    A job row can say ``queued`` while no queue will run it: Redis restarted without its data, the
    broker was down when the job was submitted (the submit keeps the job and leaves its enqueue to this
    pass), or RQ filed the attempt as failed before the job's first database write succeeded. Each is
    put back on the queue under the same attempt; a job still queued ``job_queued_max_s`` after it
    was queued fails with the reason, so nothing accepted waits forever."""
    s = ctx.settings
    with ctx.db.session() as session:
        waiting = list(store.waiting_jobs(session, older_than=timedelta(seconds=s.job_lost_after_s)))
    handled = 0
    limit = timedelta(seconds=s.job_queued_max_s)
    for job in waiting:
        if job.cancel_requested:
            handled += move(ctx, job.id, to="canceled", when=("queued",), message="canceled before it started")
            continue
        if utcnow() - store.queued_since(job) > limit:
            reason = f"not started within {s.job_queued_max_s:.0f}s of being queued"
            handled += move(ctx, job.id, to="failed", when=("queued",), message=reason, error=reason)
            continue
        attempt = job.attempts + 1
        if ctx.queue.pending(job.id, attempt):
            continue
        log.warning("re-enqueueing a queued job its queue does not hold", extra={"job_id": job.id})
        ctx.queue.enqueue(job.id, job.function, attempt=attempt)
        publish(ctx, job.id, "progress", {"phase": "requeued", "percent": None,
                                          "message": "the job queue had lost this job; queued it again"})
        handled += 1
    return handled
