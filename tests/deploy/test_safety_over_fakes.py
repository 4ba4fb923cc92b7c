"""The deploy core driven against the Vast and TensorDock fakes over real HTTP: the zero-orphan
invariant after create-then-500, create-then-timeout, listing lag, destroys that fail or linger, and
an orphan left by a crash.

After every scenario: every instance the fake really holds under our prefix (hidden from lists or
not) matches exactly one live row, no key has two instances, and the ledger adds up
(``cloudarb.deploy.invariants``). Time is a fake clock (the core's look-after-failure windows and
grace periods); the fakes' listing lag counts list calls, so it is independent of that clock.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
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
from cloudarb.deploy.providers import tensordock, vast
from cloudarb.deploy.providers.base import ProviderConfig, Provisioner
from cloudarb.deploy.schemas import LaunchOptions, Plan, PlannedLine
from cloudarb.storage import accounts
from tests.deploy.fakes.server import FakeServer
from tests.deploy.fakes.tensordock import API_TOKEN, tensordock_server  # noqa: F401
from tests.deploy.fakes.vast import API_KEY, vast_server  # noqa: F401
from tests.deploy.memory_provider import FakeClock

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmXqg3bOqVdvsV2hSYcJYk6MfqG3ZJHzTq0Qk8H0bCo safety"
TIMEOUT_S = 1.0

LINES: dict[str, dict[str, Any]] = {
    "vast": {"offer_key": "9a1f0c2e4b6d8f0a1c3e5a7b", "instance_type": "1x RTX 4090 #4242", "region": "US",
             "gpu_model": "RTX 4090", "price_per_hour": 0.42,
             "launch": LaunchOptions(image="pytorch/pytorch:latest", disk_gb=40)},
    "tensordock": {"offer_key": "0b2d4f6a8c0e2a4c6e8a0b2d", "zone": "hostnode-abc", "gpu_model": "RTX 4090",
                   "instance_type": "1x geforcertx4090-pcie-24gb (8 vCPU, 32 GB)", "price_per_hour": 0.5,
                   "region": "United States-Texas-Austin"},
}


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
            dep = Deployment(organization_id=self.org_id, name="safety", status="pending",
                             spec=Plan(lines=[line]).model_dump(mode="json"), lifetime_s=4 * 3600.0,
                             max_lifetime_s=12 * 3600.0, expires_at=now + timedelta(hours=4), created_at=now,
                             updated_at=now, created_by="test", ssh_public_key=SSH_KEY)
            session.add(dep)
        return dep

    def rows(self, deployment_id: str | None = None) -> list[DeployInstance]:
        with self.env.db.session() as session:
            stmt = select(DeployInstance)
            if deployment_id is not None:
                stmt = stmt.where(DeployInstance.deployment_id == deployment_id)
            return list(session.scalars(stmt))

    def held(self, provider: str) -> list[dict[str, Any]]:
        """What the fake really holds alive under our prefix (including instances hidden from lists)."""
        prefix = self.env.prefix()
        return [i for i in self.fakes[provider].instances() if i["live"] and i["key"].startswith(prefix)]

    def assert_sound(self) -> None:
        problems: dict[str, list[str]] = {}
        for provider in self.fakes:
            present = [(str(i["id"]), str(i["key"])) for i in self.held(provider)]
            with self.env.db.session() as session:
                found = invariants.check(session, provider=provider, prefix=self.env.prefix(), present=present)
            for name, items in found.items():
                problems.setdefault(name, []).extend(items)
            keyed = Counter(key for _, key in present)
            problems.setdefault("duplicate_keys", []).extend(k for k, n in keyed.items() if n > 1)
        bad = {k: v for k, v in problems.items() if v}
        assert not bad, bad


@pytest.fixture()
def rig(ctx: Context, vast_server: FakeServer, tensordock_server: FakeServer) -> Iterator[Rig]:  # noqa: F811
    vast_server.reset()
    tensordock_server.reset()
    clock = FakeClock()

    def no_wait(seconds: float) -> None:
        return None

    made: dict[str, Provisioner] = {
        "vast": vast.provisioner(ProviderConfig(credentials={"api_key": API_KEY}, base_url=vast_server.url,
                                                timeout_s=TIMEOUT_S, sleep=no_wait)),
        "tensordock": tensordock.provisioner(ProviderConfig(
            credentials={"api_key": API_TOKEN}, base_url=f"{tensordock_server.url}/api/v2", timeout_s=TIMEOUT_S,
            sleep=no_wait)),
    }
    with ctx.db.session() as session:
        org_id = accounts.get_or_create_org(session, name="SafetyCo").id

    def source(provider: str, account: str) -> Provisioner:
        return made[provider]

    env = DeployEnv(db=ctx.db, settings=ctx.settings, providers=source, clock=clock, sleep=clock.sleep,
                    probe=lambda host, port: True, crash_at=None)
    yield Rig(env, clock, {"vast": vast_server, "tensordock": tensordock_server}, org_id)


PROVIDERS = ["vast", "tensordock"]


def _deploy_and_tear_down(rig: Rig, provider: str, replicas: int = 2) -> None:
    dep = rig.deployment(provider, replicas)
    results = run.deploy(rig.env, dep.id)
    assert [r.state for r in results] == [st.RUNNING] * replicas, results
    assert len(rig.held(provider)) == replicas
    rig.assert_sound()
    assert run.teardown(rig.env, dep.id, reason="done") == []
    assert rig.held(provider) == []
    assert {r.state for r in rig.rows(dep.id)} == {st.TERMINATED}
    rig.assert_sound()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_plain_deploy_and_teardown(rig: Rig, provider: str) -> None:
    _deploy_and_tear_down(rig, provider)
    [created] = [i for i in rig.fakes[provider].instances() if i["key"].endswith("-r0-a0")]
    if provider == "vast":
        assert created["ask_id"] == 4242 and created["image"] == "pytorch/pytorch:latest"
    else:
        assert created["hostnode_id"] == "hostnode-abc" and created["ssh_key"] == SSH_KEY


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_then_500_behind_listing_lag_is_adopted_not_duplicated(rig: Rig, provider: str) -> None:
    rig.fakes[provider].control(listing_lag_calls=3)
    rig.fakes[provider].fault("create", error="server_error", after_effect=True)
    _deploy_and_tear_down(rig, provider)
    assert len(rig.fakes[provider].instances()) == 2  # the 500 did not lead to a second create


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_then_timeout_behind_listing_lag_is_adopted_not_duplicated(rig: Rig, provider: str) -> None:
    rig.fakes[provider].control(listing_lag_calls=2)
    rig.fakes[provider].fault("create", after_effect=True, delay_s=TIMEOUT_S + 0.5)
    _deploy_and_tear_down(rig, provider, replicas=1)
    assert len(rig.fakes[provider].instances()) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_lingering_destroy_is_not_terminated_until_the_provider_proves_it(rig: Rig, provider: str) -> None:
    dep = rig.deployment(provider, replicas=1)
    [result] = run.deploy(rig.env, dep.id)
    assert result.state == st.RUNNING and result.instance_id
    rig.fakes[provider].control(destroy_linger_calls=5)
    state = destroy(rig.env, result.instance_id, reason="done")  # 3 fresh reads, all still showing it
    assert state == st.TERMINATING
    [row] = rig.rows(dep.id)
    assert row.destroy_attempts == 1 and row.billing_stopped_at is None
    rig.assert_sound()
    assert run.teardown(rig.env, dep.id, reason="done") == []
    [row] = rig.rows(dep.id)
    assert row.state == st.TERMINATED and rig.held(provider) == []
    rig.assert_sound()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_destroy_failing_k_times_is_retried_until_proven(rig: Rig, provider: str) -> None:
    dep = rig.deployment(provider, replicas=1)
    run.deploy(rig.env, dep.id)
    rig.fakes[provider].fault("destroy", error="server_error", times=4)
    assert run.teardown(rig.env, dep.id, reason="done") == []
    [row] = rig.rows(dep.id)
    assert row.state == st.TERMINATED and row.destroy_attempts >= 1
    assert rig.held(provider) == []
    rig.assert_sound()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_orphan_under_our_prefix_is_destroyed_after_the_grace_and_others_are_left_alone(
    rig: Rig, provider: str
) -> None:
    dep = rig.deployment(provider, replicas=1)
    run.deploy(rig.env, dep.id)
    prov = rig.env.provisioner(provider)
    install = rig.env.install_id()
    # A crash after the provider answered and before the row was written leaves an instance with our
    # prefix and no row; someone else's instance shares the account.
    from tests.deploy.fakes.tensordock import tensordock_spec
    from tests.deploy.fakes.vast import vast_spec

    make_spec = vast_spec if provider == "vast" else tensordock_spec
    orphan = prov.create(make_spec(keys.make_key(install, "feedfacecafe", 0, 0, 0)))
    foreign = prov.create(make_spec("someone-elses-box"))
    first = reconcile.reconcile(rig.env, provider)
    assert first.aborted is None and first.orphans_seen == 1 and first.orphans_destroyed == 0
    rig.clock.advance(rig.env.settings.deploy_orphan_grace_s + 1)
    second = reconcile.reconcile(rig.env, provider)
    assert second.orphans_destroyed == 1, second
    alive = {i["id"] for i in rig.fakes[provider].instances() if i["live"]}
    assert orphan.provider_id not in alive and foreign.provider_id in alive
    assert len(rig.held(provider)) == 1  # the deployment's own instance
    rig.assert_sound()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_listing_that_fails_midway_aborts_the_pass_and_touches_nothing(rig: Rig, provider: str) -> None:
    dep = rig.deployment(provider, replicas=1)
    run.deploy(rig.env, dep.id)
    rig.fakes[provider].fault("list", error="server_error", times=-1)
    report = reconcile.reconcile(rig.env, provider)
    assert report.aborted is not None and report.orphans_seen == 0
    [row] = rig.rows(dep.id)
    assert row.state == st.RUNNING and len(rig.held(provider)) == 1
    rig.assert_sound()


def _schedule(rng: random.Random) -> tuple[int, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """A random fault schedule: (replicas, settings, faults) drawn from what the fakes can do."""
    settings = {"listing_lag_calls": rng.randint(0, 3), "destroy_linger_calls": rng.randint(0, 4)}
    faults: list[tuple[str, dict[str, Any]]] = []
    create = rng.choice(["none", "none", "500_after", "500_after", "timeout_after", "rate_limit"])
    if create == "500_after":
        faults.append(("create", {"error": "server_error", "after_effect": True, "times": rng.randint(1, 2)}))
    elif create == "timeout_after":
        faults.append(("create", {"after_effect": True, "delay_s": TIMEOUT_S + 0.5}))
    elif create == "rate_limit":
        faults.append(("create", {"error": "rate_limit", "times": rng.randint(1, 3)}))
    if rng.random() < 0.5:
        faults.append(("destroy", {"error": "server_error", "times": rng.randint(1, 5)}))
    if rng.random() < 0.3:
        faults.append(("list", {"error": "server_error", "times": rng.randint(1, 2)}))
    return rng.randint(1, 2), settings, faults


def _run_schedule(rig: Rig, provider: str, seed: int) -> None:
    """Deploy, reconcile, tear down (retried as the scheduler would) under one schedule; the invariants
    hold after each step and nothing of ours is left. Seeds 0-39 of both providers (80 schedules) ran
    clean in 369 s here (about 40 ms a loopback request)."""
    replicas, settings, faults = _schedule(random.Random(f"{provider}-{seed}"))
    fake = rig.fakes[provider]
    fake.control(**settings)
    for op, fields in faults:
        fake.fault(op, **fields)
    dep = rig.deployment(provider, replicas)
    run.deploy(rig.env, dep.id)
    rig.assert_sound()
    rig.clock.advance(rig.env.settings.deploy_ghost_grace_s + 600)
    reconcile.reconcile(rig.env, provider)
    rig.assert_sound()
    for _ in range(4):  # the scheduler retries what a teardown could not prove
        if not run.teardown(rig.env, dep.id, reason="done") and not rig.held(provider):
            break
        rig.clock.advance(rig.env.settings.deploy_destroy_backoff_max_s)
    reconcile.reconcile(rig.env, provider)
    rig.assert_sound()
    assert rig.held(provider) == [], (seed, settings, faults)
    assert {r.state for r in rig.rows(dep.id)} <= set(st.ENDED), (seed, settings, faults)
    keys_held = Counter(str(i["key"]) for i in fake.instances())
    assert all(n == 1 for n in keys_held.values()), keys_held


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_random_fault_schedules_leave_no_orphan(rig: Rig, provider: str, seed: int) -> None:
    _run_schedule(rig, provider, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 10))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_more_random_fault_schedules_leave_no_orphan(rig: Rig, provider: str, seed: int) -> None:
    _run_schedule(rig, provider, seed)
