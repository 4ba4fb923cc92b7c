"""Crash tests: the deploy job in a subprocess SIGKILLed at named points (after the intent commit,
after the provider answered, during destroy), then re-run and reconciled. Whatever the point, every
instance at the provider ends up named by exactly one row, no key has two instances, and the teardown
leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from cloudarb.context import Context
from cloudarb.db.models_deploy import Deployment
from cloudarb.db.types import utcnow
from cloudarb.deploy import invariants, run
from cloudarb.deploy.env import CRASH_ENV, DeployEnv
from cloudarb.deploy.reconcile import reconcile
from cloudarb.deploy.schemas import Plan
from cloudarb.storage import accounts
from tests.deploy.conftest import line
from tests.deploy.file_provider import FileProvider

ROOT = Path(__file__).resolve().parents[2]


def _worker(ctx: Context, state: Path, deployment_id: str, action: str, crash_at: str | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    done = subprocess.run([sys.executable, "-m", "tests.deploy.crash_worker", ctx.settings.database_url, str(state),
                           deployment_id, action], env=env, cwd=ROOT, capture_output=True, timeout=120)
    return done.returncode


def _deployment(ctx: Context, replicas: int) -> str:
    now = utcnow()
    with ctx.db.session() as session:
        org = accounts.get_or_create_org(session, name="CrashCo").id
        dep = Deployment(organization_id=org, name="crash", status="pending",
                         spec=Plan(lines=[line(instances=replicas)]).model_dump(mode="json"), lifetime_s=3600,
                         max_lifetime_s=12 * 3600, expires_at=now + timedelta(hours=1), created_at=now,
                         updated_at=now, created_by="test")
        session.add(dep)
        session.flush()
        return dep.id


def _sound(env: DeployEnv, provider: FileProvider) -> dict[str, list[str]]:
    ever = provider.snapshot()
    with env.db.session() as session:
        problems = invariants.check(
            session, provider="lambda", prefix=env.prefix(),
            present=[(pid, h.instance.key) for pid, h in ever.items() if h.ended_at is None],
            history=[invariants.Lived(pid, h.instance.key, h.created_at, h.ended_at) for pid, h in ever.items()])
    return {k: v for k, v in problems.items() if v}


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["after_intent", "after_create"])
def test_a_deploy_killed_mid_create_is_finished_by_a_rerun_without_duplicates(
        ctx: Context, tmp_path: Path, crash_at: str) -> None:
    state = tmp_path / "provider.pickle"
    dep_id = _deployment(ctx, replicas=2)
    assert _worker(ctx, state, dep_id, "deploy", crash_at) == -signal.SIGKILL
    provider = FileProvider(state)
    assert len(provider.snapshot()) == (1 if crash_at == "after_create" else 0)
    # the crashed worker is known dead: its rows may be resumed at once
    settings = ctx.settings.model_copy(update={"deploy_install_id": "crashtst", "deploy_claim_timeout_s": 0.0})
    env = DeployEnv(db=ctx.db, settings=settings, providers=lambda p, a: provider, probe=lambda h, p: True)
    reconcile(env, "lambda")
    results = run.deploy(env, dep_id)  # the job, retried
    assert [r.state for r in results] == ["running", "running"]
    assert len(provider.snapshot()) == 2  # one instance per key: the first create was adopted, not repeated
    assert _sound(env, provider) == {}
    assert run.teardown(env, dep_id, reason="done") == []
    assert all(h.ended_at is not None for h in provider.snapshot().values())
    assert _sound(env, provider) == {}


@pytest.mark.slow
def test_a_teardown_killed_during_destroy_is_finished_with_proof(ctx: Context, tmp_path: Path) -> None:
    state = tmp_path / "provider.pickle"
    dep_id = _deployment(ctx, replicas=1)
    assert _worker(ctx, state, dep_id, "deploy", None) == 0
    assert _worker(ctx, state, dep_id, "teardown", "during_destroy") == -signal.SIGKILL
    provider = FileProvider(state)
    assert [h.ended_at for h in provider.snapshot().values()] == [None]  # killed before the destroy call
    # the crashed worker is known dead: its rows may be resumed at once
    settings = ctx.settings.model_copy(update={"deploy_install_id": "crashtst", "deploy_claim_timeout_s": 0.0})
    env = DeployEnv(db=ctx.db, settings=settings, providers=lambda p, a: provider, probe=lambda h, p: True)
    assert [r.state for r in run.live_rows(env, dep_id)] == ["terminating"]
    assert run.teardown(env, dep_id, reason="done") == []
    assert all(h.ended_at is not None for h in provider.snapshot().values())
    assert _sound(env, provider) == {}
