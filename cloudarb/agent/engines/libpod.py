"""Podman through its libpod REST API over the service's unix socket (httpx), GPUs pinned by CDI name.

Podman's Docker-compatible API accepts GPU ``DeviceRequests`` and silently drops them (DEPLOY-NOTES
4.2), so the agent speaks libpod: ``devices: [{"path": "nvidia.com/gpu=0"}]`` in the container spec
makes Podman apply the CDI spec (device nodes and environment). ``inspect`` shows no device for CDI
devices; the self-test proves them from inside the container.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import quote

import httpx

from cloudarb.agent.engines.base import (
    WORKSPACE_PATH,
    ContainerInfo,
    ContainerRequest,
    EngineError,
    EngineUnavailable,
    NameConflict,
    demux_stream,
    normalize_state,
)

DEFAULT_SOCKET = "/run/podman/podman.sock"
API = "/v4.0.0/libpod"
_CPU_PERIOD = 100_000


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("cause") or body)[:300]
    return str(body)[:300]


def _ports(raw: Any) -> dict[str, int]:
    """Host ports from inspect's ``NetworkSettings.Ports`` or the list's ``Ports`` rows."""
    ports: dict[str, int] = {}
    if isinstance(raw, dict):
        for key, bindings in raw.items():
            for binding in bindings or []:
                if binding.get("HostPort"):
                    ports[key] = int(binding["HostPort"])
                    break
    elif isinstance(raw, list):
        for row in raw:
            host = row.get("host_port")
            if host:
                ports[f"{row['container_port']}/{row.get('protocol', 'tcp')}"] = int(host)
    return ports


class LibpodEngine:
    """The Engine protocol over Podman's libpod API."""

    kind: Literal["docker", "podman"] = "podman"
    gpu_pinning: Literal["device_requests", "cdi"] = "cdi"

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, timeout_s: float = 60.0) -> None:
        self.socket_path = socket_path
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_path), base_url=f"http://podman{API}", timeout=timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 204), **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise EngineUnavailable(f"Podman service not reachable on {self.socket_path}: {exc}") from exc
        if response.status_code not in ok:
            message = f"podman {method} {path}: HTTP {response.status_code}: {_message(response)}"
            if path.endswith("/create") and (response.status_code == 409 or "already in use" in message):
                raise NameConflict(message, status=409)
            raise EngineError(message, status=response.status_code)
        return response

    def version(self) -> str:
        body = self._call("GET", "/version").json()
        return str(body.get("Version") or body.get("Components", [{}])[0].get("Version", ""))

    def image_present(self, image: str) -> bool:
        return self._call("GET", f"/images/{quote(image, safe='')}/exists", ok=(204, 404)).status_code == 204

    def pull(self, image: str) -> None:
        response = self._call("POST", "/images/pull", params={"reference": image, "quiet": "true"},
                              timeout=httpx.Timeout(1800.0, connect=10.0))
        for line in response.text.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("error"):
                raise EngineError(f"pulling {image} failed: {event['error']}")

    def create(self, request: ContainerRequest) -> str:
        spec: dict[str, Any] = {
            "name": request.name,
            "image": request.image,
            "labels": request.labels,
            "env": request.env,
            "devices": [{"path": gpu.cdi_name} for gpu in request.gpus],
            "portmappings": [
                {"container_port": p.container_port, "host_port": p.host_port, "protocol": p.protocol}
                for p in request.ports
            ],
        }
        if request.command:
            spec["command"] = request.command
        if request.workspace_volume:
            spec["volumes"] = [{"Name": request.workspace_volume, "Dest": WORKSPACE_PATH}]
        limits: dict[str, Any] = {}
        if request.memory_mib:
            limits["memory"] = {"limit": request.memory_mib * 1024 * 1024}
        if request.cpus:
            limits["cpu"] = {"quota": int(request.cpus * _CPU_PERIOD), "period": _CPU_PERIOD}
        if limits:
            spec["resource_limits"] = limits
        body = self._call("POST", "/containers/create", json=spec).json()
        return str(body["Id"])

    def start(self, container_id: str) -> None:
        self._call("POST", f"/containers/{container_id}/start", ok=(204, 304))

    def stop(self, container_id: str, timeout_s: int = 10) -> None:
        self._call("POST", f"/containers/{container_id}/stop", params={"timeout": timeout_s}, ok=(204, 304),
                   timeout=timeout_s + 30.0)

    def remove(self, container_id: str) -> bool:
        response = self._call("DELETE", f"/containers/{container_id}", params={"force": "true", "v": "true", "timeout": 0},
                              ok=(200, 204, 404), timeout=90.0)
        return response.status_code != 404

    def inspect(self, container_id: str) -> ContainerInfo | None:
        response = self._call("GET", f"/containers/{container_id}/json", ok=(200, 404))
        if response.status_code == 404:
            return None
        body = response.json()
        config = body.get("Config") or {}
        state = body.get("State") or {}
        return ContainerInfo(
            id=body["Id"], name=str(body.get("Name", "")).lstrip("/"),
            state=normalize_state(str(state.get("Status", ""))),
            labels=dict(config.get("Labels") or {}), image=str(config.get("Image") or body.get("ImageName", "")),
            published_ports=_ports((body.get("NetworkSettings") or {}).get("Ports") or {}),
            exit_code=state.get("ExitCode"),
        )

    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        rows = self._call("GET", "/containers/json", params={"all": "true", "filters": filters}).json() or []
        return [
            ContainerInfo(
                id=row["Id"], name=(row.get("Names") or [""])[0], state=normalize_state(str(row.get("State", ""))),
                labels=dict(row.get("Labels") or {}), image=str(row.get("Image", "")),
                published_ports=_ports(row.get("Ports") or []),
                exit_code=row.get("ExitCode"),
            )
            for row in rows
        ]

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        created = self._call("POST", f"/containers/{container_id}/exec",
                             json={"AttachStdout": True, "AttachStderr": True, "Cmd": command}).json()
        exec_id = created["Id"]
        output = self._call("POST", f"/exec/{exec_id}/start", json={"Detach": False, "Tty": False}).content
        info = self._call("GET", f"/exec/{exec_id}/json").json()
        return int(info.get("ExitCode") or 0), demux_stream(output)

    def wait(self, container_id: str, timeout_s: float) -> int:
        response = self._call("POST", f"/containers/{container_id}/wait", params={"condition": "exited"},
                              timeout=timeout_s)
        return int(response.json())

    def logs(self, container_id: str) -> str:
        response = self._call("GET", f"/containers/{container_id}/logs", params={"stdout": "true", "stderr": "true"})
        return demux_stream(response.content)

    def remove_volume(self, name: str) -> bool:
        response = self._call("DELETE", f"/volumes/{quote(name, safe='')}", params={"force": "true"},
                              ok=(204, 404))
        return response.status_code == 204
