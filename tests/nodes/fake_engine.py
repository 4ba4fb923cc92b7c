"""An in-memory container engine with the agent's ``Engine`` interface (for control-plane tests).

It keeps containers (labels, GPUs, ports, state) the way an engine does, across agent restarts when
the same object is reused. A probe container's log shows exactly the devices it was created with, so
the agent's real self-test judges what this engine pins.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from cloudarb.agent.engines.base import ContainerInfo, ContainerRequest, ContainerState, NameConflict


@dataclass
class _Container:
    request: ContainerRequest
    id: str
    state: ContainerState = "created"
    ports: dict[str, int] = field(default_factory=dict)


class FakeEngine:
    kind: Literal["docker", "podman"] = "podman"
    gpu_pinning: Literal["device_requests", "cdi"] = "cdi"

    def __init__(self, publish: Callable[[str], int] | None = None) -> None:
        """``publish``: the host port for a container port key ('8080/tcp'), so a health check can reach a
        real server a test runs (by default every port gets the next number from 42000, reaching nothing)."""
        self.containers: dict[str, _Container] = {}
        self.volumes: set[str] = set()
        self.created = 0
        counter = itertools.count(42000)
        self._publish = publish or (lambda key: next(counter))

    def version(self) -> str:
        return "fake-4.3"

    def image_present(self, image: str) -> bool:
        return True

    def pull(self, image: str) -> None:
        return None

    def create(self, request: ContainerRequest) -> str:
        if any(c.request.name == request.name for c in self.containers.values()):
            raise NameConflict(f"name {request.name} in use", status=409)
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        self.containers[cid] = _Container(request, cid, ports={p.key: self._publish(p.key) for p in request.ports})
        if request.workspace_volume:
            self.volumes.add(request.workspace_volume)
        self.created += 1
        return cid

    def start(self, container_id: str) -> None:
        self.containers[container_id].state = "running"

    def stop(self, container_id: str, timeout_s: int = 10) -> None:
        self.containers[container_id].state = "exited"

    def remove(self, container_id: str) -> bool:
        return self.containers.pop(container_id, None) is not None

    def inspect(self, container_id: str) -> ContainerInfo | None:
        c = self.containers.get(container_id)
        if c is None:
            return None
        return ContainerInfo(id=c.id, name=c.request.name, state=c.state, labels=dict(c.request.labels),
                             image=c.request.image, published_ports=dict(c.ports) if c.state == "running" else {})

    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        out = []
        for c in self.containers.values():
            if all(c.request.labels.get(k) == v for k, v in labels.items()):
                info = self.inspect(c.id)
                if info is not None:
                    out.append(info)
        return out

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        return 0, ""

    def wait(self, container_id: str, timeout_s: float) -> int:
        self.containers[container_id].state = "exited"
        return 0

    def logs(self, container_id: str) -> str:
        gpus = self.containers[container_id].request.gpus
        index = gpus[0].cdi_name.split("=", 1)[-1] if gpus else ""
        lines = [f"VISIBLE={index}"] + [f"DEV=/dev/nvidia{g.cdi_name.split('=', 1)[-1]}" for g in gpus]
        return "\n".join([*lines, "END"]) + "\n"

    def remove_volume(self, name: str) -> bool:
        present = name in self.volumes
        self.volumes.discard(name)
        return present

    def close(self) -> None:
        return None

    def gpus_of(self, placement_id: str) -> list[str]:
        return [g.uuid for c in self.containers.values() if c.request.labels.get("cloudarb.placement") == placement_id
                for g in c.request.gpus]
