"""The job lifecycle in embedded mode: statuses, events, cancel, retry, failure, stale workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.db.models import JobRun
from cloudarb.db.types import utcnow
from cloudarb.jobs import store
from cloudarb.jobs.enqueue import cancel_job
from cloudarb.jobs.runtime import execute, reap_stale
from tests.support import Tenant, create_test_job, job_row, job_statuses, wait_for


def make_job(ctx: Context, tenant: Tenant, function: str, *, max_attempts: int = 3, enqueue: bool = True) -> str:
    return create_test_job(ctx, tenant.org_id, function, max_attempts=max_attempts, enqueue=enqueue)


def job(ctx: Context, job_id: str) -> JobRun:
    return job_row(ctx, job_id)


statuses = job_statuses


def test_transient_failure_is_retried(ctx: Context, tenant: Tenant) -> None:
    job_id = make_job(ctx, tenant, "tests.support.flaky")
    wait_for(lambda: job(ctx, job_id).status == "finished", timeout=15)
    assert job(ctx, job_id).attempts == 2
    assert statuses(ctx, job_id) == ["queued", "running", "queued", "running", "finished"]


def test_bug_fails_without_retry(ctx: Context, tenant: Tenant) -> None:
    job_id = make_job(ctx, tenant, "tests.support.broken")
    row = wait_for(lambda: (r := job(ctx, job_id)).status == "failed" and r)
    assert row.attempts == 1 and "simulated bug" in (row.error or "")
    assert statuses(ctx, job_id)[-1] == "failed"


def test_cancel_running_job(ctx: Context, tenant: Tenant) -> None:
    job_id = make_job(ctx, tenant, "tests.support.sleepy")
    wait_for(lambda: job(ctx, job_id).status == "running")
    assert cancel_job(ctx, job(ctx, job_id), actor="test")
    assert job(ctx, job_id).status == "canceled"
    # the body notices and stops; its late status write cannot overwrite the cancel
    wait_for(lambda: ctx.queue.depth() == 0)
    with ctx.db.session() as session:
        events = store.events_after(session, job_id)
    terminal = [e for e in events if e.get("terminal")]
    assert [e["status"] for e in terminal] == ["canceled"]


def test_cancel_queued_job_never_runs(ctx: Context, tenant: Tenant) -> None:
    job_id = make_job(ctx, tenant, "tests.support.sleepy", enqueue=False)
    assert cancel_job(ctx, job(ctx, job_id), actor="test")
    assert execute(job_id, ctx) is None, "a canceled job is not claimable"
    assert job(ctx, job_id).attempts == 0


@pytest.mark.parametrize("attempts,expected", [(1, "queued"), (3, "failed")])
def test_stale_running_job_is_retried_or_failed(ctx: Context, tenant: Tenant, attempts: int, expected: str) -> None:
    job_id = make_job(ctx, tenant, "tests.support.flaky", max_attempts=3, enqueue=False)
    with ctx.db.session() as session:
        row = session.get(JobRun, job_id)
        assert row is not None
        row.status, row.attempts, row.worker = "running", attempts, "dead-worker"
        row.heartbeat_at = utcnow() - timedelta(seconds=60)
    assert reap_stale(ctx) == 1
    if expected == "queued":
        wait_for(lambda: job(ctx, job_id).status == "finished", timeout=15)
    else:
        row = job(ctx, job_id)
        assert row.status == "failed" and "stopped responding" in (row.error or "")


def test_jobs_api_lists_and_replays_events(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    job_id = make_job(ctx, tenant, "tests.support.flaky")
    wait_for(lambda: job(ctx, job_id).status == "finished", timeout=15)
    h = tenant.headers("viewer")
    listed = client.get("/jobs", headers=h).json()
    assert job_id in [j["id"] for j in listed["items"]]
    events = client.get(f"/jobs/{job_id}/events", headers=h).json()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    later = client.get(f"/jobs/{job_id}/events", params={"after": 2}, headers=h).json()
    assert later == events[2:]
    with client.websocket_connect(f"/ws/jobs/{job_id}?token={tenant.keys['viewer']}") as ws:
        replayed = [ws.receive_json() for _ in events]
    assert replayed == events


@pytest.mark.parametrize("ctx", [{"job_timeout_s": 1}], indirect=True)
def test_job_timeout_fails_the_job(ctx: Context, tenant: Tenant) -> None:
    job_id = make_job(ctx, tenant, "tests.support.sleepy")
    row = wait_for(lambda: (r := job(ctx, job_id)).status == "failed" and r, timeout=20)
    assert "timeout" in (row.error or "") and row.attempts == 1


def test_a_timeout_that_lands_mid_query_is_reported_as_the_timeout(ctx: Context, tenant: Tenant) -> None:
    job_id = make_job(ctx, tenant, "tests.support.timeout_mid_query")
    row = wait_for(lambda: (r := job(ctx, job_id)).status == "failed" and r, timeout=20)
    assert row.error is not None and row.error.startswith("JobTimeoutException: Task exceeded") and row.attempts == 1


def test_job_kinds_load_no_feature_they_do_not_run() -> None:
    """Building the job-kind registry (every process, every embedded CLI command) imports neither the
    deploy and hooks features (Kubernetes renderers, PyYAML) nor, on the CLI's path, the credential
    machinery (JWT)."""
    import subprocess
    import sys

    code = ("import sys; import cloudarb.cli.local; from cloudarb.context import job_kinds; job_kinds(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('yaml', 'jwt', 'kubernetes') "
            "or m.startswith(('cloudarb.deploy', 'cloudarb.hooks', 'cloudarb.security'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("kind", "module"), [("deploy", "cloudarb.deploy.follow"),
                                              ("hook_delivery", "cloudarb.hooks.store"),
                                              ("k8s_apply", "cloudarb.deploy.k8s_submit")])
def test_lazy_status_hooks_reach_their_feature(ctx: Context, tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                               kind: str, module: str) -> None:
    import importlib

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(importlib.import_module(module), "follow_job",
                        lambda session, job, status: seen.append((job.kind, status)))
    with ctx.db.session() as session:
        row = store.create_job(session, organization_id=tenant.org_id, kind=kind, function="tests.support.broken",
                               target_id="none", max_attempts=1)
        ctx.kinds.follow(session, row, "running")
    assert seen == [(kind, "running")]
