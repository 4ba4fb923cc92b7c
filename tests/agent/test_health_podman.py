"""A health check on the real Podman service: busybox ``httpd`` in the container answers the http check
on its published port (healthy); once the httpd is killed inside the container (``podman exec``), the
container still runs but the check fails and the agent reports it unhealthy in its heartbeat."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudarb.agent.daemon import Agent, AgentConfig
from cloudarb.agent.discovery import DiscoveryConfig
from cloudarb.agent.engines.libpod import LibpodEngine
from cloudarb.agent.protocol import LABEL_PLACEMENT, Command, HealthCheckSpec, PlacementSpec, PortSpec
from tests.agent.fake_control_plane import FakeControlPlane
from tests.agent.nvsmi_fixtures import CAPTURES, install_fake_nvidia_smi
from tests.agent.podman_service import IMAGE
from tests.support import wait_for

pytestmark = pytest.mark.container

H100 = next(c for c in CAPTURES if "h100-80gb" in c.name)
SERVE = "httpd -f -p 8888 -h /www & echo $! > /tmp/httpd.pid; exec sleep 3600"


@pytest.fixture
def plane() -> Iterator[FakeControlPlane]:
    with FakeControlPlane() as control:
        yield control


def test_httpd_healthy_then_killed_inside_is_unhealthy(plane: FakeControlPlane, tmp_path: Path,
                                                      libpod: LibpodEngine) -> None:
    nvidia_smi = str(install_fake_nvidia_smi(tmp_path / "bin", H100, copies=2))
    config = AgentConfig(server=plane.url, join_token=plane.new_join_token(), state_dir=tmp_path / "s",
                         probe_image=IMAGE, discovery=DiscoveryConfig(source="nvidia-smi", nvidia_smi=nvidia_smi),
                         stop_timeout_s=1)
    agent = Agent(config, libpod)
    agent.start()
    node = plane.nodes[agent.node_id or ""]
    gpu = node.registration.host.gpus[0].uuid
    check = HealthCheckSpec(kind="http", port=8888, path="/index.html", interval_s=0.2, grace_s=60,
                            probe_timeout_s=2, failures=2)
    spec = PlacementSpec(placement_id="p-web", instance_key="key-p-web", image=IMAGE,
                         command=["/bin/sh", "-c", SERVE], ports=[PortSpec(container_port=8888, name="http")],
                         gpu_uuids=[gpu], workspace_volume=f"ws-{uuid.uuid4().hex[:8]}", health_check=check)
    place = Command(id="c-web", action="place", placement_id="p-web", spec=spec)
    plane.send(node.node_id, place)
    assert agent.run_once() == 1 and plane.states(place.id)[-1] == "running"
    [info] = libpod.list_containers({LABEL_PLACEMENT: "p-web"})

    def health() -> str | None:
        agent.check_health()
        [report] = agent.container_reports()
        return report.health

    wait_for(lambda: health() == "healthy", timeout=30, interval=0.2)
    agent.run_once()
    [reported] = node.heartbeats[-1].containers
    assert (reported.state, reported.health) == ("running", "healthy") and reported.healthy_since is not None
    assert "answered 200" in reported.health_detail

    killed = libpod.exec(info.id, ["/bin/sh", "-c", "kill $(cat /tmp/httpd.pid)"])
    assert killed[0] == 0, killed
    wait_for(lambda: health() == "unhealthy", timeout=30, interval=0.2)
    agent.run_once()
    [reported] = node.heartbeats[-1].containers
    assert (reported.state, reported.health, reported.healthy_since) == ("running", "unhealthy", None)
    assert "refused" in reported.health_detail or "could not connect" in reported.health_detail, reported
    assert libpod.inspect(info.id).state == "running"  # type: ignore[union-attr]  # not restarted by default
