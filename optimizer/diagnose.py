"""Why a problem is infeasible, in the user's words, found by relaxing constraints (not guessed).

Three checks, cheapest first:

1. a workload with no usable offer at all: the compatibility filters are applied one at a time and
   the reason names the filter that removed the last candidates;
2. a workload whose usable offers, at full capacity, hold fewer GPUs than its minimum;
3. an elastic version of the model: every policy row (budget, share caps, spot share, on-demand
   floor, CVaR cap) and every demand minimum gets a penalized slack, and the slacks the solver needs
   say which limits must move and by how much. Demand slack costs far more than policy slack, so a
   reason blames a policy limit whenever relaxing policies alone is enough.
"""

from __future__ import annotations

import numpy as np

from optimizer.backends import Backend
from optimizer.model import MatrixModel
from optimizer.presolve import Pairs
from optimizer.schemas import Problem
from optimizer.tables import FILTERS, CompatLookup

_POLICY = ("budget", "provider", "region", "spot", "od_floor", "cvar_cap", "risk_cap", "perf_floor")
_DEMAND_PENALTY = 1000.0

_FILTER_WORDS = {
    "gpus_per_node": "have at least {node} GPUs per instance",
    "vram": "have at least {vram:g} GB of VRAM per GPU",
    "gpu_model": "are an allowed GPU model",
    "provider": "are from an allowed provider",
    "region": "are in an allowed region",
    "spot": "are on-demand (the workload is not spot-tolerant)",
    "reliability": "meet the minimum reliability score",
    "launch": "are launchable often enough (launch success probability at least {launch:g}, and above 0)",
}


def no_offer_reasons(problem: Problem, lookup: CompatLookup, workloads: np.ndarray) -> list[str]:
    of, wl = lookup.offers, lookup.workloads
    cols = np.arange(of.n)
    reasons = []
    for w in workloads.tolist():
        comp = lookup.block(np.array([w]), cols)
        alive = np.ones(of.n, dtype=bool)
        parts = [f"{of.n} offers in the catalog"]
        for name in FILTERS:
            alive &= comp.masks[name][0]
            if name == "gpu_model":
                alive &= comp.perf[0] > 0
            words = _FILTER_WORDS[name].format(node=int(wl.node[w]), vram=float(wl.min_vram[w]),
                                               launch=problem.min_launch_success_probability)
            count = int(alive.sum())
            parts.append(f"{count} of them {words}" if count else f"none of them {words}")
            if count == 0:
                break
        if alive.any():
            parts.append("but none can hold a whole node within the workload's GPU maximum")
        reasons.append(f"workload '{wl.ids[w]}' has no usable offer: " + ", ".join(parts) + ".")
    return reasons


def capacity_reasons(lookup: CompatLookup, pr: Pairs) -> list[str]:
    wl, of = lookup.workloads, lookup.offers
    most = np.bincount(pr.w, weights=pr.u * pr.ub, minlength=wl.n)
    if of.pools:
        # A capacity pool gives a workload at most its GPUs, however many of its offers it may use.
        pool = of.pool[pr.o]
        sel = pool >= 0
        key = pr.w[sel] * len(of.pools) + pool[sel]
        per = np.bincount(key, weights=(pr.u * pr.ub)[sel], minlength=wl.n * len(of.pools)).reshape(wl.n, -1)
        most = most - per.sum(axis=1) + np.minimum(per, of.pool_gpus[None, :]).sum(axis=1)
    reasons = []
    has_pairs = np.bincount(pr.w, minlength=wl.n) > 0
    for w in np.flatnonzero((most < wl.lo) & has_pairs).tolist():
        models = sorted({of.models[int(of.model[o])] for o in pr.o[pr.w == w].tolist()})
        where = _scope(lookup.problem.workloads[w])
        reasons.append(
            f"workload '{wl.ids[w]}' needs {int(wl.lo[w])} GPUs ({int(wl.node[w])} per node) but only "
            f"{int(most[w])} are available on compatible offers ({', '.join(models)}){where}."
        )
    return reasons


def _scope(workload) -> str:  # type: ignore[no-untyped-def]
    bits = []
    if workload.allowed_regions is not None or workload.denied_regions:
        bits.append("allowed regions")
    if workload.allowed_providers is not None or workload.denied_providers:
        bits.append("allowed providers")
    return f" within the {' and '.join(bits)}" if bits else ""


def elastic_reasons(problem: Problem, model: MatrixModel, backend: Backend, *, integer: bool,
                    time_limit: float) -> list[str]:
    """Solve the elastic model and translate the slacks it needs into sentences."""
    vals: list[np.ndarray] = []
    pen: list[np.ndarray] = []
    rows_all: list[np.ndarray] = []
    owners: list[tuple[str, int, int]] = []  # (kind, row, direction)
    row_scale = np.asarray(np.abs(model.A).max(axis=1).todense()).ravel()
    row_scale = np.where(row_scale > 0, row_scale, 1.0)
    for g in model.groups:
        if g.kind not in _POLICY and g.kind != "demand":
            continue
        r = np.arange(g.start, g.stop)
        weight = _DEMAND_PENALTY if g.kind == "demand" else 1.0
        if g.kind == "demand":
            sel, sign = r[np.isfinite(model.row_lb[r])], 1.0
        else:
            up = np.isfinite(model.row_ub[r])
            sel, sign = r[up], -1.0
            lo = r[~up]
            rows_all.append(lo)
            vals.append(np.ones(len(lo)))
            pen.append(np.full(len(lo), weight) / row_scale[lo])
            owners += [(g.kind, int(i), 1) for i in lo]
        rows_all.append(sel)
        vals.append(np.full(len(sel), sign))
        pen.append(np.full(len(sel), weight) / row_scale[sel])
        owners += [(g.kind, int(i), int(sign)) for i in sel]
    if not owners:
        return []
    rows = np.concatenate(rows_all)
    n0 = model.shape[1]
    ns = len(rows)
    import scipy.sparse as sp  # only an infeasible problem's diagnosis needs it

    slack = sp.csr_matrix((np.concatenate(vals), (rows, np.arange(ns))), shape=(model.shape[0], ns))
    elastic = MatrixModel(
        c=np.concatenate([np.zeros(n0), np.concatenate(pen)]),
        A=sp.hstack([model.A, slack]).tocsr(),
        row_lb=_without_cuts(model),
        row_ub=model.row_ub,
        var_lb=np.concatenate([model.var_lb, np.zeros(ns)]),
        var_ub=np.concatenate([model.var_ub, np.full(ns, np.inf)]),
        integer=np.concatenate([model.integer if integer else np.zeros(n0, dtype=bool), np.zeros(ns, dtype=bool)]),
        offset=0.0,
        groups=model.groups,
        n_x=model.n_x,
    )
    if integer:
        res = backend.solve_mip(elastic, time_limit=time_limit, relative_gap=1e-4, threads=1)
        s = None if res.x is None else res.x[n0:]
    else:
        lp = backend.solve_lp(elastic, time_limit=time_limit)
        s = lp.x[n0:] if lp.status == "optimal" else None
    if s is None:
        return []
    return _words(problem, model, owners, s)


def _words(problem: Problem, model: MatrixModel, owners: list[tuple[str, int, int]], s: np.ndarray) -> list[str]:
    by_row = {row: (kind, s[i]) for i, (kind, row, _) in enumerate(owners) if s[i] > 1e-6}
    out: list[str] = []
    for g in model.groups:
        for r in range(g.start, g.stop):
            if r not in by_row:
                continue
            kind, amount = by_row[r]
            key = g.keys[r - g.start]
            period = f" in period {int(g.periods[r - g.start])}" if g.periods.max(initial=0) > 0 else ""
            out.append(_sentence(problem, kind, key, float(amount), period))
    return list(dict.fromkeys(out))


def _sentence(problem: Problem, kind: str, key: str, amount: float, period: str) -> str:
    if kind == "budget":
        b = problem.budget_per_hour or 0.0
        return (f"the budget of ${b:,.2f}/h is too low{period}: meeting every workload's minimum within the "
                f"other limits needs at least ${b + amount:,.2f}/h.")
    if kind == "demand":
        return (f"workload '{key}' cannot get {amount:,.0f} of its minimum GPUs{period}: the offers it may use are "
                "taken up by other workloads or exhausted (capacity is shared).")
    if kind in ("provider", "region"):
        cap = problem.max_provider_share if kind == "provider" else problem.max_region_share
        return (f"the {kind} share cap of {100 * (cap or 0):.0f}% cannot be met{period}: {kind} '{key}' must hold "
                f"{amount:,.0f} GPUs more than the cap allows, because the other {kind}s lack usable capacity.")
    if kind == "spot":
        return (f"the maximum spot share of {100 * (problem.max_spot_share or 0):.0f}% cannot be met{period}: "
                f"{amount:,.0f} GPUs more of spot are needed.")
    if kind == "od_floor":
        return (f"inference workload '{key}' cannot get {100 * problem.inference_on_demand_floor:.0f}% of its GPUs "
                f"on on-demand offers{period} (short by {amount:,.1f} GPUs in the LP relaxation).")
    if kind == "cvar_cap":
        return (f"the CVaR cap of ${problem.max_cvar_per_hour or 0:,.2f}/h cannot be met: the lowest reachable "
                f"CVaR is ${(problem.max_cvar_per_hour or 0) + amount:,.2f}/h.")
    if kind == "risk_cap":
        return (f"the cap of ${problem.max_expected_interruption_cost_per_hour or 0:,.2f}/h on expected interruption "
                f"cost cannot be met: at least ${(problem.max_expected_interruption_cost_per_hour or 0) + amount:,.2f}/h.")
    if kind == "perf_floor":
        return (f"the performance floor of {problem.min_performance or 0:,.1f} cannot be reached: at most "
                f"{(problem.min_performance or 0) - amount:,.1f} within the other limits.")
    return f"constraint {kind} '{key}' must be relaxed by {amount:,.3g}."


def _without_cuts(model: MatrixModel) -> np.ndarray:
    """Row minimums with the ``cut`` rows switched off: they follow from the demand and floor rows for
    integer points, so with those made elastic they must go too (else they would still demand the GPUs)."""
    lb = model.row_lb.copy()
    for g in model.groups:
        if g.kind == "cut":
            lb[g.start : g.stop] = -np.inf
    return lb

