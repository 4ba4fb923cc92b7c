"""Extending a Kubernetes deployment writes the new expiry on its objects, against the loopback API
server: the job merge-patches ``cloudarb.io/expires-at`` on each Job and Deployment (nothing else on
them changes; a PodDisruptionBudget carries none), its steps are on the deployment's stream; a server
that fails a patch once is retried; one that keeps failing raises an ``expiry_sync`` alert, the job
fails with the reason, and the extension in the database stands."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models_deploy import DeployAlert, Deployment
from tests.outputs.test_k8s_deployments import _applied, cluster  # noqa: F401  (the fixture)
from tests.support import Tenant, wait_for

NOTE = "cloudarb.io/expires-at"


def _notes(api: Any) -> dict[str, str | None]:
    return {o["metadata"]["name"] + "/" + o["kind"]: (o["metadata"].get("annotations") or {}).get(NOTE)
            for o in api.objects.values()}


def _job_ends(client: TestClient, tenant: Tenant, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}", headers=tenant.headers("viewer")).json()
        return job if job["status"] in ("finished", "failed", "canceled") else None

    found: dict[str, Any] = wait_for(ended, timeout=60, interval=0.2)  # API polls: under the rate limit (600/min)
    return found


def _extend(client: TestClient, tenant: Tenant, dep: dict[str, Any], hours: float) -> dict[str, Any]:
    r = client.post(f"/deployments/{dep['id']}/extend", json={"hours": hours}, headers=tenant.headers("editor"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["expires_at"] > dep["expires_at"] and body["job_id"] != dep["job_id"]
    return body


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_extend_writes_the_new_expiry_on_every_workload_object(client: TestClient, ctx: Context, tenant: Tenant,
                                                               cluster: Any) -> None:  # noqa: F811
    api, path = cluster
    _, dep = _applied(client, ctx, tenant, path)
    before = _notes(api)
    kinds = {k.split("/")[-1] for k in before}
    assert {"PodDisruptionBudget"} <= kinds and kinds & {"Job", "Deployment"}, kinds
    old = {k: v for k, v in before.items() if not k.endswith("/PodDisruptionBudget")}
    assert all(v == dep["expires_at"][:19] + "Z" for v in old.values()), (old, dep["expires_at"])
    objects_before = copy.deepcopy(api.objects)
    sent = len(api.requests)

    body = _extend(client, tenant, dep, 2)
    job = _job_ends(client, tenant, body["job_id"])
    assert job["status"] == "finished", job
    new = body["expires_at"][:19] + "Z"
    after = _notes(api)
    assert {k: v for k, v in after.items() if k in old} == {k: new for k in old}
    assert all(v is None for k, v in after.items() if k.endswith("/PodDisruptionBudget"))
    for path_, obj in api.objects.items():  # only the annotation changed: spec, labels, the rest as applied
        was = objects_before[path_]
        rest = {**obj["metadata"], "annotations": {k: v for k, v in (obj["metadata"].get("annotations") or {}).items()
                                                   if k != NOTE}}
        was_rest = {**was["metadata"], "annotations": {k: v for k, v in (was["metadata"].get("annotations") or {})
                                                       .items() if k != NOTE}}
        assert obj["spec"] == was["spec"] and rest == was_rest
    patches = [r for r in api.requests[sent:] if r.method == "PATCH"]
    assert len(patches) == len(old)
    assert all(r.headers["content-type"].startswith("application/merge-patch+json") for r in patches)
    assert all(json.loads(r.body) == {"metadata": {"annotations": {NOTE: new}}} for r in patches)
    steps = client.get(f"/jobs/{body['job_id']}/events", headers=tenant.headers("viewer")).json()
    assert sum(1 for e in steps if e.get("phase") == "expiry") == len(old)
    shown = client.get(f"/deployments/{dep['id']}", headers=tenant.headers("viewer")).json()
    assert shown["job_id"] == body["job_id"]  # the deployment's stream follows the annotation job

    again = _extend(client, tenant, {**dep, "expires_at": body["expires_at"], "job_id": body["job_id"]}, 1)
    assert _job_ends(client, tenant, again["job_id"])["status"] == "finished"
    assert set(_notes(api)[k] for k in old) == {again["expires_at"][:19] + "Z"}


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None}], indirect=True)
def test_a_patch_that_fails_once_is_retried(client: TestClient, ctx: Context, tenant: Tenant,
                                            cluster: Any) -> None:  # noqa: F811
    api, path = cluster
    _, dep = _applied(client, ctx, tenant, path)
    api.fail_merges = 1
    body = _extend(client, tenant, dep, 2)
    job = _job_ends(client, tenant, body["job_id"])
    assert job["status"] == "finished" and job["attempts"] == 2, job
    new = body["expires_at"][:19] + "Z"
    assert {v for k, v in _notes(api).items() if not k.endswith("/PodDisruptionBudget")} == {new}
    with ctx.db.session() as session:
        assert session.scalars(select(DeployAlert).where(DeployAlert.kind == "expiry_sync")).all() == []


@pytest.mark.parametrize("ctx", [{"deploy_kubeconfig": None, "job_max_attempts": 2}], indirect=True)
def test_a_patch_that_keeps_failing_is_an_alert_and_the_extension_stands(client: TestClient, ctx: Context,
                                                                          tenant: Tenant,
                                                                          cluster: Any) -> None:  # noqa: F811
    api, path = cluster
    _, dep = _applied(client, ctx, tenant, path)
    old = {k: v for k, v in _notes(api).items() if not k.endswith("/PodDisruptionBudget")}
    api.fail_merges = 1000
    body = _extend(client, tenant, dep, 2)
    job = _job_ends(client, tenant, body["job_id"])
    assert job["status"] == "failed" and job["attempts"] == 2, job
    assert "still announce an earlier expiry" in (job["error"] or "") and "HTTP 500" in job["error"]
    assert {k: v for k, v in _notes(api).items() if k in old} == old  # the cluster kept the old value
    with ctx.db.session() as session:
        stored = session.get(Deployment, dep["id"])
        assert stored is not None and stored.expires_at.isoformat()[:19] == body["expires_at"][:19]
        [alert] = session.scalars(select(DeployAlert).where(DeployAlert.kind == "expiry_sync")).all()
        assert alert.organization_id == tenant.org_id and dep["id"] in alert.message
        assert sorted(alert.details["objects"]) == sorted(
            i["provider_id"] for i in dep["instances"] if i["provider_id"].split("/")[0] in ("Job", "Deployment"))
    shown = client.get(f"/deployments/{dep['id']}", headers=tenant.headers("viewer")).json()
    assert shown["expires_at"] == body["expires_at"] and shown["status"] == "running"
    steps = client.get(f"/jobs/{body['job_id']}/events", headers=tenant.headers("viewer")).json()
    assert any(e.get("phase") == "expiry" and "not annotated" in (e.get("message") or "") for e in steps)
