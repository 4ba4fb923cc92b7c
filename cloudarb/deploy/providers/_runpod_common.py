"""What RunPod's v1 and v2 provisioning modules share: the documented GPU type ids, how an offer maps
to one, how an error body's words map to error kinds (v1 ``message``, v2 ``detail``), the checks and
ports of a create, and the calls both versions make alike (``PodsBase``)."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any

import httpx

from cloudarb.deploy.errors import (
    CreateUnknown,
    InvalidLaunch,
    NoCapacity,
    ProviderUnavailable,
    ProvisionError,
    QuotaExceeded,
    Unsupported,
)
from cloudarb.deploy.providers._common import live_owned, live_with_key
from cloudarb.deploy.providers._http import RestClient, error_body
from cloudarb.deploy.providers.base import Capabilities, LaunchSpec, RemoteInstance

KEY = "runpod"
MAX_NAME = 191
"""The longest pod name (and name filter) RunPod documents."""

CAPABILITIES = Capabilities(
    spot=True,
    stop_start=True,
    mark="name",
    idempotency_token=False,
    list_filter=True,
    billing_granularity_s=1,
    billing_minimum_s=0,
    requests_per_s=2.0,
    burst=4,
    listing_lag_s=30.0,
    max_key_length=MAX_NAME,
    reports_rate=True,
)
"""REST v1's; v2 (``runpod_v2.CAPABILITIES``) lacks spot and the name filter."""

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


def launch_parts(spec: LaunchSpec, *, spot: bool = True) -> tuple[str, str, list[str], dict[str, str]]:
    """A create's checks (key length, spot where the API has none, an image) and its parts:
    (gpuTypeId, cloudType, ports with ``22/tcp`` for SSH, env with the line's key as ``PUBLIC_KEY``)."""
    if len(spec.key) > MAX_NAME:
        raise InvalidLaunch(f"runpod: key longer than {MAX_NAME}", provider=KEY)
    if spec.spot and not spot:
        raise Unsupported("runpod: REST v2 has no interruptible (spot) pods", provider=KEY)
    if not spec.image:
        raise InvalidLaunch("runpod: a pod needs a container image (image)", provider=KEY)
    gpu_id, cloud = gpu_selection(spec)
    ports = [f"{int(p)}/http" for p in spec.ports if int(p) != 22]
    ports.append("22/tcp")
    env = dict(spec.env)
    if spec.ssh_public_key:
        env.setdefault("PUBLIC_KEY", spec.ssh_public_key)
    return gpu_id, cloud, ports, env


class PodsBase(ABC):
    """The pod calls both API versions make alike (create's POST, find by name, get, list, delete);
    a version gives its ``_pods`` listing and its ``_instance`` reading of a pod."""

    _rest: RestClient

    @staticmethod
    @abstractmethod
    def _instance(pod: dict[str, Any]) -> RemoteInstance:
        """One pod of the version's answers as a RemoteInstance."""

    @abstractmethod
    def _pods(self, name: str | None) -> list[RemoteInstance]:
        """The account's pods (named ``name`` when given), read the version's way."""

    def _post_pod(self, body: dict[str, Any]) -> RemoteInstance:
        response = self._rest.request("POST", "/pods", json_body=body, creates=True, accept=(200, 201))
        pod = self._rest.json(response, creates=True)
        if not isinstance(pod, dict) or not pod.get("id"):
            raise CreateUnknown("runpod: create answered without a pod id", provider=KEY)
        return self._instance(pod)

    def find(self, key: str) -> RemoteInstance | None:
        return next(iter(live_with_key(self._pods(key), key)), None)

    def get(self, provider_id: str) -> RemoteInstance | None:
        response = self._rest.request("GET", f"/pods/{provider_id}", accept=(200, 404))
        if response.status_code == 404:
            return None
        pod = self._rest.json(response)
        if not isinstance(pod, dict):
            raise ProviderUnavailable("runpod: pod read without a body", provider=KEY)
        return self._instance(pod)

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        return live_owned(self._pods(None), prefix)

    def destroy(self, provider_id: str) -> None:
        self._rest.request("DELETE", f"/pods/{provider_id}", accept=(200, 204, 404))
