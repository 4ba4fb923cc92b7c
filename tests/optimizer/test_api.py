"""The public surface: import lightness, progress reports, isolation, errors, catalogs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from optimizer import solve
from optimizer.catalogs import load_gcp_cyclenerd_csv, load_shared_prices, load_skypilot_csv
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
    prices = shared_data / "prices"
    gcp = load_gcp_cyclenerd_csv(prices / "gcp_cyclenerd_gpu_instances_latest.csv")
    vast = load_skypilot_csv(prices / "anycloud_vast_gpu_vms.csv", "vast", memory_is_total=True)
    lam = load_skypilot_csv(prices / "anycloud_lambda_gpu_vms.csv", "lambda")
    assert {o.provider for o in gcp} == {"gcp"} and any(o.spot for o in gcp)
    assert any(o.committed_price_per_hour for o in gcp)
    assert all(0 < o.vram_gb_per_gpu <= 200 for o in vast + lam)
    h100 = [o for o in vast if o.gpu_model == "H100" and o.gpus_per_instance == 8]
    assert h100 and 79 < h100[0].vram_gb_per_gpu < 81  # Vast lists the whole box's memory
    assert len(load_shared_prices(prices)) == len(gcp) + len(vast) + len(lam)


def test_savings_on_the_real_catalogs_are_computed(shared_data: Path) -> None:
    offers = load_shared_prices(shared_data / "prices")
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
