"""Node agent benchmark, printing JSON: discovery, the engine self-test and placement lifecycle times.

What it does (as root, with podman installed; nothing of the host's own Podman storage is touched):
1. times GPU discovery through a fake ``nvidia-smi`` replaying a recorded capture (../shared/data/
   nvidia-smi; ``--gpus`` copies of its GPU), the path a host without NVML takes;
2. starts the private Podman service of the agent's tests (own storage, fake CDI spec mapping
   ``nvidia.com/gpu=N`` to harmless host devices, an image imported from a busybox root filesystem);
3. times the self-test's probe (``--runs`` times), then registers an agent with a loopback control
   plane and times, per run, one agent cycle (``run_once``: rediscovery, heartbeat, the command the
   reply carries, its progress reports) for each command: place (create + start, GPU pinned, workspace
   volume, a published port), stop, start, destroy (verified gone). Reports p50/p95/max per measure
   and the machine's load average.

Usage: PYTHONPATH=. .venv/bin/python scripts/bench_agent.py [--runs 10] [--gpus 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloudarb.agent.daemon import Agent, AgentConfig  # noqa: E402
from cloudarb.agent.discovery import DiscoveryConfig, discover_host  # noqa: E402
from cloudarb.agent.engines.libpod import LibpodEngine  # noqa: E402
from cloudarb.agent.protocol import Command, PlacementSpec, PortSpec  # noqa: E402
from cloudarb.agent.selftest import run_self_test  # noqa: E402
from tests.agent.fake_control_plane import FakeControlPlane  # noqa: E402
from tests.agent.nvsmi_fixtures import CAPTURES, install_fake_nvidia_smi  # noqa: E402
from tests.agent.podman_service import IMAGE, start_service  # noqa: E402


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_s": round(statistics.median(ordered), 3), "p95_s": round(p95, 3), "max_s": round(ordered[-1], 3),
            "n": len(ordered)}


def _timed(agent: Agent, plane: FakeControlPlane, command: Command) -> float:
    assert agent.node_id is not None
    plane.send(agent.node_id, command)
    started = time.perf_counter()
    agent.run_once()
    elapsed = time.perf_counter() - started
    final = plane.states(command.id)[-1]
    if final not in ("running", "stopped", "destroyed"):
        raise SystemExit(f"{command.action} failed: {plane.last(command.id).error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--gpus", type=int, default=4, choices=range(1, 5))
    args = parser.parse_args()
    capture = next(c for c in CAPTURES if "h100-80gb" in c.name)
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    exe = install_fake_nvidia_smi(work / "bin", capture, copies=args.gpus)
    config = DiscoveryConfig(source="nvidia-smi", nvidia_smi=str(exe))
    discovery: list[float] = []
    for _ in range(args.runs):
        started = time.perf_counter()
        host = discover_host(config)
        discovery.append(time.perf_counter() - started)
    service = start_service()
    results: dict[str, object] = {"gpus": args.gpus, "capture": capture.name, "discovery_nvidia_smi": _stats(discovery)}
    try:
        engine = LibpodEngine(service.socket)
        probes: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            report = run_self_test(engine, host, probe_image=IMAGE)
            probes.append(time.perf_counter() - started)
            if not report.self_test_ok:
                raise SystemExit(f"self-test failed: {report.detail}")
        results["self_test"] = _stats(probes)
        timings: dict[str, list[float]] = {"place": [], "stop": [], "start": [], "destroy": []}
        with FakeControlPlane() as plane:
            agent = Agent(AgentConfig(server=plane.url, join_token=plane.new_join_token(), state_dir=work / "state",
                                      probe_image=IMAGE, discovery=config, self_test=False, stop_timeout_s=1), engine)
            agent.start()
            agent.engine_report = report  # proved above; start() skipped the probe
            gpus = [g.uuid for g in host.gpus]
            for run in range(args.runs):
                placement = f"bench-{run}"
                spec = PlacementSpec(placement_id=placement, instance_key=f"k-{placement}", image=IMAGE,
                                     gpu_uuids=[gpus[run % len(gpus)]], cpus=1, memory_mib=128,
                                     ports=[PortSpec(container_port=8888)], workspace_volume=f"ws-{placement}")
                for action in ("place", "stop", "start", "destroy"):
                    command = Command(id=f"{action}-{run}", action=action, placement_id=placement,
                                      spec=spec if action == "place" else None)
                    timings[action].append(_timed(agent, plane, command))
                engine.remove_volume(f"ws-{placement}")
        results["agent_cycle_with_one_command"] = {k: _stats(v) for k, v in timings.items()}
        engine.close()
    finally:
        service.stop()
    results["loadavg_1m"] = round(os.getloadavg()[0], 2)
    results["cpus"] = os.cpu_count()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
