"""The original CloudArb API's examples, verbatim, through the API; placement, elastic and Pareto
fronts through the API; the translation of the original shapes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.errors import InvalidInput
from cloudarb.optimize.original import OriginalOptimizeRequest, request_shape
from tests.support import PASSWORD, Tenant, wait_for

QUICK = {"gpu_type": "a100", "gpu_count": 4, "workload_type": "training", "budget_per_hour": 50}

ORIGINAL = {
    "name": "Training Optimization",
    "description": "Optimize cost for ML training workload",
    "workloads": [
        {
            "gpu_type": "a100",
            "min_count": 4,
            "max_count": 8,
            "workload_type": "training",
        }
    ],
    "objective": "minimize_cost",
    "constraints": [
        {
            "name": "budget",
            "type": "budget",
            "operator": "<=",
            "value": 100,
        }
    ],
    "risk_tolerance": 0.1,
    "time_horizon_hours": 24,
}


def bearer(client: TestClient, tenant: Tenant) -> dict[str, str]:
    r = client.post("/auth/login", json={"email": tenant.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def finished(client: TestClient, headers: dict[str, str], opt_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/optimize/{opt_id}", headers=headers).json()
        return body if body["status"] in ("finished", "infeasible", "failed") else None

    result: dict[str, Any] = wait_for(done, timeout=120)
    return result


def test_quick_optimize_example_verbatim_finishes_with_a_plan(client: TestClient, tenant: Tenant) -> None:
    headers = bearer(client, tenant)
    r = client.post("/optimize/quick-optimize", json=QUICK, headers=headers)
    assert r.status_code == 202, r.text
    opt = finished(client, headers, r.json()["id"])
    assert opt["status"] == "finished", opt
    assert opt["request"]["workloads"][0]["allowed_gpu_models"] == [
        "A100 80GB SXM", "A100 80GB PCIe", "A100 40GB SXM", "A100 40GB PCIe"]
    lines = client.get(f"/optimize/{opt['id']}/allocations", headers=headers).json()
    assert sum(ln["gpus"] for ln in lines) >= 4
    assert all(ln["gpu_model"].startswith("A100") for ln in lines)
    assert opt["result"]["totals"]["cost_per_hour"] <= 50
    assert "days old" in opt["result"]["stale_prices"], "the bundled prices are months old and the result says so"


def test_original_optimize_example_verbatim_finishes_with_a_plan(client: TestClient, tenant: Tenant) -> None:
    headers = bearer(client, tenant)
    r = client.post("/optimize/", json=ORIGINAL, headers=headers)
    assert r.status_code == 202, r.text
    opt = finished(client, headers, r.json()["id"])
    assert opt["status"] == "finished", opt
    stored = opt["request"]
    assert stored["objective"] == "cost" and stored["horizon_hours"] == 24 and stored["risk_tolerance"] == 0.1
    assert stored["constraints"]["budget_per_hour"] == 100
    w = stored["workloads"][0]
    assert (w["gpus_min"], w["gpus_max"], w["workload_type"]) == (4, 8, "training")
    lines = client.get(f"/optimize/{opt['id']}/allocations", headers=headers).json()
    gpus = sum(ln["gpus"] for ln in lines)
    assert 4 <= gpus and all(ln["gpu_model"].startswith("A100") for ln in lines)
    assert opt["result"]["totals"]["cost_per_hour"] <= 100
    baselines = {s["baseline"]: s for s in opt["result"]["savings"]}
    assert "skypilot_rule" in baselines
    assert baselines["skypilot_rule"]["savings_per_hour"] is None or baselines["skypilot_rule"]["savings_per_hour"] >= -1e-6


def test_original_shape_is_in_the_openapi_document(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/optimize"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    names = {ref["$ref"].rsplit("/", 1)[-1] for ref in body["anyOf"]}
    assert names == {"OptimizeRequest", "OriginalOptimizeRequest"}
    assert "time_horizon_hours" in doc["components"]["schemas"]["OriginalOptimizeRequest"]["properties"]


@pytest.mark.parametrize("body,field", [
    ({**QUICK, "gpu_type": "a1000x"}, "gpu_type"),
    ({**ORIGINAL, "workloads": [{"gpu_type": "h1000", "min_count": 2}]}, "workloads.0.gpu_type"),
    ({**ORIGINAL, "constraints": [{"name": "x", "type": "latency", "operator": "<=", "value": 3}]},
     "constraints.0.type"),
    ({**ORIGINAL, "constraints": [{"name": "budget", "type": "budget", "operator": ">=", "value": 3}]},
     "constraints.0.operator"),
])
def test_untranslatable_input_is_a_422_naming_the_field(
    client: TestClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    path = "/optimize/quick-optimize" if "gpu_count" in body else "/optimize"
    r = client.post(path, json=body, headers=tenant.headers())
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_translation_of_objectives_and_constraints() -> None:
    req = OriginalOptimizeRequest.model_validate({
        "gpu_type": "H100:8", "min_count": 16, "objective": "balanced",
        "constraints": [
            {"type": "spot_share", "operator": "<=", "value": 0.5},
            {"type": "providers", "operator": "in", "value": ["AWS", "lambda"]},
            {"type": "denied_providers", "operator": "not_in", "value": ["vast"]},
            {"type": "min_vram_gb", "operator": ">=", "value": 80},
        ],
    }).to_request()
    w = req.workloads[0]
    assert w.allowed_gpu_models == ["H100 SXM", "H100 PCIe", "H100 NVL"] and w.gpus_per_node == 8
    assert (w.gpus_min, w.gpus_max, w.min_vram_gb, w.denied_providers) == (16, None, 80, ["vast"])
    assert req.objective == "weighted" and req.weights.performance == 1.0
    assert req.constraints.max_spot_share == 0.5 and req.offers.providers == ["aws", "lambda"]
    with pytest.raises(InvalidInput) as err:
        OriginalOptimizeRequest.model_validate({"description": "nothing to run"}).to_request()
    assert err.value.field == "workloads"


def test_request_shape_tells_original_from_current() -> None:
    assert request_shape(ORIGINAL) == "original" and request_shape(QUICK) == "original"
    assert request_shape({"workloads": [{"id": "a", "gpus_min": 1}], "objective": "cost"}) == "current"
    assert request_shape({"workloads": [{"id": "a", "gpus_min": 1}], "constraints": []}) == "original"


def test_placement_elastic_and_pareto_through_the_api(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    body = {
        "name": "placed",
        "workloads": [
            {"id": "train", "gpus_min": 16, "gpus_per_node": 8, "allowed_gpu_models": ["h100"],
             "placement": "same_zone", "elastic": False},
            {"id": "serve", "gpus_min": 4, "allowed_gpu_models": ["L4"], "workload_type": "inference",
             "placement": "any", "elastic": True},
        ],
        "pareto_points": 3,
        "time_limit_s": 20,
    }
    r = client.post("/optimize", json=body, headers=tenant.headers())
    assert r.status_code == 202, r.text
    opt = finished(client, tenant.headers(), r.json()["id"])
    assert opt["status"] == "finished", opt
    w = {x["id"]: x for x in opt["request"]["workloads"]}
    assert (w["train"]["placement"], w["train"]["elastic"]) == ("same_zone", False)
    assert (w["serve"]["placement"], w["serve"]["elastic"]) == ("any", True)
    lines = client.get(f"/optimize/{opt['id']}/allocations", headers=tenant.headers()).json()
    train = [ln for ln in lines if ln["workload_id"] == "train"]
    assert sum(ln["gpus"] for ln in train) >= 16
    assert len({(ln["provider"], ln["seller"], ln["region"]) for ln in train}) == 1, "one placement"
    fronts = opt["result"]["fronts"]
    assert fronts is not None and fronts["cost_risk"] and fronts["cost_performance"]
    costs = [p["cost_per_hour"] for p in fronts["cost_performance"]]
    assert min(costs) >= opt["result"]["totals"]["cost_per_hour"] - 1e-6, "no front point beats the optimum's cost"
