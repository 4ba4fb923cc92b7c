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
    ("PATCH", "/policies/{policy_id}"): "policy",
    ("GET", "/optimize/{optimization_id}/export"): "optimization",
    ("POST", "/optimize/{optimization_id}/deploy"): "optimization",
    ("POST", "/optimize/{optimization_id}/kubernetes-apply"): "optimization",
    ("POST", "/optimize/{optimization_id}/terraform-apply"): "optimization",
    ("GET", "/deployments/{deployment_id}"): "deployment",
    ("DELETE", "/deployments/{deployment_id}"): "deployment",
    ("POST", "/deployments/{deployment_id}/done"): "deployment",
    ("POST", "/deployments/{deployment_id}/extend"): "deployment",
    ("POST", "/deployments/{deployment_id}/stop"): "deployment",
    ("POST", "/deployments/{deployment_id}/start"): "deployment",
    ("GET", "/hooks/{hook_id}"): "hook",
    ("PATCH", "/hooks/{hook_id}"): "hook",
    ("DELETE", "/hooks/{hook_id}"): "hook",
    ("POST", "/hooks/{hook_id}/test"): "hook",
    ("GET", "/hooks/deliveries/{delivery_id}"): "delivery",
    ("GET", "/kubernetes-applies/{apply_id}"): "k8s_apply",
    ("GET", "/nodes/{node_id}"): "node",
    ("DELETE", "/nodes/{node_id}"): "node",
    ("POST", "/nodes/{node_id}/drain"): "node",
    ("POST", "/nodes/{node_id}/undrain"): "node",
    ("PUT", "/nodes/{node_id}/pricing"): "node",
    ("DELETE", "/nodes/placements/{placement_id}"): "placement",
    ("POST", "/nodes/placements/{placement_id}/credentials"): "placement",
    ("GET", "/templates/{name}"): "template",
    ("PUT", "/templates/{name}"): "template",
    ("PATCH", "/templates/{name}"): "template",
    ("DELETE", "/templates/{name}"): "template",
}

# A valid body or query for routes that need one: a 404 must come from ownership, not from validation.
REQUEST_PARTS: dict[tuple[str, str], dict[str, object]] = {
    ("PATCH", "/policies/{policy_id}"): {"json": {"name": "renamed"}},
    ("GET", "/optimize/{optimization_id}/export"): {"params": {"format": "csv"}},
    ("POST", "/optimize/{optimization_id}/deploy"): {"json": {}},
    ("POST", "/optimize/{optimization_id}/kubernetes-apply"): {"json": {}},
    ("POST", "/optimize/{optimization_id}/terraform-apply"): {"json": {}},
    ("POST", "/deployments/{deployment_id}/extend"): {"json": {"hours": 1}},
    ("PATCH", "/hooks/{hook_id}"): {"json": {"enabled": False}},
    ("PUT", "/nodes/{node_id}/pricing"): {"json": {"price_per_gpu_hour": 9.0}},
    ("PUT", "/templates/{name}"): {"json": {"image": "localhost/thief:1"}},
    ("PATCH", "/templates/{name}"): {"json": {"title": "stolen"}},
}

# Routes with an id in the path that name shared market data, not an organization's resource. They
# are listed (not silently skipped) so each one is a decision; what they create is checked below.
MARKET_DATA_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/providers/{provider}/refresh"): "pricing provider key (market data shared by every organization)",
    ("POST", "/offers/{offer_key}/deploy"): "an offer is market data; the deployment it creates is the caller's",
}

# Routes authenticated by a node's own credential, not by an organization's user: a node may touch only
# its own commands (checked in ``test_a_node_cannot_report_on_another_nodes_command``).
NODE_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/agent/v1/commands/{command_id}/progress"): "a command of the calling node",
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
    assert _all_routes(ctx) == set(RESOURCE_ROUTES) | set(MARKET_DATA_ROUTES) | set(NODE_ROUTES)
    assert not set(RESOURCE_ROUTES) & set(MARKET_DATA_ROUTES)
    assert set(REQUEST_PARTS) <= set(RESOURCE_ROUTES)


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
    hook = client.post("/hooks", json={"name": "ops", "kind": "webhook", "url": "https://hooks.example.com/ca",
                                       "events": ["deploy.after"]}, headers=tenant.headers("admin"))
    assert hook.status_code == 201, hook.text
    template = client.post("/templates", json={"name": "victim-tpl", "image": "localhost/victim:1"},
                           headers=tenant.headers("admin"))
    assert template.status_code == 201, template.text
    return {"template": "victim-tpl", "optimization": opt["id"], "job": opt["job_id"], "policy": policy["id"], "api_key": key["id"],
            "demand_series": series, "hook": hook.json()["id"], **_stored_deploy_rows(ctx, tenant, opt["id"],
                                                                                     hook.json()["id"])}


def _stored_deploy_rows(ctx: Context, tenant: Tenant, optimization_id: str, hook_id: str) -> dict[str, str]:
    """A deployment, a hook delivery, a Kubernetes apply record, a node and a placement of the victim's,
    written directly (no provider, cluster or agent is needed to own a row)."""
    from datetime import timedelta

    from cloudarb.db.models_deploy import Deployment
    from cloudarb.db.models_hooks import HookDelivery, KubernetesApply
    from cloudarb.db.types import utcnow
    from tests.nodes.helpers import place, register_node

    with ctx.db.session() as session:
        dep = Deployment(organization_id=tenant.org_id, optimization_id=optimization_id, name="victim", status="running",
                         spec={}, lifetime_s=3600.0, max_lifetime_s=43200.0,
                         expires_at=utcnow() + timedelta(hours=1))
        delivery = HookDelivery(hook_id=hook_id, organization_id=tenant.org_id, event="deploy.after", payload={})
        applied = KubernetesApply(organization_id=tenant.org_id, optimization_id=optimization_id, options={})
        session.add_all([dep, delivery, applied])
        session.flush()
        ids = {"deployment": dep.id, "delivery": delivery.id, "k8s_apply": applied.id}
    node = register_node(ctx, tenant.org_id, name="victimbox")
    placement, _ = place(ctx, tenant.org_id, node.node_id, "cloudarb-test-victim-0")
    return {**ids, "node": node.node_id, "placement": placement, "node_token": node.node_token}


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
    parts = REQUEST_PARTS.get(route, {})
    r = client.request(method, path, headers=other_tenant.headers("admin"), **parts)  # type: ignore[arg-type]
    assert r.status_code == 404, (route, r.status_code, r.text)
    # indistinguishable from an id that does not exist at all: no existence leak
    missing = "0" * 32
    r_missing = client.request(method, _fill(template, missing), headers=other_tenant.headers("admin"),
                               **parts)  # type: ignore[arg-type]
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




def test_a_node_cannot_report_on_another_nodes_command(client: TestClient, ctx: Context, tenant: Tenant,
                                                      other_tenant: Tenant, victim: dict[str, str]) -> None:
    from sqlalchemy import select

    from cloudarb.agent.protocol import API_PREFIX
    from cloudarb.db.models_nodes import NodeCommand
    from tests.nodes.helpers import register_node

    with ctx.db.session() as session:
        row = session.scalars(select(NodeCommand).where(NodeCommand.node_id == victim["node"])).first()
        assert row is not None, "the victim's placement queued a command for its node"
        command, before = row.id, (row.state, row.progress, row.message)
    intruder = register_node(ctx, other_tenant.org_id, name="intruderbox")
    path = f"{API_PREFIX}/commands/{command}/progress"
    body = {"state": "failed", "error": "not yours"}
    r = client.post(path, json=body, headers={"Authorization": f"Bearer {intruder.node_token}"})
    assert r.status_code == 404, r.text
    assert client.post(path, json=body).status_code == 401, "no node credential"
    missing = client.post(f"{API_PREFIX}/commands/{'0' * 32}/progress", json=body,
                          headers={"Authorization": f"Bearer {intruder.node_token}"})
    assert missing.status_code == 404 and missing.text == r.text.replace(command, "0" * 32)
    with ctx.db.session() as session:
        row = session.get(NodeCommand, command)
        assert row is not None and (row.state, row.progress, row.message) == before, "the victim's command is untouched"
