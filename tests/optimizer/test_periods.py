"""Multi-period problems solved period by period: shared build, warm chain, forked workers."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import solve
from optimizer.model import AllocationModel
from optimizer.periods import PeriodModels, separable
from optimizer.schemas import Problem, Solution, SolveConfig, Weights
from optimizer.synthetic import generate
from optimizer.validate import validate
from tests.optimizer.helpers import model_parts

from .helpers import offer, problem, workload

EXACT = dict(time_limit_s=30, relative_gap=1e-9, compute_baselines=False, isolate="never")


def _period_models(p: Problem) -> tuple[PeriodModels, list[AllocationModel]]:
    offers, workloads, _, classes, pairs = model_parts(p)
    models = PeriodModels(p, offers, workloads, classes, pairs)
    fresh = [AllocationModel(p, models.layout(t).offers, workloads, classes, pairs) for t in range(models.T)]
    return models, fresh


@pytest.mark.parametrize("objective", ["cost", "performance", "weighted"])
def test_shared_build_equals_a_fresh_build_of_every_period(objective: str) -> None:
    p = generate(6, 60, seed=3, periods=5).model_copy(
        update={"objective": objective, "weights": Weights(cost=1.0, performance=0.3, risk=0.5)})
    models, fresh = _period_models(p)
    for t, layout in enumerate(fresh):
        want = layout.build()
        got = models.model(t)
        np.testing.assert_allclose(got.c, want.c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.A.toarray(), want.A.toarray(), rtol=1e-12, atol=1e-12)
        for name in ("row_lb", "row_ub", "var_lb", "var_ub", "integer"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        assert got.offset == want.offset
        # The period's layout completes instance counts the way a built one does (share column G).
        x = np.ones(got.n_x)
        np.testing.assert_array_equal(models.layout(t).complete(x, got.shape[1]), layout.complete(x, want.shape[1]))


def _three_periods(**kw: object) -> Problem:
    return problem(
        [
            offer("A", price=1.0, price_per_period=[1.0, 3.0, 1.0], available_instances=2),
            offer("B", price=2.0, price_per_period=[2.0, 2.0, 2.0]),
            offer("C", price=1.5, price_per_period=[1.5, 1.5, 4.0]),
        ],
        [workload("w", 4, gpus_max=4)],
        horizon_hours=3.0,
        budget_per_hour=6.0,
        **kw,  # type: ignore[arg-type]
    )


def _lines(sol: Solution) -> set[tuple[int, str, int]]:
    return {(ln.period, ln.offer_id, ln.instances) for ln in sol.allocations}


@pytest.mark.parametrize("threads", [1, 2])
def test_three_periods_where_no_plan_carries_over(threads: int) -> None:
    """4 one-GPU instances per period, at most 2 of A, budget $6/h in every period.
    t0: A 1, B 2, C 1.5 -> 2 A + 2 C = $5.  t1: A 3, B 2, C 1.5 -> 4 C = $6 (t0's plan would cost $9).
    t2: A 1, B 2, C 4 -> 2 A + 2 B = $6 (t1's plan would cost $16). Mean (5 + 6 + 6) / 3 = $17/3 per hour."""
    p = _three_periods()
    assert separable(p)
    sol = solve(p, SolveConfig(threads=threads, **EXACT))  # type: ignore[arg-type]
    assert validate(p, sol) == []
    assert sol.status == "optimal"
    assert _lines(sol) == {(0, "A", 2), (0, "C", 2), (1, "C", 4), (2, "A", 2), (2, "B", 2)}
    assert sol.stats.objective == pytest.approx(17 / 3)
    assert sol.stats.best_bound is not None and sol.stats.best_bound == pytest.approx(17 / 3, rel=1e-6)


def _independent(p: Problem) -> float:
    """Mean of the per-period optima, each period solved as its own single-period problem."""
    T = len(p.offers[0].price_per_period or [])
    values = []
    for t in range(T):
        single = p.model_copy(update={
            "offers": [o.model_copy(update={"price_per_hour": (o.price_per_period or [])[t], "price_per_period": None})
                       for o in p.offers],
            "horizon_hours": 1.0,
        })
        sol = solve(single, SolveConfig(**EXACT))  # type: ignore[arg-type]
        assert sol.status == "optimal" and sol.stats.objective is not None
        values.append(sol.stats.objective)
    return float(np.mean(values))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_warm_chain_reaches_the_independent_optima(seed: int) -> None:
    """The chain (warm starts from other periods' plans, shared build) and the forked workers give the
    same objective as solving every period on its own; the plan is feasible for every period."""
    p = generate(6, 80, seed=seed, periods=4, budget_factor=1.5)
    want = _independent(p)
    for threads in (1, 2):
        sol = solve(p, SolveConfig(threads=threads, **EXACT))  # type: ignore[arg-type]
        assert validate(p, sol) == []
        assert sol.status == "optimal"
        assert sol.stats.objective == pytest.approx(want, rel=1e-6)
        assert sol.stats.best_bound is not None and sol.stats.best_bound <= sol.stats.objective + 1e-6
        assert sol.stats.lp_bound is not None and sol.stats.lp_bound <= sol.stats.best_bound + 1e-6


def test_infeasible_period_is_reported() -> None:
    """Period 1 costs $3 per GPU everywhere: 4 GPUs need $12/h against a $6/h budget."""
    p = problem(
        [offer("A", price=1.0, price_per_period=[1.0, 3.0]), offer("B", price=1.0, price_per_period=[1.2, 3.0])],
        [workload("w", 4, gpus_max=4)],
        horizon_hours=2.0,
        budget_per_hour=6.0,
    )
    sol = solve(p, SolveConfig(**EXACT))  # type: ignore[arg-type]
    assert sol.status == "infeasible"
    assert sol.infeasibility_reason is not None and "period" in sol.infeasibility_reason


def test_threads_inside_the_isolated_child_fall_back_to_one_process() -> None:
    """optimizer.isolation runs the solve in a daemonic child, which may not fork workers of its own."""
    p = _three_periods()
    sol = solve(p, SolveConfig(**{**EXACT, "threads": 2, "isolate": "always"}))  # type: ignore[arg-type]
    assert validate(p, sol) == []
    assert sol.stats.objective == pytest.approx(17 / 3)
