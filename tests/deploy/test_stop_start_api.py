"""POST /deployments/{id}/stop|start end to end in the embedded mode (the job runs in process against
the in-memory provider under the key ``lambda``), its steps on /ws/deployments/{id}, and the refusal
before any job where the provider cannot stop."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.db.models import JobRun
from cloudarb.db.types import utcnow
from cloudarb.deploy.providers import registry
from tests.deploy.memory_provider import CAPS, Faults, MemoryProvider
from tests.deploy.test_api import _offer, _settled
from tests.support import Tenant, wait_for


def _provider(stoppable: bool) -> Iterator[MemoryProvider]:
    caps = replace(CAPS, stop_start=True) if stoppable else CAPS
    provider = MemoryProvider("lambda", clock=utcnow, faults=Faults(boot_reads=0), capabilities=caps)
    with registry.use("lambda", lambda config: provider):
        yield provider


@pytest.fixture()
def stoppable() -> Iterator[MemoryProvider]:
    yield from _provider(True)


@pytest.fixture()
def unstoppable() -> Iterator[MemoryProvider]:
    yield from _provider(False)


def _running(client: TestClient, ctx: Context, tenant: Tenant) -> dict[str, Any]:
    r = client.post(f"/offers/{_offer(ctx)}/deploy", json={"lifetime_hours": 2}, headers=tenant.headers())
    assert r.status_code == 202, r.text
    dep = _settled(client, tenant, r.json()["id"], ("running", "partial", "failed"))
    assert dep["status"] == "running", dep
    return dep


def _phases(client: TestClient, tenant: Tenant, dep_id: str) -> list[str]:
    with client.websocket_connect(f"/ws/deployments/{dep_id}?token={tenant.keys['viewer']}") as ws:
        phases = []
        while True:
            event = ws.receive_json()
            phases.append(event.get("phase") or event.get("status"))
            if event["type"] == "status" and event["terminal"]:
                return phases


def _state(client: TestClient, tenant: Tenant, dep_id: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/deployments/{dep_id}", headers=tenant.headers()).json()
        return body if body["instances"][0]["state"] == state else None

    return wait_for(reached, timeout=30)  # type: ignore[no-any-return]


def test_stop_and_start_a_deployment_over_the_api(client: TestClient, ctx: Context, tenant: Tenant,
                                                  other_tenant: Tenant, stoppable: MemoryProvider) -> None:
    dep = _running(client, ctx, tenant)
    [inst] = dep["instances"]
    assert client.post(f"/deployments/{dep['id']}/stop", headers=other_tenant.headers()).status_code == 404
    r = client.post(f"/deployments/{dep['id']}/stop", json={"lines": [0]}, headers=tenant.headers())
    assert r.status_code == 202, r.text
    assert r.json()["instances"] == [inst["id"]] and r.json()["websocket_url"] == f"/ws/deployments/{dep['id']}"
    stopped = _state(client, tenant, dep["id"], "stopped")
    [paused] = stopped["instances"]
    assert paused["can_stop"] and paused["paused_since"] and paused["desired_state"] is None
    assert stopped["rate_per_hour"] == 0.0  # nothing billed while stopped
    assert {"stop", "stopped", "done"} <= set(_phases(client, tenant, dep["id"]))
    again = client.post(f"/deployments/{dep['id']}/stop", headers=tenant.headers())  # idempotent
    assert again.status_code == 202
    wait_for(lambda: _job_done(ctx, again.json()["job_id"]), timeout=30)
    r = client.post(f"/deployments/{dep['id']}/start", json={"instances": [inst["provider_id"]]},
                    headers=tenant.headers())
    assert r.status_code == 202, r.text
    running = _state(client, tenant, dep["id"], "running")
    assert running["instances"][0]["paused_since"] is None and running["instances"][0]["paused_seconds"] > 0
    assert running["rate_per_hour"] == dep["rate_per_hour"]
    assert {"start", "started"} <= set(_phases(client, tenant, dep["id"]))
    assert [c.split()[0] for c in stoppable.calls if c.startswith(("stop", "start"))] == ["stop", "start"]
    bad = client.post(f"/deployments/{dep['id']}/stop", json={"instances": ["nope"]}, headers=tenant.headers())
    assert bad.status_code == 422 and "nope" in bad.json()["error"]["message"]
    assert client.post(f"/deployments/{dep['id']}/done", headers=tenant.headers()).status_code == 202
    _settled(client, tenant, dep["id"], ("ended",))
    late = client.post(f"/deployments/{dep['id']}/start", headers=tenant.headers())
    assert late.status_code == 409 and "ended" in late.json()["error"]["message"]


def _job_done(ctx: Context, job_id: str) -> bool:
    with ctx.db.session() as session:
        job = session.get(JobRun, job_id)
        return job is not None and job.status == "finished"


def test_a_provider_that_cannot_stop_is_refused_before_any_job(client: TestClient, ctx: Context, tenant: Tenant,
                                                               unstoppable: MemoryProvider) -> None:
    dep = _running(client, ctx, tenant)
    r = client.post(f"/deployments/{dep['id']}/stop", headers=tenant.headers())
    assert r.status_code == 409, r.text
    assert "lambda instances cannot be stopped and started, only destroyed" in r.json()["error"]["message"]
    after = client.get(f"/deployments/{dep['id']}", headers=tenant.headers()).json()
    assert after["job_id"] == dep["job_id"] and after["instances"][0]["state"] == "running"
    assert not [c for c in unstoppable.calls if c.startswith("stop")]
