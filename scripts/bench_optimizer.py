#!/usr/bin/env python
"""Benchmark the allocation optimizer; prints one JSON object per line.

Each case runs in its own subprocess so that peak memory (ru_maxrss of the process and of any solver
child it spawns) belongs to that case alone. For every size it reports our decomposed solve and a
plain out-of-the-box MILP solve of the same model (same vectorised build, one solver call, a time
limit) for comparison. Instances are regenerated from the seeded synthetic generator described in
optimizer/synthetic.py (the ``real-*`` cases: the generator's workloads and fleet limits over the
real catalogs in ../shared/data/prices); their parameters and best-known objectives live in
benchmarks/optimizer/instances.json.

    python scripts/bench_optimizer.py                       # every size, ours and plain
    python scripts/bench_optimizer.py --sizes 50x2000 --no-plain
    python scripts/bench_optimizer.py --savings ../shared/data/prices   # savings on the real catalogs
    python scripts/bench_optimizer.py --sizes 200x10000 --no-plain --time-scale 2   # under load

``lp_bound`` is the LP bound of the model as solved (tightened: rounded demand, cut rows);
``plain_lp_bound`` is the LP bound of the untightened formulation, computed after the timed solve
(None beyond ~1.2M pairs). ``cpu_s`` is user+system CPU of the solve (process and finished
children); ``loadavg_*`` is the 1/5/15-minute load around it: on a shared machine compare
``cpu_s`` with ``wall_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
INSTANCES = ROOT / "benchmarks" / "optimizer" / "instances.json"

BENCH_CATALOGS = ("gcp_cyclenerd_gpu_instances_latest.csv", "anycloud_lambda_gpu_vms.csv", "anycloud_vast_gpu_vms.csv")
"""The shared catalogs the ``real-*`` cases and the savings report use (the same three since the best-known
objectives were recorded; AWS and Azure would change the instances)."""
LISTING_PROVIDERS: frozenset[str] = frozenset()
"""Providers whose offers are one machine each. Empty: the recorded best-known objectives of the ``real-*``
cases were found with every offer a pool; the application treats Vast listings as one machine
(cloudarb/optimize/capacity.py); ``load_shared_offers(dir, listings=frozenset({"vast"}))`` builds that model."""


def load_shared_offers(prices_dir: str | Path, listings: frozenset[str] = LISTING_PROVIDERS) -> list[Any]:
    """Optimizer offers from the shared catalogs through the one loader path (``ingestion.catalogs.load_catalog``
    under each file's declared convention, quotes converted by ``cloudarb.optimize.offers``, the app's
    conversion; quarantined rows are not offers)."""
    from cloudarb.optimize.offers import shared_catalog_offers

    kinds: dict[str, Any] = {"vast": "pool"} | {p: "listing" for p in listings}  # the app: vast listings
    return shared_catalog_offers(prices_dir, BENCH_CATALOGS, capacity_kinds=kinds)


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def plain_lp_bound(problem: Any) -> float | None:
    """LP bound of the untightened formulation (no rounded demand, no cut rows), for honest comparison;
    None where the pair list is too large for one matrix (lazy pricing) or the LP does not finish."""
    from optimizer import lazy
    from optimizer.backends import get_backend
    from optimizer.colgen import COLGEN_MIN_COLUMNS, solve_lp_colgen
    from optimizer.model import AllocationModel
    from optimizer.presolve import build_classes, build_pairs
    from optimizer.tables import CompatLookup, offer_table, workload_table

    offers = offer_table(problem)
    workloads = workload_table(problem, offers)
    lookup = CompatLookup.build(problem, offers, workloads)
    classes = build_classes(problem, lookup, enabled=True)
    pairs = build_pairs(problem, lookup, classes)
    if pairs.n >= 4 * lazy.LAZY_MIN_PAIRS:  # one matrix over every pair: fine to ~1M pairs
        return None
    layout = AllocationModel(problem, offers, workloads, classes, pairs, tighten=False)
    model = layout.build()
    backend = get_backend("ortools")
    if model.n_x >= COLGEN_MIN_COLUMNS:
        lp = solve_lp_colgen(model, layout, backend, time_limit=300.0)
    else:
        lp = backend.solve_lp(model, time_limit=300.0)
    return lp.objective if lp.status == "optimal" else None


def run_case(name: str, mode: str, plain_solver: str, plain_time: float, time_scale: float = 1.0) -> dict[str, Any]:
    from optimizer import solve
    from optimizer.schemas import SolveConfig
    from optimizer.synthetic import generate
    from optimizer.validate import validate

    spec = json.loads(INSTANCES.read_text())[name]
    t0 = time.perf_counter()
    if spec.get("catalog"):  # the generator's workloads and fleet limits over the real offers
        from optimizer.synthetic import generate_on_offers

        prices = ROOT / spec["catalog"]
        if not prices.is_dir():
            return {"case": name, "mode": mode, "status": "no_data", "catalog": str(prices)}
        problem = generate_on_offers(load_shared_offers(prices), spec["workloads"], seed=spec["seed"],
                                     co_located=bool(spec.get("co_located")))
    else:
        problem = generate(spec["workloads"], spec["offers"], seed=spec["seed"], periods=spec["periods"],
                           co_located=bool(spec.get("co_located")))
    gen_s = time.perf_counter() - t0
    if mode == "ours":
        config = SolveConfig(time_limit_s=spec["time_limit_s"] * time_scale, compute_baselines=False,
                             threads=int(spec.get("threads", 1)))
    else:
        config = SolveConfig(time_limit_s=plain_time, method="direct", presolve=False, mip_solver=plain_solver,
                             compute_baselines=False, isolate="never")
    load_before = os.getloadavg()
    t1 = time.perf_counter()
    cpu1 = _cpu_s()
    sol = solve(problem, config)
    wall = time.perf_counter() - t1
    cpu = _cpu_s() - cpu1
    load_after = os.getloadavg()
    plain_lp = plain_lp_bound(problem) if mode == "ours" else None
    st = sol.stats
    best = spec.get("best_known")
    out: dict[str, Any] = {
        "case": name,
        "mode": mode if mode == "ours" else f"plain-{plain_solver}",
        "status": sol.status,
        "generate_s": round(gen_s, 3),
        "build_s": round(st.build_seconds, 3),
        "solve_s": round(st.solve_seconds, 3),
        "wall_s": round(wall, 3),
        "objective": st.objective,
        "lp_bound": st.lp_bound,
        "best_bound": st.best_bound,
        "gap_vs_best_bound": st.gap,
        "gap_vs_lp_bound": None if st.objective is None or st.lp_bound is None
        else (st.objective - st.lp_bound) / abs(st.objective),
        "plain_lp_bound": plain_lp,
        "gap_vs_plain_lp_bound": None if st.objective is None or plain_lp is None
        else (st.objective - plain_lp) / abs(st.objective),
        "best_known": best,
        "gap_vs_best_known": None if st.objective is None or best is None else (st.objective - best) / abs(best),
        "variables": st.variables,
        "constraints": st.constraints,
        "engine": st.engine,
        "phases": {k: round(v, 3) for k, v in st.phases.items()},
        "violations": len(validate(problem, sol)),
        "target": spec["target"],
        "time_limit_s": config.time_limit_s,
        "cpu_s": round(cpu, 3),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in load_after],
    }
    out["peak_mem_mb"] = round(_peak_mb(), 1)
    return out


def savings_report(prices_dir: str) -> list[dict[str, Any]]:
    """Solve a mixed fleet on the real catalogs and state the savings against both baselines."""
    from optimizer.schemas import Problem, Workload

    offers = load_shared_offers(prices_dir)
    workloads = [
        Workload(id="llm-pretrain", gpus_min=64, gpus_per_node=8, min_vram_gb=79, workload_type="training"),
        Workload(id="finetune", gpus_min=16, gpus_per_node=8, min_vram_gb=40, spot_tolerant=True,
                 checkpoint_interval_hours=0.5),
        Workload(id="chat-serving", gpus_min=8, gpus_max=12, min_vram_gb=24, workload_type="inference",
                 spot_tolerant=True),
        Workload(id="embeddings-batch", gpus_min=24, min_vram_gb=16, workload_type="batch", spot_tolerant=True),
        Workload(id="eu-inference", gpus_min=4, min_vram_gb=24, workload_type="inference",
                 allowed_regions=["europe-west1", "europe-west4", "europe-central2", "europe-west3"]),
    ]
    policies = dict(max_provider_share=0.7, max_spot_share=0.6, inference_on_demand_floor=0.5)
    return [
        _savings_case(name, Problem(offers=offers, workloads=workloads, default_available_instances=4, **extra))
        for name, extra in (("cost-only", {}), ("with-fleet-policies", policies))
    ]


def _savings_case(name: str, problem: Any) -> dict[str, Any]:
    from optimizer import solve
    from optimizer.schemas import SolveConfig
    from optimizer.validate import validate

    sol = solve(problem, SolveConfig(time_limit_s=20))
    return {
        "case": f"real-catalogs-savings-{name}",
        "offers": len(problem.offers),
        "status": sol.status,
        "cost_per_hour": None if sol.totals is None else round(sol.totals.cost_per_hour, 2),
        "gap": sol.stats.gap,
        "savings": [s.model_dump() for s in sol.savings],
        "by_provider_gpus": _by_provider(sol),
        "lines": [f"{ln.workload_id}: {ln.instances} x {ln.provider} {ln.instance_type} {ln.region}"
                  f"{' spot' if ln.spot else ''} ${ln.hourly_cost:.2f}/h" for ln in sol.allocations],
        "violations": len(validate(problem, sol)),
        "note": "catalogs carry no capacity: 4 instances assumed per offer; baselines ignore fleet policies",
    }


def _by_provider(sol: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in sol.allocations:
        out[line.provider] = out.get(line.provider, 0) + line.gpus
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(json.loads(INSTANCES.read_text())),
                    help="comma-separated case names from benchmarks/optimizer/instances.json")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain MILP comparison")
    ap.add_argument("--plain-solver", default="cp_sat", choices=["cp_sat", "scip"])
    ap.add_argument("--plain-time", type=float, default=60.0)
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="multiply every case's time limit (for development under load; targets use 1.0)")
    ap.add_argument("--savings", metavar="PRICES_DIR", help="also print savings on the real catalogs there")
    ap.add_argument("--run-case", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="ours", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_case:
        print(json.dumps(run_case(args.run_case, args.mode, args.plain_solver, args.plain_time,
                                  args.time_scale)), flush=True)
        return
    for name in [s for s in args.sizes.split(",") if s]:
        modes = ["ours"] if args.no_plain else ["ours", "plain"]
        for mode in modes:
            cmd = [sys.executable, __file__, "--run-case", name, "--mode", mode,
                   "--plain-solver", args.plain_solver, "--plain-time", str(args.plain_time),
                   "--time-scale", str(args.time_scale)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.plain_time + 600)
            except subprocess.TimeoutExpired:
                print(json.dumps({"case": name, "mode": mode, "status": "bench_timeout"}), flush=True)
                continue
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
            if done.returncode != 0 or not lines:
                print(json.dumps({"case": name, "mode": mode, "status": "crashed", "returncode": done.returncode,
                                  "stderr": done.stderr[-800:]}), flush=True)
            else:
                print(lines[-1], flush=True)
    if args.savings:
        for report in savings_report(args.savings):
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
