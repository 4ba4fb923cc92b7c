"""Production-mode fixtures: a fresh PostgreSQL database, Redis, a real API server and RQ workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cloudarb.bootstrap import seed_snapshot
from cloudarb.config import Settings
from cloudarb.context import Context, build_context
from cloudarb.db import migrate
from tests.reliability.stack import Process
from tests.support import PG_URL, REDIS_URL, make_settings, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    name = f"cloudarb_it_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def prod_settings(pg_database: str) -> Settings:
    return make_settings(
        database_url=pg_database,
        redis_url=REDIS_URL,
        queue_name=f"cloudarb-test-{uuid.uuid4().hex[:8]}",
        job_stale_after_s=3.0,
        job_heartbeat_s=0.3,
        scheduler_tick_s=0.5,
    )


@pytest.fixture(scope="session")
def prod_ctx(prod_settings: Settings) -> Iterator[Context]:
    migrate.upgrade(prod_settings.database_url)
    ctx = build_context(prod_settings)
    seed_snapshot(ctx)
    yield ctx
    ctx.close()


def env_for(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    values = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "QUEUE_NAME": settings.queue_name,
        "SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "JOB_HEARTBEAT_S": str(settings.job_heartbeat_s),
        "JOB_STALE_AFTER_S": str(settings.job_stale_after_s),
        "SCHEDULER_TICK_S": str(settings.scheduler_tick_s),
        "LOG_LEVEL": "WARNING",
    }
    env.update({f"CLOUDARB_{k}": v for k, v in values.items()})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def Worker(settings: Settings, log: Path) -> Process:
    """A real `cloudarb worker` process in its own session (its work horses die with it on kill())."""
    return Process([sys.executable, "-m", "cloudarb", "worker"], env_for(settings), log)


@pytest.fixture()
def start_worker(prod_settings: Settings, tmp_path: Path) -> Iterator[object]:
    workers: list[Process] = []

    def start() -> Process:
        w = Worker(prod_settings, tmp_path / f"worker{len(workers)}.log")
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(prod_ctx: Context, prod_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn server process on loopback."""
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "cloudarb.api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env_for(prod_settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None and pytest.fail("server exited; see its log")  # type: ignore[return-value]

    wait_for(up, timeout=60, interval=0.2)
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(15)
    log.close()
