"""The fleet-scale path: greedy incumbent, signature-built pairs, greedy-seeded lazy column generation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given

from optimizer import lazy
from optimizer.backends import LpResult, get_backend
from optimizer.batches import improve_in_batches
from optimizer.greedy import greedy_fill
from optimizer.model import AllocationModel, MatrixModel
from optimizer.presolve import Classes, Pairs
from optimizer.schemas import Problem, SolveConfig
from optimizer.solver import solve_here
from optimizer.synthetic import generate
from optimizer.tables import CompatLookup, OfferTable, WorkloadTable
from optimizer.validate import validate
from tests.optimizer.helpers import model_parts
from tests.optimizer.test_properties import EXACT, SETTINGS, problems


def _parts(p: Problem) -> tuple[OfferTable, WorkloadTable, CompatLookup, Classes, Pairs]:
    return model_parts(p)


def _pairs_by_cells(lookup: CompatLookup, classes: Classes) -> set[tuple[int, int]]:
    """The compatible pairs the slow way: every (workload, class) cell checked."""
    wl = lookup.workloads
    comp = lookup.block(np.arange(wl.n), classes.rep)
    r, c = np.nonzero(comp.ok)
    g = lookup.offers.gpus[classes.rep[c]]
    u = (g // wl.node[r]) * wl.node[r]
    ub = np.minimum(classes.cap[c], np.floor(wl.hi[r] / np.maximum(u, 1)))
    keep = (u > 0) & (ub > 0)
    return set(zip(r[keep].tolist(), c[keep].tolist(), strict=True))


@SETTINGS
@given(problems())
def test_signature_pairs_are_exactly_the_compatible_cells(p: Problem) -> None:
    _, wl, lookup, classes, pairs = _parts(p)
    assert set(zip(pairs.w.tolist(), pairs.c.tolist(), strict=True)) == _pairs_by_cells(lookup, classes)
    assert np.all(np.diff(pairs.w) >= 0)  # grouped by workload, as greedy and the seeds assume
    assert np.all(pairs.u == (pairs.g // wl.node[pairs.w]) * wl.node[pairs.w])


@SETTINGS
@given(problems())
def test_greedy_plan_satisfies_every_row_of_the_model(p: Problem) -> None:
    of, wl, _, classes, pairs = _parts(p)
    x = greedy_fill(p, of, wl, classes, pairs, of.price[pairs.o] + pairs.egress)
    if x is None:
        return
    assert np.all(x == np.round(x)) and np.all(x >= 0)
    layout = AllocationModel(p, of, wl, classes, pairs)
    model = layout.build()
    assert model.violation(layout.complete(x, model.shape[1])) <= 1e-6


def _greedy_fleet(seed: int) -> tuple[AllocationModel, MatrixModel, LpResult, np.ndarray]:
    """A 60 x 1500 synthetic fleet: its model, LP and the greedy plan (every column filled in)."""
    p = generate(60, 1500, seed=seed)
    of, wl, _, classes, pairs = _parts(p)
    x = greedy_fill(p, of, wl, classes, pairs, of.price[pairs.o] + pairs.egress)
    assert x is not None
    layout = AllocationModel(p, of, wl, classes, pairs)
    model = layout.build()
    lp = get_backend("ortools").solve_lp(model, time_limit=60)
    assert lp.objective is not None
    return layout, model, lp, layout.complete(x, model.shape[1])


def test_greedy_covers_a_synthetic_fleet_within_its_policies() -> None:
    _, model, lp, full = _greedy_fleet(3)
    assert model.violation(full) <= 1e-6
    assert lp.objective is not None and model.objective(full) >= lp.objective - 1e-6


def test_greedy_seeded_column_generation_reaches_the_full_lp() -> None:
    p = generate(40, 1200, seed=5)
    of, wl, _, classes, pairs = _parts(p)
    backend = get_backend("ortools")
    x = greedy_fill(p, of, wl, classes, pairs, of.price[pairs.o] + pairs.egress)
    assert x is not None
    full = backend.solve_lp(AllocationModel(p, of, wl, classes, pairs).build(), time_limit=60)
    for seed in (x > 0, None):
        _, _, lp, active, rc, converged = lazy.solve_lp_lazy(
            p, of, wl, classes, pairs, backend, deadline=np.inf, must=np.zeros(pairs.n, dtype=bool), seed=seed)
        assert converged and lp is not None and lp.objective is not None and full.objective is not None
        assert lp.objective == pytest.approx(full.objective, rel=1e-7, abs=1e-7)
        assert np.all(rc[~active] >= -1e-6)


def test_pricer_matches_the_reduced_costs_of_the_full_model() -> None:
    p = generate(25, 600, seed=9)
    of, wl, _, classes, pairs = _parts(p)
    layout = AllocationModel(p, of, wl, classes, pairs)
    model = layout.build()
    lp = get_backend("ortools").solve_lp(model, time_limit=60)
    costs = lazy.pair_costs(p, of, pairs)
    assert any(g.kind == "cut" for g in model.groups)  # the valid inequalities are priced too
    rc = lazy.Pricer(p, of, wl, classes, pairs, costs).reduced_costs(layout, model, lp.duals)
    expected = model.c[: model.n_x] - model.A[:, : model.n_x].T @ lp.duals
    assert np.allclose(rc, expected, atol=1e-7)


def _lazy_everywhere(monkeypatch: Any, *, fleet: bool) -> None:
    monkeypatch.setattr(lazy, "LAZY_MIN_PAIRS", 0)
    monkeypatch.setattr(lazy, "FLEET_MIN_PAIRS", 0 if fleet else 10**12)


@pytest.mark.parametrize("fleet", [False, True], ids=["lazy", "lazy-fleet"])
@SETTINGS
@given(p=problems())
def test_lazy_path_returns_valid_plans_and_the_exact_optimum(fleet: bool, p: Problem) -> None:
    with pytest.MonkeyPatch.context() as mp:
        _lazy_everywhere(mp, fleet=fleet)
        sol = solve_here(p, SolveConfig(**EXACT))
    assert validate(p, sol) == []
    exact = solve_here(p, SolveConfig(**EXACT))
    assert (sol.status == "infeasible") == (exact.status == "infeasible")
    if sol.status == "optimal" and exact.status == "optimal":
        assert sol.stats.objective == pytest.approx(exact.stats.objective, rel=1e-6, abs=1e-6)
    if sol.stats.best_bound is not None and exact.status == "optimal" and exact.stats.objective is not None:
        scale = 1e-6 * max(1.0, abs(exact.stats.objective))
        assert sol.stats.best_bound <= exact.stats.objective + scale


def test_batch_improvement_keeps_the_plan_feasible_and_never_dearer() -> None:
    layout, model, lp, start = _greedy_fleet(4)
    better = improve_in_batches(model, layout, lp, start, get_backend("ortools"), deadline=np.inf, threads=1,
                                batch_columns=300)
    assert model.violation(better) <= 1e-6
    assert np.all(better[: model.n_x] == np.round(better[: model.n_x]))
    assert lp.objective is not None
    assert lp.objective - 1e-6 <= model.objective(better) <= model.objective(start) + 1e-9
