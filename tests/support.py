"""Helpers shared by the application tests: settings, organizations, credentials, job bodies."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from cloudarb.config import Settings
from cloudarb.context import Context
from cloudarb.db.models import JobRun
from cloudarb.jobs import store
from cloudarb.jobs.errors import TransientJobError
from cloudarb.jobs.runtime import JobContext, publish, status_payload
from cloudarb.storage import accounts

PG_URL = os.environ.get("CLOUDARB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CLOUDARB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery staple"


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "secret_key": "test-signing-key-" + "x" * 40,
        "job_heartbeat_s": 0.2,
        "job_stale_after_s": 2.0,
        "scheduler_tick_s": 0.2,
        "solve_time_limit_s": 10.0,
        "embedded_workers": 2,
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


class Tenant:
    """An organization with one user and one API key per role."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.keys: dict[str, str] = {}
        with ctx.db.session() as session:
            org = accounts.get_or_create_org(session, name=name)
            self.org_id = org.id
            self.email = f"admin@{name.lower().replace(' ', '-')}.example"
            accounts.create_user(session, organization_id=org.id, email=self.email, password=PASSWORD, role="admin")
            for role in ("admin", "editor", "viewer"):
                _, secret = accounts.create_api_key(
                    session, organization_id=org.id, name=f"{role}-key", role=role, created_by=None
                )
                self.keys[role] = secret

    def headers(self, role: str = "editor") -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def create_test_job(
    ctx: Context, org_id: str, function: str, *, max_attempts: int = 3, enqueue: bool = True, queue: Any = None
) -> str:
    """A job row for one of the test bodies below, with its 'queued' event, optionally enqueued."""
    with ctx.db.session() as session:
        job = store.create_job(session, organization_id=org_id, kind="test", function=function, target_id="none",
                               max_attempts=max_attempts)
        job_id = job.id
    publish(ctx, job_id, "status", status_payload("queued"))
    if enqueue:
        (queue or ctx.queue).enqueue(job_id, function)
    return job_id


def job_row(ctx: Context, job_id: str) -> JobRun:
    with ctx.db.session() as session:
        row = store.get_job(session, job_id)
        if row is None:
            raise AssertionError(f"job {job_id} vanished")
        return row


def job_statuses(ctx: Context, job_id: str) -> list[str]:
    with ctx.db.session() as session:
        return [e["status"] for e in store.events_after(session, job_id) if e["type"] == "status"]


def small_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "two workloads",
        "workloads": [
            {"id": "train", "gpus_min": 8, "gpus_per_node": 8, "min_vram_gb": 80, "workload_type": "training"},
            {"id": "serve", "gpus_min": 2, "min_vram_gb": 24, "workload_type": "inference"},
        ],
        "constraints": {"budget_per_hour": 500},
        "time_limit_s": 10,
    }
    body.update(overrides)
    return body


# Job bodies used by the tests (named by dotted path like real ones).
_RELEASE = threading.Event()


def sleepy(jc: JobContext) -> str:
    """Reports progress every 0.1 s for up to 30 s, honouring cancellation."""
    for i in range(300):
        jc.progress("sleeping", percent=i / 3)
        jc.check_canceled()
        time.sleep(0.1)
    return "finished"


def flaky(jc: JobContext) -> str:
    """Fails transiently on its first attempt, then succeeds."""
    if jc.job.attempts < 2:
        raise TransientJobError("simulated dropped connection")
    jc.progress("done", percent=100, message="second attempt worked")
    return "finished"


def broken(jc: JobContext) -> str:
    raise ValueError("simulated bug")


class JobTimeoutException(Exception):  # named as RQ names its signal-raised timeout
    """Stands for RQ's job timeout, which its work horse raises by a signal wherever the body is."""


def timeout_mid_query(jc: JobContext) -> str:
    """RQ's timeout landing inside a database call: the clean-up fails too, and its error propagates
    with the timeout as its context (psycopg: "can't change 'autocommit' now")."""
    try:
        raise JobTimeoutException("Task exceeded maximum timeout value (2 seconds)")
    except JobTimeoutException:
        raise RuntimeError("can't change 'autocommit' now: connection in transaction status ACTIVE")  # noqa: B904


def stall_first(jc: JobContext) -> str:
    """Hangs (with a heartbeat) on its first attempt, so a test can kill its worker; later attempts finish."""
    if jc.job.attempts < 2:
        for i in range(600):
            jc.progress("stalling", percent=i / 6)
            time.sleep(0.1)
    jc.progress("done", percent=100)
    return "finished"
