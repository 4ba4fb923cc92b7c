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
placement-aware greedy (``greedy.py``) picks one placement per such workload, ``keep_plan_placements``
drops the pairs outside it, and the restricted problem, which has no combo rows, takes the lazy path
from the greedy plan. Its plans are feasible for the whole problem; its LP is a bound of the restricted
problem only, so the bound reported is the LP of the whole problem without co-location (every
placement rule relaxed: a valid bound), when there is time to compute it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.presolve import Pairs
from optimizer.tables import FloatArray, IntArray, OfferTable, WorkloadTable


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


def keep_plan_placements(offers: OfferTable, workloads: WorkloadTable, pairs: Pairs, x: FloatArray) -> IntArray:
    """Indices of the pairs a placement-restricted solve keeps: every pair of a workload free to spread;
    for a workload that must stay in one placement, the pairs in the placement the plan ``x`` uses
    (a workload the plan leaves out keeps all of its pairs)."""
    spot = pair_spots(offers, workloads, pairs)
    chosen = np.full(workloads.n, -1, dtype=np.int64)
    used = np.flatnonzero((x > 0) & (spot >= 0))
    chosen[pairs.w[used]] = spot[used]
    keep = (spot < 0) | (chosen[pairs.w] < 0) | (spot == chosen[pairs.w])
    out: IntArray = np.flatnonzero(keep)
    return out


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
