"""The public surface: import lightness, progress reports, isolation, errors, catalogs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloudarb.optimize.offers import catalog_offers, shared_catalog_offers
from optimizer import solve
from optimizer.errors import BackendUnavailableError, InvalidProblemError
from optimizer.schemas import Problem, Progress, SolveConfig
from optimizer.synthetic import generate
from optimizer.validate import validate

from .helpers import offer, problem, workload

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_package_does_not_load_solvers() -> None:
    code = (
        "import sys, optimizer, optimizer.schemas; "
        "heavy = [m for m in ('ortools', 'pulp', 'scipy', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_progress_reports_phases_incumbent_bound_and_gap() -> None:
    seen: list[Progress] = []
    p = generate(8, 120, seed=3, budget_factor=1.5, max_provider_share=0.6)
    sol = solve(p, SolveConfig(time_limit_s=10), progress=seen.append)
    assert sol.status in ("optimal", "feasible")
    phases = [s.phase for s in seen]
    assert phases[0] == "presolve" and phases[-1] == "done"
    assert "lp" in phases
    last = seen[-1]
    assert last.incumbent == pytest.approx(sol.stats.objective)
    assert last.bound is not None and last.gap is not None and last.gap >= 0


def test_isolated_solve_in_a_spawned_process_matches_in_process() -> None:
    p = generate(5, 60, seed=4, budget_factor=1.5, max_provider_share=0.6)
    here = solve(p, SolveConfig(time_limit_s=10, isolate="never", relative_gap=1e-9))
    away = solve(p, SolveConfig(time_limit_s=10, isolate="always", relative_gap=1e-9))
    assert away.status == here.status
    assert away.stats.objective == pytest.approx(here.stats.objective)


def test_unknown_backend_names_the_valid_ones() -> None:
    p = problem([offer("o")], [workload("w", 1)])
    with pytest.raises(BackendUnavailableError, match="ortools"):
        solve(p, SolveConfig.model_construct(**{**SolveConfig().model_dump(), "backend": "gurobi-direct"}))


def test_scenario_vectors_of_different_lengths_are_rejected() -> None:
    p = problem([offer("a", price_scenarios=[1.0, 2.0]), offer("b", price_scenarios=[1.0])], [workload("w", 1)])
    with pytest.raises(InvalidProblemError):
        solve(p)


def test_time_limit_is_respected_and_gap_is_honest() -> None:
    p = generate(60, 2500, seed=5)
    sol = solve(p, SolveConfig(time_limit_s=1.0, compute_baselines=False))
    assert sol.stats.build_seconds + sol.stats.solve_seconds < 3.0
    if sol.status in ("optimal", "feasible"):
        assert validate(p, sol) == []
        assert sol.stats.best_bound is not None and sol.stats.best_bound <= sol.stats.objective + 1e-6


def test_real_catalogs_load_with_sane_fields(shared_data: Path) -> None:
    """The optimizer's offers come through the app's loader path (ingestion.catalogs.load_catalog, the
    data-sheet check, then cloudarb.optimize.offers): true GPU names, memory per GPU and VM prices."""
    prices = shared_data / "prices"
    gcp = catalog_offers(prices / "gcp_cyclenerd_gpu_instances_latest.csv", "gcp")
    vast = catalog_offers(prices / "anycloud_vast_gpu_vms.csv", "vast")
    lam = catalog_offers(prices / "anycloud_lambda_gpu_vms.csv", "lambda")
    assert {o.provider for o in gcp} == {"gcp"} and any(o.spot for o in gcp)
    assert all(0 < o.vram_gb_per_gpu <= 200 for o in gcp + vast + lam)
    # GCP's a3-highgpu-8g in us-central1: the whole VM's on-demand and spot price per hour.
    a3 = {o.spot: o for o in gcp if o.instance_type == "a3-highgpu-8g" and o.region == "us-central1"}
    assert a3[False].gpu_model == "H100 SXM" and a3[False].gpus_per_instance == 8
    assert a3[False].price_per_hour == pytest.approx(88.49, abs=0.01)
    assert a3[True].price_per_hour == pytest.approx(50.61, abs=0.01)
    h100 = [o for o in vast if o.gpu_model == "H100 SXM" and o.gpus_per_instance == 8]
    assert h100 and 79 < h100[0].vram_gb_per_gpu < 81  # Vast lists the whole box's memory
    assert {o.capacity_kind for o in vast} == {"listing"} and {o.capacity_kind for o in gcp} == {"pool"}
    names = ["gcp_cyclenerd_gpu_instances_latest.csv", "anycloud_lambda_gpu_vms.csv", "anycloud_vast_gpu_vms.csv"]
    assert len(shared_catalog_offers(prices, names)) == len(gcp) + len(vast) + len(lam)
    pooled = shared_catalog_offers(prices, ["anycloud_vast_gpu_vms.csv"], capacity_kinds={"vast": "pool"})
    assert [o.id for o in pooled] == [o.id for o in vast] and {o.capacity_kind for o in pooled} == {"pool"}


def test_savings_on_the_real_catalogs_are_computed(shared_data: Path) -> None:
    offers = shared_catalog_offers(shared_data / "prices")
    p = Problem(
        offers=offers,
        workloads=[workload("train", 16, gpus_per_node=8, min_vram_gb=79), workload("serve", 4, min_vram_gb=24)],
        default_available_instances=4,
    )
    sol = solve(p, SolveConfig(time_limit_s=20))
    assert sol.status == "optimal" and validate(p, sol) == []
    greedy = next(s for s in sol.savings if s.baseline == "greedy_cheapest")
    assert greedy.baseline_cost_per_hour is not None and sol.totals is not None
    assert sol.totals.cost_per_hour <= greedy.baseline_cost_per_hour + 1e-6
