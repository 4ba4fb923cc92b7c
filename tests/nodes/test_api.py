"""The nodes API and the agent endpoints, through the application (TestClient)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cloudarb.agent.protocol import API_PREFIX
from cloudarb.context import Context
from tests.nodes.helpers import host, place
from tests.support import Tenant


def join(client: TestClient, tenant: Tenant, **body: Any) -> str:
    r = client.post("/nodes/join-tokens", json=body, headers=tenant.headers("admin"))
    assert r.status_code == 201, r.text
    token: str = r.json()["join_token"]
    return token


def register(client: TestClient, token: str, name: str = "box1.lab", gpus: int = 2) -> dict[str, Any]:
    r = client.post(f"{API_PREFIX}/register", json={"join_token": token, "host": host(name, gpus).model_dump(mode="json")})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_join_tokens_are_admin_only(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/nodes/join-tokens", json={}, headers=tenant.headers("editor"))
    assert r.status_code == 403
    r = client.post("/nodes/join-tokens", json={"node_name": "Bad Name!"}, headers=tenant.headers("admin"))
    assert r.status_code == 422 and r.json()["error"]["field"].endswith("node_name")


def test_register_heartbeat_and_views(client: TestClient, tenant: Tenant, ctx: Context) -> None:
    token = join(client, tenant, node_name="box1", price_per_gpu_hour=2.0)
    reg = register(client, token)
    again = client.post(f"{API_PREFIX}/register", json={"join_token": token, "host": host().model_dump(mode="json")})
    assert again.status_code == 401 and again.json()["error"]["code"] == "bad_join_token"
    auth = {"Authorization": f"Bearer {reg['node_token']}"}
    assert client.post(f"{API_PREFIX}/heartbeat", json={"host": host().model_dump(mode="json")}).status_code == 401
    beat = client.post(f"{API_PREFIX}/heartbeat", json={"host": host().model_dump(mode="json")}, headers=auth)
    assert beat.status_code == 200 and beat.json()["commands"] == []
    nodes = client.get("/nodes", headers=tenant.headers("viewer")).json()
    assert [(n["name"], n["status"], n["gpus_total"], n["gpus_free"]) for n in nodes] == [("box1", "healthy", 2, 2)]
    offers = client.get("/offers", params={"provider": "local"}, headers=tenant.headers("viewer")).json()["items"]
    assert [(o["instance_type"], o["price_per_gpu_hour"]) for o in offers] == [("box1/H100 SXM", 2.0),
                                                                                ("box1/H100 SXM/x2", 2.0)]
    pid, _ = place(ctx, tenant.org_id, reg["node_id"], "k-a", count=2)
    queued, _ = place(ctx, tenant.org_id, reg["node_id"], "k-b")
    detail = client.get(f"/nodes/{reg['node_id']}", headers=tenant.headers("viewer")).json()
    assert {g["placement_id"] for g in detail["gpus"]} == {pid}
    assert {p["id"]: p["state"] for p in detail["placements"]} == {pid: "assigned", queued: "queued"}
    queue = client.get("/nodes/placements", headers=tenant.headers("viewer")).json()
    assert [(q["id"], q["position"]) for q in queue] == [(queued, 1), (pid, None)]
    beat = client.post(f"{API_PREFIX}/heartbeat", json={"host": host().model_dump(mode="json")}, headers=auth).json()
    (cmd,) = beat["commands"]
    assert cmd["action"] == "place" and cmd["spec"]["gpu_indices"] == [0, 1]
    assert cmd["spec"]["env"]["CLOUDARB_ACCESS_PASSWORD"]
    r = client.post(f"{API_PREFIX}/commands/{cmd['id']}/progress", json={"state": "running", "container_id": "c9"},
                    headers=auth)
    assert r.status_code == 204
    creds = client.post(f"/nodes/placements/{pid}/credentials", headers=tenant.headers())
    assert creds.status_code == 200 and creds.json()["password"] == cmd["spec"]["env"]["CLOUDARB_ACCESS_PASSWORD"]
    assert client.post(f"/nodes/placements/{pid}/credentials", headers=tenant.headers()).status_code == 409
    assert client.post(f"/nodes/placements/{pid}/credentials", headers=tenant.headers("viewer")).status_code == 403
    assert client.delete(f"/nodes/placements/{pid}", headers=tenant.headers()).status_code == 409
    assert client.delete(f"/nodes/placements/{queued}", headers=tenant.headers()).json()["state"] == "destroyed"
    assert client.delete(f"/nodes/{reg['node_id']}", headers=tenant.headers("admin")).status_code == 409


def test_drain_pricing_remove(client: TestClient, tenant: Tenant, other: Tenant) -> None:
    reg = register(client, join(client, tenant, node_name="box1"))
    admin = tenant.headers("admin")
    assert client.post(f"/nodes/{reg['node_id']}/drain", headers=tenant.headers("editor")).status_code == 403
    assert client.post(f"/nodes/{reg['node_id']}/drain", headers=admin).json()["drained"] is True
    assert client.get("/offers", params={"provider": "local"}, headers=admin).json()["items"] == []
    assert client.post(f"/nodes/{reg['node_id']}/undrain", headers=admin).json()["drained"] is False
    r = client.put(f"/nodes/{reg['node_id']}/pricing", json={"model_prices": {"h100 sxm": 0.8}}, headers=admin)
    assert r.status_code == 200 and r.json()["model_prices"] == {"H100 SXM": 0.8}
    offers = client.get("/offers", params={"provider": "local"}, headers=admin).json()["items"]
    assert [o["price_per_gpu_hour"] for o in offers] == [0.8, 0.8]  # 1 and 2 GPUs
    r = client.put(f"/nodes/{reg['node_id']}/pricing", json={"model_prices": {"warp drive": 1}}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["field"] == "model_prices.warp drive"
    assert client.get(f"/nodes/{reg['node_id']}", headers=other.headers("admin")).status_code == 404
    assert client.delete(f"/nodes/{reg['node_id']}", headers=admin).status_code == 204
    assert client.get("/nodes", headers=admin).json() == []
    assert client.get("/offers", params={"provider": "local"}, headers=admin).json()["items"] == []
    beat = client.post(f"{API_PREFIX}/heartbeat", json={"host": host().model_dump(mode="json")},
                       headers={"Authorization": f"Bearer {reg['node_token']}"})
    assert beat.status_code == 401


def test_templates(client: TestClient, tenant: Tenant) -> None:
    names = [t["name"] for t in client.get("/templates", headers=tenant.headers("viewer")).json()]
    assert names == ["cuda-base", "pytorch-jupyter", "vllm-openai"]
