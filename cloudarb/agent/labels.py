"""What a container's labels say: the agent writes each placement's facts on its container at creation
(placement, instance key, deployment, GPUs, expiry, health check) and reads them back after a restart,
so GPU ownership, lifetimes and health checks are rebuilt from the engine, never from memory alone."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from cloudarb.agent.engines.base import ContainerInfo
from cloudarb.agent.protocol import (
    LABEL_COMMAND,
    LABEL_DEPLOYMENT,
    LABEL_EXPIRES,
    LABEL_GPUS,
    LABEL_HEALTH,
    LABEL_INSTANCE_KEY,
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_PLACEMENT,
    HealthCheckSpec,
    PlacementSpec,
)

log = logging.getLogger("cloudarb.agent")

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def placement_labels(spec: PlacementSpec, *, node_id: str, command_id: str) -> dict[str, str]:
    """The labels of a placement's container (read back by the functions below)."""
    labels = {
        LABEL_MANAGED: "true", LABEL_NODE: node_id, LABEL_PLACEMENT: spec.placement_id,
        LABEL_INSTANCE_KEY: spec.instance_key, LABEL_GPUS: ",".join(spec.gpu_uuids), LABEL_COMMAND: command_id,
    }
    if spec.deployment_id:
        labels[LABEL_DEPLOYMENT] = spec.deployment_id
    if spec.expires_at is not None:
        labels[LABEL_EXPIRES] = spec.expires_at.isoformat()
    if spec.health_check is not None:
        labels[LABEL_HEALTH] = spec.health_check.model_dump_json()
    return labels


def container_name(placement_id: str) -> str:
    return "cloudarb-" + _NAME_UNSAFE.sub("-", placement_id)


def gpu_label(info: ContainerInfo) -> list[str]:
    return [uuid for uuid in info.labels.get(LABEL_GPUS, "").split(",") if uuid]


def expiry_label(info: ContainerInfo) -> datetime | None:
    raw = info.labels.get(LABEL_EXPIRES, "")
    try:
        when = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def health_label(info: ContainerInfo) -> HealthCheckSpec | None:
    """The container's health check (None: none, or a label this agent cannot read)."""
    raw = info.labels.get(LABEL_HEALTH, "")
    if not raw:
        return None
    try:
        return HealthCheckSpec.model_validate(json.loads(raw))
    except ValueError:
        log.warning("container %s has an unreadable health check label; not checked", info.id[:12])
        return None
