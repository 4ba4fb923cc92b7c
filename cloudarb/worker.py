"""The production worker process: an RQ worker that forks a work horse per job.

The process builds its context once and, before the first fork, imports what job bodies import and
warms the caches they read (the fitted risk model and performance table, the solver engines), so
every work horse starts with them in memory instead of paying seconds of imports and model loading
per job. RQ calls ``execute(job_id)`` in the work horse; it runs the job with this process's context.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudarb import telemetry
from cloudarb.config import get_settings
from cloudarb.context import Context, build_context
from cloudarb.jobs import runtime

if TYPE_CHECKING:
    from cloudarb.jobs.queue import RQQueue

log = logging.getLogger(__name__)

_lock = threading.Lock()
_context: Context | None = None


def process_context() -> Context:
    """This process's context (built on first use; a work horse inherits its parent's)."""
    global _context
    with _lock:
        if _context is None:
            _context = build_context(get_settings())
        return _context


def execute(job_id: str) -> str | None:
    """RQ's entry point: one attempt of one job, by id."""
    return runtime.execute(job_id, process_context())


def preload(ctx: Context) -> dict[str, float]:
    """Import the job bodies and warm what they load, once per worker process; returns seconds per step.

    A failure here only costs the speed-up: the job loads what it needs itself.
    """
    timings: dict[str, float] = {}

    def step(name: str, fn: object) -> None:
        started = time.perf_counter()
        try:
            fn()  # type: ignore[operator]
        except Exception:
            log.warning("preload step failed", extra={"step": name}, exc_info=True)
        timings[name] = round(time.perf_counter() - started, 3)

    def bodies() -> None:
        import cloudarb.forecasts.jobs
        import cloudarb.ingest.jobs
        import cloudarb.optimize.jobs
        import cloudarb.optimize.policy_runs  # noqa: F401

    def engines() -> None:
        import importlib

        for name in ("optimizer.solver", "optimizer.strategy", "optimizer.backends.ortools_backend",
                     "ortools.linear_solver.python.model_builder_helper",
                     "scipy.sparse"):  # the optimizer imports it at the first model it builds
            importlib.import_module(name)

    def feed() -> None:
        from sqlalchemy.orm import configure_mappers

        from cloudarb.forecasts.feed import load_feed, warm
        from cloudarb.optimize.problem import build_problem, offer_filter
        from cloudarb.schemas import OptimizeRequest
        from cloudarb.storage import offers as offer_store

        warm(ctx.settings)
        configure_mappers()
        # one dry run of what an optimize job does before solving: SQLAlchemy's compiled statements,
        # the interruption rates of every current offer and the fitted tables end up in this process
        request = OptimizeRequest.model_validate(
            {"workloads": [{"id": "warm", "gpus_min": 1, "workload_type": "training"}]})
        with ctx.db.session() as session:
            rows = offer_store.offers_for_problem(session, filters=offer_filter(request, ctx.settings))
            feed_ = load_feed(session, ctx.settings, rows, horizon_hours=request.horizon_hours)
        build_problem(request, rows, feed=feed_)
        ctx.db.engine.dispose()

    step("bodies", bodies)
    step("engines", engines)
    step("feed", feed)
    return timings


def run(*, burst: bool = False, scheduler: bool = True, metrics_port: int | None = None,
        heartbeat_file: Path | None = None) -> None:
    """Preload, reap what a previous worker left running, start the scheduler thread, then consume
    the queue (a work horse forked per job, with everything preloaded).

    A broker outage never ends the process: RQ's loop quits on a Redis error, so it is started again
    with back-off (``consume``), while the scheduler thread (reaper, refreshes, policies) keeps
    ticking and logs its own failures. Only a stop request (SIGTERM, SIGINT) or ``burst`` ends it."""
    from cloudarb.jobs.queue import RQQueue
    from cloudarb.scheduler import Scheduler

    ctx = process_context()
    queue = ctx.queue
    if not isinstance(queue, RQQueue):
        raise RuntimeError("the worker needs the Redis queue (set CLOUDARB_REDIS_URL)")
    log.info("worker preloaded", extra={"seconds": preload(ctx)})
    telemetry.init_job_kinds(list(ctx.kinds))
    server = None
    if metrics_port is not None:
        token = ctx.settings.metrics_token
        server = telemetry.serve_metrics("0.0.0.0", metrics_port,
                                         token=token.get_secret_value() if token is not None else None)
    beat = _Heartbeat(heartbeat_file) if heartbeat_file is not None else None
    if beat is not None:
        beat.start()
    sched = Scheduler(ctx) if scheduler else None
    if sched is not None:
        sched.start()  # its first tick reaps what a previous worker left running
    try:
        consume(queue, burst=burst)
    finally:
        if sched is not None:
            sched.stop()
        if beat is not None:
            beat.stop.set()
        if server is not None:
            server.shutdown()
        telemetry.process_exiting()


class _Heartbeat(threading.Thread):
    """Touches a file every ``interval`` seconds: a liveness probe that finds it older than a few
    intervals knows the process is wedged (the thread needs the interpreter to be running)."""

    def __init__(self, path: Path, interval: float = 10.0) -> None:
        super().__init__(name="cloudarb-worker-heartbeat", daemon=True)
        self.path = path
        self.interval = interval
        self.stop = threading.Event()

    def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                self.path.touch()
            except OSError:
                log.warning("cannot touch the heartbeat file", extra={"path": str(self.path)}, exc_info=True)
            if self.stop.wait(self.interval):
                return


def consume(queue: RQQueue, *, burst: bool = False, max_backoff_s: float = 30.0) -> None:
    """Run RQ's worker loop until it is asked to stop; after a Redis failure, wait and start again.

    Back-off doubles from 0.5 s to ``max_backoff_s`` while the broker stays down and resets after a
    loop that ran a job or lived a minute."""
    from rq.exceptions import StopRequested

    delay = 0.5
    stop = threading.Event()
    while True:
        started = time.monotonic()
        worker: Any = None
        try:
            worker = _fork_safe_worker_class()([queue.queue], connection=queue.redis)
            worker.work(burst=burst, with_scheduler=True)
        except StopRequested:
            return
        except Exception:
            log.warning("worker loop failed; starting again", exc_info=True)
        if burst or _stop_requested(worker):
            return
        if time.monotonic() - started > 60:
            delay = 0.5
        log.warning("the queue's broker is unavailable; retrying", extra={"retry_in_s": delay})
        try:
            stop.wait(delay)
        except StopRequested:  # RQ's signal handler, still installed, asks the loop to end
            return
        if _stop_requested(worker):
            return
        delay = min(max_backoff_s, delay * 2)


def _stop_requested(worker: Any) -> bool:
    """Whether RQ's loop ended because it was asked to stop (SIGTERM/SIGINT): an idle worker records
    only the request's date, a busy one also sets ``_stop_requested``."""
    return worker is not None and bool(worker._stop_requested or worker._shutdown_requested_date is not None)


def _fork_safe_worker_class() -> type[Any]:
    """RQ's worker, forking its work horse only between two scheduler ticks (see ``TICK_LOCK``)."""
    from rq import Worker

    from cloudarb.scheduler import TICK_LOCK

    class ForkSafeWorker(Worker):
        def fork_work_horse(self, job: Any, queue: Any) -> None:
            with TICK_LOCK:
                super().fork_work_horse(job, queue)

        def main_work_horse(self, job: Any, queue: Any) -> None:
            telemetry.become_work_horse()  # one metrics file per worker, not one per job
            super().main_work_horse(job, queue)

    return ForkSafeWorker
