"""Exact decomposition of a multi-period problem into one model per period.

When no constraint or cost links periods (no migration cost between them, no CVaR over the whole
horizon, no horizon-wide risk cap or performance floor), the objective (1/T) sum_t C_t separates
and each period is an ordinary single-period model priced at that period's prices. The mean of the
per-period bounds is then a valid bound for the horizon, and the concatenated per-period plans are
a plan for it.

What makes T periods cheap (measured on 24 x (50 workloads x 2,000 offers)): the integer solves
dominate (0.3 s of CPU for a dive to 0.3-0.9% of the period's LP bound, ~0.3 s more of
neighbourhood search to 0.1-0.2%, against ~0.06 s for its LP), so the rest is organised around them:

* One build (``PeriodModels``): every period's matrix has the same sparsity pattern; only the
  objective and the budget row's coefficients carry prices. They are swapped into a copy of one
  built model instead of rebuilding the model T times.
* Each period's LP in the process that solves the period (~0.06 s of CPU each), not all of them up
  front: an up-front phase ran on one core only, before the workers started (measured 1.5-3 s of
  wall time lost at 24 periods). An infeasible period is reported when it is reached.
* Per period (first pass): LP, dive, neighbourhood search, and nothing else (``solve_decomposed``
  with ``lagrangian=False, focused=False``). Measured on the 24 periods: the Lagrangian bound
  (0.05-0.1 s each) rose at most 0.003% above the LP's, and the focused solves after the search never improved a
  period's plan in the ~1 s a period has; the bound reported is the LP's, which the target is
  measured against anyway. A period stops at 0.3% of its bound; the horizon's gap is the mean.
* Warm starts: each period starts from the cheapest plan of the periods solved before it that is
  feasible at its prices (the budget row is what can reject one), handed to the integer solve
  when it is within 0.6% of the period's LP bound (the search repairs it without a dive), else
  kept as the fallback the search starts from if the dive finds nothing better (a dive starved of
  CPU). Measured: a neighbour hour's optimal plan costs ~1% more than the hour's own optimum,
  plans from three hours away 5-40% more, and can exceed the budget; a chain that always starts
  the search from the previous plan drifts (0.5% mean gap at 0.6 s a period against 0.18% with
  dives), and warm-starting the LP itself (column generation seeded with the previous period's
  columns) saved nothing: it converges in one round from the default seed.
* Adaptive time: the first pass shares out 80% of the time, each period an equal share of what is
  left of it (a period with no warm start more, since the ones after it need its plan; a period
  that needs a dive at least 0.7 s), so early finishers hand their time on; a second pass spends
  the rest on the periods with the largest absolute gap, restarting from their own incumbent and
  LP with other neighbourhoods (another seed, larger batches), a fresh dive first where the
  incumbent is far from the bound, and the focused solves on the last restart. No new solve starts
  past the deadline: a period reached then keeps a fitting plan of another period, with its LP
  bound.
* ``config.threads`` > 1: forked worker processes solve periods at once, the parent walking
  forward from the first period and a worker backward from the last (``PeriodQueue``), each with
  its own warm chain; a worker starved of CPU claims fewer periods. Periods are independent, so
  this changes nothing but the wall time.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

import numpy as np

from optimizer.backends import Backend, LpResult
from optimizer.colgen import solve_lp_colgen
from optimizer.errors import InvalidProblemError
from optimizer.model import AllocationModel, MatrixModel
from optimizer.presolve import Classes, Pairs
from optimizer.schemas import BindingConstraint, Problem, SolveConfig
from optimizer.strategy import LNS_BATCH, Outcome, OutcomeStatus, Reporter, rel_gap, solve_decomposed
from optimizer.tables import FloatArray, OfferTable, WorkloadTable

log = logging.getLogger(__name__)

PERIOD_GAP = 3e-3  # first pass: each period stops once within 0.3% of its bound
_FIRST_PASS_SHARE = 0.8  # of the chain's time: the first pass's; the rest polishes the largest gaps
_FIRST_PASS_MIN = 0.5  # of the time left, at least, shared out in the first pass when it runs late
_MIN_PERIOD_S = 0.15
_MIN_DIVE_S = 0.7  # a period that needs a dive gets at least this long (wall), time permitting
_MIN_LP_S = 0.3
_COLD_BOOST = 1.5
_WARM_GAP = 0.006  # warm starts further than this above the period's LP bound are not handed on
_POLISH_TRIES = 3  # restarts of one period in the second pass, the last with focused solves
_POOL = 6  # plans of the latest solved periods tried as warm starts
_ASSEMBLY_SHARE = 0.07  # measured: merge, binding rows and lines of 24 x 43k columns take 0.3-0.7 s under load
_ASSEMBLY_MAX_S = 1.0
_GRACE_S = 0.5  # how long the parent waits for a worker past the deadline before giving up on it


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


class PeriodModels:
    """The T single-period models of a separable problem, from one build.

    Period t's model differs from period 0's only where prices enter: the x columns' objective
    (the cost term ``(c_tp + e_p)``, weighted by ``AllocationModel.cost_weight()`` in every objective
    kind) and the coefficients of the budget row ``sum_p c_tp x_p <= B``. Every other row, bound and
    auxiliary column is price-free, so ``model(t)`` copies the built model and overwrites those two
    places (tests check it against a fresh build of every period).
    """

    def __init__(self, problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes,
                 pairs: Pairs) -> None:
        if offers.periods is None:
            raise InvalidProblemError("per-period models need per-period prices", field="price_per_period")
        self.problem = problem
        self.offers = offers
        self.workloads = workloads
        self.classes = classes
        self.pairs = pairs
        self.periods: FloatArray = offers.periods
        self.T = int(offers.periods.shape[0])
        layout = AllocationModel(problem, self._priced(0), workloads, classes, pairs)
        self.base = layout.build()
        self._built = layout
        self._weight = layout.cost_weight()
        self._cost0 = layout.cost_coef()
        A = self.base.A
        pos = [np.arange(A.indptr[g.start], A.indptr[g.stop]) for g in self.base.groups if g.kind == "budget"]
        self._budget_pos = np.concatenate(pos) if pos else np.zeros(0, dtype=np.int64)
        self._budget_pairs = A.indices[self._budget_pos]
        self.lps: dict[int, LpResult] = {}  # the LPs this process has solved (workers fill their own copy)

    def _priced(self, t: int) -> OfferTable:
        return dataclasses.replace(self.offers, price=self.periods[t], periods=None)

    def layout(self, t: int) -> AllocationModel:
        """Period t's layout: the built one (it knows where the auxiliary columns are) at t's prices."""
        layout = copy.copy(self._built)
        layout.offers = self._priced(t)
        return layout

    def model(self, t: int, layout: AllocationModel | None = None) -> MatrixModel:
        layout = layout or self.layout(t)
        if t == 0:
            return self.base
        base = self.base
        c = base.c.copy()
        c[: base.n_x] += self._weight * (layout.cost_coef() - self._cost0)
        A = base.A.copy()
        A.data[self._budget_pos] = self.periods[t][self.pairs.o[self._budget_pairs]]
        return dataclasses.replace(base, c=c, A=A)


@dataclass
class PeriodResult:
    outcome: Outcome
    model: MatrixModel
    layout: AllocationModel


Send = Callable[[int, Outcome], None]
Claim = Callable[[], "tuple[int, int] | None"]


class PeriodQueue:
    """Hands periods out to the workers: one end walks forward from the first period, the other
    backward from the last (diurnal prices make both neighbours of a period good warm starts),
    so a worker starved of CPU by other processes simply claims fewer periods."""

    def __init__(self, T: int, ctx: Any = None) -> None:
        self._ends: Any = [0, T - 1]
        self._lock: Any = contextlib.nullcontext()
        if ctx is not None:
            self._ends = ctx.Array("i", [0, T - 1])
            self._lock = self._ends.get_lock()

    def claim(self, *, backward: bool) -> tuple[int, int] | None:
        """(period, periods left including it), or None when every period is taken."""
        with self._lock:
            first, last = int(self._ends[0]), int(self._ends[1])
            if first > last:
                return None
            if backward:
                self._ends[1] = last - 1
                return last, last - first + 1
            self._ends[0] = first + 1
            return first, last - first + 1


def solve_periods(problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes, pairs: Pairs,
                  backend: Backend, config: SolveConfig, deadline: float, report: Reporter
                  ) -> tuple[Outcome, list[BindingConstraint], PeriodResult | None]:
    """Solve period by period; returns the merged outcome (x over all T x P columns), the binding
    constraints of every period, and the failing period's result when one is infeasible."""
    models = PeriodModels(problem, offers, workloads, classes, pairs)
    T = models.T
    # Merging, binding constraints and the allocation lines of T periods come after the periods.
    reserve = min(_ASSEMBLY_MAX_S, _ASSEMBLY_SHARE * config.time_limit_s)
    deadline -= reserve
    outcomes: dict[int, Outcome] = {}

    def note(t: int, out: Outcome) -> None:
        outcomes[t] = out
        report(f"period {t}", out.status, out.objective, out.bound)

    workers = min(config.threads, T, os.cpu_count() or 1)
    if "fork" not in mp.get_all_start_methods() or mp.current_process().daemon:
        workers = 1  # a daemonic process (e.g. optimizer.isolation's child) may not start processes
    ctx = mp.get_context("fork" if workers > 1 else None)
    queue = PeriodQueue(T, ctx if workers > 1 else None)
    children: list[tuple[mp.process.BaseProcess, Connection]] = []
    for k in range(1, workers):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(models, queue, k % 2 == 1, workers, backend, config, deadline, send),
                           daemon=True)
        try:
            proc.start()
        except OSError as exc:  # no process to be had: the parent claims the periods itself
            log.warning("could not start a period worker (%s); solving on in this process", exc)
            recv.close()
            send.close()
            break
        send.close()
        children.append((proc, recv))

    def drain(wait: float = 0.0) -> None:
        for _proc, conn in children:
            try:
                while conn.poll(wait):
                    t, out = conn.recv()
                    note(t, out)
            except (EOFError, OSError):
                continue

    solve_chain(models, lambda: queue.claim(backward=False), workers, backend, config, deadline, note, between=drain)
    _collect(children, deadline, drain)

    missing = [t for t in range(T) if t not in outcomes or outcomes[t].x is None]
    if missing and not any(o.status == "infeasible" for o in outcomes.values()):
        _fill_missing(models, missing, outcomes, backend, config, deadline, note)
    _lp_bounds(models, outcomes, backend, config, deadline + 0.4 * reserve, note)
    failed = next((t for t in sorted(outcomes) if outcomes[t].status == "infeasible"), None)
    if failed is not None:
        layout = models.layout(failed)
        return outcomes[failed], [], PeriodResult(outcomes[failed], models.model(failed, layout), layout)
    return merge(outcomes, T, models.base.n_x, config.relative_gap), _binding(models, outcomes), None


def _fill_missing(models: PeriodModels, missing: list[int], outcomes: dict[int, Outcome], backend: Backend,
                  config: SolveConfig, deadline: float, note: Send) -> None:
    """Periods a worker left without a plan (it failed, or ran out of time before its first
    incumbent): another period's plan that is feasible here costs nothing to try; what is left is
    solved again if time remains."""
    retry = []
    for t in missing:
        layout = models.layout(t)
        model = models.model(t, layout)
        near = sorted((s for s, o in outcomes.items() if o.x is not None), key=lambda s: abs(s - t))[:_POOL]
        x, obj = _cheapest_feasible(model, layout, [outcomes[s].x[: model.n_x] for s in near])  # type: ignore[index]
        if x is None:
            retry.append(t)
            continue
        old = outcomes.get(t)
        note(t, Outcome("feasible", layout.complete(x, model.shape[1]), obj, None if old is None else old.bound,
                        None if old is None else old.lp, [] if old is None else old.engines,
                        {} if old is None else old.phases))
    if retry and deadline - time.perf_counter() > _MIN_PERIOD_S:
        todo = iter(enumerate(retry))
        solve_chain(models, lambda: next(((t, len(retry) - i) for i, t in todo), None), 1, backend, config, deadline,
                    note, warm_from=outcomes)


def _lp_bounds(models: PeriodModels, outcomes: dict[int, Outcome], backend: Backend, config: SolveConfig,
               until: float, note: Send) -> None:
    """Periods that kept a plan without a bound (another period's plan taken when time ran out)
    would leave the horizon without one: they get their up-front LP's bound, or, where the up-front
    phase did not reach them, an LP (~0.05 s each) in the first part of the time kept for assembly."""
    engine = "auto" if config.lp_solver == "auto" else config.lp_solver
    for t, out in sorted(outcomes.items()):
        left = until - time.perf_counter()
        if out.bound is not None or out.x is None or (left <= 0.02 and t not in models.lps):
            continue
        lp = models.lps.get(t)
        if lp is None:
            layout = models.layout(t)
            lp = solve_lp_colgen(models.model(t, layout), layout, backend, time_limit=left, engine=engine)
        if lp.status == "optimal" and lp.objective is not None:
            phases = {**out.phases, "lp": out.phases.get("lp", 0.0) + lp.seconds}
            note(t, dataclasses.replace(out, bound=lp.objective, lp=lp, phases=phases))


def _collect(children: list[tuple[mp.process.BaseProcess, Connection]], deadline: float,
             drain: Callable[[float], None]) -> None:
    for proc, _ in children:
        while proc.is_alive() and time.perf_counter() < deadline + _GRACE_S:
            drain(0.02)
        drain(0.0)
        if proc.is_alive():
            log.warning("period worker %s overran its deadline; terminating it", proc.pid)
            proc.terminate()
        proc.join(1.0)
    for _, conn in children:
        conn.close()


def _worker(models: PeriodModels, queue: PeriodQueue, backward: bool, workers: int, backend: Backend,
            config: SolveConfig, deadline: float, conn: Connection) -> None:
    """Body of a forked worker: solve the periods it claims, sending each result as it improves."""
    try:
        solve_chain(models, lambda: queue.claim(backward=backward), workers, backend, config, deadline,
                    lambda t, out: conn.send((t, out)))
    finally:
        conn.close()


def solve_chain(models: PeriodModels, claim: Claim, workers: int, backend: Backend, config: SolveConfig,
                deadline: float, send: Send, *, between: Callable[[], None] | None = None,
                warm_from: dict[int, Outcome] | None = None) -> dict[int, Outcome]:
    """Solve the periods ``claim`` hands out (with the number left, itself included, to share the
    time by ``workers``), each warm-started from the cheapest feasible plan of the periods solved
    before, then spend the time left on the periods furthest from their bound. ``send`` receives
    every new or improved result; ``between`` runs after each period (the parent reads its
    workers' results there)."""
    cfg = config.model_copy(update={"relative_gap": max(config.relative_gap, PERIOD_GAP)})
    lp_engine = "auto" if config.lp_solver == "auto" else config.lp_solver
    best: dict[int, Outcome] = {}
    pool: list[FloatArray] = [o.x[: models.base.n_x] for o in (warm_from or {}).values() if o.x is not None]
    first_pass_end = time.perf_counter() + _FIRST_PASS_SHARE * max(0.0, deadline - time.perf_counter())
    while (claimed := claim()) is not None:
        t, remaining = claimed
        left = deadline - time.perf_counter()
        layout = models.layout(t)
        model = models.model(t, layout)
        warm, warm_obj = _cheapest_feasible(model, layout, pool)
        if left <= _MIN_PERIOD_S:
            # Out of time (a worker starved of CPU): no new solve may start; another period's plan
            # that fits here is kept, without a bound, and a period without one stays open.
            if warm is not None:
                lp_t = models.lps.get(t)
                bound = None if lp_t is None else lp_t.objective
                best[t] = Outcome("feasible", layout.complete(warm, model.shape[1]), warm_obj, bound,
                                  lp_t if bound is not None else None)
                send(t, best[t])
            continue
        share = max(first_pass_end - time.perf_counter(), _FIRST_PASS_MIN * left) * min(workers, remaining) / remaining
        if warm is None:
            # Nothing to fall back on: this period must find its own first plan (the dive), and the
            # periods after it need that plan as their fallback, so it gets a larger share.
            share = min(left, _COLD_BOOST * share)
        period_start = time.perf_counter()
        lp = models.lps.get(t)
        if lp is None:
            # The LP is the period's bound and the dive's guide: it gets what it needs (~0.06 s of CPU).
            lp = solve_lp_colgen(model, layout, backend, time_limit=min(left, max(_MIN_LP_S, share)), engine=lp_engine)
            if lp.status == "optimal":
                models.lps[t] = lp
        # A warm start far above this period's LP bound would only crowd out the dive, which finds
        # a plan close to the LP from the LP itself; it stays the fallback.
        near = lp.objective is not None and warm_obj <= lp.objective + _WARM_GAP * abs(lp.objective)
        # Without a plan near the bound the period needs a dive (~0.3 s of CPU, more under load): a dive
        # cut short leaves it with another period's plan, often several percent off.
        period_deadline = period_start + max(_MIN_PERIOD_S, share, 0.0 if near else min(_MIN_DIVE_S, left))
        out = solve_decomposed(model, layout, backend, cfg, period_deadline, Reporter(None, 1.0, 0.0, 1.0),
                               warm=warm if near else None, lp=lp if lp.status != "limit" else None,
                               fallback=None if near else warm, lagrangian=False, focused=False)
        if warm is not None and (out.objective is None or warm_obj < out.objective - 1e-9):
            done = (rel_gap(warm_obj, out.bound) or 1.0) <= cfg.relative_gap
            status: OutcomeStatus = "optimal" if done else "feasible"
            out = dataclasses.replace(out, x=layout.complete(warm, model.shape[1]), objective=warm_obj, status=status)
        if out.x is not None:
            pool.append(out.x[: model.n_x])
            pool = pool[-_POOL:]
        best[t] = out
        log.debug("period %d (pid %d): share %.2fs, took %.2fs, objective %s, LP %s, warm %.4g%s, phases %s", t,
                  os.getpid(), share, time.perf_counter() - period_start, out.objective,
                  lp.objective, warm_obj, " (handed on)" if near else "",
                  {k: round(v, 3) for k, v in out.phases.items()})
        send(t, out)
        if out.status == "infeasible":
            return best
        if between is not None:
            between()
    _polish(models, best, backend, config, deadline, send, between)
    return best


def _cheapest_feasible(model: MatrixModel, layout: AllocationModel, pool: list[FloatArray]
                       ) -> tuple[FloatArray | None, float]:
    """The cheapest plan of other periods that is feasible at this period's prices (the budget row
    is the only one that can reject a plan another period accepted), newest first on ties."""
    best: FloatArray | None = None
    best_obj = np.inf
    for x in reversed(pool):
        full = layout.complete(x, model.shape[1])
        if model.violation(full) <= 1e-6 and model.objective(full) < best_obj - 1e-9:
            best, best_obj = x, model.objective(full)
    return best, best_obj


def _polish(models: PeriodModels, best: dict[int, Outcome], backend: Backend, config: SolveConfig, deadline: float,
            send: Send, between: Callable[[], None] | None) -> None:
    """Second pass: periods without a bound first (their LP did not finish), then in order of
    absolute gap (what each adds to the horizon's gap), each restarted from its own incumbent and,
    where it has one, its LP, with the configured gap."""
    tries: dict[int, int] = {}
    while deadline - time.perf_counter() > _MIN_PERIOD_S:
        open_: dict[int, float] = {}
        for t, o in best.items():
            if tries.get(t, 0) >= _POLISH_TRIES or o.x is None or o.objective is None:
                continue
            if o.bound is None or o.lp is None:
                open_[t] = np.inf
            elif (rel_gap(o.objective, o.bound) or 0.0) > config.relative_gap:
                open_[t] = o.objective - o.bound
        if not open_:
            return
        t = max(open_, key=lambda s: open_[s])
        tries[t] = tries.get(t, 0) + 1
        last = tries[t] >= _POLISH_TRIES  # the last restart also runs the focused solves, which can prove a bound
        finite = sum(v for v in open_.values() if np.isfinite(v))
        left = deadline - time.perf_counter()
        share = left / len(open_) if not np.isfinite(open_[t]) or finite <= 0 else left * open_[t] / finite
        old = best[t]
        layout = models.layout(t)
        model = models.model(t, layout)
        # Each restart searches other neighbourhoods (another seed, larger batches) from the incumbent;
        # an incumbent far from the bound (a dive cut short, a fallback plan) first gets a dive of its own.
        old_x = old.x[: model.n_x]  # type: ignore[index]
        redive = tries[t] == 1 and (rel_gap(old.objective, old.bound) or 1.0) > _WARM_GAP
        until = time.perf_counter() + max(_MIN_PERIOD_S, share, min(_MIN_DIVE_S, left) if redive else 0.0)
        out = solve_decomposed(model, layout, backend, config, until,
                               Reporter(None, 1.0, 0.0, 1.0), warm=None if redive else old_x,
                               fallback=old_x if redive else None,
                               lp=old.lp if old.bound is not None else None, lagrangian=last, focused=last,
                               lns_seed=2 * tries[t],
                               lns_batch=LNS_BATCH * (1 + tries[t]))
        if out.x is None or out.objective is None:
            continue
        bounds = [b for b in (old.bound, out.bound) if b is not None]
        bound = max(bounds) if bounds else None
        phases = {k: old.phases.get(k, 0.0) + out.phases.get(k, 0.0) for k in {*old.phases, *out.phases}}
        if old.bound is not None:
            phases["lp"] = old.phases.get("lp", 0.0)  # the LP was reused, not solved again
        keep = out if out.objective < old.objective - 1e-9 else old  # type: ignore[operator]
        log.debug("polish %d (pid %d, try %d%s): share %.2fs, %.6g -> %.6g, LP %s", t, os.getpid(), tries[t],
                  ", dive" if redive else "", share, old.objective, out.objective, old.bound)
        if keep is old:
            # A restart that found nothing: another search would most likely not either; the focused solves next.
            tries[t] = max(tries[t], _POLISH_TRIES - 1)
        status: OutcomeStatus = (
            "optimal" if (rel_gap(keep.objective, bound) or 1.0) <= config.relative_gap + 1e-12 else "feasible")
        best[t] = dataclasses.replace(keep, bound=bound, phases=phases, status=status,
                                      lp=out.lp if out.lp is not None else old.lp)
        send(t, best[t])
        if between is not None:
            between()


def merge(outcomes: dict[int, Outcome], T: int, n_x: int, relative_gap: float) -> Outcome:
    """The horizon's outcome: concatenated plans, mean objective, mean bound (valid because the
    objective is the mean of independent per-period objectives); optimal when that mean is within
    ``relative_gap`` of the mean bound (a period may have stopped at the first pass's looser gap
    and still be proven optimal by its bound)."""
    outs = [outcomes.get(t) for t in range(T)]
    phases: dict[str, float] = {}
    for o in outs:
        for k, v in (o.phases if o is not None else {}).items():
            phases[k] = phases.get(k, 0.0) + v
    engines = list(dict.fromkeys(e for o in outs if o is not None for e in o.engines))
    bounds = [o.bound for o in outs if o is not None and o.bound is not None]
    bound = float(np.mean(bounds)) if len(bounds) == T else None
    xs = [o.x for o in outs if o is not None and o.x is not None and o.objective is not None]
    lp_values = [o.lp.objective for o in outs if o is not None and o.lp is not None and o.lp.objective is not None]
    lp_bound = float(np.mean(lp_values)) if len(lp_values) == T else None
    if len(xs) < T:
        merged = Outcome("no_solution", None, None, bound, None, engines, phases)
        merged.lp_bound = lp_bound
        return merged
    x = np.concatenate([v[:n_x] for v in xs])
    objective = float(np.mean([o.objective for o in outs if o is not None and o.objective is not None]))
    proven = bound is not None and (rel_gap(objective, bound) or 0.0) <= relative_gap + 1e-12
    status: Literal["optimal", "feasible"] = (
        "optimal" if proven else "feasible")
    merged = Outcome(status, x, objective, bound, None, engines, phases)
    merged.lp_bound = lp_bound
    return merged


def _binding(models: PeriodModels, outcomes: dict[int, Outcome]) -> list[BindingConstraint]:
    from optimizer.report import binding_constraints

    out: list[BindingConstraint] = []
    for t, o in sorted(outcomes.items()):
        model = models.model(t)
        out += [b.model_copy(update={"name": f"{b.name}@t{t}"}) for b in binding_constraints(model, o.lp, 1.0)]
    out.sort(key=lambda b: -abs(b.shadow_price))
    return out[:30]
