"""Container engine adapters: Podman's libpod API (CDI) and the Docker Engine API (DeviceRequests)."""

from __future__ import annotations

from cloudarb.agent.engines.base import Engine, EngineError, EngineUnavailable

__all__ = ["Engine", "EngineError", "EngineUnavailable", "open_engine"]


def open_engine(kind: str, socket_path: str | None = None) -> Engine:
    """The adapter for ``podman`` (libpod) or ``docker``; EngineUnavailable when nothing answers."""
    if kind == "podman":
        from cloudarb.agent.engines.libpod import DEFAULT_SOCKET, LibpodEngine

        engine = LibpodEngine(socket_path or DEFAULT_SOCKET)
        engine.version()  # fails now, with the socket named, rather than at the first placement
        return engine
    if kind == "docker":
        from cloudarb.agent.engines.docker import DEFAULT_SOCKET as DOCKER_SOCKET
        from cloudarb.agent.engines.docker import DockerEngine

        return DockerEngine(socket_path or DOCKER_SOCKET)
    raise ValueError(f"--engine must be podman or docker, not {kind!r}")
