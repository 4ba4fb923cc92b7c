"""The agent acting alone: it stops containers past their expiry when the control plane is gone (and
keeps the last expiry it heard, extensions included, across its own restart), and a drained node's
agent refuses new placements itself. The real control plane over loopback; an in-memory engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from cloudarb.agent.daemon import Agent, AgentConfig
from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.db.models_nodes import Placement
from cloudarb.deploy.providers.base import RemoteState
from cloudarb.deploy.providers.local import LocalProvisioner
from tests.nodes.fake_engine import FakeEngine
from tests.nodes.helpers import host
from tests.nodes.live import free_port, serve
from tests.nodes.test_agent_loopback import containers, join, spec
from tests.support import Tenant

GRACE_S = 600.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _agent(url: str, state_dir: Path, engine: FakeEngine, clock: Clock, token: str | None = None) -> Agent:
    config = AgentConfig(server=url, join_token=token, state_dir=state_dir, probe_image="probe", stop_timeout_s=1,
                         expiry_grace_s=GRACE_S, http_timeout_s=2.0)
    agent = Agent(config, engine, discover=lambda: host("boxa.lab", 2), clock=clock)
    agent.start()
    return agent


def _expiry(ctx: Context, placement_id: str) -> datetime:
    with ctx.db.session() as session:
        p = session.get(Placement, placement_id)
        assert p is not None and p.expires_at is not None
        return p.expires_at


def test_expired_containers_are_stopped_while_the_control_plane_is_gone(ctx: Context, tenant: Tenant,
                                                                         tmp_path: Path) -> None:
    engine, clock = FakeEngine(), Clock()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    port = free_port()
    with serve(ctx, port) as url:
        agent = _agent(url, tmp_path / "a", engine, clock, join(url, tenant, "boxa"))
        extended = prov.create(spec("ext", "boxa"))
        plain = prov.create(spec("plain", "boxa"))
        agent.run_once()
        assert containers(engine) == {extended.provider_id: "running", plain.provider_id: "running"}
        first_expiry = _expiry(ctx, extended.provider_id)
        with ctx.db.session() as session:  # the deployment was extended by 3 hours
            session.execute(update(Placement).where(Placement.id == extended.provider_id)
                            .values(expires_at=first_expiry + timedelta(hours=3)))
        agent.run_once()
        assert agent.state is not None and agent.state.expiries[extended.provider_id] == first_expiry + timedelta(hours=3)

    # the control plane is gone. Inside the grace nothing happens; past it, the plain one is stopped,
    # the extended one (whose new expiry the agent heard) is not
    clock.now = first_expiry + timedelta(seconds=GRACE_S - 1)
    assert agent.tick() is False
    assert containers(engine) == {extended.provider_id: "running", plain.provider_id: "running"}
    clock.now = first_expiry + timedelta(seconds=GRACE_S + 1)
    assert agent.tick() is False
    assert containers(engine) == {extended.provider_id: "running", plain.provider_id: "exited"}
    assert plain.provider_id not in agent.gpu_owners.values()

    # the agent restarts while the control plane is still gone: the expiries it heard are in its state
    agent.stop()
    agent = _agent(f"http://127.0.0.1:{port}", tmp_path / "a", engine, clock)
    clock.now = first_expiry + timedelta(hours=3, seconds=GRACE_S + 1)
    assert agent.tick() is False
    assert containers(engine) == {extended.provider_id: "exited", plain.provider_id: "exited"}  # stopped, not removed
    assert agent.gpu_owners == {} and len(engine.containers) >= 2

    # the control plane comes back: the exited containers make the placements stopped, their GPUs free
    with serve(ctx, port):
        assert agent.tick() is True
        for p in (extended, plain):
            assert prov.get(p.provider_id).state is RemoteState.STOPPED  # type: ignore[union-attr]
        (node,) = httpx.get(f"http://127.0.0.1:{port}/nodes", headers=tenant.headers()).json()
        assert node["gpus_free"] == 2


def test_the_label_is_the_expiry_of_last_resort(ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    engine, clock = FakeEngine(), Clock()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        agent = _agent(url, tmp_path / "a", engine, clock, join(url, tenant, "boxa"))
        placed = prov.create(spec("a", "boxa"))
        agent.run_once()
    label = next(c.request.labels["cloudarb.expires-at"] for c in engine.containers.values()
                 if c.request.labels.get("cloudarb.placement") == placed.provider_id)
    assert datetime.fromisoformat(label) == _expiry(ctx, placed.provider_id)
    assert agent.state is not None
    agent.state = agent.state.model_copy(update={"expiries": {}})  # never heard of it (a reply lost)
    clock.now = _expiry(ctx, placed.provider_id) + timedelta(seconds=GRACE_S + 1)
    assert agent.enforce_lifetimes() == [placed.provider_id]
    assert containers(engine) == {placed.provider_id: "exited"}


def test_a_drained_node_refuses_new_placements_itself(ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    engine, clock = FakeEngine(), Clock()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        agent = _agent(url, tmp_path / "a", engine, clock, join(url, tenant, "boxa"))
        running = prov.create(spec("run", "boxa"))
        agent.run_once()
        late = prov.create(spec("late", "boxa"))  # assigned; its place command not yet delivered
        assert late.raw_state == "assigned"
        node_id = httpx.get(f"{url}/nodes", headers=tenant.headers()).json()[0]["id"]
        drained = httpx.post(f"{url}/nodes/{node_id}/drain", headers=tenant.headers("admin"))
        assert drained.status_code == 200, drained.text
        agent.run_once()  # the reply says drained and carries the earlier place command: refused here
        assert agent.drained and agent.state is not None and agent.state.drained
        assert late.provider_id not in containers(engine)
        assert containers(engine) == {running.provider_id: "running"}  # the running one stays
        with ctx.db.session() as session:
            p = session.get(Placement, late.provider_id)
            assert p is not None and p.state == "failed" and "drained" in (p.error or "")
        # restarted while drained, it still refuses (its state file remembers)
        agent.stop()
        again = _agent(url, tmp_path / "a", engine, clock)
        assert again.drained


def test_gpu_choosing_environment_is_refused_by_both_sides(ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    """``NVIDIA_VISIBLE_DEVICES=all`` would let the NVIDIA runtime expose every GPU past the pinning."""
    from dataclasses import replace

    from cloudarb.agent.protocol import Command, PlacementSpec
    from cloudarb.deploy.errors import InvalidLaunch

    engine, clock = FakeEngine(), Clock()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        agent = _agent(url, tmp_path / "a", engine, clock, join(url, tenant, "boxa"))
        with pytest.raises(InvalidLaunch, match="NVIDIA_VISIBLE_DEVICES"):
            prov.create(replace(spec("env", "boxa"), env={"NVIDIA_VISIBLE_DEVICES": "all"}))
        bad = PlacementSpec(placement_id="p-env", instance_key="k-env", image="localhost/x:1",
                            env={"NVIDIA_MIG_CONFIG_DEVICES": "all"}, gpu_uuids=["GPU-boxa.lab-0"],
                            workspace_volume="ws-env")
        agent.execute(Command(id="c-env", action="place", placement_id="p-env", spec=bad))
        assert containers(engine) == {}
