"""The API against a real server process (PostgreSQL, Redis, uvicorn on loopback): read-your-writes on
one keep-alive connection, a chunked oversized body refused before authentication with bounded memory,
hostile input answered 4xx without changing anything stored, and a schemathesis run without a server
error."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from cloudarb.config import Settings
from cloudarb.context import Context
from cloudarb.db.models import ApiKey, JobRun, OptimizationRequest, Policy, User
from tests.integration.conftest import env_for
from tests.reliability import probes
from tests.reliability.stack import Process, free_port, wait_until
from tests.support import Tenant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tenant(prod_ctx: Context) -> Tenant:
    return Tenant(prod_ctx, f"Hardening {uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def api(prod_ctx: Context, prod_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """A uvicorn process of our own (its pid is needed to read its memory)."""
    port = free_port()
    env = env_for(prod_settings) | {"CLOUDARB_RATE_LIMIT_PER_MINUTE": "1000000"}
    proc = Process([sys.executable, "-m", "uvicorn", "cloudarb.api.app:create_app", "--factory", "--host",
                    "127.0.0.1", "--port", str(port), "--log-level", "warning"], env,
                   tmp_path_factory.mktemp("api") / "api.log")
    proc.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    proc.port = port  # type: ignore[attr-defined]

    def up() -> bool:
        try:
            return httpx.get(f"{proc.base}/health", timeout=1).status_code == 200  # type: ignore[attr-defined]
        except httpx.HTTPError:
            return False

    assert wait_until(up, 90), "the API server did not start"
    yield proc
    proc.stop()


def stored_counts(ctx: Context) -> dict[str, int]:
    with ctx.db.session() as session:
        return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
                for m in (OptimizationRequest, JobRun, Policy, ApiKey, User)}


def test_read_your_writes_on_one_keep_alive_connection(api: Process, tenant: Tenant) -> None:
    failures = probes.read_your_writes(api.base, tenant.keys["admin"], n=100, users=25)  # type: ignore[attr-defined]
    assert len(failures) == 11, failures  # every write route but login, refresh and the job-starting ones below
    assert all(n == 0 for n in failures.values()), failures


def test_chunked_oversized_body_is_refused_before_authentication_with_bounded_memory(api: Process) -> None:
    before = probes.peak_rss_mb(api.pid)
    status, sent_mb = probes.chunked_oversized("127.0.0.1", api.port, total_mb=300)  # type: ignore[attr-defined]
    assert status == 413, "no credentials were sent: 401 would mean the body reached authentication"
    assert sent_mb < 300, "the server read the whole body before answering"
    assert probes.peak_rss_mb(api.pid) - before < 64, "memory grew with the body"


def test_hostile_input_gets_4xx_and_changes_nothing(api: Process, prod_ctx: Context, tenant: Tenant) -> None:
    before = stored_counts(prod_ctx)
    with httpx.Client(base_url=api.base, timeout=30) as client:  # type: ignore[attr-defined]
        answers = probes.hostile_answers(client.request, tenant.headers("admin"))
        assert client.get("/health").status_code == 200, "the keep-alive connection survived"
    bad = [a for a in answers if not 400 <= a[2] < 500]
    assert not bad, bad
    assert [a for a in answers if a[2] == 422 and not a[3]] == [], "every 422 names its field"
    assert stored_counts(prod_ctx) == before


def test_schemathesis_finds_no_server_error(api: Process, tenant: Tenant) -> None:
    from tests.reliability.fuzz import fuzz

    sent, errors = fuzz(api.base, tenant.keys["admin"], max_examples=8)  # type: ignore[attr-defined]
    assert sent > 100, "schemathesis generated too few requests to mean anything"
    assert errors == [], errors
