"""Whole deploy and teardown sequences on the in-memory provider: failover with re-solving, resumed
jobs, teardown with proof."""

from __future__ import annotations

from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models import Offer, OptimizationRequest
from cloudarb.db.models_deploy import BlockedOffer, DeployAttempt, Deployment
from cloudarb.deploy import run
from cloudarb.deploy import states as st
from tests.deploy.conftest import World, line


def _lambda_offers(ctx: Context, gpu_count: int = 1) -> list[Offer]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Offer).where(Offer.provider == "lambda", Offer.gpu_count == gpu_count,
                                                        Offer.spot.is_(False)).order_by(Offer.price_per_hour)))


def _line_of(offer: Offer, **extra: object) -> object:
    return line(offer_key=offer.offer_key, provider=offer.provider, region=offer.region,
                instance_type=offer.instance_type, gpu_model=offer.gpu_model, gpus_per_instance=offer.gpu_count,
                price_per_hour=offer.price_per_hour, **extra)


def test_a_deployment_runs_every_replica_and_tears_down_with_proof(world: World, ctx: Context) -> None:
    offer = _lambda_offers(ctx)[0]
    dep = world.deployment(_line_of(offer, instances=3))  # type: ignore[arg-type]
    results = run.deploy(world.env, dep.id)
    assert [r.state for r in results] == [st.RUNNING] * 3
    assert len({r.key for r in world.rows(dep.id)}) == 3 and len(world.mem.live()) == 3
    assert run.deploy(world.env, dep.id) == [] or True  # a second run (a retried job) creates nothing more
    assert len(world.mem.ever) == 3
    assert run.teardown(world.env, dep.id, reason="done") == []
    with world.env.db.session() as session:
        ended = session.get(Deployment, dep.id)
        assert ended is not None and ended.status == "ended"
    assert world.mem.live() == []
    world.assert_sound()


def test_no_capacity_blocks_the_offer_and_fails_over_to_the_next_best(world: World, ctx: Context) -> None:
    offers = _lambda_offers(ctx)
    first = offers[0]
    second = next(o for o in offers[1:] if o.gpu_model == first.gpu_model)
    world.mem.faults.no_capacity.add(f"{first.instance_type}@{first.region}")
    dep = world.deployment(_line_of(first))  # type: ignore[arg-type]
    [result] = run.deploy(world.env, dep.id)
    assert result.state == st.RUNNING
    rows = world.rows(dep.id)
    assert [(r.attempt, r.state) for r in rows] == [(0, st.FAILED), (1, st.RUNNING)]
    assert rows[1].offer_key == second.offer_key  # the cheapest offer of the same GPUs left
    with world.env.db.session() as session:
        assert session.get(BlockedOffer, first.offer_key) is not None
        attempts = session.scalars(select(DeployAttempt).order_by(DeployAttempt.id)).all()
    assert [a.outcome for a in attempts] == ["no_capacity", "created"]
    assert "no_capacity" in attempts[0].reason
    world.assert_sound()


def test_failover_stops_after_the_attempt_limit(world: World, ctx: Context) -> None:
    offers = _lambda_offers(ctx)
    world.mem.faults.no_capacity.update(o.instance_type for o in offers)
    dep = world.deployment(_line_of(offers[0]))  # type: ignore[arg-type]
    [result] = run.deploy(world.env, dep.id)
    assert result.state == st.FAILED
    assert len(world.rows(dep.id)) <= world.env.settings.deploy_failover_attempts
    with world.env.db.session() as session:
        failed = session.get(Deployment, dep.id)
        assert failed is not None and failed.status == "failed"
    assert world.mem.ever == {}


def test_a_job_resumed_after_a_crash_mid_create_adopts_instead_of_creating_again(world: World, ctx: Context) -> None:
    offer = _lambda_offers(ctx)[0]
    dep = world.deployment(_line_of(offer))  # type: ignore[arg-type]
    [row] = world.intents(dep)
    with world.env.db.session() as session:  # the first job died after the provider created the instance
        st.move(session, row.id, to=st.CREATING, when=(st.REQUESTED,), now=world.clock())
    world.mem.leak(row.key)
    [result] = run.deploy(world.env, dep.id)  # within the claim timeout: another worker may be on it
    assert result.state == st.CREATING and world.mem.calls == []
    world.clock.advance(world.env.settings.deploy_claim_timeout_s)
    [result] = run.deploy(world.env, dep.id)
    assert result.state == st.RUNNING and len(world.mem.ever) == 1
    world.assert_sound()


def test_failover_of_an_optimization_line_re_solves_it_with_the_optimizer(world: World, ctx: Context) -> None:
    from cloudarb.deploy.schemas import Plan
    from cloudarb.deploy.submit import DeployOrder, plan_from_optimization
    from cloudarb.optimize.submit import submit_optimization
    from cloudarb.schemas import OptimizeRequest
    from tests.support import small_request, wait_for

    request = OptimizeRequest.model_validate(small_request(
        workloads=[{"id": "serve", "gpus_min": 2, "min_vram_gb": 24, "workload_type": "inference"}],
        offers={"providers": ["lambda"]}))
    done = submit_optimization(ctx, organization_id=world.org_id, request=request, actor="test")

    def finished() -> bool:
        with ctx.db.session() as session:
            opt = session.get(OptimizationRequest, done.optimization_id)
            return opt is not None and opt.status in ("finished", "failed", "infeasible")

    wait_for(finished, timeout=60)
    with ctx.db.session() as session:
        plan = plan_from_optimization(session, organization_id=world.org_id, optimization_id=done.optimization_id,
                                      lines=None, order=DeployOrder(lifetime_s=3600))
    chosen = plan.lines[0]
    world.mem.faults.no_capacity.add(f"{chosen.instance_type}@{chosen.region}")
    dep = world.deployment(*plan.lines)
    with ctx.db.session() as session:
        row = session.get(Deployment, dep.id)
        assert row is not None
        row.optimization_id = done.optimization_id
    results = run.deploy(world.env, dep.id)
    assert all(r.state == st.RUNNING for r in results), results
    rows = [r for r in world.rows(dep.id) if r.line_index == chosen.index]
    assert rows[0].state == st.FAILED and rows[0].offer_key == chosen.offer_key
    retry = next(r for r in rows if r.attempt == 1)
    assert retry.offer_key != chosen.offer_key and retry.state == st.RUNNING
    assert Plan.model_validate(dep.spec).lines[0].offer_key == chosen.offer_key  # the plan keeps what was chosen
    world.assert_sound()


def test_hooks_are_told_of_each_step_and_a_refusing_deploy_before_hook_stops_it(world: World, ctx: Context) -> None:
    offer = _lambda_offers(ctx)[0]
    calls: list[tuple[str, bool]] = []

    def notify(org: str, event: str, payload: dict[str, object], blocking: bool) -> list[str]:
        assert org == world.org_id and payload["deployment_id"]
        calls.append((event, blocking))
        return ["policy says no"] if event == "deploy.before" and len(calls) == 1 else []

    world.env.notify = notify
    refused = world.deployment(_line_of(offer))  # type: ignore[arg-type]
    assert run.deploy(world.env, refused.id) == []
    with world.env.db.session() as session:
        row = session.get(Deployment, refused.id)
        assert row is not None and row.status == "failed" and "policy says no" in (row.end_reason or "")
    assert world.mem.ever == {}
    dep = world.deployment(_line_of(offer))  # type: ignore[arg-type]
    run.deploy(world.env, dep.id)
    run.teardown(world.env, dep.id, reason="done (test)")
    assert calls == [("deploy.before", True), ("deploy.before", True), ("deploy.after", False),
                     ("done.before", True), ("done.after", False)]
