"""The fakes answer in the documented shapes: every response of a full lifecycle (and each error)
validated against the schemas transcribed from the providers' OpenAPI documents (``fakes/shapes.py``)."""
# ruff: noqa: F811  (fixtures are imported from tests/deploy/fakes/fixtures.py and used as parameters)

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from tests.deploy.fakes import shapes
from tests.deploy.fakes.fixtures import (  # noqa: F401
    lambda_fake,
    lambda_server,
    runpod_fake,
    runpod_server,
    runpod_v2_fake,
    runpod_v2_server,
)
from tests.deploy.fakes.lambda_cloud import API_KEY as LAMBDA_KEY
from tests.deploy.fakes.runpod import API_KEY as RUNPOD_KEY
from tests.deploy.fakes.runpod_v2 import API_KEY as RUNPOD_V2_KEY
from tests.deploy.fakes.server import FakeServer


def _check(response: httpx.Response, status: int, schema: dict[str, Any]) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    jsonschema.validate(body, schema)
    return body


def test_lambda_fake_shapes(lambda_fake: FakeServer) -> None:
    fake = lambda_fake
    fake.control(destroy_linger_calls=1)
    api = httpx.Client(base_url=f"{fake.url}/api/v1", headers={"Authorization": f"Bearer {LAMBDA_KEY}"}, timeout=5)
    _check(api.post("/ssh-keys", json={"name": "k1", "public_key": "ssh-ed25519 AAAA k"}), 200,
           shapes.LAMBDA["ssh_key"])
    _check(api.get("/ssh-keys"), 200, shapes.LAMBDA["ssh_keys"])
    launch = {"region_name": "us-west-1", "instance_type_name": "gpu_8x_h100_sxm5", "ssh_key_names": ["k1"],
              "name": "n1", "tags": [{"key": "cloudarb:key", "value": "n1"}]}
    ids = _check(api.post("/instance-operations/launch", json=launch), 200, shapes.LAMBDA["launch"])
    instance_id = ids["data"]["instance_ids"][0]
    for _ in range(2):  # booting, then active
        _check(api.get(f"/instances/{instance_id}"), 200, shapes.LAMBDA["get"])
    _check(api.get("/instances"), 200, shapes.LAMBDA["list"])
    done = _check(api.post("/instance-operations/terminate", json={"instance_ids": [instance_id]}), 200,
                  shapes.LAMBDA["terminate"])
    assert done["data"]["terminated_instances"][0]["status"] == "terminating"
    _check(api.get(f"/instances/{instance_id}"), 200, shapes.LAMBDA["get"])
    gone = _check(api.get(f"/instances/{instance_id}"), 404, shapes.LAMBDA["error"])
    assert gone["error"]["code"] == "global/object-does-not-exist"
    bad = dict(launch, ssh_key_names=["k1", "k2"])
    assert _check(api.post("/instance-operations/launch", json=bad), 400,
                  shapes.LAMBDA["error"])["error"]["code"] == "global/invalid-parameters"
    for error, status in (("no_capacity", 400), ("quota", 400), ("account_inactive", 403), ("server_error", 500)):
        fake.fault("create", error=error)
        _check(api.post("/instance-operations/launch", json=launch), status, shapes.LAMBDA["error"])
    basic = httpx.get(f"{fake.url}/api/v1/instances", auth=(LAMBDA_KEY, ""), timeout=5)
    _check(basic, 200, shapes.LAMBDA["list"])
    _check(httpx.get(f"{fake.url}/api/v1/instances", timeout=5), 401, shapes.LAMBDA["error"])


def test_runpod_fake_shapes(runpod_fake: FakeServer) -> None:
    fake = runpod_fake
    api = httpx.Client(base_url=f"{fake.url}/v1", headers={"Authorization": f"Bearer {RUNPOD_KEY}"}, timeout=5)
    body = {"name": "p1", "imageName": "runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel-ubuntu22.04",
            "gpuTypeIds": ["NVIDIA H100 80GB HBM3"], "gpuCount": 1, "cloudType": "SECURE", "ports": ["22/tcp"]}
    pod = _check(api.post("/pods", json=body), 201, shapes.RUNPOD["pod"])
    for _ in range(2):
        _check(api.get(f"/pods/{pod['id']}"), 200, shapes.RUNPOD["pod"])
    assert _check(api.get("/pods", params={"name": "p1"}), 200, shapes.RUNPOD["pods"])[0]["id"] == pod["id"]
    assert _check(api.get("/pods", params={"name": "p2"}), 200, shapes.RUNPOD["pods"]) == []
    _check(api.post(f"/pods/{pod['id']}/stop"), 200, shapes.RUNPOD["pod"])
    assert api.delete(f"/pods/{pod['id']}").status_code == 204
    _check(api.get(f"/pods/{pod['id']}"), 404, shapes.RUNPOD["error"])
    _check(api.delete(f"/pods/{pod['id']}"), 404, shapes.RUNPOD["error"])
    _check(api.post("/pods", json=dict(body, gpuTypeIds=["NVIDIA H100"])), 400, shapes.RUNPOD["error"])
    for error, status in (("no_capacity", 400), ("quota", 400), ("server_error", 500)):
        fake.fault("create", error=error)
        _check(api.post("/pods", json=body), status, shapes.RUNPOD["error"])
    _check(httpx.get(f"{fake.url}/v1/pods", timeout=5), 401, shapes.RUNPOD["error"])


def test_runpod_v2_fake_shapes(runpod_v2_fake: FakeServer) -> None:
    fake = runpod_v2_fake
    api = httpx.Client(base_url=f"{fake.url}/v2", headers={"Authorization": f"Bearer {RUNPOD_V2_KEY}"}, timeout=5)
    body = {"name": "p1", "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
            "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1}, "ports": ["22/tcp"], "startSsh": True}
    pod = _check(api.post("/pods", json=body), 201, shapes.RUNPOD_V2["pod"])
    for _ in range(2):
        _check(api.get(f"/pods/{pod['id']}"), 200, shapes.RUNPOD_V2["pod"])
    _check(api.get("/pods"), 200, shapes.RUNPOD_V2["pods"])
    _check(api.post(f"/pods/{pod['id']}/action", json={"action": "stop"}), 200, shapes.RUNPOD_V2["pod"])
    assert api.delete(f"/pods/{pod['id']}").status_code == 204
    _check(api.get(f"/pods/{pod['id']}"), 404, shapes.RUNPOD_V2["problem"])
    _check(api.post("/pods", json=dict(body, interruptible=True)), 422, shapes.RUNPOD_V2["problem"])
    fake.fault("list", error="rate_limit", retry_after="12")
    limited = api.get("/pods")
    assert limited.headers["Retry-After"] == "12"
    assert limited.headers["content-type"] == "application/problem+json"
    _check(limited, 429, shapes.RUNPOD_V2["problem"])


@pytest.mark.parametrize("retry_after", [None, "4"])
def test_rate_limit_header_only_when_asked(runpod_fake: FakeServer, retry_after: str | None) -> None:
    runpod_fake.fault("list", error="rate_limit", retry_after=retry_after)
    answer = httpx.get(f"{runpod_fake.url}/v1/pods", headers={"Authorization": f"Bearer {RUNPOD_KEY}"}, timeout=5)
    assert answer.status_code == 429
    assert answer.headers.get("Retry-After") == retry_after
