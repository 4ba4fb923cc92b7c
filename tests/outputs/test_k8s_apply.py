"""Server-side apply through the official client against a loopback server that answers the documented
Kubernetes API responses: the calls (PATCH, apply-patch+yaml, fieldManager, force), the order, error
translation, and the whole job path from POST /optimize/{id}/kubernetes-apply, hooks included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.deploy.errors import AuthFailed, InvalidLaunch, ProviderUnavailable
from cloudarb.deploy.k8s_apply import api_client, apply_object, ordered
from cloudarb.deploy.renderers.kubernetes import KubernetesOptions, objects
from tests.outputs.receivers import FakeKubeAPI, Receiver
from tests.outputs.support import fleet_plan, store_fleet
from tests.support import Tenant, wait_for

PATHS = {
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}",
    "LocalQueue": "/apis/kueue.x-k8s.io/v1beta1/namespaces/{ns}/localqueues/{name}",
    "ResourceFlavor": "/apis/kueue.x-k8s.io/v1beta1/resourceflavors/{name}",
}
KUEUE = KubernetesOptions(namespace="ml", kueue_cluster_queue="team-a")


def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(api.kubeconfig())
    return path


def test_each_object_is_a_server_side_apply(tmp_path: Path) -> None:
    docs = ordered(objects(fleet_plan(), KUEUE))
    with FakeKubeAPI() as api:
        client = api_client(kubeconfig(api, tmp_path))
        first = [apply_object(client, d) for d in docs]
        again = [apply_object(client, d) for d in docs]
        client.close()
    assert [a.status for a in first] == [201] * len(docs) and [a.status for a in again] == [200] * len(docs)
    assert all(a.uid for a in first)
    assert docs[0]["kind"] == "ResourceFlavor"
    kinds = [d["kind"] for d in docs]
    assert kinds.index("LocalQueue") < kinds.index("Job")  # the queue exists before the jobs that name it
    for doc, req in zip(docs, api.requests[: len(docs)]):
        assert req.method == "PATCH"
        assert req.headers["content-type"] == "application/apply-patch+yaml"
        assert req.query == {"fieldManager": ["cloudarb"], "force": ["true"]}
        ns = doc["metadata"].get("namespace", "")
        assert req.path == PATHS[doc["kind"]].format(ns=ns, name=doc["metadata"]["name"])
        assert json.loads(req.body) == doc


def test_errors_are_translated(tmp_path: Path) -> None:
    docs = ordered(objects(fleet_plan(), KUEUE))
    flavor = next(d for d in docs if d["kind"] == "ResourceFlavor")
    job = next(d for d in docs if d["kind"] == "Job")
    with FakeKubeAPI(served={"jobs"}) as api:
        client = api_client(kubeconfig(api, tmp_path))
        with pytest.raises(InvalidLaunch, match="could not find the requested resource"):
            apply_object(client, flavor)  # Kueue not installed
        client.close()
        api.token = "rotated"
        client = api_client(kubeconfig(api, tmp_path))
        api.token = "expected-other"
        with pytest.raises(AuthFailed):
            apply_object(client, job)
        client.close()
    gone = api_client(kubeconfig(api, tmp_path))  # the server has shut down
    gone.configuration.retries = 0
    with pytest.raises(ProviderUnavailable):
        apply_object(gone, job)
    gone.close()


def _apply(client: TestClient, tenant: Tenant, opt: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/optimize/{opt}/kubernetes-apply", json=body, headers=tenant.headers("editor"))
    assert r.status_code == 202, r.text
    accepted: dict[str, Any] = r.json()
    return accepted


def _settled(client: TestClient, tenant: Tenant, apply_id: str) -> dict[str, Any]:
    def done() -> Any:
        row = client.get(f"/kubernetes-applies/{apply_id}", headers=tenant.headers("viewer")).json()
        return row["status"] in ("finished", "failed") and row

    row: dict[str, Any] = wait_for(done, timeout=60, interval=0.2)  # API polls: under the rate limit (600/min)
    return row


@pytest.fixture()
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    api = FakeKubeAPI()
    with api:
        path = tmp_path_factory.mktemp("kube") / "config"
        path.write_text(api.kubeconfig())
        yield api, path


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_the_apply_job_applies_every_object_and_reports_to_hooks(
    client: TestClient, ctx: Context, tenant: Tenant, cluster: Any
) -> None:
    api, path = cluster
    ctx.settings.deploy_kubeconfig = path
    with ctx.db.session() as session:
        opt = store_fleet(session, tenant.org_id)
    with Receiver(200) as rx:
        client.post("/hooks", json={"name": "ops", "kind": "webhook", "url": rx.url, "events": ["deploy.*"]},
                    headers=tenant.headers("admin"))
        accepted = _apply(client, tenant, opt, {"namespace": "ml", "kueue_cluster_queue": "team-a"})
        row = _settled(client, tenant, accepted["id"])
        wait_for(lambda: len(rx.requests) == 2, timeout=30)
    assert row["status"] == "finished" and row["error"] is None and row["deployment_id"] == accepted["id"]
    expected = ordered(objects(fleet_plan(), KUEUE))
    assert [a["kind"] for a in row["applied"]] == [d["kind"] for d in expected]
    shared = [d for d in expected if d["kind"] in ("ResourceFlavor", "LocalQueue")]
    assert [a["name"] for a in row["applied"][: len(shared)]] == [d["metadata"]["name"] for d in shared]
    dep = client.get(f"/deployments/{accepted['id']}", headers=tenant.headers("viewer")).json()
    assert [a["name"] for a in row["applied"][len(shared):]] == [i["key"] for i in dep["instances"]]
    assert len(api.requests) == len(expected)
    events = [json.loads(r.body) for r in rx.requests]
    assert [e["event"] for e in events] == ["deploy.before", "deploy.after"]
    assert events[1]["data"]["ok"] is True and len(events[1]["data"]["applied"]) == len(expected)
    assert events[1]["data"]["deployment_id"] == accepted["id"] and events[1]["data"]["status"] == "running"
    steps = client.get(f"/jobs/{accepted['job_id']}/events", headers=tenant.headers("viewer")).json()
    assert sum(1 for e in steps if e["type"] == "progress" and e.get("object")) == len(expected)


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_a_failing_before_hook_stops_the_apply(client: TestClient, ctx: Context, tenant: Tenant,
                                               cluster: Any) -> None:
    api, path = cluster
    ctx.settings.deploy_kubeconfig = path
    with ctx.db.session() as session:
        opt = store_fleet(session, tenant.org_id)
    with Receiver(409) as rx:
        client.post("/hooks", json={"name": "freeze", "kind": "webhook", "url": rx.url, "events": ["deploy.before"]},
                    headers=tenant.headers("admin"))
        row = _settled(client, tenant, _apply(client, tenant, opt, {})["id"])
    assert row["status"] == "failed" and "freeze" in row["error"] and "HTTP 409" in row["error"]
    assert api.requests == [] and row["applied"] == []
