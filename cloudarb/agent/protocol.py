"""The wire contract between the node agent and the control plane (``cloudarb.nodes``).

Both sides import these models: the agent (which imports nothing of the server) and the server's
nodes feature (which may import this one module of the agent). Pydantic only, so the agent stays on
the light base distribution.

Endpoints (all JSON, under ``/agent/v1``):
- ``POST /agent/v1/register`` with ``RegisterRequest`` (a one-time join token) -> ``RegisterResponse``
  (the node's id and its own credential, used as ``Authorization: Bearer <node_token>`` from then on).
- ``POST /agent/v1/heartbeat`` with ``Heartbeat`` -> ``HeartbeatReply`` (commands to carry out).
- ``POST /agent/v1/commands/{command_id}/progress`` with ``CommandProgress`` -> 204.

Containers the agent creates carry the ``LABEL_*`` labels; after a restart the agent rebuilds which
GPU belongs to which placement from those labels (never from memory alone) and reports them in its
next heartbeat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

API_PREFIX = "/agent/v1"

LABEL_MANAGED = "cloudarb.managed"          # "true" on every container the agent created
LABEL_NODE = "cloudarb.node"                # the node id
LABEL_PLACEMENT = "cloudarb.placement"      # the placement id
LABEL_INSTANCE_KEY = "cloudarb.instance-key"  # the deploy stage's idempotency key of the instance row
LABEL_DEPLOYMENT = "cloudarb.deployment"    # the deployment id
LABEL_GPUS = "cloudarb.gpus"                # comma-separated GPU (or MIG) UUIDs assigned
LABEL_COMMAND = "cloudarb.command"          # the id of the command that created it
LABEL_EXPIRES = "cloudarb.expires-at"       # the placement's expiry when it was made (ISO 8601), if any
LABEL_HEALTH = "cloudarb.health-check"      # the placement's health check (HealthCheckSpec as JSON), if any

GPU_ENV = ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_MIG_CONFIG_DEVICES", "NVIDIA_MIG_MONITOR_DEVICES")
"""Variables the NVIDIA container runtime reads to choose devices: a placement may not set them (with the
runtime's environment-variable mode, ``NVIDIA_VISIBLE_DEVICES=all`` would expose every GPU of the host)."""


class MigDevice(BaseModel):
    index: int = Field(ge=0, description="MIG device index within its GPU")
    uuid: str = Field(description="MIG-... UUID")
    profile: str = Field(default="", description="MIG profile, e.g. 3g.40gb")
    memory_total_mib: int | None = Field(default=None, ge=0)


class GpuReport(BaseModel):
    index: int = Field(ge=0)
    uuid: str = Field(min_length=1, description="GPU-... UUID")
    name: str = Field(description="The name the driver reports, e.g. 'NVIDIA H100 80GB HBM3'")
    model: str | None = Field(default=None, description="Canonical model from the GPU identity table, None if unknown")
    memory_total_mib: int = Field(ge=0)
    memory_used_mib: int | None = Field(default=None, ge=0)
    pci_bus_id: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    utilization_pct: float | None = Field(default=None, ge=0, le=100)
    temperature_c: float | None = None
    power_w: float | None = Field(default=None, ge=0)
    mig_mode: Literal["enabled", "disabled"] | None = None
    mig_devices: list[MigDevice] = Field(default_factory=list)


class EngineReport(BaseModel):
    kind: Literal["docker", "podman", "none"] = "none"
    version: str | None = None
    gpu_pinning: Literal["device_requests", "cdi", "none"] = "none"
    self_test_ok: bool = False
    detail: str = Field(default="", description="Why the self-test failed, or what it proved")


class HostReport(BaseModel):
    hostname: str = Field(min_length=1, max_length=255)
    os: str = ""
    kernel: str = ""
    cpus: int | None = Field(default=None, ge=0)
    memory_mib: int | None = Field(default=None, ge=0)
    agent_version: str = ""
    gpus: list[GpuReport] = Field(default_factory=list)
    gpu_error: str | None = Field(default=None, description="Why no GPU could be read ('no NVIDIA driver'), if so")
    engine: EngineReport = Field(default_factory=EngineReport)


class RegisterRequest(BaseModel):
    join_token: str = Field(min_length=1, max_length=200)
    host: HostReport


class RegisterResponse(BaseModel):
    node_id: str
    node_token: str = Field(description="The node's own credential (shown once)")
    heartbeat_interval_s: float = 15.0


class PortSpec(BaseModel):
    container_port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    name: str = Field(default="", description="ssh, jupyter, http...")


class HealthCheckSpec(BaseModel):
    """How the agent judges a placement's container healthy (copied from its template when it was made).

    ``running``: the engine says the container runs. ``tcp``: a connection to the host port published for
    ``port`` is accepted. ``http``: ``GET http://<host>:<published port><path>`` answers 2xx or 3xx.
    The first probe runs when the container is seen running, then every ``interval_s``. Until a probe has
    passed, failures are expected (the service is starting) and the health is ``starting``; a container
    that has not passed once within ``grace_s`` is ``unhealthy`` with the last failure's reason. After a
    pass, ``failures`` failures in a row make it ``unhealthy``; a later pass makes it ``healthy`` again.
    With ``restart_on_unhealthy`` the agent restarts the container when it becomes unhealthy (its GPUs and
    workspace stay), and the grace starts over."""

    kind: Literal["running", "http", "tcp"] = "running"
    port: int | None = Field(default=None, ge=1, le=65535, description="The container's tcp port (http, tcp)")
    path: str = Field(default="/", description="The HTTP path (http)")
    interval_s: float = Field(default=10.0, gt=0)
    grace_s: float = Field(default=300.0, ge=0, description="How long it may take to pass the first time")
    probe_timeout_s: float = Field(default=5.0, gt=0, description="How long one probe may take")
    failures: int = Field(default=3, ge=1, description="Failures in a row (after a pass) that make it unhealthy")
    restart_on_unhealthy: bool = False


HealthState = Literal["starting", "healthy", "unhealthy"]


class PlacementSpec(BaseModel):
    placement_id: str
    instance_key: str = Field(description="The deploy stage's idempotency key (also a container label)")
    deployment_id: str | None = None
    image: str
    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)
    gpu_uuids: list[str] = Field(description="Exactly the GPUs (or MIG devices) to pin, by UUID")
    gpu_indices: list[int] = Field(default_factory=list, description="The same GPUs by index (CDI names)")
    cpus: float | None = Field(default=None, gt=0)
    memory_mib: int | None = Field(default=None, gt=0)
    workspace_volume: str = Field(description="Named volume mounted at /workspace; survives stop/start")
    expires_at: datetime | None = None
    health_check: HealthCheckSpec | None = Field(
        default=None, description="Absent from older control planes: the container is then not health-checked")


class Command(BaseModel):
    id: str
    action: Literal["place", "stop", "start", "destroy"]
    placement_id: str
    spec: PlacementSpec | None = Field(default=None, description="Present for 'place' and 'start' (a start "
                                       "carries the GPUs assigned now, which may differ from the container's)")


class ContainerReport(BaseModel):
    placement_id: str
    container_id: str
    instance_key: str = ""
    state: Literal["created", "running", "paused", "restarting", "exited", "dead", "unknown"]
    gpu_uuids: list[str] = Field(default_factory=list)
    published_ports: dict[str, int] = Field(default_factory=dict, description="'22/tcp' -> host port")
    health: HealthState | None = Field(default=None, description="None: not checked (no health check, or an "
                                       "older agent)")
    health_detail: str = Field(default="", description="The last probe's outcome (the failure's reason)")
    healthy_since: datetime | None = None


class Heartbeat(BaseModel):
    host: HostReport
    containers: list[ContainerReport] = Field(default_factory=list)


class HeartbeatReply(BaseModel):
    commands: list[Command] = Field(default_factory=list)
    heartbeat_interval_s: float = 15.0
    drained: bool = Field(default=False, description="The node is drained: the agent refuses new placements "
                          "itself (running ones stay)")
    expiries: dict[str, datetime | None] = Field(
        default_factory=dict, description="Placement id -> its expiry now (extensions included; None: none) for "
        "the node's live placements; the agent keeps the last it heard and stops a container past it on its own")


class CommandProgress(BaseModel):
    state: Literal["accepted", "pulling", "creating", "starting", "running", "stopped", "destroyed", "failed"]
    message: str = ""
    container_id: str | None = None
    published_ports: dict[str, int] = Field(default_factory=dict)
    error: str | None = None
