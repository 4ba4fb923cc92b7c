"""Invariants of the optimizer on small random problems (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import solve
from optimizer.schemas import Offer, Problem, Solution, SolveConfig, Workload
from optimizer.validate import validate

PROVIDERS = ["aws", "gcp", "lambda", "vast"]
GPUS = [("H100", 80.0), ("A100", 40.0), ("L4", 24.0)]
EXACT = dict(time_limit_s=20, relative_gap=1e-9, compute_baselines=False)
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def offers(draw: Any, i: int) -> Offer:
    gpu, vram = draw(st.sampled_from(GPUS))
    spot = draw(st.booleans())
    provider = draw(st.sampled_from(PROVIDERS))
    market = provider == "vast"
    return Offer(
        id=f"o{i}",
        provider=provider,
        region=draw(st.sampled_from(["us", "eu"])),
        zone=draw(st.sampled_from([None, "a", "b"])),
        seller=draw(st.sampled_from(["s1", "s2"])) if market else None,
        capacity_kind="listing" if market and draw(st.booleans()) else "pool",
        gpu_model=gpu,
        gpus_per_instance=draw(st.sampled_from([1, 2, 4, 8])),
        vram_gb_per_gpu=vram,
        spot=spot,
        price_per_hour=draw(st.integers(5, 400)) / 20,
        available_instances=draw(st.one_of(st.none(), st.integers(1, 8))),
        interruption_rate_per_hour=draw(st.sampled_from([0.01, 0.05])) if spot else None,
    )


@st.composite
def workloads(draw: Any, i: int) -> Workload:
    node = draw(st.sampled_from([1, 1, 2, 4]))
    lo = node * draw(st.integers(1, 4))
    return Workload(
        id=f"w{i}",
        gpus_min=lo,
        gpus_max=draw(st.one_of(st.none(), st.integers(lo, lo + 8))),
        gpus_per_node=node,
        min_vram_gb=draw(st.sampled_from([0.0, 40.0])),
        workload_type=draw(st.sampled_from(["training", "inference", "batch"])),
        spot_tolerant=draw(st.booleans()),
        allowed_regions=draw(st.sampled_from([None, None, ["eu"]])),
        placement=draw(st.sampled_from(["same_region", "same_region", "same_zone", "any"])),
        elastic=draw(st.sampled_from([None, None, True, False])),
    )


@st.composite
def problems(draw: Any) -> Problem:
    n_o = draw(st.integers(2, 7))
    n_w = draw(st.integers(1, 3))
    return Problem(
        offers=[draw(offers(i)) for i in range(n_o)],
        workloads=[draw(workloads(i)) for i in range(n_w)],
        budget_per_hour=draw(st.one_of(st.none(), st.integers(10, 400).map(float))),
        max_provider_share=draw(st.one_of(st.none(), st.sampled_from([0.5, 0.75]))),
        max_spot_share=draw(st.one_of(st.none(), st.just(0.5))),
        inference_on_demand_floor=draw(st.sampled_from([0.0, 0.5])),
        objective=draw(st.sampled_from(["cost", "cost", "weighted"])),
        default_available_instances=draw(st.sampled_from([2, 16, None])),
    )


def _solve(p: Problem, backend: str = "ortools") -> Solution:
    return solve(p, SolveConfig(backend=backend, **EXACT))


def _obj(s: Solution) -> float:
    assert s.stats.objective is not None
    return s.stats.objective


@SETTINGS
@given(problems())
def test_every_solution_satisfies_every_constraint(p: Problem) -> None:
    sol = _solve(p)
    assert validate(p, sol) == []
    if sol.status == "infeasible":
        assert sol.infeasibility_reason
    else:
        assert sol.status == "optimal"


@settings(SETTINGS, max_examples=15)
@given(problems())
def test_backends_agree_on_the_optimum(p: Problem) -> None:
    a, b = _solve(p, "ortools"), _solve(p, "pulp")
    assert validate(p, b) == []
    assert (a.status == "infeasible") == (b.status == "infeasible")
    if a.status == "optimal" and b.status == "optimal":
        assert _obj(a) == pytest.approx(_obj(b), rel=1e-6, abs=1e-6)


@SETTINGS
@given(problems())
def test_more_budget_never_makes_the_optimum_worse(p: Problem) -> None:
    sol = _solve(p)
    richer = p.model_copy(update={"budget_per_hour": None if p.budget_per_hour is None else 2 * p.budget_per_hour})
    more = _solve(richer)
    if sol.status == "optimal":
        assert more.status == "optimal"
        assert _obj(more) <= _obj(sol) + 1e-6 * max(1.0, abs(_obj(sol)))


@SETTINGS
@given(problems(), st.integers(0, 10))
def test_removing_an_offer_never_makes_it_better(p: Problem, k: int) -> None:
    sol = _solve(p)
    fewer = p.model_copy(update={"offers": [o for i, o in enumerate(p.offers) if i != k % len(p.offers)]})
    less = _solve(fewer)
    if sol.status == "infeasible":
        assert less.status == "infeasible"
    if less.status == "optimal":
        assert sol.status == "optimal"
        assert _obj(less) >= _obj(sol) - 1e-6 * max(1.0, abs(_obj(sol)))


@SETTINGS
@given(problems(), st.integers(1, 5))
def test_infeasible_instances_come_with_a_reason(p: Problem, extra: int) -> None:
    """Demand beyond all capacity (capacity made finite everywhere) must be reported infeasible, in words."""
    capped = [o.model_copy(update={"available_instances": o.available_instances or 1}) for o in p.offers]
    total = sum((o.available_instances or 0) * o.gpus_per_instance for o in capped)
    greedy = Workload(id="huge", gpus_min=total + extra, gpus_max=None, spot_tolerant=True)
    q = p.model_copy(update={"offers": capped, "workloads": [*p.workloads, greedy]})
    sol = _solve(q)
    assert sol.status == "infeasible"
    assert sol.infeasibility_reason and "huge" in sol.infeasibility_reason


@SETTINGS
@given(problems())
def test_letting_workloads_split_never_makes_the_optimum_worse(p: Problem) -> None:
    """Co-location only removes plans: the same fleet with every workload elastic is at least as cheap."""
    sol = _solve(p)
    free = _solve(p.model_copy(update={"workloads": [w.model_copy(update={"elastic": True}) for w in p.workloads]}))
    assert validate(p, sol) == []
    if sol.status == "optimal":
        assert free.status == "optimal"
        assert _obj(free) <= _obj(sol) + 1e-6 * max(1.0, abs(_obj(sol)))
