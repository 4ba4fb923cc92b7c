"""Creating forecast jobs (API, CLI, scheduler) and the scheduled-retraining pass of the scheduler tick.

Light on purpose: no forecasting engine is imported here. Jobs are named by dotted path and take
only their target id: ``price`` / ``price:full`` (market data) or ``demand`` / ``demand:full`` (the
job's organization's usage); ``:full`` reruns model selection (champion/challenger), otherwise
fitted models are reused and refitted incrementally.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from cloudarb.db.models import JobRun
from cloudarb.forecasts import store
from cloudarb.forecasts.keys import Kind
from cloudarb.jobs.enqueue import enqueue

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)

FUNCTIONS: dict[str, str] = {
    "price": "cloudarb.forecasts.jobs.price_body",
    "demand": "cloudarb.forecasts.jobs.demand_body",
}


def target_for(kind: Kind, *, full_refit: bool) -> str:
    return f"{kind}:full" if full_refit else kind


def submit_forecast(ctx: Context, *, kind: Kind, organization_id: str, actor: str, full_refit: bool = False) -> JobRun:
    """Store a forecast job owned by ``organization_id`` and enqueue it by id."""
    what = "retraining" if full_refit else "forecast refresh"
    return enqueue(ctx, organization_id=organization_id, kind="forecast", function=FUNCTIONS[kind],
                   target_id=target_for(kind, full_refit=full_refit), message=f"{kind} {what} requested by {actor}",
                   max_attempts=1)


def _claim(ctx: Context, task: str, now: datetime, interval_s: float) -> bool:
    if interval_s <= 0:
        return False
    try:
        with ctx.db.session() as session:
            return store.claim_task(session, task=task, now=now, interval_s=interval_s)
    except IntegrityError:  # another scheduler created the task row first
        return False


def tick(ctx: Context, *, now: datetime | None = None) -> list[str]:
    """Enqueue due scheduled forecast jobs (price for the market, demand per organization with usage).

    Per task, a due retraining (full refit) takes the slot; otherwise a due incremental refresh.
    Returns the tasks started.
    """
    from cloudarb.ingest.submit import system_org_id

    s = ctx.settings
    now = now or store.now()
    started: list[str] = []
    with ctx.db.session() as session:
        orgs = store.organizations_with_usage(session, since=now - timedelta(hours=s.forecast_history_hours))
    targets: list[tuple[Kind, str | None]] = [("price", None)]
    targets.extend(("demand", org) for org in orgs)
    for kind, org in targets:
        name = f"{kind}:{org}" if org else kind
        full = _claim(ctx, f"{name}:retrain", now, s.forecast_retrain_interval_s)
        refresh = _claim(ctx, f"{name}:refresh", now, s.forecast_refresh_interval_s)  # a retrain refreshes too
        if not (full or refresh):
            continue
        try:
            owner = org or system_org_id(ctx)
            submit_forecast(ctx, kind=kind, organization_id=owner, actor="scheduler", full_refit=full)
            started.append(f"{name}:{'retrain' if full else 'refresh'}")
        except Exception:
            log.exception("could not enqueue a scheduled forecast", extra={"task": name})
    return started
