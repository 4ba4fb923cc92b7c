"""Random fault schedules against one provider, shared by the hypothesis state machine and
``scripts/chaos_deploy.py``: deploy, tear down, reconcile, sweep, let time pass, leak orphans, let the
provider end instances on its own, all while the provider misbehaves. ``settle`` then clears the
faults, tears everything down and runs the reconciler and destroy retries until nothing is left;
``problems`` checks the invariants."""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from cloudarb.config import Settings
from cloudarb.db.engine import Database
from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.db.types import utcnow
from cloudarb.deploy import invariants, run, stopstart, stopstart_job
from cloudarb.deploy import states as st
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.metering import meter
from cloudarb.deploy.providers.base import Provisioner
from cloudarb.deploy.reconcile import reconcile
from cloudarb.deploy.schemas import Plan, PlannedLine
from cloudarb.deploy.sweep import retry_destroys
from cloudarb.errors import Conflict, InvalidInput
from cloudarb.storage import accounts
from tests.deploy.memory_provider import CAPS, FakeClock, Faults, MemoryProvider

_SEQ = itertools.count()
TYPES = ("gpu_1x_a100", "gpu_1x_h100", "gpu_8x_h100")


def random_faults(rng: random.Random) -> Faults:
    return Faults(
        no_capacity={t for t in TYPES if rng.random() < 0.2},
        create_then_error=rng.choice([0, 0, 1, 2]), create_error_nothing=rng.choice([0, 0, 1]),
        rate_limited=rng.choice([0, 1, 3]), list_fail=rng.choice([0, 0, 1, 2]), find_fail=rng.choice([0, 0, 1, 3]),
        get_fail=rng.choice([0, 1, 4]), destroy_fail=rng.choice([0, 0, 2, 7]), destroy_ignored=rng.choice([0, 0, 1]),
        linger_reads=rng.choice([0, 1, 3]), listing_lag_s=rng.choice([0.0, 5.0, 25.0]),
        boot_reads=rng.choice([0, 1, 2]), stop_ignored=rng.choice([0, 0, 1]))


@dataclass
class Scenario:
    db: Database
    settings: Settings
    org_id: str
    provider: MemoryProvider
    env: DeployEnv
    clock: FakeClock
    deployments: list[str] = field(default_factory=list)
    reconcile_seconds: list[float] = field(default_factory=list)

    @classmethod
    def new(cls, db: Database, settings: Settings, faults: Faults | None = None) -> Scenario:
        n = next(_SEQ)
        key = f"mem{n}-{int(time.time() * 1000) % 10**6}"
        clock = FakeClock(utcnow())
        provider = MemoryProvider(key, clock=clock, capabilities=replace(CAPS, listing_lag_s=30.0, stop_start=True),
                                  faults=faults or Faults())

        def source(p: str, a: str) -> Provisioner:
            return provider

        settings = settings.model_copy(update={"deploy_install_id": f"c{n % 10**6:06d}x"[:16]})
        env = DeployEnv(db=db, settings=settings, providers=source, clock=clock, sleep=clock.sleep,
                        probe=lambda h, p: True, crash_at=None)
        with db.session() as session:
            org = accounts.get_or_create_org(session, name=f"chaos-{key}").id
        return cls(db, settings, org, provider, env, clock)

    # -- operations --------------------------------------------------------------------------------
    def deploy(self, rng: random.Random) -> str:
        lines = [PlannedLine(index=i, workload_id=f"w{i}", offer_key=f"{self.provider.key}:{t}", provider=self.provider.key,
                             region="r1", instance_type=t, gpu_model="H100", instances=rng.randint(1, 2),
                             price_per_hour=round(rng.uniform(0.5, 30), 3))
                 for i, t in enumerate(rng.sample(TYPES, rng.randint(1, 2)))]
        now = self.clock()
        with self.db.session() as session:
            dep = Deployment(organization_id=self.org_id, name="chaos", status="pending",
                             spec=Plan(lines=lines).model_dump(mode="json"), lifetime_s=4 * 3600,
                             max_lifetime_s=12 * 3600, expires_at=now + timedelta(hours=4), created_at=now,
                             updated_at=now, created_by="chaos")
            session.add(dep)
            session.flush()
            dep_id = dep.id
        self.deployments.append(dep_id)
        run.deploy(self.env, dep_id)
        return dep_id

    def teardown(self, rng: random.Random) -> None:
        if self.deployments:
            run.teardown(self.env, rng.choice(self.deployments), reason="done", passes=1)

    def reconcile(self) -> None:
        started = time.perf_counter()
        reconcile(self.env, self.provider.key)
        self.reconcile_seconds.append(time.perf_counter() - started)

    def sweep(self) -> None:
        retry_destroys(self.env, self.clock())
        with self.db.session() as session:
            meter(session, self.clock())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def leak_orphan(self) -> None:
        self.provider.leak(f"{self.env.prefix()}0000dead-l9-r9-a{next(_SEQ)}")

    def provider_kills_one(self, rng: random.Random) -> None:
        """The provider ends one of our known instances on its own (a spot reclaim)."""
        known = {r.provider_id for r in self.live_rows()}
        live = [h for h in self.provider.live() if h.instance.provider_id in known]
        if live:
            rng.choice(live).ended_at = self.clock()

    def stop_or_start(self, rng: random.Random) -> None:
        """The user stops or starts a random deployment (all of it, or one line); refusals are fine."""
        if not self.deployments:
            return
        dep_id, action = rng.choice(self.deployments), rng.choice(["stop", "start"])
        with self.db.session() as session:
            dep = session.get(Deployment, dep_id)
            assert dep is not None
            ready = [r.id for r in session.scalars(select(DeployInstance).where(
                DeployInstance.deployment_id == dep_id, DeployInstance.state.in_(stopstart.STOPPABLE)))]
            chosen = rng.choice([None, ready[:1], ready]) if ready else None  # all may be refused: fine too
            try:
                stopstart.record(session, dep, action=action, instances=chosen or None, now=self.clock())
            except (Conflict, InvalidInput):
                session.rollback()
                return
        stopstart_job.carry_out(self.env, dep_id)

    def provider_stops_or_starts_one(self, rng: random.Random) -> None:
        """The provider (a node's agent past an expiry, a zero balance) stops one of our instances, or
        someone starts one again outside CloudArb."""
        known = {r.provider_id for r in self.live_rows()}
        live = [h for h in self.provider.live() if h.instance.provider_id in known]
        if live:
            held = rng.choice(live)
            self.provider.set_stopped(held.instance.provider_id, not held.stopped)

    def step(self, rng: random.Random) -> str:
        op = rng.choices(["deploy", "teardown", "reconcile", "sweep", "advance", "orphan", "kill", "faults",
                          "stop_start", "provider_stop_start"],
                         weights=[3, 2, 3, 2, 3, 1, 1, 1, 4, 2])[0]
        if op == "deploy":
            self.deploy(rng)
        elif op == "teardown":
            self.teardown(rng)
        elif op == "reconcile":
            self.reconcile()
        elif op == "sweep":
            self.sweep()
        elif op == "advance":
            self.advance(rng.choice([1, 30, 120, 400]))
        elif op == "orphan":
            self.leak_orphan()
        elif op == "kill":
            self.provider_kills_one(rng)
        elif op == "stop_start":
            self.stop_or_start(rng)
        elif op == "provider_stop_start":
            self.provider_stops_or_starts_one(rng)
        else:
            self.provider.faults = random_faults(rng)
        return op

    # -- the end ------------------------------------------------------------------------------------
    def settle(self, rounds: int = 12) -> None:
        """Faults end; everything is torn down; reconcile and retries run until nothing is left."""
        self.provider.faults = Faults(boot_reads=0)
        for dep_id in self.deployments:
            run.teardown(self.env, dep_id, reason="done", passes=1)
        for _ in range(rounds):
            self.advance(max(self.settings.deploy_orphan_grace_s, self.settings.deploy_ghost_grace_s) + 60)
            self.reconcile()
            retry_destroys(self.env, self.clock() + timedelta(days=1))
            for dep_id in self.deployments:
                run.teardown(self.env, dep_id, reason="done", passes=1)
            if not self.provider.live() and not self.live_rows():
                break
        with self.db.session() as session:
            meter(session, self.clock())

    def live_rows(self) -> list[DeployInstance]:
        with self.db.session() as session:
            return list(session.scalars(select(DeployInstance).where(
                DeployInstance.provider == self.provider.key, DeployInstance.state.in_(st.LIVE))))

    def problems(self, *, settled: bool) -> dict[str, list[str]]:
        live = self.provider.live()
        history = [invariants.Lived(pid, h.instance.key, h.created_at, h.ended_at,
                                    stopped=tuple((a, b) for a, b in h.stops if a is not None))
                   for pid, h in self.provider.ever.items()]
        with self.db.session() as session:
            found = invariants.check(session, provider=self.provider.key, prefix=self.env.prefix(),
                                     present=[(h.instance.provider_id, h.instance.key) for h in live],
                                     history=history)
        if not settled:  # mid-run an orphan waits for the next pass; the rest must hold at every step
            found["orphans"] = [o for o in found["orphans"] if "matches 0" not in o]
            found["unaccounted"] = [u for u in found["unaccounted"] if "has no billed row" not in u]
        found["left_running"] = [h.instance.provider_id for h in live] if settled else []
        found["leaked"] = [r.id for r in self.live_rows() if r.state == st.LEAKED] if settled else []
        return found

    def figures(self) -> dict[str, Any]:
        return {"instances_created": len(self.provider.ever)}
