"""Co-location: the nodes of a workload that is not elastic sit in one placement.

A placement is a set of offers whose instances can form one multi-node job (``tables.placement_keys``):
one provider, seller, region and spot/on-demand kind at ``same_region`` scope, also one zone at
``same_zone`` scope. A workload's pairs fall into *combos* (workload, placement). A workload whose
pairs all lie in one combo needs nothing more. One with several gets, per period t and combo j, a
binary ``y_tj`` and the rows

    link   sum_{p in j} u_p x_tp - H_j y_tj <= 0       H_j = min(hi_w, sum_{p in j} u_p ub_p)
    one    sum_{j of w} y_tj <= 1

so at most one combo holds instances. ``H_j`` is the most usable GPUs the combo can give, so the link
row removes nothing else. The rows are ordinary rows of the matrix: every strategy that checks its
points against the model (rounding, dive, neighbourhoods, focused solves) honours them; the lazy
fleet path, which prices pairs by a formula without these rows, is not taken when a combo row exists.

At fleet size (``lazy.applicable``) the solver decomposes instead (``solver._solve_placed``): the
placement-aware greedy (``greedy.py``) picks one placement per such workload, ``keep_placements`` keeps
it and the next ``k - 1`` cheapest for the workload, and the restricted problem takes the lazy path
from the greedy plan with every placed pair always in the master (column generation prices only the
pairs of workloads free to spread, whose reduced costs the combo rows do not touch). Its plans are feasible for the whole problem; its LP is a bound of the restricted
problem only, so the bound reported is the LP of the whole problem without co-location (every
placement rule relaxed: a valid bound), when there is time to compute it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.presolve import Pairs
from optimizer.tables import BoolArray, FloatArray, IntArray, OfferTable, WorkloadTable


@dataclass(frozen=True)
class Combos:
    """The (workload, placement) combos of workloads with more than one; ``of_pair[p]`` is pair p's combo
    (-1 for pairs of workloads free to spread or confined to a single combo)."""

    of_pair: IntArray
    w: IntArray  # workload of each combo
    key: IntArray  # placement (index into OfferTable.spots) of each combo
    cap: FloatArray  # H_j

    @property
    def n(self) -> int:
        return len(self.w)


def pair_spots(offers: OfferTable, workloads: WorkloadTable, pairs: Pairs) -> IntArray:
    """Placement of each pair at its workload's scope (-1 where the workload may spread)."""
    scope = workloads.scope[pairs.w]
    return np.where(scope == 2, offers.zone_key[pairs.o], np.where(scope == 1, offers.region_key[pairs.o], -1))


def combos(offers: OfferTable, workloads: WorkloadTable, pairs: Pairs) -> Combos:
    spot = pair_spots(offers, workloads, pairs)
    placed = np.flatnonzero(spot >= 0)
    of_pair = np.full(pairs.n, -1, dtype=np.int64)
    if len(placed) == 0:
        return Combos(of_pair, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    key = pairs.w[placed] * (len(offers.spots) + 1) + spot[placed]
    uniq, inv = np.unique(key, return_inverse=True)
    cw = uniq // (len(offers.spots) + 1)
    per_w = np.bincount(cw, minlength=workloads.n)
    multi = per_w[cw] > 1
    keep = np.flatnonzero(multi)
    remap = np.full(len(uniq), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    of_pair[placed] = remap[inv.ravel()]
    sel = np.flatnonzero(of_pair >= 0)
    room = np.bincount(of_pair[sel], weights=pairs.u[sel] * pairs.ub[sel], minlength=len(keep))
    w = cw[keep].astype(np.int64)
    cap = np.minimum(room, workloads.hi[w])
    return Combos(of_pair, w, (uniq[keep] % (len(offers.spots) + 1)).astype(np.int64), cap.astype(np.float64))


def keep_placements(offers: OfferTable, workloads: WorkloadTable, pairs: Pairs, x: FloatArray, score: FloatArray,
                    k: int) -> tuple[IntArray, BoolArray]:
    """(indices of the pairs a placement-restricted solve keeps, which of those are placed pairs).

    Every pair of a workload free to spread is kept. A workload that must stay in one placement keeps
    the placement the plan ``x`` uses and its next ``k - 1`` placements by the cost of covering its
    ``gpus_min`` there at the cheapest ``score`` per usable GPU (capacity and pair bounds, nothing else);
    a workload the plan leaves out keeps its ``k`` best."""
    spot = pair_spots(offers, workloads, pairs)
    placed = np.flatnonzero(spot >= 0)
    keep = spot < 0
    if len(placed) == 0:
        out: IntArray = np.flatnonzero(keep)
        return out, np.zeros(len(out), dtype=bool)
    w = pairs.w[placed]
    key = w * (len(offers.spots) + 1) + spot[placed]
    uniq, inv = np.unique(key, return_inverse=True)
    inv = inv.ravel()
    gw = uniq // (len(offers.spots) + 1)
    per_gpu = score[placed] / pairs.u[placed]
    order = np.lexsort((per_gpu, inv))
    grp, room = inv[order], (pairs.u[placed] * pairs.ub[placed])[order]
    cum = np.cumsum(room)
    before = cum - room - np.concatenate([[0.0], cum])[np.searchsorted(grp, grp)]
    take = np.clip(workloads.lo[gw[grp]] - before, 0.0, room)
    est = np.bincount(grp, weights=take * per_gpu[order], minlength=len(uniq))
    est[np.bincount(grp, weights=room, minlength=len(uniq)) < workloads.lo[gw] - 1e-9] = np.inf
    chosen = np.zeros(len(uniq), dtype=bool)
    chosen[inv[x[placed] > 0]] = True
    by = np.lexsort((est, ~chosen, gw))  # per workload: the plan's placement, then cheapest first
    rank = np.arange(len(uniq)) - np.searchsorted(gw[by], gw[by])
    kept = np.zeros(len(uniq), dtype=bool)
    kept[by[rank < k]] = True
    keep[placed[kept[inv]]] = True
    out = np.flatnonzero(keep)
    return out, spot[out] >= 0


def needs_choice(offers: OfferTable, workloads: WorkloadTable, pairs: Pairs) -> bool:
    """True when some workload must choose among several placements (the model gets binary columns)."""
    return combos(offers, workloads, pairs).n > 0


def placement_reasons(offers: OfferTable, workloads: WorkloadTable, pairs: Pairs, classes_cap: FloatArray) -> list[str]:
    """Sentences for placed workloads that no single placement can serve, even alone."""
    spot = pair_spots(offers, workloads, pairs)
    out: list[str] = []
    placed_w = np.unique(pairs.w[spot >= 0])
    for w in placed_w.tolist():
        sel = np.flatnonzero((pairs.w == w) & (spot >= 0))
        room = pairs.u[sel] * np.minimum(pairs.ub[sel], classes_cap[pairs.c[sel]])
        by_spot = np.bincount(spot[sel], weights=room, minlength=len(offers.spots))
        best = int(np.argmax(by_spot))
        if by_spot[best] + 1e-9 < workloads.lo[w]:
            scope = "zone" if workloads.scope[w] == 2 else "region"
            out.append(
                f"workload '{workloads.ids[w]}' needs {workloads.lo[w]:g} GPUs in one placement (same {scope}), "
                f"but the largest single placement, {offers.spots[best]}, has room for {by_spot[best]:g} usable "
                f"GPUs; mark it elastic or set placement 'any' to split it."
            )
    return out
