"""Multi-GPU hosts: a node's free GPUs of one model are offered as instances of every size 1..8 (then
multiples of 8), all sizes of one label one capacity pool of its free GPUs, a workload needing 4 GPUs on
one node is placed on a 4-GPU host by a real solve, no solve rents more of a host than is free, and the
local provisioner places exactly the sized offer's GPUs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.models_nodes import Placement
from cloudarb.db.types import utcnow
from cloudarb.deploy.errors import InvalidLaunch
from cloudarb.deploy.providers.base import LaunchSpec
from cloudarb.deploy.providers.local import LocalProvisioner
from cloudarb.nodes.market import instance_type, parse_instance_type, parse_sized, sizes
from cloudarb.optimize.offers import capacity_pools
from cloudarb.optimize.problem import build_problem
from cloudarb.schemas import OptimizeRequest
from optimizer import solve
from optimizer.schemas import SolveConfig
from tests.nodes.helpers import place, register_node
from tests.support import Tenant

MODEL = "H100 SXM"


def local_rows(ctx: Context, node: str) -> dict[str, Offer]:
    with ctx.db.session() as session:
        rows = session.scalars(select(Offer).where(Offer.provider == "local", Offer.seller == node)).all()
        for row in rows:
            session.expunge(row)
        return {r.instance_type: r for r in rows}


def offered(ctx: Context, node: str) -> dict[str, int | None]:
    return {key: row.available_instances for key, row in local_rows(ctx, node).items()}


def launch(row_type: str, count: int, key: str, node: str = "box4") -> LaunchSpec:
    return LaunchSpec(key=key, instance_type=row_type, region=node, gpu_model=MODEL, gpu_count=count, spot=False,
                      price_per_hour=1.5 * count, expires_at=datetime.now(UTC) + timedelta(hours=2),
                      image="localhost/cloudarb-test:1")


def test_sizes_and_instance_types_round_trip() -> None:
    assert sizes(0) == [] and sizes(1) == [1] and sizes(3) == [1, 2, 3] and sizes(6) == [1, 2, 3, 4, 5, 6]
    assert sizes(12) == list(range(1, 9)) and sizes(20) == [*range(1, 9), 16]
    assert sizes(64)[-3:] == [48, 56, 64] and len(sizes(64)) == 15 and sizes(200) == sizes(64)
    assert instance_type("n", MODEL) == "n/H100 SXM" and instance_type("n", MODEL, 4) == "n/H100 SXM/x4"
    assert parse_sized("n/H100 SXM/x4") == ("n", MODEL, 4)
    assert parse_sized("n/H100 SXM") == ("n", MODEL, None)  # the old key still works
    assert parse_sized("H100 SXM") == ("", MODEL, None)
    assert parse_sized("n/weird/xl") == ("n", "weird/xl", None)
    assert parse_instance_type("n/H100 SXM MIG 3g.40gb/x2") == ("n", "H100 SXM MIG 3g.40gb")


def test_a_four_gpu_host_offers_sizes_1_to_4_in_one_pool(ctx: Context, tenant: Tenant) -> None:
    register_node(ctx, tenant.org_id, name="box4", gpus=4, price=1.5)
    assert offered(ctx, "box4") == {"box4/H100 SXM": 4, "box4/H100 SXM/x2": 2, "box4/H100 SXM/x3": 1,
                                    "box4/H100 SXM/x4": 1}
    rows = local_rows(ctx, "box4")
    four = rows["box4/H100 SXM/x4"]
    assert (four.gpu_count, four.price_per_hour, four.price_per_gpu_hour) == (4, 6.0, 1.5)
    assert four.vram_gb == 80.0 and four.gpu_model == MODEL
    assert len({r.offer_key for r in rows.values()}) == 4
    register_node(ctx, tenant.org_id, name="box3", gpus=3)
    assert offered(ctx, "box3") == {"box3/H100 SXM": 3, "box3/H100 SXM/x2": 1, "box3/H100 SXM/x3": 1}
    # the optimize feature reads the market's instance types back as one pool per node and label
    pool_of, pools = capacity_pools([*local_rows(ctx, "box4").values(), *local_rows(ctx, "box3").values()])
    assert pools == {"local:box4/H100 SXM": 4, "local:box3/H100 SXM": 3}
    assert {pool_of[r.offer_key] for r in rows.values()} == {"local:box4/H100 SXM"}
    assert all(parse_sized(r.instance_type)[:2] == ("box4", MODEL) for r in rows.values())


def test_mig_slices_stay_single(ctx: Context, tenant: Tenant) -> None:
    register_node(ctx, tenant.org_id, name="migbox", gpus=2, mig=True, price=3.5)
    assert offered(ctx, "migbox") == {"migbox/H100 SXM MIG 3g.40gb": 4}


def test_after_a_two_gpu_placement_only_sizes_1_and_2_remain(ctx: Context, tenant: Tenant) -> None:
    node_id = register_node(ctx, tenant.org_id, name="box4", gpus=4).node_id
    _, state = place(ctx, tenant.org_id, node_id, "k-two", count=2)
    assert state == "assigned"
    assert offered(ctx, "box4") == {"box4/H100 SXM": 2, "box4/H100 SXM/x2": 1}
    assert capacity_pools(local_rows(ctx, "box4").values())[1] == {"local:box4/H100 SXM": 2}
    place(ctx, tenant.org_id, node_id, "k-one", count=1)
    assert offered(ctx, "box4") == {"box4/H100 SXM": 1}


def test_a_solve_places_a_four_gpu_workload_on_the_host(ctx: Context, tenant: Tenant) -> None:
    register_node(ctx, tenant.org_id, name="box4", gpus=4, price=1.5)
    with ctx.db.session() as session:  # a rented 4-GPU machine, dearer than the team's own
        session.add(Offer(offer_key="rented-4x", provider="aws", region="us-east-1", zone="",
                          instance_type="p5.4x", gpu_model=MODEL, gpu_count=4, vram_gb=80, vcpus=96, ram_gb=1024,
                          spot=False, price_per_hour=20.0, price_per_gpu_hour=5.0, capacity="available",
                          available_instances=4, observed_at=utcnow()))
    with ctx.db.session() as session:
        rows = list(session.scalars(select(Offer)).all())
        req = OptimizeRequest.model_validate({"workloads": [
            {"id": "train", "gpus_min": 4, "gpus_per_node": 4, "min_vram_gb": 80, "workload_type": "training"}]})
        problem = build_problem(req, rows, settings=ctx.settings)
        by_key = {r.offer_key: (r.instance_type, r.gpu_count, r.price_per_hour) for r in rows}
    solution = solve(problem, SolveConfig(time_limit_s=10, isolate="never"))
    assert solution.status in ("optimal", "feasible"), solution.infeasibility_reason
    assert [(a.workload_id, a.instances) for a in solution.allocations] == [("train", 1)]
    chosen_type, chosen_gpus, chosen_price = by_key[solution.allocations[0].offer_id]
    assert (chosen_type, chosen_gpus, chosen_price) == ("box4/H100 SXM/x4", 4, 6.0)
    # the deploy core launches the chosen offer: the provisioner places exactly its 4 GPUs
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    remote = prov.create(launch(chosen_type, chosen_gpus, "cloudarb-t-train-0"))
    with ctx.db.session() as session:
        p = session.get(Placement, remote.provider_id)
        assert p is not None
        assert (p.state, p.gpu_count) == ("assigned", 4)
        assert len(set(p.gpu_uuids)) == 4
    assert offered(ctx, "box4") == {}


def test_a_solve_never_rents_more_of_a_host_than_is_free(ctx: Context, tenant: Tenant) -> None:
    """Eight GPUs wanted, a 4-GPU host far cheaper than the rented ones: its sizes 1..4 together state 15
    GPUs, but the pool holds 4, so 4 come from the host and 4 are rented."""
    register_node(ctx, tenant.org_id, name="box4", gpus=4, price=1.5)
    with ctx.db.session() as session:
        session.add(Offer(offer_key="rented-1x", provider="aws", region="us-east-1", zone="",
                          instance_type="p5.1x", gpu_model=MODEL, gpu_count=1, vram_gb=80, vcpus=24, ram_gb=256,
                          spot=False, price_per_hour=5.0, price_per_gpu_hour=5.0, capacity="available",
                          available_instances=16, observed_at=utcnow()))
    with ctx.db.session() as session:
        rows = list(session.scalars(select(Offer)).all())
        req = OptimizeRequest.model_validate({"workloads": [
            {"id": "batch", "gpus_min": 8, "workload_type": "batch", "placement": "any"}]})
        problem = build_problem(req, rows, settings=ctx.settings)
    assert problem.capacity_pools == {"local:box4/H100 SXM": 4}
    for backend in ("ortools", "pulp"):
        solution = solve(problem, SolveConfig(backend=backend, time_limit_s=10, isolate="never"))
        assert solution.status == "optimal", solution.infeasibility_reason
        on_host = sum(a.gpus for a in solution.allocations if a.provider == "local:box4")
        rented = sum(a.gpus for a in solution.allocations if a.provider == "aws")
        assert (on_host, rented) == (4, 4), solution.allocations
    unpooled = problem.model_copy(update={
        "capacity_pools": {}, "offers": [o.model_copy(update={"capacity_pool": None}) for o in problem.offers]})
    overbooked = solve(unpooled, SolveConfig(time_limit_s=10, isolate="never"))
    assert sum(a.gpus for a in overbooked.allocations if a.provider == "local:box4") == 8  # what the pool prevents


def test_the_provisioner_reads_the_size_and_keeps_old_keys(ctx: Context, tenant: Tenant) -> None:
    register_node(ctx, tenant.org_id, name="box4", gpus=4)
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with pytest.raises(InvalidLaunch, match="2 GPU"):
        prov.create(launch("box4/H100 SXM/x2", 4, "cloudarb-t-bad"))
    sized = prov.create(launch("box4/H100 SXM/x2", 2, "cloudarb-t-two"))
    old = prov.create(launch("box4/H100 SXM", 1, "cloudarb-t-one"))
    with ctx.db.session() as session:
        two, one = session.get(Placement, sized.provider_id), session.get(Placement, old.provider_id)
        assert two is not None and one is not None
        assert (two.gpu_count, len(set(two.gpu_uuids)), one.gpu_count, len(one.gpu_uuids)) == (2, 2, 1, 1)
        assert not set(two.gpu_uuids) & set(one.gpu_uuids)
    assert offered(ctx, "box4") == {"box4/H100 SXM": 1}
