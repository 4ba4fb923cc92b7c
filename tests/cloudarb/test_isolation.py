"""Tenant isolation: one organization can never read or change another's data.

Every route with a resource id in its path is exercised with another organization's credentials;
a route added later without an entry here fails ``test_every_resource_route_is_covered``.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from cloudarb.api.app import create_app
from cloudarb.context import Context
from tests.support import Tenant, small_request, wait_for

# (method, path template) -> how to fill its ids from the victim's resources
RESOURCE_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/optimize/{optimization_id}"): "optimization",
    ("GET", "/optimize/{optimization_id}/allocations"): "optimization",
    ("DELETE", "/optimize/{optimization_id}"): "optimization",
    ("GET", "/jobs/{job_id}"): "job",
    ("GET", "/jobs/{job_id}/events"): "job",
    ("DELETE", "/jobs/{job_id}"): "job",
    ("GET", "/policies/{policy_id}"): "policy",
    ("DELETE", "/policies/{policy_id}"): "policy",
    ("GET", "/policies/{policy_id}/runs"): "policy",
    ("POST", "/policies/{policy_id}/run"): "policy",
    ("DELETE", "/auth/api-keys/{key_id}"): "api_key",
    ("GET", "/forecasts/demand-policies/{policy_id}"): "policy",
    ("POST", "/forecasts/demand-policies/{policy_id}"): "policy",
    ("DELETE", "/forecasts/demand-policies/{policy_id}"): "policy",
    # price series are market data, but a demand series is the organization's: tested with one
    ("GET", "/forecasts/{series}/backtest"): "demand_series",
}

# Routes with an id in the path that name shared market data, not an organization's resource. They
# are listed (not silently skipped) so each one is a decision; what they create is checked below.
MARKET_DATA_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/providers/{provider}/refresh"): "pricing provider key (market data shared by every organization)",
}


def _all_routes(ctx: Context) -> set[tuple[str, str]]:
    app = create_app(ctx=ctx, scheduler=False)
    found = set()
    for route in app.router.routes:
        if isinstance(route, APIRoute) and "{" in route.path:
            for method in route.methods - {"HEAD"}:
                found.add((method, route.path))
    if not found:  # newer FastAPI keeps included routers lazily: read them from the OpenAPI document
        for path, ops in app.openapi()["paths"].items():
            if "{" in path:
                found.update((m.upper(), path) for m in ops)
    return found


def test_every_resource_route_is_covered(ctx: Context) -> None:
    assert _all_routes(ctx) == set(RESOURCE_ROUTES) | set(MARKET_DATA_ROUTES)
    assert not set(RESOURCE_ROUTES) & set(MARKET_DATA_ROUTES)


@pytest.mark.parametrize("ctx", [{"ingest_base_urls": {"tensordock": "http://127.0.0.1:9"}}], indirect=True)
def test_market_data_refresh_job_belongs_to_the_caller(client: TestClient, tenant: Tenant,
                                                       other_tenant: Tenant) -> None:
    """A refresh touches only shared prices; the job it creates is the caller's, invisible to others.
    (The provider points at a closed local port: the job fails fast, without the network.)"""
    r = client.post("/providers/tensordock/refresh", headers=tenant.headers())
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert client.get(f"/jobs/{job_id}", headers=tenant.headers()).status_code == 200
    assert client.get(f"/jobs/{job_id}", headers=other_tenant.headers("admin")).status_code == 404
    assert client.get(f"/jobs/{job_id}/events", headers=other_tenant.headers("admin")).status_code == 404
    assert client.delete(f"/jobs/{job_id}", headers=other_tenant.headers("admin")).status_code == 404


@pytest.fixture()
def victim(client: TestClient, ctx: Context, tenant: Tenant) -> dict[str, str]:
    r = client.post("/optimize", json=small_request(), headers=tenant.headers())
    opt = r.json()
    wait_for(lambda: client.get(f"/optimize/{opt['id']}", headers=tenant.headers()).json()["status"]
             not in ("queued", "running"))
    policy = client.post(
        "/policies", json={"name": "nightly", "request": small_request(), "interval_s": 3600},
        headers=tenant.headers(),
    ).json()
    key = client.post("/auth/api-keys", json={"name": "bot"}, headers=tenant.headers("admin")).json()
    series = _stored_demand_forecast(ctx, tenant)
    return {"optimization": opt["id"], "job": opt["job_id"], "policy": policy["id"], "api_key": key["id"],
            "demand_series": series}


def _stored_demand_forecast(ctx: Context, tenant: Tenant) -> str:
    from cloudarb.db.types import utcnow
    from cloudarb.forecasts import store

    with ctx.db.session() as session:
        store.save_forecast(session, store.NewForecast(
            series_key="demand:train", kind="demand", organization_id=tenant.org_id, workload_id="train",
            origin=utcnow(), step="h", horizon=1, model="last_value", fallback_reason="short series",
            paths={"timestamps": [utcnow().isoformat()], "point": [8.0], "quantiles": {"0.9": [9.0]},
                   "scenarios": [[8.0]], "last": 8.0}, backtest=None), keep=1)
    return "demand:train"


def _fill(path: str, value: str) -> str:
    start, end = path.index("{"), path.index("}")
    return path[:start] + value + path[end + 1:]


@pytest.mark.parametrize("route", sorted(RESOURCE_ROUTES))
def test_other_org_gets_404(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, victim: dict[str, str], route: tuple[str, str]
) -> None:
    method, template = route
    path = _fill(template, victim[RESOURCE_ROUTES[route]])
    before = client.get(path.replace("/run", "").replace("/events", "").replace("/allocations", ""),
                        headers=tenant.headers("admin")) if method == "GET" else None
    r = client.request(method, path, headers=other_tenant.headers("admin"))
    assert r.status_code == 404, (route, r.status_code, r.text)
    # indistinguishable from an id that does not exist at all: no existence leak
    missing = "0" * 32
    r_missing = client.request(method, _fill(template, missing), headers=other_tenant.headers("admin"))
    assert r_missing.status_code == 404
    assert r.text.replace(victim[RESOURCE_ROUTES[route]], missing) == r_missing.text
    # the victim still sees its resource unchanged
    if before is not None:
        after = client.get(path.replace("/run", "").replace("/events", "").replace("/allocations", ""),
                           headers=tenant.headers("admin"))
        assert after.status_code == before.status_code


def test_lists_show_only_own_data(client: TestClient, tenant: Tenant, other_tenant: Tenant,
                                  victim: dict[str, str]) -> None:
    h = other_tenant.headers("admin")
    for path in ("/optimize", "/jobs"):
        assert client.get(path, headers=h).json()["total"] == 0
    assert client.get("/policies", headers=h).json() == []
    own_keys = {k["id"] for k in client.get("/auth/api-keys", headers=h).json()}
    assert victim["api_key"] not in own_keys
    assert client.get("/auth/users", headers=h).json()[0]["email"] == other_tenant.email
    # and the victim's things survived the attempts
    assert client.get(f"/policies/{victim['policy']}", headers=tenant.headers()).status_code == 200
    assert client.get(f"/optimize/{victim['optimization']}", headers=tenant.headers()).status_code == 200


def test_websocket_of_other_org_is_refused(client: TestClient, other_tenant: Tenant,
                                           victim: dict[str, str]) -> None:
    with pytest.raises(WebSocketDisconnect) as info:
        with client.websocket_connect(f"/ws/jobs/{victim['job']}?token={other_tenant.keys['admin']}") as ws:
            ws.receive_json()
    assert info.value.code == 4404


def test_websocket_needs_credentials(client: TestClient, victim: dict[str, str]) -> None:
    for url in (f"/ws/jobs/{victim['job']}", f"/ws/jobs/{victim['job']}?token=ca_forged"):
        with pytest.raises(WebSocketDisconnect) as info:
            with client.websocket_connect(url) as ws:
                ws.receive_json()
        assert info.value.code == 4401


