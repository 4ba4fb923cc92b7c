"""Provider-reported rates: billing stays at the launch price, the reported rate is kept, and a
difference beyond the tolerance raises one ``rate_mismatch`` alert, shown on the deployment. And the
other new alert: a failed after-hook delivery."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select, update

from cloudarb.context import Context
from cloudarb.db.models_deploy import CostEntry, DeployAlert, DeployInstance, Deployment, DeployMeta
from cloudarb.db.models_hooks import Hook, HookDelivery
from cloudarb.db.types import utcnow
from cloudarb.deploy import rates
from cloudarb.deploy import states as st
from cloudarb.deploy.create import launch, wait_ready
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.providers.base import RemoteInstance
from cloudarb.deploy.reconcile import reconcile
from cloudarb.deploy.sweep import tick
from cloudarb.deploy.views import to_out
from tests.deploy.conftest import World
from tests.deploy.memory_provider import Faults, MemoryProvider


class ReportingProvider(MemoryProvider):
    """Reports ``factor`` x the launch price as the instance's billed rate (RunPod adjustedCostPerHr)."""

    def __init__(self, world: World, factor: float) -> None:
        super().__init__("lambda", clock=world.clock, faults=Faults())
        self.factor = factor

    def _read(self, held: Any) -> RemoteInstance:
        inst = super()._read(held)
        return replace(inst, hourly_rate=round(inst.hourly_rate * self.factor, 6) if inst.hourly_rate else None)


def _alerts(world: World) -> list[DeployAlert]:
    with world.env.db.session() as session:
        return list(session.scalars(select(DeployAlert).where(DeployAlert.kind == "rate_mismatch")))


def _run(world: World) -> str:
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    assert wait_ready(world.env, row.id, timeout_s=60, poll_s=5.0) == st.RUNNING
    return row.id


def test_a_reported_rate_off_the_launch_price_alerts_once_and_billing_keeps_the_launch_price(world: World) -> None:
    world.providers["lambda"] = ReportingProvider(world, 1.25)
    instance_id = _run(world)
    [alert] = _alerts(world)
    assert alert.details["launch_rate"] == 1.29 and alert.details["reported_rate"] == 1.6125
    assert "+25.0%" in alert.message
    reconcile(world.env, "lambda")  # seen again: no second alert
    assert len(_alerts(world)) == 1
    with world.env.db.session() as session:
        row = session.get(DeployInstance, instance_id)
        assert row is not None and row.deployment_id is not None
        dep = session.get(Deployment, row.deployment_id)
        assert dep is not None
        [inst] = to_out(session, dep, world.clock()).instances
    assert (inst.price_per_hour, inst.reported_rate, inst.rate_mismatch) == (1.29, 1.6125, True)
    world.clock.advance(3600)
    assert destroy(world.env, instance_id, reason="done") == st.TERMINATED
    with world.env.db.session() as session:
        [entry] = session.scalars(select(CostEntry)).all()
    assert entry.rate == 1.29


def test_a_rate_within_the_tolerance_or_a_stopped_pods_zero_raises_nothing(world: World) -> None:
    world.providers["lambda"] = ReportingProvider(world, 1.01)  # within the default 2 %
    _run(world)
    assert _alerts(world) == []
    assert not rates.differs(1.29, 0.0, 0.02) and not rates.differs(1.29, None, 0.02)
    assert rates.differs(1.29, 1.29 * 1.03, 0.02) and not rates.differs(1.29, 1.29 * 1.02, 0.02)


def test_a_rate_change_seen_by_the_reconciler_is_recorded_and_alerted(world: World) -> None:
    prov = ReportingProvider(world, 1.0)
    world.providers["lambda"] = prov
    instance_id = _run(world)
    assert _alerts(world) == []
    prov.factor = 0.5  # the provider now reports half (a marketplace re-price)
    reconcile(world.env, "lambda")
    [alert] = _alerts(world)
    assert alert.details["instance_id"] == instance_id and alert.details["reported_rate"] == 0.645


def test_a_failed_after_hook_delivery_raises_one_alert_from_the_sweep(world: World, ctx: Context) -> None:
    now = utcnow()
    with world.env.db.session() as session:
        hook = Hook(organization_id=world.org_id, name="notify", kind="webhook", url="http://127.0.0.1:9/",
                    events=["deploy.after"], max_attempts=3, timeout_s=1.0)
        session.add(hook)
        session.flush()
        for event, status in (("deploy.after", "failed"), ("deploy.before", "failed"), ("done.after", "delivered")):
            session.add(HookDelivery(hook_id=hook.id, organization_id=world.org_id, event=event, subject_id="dep-1",
                                     payload={}, status=status, attempts=3, status_code=500, created_at=now,
                                     updated_at=now))
    world.env.clock = utcnow  # the sweep's window is read against the deliveries' wall-clock times
    report = tick(ctx, world.env)
    assert report.hook_alerts == 1
    with world.env.db.session() as session:
        [alert] = session.scalars(select(DeployAlert).where(DeployAlert.kind == "hook_failed")).all()
    assert "deploy.after hook of deployment dep-1 failed after 3 attempts: HTTP 500" in alert.message
    with world.env.db.session() as session:
        session.execute(update(DeployMeta).values(value=now.isoformat()))  # the next sweep is due at once
    assert tick(ctx, world.env).hook_alerts == 0  # raised once
