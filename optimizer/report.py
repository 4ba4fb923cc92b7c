"""Turn a solved column vector into the user-facing Solution parts.

Class allocations are split back over the member offers (identical offers merged by presolve),
each up to its own capacity, so every line names a real offer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.backends import LpResult
from optimizer.model import AllocationModel, MatrixModel, cvar
from optimizer.schemas import AllocationLine, BindingConstraint, Problem, RiskMetrics, Totals
from optimizer.tables import FloatArray

_MAX_BINDING = 30


@dataclass(frozen=True)
class Lines:
    """Per line arrays (offer index, workload index, period, instances) in the original problem."""

    offer: np.ndarray
    workload: np.ndarray
    period: np.ndarray
    instances: np.ndarray


def disaggregate(layout: AllocationModel, x: FloatArray) -> Lines:
    pr, cl, of = layout.pairs, layout.classes, layout.offers
    xt = np.round(x[: layout.n_x]).reshape(layout.T, layout.P)
    offers: list[int] = []
    works: list[int] = []
    periods: list[int] = []
    counts: list[int] = []
    for t in range(layout.T):
        used: dict[int, float] = {}
        for p in np.flatnonzero(xt[t] > 0.5).tolist():
            need = int(xt[t, p])
            members = cl.members(int(pr.c[p]))
            for o in members.tolist():
                if need <= 0:
                    break
                room = of.cap[o] - used.get(o, 0.0)
                take = int(min(need, room)) if np.isfinite(room) else need
                if take <= 0:
                    continue
                used[o] = used.get(o, 0.0) + take
                offers.append(o)
                works.append(int(pr.w[p]))
                periods.append(t)
                counts.append(take)
                need -= take
    return Lines(np.array(offers, dtype=np.int64), np.array(works, dtype=np.int64),
                 np.array(periods, dtype=np.int64), np.array(counts, dtype=np.int64))


def allocation_lines(problem: Problem, layout: AllocationModel, lines: Lines) -> list[AllocationLine]:
    of = layout.offers
    price = of.periods[lines.period, lines.offer] if of.periods is not None else of.price[lines.offer]
    out = []
    for i in range(len(lines.offer)):
        o = problem.offers[int(lines.offer[i])]
        n = int(lines.instances[i])
        out.append(
            AllocationLine(
                workload_id=problem.workloads[int(lines.workload[i])].id,
                offer_id=o.id,
                provider=o.provider,
                region=o.region,
                instance_type=o.instance_type,
                gpu_model=o.gpu_model,
                instances=n,
                gpus=n * o.gpus_per_instance,
                hourly_cost=float(n * price[i]),
                spot=o.spot,
                period=int(lines.period[i]) if layout.T > 1 else None,
                launch_success_probability=o.launch_success_probability,
            )
        )
    return out


def totals(problem: Problem, layout: AllocationModel, model: MatrixModel, x: FloatArray) -> Totals:
    T, P = layout.T, layout.P
    xt = np.round(x[: layout.n_x]).reshape(T, P)
    pr = layout.pairs
    price = layout.price_tp()
    hourly_t = (xt * price).sum(axis=1)
    egress = float((xt @ pr.egress).mean())
    migration = 0.0
    if len(layout.d_cols):
        migration += float(x[layout.d_cols] @ pr.g[layout.current_pairs]) * problem.migration_cost_per_gpu
    if layout.m_start >= 0:
        n = (T - 1) * P
        migration += float(x[layout.m_start : layout.m_start + n] @ np.tile(pr.g, T - 1)) * problem.migration_cost_per_gpu
    migration += layout.offset * problem.horizon_hours  # lines whose offer can no longer be used
    hours = T * problem.period_hours if T > 1 else problem.horizon_hours
    per_period_hours = hours / T
    rel = pr.perf / layout.workloads.priority[pr.w]
    return Totals(
        cost_per_hour=float(hourly_t.mean()),
        cost_over_horizon=float(hourly_t.sum() * per_period_hours + egress * hours + migration),
        gpus=int(round(float((xt @ pr.g).max()))) if P else 0,
        performance_score=float((xt @ rel).mean()),
        egress_cost_per_hour=egress,
        migration_cost=migration,
    )


def risk_metrics(problem: Problem, layout: AllocationModel, x: FloatArray) -> RiskMetrics:
    T, P = layout.T, layout.P
    xt = np.round(x[: layout.n_x]).reshape(T, P)
    pr, of = layout.pairs, layout.offers
    rate = of.rate[pr.o]
    value = None
    if of.scenarios is not None:
        losses = of.scenarios[:, pr.o] @ xt.mean(axis=0)
        value = cvar(losses, problem.cvar_alpha)
    # As the share caps count: usable GPUs at a provider over the GPUs the fleet needs.
    wl = layout.workloads
    need_t = xt @ pr.need + float(np.sum(wl.lo[~wl.need_var]))
    share = 0.0
    for t in range(T):
        if need_t[t] > 0 and xt[t].any():
            by_provider = np.bincount(of.provider[pr.o], weights=xt[t] * pr.u, minlength=len(of.providers))
            share = max(share, float(by_provider.max() / need_t[t]))
    return RiskMetrics(
        expected_interruptions_per_hour=float((xt @ rate).mean()),
        expected_interruption_cost_per_hour=float((xt @ pr.risk).mean()),
        cvar_cost_per_hour=value,
        largest_provider_share=share,
        expected_launch_cost_per_hour=float((xt @ pr.launch).mean()) if P else 0.0,
    )


_WORDS = {
    "demand": "GPUs for workload {key}: one more GPU of minimum demand changes the objective by the shadow price",
    "capacity": "capacity of offer {key}: one more instance available changes the objective by the shadow price",
    "pool": "GPUs of capacity pool {key} (shared by its offers): one more GPU changes the objective by the shadow "
            "price",
    "budget": "hourly budget: one more USD/h of budget changes the objective by the shadow price",
    "provider": "share cap of provider {key}",
    "region": "share cap of region {key}",
    "spot": "maximum spot share",
    "od_floor": "on-demand floor of inference workload {key}",
    "cvar_cap": "cap on the CVaR of hourly cost",
    "migration": "current allocation line {key}",
    "one_place": "co-location of workload {key}: its nodes must share one placement",
    "cut": "whole-instance form of workload {key}'s demand or on-demand floor (a valid inequality of the "
           "tightened model): part of what one more GPU of that workload's demand costs",
}


def binding_constraints(model: MatrixModel, lp: LpResult | None, sign: float) -> list[BindingConstraint]:
    """Rows of the LP relaxation that hold at a bound with a non-zero dual, largest first."""
    if lp is None or lp.objective is None or model.shape[0] == 0:
        return []
    act = model.A @ lp.x
    scale = max(1.0, float(np.abs(lp.duals).max(initial=0.0)))
    tight = (np.abs(act - model.row_lb) <= 1e-6 * (1 + np.abs(model.row_lb))) | (
        np.abs(act - model.row_ub) <= 1e-6 * (1 + np.abs(model.row_ub))
    )
    live = np.flatnonzero(tight & (np.abs(lp.duals) > 1e-9 * scale))
    out: list[BindingConstraint] = []
    for group in model.groups:
        if group.kind in ("gpus", "switch", "cvar", "place"):  # modelling rows, not the user's constraints
            continue
        rows = live[(live >= group.start) & (live < group.stop)]
        for r in rows.tolist():
            i = r - group.start
            key = group.keys[i]
            period = int(group.periods[i])
            name = f"{group.kind}[{key}]" + (f"@t{period}" if group.periods.max(initial=0) > 0 else "")
            desc = _WORDS.get(group.kind, group.kind).format(key=key)
            out.append(BindingConstraint(name=name, shadow_price=float(sign * lp.duals[r]), description=desc))
    out.sort(key=lambda b: -abs(b.shadow_price))
    return out[:_MAX_BINDING]
