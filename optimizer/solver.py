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

from optimizer import lazy
from optimizer.backends import Backend, LpResult, get_backend
from optimizer.baselines import savings
from optimizer.batches import improve_in_batches
from optimizer.diagnose import capacity_reasons, elastic_reasons, no_offer_reasons
from optimizer.errors import SolverFailedError
from optimizer.greedy import greedy_fill
from optimizer.model import AllocationModel, MatrixModel
from optimizer.pareto import pareto_set
from optimizer.periods import separable, solve_periods
from optimizer.placement import keep_placements, needs_choice, placement_reasons
from optimizer.presolve import Classes, Pairs, build_classes, build_pairs
from optimizer.report import allocation_lines, binding_constraints, disaggregate, risk_metrics, totals
from optimizer.schemas import BindingConstraint, Problem, Progress, Solution, SolveConfig, SolverStats
from optimizer.strategy import Outcome, Reporter, rel_gap, solve_decomposed, solve_direct
from optimizer.tables import (
    BoolArray,
    CompatLookup,
    FloatArray,
    OfferTable,
    WorkloadTable,
    offer_table,
    workload_table,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


ASSEMBLY_RESERVE_MAX_S = 0.5
ASSEMBLY_RESERVE_SHARE = 0.08

def solve_here(problem: Problem, config: SolveConfig, progress: ProgressCallback | None = None) -> Solution:
    """Solve in the calling process (``optimizer.solve`` may instead isolate it in a child)."""
    start = time.perf_counter()
    if problem.pareto_points is not None:
        config = config.model_copy(update={"pareto_points": problem.pareto_points})
    # The search stops early enough for the solution's assembly (allocation lines, risk, binding
    # constraints, baselines) to fit in the limit too; the period path keeps its own reserve.
    full_deadline = start + config.time_limit_s
    deadline = full_deadline - min(ASSEMBLY_RESERVE_MAX_S, ASSEMBLY_RESERVE_SHARE * config.time_limit_s)
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

    # Capacity first (the broader reason), then whether each workload that must stay together fits somewhere.
    short = capacity_reasons(lookup, pairs) or placement_reasons(offers, workloads, pairs, classes.cap)
    if short:
        return _infeasible(" ".join(short), stats, time.perf_counter() - start, 0.0, progress)

    report("build", f"{pairs.n} compatible pairs after presolve")
    if config.method == "auto" and lazy.applicable(problem, pairs):
        if not needs_choice(offers, workloads, pairs):
            return _solve_lazy(problem, config, offers, workloads, classes, pairs, lookup, backend, stats, start,
                               deadline, sign, report, progress)
        placed = _solve_placed(problem, config, offers, workloads, classes, pairs, lookup, backend, stats, start,
                               deadline, sign, report, progress)
        if placed is not None:
            return placed
    # The plain reference ("direct") gets the untightened model, as an out-of-the-box MILP would.
    layout = AllocationModel(problem, offers, workloads, classes, pairs, tighten=config.method != "direct")
    if config.method == "auto" and separable(problem):
        return _solve_separable(problem, config, layout, lookup, backend, stats, start, full_deadline, sign, report,
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
        warm = None
        if layout.combos.n and layout.T == 1:
            # Workloads choosing a placement: the LP spreads them, so its dive rarely gives a first plan at
            # fleet size (200 x 10,000: none in 9 s). The greedy keeps each in one placement.
            t0 = time.perf_counter()
            warm = greedy_fill(problem, offers, workloads, classes, pairs, offers.price[pairs.o] + pairs.extra,
                               deadline=t0 + 0.2 * (deadline - t0))
            report("greedy", "a first plan with every workload in one placement" if warm is not None
                   else "no greedy plan")
        outcome = solve_decomposed(model, layout, backend, config, deadline, report, warm=warm)
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


def _solve_lazy(problem: Problem, config: SolveConfig, offers: OfferTable, workloads: WorkloadTable,
                classes: Classes, pairs: Pairs, lookup: CompatLookup, backend: Backend, stats: dict,  # type: ignore[type-arg]
                start: float, deadline: float, sign: float, report: Reporter,
                progress: ProgressCallback | None, greedy: FloatArray | None = None,
                active: BoolArray | None = None) -> Solution:
    """Pairs beyond LAZY_MIN_PAIRS: LP by column generation, then the focused integer solves. From
    FLEET_MIN_PAIRS on, a greedy plan over every pair comes first: it seeds column generation, is
    compared with an LP-guided greedy, improved by the batch search and handed over as the warm
    start. Below, the greedy plan is made only if the LP does not finish (as the answer, no gap)."""
    short = capacity_reasons(lookup, pairs)
    if short:
        return _infeasible(" ".join(short), stats, time.perf_counter() - start, 0.0, progress)
    build_s = time.perf_counter() - start
    big = pairs.n >= lazy.FLEET_MIN_PAIRS
    fleet = big or greedy is not None  # a greedy plan given (placement decomposition) is used as at fleet size
    t0 = time.perf_counter()
    plain_cost = offers.price[pairs.o] + pairs.extra
    gx = greedy
    if gx is None and fleet:
        report("greedy", f"fleet-feasible greedy over {pairs.n} pairs")
        gx = greedy_fill(problem, offers, workloads, classes, pairs, plain_cost, deadline=deadline)
    greedy_s = time.perf_counter() - t0
    must = np.zeros(pairs.n, dtype=bool) if active is None else active.copy()
    if problem.current_allocation:
        wanted = {(a.workload_id, a.offer_id) for a in problem.current_allocation}
        must |= np.array([(workloads.ids[w], offers.ids[o]) in wanted for w, o in zip(pairs.w, pairs.o, strict=True)])
    report("lp", f"column generation over {pairs.n} pairs")
    t0 = time.perf_counter()
    layout, model, lp, active, rc, converged = lazy.solve_lp_lazy(
        problem, offers, workloads, classes, pairs, backend,
        deadline=time.perf_counter() + 0.6 * (deadline - time.perf_counter()), must=must,
        seed=None if gx is None or not fleet else gx > 0,
        signature=lookup.signatures()[0] if big and greedy is None else None)
    lp_s = time.perf_counter() - t0
    stats.update(variables=model.shape[1], constraints=model.shape[0])
    phases = {"build": build_s, "greedy": greedy_s} if fleet else {"build": build_s}
    if lp is None or lp.status != "optimal":
        status = "infeasible" if lp is not None and lp.status == "infeasible" else "no_solution"
        if status == "infeasible":
            reasons = elastic_reasons(problem, model, backend, integer=False, time_limit=30.0)
            return _infeasible(" ".join(reasons) or "the constraints contradict each other.", stats, build_s,
                               time.perf_counter() - start - build_s, progress)
        if gx is None and not fleet:
            gx = greedy_fill(problem, offers, workloads, classes, pairs, plain_cost)
        if gx is not None:
            # No LP and so no bound: the greedy plan is still a valid answer, with no gap claimed.
            g_layout, g_model, g_out = _fixed_outcome(problem, offers, workloads, classes, pairs, gx, "greedy")
            stats.update(engine="lazy-greedy", phases={**phases, "lp": lp_s})
            return _assemble(problem, config, g_layout, g_model, g_out, lookup, stats, build_s,
                             time.perf_counter() - start - build_s, sign, report)
        return Solution(status="no_solution", stats=SolverStats(status="no_solution", build_seconds=build_s,
                        solve_seconds=time.perf_counter() - start - build_s, **stats),
                        infeasibility_reason="the LP relaxation did not finish within the time limit.")
    lp = dataclasses.replace(lp, seconds=lp_s)
    t0 = time.perf_counter()
    if converged and deadline - t0 < 0.25 * config.time_limit_s:
        # Short of time: the converged LP is a bound on its own, and reduced costs alone fix pairs
        # outside (the Lagrangian pass over millions of pairs costs seconds).
        bound = lp.objective if lp.objective is not None else -np.inf
        penalty = np.full(pairs.n, -np.inf)
    else:
        bound, penalty = lazy.full_bound(layout, model, lp, pairs, active, rc)
    phases["full_bound"] = time.perf_counter() - t0
    act_idx = np.flatnonzero(active)
    warm = None
    if fleet:
        warm = _best_warm(problem, offers, workloads, classes, layout, model, lp, None if gx is None else gx[act_idx])
    if warm is not None:
        t0 = time.perf_counter()
        # At this scale the focused solves rarely improve on the plan (measured: none in 27 s at
        # 1000 x 20000) while each pass here does, so it gets most of the time.
        lns_deadline = t0 + 0.85 * (deadline - t0)
        point = layout.complete(warm, model.shape[1])
        report("batches", "re-solving batches of workloads around the greedy plan", model.objective(point), bound)
        found = report.throttled("batches", "a batch of workloads improved the plan", bound)
        for k in (8, 24, 48, 96, 192, 384):  # wider neighbourhoods on each pass
            if time.perf_counter() >= lns_deadline:
                break
            point = improve_in_batches(model, layout, lp, point, backend, deadline=lns_deadline,
                                       threads=config.threads, per_workload=k, on_improve=found)
        warm = point[: model.n_x]
        phases["batches_lns"] = time.perf_counter() - t0
    out_idx = np.flatnonzero(~active)
    # Without convergence the restricted LP value is no bound and reduced costs fix nothing outside.
    rc_out = rc[out_idx] if converged else np.full(len(out_idx), -np.inf)
    outcome = solve_decomposed(model, layout, backend, config, deadline, report, lp=lp, warm=warm,
                               outside=(bound, rc_out, penalty[out_idx]))
    if not converged:
        outcome.lp = None
        outcome.lp_bound = None
    solve_s = time.perf_counter() - start - build_s
    stats.update(engine="lazy-colgen:" + "+".join(dict.fromkeys(outcome.engines)),
                 phases={**phases, **outcome.phases})
    if outcome.x is None:
        return Solution(status="no_solution", stats=SolverStats(
                        status="no_solution", build_seconds=build_s, solve_seconds=solve_s,
                        best_bound=_signed(sign, bound), lp_bound=_signed(sign, lp.objective) if converged else None,
                        **stats),
                        infeasibility_reason=f"no feasible allocation was found within the time limit of "
                        f"{config.time_limit_s:g} s; the problem may still be feasible (raise the limit).")
    return _assemble(problem, config, layout, model, outcome, lookup, stats, build_s, solve_s, sign, report)


PLACEMENTS_KEPT = 3
"""Placements a workload that must stay together keeps in the placement decomposition (``_solve_placed``)."""


def _solve_placed(problem: Problem, config: SolveConfig, offers: OfferTable, workloads: WorkloadTable,
                  classes: Classes, pairs: Pairs, lookup: CompatLookup, backend: Backend, stats: dict,  # type: ignore[type-arg]
                  start: float, deadline: float, sign: float, report: Reporter,
                  progress: ProgressCallback | None) -> Solution | None:
    """Fleet-size co-location by decomposition (``optimizer.placement``). The placement-aware greedy
    makes a plan at plain prices; the LP of the whole problem with every placement rule relaxed (lazy
    column generation over every pair) gives a valid bound and shadow prices, at which the greedy makes
    a second plan; each workload that must stay together keeps the placement of the cheaper plan and its
    next ``PLACEMENTS_KEPT - 1`` (``placement.keep_placements``), the other pairs of such workloads are
    dropped, and the restricted problem takes the lazy path from that plan, its placed pairs always in
    the master. None when the greedy finds no plan (the caller builds the whole model instead)."""
    report("greedy", "a first plan with every workload that must stay together in one placement")
    t0 = time.perf_counter()
    plain = offers.price[pairs.o] + pairs.extra
    gx = greedy_fill(problem, offers, workloads, classes, pairs, plain, deadline=t0 + 0.3 * (deadline - t0))
    phases = {"place_greedy": time.perf_counter() - t0}
    if gx is None:
        report("greedy", "no greedy plan: solving the whole model")
        return None
    t0 = time.perf_counter()
    report("lp", "LP bound of the whole problem with placement relaxed")
    relaxed = dataclasses.replace(workloads, scope=np.zeros_like(workloads.scope))
    layout, model, lp, active, rc, converged = lazy.solve_lp_lazy(
        problem, offers, relaxed, classes, pairs, backend, deadline=t0 + 0.3 * (deadline - t0),
        must=np.zeros(pairs.n, dtype=bool), seed=gx > 0)
    bound: float | None = None
    if lp is not None and lp.status == "optimal" and lp.objective is not None:
        bound = lp.objective if converged else lazy.full_bound(layout, model, lp, pairs, active, rc)[0]
        if deadline - time.perf_counter() > 0.5 * (deadline - t0):
            costs = lazy.pair_costs(problem, offers, pairs)
            pricer = lazy.Pricer(problem, offers, relaxed, classes, pairs, costs)
            a, _ = pricer.terms(model, lp.duals)
            shadow = a[pairs.c] + pairs.u * pricer.share_terms[pairs.c] + pairs.need * pricer.y_gpus
            guided = greedy_fill(problem, offers, workloads, classes, pairs, np.maximum(plain - shadow, 1e-9),
                                 deadline=time.perf_counter() + 0.2 * (deadline - time.perf_counter()))
            if guided is not None and float(costs @ guided) < float(costs @ gx):
                gx = guided
    phases["place_lp"] = time.perf_counter() - t0
    idx, placed = keep_placements(offers, workloads, pairs, gx, plain, PLACEMENTS_KEPT)
    report("build", f"{len(idx)} of {pairs.n} pairs in the placements kept")
    sol = _solve_lazy(problem, config, offers, workloads, classes, lazy.subset(pairs, idx), lookup, backend,
                      dict(stats), start, deadline, sign, report, progress, greedy=gx[idx], active=placed)
    if sol.status == "infeasible":  # cannot happen with a feasible greedy plan; never claim it
        return None
    # The restricted problem's bounds are not bounds of the whole problem; the relaxed LP's is.
    obj = sol.stats.objective
    gap = None if bound is None or obj is None else rel_gap(sign * obj, bound)
    status = sol.status
    if status == "optimal" and (gap is None or gap > config.relative_gap):
        status = "feasible"
    st = sol.stats.model_copy(update={
        "status": status, "best_bound": _signed(sign, bound), "gap": gap, "lp_bound": _signed(sign, bound),
        "engine": "placed:" + sol.stats.engine, "phases": {**phases, **sol.stats.phases}})
    return sol.model_copy(update={"status": status, "stats": st})


def _best_warm(problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes,
               layout: AllocationModel, model: MatrixModel, lp: LpResult, greedy_x: FloatArray | None
               ) -> FloatArray | None:
    """The cheaper feasible one of the greedy plan and an LP-guided greedy (the LP's whole instances
    kept, the rest placed by price at the LP's shadow prices), as instance counts over the model's pairs."""
    sub = layout.pairs
    costs = lazy.pair_costs(problem, offers, sub)
    pricer = lazy.Pricer(problem, offers, workloads, classes, sub, costs)
    a, _ = pricer.terms(model, lp.duals)
    shadow = a[sub.c] + sub.u * pricer.share_terms[sub.c] + sub.need * pricer.y_gpus
    score = np.maximum(offers.price[sub.o] + sub.extra - shadow, 1e-9)
    guided = greedy_fill(problem, offers, workloads, classes, sub, score, start=lp.x[: model.n_x])
    best, best_obj = None, np.inf
    for cand in (greedy_x, guided):
        if cand is None:
            continue
        full = layout.complete(cand, model.shape[1])
        if model.violation(full) <= 1e-6 and model.objective(full) < best_obj:
            best, best_obj = cand, model.objective(full)
    return best


def _fixed_outcome(problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes,
                   pairs: Pairs, x: FloatArray, engine: str) -> tuple[AllocationModel, MatrixModel, Outcome]:
    """A model over the pairs a plan uses, and that plan as an outcome without a bound."""
    idx = np.flatnonzero(x > 0)
    layout = AllocationModel(problem, offers, workloads, classes, lazy.subset(pairs, idx))
    model = layout.build()
    full = layout.complete(x[idx], model.shape[1])
    return layout, model, Outcome("feasible", full, model.objective(full), None, None, [engine])


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
                              solve_seconds=solve_s, lp_bound=_signed(sign, outcome.lp_bound), **stats),
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
        savings=savings(problem, lookup, tot.cost_per_hour) if config.compute_baselines else [],
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
        points, fronts = pareto_set(problem, config, solve_here)
        sol = sol.model_copy(update={"pareto": points, "fronts": fronts})
    report("done", status, outcome.objective, outcome.bound)
    return sol
