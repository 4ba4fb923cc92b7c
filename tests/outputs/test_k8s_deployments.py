"""Kubernetes applies as deployments, against the loopback API server (``FakeKubeAPI``): the apply is a
deployment of target ``kubernetes`` with one instance per object, listed and streamed like any
deployment; ``done`` deletes every object (DELETE, then reads until the 404 that proves it gone); a
delete that fails is retried, never marked destroyed without proof; the reconciler lists objects by
CloudArb's label, adopts and destroys an orphan and ends a row whose object vanished."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models_deploy import DeployAlert, DeployInstance
from cloudarb.db.types import utcnow
from cloudarb.deploy import states as st
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.env import env_for
from cloudarb.deploy.providers.base import ProviderConfig, RemoteState
from cloudarb.deploy.providers.kubernetes import KEY_LABEL, KubernetesProvisioner
from cloudarb.deploy.reconcile import reconcile
from cloudarb.deploy.sweep import retry_destroys
from tests.outputs.receivers import FakeKubeAPI
from tests.outputs.support import store_fleet
from tests.support import Tenant, wait_for

JOB = "/apis/batch/v1/namespaces/{ns}/jobs/{name}"


@pytest.fixture()
def cluster(tmp_path: Path) -> Any:
    api = FakeKubeAPI(linger=1)
    with api:
        path = tmp_path / "kubeconfig"
        path.write_text(api.kubeconfig())
        yield api, path


def _deployment(client: TestClient, tenant: Tenant, dep_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/deployments/{dep_id}", headers=tenant.headers("viewer")).json()
        return body if body["status"] in statuses else None

    found: dict[str, Any] = wait_for(done, timeout=60, interval=0.2)  # API polls: under the rate limit (600/min)
    return found


def _applied(client: TestClient, ctx: Context, tenant: Tenant, path: Path, body: dict[str, Any] | None = None,
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx.settings.deploy_kubeconfig = path
    with ctx.db.session() as session:
        opt = store_fleet(session, tenant.org_id)
    r = client.post(f"/optimize/{opt}/kubernetes-apply", json={"namespace": "ml", **(body or {})},
                    headers=tenant.headers("editor"))
    assert r.status_code == 202, r.text
    accepted: dict[str, Any] = r.json()
    return accepted, _deployment(client, tenant, accepted["deployment_id"], ("running", "partial", "failed"))


def _kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    path = tmp_path / "kc"
    path.write_text(api.kubeconfig())
    return path


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_an_apply_is_a_deployment_with_one_instance_per_object_listed_and_streamed(
    client: TestClient, ctx: Context, tenant: Tenant, cluster: Any
) -> None:
    api, path = cluster
    accepted, dep = _applied(client, ctx, tenant, path)
    assert accepted["websocket_url"].endswith(f"/ws/deployments/{accepted['deployment_id']}")
    assert dep["status"] == "running" and dep["target"] == "kubernetes"
    assert "meters nothing" in dep["details"]["metering"] and dep["cost_so_far"] == 0
    assert dep["rate_per_hour"] == 0 and all(i["price_per_hour"] == 0 for i in dep["instances"])
    stored = {p: o for p, o in api.objects.items()}
    assert len(dep["instances"]) == len(stored) >= 2
    for inst in dep["instances"]:
        kind, ns, name = inst["provider_id"].split("/")
        assert inst["provider"] == "kubernetes" and inst["state"] == "running" and ns == "ml" and name == inst["key"]
        assert inst["address"] == f"ml/{name}"
        obj = next(o for o in stored.values() if o["metadata"]["name"] == name)
        assert obj["kind"] == kind and obj["metadata"]["labels"][KEY_LABEL] == inst["key"]
        assert obj["metadata"]["labels"]["cloudarb.io/deployment"] == dep["id"]
    listed = client.get("/deployments", headers=tenant.headers("viewer")).json()
    assert [d["id"] for d in listed["items"]] == [dep["id"]] and listed["items"][0]["target"] == "kubernetes"
    with client.websocket_connect(f"/ws/deployments/{dep['id']}?token={tenant.keys['viewer']}") as ws:
        phases = []
        while True:
            event = ws.receive_json()
            phases.append(event.get("phase") or event.get("status"))
            if event["type"] == "status" and event.get("terminal"):
                break
    assert {"deployment", "intents", "created", "apply"} <= set(phases) and phases[-1] == "finished"


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_two_applies_of_one_optimization_never_share_an_object(client: TestClient, ctx: Context, tenant: Tenant,
                                                               cluster: Any) -> None:
    api, path = cluster
    ctx.settings.deploy_kubeconfig = path
    with ctx.db.session() as session:
        opt = store_fleet(session, tenant.org_id)
    ids = []
    for _ in range(2):
        r = client.post(f"/optimize/{opt}/kubernetes-apply", json={}, headers=tenant.headers("editor"))
        ids.append(r.json()["deployment_id"])
    deps = [_deployment(client, tenant, i, ("running",)) for i in ids]
    assert len(api.objects) == sum(len(d["instances"]) for d in deps)
    assert not {i["provider_id"] for i in deps[0]["instances"]} & {i["provider_id"] for i in deps[1]["instances"]}


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_an_apply_whose_answer_was_lost_is_applied_again_never_twice(client: TestClient, ctx: Context,
                                                                     tenant: Tenant, cluster: Any) -> None:
    api, path = cluster
    api.fail_patches_after = 1  # the second object is stored, but the client hears a 500
    accepted, dep = _applied(client, ctx, tenant, path)
    assert dep["status"] == "running", dep
    assert len(api.objects) == len(dep["instances"])  # one object per row, none made twice
    assert all(i["state"] == "running" and i["attempt"] == 0 for i in dep["instances"])
    job = client.get(f"/jobs/{accepted['job_id']}", headers=tenant.headers("viewer")).json()
    assert job["attempts"] == 2  # the transient failure re-ran the job, which re-applied the unresolved object
    steps = client.get(f"/jobs/{accepted['job_id']}/events", headers=tenant.headers("viewer")).json()
    assert any("HTTP 500" in (e.get("message") or "") for e in steps)
    applied = client.get(f"/kubernetes-applies/{accepted['id']}", headers=tenant.headers("viewer")).json()
    assert sorted(a["name"] for a in applied["applied"]) == sorted(i["key"] for i in dep["instances"])


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_done_deletes_every_object_and_waits_for_the_404(client: TestClient, ctx: Context, tenant: Tenant,
                                                         cluster: Any) -> None:
    api, path = cluster
    _, dep = _applied(client, ctx, tenant, path)
    before = len(api.requests)
    r = client.post(f"/deployments/{dep['id']}/done", headers=tenant.headers("editor"))
    assert r.status_code == 202, r.text
    ended = _deployment(client, tenant, dep["id"], ("ended",))
    assert api.objects == {}
    assert all(i["state"] == "terminated" for i in ended["instances"])
    calls = api.requests[before:]
    for inst in dep["instances"]:
        kind, ns, name = inst["provider_id"].split("/")
        mine = [c for c in calls if c.path.endswith(f"/namespaces/{ns}/{c.path.split('/')[-2]}/{name}")]
        deletes = [c for c in mine if c.method == "DELETE"]
        assert len(deletes) == 1 and deletes[0].query == {"propagationPolicy": ["Foreground"]}
        reads = [c for c in mine if c.method == "GET" and calls.index(c) > calls.index(deletes[0])]
        assert len(reads) == 2  # still there (deleting, its pods going), then the 404 that proves it gone


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None, "deploy_leaked_after": 2}], indirect=True)
def test_a_failing_delete_is_retried_never_marked_destroyed_without_proof(
    client: TestClient, ctx: Context, tenant: Tenant, cluster: Any
) -> None:
    api, path = cluster
    _, dep = _applied(client, ctx, tenant, path)
    env = replace(env_for(ctx), sleep=lambda s: None)
    inst = dep["instances"][0]
    api.fail_deletes = 10
    assert destroy(env, inst["id"], reason="test", rounds=2, wait_s=0) == st.TERMINATING
    assert destroy(env, inst["id"], reason="test", rounds=1, wait_s=0) == st.LEAKED  # alerted, kept
    with ctx.db.session() as session:
        row = session.get(DeployInstance, inst["id"])
        assert row is not None and row.destroy_attempts == 2 and "HTTP 500" in (row.last_error or "")
        assert session.scalars(select(DeployAlert).where(DeployAlert.kind == "leaked")).first() is not None
    assert sum(1 for o in api.objects.values() if o["metadata"]["name"] == inst["key"]) == 1
    api.fail_deletes = 0
    for days in (1, 2):  # when the back-off is due: DELETE and a read (deleting); then the read's 404
        at = utcnow() + timedelta(days=days)
        later = replace(env, clock=lambda at=at: at)  # type: ignore[misc]
        assert retry_destroys(later, at) == 1
    with ctx.db.session() as session:
        row = session.get(DeployInstance, inst["id"])
        assert row is not None and row.state == st.TERMINATED
    assert all(o["metadata"]["name"] != inst["key"] for o in api.objects.values())


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None, "deploy_orphan_grace_s": 0}], indirect=True)
def test_the_reconciler_lists_by_label_destroys_an_orphan_and_ends_a_vanished_object(
    client: TestClient, ctx: Context, tenant: Tenant, cluster: Any
) -> None:
    api, path = cluster
    _, dep = _applied(client, ctx, tenant, path)
    env = replace(env_for(ctx), sleep=lambda s: None)
    prefix = env.prefix()
    orphan = JOB.format(ns="ml", name=f"{prefix}0000000000000000-l0-r0-a0")
    api.put(orphan, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": f"{prefix}0000000000000000-l0-r0-a0", "namespace": "ml",
        "labels": {KEY_LABEL: f"{prefix}0000000000000000-l0-r0-a0"}}})
    theirs = JOB.format(ns="ml", name="cloudarb-x-exported-l0")  # an export applied by the team: not ours
    api.put(theirs, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "cloudarb-x-exported-l0", "namespace": "ml", "labels": {KEY_LABEL: "cloudarb-x-exported-l0"}}})
    gone = dep["instances"][0]
    kind, ns, name = gone["provider_id"].split("/")
    api.objects = {p: o for p, o in api.objects.items() if o["metadata"]["name"] != name}  # kubectl delete

    first = reconcile(env, "kubernetes")
    assert first.aborted is None and first.orphans_seen == 1 and first.matched == len(dep["instances"]) - 1
    later = replace(env, clock=lambda: utcnow() + timedelta(hours=1))
    second = reconcile(later, "kubernetes")
    third = reconcile(later, "kubernetes")
    assert second.ghosts == 1 and second.orphans_destroyed + third.orphans_destroyed == 1
    assert orphan not in api.objects and theirs in api.objects
    with ctx.db.session() as session:
        row = session.get(DeployInstance, gone["id"])
        assert row is not None and row.state == st.TERMINATED and row.end_reason == "vanished at the provider"
        kinds = set(session.scalars(select(DeployAlert.kind)))
    assert {"orphan", "ghost"} <= kinds
    lists = [r for r in api.requests if r.method == "GET" and "labelSelector" in r.query]
    assert {r.path for r in lists} >= {"/apis/batch/v1/jobs", "/apis/apps/v1/deployments",
                                       "/apis/policy/v1/poddisruptionbudgets"}
    assert all(r.query["labelSelector"] == [KEY_LABEL] for r in lists)


def test_the_provisioner_reads_every_page_and_answers_none_only_on_404(tmp_path: Path) -> None:
    with FakeKubeAPI() as api:
        for i in range(5):
            name = f"cloudarb-inst-{i}"
            api.put(JOB.format(ns="a", name=name), {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
                "name": name, "namespace": "a", "labels": {KEY_LABEL: name}},
                "status": {"conditions": [{"type": "Complete", "status": "True"}]} if i == 0 else {"active": 1}})
        config = ProviderConfig(credentials={"kubeconfig": str(_kubeconfig(api, tmp_path))})
        prov = KubernetesProvisioner(config, page=2)
        owned = prov.list_owned("cloudarb-inst-")
        assert sorted(r.key for r in owned) == [f"cloudarb-inst-{i}" for i in range(5)]
        pages = [r for r in api.requests if r.path == "/apis/batch/v1/jobs"]
        assert [r.query.get("continue", [""])[0] for r in pages] == ["", "2", "4"]
        assert prov.get("Job/a/cloudarb-inst-0") is not None
        assert prov.get("Job/a/cloudarb-inst-0").state is RemoteState.STOPPED  # type: ignore[union-attr]
        assert prov.find("cloudarb-inst-3") is not None and prov.find("cloudarb-inst-9") is None
        prov.destroy("Job/a/cloudarb-inst-1")
        prov.destroy("Job/a/cloudarb-inst-1")  # already gone: success
        assert prov.get("Job/a/cloudarb-inst-1") is None
        prov.close()
