"""Worked examples whose answers were computed by hand (arithmetic in each docstring)."""

from __future__ import annotations

import pytest

from optimizer import solve
from optimizer.schemas import CurrentLine, SolveConfig, Weights
from optimizer.validate import validate

from .helpers import by_offer, offer, problem, workload

BACKENDS = ["ortools", "pulp"]


def _solve(p, backend="ortools", **cfg):  # type: ignore[no-untyped-def]
    sol = solve(p, SolveConfig(backend=backend, time_limit_s=20, relative_gap=1e-9, **cfg))
    assert validate(p, sol) == []
    return sol


@pytest.mark.parametrize("backend", BACKENDS)
def test_multi_gpu_per_node_needs_whole_nodes(backend: str) -> None:
    """16 GPUs at 8 per node: 4-GPU boxes ($1/GPU) cannot host a node; 8-GPU boxes at $12 -> 2 x 12 = $24."""
    p = problem(
        [offer("quad", gpus=4, price=4.0), offer("octo", gpus=8, price=12.0), offer("single", price=0.5)],
        [workload("train", 16, gpus_per_node=8)],
    )
    sol = _solve(p, backend)
    assert sol.status == "optimal"
    assert by_offer(sol) == {"octo": 2}
    assert sol.totals is not None and sol.totals.cost_per_hour == pytest.approx(24.0)


def test_node_size_that_does_not_divide_the_instance() -> None:
    """12 GPUs at 3 per node on 8-GPU boxes: 2 nodes (6 usable GPUs) fit per box -> 2 boxes, 16 GPUs rented."""
    p = problem([offer("octo", gpus=8, price=8.0)], [workload("train", 12, gpus_per_node=3)])
    sol = _solve(p)
    assert by_offer(sol) == {"octo": 2}
    assert sol.allocations[0].gpus == 16
    assert sol.totals is not None and sol.totals.cost_per_hour == pytest.approx(16.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_spot_only_for_tolerant_workloads(backend: str) -> None:
    """Spot at $0.4 vs on-demand $1.0 per GPU: the tolerant job (2 GPUs) takes spot, the other (3) on-demand:
    2 x 0.4 + 3 x 1.0 = $3.80."""
    p = problem(
        [offer("od", price=1.0), offer("spot", price=0.4, spot=True)],
        [workload("strict", 3), workload("tolerant", 2, spot_tolerant=True, workload_type="batch")],
    )
    sol = _solve(p, backend)
    lines = {(ln.workload_id, ln.offer_id): ln.instances for ln in sol.allocations}
    assert lines == {("strict", "od"): 3, ("tolerant", "spot"): 2}
    assert sol.totals is not None and sol.totals.cost_per_hour == pytest.approx(3.8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_provider_share_cap(backend: str) -> None:
    """8 GPUs of an elastic workload, provider a at $1, b at $2, cap 50%: 4 from each -> 4 + 8 = $12
    (uncapped it would be $8). Not elastic, it cannot split across providers: infeasible, with the reason."""
    offers = [offer("a1", "a", price=1.0), offer("b1", "b", price=2.0)]
    capped = _solve(problem(offers, [workload("w", 8, gpus_max=8, elastic=True)], max_provider_share=0.5), backend)
    assert by_offer(capped) == {"a1": 4, "b1": 4}
    assert capped.risk.largest_provider_share == pytest.approx(0.5)
    free = _solve(problem(offers, [workload("w", 8, gpus_max=8)]), backend)
    assert free.totals is not None and free.totals.cost_per_hour == pytest.approx(8.0)
    whole = _solve(problem(offers, [workload("w", 8, gpus_max=8)], max_provider_share=0.5), backend)
    assert whole.status == "infeasible" and "share cap" in (whole.infeasibility_reason or "")


def test_budget_binds_a_performance_objective() -> None:
    """Maximize throughput (H100 = 3, A100 = 1 per GPU) with $10/h: H100 $4, A100 $1.5, up to 10 GPUs.
    4h + 1.5a <= 10: (h, a) = (2, 1) -> perf 7 at $9.50 and (1, 4) -> perf 7 at $10; (2, 1) is cheaper.
    The LP relaxation spends the whole budget, so the budget is binding with a positive shadow price."""
    p = problem(
        [offer("h100", gpu="H100", price=4.0), offer("a100", gpu="A100", price=1.5)],
        [workload("w", 1, gpus_max=10, performance={"H100": 3.0, "A100": 1.0})],
        objective="performance",
        budget_per_hour=10.0,
    )
    sol = _solve(p)
    assert sol.stats.sense == "max"
    assert by_offer(sol) == {"h100": 2, "a100": 1}
    assert sol.totals is not None and sol.totals.performance_score == pytest.approx(7.0)
    budget = [b for b in sol.binding_constraints if b.name.startswith("budget")]
    assert budget and budget[0].shadow_price > 0


def test_budget_too_low_is_infeasible_with_the_needed_amount() -> None:
    """4 GPUs at $2 cost $8/h at least; a $5/h budget is short and the reason says $8.00."""
    p = problem([offer("o", price=2.0)], [workload("w", 4)], budget_per_hour=5.0)
    sol = _solve(p)
    assert sol.status == "infeasible"
    assert sol.infeasibility_reason is not None
    assert "$5.00/h" in sol.infeasibility_reason and "$8.00/h" in sol.infeasibility_reason


def test_cvar_moves_off_a_volatile_cheap_offer() -> None:
    """A: $1.0 nominal, scenarios (0.5, 0.5, 0.5, 3.0); B: $1.2 flat. alpha = 0.75 keeps the worst quarter:
    CVaR(A) = 3.0, mean(A) = 1.125. Weighted cost + risk (risk_tolerance 0): A = 1.0 + (3.0 - 1.125) = 2.875,
    B = 1.2 + 0 = 1.2 -> B. Without the risk weight, A ($1.0) wins."""
    offers = [
        offer("A", price=1.0, price_scenarios=[0.5, 0.5, 0.5, 3.0]),
        offer("B", price=1.2, price_scenarios=[1.2, 1.2, 1.2, 1.2]),
    ]
    base = dict(objective="weighted", cvar_alpha=0.75, risk_tolerance=0.0)
    risky = _solve(problem(offers, [workload("w", 1, gpus_max=1)], weights=Weights(cost=1, risk=1), **base))
    assert by_offer(risky) == {"B": 1}
    assert risky.risk.cvar_cost_per_hour == pytest.approx(1.2)
    plain = _solve(problem(offers, [workload("w", 1, gpus_max=1)], weights=Weights(cost=1, risk=0), **base))
    assert by_offer(plain) == {"A": 1}
    assert plain.risk.cvar_cost_per_hour == pytest.approx(3.0)
    capped = _solve(problem(offers, [workload("w", 1, gpus_max=1)], max_cvar_per_hour=2.0, cvar_alpha=0.75))
    assert by_offer(capped) == {"B": 1}


def test_inference_on_demand_floor() -> None:
    """4 inference GPUs, half must be on-demand: 2 spot ($0.3) + 2 on-demand ($1) = $2.60."""
    p = problem(
        [offer("od", price=1.0), offer("spot", price=0.3, spot=True)],
        [workload("serve", 4, gpus_max=4, workload_type="inference", spot_tolerant=True)],
        inference_on_demand_floor=0.5,
    )
    sol = _solve(p)
    assert by_offer(sol) == {"od": 2, "spot": 2}
    assert sol.totals is not None and sol.totals.cost_per_hour == pytest.approx(2.6)


def test_migration_cost_keeps_the_current_allocation() -> None:
    """Running on B ($1.05) with A at $1.00: moving 4 GPUs saves $0.20/h = $2 over 10 h, but costs
    4 x $1 = $4 of migration -> stay. With free migration, move."""
    offers = [offer("A", price=1.0), offer("B", price=1.05)]
    current = [CurrentLine(workload_id="w", offer_id="B", instances=4)]
    kw = dict(current_allocation=current, horizon_hours=10.0)
    stay = _solve(problem(offers, [workload("w", 4, gpus_max=4)], migration_cost_per_gpu=1.0, **kw))
    assert by_offer(stay) == {"B": 4}
    move = _solve(problem(offers, [workload("w", 4, gpus_max=4)], migration_cost_per_gpu=0.0, **kw))
    assert by_offer(move) == {"A": 4}


def test_multi_period_follows_the_cheaper_offer() -> None:
    """Two periods, A costs 1 then 3, B costs 2 then 2: period 0 on A, period 1 on B; mean $1.50/h per GPU."""
    p = problem(
        [offer("A", price=2.0, price_per_period=[1.0, 3.0]), offer("B", price=2.0, price_per_period=[2.0, 2.0])],
        [workload("w", 1, gpus_max=1)],
        horizon_hours=2.0,
    )
    sol = _solve(p)
    assert {(ln.period, ln.offer_id) for ln in sol.allocations} == {(0, "A"), (1, "B")}
    assert sol.totals is not None and sol.totals.cost_per_hour == pytest.approx(1.5)
    assert sol.totals.cost_over_horizon == pytest.approx(3.0)


def test_capacity_shortage_reason_in_user_words() -> None:
    """64 H100 GPUs wanted in eu regions; 5 eight-GPU boxes (40 GPUs) there, plenty in the US."""
    p = problem(
        [
            offer("eu", gpu="H100", gpus=8, price=20.0, region="eu-west", available_instances=5),
            offer("us", gpu="H100", gpus=8, price=18.0, region="us-east", available_instances=50),
        ],
        [workload("train", 64, gpus_per_node=8, allowed_regions=["eu-west"])],
    )
    sol = _solve(p)
    assert sol.status == "infeasible"
    assert sol.infeasibility_reason is not None
    assert "needs 64 GPUs" in sol.infeasibility_reason and "only 40" in sol.infeasibility_reason
    assert "allowed regions" in sol.infeasibility_reason


def test_savings_against_baselines() -> None:
    """Greedy buys the cheapest single offer per job: w1 (8 GPUs) takes 8 x $1 from a, then w2 finds a
    empty and pays $3 x 2 on c. Single provider on-demand: a cannot serve both; b serves both at
    $2 x 10 = $20. The optimum puts w2 on a... every option costs 8 + 6 = 14 or less."""
    p = problem(
        [offer("a", "a", price=1.0, available_instances=8), offer("b", "b", price=2.0),
         offer("c", "c", price=3.0)],
        [workload("w1", 8, gpus_max=8), workload("w2", 2, gpus_max=2)],
    )
    sol = _solve(p)
    base = {s.baseline: s.baseline_cost_per_hour for s in sol.savings}
    assert base["greedy_cheapest"] == pytest.approx(8 * 1.0 + 2 * 2.0)
    assert base["single_provider_on_demand"] == pytest.approx(20.0)
    assert sol.totals is not None and sol.totals.cost_per_hour == pytest.approx(12.0)


def test_pareto_sets_trade_cost_for_risk_and_performance() -> None:
    """Cheap volatile A vs dear stable B (see the CVaR example), and a fast dear H100 vs a cheap A100:
    the risk curve runs from (1.0, CVaR 3.0) to (1.2, 1.2); the performance curve from all-A100 to H100."""
    offers = [
        offer("A", price=1.0, price_scenarios=[0.5, 0.5, 0.5, 3.0]),
        offer("B", price=1.2, price_scenarios=[1.2, 1.2, 1.2, 1.2]),
        offer("H", gpu="H100", price=3.0, price_scenarios=[3.0] * 4),
    ]
    p = problem(offers, [workload("w", 1, gpus_max=1, performance={"A100": 1.0, "H100": 3.0})], cvar_alpha=0.75)
    sol = _solve(p, pareto_points=3)
    risk = [pt for pt in sol.pareto if pt["axis"] == 0.0]
    perf = [pt for pt in sol.pareto if pt["axis"] == 1.0]
    assert [round(pt["cost_per_hour"], 6) for pt in risk] == [1.0, 1.2]
    assert [round(pt["risk_per_hour"], 6) for pt in risk] == [3.0, 1.2]
    assert [round(pt["performance"], 6) for pt in perf] == [1.0, 3.0]
    assert perf[-1]["cost_per_hour"] == pytest.approx(3.0)
