"""A submit while the broker (a private Redis, never the shared one) is down.

Down before the request: the API answers 503 with Retry-After and stores nothing (its rate limiter
shares the broker). Down between admission and the push: the job is accepted, says it waits for the
queue, is queued by the submitting process as soon as Redis is back (no reaper involved), and runs
exactly once even when a reaper pushes the same attempt too.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cloudarb import worker
from cloudarb.api.app import create_app
from cloudarb.context import Context, build_context
from cloudarb.db import migrate
from cloudarb.db.models import JobRun, OptimizationRequest
from cloudarb.jobs import store
from cloudarb.jobs.enqueue import enqueue
from cloudarb.jobs.queue import RQQueue
from cloudarb.jobs.runtime import JobContext, reap_waiting
from cloudarb.storage import accounts
from tests.reliability.stack import PrivateRedis, wait_until
from tests.support import Tenant, make_settings, small_request

pytestmark = pytest.mark.skipif(__import__("shutil").which("redis-server") is None,
                                reason="redis-server not installed")

BODY = f"{__name__}.once"


def once(jc: JobContext) -> str:
    jc.progress("ran", percent=100)
    return "finished"


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture()
def ctx(tmp_path: Path, broker: PrivateRedis) -> Iterator[Context]:
    url = f"sqlite:///{tmp_path / 'cloudarb.db'}"
    migrate.upgrade(url)
    settings = make_settings(database_url=url, data_dir=tmp_path, redis_url=broker.url,
                             queue_name=f"down-{uuid.uuid4().hex[:6]}", job_lost_after_s=0.01)
    context = build_context(settings)
    yield context
    context.close()


def statuses(ctx: Context, job_id: str) -> list[str]:
    with ctx.db.session() as session:
        return [e["status"] for e in store.events_after(session, job_id) if e["type"] == "status"]


def phases(ctx: Context, job_id: str) -> list[str]:
    with ctx.db.session() as session:
        return [e["phase"] for e in store.events_after(session, job_id) if e["type"] == "progress"]


def run_queue(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drain the queue with an RQ worker in this process (the job runs with this context)."""
    from rq import SimpleWorker

    assert isinstance(ctx.queue, RQQueue)
    monkeypatch.setattr(worker, "_context", ctx)
    SimpleWorker([ctx.queue.queue], connection=ctx.queue.redis).work(burst=True)


def test_accepted_while_the_broker_is_down_is_queued_when_it_returns_and_runs_once(
    ctx: Context, broker: PrivateRedis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = ctx.queue
    assert isinstance(queue, RQQueue)
    with ctx.db.session() as session:
        org = accounts.get_or_create_org(session, name="down").id
    broker.kill()
    job = enqueue(ctx, organization_id=org, kind="forecast", function=BODY, target_id="none", message="queued")
    with ctx.db.session() as session:
        row = store.get_job(session, job.id)
        assert row is not None and row.status == "queued"  # accepted and stored
    assert "waiting_for_queue" in phases(ctx, job.id)  # the job says why it has not started
    assert queue.backlog() == 1

    broker.start()  # back, and empty
    assert wait_until(lambda: queue.pending(job.id, 1), 30, 0.05)  # pushed by this process, no reaper ran
    assert queue.backlog() == 0
    assert reap_waiting(ctx) == 0  # a reaper pass sees the queue holds it and leaves it
    queue.enqueue(job.id, BODY)  # a reaper in another process that pushed the same attempt anyway
    run_queue(ctx, monkeypatch)
    run_queue(ctx, monkeypatch)
    assert statuses(ctx, job.id) == ["queued", "running", "finished"]  # ran once
    assert phases(ctx, job.id).count("ran") == 1


def test_a_push_retried_after_the_job_ran_does_not_run_it_again(
    ctx: Context, broker: PrivateRedis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reaper queued and ran the job before the submitting process's retry got through."""
    queue = ctx.queue
    assert isinstance(queue, RQQueue)
    with ctx.db.session() as session:
        org = accounts.get_or_create_org(session, name="down").id
    broker.kill()
    queue.RETRY_FIRST_S = queue.RETRY_MAX_S = 3600.0  # this process's retry waits (instance attributes)
    job = enqueue(ctx, organization_id=org, kind="forecast", function=BODY, target_id="none", message="queued")
    broker.start()
    assert reap_waiting(ctx) == 1  # the backstop queues it
    run_queue(ctx, monkeypatch)
    assert statuses(ctx, job.id) == ["queued", "running", "finished"]
    queue.enqueue(job.id, BODY)  # what the late retry does
    run_queue(ctx, monkeypatch)
    assert statuses(ctx, job.id) == ["queued", "running", "finished"]
    assert phases(ctx, job.id).count("ran") == 1


def test_a_submit_when_the_broker_is_down_answers_503_and_stores_nothing(
    ctx: Context, broker: PrivateRedis,
) -> None:
    tenant = Tenant(ctx, "Down Corp")

    def counts() -> tuple[int, int]:
        with ctx.db.session() as session:
            return (session.scalar(select(func.count()).select_from(JobRun)) or 0,
                    session.scalar(select(func.count()).select_from(OptimizationRequest)) or 0)

    with TestClient(create_app(ctx=ctx)) as client:
        before = counts()
        broker.kill()
        r = client.post("/optimize", json=small_request(), headers=tenant.headers())
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "unavailable"
        assert counts() == before
        broker.start()
        r = client.post("/optimize", json=small_request(), headers=tenant.headers())
        assert r.status_code == 202
        assert counts() == (before[0] + 1, before[1] + 1)
    for thread in threading.enumerate():  # the app's bcrypt warm-up: a daemon thread still inside
        if thread.name == "cloudarb-warm":  # bcrypt at interpreter exit aborts the process
            thread.join(60)
