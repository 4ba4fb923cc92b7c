"""PATCH /policies/{id}: edit fields, switch schedule kinds, pause and resume."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import update

from cloudarb.context import Context
from cloudarb.db.models import Policy
from cloudarb.db.types import utcnow
from cloudarb.scheduler import tick
from tests.support import Tenant, small_request


def _create(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    body = {"name": "hourly", "request": small_request(), "interval_s": 3600, "keep_threshold_pct": 5}
    r = client.post("/policies", json=body, headers=tenant.headers())
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _patch(client: TestClient, tenant: Tenant, pid: object, body: Mapping[str, object],
           role: str = "editor") -> httpx.Response:
    response: httpx.Response = client.patch(f"/policies/{pid}", json=dict(body), headers=tenant.headers(role))
    return response


def test_edit_fields_and_switch_schedule(client: TestClient, tenant: Tenant) -> None:
    p = _create(client, tenant)
    r = _patch(client, tenant, p["id"], {"name": "nightly", "cron": "0 3 * * *", "keep_threshold_pct": 12.5})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["name"], out["cron"], out["interval_s"], out["keep_threshold_pct"]) == ("nightly", "0 3 * * *", None, 12.5)
    assert datetime.fromisoformat(out["next_run_at"]).hour == 3
    back = _patch(client, tenant, p["id"], {"interval_s": 600}).json()
    assert back["cron"] is None and back["interval_s"] == 600
    assert client.get(f"/policies/{p['id']}", headers=tenant.headers()).json()["name"] == "nightly"


def test_request_is_validated_and_resolved(client: TestClient, tenant: Tenant) -> None:
    p = _create(client, tenant)
    req = small_request()
    req["workloads"][0]["allowed_gpu_models"] = ["h100"]
    ok = _patch(client, tenant, p["id"], {"request": req})
    assert ok.status_code == 200, ok.text
    assert all("H100" in m for m in ok.json()["request"]["workloads"][0]["allowed_gpu_models"])


def test_bad_input_is_a_422_naming_the_field(client: TestClient, tenant: Tenant) -> None:
    p = _create(client, tenant)
    for body, field in (({"cron": "every day"}, "cron"), ({"interval_s": 1}, "interval_s"),
                        ({"keep_threshold_pct": 101}, "keep_threshold_pct"), ({"color": "red"}, "color")):
        r = _patch(client, tenant, p["id"], body)
        assert r.status_code == 422 and field in r.text, (body, r.text)
    both = _patch(client, tenant, p["id"], {"cron": "0 * * * *", "interval_s": 60})
    assert both.status_code == 422 and "at most one" in both.text


def test_pause_stops_the_scheduler_and_resume_starts_from_now(client: TestClient, ctx: Context,
                                                               tenant: Tenant) -> None:
    p = _create(client, tenant)
    with ctx.db.session() as session:
        session.execute(update(Policy).where(Policy.id == p["id"]).values(next_run_at=utcnow() - timedelta(days=3)))
    paused = _patch(client, tenant, p["id"], {"enabled": False}).json()
    assert paused["enabled"] is False
    assert tick(ctx) == 0, "a paused policy does not run"
    resumed = _patch(client, tenant, p["id"], {"enabled": True}).json()
    assert resumed["enabled"] is True
    assert datetime.fromisoformat(resumed["next_run_at"]) > utcnow() + timedelta(minutes=59)
    assert tick(ctx) == 0, "the slots missed while paused are not run at once"


def test_roles_and_tenants(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    p = _create(client, tenant)
    assert _patch(client, tenant, p["id"], {"enabled": False}, role="viewer").status_code == 403
    assert _patch(client, other_tenant, p["id"], {"enabled": False}).status_code == 404
    assert _patch(client, tenant, "nope", {"enabled": False}).status_code == 404
