"""A scheduled re-optimization: solve on fresh prices, then adopt the result or keep the current one.

The current allocation is passed to the optimizer (its migration cost discourages churn), and the
decision compares the new cost with what the current allocation costs at today's prices: below the
policy's threshold the run reports "keep current" rather than moving the fleet for a marginal gain.

A policy that opted in to demand forecasts (``cloudarb.forecasts.demand``) solves for each workload's
forecast upper-quantile GPU requirement instead of the stated one; every run records the allocation in
force as the hour's usage, which is the history those demand forecasts learn from.
"""

from __future__ import annotations

from sqlalchemy import select

from cloudarb import hooks
from cloudarb.db.models import Offer, Policy
from cloudarb.forecasts.demand import apply_demand_bounds, record_allocation_usage
from cloudarb.jobs.errors import JobInputError
from cloudarb.jobs.runtime import JobContext
from cloudarb.optimize import policy_store
from cloudarb.optimize import store as opt_store
from cloudarb.optimize.jobs import finish, load_request, solve_request
from optimizer.schemas import CurrentLine


def _current(jc: JobContext, policy: Policy) -> tuple[list[CurrentLine], float | None]:
    """The adopted allocation and its cost at current prices (None if any of its offers is gone)."""
    if policy.current_optimization_id is None:
        return [], None
    with jc.ctx.db.session() as session:
        lines = opt_store.allocations(session, optimization_id=policy.current_optimization_id)
        keys = {ln.offer_key for ln in lines}
        rows = session.execute(select(Offer.offer_key, Offer.price_per_hour).where(Offer.offer_key.in_(keys)))
        prices = {key: price for key, price in rows}
    current = [CurrentLine(workload_id=ln.workload_id, offer_id=ln.offer_key, instances=ln.instances) for ln in lines]
    if not lines or keys - prices.keys():
        return current, None
    return current, sum(ln.instances * prices[ln.offer_key] for ln in lines)


def _adopt_payload(policy: Policy, optimization_id: str, current: float | None, new: float | None,
                   savings_pct: float | None) -> dict[str, object]:
    """The ``policy.adopt`` hook event: "switch now saves $X/h" (X unknown on a first run)."""
    per_hour = current - new if current is not None and new is not None else None
    return {"policy_id": policy.id, "policy_name": policy.name, "optimization_id": optimization_id,
            "previous_optimization_id": policy.current_optimization_id, "current_cost_per_hour": current,
            "new_cost_per_hour": new, "savings_per_hour": per_hour, "savings_pct": savings_pct}


def decide(current_cost: float | None, new_cost: float | None, threshold_pct: float) -> tuple[str, float | None]:
    if new_cost is None:
        return "keep_current", None
    if current_cost is None:
        return "adopt", None
    if current_cost <= 0:
        return "keep_current", 0.0
    savings = (current_cost - new_cost) / current_cost * 100.0
    return ("adopt" if savings >= threshold_pct else "keep_current"), savings


def body(jc: JobContext) -> str:
    req = load_request(jc)
    with jc.ctx.db.session() as session:
        opt = opt_store.get_unscoped(session, optimization_id=jc.target_id)
        policy = session.get(Policy, opt.policy_id) if opt is not None and opt.policy_id else None
        if policy is None:
            raise JobInputError(f"optimization {jc.target_id} belongs to no policy")
        req, demand = apply_demand_bounds(session, jc.ctx.settings, organization_id=policy.organization_id,
                                          policy_id=policy.id, request=req)
    if demand:
        used = {w: d["gpus_min"] for w, d in demand.items() if d.get("applied")}
        jc.progress("demand", percent=4, message=f"forecast GPU requirements: {used or 'none fresh'}", demand=demand)
    current, current_cost = _current(jc, policy)
    solution, considered, as_of = solve_request(jc, req, current=current)
    new_cost = solution.totals.cost_per_hour if solution.totals and solution.status != "infeasible" else None
    decision, savings = decide(current_cost, new_cost, policy.keep_threshold_pct)
    with jc.ctx.db.session() as session:
        opt_store.store_solution(
            session,
            optimization_id=jc.target_id,
            solution=solution,
            offers_considered=considered,
            prices_as_of=as_of,
            extra={"policy_decision": decision, "current_cost_per_hour": current_cost, "savings_vs_current_pct": savings,
                   **({"demand_bounds": demand} if demand else {})},
        )
        run = policy_store.run_for_optimization(session, optimization_id=jc.target_id)
        if run is not None:
            run.decision = decision
            run.current_cost_per_hour = current_cost
            run.new_cost_per_hour = new_cost
            run.savings_pct = savings
        adopted = None
        if decision == "adopt":
            fresh = session.get(Policy, policy.id)
            if fresh is not None:
                fresh.current_optimization_id = jc.target_id
            in_force = [(a.workload_id, a.gpus) for a in solution.allocations if not a.period]
            adopted = hooks.emit(session, policy.organization_id, "policy.adopt", _adopt_payload(
                policy, jc.target_id, current_cost, new_cost, savings), blocking=False, subject_id=policy.id,
                settings=jc.ctx.settings)
        else:
            in_force = [(ln.workload_id, ln.gpus) for ln in opt_store.allocations(
                session, optimization_id=policy.current_optimization_id)] if policy.current_optimization_id else []
        if in_force:
            record_allocation_usage(session, organization_id=policy.organization_id, lines=in_force,
                                    workload_ids=[w.id for w in req.workloads])
    if adopted is not None:
        hooks.start(jc.ctx, adopted)
    what = "adopted" if decision == "adopt" else "keeping the current allocation"
    detail = f" ({savings:.1f}% vs current, threshold {policy.keep_threshold_pct}%)" if savings is not None else ""
    jc.progress("decision", percent=99, message=f"{what}{detail}", decision=decision)
    return finish(jc, solution)
