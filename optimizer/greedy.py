"""A greedy first incumbent that respects every fleet row, for fleet-scale problems.

Workloads are served one at a time, hardest first (largest demand against the capacity of the
offers it may use), each from its candidate pairs in order of a *score* per usable GPU actually
needed: ``score_p / min(u_p, remaining)`` (the plain price, or the price at the LP's shadow prices
of the shared rows). Every placement keeps each constraint of the model satisfiable:

* demand: a workload takes instances until ``lo_w`` is covered and never passes ``hi_w``;
* capacity, capacity pools and budget: what is left of each is tracked and never exceeded;
* share caps (provider, place, spot) count usable GPUs against the fleet's need G (``model.py``), which
  is at least G_lb = the sum of every workload's gpus_min (a workload with a variable need: its usable
  GPUs so far, if more) whatever comes later. So a placement adding ``u`` usable GPUs to a capped set S
  is accepted only if ``G_S + u <= share * G_lb``; then ``G_S <= share * G`` holds at the end, because
  the left side of an accepted inequality never shrinks and G never falls below G_lb;
* co-location: a workload that must stay in one placement takes every instance from the one it
  already uses, else from the placement cheapest per usable GPU among those with room for its need
  within capacity and what the share caps still allow; when the other rows (budget, floor) stop it
  there, what it placed is undone and the next placement is tried (up to ``_TRIES``);
* inference on-demand floor ``od_w >= phi (od_w + spot_w)``: a spot instance is placed only when
  ``spot_w + u <= (1 - phi) / phi * od_w`` already holds, so on-demand capacity is taken first.

The result is feasible for the whole model whenever every workload is covered (``None`` otherwise);
callers still check it against the model. Loops run over placements, each vectorised over one
workload's candidates, never over all pairs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from optimizer.placement import pair_spots
from optimizer.presolve import Classes, Pairs
from optimizer.schemas import Problem
from optimizer.tables import BoolArray, FloatArray, IntArray, OfferTable, WorkloadTable

log = logging.getLogger(__name__)

_EPS = 1e-9
_SHORT = 256
_TRIES = 8  # placements tried per workload that must not spread


class _Fleet:
    """Running totals of the shared rows, with the share-cap test of the module docstring."""

    def __init__(self, problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes,
                 pairs: Pairs, x: FloatArray) -> None:
        self.problem = problem
        self.offers, self.pairs = offers, pairs
        nz = np.flatnonzero(x)  # only placed pairs count: a start is sparse, and there may be millions of pairs
        xs, c, o, w = x[nz], pairs.c[nz], pairs.o[nz], pairs.w[nz]
        self.cap_left = classes.cap - np.bincount(c, weights=xs, minlength=classes.n)
        # GPUs left per capacity pool, with a last entry (index -1) that never runs out
        pool = offers.pool[o]
        used = np.bincount(pool[pool >= 0], weights=(pairs.g[nz] * xs)[pool >= 0], minlength=len(offers.pools))
        self.pool_left = np.concatenate([offers.pool_gpus - used, [np.inf]])
        budget = problem.budget_per_hour
        self.budget_left = np.inf if budget is None else budget - float(offers.price[o] @ xs)
        usable = pairs.u[nz] * xs
        self.by_provider = np.bincount(offers.provider[o], weights=usable, minlength=len(offers.providers))
        self.by_place = np.bincount(offers.place[o], weights=usable, minlength=len(offers.places))
        self.spot = float(usable[offers.spot[o]].sum())
        self.covered = np.bincount(w, weights=usable, minlength=workloads.n)
        self.G = float(np.where(workloads.need_var, np.maximum(workloads.lo, self.covered), workloads.lo).sum())
        self.R = float(np.maximum(workloads.lo - self.covered, 0.0).sum())

    def save(self, x: FloatArray, seg: IntArray, w: int) -> tuple[npt.NDArray[Any], ...]:
        """What serving workload w (pairs ``seg``) may change, to undo a placement that did not work out."""
        return (x[seg].copy(), self.cap_left.copy(), self.pool_left.copy(), self.by_provider.copy(),
                self.by_place.copy(), np.array([self.budget_left, self.spot, self.covered[w], self.R]))

    def restore(self, saved: tuple[npt.NDArray[Any], ...], x: FloatArray, seg: IntArray, w: int) -> None:
        x[seg], self.cap_left, self.pool_left, self.by_provider, self.by_place, rest = saved
        self.budget_left, self.spot, self.covered[w], self.R = (float(v) for v in rest)

    def pool_of(self, seg: IntArray) -> IntArray:
        """Pool index of each pair in ``seg`` (-1: none, which reads the never-empty last entry)."""
        out: IntArray = self.offers.pool[self.pairs.o[seg]]
        return out

    def share_ok(self, total: npt.ArrayLike, add: npt.ArrayLike, share: float | None,
                 after: npt.ArrayLike) -> BoolArray:
        if share is None or share >= 1:
            return np.asarray(True)
        t, a = np.asarray(total, dtype=np.float64), np.asarray(add, dtype=np.float64)
        return np.asarray(t + a <= share * self.G + _EPS)


def greedy_fill(problem: Problem, offers: OfferTable, workloads: WorkloadTable, classes: Classes, pairs: Pairs,
                score: FloatArray, *, start: FloatArray | None = None, deadline: float = np.inf) -> FloatArray | None:
    """Instances per pair (a feasible integer point) or None when some workload could not be covered.

    ``score``: per pair, the value to minimise per usable GPU (> 0). ``start``: instances already
    placed (e.g. the LP's whole instances); they are kept and counted against every row.
    Pairs must be grouped by workload (presolve emits them so)."""
    x = np.zeros(pairs.n) if start is None else np.minimum(np.floor(start + 1e-6), pairs.ub)
    fleet = _Fleet(problem, offers, workloads, classes, pairs, x)
    bounds = np.searchsorted(pairs.w, np.arange(workloads.n + 1))
    room = np.bincount(pairs.w, weights=np.minimum(classes.cap[pairs.c], pairs.ub) * pairs.u, minlength=workloads.n)
    need = np.maximum(workloads.lo - fleet.covered, 0.0)
    # Workloads that must stay in one placement first (they have the fewest ways to be served), each
    # group hardest first (largest demand against the capacity it may use).
    order = np.lexsort((-(need / np.maximum(room, _EPS)), workloads.scope == 0))
    phi = problem.inference_on_demand_floor
    price = offers.price[pairs.o]
    prov = offers.provider[pairs.o]
    place = offers.place[pairs.o]
    spot = offers.spot[pairs.o]
    where = pair_spots(offers, workloads, pairs)
    for w in order.tolist():
        if need[w] <= 0:
            continue
        if time.perf_counter() > deadline:
            return None
        seg = np.arange(int(bounds[w]), int(bounds[w + 1]))
        if len(seg) == 0:
            return None
        args = (problem, fleet, x, w, pairs, score, price, prov, place, spot, float(workloads.hi[w]),
                bool(workloads.inference[w]) and phi > 0, phi)
        if workloads.scope[w] == 0:
            if not _cover(args, seg):
                log.info("greedy: workload %s could not be covered", workloads.ids[w])
                return None
            continue
        served = False
        for one in _placements(problem, fleet, x, pairs, where, score, seg, float(need[w]), prov, place, spot):
            saved = fleet.save(x, seg, w)
            if _cover(args, one):
                served = True
                break
            fleet.restore(saved, x, seg, w)
            if time.perf_counter() > deadline:
                return None
        if not served:
            log.info("greedy: no single placement could hold workload %s", workloads.ids[w])
            return None
    return x


def _cover(args: tuple[Any, ...], seg: IntArray) -> bool:
    """Serve one workload from ``seg``, looking at its shortlist of cheapest pairs first."""
    for size in (_SHORT, 8 * _SHORT):
        short = _shortlist(seg, args[5], args[4].u, size)
        if _serve(short, *args):
            return True
        if len(short) == len(seg):
            return False
    return _serve(seg, *args)


def _placements(problem: Problem, fleet: _Fleet, x: FloatArray, pairs: Pairs, where: IntArray, score: FloatArray,
                seg: IntArray, need: float, prov: IntArray, place: IntArray, spot: BoolArray) -> list[IntArray]:
    """The pairs of ``seg`` per placement to try, best first, for a workload that must not spread: the
    one it already uses; else up to ``_TRIES`` placements whose room for its need, within capacity and
    what the provider, place and spot caps still allow, is enough, cheapest per usable GPU first."""
    held = seg[x[seg] > 0]
    if len(held):
        return [seg[where[seg] == where[held[0]]]]
    room = pairs.u[seg] * np.maximum(0.0, np.minimum(np.minimum(fleet.cap_left[pairs.c[seg]], pairs.ub[seg] - x[seg]),
                                                     np.floor(fleet.pool_left[fleet.pool_of(seg)] / pairs.g[seg])))
    spots, first, inv = np.unique(where[seg], return_index=True, return_inverse=True)
    inv = inv.ravel()
    total = np.bincount(inv, weights=room, minlength=len(spots))
    head = seg[first]  # one pair per placement: provider, place and spot kind are the placement's
    for share, used in ((problem.max_provider_share, fleet.by_provider[prov[head]]),
                        (problem.max_region_share, fleet.by_place[place[head]]),
                        (problem.max_spot_share, np.where(spot[head], fleet.spot, -np.inf))):
        if share is not None and share < 1:
            total = np.minimum(total, np.maximum(share * fleet.G - used, 0.0))
    # Cost of covering the need in each placement, cheapest pairs per usable GPU first (fractional).
    per_gpu = score[seg] / pairs.u[seg]
    order = np.lexsort((per_gpu, inv))
    grp, r = inv[order], room[order]
    cum = np.cumsum(r)
    before = cum - r - np.concatenate([[0.0], cum])[np.searchsorted(grp, grp)]  # room ahead in its group
    take = np.clip(need - before, 0.0, r)
    best = np.bincount(grp, weights=take * per_gpu[order], minlength=len(spots)).astype(np.float64)
    best[total < need - _EPS] = np.inf
    ranked = [int(k) for k in np.argsort(best, kind="stable")[:_TRIES] if np.isfinite(best[k])]
    return [seg[inv == k] for k in ranked]


def _shortlist(seg: IntArray, score: FloatArray, u: FloatArray, size: int) -> IntArray:
    """The pairs of one workload worth looking at first: cheapest per usable GPU and cheapest outright
    (small instances for a small remainder). Placements tried here first keep each step short."""
    if len(seg) <= 2 * size:
        return seg
    per_gpu = np.argpartition(score[seg] / u[seg], size)[:size]
    outright = np.argpartition(score[seg], size // 4)[: size // 4]
    short: IntArray = seg[np.unique(np.concatenate([per_gpu, outright]))]
    return short


def _serve(seg: IntArray, problem: Problem, fleet: _Fleet, x: FloatArray, w: int, pairs: Pairs,
           score: FloatArray, price: FloatArray, prov: IntArray, place: IntArray, spot: BoolArray,
           hi: float, floor: bool, phi: float) -> bool:
    """Cover workload w from the pairs ``seg``; False (with what was placed kept) when they run out."""
    lo = float(problem.workloads[w].gpus_min)
    u, c = pairs.u[seg], pairs.c[seg]
    od_u = float(pairs.u[seg] @ (x[seg] * ~spot[seg]))
    spot_u = float(pairs.u[seg] @ (x[seg] * spot[seg]))
    ratio = (1.0 - phi) / phi if floor and phi > 0 else np.inf
    sc, pr, pv, pl, sp = score[seg], price[seg], prov[seg], place[seg], spot[seg]
    pq, g = fleet.pool_of(seg), pairs.g[seg]
    while fleet.covered[w] < lo - _EPS:
        rem = lo - fleet.covered[w]
        useful = np.minimum(u, rem)
        after = fleet.R - useful
        ok = (fleet.cap_left[c] >= 1 - _EPS) & (x[seg] < pairs.ub[seg] - _EPS) & (fleet.pool_left[pq] >= g - _EPS)
        ok &= fleet.covered[w] + u <= hi + _EPS
        ok &= pr <= fleet.budget_left + _EPS
        ok &= fleet.share_ok(fleet.by_provider[pv], u, problem.max_provider_share, after)
        ok &= fleet.share_ok(fleet.by_place[pl], u, problem.max_region_share, after)
        ok &= fleet.share_ok(fleet.spot * sp, u * sp, problem.max_spot_share, after) | ~sp
        if floor:
            ok &= ~sp | (spot_u + u <= ratio * od_u + _EPS)
        if not ok.any():
            return False
        cand = np.flatnonzero(ok)
        j = int(cand[np.argmin(sc[cand] / useful[cand])])
        p = int(seg[j])
        k = _copies(problem, fleet, x, p, pairs, rem, hi - fleet.covered[w], pr[j], pv[j], pl[j], bool(sp[j]),
                    ratio * od_u - spot_u + _EPS)
        x[p] += k
        fleet.cap_left[c[j]] -= k
        fleet.pool_left[pq[j]] -= k * g[j]
        fleet.budget_left -= k * pr[j]
        fleet.by_provider[pv[j]] += k * u[j]
        fleet.by_place[pl[j]] += k * u[j]
        if sp[j]:
            fleet.spot += k * u[j]
            spot_u += k * u[j]
        else:
            od_u += k * u[j]
        gained = k * u[j]
        fleet.R -= min(gained, rem)
        fleet.covered[w] += gained
    return True


def _copies(problem: Problem, fleet: _Fleet, x: FloatArray, p: int, pairs: Pairs, rem: float, slack_hi: float,
            price: float, prov: int, place: int, spot: bool, spot_room: float) -> int:
    """How many instances of pair p to place at once: while they all still cover demand, and within
    capacity, the pair's bound, the budget, the floor and the share caps (one always fits: it was tested)."""
    u = float(pairs.u[p])
    limits = [max(1.0, rem // u), fleet.cap_left[pairs.c[p]], pairs.ub[p] - x[p], slack_hi // u,
              float(np.floor(fleet.pool_left[fleet.pool_of(np.array([p]))[0]] / pairs.g[p]))]
    if price > 0 and np.isfinite(fleet.budget_left):
        limits.append(fleet.budget_left // price)
    if spot and np.isfinite(spot_room):
        limits.append(spot_room // u)
    k = max(int(min(limits)), 1)
    while k > 1:
        after = fleet.R - min(k * u, rem)
        add = np.array([k * u])
        fine = _all(fleet.share_ok(fleet.by_provider[prov], add, problem.max_provider_share, after))
        fine = fine and _all(fleet.share_ok(fleet.by_place[place], add, problem.max_region_share, after))
        if spot:
            fine = fine and _all(fleet.share_ok(fleet.spot, add, problem.max_spot_share, after))
        if fine:
            break
        k -= 1
    return k


def _all(v: BoolArray) -> bool:
    return bool(np.all(v))
