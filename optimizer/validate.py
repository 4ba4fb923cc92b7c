"""Check a Solution against its Problem, constraint by constraint, without the optimization model.

This is deliberately a second, plain implementation of the rules (loops over the allocation lines
and dictionaries, no matrices), so that a bug in the model's construction shows up as a violation
here rather than being checked by itself. Only the GPU-model name normalization is shared, since
it is a naming convention, not a constraint.
"""

from __future__ import annotations

import math
from collections import defaultdict

from pydantic import BaseModel, ConfigDict

from optimizer.performance import canonical_model, relative_throughput
from optimizer.schemas import Offer, Problem, Solution, Workload


class Violation(BaseModel):
    model_config = ConfigDict(frozen=True)

    constraint: str
    message: str


def _compatible(problem: Problem, w: Workload, o: Offer) -> str | None:
    """Reason the offer may not serve the workload, or None."""
    if o.gpus_per_instance < w.gpus_per_node:
        return f"{o.gpus_per_instance} GPUs per instance < {w.gpus_per_node} per node"
    if o.vram_gb_per_gpu < w.min_vram_gb:
        return f"{o.vram_gb_per_gpu} GB VRAM < {w.min_vram_gb}"
    model = canonical_model(o.gpu_model)
    if w.allowed_gpu_models is not None and model not in {canonical_model(m) for m in w.allowed_gpu_models}:
        return f"GPU model {o.gpu_model} not allowed"
    if w.performance is not None and {canonical_model(k): v for k, v in w.performance.items()}.get(model, 0) <= 0:
        return f"GPU model {o.gpu_model} has no throughput in the workload's table"
    if w.allowed_providers is not None and o.provider not in w.allowed_providers:
        return f"provider {o.provider} not allowed"
    if o.provider in w.denied_providers:
        return f"provider {o.provider} denied"
    place = f"{o.provider}/{o.region}"
    if w.allowed_regions is not None and o.region not in w.allowed_regions and place not in w.allowed_regions:
        return f"region {o.region} not allowed"
    if o.region in w.denied_regions or place in w.denied_regions:
        return f"region {o.region} denied"
    if o.spot and not w.spot_tolerant:
        return "spot offer for a workload that is not spot-tolerant"
    if o.reliability is not None and o.reliability < problem.min_reliability:
        return f"reliability {o.reliability} below {problem.min_reliability}"
    launch = o.launch_success_probability
    if launch is not None and (launch <= 0 or launch < problem.min_launch_success_probability):
        return f"launch success probability {launch} below {problem.min_launch_success_probability} (or 0)"
    return None


def _capacity(problem: Problem, o: Offer) -> int | None:
    """Instances the offer can rent out (None = unlimited): stated, else one machine for a listing,
    else the problem's default for pools."""
    if o.available_instances is not None:
        return o.available_instances
    if o.capacity_kind == "listing":
        return 1
    return problem.default_available_instances


def _where(w: Workload, o: Offer) -> tuple[str, ...]:
    """The placement an offer's instances belong to at the workload's scope: one provider, seller,
    region and spot kind (and zone for same_zone); an offer nothing places near others is its own."""
    alone = ("offer", o.id)
    if w.placement == "same_zone":
        return (o.provider, o.seller or "", o.region, o.zone, str(o.spot)) if o.zone else alone
    if o.capacity_kind == "listing" and not o.zone:
        return alone
    return (o.provider, o.seller or "", o.region, str(o.spot))


def _price(problem: Problem, o: Offer, period: int | None) -> float:
    if period is not None and o.price_per_period:
        return o.price_per_period[period]
    p = o.price_per_hour
    if problem.use_committed_prices and o.committed_price_per_hour is not None:
        p = min(p, o.committed_price_per_hour)
    return p


def _cvar(losses: list[float], alpha: float) -> float:
    """Rockafellar-Uryasev: min over eta of eta + E[(L - eta)+] / (1 - alpha), at a scenario value."""
    best = math.inf
    for eta in losses:
        best = min(best, eta + sum(max(0.0, x - eta) for x in losses) / len(losses) / (1 - alpha))
    return best


def validate(problem: Problem, solution: Solution, *, tol: float = 1e-6) -> list[Violation]:
    out: list[Violation] = []

    def bad(constraint: str, message: str) -> None:
        out.append(Violation(constraint=constraint, message=message))

    if solution.status not in ("optimal", "feasible"):
        if solution.allocations:
            bad("status", f"status {solution.status} but allocation lines present")
        if solution.status == "infeasible" and not solution.infeasibility_reason:
            bad("status", "infeasible without a reason")
        return out

    offers = {o.id: o for o in problem.offers}
    workloads = {w.id: w for w in problem.workloads}
    multi = any(o.price_per_period for o in problem.offers)
    n_periods = max((len(o.price_per_period or []) for o in problem.offers), default=0) if multi else 1
    usable: dict[tuple[str, int], int] = defaultdict(int)
    od_usable: dict[tuple[str, int], int] = defaultdict(int)
    used: dict[tuple[str, int], int] = defaultdict(int)
    pooled: dict[tuple[str, int], int] = defaultdict(int)  # GPUs taken from each capacity pool
    cost: dict[int, float] = defaultdict(float)
    by_provider: dict[tuple[str, int], int] = defaultdict(int)
    by_region: dict[tuple[str, int], int] = defaultdict(int)
    spot: dict[int, int] = defaultdict(int)
    places: dict[tuple[str, int], set[tuple[str | None, ...]]] = defaultdict(set)
    risk = 0.0
    for line in solution.allocations:
        o, w = offers.get(line.offer_id), workloads.get(line.workload_id)
        if o is None or w is None:
            bad("reference", f"line names unknown offer {line.offer_id!r} or workload {line.workload_id!r}")
            continue
        t = line.period if line.period is not None else 0
        if multi and line.period is None:
            bad("period", f"line {w.id}@{o.id} lacks a period in a multi-period problem")
        if line.instances <= 0:
            bad("instances", f"line {w.id}@{o.id} has {line.instances} instances")
        why = _compatible(problem, w, o)
        if why:
            bad("compatibility", f"{w.id} on {o.id}: {why}")
        if line.gpus != line.instances * o.gpus_per_instance:
            bad("line", f"{w.id}@{o.id}: gpus {line.gpus} != instances x GPUs per instance")
        price = _price(problem, o, line.period)
        if abs(line.hourly_cost - line.instances * price) > tol * max(1.0, line.hourly_cost):
            bad("line", f"{w.id}@{o.id}: hourly cost {line.hourly_cost} != {line.instances} x {price}")
        if line.spot != o.spot or line.provider != o.provider or line.region != o.region:
            bad("line", f"{w.id}@{o.id}: copied offer fields differ from the offer")
        n_use = (o.gpus_per_instance // w.gpus_per_node) * w.gpus_per_node
        usable[(w.id, t)] += line.instances * n_use
        if not o.spot:
            od_usable[(w.id, t)] += line.instances * n_use
        used[(o.id, t)] += line.instances
        if o.capacity_pool is not None:
            pooled[(o.capacity_pool, t)] += line.instances * o.gpus_per_instance
        cost[t] += line.instances * price
        # Shares count usable GPUs (surplus against a cap) over the GPUs the fleet needs (below).
        g = line.instances * n_use
        by_provider[(o.provider, t)] += g
        by_region[(f"{o.provider}/{o.region}", t)] += g
        if o.spot:
            spot[t] += g
        if not w.splits and w.placement != "any":
            places[(w.id, t)].add(_where(w, o))
        rate = o.interruption_rate_per_hour
        if rate is None:
            rate = problem.default_spot_interruption_rate_per_hour if o.spot else 0.0
        risk += line.instances * rate * w.checkpoint_interval_hours / 2 * _price(problem, o, None) / n_periods

    largest = max((o.gpus_per_instance for o in problem.offers), default=1)
    for t in range(n_periods):
        for w in problem.workloads:
            have = usable[(w.id, t)]
            hi = w.gpus_max if w.gpus_max is not None else w.gpus_min + largest - 1
            if have < w.gpus_min:
                bad("demand", f"{w.id} period {t}: {have} usable GPUs < minimum {w.gpus_min}")
            if have > hi:
                bad("demand", f"{w.id} period {t}: {have} usable GPUs > maximum {hi}")
            if w.workload_type == "inference" and problem.inference_on_demand_floor > 0:
                if od_usable[(w.id, t)] + tol < problem.inference_on_demand_floor * have:
                    bad("od_floor", f"{w.id} period {t}: on-demand {od_usable[(w.id, t)]} of {have} GPUs")
        for w in problem.workloads:
            if len(places[(w.id, t)]) > 1:
                where = sorted("/".join(str(k) for k in key) for key in places[(w.id, t)])
                bad("placement", f"{w.id} period {t}: nodes in {len(where)} placements ({', '.join(where[:4])}) "
                                 f"but the workload is not elastic ({w.placement})")
        for o in problem.offers:
            cap = _capacity(problem, o)
            if cap is not None and used[(o.id, t)] > cap:
                bad("capacity", f"offer {o.id} period {t}: {used[(o.id, t)]} instances > {cap} available")
        for name, gpus in problem.capacity_pools.items():
            if pooled[(name, t)] > gpus:
                bad("capacity_pool", f"pool {name} period {t}: {pooled[(name, t)]} GPUs taken > {gpus} in the pool")
        if problem.budget_per_hour is not None and cost[t] > problem.budget_per_hour * (1 + tol) + tol:
            bad("budget", f"period {t}: ${cost[t]:.4f}/h > budget ${problem.budget_per_hour:.4f}/h")
        total = sum(
            min(usable[(w.id, t)], w.gpus_max) if w.gpus_max is not None and w.gpus_max > w.gpus_min else w.gpus_min
            for w in problem.workloads
        )
        for (name, tt), g in list(by_provider.items()):
            if tt == t and problem.max_provider_share is not None and g > problem.max_provider_share * total + tol:
                bad("provider_share", f"{name} period {t}: {g}/{total} GPUs > {problem.max_provider_share:.0%}")
        for (name, tt), g in list(by_region.items()):
            if tt == t and problem.max_region_share is not None and g > problem.max_region_share * total + tol:
                bad("region_share", f"{name} period {t}: {g}/{total} GPUs > {problem.max_region_share:.0%}")
        if problem.max_spot_share is not None and spot[t] > problem.max_spot_share * total + tol:
            bad("spot_share", f"period {t}: {spot[t]}/{total} spot GPUs > {problem.max_spot_share:.0%}")

    if problem.max_expected_interruption_cost_per_hour is not None:
        if risk > problem.max_expected_interruption_cost_per_hour * (1 + tol) + tol:
            bad("risk_cap", f"expected interruption cost {risk:.4f} > cap")
    if problem.min_performance is not None:
        perf = 0.0
        for line in solution.allocations:
            o, w = offers.get(line.offer_id), workloads.get(line.workload_id)
            if o is None or w is None:
                continue
            table = {canonical_model(k): v for k, v in (w.performance or {}).items()}
            rel = table.get(canonical_model(o.gpu_model), 0.0) if w.performance else relative_throughput(
                o.gpu_model, w.workload_type, problem.gpu_figures)
            perf += line.instances * (o.gpus_per_instance // w.gpus_per_node) * w.gpus_per_node * rel / n_periods
        if perf + tol * max(1.0, perf) < problem.min_performance:
            bad("perf_floor", f"performance {perf:.4f} < floor {problem.min_performance}")
    scen = [o for o in problem.offers if o.price_scenarios]
    if scen and problem.max_cvar_per_hour is not None:
        n_s = len(scen[0].price_scenarios or [])
        losses = [0.0] * n_s
        for line in solution.allocations:
            o = offers.get(line.offer_id)
            if o is None:
                continue
            for s in range(n_s):
                losses[s] += line.instances * (o.price_scenarios[s] if o.price_scenarios else o.price_per_hour) / n_periods
        value = _cvar(losses, problem.cvar_alpha)
        if value > problem.max_cvar_per_hour * (1 + tol) + tol:
            bad("cvar_cap", f"CVaR {value:.4f} > cap {problem.max_cvar_per_hour}")
    if solution.totals is not None:
        mean_cost = sum(cost.values()) / n_periods
        if abs(solution.totals.cost_per_hour - mean_cost) > 1e-6 * max(1.0, mean_cost):
            bad("totals", f"cost_per_hour {solution.totals.cost_per_hour} != lines' {mean_cost}")
    return out
