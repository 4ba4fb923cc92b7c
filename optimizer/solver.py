"""``solve(problem, config, progress=...)``: the whole pipeline from Problem to Solution.

presolve -> vectorised model -> (decomposed | direct) solve -> diagnosis when infeasible ->
allocation lines, totals, risk, savings, binding constraints -> optional Pareto sweep.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from optimizer.backends import Backend, get_backend
from optimizer.baselines import savings
from optimizer.errors import SolverFailedError
from optimizer.diagnose import capacity_reasons, elastic_reasons, no_offer_reasons
from optimizer import lazy
from optimizer.model import AllocationModel
from optimizer.pareto import pareto_set
from optimizer.periods import separable, solve_periods
from optimizer.presolve import Classes, Pairs, build_classes, build_pairs
from optimizer.report import allocation_lines, binding_constraints, disaggregate, risk_metrics, totals
from optimizer.schemas import BindingConstraint, Problem, Progress, Solution, SolveConfig, SolverStats
from optimizer.strategy import Outcome, Reporter, rel_gap, solve_decomposed, solve_direct
from optimizer.tables import CompatLookup, OfferTable, WorkloadTable, offer_table, workload_table

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


def solve_here(problem: Problem, config: SolveConfig, progress: ProgressCallback | None = None) -> Solution:
    """Solve in the calling process (``optimizer.solve`` may instead isolate it in a child)."""
    start = time.perf_counter()
    deadline = start + config.time_limit_s
    backend = get_backend(config.backend)
    sign = -1.0 if problem.objective == "performance" else 1.0
    report = Reporter(progress, sign, start, config.time_limit_s)
    report("presolve", f"{len(problem.offers)} offers x {len(problem.workloads)} workloads")

    offers = offer_table(problem)
    workloads = workload_table(problem, offers)
    lookup = CompatLookup.build(problem, offers, workloads)
    classes = build_classes(problem, lookup, enabled=config.presolve)
    pairs = build_pairs(problem, lookup, classes)
    stats = dict(backend=backend.name, presolve_offers_removed=classes.removed,
                 sense="max" if sign < 0 else "min")

    missing = np.flatnonzero(np.bincount(pairs.w, minlength=workloads.n) == 0)
    if len(missing):
        reason = " ".join(no_offer_reasons(problem, lookup, missing) + capacity_reasons(lookup, pairs))
        return _infeasible(reason, stats, time.perf_counter() - start, 0.0, progress)

    report("build", f"{pairs.n} compatible pairs after presolve")
    if config.method == "auto" and lazy.applicable(problem, pairs):
        return _solve_lazy(problem, config, offers, workloads, classes, pairs, lookup, backend, stats, start, deadline,
                           sign, report, progress)
    layout = AllocationModel(problem, offers, workloads, classes, pairs)
    if config.method == "auto" and separable(problem):
        return _solve_separable(problem, config, layout, lookup, backend, stats, start, deadline, sign, report,
                                progress)
    model = layout.build()
    build_s = time.perf_counter() - start
    stats.update(variables=model.shape[1], constraints=model.shape[0])
    log.info("model built: %d columns, %d rows, %.2fs", model.shape[1], model.shape[0], build_s)

    short = capacity_reasons(lookup, pairs)
    if short:
        return _infeasible(" ".join(short), stats, build_s, 0.0, progress)

    if config.method == "direct":
        outcome = solve_direct(model, backend, config, deadline, report)
    else:
        outcome = solve_decomposed(model, layout, backend, config, deadline, report)
    solve_s = time.perf_counter() - start - build_s
    stats.update(engine="+".join(dict.fromkeys(outcome.engines)), phases={"build": build_s, **outcome.phases})

    if outcome.status == "infeasible":
        report("diagnose", "relaxing constraints to find the reason")
        reasons = elastic_reasons(problem, model, backend, integer=outcome.infeasible_stage == "mip",
                                  time_limit=max(1.0, min(30.0, config.time_limit_s)))
        reason = " ".join(reasons) or (
            "no allocation satisfies every constraint with whole instances, although a fractional one would."
            if outcome.infeasible_stage == "mip" else "the constraints contradict each other."
        )
        return _infeasible(reason, stats, build_s, solve_s, progress,
                           lp_bound=None if outcome.lp is None else outcome.lp.objective)
    if outcome.x is None:
        lp_bound = None if outcome.lp is None else outcome.lp.objective
        sol = Solution(
            status="no_solution",
            stats=SolverStats(status="no_solution", best_bound=_signed(sign, outcome.bound), build_seconds=build_s,
                              solve_seconds=solve_s, lp_bound=_signed(sign, lp_bound), **stats),
            infeasibility_reason=f"no feasible allocation was found within the time limit of "
            f"{config.time_limit_s:g} s; the problem may still be feasible (raise the limit).",
        )
        report("done", "no solution within the time limit", None, outcome.bound)
        return sol
    return _assemble(problem, config, layout, model, outcome, lookup, stats, build_s, solve_s, sign, report)


def _solve_lazy(problem: Problem, config: SolveConfig, offers: OfferTable, workloads: WorkloadTable,  # noqa: PLR0913
                classes: Classes, pairs: Pairs, lookup: CompatLookup, backend: Backend, stats: dict,  # type: ignore[type-arg]
                start: float, deadline: float, sign: float, report: Reporter,
                progress: ProgressCallback | None) -> Solution:
    short = capacity_reasons(lookup, pairs)
    if short:
        return _infeasible(" ".join(short), stats, time.perf_counter() - start, 0.0, progress)
    build_s = time.perf_counter() - start
    report("lp", f"column generation over {pairs.n} pairs")
    must = np.zeros(pairs.n, dtype=bool)
    if problem.current_allocation:
        wanted = {(l.workload_id, l.offer_id) for l in problem.current_allocation}
        must = np.array([(workloads.ids[w], offers.ids[o]) in wanted for w, o in zip(pairs.w, pairs.o, strict=True)])
    t0 = time.perf_counter()
    layout, model, lp, active, rc, converged = lazy.solve_lp_lazy(
        problem, offers, workloads, classes, pairs, backend,
        deadline=time.perf_counter() + 0.3 * (deadline - time.perf_counter()), must=must)
    lp_s = time.perf_counter() - t0
    stats.update(variables=model.shape[1], constraints=model.shape[0])
    if lp is None or lp.status != "optimal":
        status = "infeasible" if lp is not None and lp.status == "infeasible" else "no_solution"
        if status == "infeasible":
            reasons = elastic_reasons(problem, model, backend, integer=False, time_limit=30.0)
            return _infeasible(" ".join(reasons) or "the constraints contradict each other.", stats, build_s,
                               time.perf_counter() - start - build_s, progress)
        return Solution(status="no_solution", stats=SolverStats(status="no_solution", build_seconds=build_s,
                        solve_seconds=time.perf_counter() - start - build_s, **stats),
                        infeasibility_reason="the LP relaxation did not finish within the time limit.")
    lp = dataclasses.replace(lp, seconds=lp_s)
    bound, penalty = lazy.full_bound(layout, model, lp, pairs, active, rc)
    out_idx = np.flatnonzero(~active)
    # Without convergence the restricted LP value is no bound and reduced costs fix nothing outside.
    rc_out = rc[out_idx] if converged else np.full(len(out_idx), -np.inf)
    outcome = solve_decomposed(model, layout, backend, config, deadline, report, lp=lp,
                               outside=(bound, rc_out, penalty[out_idx]))
    if not converged:
        outcome.lp = None
        outcome.lp_bound = None
    solve_s = time.perf_counter() - start - build_s
    stats.update(engine="lazy-colgen:" + "+".join(dict.fromkeys(outcome.engines)),
                 phases={"build": build_s, **outcome.phases})
    if outcome.x is None:
        return Solution(status="no_solution", stats=SolverStats(
                        status="no_solution", build_seconds=build_s, solve_seconds=solve_s,
                        best_bound=_signed(sign, bound), lp_bound=_signed(sign, lp.objective) if converged else None,
                        **stats),
                        infeasibility_reason=f"no feasible allocation was found within the time limit of "
                        f"{config.time_limit_s:g} s; the problem may still be feasible (raise the limit).")
    return _assemble(problem, config, layout, model, outcome, lookup, stats, build_s, solve_s, sign, report)


def _solve_separable(problem: Problem, config: SolveConfig, layout: AllocationModel, lookup: CompatLookup,
                     backend: Backend, stats: dict, start: float, deadline: float, sign: float,  # type: ignore[type-arg]
                     report: Reporter, progress: ProgressCallback | None) -> Solution:
    build_s = time.perf_counter() - start
    outcome, binding, failed = solve_periods(problem, layout.offers, layout.workloads, layout.classes, layout.pairs,
                                             backend, config, deadline, report)
    solve_s = time.perf_counter() - start - build_s
    stats.update(engine="per-period:" + "+".join(outcome.engines), phases={"build": build_s, **outcome.phases},
                 variables=layout.T * layout.P, constraints=0)
    if failed is not None:
        reasons = elastic_reasons(problem, failed.model, backend, integer=outcome.infeasible_stage == "mip",
                                  time_limit=max(1.0, min(30.0, config.time_limit_s)))
        return _infeasible("in one period: " + (" ".join(reasons) or "the constraints contradict each other."),
                           stats, build_s, solve_s, progress)
    if outcome.x is None:
        return Solution(
            status="no_solution",
            stats=SolverStats(status="no_solution", best_bound=_signed(sign, outcome.bound), build_seconds=build_s,
                              solve_seconds=solve_s, **stats),
            infeasibility_reason="no feasible allocation was found for every period within the time limit of "
            f"{config.time_limit_s:g} s; the problem may still be feasible (raise the limit).",
        )
    return _assemble(problem, config, layout, None, outcome, lookup, stats, build_s, solve_s, sign, report,
                     binding=binding)


def _signed(sign: float, v: float | None) -> float | None:
    return None if v is None else sign * v


def _infeasible(reason: str, stats: dict, build_s: float, solve_s: float,  # type: ignore[type-arg]
                progress: ProgressCallback | None, lp_bound: float | None = None) -> Solution:
    if progress is not None:
        progress(Progress(phase="done", percent=100.0, message=reason))
    return Solution(
        status="infeasible",
        stats=SolverStats(status="infeasible", build_seconds=build_s, solve_seconds=solve_s, **stats),
        infeasibility_reason=reason,
    )


def _assemble(problem: Problem, config: SolveConfig, layout: AllocationModel, model, outcome: Outcome,  # type: ignore[no-untyped-def]
              lookup: CompatLookup, stats: dict, build_s: float, solve_s: float, sign: float,  # type: ignore[type-arg]
              report: Reporter, binding: list[BindingConstraint] | None = None) -> Solution:
    if outcome.x is None or outcome.objective is None:
        raise SolverFailedError("internal: assembling a solution without one", backend=config.backend)
    x = outcome.x
    lines = disaggregate(layout, x)
    tot = totals(problem, layout, model, x)
    status = outcome.status
    gap = rel_gap(outcome.objective, outcome.bound)
    lp_bound = outcome.lp_bound if outcome.lp is None else outcome.lp.objective
    sol = Solution(
        status=status if status in ("optimal", "feasible") else "feasible",
        allocations=allocation_lines(problem, layout, lines),
        totals=tot,
        risk=risk_metrics(problem, layout, x),
        savings=savings(lookup, tot.cost_per_hour) if config.compute_baselines else [],
        binding_constraints=binding if binding is not None else binding_constraints(model, outcome.lp, sign),
        stats=SolverStats(
            status=status,
            objective=sign * outcome.objective,
            best_bound=_signed(sign, outcome.bound),
            gap=gap,
            build_seconds=build_s,
            solve_seconds=solve_s,
            lp_bound=_signed(sign, lp_bound),
            **stats,
        ),
    )
    if config.pareto_points > 0:
        report("pareto", f"sweeping {config.pareto_points} points per trade-off")
        sol = sol.model_copy(update={"pareto": pareto_set(problem, config, solve_here)})
    report("done", status, outcome.objective, outcome.bound)
    return sol
