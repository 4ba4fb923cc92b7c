"""Presolve: merge identical offers, drop dominated ones, and list the compatible (workload, offer) pairs.

Why each reduction is safe (it never removes an optimal solution):

* Identical offers (same provider, place, model, shape, prices, risk, egress) are interchangeable,
  so they become one *class* whose capacity is the sum; the class allocation is split back over its
  member offers afterwards, each up to its own capacity.
* Within a *group* of classes that every constraint treats alike (same provider, same place when
  regions matter, same GPU model, GPUs per instance, VRAM, spot flag, interruption rate, egress price
  and reliability), a class is dropped when the cheaper classes kept before it (every price no higher)
  together have capacity for the most instances any solution could put in the group,
  ``D = sum_w floor(hi_w / u_w)`` over the workloads compatible with the group. Any solution using
  the dropped class can move those instances to the cheaper ones without violating anything.
  With per-period or scenario prices, a class is dropped only when one kept class with capacity
  ``>= D`` is no dearer in every period and every scenario.
* Offers named in the current allocation are never dropped (their migration terms refer to them).
* Capacity pools (``Offer.capacity_pool``) and the expected launch cost are part of the group: offers
  merge and dominate only within one pool and at one launch cost. Moving instances to a cheaper class
  of the same group keeps their GPUs per instance and pool, so every pool row sums the same.
* When a workload must stay in one placement, offers merge and dominate only within one placement
  (``tables.placement_keys`` at the finest scope any workload asks for), so moving instances to a
  cheaper class never moves them to another placement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from optimizer.schemas import Problem
from optimizer.tables import (
    BoolArray,
    CompatLookup,
    FloatArray,
    IntArray,
    OfferTable,
    data_is_local,
    usable_gpus,
)

log = logging.getLogger(__name__)

_BLOCK_CELLS = 4_000_000  # (workloads x offers) cells evaluated at once: bounds peak memory


@dataclass(frozen=True)
class Classes:
    """Offer classes kept by presolve; class k is offer ``rep[k]`` with capacity ``cap[k]``."""

    rep: IntArray
    cap: FloatArray
    member_ptr: IntArray  # members of class k: member_idx[member_ptr[k]:member_ptr[k+1]]
    member_idx: IntArray
    removed: int  # offers merged away or dropped

    @property
    def n(self) -> int:
        return len(self.rep)

    def members(self, k: int) -> IntArray:
        return self.member_idx[self.member_ptr[k] : self.member_ptr[k + 1]]


@dataclass(frozen=True)
class Pairs:
    """The decision columns: one per compatible (workload, class) pair."""

    w: IntArray
    c: IntArray  # class index
    o: IntArray  # representative offer index
    u: FloatArray  # usable GPUs per instance for this workload
    g: FloatArray  # GPUs per instance (all rented: cost, migration, Totals.gpus)
    need: FloatArray  # usable GPUs per instance that count as needed GPUs (0 when the need is gpus_min)
    ub: FloatArray  # instance upper bound
    perf: FloatArray  # relative-throughput-weighted usable GPUs per instance
    risk: FloatArray  # expected interruption cost, USD per instance-hour
    egress: FloatArray  # data movement, USD per instance-hour amortized over the horizon
    launch: FloatArray  # expected cost of refused launches, USD per instance-hour (tables.launch_costs)

    @property
    def n(self) -> int:
        return len(self.w)

    @property
    def extra(self) -> FloatArray:
        """What a pair costs per instance-hour beyond its price: egress and refused launches."""
        out: FloatArray = self.egress + self.launch
        return out


def _current_offers(problem: Problem, offers: OfferTable) -> BoolArray:
    index = {oid: i for i, oid in enumerate(offers.ids)}
    out = np.zeros(offers.n, dtype=bool)
    for line in problem.current_allocation:
        if line.offer_id in index:
            out[index[line.offer_id]] = True
    return out


def _price_matrix(offers: OfferTable) -> FloatArray:
    """(K, O): every price an offer can be charged (nominal, per period, per scenario)."""
    parts = [offers.price[None, :]]
    if offers.periods is not None:
        parts.append(offers.periods)
    if offers.scenarios is not None:
        parts.append(offers.scenarios)
    return np.vstack(parts)


def _region_matters(problem: Problem) -> bool:
    return (
        problem.max_region_share is not None
        or any(w.allowed_regions is not None or w.denied_regions for w in problem.workloads)
        or any(w.data_location is not None and w.data_size_gb > 0 for w in problem.workloads)
    )


def build_classes(problem: Problem, lookup: CompatLookup, *, enabled: bool) -> Classes:
    offers = lookup.offers
    n = offers.n
    if not enabled or n == 0:
        idx = np.arange(n, dtype=np.int64)
        return Classes(idx, offers.cap.copy(), np.arange(n + 1, dtype=np.int64), idx, 0)
    current = _current_offers(problem, offers)
    prices = _price_matrix(offers)
    place = offers.place if _region_matters(problem) else np.zeros(n, dtype=np.int64)
    scope = lookup.workloads.scope.max(initial=0)
    spot_key = offers.zone_key if scope == 2 else (offers.region_key if scope == 1 else np.zeros(n, dtype=np.int64))
    group_cols = np.column_stack(
        [
            offers.provider,
            place,
            spot_key,
            offers.model,
            offers.gpus,
            offers.vram,
            offers.spot,
            offers.rate,
            offers.egress,
            offers.reliability >= problem.min_reliability,
            offers.pool,
            offers.launch,
            offers.launch_p >= problem.min_launch_success_probability,
        ]
    ).astype(np.float64)
    own = np.where(current, np.arange(n), -1).astype(np.float64)
    full = np.column_stack([group_cols, prices.T, own[:, None], offers.reliability])
    _, first, cls_of = np.unique(full, axis=0, return_index=True, return_inverse=True)
    cls_of = cls_of.ravel()
    ncls = len(first)
    summed = np.bincount(cls_of, weights=np.where(np.isinf(offers.cap), 1e300, offers.cap), minlength=ncls)
    cap: FloatArray = np.where(summed >= 1e299, np.inf, summed).astype(np.float64)
    rep = first.astype(np.int64)
    keep = _undominated(problem, lookup, group_cols[rep], prices[:, rep], cap, current[rep], rep)
    kept = np.flatnonzero(keep)
    remap = np.full(ncls, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    member_cls = remap[cls_of]
    alive = np.flatnonzero(member_cls >= 0)
    order = alive[np.argsort(member_cls[alive], kind="stable")]
    ptr = np.zeros(len(kept) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(member_cls[alive], minlength=len(kept)))
    removed = n - len(kept)
    log.debug("presolve: %d offers -> %d classes (%d merged or dominated)", n, len(kept), removed)
    return Classes(rep[kept], cap[kept], ptr, order.astype(np.int64), removed)


def _undominated(
    problem: Problem,
    lookup: CompatLookup,
    group_cols: FloatArray,
    prices: FloatArray,
    cap: FloatArray,
    protected: BoolArray,
    rep: IntArray,
) -> BoolArray:
    _, grp_first, grp = np.unique(group_cols, axis=0, return_index=True, return_inverse=True)
    grp = grp.ravel()
    ngrp = len(grp_first)
    demand = _group_demand(lookup, rep[grp_first])
    nominal = prices[0]
    vectors = prices.shape[0] > 1
    mean = prices.mean(axis=0)
    order = np.lexsort((np.arange(len(grp)), mean if vectors else nominal, grp))
    g_sorted = grp[order]
    cap_sorted = np.minimum(cap[order], 1e15)
    csum = np.cumsum(cap_sorted)
    start = np.searchsorted(g_sorted, np.arange(ngrp))
    before = csum - cap_sorted - np.where(start[g_sorted] > 0, csum[start[g_sorted] - 1], 0.0)
    keep = np.ones(len(grp), dtype=bool)
    if not vectors:
        drop_sorted = before >= demand[g_sorted]
        keep[order[drop_sorted]] = False
    else:
        big = cap >= demand[grp]
        score = np.where(big, mean, np.inf)
        anchor = np.full(ngrp, -1, dtype=np.int64)
        best = np.full(ngrp, np.inf)
        np.minimum.at(best, grp, score)
        has = np.isfinite(best)
        cand = np.flatnonzero(big & (score == best[grp]))
        anchor[grp[cand[::-1]]] = cand[::-1]
        a = anchor[grp]
        ok = (a >= 0) & (a != np.arange(len(grp)))
        dominated = np.zeros(len(grp), dtype=bool)
        idx = np.flatnonzero(ok & has[grp])
        dominated[idx] = np.all(prices[:, a[idx]] <= prices[:, idx], axis=0)
        keep &= ~dominated
    keep |= protected
    return keep


def _group_demand(lookup: CompatLookup, reps: IntArray) -> FloatArray:
    """Most instances of each group any solution can use: sum over compatible workloads of floor(hi/u).

    Done per workload signature (same compatibility and node size): for a signature, floor(hi/u)
    summed over its workloads depends only on u, which takes a handful of values."""
    w = lookup.workloads
    sig, first = lookup.signatures()
    out = np.zeros(len(reps), dtype=np.float64)
    rows_per_block = max(1, _BLOCK_CELLS // max(1, len(reps)))
    g = lookup.offers.gpus[reps]
    for start in range(0, len(first), rows_per_block):
        block = np.arange(start, min(len(first), start + rows_per_block))
        ok = lookup.block(first[block], reps).ok
        for i, s in enumerate(block.tolist()):
            node = int(w.node[first[s]])
            u = usable_gpus(np.full(len(g), node, dtype=np.int64), g)
            his = w.hi[sig == s]
            sizes = np.unique(u[ok[i] & (u > 0)])
            for v in sizes.tolist():
                total = float(np.floor(his / v).sum())
                out[ok[i] & (u == v)] += total
    return out


def build_pairs(problem: Problem, lookup: CompatLookup, classes: Classes) -> Pairs:
    """Every compatible (workload, class) pair, grouped by workload in workload order.

    The compatibility rows are computed once per workload signature (see ``CompatLookup.signatures``)
    and repeated for the signature's workloads by concatenation; per-workload values enter by
    ``np.repeat``, so no step gathers a (workload, offer) matrix."""
    offers, wl = lookup.offers, lookup.workloads
    cols = classes.rep
    sig, first = lookup.signatures()
    c_by: list[IntArray] = []
    u_by: list[FloatArray] = []
    rel_by: list[FloatArray] = []
    rows_per_block = max(1, _BLOCK_CELLS // max(1, len(cols)))
    for start in range(0, len(first), rows_per_block):
        block = np.arange(start, min(len(first), start + rows_per_block))
        comp = lookup.block(first[block], cols)
        ok = comp.ok
        for i in range(len(block)):
            c = np.flatnonzero(ok[i])
            c_by.append(c)
            u_by.append(usable_gpus(wl.node[first[block[i]]], offers.gpus[cols[c]]).astype(np.float64))
            rel_by.append(comp.perf[i, c])
    counts = np.array([len(c) for c in c_by], dtype=np.int64)[sig]
    order = sig.tolist()
    c = np.concatenate([c_by[s] for s in order]) if order else np.zeros(0, dtype=np.int64)
    u = np.concatenate([u_by[s] for s in order]) if order else np.zeros(0)
    rel = np.concatenate([rel_by[s] for s in order]) if order else np.zeros(0)
    w = np.repeat(np.arange(wl.n, dtype=np.int64), counts)
    ub = np.minimum(classes.cap[c], np.floor(wl.hi[w] / np.maximum(u, 1.0)))
    good = (u > 0) & (ub > 0)
    if not good.all():
        w, c, u, ub, rel = w[good], c[good], u[good], ub[good], rel[good]
    o = cols[c]
    local = data_is_local(problem, offers)
    if local.all():
        egress = np.zeros(len(w))
    else:
        moved = ~local[w, offers.place[o]]
        egress = np.where(moved, wl.data_gb[w] * offers.egress[o] / problem.horizon_hours, 0.0)
    return Pairs(
        w=w,
        c=c,
        o=o,
        u=u,
        g=offers.gpus[cols].astype(np.float64)[c],
        need=np.where(wl.need_var[w], u, 0.0),
        ub=ub,
        perf=rel * u * wl.priority[w],
        risk=offers.rate[o] * wl.lost_hours[w] * offers.price[o],
        egress=egress,
        launch=offers.launch[o],
    )
