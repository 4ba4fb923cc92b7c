"""The whole optimize path in embedded mode: HTTP in, in-process job, WebSocket events, stored result."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cloudarb.context import Context
from optimizer.schemas import Offer, Problem, Solution
from optimizer.validate import validate
from tests.support import Tenant, small_request, wait_for


def follow(client: TestClient, job_id: str, key: str) -> list[dict[str, Any]]:
    events = []
    with client.websocket_connect(f"/ws/jobs/{job_id}?token={key}") as ws:
        while True:
            event = ws.receive_json()
            events.append(event)
            if event["type"] == "status" and event["terminal"]:
                break
    return events


def test_optimize_over_http_and_websocket(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    r = client.post("/optimize", json=small_request(), headers=tenant.headers())
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "queued"
    assert accepted["websocket_url"].endswith(f"/ws/jobs/{accepted['job_id']}")
    events = follow(client, accepted["job_id"], tenant.keys["viewer"])

    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "every event once, in order"
    status_events = [e["status"] for e in events if e["type"] == "status"]
    assert status_events[0] == "queued" and status_events[-2:] == ["running", "finished"][-len(status_events[-2:]):]
    phases = [e["phase"] for e in events if e["type"] == "progress"]
    assert "loading" in phases and "done" in phases
    assert any(e.get("incumbent") is not None for e in events if e["type"] == "progress")

    opt = client.get(f"/optimize/{accepted['id']}", headers=tenant.headers("viewer")).json()
    assert opt["status"] == "finished"
    lines = client.get(f"/optimize/{accepted['id']}/allocations", headers=tenant.headers("viewer")).json()
    assert lines, "a feasible fleet has allocation lines"
    result = opt["result"]
    assert abs(sum(ln["hourly_cost"] for ln in lines) - result["totals"]["cost_per_hour"]) < 1e-6
    by_workload: dict[str, int] = {}
    for ln in lines:
        by_workload[ln["workload_id"]] = by_workload.get(ln["workload_id"], 0) + ln["gpus"]
    assert by_workload["train"] >= 8 and by_workload["serve"] >= 2
    assert result["totals"]["cost_per_hour"] <= 500
    assert {s["baseline"] for s in result["savings"]} == {"single_provider_on_demand", "greedy_cheapest", "skypilot_rule"}


def test_stored_result_passes_the_independent_validator(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    r = client.post("/optimize", json=small_request(), headers=tenant.headers())
    opt_id = r.json()["id"]
    wait_for(lambda: client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()["status"] == "finished")
    from cloudarb.db.models import Offer as OfferRow
    from cloudarb.optimize.problem import build_problem, to_offer
    from cloudarb.schemas import OptimizeRequest

    with ctx.db.session() as session:
        rows = session.query(OfferRow).all()
        problem: Problem = build_problem(OptimizeRequest.model_validate(small_request()), rows)
    opt = client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()
    lines = client.get(f"/optimize/{opt_id}/allocations", headers=tenant.headers()).json()
    offers: dict[str, Offer] = {o.id: o for o in problem.offers}
    solution = Solution.model_validate(
        {**{k: v for k, v in opt["result"].items() if k in Solution.model_fields},
         "allocations": [
             {"workload_id": ln["workload_id"], "offer_id": ln["offer_key"], "provider": ln["provider"],
              "region": ln["region"], "instance_type": ln["instance_type"], "gpu_model": ln["gpu_model"],
              "instances": ln["instances"], "gpus": ln["gpus"], "hourly_cost": ln["hourly_cost"], "spot": ln["spot"]}
             for ln in lines]}
    )
    assert all(ln.offer_id in offers for ln in solution.allocations)
    assert validate(problem, solution) == []
    assert to_offer(rows[0]).id == rows[0].offer_key


def test_infeasible_request_reports_a_reason(client: TestClient, tenant: Tenant) -> None:
    body = small_request(constraints={"budget_per_hour": 1.0})
    opt_id = client.post("/optimize", json=body, headers=tenant.headers()).json()["id"]
    opt = wait_for(lambda: (o := client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json())["status"]
                   in ("infeasible", "failed") and o)
    assert opt["status"] == "infeasible"
    assert "budget" in opt["result"]["infeasibility_reason"].lower()
    assert client.get(f"/optimize/{opt_id}/allocations", headers=tenant.headers()).json() == []


def test_quick_optimize(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/optimize/quick-optimize", json={"gpu_type": "H100 SXM", "gpu_count": 8,
                                                      "budget_per_hour": 200}, headers=tenant.headers())
    assert r.status_code == 202
    opt_id = r.json()["id"]
    wait_for(lambda: client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()["status"] == "finished")
    lines = client.get(f"/optimize/{opt_id}/allocations", headers=tenant.headers()).json()
    assert sum(ln["gpus"] for ln in lines) >= 8 and {ln["gpu_model"] for ln in lines} == {"H100 SXM"}


def test_list_is_paginated(client: TestClient, tenant: Tenant) -> None:
    for i in range(3):
        client.post("/optimize/quick-optimize", json={"gpu_type": "L4", "gpu_count": i + 1}, headers=tenant.headers())
    page = client.get("/optimize", params={"limit": 2}, headers=tenant.headers()).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    rest = client.get("/optimize", params={"limit": 2, "offset": 2}, headers=tenant.headers()).json()
    assert len(rest["items"]) == 1
    assert not {i["id"] for i in page["items"]} & {i["id"] for i in rest["items"]}


def test_idempotency_key(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    h = {**tenant.headers(), "Idempotency-Key": "req-42"}
    first = client.post("/optimize", json=small_request(), headers=h)
    again = client.post("/optimize", json=small_request(), headers=h)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert client.get("/optimize", headers=tenant.headers()).json()["total"] == 1
    other = client.post("/optimize", json=small_request(name="changed"), headers=h)
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    assert client.get("/jobs", headers=tenant.headers()).json()["total"] == 1


def test_cancel_optimization(client: TestClient, tenant: Tenant) -> None:
    opt_id = client.post("/optimize", json=small_request(), headers=tenant.headers()).json()["id"]
    r = client.delete(f"/optimize/{opt_id}", headers=tenant.headers())
    assert r.status_code == 200
    final = wait_for(lambda: (o := client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json())["status"]
                     in ("canceled", "finished") and o)
    # it was either stopped, or had already finished before the cancel arrived; never both
    job = client.get(f"/jobs/{final['job_id']}", headers=tenant.headers()).json()
    assert job["status"] == final["status"]


def test_job_events_are_the_typed_models_of_the_openapi_document(client: TestClient, tenant: Tenant) -> None:
    """Every event of a real optimize job validates as a StatusEvent or ProgressEvent (the models the
    OpenAPI document exports for the dashboard), and the REST replay returns them unchanged."""
    from pydantic import TypeAdapter

    from cloudarb.jobs.events import JobEvent

    accepted = client.post("/optimize", json=small_request(), headers=tenant.headers()).json()
    wait_for(lambda: client.get(f"/jobs/{accepted['job_id']}", headers=tenant.headers()).json()["status"]
             in ("finished", "infeasible"), timeout=60)
    events = client.get(f"/jobs/{accepted['job_id']}/events", headers=tenant.headers()).json()
    typed = TypeAdapter(list[JobEvent]).validate_python(events)
    kinds = {type(e).__name__ for e in typed}
    assert kinds == {"StatusEvent", "ProgressEvent"}
    assert [e.seq for e in typed] == list(range(1, len(typed) + 1))
    assert any(getattr(e, "phase", None) == "building" for e in typed)
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"StatusEvent", "ProgressEvent"} <= schemas.keys()
    assert schemas["StatusEvent"]["properties"]["type"]["const"] == "status"
