"""Large-neighbourhood search (optimizer.strategy.improve): feasible, never worse, and it does improve
a deliberately poor start."""

from __future__ import annotations

import time

import numpy as np

from optimizer.backends import get_backend
from optimizer.model import AllocationModel
from optimizer.schemas import Progress
from optimizer.strategy import Reporter, improve
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
    found: list[float] = []
    x1, wins = improve(model, layout, focus, x0, time.perf_counter() + 60, backend, batch=5, on_improve=found.append)
    assert model.violation(x1) <= 1e-6
    assert np.all(np.abs(x1[: model.n_x] - np.round(x1[: model.n_x])) <= 1e-9)
    assert model.objective(x1) <= model.objective(x0) + 1e-9
    assert model.objective(x1) >= exact.objective - 1e-6
    assert model.objective(x0) > exact.objective + 1e-6  # the start is poor on this instance
    assert wins > 0 and model.objective(x1) < model.objective(x0)
    # every improvement was reported as found, strictly decreasing, the last one the result
    assert len(found) == wins and found == sorted(found, reverse=True) and len(set(found)) == wins
    assert found[-1] == model.objective(x1)


def test_throttled_progress_reports_at_most_once_per_interval() -> None:
    seen: list[Progress] = []
    report = Reporter(seen.append, -1.0, time.perf_counter(), 10.0)
    send = report.throttled("improve", "better", bound=-120.0, every_s=3600)
    for obj in (-100.0, -105.0, -110.0):
        send(obj)
    # the first report goes at once, in the user's sign (a maximized objective), with its gap
    assert [(s.phase, s.incumbent, s.bound) for s in seen] == [("improve", 100.0, 120.0)]
    assert seen[0].gap is not None and seen[0].gap > 0
    every = report.throttled("improve", "better", bound=-120.0, every_s=0.0)
    every(-111.0)
    every(-112.0)
    assert [s.incumbent for s in seen[1:]] == [111.0, 112.0]
    Reporter(None, 1.0, 0.0, 1.0).throttled("improve", "quiet", None)(5.0)  # no callback: nothing to call
