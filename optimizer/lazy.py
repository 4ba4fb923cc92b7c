"""Column generation over pairs that are never put into the matrix, for fleet-scale problems.

At 1,000 workloads x 20,000 offers there are millions of compatible pairs; a matrix over all of
them costs gigabytes and tens of seconds before any solver runs. Here the pair list is kept as
plain arrays and only an *active* subset becomes a model: per workload the pairs cheapest per
usable GPU (overall, per provider and per spot flag; chosen once per workload signature), plus the
pairs of the greedy incumbent (``optimizer.greedy``), which make the very first restricted LP
feasible so its duals are meaningful from round one. After each LP the reduced cost of every
pair is computed from the duals by the formula of the model's columns,

    rc_p = c_p - u_p y_demand[w] - y_capacity[k] - g_k y_pool[q(k)] - price_k y_budget
           - n_p y_gpus - u_p (y_provider[q] + y_region[r] + spot_k y_spot) - u_p (od_k - phi) y_floor[w],

and the pairs with negative reduced cost join. When none is left the LP over the active pairs is
the LP over all pairs. Only single-period problems without price scenarios take this path (the
pricing formula covers exactly their columns); others are small enough for the full matrix. Nor do
problems where a workload must choose among placements (``optimizer.placement``): its combo rows
are not in the formula, so such a problem is solved over the full matrix.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from optimizer.backends import Backend, LpResult
from optimizer.errors import SolverFailedError
from optimizer.lagrange import items_bound
from optimizer.model import PERF_TIEBREAK, AllocationModel, MatrixModel
from optimizer.presolve import Classes, Pairs
from optimizer.schemas import Problem
from optimizer.tables import BoolArray, FloatArray, IntArray, OfferTable, WorkloadTable

log = logging.getLogger(__name__)

LAZY_MIN_PAIRS = 300_000
#: From here on the focused integer solves cannot find a first plan in time (1,000 x 20,000: 6.9M
#: pairs), so the greedy plan seeds column generation and a batch search improves it. Below, the
#: greedy plan is only a fallback for an unfinished LP (200 x 10,000 does better with its time in
#: the focused solves).
FLEET_MIN_PAIRS = 2_000_000
_PER_WORKLOAD = 12
_PER_KEY = 2
_MAX_ROUNDS = 25


def applicable(problem: Problem, pairs: Pairs) -> bool:
    return (
        pairs.n >= LAZY_MIN_PAIRS
        and not any(o.price_per_period for o in problem.offers)
        and not any(o.price_scenarios for o in problem.offers)
        and problem.max_expected_interruption_cost_per_hour is None
        and problem.min_performance is None
    )


def subset(pairs: Pairs, idx: np.ndarray) -> Pairs:
    return dataclasses.replace(pairs, **{f.name: getattr(pairs, f.name)[idx] for f in dataclasses.fields(pairs)})


def pair_costs(problem: Problem, offers: OfferTable, pairs: Pairs) -> FloatArray:
    """The objective coefficient of each pair's column (single period, no scenarios)."""
    cost = offers.price[pairs.o] + pairs.extra
    if problem.objective == "cost":
        return cost
    if problem.objective == "performance":
        return -pairs.perf + PERF_TIEBREAK * cost
    w = problem.weights
    return w.cost * cost + w.risk * pairs.risk - w.performance * pairs.perf


def _seed(problem: Problem, offers: OfferTable, pairs: Pairs, costs: FloatArray, signature: IntArray | None = None,
          scale: int = 1) -> BoolArray:
    """Per workload: the pairs cheapest per usable GPU overall, per provider and per spot flag.

    Pairs arrive grouped by workload (presolve emits them in workload order), so this works on
    each workload's contiguous segment; a global sort of millions of pairs costs far more. With
    ``signature`` (workloads of one signature have the same classes and usable GPUs, see
    ``CompatLookup.signatures``) the choice is made once per signature, on its first workload,
    and its classes are seeded for every workload of the signature: exact for cost objectives
    without egress, a heuristic otherwise (only the starting set; pricing decides the LP)."""
    if signature is None:
        return _seed_segments(offers, pairs, costs / pairs.u, np.arange(int(pairs.w.max(initial=-1)) + 1), scale)
    n_sig = int(signature.max(initial=-1)) + 1
    present = np.zeros(len(signature), dtype=bool)
    present[pairs.w] = True
    first = np.full(n_sig, -1, dtype=np.int64)
    ws = np.flatnonzero(present)
    first[signature[ws[::-1]]] = ws[::-1]
    reps = first[first >= 0]
    keep_rep = _seed_segments(offers, pairs, costs / pairs.u, reps, scale)
    table = np.zeros((n_sig, int(pairs.c.max(initial=-1)) + 1), dtype=bool)
    idx = np.flatnonzero(keep_rep)
    table[signature[pairs.w[idx]], pairs.c[idx]] = True
    out: BoolArray = table[signature[pairs.w], pairs.c]
    return out


def _seed_segments(offers: OfferTable, pairs: Pairs, unit: FloatArray, workloads: IntArray, scale: int) -> BoolArray:
    keep = np.zeros(pairs.n, dtype=bool)
    lo = np.searchsorted(pairs.w, workloads, side="left")
    hi = np.searchsorted(pairs.w, workloads, side="right")
    prov = offers.provider[pairs.o]
    spot = offers.spot[pairs.o].astype(np.int64)
    size = pairs.u.astype(np.int64)
    k_all, k_key = _PER_WORKLOAD * scale, _PER_KEY * scale
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        if b <= a:
            continue
        seg = unit[a:b]
        if b - a <= k_all:
            keep[a:b] = True
        else:
            keep[a + np.argpartition(seg, k_all)[:k_all]] = True
        # Per provider, per spot flag, and per (spot flag, instance size): integer covers need
        # small on-demand sizes too (an inference floor of 50% on 3 GPUs needs a 1- or 2-GPU box).
        for key in (prov[a:b], spot[a:b], spot[a:b] * 128 + size[a:b]):
            order = np.lexsort((seg, key))
            sk = key[order]
            first = np.searchsorted(sk, sk, side="left")
            keep[a + order[(np.arange(b - a) - first) < k_key]] = True
    return keep


class Pricer:
    """Reduced costs of every pair from a restricted model's duals, by the formula of the module
    docstring regrouped so that each round costs two gathers over the pairs:

        rc_p = c_p - a_k - u_p (b_(w, od_k) + s_k) - n_p y_gpus,
        a_k = y_capacity[k] + g_k y_pool[q(k)] + price_k y_budget,   s_k = y_provider[q] + y_region[r] + spot_k y_spot,
        b_(w, od) = y_demand[w] + (od - phi) y_floor[w].

    Everything but the duals (class attributes, the per-pair (w, od) key) is computed once."""

    def __init__(self, problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes,
                 full: Pairs, costs: FloatArray) -> None:
        rep = classes.rep
        self.problem, self.offers, self.workloads, self.classes = problem, offers, workloads, classes
        self.costs, self.full = costs, full
        self.price = offers.price[rep]
        self.g = offers.gpus[rep].astype(np.float64)
        self.prov = offers.provider[rep]
        self.place = offers.place[rep]
        self.spot = offers.spot[rep].astype(np.float64)
        self.pool = offers.pool[rep]
        self.pool_index = {name: i for i, name in enumerate(offers.pools)}
        od = (~offers.spot[rep]).astype(np.int64)
        self.key = (2 * full.w + od[full.c]).astype(np.int32 if 2 * workloads.n < 2**31 else np.int64)
        self.prov_index = {name: i for i, name in enumerate(offers.providers)}
        self.place_index = {f"{p}/{r}": i for i, (p, r) in enumerate(offers.places)}
        rep_class = {int(r): k for k, r in enumerate(rep)}
        self.class_of = {oid: rep_class[i] for i, oid in enumerate(offers.ids) if i in rep_class}
        self.w_index = {wid: i for i, wid in enumerate(workloads.ids)}
        self.share_terms: FloatArray = np.zeros(classes.n)
        self.y_gpus = 0.0

    def terms(self, model: MatrixModel, duals: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(a per class, b per (workload, on-demand flag) flattened as 2 w + od); the share rows' part
        (per usable GPU) is in ``self.share_terms`` afterwards, with the gpus row's dual in ``self.y_gpus``."""
        a = np.zeros(self.classes.n)
        y_gpus = 0.0
        per_g = np.zeros(self.classes.n)
        yd = np.zeros(self.workloads.n)
        yf = np.zeros(self.workloads.n)
        for grp in model.groups:
            y = duals[grp.start : grp.stop]
            if grp.kind == "demand":
                yd[[self.w_index[k] for k in grp.keys]] = y
            elif grp.kind == "capacity":
                a[[self.class_of[k] for k in grp.keys]] += y
            elif grp.kind == "pool":
                a += self.g * _per_pool(self.pool, self.pool_index, grp.keys, y)
            elif grp.kind == "budget":
                a += self.price * y[0]
            elif grp.kind == "gpus":
                y_gpus = float(y[0])
            elif grp.kind == "provider":
                per = np.zeros(len(self.offers.providers))
                per[[self.prov_index[k] for k in grp.keys]] = y
                per_g += per[self.prov]
            elif grp.kind == "region":
                per = np.zeros(len(self.offers.places))
                per[[self.place_index[k] for k in grp.keys]] = y
                per_g += per[self.place]
            elif grp.kind == "spot":
                per_g += self.spot * y[0]
            elif grp.kind == "od_floor":
                yf[[self.w_index[k] for k in grp.keys]] = y
        self.share_terms = per_g
        self.y_gpus = y_gpus
        phi = self.problem.inference_on_demand_floor
        b = np.empty(2 * self.workloads.n)
        b[0::2] = yd - phi * yf
        b[1::2] = yd + (1.0 - phi) * yf
        return a, b

    def reduced_costs(self, layout: AllocationModel, model: MatrixModel, duals: FloatArray) -> FloatArray:
        """rc of every pair; the cut rows' part comes from ``layout`` (the rows exist by workload, so
        any layout of the same problem prices them for every pair)."""
        a, b = self.terms(model, duals)
        rc: FloatArray = (self.costs - a[self.full.c] - self.full.u * (b[self.key] + self.share_terms[self.full.c])
                          - self.full.need * self.y_gpus)
        for grp in model.groups:
            if grp.kind == "cut":
                rc -= layout.cut_prices(duals[grp.start : grp.stop], self.full)
        return rc


def reduced_costs(layout: AllocationModel, model: MatrixModel, duals: FloatArray, full: Pairs,
                  costs: FloatArray) -> FloatArray:
    """rc of every pair in ``full`` under the duals of ``model`` (built by ``layout`` on a subset),
    term by term in row-group order. ``Pricer`` computes the same in two gathers; the rounding
    differs in the last bits, which can reorder ties downstream, so paths below fleet scale keep
    this order and their results stay as they were."""
    of, wl, prob = layout.offers, layout.workloads, layout.problem
    rc = costs.copy()
    prov_index = {name: i for i, name in enumerate(of.providers)}
    place_index = {f"{p}/{r}": i for i, (p, r) in enumerate(of.places)}
    rep_class = {int(r): k for k, r in enumerate(layout.classes.rep)}
    offer_index = {oid: i for i, oid in enumerate(of.ids)}
    g = full.u  # share rows count usable GPUs
    for grp in model.groups:
        y = duals[grp.start : grp.stop]
        if grp.kind == "demand":
            rc -= full.u * y[full.w]
        elif grp.kind == "capacity":
            per_class = np.zeros(layout.classes.n)
            cls = [rep_class[offer_index[k]] for k in grp.keys]
            per_class[cls] = y
            rc -= per_class[full.c]
        elif grp.kind == "pool":
            pool_index = {name: i for i, name in enumerate(of.pools)}
            rc -= full.g * _per_pool(of.pool[full.o], pool_index, grp.keys, y)
        elif grp.kind == "budget":
            rc -= of.price[full.o] * y[0]
        elif grp.kind == "gpus":
            rc -= full.need * y[0]
        elif grp.kind == "provider":
            per = np.zeros(len(of.providers))
            per[[prov_index[k] for k in grp.keys]] = y
            rc -= g * per[of.provider[full.o]]
        elif grp.kind == "region":
            per = np.zeros(len(of.places))
            per[[place_index[k] for k in grp.keys]] = y
            rc -= g * per[of.place[full.o]]
        elif grp.kind == "spot":
            rc -= g * of.spot[full.o] * y[0]
        elif grp.kind == "od_floor":
            per = np.zeros(wl.n)
            widx = {wid: i for i, wid in enumerate(wl.ids)}
            per[[widx[k] for k in grp.keys]] = y
            od = (~of.spot[full.o]).astype(np.float64)
            rc -= full.u * (od - prob.inference_on_demand_floor) * per[full.w]
        elif grp.kind == "cut":  # valid inequalities: coefficients by formula from the layout (see optimizer.cuts)
            rc -= layout.cut_prices(y, full)
    return rc


def _per_pool(pool: IntArray, index: dict[str, int], keys: list[str], y: FloatArray) -> FloatArray:
    """The pool rows' duals ``y`` (rows named by ``keys``) spread to entries of pool index ``pool`` (-1: none)."""
    per = np.zeros(len(index) + 1)
    per[[index[k] for k in keys]] = y
    out: FloatArray = per[pool]  # pool -1 reads the trailing 0
    return out


def solve_lp_lazy(problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes, full: Pairs,
                  backend: Backend, *, deadline: float, must: BoolArray, seed: BoolArray | None = None,
                  signature: IntArray | None = None
                  ) -> tuple[AllocationModel, MatrixModel, LpResult | None, BoolArray, FloatArray, bool]:
    """(layout, model, LP over the active pairs, active mask, reduced cost of every pair, converged).

    ``seed``: pairs to start with besides the cheapest per workload (e.g. a greedy incumbent's,
    which makes the first restricted LP feasible; the cheap ones give it useful duals at once). Each
    round adds the pairs of most negative reduced cost (at most 20,000 or half the active set).
    Stops at ``deadline`` with the last restricted LP when
    pricing has not converged: its duals still give a valid Lagrangian bound over every pair (see
    ``full_bound``)."""
    costs = pair_costs(problem, offers, full)
    active = _seed(problem, offers, full, costs, signature) | must
    if seed is not None:
        active |= seed
    pricer = Pricer(problem, offers, workloads, classes, full, costs) if signature is not None else None

    def price(lay: AllocationModel, mod: MatrixModel, duals: FloatArray) -> FloatArray:
        if pricer is not None:
            return pricer.reduced_costs(lay, mod, duals)
        return reduced_costs(lay, mod, duals, full, costs)
    layout = model = None
    lp: LpResult | None = None
    rc = np.zeros(full.n)
    converged = False
    last: tuple[AllocationModel, MatrixModel, LpResult, BoolArray] | None = None
    big_m = 100.0 * float(np.max(np.abs(costs) / full.u, initial=1.0)) + 1.0
    for rnd in range(_MAX_ROUNDS):
        idx = np.flatnonzero(active)
        layout = AllocationModel(problem, offers, workloads, classes, subset(full, idx))
        model = layout.build()
        left = deadline - time.perf_counter()
        if left <= 0.05:
            break
        elastic, n_slack = _with_demand_slack(model, big_m)
        res = backend.solve_lp(elastic, time_limit=left)
        if res.status != "optimal":
            if last is None:
                lp = res
            break
        n = model.shape[1]
        slack = res.x[n:]
        lp = dataclasses.replace(res, x=res.x[:n], reduced_costs=res.reduced_costs[:n],
                                 objective=float(model.c @ res.x[:n] + model.offset))
        rc = price(layout, model, lp.duals)
        tol = 1e-7 * max(1.0, float(np.abs(costs).max(initial=1.0)))
        rc_out = np.where(active, np.inf, rc)
        entering = np.flatnonzero(rc_out < -tol)
        log.debug("lazy colgen round %d: %d active pairs, LP %.4f (slack %.3g), %d entering", rnd, len(idx),
                  res.objective, float(slack.sum()), len(entering))
        if len(entering) == 0:
            converged = True
            if slack.sum() > 1e-6:
                # Priced out with demand still short: no pair can cover it, the LP is infeasible.
                lp = dataclasses.replace(lp, status="infeasible", objective=None)
            break
        if slack.sum() <= 1e-6:
            last = (layout, model, lp, active.copy())
        active[_entering(entering, rc_out, max(20_000, len(idx) // 2))] = True
    if not converged and last is not None:
        layout, model, lp, active = last
        rc = price(layout, model, lp.duals)
    if layout is None or model is None:  # only when _MAX_ROUNDS is 0
        raise SolverFailedError("column generation ran no round", backend=backend.name)
    return layout, model, lp, active, rc, converged


def _entering(cand: IntArray, rc: FloatArray, room: int) -> IntArray:
    """At most ``room`` of the candidate pairs, the most negative first. (Measured at 1,000 x 20,000:
    taking the same number per workload instead needed 9 rounds and 110k columns where this needs 5
    and 40k: the most negative pairs are the ones the LP basis really changes for.)"""
    if len(cand) <= room:
        return cand
    return cand[np.argpartition(rc[cand], room)[:room]]


def _with_demand_slack(model: MatrixModel, big_m: float) -> tuple[MatrixModel, int]:
    """The model with a costly slack on each demand minimum, so restricted LPs are always feasible
    and column generation can price from their duals (a big-M phase one)."""
    demand = next(g for g in model.groups if g.kind == "demand")
    rows = np.arange(demand.start, demand.stop)
    n, k = model.shape[1], len(rows)
    import scipy.sparse as sp  # only the lazy (column generation) path needs it here

    slack = sp.csr_matrix((np.ones(k), (rows, np.arange(k))), shape=(model.shape[0], k))
    out = MatrixModel(
        c=np.concatenate([model.c, np.full(k, big_m)]),
        A=sp.hstack([model.A, slack]).tocsr(),
        row_lb=model.row_lb, row_ub=model.row_ub,
        var_lb=np.concatenate([model.var_lb, np.zeros(k)]),
        var_ub=np.concatenate([model.var_ub, np.full(k, np.inf)]),
        integer=np.concatenate([model.integer, np.zeros(k, dtype=bool)]),
        offset=model.offset, groups=model.groups, n_x=model.n_x,
    )
    del n
    return out, k


def full_bound(layout: AllocationModel, model: MatrixModel, lp: LpResult, full: Pairs, active: BoolArray,
               rc: FloatArray) -> tuple[float, FloatArray]:
    """Lagrangian bound over *every* pair (valid although the model holds only the active ones), and
    the penalty of each pair (see optimizer.lagrange)."""
    if lp.objective is None:
        raise SolverFailedError("no LP objective to bound from", backend="lazy")
    demand = next(g for g in model.groups if g.kind == "demand")
    y = lp.duals[demand.start : demand.stop]
    x = np.zeros(full.n)
    x[np.flatnonzero(active)] = lp.x[: model.n_x]
    cp = rc + y[full.w] * full.u
    bound, _, penalty = items_bound(lp.objective, full.w, full.u, full.ub, cp, x,
                                    model.row_lb[demand.start : demand.stop], model.row_ub[demand.start : demand.stop])
    return bound, penalty
