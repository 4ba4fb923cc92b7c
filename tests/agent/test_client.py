"""The control-plane client's error mapping, over real HTTP on loopback."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from cloudarb.agent.client import AuthRejected, ControlPlaneClient, ControlPlaneError
from cloudarb.agent.protocol import CommandProgress, Heartbeat, HostReport, RegisterRequest
from cloudarb.agent.state import AgentState, StateError, StateStore
from tests.agent.fake_control_plane import FakeControlPlane


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_register_heartbeat_progress_and_errors() -> None:
    with FakeControlPlane() as plane:
        client = ControlPlaneClient(plane.url)
        with pytest.raises(AuthRejected, match="join token"):
            client.register(RegisterRequest(join_token="nope", host=HostReport(hostname="h")))
        registered = client.register(RegisterRequest(join_token=plane.new_join_token(), host=HostReport(hostname="h")))
        assert client.node_token == registered.node_token
        assert client.heartbeat(Heartbeat(host=HostReport(hostname="h"))).commands == []
        client.progress("c-1", CommandProgress(state="accepted"))
        assert plane.states("c-1") == ["accepted"]
        with pytest.raises(ControlPlaneError, match="HTTP 404"):
            client._post("/nowhere", CommandProgress(state="accepted"))
        plane.revoke(registered.node_id)
        with pytest.raises(AuthRejected):
            client.heartbeat(Heartbeat(host=HostReport(hostname="h")))
        client.close()


def test_unreachable_control_plane() -> None:
    client = ControlPlaneClient(f"http://127.0.0.1:{_free_port()}", node_token="t", timeout_s=2)
    with pytest.raises(ControlPlaneError, match="not reachable") as caught:
        client.heartbeat(Heartbeat(host=HostReport(hostname="h")))
    assert not isinstance(caught.value, AuthRejected)


def test_state_file_round_trip_and_damage(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.load() is None
    store.save(AgentState(server="http://cp", node_id="n-1", node_token="secret"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load() == AgentState(server="http://cp", node_id="n-1", node_token="secret")
    store.path.write_text("{not json")
    with pytest.raises(StateError, match="not a valid agent state file"):
        store.load()
