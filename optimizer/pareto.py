"""Pareto sets by the epsilon-constraint method: minimize cost with the other criterion bounded.

Cost vs risk: the risk axis is the CVaR of hourly cost when offers carry price scenarios, else
the expected interruption cost. The two ends are the cheapest solution and the least risky one
(risk minimized, cost as a tie-break); the points between cap the risk at evenly spaced levels
and minimize cost. Cost vs performance is the same with a floor on the performance score between
the cheapest solution's and the best one's. Each point is an ordinary solve (same pipeline, a
share of the time limit), so every point is a feasible allocation with its own guarantees;
points another point beats on both criteria are dropped. ``axis`` is 0.0 for the cost-risk curve
and 1.0 for the cost-performance curve (the field is a dict of floats). With scenarios, the
least-risky end minimizes the CVaR excess over the mean cost, so the curve's far end is a good
low-risk point rather than the exact CVaR minimum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optimizer.schemas import ParetoFronts, ParetoPoint, Problem, Solution, SolveConfig, Weights

Solver = Callable[[Problem, SolveConfig], Solution]
RISK_AXIS = 0.0
PERFORMANCE_AXIS = 1.0


def _point(sol: Solution, axis: float, uses_cvar: bool) -> dict[str, float] | None:
    if sol.totals is None:
        return None
    risk = sol.risk.cvar_cost_per_hour if uses_cvar else sol.risk.expected_interruption_cost_per_hour
    return {
        "axis": axis,
        "cost_per_hour": sol.totals.cost_per_hour,
        "risk_per_hour": float(risk or 0.0),
        "performance": sol.totals.performance_score,
        "expected_interruption_cost_per_hour": sol.risk.expected_interruption_cost_per_hour,
        "cvar_cost_per_hour": float(sol.risk.cvar_cost_per_hour or 0.0),
        "gap": float(sol.stats.gap or 0.0),
    }


def _non_dominated(points: list[dict[str, float]], key: str, better_low: bool) -> list[dict[str, float]]:
    """Drop points another point beats on both cost and the axis criterion."""
    sign = 1.0 if better_low else -1.0
    keep: list[dict[str, float]] = []
    for p in points:
        beaten = any(
            q is not p and q["cost_per_hour"] <= p["cost_per_hour"] + 1e-9 and sign * q[key] <= sign * p[key] + 1e-9
            and (q["cost_per_hour"] < p["cost_per_hour"] - 1e-9 or sign * q[key] < sign * p[key] - 1e-9)
            for q in points
        )
        same = any(abs(q["cost_per_hour"] - p["cost_per_hour"]) <= 1e-9 and abs(q[key] - p[key]) <= 1e-9
                   for q in keep)
        if not beaten and not same:
            keep.append(p)
    return sorted(keep, key=lambda p: p["cost_per_hour"])


def pareto_set(problem: Problem, config: SolveConfig,
               solve: Solver) -> tuple[list[dict[str, float]], ParetoFronts]:
    """(every point as a flat dict with its ``axis``, the same points as typed fronts)."""
    n = config.pareto_points
    axes = ["risk", "performance"] if config.pareto_axis == "both" else [config.pareto_axis]
    per_solve = config.model_copy(update={
        "pareto_points": 0, "compute_baselines": False, "isolate": "never",
        "time_limit_s": max(0.5, config.time_limit_s / max(1, n * len(axes))),
    })
    base = problem.model_copy(update={"objective": "cost", "pareto_points": None})
    cheapest = solve(base, per_solve)
    if cheapest.totals is None:
        return [], ParetoFronts()
    out: list[dict[str, Any]] = []
    fronts: dict[str, list[ParetoPoint]] = {"cost_risk": [], "cost_performance": []}
    for axis in axes:
        if axis == "risk":
            curve = _risk_curve(base, cheapest, per_solve, solve, n)
            fronts["cost_risk"] = [_typed(p) for p in curve]
        else:
            curve = _performance_curve(base, cheapest, per_solve, solve, n)
            fronts["cost_performance"] = [_typed(p) for p in curve]
        out += curve
    return out, ParetoFronts(**fronts)


def _typed(p: dict[str, float]) -> ParetoPoint:
    return ParetoPoint(**{k: v for k, v in p.items() if k != "axis"})


def _risk_curve(base: Problem, cheapest: Solution, cfg: SolveConfig, solve: Solver, n: int) -> list[dict[str, float]]:
    uses_cvar = any(o.price_scenarios for o in base.offers)
    if uses_cvar:
        safest = solve(base.model_copy(update={"objective": "weighted", "risk_tolerance": 0.0,
                                               "weights": Weights(cost=1e-3, risk=1.0)}), cfg)
        hi, lo = cheapest.risk.cvar_cost_per_hour, safest.risk.cvar_cost_per_hour
    else:
        safest = solve(base.model_copy(update={"objective": "weighted",
                                               "weights": Weights(cost=1e-3, risk=1.0)}), cfg)
        hi = cheapest.risk.expected_interruption_cost_per_hour
        lo = safest.risk.expected_interruption_cost_per_hour
    points = [_point(cheapest, 0.0, uses_cvar)]
    if hi is not None and lo is not None and safest.totals is not None and hi > lo + 1e-9:
        for k in range(1, max(1, n - 1)):
            cap = hi - (hi - lo) * k / max(1, n - 1)
            field = "max_cvar_per_hour" if uses_cvar else "max_expected_interruption_cost_per_hour"
            points.append(_point(solve(base.model_copy(update={field: cap}), cfg), 0.0, uses_cvar))
        points.append(_point(safest, 0.0, uses_cvar))
    return _non_dominated([p for p in points if p is not None], "risk_per_hour", True)[:n]


def _performance_curve(base: Problem, cheapest: Solution, cfg: SolveConfig, solve: Solver,
                       n: int) -> list[dict[str, float]]:
    best = solve(base.model_copy(update={"objective": "performance"}), cfg)
    points = [_point(cheapest, 1.0, False)]
    if best.totals is not None and cheapest.totals is not None:
        lo, hi = cheapest.totals.performance_score, best.totals.performance_score
        if hi > lo + 1e-9:
            for k in range(1, max(1, n - 1)):
                floor = lo + (hi - lo) * k / max(1, n - 1)
                points.append(_point(solve(base.model_copy(update={"min_performance": floor}), cfg), 1.0, False))
            points.append(_point(best, 1.0, False))
    return _non_dominated([p for p in points if p is not None], "performance", False)[:n]
