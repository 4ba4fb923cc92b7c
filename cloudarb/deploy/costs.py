"""Cost reports from the ledger: by deployment, workload, provider, GPU model or organization, and
an organization's month at a glance (spend, running rate, commitment to expiry, budget)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import CostEntry, DeployInstance
from cloudarb.deploy import budgets
from cloudarb.deploy import states as st
from cloudarb.deploy.metering import pending_amount

GroupBy = Literal["deployment", "workload", "provider", "gpu", "org"]
_COLUMNS: dict[str, Any] = {
    "deployment": CostEntry.deployment_id,
    "workload": DeployInstance.workload_id,
    "provider": DeployInstance.provider,
    "gpu": DeployInstance.gpu_model,
    "org": CostEntry.organization_id,
}


_ROW_KEYS: dict[str, str] = {"deployment": "deployment_id", "workload": "workload_id", "provider": "provider",
                             "gpu": "gpu_model", "org": "organization_id"}


def grouped(session: Session, *, organization_id: str, by: GroupBy, since: datetime | None = None,
            until: datetime | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Ledger amounts grouped by one dimension, largest first. With ``now`` (and no ``until``), what
    running instances accrued since the last metering pass is added, so the report equals the sum of
    the deployments' "cost so far" at any moment (ended instances are booked when they end)."""
    column = _COLUMNS[by]
    stmt = (select(column, CostEntry.instance_id, func.sum(CostEntry.amount), func.sum(CostEntry.billed_seconds))
            .join(DeployInstance, DeployInstance.id == CostEntry.instance_id)
            .where(CostEntry.organization_id == organization_id).group_by(column, CostEntry.instance_id))
    if since is not None:
        stmt = stmt.where(CostEntry.period_end > since)
    if until is not None:
        stmt = stmt.where(CostEntry.period_end <= until)
    amounts: dict[str, float] = {}
    billed: dict[str, float] = {}
    instances: dict[str, set[str]] = {}
    for key, instance_id, amount, seconds in session.execute(stmt).all():
        k = key or ""
        amounts[k] = amounts.get(k, 0.0) + float(amount or 0.0)
        billed[k] = billed.get(k, 0.0) + float(seconds or 0.0)
        instances.setdefault(k, set()).add(instance_id)
    if now is not None and until is None:
        for row in session.scalars(select(DeployInstance).where(
                DeployInstance.organization_id == organization_id, DeployInstance.billing_started_at.is_not(None),
                DeployInstance.billing_stopped_at.is_(None))):
            extra = pending_amount(row, now)
            if extra > 0:
                k = getattr(row, _ROW_KEYS[by]) or ""
                amounts[k] = amounts.get(k, 0.0) + extra
                billed[k] = billed.get(k, 0.0) + (extra * 3600.0 / row.price_per_hour if row.price_per_hour else 0.0)
                instances.setdefault(k, set()).add(row.id)
    rows = [{"key": k, "amount": round(amounts[k], 6), "billed_hours": round(billed[k] / 3600.0, 6),
             "instances": len(instances[k])} for k in amounts]
    return sorted(rows, key=lambda r: (-r["amount"], r["key"]))


def deployment_cost(session: Session, deployment_id: str, now: datetime) -> tuple[float, dict[str, float]]:
    """(total, per instance id) spent by one deployment so far, including what accrued since metering."""
    booked = dict(session.execute(select(CostEntry.instance_id, func.sum(CostEntry.amount))
                                  .where(CostEntry.deployment_id == deployment_id)
                                  .group_by(CostEntry.instance_id)).all())
    per: dict[str, float] = {}
    for row in session.scalars(select(DeployInstance).where(DeployInstance.deployment_id == deployment_id)):
        per[row.id] = float(booked.get(row.id, 0.0)) + pending_amount(row, now)
    return sum(per.values()), per


def summary(session: Session, *, organization_id: str, now: datetime) -> dict[str, Any]:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = session.scalar(select(func.coalesce(func.sum(CostEntry.amount), 0.0)).where(
        CostEntry.organization_id == organization_id, CostEntry.period_end > day)) or 0.0
    live = list(session.scalars(select(DeployInstance).where(
        DeployInstance.organization_id == organization_id, DeployInstance.state.in_(st.LIVE))))
    month = budgets.month_spend(session, organization_id, now)
    committed = budgets.committed(session, organization_id, now)
    budget = budgets.get_budget(session, organization_id)
    out: dict[str, Any] = {
        "month": f"{now:%Y-%m}", "month_to_date": round(month, 6), "today": round(float(today), 6),
        "running_per_hour": round(sum(r.price_per_hour for r in live if r.billing_started_at is not None), 6),
        "committed_to_expiry": round(committed, 6), "live_instances": len(live),
        "leaked_instances": sum(1 for r in live if r.state == st.LEAKED),
        "last_7_days": round(float(session.scalar(select(func.coalesce(func.sum(CostEntry.amount), 0.0)).where(
            CostEntry.organization_id == organization_id, CostEntry.period_end > now - timedelta(days=7))) or 0.0), 6),
        "budget": None,
    }
    if budget is not None:
        out["budget"] = {"monthly_limit": budget.monthly_limit, "thresholds": budget.thresholds,
                         "hard_stop": budget.hard_stop, "used_share": round(month / budget.monthly_limit, 6)
                         if budget.monthly_limit else None,
                         "remaining": round(budget.monthly_limit - month - committed, 6)}
    return out
