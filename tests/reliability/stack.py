"""A private production stack for fault injection: its own PostgreSQL cluster and Redis server on free
ports (never the shared ones on 5432/6379), a real API server and real `cloudarb worker` processes.

Used by the fault-injection tests (``tests/reliability``) and by ``scripts/chaos_jobs.py``. Every
process is started here and stopped by its own id.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("CLOUDARB_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SECRET = "chaos-signing-key-" + "y" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def available() -> str | None:
    """Why the stack cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server not installed"
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {PG_BIN} (set CLOUDARB_TEST_PG_BIN)"
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user there."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PrivateRedis:
    """A Redis server without persistence (a restart comes back empty, the worst case)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        import redis

        client = redis.Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        if not wait_until(up, 20, 0.05):
            raise RuntimeError("private redis did not start")
        client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart_empty(self, down_s: float = 2.0) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, stopped with ``-m immediate`` like a crash."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "pg"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.log = workdir / "pg.log"

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir.parent, "postgres")
            shutil.chown(self.dir, "postgres")
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust",
                                     "-U", "postgres", "--no-sync", "-E", "UTF8"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-o", opts,
                                     "-l", str(self.dir / "server.log"), "-w", "start"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                                     "-w", "stop"]), check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


class Process:
    """A child process in its own session, stopped (or killed with its children) by its own id."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the process and every descendant (RQ starts each work horse in a session of its own)."""
        if self.proc.poll() is None:
            for pid in [*descendants(self.proc.pid), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


class Stack:
    """PostgreSQL, Redis, one API server and workers, all private; settings tuned for quick recovery."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="cloudarb-chaos-"))
        os.chmod(self.tmp, 0o755)
        self.pg = PrivatePostgres(self.tmp)
        self.redis = PrivateRedis(self.tmp)
        self.api: Process | None = None
        self.workers: list[Process] = []
        self.base = ""
        self.values = {
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "QUEUE_NAME": f"chaos-{uuid.uuid4().hex[:6]}",
            "SECRET_KEY": SECRET,
            "DATA_DIR": str(self.tmp / "data"),
            "JOB_HEARTBEAT_S": "0.3",
            "JOB_STALE_AFTER_S": "3",
            "JOB_LOST_AFTER_S": "2",
            "JOB_MAX_ATTEMPTS": "5",
            "SCHEDULER_TICK_S": "0.5",
            "SOLVE_TIME_LIMIT_S": "2",
            "RATE_LIMIT_PER_MINUTE": "100000",
            "LOG_LEVEL": "WARNING",
        }

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
        env.update({f"CLOUDARB_{k}": v for k, v in self.values.items()})
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def settings(self) -> Any:
        from cloudarb.config import Settings

        return Settings(_env_file=None, **{k.lower(): v for k, v in self.values.items()})  # type: ignore[arg-type]

    def start(self, *, workers: int = 1) -> None:
        from cloudarb.bootstrap import seed_snapshot
        from cloudarb.context import build_context
        from cloudarb.db import migrate

        self.pg.init()
        self.pg.start()
        self.redis.start()
        migrate.upgrade(self.pg.url)
        ctx = build_context(self.settings())
        seed_snapshot(ctx)
        ctx.close()
        port = free_port()
        self.api = Process([sys.executable, "-m", "uvicorn", "cloudarb.api.app:create_app", "--factory",
                            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                           self.env(), self.tmp / "api.log")
        self.base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{self.base}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(up, 90):
            raise RuntimeError(f"API server did not start; see {self.tmp / 'api.log'}")
        for _ in range(workers):
            self.start_worker()

    def start_worker(self) -> Process:
        worker = Process([sys.executable, "-m", "cloudarb", "worker"], self.env(),
                         self.tmp / f"worker{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.api is not None:
            self.api.stop()
        self.redis.kill()
        self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def api_key(self, name: str) -> str:
        """An editor's API key of a new organization (written straight to the database)."""
        from cloudarb.db.engine import Database
        from cloudarb.storage import accounts

        db = Database(self.pg.url)
        try:
            with db.session() as session:
                org = accounts.get_or_create_org(session, name=name)
                _, secret = accounts.create_api_key(session, organization_id=org.id, name="chaos", role="admin",
                                                    created_by=None)
        finally:
            db.dispose()
        return secret

    def job_statuses(self, job_ids: list[str]) -> dict[str, str]:
        from sqlalchemy import select

        from cloudarb.db.engine import Database
        from cloudarb.db.models import JobRun

        db = Database(self.pg.url)
        try:
            with db.session() as session:
                rows = session.execute(select(JobRun.id, JobRun.status).where(JobRun.id.in_(job_ids))).all()
        finally:
            db.dispose()
        return {job_id: status for job_id, status in rows}

    def stored_optimizations(self, ids: list[str]) -> set[str]:
        from sqlalchemy import select

        from cloudarb.db.engine import Database
        from cloudarb.db.models import OptimizationRequest

        db = Database(self.pg.url)
        try:
            with db.session() as session:
                return set(session.scalars(
                    select(OptimizationRequest.id).where(OptimizationRequest.id.in_(ids))).all())
        finally:
            db.dispose()
