"""Large-neighbourhood search (optimizer.strategy.improve): feasible, never worse, and it does improve
a deliberately poor start."""

from __future__ import annotations

import time

import numpy as np

from optimizer.backends import get_backend
from optimizer.model import AllocationModel
from optimizer.strategy import improve
from optimizer.synthetic import generate
from tests.optimizer.helpers import model_parts


def test_neighbourhoods_improve_a_poor_feasible_point() -> None:
    p = generate(20, 400, seed=5)
    of, wl, _, classes, pairs = model_parts(p)
    layout = AllocationModel(p, of, wl, classes, pairs)
    model = layout.build()
    backend = get_backend("ortools")
    # A poor start: the first feasible point SCIP returns with a loose gap.
    start = backend.solve_mip(model, time_limit=30, relative_gap=0.5, threads=1)
    assert start.x is not None
    x0 = layout.complete(start.x[: model.n_x], model.shape[1])
    assert model.violation(x0) <= 1e-6
    exact = backend.solve_mip(model, time_limit=60, relative_gap=1e-9, threads=1)
    assert exact.objective is not None
    focus = np.ones(model.shape[1], dtype=bool)
    x1, wins = improve(model, layout, focus, x0, time.perf_counter() + 60, backend, batch=5)
    assert model.violation(x1) <= 1e-6
    assert np.all(np.abs(x1[: model.n_x] - np.round(x1[: model.n_x])) <= 1e-9)
    assert model.objective(x1) <= model.objective(x0) + 1e-9
    assert model.objective(x1) >= exact.objective - 1e-6
    assert model.objective(x0) > exact.objective + 1e-6  # the start is poor on this instance
    assert wins > 0 and model.objective(x1) < model.objective(x0)
