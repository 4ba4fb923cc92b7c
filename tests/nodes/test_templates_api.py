"""The templates API: the catalog (read-only), an organization's own templates, its allow-list, and
placements resolving through them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models_nodes import Placement
from cloudarb.db.types import utcnow
from cloudarb.deploy.errors import InvalidLaunch
from cloudarb.deploy.providers.base import LaunchSpec
from cloudarb.deploy.providers.local import TAG_ORGANIZATION, LocalProvisioner
from tests.nodes.helpers import register_node
from tests.support import Tenant

NOTEBOOK: dict[str, Any] = {
    "name": "team-notebook", "title": "Team notebook", "description": "Our image with JupyterLab",
    "image": "registry.example.com:5000/team/notebook:2024.11",
    "ports": [{"container_port": 8888, "protocol": "tcp", "name": "jupyter"}],
    "command": ["jupyter", "lab", "--ip=0.0.0.0"], "env": {"HF_HOME": "/workspace/hf"},
    "health_check": {"kind": "http", "port": 8888, "path": "/api"},
}


def _error(r: Any) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


def test_catalog_is_listed_and_read_only(client: TestClient, tenant: Tenant) -> None:
    listed = client.get("/templates", headers=tenant.headers("viewer"))
    assert listed.status_code == 200, listed.text
    names = {t["name"]: t for t in listed.json()}
    assert {"pytorch-jupyter", "vllm-openai", "cuda-base"} <= set(names)
    assert names["cuda-base"]["owner"] == "catalog" and names["cuda-base"]["builtin"] and names["cuda-base"]["allowed"]
    one = client.get("/templates/vllm-openai", headers=tenant.headers("viewer"))
    assert one.status_code == 200 and one.json()["ports"][0]["container_port"] == 8000
    for method, body in (("PUT", {"image": "x/y:1"}), ("PATCH", {"title": "mine"}), ("DELETE", None)):
        r = client.request(method, "/templates/cuda-base", json=body, headers=tenant.headers("admin"))
        assert r.status_code == 403, (method, r.text)
        assert _error(r)["code"] == "template_read_only" and "catalog" in _error(r)["message"]
    taken = client.post("/templates", json={**NOTEBOOK, "name": "cuda-base"}, headers=tenant.headers("admin"))
    assert taken.status_code == 409 and _error(taken)["field"] == "name"
    assert client.get("/templates/cuda-base", headers=tenant.headers()).json()["image"].startswith("docker.io/nvidia")


def test_own_template_lifecycle(client: TestClient, tenant: Tenant) -> None:
    admin = tenant.headers("admin")
    assert client.post("/templates", json=NOTEBOOK, headers=tenant.headers("editor")).status_code == 403
    made = client.post("/templates", json=NOTEBOOK, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "organization" and made.json()["allowed"] and not made.json()["builtin"]
    assert made.json()["created_by"]
    again = client.post("/templates", json=NOTEBOOK, headers=admin)
    assert again.status_code == 409 and _error(again)["code"] == "template_exists"

    patched = client.patch("/templates/team-notebook", json={"title": "Notebook v2", "env": {"A": "1"}}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Notebook v2" and patched.json()["env"] == {"A": "1"}
    assert patched.json()["image"] == NOTEBOOK["image"]
    # the result is checked whole: dropping the port the health check uses is refused, naming the field
    orphaned = client.patch("/templates/team-notebook", json={"ports": []}, headers=admin)
    assert orphaned.status_code == 422 and _error(orphaned)["field"] == "health_check", orphaned.text
    replaced = client.put("/templates/team-notebook", json={"image": "localhost/plain:1"}, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["ports"] == [] and replaced.json()["health_check"] == {"kind": "running"}
    assert replaced.json()["title"] == ""

    assert client.delete("/templates/team-notebook", headers=tenant.headers("editor")).status_code == 403
    assert client.delete("/templates/team-notebook", headers=admin).status_code == 204
    gone = client.get("/templates/team-notebook", headers=admin)
    assert gone.status_code == 404 and _error(gone)["code"] == "template_not_found"
    assert client.delete("/templates/team-notebook", headers=admin).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "Bad Name"}, "name"),
    ({"name": "custom"}, "name"),
    ({"name": "policy"}, "name"),
    ({"image": "not an image"}, "image"),
    ({"image": ""}, "image"),
    ({"ports": [{"container_port": 0}]}, "ports.0.container_port"),
    ({"ports": [{"container_port": 22}, {"container_port": 22}], "health_check": {"kind": "running"}}, "ports"),
    ({"health_check": {"kind": "http", "port": 9999}}, "health_check"),
    ({"health_check": {"kind": "ping"}}, "health_check"),
    ({"env": {"NVIDIA_VISIBLE_DEVICES": "all"}}, "env"),
    ({"env": {"CLOUDARB_ACCESS_PASSWORD": "x"}}, "env"),
    ({"env": {"1BAD": "x"}}, "env"),
    ({"command": []}, "command"),
    ({"surprise": 1}, "surprise"),
])
def test_validation_names_the_field(client: TestClient, tenant: Tenant, change: dict[str, Any], field: str) -> None:
    r = client.post("/templates", json={**NOTEBOOK, **change}, headers=tenant.headers("admin"))
    assert r.status_code in (409, 422), r.text
    assert _error(r)["field"] == field or _error(r)["field"].startswith(field + "."), r.text


def test_other_organization_never_sees_or_touches_it(client: TestClient, tenant: Tenant, other: Tenant) -> None:
    assert client.post("/templates", json=NOTEBOOK, headers=tenant.headers("admin")).status_code == 201
    theirs = client.get("/templates", headers=other.headers("admin")).json()
    assert "team-notebook" not in [t["name"] for t in theirs]
    for method, body in (("GET", None), ("PUT", {"image": "x/y:1"}), ("PATCH", {"title": "t"}), ("DELETE", None)):
        r = client.request(method, "/templates/team-notebook", json=body, headers=other.headers("admin"))
        missing = client.request(method, "/templates/no-such-one", json=body, headers=other.headers("admin"))
        assert r.status_code == missing.status_code == 404, (method, r.text)
        assert r.text.replace("team-notebook", "no-such-one") == missing.text
    # the same name is free for the other organization, and each keeps its own
    made = client.post("/templates", json={**NOTEBOOK, "image": "localhost/globex:1"}, headers=other.headers("admin"))
    assert made.status_code == 201, made.text
    assert client.get("/templates/team-notebook", headers=tenant.headers()).json()["image"] == NOTEBOOK["image"]
    assert client.get("/templates/team-notebook", headers=other.headers()).json()["image"] == "localhost/globex:1"
    refused = client.put("/templates/policy", json={"allowed_templates": ["team-notebook", "nope"]},
                         headers=other.headers("admin"))
    assert refused.status_code == 422 and _error(refused)["field"] == "allowed_templates[1]"


def test_policy_allow_list_and_custom_images(client: TestClient, ctx: Context, tenant: Tenant, other: Tenant) -> None:
    admin = tenant.headers("admin")
    start = client.get("/templates/policy", headers=tenant.headers("viewer")).json()
    assert start["allowed_templates"] is None and start["custom_images_effective"] is True
    assert client.put("/templates/policy", json={"allowed_templates": ["cuda-base"]},
                      headers=tenant.headers("editor")).status_code == 403
    unknown = client.put("/templates/policy", json={"allowed_templates": ["cuda-base", "nope"]}, headers=admin)
    assert unknown.status_code == 422 and _error(unknown)["field"] == "allowed_templates[1]"
    set_ = client.put("/templates/policy", json={"allowed_templates": ["cuda-base"], "custom_images": False},
                      headers=admin)
    assert set_.status_code == 200, set_.text
    assert set_.json()["allowed_templates"] == ["cuda-base"] and set_.json()["custom_images_effective"] is False
    listed = {t["name"]: t["allowed"] for t in client.get("/templates", headers=admin).json()}
    assert listed["cuda-base"] and not listed["vllm-openai"]
    assert [t["name"] for t in client.get("/templates?allowed_only=true", headers=admin).json()] == ["cuda-base"]
    # another organization's policy is its own
    assert client.get("/templates/policy", headers=other.headers()).json()["allowed_templates"] is None
    assert all(t["allowed"] for t in client.get("/templates", headers=other.headers()).json())

    node = register_node(ctx, tenant.org_id, name="box1", gpus=2)
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))

    def launch(key: str, image: str) -> Placement:
        remote = prov.create(LaunchSpec(key=key, instance_type="box1/H100 SXM", region="box1",
                                        gpu_model="H100 SXM", gpu_count=1, spot=False, price_per_hour=1.0,
                                        expires_at=utcnow() + timedelta(hours=1), image=image,
                                        tags={TAG_ORGANIZATION: tenant.org_id}))
        with ctx.db.session() as session:
            p = session.get(Placement, remote.provider_id)
            assert p is not None
            session.expunge(p)
            return p

    assert launch("k-base", "cuda-base").image.startswith("docker.io/nvidia/cuda")
    with pytest.raises(InvalidLaunch, match="allow-list"):
        launch("k-vllm", "vllm-openai")
    with pytest.raises(InvalidLaunch, match="templates only"):
        launch("k-raw", "localhost/raw:1")
    # an own template, once allowed, is what a deploy naming it places
    assert client.post("/templates", json=NOTEBOOK, headers=admin).json()["allowed"] is False
    assert client.put("/templates/policy", json={"allowed_templates": ["cuda-base", "team-notebook"]},
                      headers=admin).status_code == 200
    p = launch("k-own", "team-notebook")
    assert (p.template, p.image, p.command) == ("team-notebook", NOTEBOOK["image"], NOTEBOOK["command"])
    assert p.env["HF_HOME"] == "/workspace/hf" and p.ports[0]["container_port"] == 8888
    assert node.node_id == p.node_id
    # in use: not deleted while the placement lives
    busy = client.delete("/templates/team-notebook", headers=admin)
    assert busy.status_code == 409 and _error(busy)["code"] == "template_in_use"
    # a server without custom images: organizations cannot widen it, nor make their own templates
    ctx.settings = ctx.settings.model_copy(update={"node_custom_images": False})
    wider = client.put("/templates/policy", json={"allowed_templates": None, "custom_images": True}, headers=admin)
    assert wider.status_code == 403 and _error(wider)["field"] == "custom_images"
    no_own = client.post("/templates", json={**NOTEBOOK, "name": "another"}, headers=admin)
    assert no_own.status_code == 403 and "CLOUDARB_NODE_CUSTOM_IMAGES" in _error(no_own)["message"]
