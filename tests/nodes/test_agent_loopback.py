"""The control plane and the real agent (``cloudarb.agent.daemon``) over HTTP on loopback.

The agent drives an in-memory engine (``fake_engine``) and runs its real self-test against it; the
control plane is the application under uvicorn with its scheduler. Placements are made through the
local provisioner, as the deploy core makes them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cloudarb.agent.daemon import Agent, AgentConfig
from cloudarb.agent.protocol import HostReport
from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.deploy.providers.base import LaunchSpec, RemoteState
from cloudarb.deploy.providers.local import LocalProvisioner
from tests.nodes.fake_engine import FakeEngine
from tests.nodes.helpers import host
from tests.nodes.live import serve
from tests.support import Tenant, wait_for

PREFIX = "cloudarb-loop-"


def spec(key: str, node: str) -> LaunchSpec:
    return LaunchSpec(key=PREFIX + key, instance_type=f"{node}/H100 SXM", region=node, gpu_model="H100 SXM",
                      gpu_count=1, spot=False, price_per_hour=1.2, expires_at=datetime.now(UTC) + timedelta(hours=1),
                      image="cuda-base", ports=(22,))


def join(url: str, tenant: Tenant, name: str) -> str:
    r = httpx.post(f"{url}/nodes/join-tokens", json={"node_name": name, "price_per_gpu_hour": 1.2},
                   headers=tenant.headers("admin"))
    assert r.status_code == 201, r.text
    token: str = r.json()["join_token"]
    return token


def make_agent(url: str, state_dir: Path, engine: FakeEngine, report: Callable[[], HostReport],
               token: str | None = None) -> Agent:
    config = AgentConfig(server=url, join_token=token, state_dir=state_dir, probe_image="probe", stop_timeout_s=1)
    agent = Agent(config, engine, discover=report)
    agent.start()
    return agent


def api(url: str, tenant: Tenant, path: str) -> Any:
    r = httpx.get(f"{url}{path}", headers=tenant.headers("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


def containers(engine: FakeEngine) -> dict[str, str]:
    """placement id -> state, of the placement containers (probes excluded)."""
    return {c.request.labels["cloudarb.placement"]: c.state for c in engine.containers.values()
            if "cloudarb.placement" in c.request.labels}


def test_place_stop_start_restart_destroy_and_the_queue(ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    engine = FakeEngine()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        agent = make_agent(url, tmp_path / "a", engine, lambda: host("boxa.lab", 1), join(url, tenant, "boxa"))
        agent.run_once()
        (node,) = api(url, tenant, "/nodes")
        assert (node["name"], node["gpus_free"], node["engine"]["self_test_ok"]) == ("boxa", 1, True)
        first = prov.create(spec("a", "boxa"))
        second = prov.create(spec("b", "boxa"))
        assert (first.raw_state, second.raw_state) == ("assigned", "queued")
        assert agent.run_once() == 1
        running = prov.get(first.provider_id)
        assert running is not None and running.state is RemoteState.RUNNING and running.ssh_port
        assert engine.gpus_of(first.provider_id) == ["GPU-boxa.lab-0"]
        queue = {p["id"]: p for p in api(url, tenant, "/nodes/placements")}
        assert queue[second.provider_id]["position"] == 1 and queue[second.provider_id]["estimated_start_at"]

        # a stopped placement gives its GPU back: the queued one takes it
        prov.stop(first.provider_id)
        agent.run_once()
        assert prov.get(first.provider_id).state is RemoteState.STOPPED  # type: ignore[union-attr]
        assert prov.get(second.provider_id).raw_state == "assigned"  # type: ignore[union-attr]
        agent.run_once()
        assert containers(engine) == {first.provider_id: "exited", second.provider_id: "running"}
        assert engine.gpus_of(second.provider_id) == ["GPU-boxa.lab-0"]
        # starting it again waits for a GPU, then gets it when the other is destroyed
        prov.start(first.provider_id)
        waiting = prov.get(first.provider_id)
        assert waiting is not None and (waiting.state, waiting.queue_position) == (RemoteState.PENDING, 1)
        agent.run_once()  # the heartbeat shows the exited container: not an orphan, nothing destroyed
        assert containers(engine)[first.provider_id] == "exited"
        prov.destroy(second.provider_id)
        agent.run_once()  # destroys the second; the destroyed report frees the GPU and the start goes out
        agent.run_once()
        assert prov.get(first.provider_id).state is RemoteState.RUNNING  # type: ignore[union-attr]
        assert containers(engine) == {first.provider_id: "running"}

        # the agent restarts: ownership comes back from the labels, nothing is created twice
        agent.stop()
        agent = make_agent(url, tmp_path / "a", engine, lambda: host("boxa.lab", 1))
        assert agent.gpu_owners == {"GPU-boxa.lab-0": first.provider_id}
        agent.run_once()
        assert containers(engine) == {first.provider_id: "running"}

        prov.destroy(first.provider_id)
        agent.run_once()
        assert prov.get(first.provider_id) is None
        assert api(url, tenant, "/nodes")[0]["gpus_free"] == 1


def test_a_start_on_other_gpus_recreates_the_container(ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    """The GPUs a stopped placement had went to other work: it starts on other free GPUs, in a new
    container pinned to exactly those (devices are fixed at creation), with the same workspace volume."""
    engine = FakeEngine()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        agent = make_agent(url, tmp_path / "a", engine, lambda: host("boxa.lab", 2), join(url, tenant, "boxa"))
        agent.run_once()
        first = prov.create(spec("a", "boxa"))
        agent.run_once()
        assert engine.gpus_of(first.provider_id) == ["GPU-boxa.lab-0"]
        old = {c_id for c_id, c in engine.containers.items() if c.request.labels.get("cloudarb.placement")}
        volume = next(c.request.workspace_volume for c in engine.containers.values()
                      if c.request.labels.get("cloudarb.placement") == first.provider_id)
        prov.stop(first.provider_id)
        agent.run_once()
        other = prov.create(spec("o", "boxa"))  # takes GPU 0, the first free one
        agent.run_once()
        assert engine.gpus_of(other.provider_id) == ["GPU-boxa.lab-0"]
        prov.start(first.provider_id)  # GPU 0 is taken: it gets GPU 1
        agent.run_once()
        assert prov.get(first.provider_id).state is RemoteState.RUNNING  # type: ignore[union-attr]
        assert engine.gpus_of(first.provider_id) == ["GPU-boxa.lab-1"]
        mine = [(c_id, c) for c_id, c in engine.containers.items()
                if c.request.labels.get("cloudarb.placement") == first.provider_id]
        assert len(mine) == 1 and mine[0][0] not in old and mine[0][1].request.workspace_volume == volume
        assert mine[0][1].request.labels["cloudarb.gpus"] == "GPU-boxa.lab-1"
        assert agent.gpu_owners == {"GPU-boxa.lab-0": other.provider_id, "GPU-boxa.lab-1": first.provider_id}
        detail = api(url, tenant, f"/nodes/{api(url, tenant, '/nodes')[0]['id']}")
        assert {g["uuid"]: g["placement_id"] for g in detail["gpus"]} == {
            "GPU-boxa.lab-0": other.provider_id, "GPU-boxa.lab-1": first.provider_id}
        assert not any(p["flagged"] for p in detail["placements"])


def test_two_agents_racing_placements_and_missed_heartbeats(ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    engines = {"boxa": FakeEngine(), "boxb": FakeEngine()}
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        agents = {name: make_agent(url, tmp_path / name, engines[name], lambda n=name: host(f"{n}.lab", 1),  # type: ignore[misc]
                                   join(url, tenant, name)) for name in engines}
        for agent in agents.values():
            agent.run_once()
        results: dict[str, str] = {}
        barrier = threading.Barrier(3)

        def race(key: str) -> None:
            barrier.wait(timeout=10)
            results[key] = prov.create(spec(key, "boxa")).raw_state

        racers = [threading.Thread(target=race, args=(k,)) for k in ("r1", "r2", "r3")]
        for t in racers:
            t.start()
        for t in racers:
            t.join(timeout=30)
        assert sorted(results.values()) == ["assigned", "queued", "queued"]
        on_b = prov.create(spec("b1", "boxb"))
        for agent in agents.values():
            agent.run_once()
        assert len(containers(engines["boxa"])) == 1 and len(containers(engines["boxb"])) == 1
        assert list(containers(engines["boxb"])) == [on_b.provider_id]
        offers = lambda: {o["seller"] for o in api(url, tenant, "/offers?provider=local")["items"]}  # noqa: E731
        assert offers() == set()

        # boxb's agent goes silent: the scheduler marks it unhealthy and its placement flagged
        prov.destroy(on_b.provider_id)
        agents["boxb"].run_once()
        assert offers() == {"boxb"}
        wait_for(lambda: {n["name"]: n["status"] for n in api(url, tenant, "/nodes")}["boxb"] == "unhealthy",
                 timeout=30)
        assert offers() == set()
        agents["boxa"].run_once()
        agents["boxb"].run_once()  # back: healthy, on the market again
        assert {n["name"]: n["status"] for n in api(url, tenant, "/nodes")}["boxb"] == "healthy"
        assert offers() == {"boxb"}
