"""Health, liveness/readiness and Prometheus metrics in embedded mode."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Tenant, small_request, wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["mode"] == "embedded"
    assert body["checks"]["database"] == {"ok": True, "dialect": "sqlite"}


def test_livez_and_readyz(client: TestClient) -> None:
    assert client.get("/livez").json()["status"] == "alive"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True


def test_metrics_count_requests_jobs_and_solves(client: TestClient, tenant: Tenant) -> None:
    admin = tenant.headers("admin")
    before = client.get("/metrics", headers=admin).text
    opt_id = client.post("/optimize", json=small_request(), headers=tenant.headers()).json()["id"]
    wait_for(lambda: client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()["status"] == "finished")
    text = client.get("/metrics", headers=admin).text
    post = {"method": "POST", "route": "/optimize", "status": "202"}
    assert value(text, "cloudarb_http_requests_total", **post) - value(before, "cloudarb_http_requests_total",
                                                                        **post) == 1
    assert value(text, "cloudarb_http_request_seconds_count", **post) \
        - value(before, "cloudarb_http_request_seconds_count", **post) == 1
    outcome = {"kind": "optimize", "outcome": "finished"}
    assert value(text, "cloudarb_jobs_total", **outcome) - value(before, "cloudarb_jobs_total", **outcome) == 1
    assert value(text, "cloudarb_job_seconds_count", **outcome) \
        - value(before, "cloudarb_job_seconds_count", **outcome) == 1
    assert value(text, "cloudarb_solve_seconds_count") - value(before, "cloudarb_solve_seconds_count") == 1
    assert value(text, "cloudarb_queue_depth", queue="cloudarb") == 0
    assert 'route="/optimize/{optimization_id}"' in text, "latency is labelled by route template, not raw path"


def test_request_id_is_returned_and_kept(client: TestClient) -> None:
    given = client.get("/livez", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    fresh = client.get("/livez", headers={"X-Request-ID": "not ok; spaces"})
    assert fresh.headers["x-request-id"] != "not ok; spaces" and len(fresh.headers["x-request-id"]) == 32


def test_openapi_names_operations(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"submit_optimization", "quick_optimize", "list_offers", "get_optimization", "cancel_optimization",
            "create_policy", "list_policy_runs", "login", "livez", "readyz"} <= ops
