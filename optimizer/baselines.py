"""What a user would pay without CloudArb, to state savings against.

* ``skypilot_rule``: the rule SkyPilot's optimizer applies to each task on its own: one instance type
  with exactly the GPUs of one node (``accelerators: H100:8``), ``ceil(gpus_min / gpus_per_node)``
  nodes of it, the cheapest such offer across every cloud and region that has them all; spot only
  for spot-tolerant workloads. A workload that no offer fits this way leaves the baseline without a
  plan (SkyPilot would refuse the task).
* ``greedy_cheapest``: each workload in turn takes the offer that covers its minimum GPUs most
  cheaply, spot allowed where the workload tolerates it; when no single offer has the capacity left
  it fills from the cheapest per usable GPU.
* ``single_provider_on_demand``: the greedy purchase restricted to one provider's on-demand offers,
  for the provider that can serve every workload at the lowest total.

Every baseline honours the rules of the purchase itself, as the solve does: compatibility (GPUs per node
on one instance, VRAM, models, providers, regions, spot tolerance, reliability, launch floor), capacity
and capacity pools (workloads served in order take capacity from later ones), the workload's GPU bounds and co-location (the nodes of a
workload that is not elastic come from one placement, ``tables.placement_keys``: the greedy purchase picks
the cheapest placement that can hold the whole workload). Without that last rule a 16-GPU job at 8 GPUs per
node was "served" by two 8-GPU marketplace listings in different places at a third of the price of any
real 16-GPU cluster (a claimed saving of -211% on the bundled snapshot).

The fleet's policies (budget, provider/region/spot shares, on-demand floor, risk and performance caps) are
not applied: each baseline is the naive purchase, not another optimization. Its plan is checked by the
independent validator; a plan that breaks any hard constraint of the problem is reported with its price,
``honours_constraints=False`` and the ``violated`` names, and **no saving is stated against it** (a plan
that may break a rule the optimum keeps can be cheaper than every plan that keeps it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optimizer.schemas import AllocationLine, Problem, Savings, Solution, SolverStats
from optimizer.tables import BoolArray, CompatLookup, FloatArray, IntArray, usable_gpus
from optimizer.validate import validate


@dataclass(frozen=True)
class Plan:
    """A baseline's purchase: (workload index, offer index, instances) lines; ``why`` when it has none."""

    lines: list[tuple[int, int, int]]
    why: str = ""

    @property
    def ok(self) -> bool:
        return not self.why


@dataclass(frozen=True)
class Cover:
    """One workload's purchase: (offer index, instances) lines and their USD per hour."""

    lines: list[tuple[int, int]]
    cost: float


class _Left:
    """Instances left per offer and GPUs left per capacity pool (a last pool entry for 'no pool')."""

    def __init__(self, lookup: CompatLookup) -> None:
        of = lookup.offers
        self.of = of
        self.inst = of.cap.copy()
        self.pool = np.concatenate([of.pool_gpus, [np.inf]])

    def copy(self) -> _Left:
        out = object.__new__(_Left)
        out.of, out.inst, out.pool = self.of, self.inst.copy(), self.pool.copy()
        return out

    def room(self, cand: IntArray) -> FloatArray:
        """Instances each offer of ``cand`` can still rent out, within its own and its pool's capacity."""
        out: FloatArray = np.minimum(self.inst[cand], np.floor(self.pool[self.of.pool[cand]] / self.of.gpus[cand]))
        return out

    def take(self, o: int, n: int) -> None:
        self.inst[o] -= n
        self.pool[self.of.pool[o]] -= n * float(self.of.gpus[o])


def _compatible(lookup: CompatLookup, w: int, cols: IntArray) -> tuple[IntArray, FloatArray]:
    """Offers among ``cols`` that may serve workload ``w``, and the usable GPUs of one instance of each."""
    ok = lookup.block(np.array([w]), cols).ok[0]
    cand: IntArray = cols[ok]
    u = usable_gpus(lookup.workloads.node[w], lookup.offers.gpus[cand]).astype(np.float64)
    return cand[u > 0], u[u > 0]


def _placements(lookup: CompatLookup, w: int, cand: IntArray, u: FloatArray, left: _Left) -> list[IntArray]:
    """Positions in ``cand`` grouped by the placement the workload's nodes must share (one group when it
    may spread), leaving out the placements whose capacity left cannot hold its minimum."""
    scope = int(lookup.workloads.scope[w])
    if scope == 0:
        return [np.arange(len(cand))]
    key = (lookup.offers.region_key if scope == 1 else lookup.offers.zone_key)[cand]
    _, group = np.unique(key, return_inverse=True)
    group = group.ravel()
    usable = np.minimum(left.room(cand), np.floor(lookup.workloads.hi[w] / u)) * u
    holds = np.bincount(group, weights=usable) >= lookup.workloads.lo[w]
    order = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[order])) + 1
    return [at for at in np.split(order, cuts) if holds[group[at[0]]]]


def _cover(lookup: CompatLookup, w: int, cand: IntArray, u: FloatArray, left: _Left) -> Cover | None:
    """The naive purchase of workload ``w`` from ``cand``: the single offer that covers its minimum most
    cheaply, else a fill by price per usable GPU; never beyond the workload's maximum or an offer's
    capacity left. None when the candidates cannot hold it."""
    of, wl = lookup.offers, lookup.workloads
    lo, hi = float(wl.lo[w]), float(wl.hi[w])
    n_single = np.ceil(lo / u)
    single = (left.room(cand) >= n_single) & (n_single * u <= hi)
    if single.any():
        cost = np.where(single, n_single * of.price[cand], np.inf)
        j = int(np.argmin(cost))
        return Cover([(int(cand[j]), int(n_single[j]))], float(cost[j]))
    lines: list[tuple[int, int]] = []
    got, total = 0.0, 0.0
    trial = left.copy()  # lines of one cover may share a pool
    for j in np.argsort(of.price[cand] / u, kind="stable").tolist():
        if got >= lo:
            break
        take = min(np.ceil((lo - got) / u[j]), float(trial.room(cand[j : j + 1])[0]), np.floor((hi - got) / u[j]))
        if take <= 0:
            continue
        trial.take(int(cand[j]), int(take))
        lines.append((int(cand[j]), int(take)))
        got += take * u[j]
        total += take * float(of.price[cand[j]])
    return Cover(lines, total) if got >= lo else None


def _fill(lookup: CompatLookup, allowed: BoolArray) -> Plan:
    """Serve workloads in order from ``allowed`` offers, each from the cheapest placement that holds it."""
    wl = lookup.workloads
    left = _Left(lookup)
    cols = np.flatnonzero(allowed)
    lines: list[tuple[int, int, int]] = []
    if len(cols) == 0:
        return Plan([], "no offer is allowed")
    for w in range(wl.n):
        cand, u = _compatible(lookup, w, cols)
        if len(cand) == 0:
            return Plan([], f"no allowed offer suits workload '{wl.ids[w]}'")
        best: Cover | None = None
        for at in _placements(lookup, w, cand, u, left):
            cover = _cover(lookup, w, cand[at], u[at], left)
            if cover is not None and (best is None or cover.cost < best.cost):
                best = cover
        if best is None:
            where = "in one placement " if wl.scope[w] else ""
            return Plan([], f"the allowed offers lack capacity {where}for workload '{wl.ids[w]}'")
        for o, n in best.lines:
            lines.append((w, o, n))
            left.take(o, n)
    return Plan(lines)


def greedy_cheapest(lookup: CompatLookup) -> Plan:
    return _fill(lookup, np.ones(lookup.offers.n, dtype=bool))


def single_provider_on_demand(lookup: CompatLookup) -> Plan:
    of = lookup.offers
    best: Plan = Plan([], "no single provider can serve every workload on demand")
    best_cost = np.inf
    for k in range(len(of.providers)):
        plan = _fill(lookup, (of.provider == k) & ~of.spot)
        cost = plan_cost(lookup, plan)
        if plan.ok and cost is not None and cost < best_cost:
            best, best_cost = plan, cost
    return best


def skypilot_rule(lookup: CompatLookup) -> Plan:
    of, wl = lookup.offers, lookup.workloads
    left = _Left(lookup)
    cols = np.arange(of.n)
    lines: list[tuple[int, int, int]] = []
    for w in range(wl.n):
        cand, _ = _compatible(lookup, w, cols)
        node = int(wl.node[w])
        nodes = int(np.ceil(wl.lo[w] / node))
        fits = cand[(of.gpus[cand] == node) & (left.room(cand) >= nodes)]
        if len(fits) == 0:
            return Plan([], f"no instance type with exactly {node} GPU(s) has {nodes} instance(s) for "
                            f"workload '{wl.ids[w]}'")
        j = int(fits[np.argmin(of.price[fits])])
        lines.append((w, j, nodes))
        left.take(j, nodes)
    return Plan(lines)


def plan_cost(lookup: CompatLookup, plan: Plan) -> float | None:
    """USD per hour of a plan (mean over periods when offers carry per-period prices)."""
    if not plan.ok:
        return None
    of = lookup.offers
    price = of.price if of.periods is None else of.periods.mean(axis=0)
    return float(sum(n * price[o] for _, o, n in plan.lines))


def plan_solution(problem: Problem, lookup: CompatLookup, plan: Plan) -> Solution:
    """The plan as a Solution, so that ``optimizer.validate`` can judge it like the optimizer's own."""
    of = lookup.offers
    periods = [None] if of.periods is None else list(range(of.periods.shape[0]))
    lines = []
    for w, o, n in plan.lines:
        offer = problem.offers[o]
        for t in periods:
            price = of.price[o] if t is None or of.periods is None else of.periods[t, o]
            lines.append(AllocationLine(
                workload_id=problem.workloads[w].id, offer_id=offer.id, provider=offer.provider,
                region=offer.region, instance_type=offer.instance_type, gpu_model=offer.gpu_model, instances=n,
                gpus=n * offer.gpus_per_instance, hourly_cost=float(n * price), spot=offer.spot, period=t))
    return Solution(status="feasible", allocations=lines, stats=SolverStats(backend="baseline", status="feasible"))


BASELINES: dict[str, Callable[[CompatLookup], Plan]] = {
    "skypilot_rule": skypilot_rule,
    "single_provider_on_demand": single_provider_on_demand,
    "greedy_cheapest": greedy_cheapest,
}


def savings(problem: Problem, lookup: CompatLookup, cost_per_hour: float | None) -> list[Savings]:
    """Each baseline's price and, when its plan meets every hard constraint, the saving against it."""
    out = []
    for name, rule in BASELINES.items():
        plan = rule(lookup)
        base = plan_cost(lookup, plan)
        if base is None:
            out.append(Savings(baseline=name, baseline_cost_per_hour=None, savings_per_hour=None,
                               savings_pct=None, note=plan.why))
            continue
        broken = validate(problem, plan_solution(problem, lookup, plan))
        violated = sorted({v.constraint for v in broken})
        if violated:
            out.append(Savings(
                baseline=name, baseline_cost_per_hour=base, savings_per_hour=None, savings_pct=None,
                honours_constraints=False, violated=violated,
                note=f"not like for like, so no saving is stated: its plan breaks {', '.join(violated)} "
                     f"({broken[0].message})"))
            continue
        diff = None if cost_per_hour is None else base - cost_per_hour
        out.append(Savings(
            baseline=name,
            baseline_cost_per_hour=base,
            savings_per_hour=diff,
            savings_pct=100.0 * diff / base if diff is not None and base > 0 else None,
            honours_constraints=True,
        ))
    return out
