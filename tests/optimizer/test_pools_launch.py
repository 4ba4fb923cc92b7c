"""Capacity pools shared across offers, and launch success as an input of the plan's expected cost."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import solve
from optimizer.backends import get_backend
from optimizer.baselines import greedy_cheapest, skypilot_rule
from optimizer.greedy import greedy_fill
from optimizer.lazy import Pricer, pair_costs, reduced_costs
from optimizer.model import AllocationModel
from optimizer.schemas import Offer, Problem, Solution, SolveConfig, Workload
from optimizer.tables import CompatLookup, offer_table, workload_table
from optimizer.validate import validate
from tests.optimizer.helpers import by_offer, model_parts, offer, problem, workload

EXACT = dict(time_limit_s=20, relative_gap=1e-9, compute_baselines=False)
POOL = "local:ws1/A100"


def _host(*, pooled: bool, price: float = 1.0, free: int = 4) -> list[Offer]:
    """A workstation's free A100s offered in every size 1..free, as ``cloudarb.nodes.market`` offers them."""
    return [
        offer(f"ws1/A100/x{size}", "local:ws1", gpus=size, price=price * size, available_instances=free // size,
              instance_type=f"ws1/A100/x{size}", capacity_pool=POOL if pooled else None)
        for size in range(1, free + 1)
    ]


def _cloud(price: float = 3.0) -> Offer:
    return offer("aws-a100", "aws", gpus=1, price=price, available_instances=16)


def _pooled_problem(pooled: bool, **kw: Any) -> Problem:
    return problem(_host(pooled=pooled) + [_cloud()], [workload("train", 8, placement="any")],
                   capacity_pools={POOL: 4} if pooled else {}, **kw)


def _host_gpus(sol: Solution) -> int:
    return sum(line.gpus for line in sol.allocations if line.provider == "local:ws1")


@pytest.mark.parametrize("backend", ["ortools", "pulp"])
def test_without_the_pool_the_host_is_overbooked_and_with_it_never(backend: str) -> None:
    free = solve(_pooled_problem(False), SolveConfig(backend=backend, **EXACT))
    assert free.status == "optimal"
    assert _host_gpus(free) == 8  # two sizes of one 4-GPU host: twice its GPUs
    pooled_problem = _pooled_problem(True)
    pooled = solve(pooled_problem, SolveConfig(backend=backend, **EXACT))
    assert pooled.status == "optimal"
    assert _host_gpus(pooled) == 4
    assert by_offer(pooled).get("aws-a100") == 4
    assert pooled.totals is not None and pooled.totals.cost_per_hour == pytest.approx(4 * 1.0 + 4 * 3.0)
    assert validate(pooled_problem, pooled) == []
    assert any(b.name == f"pool[{POOL}]" for b in pooled.binding_constraints)


def test_validate_rejects_a_plan_that_overbooks_a_pool() -> None:
    overbooked = solve(_pooled_problem(False), SolveConfig(**EXACT))
    broken = validate(_pooled_problem(True), overbooked)
    assert [v.constraint for v in broken] == ["capacity_pool"]
    assert "8 GPUs taken > 4" in broken[0].message


def test_an_offer_naming_an_unknown_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity pools missing"):
        problem(_host(pooled=True), [workload("w", 1)])


def test_pool_caps_each_offer_at_the_whole_instances_it_holds() -> None:
    p = problem(_host(pooled=True, free=6), [workload("w", 1)], capacity_pools={POOL: 6})
    of = offer_table(p)
    assert of.cap.tolist() == [6, 3, 2, 1, 1, 1]  # x4, x5, x6: one each (6 // size)
    assert of.pools == [POOL] and of.pool_gpus.tolist() == [6.0]


def test_presolve_merges_identical_offers_only_within_one_pool() -> None:
    twins = [offer(f"h{i}", "local:h", gpus=2, price=1.0, available_instances=2, capacity_pool=f"pool{i}")
             for i in range(2)]
    p = problem(twins, [workload("w", 8, placement="any")], capacity_pools={"pool0": 2, "pool1": 4})
    _, _, _, classes, _ = model_parts(p)
    assert classes.n == 2
    sol = solve(p, SolveConfig(**EXACT))
    assert sol.status == "infeasible"  # 2 + 4 GPUs < 8 although the two offers state 8
    assert "needs 8 GPUs" in (sol.infeasibility_reason or "")


def test_greedy_and_baselines_respect_pools() -> None:
    p = _pooled_problem(True)
    of, wl, lookup, classes, pairs = model_parts(p)
    x = greedy_fill(p, of, wl, classes, pairs, of.price[pairs.o] + pairs.extra)
    assert x is not None
    pooled = of.pool[pairs.o] >= 0
    assert float(pairs.g[pooled] @ x[pooled]) <= 4
    for rule in (greedy_cheapest, skypilot_rule):
        plan = rule(lookup)
        gpus = sum(n * int(of.gpus[o]) for _, o, n in plan.lines if of.pool[o] >= 0)
        assert gpus <= 4, rule.__name__
    sol = solve(p, SolveConfig(time_limit_s=20))
    assert all(s.honours_constraints for s in sol.savings if s.baseline_cost_per_hour is not None)


def test_pool_rows_hold_in_every_period() -> None:
    host = [o.model_copy(update={"price_per_period": [o.price_per_hour, 5 * o.price_per_hour]})
            for o in _host(pooled=True)]
    cloud = _cloud().model_copy(update={"price_per_period": [3.0, 3.0]})
    p = problem(host + [cloud], [workload("train", 6, placement="any")], capacity_pools={POOL: 4})
    sol = solve(p, SolveConfig(**EXACT))
    assert sol.status == "optimal" and validate(p, sol) == []
    for t in (0, 1):
        on_host = sum(line.gpus for line in sol.allocations if line.period == t and line.provider == "local:ws1")
        assert on_host == (4 if t == 0 else 0)


def test_lazy_pricing_counts_the_pool_rows() -> None:
    """The fleet-scale pricer and the reference formula give every pair the reduced cost the model's own
    LP gives its columns, pool rows included."""
    rng = np.random.default_rng(3)
    offers = [offer(f"h{h}/x{s}", f"local:h{h}", gpus=s, price=float(s) * (0.5 + h / 10), available_instances=4 // s,
                    capacity_pool=f"h{h}") for h in range(3) for s in (1, 2, 4)]
    offers += [offer(f"c{i}", "aws", gpus=1, price=float(rng.uniform(1.0, 2.0))) for i in range(4)]
    p = problem(offers, [workload(f"w{i}", 4 + 2 * i, placement="any") for i in range(3)],
                capacity_pools={f"h{h}": 4 for h in range(3)})
    of, wl, _, classes, pairs = model_parts(p)
    layout = AllocationModel(p, of, wl, classes, pairs)
    model = layout.build()
    assert any(g.kind == "pool" for g in model.groups)
    lp = get_backend("ortools").solve_lp(model, time_limit=30)
    assert lp.status == "optimal"
    costs = pair_costs(p, of, pairs)
    ref = reduced_costs(layout, model, lp.duals, pairs, costs)
    fast = Pricer(p, of, wl, classes, pairs, costs).reduced_costs(layout, model, lp.duals)
    assert np.allclose(ref, lp.reduced_costs[: model.n_x], atol=1e-7)
    assert np.allclose(fast, ref, atol=1e-9)


# ---------------------------------------------------------------- launch success


def _spot_vs_on_demand(p: float | None, **kw: Any) -> Problem:
    on_demand = offer("od", "aws", gpus=8, price=10.0)
    spot = offer("spot", "aws", gpus=8, price=7.0, spot=True, interruption_rate_per_hour=0.05,
                 launch_success_probability=p)
    return problem([on_demand, spot], [workload("train", 8, gpus_per_node=8, spot_tolerant=True)], **kw)


@pytest.mark.parametrize("backend", ["ortools", "pulp"])
def test_cheap_spot_that_rarely_launches_loses_to_on_demand(backend: str) -> None:
    rare = solve(_spot_vs_on_demand(0.17), SolveConfig(backend=backend, **EXACT))
    assert by_offer(rare) == {"od": 1}
    often = solve(_spot_vs_on_demand(0.95), SolveConfig(backend=backend, **EXACT))
    assert by_offer(often) == {"spot": 1}
    line = often.allocations[0]
    assert line.launch_success_probability == 0.95
    # Paid: the spot price; expected: plus 7 x 1 h x (0.05 / 0.95) x (1/1 h + 0.05/h) of refused launches.
    assert often.totals is not None and often.totals.cost_per_hour == pytest.approx(7.0)
    expected = 7.0 * (0.05 / 0.95) * (1.0 + 0.05)
    assert often.risk.expected_launch_cost_per_hour == pytest.approx(expected)
    assert often.stats.objective == pytest.approx(7.0 + expected)
    for sol, p in ((rare, _spot_vs_on_demand(0.17)), (often, _spot_vs_on_demand(0.95))):
        assert validate(p, sol) == []


def test_launch_cost_fades_over_a_long_horizon_without_interruptions() -> None:
    """One launch per horizon: 4.9 refused hours weigh little against a month of 30% savings, unless every
    interruption asks for a relaunch (0.3 an hour: what traced p3.2xlarge spot instances saw)."""
    def at(rate: float) -> Problem:
        p = _spot_vs_on_demand(0.17, horizon_hours=720.0)
        return p.model_copy(update={"offers": [o.model_copy(update={"interruption_rate_per_hour": rate if o.spot else None})
                                               for o in p.offers]})
    assert by_offer(solve(at(0.0), SolveConfig(**EXACT))) == {"spot": 1}
    assert by_offer(solve(at(0.3), SolveConfig(**EXACT))) == {"od": 1}


def test_offers_below_the_launch_floor_are_left_out_with_the_reason() -> None:
    p = _spot_vs_on_demand(0.5, min_launch_success_probability=0.6)
    only_spot = p.model_copy(update={"offers": [o for o in p.offers if o.spot]})
    sol = solve(only_spot, SolveConfig(**EXACT))
    assert sol.status == "infeasible"
    assert "launch success probability at least 0.6" in (sol.infeasibility_reason or "")
    assert by_offer(solve(p, SolveConfig(**EXACT))) == {"od": 1}
    # validate refuses a plan on such an offer
    chosen = solve(_spot_vs_on_demand(0.5, launch_retry_hours=0.0), SolveConfig(**EXACT))  # refusals free
    assert by_offer(chosen) == {"spot": 1}
    assert [v.constraint for v in validate(p, chosen)] == ["compatibility"]


def test_a_zero_launch_probability_never_launches() -> None:
    p = _spot_vs_on_demand(0.0)
    assert by_offer(solve(p, SolveConfig(**EXACT))) == {"od": 1}


# ---------------------------------------------------------------- properties

PROPS = settings(max_examples=20, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def pooled_problems(draw: Any) -> Problem:
    n_hosts = draw(st.integers(1, 2))
    offers: list[Offer] = []
    pools: dict[str, int] = {}
    for h in range(n_hosts):
        free = draw(st.integers(1, 6))
        pools[f"h{h}"] = free
        for size in draw(st.lists(st.integers(1, free), min_size=1, max_size=4, unique=True)):
            offers.append(offer(f"h{h}x{size}", f"local:h{h}", gpus=size, price=size * draw(st.integers(2, 8)) / 4,
                                available_instances=draw(st.one_of(st.none(), st.just(free // size))),
                                capacity_pool=f"h{h}"))
    for i in range(draw(st.integers(1, 3))):
        spot = draw(st.booleans())
        offers.append(offer(f"c{i}", draw(st.sampled_from(["aws", "gcp"])), gpus=draw(st.sampled_from([1, 2, 4])),
                            price=draw(st.integers(4, 40)) / 4, spot=spot,
                            available_instances=draw(st.integers(1, 4)),
                            launch_success_probability=draw(st.sampled_from([None, 0.2, 0.9])) if spot else None))
    works = [Workload(id=f"w{j}", gpus_min=draw(st.integers(1, 8)), spot_tolerant=draw(st.booleans()),
                      placement=draw(st.sampled_from(["any", "same_region"])),
                      gpus_per_node=draw(st.sampled_from([1, 1, 2])))
             for j in range(draw(st.integers(1, 2)))]
    return Problem(offers=offers, workloads=works, capacity_pools=pools,
                   min_launch_success_probability=draw(st.sampled_from([0.0, 0.5])),
                   max_provider_share=draw(st.one_of(st.none(), st.just(0.75))))


@PROPS
@given(pooled_problems())
def test_pooled_solutions_validate_and_presolve_keeps_the_optimum(p: Problem) -> None:
    a = solve(p, SolveConfig(**EXACT))
    assert validate(p, a) == []
    b = solve(p, SolveConfig(presolve=False, **EXACT))
    assert (a.status == "infeasible") == (b.status == "infeasible")
    if a.status == "optimal" and b.status == "optimal":
        assert a.stats.objective == pytest.approx(b.stats.objective, rel=1e-6, abs=1e-6)
    if a.status == "infeasible":
        assert a.infeasibility_reason


@settings(PROPS, max_examples=10)
@given(pooled_problems())
def test_backends_agree_with_pools(p: Problem) -> None:
    a = solve(p, SolveConfig(backend="ortools", **EXACT))
    b = solve(p, SolveConfig(backend="pulp", **EXACT))
    assert validate(p, b) == []
    assert (a.status == "infeasible") == (b.status == "infeasible")
    if a.status == "optimal" and b.status == "optimal":
        assert a.stats.objective == pytest.approx(b.stats.objective, rel=1e-6, abs=1e-6)


def test_tables_read_the_launch_probability_and_pools() -> None:
    p = _pooled_problem(True)
    of = offer_table(p)
    wl = workload_table(p, of)
    ok = CompatLookup.build(p, of, wl).block(np.arange(wl.n), np.arange(of.n)).masks["launch"]
    assert ok.all()
    assert of.launch.tolist() == [0.0] * of.n
