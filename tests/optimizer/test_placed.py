"""Co-location at fleet size: the placement-aware greedy and the placement decomposition
(``solver._solve_placed``), on worked examples and as a property against the exact solve.

The decomposition is taken from ``lazy.LAZY_MIN_PAIRS`` compatible pairs on (300,000); ``fleet_path``
lowers that threshold so that small problems, whose optimum the whole model proves, take it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import lazy, solve
from optimizer.greedy import greedy_fill
from optimizer.model import AllocationModel
from optimizer.placement import keep_placements
from optimizer.schemas import Problem, Solution, SolveConfig
from optimizer.synthetic import generate
from optimizer.validate import validate

from .helpers import by_offer, model_parts, offer, problem, workload
from .test_properties import SETTINGS, offers, workloads

EXACT = SolveConfig(time_limit_s=20, relative_gap=1e-9, compute_baselines=False, isolate="never")


@contextmanager
def fleet_path() -> Iterator[None]:
    old = lazy.LAZY_MIN_PAIRS
    lazy.LAZY_MIN_PAIRS = 0
    try:
        yield
    finally:
        lazy.LAZY_MIN_PAIRS = old


def _placed(p: Problem) -> Solution:
    with fleet_path():
        return solve(p, EXACT)


def _greedy(p: Problem) -> dict[str, int] | None:
    of, wl, _, classes, pairs = model_parts(p)
    x = greedy_fill(p, of, wl, classes, pairs, of.price[pairs.o] + pairs.egress)
    if x is None:
        return None
    out: dict[str, int] = {}
    for k in np.flatnonzero(x).tolist():
        oid = of.ids[int(pairs.o[k])]
        out[oid] = out.get(oid, 0) + int(x[k])
    return out


def test_the_cheapest_placement_too_small_for_the_job_is_passed_over() -> None:
    """16 GPUs, 8 per node, one placement: aws/us has one $8 box and one $20 box (2 boxes, $28); gcp/eu has
    four $12 boxes -> 2 x gcp = $24. Split (elastic) it would be $8 + $12 = $20: the relaxed LP bound
    the decomposition reports is at most that."""
    offers = [offer("cheap", "aws", gpus=8, price=8.0, region="us", available_instances=1),
              offer("dear", "aws", gpus=8, price=20.0, region="us", available_instances=1),
              offer("g", "gcp", gpus=8, price=12.0, region="eu", available_instances=4)]
    p = problem(offers, [workload("train", 16, gpus_per_node=8, workload_type="training")])
    sol = _placed(p)
    assert sol.stats.engine.startswith("placed:")
    assert by_offer(sol) == {"g": 2} and validate(p, sol) == []
    assert sol.stats.objective == 24.0
    assert sol.stats.best_bound is not None and sol.stats.best_bound <= 20.0 + 1e-6
    assert sol.stats.gap is not None and sol.stats.gap > 0 and sol.status == "feasible"


def test_a_provider_cap_sends_the_second_job_to_the_next_placement() -> None:
    """Two 16-GPU jobs that must each stay together, a 50% provider cap (16 of the 32 needed GPUs): both
    prefer aws ($8 per 8-GPU box), the second goes to gcp ($10) -> $16 + $20 = $36. The greedy used to
    pick aws for both and give up."""
    offers = [offer("a", "aws", gpus=8, price=8.0, available_instances=4),
              offer("g", "gcp", gpus=8, price=10.0, available_instances=4)]
    jobs = [workload("t1", 16, gpus_per_node=8, workload_type="training"),
            workload("t2", 16, gpus_per_node=8, workload_type="training")]
    p = problem(offers, jobs, max_provider_share=0.5)
    assert _greedy(p) == {"a": 2, "g": 2}
    sol = _placed(p)
    assert sol.stats.engine.startswith("placed:") and validate(p, sol) == []
    assert by_offer(sol) == {"a": 2, "g": 2} and sol.stats.objective == 36.0


def test_a_greedy_placement_that_blocks_another_job_is_repaired() -> None:
    """t1 may use aws or gcp, t2 aws or lambda (16 GPUs each, 8 per node, one placement each); aws has room
    for one job ($8 a box), gcp $9, lambda $15. The greedy serves t1 first (less room) on aws and leaves t2
    lambda: $16 + $30 = $46. The decomposition (a second, LP-guided plan; each job's next placements kept
    beside its plan's) finds t1 on gcp, t2 on aws: $18 + $16 = $34, the optimum."""
    offers = [offer("a", "aws", gpus=8, price=8.0, available_instances=2),
              offer("g", "gcp", gpus=8, price=9.0, available_instances=2),
              offer("l", "lambda", gpus=8, price=15.0, available_instances=4)]
    jobs = [workload("t1", 16, gpus_per_node=8, workload_type="training", denied_providers=["lambda"]),
            workload("t2", 16, gpus_per_node=8, workload_type="training", denied_providers=["gcp"])]
    p = problem(offers, jobs)
    assert _greedy(p) == {"a": 2, "l": 2}
    sol = _placed(p)
    assert sol.stats.engine.startswith("placed:") and validate(p, sol) == []
    assert sol.stats.objective == 34.0 and solve(p, EXACT).stats.objective == 34.0
    # What the restricted solve keeps around the greedy plan: its placement first, then the cheapest others.
    of, wl, _, classes, pairs = model_parts(p)
    x = greedy_fill(p, of, wl, classes, pairs, of.price[pairs.o])
    assert x is not None
    for k, want in ((1, {("t1", "a"), ("t2", "l")}), (2, {("t1", "a"), ("t1", "g"), ("t2", "l"), ("t2", "a")})):
        idx, placed = keep_placements(of, wl, pairs, x, of.price[pairs.o], k)
        assert {(wl.ids[int(pairs.w[i])], of.ids[int(pairs.o[i])]) for i in idx} == want and placed.all()


def test_a_placement_that_cannot_meet_the_on_demand_floor_is_undone_and_the_next_tried() -> None:
    """An inference service that must stay in one placement (not elastic), 4 GPUs, floor 50% on demand:
    the cheapest placement is aws spot ($0.5) where no on-demand node exists, so the greedy undoes it and
    serves all 4 from gcp on demand ($1 each) -> $4, which is the optimum."""
    offers = [offer("spot", "aws", price=0.5, spot=True, available_instances=8),
              offer("od", "gcp", price=1.0, available_instances=8)]
    serve = workload("serve", 4, workload_type="inference", spot_tolerant=True, elastic=False)
    p = problem(offers, [serve], inference_on_demand_floor=0.5)
    assert _greedy(p) == {"od": 4}
    sol = _placed(p)
    assert by_offer(sol) == {"od": 4} and sol.stats.objective == 4.0 and validate(p, sol) == []
    assert solve(p, EXACT).stats.objective == 4.0


def test_a_synthetic_co_located_fleet_gets_a_validated_plan_with_an_honest_bound() -> None:
    """The bench generator's co-located fleet (training jobs in one region) at 30 x 400 through the
    decomposition: a plan every rule of the validator accepts, above the relaxed bound, never below the
    optimum of the whole model."""
    p = generate(30, 400, seed=2, co_located=True)
    sol = _placed(p)
    assert sol.stats.engine.startswith("placed:")
    assert sol.status in ("optimal", "feasible") and validate(p, sol) == []
    exact = solve(p, EXACT.model_copy(update={"time_limit_s": 60}))
    assert exact.status == "optimal" and exact.stats.objective is not None and sol.stats.objective is not None
    assert sol.stats.objective >= exact.stats.objective - 1e-6
    assert sol.stats.best_bound is not None and sol.stats.best_bound <= exact.stats.objective + 1e-6


@st.composite
def placed_problems(draw: Any) -> Problem:
    """Random fleets (the property suite's offers and workloads, more offers) whose first workload must
    stay in one placement."""
    ws = [draw(workloads(i)) for i in range(draw(st.integers(1, 3)))]
    ws[0] = ws[0].model_copy(update={"elastic": False,
                                     "placement": draw(st.sampled_from(["same_region", "same_zone"]))})
    return Problem(
        offers=[draw(offers(i)) for i in range(draw(st.integers(5, 12)))],
        workloads=ws,
        budget_per_hour=draw(st.sampled_from([None, None, 60.0, 200.0])),
        max_provider_share=draw(st.sampled_from([None, None, 0.5, 0.75])),
        max_spot_share=draw(st.sampled_from([None, 0.5])),
        inference_on_demand_floor=draw(st.sampled_from([0.0, 0.5])),
        objective=draw(st.sampled_from(["cost", "cost", "weighted"])),
        default_available_instances=draw(st.sampled_from([16, 16, 2, None])),
    )


@settings(SETTINGS, max_examples=40)
@given(placed_problems())
def test_the_decomposition_validates_and_its_bound_is_below_the_optimum(p: Problem) -> None:
    """Every plan of the fleet-size path passes the validator (placement, capacity, shares, floors); it is
    never better than the proven optimum of the whole model, and the bound it reports is never above it."""
    sol = _placed(p)
    assert validate(p, sol) == []
    exact = solve(p, EXACT)
    if sol.status in ("optimal", "feasible"):
        assert exact.status == "optimal"
        assert sol.stats.objective is not None and exact.stats.objective is not None
        tol = 1e-6 * max(1.0, abs(exact.stats.objective))
        if sol.stats.sense == "min":
            assert sol.stats.objective >= exact.stats.objective - tol
            if sol.stats.best_bound is not None:
                assert sol.stats.best_bound <= exact.stats.objective + tol
    if exact.status == "infeasible":
        assert sol.status in ("infeasible", "no_solution")


@settings(SETTINGS, max_examples=40)
@given(placed_problems())
def test_the_placement_greedy_plan_satisfies_every_row_of_the_model(p: Problem) -> None:
    """A greedy plan (when there is one) is a feasible point of the whole model: combo rows, capacity,
    budget, share caps and floors."""
    of, wl, _, classes, pairs = model_parts(p)
    x = greedy_fill(p, of, wl, classes, pairs, of.price[pairs.o] + pairs.egress)
    if x is None:
        return
    layout = AllocationModel(p, of, wl, classes, pairs)
    model = layout.build()
    assert np.all(x == np.round(x)) and model.violation(layout.complete(x, model.shape[1])) <= 1e-6


@pytest.mark.slow
def test_the_co_located_fleet_benchmark_gets_a_validated_plan() -> None:
    """The bench's coloc-200x10000 (711,921 compatible pairs; the whole matrix found no plan in its 9.3 s):
    a plan from the decomposition, every placement rule validated, above the relaxed bound it reports."""
    p = generate(200, 10000, seed=1, co_located=True)
    sol = solve(p, SolveConfig(time_limit_s=9.3, compute_baselines=False))
    assert sol.stats.engine.startswith("placed:")
    assert sol.status == "feasible" and validate(p, sol) == []
    assert sol.stats.objective is not None and sol.stats.best_bound is not None
    assert sol.stats.best_bound <= sol.stats.objective
