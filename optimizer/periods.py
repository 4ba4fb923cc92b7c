"""Exact decomposition of a multi-period problem into one model per period.

When no constraint or cost links periods (no migration cost between them, no CVaR over the whole
horizon, no horizon-wide risk cap or performance floor), the objective (1/T) sum_t C_t separates
and each period is an ordinary single-period model priced at that period's prices. The presolve
(which already compared offers on all their period prices) and the pair list are shared; only
the prices change between the T small models. Solving T small models is far faster than one
T-times larger one, and the mean of the per-period bounds is a valid bound for the horizon.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from typing import Literal

import numpy as np

from optimizer.backends import Backend
from optimizer.errors import InvalidProblemError
from optimizer.model import AllocationModel, MatrixModel
from optimizer.presolve import Classes, Pairs
from optimizer.schemas import BindingConstraint, Problem, SolveConfig
from optimizer.strategy import Outcome, Reporter, solve_decomposed
from optimizer.tables import OfferTable, WorkloadTable

PERIOD_GAP = 2e-3  # each period stops once within 0.2% of its bound, leaving time to the others
_FIRST_PASS_SHARE = 0.9
_FIRST_PERIOD_BOOST = 4.0


def separable(problem: Problem) -> bool:
    if not any(o.price_per_period for o in problem.offers):
        return False
    linked = (
        problem.migration_cost_per_gpu > 0
        or problem.max_expected_interruption_cost_per_hour is not None
        or problem.min_performance is not None
        or any(o.price_scenarios for o in problem.offers)
    )
    return not linked


@dataclass
class PeriodResult:
    outcome: Outcome
    model: MatrixModel
    layout: AllocationModel


def solve_periods(problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes, pairs: Pairs,
                  backend: Backend, config: SolveConfig, deadline: float, report: Reporter
                  ) -> tuple[Outcome, list[BindingConstraint], PeriodResult | None]:
    """Solve period by period; returns the merged outcome (x over all T x P columns), the binding
    constraints of every period, and the failing period's result when one is infeasible."""
    if offers.periods is None:
        raise InvalidProblemError("solve_periods needs per-period prices", field="price_per_period")
    T = offers.periods.shape[0]
    cfg = config.model_copy(update={"relative_gap": max(config.relative_gap, PERIOD_GAP)})
    results: dict[int, PeriodResult] = {}
    warm = None
    for attempt in range(2):
        todo = [t for t in range(T) if t not in results or results[t].outcome.x is None]
        for i, t in enumerate(todo):
            left = deadline - time.perf_counter()
            if attempt == 1 and left <= 0.05:
                break
            weight = _FIRST_PASS_SHARE if attempt == 0 else 1.0
            # The first period has no warm start and gets a larger share; later ones start from
            # their predecessor's allocation, which stays feasible unless the budget binds.
            share = weight * left / (len(todo) - i) * (_FIRST_PERIOD_BOOST if warm is None else 1.0)
            period_deadline = time.perf_counter() + max(0.2, min(share, 0.5 * left))
            priced = dataclasses.replace(offers, price=offers.periods[t], periods=None)
            layout = AllocationModel(problem, priced, workloads, classes, pairs)
            model = layout.build()
            sub_report = Reporter(report.callback, report.sign, report.start, report.limit)
            out = solve_decomposed(model, layout, backend, cfg, period_deadline, sub_report, warm=warm)
            if out.x is not None:
                warm = out.x[: model.n_x]
            if out.status == "infeasible":
                return out, [], PeriodResult(out, model, layout)
            if t not in results or out.x is not None:
                results[t] = PeriodResult(out, model, layout)
            report(f"period {t}", out.status, out.objective, out.bound)
    return _merge(results, T), _binding(results), None


def _merge(results: dict[int, PeriodResult], T: int) -> Outcome:
    outs = [results[t].outcome for t in range(T)]
    phases: dict[str, float] = {}
    for o in outs:
        for k, v in o.phases.items():
            phases[k] = phases.get(k, 0.0) + v
    engines = list(dict.fromkeys(e for o in outs for e in o.engines))
    bound = None if any(o.bound is None for o in outs) else float(np.mean([o.bound for o in outs]))
    if any(o.x is None for o in outs):
        return Outcome("no_solution", None, None, bound, None, engines, phases)
    x = np.concatenate([o.x[: results[t].model.n_x] for t, o in enumerate(outs)])  # type: ignore[index]
    objective = float(np.mean([o.objective for o in outs]))
    status: Literal["optimal", "feasible"] = "optimal" if all(o.status == "optimal" for o in outs) else "feasible"
    lp_values = [o.lp.objective for o in outs if o.lp is not None and o.lp.objective is not None]
    merged = Outcome(status, x, objective, bound, None, engines, phases)
    merged.lp_bound = float(np.mean(lp_values)) if len(lp_values) == T else None
    return merged


def _binding(results: dict[int, PeriodResult]) -> list[BindingConstraint]:
    from optimizer.report import binding_constraints

    out: list[BindingConstraint] = []
    for t, r in sorted(results.items()):
        out += [b.model_copy(update={"name": f"{b.name}@t{t}"})
                for b in binding_constraints(r.model, r.outcome.lp, 1.0)]
    out.sort(key=lambda b: -abs(b.shadow_price))
    return out[:30]
