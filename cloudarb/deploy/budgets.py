"""Monthly organization budgets: spend so far, alerts at thresholds, admission control.

Spend of a month is the ledger's amounts whose span ended in it plus what accrued since the last
metering pass. A deploy is admitted only if this month's spend, plus what the organization's live
instances are committed to spend until they expire, plus the new deployment's spend over its
lifetime stays within the limit; otherwise it is refused with the figures. The hard stop (destroy
everything of the organization through the verified path) runs in ``cloudarb.deploy.sweep``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import Budget, CostEntry, DeployInstance
from cloudarb.deploy import states as st
from cloudarb.deploy.metering import pending_amount
from cloudarb.errors import Conflict

DEFAULT_THRESHOLDS = (0.8,)


class BudgetExceeded(Conflict):
    code = "budget_exceeded"


def month_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def month_spend(session: Session, organization_id: str, now: datetime) -> float:
    start = month_start(now)
    booked = session.scalar(select(func.coalesce(func.sum(CostEntry.amount), 0.0)).where(
        CostEntry.organization_id == organization_id, CostEntry.period_end >= start)) or 0.0
    live = session.scalars(select(DeployInstance).where(
        DeployInstance.organization_id == organization_id, DeployInstance.billing_started_at.is_not(None),
        DeployInstance.billing_stopped_at.is_(None)))
    return float(booked) + sum(pending_amount(r, now) for r in live)


def committed(session: Session, organization_id: str, now: datetime) -> float:
    """What the organization's live instances will cost from now until they expire."""
    rows = session.scalars(select(DeployInstance).where(
        DeployInstance.organization_id == organization_id, DeployInstance.state.in_(st.LIVE)))
    total = 0.0
    for r in rows:
        if r.expires_at is not None:
            total += r.price_per_hour * max(0.0, (r.expires_at - now).total_seconds()) / 3600.0
    return total


def get_budget(session: Session, organization_id: str) -> Budget | None:
    return session.get(Budget, organization_id)


def set_budget(session: Session, organization_id: str, *, monthly_limit: float, thresholds: list[float],
               hard_stop: bool, now: datetime) -> Budget:
    row = session.get(Budget, organization_id)
    values = sorted(set(thresholds)) or list(DEFAULT_THRESHOLDS)
    if row is None:
        row = Budget(organization_id=organization_id, monthly_limit=monthly_limit, thresholds=values,
                     hard_stop=hard_stop, updated_at=now)
        session.add(row)
    else:
        row.monthly_limit, row.thresholds, row.hard_stop, row.updated_at = monthly_limit, values, hard_stop, now
    session.flush()
    return row


def admit(session: Session, organization_id: str, *, new_spend: float, now: datetime) -> None:
    """Refuse a deployment whose committed spend to expiry does not fit what is left of the budget."""
    budget = session.get(Budget, organization_id)
    if budget is None:
        return
    spent = month_spend(session, organization_id, now)
    held = committed(session, organization_id, now)
    remaining = budget.monthly_limit - spent - held
    if new_spend > remaining + 1e-9:
        raise BudgetExceeded(
            f"this deployment would commit ${new_spend:,.2f} until it expires, but only ${max(0.0, remaining):,.2f} "
            f"of the ${budget.monthly_limit:,.2f} monthly budget is left (spent ${spent:,.2f}, committed to "
            f"running instances ${held:,.2f})",
            details=[{"monthly_limit": budget.monthly_limit, "spent": round(spent, 6), "committed": round(held, 6),
                      "remaining": round(remaining, 6), "requested": round(new_spend, 6)}])
