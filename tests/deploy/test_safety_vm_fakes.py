"""The deploy core against the Lambda and RunPod fakes and moto's EC2 (behind the fault proxy), over
real HTTP: the zero-orphan invariant after create-then-500, create-then-timeout, listing lag,
destroys that fail or linger, an orphan left by a crash, and random fault schedules.

After every scenario, what the provider really holds under our prefix (read from the fake's state,
hidden from lists or not) matches exactly one live row, no key has two instances, and the ledger adds
up (``cloudarb.deploy.invariants``). The core's windows run on a fake clock; listing lag counts list
calls, so it does not depend on that clock.
"""
# ruff: noqa: F811  (fixtures are imported from tests/deploy/fakes/fixtures.py and used as parameters)

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.deploy import invariants, keys, reconcile, run
from cloudarb.deploy import states as st
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.providers import aws, lambda_, runpod
from cloudarb.deploy.providers.base import LaunchSpec, Provisioner
from cloudarb.deploy.schemas import LaunchOptions, Plan, PlannedLine
from cloudarb.storage import accounts
from tests.deploy.fakes.env import Sleeps
from tests.deploy.fakes.fixtures import (  # noqa: F401
    aws_config,
    aws_spec,
    ec2_server,
    lambda_config,
    lambda_server,
    lambda_spec,
    moto_server,
    runpod_config,
    runpod_server,
    runpod_spec,
)
from tests.deploy.fakes.server import FakeServer
from tests.deploy.memory_provider import FakeClock, Faults, MemoryProvider

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmXqg3bOqVdvsV2hSYcJYk6MfqG3ZJHzTq0Qk8H0bCo vm-safety"
TIMEOUT_S = {"lambda": 1.0, "runpod": 1.0, "aws": 2.0}
PROVIDERS = ["lambda", "runpod", "aws"]

LINES: dict[str, dict[str, Any]] = {
    "lambda": {"offer_key": "lambda:us-east-1:gpu_1x_a10", "instance_type": "gpu_1x_a10", "region": "us-east-1",
               "gpu_model": "A10", "price_per_hour": 1.29},
    "runpod": {"offer_key": "runpod::NVIDIA GeForce RTX 4090 [secure]", "gpu_model": "RTX 4090",
               "instance_type": "NVIDIA GeForce RTX 4090 [secure]", "price_per_hour": 0.69,
               "launch": LaunchOptions(image="runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel-ubuntu22.04")},
    "aws": {"offer_key": "aws:us-east-1:g5.xlarge", "instance_type": "g5.xlarge", "region": "us-east-1",
            "gpu_model": "A10G", "price_per_hour": 1.006},
}
SPECS: dict[str, Callable[..., LaunchSpec]] = {"lambda": lambda_spec, "runpod": runpod_spec, "aws": aws_spec}


def _held_item(provider: str, item: dict[str, Any]) -> tuple[str, str] | None:
    """(provider id, key) of an instance the fake still holds alive, in the module's own terms."""
    if provider == "lambda":
        tags = {t["key"]: t["value"] for t in item.get("tags") or []}
        return str(item["id"]), str(tags.get("cloudarb:key") or item.get("name") or "")
    if provider == "runpod":
        return str(item["id"]), str(item.get("name") or "")
    if item["state"] == "terminated":
        return None
    return f"us-east-1:{item['id']}", str(item["tags"].get("cloudarb:key", ""))


@dataclass
class Rig:
    env: DeployEnv
    clock: FakeClock
    fakes: dict[str, FakeServer]
    org_id: str

    def deployment(self, provider: str, replicas: int = 2) -> Deployment:
        now = self.clock()
        line = PlannedLine.model_validate(
            {"index": 0, "workload_id": "w", "provider": provider, "instances": replicas, **LINES[provider]})
        with self.env.db.session() as session:
            dep = Deployment(organization_id=self.org_id, name="vm-safety", status="pending",
                             spec=Plan(lines=[line]).model_dump(mode="json"), lifetime_s=4 * 3600.0,
                             max_lifetime_s=12 * 3600.0, expires_at=now + timedelta(hours=4), created_at=now,
                             updated_at=now, created_by="test", ssh_public_key=SSH_KEY)
            session.add(dep)
        return dep

    def rows(self, deployment_id: str) -> list[DeployInstance]:
        with self.env.db.session() as session:
            return list(session.scalars(select(DeployInstance).where(DeployInstance.deployment_id == deployment_id)))

    def held(self, provider: str) -> list[tuple[str, str]]:
        prefix = self.env.prefix()
        found = [_held_item(provider, i) for i in self.fakes[provider].instances()]
        return [h for h in found if h is not None and h[1].startswith(prefix)]

    def assert_sound(self, provider: str) -> None:
        present = self.held(provider)
        with self.env.db.session() as session:
            problems = invariants.check(session, provider=provider, prefix=self.env.prefix(), present=present)
        problems["duplicate_keys"] = [k for k, n in Counter(k for _, k in present).items() if n > 1]
        bad = {k: v for k, v in problems.items() if v}
        assert not bad, bad


@pytest.fixture()
def rig(ctx: Context, lambda_server: FakeServer, runpod_server: FakeServer,
        ec2_server: FakeServer) -> Iterator[Rig]:
    fakes = {"lambda": lambda_server, "runpod": runpod_server, "aws": ec2_server}
    for fake in fakes.values():
        fake.reset()
    clock = FakeClock()
    made: dict[str, Provisioner] = {
        "lambda": lambda_.provisioner(lambda_config(lambda_server, Sleeps(), timeout_s=TIMEOUT_S["lambda"])),
        "runpod": runpod.provisioner(runpod_config(runpod_server, Sleeps(), timeout_s=TIMEOUT_S["runpod"])),
        "aws": aws.provisioner(aws_config(ec2_server, Sleeps(), timeout_s=TIMEOUT_S["aws"])),
    }
    with ctx.db.session() as session:
        org_id = accounts.get_or_create_org(session, name="VmSafetyCo").id
    others: dict[str, MemoryProvider] = {}

    def source(provider: str, account: str) -> Provisioner:
        """Our three modules; any other provider a failover re-solve picks is an in-memory double."""
        if provider in made:
            return made[provider]
        return others.setdefault(provider, MemoryProvider(provider, clock=clock, faults=Faults()))

    env = DeployEnv(db=ctx.db, settings=ctx.settings, providers=source, clock=clock, sleep=clock.sleep,
                    probe=lambda host, port: True, crash_at=None)
    yield Rig(env, clock, fakes, org_id)


def _deploy_and_tear_down(rig: Rig, provider: str, replicas: int = 2) -> None:
    dep = rig.deployment(provider, replicas)
    results = run.deploy(rig.env, dep.id)
    assert [r.state for r in results] == [st.RUNNING] * replicas, results
    assert len(rig.held(provider)) == replicas
    rig.assert_sound(provider)
    assert run.teardown(rig.env, dep.id, reason="done") == []
    assert rig.held(provider) == []
    assert {r.state for r in rig.rows(dep.id)} == {st.TERMINATED}
    rig.assert_sound(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_plain_deploy_and_teardown(rig: Rig, provider: str) -> None:
    _deploy_and_tear_down(rig, provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_then_500_behind_listing_lag_is_adopted_not_duplicated(rig: Rig, provider: str) -> None:
    rig.fakes[provider].control(listing_lag_calls=3)
    rig.fakes[provider].fault("create", error="server_error", after_effect=True)
    _deploy_and_tear_down(rig, provider)  # exactly `replicas` held before teardown: the 500 made no second


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_then_timeout_behind_listing_lag_is_adopted_not_duplicated(rig: Rig, provider: str) -> None:
    rig.fakes[provider].control(listing_lag_calls=2)
    rig.fakes[provider].fault("create", after_effect=True, delay_s=TIMEOUT_S[provider] + 0.5)
    dep = rig.deployment(provider, replicas=1)
    [result] = run.deploy(rig.env, dep.id)
    assert result.state == st.RUNNING, result
    assert len(rig.held(provider)) == 1
    rig.assert_sound(provider)
    assert run.teardown(rig.env, dep.id, reason="done") == []
    assert rig.held(provider) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_lingering_destroy_is_not_terminated_until_proven(rig: Rig, provider: str) -> None:
    dep = rig.deployment(provider, replicas=1)
    [result] = run.deploy(rig.env, dep.id)
    assert result.state == st.RUNNING and result.instance_id
    rig.fakes[provider].control(destroy_linger_calls=5)
    assert destroy(rig.env, result.instance_id, reason="done") == st.TERMINATING
    [row] = rig.rows(dep.id)
    assert row.billing_stopped_at is None
    rig.assert_sound(provider)
    assert run.teardown(rig.env, dep.id, reason="done") == []
    [row] = rig.rows(dep.id)
    assert row.state == st.TERMINATED and rig.held(provider) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_orphan_with_our_prefix_is_destroyed_after_the_grace_and_others_are_left(rig: Rig, provider: str) -> None:
    dep = rig.deployment(provider, replicas=1)
    run.deploy(rig.env, dep.id)
    prov = rig.env.provisioner(provider)
    orphan = prov.create(SPECS[provider](keys.make_key(rig.env.install_id(), "feedfacecafe", 0, 0, 0)))
    foreign = prov.create(SPECS[provider]("someone-elses-box"))
    first = reconcile.reconcile(rig.env, provider)
    assert first.aborted is None and first.orphans_seen == 1 and first.orphans_destroyed == 0
    rig.clock.advance(rig.env.settings.deploy_orphan_grace_s + 1)
    assert reconcile.reconcile(rig.env, provider).orphans_destroyed == 1
    held_ids = {h[0] for h in rig.held(provider)}
    assert orphan.provider_id not in held_ids and len(held_ids) == 1
    assert prov.find("someone-elses-box") is not None and foreign.provider_id
    rig.assert_sound(provider)


def _schedule(rng: random.Random, provider: str) -> tuple[int, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    settings = {"listing_lag_calls": rng.randint(0, 3), "destroy_linger_calls": rng.randint(0, 4)}
    faults: list[tuple[str, dict[str, Any]]] = []
    create = rng.choice(["none", "500_after", "500_after", "timeout_after", "rate_limit", "no_capacity"])
    if create == "500_after":
        faults.append(("create", {"error": "server_error", "after_effect": True, "times": rng.randint(1, 2)}))
    elif create == "timeout_after":
        faults.append(("create", {"after_effect": True, "delay_s": TIMEOUT_S[provider] + 0.5}))
    elif create != "none":
        faults.append(("create", {"error": create, "times": rng.randint(1, 2)}))
    if rng.random() < 0.5:
        faults.append(("destroy", {"error": "server_error", "times": rng.randint(1, 5)}))
    if rng.random() < 0.3:
        faults.append(("list", {"error": "server_error", "times": rng.randint(1, 2)}))
    return rng.randint(1, 2), settings, faults


def _run_schedule(rig: Rig, provider: str, seed: int) -> None:
    """Deploy, reconcile, tear down (retried as the scheduler would) under one random schedule. Seeds
    0-9 of the three providers (30 schedules; no capacity fails over to an in-memory double) ran clean
    with the rest of this file: 45 tests in 222 s wall, 68 s CPU, on a loaded 2-core machine."""
    replicas, settings, faults = _schedule(random.Random(f"{provider}-{seed}"), provider)
    fake = rig.fakes[provider]
    fake.control(**settings)
    for op, fields in faults:
        fake.fault(op, **fields)
    dep = rig.deployment(provider, replicas)
    run.deploy(rig.env, dep.id)
    rig.assert_sound(provider)
    rig.clock.advance(rig.env.settings.deploy_ghost_grace_s + 600)
    reconcile.reconcile(rig.env, provider)
    rig.assert_sound(provider)
    for _ in range(4):
        if not run.teardown(rig.env, dep.id, reason="done") and not rig.held(provider):
            break
        rig.clock.advance(rig.env.settings.deploy_destroy_backoff_max_s)
    reconcile.reconcile(rig.env, provider)
    rig.assert_sound(provider)
    assert rig.held(provider) == [], (seed, settings, faults)
    assert {r.state for r in rig.rows(dep.id)} <= set(st.ENDED), (seed, settings, faults)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_random_fault_schedules_leave_no_orphan(rig: Rig, provider: str, seed: int) -> None:
    _run_schedule(rig, provider, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 10))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_more_random_fault_schedules_leave_no_orphan(rig: Rig, provider: str, seed: int) -> None:
    _run_schedule(rig, provider, seed)
