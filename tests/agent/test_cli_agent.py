"""``cloudarb agent discover | self-test | run`` as a person runs them (subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudarb.agent.protocol import Command, PlacementSpec
from tests.agent.fake_control_plane import FakeControlPlane
from tests.agent.nvsmi_fixtures import CAPTURES, install_fake_nvidia_smi, path_with
from tests.agent.podman_service import IMAGE, PodmanService

ROOT = Path(__file__).resolve().parents[2]
MIG = next(c for c in CAPTURES if "h100-mig" in c.name)
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="250")

    def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cloudarb", "agent", *args], cwd=ROOT,
                              env={**env, "PATH": path or env.get("PATH", "")}, capture_output=True, text=True,
                              timeout=120)

    return run


def test_discover_on_a_host_without_a_driver_exits_0(cli: Run) -> None:
    done = cli("discover", "--source", "nvidia-smi", "--nvidia-smi", "/nonexistent/nvidia-smi")
    assert done.returncode == 0, done.stderr
    assert "no GPU" in done.stdout and "Traceback" not in done.stderr
    auto = cli("discover")  # NVML first: on this machine LibraryNotFound, then nvidia-smi (absent)
    assert auto.returncode == 0 and ("no GPU" in auto.stdout or "GPU-" in auto.stdout)


def test_discover_lists_gpus_and_mig_devices(cli: Run, tmp_path: Path) -> None:
    install_fake_nvidia_smi(tmp_path / "bin", MIG)
    path = path_with(tmp_path / "bin")
    done = cli("discover", "--json", "--source", "nvidia-smi", path=path)
    assert done.returncode == 0, done.stderr
    host = json.loads(done.stdout)
    [gpu] = host["gpus"]
    assert (gpu["model"], gpu["memory_total_mib"], gpu["driver_version"], gpu["mig_mode"]) == (
        "H100 SXM", 81559, "590.48.01", "enabled")
    assert [m["profile"] for m in gpu["mig_devices"]] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
    table = cli("discover", "--source", "nvidia-smi", path=path)
    assert table.returncode == 0
    assert all(word in table.stdout for word in ("GPU-00000000", "H100 SXM", "81559", "590.48.01", "3g.40gb"))


def test_bad_options_are_one_line_errors(cli: Run, tmp_path: Path) -> None:
    bad = cli("discover", "--source", "cuda")
    assert bad.returncode == 1 and "--source must be" in bad.stderr and "Traceback" not in bad.stderr
    engine = cli("self-test", "--engine", "lxc")
    assert engine.returncode == 1 and "--engine must be podman or docker" in engine.stderr
    socket = cli("self-test", "--socket", str(tmp_path / "none.sock"))
    assert socket.returncode == 1 and "not reachable" in socket.stderr and "Traceback" not in socket.stderr


@pytest.mark.container
def test_self_test_passes_on_libpod_and_refuses_the_compat_api(cli: Run, tmp_path: Path,
                                                                podman_service: PodmanService) -> None:
    install_fake_nvidia_smi(tmp_path / "bin", CAPTURES[0])
    path = path_with(tmp_path / "bin")
    args = ("--socket", podman_service.socket, "--probe-image", IMAGE, "--source", "nvidia-smi")
    ok = cli("self-test", *args, path=path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "cdi: ok" in ok.stdout and "/dev/nvidia0" in ok.stdout
    refused = cli("self-test", "--engine", "docker", "--json", *args, path=path)
    assert refused.returncode == 1
    report = json.loads(refused.stdout)
    assert report["self_test_ok"] is False and "no GPU device node arrived" in report["detail"]


@pytest.mark.container
def test_run_once_registers_and_heartbeats(cli: Run, tmp_path: Path, podman_service: PodmanService) -> None:
    install_fake_nvidia_smi(tmp_path / "bin", CAPTURES[0])
    path = path_with(tmp_path / "bin")
    with FakeControlPlane() as plane:
        base = ("--server", plane.url, "--socket", podman_service.socket, "--probe-image", IMAGE,
                "--source", "nvidia-smi", "--state-dir", str(tmp_path / "state"), "--once")
        missing = cli("run", *base, path=path)
        assert missing.returncode == 1 and "--join-token" in missing.stderr and "Traceback" not in missing.stderr
        done = cli("run", *base, "--join-token", plane.new_join_token(), path=path)
        assert done.returncode == 0, done.stderr
        [node] = plane.nodes.values()
        assert json.loads(done.stdout) == {"node_id": node.node_id, "gpu_pinning": "cdi"}
        assert len(node.heartbeats) == 1 and node.heartbeats[0].host.engine.self_test_ok


def _wait_for(what: str, check: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll until check() holds; fails (with the agent's log) if the agent exits or it never does."""
    for _ in range(600):
        if check():
            return
        if process.poll() is not None:
            raise AssertionError(f"the agent exited before {what}: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError(f"never saw {what}")


@pytest.mark.container
def test_run_in_the_background_places_and_stops_on_sigterm(tmp_path: Path, podman_service: PodmanService) -> None:
    install_fake_nvidia_smi(tmp_path / "bin", CAPTURES[0], copies=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(PYTHONPATH=str(ROOT), PATH=path_with(tmp_path / "bin"))
    with FakeControlPlane() as plane:
        process = subprocess.Popen(
            [sys.executable, "-m", "cloudarb", "agent", "run", "--server", plane.url, "--join-token",
             plane.new_join_token(), "--socket", podman_service.socket, "--probe-image", IMAGE,
             "--source", "nvidia-smi", "--state-dir", str(tmp_path / "state")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            _wait_for("a heartbeat", lambda: any(n.heartbeats for n in plane.nodes.values()), process)
            [node] = plane.nodes.values()
            gpu = node.registration.host.gpus[1].uuid
            spec = PlacementSpec(placement_id="bg-1", instance_key="k-bg-1", image=IMAGE, gpu_uuids=[gpu],
                                 workspace_volume="ws-bg-1")
            plane.send(node.node_id, Command(id="c-bg-1", action="place", placement_id="bg-1", spec=spec))
            _wait_for("the placement running", lambda: "running" in plane.states("c-bg-1"), process)
            _wait_for("a heartbeat with the container",
                      lambda: any(c.placement_id == "bg-1" for c in node.heartbeats[-1].containers), process)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "registered as node" in (process.stderr.read() if process.stderr else "")
