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

    def enqueue_when_up(self, job_id: str, function: str, *, attempt: int = 1) -> None:
        """Keep an accepted job's push whose ``enqueue`` failed (the broker is down) and retry it in the
        background until the broker answers; never raises."""
        ...

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

    def enqueue_when_up(self, job_id: str, function: str, *, attempt: int = 1) -> None:
        self.enqueue(job_id, function, attempt=attempt)  # this process is the broker: it is up

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
    """Production: RQ on Redis; ``cloudarb worker`` processes consume it.

    A push that fails because Redis is down is kept by ``enqueue_when_up`` and retried by a
    background thread (every 0.2 s, backing off to 2 s) until Redis answers, so a job accepted
    during an outage is queued within seconds of its end. Before each retry the thread asks whether
    the queue already holds the attempt (the reaper, ``runtime.reap_waiting``, may have pushed it
    from another process), and the worker's claim (queued -> running, atomically) runs an attempt at
    most once even if both pushed it. The reaper stays the backstop for a process that dies holding
    pushes it could not make."""

    RETRY_FIRST_S = 0.2
    RETRY_MAX_S = 2.0

    def __init__(self, redis_url: str, name: str, *, job_timeout_s: int) -> None:
        import redis
        from rq import Queue

        # a broker that does not answer fails a push in seconds instead of holding the request
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
        self.queue = Queue(name, connection=self.redis)
        self.job_timeout_s = job_timeout_s
        self._backlog: dict[str, tuple[str, str, int]] = {}
        self._backlog_lock = threading.Lock()
        self._pusher: threading.Thread | None = None
        self._closing = threading.Event()

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

    def enqueue_when_up(self, job_id: str, function: str, *, attempt: int = 1) -> None:
        with self._backlog_lock:
            self._backlog[self.rq_id(job_id, attempt)] = (job_id, function, attempt)
            if self._pusher is None and not self._closing.is_set():
                self._pusher = threading.Thread(target=self._drain, name="cloudarb-queue-retry", daemon=True)
                self._pusher.start()

    def backlog(self) -> int:
        """Pushes waiting for the broker to answer."""
        with self._backlog_lock:
            return len(self._backlog)

    def _drain(self) -> None:
        import redis

        delay = self.RETRY_FIRST_S
        while not self._closing.wait(delay):
            with self._backlog_lock:
                items = list(self._backlog.items())
                if not items:
                    self._pusher = None
                    return
            try:
                for rq_id, (job_id, function, attempt) in items:
                    if not self.pending(job_id, attempt):
                        self.enqueue(job_id, function, attempt=attempt)
                        log.info("queued a job accepted while the broker was down", extra={"job_id": job_id})
                    with self._backlog_lock:
                        self._backlog.pop(rq_id, None)
            except redis.RedisError:
                delay = min(delay * 2, self.RETRY_MAX_S)
            else:
                delay = self.RETRY_FIRST_S

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
        self._closing.set()
        with self._backlog_lock:
            pusher, left = self._pusher, len(self._backlog)
        if pusher is not None:
            pusher.join(timeout=5)
        if left:
            log.warning("closing with pushes the broker never took; the reaper will queue those jobs",
                        extra={"jobs": left})
        self.redis.close()
