"""Podman's Docker-COMPATIBLE API drops GPU requests: the docker SDK's containers get no device.

This is why the agent speaks libpod to Podman; the self-test catches an engine that drops the GPU.
The Docker adapter itself (labels, limits, ports, volumes) is exercised on the same socket.
"""

from __future__ import annotations

import uuid

import docker
import pytest
from docker.types import DeviceRequest

from cloudarb.agent.engines.base import ContainerRequest, GpuRef, PortRequest
from cloudarb.agent.engines.docker import DockerEngine
from cloudarb.agent.protocol import GpuReport, HostReport
from cloudarb.agent.selftest import run_self_test
from tests.agent.podman_service import IMAGE, PodmanService
from tests.agent.test_libpod import cgroup_limits

pytestmark = pytest.mark.container

HOST = HostReport(hostname="t", gpus=[GpuReport(index=0, uuid="GPU-fake-0", name="NVIDIA L40S", memory_total_mib=1)])


@pytest.mark.parametrize("request_", [
    DeviceRequest(device_ids=["0"], capabilities=[["gpu"]]),
    DeviceRequest(driver="cdi", device_ids=["nvidia.com/gpu=0"]),
], ids=["nvidia", "cdi"])
def test_compat_api_silently_drops_device_requests(podman_service: PodmanService, request_: DeviceRequest) -> None:
    client = docker.DockerClient(base_url=f"unix://{podman_service.socket}")
    try:
        container = client.containers.run(IMAGE, ["/bin/sh", "-c", "ls /dev; sleep 30"], detach=True,
                                           device_requests=[request_], name=f"compat-{uuid.uuid4().hex[:8]}")
        container.reload()
        assert container.status == "running"  # accepted...
        assert not container.attrs["HostConfig"].get("DeviceRequests")  # ...and dropped
        code, out = container.exec_run(["/bin/sh", "-c", "ls /dev | grep -c nvidia"])
        assert out.decode().strip() == "0"  # no GPU device inside
        container.remove(force=True)
    finally:
        client.close()


@pytest.mark.parametrize("pinning", ["device_requests", "cdi"])
def test_self_test_refuses_the_compat_api(podman_service: PodmanService, pinning: str) -> None:
    engine = DockerEngine(podman_service.socket, pinning=pinning)  # type: ignore[arg-type]
    try:
        report = run_self_test(engine, HOST, probe_image=IMAGE)
    finally:
        engine.close()
    assert not report.self_test_ok and report.gpu_pinning == "none" and report.kind == "docker"
    assert "no GPU device node arrived" in report.detail


def test_docker_adapter_lifecycle_on_the_compat_api(podman_service: PodmanService) -> None:
    engine = DockerEngine(podman_service.socket)
    volume = f"ws-{uuid.uuid4().hex[:8]}"
    try:
        cid = engine.create(ContainerRequest(
            name=f"dock-{uuid.uuid4().hex[:8]}", image=IMAGE, labels={"cloudarb.placement": "d-1"},
            command=["/bin/sh", "-c", "httpd -f -p 8080 -h /www"], gpus=[GpuRef("GPU-fake-0", "nvidia.com/gpu=0")],
            memory_mib=64, cpus=0.25, workspace_volume=volume, ports=[PortRequest(8080)],
        ))
        engine.start(cid)
        info = engine.inspect(cid)
        assert info is not None and info.state == "running" and info.labels == {"cloudarb.placement": "d-1"}
        assert info.published_ports["8080/tcp"] > 0
        [listed] = engine.list_containers({"cloudarb.placement": "d-1"})
        assert listed.id == cid and listed.published_ports == info.published_ports
        assert cgroup_limits(engine, cid) == (64 * 1024 * 1024, "25000 100000")
        assert engine.exec(cid, ["/bin/sh", "-c", "echo x > /workspace/f"])[0] == 0
        engine.stop(cid, timeout_s=1)
        assert engine.inspect(cid).state == "exited"  # type: ignore[union-attr]
        assert engine.remove(cid) is True and engine.inspect(cid) is None and engine.remove(cid) is False
        assert engine.remove_volume(volume) is True
    finally:
        engine.close()
