"""The tightened formulation (rounded demand bounds and ``cut`` rows, optimizer.cuts.WorkloadCuts):
every cut holds at every integer point, the integer optimum is unchanged, the LP bound only rises,
and lazy pricing computes the same reduced costs as the matrix."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import lazy
from optimizer.backends import get_backend
from optimizer.cuts import WorkloadCuts
from optimizer.model import AllocationModel, MatrixModel
from optimizer.schemas import Offer, Problem, Workload
from optimizer.synthetic import generate
from optimizer.tables import offer_table, workload_table
from tests.optimizer.helpers import model_parts
from tests.optimizer.test_properties import SETTINGS, problems


def _layouts(p: Problem) -> tuple[AllocationModel, MatrixModel, AllocationModel, MatrixModel]:
    of, wl, _, classes, pairs = model_parts(p)
    plain = AllocationModel(p, of, wl, classes, pairs, tighten=False)
    tight = AllocationModel(p, of, wl, classes, pairs, tighten=True)
    return plain, plain.build(), tight, tight.build()


@st.composite
def covers(draw: Any) -> tuple[Problem, list[tuple[int, bool]]]:
    """One workload and up to four instance kinds (GPUs per instance, on-demand?)."""
    node = draw(st.sampled_from([1, 1, 2, 4]))
    lo = draw(st.integers(1, 20))
    inference = draw(st.booleans())
    kinds = draw(st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 6, 8, 16]), st.booleans()), min_size=1, max_size=4,
                          unique=True))
    offers = [Offer(id=f"o{i}", provider="p", region="r", gpu_model="A100", gpus_per_instance=g,
                    vram_gb_per_gpu=80.0, spot=not od, price_per_hour=1.0,
                    interruption_rate_per_hour=None if od else 0.01) for i, (g, od) in enumerate(kinds)]
    w = Workload(id="w", gpus_min=lo, gpus_per_node=node, spot_tolerant=True,
                 workload_type="inference" if inference else "batch")
    phi = draw(st.sampled_from([0.0, 0.3, 0.5, 0.75]))
    return Problem(offers=offers, workloads=[w], inference_on_demand_floor=phi), kinds


@settings(SETTINGS, max_examples=200)
@given(covers())
def test_every_cut_holds_at_every_integer_point(case: tuple[Problem, list[tuple[int, bool]]]) -> None:
    """Enumerate every integer point of small boxes: each one meeting the demand minimum and the
    on-demand floor meets every cut row and the rounded demand minimum."""
    p, kinds = case
    of = offer_table(p)
    wl = workload_table(p, of)
    cuts = WorkloadCuts.of(p, of, wl)
    node = int(wl.node[0])
    u = np.array([(g // node) * node for g, _ in kinds], dtype=np.float64)
    od = np.array([o for _, o in kinds])
    usable = u > 0
    u, od = u[usable], od[usable]
    if len(u) == 0:
        return
    r, pair, coef = cuts.entries(np.zeros(len(u), dtype=np.int64), u, od)
    A = np.zeros((cuts.n, len(u)))
    np.add.at(A, (r, pair), coef)
    phi = p.inference_on_demand_floor if wl.inference[0] else 0.0
    top = int(np.ceil(wl.lo[0] / u.min())) + 1
    checked = 0
    for x in itertools.product(range(top + 1), repeat=len(u)):
        xv = np.array(x, dtype=np.float64)
        total = float(u @ xv)
        if total < wl.lo[0] or float((u * od) @ xv) < phi * total - 1e-9:
            continue
        checked += 1
        assert total >= cuts.lo[0]
        assert np.all(A @ xv >= cuts.rhs - 1e-9), (x, A, cuts.rhs)
    assert checked > 0 or not od.any() and phi > 0


@st.composite
def roomy_problems(draw: Any) -> Problem:
    """Mostly feasible problems where cuts bite: odd demands, big boxes, an on-demand floor."""
    n_o = draw(st.integers(2, 6))
    offers = []
    for i in range(n_o):
        spot = draw(st.booleans())
        offers.append(Offer(id=f"o{i}", provider=draw(st.sampled_from(["a", "b", "c"])), region="r",
                            gpu_model="A100", gpus_per_instance=draw(st.sampled_from([1, 2, 4, 8])),
                            vram_gb_per_gpu=80.0, spot=spot, price_per_hour=draw(st.integers(5, 200)) / 10,
                            available_instances=draw(st.one_of(st.none(), st.integers(1, 4))),
                            interruption_rate_per_hour=0.02 if spot else None))
    workloads = []
    for i in range(draw(st.integers(1, 3))):
        node = draw(st.sampled_from([1, 1, 2, 4]))
        workloads.append(Workload(id=f"w{i}", gpus_min=draw(st.integers(1, 13)), gpus_per_node=node,
                                  workload_type=draw(st.sampled_from(["training", "inference", "batch"])),
                                  spot_tolerant=draw(st.booleans())))
    return Problem(offers=offers, workloads=workloads, inference_on_demand_floor=draw(st.sampled_from([0.0, 0.5])),
                   max_provider_share=draw(st.sampled_from([None, 0.75])))


def _exact(backend_name: str, model: MatrixModel) -> tuple[str, float | None, np.ndarray | None]:
    res = get_backend(backend_name).solve_mip(model, time_limit=30, relative_gap=1e-9, threads=1)
    return res.status, res.objective, res.x


@settings(SETTINGS, max_examples=60)
@given(st.one_of(problems(), roomy_problems()))
def test_integer_optimum_is_unchanged_and_lp_bound_only_rises(p: Problem) -> None:
    plain, pm, tight, tm = _layouts(p)
    s_plain, o_plain, x_plain = _exact("ortools", pm)
    s_tight, o_tight, _ = _exact("ortools", tm)
    assert (s_plain == "infeasible") == (s_tight == "infeasible")
    if s_plain != "optimal":
        return
    assert s_tight == "optimal" and o_plain is not None and o_tight is not None
    assert abs(o_plain - o_tight) <= 1e-6 * max(1.0, abs(o_plain))
    # The plain optimum is a point of the tightened model (the cuts remove no integer point).
    assert x_plain is not None
    assert tm.violation(tight.complete(np.round(x_plain[: pm.n_x]), tm.shape[1])) <= 1e-6
    backend = get_backend("ortools")
    lp_plain = backend.solve_lp(pm, time_limit=30).objective
    lp_tight = backend.solve_lp(tm, time_limit=30).objective
    assert lp_plain is not None and lp_tight is not None
    assert lp_plain - 1e-6 <= lp_tight <= o_plain + 1e-6


def test_half_a_box_no_longer_covers_a_small_demand() -> None:
    """4 GPUs wanted, only 8-GPU boxes: the plain LP buys half a box, the tightened one a whole."""
    offers = [Offer(id="big", provider="p", region="r", gpu_model="A100", gpus_per_instance=8, vram_gb_per_gpu=80.0,
                    price_per_hour=16.0)]
    p = Problem(offers=offers, workloads=[Workload(id="w", gpus_min=4)])
    _, pm, _, tm = _layouts(p)
    backend = get_backend("ortools")
    assert backend.solve_lp(pm, time_limit=10).objective == 8.0
    assert backend.solve_lp(tm, time_limit=10).objective == 16.0


def test_inference_floor_needs_a_whole_on_demand_instance() -> None:
    """3 GPUs with a 50% on-demand floor: at least 2 on-demand GPUs, so a 2-GPU on-demand box."""
    offers = [
        Offer(id="od2", provider="p", region="r", gpu_model="A100", gpus_per_instance=2, vram_gb_per_gpu=80.0,
              price_per_hour=4.0),
        Offer(id="spot1", provider="p", region="r", gpu_model="A100", gpus_per_instance=1, vram_gb_per_gpu=80.0,
              spot=True, price_per_hour=0.5, interruption_rate_per_hour=0.01),
    ]
    p = Problem(offers=offers, workloads=[Workload(id="w", gpus_min=3, workload_type="inference", spot_tolerant=True)],
                inference_on_demand_floor=0.5)
    _, pm, _, tm = _layouts(p)
    backend = get_backend("ortools")
    plain = backend.solve_lp(pm, time_limit=10).objective
    tight = backend.solve_lp(tm, time_limit=10).objective
    assert plain is not None and tight is not None
    assert plain < 4.0 + 0.5 - 1e-6  # 0.75 of the od box + 1.5 spot GPUs
    assert abs(tight - 4.5) <= 1e-6  # the integer optimum: one od box and one spot GPU


def test_lazy_pricing_matches_the_matrix_with_cut_rows() -> None:
    p = generate(30, 600, seed=3)
    _, _, tight, tm = _layouts(p)
    assert any(g.kind == "cut" for g in tm.groups)
    lp = get_backend("ortools").solve_lp(tm, time_limit=30)
    costs = lazy.pair_costs(p, tight.offers, tight.pairs)
    rc = lazy.reduced_costs(tight, tm, lp.duals, tight.pairs, costs)
    direct = tm.c[: tm.n_x] - tm.A.T.tocsr()[: tm.n_x] @ lp.duals
    assert np.allclose(rc, direct, atol=1e-7)


def test_multi_period_cuts_keep_the_optimum() -> None:
    """Cut rows are repeated per period; the integer optimum over all periods is unchanged."""
    for seed in (1, 3, 4):
        p = generate(6, 120, seed=seed, periods=3, budget_factor=None)
        _, pm, _, tm = _layouts(p)
        n_cut = sum(g.stop - g.start for g in tm.groups if g.kind == "cut")
        assert n_cut > 0 and n_cut % 3 == 0
        s_plain, o_plain, _ = _exact("ortools", pm)
        s_tight, o_tight, _ = _exact("ortools", tm)
        assert s_plain == s_tight == "optimal" and o_plain is not None and o_tight is not None
        assert abs(o_plain - o_tight) <= 1e-6 * max(1.0, abs(o_plain))


def test_binding_cut_rows_are_reported_in_words() -> None:
    """A cut row carries part of its workload's demand price, so it is listed with what it means."""
    from optimizer import SolveConfig, solve

    p = generate(12, 200, seed=2)
    sol = solve(p, SolveConfig(time_limit_s=20, compute_baselines=False, isolate="never"))
    cuts = [b for b in sol.binding_constraints if b.name.startswith("cut[")]
    assert cuts and all(b.shadow_price != 0 for b in cuts)
    assert all("valid inequality" in b.description and b.name[4:-1] in b.description for b in cuts)
