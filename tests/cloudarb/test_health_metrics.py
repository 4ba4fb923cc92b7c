"""Health and Prometheus metrics in embedded mode."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import Tenant, small_request, wait_for


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["mode"] == "embedded"
    assert body["checks"]["database"] == {"ok": True, "dialect": "sqlite"}


def test_metrics_count_requests_jobs_and_solves(client: TestClient, tenant: Tenant) -> None:
    opt_id = client.post("/optimize", json=small_request(), headers=tenant.headers()).json()["id"]
    wait_for(lambda: client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()["status"] == "finished")
    text = client.get("/metrics", headers=tenant.headers("admin")).text
    assert 'cloudarb_jobs{status="finished"} 1.0' in text
    assert "cloudarb_queue_depth 0.0" in text
    assert "cloudarb_solve_seconds_count 1.0" in text
    assert 'cloudarb_http_request_seconds_count{method="POST",route="/optimize",status="202"} 1.0' in text
    assert 'route="/optimize/{optimization_id}"' in text, "latency is labelled by route template, not raw path"


def test_openapi_names_operations(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"submit_optimization", "quick_optimize", "list_offers", "get_optimization", "cancel_optimization",
            "create_policy", "list_policy_runs", "login"} <= ops
