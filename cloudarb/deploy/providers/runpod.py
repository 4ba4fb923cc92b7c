"""RunPod provisioning (key ``runpod``), written against the REST API v1 (``runpod/docs``
``api-reference/openapi.json``, server ``https://rest.runpod.io/v1``, ``Authorization: Bearer``).

Calls: ``POST /pods`` (-> 201 Pod) with ``name`` (= our key; names need not be unique, so the key is
also what we look for), ``imageName``, ``gpuTypeIds``, ``gpuCount``, ``cloudType`` SECURE|COMMUNITY,
``interruptible``, ``dataCenterIds``, ``ports`` (``"8000/http"``, ``"22/tcp"``), ``env``,
``containerDiskInGb``; ``GET /pods?name=`` (not paged); ``GET /pods/{podId}`` (404 = proof of
absence); ``DELETE /pods/{podId}`` (204; 404 = already gone); ``POST /pods/{podId}/stop|start``.
v1 errors are ``{"message": ...}`` (the migration guide); only the message tells no capacity
("There are no longer any instances available ...", the message GraphQL documents) or a balance
refusal from other failures, so it is matched whatever the status.

Known trap (transformerlab/transformerlab-app#2305): ``POST /pods`` can answer 500 after the pod
exists; a 5xx or timeout on create is ``CreateUnknown`` and the core looks the key up by name.
There are no tags: the key is the pod name (<= 191 characters). The billed rate is the pod's
``adjustedCostPerHr`` (savings plans applied), falling back to ``costPerHr``; billing is per second.

Offers map to ``gpuTypeIds`` as the pricing side names them: instance type ``"<gpu id> [secure]"``
or ``"<gpu id> [community]"`` (``ingestion/providers/runpod.py``); otherwise the GPU model is
resolved through the one GPU identity table against the ids RunPod documents.

Note: RunPod's documentation marks REST v1 deprecated (retirement announced for 2026-11-15) in
favour of v2 (``https://api.runpod.io/v2``: nested create body, problem+json errors, Retry-After, no
interruptible pods). This module follows v1 as the deploy design asks; ``runpod_v2.py`` speaks v2 and
``provisioner`` picks it when the ``api_version`` setting is ``v2``.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx

from cloudarb.deploy.errors import (
    CreateUnknown,
    InvalidLaunch,
    NoCapacity,
    ProviderUnavailable,
    ProvisionError,
    QuotaExceeded,
)
from cloudarb.deploy.providers._http import RestClient, error_body
from cloudarb.deploy.providers.base import (
    Capabilities,
    LaunchSpec,
    ProviderConfig,
    Provisioner,
    RemoteInstance,
    RemoteState,
)

KEY = "runpod"
DEFAULT_BASE_URL = "https://rest.runpod.io/v1"
MAX_NAME = 191

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


def _message(response: httpx.Response) -> str:
    body = error_body(response)
    if isinstance(body, dict):
        for field in ("message", "error", "detail"):  # v1 message; v2 problem+json detail
            if isinstance(body.get(field), str):
                return str(body[field])
    return response.text[:300] if response.headers.get("content-type", "").startswith("text") else ""


def _translate(response: httpx.Response, creates: bool) -> ProvisionError | None:
    text = _message(response)
    lowered = text.lower()
    label = f"runpod: {text or 'HTTP ' + str(response.status_code)}"
    if any(m in lowered for m in _NO_CAPACITY):
        return NoCapacity(label, provider=KEY)
    if response.status_code < 500 and any(m in lowered for m in _BALANCE):
        return QuotaExceeded(label, provider=KEY)
    return None


class RunPodProvisioner:
    """RunPod pods named by their key."""

    key = KEY
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig) -> None:
        self._rest = RestClient(
            provider=KEY, config=config, default_base_url=DEFAULT_BASE_URL, translate=_translate
        )

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        if len(spec.key) > MAX_NAME:
            raise InvalidLaunch(f"runpod: key longer than {MAX_NAME}", provider=KEY)
        if not spec.image:
            raise InvalidLaunch("runpod: a pod needs a container image (image)", provider=KEY)
        gpu_id, cloud = gpu_selection(spec)
        ports = [f"{int(p)}/http" for p in spec.ports if int(p) != 22]
        ports.append("22/tcp")
        env = dict(spec.env)
        if spec.ssh_public_key:
            env.setdefault("PUBLIC_KEY", spec.ssh_public_key)
        body: dict[str, Any] = {
            "name": spec.key,
            "imageName": spec.image,
            "gpuTypeIds": [gpu_id],
            "gpuCount": spec.gpu_count,
            "cloudType": cloud,
            "computeType": "GPU",
            "interruptible": spec.spot,
            "containerDiskInGb": spec.disk_gb,
            "ports": ports,
            "env": env,
        }
        if spec.region:
            body["dataCenterIds"] = [spec.region]
        response = self._rest.request("POST", "/pods", json_body=body, creates=True, accept=(200, 201))
        pod = self._rest.json(response, creates=True)
        if not isinstance(pod, dict) or not pod.get("id"):
            raise CreateUnknown("runpod: create answered without a pod id", provider=KEY)
        return self._instance(pod)

    def find(self, key: str) -> RemoteInstance | None:
        for pod in self._pods(key):
            if pod.key == key and pod.state is not RemoteState.TERMINATED:
                return pod
        return None

    def get(self, provider_id: str) -> RemoteInstance | None:
        response = self._rest.request("GET", f"/pods/{provider_id}", accept=(200, 404))
        if response.status_code == 404:
            return None
        pod = self._rest.json(response)
        if not isinstance(pod, dict):
            raise ProviderUnavailable("runpod: pod read without a body", provider=KEY)
        return self._instance(pod)

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        return [p for p in self._pods(None) if p.key.startswith(prefix) and p.state is not RemoteState.TERMINATED]

    def destroy(self, provider_id: str) -> None:
        self._rest.request("DELETE", f"/pods/{provider_id}", accept=(200, 204, 404))

    def stop(self, provider_id: str) -> None:
        self._rest.request("POST", f"/pods/{provider_id}/stop", accept=(200, 204))

    def start(self, provider_id: str) -> None:
        self._rest.request("POST", f"/pods/{provider_id}/start", accept=(200, 204))

    # -- helpers -----------------------------------------------------------------------------------
    def _pods(self, name: str | None) -> list[RemoteInstance]:
        params = {"name": name} if name else None
        response = self._rest.request("GET", "/pods", params=params, accept=(200,))
        pods = self._rest.json(response)
        if not isinstance(pods, list):
            raise ProviderUnavailable("runpod: pod list is not an array", provider=KEY)
        return [self._instance(p) for p in pods if isinstance(p, dict)]

    @staticmethod
    def _instance(pod: dict[str, Any]) -> RemoteInstance:
        desired = str(pod.get("desiredStatus") or "")
        state = {
            "RUNNING": RemoteState.RUNNING if pod.get("publicIp") else RemoteState.PENDING,
            "EXITED": RemoteState.STOPPED,
            "TERMINATED": RemoteState.TERMINATED,
        }.get(desired, RemoteState.UNKNOWN)
        mappings = pod.get("portMappings") or {}
        ssh_port = mappings.get("22") if isinstance(mappings, dict) else None
        rate = pod.get("adjustedCostPerHr")
        if not isinstance(rate, int | float):
            rate = pod.get("costPerHr")
        return RemoteInstance(
            provider_id=str(pod.get("id", "")),
            key=str(pod.get("name") or ""),
            state=state,
            raw_state=desired,
            address=pod.get("publicIp") or None,
            ssh_port=int(ssh_port) if isinstance(ssh_port, int) else None,
            hourly_rate=float(rate) if isinstance(rate, int | float) else None,
        )


def provisioner(config: ProviderConfig) -> Provisioner:
    """The registry's entry point for key ``runpod``: REST v1, or v2 when the ``api_version``
    setting is ``v2`` or the base URL ends in ``/v2`` (``runpod_v2.py``)."""
    if config.credentials.get("api_version") == "v2" or (config.base_url or "").rstrip("/").endswith("/v2"):
        from cloudarb.deploy.providers.runpod_v2 import RunPodV2Provisioner

        return RunPodV2Provisioner(config)
    return RunPodProvisioner(config)
