"""What a user would pay without CloudArb, to state savings against.

* ``greedy_cheapest``: each workload in turn takes the offer that covers its minimum GPUs most
  cheaply (as SkyPilot or dstack pick one offer per job), spot allowed where the workload tolerates
  it; when no single offer has the capacity left it fills from the cheapest per usable GPU.
* ``single_provider_on_demand``: the same fill restricted to one provider's on-demand offers, for
  the provider that can serve every workload at the lowest total.

Baselines honour compatibility and capacity but not budgets, share caps or risk limits: they are
the naive purchase, not another optimization.
"""

from __future__ import annotations

import numpy as np

from optimizer.schemas import Savings
from optimizer.tables import BoolArray, CompatLookup, IntArray, usable_gpus


def _fill(lookup: CompatLookup, allowed: BoolArray) -> float | None:
    """Serve workloads in order from ``allowed`` offers; total hourly cost, or None if one cannot be served."""
    of, wl = lookup.offers, lookup.workloads
    left = of.cap.copy()
    cols = np.flatnonzero(allowed)
    if len(cols) == 0:
        return None
    total = 0.0
    for w in range(wl.n):
        ok = lookup.block(np.array([w]), cols).ok[0]
        cand: IntArray = cols[ok]
        u = usable_gpus(wl.node[w], of.gpus[cand]).astype(np.float64)
        cand, u = cand[u > 0], u[u > 0]
        if len(cand) == 0:
            return None
        need = float(wl.lo[w])
        n_single = np.ceil(need / u)
        single = (left[cand] >= n_single)
        if single.any():
            cost = np.where(single, n_single * of.price[cand], np.inf)
            j = int(np.argmin(cost))
            total += float(cost[j])
            left[cand[j]] -= n_single[j]
            continue
        order = np.argsort(of.price[cand] / u)
        for j in order.tolist():
            if need <= 0:
                break
            take = min(np.ceil(need / u[j]), left[cand[j]])
            if take <= 0:
                continue
            total += float(take * of.price[cand[j]])
            left[cand[j]] -= take
            need -= take * u[j]
        if need > 0:
            return None
    return total


def greedy_cheapest(lookup: CompatLookup) -> float | None:
    return _fill(lookup, np.ones(lookup.offers.n, dtype=bool))


def single_provider_on_demand(lookup: CompatLookup) -> float | None:
    of = lookup.offers
    best: float | None = None
    for k in range(len(of.providers)):
        cost = _fill(lookup, (of.provider == k) & ~of.spot)
        if cost is not None and (best is None or cost < best):
            best = cost
    return best


def savings(lookup: CompatLookup, cost_per_hour: float | None) -> list[Savings]:
    out = []
    for name, fn in (("single_provider_on_demand", single_provider_on_demand), ("greedy_cheapest", greedy_cheapest)):
        base = fn(lookup)
        if base is None or cost_per_hour is None:
            out.append(Savings(baseline=name, baseline_cost_per_hour=base, savings_per_hour=None, savings_pct=None))
            continue
        diff = base - cost_per_hour
        out.append(
            Savings(
                baseline=name,
                baseline_cost_per_hour=base,
                savings_per_hour=diff,
                savings_pct=100.0 * diff / base if base > 0 else None,
            )
        )
    return out
