"""The agent loop against a loopback fake control plane and the real Podman service."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudarb.agent.daemon import Agent, AgentConfig, AgentError
from cloudarb.agent.discovery import DiscoveryConfig
from cloudarb.agent.engines.base import ContainerRequest, Engine
from cloudarb.agent.engines.libpod import LibpodEngine
from cloudarb.agent.protocol import (
    LABEL_COMMAND,
    LABEL_GPUS,
    LABEL_PLACEMENT,
    Command,
    PlacementSpec,
    PortSpec,
)
from cloudarb.agent.state import StateStore
from tests.agent.fake_control_plane import FakeControlPlane
from tests.agent.nvsmi_fixtures import CAPTURES, install_fake_nvidia_smi
from tests.agent.podman_service import IMAGE, PodmanService
from tests.agent.test_libpod import _get_when_listening

pytestmark = pytest.mark.container

H100 = next(c for c in CAPTURES if "h100-80gb" in c.name)


@pytest.fixture
def nvidia_smi(tmp_path: Path) -> str:
    """Four H100s replayed from the recorded capture (CDI names nvidia.com/gpu=0..3 of the fake spec)."""
    return str(install_fake_nvidia_smi(tmp_path / "bin", H100, copies=4))


@pytest.fixture
def plane() -> Iterator[FakeControlPlane]:
    with FakeControlPlane() as control:
        yield control


def _agent(plane: FakeControlPlane, engine: Engine, state_dir: Path, nvidia_smi: str, *,
           token: str | None = None, self_test: bool = True) -> Agent:
    config = AgentConfig(server=plane.url, join_token=token, state_dir=state_dir, probe_image=IMAGE,
                         discovery=DiscoveryConfig(source="nvidia-smi", nvidia_smi=nvidia_smi), self_test=self_test,
                         stop_timeout_s=1)
    return Agent(config, engine)


def _place(placement: str, gpus: list[str], *, volume: str = "", command_id: str = "") -> Command:
    spec = PlacementSpec(
        placement_id=placement, instance_key=f"key-{placement}", deployment_id="dep-1", image=IMAGE,
        command=["/bin/sh", "-c", "httpd -f -p 8888 -h /www"], env={"CLOUDARB_PLACEMENT": placement},
        ports=[PortSpec(container_port=8888, name="jupyter")], gpu_uuids=gpus, cpus=0.5, memory_mib=64,
        workspace_volume=volume or f"ws-{placement}",
    )
    return Command(id=command_id or f"c-{uuid.uuid4().hex[:8]}", action="place", placement_id=placement, spec=spec)


def _cmd(action: str, placement: str) -> Command:
    return Command(id=f"c-{uuid.uuid4().hex[:8]}", action=action, placement_id=placement)


def test_registration_is_saved_0600_and_reused(plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str,
                                               podman_service: object, libpod: LibpodEngine) -> None:
    state_dir = tmp_path / "state"
    agent = _agent(plane, libpod, state_dir, nvidia_smi, token=plane.new_join_token(), self_test=False)
    agent.start()
    state_file = state_dir / "agent.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600 and stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    node = plane.nodes[agent.node_id or ""]
    assert node.token in state_file.read_text()
    host = node.registration.host
    assert [g.index for g in host.gpus] == [0, 1, 2, 3] and {g.model for g in host.gpus} == {"H100 SXM"}
    assert host.gpus[0].cuda_version == "13.1"
    assert agent.run_once() == 0 and len(node.heartbeats) == 1
    # A restart uses the saved credential (the join token was one-time and is gone).
    again = _agent(plane, libpod, state_dir, nvidia_smi, self_test=False)
    again.start()
    assert again.node_id == agent.node_id and again.run_once() == 0 and len(node.heartbeats) == 2


def test_bad_join_token_and_no_token_are_clear_errors(plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str,
                                                      libpod: LibpodEngine) -> None:
    with pytest.raises(AgentError, match="refused the join token"):
        _agent(plane, libpod, tmp_path / "s", nvidia_smi, token="join-wrong", self_test=False).start()
    assert not (tmp_path / "s" / "agent.json").exists()
    with pytest.raises(AgentError, match="--join-token"):
        _agent(plane, libpod, tmp_path / "s", nvidia_smi, self_test=False).start()


def test_revoked_credential_stops_the_agent(plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str,
                                            libpod: LibpodEngine) -> None:
    agent = _agent(plane, libpod, tmp_path / "s", nvidia_smi, token=plane.new_join_token(), self_test=False)
    agent.start()
    plane.revoke(agent.node_id or "")
    with pytest.raises(AgentError, match="credential"):
        agent.run_once()


def test_place_stop_start_destroy_with_pinned_gpus(plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str,
                                                   libpod: LibpodEngine) -> None:
    agent = _agent(plane, libpod, tmp_path / "s", nvidia_smi, token=plane.new_join_token())
    agent.start()
    assert agent.engine_report.self_test_ok and agent.engine_report.gpu_pinning == "cdi"
    node = plane.nodes[agent.node_id or ""]
    gpus = [g.uuid for g in node.registration.host.gpus]
    assert node.registration.host.engine.self_test_ok

    place = _place("p-a", [gpus[1], gpus[2]])
    plane.send(node.node_id, place)
    assert agent.run_once() == 1
    assert plane.states(place.id) == ["accepted", "creating", "starting", "running"]
    running = plane.last(place.id)
    [info] = libpod.list_containers({LABEL_PLACEMENT: "p-a"})
    assert info.labels[LABEL_GPUS] == f"{gpus[1]},{gpus[2]}" and info.labels[LABEL_COMMAND] == place.id
    assert running.container_id == info.id
    assert libpod.exec(info.id, ["/bin/sh", "-c", "ls /dev | grep nvidia"])[1].split() == ["nvidia1", "nvidia2"]
    port = running.published_ports["8888/tcp"]
    assert _get_when_listening(f"http://127.0.0.1:{port}/index.html").status_code == 200
    assert agent.gpu_owners == {gpus[1]: "p-a", gpus[2]: "p-a"}

    # The next heartbeat reports the container; the command is not sent again.
    assert agent.run_once() == 0
    [reported] = node.heartbeats[-1].containers
    assert (reported.placement_id, reported.state, reported.gpu_uuids) == ("p-a", "running", [gpus[1], gpus[2]])

    # Another placement asking for a GPU that is taken is refused by the agent itself.
    clash = _place("p-b", [gpus[2], gpus[3]])
    plane.send(node.node_id, clash)
    agent.run_once()
    assert plane.states(clash.id)[-1] == "failed" and "already given to placement p-a" in (plane.last(clash.id).error or "")
    assert libpod.list_containers({LABEL_PLACEMENT: "p-b"}) == []

    # Stop keeps the workspace; start brings the same container back with the same GPUs.
    assert libpod.exec(info.id, ["/bin/sh", "-c", "echo mine > /workspace/f"])[0] == 0
    stop = _cmd("stop", "p-a")
    plane.send(node.node_id, stop)
    agent.run_once()
    assert plane.states(stop.id) == ["stopped"] and libpod.inspect(info.id).state == "exited"  # type: ignore[union-attr]
    assert agent.gpu_owners == {}
    start = _cmd("start", "p-a")
    plane.send(node.node_id, start)
    agent.run_once()
    assert plane.states(start.id) == ["running"]
    assert libpod.exec(info.id, ["cat", "/workspace/f"])[1] == "mine\n"

    destroy = _cmd("destroy", "p-a")
    plane.send(node.node_id, destroy)
    agent.run_once()
    assert plane.states(destroy.id) == ["destroyed"] and plane.last(destroy.id).message == "removed and verified gone"
    assert libpod.inspect(info.id) is None and agent.gpu_owners == {}
    again = _cmd("destroy", "p-a")
    plane.send(node.node_id, again)
    agent.run_once()
    assert plane.last(again.id).message == "already gone"
    # The freed GPU can now be placed.
    plane.send(node.node_id, clash := _place("p-b", [gpus[2], gpus[3]]))
    agent.run_once()
    assert plane.states(clash.id)[-1] == "running"


def test_restart_rebuilds_ownership_from_labels_and_never_duplicates(
    plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str, libpod: LibpodEngine,
) -> None:
    state_dir = tmp_path / "s"
    agent = _agent(plane, libpod, state_dir, nvidia_smi, token=plane.new_join_token())
    agent.start()
    node = plane.nodes[agent.node_id or ""]
    gpus = [g.uuid for g in node.registration.host.gpus]
    place = _place("p-r", [gpus[0]])
    plane.send(node.node_id, place)
    agent.run_once()
    del agent  # the agent process is gone; its containers are not

    restarted = _agent(plane, libpod, state_dir, nvidia_smi)
    restarted.start()
    assert restarted.gpu_owners == {gpus[0]: "p-r"}
    # The same command delivered again (its reply was lost) is adopted: still one container.
    repeat = place.model_copy(update={"id": "c-repeat"})
    plane.send(node.node_id, repeat)
    restarted.run_once()
    assert plane.states("c-repeat") == ["accepted", "running"] and "adopted" in plane.last("c-repeat").message
    assert len(libpod.list_containers({LABEL_PLACEMENT: "p-r"})) == 1
    # A placement for the owned GPU is refused after the restart too.
    other = _place("p-s", [gpus[0]])
    plane.send(node.node_id, other)
    restarted.run_once()
    assert plane.states(other.id)[-1] == "failed"


class Killed(BaseException):
    """The agent process dying: no handler of the agent catches it."""


class _CrashAfterCreate:
    """The engine as seen by an agent that is killed between creating and starting a container."""

    def __init__(self, engine: LibpodEngine) -> None:
        self._engine = engine
        self.kind, self.gpu_pinning = engine.kind, engine.gpu_pinning

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)

    def create(self, request: ContainerRequest) -> str:
        created = self._engine.create(request)
        if LABEL_PLACEMENT not in request.labels:  # the self-test's probe
            return created
        raise Killed("after create")  # none of the agent's error handling runs


def test_a_placement_interrupted_by_a_crash_is_finished_not_duplicated(
    plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str, libpod: LibpodEngine,
) -> None:
    state_dir = tmp_path / "s"
    crashing = _agent(plane, _CrashAfterCreate(libpod), state_dir, nvidia_smi,  # type: ignore[arg-type]
                      token=plane.new_join_token())
    crashing.start()
    node = plane.nodes[crashing.node_id or ""]
    gpus = [g.uuid for g in node.registration.host.gpus]
    place = _place("p-c", [gpus[3]])
    plane.send(node.node_id, place)
    with pytest.raises(Killed):
        crashing.run_once()
    [half] = libpod.list_containers({LABEL_PLACEMENT: "p-c"})
    assert half.state == "created" and plane.states(place.id) == ["accepted", "creating"]
    assert '"in_flight"' in (state_dir / "agent.json").read_text()

    restarted = _agent(plane, libpod, state_dir, nvidia_smi)
    restarted.start()  # finishes the journaled command
    assert plane.states(place.id)[-1] == "running"
    [done] = libpod.list_containers({LABEL_PLACEMENT: "p-c"})
    assert done.id == half.id and done.state == "running"
    assert restarted.state is not None and restarted.state.in_flight is None
    restarted.run_once()  # the control plane got its final state: nothing is sent again
    assert len(libpod.list_containers({LABEL_PLACEMENT: "p-c"})) == 1


def test_gpu_work_is_refused_when_the_self_test_fails(plane: FakeControlPlane, tmp_path: Path,
                                                      libpod: LibpodEngine) -> None:
    # Eight GPUs reported; the fake CDI spec has 0..3, so GPU 7 cannot be pinned by the engine.
    exe = install_fake_nvidia_smi(tmp_path / "bin8", H100, copies=8)
    agent = _agent(plane, libpod, tmp_path / "s", str(exe), token=plane.new_join_token())
    agent.start()
    assert agent.engine_report.self_test_ok  # GPU 0 is in the fake CDI spec
    node = plane.nodes[agent.node_id or ""]
    gpus = [g.uuid for g in node.registration.host.gpus]
    unknown = _place("p-u", ["GPU-not-here"])
    no_cdi = _place("p-7", [gpus[7]])  # on the host, but the engine cannot pin it: create fails, rolled back
    for command in (unknown, no_cdi):
        plane.send(node.node_id, command)
    agent.run_once()
    assert "not on this node" in (plane.last(unknown.id).error or "")
    assert plane.states(no_cdi.id)[-1] == "failed" and libpod.list_containers({LABEL_PLACEMENT: "p-7"}) == []

    agent.engine_report = agent.engine_report.model_copy(update={"self_test_ok": False, "gpu_pinning": "none",
                                                                 "detail": "no GPU device node arrived"})
    refused = _place("p-x", [gpus[0]])
    plane.send(node.node_id, refused)
    agent.run_once()
    assert "self-test failed" in (plane.last(refused.id).error or "")




def test_mig_devices_are_placed_separately_and_the_split_gpu_is_refused(
    plane: FakeControlPlane, tmp_path: Path, libpod: LibpodEngine,
) -> None:
    mig_capture = next(c for c in CAPTURES if "h100-mig" in c.name)
    exe = install_fake_nvidia_smi(tmp_path / "bin", mig_capture)
    agent = _agent(plane, libpod, tmp_path / "s", str(exe), token=plane.new_join_token())
    agent.start()
    assert agent.engine_report.self_test_ok and "nvidia.com/gpu=0:0" in agent.engine_report.detail
    node = plane.nodes[agent.node_id or ""]
    [gpu] = node.registration.host.gpus
    migs = [m.uuid for m in gpu.mig_devices]
    whole = _place("p-whole", [gpu.uuid])
    slice1 = _place("p-mig1", [migs[1]])
    again = _place("p-mig1b", [migs[1]])
    for command in (whole, slice1, again):
        plane.send(node.node_id, command)
    agent.run_once()
    assert "has MIG enabled" in (plane.last(whole.id).error or "")
    assert plane.states(slice1.id)[-1] == "running"
    assert "already given to placement p-mig1" in (plane.last(again.id).error or "")
    [info] = libpod.list_containers({LABEL_PLACEMENT: "p-mig1"})
    _, caps = libpod.exec(info.id, ["ls", "/dev/nvidia-caps"])
    assert caps.split() == ["nvidia-cap2"]
    assert agent.gpu_owners == {migs[1]: "p-mig1"}


def test_a_crashed_placement_that_expired_meanwhile_is_rolled_back(
    plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str, libpod: LibpodEngine, podman_service: PodmanService,
) -> None:
    state_dir = tmp_path / "s"
    crashing = _agent(plane, _CrashAfterCreate(libpod), state_dir, nvidia_smi,  # type: ignore[arg-type]
                      token=plane.new_join_token())
    crashing.start()
    node = plane.nodes[crashing.node_id or ""]
    place = _place("p-e", [node.registration.host.gpus[0].uuid])
    assert place.spec is not None
    place.spec.expires_at = datetime.now(UTC) + timedelta(hours=1)
    plane.send(node.node_id, place)
    with pytest.raises(Killed):
        crashing.run_once()
    assert len(libpod.list_containers({LABEL_PLACEMENT: "p-e"})) == 1
    # The agent stays down past the placement's end (the journal's copy of the command says when).
    store = StateStore(state_dir)
    state = store.load()
    assert state is not None and state.in_flight is not None and state.in_flight.spec is not None
    state.in_flight.spec.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    store.save(state)
    # Restarted after the placement's end: the half-made container is removed, not started.
    # Agent(config) alone opens the engine named in the config; run_once() starts the agent first.
    config = AgentConfig(server=plane.url, state_dir=state_dir, probe_image=IMAGE, self_test=False,
                         discovery=DiscoveryConfig(source="nvidia-smi", nvidia_smi=nvidia_smi),
                         engine="podman", socket=podman_service.socket)
    restarted = Agent(config)
    assert restarted.run_once() == 0  # the control plane got 'failed': nothing is sent again
    assert plane.states(place.id)[-1] == "failed" and "expired" in (plane.last(place.id).error or "")
    assert libpod.list_containers({LABEL_PLACEMENT: "p-e"}) == [] and restarted.gpu_owners == {}
    assert restarted.state is not None and restarted.state.in_flight is None


def _start_on(placement: str, gpus: list[str], *, volume: str) -> Command:
    """A start command as the control plane sends it: with the GPUs assigned now."""
    place = _place(placement, gpus, volume=volume)
    return place.model_copy(update={"action": "start", "id": f"c-{uuid.uuid4().hex[:8]}"})


def test_start_on_other_gpus_recreates_the_container_with_exactly_those(
    plane: FakeControlPlane, tmp_path: Path, nvidia_smi: str, libpod: LibpodEngine,
) -> None:
    agent = _agent(plane, libpod, tmp_path / "s", nvidia_smi, token=plane.new_join_token())
    agent.start()
    node = plane.nodes[agent.node_id or ""]
    gpus = [g.uuid for g in node.registration.host.gpus]
    volume = f"ws-{uuid.uuid4().hex[:8]}"
    plane.send(node.node_id, _place("p-m", [gpus[0]], volume=volume))
    agent.run_once()
    [first] = libpod.list_containers({LABEL_PLACEMENT: "p-m"})
    assert libpod.exec(first.id, ["/bin/sh", "-c", "echo kept > /workspace/f"])[0] == 0
    plane.send(node.node_id, stop := _cmd("stop", "p-m"))
    agent.run_once()
    assert plane.states(stop.id) == ["stopped"]

    # the same GPUs: the same container is started again
    plane.send(node.node_id, same := _start_on("p-m", [gpus[0]], volume=volume))
    agent.run_once()
    assert plane.states(same.id)[-1] == "running"
    [again] = libpod.list_containers({LABEL_PLACEMENT: "p-m"})
    assert again.id == first.id
    plane.send(node.node_id, stop := _cmd("stop", "p-m"))
    agent.run_once()

    # other GPUs (GPU 0 went to other work while it was stopped): a new container on exactly GPU 2 and 3
    plane.send(node.node_id, _place("p-other", [gpus[0]]))
    agent.run_once()
    plane.send(node.node_id, moved := _start_on("p-m", [gpus[2], gpus[3]], volume=volume))
    agent.run_once()
    assert plane.states(moved.id)[-1] == "running", plane.last(moved.id)
    [now] = libpod.list_containers({LABEL_PLACEMENT: "p-m"})
    assert now.id != first.id and libpod.inspect(first.id) is None
    assert now.labels[LABEL_GPUS] == f"{gpus[2]},{gpus[3]}" and now.labels[LABEL_COMMAND] == moved.id
    assert libpod.exec(now.id, ["/bin/sh", "-c", "ls /dev | grep nvidia"])[1].split() == ["nvidia2", "nvidia3"]
    assert libpod.exec(now.id, ["cat", "/workspace/f"])[1] == "kept\n"  # the workspace volume survived
    assert agent.gpu_owners == {gpus[0]: "p-other", gpus[2]: "p-m", gpus[3]: "p-m"}

    # a start onto a GPU another container holds is refused, and the stopped container is left alone
    plane.send(node.node_id, _cmd("stop", "p-m"))
    agent.run_once()
    plane.send(node.node_id, clash := _start_on("p-m", [gpus[0]], volume=volume))
    agent.run_once()
    assert plane.states(clash.id)[-1] == "failed" and "already given to placement p-other" in (
        plane.last(clash.id).error or "")
    [kept] = libpod.list_containers({LABEL_PLACEMENT: "p-m"})
    assert kept.id == now.id and kept.state == "exited"
    for placement in ("p-m", "p-other"):
        plane.send(node.node_id, _cmd("destroy", placement))
    agent.run_once()
    libpod.remove_volume(volume)


def test_expired_container_stopped_without_the_control_plane(tmp_path: Path, nvidia_smi: str,
                                                             libpod: LibpodEngine) -> None:
    now = [datetime.now(UTC)]
    with FakeControlPlane() as control:
        config = AgentConfig(server=control.url, join_token=control.new_join_token(), state_dir=tmp_path / "s",
                             probe_image=IMAGE, discovery=DiscoveryConfig(source="nvidia-smi", nvidia_smi=nvidia_smi),
                             stop_timeout_s=1, expiry_grace_s=60, http_timeout_s=2)
        agent = Agent(config, libpod, clock=lambda: now[0])
        agent.start()
        node = control.nodes[agent.node_id or ""]
        gpu = node.registration.host.gpus[1].uuid
        place = _place("p-x", [gpu])
        expires = now[0] + timedelta(hours=1)
        place.spec = place.spec.model_copy(update={"expires_at": expires})  # type: ignore[union-attr]
        control.send(node.node_id, place)
        agent.run_once()
        [info] = libpod.list_containers({LABEL_PLACEMENT: "p-x"})
        assert info.state == "running" and datetime.fromisoformat(info.labels["cloudarb.expires-at"]) == expires
    now[0] = expires + timedelta(seconds=61)
    assert agent.tick() is False  # the control plane is gone
    stopped = libpod.inspect(info.id)
    assert stopped is not None and stopped.state == "exited" and agent.gpu_owners == {}
    libpod.remove(info.id)
