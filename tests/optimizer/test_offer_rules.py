"""Worked examples of what an offer's capacity means, where a workload's nodes may sit, how share caps
count, and the baselines savings are stated against (arithmetic in each docstring)."""

from __future__ import annotations

import pytest

from optimizer import solve
from optimizer.performance import UNKNOWN_MODEL_PERFORMANCE, canonical_model, relative_throughput
from optimizer.schemas import AllocationLine, GpuFigures, Problem, Solution, SolveConfig, SolverStats
from optimizer.validate import validate

from .helpers import by_offer, offer, problem, workload

BACKENDS = ["ortools", "pulp"]


def _solve(p: Problem, backend: str = "ortools", **cfg: object) -> Solution:
    sol = solve(p, SolveConfig(backend=backend, time_limit_s=20, relative_gap=1e-9, **cfg))  # type: ignore[arg-type]
    assert validate(p, sol) == []
    return sol


def _cost(sol: Solution) -> float:
    assert sol.totals is not None
    return sol.totals.cost_per_hour


# ---------------------------------------------------------------- capacity
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_marketplace_listing_is_one_machine(backend: str) -> None:
    """64 GPUs at 8 per node. A Vast listing (8 GPUs, $10/h) is one machine; AWS (8 GPUs, $20/h, capacity
    not stated) is a pool with the default 16. Not elastic: the listing cannot join AWS nodes, so 8 x 20 =
    $160. Elastic: 1 listing + 7 AWS = 10 + 140 = $150. Before capacity kinds, 8 listings: $80."""
    offers = [offer("vast1", "vast", gpus=8, price=10.0, capacity_kind="listing"),
              offer("p5", "aws", gpus=8, price=20.0)]
    whole = _solve(problem(offers, [workload("train", 64, gpus_per_node=8)]), backend)
    assert by_offer(whole) == {"p5": 8} and _cost(whole) == pytest.approx(160.0)
    split = _solve(problem(offers, [workload("train", 64, gpus_per_node=8, elastic=True)]), backend)
    assert by_offer(split) == {"vast1": 1, "p5": 7} and _cost(split) == pytest.approx(150.0)


def test_a_stated_capacity_wins_over_the_kind() -> None:
    """A listing that says it has 3 machines rents 3: 24 GPUs at $10 per 8-GPU machine = $30."""
    p = problem([offer("vast1", "vast", gpus=8, price=10.0, capacity_kind="listing", available_instances=3)],
                [workload("train", 24, gpus_per_node=8)])
    assert by_offer(_solve(p)) == {"vast1": 3}


def test_unknown_cloud_capacity_is_a_configurable_default() -> None:
    """A pool offer without capacity: default 4 instances of 8 GPUs = 32 < 64 -> infeasible in words;
    None (unlimited, a what-if) -> 8 instances."""
    offers = [offer("p5", "aws", gpus=8, price=20.0)]
    short = _solve(problem(offers, [workload("train", 64, gpus_per_node=8)], default_available_instances=4))
    assert short.status == "infeasible" and "train" in (short.infeasibility_reason or "")
    free = _solve(problem(offers, [workload("train", 64, gpus_per_node=8)], default_available_instances=None))
    assert by_offer(free) == {"p5": 8}


# ---------------------------------------------------------------- placement
@pytest.mark.parametrize("backend", BACKENDS)
def test_nodes_of_one_job_share_a_region(backend: str) -> None:
    """8 nodes of 8 GPUs. Iceland $10 and Vietnam $11 hold 5 boxes each; Oregon $14 holds 10. One region:
    Oregon, 8 x 14 = $112. Elastic: 5 Iceland + 3 Vietnam = 50 + 33 = $83."""
    offers = [offer("is", "vast", gpus=8, price=10.0, region="iceland", available_instances=5),
              offer("vn", "vast", gpus=8, price=11.0, region="vietnam", available_instances=5),
              offer("or", "vast", gpus=8, price=14.0, region="oregon", available_instances=10)]
    together = _solve(problem(offers, [workload("train", 64, gpus_per_node=8)]), backend)
    assert by_offer(together) == {"or": 8} and _cost(together) == pytest.approx(112.0)
    split = _solve(problem(offers, [workload("train", 64, gpus_per_node=8, elastic=True)]), backend)
    assert by_offer(split) == {"is": 5, "vn": 3} and _cost(split) == pytest.approx(83.0)
    anywhere = _solve(problem(offers, [workload("train", 64, gpus_per_node=8, placement="any")]), backend)
    assert _cost(anywhere) == pytest.approx(83.0)


def test_no_single_region_large_enough_is_infeasible_with_the_reason() -> None:
    """64 GPUs, two regions of 40 each: together enough, apart not."""
    offers = [offer("a", gpus=8, price=10.0, region="r1", available_instances=5),
              offer("b", gpus=8, price=10.0, region="r2", available_instances=5)]
    sol = _solve(problem(offers, [workload("train", 64, gpus_per_node=8)]))
    assert sol.status == "infeasible"
    reason = sol.infeasibility_reason or ""
    assert "one placement" in reason and "40" in reason and "elastic" in reason


def test_same_zone_needs_one_zone_and_several_offers_may_share_it() -> None:
    """16 boxes wanted. us-east zone a holds 10 at $10, zone b 10 at $9 plus 4 of a second type at $9.5,
    zone c 20 at $12. same_region: the 16 cheapest of the region, 10 x 9 + 4 x 9.5 + 2 x 10 = $148.
    same_zone: zone b's two offers give only 14, zone a 10, so zone c: 16 x 12 = $192."""
    offers = [offer("a", gpus=8, price=10.0, region="us-east", zone="a", available_instances=10),
              offer("b", gpus=8, price=9.0, region="us-east", zone="b", available_instances=10),
              offer("b2", gpus=8, price=9.5, region="us-east", zone="b", available_instances=4),
              offer("c", gpus=8, price=12.0, region="us-east", zone="c", available_instances=20)]
    region = _solve(problem(offers, [workload("train", 128, gpus_per_node=8)]))
    assert by_offer(region) == {"b": 10, "b2": 4, "a": 2} and _cost(region) == pytest.approx(148.0)
    zone = _solve(problem(offers, [workload("train", 128, gpus_per_node=8, placement="same_zone")]))
    assert by_offer(zone) == {"c": 16} and _cost(zone) == pytest.approx(192.0)


def test_spot_and_on_demand_nodes_and_two_sellers_are_different_placements() -> None:
    """4 GPUs: spot boxes ($1, 2 available) and on-demand ($2) in one region; not elastic -> 4 on-demand, $8.
    Two sellers of one marketplace in one region (2 machines each, $1) cannot be one job: the pricier
    seller with 4 machines ($1.5) is -> $6."""
    mixed = [offer("spot", price=1.0, spot=True, available_instances=2), offer("od", price=2.0)]
    sol = _solve(problem(mixed, [workload("train", 4, spot_tolerant=True)]))
    assert by_offer(sol) == {"od": 4}
    sellers = [offer("s1", "shadeform", price=1.0, seller="lambdalabs", available_instances=2),
               offer("s2", "shadeform", price=1.0, seller="crusoe", available_instances=2),
               offer("s3", "shadeform", price=1.5, seller="nebius", available_instances=4)]
    sol = _solve(problem(sellers, [workload("train", 4)]))
    assert by_offer(sol) == {"s3": 4} and _cost(sol) == pytest.approx(6.0)


def test_inference_is_elastic_by_default_training_is_not() -> None:
    """Two regions of 2 GPUs at $1 and one of 4 at $3: a 4-GPU inference service takes both cheap regions
    ($4), a 4-GPU training job the one region that fits ($12)."""
    offers = [offer("a", price=1.0, region="r1", available_instances=2),
              offer("b", price=1.0, region="r2", available_instances=2),
              offer("c", price=3.0, region="r3", available_instances=4)]
    serve = _solve(problem(offers, [workload("serve", 4, workload_type="inference")]))
    assert _cost(serve) == pytest.approx(4.0)
    train = _solve(problem(offers, [workload("train", 4)]))
    assert by_offer(train) == {"c": 4}


def test_the_validator_flags_a_job_spread_over_two_regions() -> None:
    p = problem([offer("a", region="r1"), offer("b", region="r2")], [workload("train", 2)])
    lines = [AllocationLine(workload_id="train", offer_id=o, provider="p1", region=r, instance_type="",
                            gpu_model="A100", instances=1, gpus=1, hourly_cost=1.0, spot=False)
             for o, r in (("a", "r1"), ("b", "r2"))]
    sol = Solution(status="feasible", allocations=lines, stats=SolverStats(backend="x", status="feasible"))
    assert [v.constraint for v in validate(p, sol)] == ["placement"]
    elastic = problem(p.offers, [workload("train", 2, elastic=True)])
    assert validate(elastic, sol) == []


def test_the_validator_flags_listing_capacity() -> None:
    p = problem([offer("v", "vast", gpus=8, capacity_kind="listing")], [workload("train", 16, gpus_per_node=8)])
    line = AllocationLine(workload_id="train", offer_id="v", provider="vast", region="r1", instance_type="",
                          gpu_model="A100", instances=2, gpus=16, hourly_cost=2.0, spot=False)
    sol = Solution(status="feasible", allocations=[line], stats=SolverStats(backend="x", status="feasible"))
    assert "capacity" in {v.constraint for v in validate(p, sol)}


# ---------------------------------------------------------------- shares
def test_surplus_gpus_do_not_meet_a_provider_cap() -> None:
    """A 16-GPU job with a 50% provider cap. The plan 9 GPUs at a + 9 at b (18 rented, 50/50 of what is
    rented) has 9 of the 16 GPUs it needs at each provider: 56% > 50%, a violation. The solver rents
    8 + 8: 8 x $1 + 8 x $2 = $24, largest share exactly 50%."""
    offers = [offer("a1", "a", price=1.0), offer("b1", "b", price=2.0)]
    p = problem(offers, [workload("w", 16, elastic=True)], max_provider_share=0.5)
    gamed = [AllocationLine(workload_id="w", offer_id=o, provider=pv, region="r1", instance_type="",
                            gpu_model="A100", instances=9, gpus=9, hourly_cost=9.0 * price, spot=False)
             for o, pv, price in (("a1", "a", 1.0), ("b1", "b", 2.0))]
    sol = Solution(status="feasible", allocations=gamed, stats=SolverStats(backend="x", status="feasible"))
    assert "provider_share" in {v.constraint for v in validate(p, sol)}
    best = _solve(p)
    assert by_offer(best) == {"a1": 8, "b1": 8} and _cost(best) == pytest.approx(24.0)
    assert best.risk.largest_provider_share == pytest.approx(0.5)


def test_a_variable_need_counts_the_usable_gpus() -> None:
    """gpus_min 8, gpus_max 12 (elastic): with a 50% cap the need is what it gets. Performance objective:
    12 GPUs, 6 at each provider (a $1, b $2, both H100 -> throughput alike)."""
    offers = [offer("a1", "a", gpu="H100", price=1.0), offer("b1", "b", gpu="H100", price=2.0)]
    p = problem(offers, [workload("w", 8, gpus_max=12, elastic=True)], max_provider_share=0.5,
                objective="performance")
    sol = _solve(p)
    assert by_offer(sol) == {"a1": 6, "b1": 6}


# ---------------------------------------------------------------- baselines
def test_savings_against_the_skypilot_rule() -> None:
    """16 GPUs at 8 per node. 8-GPU boxes cost $20 (SkyPilot: H100:8 x 2 nodes = $40); a 16-GPU box is $36,
    which the fleet solve takes: $4/h = 10% saved. A $38 budget: SkyPilot's plan breaks it, and says so."""
    offers = [offer("o8", gpus=8, price=20.0), offer("o16", gpus=16, price=36.0)]
    sol = _solve(problem(offers, [workload("train", 16, gpus_per_node=8)]))
    sky = next(s for s in sol.savings if s.baseline == "skypilot_rule")
    assert sky.baseline_cost_per_hour == pytest.approx(40.0) and sky.savings_pct == pytest.approx(10.0)
    assert sky.honours_constraints is True and sky.violated == []
    tight = _solve(problem(offers, [workload("train", 16, gpus_per_node=8)], budget_per_hour=38.0))
    sky = next(s for s in tight.savings if s.baseline == "skypilot_rule")
    assert sky.honours_constraints is False and sky.violated == ["budget"]


def test_skypilot_rule_without_an_exact_instance_has_no_plan() -> None:
    """Only 16-GPU boxes for 8-GPU nodes: SkyPilot's H100:8 matches nothing."""
    sol = _solve(problem([offer("o16", gpus=16, price=36.0)], [workload("train", 16, gpus_per_node=8)]))
    sky = next(s for s in sol.savings if s.baseline == "skypilot_rule")
    assert sky.baseline_cost_per_hour is None and "exactly 8" in sky.note


# ---------------------------------------------------------------- Pareto
def test_pareto_points_in_the_problem_return_both_fronts() -> None:
    """Spot at $1 (5%/h interruptions) or on-demand at $3: the risk front runs from the cheap risky plan
    to the safe dear one; the performance front from A100 to H100."""
    offers = [offer("spot", gpu="A100", price=1.0, spot=True, interruption_rate_per_hour=0.05),
              offer("od", gpu="A100", price=3.0), offer("h", gpu="H100 SXM", price=6.0)]
    p = problem(offers, [workload("w", 1, gpus_max=1, spot_tolerant=True)], pareto_points=3)
    sol = _solve(p)
    assert sol.fronts is not None
    risk, perf = sol.fronts.cost_risk, sol.fronts.cost_performance
    assert risk[0].cost_per_hour == pytest.approx(1.0) and risk[-1].cost_per_hour == pytest.approx(3.0)
    assert risk[-1].risk_per_hour < risk[0].risk_per_hour
    assert perf[0].cost_per_hour == pytest.approx(1.0) and perf[-1].performance > perf[0].performance
    assert len(sol.pareto) == len(risk) + len(perf)


# ---------------------------------------------------------------- performance table
CANONICAL = [
    "B300", "GB200", "B200", "H200", "GH200", "H100 SXM", "H100 PCIe", "H100 NVL", "H800", "A100 80GB SXM",
    "A100 80GB PCIe", "A100 40GB", "A800", "A40", "A30", "A16", "A10", "A10G", "A2", "L40S", "L40", "L4", "T4",
    "T4G", "V100", "V100 32GB", "P100", "P4", "K80", "M60", "RTX PRO 6000", "RTX 6000 Ada", "RTX 5880 Ada",
    "RTX 5000 Ada", "RTX 4000 Ada", "RTX 6000", "RTX A6000", "RTX A5000", "RTX A4500", "RTX A4000", "RTX 5090",
    "RTX 5080", "RTX 5070 Ti", "RTX 5070", "RTX 5060 Ti", "RTX 4090", "RTX 4080 Super", "RTX 4080",
    "RTX 4070 Ti Super", "RTX 4070 Ti", "RTX 4070", "RTX 4060 Ti", "RTX 4060", "RTX 3090 Ti", "RTX 3090",
    "RTX 3080 Ti", "RTX 3080", "RTX 3070", "RTX 3060 Ti", "RTX 3060", "RTX 2080 Ti", "GTX 1080 Ti", "MI300X",
    "MI250X", "Radeon Pro V520",
]


def test_every_canonical_gpu_has_data_sheet_figures() -> None:
    assert len(CANONICAL) == 65 and len({canonical_model(n) for n in CANONICAL}) == 65
    missing = [n for n in CANONICAL if relative_throughput(n, "training") == UNKNOWN_MODEL_PERFORMANCE]
    assert missing == []
    assert relative_throughput("A100 80GB SXM", "training") == pytest.approx(1.0)
    assert relative_throughput("H100 SXM", "inference") > relative_throughput("H100 PCIe", "inference")
    assert relative_throughput("RTX 4090", "training") > relative_throughput("RTX 3090", "training")


def test_callers_figures_win_and_reach_the_solver() -> None:
    """An unknown 'X1' scores 0.25 by default; the caller's data sheet (2 x A100's TFLOPS and bandwidth)
    makes it 2.0, and a performance solve with $10 picks it over the A100 at the same price."""
    assert relative_throughput("X1", "training") == UNKNOWN_MODEL_PERFORMANCE
    figures = {"X1": GpuFigures(fp16_tflops=624.0, memory_bandwidth_gbps=4078.0)}
    assert relative_throughput("X1", "training", figures) == pytest.approx(2.0)
    offers = [offer("x", gpu="X1", price=1.0), offer("a", gpu="A100 80GB SXM", price=1.0)]
    p = problem(offers, [workload("w", 1, gpus_max=1)], objective="performance", gpu_figures=figures)
    assert by_offer(_solve(p)) == {"x": 1}
