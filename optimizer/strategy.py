"""How a model is solved: LP bound, rounding, focused integer solves, reduced-cost proof.

The plain route (one MILP over every (workload, offer) pair) stalls at fleet scale, so ``decomposed``:

1. solves the LP relaxation: its objective LB is a valid bound, its solution says where to look;
2. rounds the LP solution up (and completes the auxiliaries); if that point is feasible it is the
   first incumbent;
3. solves an integer program restricted to the columns the LP points at: its support, the K columns
   of smallest reduced cost per demand row, and every column whose reduced cost is at most UB - LB;
4. repeats 3 with the set widened to every column of reduced cost <= UB - LB for the new incumbent.

Between 2 and 3 an incumbent is improved by large-neighbourhood search (``improve``): batches of
workloads are re-solved exactly with everyone else's instances fixed, which repairs the losses of a
dive far faster than one integer solve over the whole focus set.

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
from optimizer.tables import BoolArray, FloatArray, group_starts

log = logging.getLogger(__name__)

OutcomeStatus = Literal["optimal", "feasible", "infeasible", "no_solution"]
_K_PER_ROW = 3
_MAX_FOCUS_COLS = 400_000
_DIVE_GAP = 5e-3  # the dive only seeds the neighbourhood search: a loose gap is enough
LNS_BATCH = 10  # workloads freed at once in the first sweep (doubles each sweep)
_LNS_SUB_SECONDS = 1.0  # most one neighbourhood solve may take
_LNS_SHARE = 0.85  # of the time left after the first incumbent, at most (stops earlier when sweeps stall)


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


#: Least seconds between two progress reports from inside one phase (neighbourhood searches).
PROGRESS_EVERY_S = 0.5


class Reporter:
    """Sends Progress in the user's sense (performance objectives are maximized)."""

    def __init__(self, callback: Callable[[Progress], None] | None, sign: float, start: float, limit: float):
        self.callback = callback
        self.sign = sign
        self.start = start
        self.limit = limit

    def throttled(self, phase: str, message: str, bound: float | None,
                  every_s: float = PROGRESS_EVERY_S) -> Callable[[float], None]:
        """A callback for searches that improve an incumbent many times a second: it reports a new
        incumbent at most once per ``every_s`` (the first at once), so the event stream stays small."""
        last = -np.inf

        def send(incumbent: float) -> None:
            nonlocal last
            now = time.perf_counter()
            if self.callback is not None and now - last >= every_s:
                last = now
                self(phase, message, incumbent, bound)

        return send

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


def improve(model: MatrixModel, layout: AllocationModel, focus: BoolArray, x: FloatArray, deadline: float,
            backend: Backend, *, lp_x: FloatArray | None = None, threads: int = 1, batch: int = LNS_BATCH,
            seed: int = 0, target: float = -np.inf,
            on_improve: Callable[[float], None] | None = None) -> tuple[FloatArray, int]:
    """Large-neighbourhood search from a feasible point: (better point, neighbourhoods that improved).

    Sweeps over the workloads in batches; each neighbourhood frees the focus columns of one batch
    (and the auxiliaries), moves the fixed columns' activity to the row bounds and solves that small
    integer program exactly, with the current point as hint (always feasible for it, so the result
    is never worse). The first sweep takes the workloads whose cost exceeds their LP cost most
    first; later sweeps shuffle and free twice as many. Stops at the deadline or after a sweep that
    gains less than 1e-5 relative, or once the objective is at most ``target``. ``on_improve``
    receives each new objective as it is found (for progress reports).
    """
    import scipy.sparse as sp  # the neighbourhood search's sub-models; not needed at import

    n_x, ncols = model.n_x, model.shape[1]
    W = layout.workloads.n
    col_w = np.full(ncols, -1, dtype=np.int64)
    col_w[:n_x] = np.tile(layout.pairs.w, layout.T)
    aux = col_w < 0
    A = model.A.tocsc()
    rng = np.random.default_rng(seed)
    obj = model.objective(x)
    wins = 0
    size = max(1, batch)
    for sweep in range(64):
        start_obj = obj
        if sweep == 0 and lp_x is not None:
            loss = np.bincount(col_w[:n_x], weights=model.c[:n_x] * (x[:n_x] - lp_x[:n_x]), minlength=W)
            order = np.argsort(-loss, kind="stable")
        else:
            order = rng.permutation(W)
        for b in range(0, W, size):
            left = deadline - time.perf_counter()
            if left <= 0.05 or obj <= target:
                return x, wins
            in_batch = np.zeros(W, dtype=bool)
            in_batch[order[b : b + size]] = True
            free = (focus & ~aux & in_batch[np.maximum(col_w, 0)]) | aux
            cols = np.flatnonzero(free)
            fixed = np.flatnonzero(~free & (x > 0.5))
            shift = A[:, fixed] @ x[fixed]
            sub = MatrixModel(c=model.c[cols], A=sp.csr_matrix(A[:, cols]), row_lb=model.row_lb - shift,
                              row_ub=model.row_ub - shift, var_lb=model.var_lb[cols], var_ub=model.var_ub[cols],
                              integer=model.integer[cols], offset=model.offset + float(model.c[fixed] @ x[fixed]),
                              groups=model.groups, n_x=int(np.count_nonzero(cols < n_x)))
            res = backend.solve_mip(sub, time_limit=max(0.05, min(_LNS_SUB_SECONDS, left)), relative_gap=1e-6,
                                    threads=threads, hint=x[cols])
            if res.x is None or res.objective is None or res.objective >= obj - 1e-7 * max(1.0, abs(obj)):
                continue
            cand = x.copy()
            cand[cols] = res.x
            cand = layout.complete(cand[:n_x], ncols)
            if model.violation(cand) <= 1e-6 and model.objective(cand) < obj:
                x, obj = cand, model.objective(cand)
                wins += 1
                if on_improve is not None:
                    on_improve(obj)
        log.debug("LNS sweep %d (batch %d): %.6f", sweep, size, obj)
        if start_obj - obj <= 1e-5 * max(1.0, abs(obj)) or size >= W:
            break
        size = min(2 * size, W)
    return x, wins


def solve_decomposed(model: MatrixModel, layout: AllocationModel, backend: Backend, config: SolveConfig,
                     deadline: float, report: Reporter, warm: FloatArray | None = None,
                     lp: LpResult | None = None, outside: tuple[float, FloatArray, FloatArray] | None = None,
                     *, fallback: FloatArray | None = None, lagrangian: bool = True, focused: bool = True,
                     lns_seed: int = 0, lns_batch: int = LNS_BATCH) -> Outcome:
    """``warm``: instance counts (the x columns) of a known solution, e.g. the previous period's;
    used as the first incumbent when it is feasible here. ``lp`` and ``outside``: when the model
    holds only some of the pairs (lazy column generation), the LP already solved over them and, in
    ``outside``, the Lagrangian bound over every pair with the reduced costs and penalties of the
    pairs left out: the restricted solve proves a bound only if each of those is fixed by one of
    the two arguments.

    For callers that solve many small models against a shared clock (periods.py):
    ``fallback``: instance counts of a known solution too far from the bound to skip the dive for,
    the incumbent the neighbourhood search starts from when the dive finds nothing better (e.g. a
    dive starved of CPU). ``lagrangian=False`` skips the Lagrangian bound (~0.05-0.1 s at 50 x 2,000): the bound
    is the LP's and only reduced costs fix columns. ``focused=False`` stops after the neighbourhood
    search once there is an incumbent (measured: the focused solves after it rarely improve such a
    model's plan in the time one of many periods has); the caller may restart the search later
    from that incumbent with another ``lns_seed`` and ``lns_batch`` (seed 0 sweeps first over the
    workloads that lose most against the LP, the others shuffle)."""
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

    if lagrangian or outside is not None:
        t0 = time.perf_counter()
        lag, useful, penalty = lagrangian_bound(model, layout, lb, lp.x, lp.duals, lp.reduced_costs)
        bound = outside[0] if outside is not None else max(lb, lag)
        phases["lagrangian"] = time.perf_counter() - t0
        report("lagrangian", "integer subproblem bound", None, bound)
    else:
        # No Lagrangian: no column is marked useful and none is fixed by a penalty (-inf never exceeds a gap).
        bound, useful, penalty = lb, np.zeros(n_x, dtype=bool), np.full(n_x, -np.inf)

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
        res = backend.solve_mip(sub, time_limit=max(0.05, 0.75 * left()), relative_gap=max(config.relative_gap, _DIVE_GAP),
                                threads=config.threads, hint=hint_base[cols], engine=_engine(config))
        mip_seconds += res.seconds
        engines.append(res.engine)
        if res.x is not None:
            full = np.zeros(ncols)
            full[cols] = res.x
            if model.violation(full) <= 1e-5:
                inc_x, inc_obj = full, model.objective(full)
                report("dive", "first incumbent", inc_obj, bound)
    if fallback is not None:
        cand = layout.complete(fallback, ncols)
        if model.violation(cand) <= 1e-6 and model.objective(cand) < inc_obj:
            inc_x, inc_obj = cand, model.objective(cand)
            report("dive", "the fallback plan beats the dive's: starting from it", inc_obj, bound)
    if inc_x is not None and (rel_gap(inc_obj, bound) or 0.0) > config.relative_gap and left() > 0.1:
        t0 = time.perf_counter()
        report("improve", "re-solving batches of workloads around the incumbent", inc_obj, bound)
        lns_end = time.perf_counter() + _LNS_SHARE * left()
        # Without focused solves to follow, the search may stop as soon as the gap asked for is reached.
        # (rel_gap(obj, bound) <= g  <=>  obj <= bound / (1 - g) for positive objectives.)
        target = -np.inf
        if not focused and bound > 0 and config.relative_gap < 1.0:
            target = bound / (1.0 - config.relative_gap)
        found = report.throttled("improve", "a neighbourhood improved the incumbent", bound)
        inc_x, wins = improve(model, layout, focus, inc_x, lns_end, backend, lp_x=lp.x if lns_seed == 0 else None,
                              threads=config.threads, batch=lns_batch, seed=lns_seed, target=target,
                              on_improve=found)
        inc_obj = model.objective(inc_x)
        # Then wider neighbourhoods: every column that fixing cannot exclude for this incumbent.
        wide = focus | ((rc <= (inc_obj - lb) + eps) & (pen <= (inc_obj - bound) + eps))
        wider = np.count_nonzero(wide) > np.count_nonzero(focus)
        if lns_end - time.perf_counter() > 0.1 and wider and inc_obj > target:
            inc_x, more = improve(model, layout, wide, inc_x, lns_end, backend, threads=config.threads,
                                  batch=lns_batch, seed=lns_seed + 1, target=target, on_improve=found)
            inc_obj, wins = model.objective(inc_x), wins + more
        phases["improve"] = time.perf_counter() - t0
        report("improve", f"{wins} neighbourhoods improved", inc_obj, bound)
    limit = max(int(np.count_nonzero(focus)) // 3, 500)  # widen gradually: big focused solves stall
    last_focus = -1
    # Already within the requested gap (dive or neighbourhoods): no focused solve needed.
    while left() > 0.05 and not (inc_x is not None and (not focused
                                                        or (rel_gap(inc_obj, bound) or 0.0) <= config.relative_gap)):
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
        n_focus = int(np.count_nonzero(focus))
        if n_focus == last_focus and not covered:
            # The same restricted solve again would find nothing new: spend the rest on neighbourhoods.
            if inc_x is not None and left() > 0.2:
                t0 = time.perf_counter()
                inc_x, _ = improve(model, layout, focus, inc_x, deadline, backend, threads=config.threads,
                                   seed=rounds, on_improve=report.throttled("improve", "a neighbourhood improved "
                                                                            "the incumbent", bound))
                inc_obj = model.objective(inc_x)
                phases["improve"] = phases.get("improve", 0.0) + time.perf_counter() - t0
            break
        last_focus = n_focus
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
