"""Production mode for real: PostgreSQL, Redis, an RQ worker process and the API server process."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from cloudarb.context import Context
from cloudarb.jobs import store
from cloudarb.optimize import store as opt_store
from tests.support import Tenant, create_test_job, job_row, job_statuses, small_request, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def tenant(prod_ctx: Context) -> Tenant:
    import uuid

    return Tenant(prod_ctx, f"Prod {uuid.uuid4().hex[:6]}")


def ws_follow(base: str, job_id: str, key: str, timeout: float = 60) -> list[dict[str, Any]]:
    events = []
    with connect(f"{base.replace('http', 'ws')}/ws/jobs/{job_id}?token={key}", open_timeout=10) as ws:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = json.loads(ws.recv(timeout=timeout))
            events.append(event)
            if event["type"] == "status" and event.get("terminal"):
                break
    return events


def test_health_reports_postgres_and_redis(server: str) -> None:
    body = httpx.get(f"{server}/health").json()
    assert body["status"] == "ok" and body["mode"] == "production"
    assert body["checks"]["database"]["dialect"] == "postgresql" and body["checks"]["redis"]["ok"]


def test_request_worker_websocket_result(server: str, prod_ctx: Context, tenant: Tenant, start_worker: Any) -> None:
    start_worker()
    r = httpx.post(f"{server}/optimize", json=small_request(), headers=tenant.headers(), timeout=30)
    assert r.status_code == 202, r.text
    accepted = r.json()
    events = ws_follow(server, accepted["job_id"], tenant.keys["viewer"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"] == "finished"
    assert any(e["type"] == "progress" and e.get("gap") is not None for e in events)

    opt = httpx.get(f"{server}/optimize/{accepted['id']}", headers=tenant.headers()).json()
    lines = httpx.get(f"{server}/optimize/{accepted['id']}/allocations", headers=tenant.headers()).json()
    with prod_ctx.db.session() as session:
        stored = opt_store.result(session, optimization_id=accepted["id"])
        job = store.get_job(session, accepted["job_id"])
        assert stored is not None and job is not None
        assert opt["status"] == job.status == "finished"
        assert stored.cost_per_hour == pytest.approx(opt["result"]["totals"]["cost_per_hour"])
        assert len(opt_store.allocations(session, optimization_id=accepted["id"])) == len(lines)
        assert job.worker and "cloudarb-job" not in job.worker, "run by the RQ worker, not in the API process"

    # a late subscriber replays the whole stream from the database
    assert ws_follow(server, accepted["job_id"], tenant.keys["viewer"]) == events

    metrics = httpx.get(f"{server}/metrics", headers=tenant.headers("admin")).text
    # the job ran in the worker (its own /metrics counts it: tests/ops/test_worker_metrics.py); the API
    # reports what storage and the queue say, and its own requests
    assert "# TYPE cloudarb_jobs_active gauge" in metrics and 'cloudarb_queue_depth{queue="' in metrics
    assert 'cloudarb_http_requests_total{method="POST",route="/optimize",status="202"}' in metrics
    assert "cloudarb_http_request_seconds_bucket" in metrics


def test_killed_worker_job_is_retried_not_stuck(prod_ctx: Context, tenant: Tenant, start_worker: Any) -> None:
    first = start_worker()
    job_id = create_test_job(prod_ctx, tenant.org_id, "tests.support.stall_first", max_attempts=2)

    def row() -> Any:
        return job_row(prod_ctx, job_id)

    wait_for(lambda: row().status == "running", timeout=60)
    first.kill()
    assert row().status == "running"
    start_worker()  # its reaper sees the silent heartbeat and re-queues the job
    final = wait_for(lambda: (r := row()).status in ("finished", "failed") and r, timeout=90)
    assert final.status == "finished" and final.attempts == 2, final.error
    assert job_statuses(prod_ctx, job_id) == ["queued", "running", "queued", "running", "finished"]


def test_killed_worker_with_no_attempts_left_fails(prod_ctx: Context, tenant: Tenant, start_worker: Any) -> None:
    first = start_worker()
    job_id = create_test_job(prod_ctx, tenant.org_id, "tests.support.stall_first", max_attempts=1)

    def row() -> Any:
        return job_row(prod_ctx, job_id)

    wait_for(lambda: row().status == "running", timeout=60)
    first.kill()
    start_worker()
    final = wait_for(lambda: (r := row()).status != "running" and r, timeout=60)
    assert final.status == "failed" and "stopped responding" in final.error


def test_cancel_running_job_over_http(server: str, prod_ctx: Context, tenant: Tenant, start_worker: Any) -> None:
    start_worker()
    job_id = create_test_job(prod_ctx, tenant.org_id, "tests.support.sleepy", max_attempts=1)

    def status() -> str:
        return httpx.get(f"{server}/jobs/{job_id}", headers=tenant.headers()).json()["status"]

    wait_for(lambda: status() == "running", timeout=60)
    r = httpx.delete(f"{server}/jobs/{job_id}", headers=tenant.headers())
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    events = ws_follow(server, job_id, tenant.keys["viewer"])
    assert events[-1]["status"] == "canceled"
    time.sleep(1)
    assert status() == "canceled"


def test_rq_job_timeout_fails_the_job(prod_ctx: Context, prod_settings: Any, tenant: Tenant,
                                      start_worker: Any) -> None:
    from cloudarb.jobs.queue import RQQueue

    start_worker()
    short = RQQueue(prod_settings.redis_url, prod_settings.queue_name, job_timeout_s=2)
    job_id = create_test_job(prod_ctx, tenant.org_id, "tests.support.sleepy", max_attempts=3, queue=short)
    short.close()

    def row() -> Any:
        return job_row(prod_ctx, job_id)

    final = wait_for(lambda: (r := row()).status not in ("queued", "running") and r, timeout=60)
    assert final.status == "failed" and "timeout" in (final.error or "").lower() and final.attempts == 1


def test_cli_optimize_against_the_server(server: str, tenant: Tenant, start_worker: Any) -> None:
    import os
    import subprocess
    import sys

    from tests.integration.conftest import ROOT

    start_worker()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "cloudarb", "optimize", "examples/fleet.json", "--server", server,
                        "--api-key", tenant.keys["editor"], "--json"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["optimization"]["status"] == "finished" and out["allocations"]
    bad = subprocess.run([sys.executable, "-m", "cloudarb", "jobs", "show", "nope", "--server", server,
                          "--api-key", tenant.keys["viewer"]], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "404" in bad.stderr and "Traceback" not in bad.stderr
