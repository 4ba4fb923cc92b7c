"""What RunPod's v1 and v2 provisioning modules share: the documented GPU type ids, how an offer maps
to one, and how an error body's words map to error kinds (v1 ``message``, v2 ``detail``)."""

from __future__ import annotations

import functools

import httpx

from cloudarb.deploy.errors import InvalidLaunch, NoCapacity, ProvisionError, QuotaExceeded
from cloudarb.deploy.providers._http import error_body
from cloudarb.deploy.providers.base import LaunchSpec

KEY = "runpod"
MAX_NAME = 191
"""The longest pod name (and name filter) RunPod documents."""

# The gpuTypeIds RunPod's v1 OpenAPI document enumerates (PodCreateInput.gpuTypeIds).
GPU_TYPE_IDS: tuple[str, ...] = (
    "NVIDIA GeForce RTX 4090", "NVIDIA A40", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 5090",
    "NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 3090", "NVIDIA RTX A4500", "NVIDIA L40S", "NVIDIA H200",
    "NVIDIA L4", "NVIDIA RTX 6000 Ada Generation", "NVIDIA A100-SXM4-80GB", "NVIDIA RTX 4000 Ada Generation",
    "NVIDIA RTX A6000", "NVIDIA A100 80GB PCIe", "NVIDIA RTX 2000 Ada Generation", "NVIDIA RTX A4000",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition", "NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA L40",
    "NVIDIA B200", "NVIDIA GeForce RTX 3080 Ti", "NVIDIA GeForce RTX 3080", "NVIDIA GeForce RTX 3070",
    "AMD Instinct MI300X OAM", "NVIDIA GeForce RTX 4080 SUPER", "Tesla V100-PCIE-16GB", "Tesla V100-SXM2-32GB",
    "NVIDIA RTX 5000 Ada Generation", "NVIDIA GeForce RTX 4070 Ti", "NVIDIA GeForce RTX 3090 Ti",
    "NVIDIA RTX A2000", "NVIDIA GeForce RTX 4080", "NVIDIA A30", "NVIDIA GeForce RTX 5080",
    "NVIDIA H200 NVL", "Tesla V100-SXM2-16GB", "Tesla T4",
)

_NO_CAPACITY = ("no longer any instances available", "not enough free gpus", "no instances available")
_BALANCE = ("balance", "credits", "insufficient funds")


@functools.cache
def _ids_by_model() -> dict[str, str]:
    """Canonical GPU model -> RunPod gpuTypeId, through the GPU identity table (first id wins)."""
    from ingestion.gpus import resolve_gpu

    table: dict[str, str] = {}
    for gpu_id in GPU_TYPE_IDS:
        match = resolve_gpu(gpu_id, provider=KEY)
        if match.known:
            table.setdefault(match.model, gpu_id)
    return table


def gpu_selection(spec: LaunchSpec) -> tuple[str, str]:
    """(gpuTypeId, cloudType) for an offer: from ``"<id> [secure|community]"`` or the GPU model."""
    name, _, tail = spec.instance_type.partition(" [")
    cloud = "COMMUNITY" if tail.rstrip("]").strip().lower() == "community" else "SECURE"
    if name in GPU_TYPE_IDS:
        return name, cloud
    gpu_id = _ids_by_model().get(spec.gpu_model)
    if gpu_id is None:
        raise InvalidLaunch(
            f"runpod: no RunPod GPU type for {spec.instance_type!r} / {spec.gpu_model!r}", provider=KEY
        )
    return gpu_id, cloud


def message(response: httpx.Response) -> str:
    body = error_body(response)
    if isinstance(body, dict):
        for field in ("message", "error", "detail"):  # v1 message; v2 problem+json detail
            if isinstance(body.get(field), str):
                return str(body[field])
    return response.text[:300] if response.headers.get("content-type", "").startswith("text") else ""


def translate(response: httpx.Response, creates: bool) -> ProvisionError | None:
    text = message(response)
    lowered = text.lower()
    label = f"runpod: {text or 'HTTP ' + str(response.status_code)}"
    if any(m in lowered for m in _NO_CAPACITY):
        return NoCapacity(label, provider=KEY)
    if response.status_code < 500 and any(m in lowered for m in _BALANCE):
        return QuotaExceeded(label, provider=KEY)
    return None
