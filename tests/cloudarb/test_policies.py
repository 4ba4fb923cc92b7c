"""Scheduled re-optimization: policies run on fresh prices; marginal savings keep the current fleet."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cloudarb.context import Context
from cloudarb.db.models import AllocationLine, Offer, Policy
from cloudarb.db.types import utcnow
from cloudarb.optimize.policy_runs import decide
from cloudarb.scheduler import tick
from tests.support import Tenant, small_request, wait_for


def create_policy(client: TestClient, tenant: Tenant, **kw: object) -> dict[str, object]:
    body = {"name": "hourly", "request": small_request(), "interval_s": 3600, "keep_threshold_pct": 5, **kw}
    r = client.post("/policies", json=body, headers=tenant.headers())
    assert r.status_code == 201, r.text
    return r.json()


def runs(client: TestClient, tenant: Tenant, policy_id: object) -> list[dict[str, object]]:
    return client.get(f"/policies/{policy_id}/runs", headers=tenant.headers()).json()


def wait_runs_done(client: TestClient, tenant: Tenant, policy_id: object, n: int) -> list[dict[str, object]]:
    return wait_for(lambda: (rs := runs(client, tenant, policy_id)) and len(rs) == n
                    and all(r["decision"] for r in rs) and rs, timeout=60)


def test_decision_rule() -> None:
    assert decide(None, 10.0, 5) == ("adopt", None)
    assert decide(100.0, 96.0, 5) == ("keep_current", 4.0)
    assert decide(100.0, 94.0, 5) == ("adopt", 6.0)
    assert decide(100.0, None, 5) == ("keep_current", None)


def test_first_run_adopts_then_unchanged_prices_keep_current(client: TestClient, tenant: Tenant) -> None:
    policy = create_policy(client, tenant)
    assert client.post(f"/policies/{policy['id']}/run", headers=tenant.headers()).status_code == 202
    first = wait_runs_done(client, tenant, policy["id"], 1)
    assert first[0]["decision"] == "adopt"
    current = client.get(f"/policies/{policy['id']}", headers=tenant.headers()).json()["current_optimization_id"]
    assert current == first[0]["optimization_id"]

    client.post(f"/policies/{policy['id']}/run", headers=tenant.headers())
    second = wait_runs_done(client, tenant, policy["id"], 2)[0]
    assert second["decision"] == "keep_current" and abs(second["savings_pct"]) < 5
    after = client.get(f"/policies/{policy['id']}", headers=tenant.headers()).json()
    assert after["current_optimization_id"] == current, "no churn for a marginal gain"
    # each run's result is kept
    opts = client.get("/optimize", headers=tenant.headers()).json()["items"]
    assert {o["id"] for o in opts} >= {first[0]["optimization_id"], second["optimization_id"]}


def test_a_real_price_drop_is_adopted(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    policy = create_policy(client, tenant)
    client.post(f"/policies/{policy['id']}/run", headers=tenant.headers())
    first = wait_runs_done(client, tenant, policy["id"], 1)[0]
    with ctx.db.session() as session:
        used = set(session.scalars(select(AllocationLine.offer_key).where(
            AllocationLine.optimization_id == first["optimization_id"])).all())
        # the market moves: everything the fleet uses now costs 3x
        session.execute(update(Offer).where(Offer.offer_key.in_(used)).values(
            price_per_hour=Offer.price_per_hour * 3, price_per_gpu_hour=Offer.price_per_gpu_hour * 3))
    client.post(f"/policies/{policy['id']}/run", headers=tenant.headers())
    second = wait_runs_done(client, tenant, policy["id"], 2)[0]
    assert second["decision"] == "adopt" and second["savings_pct"] > 5
    assert second["current_cost_per_hour"] > second["new_cost_per_hour"]


def test_scheduler_runs_due_policies_once(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    policy = create_policy(client, tenant, interval_s=60)
    with ctx.db.session() as session:
        session.execute(update(Policy).where(Policy.id == policy["id"]).values(
            next_run_at=utcnow() - timedelta(seconds=1)))
    assert tick(ctx) == 1
    assert tick(ctx) == 0, "the slot was claimed; a second scheduler pass starts nothing"
    wait_runs_done(client, tenant, policy["id"], 1)
    after = client.get(f"/policies/{policy['id']}", headers=tenant.headers()).json()
    assert after["next_run_at"] > policy["next_run_at"]


def test_cron_schedule_and_delete(client: TestClient, tenant: Tenant) -> None:
    policy = create_policy(client, tenant, interval_s=None, cron="*/15 * * * *")
    minute = int(str(policy["next_run_at"])[14:16])
    assert minute % 15 == 0
    assert client.delete(f"/policies/{policy['id']}", headers=tenant.headers()).status_code == 204
    assert client.get(f"/policies/{policy['id']}", headers=tenant.headers()).status_code == 404


def test_run_now_is_idempotent(client: TestClient, tenant: Tenant) -> None:
    policy = create_policy(client, tenant)
    h = {**tenant.headers(), "Idempotency-Key": "nightly-retry"}
    first = client.post(f"/policies/{policy['id']}/run", headers=h)
    again = client.post(f"/policies/{policy['id']}/run", headers=h)
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert len(wait_runs_done(client, tenant, policy["id"], 1)) == 1


class _RunsAtOnce:
    """A queue that runs each job inside ``enqueue``: the fastest worker there can be. A submit that
    queued before writing its policy run row would lose the decision (the job finds no row)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ran: list[str] = []

    def enqueue(self, job_id: str, function: str, *, delay_s: float = 0.0, attempt: int = 1) -> None:
        from cloudarb.jobs.runtime import execute

        self.ran.append(job_id)
        execute(job_id, self.ctx)

    def stop(self, job_id: str) -> None:
        return None

    def depth(self) -> int:
        return 0

    def close(self) -> None:
        return None


def test_a_policy_run_that_finishes_at_once_records_its_decision(ctx: Context, tenant: Tenant) -> None:
    from cloudarb.db.models import PolicyRun
    from cloudarb.optimize.submit import run_policy_now

    with ctx.db.session() as session:
        policy = Policy(organization_id=tenant.org_id, name="instant", request=small_request(), interval_s=3600,
                        keep_threshold_pct=5.0, next_run_at=utcnow() + timedelta(hours=1))
        session.add(policy)
    original, instant = ctx.queue, _RunsAtOnce(ctx)
    ctx.queue = instant
    try:
        done = run_policy_now(ctx, policy, actor="test")
    finally:
        ctx.queue = original
    assert instant.ran == [done.job_id], "the job ran inside enqueue, before the submit returned"
    with ctx.db.session() as session:
        run = session.scalars(select(PolicyRun).where(PolicyRun.optimization_id == done.optimization_id)).one()
        assert run.decision == "adopt" and run.new_cost_per_hour is not None
        assert session.get(Policy, policy.id).current_optimization_id == done.optimization_id
