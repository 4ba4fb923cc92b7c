"""The container engine contract of the agent, shared by the libpod (Podman) and Docker adapters.

An engine creates one container per placement, pinned to exactly its GPUs, with labels, CPU and
memory limits, a named workspace volume at ``/workspace`` and published ports; it starts, stops,
removes and inspects containers and lists the ones the agent manages by label. GPU ownership after a
restart is rebuilt from those labels (``cloudarb.agent.protocol.LABEL_*``), never from memory.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Literal, Protocol

ContainerState = Literal["created", "running", "paused", "restarting", "exited", "dead", "unknown"]
WORKSPACE_PATH = "/workspace"


class EngineError(RuntimeError):
    """The engine refused or failed a call; ``status`` is its HTTP status when it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EngineUnavailable(EngineError):
    """No engine answers on the socket (not installed, not started, no permission)."""


class NameConflict(EngineError):
    """A container of that name exists already (the placement was created before: adopt it)."""


@dataclass(frozen=True, slots=True)
class GpuRef:
    """One GPU or MIG device to pin: its UUID (Docker device requests) and CDI name (Podman, Docker CDI)."""

    uuid: str
    cdi_name: str


@dataclass(frozen=True, slots=True)
class PortRequest:
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_port: int = 0  # 0: the engine picks a free port

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.protocol}"


@dataclass(slots=True)
class ContainerRequest:
    """Everything one container is created with."""

    name: str
    image: str
    labels: dict[str, str]
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    gpus: list[GpuRef] = field(default_factory=list)
    cpus: float | None = None
    memory_mib: int | None = None
    workspace_volume: str | None = None
    ports: list[PortRequest] = field(default_factory=list)


@dataclass(slots=True)
class ContainerInfo:
    """What the engine says about one container."""

    id: str
    name: str
    state: ContainerState
    labels: dict[str, str]
    image: str = ""
    published_ports: dict[str, int] = field(default_factory=dict)  # '22/tcp' -> host port
    exit_code: int | None = None


class Engine(Protocol):
    """A container engine the agent can place GPU containers with."""

    kind: Literal["docker", "podman"]
    gpu_pinning: Literal["device_requests", "cdi"]

    def version(self) -> str: ...

    def image_present(self, image: str) -> bool: ...

    def pull(self, image: str) -> None: ...

    def create(self, request: ContainerRequest) -> str:
        """Create (not start) the container; its id. NameConflict when the name is taken."""
        ...

    def start(self, container_id: str) -> None: ...

    def stop(self, container_id: str, timeout_s: int = 10) -> None: ...

    def remove(self, container_id: str) -> bool:
        """Force-remove (anonymous volumes too, never the named workspace); False if it was already gone."""
        ...

    def inspect(self, container_id: str) -> ContainerInfo | None:
        """The container, None when it does not exist."""
        ...

    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Every container (any state) carrying all these labels."""
        ...

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        """Run a command in a running container: (exit code, stdout+stderr)."""
        ...

    def wait(self, container_id: str, timeout_s: float) -> int:
        """Block until the container exits; its exit code."""
        ...

    def logs(self, container_id: str) -> str: ...

    def remove_volume(self, name: str) -> bool: ...

    def close(self) -> None: ...


def normalize_state(raw: str) -> ContainerState:
    """Engine state words (Podman's 'configured', 'stopped'...) -> the protocol's states."""
    text = raw.lower()
    mapping: dict[str, ContainerState] = {
        "created": "created", "configured": "created", "initialized": "created",
        "running": "running", "paused": "paused", "restarting": "restarting",
        "exited": "exited", "stopped": "exited", "stopping": "running",
        "dead": "dead", "removing": "dead",
    }
    return mapping.get(text, "unknown")


def demux_stream(data: bytes) -> str:
    """Docker's multiplexed stdout/stderr stream (8-byte frame headers) as text; raw text passes through."""
    out = bytearray()
    pos = 0
    while pos + 8 <= len(data) and data[pos] in (0, 1, 2) and data[pos + 1:pos + 4] == b"\0\0\0":
        (size,) = struct.unpack(">I", data[pos + 4:pos + 8])
        out += data[pos + 8:pos + 8 + size]
        pos += 8 + size
    if pos < len(data):
        out += data[pos:]
    return out.decode(errors="replace")
