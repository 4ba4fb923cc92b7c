"""Malformed, oversized and hostile input gets a clear 4xx naming the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cloudarb.context import Context
from cloudarb.db.models import JobRun, Offer, OptimizationRequest, Policy
from tests.support import Tenant, small_request


def counts(ctx: Context) -> tuple[int, int, int, int]:
    with ctx.db.session() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(m)) or 0
            for m in (OptimizationRequest, JobRun, Policy, Offer)
        )


def workload(**kw: Any) -> dict[str, Any]:
    return {"id": "w", "gpus_min": 1, **kw}


BAD_OPTIMIZE = [
    ("wrong type", {"workloads": "eight"}, "workloads"),
    ("negative count", {"workloads": [workload(gpus_min=-4)]}, "workloads.0.gpus_min"),
    ("zero count", {"workloads": [workload(gpus_min=0)]}, "workloads.0.gpus_min"),
    ("max below min", {"workloads": [workload(gpus_min=4, gpus_max=2)]}, "workloads.0"),
    ("string number", {"workloads": [workload(gpus_per_node="lots")]}, "workloads.0.gpus_per_node"),
    ("empty fleet", {"workloads": []}, "workloads"),
    ("huge fleet", {"workloads": [workload(id=f"w{i}") for i in range(1001)]}, "workloads"),
    ("unknown field", {"workloads": [workload()], "shell": "rm -rf /"}, "shell"),
    ("negative budget", {"workloads": [workload()], "constraints": {"budget_per_hour": -1}},
     "constraints.budget_per_hour"),
    ("share above one", {"workloads": [workload()], "constraints": {"max_provider_share": 1.5}},
     "constraints.max_provider_share"),
    ("bad objective", {"workloads": [workload()], "objective": "cheapest"}, "objective"),
    ("bad workload type", {"workloads": [workload(workload_type="mining")]}, "workloads.0.workload_type"),
    ("duplicate ids", {"workloads": [workload(), workload()]}, "body"),
    ("nan budget", {"workloads": [workload()], "constraints": {"budget_per_hour": "NaN"}},
     "constraints.budget_per_hour"),
    ("long id", {"workloads": [workload(id="x" * 500)]}, "workloads.0.id"),
    ("time limit", {"workloads": [workload()], "time_limit_s": 100000}, "time_limit_s"),
]


@pytest.mark.parametrize("name,body,field", BAD_OPTIMIZE, ids=[b[0] for b in BAD_OPTIMIZE])
def test_bad_optimize_requests(client: TestClient, ctx: Context, tenant: Tenant, name: str, body: dict[str, Any],
                               field: str) -> None:
    before = counts(ctx)
    r = client.post("/optimize", json=body, headers=tenant.headers())
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid" and err["field"] == field, err
    assert field in err["message"]
    assert counts(ctx) == before


def test_not_json_and_wrong_content(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    before = counts(ctx)
    r = client.post("/optimize", content=b"{not json", headers={**tenant.headers(), "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"
    r = client.post("/optimize", content=b"\xff\xfe\x00", headers=tenant.headers())
    assert r.status_code == 422
    assert counts(ctx) == before


def test_oversized_body_is_413(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    before = counts(ctx)
    blob = {"workloads": [workload()], "name": "x" * 3_000_000}
    r = client.post("/optimize", json=blob, headers=tenant.headers())
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    assert counts(ctx) == before


def test_unicode_and_sql_looking_strings_are_data(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    hostile = "'); DROP TABLE offers; -- 训练 🚀 \u202e"
    body = small_request(name=hostile)
    body["workloads"][0]["id"] = "训练-'; DELETE FROM users;--"
    r = client.post("/optimize", json=body, headers=tenant.headers())
    assert r.status_code == 202
    opt = client.get(f"/optimize/{r.json()['id']}", headers=tenant.headers()).json()
    assert opt["name"] == hostile
    assert opt["request"]["workloads"][0]["id"] == body["workloads"][0]["id"]
    assert counts(ctx)[3] > 0, "offers survived"
    r = client.get("/offers", params={"provider": "x' OR '1'='1"}, headers=tenant.headers())
    assert r.status_code == 200 and r.json()["total"] == 0


BAD_QUERIES = [
    ("/offers", {"limit": 0}, "limit"),
    ("/offers", {"limit": 100000}, "limit"),
    ("/offers", {"offset": -1}, "offset"),
    ("/offers", {"min_vram_gb": "big"}, "min_vram_gb"),
    ("/offers", {"max_price": -3}, "max_price"),
    ("/offers", {"sort": "password"}, "sort"),
    ("/offers", {"spot": "maybe"}, "spot"),
    ("/optimize", {"status": "exploded"}, "status"),
    ("/jobs", {"status": "exploded"}, "status"),
]


@pytest.mark.parametrize("path,params,field", BAD_QUERIES)
def test_bad_query_parameters(client: TestClient, tenant: Tenant, path: str, params: dict[str, Any],
                              field: str) -> None:
    r = client.get(path, params=params, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text


def test_bad_policies(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    before = counts(ctx)
    cases = [
        ({"name": "p", "request": small_request(), "cron": "every tuesday"}, "cron"),
        ({"name": "p", "request": small_request()}, "body"),
        ({"name": "p", "request": small_request(), "cron": "* * * * *", "interval_s": 60}, "body"),
        ({"name": "p", "request": small_request(), "interval_s": 1}, "interval_s"),
        ({"name": "", "request": small_request(), "interval_s": 60}, "name"),
        ({"name": "p", "request": {"workloads": []}, "interval_s": 60}, "request.workloads"),
    ]
    for body, field in cases:
        r = client.post("/policies", json=body, headers=tenant.headers())
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (body, r.text)
    assert counts(ctx) == before


def test_unknown_ids_are_404(client: TestClient, tenant: Tenant) -> None:
    for path in ("/optimize/nope", "/optimize/nope/allocations", "/jobs/nope", "/policies/nope"):
        r = client.get(path, headers=tenant.headers())
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/no-such-route", headers=tenant.headers())
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize("ctx", [{"rate_limit_per_minute": 5}], indirect=True)
def test_rate_limit_per_key(client: TestClient, tenant: Tenant) -> None:
    codes = [client.get("/offers", headers=tenant.headers("viewer")).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    r = client.get("/offers", headers=tenant.headers("viewer"))
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["error"]["code"] == "rate_limited"
    # another key has its own budget
    assert client.get("/offers", headers=tenant.headers("editor")).status_code == 200


def test_offers_fresh_excludes_stale_prices(client: TestClient, tenant: Tenant) -> None:
    """The bundled snapshot is months old: every offer is stale by each provider's configured age."""
    everything = client.get("/offers", headers=tenant.headers()).json()["total"]
    fresh = client.get("/offers", params={"fresh": True}, headers=tenant.headers()).json()
    assert everything > 0 and fresh["total"] == 0


def test_offers_pages_and_totals(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers()
    first = client.get("/offers", params={"gpu_type": "L4", "limit": 7}, headers=h).json()
    total = first["total"]
    assert total > 7 and len(first["items"]) == 7
    last = client.get("/offers", params={"gpu_type": "L4", "limit": 7, "offset": total - 3}, headers=h).json()
    assert last["total"] == total and len(last["items"]) == 3
    beyond = client.get("/offers", params={"gpu_type": "L4", "limit": 7, "offset": total + 10}, headers=h).json()
    assert {k: beyond[k] for k in ("items", "total", "limit", "offset")} == {
        "items": [], "total": total, "limit": 7, "offset": total + 10}
