"""Health checks end to end on loopback: a template's check travels with the place command, the real
agent probes a real HTTP server (the fake engine publishes the container's port there), and the control
plane shows what the agent reported on ``GET /nodes/{id}``; a check that never passes within its grace is
``unhealthy`` with the failure's reason; ``restart_on_unhealthy`` has the agent restart the container."""

from __future__ import annotations

import http.server
import itertools
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudarb.agent.daemon import Agent, AgentConfig
from cloudarb.agent.protocol import API_PREFIX, LABEL_HEALTH, Command, Heartbeat, PlacementSpec
from cloudarb.cli.nodes import health_cell
from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.deploy.providers.base import LaunchSpec
from cloudarb.deploy.providers.local import LocalProvisioner
from tests.nodes.fake_engine import FakeEngine
from tests.nodes.helpers import host
from tests.nodes.live import serve
from tests.nodes.test_agent_loopback import api, join
from tests.support import Tenant, wait_for


class Service:
    """A loopback HTTP server standing for the container's web service; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.status = 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def service() -> Iterator[Service]:
    s = Service()
    yield s
    s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def template(url: str, tenant: Tenant, name: str, check: dict[str, Any]) -> None:
    body = {"name": name, "image": "localhost/web:1", "ports": [{"container_port": 8080, "name": "http"}],
            "command": ["httpd", "-f"], "health_check": check}
    r = httpx.post(f"{url}/templates", json=body, headers=tenant.headers("admin"))
    assert r.status_code == 201, r.text


def launch(key: str, image: str) -> LaunchSpec:
    return LaunchSpec(key=f"cloudarb-health-{key}", instance_type="boxa/H100 SXM", region="boxa",
                      gpu_model="H100 SXM", gpu_count=1, spot=False, price_per_hour=1.0,
                      expires_at=datetime.now(UTC) + timedelta(hours=1), image=image)


def placement(url: str, tenant: Tenant, node_id: str, pid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in api(url, tenant, f"/nodes/{node_id}")["placements"] if p["id"] == pid)
    return found


def test_http_check_healthy_then_unhealthy_then_healthy_again(ctx: Context, tenant: Tenant, tmp_path: Path,
                                                              service: Service) -> None:
    numbers = itertools.count(43000)
    engine = FakeEngine(publish=lambda key: service.port if key == "8080/tcp" else next(numbers))
    clock = Clock()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        config = AgentConfig(server=url, join_token=join(url, tenant, "boxa"), state_dir=tmp_path / "a",
                             probe_image="probe", stop_timeout_s=1)
        agent = Agent(config, engine, discover=lambda: host("boxa.lab", 1), clock=clock)
        agent.start()
        agent.run_once()
        node_id = api(url, tenant, "/nodes")[0]["id"]
        template(url, tenant, "web", {"kind": "http", "port": 8080, "path": "/health", "interval_s": 5,
                                      "timeout_s": 60, "failures": 2})
        made = prov.create(launch("web", "web"))
        agent.run_once()  # the place command: the container starts, with its check as a label
        (container,) = [c for c in engine.containers.values() if c.request.labels.get("cloudarb.placement")]
        assert '"kind":"http"' in container.request.labels[LABEL_HEALTH]
        assert placement(url, tenant, node_id, made.provider_id)["health"] is None  # not probed yet

        agent.run_once()  # probed (healthy) before the heartbeat that reports it
        seen = placement(url, tenant, node_id, made.provider_id)
        assert (seen["state"], seen["health"]) == ("running", "healthy"), seen
        assert seen["healthy_since"] and "answered 200" in seen["health_detail"]
        assert health_cell(seen).startswith("healthy since ")

        service.status = 500
        clock.advance(5)
        agent.run_once()  # one failure of the two allowed: still healthy
        assert placement(url, tenant, node_id, made.provider_id)["health"] == "healthy"
        agent.run_once()  # not due yet: nothing probed
        clock.advance(5)
        agent.run_once()
        seen = placement(url, tenant, node_id, made.provider_id)
        assert (seen["state"], seen["health"], seen["healthy_since"]) == ("running", "unhealthy", None)
        assert "HTTP 500" in seen["health_detail"]
        assert health_cell(seen).startswith("unhealthy: GET http://127.0.0.1:")
        assert container.state == "running"  # restart_on_unhealthy is off by default: left as it is

        service.status = 200
        clock.advance(5)
        agent.run_once()
        assert placement(url, tenant, node_id, made.provider_id)["health"] == "healthy"

        # an older agent's heartbeat (no health fields): the placement runs on, its health is unknown
        old = Heartbeat(host=agent._host_report(), containers=agent.container_reports()).model_dump(mode="json")
        for report in old["containers"]:
            for key in ("health", "health_detail", "healthy_since"):
                del report[key]
        r = httpx.post(f"{url}{API_PREFIX}/heartbeat", json=old,
                       headers={"Authorization": f"Bearer {agent.client.node_token}"})
        assert r.status_code == 200, r.text
        seen = placement(url, tenant, node_id, made.provider_id)
        assert (seen["state"], seen["health"], seen["health_detail"]) == ("running", None, None)
        agent.run_once()  # not due: the agent reports what it last saw
        assert placement(url, tenant, node_id, made.provider_id)["health"] == "healthy"

        prov.stop(made.provider_id)
        agent.run_once()
        agent.run_once()
        seen = placement(url, tenant, node_id, made.provider_id)
        assert (seen["state"], seen["health"], seen["health_detail"]) == ("stopped", None, None)


def test_never_healthy_within_the_grace_is_unhealthy_and_restart_on_unhealthy(
        ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    dead = closed_port()
    engine = FakeEngine(publish=lambda key: dead)
    clock = Clock()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        config = AgentConfig(server=url, join_token=join(url, tenant, "boxa"), state_dir=tmp_path / "a",
                             probe_image="probe", stop_timeout_s=1)
        agent = Agent(config, engine, discover=lambda: host("boxa.lab", 1), clock=clock)
        agent.start()
        agent.run_once()
        node_id = api(url, tenant, "/nodes")[0]["id"]
        template(url, tenant, "sshd", {"kind": "tcp", "port": 8080, "interval_s": 10, "timeout_s": 30,
                                       "restart_on_unhealthy": True})
        made = prov.create(launch("tcp", "sshd"))
        agent.run_once()
        agent.run_once()
        seen = placement(url, tenant, node_id, made.provider_id)
        assert (seen["state"], seen["health"]) == ("running", "starting")
        assert "refused" in seen["health_detail"]
        for _ in range(3):
            clock.advance(10)
            agent.run_once()
        seen = placement(url, tenant, node_id, made.provider_id)
        # at the end of the grace it was unhealthy, and was restarted at once: a fresh grace
        assert seen["health"] == "starting" and "1 restart(s)" in seen["health_detail"], seen
        assert "never healthy within the 30 s grace" in seen["health_detail"]
        (container,) = [c for c in engine.containers.values() if c.request.labels.get("cloudarb.placement")]
        assert container.state == "running"


def test_without_restart_a_never_healthy_container_is_reported_unhealthy(ctx: Context, tenant: Tenant,
                                                                         tmp_path: Path) -> None:
    dead = closed_port()
    engine = FakeEngine(publish=lambda key: dead)
    clock = Clock()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        config = AgentConfig(server=url, join_token=join(url, tenant, "boxa"), state_dir=tmp_path / "a",
                             probe_image="probe", stop_timeout_s=1)
        agent = Agent(config, engine, discover=lambda: host("boxa.lab", 1), clock=clock)
        agent.start()
        agent.run_once()
        node_id = api(url, tenant, "/nodes")[0]["id"]
        template(url, tenant, "web", {"kind": "http", "port": 8080, "interval_s": 10, "timeout_s": 20})
        made = prov.create(launch("never", "web"))
        agent.run_once()
        agent.run_once()
        for _ in range(2):
            clock.advance(10)
            agent.run_once()
        seen = placement(url, tenant, node_id, made.provider_id)
        assert (seen["state"], seen["health"]) == ("running", "unhealthy"), seen
        assert "never healthy within the 20 s grace" in seen["health_detail"] and "refused" in seen["health_detail"]


def test_a_place_without_a_check_from_an_older_control_plane_is_not_checked(ctx: Context, tenant: Tenant,
                                                                            tmp_path: Path) -> None:
    """An older control plane sends no ``health_check``: the container runs unchecked (health None), and
    the catalog's ``running`` check, sent by this one, is healthy while it runs."""
    engine = FakeEngine()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        config = AgentConfig(server=url, join_token=join(url, tenant, "boxa"), state_dir=tmp_path / "a",
                             probe_image="probe", stop_timeout_s=1)
        agent = Agent(config, engine, discover=lambda: host("boxa.lab", 2))
        agent.start()
        agent.run_once()
        node_id = api(url, tenant, "/nodes")[0]["id"]
        made = prov.create(launch("base", "cuda-base"))  # the catalog's: a running check
        agent.run_once()
        agent.run_once()
        assert placement(url, tenant, node_id, made.provider_id)["health"] == "healthy"
        spec = PlacementSpec(placement_id="p-old", instance_key="k-old", image="busybox", gpu_uuids=[],
                             workspace_volume="ws-old")
        wire = Command(id="c-old", action="place", placement_id="p-old", spec=spec).model_dump(mode="json")
        del wire["spec"]["health_check"]
        # (and an older agent reads a newer spec: unknown fields such as health_check are ignored)
        assert PlacementSpec.model_validate({**wire["spec"], "a_later_field": 1}).placement_id == "p-old"
        agent.execute(Command.model_validate(wire))
        agent.check_health()
        reports = {r.placement_id: r for r in agent.container_reports()}
        assert reports["p-old"].state == "running" and reports["p-old"].health is None
        assert reports[made.provider_id].health == "healthy"


def test_run_forever_probes_between_heartbeats_and_reports_a_change_at_once(
        ctx: Context, tenant: Tenant, tmp_path: Path, service: Service) -> None:
    """Heartbeats every 10 minutes, probes every second: each change of health reaches the control plane
    long before the next heartbeat is due, so only the early heartbeat can satisfy these waits."""
    numbers = itertools.count(44000)
    engine = FakeEngine(publish=lambda key: service.port if key == "8080/tcp" else next(numbers))
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        config = AgentConfig(server=url, join_token=join(url, tenant, "boxa"), state_dir=tmp_path / "a",
                             probe_image="probe", stop_timeout_s=1, heartbeat_interval_s=600)
        agent = Agent(config, engine, discover=lambda: host("boxa.lab", 1))
        agent.start()
        agent.run_once()
        node_id = api(url, tenant, "/nodes")[0]["id"]
        template(url, tenant, "web", {"kind": "http", "port": 8080, "interval_s": 1, "timeout_s": 60,
                                      "failures": 1})
        made = prov.create(launch("loop", "web"))
        loop = threading.Thread(target=agent.run_forever, daemon=True)
        loop.start()
        try:
            wait_for(lambda: placement(url, tenant, node_id, made.provider_id)["health"] == "healthy", timeout=60)
            service.status = 503
            wait_for(lambda: placement(url, tenant, node_id, made.provider_id)["health"] == "unhealthy", timeout=60)
            assert "HTTP 503" in placement(url, tenant, node_id, made.provider_id)["health_detail"]
        finally:
            agent.stop()
            loop.join(timeout=30)
