"""The Docker Engine API through the docker SDK, GPUs pinned by ``DeviceRequest``.

Two ways to pin: ``device_requests`` (the NVIDIA Container Toolkit's runtime: ``DeviceRequest(
device_ids=[<GPU UUID>], capabilities=[["gpu"]])``) and ``cdi`` (Docker 27+ with CDI enabled:
``DeviceRequest(driver="cdi", device_ids=["nvidia.com/gpu=0"])``). ``auto`` picks the NVIDIA runtime
when Docker lists it, else CDI when Docker reports CDI spec directories. Podman's Docker-compatible
API accepts both requests and drops them, which the start-up self-test catches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

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

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

DEFAULT_SOCKET = "/var/run/docker.sock"
Pinning = Literal["device_requests", "cdi"]


def _ports(raw: dict[str, Any] | None) -> dict[str, int]:
    ports: dict[str, int] = {}
    for key, bindings in (raw or {}).items():
        for binding in bindings or []:
            if binding.get("HostPort"):
                ports[key] = int(binding["HostPort"])
                break
    return ports


def _info(container: Container) -> ContainerInfo:
    attrs = container.attrs
    state = attrs.get("State")
    if isinstance(state, dict):
        status, exit_code = str(state.get("Status", "")), state.get("ExitCode")
        ports = _ports((attrs.get("NetworkSettings") or {}).get("Ports"))
    else:  # a row of the list call
        status, exit_code = str(state or attrs.get("Status", "")), None
        ports = {f"{p['PrivatePort']}/{p.get('Type', 'tcp')}": int(p["PublicPort"])
                 for p in attrs.get("Ports") or [] if p.get("PublicPort")}
    labels = (attrs.get("Config") or {}).get("Labels") or attrs.get("Labels") or {}
    name = attrs.get("Name") or (attrs.get("Names") or [""])[0]
    return ContainerInfo(
        id=str(attrs["Id"]), name=str(name).lstrip("/"), state=normalize_state(status), labels=dict(labels),
        image=str((attrs.get("Config") or {}).get("Image") or attrs.get("Image", "")),
        published_ports=ports, exit_code=exit_code,
    )


class DockerEngine:
    """The Engine protocol over the Docker Engine API."""

    kind: Literal["docker", "podman"] = "docker"

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, pinning: Pinning | Literal["auto"] = "auto",
                 timeout_s: int = 60) -> None:
        import docker
        from docker.errors import DockerException

        self._errors = docker.errors
        self.socket_path = socket_path
        try:
            self._client: DockerClient = docker.DockerClient(base_url=f"unix://{socket_path}", timeout=timeout_s)
            info = self._client.info()
        except DockerException as exc:
            raise EngineUnavailable(f"Docker Engine not reachable on {socket_path}: {exc}") from exc
        self.gpu_pinning: Pinning = self._choose(info) if pinning == "auto" else pinning

    @staticmethod
    def _choose(info: dict[str, Any]) -> Pinning:
        if "nvidia" in (info.get("Runtimes") or {}):
            return "device_requests"
        return "cdi" if info.get("CDISpecDirs") else "device_requests"

    def close(self) -> None:
        self._client.close()

    def _guard(self, what: str, exc: Exception) -> EngineError:
        status = getattr(exc, "status_code", None)
        if isinstance(exc, self._errors.APIError) and status == 409 and what == "create":
            return NameConflict(f"docker {what}: {exc}", status=409)
        return EngineError(f"docker {what}: {exc}", status=status)

    def version(self) -> str:
        return str(self._client.version().get("Version", ""))

    def image_present(self, image: str) -> bool:
        try:
            self._client.images.get(image)
        except self._errors.ImageNotFound:
            return False
        return True

    def pull(self, image: str) -> None:
        try:
            self._client.images.pull(image)
        except self._errors.DockerException as exc:
            raise self._guard("pull", exc) from exc

    def _device_requests(self, request: ContainerRequest) -> list[Any]:
        from docker.types import DeviceRequest

        if not request.gpus:
            return []
        if self.gpu_pinning == "cdi":
            return [DeviceRequest(driver="cdi", device_ids=[g.cdi_name for g in request.gpus])]
        return [DeviceRequest(device_ids=[g.uuid for g in request.gpus], capabilities=[["gpu"]])]

    def create(self, request: ContainerRequest) -> str:
        kwargs: dict[str, Any] = {
            "name": request.name, "labels": request.labels, "environment": request.env,
            "device_requests": self._device_requests(request),
            "ports": {p.key: (p.host_port or None) for p in request.ports},
            "detach": True,
        }
        if request.command:
            kwargs["command"] = request.command
        if request.workspace_volume:
            kwargs["volumes"] = {request.workspace_volume: {"bind": WORKSPACE_PATH, "mode": "rw"}}
        if request.memory_mib:
            kwargs["mem_limit"] = f"{request.memory_mib}m"
        if request.cpus:
            kwargs["nano_cpus"] = int(request.cpus * 1e9)
        try:
            container = self._client.containers.create(request.image, **kwargs)
        except self._errors.DockerException as exc:
            raise self._guard("create", exc) from exc
        return str(container.id)

    def _get(self, container_id: str) -> Container:
        try:
            return self._client.containers.get(container_id)
        except self._errors.NotFound as exc:
            raise EngineError(f"no container {container_id}", status=404) from exc
        except self._errors.DockerException as exc:
            raise self._guard("inspect", exc) from exc

    def start(self, container_id: str) -> None:
        try:
            self._get(container_id).start()
        except self._errors.DockerException as exc:
            raise self._guard("start", exc) from exc

    def stop(self, container_id: str, timeout_s: int = 10) -> None:
        try:
            self._get(container_id).stop(timeout=timeout_s)
        except self._errors.DockerException as exc:
            raise self._guard("stop", exc) from exc

    def remove(self, container_id: str) -> bool:
        try:
            self._client.api.remove_container(container_id, force=True, v=True)
        except self._errors.NotFound:
            return False
        except self._errors.DockerException as exc:
            raise self._guard("remove", exc) from exc
        return True

    def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            return _info(self._client.containers.get(container_id))
        except self._errors.NotFound:
            return None
        except self._errors.DockerException as exc:
            raise self._guard("inspect", exc) from exc

    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        try:
            found = self._client.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]})
        except self._errors.DockerException as exc:
            raise self._guard("list", exc) from exc
        return [_info(container) for container in found]

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        try:
            code, output = self._get(container_id).exec_run(command, stdout=True, stderr=True)
        except self._errors.DockerException as exc:
            raise self._guard("exec", exc) from exc
        return int(code or 0), output.decode(errors="replace") if isinstance(output, bytes) else str(output)

    def wait(self, container_id: str, timeout_s: float) -> int:
        try:
            result = self._get(container_id).wait(timeout=timeout_s)
        except self._errors.DockerException as exc:
            raise self._guard("wait", exc) from exc
        except OSError as exc:  # requests' ReadTimeout (an IOError) when the container outlives timeout_s
            raise EngineError(f"docker wait: {exc}") from exc
        return int(result.get("StatusCode", -1))

    def logs(self, container_id: str) -> str:
        try:
            raw = self._get(container_id).logs(stdout=True, stderr=True)
        except self._errors.DockerException as exc:
            raise self._guard("logs", exc) from exc
        return demux_stream(raw) if isinstance(raw, bytes) else str(raw)

    def remove_volume(self, name: str) -> bool:
        try:
            self._client.volumes.get(name).remove(force=True)
        except self._errors.NotFound:
            return False
        except self._errors.DockerException as exc:
            raise self._guard("volume remove", exc) from exc
        return True
