"""Deploy-core fixtures: the embedded context (from tests/cloudarb), a fake clock and the in-memory
provider, and a ``World`` that makes deployments and checks the invariants."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from cloudarb.context import Context
from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.deploy import invariants
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.providers.base import Provisioner
from cloudarb.deploy.run import write_intents
from cloudarb.deploy.schemas import Plan, PlannedLine
from cloudarb.storage import accounts
from tests.cloudarb.conftest import client, ctx, other_tenant, seeded_template, tenant  # noqa: F401
from tests.deploy.memory_provider import FakeClock, Faults, MemoryProvider


@dataclass
class World:
    env: DeployEnv
    clock: FakeClock
    providers: dict[str, MemoryProvider]
    org_id: str
    probes: list[tuple[str, int]] = field(default_factory=list)

    @property
    def mem(self) -> MemoryProvider:
        return self.providers["lambda"]

    def deployment(self, *lines: PlannedLine, lifetime_h: float = 4.0, max_h: float = 12.0) -> Deployment:
        now = self.clock()
        plan = Plan(lines=list(lines) or [line()])
        with self.env.db.session() as session:
            dep = Deployment(organization_id=self.org_id, name="t", status="pending",
                             spec=plan.model_dump(mode="json"), lifetime_s=lifetime_h * 3600,
                             max_lifetime_s=max_h * 3600, expires_at=now + timedelta(hours=lifetime_h),
                             created_at=now, updated_at=now, created_by="test")
            session.add(dep)
        return dep

    def intents(self, dep: Deployment) -> list[DeployInstance]:
        write_intents(self.env, dep, Plan.model_validate(dep.spec))
        return self.rows(dep.id)

    def rows(self, deployment_id: str | None = None) -> list[DeployInstance]:
        from sqlalchemy import select

        with self.env.db.session() as session:
            stmt = select(DeployInstance).order_by(DeployInstance.created_at, DeployInstance.attempt)
            if deployment_id is not None:
                stmt = stmt.where(DeployInstance.deployment_id == deployment_id)
            return list(session.scalars(stmt))

    def problems(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, prov in self.providers.items():
            history = [invariants.Lived(pid, h.instance.key, h.created_at, h.ended_at) for pid, h in prov.ever.items()]
            with self.env.db.session() as session:
                found = invariants.check(session, provider=key, prefix=self.env.prefix(),
                                         present=[(h.instance.provider_id, h.instance.key) for h in prov.live()],
                                         history=history)
            for name, items in found.items():
                out.setdefault(name, []).extend(items)
        return out

    def assert_sound(self) -> None:
        bad = {k: v for k, v in self.problems().items() if v}
        assert not bad, bad


def line(**overrides: object) -> PlannedLine:
    base: dict[str, object] = {"index": 0, "workload_id": "w", "offer_key": "lambda:us-east-1:gpu_1x_a100",
                               "provider": "lambda", "region": "us-east-1", "instance_type": "gpu_1x_a100",
                               "gpu_model": "A100 40GB", "gpus_per_instance": 1, "instances": 1,
                               "price_per_hour": 1.29}
    base.update(overrides)
    return PlannedLine.model_validate(base)


@pytest.fixture()
def world(ctx: Context) -> Iterator[World]:  # noqa: F811
    clock = FakeClock()
    providers = {k: MemoryProvider(k, clock=clock, faults=Faults()) for k in ("lambda", "runpod", "aws")}
    with ctx.db.session() as session:  # an organization without users (no password hashing)
        org_id = accounts.get_or_create_org(session, name="DeployCo").id
    probes: list[tuple[str, int]] = []

    def source(provider: str, account: str) -> Provisioner:
        return providers[provider]

    def probe(host: str, port: int) -> bool:
        probes.append((host, port))
        return True

    env = DeployEnv(db=ctx.db, settings=ctx.settings, providers=source, clock=clock, sleep=clock.sleep,
                    probe=probe, crash_at=None)
    yield World(env, clock, providers, org_id, probes)
