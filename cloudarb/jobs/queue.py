"""Job queues: RQ on Redis in production, a thread pool in embedded mode. Same calls, same statuses.

Queues carry only job ids. The in-process queue runs ``cloudarb.jobs.runtime.execute(job_id, ctx)``
with its own context; RQ runs ``cloudarb.worker.execute(job_id)``, which does the same with the
context its worker process built (and preloaded) before forking. Either reads the job row, and from it
the body's dotted path, from the database.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from cloudarb.jobs.runtime import execute

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)

EXECUTE = "cloudarb.worker.execute"


class JobQueue(Protocol):
    def enqueue(self, job_id: str, function: str, *, delay_s: float = 0.0, attempt: int = 1) -> None: ...

    def pending(self, job_id: str, attempt: int) -> bool:
        """Whether this queue still holds the attempt (waiting, scheduled or started); the reaper
        re-enqueues a ``queued`` job whose attempt it does not hold."""
        ...

    def stop(self, job_id: str) -> None:
        """Hard-stop a running job where the backend can (cooperative cancel always applies)."""
        ...

    def depth(self) -> int: ...

    def close(self) -> None: ...


class InProcessQueue:
    """Embedded mode: a small pool of threads in this process."""

    def __init__(self, ctx: Context, workers: int) -> None:
        self._ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cloudarb-job")
        self._pending = 0
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self._closed = False

    def enqueue(self, job_id: str, function: str, *, delay_s: float = 0.0, attempt: int = 1) -> None:
        with self._lock:
            self._held[job_id] = attempt
        if delay_s > 0:
            timer = threading.Timer(delay_s, self._submit, args=(job_id, attempt))
            timer.daemon = True
            with self._lock:
                self._timers.add(timer)
            timer.start()
        else:
            self._submit(job_id, attempt)

    def _submit(self, job_id: str, attempt: int) -> None:
        if self._closed:
            return
        with self._lock:
            self._pending += 1
        self._pool.submit(self._run, job_id, attempt)

    def _run(self, job_id: str, attempt: int) -> None:
        with self._lock:
            self._pending -= 1
        try:
            execute(job_id, self._ctx)
        except Exception:
            log.exception("embedded job crashed", extra={"job_id": job_id})
        finally:
            with self._lock:
                if self._held.get(job_id) == attempt:
                    del self._held[job_id]

    def pending(self, job_id: str, attempt: int) -> bool:
        with self._lock:
            return self._held.get(job_id) == attempt

    def stop(self, job_id: str) -> None:
        return None

    def depth(self) -> int:
        with self._lock:
            return self._pending

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for t in self._timers:
                t.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


class RQQueue:
    """Production: RQ on Redis; ``cloudarb worker`` processes consume it."""

    def __init__(self, redis_url: str, name: str, *, job_timeout_s: int) -> None:
        import redis
        from rq import Queue

        self.redis = redis.Redis.from_url(redis_url)
        self.queue = Queue(name, connection=self.redis)
        self.job_timeout_s = job_timeout_s

    @staticmethod
    def rq_id(job_id: str, attempt: int) -> str:
        return f"{job_id}-{attempt}"

    def enqueue(self, job_id: str, function: str, *, delay_s: float = 0.0, attempt: int = 1) -> None:
        kwargs = {
            "job_id": self.rq_id(job_id, attempt),
            "job_timeout": self.job_timeout_s,
            "result_ttl": 3600,
            "failure_ttl": 7 * 86400,
            "description": f"{function}({job_id}) attempt {attempt}",
            "meta": {"cloudarb_job_id": job_id},
        }
        self._forget(self.rq_id(job_id, attempt))
        if delay_s > 0:
            self.queue.enqueue_in(timedelta(seconds=delay_s), EXECUTE, job_id, **kwargs)
        else:
            self.queue.enqueue(EXECUTE, job_id, **kwargs)

    def pending(self, job_id: str, attempt: int) -> bool:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        try:
            job = Job.fetch(self.rq_id(job_id, attempt), connection=self.redis)
        except NoSuchJobError:
            return False
        return job.get_status(refresh=False) in (
            JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED)

    def _forget(self, rq_id: str) -> None:
        """Delete a finished or failed RQ job of this id, so the same attempt can be queued again."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            Job.fetch(rq_id, connection=self.redis).delete()
        except NoSuchJobError:
            return

    def stop(self, job_id: str) -> None:
        from rq.command import send_stop_job_command
        from rq.exceptions import InvalidJobOperation, NoSuchJobError
        from rq.registry import StartedJobRegistry

        prefix = f"{job_id}-"
        for rq_id in StartedJobRegistry(queue=self.queue).get_job_ids():
            if rq_id.startswith(prefix):
                try:
                    send_stop_job_command(self.redis, rq_id)
                except (InvalidJobOperation, NoSuchJobError):
                    continue

    def depth(self) -> int:
        return int(self.queue.count)

    def close(self) -> None:
        self.redis.close()
