"""JSON Schemas of the provider responses the fakes must produce, transcribed from the published
API documents: Lambda Cloud OpenAPI 1.8.3 (components ``Instance``, ``SSHKey``, the ``{"data"}`` and
``{"error"}`` envelopes) and RunPod's REST v1 OpenAPI (``runpod/docs`` ``api-reference/openapi.json``,
``Pod`` / ``Pods``; v1 errors ``{"message"}`` per the v2 migration guide). Objects list only the
documented properties (``additionalProperties: false``), so a fake that invents a field fails.
"""

from __future__ import annotations

from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_STRS: dict[str, Any] = {"type": "array", "items": _STR}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return _object({"data": data}, ["data"])


_LAMBDA_ACTION = _object({"available": {"type": "boolean"}, "reason_code": _STR, "reason_description": _STR},
                         ["available"])
LAMBDA_INSTANCE = _object(
    {
        "id": _STR,
        "name": {"type": "string", "maxLength": 64},
        "ip": _STR,
        "private_ip": _STR,
        "status": {"enum": ["booting", "active", "unhealthy", "terminated", "terminating", "preempted"]},
        "ssh_key_names": _STRS,
        "file_system_names": _STRS,
        "file_system_mounts": {"type": "array"},
        "region": _object({"name": _STR, "description": _STR}, ["name", "description"]),
        "instance_type": _object(
            {
                "name": _STR,
                "description": _STR,
                "gpu_description": _STR,
                "price_cents_per_hour": {"type": "integer"},
                "specs": _object({k: {"type": "integer"} for k in ("vcpus", "memory_gib", "storage_gib", "gpus")},
                                 ["vcpus", "memory_gib", "storage_gib", "gpus"]),
            },
            ["name", "description", "gpu_description", "price_cents_per_hour", "specs"],
        ),
        "hostname": _STR,
        "jupyter_token": _STR,
        "jupyter_url": _STR,
        "actions": _object({k: _LAMBDA_ACTION for k in ("migrate", "rebuild", "restart", "cold_reboot", "terminate")},
                           ["migrate", "rebuild", "restart", "cold_reboot", "terminate"]),
        "tags": {"type": "array", "items": _object({"key": _STR, "value": _STR}, ["key", "value"])},
        "firewall_rulesets": {"type": "array"},
    },
    ["id", "status", "ssh_key_names", "file_system_names", "region", "instance_type", "actions"],
)
LAMBDA_SSH_KEY = _object({"id": _STR, "name": _STR, "public_key": _STR, "private_key": _STR},
                         ["id", "name", "public_key"])
LAMBDA = {
    "list": _envelope({"type": "array", "items": LAMBDA_INSTANCE}),
    "get": _envelope(LAMBDA_INSTANCE),
    "launch": _envelope(_object({"instance_ids": _STRS}, ["instance_ids"])),
    "terminate": _envelope(_object({"terminated_instances": {"type": "array", "items": LAMBDA_INSTANCE}},
                                   ["terminated_instances"])),
    "ssh_keys": _envelope({"type": "array", "items": LAMBDA_SSH_KEY}),
    "ssh_key": _envelope(LAMBDA_SSH_KEY),
    "error": _object({"error": _object({"code": _STR, "message": _STR, "suggestion": _STR}, ["code", "message"])},
                     ["error"]),
}

_NUM: dict[str, Any] = {"type": "number"}
RUNPOD_POD = _object(
    {
        "adjustedCostPerHr": _NUM, "aiApiId": {"type": ["string", "null"]}, "consumerUserId": _STR,
        "containerDiskInGb": {"type": "integer"}, "containerRegistryAuthId": {"type": ["string", "null"]},
        "costPerHr": _NUM, "cpuFlavorId": {"type": ["string", "null"]},
        "desiredStatus": {"enum": ["RUNNING", "EXITED", "TERMINATED"]},
        "dockerEntrypoint": _STRS, "dockerStartCmd": _STRS, "endpointId": {"type": ["string", "null"]},
        "env": {"type": "object", "additionalProperties": _STR}, "gpu": {"type": "object"}, "id": _STR,
        "image": _STR, "interruptible": {"type": "boolean"}, "lastStartedAt": _STR, "lastStatusChange": _STR,
        "locked": {"type": "boolean"}, "machine": {"type": "object"}, "machineId": _STR, "memoryInGb": _NUM,
        "name": {"type": "string", "maxLength": 191}, "networkVolume": {"type": "object"},
        "portMappings": {"type": ["object", "null"], "additionalProperties": {"type": "integer"}},
        "ports": {"type": "array", "items": {"type": "string", "pattern": r"^\d+/(http|tcp)$"}},
        "publicIp": {"type": ["string", "null"]}, "savingsPlans": {"type": "array"},
        "slsVersion": {"type": "integer"}, "templateId": {"type": ["string", "null"]}, "vcpuCount": _NUM,
        "volumeEncrypted": {"type": "boolean"}, "volumeInGb": {"type": "integer"}, "volumeMountPath": _STR,
    }
)
RUNPOD = {
    "pod": RUNPOD_POD,
    "pods": {"type": "array", "items": RUNPOD_POD},
    "error": _object({"message": _STR}, ["message"]),
}

# RunPod REST v2 (``api-reference-v2/openapi.json``): Pod = ContainerConfig + the pod's own fields.
RUNPOD_V2_POD = _object(
    {
        "id": _STR, "name": _STR, "image": _STR, "args": _STR, "disk": {"type": "integer"}, "ports": _STRS,
        "env": {"type": "object", "additionalProperties": _STR}, "registry": {"type": ["string", "null"]},
        "status": {"enum": ["PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED"]},
        "actions": {"type": "array", "items": {"enum": ["start", "stop", "restart", "terminate"]}},
        "mounts": {"type": "object"}, "gpu": _object({"id": _STR, "count": {"type": "integer", "minimum": 1}}, ["id"]),
        "cpu": {"type": "object"}, "cloud": {"enum": ["SECURE", "COMMUNITY"]},
        "dataCenterId": {"type": ["string", "null"]}, "cudaVersion": {"type": ["string", "null"]},
        "ssh": _object({"proxy": {"type": ["object", "null"]}, "direct": {"type": ["object", "null"]}},
                       ["proxy", "direct"]),
        "cluster": {"type": "object"}, "template": {"type": ["string", "null"]}, "cost": _NUM,
        "locked": {"type": "boolean"}, "globalNetworking": {"type": "object", "required": ["enabled"]},
        "runtime": {"type": ["object", "null"]}, "createdAt": _STR, "startedAt": {"type": ["string", "null"]},
    },
    ["id", "name", "status", "actions", "image", "args", "disk", "mounts", "ports", "env", "registry", "cloud",
     "dataCenterId", "cudaVersion", "ssh", "template", "cost", "locked", "runtime", "createdAt", "startedAt",
     "globalNetworking"],
)
RUNPOD_V2 = {
    "pod": RUNPOD_V2_POD,
    "pods": _object({"pods": {"type": "array", "items": RUNPOD_V2_POD}}, ["pods"]),
    "problem": {"type": "object", "required": ["title", "status", "detail"],
                "properties": {"title": _STR, "status": {"type": "integer"}, "detail": _STR, "errors": _STRS}},
}
