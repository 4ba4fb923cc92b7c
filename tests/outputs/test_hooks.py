"""Hooks against a real HTTP receiver on loopback and real commands: signatures, retries with back-off,
giving up with a recorded failure, blocking before-hooks, command timeout/exit/output, Slack payloads,
the policy.adopt event from a real policy run, and the API."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cloudarb.context import Context
from cloudarb.db.models import AllocationLine, Offer
from cloudarb.db.models_hooks import HookDelivery
from cloudarb.hooks import HookFailed, emit, signing, start
from cloudarb.hooks.events import summary
from tests.outputs.receivers import Receiver
from tests.support import Tenant, small_request, wait_for

COMMANDS = pytest.mark.parametrize("ctx", [{"hooks_commands": True}], indirect=True)


def add_hook(client: TestClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    r = client.post("/hooks", json={"name": "ops", "events": ["*"], **body}, headers=tenant.headers("admin"))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def delivery(ctx: Context, delivery_id: str) -> HookDelivery:
    with ctx.db.session() as session:
        row = session.get(HookDelivery, delivery_id)
        assert row is not None
        return row


def settled(ctx: Context, delivery_id: str) -> HookDelivery:
    wait_for(lambda: delivery(ctx, delivery_id).status in ("delivered", "failed"), timeout=30)
    return delivery(ctx, delivery_id)


def test_webhook_is_signed_and_logged(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    with Receiver(200) as rx:
        hook = add_hook(client, tenant, kind="webhook", url=rx.url + "/hook", events=["deploy.*"])
        assert hook["secret"].startswith("whsec_")
        assert "secret" not in client.get(f"/hooks/{hook['id']}", headers=tenant.headers("viewer")).json()
        result = emit(ctx, tenant.org_id, "deploy.after", {"deployment_id": "dep1", "instances": 2},
                      blocking=False, subject_id="dep1")
        assert len(result.deliveries) == 1 and len(result.jobs) == 1
        done = settled(ctx, result.deliveries[0])
        assert emit(ctx, tenant.org_id, "budget.threshold", {"percent_used": 80}, blocking=False).deliveries == []
    assert done.status == "delivered" and done.attempts == 1 and done.status_code == 200
    (req,) = rx.requests
    header = req.headers["x-cloudarb-signature"]
    assert signing.verify(hook["secret"], header, req.body, now=time.time())
    assert not signing.verify("whsec_other", header, req.body, now=time.time())
    assert not signing.verify(hook["secret"], header, req.body + b" ", now=time.time())
    assert not signing.verify(hook["secret"], header, req.body, now=time.time() + 3600)  # replayed later
    body = json.loads(req.body)
    assert body["event"] == "deploy.after" and body["id"] == done.id and body["data"]["deployment_id"] == "dep1"
    assert req.headers["x-cloudarb-event"] == "deploy.after"
    page = client.get("/hooks/deliveries", params={"subject_id": "dep1"}, headers=tenant.headers("viewer")).json()
    assert [d["id"] for d in page["items"]] == [done.id] and page["items"][0]["log"][0]["status_code"] == 200


def test_retries_on_5xx_with_back_off_then_delivers(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    with Receiver(503, 500, 200) as rx:
        add_hook(client, tenant, kind="webhook", url=rx.url, events=["destroy.after"], max_attempts=5)
        result = emit(ctx, tenant.org_id, "destroy.after", {"deployment_id": "d"}, blocking=False)
        done = settled(ctx, result.deliveries[0])
    assert done.status == "delivered" and done.attempts == 3
    assert [e["status_code"] for e in done.log] == [503, 500, 200]
    ids = {json.loads(r.body)["id"] for r in rx.requests}
    assert ids == {done.id}  # the same delivery each time, so a receiver can de-duplicate


def test_gives_up_after_the_configured_attempts_with_a_recorded_failure(
    client: TestClient, ctx: Context, tenant: Tenant
) -> None:
    with Receiver(500) as rx:
        add_hook(client, tenant, kind="webhook", url=rx.url, events=["done.*"], max_attempts=2)
        result = emit(ctx, tenant.org_id, "done.after", {"deployment_id": "d"}, blocking=False)
        done = settled(ctx, result.deliveries[0])
    assert len(rx.requests) == 2
    assert done.status == "failed" and done.attempts == 2 and done.error == "HTTP 500"
    failed = client.get("/hooks/deliveries", params={"status": "failed"}, headers=tenant.headers("viewer")).json()
    assert failed["total"] == 1


def test_a_refusing_receiver_is_not_retried(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    with Receiver(410) as rx:
        add_hook(client, tenant, kind="webhook", url=rx.url, events=["extend.after"], max_attempts=4)
        done = settled(ctx, emit(ctx, tenant.org_id, "extend.after", {}, blocking=False).deliveries[0])
    assert done.status == "failed" and done.attempts == 1 and len(rx.requests) == 1


def test_a_blocking_before_hook_stops_the_step_with_its_reason(
    client: TestClient, ctx: Context, tenant: Tenant
) -> None:
    with Receiver(200) as ok, Receiver(403) as veto:
        add_hook(client, tenant, kind="webhook", url=ok.url, events=["deploy.before"], name="audit")
        add_hook(client, tenant, kind="webhook", url=veto.url, events=["deploy.before"], name="change-freeze")
        result = emit(ctx, tenant.org_id, "deploy.before", {"deployment_id": "d"}, blocking=True, subject_id="d")
    assert not result.ok
    assert "change-freeze" in result.reason and "HTTP 403" in result.reason and "audit" not in result.reason
    with pytest.raises(HookFailed) as err:
        result.raise_for_failure()
    assert err.value.code == "hook_failed"
    statuses = sorted(delivery(ctx, d).status for d in result.deliveries)
    assert statuses == ["delivered", "failed"]


def test_an_emit_in_the_callers_transaction_is_delivered_after_its_commit(ctx: Context, tenant: Tenant,
                                                                          client: TestClient) -> None:
    with Receiver(200) as rx:
        add_hook(client, tenant, kind="webhook", url=rx.url, events=["budget.threshold"])
        try:
            with ctx.db.session() as session:
                emit(session, tenant.org_id, "budget.threshold", {"percent_used": 90}, blocking=False)
                raise RuntimeError("the caller's transaction fails")
        except RuntimeError:
            pass
        with ctx.db.session() as session:
            assert session.scalars(select(HookDelivery)).all() == []  # rolled back with the caller's change
            result = emit(session, tenant.org_id, "budget.threshold", {"percent_used": 90}, blocking=False)
        start(ctx, result)
        assert settled(ctx, result.deliveries[0]).status == "delivered"
    assert len(rx.requests) == 1


@COMMANDS
def test_command_hook_gets_the_body_and_its_output_is_captured(
    client: TestClient, ctx: Context, tenant: Tenant
) -> None:
    add_hook(client, tenant, kind="command", events=["deploy.after"],
             command=["sh", "-c", 'cat; echo; echo "event=$CLOUDARB_EVENT"; echo "secret=${CLOUDARB_SECRET_KEY:-none}"'])
    done = settled(ctx, emit(ctx, tenant.org_id, "deploy.after", {"deployment_id": "d7"}, blocking=False).deliveries[0])
    assert done.status == "delivered" and done.exit_code == 0
    assert done.output is not None
    first, *rest = done.output.splitlines()
    assert json.loads(first)["data"] == {"deployment_id": "d7"}
    assert rest == ["event=deploy.after", "secret=none"]  # the server's settings stay out of its environment


@COMMANDS
def test_command_hook_non_zero_exit_fails_a_blocking_step(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    add_hook(client, tenant, kind="command", events=["destroy.before"], name="guard", max_attempts=3,
             command=["sh", "-c", "echo 'instance still has data' >&2; exit 3"])
    result = emit(ctx, tenant.org_id, "destroy.before", {}, blocking=True)
    (row,) = [delivery(ctx, d) for d in result.deliveries]
    assert row.status == "failed" and row.exit_code == 3 and row.attempts == 1  # the command's verdict is final
    assert "instance still has data" in (row.output or "") and "instance still has data" in result.reason


@COMMANDS
def test_command_hook_is_killed_at_its_timeout(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    add_hook(client, tenant, kind="command", events=["extend.before"], timeout_s=0.5, max_attempts=1,
             command=["sh", "-c", "echo started; sleep 30 & wait"])
    result = emit(ctx, tenant.org_id, "extend.before", {}, blocking=True)
    (row,) = [delivery(ctx, d) for d in result.deliveries]
    assert row.status == "failed" and "timed out" in (row.error or "") and "started" in (row.output or "")
    assert "timed out" in result.reason


def test_command_hooks_are_off_unless_the_server_allows_them(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/hooks", json={"name": "x", "kind": "command", "command": ["true"], "events": ["*"]},
                    headers=tenant.headers("admin"))
    assert r.status_code == 403 and "CLOUDARB_HOOKS_COMMANDS" in r.json()["error"]["message"]


@pytest.mark.parametrize("body,field", [
    ({"kind": "webhook", "url": "http://hooks.example.com/x", "events": ["*"]}, "url"),
    ({"kind": "webhook", "url": "https://169.254.169.254/latest/meta-data", "events": ["*"]}, "url"),
    ({"kind": "webhook", "url": "https://hooks.example.com/x", "events": ["deploy.maybe"]}, "events"),
    ({"kind": "webhook", "events": ["*"]}, "url"),
    ({"kind": "command", "url": "https://x.example/", "events": ["*"]}, "url"),
])
def test_bad_hooks_are_422_naming_the_field(client: TestClient, tenant: Tenant, body: dict[str, Any],
                                            field: str) -> None:
    r = client.post("/hooks", json={"name": "x", **body}, headers=tenant.headers("admin"))
    assert r.status_code == 422, r.text
    assert field in json.dumps(r.json())


def test_hooks_belong_to_their_organization(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    hook = add_hook(client, tenant, kind="webhook", url="https://hooks.example.com/a")
    assert client.post("/hooks", json={"name": "x", "kind": "webhook", "url": "https://a.example/",
                                       "events": ["*"]}, headers=tenant.headers("editor")).status_code == 403
    assert client.get(f"/hooks/{hook['id']}", headers=other_tenant.headers("admin")).status_code == 404
    assert client.get("/hooks", headers=other_tenant.headers("admin")).json() == []
    assert client.delete(f"/hooks/{hook['id']}", headers=other_tenant.headers("admin")).status_code == 404
    assert client.delete(f"/hooks/{hook['id']}", headers=tenant.headers("admin")).status_code == 204
    assert client.get("/hooks", headers=tenant.headers("admin")).json() == []


def test_test_endpoint_sends_one_signed_test_event(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    with Receiver(200) as rx:
        hook = add_hook(client, tenant, kind="webhook", url=rx.url, events=["policy.adopt"])
        r = client.post(f"/hooks/{hook['id']}/test", headers=tenant.headers("admin"))
        assert r.status_code == 202
        done = settled(ctx, r.json()["delivery_id"])
    assert done.status == "delivered" and json.loads(rx.requests[0].body)["event"] == "hook.test"


def test_slack_text_for_adopt_and_budget() -> None:
    adopt = summary("policy.adopt", {"policy_name": "nightly", "savings_per_hour": 12.5, "new_cost_per_hour": 40,
                                     "current_cost_per_hour": 52.5})
    assert adopt == "CloudArb policy 'nightly': switch now saves $12.50/h (new $40.00/h vs current $52.50/h)"
    # the deploy stage's budget sweep sends month, threshold, spent, limit, hard_stop
    budget = summary("budget.threshold", {"month": "2026-12", "threshold": 0.8, "spent": 812.5, "limit": 1000,
                                          "hard_stop": False})
    assert budget == "CloudArb budget '2026-12' 81% used: $812.50 of $1,000.00 (threshold 80%)"


def wait_decisions(client: TestClient, tenant: Tenant, policy_id: str, n: int) -> list[dict[str, Any]]:
    def runs() -> Any:
        rs = client.get(f"/policies/{policy_id}/runs", headers=tenant.headers()).json()
        return len(rs) == n and all(r["decision"] for r in rs) and rs

    found: list[dict[str, Any]] = wait_for(runs, timeout=60, interval=0.2)  # API polls: under the rate limit (600/min)
    return found


@pytest.mark.slow
def test_a_policy_adopt_decision_reaches_signed_webhooks(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    with Receiver(200) as rx, Receiver(200) as slack:
        hook = add_hook(client, tenant, kind="webhook", url=rx.url, events=["policy.adopt"])
        add_hook(client, tenant, kind="webhook", url=slack.url, events=["policy.*"], payload_format="slack")
        body = {"name": "nightly", "request": small_request(), "interval_s": 3600, "keep_threshold_pct": 5}
        policy = client.post("/policies", json=body, headers=tenant.headers()).json()
        client.post(f"/policies/{policy['id']}/run", headers=tenant.headers())
        first = wait_decisions(client, tenant, policy["id"], 1)[0]
        with ctx.db.session() as session:
            used = set(session.scalars(select(AllocationLine.offer_key).where(
                AllocationLine.optimization_id == first["optimization_id"])).all())
            session.execute(update(Offer).where(Offer.offer_key.in_(used)).values(
                price_per_hour=Offer.price_per_hour * 3, price_per_gpu_hour=Offer.price_per_gpu_hour * 3))
        client.post(f"/policies/{policy['id']}/run", headers=tenant.headers())
        second = wait_decisions(client, tenant, policy["id"], 2)[0]
        assert second["decision"] == "adopt"
        wait_for(lambda: len(rx.requests) == 2 and len(slack.requests) == 2, timeout=30)
    events = [json.loads(r.body) for r in rx.requests]
    for req in rx.requests:
        assert signing.verify(hook["secret"], req.headers["x-cloudarb-signature"], req.body, now=time.time())
    later = next(e for e in events if e["data"]["optimization_id"] == second["optimization_id"])
    assert later["event"] == "policy.adopt" and later["data"]["policy_id"] == policy["id"]
    assert later["data"]["savings_per_hour"] == pytest.approx(
        second["current_cost_per_hour"] - second["new_cost_per_hour"])
    texts = [json.loads(r.body)["text"] for r in slack.requests]
    assert any("switch now saves $" in t for t in texts)


def test_a_paused_hook_gets_nothing(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    hook = add_hook(client, tenant, kind="webhook", url="https://hooks.example.com/a", events=["deploy.after"])
    r = client.patch(f"/hooks/{hook['id']}", json={"enabled": False, "events": ["deploy.*", "policy.adopt"]},
                     headers=tenant.headers("admin"))
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert r.json()["events"] == ["deploy.*", "policy.adopt"]
    assert emit(ctx, tenant.org_id, "deploy.after", {}, blocking=False).deliveries == []
    bad = client.patch(f"/hooks/{hook['id']}", json={"events": ["nope"]}, headers=tenant.headers("admin"))
    assert bad.status_code == 422 and "events" in json.dumps(bad.json())
    assert client.patch(f"/hooks/{hook['id']}", json={"enabled": True},
                        headers=tenant.headers("viewer")).status_code == 403


def test_a_blocking_emit_inside_the_callers_transaction(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    with Receiver(503, 200) as rx:
        add_hook(client, tenant, kind="webhook", url=rx.url, events=["extend.before"], max_attempts=3)
        with ctx.db.session() as session:
            result = emit(session, tenant.org_id, "extend.before", {"deployment_id": "d"}, blocking=True)
    assert result.ok and result.jobs == []
    row = delivery(ctx, result.deliveries[0])
    assert row.status == "delivered" and row.attempts == 2 and [e["status_code"] for e in row.log] == [503, 200]
