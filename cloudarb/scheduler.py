"""Enqueue due policy runs and reap jobs whose worker died. One loop for both modes.

In embedded mode it runs as a thread of ``cloudarb serve``; in production as a thread of each
``cloudarb worker`` (or ``cloudarb scheduler``). Several may run: each due slot is claimed with a
conditional update, so a policy runs once per slot however many schedulers look.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from cloudarb.context import Context
from cloudarb.db.models import Policy, PolicyRun
from cloudarb.forecasts.submit import tick as forecast_tick
from cloudarb.ingest.schedule import tick as ingest_tick
from cloudarb.jobs.runtime import reap_stale
from cloudarb.jobs.submit import Submitted, submit_optimization
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage import policies as policy_store

log = logging.getLogger(__name__)
POLICY_FUNCTION = "cloudarb.jobs.policies.body"


def _scoped_key(policy_id: str, key: str | None) -> str | None:
    """Keys are per organization; a run-now key is also per policy (hashed to fit the column)."""
    if not key:
        return None
    return f"policy-run:{policy_id}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def run_policy_now(
    ctx: Context, policy: Policy, *, actor: str, idempotency_key: str | None = None, render: Any = None
) -> Submitted:
    request = OptimizeRequest.model_validate(policy.request)
    done = submit_optimization(
        ctx,
        organization_id=policy.organization_id,
        request=request,
        actor=actor,
        policy_id=policy.id,
        function=POLICY_FUNCTION,
        kind="policy_run",
        idempotency_key=_scoped_key(policy.id, idempotency_key),
        render=render,
    )
    if done.replayed is not None:
        return done
    with ctx.db.session() as session:
        session.add(
            PolicyRun(
                policy_id=policy.id,
                organization_id=policy.organization_id,
                optimization_id=done.optimization.id,
            )
        )
    return done


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
    started = 0
    now = policy_store.now()
    with ctx.db.session() as session:
        due = list(policy_store.due(session, now=now))
    for policy in due:
        with ctx.db.session() as session:
            if not policy_store.claim_slot(session, policy=policy, now=now):
                continue
        try:
            run_policy_now(ctx, policy, actor="scheduler")
            started += 1
        except Exception:
            log.exception("could not start policy run", extra={"policy_id": policy.id})
    return started


class Scheduler(threading.Thread):
    def __init__(self, ctx: Context) -> None:
        super().__init__(name="cloudarb-scheduler", daemon=True)
        self.ctx = ctx
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.ctx.settings.scheduler_tick_s):
            try:
                tick(self.ctx)
            except Exception:
                log.exception("scheduler tick failed")

    def stop(self) -> None:
        self.stopped.set()
