"""The scheduler loop: reap jobs whose worker died, start due provider refreshes, forecast retraining
and policy runs. One loop for both modes; it composes the features' schedule passes.

In embedded mode it runs as a thread of ``cloudarb serve``; in production as a thread of each
``cloudarb worker`` (or ``cloudarb scheduler``). Several may run: each due slot is claimed with a
conditional update, so each runs once per slot however many schedulers look.
"""

from __future__ import annotations

import importlib
import logging
import threading

from cloudarb.context import Context
from cloudarb.forecasts.submit import tick as forecast_tick
from cloudarb.ingest.schedule import tick as ingest_tick
from cloudarb.jobs.runtime import reap_stale
from cloudarb.nodes.health import tick as nodes_tick
from cloudarb.optimize.schedule import start_due_policies

log = logging.getLogger(__name__)


def deploy_tick(ctx: Context) -> None:
    """The deploy sweep (lifetimes, destroy retries, metering, budgets, reconcile). It calls providers, so
    it is loaded by dotted path like a job body: the API process, which runs this scheduler only in the
    embedded mode, imports no provider code at start-up."""
    importlib.import_module("cloudarb.deploy.sweep").tick(ctx)


TICK_LOCK = threading.Lock()
"""Held while a tick runs. An RQ worker forks its work horse only while holding it too
(``cloudarb.worker``): a fork taken while this thread is mid-tick copies its locks and connections in
whatever state they are in, and a work horse stuck on such a copy never ends."""


def tick(ctx: Context) -> int:
    """One pass: reap stale jobs, enqueue due provider refreshes and forecast retraining, start every due
    policy once; returns the policy runs started."""
    try:
        reap_stale(ctx)
    except Exception:
        log.exception("reaping stale jobs failed")
    try:
        ingest_tick(ctx)
    except Exception:
        log.exception("provider refresh scheduling failed")
    try:
        forecast_tick(ctx)
    except Exception:
        log.exception("forecast retraining scheduling failed")
    try:
        nodes_tick(ctx)
    except Exception:
        log.exception("node heartbeat check failed")
    try:
        deploy_tick(ctx)
    except Exception:
        log.exception("deploy sweep failed (lifetimes, destroys, metering, budgets, reconcile)")
    return start_due_policies(ctx)


class Scheduler(threading.Thread):
    def __init__(self, ctx: Context) -> None:
        super().__init__(name="cloudarb-scheduler", daemon=True)
        self.ctx = ctx
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.ctx.settings.scheduler_tick_s):
            try:
                with TICK_LOCK:
                    tick(self.ctx)
            except Exception:
                log.exception("scheduler tick failed")

    def stop(self) -> None:
        self.stopped.set()
