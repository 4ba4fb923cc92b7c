"""How a model is solved: LP bound, rounding, focused integer solves, reduced-cost proof.

The plain route (one MILP over every (workload, offer) pair) stalls at fleet scale, so ``decomposed``:

1. solves the LP relaxation: its objective LB is a valid bound, its solution says where to look;
2. rounds the LP solution up (and completes the auxiliaries); if that point is feasible it is the
   first incumbent;
3. solves an integer program restricted to the columns the LP points at: its support, the K columns
   of smallest reduced cost per demand row, and every column whose reduced cost is at most UB - LB;
4. repeats 3 with the set widened to every column of reduced cost <= UB - LB for the new incumbent.

Step 4 is what makes the answer provable: with optimal LP duals, any integer solution with a column
j at 1 or more costs at least LB + rc_j, so columns with rc_j > UB - LB cannot appear in a solution
better than UB. Once the restricted set holds all the others, the restricted solve's bound is a bound
for the whole problem; otherwise the honest bound is the LP's. The best solution found is kept
whenever a time limit stops a phase.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from optimizer.backends import Backend, LpResult
from optimizer.batches import BATCH_COLUMNS, batched_incumbent
from optimizer.colgen import COLGEN_MIN_COLUMNS, seed_columns, solve_lp_colgen
from optimizer.lagrange import lagrangian_bound
from optimizer.model import AllocationModel, MatrixModel
from optimizer.schemas import Progress, SolveConfig
from optimizer.tables import group_starts
from optimizer.tables import BoolArray, FloatArray

log = logging.getLogger(__name__)

OutcomeStatus = Literal["optimal", "feasible", "infeasible", "no_solution"]
_K_PER_ROW = 3
_MAX_FOCUS_COLS = 400_000


@dataclass
class Outcome:
    status: OutcomeStatus
    x: FloatArray | None
    objective: float | None
    bound: float | None
    lp: LpResult | None
    engines: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    infeasible_stage: Literal["lp", "mip"] | None = None
    lp_bound: float | None = None  # set when no single LP result stands for the whole model


def rel_gap(obj: float | None, bound: float | None) -> float | None:
    if obj is None or bound is None:
        return None
    return max(0.0, obj - bound) / max(abs(obj), 1e-9)


class Reporter:
    """Sends Progress in the user's sense (performance objectives are maximized)."""

    def __init__(self, callback: Callable[[Progress], None] | None, sign: float, start: float, limit: float):
        self.callback = callback
        self.sign = sign
        self.start = start
        self.limit = limit

    def __call__(self, phase: str, message: str = "", incumbent: float | None = None,
                 bound: float | None = None) -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.start
        gap = rel_gap(incumbent, bound)
        self.callback(
            Progress(
                phase=phase,
                percent=min(100.0, 100.0 * elapsed / self.limit),
                message=message,
                incumbent=None if incumbent is None else self.sign * incumbent,
                bound=None if bound is None else self.sign * bound,
                gap=gap,
            )
        )


def solve_direct(model: MatrixModel, backend: Backend, config: SolveConfig, deadline: float,
                 report: Reporter) -> Outcome:
    """One plain MILP over the whole model: the out-of-the-box reference."""
    report("mip", "plain MILP over the whole model")
    res = backend.solve_mip(
        model,
        time_limit=max(0.05, deadline - time.perf_counter()),
        relative_gap=config.relative_gap,
        threads=config.threads,
        engine=_engine(config),
        on_log=lambda s, inc, b: report("mip", f"{s:.1f}s", inc, b),
    )
    out = Outcome(
        status=res.status if res.status != "error" else "no_solution",
        x=res.x,
        objective=res.objective,
        bound=res.bound,
        lp=None,
        engines=[res.engine],
        phases={"mip": res.seconds},
        infeasible_stage="mip" if res.status == "infeasible" else None,
    )
    return out


def _engine(config: SolveConfig) -> str:
    return "auto" if config.mip_solver == "auto" else config.mip_solver


def _k_best(model: MatrixModel, layout: AllocationModel, rc: FloatArray, k: int) -> BoolArray:
    """The k columns of smallest reduced cost for every (workload, period) demand row."""
    n_x = model.n_x
    P, W = layout.P, layout.workloads.n
    row = np.tile(layout.pairs.w, layout.T) + np.repeat(np.arange(layout.T), P) * W
    order = np.lexsort((rc[:n_x], row))
    sorted_rows = row[order]
    first = group_starts(sorted_rows)
    rank = np.arange(n_x) - first
    out = np.zeros(model.shape[1], dtype=bool)
    out[order[rank < k]] = True
    return out


def _rounded(model: MatrixModel, layout: AllocationModel, x_lp: FloatArray) -> list[FloatArray]:
    """Feasible integer points derived from the LP solution (may be empty)."""
    ncols = model.shape[1]
    found = []
    for guess in (np.round(x_lp), np.ceil(x_lp - 1e-6)):
        x = layout.complete(np.minimum(guess, model.var_ub[: model.n_x]), ncols)
        if model.violation(x) <= 1e-6:
            found.append(x)
    return found


def solve_decomposed(model: MatrixModel, layout: AllocationModel, backend: Backend, config: SolveConfig,
                     deadline: float, report: Reporter, warm: FloatArray | None = None,
                     lp: LpResult | None = None, outside: tuple[float, FloatArray, FloatArray] | None = None
                     ) -> Outcome:
    """``warm``: instance counts (the x columns) of a known solution, e.g. the previous period's;
    used as the first incumbent when it is feasible here. ``lp`` and ``outside_rc``: when the model
    holds only some of the pairs (lazy column generation), the LP already solved over them and, in
    ``outside``, the Lagrangian bound over every pair with the reduced costs and penalties of the
    pairs left out: the restricted solve proves a bound only if each of those is fixed by one of
    the two arguments."""
    partial = outside is not None
    phases: dict[str, float] = {}
    engines: list[str] = []
    ncols, n_x = model.shape[1], model.n_x

    def left() -> float:
        return deadline - time.perf_counter()

    warm_x: FloatArray | None = None
    if warm is not None:
        cand = layout.complete(warm, ncols)
        if model.violation(cand) <= 1e-6:
            warm_x = cand
    lp_engine = "auto" if config.lp_solver == "auto" else config.lp_solver
    if lp is None:
        report("lp", "solving the LP relaxation")
        if model.n_x >= COLGEN_MIN_COLUMNS:
            lp = solve_lp_colgen(model, layout, backend, time_limit=max(0.05, 0.6 * left()), engine=lp_engine)
        else:
            lp = backend.solve_lp(model, time_limit=max(0.05, 0.6 * left()), engine=lp_engine)
    phases["lp"] = lp.seconds
    engines.append(lp.engine)
    if lp.status == "infeasible":
        return Outcome("infeasible", None, None, None, lp, engines, phases, "lp")
    if lp.status != "optimal" or lp.objective is None:
        if warm_x is not None:
            return Outcome("feasible", warm_x, model.objective(warm_x), None, None, engines, phases)
        if left() < 0.25 * config.time_limit_s:
            log.info("LP relaxation unfinished (%s) and little time left: no solution", lp.status)
            return Outcome("no_solution", None, None, None, lp, engines, phases)
        log.info("LP relaxation unfinished (%s); falling back to a plain MILP", lp.status)
        out = solve_direct(model, backend, config, deadline, report)
        out.phases.update(phases)
        out.engines = engines + out.engines
        return out
    lb = lp.objective
    report("lp", "LP bound found", None, lb)

    t0 = time.perf_counter()
    lag, useful, penalty = lagrangian_bound(model, layout, lb, lp.x, lp.duals, lp.reduced_costs)
    bound = outside[0] if outside is not None else max(lb, lag)
    phases["lagrangian"] = time.perf_counter() - t0
    report("lagrangian", "integer subproblem bound", None, bound)

    t0 = time.perf_counter()
    inc_x: FloatArray | None = None
    inc_obj = np.inf
    for cand in _rounded(model, layout, lp.x[:n_x]):
        if model.objective(cand) < inc_obj:
            inc_x, inc_obj = cand, model.objective(cand)
    if warm_x is not None and model.objective(warm_x) < inc_obj:
        inc_x, inc_obj = warm_x, model.objective(warm_x)
    phases["rounding"] = time.perf_counter() - t0
    if inc_x is not None:
        report("rounding", "rounded LP solution is feasible", inc_obj, bound)
        if (rel_gap(inc_obj, bound) or 0.0) <= 1e-9:
            return Outcome("optimal", inc_x, inc_obj, bound, lp, engines, phases)

    rc = lp.reduced_costs.copy()
    rc[n_x:] = -np.inf  # auxiliaries are always in the focus set
    pen = np.full(ncols, -np.inf)
    pen[:n_x] = penalty
    eps = 1e-7 * max(1.0, abs(lb))
    focus = (lp.x > 1e-7) | (rc <= eps) | _k_best(model, layout, rc, _K_PER_ROW)
    focus[:n_x] |= useful
    focus |= seed_columns(model, layout, 2)  # on-demand and per-provider alternatives
    hint_base = layout.complete(np.minimum(np.ceil(lp.x[:n_x] - 1e-6), model.var_ub[:n_x]), ncols)
    rounds = 0
    mip_seconds = 0.0
    if inc_x is None and np.count_nonzero(focus[:n_x]) > 2 * BATCH_COLUMNS:
        report("batches", "integer solves over batches of workloads for a first incumbent", None, bound)
        t0 = time.perf_counter()
        batch_x = batched_incumbent(model, layout, lp, focus, backend, deadline=time.perf_counter() + 0.7 * left(),
                                 threads=config.threads)
        mip_seconds += time.perf_counter() - t0
        if batch_x is not None and model.violation(batch_x) <= 1e-5:
            inc_x, inc_obj = batch_x, model.objective(batch_x)
            report("batches", "first incumbent", inc_obj, bound)
    if inc_x is None:
        # Dive: keep the LP's whole instances and let the integer solve place only the remainder.
        # Much easier than the free problem, so it yields a first incumbent quickly.
        sub, cols = model.restrict(focus)
        floor = np.floor(lp.x[cols] + 1e-6)
        floor[cols >= n_x] = 0.0
        sub.var_lb = np.maximum(sub.var_lb, np.minimum(floor, sub.var_ub))
        report("dive", f"integer solve over {len(cols)} columns around the LP's whole instances", None, bound)
        res = backend.solve_mip(sub, time_limit=max(0.05, 0.75 * left()), relative_gap=max(config.relative_gap, 5e-3),
                                threads=config.threads, hint=hint_base[cols], engine=_engine(config))
        mip_seconds += res.seconds
        engines.append(res.engine)
        if res.x is not None:
            full = np.zeros(ncols)
            full[cols] = res.x
            if model.violation(full) <= 1e-5:
                inc_x, inc_obj = full, model.objective(full)
                report("dive", "first incumbent", inc_obj, bound)
    limit = max(int(np.count_nonzero(focus)) // 3, 500)  # widen gradually: big focused solves stall
    while left() > 0.05:
        rounds += 1
        covered = False
        if inc_x is not None:
            # Columns that can still be in a better solution (both fixing arguments must fail).
            need = (rc <= (inc_obj - lb) + eps) & (pen <= (inc_obj - bound) + eps)
            extra = need & ~focus
            n_extra = int(np.count_nonzero(extra))
            if n_extra > limit:
                idx = np.flatnonzero(extra)
                extra = np.zeros(ncols, dtype=bool)
                extra[idx[np.argsort(pen[idx], kind="stable")[:limit]]] = True
            else:
                covered = outside is None or bool(np.all((outside[1] > (inc_obj - lb) + eps)
                                                         | (outside[2] > (inc_obj - bound) + eps)))
            focus |= extra
            focus |= inc_x > 0.5
        sub, cols = model.restrict(focus)
        hint = (inc_x if inc_x is not None else hint_base)[cols]
        report("focused_mip", f"round {rounds}: integer solve over {len(cols)} of {ncols} columns",
               None if inc_x is None else inc_obj, bound)
        res = backend.solve_mip(
            sub,
            time_limit=max(0.05, left()),
            relative_gap=config.relative_gap if not covered else min(config.relative_gap, 1e-6),
            threads=config.threads,
            hint=hint,
            engine=_engine(config),
        )
        mip_seconds += res.seconds
        engines.append(res.engine)
        if res.x is not None and res.objective is not None and res.objective < inc_obj - 1e-9:
            full = np.zeros(ncols)
            full[cols] = res.x
            if model.violation(full) <= 1e-5:
                inc_x, inc_obj = full, model.objective(full)
        if inc_x is None:
            if np.all(focus):
                return Outcome("infeasible" if res.status == "infeasible" else "no_solution", None, None, bound,
                               lp, engines, {**phases, "focused_mip": mip_seconds}, "mip")
            limit *= 4
            focus |= _k_best(model, layout, rc, 8 * rounds)
            if rounds >= 3:
                focus[:] = True
            continue
        if covered and res.bound is not None:
            # Every column that could improve on the incumbent was in this solve: its bound is global.
            bound = max(bound, min(res.bound, inc_obj))
        report("focused_mip", f"round {rounds} done", inc_obj, bound)
        if covered or (rel_gap(inc_obj, bound) or 0.0) <= config.relative_gap:
            break
        limit *= 3
    phases["focused_mip"] = mip_seconds
    if inc_x is None:
        return Outcome("no_solution", None, None, bound, lp, engines, phases)
    gap = rel_gap(inc_obj, bound) or 0.0
    status: OutcomeStatus = "optimal" if gap <= config.relative_gap + 1e-12 else "feasible"
    return Outcome(status, inc_x, inc_obj, bound, lp, engines, phases)
