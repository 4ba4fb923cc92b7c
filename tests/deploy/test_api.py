"""The deployments API end to end in the embedded mode: the deploy job runs in process against the
in-memory provider put under the key ``lambda`` through the registry's ``use``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.types import utcnow
from cloudarb.deploy.metering import meter
from cloudarb.deploy.providers import registry
from tests.deploy.memory_provider import Faults, MemoryProvider
from tests.support import Tenant, wait_for


@pytest.fixture()
def mem() -> Iterator[MemoryProvider]:
    provider = MemoryProvider("lambda", clock=utcnow, faults=Faults(boot_reads=0))
    with registry.use("lambda", lambda config: provider):
        yield provider


def _offer(ctx: Context) -> str:
    with ctx.db.session() as session:
        key = session.scalars(select(Offer.offer_key).where(Offer.provider == "lambda", Offer.gpu_count == 1)
                              .order_by(Offer.price_per_hour)).first()
    assert key is not None
    return key


def _settled(client: TestClient, tenant: Tenant, dep_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/deployments/{dep_id}", headers=tenant.headers()).json()
        return body if body["status"] in statuses else None

    return wait_for(done, timeout=30)  # type: ignore[no-any-return]


def test_deploy_an_offer_follow_it_extend_and_finish_with_proof(client: TestClient, ctx: Context, tenant: Tenant,
                                                                other_tenant: Tenant, mem: MemoryProvider) -> None:
    offer = _offer(ctx)
    headers = {**tenant.headers(), "Idempotency-Key": "deploy-1"}
    r = client.post(f"/offers/{offer}/deploy", json={"lifetime_hours": 2}, headers=headers)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert accepted["websocket_url"] == f"/ws/deployments/{accepted['id']}"
    again = client.post(f"/offers/{offer}/deploy", json={"lifetime_hours": 2}, headers=headers)
    assert again.json()["id"] == accepted["id"] and again.json()["private_key"] is None
    dep = _settled(client, tenant, accepted["id"], ("running", "partial", "failed"))
    assert dep["status"] == "running", dep
    [inst] = dep["instances"]
    assert inst["state"] == "running" and inst["provider_id"] == "m-1"
    assert inst["ssh_command"] == f"ssh -i ~/.ssh/cloudarb-{dep['id'][:8]} root@127.0.0.1"
    assert [a["outcome"] for a in dep["attempts"]] == ["created"]
    assert len(mem.ever) == 1

    key = tenant.keys["viewer"]
    with client.websocket_connect(f"/ws/deployments/{dep['id']}?token={key}") as ws:
        phases = []
        while True:
            event = ws.receive_json()
            phases.append(event.get("phase") or event.get("status"))
            if event["type"] == "status" and event["terminal"]:
                break
    assert {"intents", "creating", "created", "running"} <= set(phases)

    assert client.get(f"/deployments/{dep['id']}", headers=other_tenant.headers()).status_code == 404
    too_long = client.post(f"/deployments/{dep['id']}/extend", json={"hours": 20}, headers=tenant.headers())
    assert too_long.status_code == 409 and "maximum lifetime" in too_long.json()["error"]["message"]
    longer = client.post(f"/deployments/{dep['id']}/extend", json={"hours": 1}, headers=tenant.headers())
    assert longer.status_code == 200 and longer.json()["expires_at"] > dep["expires_at"]

    assert client.post(f"/deployments/{dep['id']}/done", headers=tenant.headers()).status_code == 202
    ended = _settled(client, tenant, dep["id"], ("ended",))
    assert [i["state"] for i in ended["instances"]] == ["terminated"]
    assert mem.live() == []
    with ctx.db.session() as session:
        meter(session, utcnow())
    costs = client.get("/costs?by=provider", headers=tenant.headers()).json()
    assert costs["items"][0]["key"] == "lambda" and costs["total"] > 0
    assert costs["items"][0]["billed_hours"] == pytest.approx(60 / 3600, abs=1e-6)  # the provider's 60 s minimum
    summary = client.get("/costs/summary", headers=tenant.headers()).json()
    assert summary["month_to_date"] == pytest.approx(costs["total"]) and summary["live_instances"] == 0


def test_bad_lifetimes_and_budgets_are_refused_with_reasons(client: TestClient, ctx: Context, tenant: Tenant,
                                                            mem: MemoryProvider) -> None:
    offer = _offer(ctx)
    r = client.post(f"/offers/{offer}/deploy", json={"lifetime_hours": 30}, headers=tenant.headers())
    assert r.status_code == 422 and "override" in r.json()["error"]["message"]
    assert r.json()["error"]["field"] == "lifetime"
    r = client.post(f"/offers/{offer}/deploy", json={"lifetime_hours": 0.5}, headers=tenant.headers())
    assert r.status_code == 422
    assert client.put("/budget", json={"monthly_limit": 0.01}, headers=tenant.headers("admin")).status_code == 200
    assert client.get("/budget", headers=tenant.headers("viewer")).json()["thresholds"] == [0.8]
    r = client.post(f"/offers/{offer}/deploy", json={"lifetime_hours": 2}, headers=tenant.headers())
    error = r.json()["error"]
    assert r.status_code == 409 and error["code"] == "budget_exceeded"
    assert error["details"][0]["monthly_limit"] == 0.01 and error["details"][0]["requested"] > 0.01
    assert client.post("/offers/nope/deploy", json={}, headers=tenant.headers()).status_code == 404
    assert mem.ever == {}
