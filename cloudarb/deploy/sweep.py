"""The deploy stage's scheduler pass (``cloudarb.scheduler`` calls ``tick`` every few seconds):

- lifetimes: an expired deployment gets its teardown job (verified destroys);
- destroys not yet proven (``terminating``, ``leaked``) are retried when their back-off is due, forever;
- metering adds each billed instance's ledger entry (every 5 minutes: one entry per instance each);
- budgets: threshold alerts (80% by default), and the hard stop tears down every deployment of an
  organization whose month's spend reached its limit;
- the reconciler runs every ``deploy_reconcile_interval_s``, the slot claimed in the database so many
  schedulers run it once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from cloudarb.db.models import JobRun
from cloudarb.db.models_deploy import Budget, DeployInstance, Deployment, DeployMeta
from cloudarb.deploy import budgets
from cloudarb.deploy import states as st
from cloudarb.deploy.alerts import raise_alert
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.env import DeployEnv, env_for
from cloudarb.deploy.hook_alerts import alert_failed_after_hooks
from cloudarb.deploy.metering import meter
from cloudarb.deploy.reconcile import Report, reconcile_all
from cloudarb.deploy.submit import submit_teardown

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)
RECONCILE_SLOT = "reconcile_due_at"
SWEEP_SLOT = "sweep_due_at"
METER_SLOT = "meter_due_at"
SWEEP_INTERVAL_S = 15.0
METER_INTERVAL_S = 300.0


@dataclass
class SweepReport:
    teardowns: int = 0
    destroy_retries: int = 0
    metered: int = 0
    budget_alerts: int = 0
    hook_alerts: int = 0
    hard_stops: int = 0
    reconciled: list[Report] = field(default_factory=list)


def claim_slot(env: DeployEnv, name: str, interval_s: float, now: datetime) -> bool:
    """Take the named slot if it is due (one scheduler wins it) and set its next due time."""
    nxt = (now + timedelta(seconds=interval_s)).isoformat()
    with env.db.session() as session:
        row = session.get(DeployMeta, name)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(DeployMeta(name=name, value=nxt))
            except IntegrityError:  # another scheduler created it first
                return False
            return True
        if datetime.fromisoformat(row.value) > now:
            return False
        won = session.execute(update(DeployMeta).where(DeployMeta.name == name, DeployMeta.value == row.value)
                              .values(value=nxt).execution_options(synchronize_session=False))
        return bool(getattr(won, "rowcount", 0))


def _active_job(session: Any, job_id: str | None) -> bool:
    if job_id is None:
        return False
    status = session.scalar(select(JobRun.status).where(JobRun.id == job_id))
    return status in ("queued", "running")


def teardown_due(ctx: Context, env: DeployEnv, now: datetime) -> int:
    """Queue a teardown for each expired deployment, and again for an ending one whose job ended."""
    with env.db.session() as session:
        deps = list(session.scalars(select(Deployment).where(
            Deployment.status != "ended",
            or_(Deployment.expires_at <= now, Deployment.status == "ending"))))
        due = [d for d in deps if not _active_job(session, d.job_id)]
    started = 0
    for dep in due:
        reason = dep.end_reason if dep.status == "ending" and dep.end_reason else "lifetime expired"
        try:
            submit_teardown(ctx, dep, actor="scheduler", reason=reason)
            started += 1
        except Exception:
            log.exception("could not queue a teardown", extra={"deployment_id": dep.id})
    return started


def retry_destroys(env: DeployEnv, now: datetime) -> int:
    with env.db.session() as session:
        ids = list(session.scalars(select(DeployInstance.id).where(
            DeployInstance.state.in_(st.DESTROYING),
            or_(DeployInstance.next_action_at.is_(None), DeployInstance.next_action_at <= now))))
    for instance_id in ids:
        row_reason = "retrying an unproven destroy"
        destroy(env, instance_id, reason=row_reason, rounds=1)
    return len(ids)


def check_budgets(ctx: Context | None, env: DeployEnv, now: datetime) -> tuple[int, int]:
    alerts = stops = 0
    month = f"{now:%Y-%m}"
    crossed: list[tuple[str, dict[str, Any]]] = []
    with env.db.session() as session:
        for budget in session.scalars(select(Budget)).all():
            spent = budgets.month_spend(session, budget.organization_id, now)
            share = spent / budget.monthly_limit if budget.monthly_limit > 0 else 1.0
            for t in budget.thresholds:
                if share >= t and raise_alert(
                        session, kind="budget", dedupe=f"budget:{budget.organization_id}:{month}:{t:g}",
                        organization_id=budget.organization_id,
                        message=f"{month}: spent ${spent:,.2f} of the ${budget.monthly_limit:,.2f} budget "
                                f"({share:.0%}, threshold {t:.0%})", spent=spent, limit=budget.monthly_limit):
                    alerts += 1
                    crossed.append((budget.organization_id, {
                        "month": month, "threshold": t, "spent": round(spent, 6), "limit": budget.monthly_limit,
                        "hard_stop": budget.hard_stop}))
            if budget.hard_stop and share >= 1.0:
                stops += _hard_stop(ctx, session, budget.organization_id)
    for org, payload in crossed:  # after the alerts committed
        env.notify(org, "budget.threshold", payload, False)
    return alerts, stops


def _hard_stop(ctx: Context | None, session: Any, organization_id: str) -> int:
    deps = list(session.scalars(select(Deployment).where(
        Deployment.organization_id == organization_id, Deployment.status.not_in(("ending", "ended")))))
    for dep in deps:
        dep.status, dep.end_reason = "ending", "monthly budget reached (hard stop)"
    return len(deps)


def tick(ctx: Context, env: DeployEnv | None = None) -> SweepReport:
    env = env or env_for(ctx)
    now = env.clock()
    report = SweepReport()
    if not claim_slot(env, SWEEP_SLOT, SWEEP_INTERVAL_S, now):
        return report
    steps: list[tuple[str, Any]] = []
    if claim_slot(env, METER_SLOT, METER_INTERVAL_S, now):
        steps += [("metering", lambda: _meter(env, now, report)), ("budgets", lambda: _budgets(ctx, env, now, report))]
    steps += [
        ("lifetimes", lambda: setattr(report, "teardowns", teardown_due(ctx, env, now))),
        ("destroy retries", lambda: setattr(report, "destroy_retries", retry_destroys(env, now))),
        ("hook alerts", lambda: _hook_alerts(env, now, report)),
    ]
    for name, step in steps:
        try:
            step()
        except Exception:
            log.exception("deploy sweep step failed", extra={"step": name})
    try:
        if claim_slot(env, RECONCILE_SLOT, env.settings.deploy_reconcile_interval_s, now):
            report.reconciled = reconcile_all(env)
    except Exception:
        log.exception("reconcile pass failed")
    return report


def _meter(env: DeployEnv, now: datetime, report: SweepReport) -> None:
    with env.db.session() as session:
        report.metered = meter(session, now)


def _hook_alerts(env: DeployEnv, now: datetime, report: SweepReport) -> None:
    with env.db.session() as session:
        report.hook_alerts = alert_failed_after_hooks(session, now)


def _budgets(ctx: Context, env: DeployEnv, now: datetime, report: SweepReport) -> None:
    report.budget_alerts, report.hard_stops = check_budgets(ctx, env, now)
