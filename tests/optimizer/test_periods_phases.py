"""The per-period options of solve_decomposed (periods.py's first pass and restarts): no Lagrangian,
no focused solves, a fallback plan, other neighbourhood seeds. Each must keep plans feasible and
bounds valid; the fallback must never make the result worse than itself."""

from __future__ import annotations

import time

import numpy as np
import pytest

from optimizer.backends import get_backend
from optimizer.periods import PeriodModels
from optimizer.presolve import build_classes, build_pairs
from optimizer.schemas import SolveConfig
from optimizer.strategy import Reporter, solve_decomposed
from optimizer.synthetic import generate
from optimizer.tables import CompatLookup, offer_table, workload_table

CFG = SolveConfig(time_limit_s=30, relative_gap=1e-9, compute_baselines=False, isolate="never")


def _models(seed: int) -> PeriodModels:
    p = generate(8, 120, seed=seed, periods=3, budget_factor=1.5)
    offers = offer_table(p)
    workloads = workload_table(p, offers)
    lookup = CompatLookup.build(p, offers, workloads)
    classes = build_classes(p, lookup, enabled=True)
    pairs = build_pairs(p, lookup, classes)
    return PeriodModels(p, offers, workloads, classes, pairs)


def _solve(models: PeriodModels, t: int, **kw: object):  # type: ignore[no-untyped-def]
    layout = models.layout(t)
    model = models.model(t, layout)
    out = solve_decomposed(model, layout, get_backend("ortools"), CFG, time.perf_counter() + 20,
                           Reporter(None, 1.0, 0.0, 1.0), **kw)  # type: ignore[arg-type]
    return model, out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_first_pass_options_keep_plans_feasible_and_the_bound_the_lps(seed: int) -> None:
    models = _models(seed)
    for t in range(models.T):
        model, exact = _solve(models, t)
        _, quick = _solve(models, t, lagrangian=False, focused=False, lns_seed=3, lns_batch=2)
        assert quick.x is not None and quick.objective is not None and quick.lp is not None
        assert model.violation(quick.x) <= 1e-6
        assert quick.objective == pytest.approx(model.objective(quick.x), rel=1e-9)
        # Without the Lagrangian the bound is the LP's, and it stays below the exact optimum.
        assert quick.bound == pytest.approx(quick.lp.objective, rel=1e-12)
        assert exact.objective is not None and quick.bound <= exact.objective + 1e-6
        assert quick.objective >= exact.objective - 1e-6
        assert "lagrangian" not in quick.phases


@pytest.mark.parametrize("seed", [0, 1])
def test_a_fallback_plan_is_never_beaten_by_a_worse_result(seed: int) -> None:
    """Another period's plan, feasible here, handed as fallback: the result costs at most as much."""
    models = _models(seed)
    _, other = _solve(models, 0)
    assert other.x is not None
    for t in range(1, models.T):
        model, out = _solve(models, t, fallback=other.x[: models.base.n_x], lagrangian=False, focused=False)
        assert out.x is not None and out.objective is not None
        assert model.violation(out.x) <= 1e-6
        full = models.layout(t).complete(other.x[: models.base.n_x], model.shape[1])
        if model.violation(full) <= 1e-6:
            assert out.objective <= model.objective(full) + 1e-9
        assert np.all(out.x[: model.n_x] >= -1e-9)


def test_the_search_stops_at_its_target() -> None:
    """A start already at the target is returned as it is; without a target the search may improve it."""
    from optimizer.strategy import improve

    models = _models(0)
    _, first = _solve(models, 0)
    assert first.x is not None
    layout = models.layout(1)
    model = models.model(1, layout)
    x = layout.complete(first.x[: models.base.n_x], model.shape[1])
    if model.violation(x) > 1e-6:
        pytest.skip("period 0's plan does not fit period 1's budget")
    focus = np.ones(model.shape[1], dtype=bool)
    backend = get_backend("ortools")
    same, wins = improve(model, layout, focus, x, time.perf_counter() + 10, backend, target=model.objective(x))
    assert wins == 0 and np.array_equal(same, x)
    free, _ = improve(model, layout, focus, x, time.perf_counter() + 10, backend)
    assert model.violation(free) <= 1e-6 and model.objective(free) <= model.objective(x) + 1e-9
