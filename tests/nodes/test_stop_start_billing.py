"""A local placement deployed through the deploy core, stopped and started again (through the command
path, and by the agent itself), is billed for its running time only: the deploy row's pauses follow
the agent's reports, and the ledger equals the rows' own billed seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cloudarb.agent.protocol import ContainerReport
from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models_deploy import CostEntry, DeployInstance, Deployment
from cloudarb.db.models_nodes import Placement
from cloudarb.deploy import invariants, stopstart, stopstart_job
from cloudarb.deploy import states as st
from cloudarb.deploy.create import launch, wait_ready
from cloudarb.deploy.destroy import verify
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.metering import meter, running_spans
from cloudarb.deploy.providers.local import LocalProvisioner
from cloudarb.deploy.reconcile import reconcile
from cloudarb.deploy.run import teardown, write_intents
from cloudarb.deploy.schemas import Plan, PlannedLine
from tests.deploy.memory_provider import FakeClock
from tests.nodes.test_core import beat, report
from tests.support import Tenant


class Local:
    def __init__(self, ctx: Context, org_id: str, node_id: str) -> None:
        self.ctx, self.node_id, self.clock = ctx, node_id, FakeClock()
        self.prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
        self.env = DeployEnv(db=ctx.db, settings=ctx.settings, providers=lambda p, a: self.prov, clock=self.clock,
                             sleep=self.clock.sleep, probe=lambda h, p: True, crash_at=None)
        plan = Plan(lines=[PlannedLine(index=0, workload_id="w", offer_key="local:box1:H100 SXM", provider="local",
                                       region="box1", instance_type="box1/H100 SXM", gpu_model="H100 SXM",
                                       gpus_per_instance=1, instances=1, spot=False, price_per_hour=1.5)])
        now = self.clock()
        with ctx.db.session() as session:
            dep = Deployment(organization_id=org_id, name="own", status="running", spec=plan.model_dump(mode="json"),
                             lifetime_s=4 * 3600, max_lifetime_s=12 * 3600, expires_at=now + timedelta(hours=4),
                             created_at=now, updated_at=now, created_by="test")
            session.add(dep)
        self.dep = dep
        write_intents(self.env, dep, plan)

    def row(self) -> DeployInstance:
        with self.ctx.db.session() as session:
            row = session.scalars(select(DeployInstance).where(DeployInstance.deployment_id == self.dep.id)).one()
            return row

    def agent(self, state: str) -> None:
        """The node's agent takes its open command and reports ``state``."""
        (cmd, _, _), = beat(self.ctx, self.node_id)
        report(self.ctx, self.node_id, cmd, state, **({"container_id": "c1"} if state == "running" else {}))

    def ask(self, action: str) -> None:
        with self.ctx.db.session() as session:
            dep = session.get(Deployment, self.dep.id)
            assert dep is not None
            stopstart.record(session, dep, action=action, now=self.clock())
        stopstart_job.carry_out(self.env, self.dep.id)

    def meter(self) -> None:
        with self.ctx.db.session() as session:
            meter(session, self.clock())

    def ledger(self) -> float:
        with self.ctx.db.session() as session:
            return float(session.scalar(select(func.coalesce(func.sum(CostEntry.billed_seconds), 0.0))) or 0.0)

    def sound(self) -> None:
        with self.ctx.db.session() as session:
            problems = invariants.check(session, provider="local", prefix=self.env.prefix(), present=[])
        assert not any(problems.values()), problems


@pytest.fixture()
def local(ctx: Context, tenant: Tenant, node_id: str) -> Local:
    world = Local(ctx, tenant.org_id, node_id)
    launch(world.env, world.row().id)
    world.agent("running")
    assert wait_ready(world.env, world.row().id, timeout_s=60, poll_s=1.0) == st.RUNNING
    assert world.row().can_stop and world.row().billing_started_at is not None
    return world


def test_a_local_placement_stopped_then_started_is_billed_for_running_time_only(local: Local) -> None:
    local.clock.advance(600)
    local.ask("stop")  # the agent has not answered yet: the row waits in stopping, billed
    assert local.row().state == st.STOPPING and local.row().paused_at is None
    local.agent("stopped")
    reconcile(local.env, "local")
    assert local.row().state == st.STOPPED and local.row().paused_at == local.clock()
    local.clock.advance(3600)
    local.meter()
    local.ask("start")  # the GPU is free: assigned, waiting for the agent (not billed meanwhile)
    assert local.row().state == st.STOPPED and local.row().desired_state == "running"
    local.agent("running")
    reconcile(local.env, "local")
    running = local.row()
    assert running.state == st.RUNNING and running.paused_at is None and running.desired_state is None
    local.clock.advance(300)
    teardown(local.env, local.dep.id, reason="done")
    local.agent("destroyed")
    verify(local.env, local.row().id)
    local.meter()
    done = local.row()
    assert done.state == st.TERMINATED and done.billing_started_at and done.billing_stopped_at
    life = (done.billing_stopped_at - done.billing_started_at).total_seconds()
    spans = running_spans(done, done.billing_stopped_at)
    assert len(spans) == 2 and sum(spans) <= life - 3600
    assert local.ledger() == pytest.approx(sum(spans))
    local.sound()


def test_a_container_the_agent_stopped_itself_is_paused_and_resumes_billing(local: Local) -> None:
    local.clock.advance(120)
    with local.ctx.db.session() as session:
        p = session.scalars(select(Placement).where(Placement.instance_key == local.row().key)).one()
        pid, gpus = p.id, list(p.gpu_uuids)
    beat(local.ctx, local.node_id, [ContainerReport(placement_id=pid, container_id="c1", state="exited",
                                                    gpu_uuids=gpus)])  # e.g. stopped past its expiry
    reconcile(local.env, "local")
    stopped = local.row()
    assert stopped.state == st.STOPPED and stopped.desired_state is None and stopped.paused_at is not None
    local.clock.advance(5000)
    local.meter()
    assert local.ledger() == pytest.approx(120.0)
    local.sound()
