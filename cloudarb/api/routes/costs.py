"""Costs from the metering ledger, the organization's budget, and the deploy stage's alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cloudarb.api.deps import Admin, SessionDep, Viewer
from cloudarb.db.types import utcnow
from cloudarb.deploy import budgets, costs
from cloudarb.deploy.alerts import list_alerts
from cloudarb.deploy.views import AlertOut, BudgetIn, BudgetOut, CostGroup, CostReport, alert_out, budget_out
from cloudarb.errors import NotFound

router = APIRouter(tags=["costs"])


@router.get("/costs", operation_id="list_costs", response_model=CostReport)
def list_costs(
    principal: Viewer, session: SessionDep,
    by: Annotated[costs.GroupBy, Query(description="deployment, workload, provider, gpu or org")] = "deployment",
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> CostReport:
    """Metered spend grouped by one dimension (each instance billed per second at its launch price,
    with the provider's increments and minimum); without ``until``, up to now (running instances
    included, so the total equals the deployments' cost so far)."""
    items = costs.grouped(session, organization_id=principal.organization_id, by=by, since=since, until=until,
                          now=utcnow())
    return CostReport(by=by, items=[CostGroup(**i) for i in items], total=round(sum(i["amount"] for i in items), 6))


@router.get("/costs/summary", operation_id="cost_summary")
def cost_summary(principal: Viewer, session: SessionDep) -> dict[str, Any]:
    """This month, today, the running rate, the commitment until expiry and the budget."""
    return costs.summary(session, organization_id=principal.organization_id, now=utcnow())


@router.get("/budget", operation_id="get_budget", response_model=BudgetOut)
def get_budget(principal: Viewer, session: SessionDep) -> BudgetOut:
    row = budgets.get_budget(session, principal.organization_id)
    if row is None:
        raise NotFound("no budget is set for this organization")
    return budget_out(row)


@router.put("/budget", operation_id="set_budget", response_model=BudgetOut)
def set_budget(body: BudgetIn, principal: Admin, session: SessionDep) -> BudgetOut:
    """Set the monthly budget: alerts at each threshold, and optionally the hard stop at 100%."""
    row = budgets.set_budget(session, principal.organization_id, monthly_limit=body.monthly_limit,
                             thresholds=body.thresholds, hard_stop=body.hard_stop, now=utcnow())
    return budget_out(row)


@router.get("/alerts", operation_id="list_deploy_alerts", response_model=list[AlertOut])
def deploy_alerts(principal: Viewer, session: SessionDep,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[AlertOut]:
    """Orphans destroyed, leaked or vanished instances, budget thresholds: newest first."""
    return [alert_out(a) for a in list_alerts(session, organization_id=principal.organization_id, limit=limit)]
