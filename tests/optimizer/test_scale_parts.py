"""The scale machinery on medium instances: each part must give feasible points and valid bounds."""

from __future__ import annotations

import time

import numpy as np

from optimizer.backends import get_backend
from optimizer.batches import batched_incumbent
from optimizer.colgen import solve_lp_colgen
from optimizer.lagrange import lagrangian_bound
from optimizer.model import AllocationModel
from optimizer.schemas import SolveConfig
from optimizer.solver import solve_here
from optimizer.synthetic import generate
from tests.optimizer.helpers import model_parts


def _model(seed: int = 7):  # type: ignore[no-untyped-def]
    p = generate(30, 600, seed=seed)
    of, wl, _, classes, pairs = model_parts(p)
    layout = AllocationModel(p, of, wl, classes, pairs)
    return p, layout, layout.build()


def test_column_generation_reaches_the_full_lp_optimum() -> None:
    _, layout, model = _model()
    backend = get_backend("ortools")
    full = backend.solve_lp(model, time_limit=30)
    cg = solve_lp_colgen(model, layout, backend, time_limit=30)
    assert full.objective is not None and cg.objective is not None
    assert abs(full.objective - cg.objective) <= 1e-6 * max(1.0, abs(full.objective))
    below_ub = cg.x[: model.n_x] < model.var_ub[: model.n_x] - 1e-7  # at an upper bound rc <= 0 is optimal
    assert np.all(cg.reduced_costs[: model.n_x][below_ub] >= -1e-6)


def test_lagrangian_bound_lies_between_lp_bound_and_optimum() -> None:
    p, layout, model = _model()
    backend = get_backend("ortools")
    lp = backend.solve_lp(model, time_limit=30)
    assert lp.objective is not None
    bound, _, _ = lagrangian_bound(model, layout, lp.objective, lp.x, lp.duals, lp.reduced_costs)
    exact = solve_here(p, SolveConfig(time_limit_s=60, relative_gap=1e-9, compute_baselines=False))
    assert exact.status == "optimal" and exact.stats.objective is not None
    assert lp.objective - 1e-6 <= bound <= exact.stats.objective + 1e-6


def test_batched_incumbent_is_feasible() -> None:
    _, layout, model = _model()
    backend = get_backend("ortools")
    lp = backend.solve_lp(model, time_limit=30)
    focus = lp.x > 1e-7
    focus[model.n_x :] = True
    rc = lp.reduced_costs
    focus[: model.n_x] |= rc[: model.n_x] <= np.quantile(rc[: model.n_x], 0.2)
    x = batched_incumbent(model, layout, lp, focus, backend, deadline=time.perf_counter() + 30, threads=1,
                          batch_columns=200)
    assert x is not None
    assert model.violation(x) <= 1e-6
    assert lp.objective is not None and model.objective(x) >= lp.objective - 1e-6
