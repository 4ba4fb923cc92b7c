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
interruptible pods). ``provisioner`` picks ``runpod_v2.py`` by default; this v1 module only where the
``deploy_runpod_api`` setting is ``v1`` or the base URL ends in ``/v1``.
"""

from __future__ import annotations

from typing import Any

from cloudarb.deploy.errors import ProviderUnavailable
from cloudarb.deploy.providers._http import RestClient
from cloudarb.deploy.providers._runpod_common import (
    CAPABILITIES,
    GPU_TYPE_IDS,
    KEY,
    PodsBase,
    gpu_selection,
    launch_parts,
    translate,
)
from cloudarb.deploy.providers.base import (
    LaunchSpec,
    ProviderConfig,
    Provisioner,
    RemoteInstance,
    RemoteState,
)
from cloudarb.deploy.providers.runpod_v2 import RunPodV2Provisioner

DEFAULT_BASE_URL = "https://rest.runpod.io/v1"


class RunPodProvisioner(PodsBase):
    """RunPod pods named by their key."""

    key = KEY
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig) -> None:
        self._rest = RestClient(
            provider=KEY, config=config, default_base_url=DEFAULT_BASE_URL, translate=translate
        )

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        gpu_id, cloud, ports, env = launch_parts(spec)
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
        return self._post_pod(body)

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


__all__ = ["CAPABILITIES", "GPU_TYPE_IDS", "KEY", "RunPodProvisioner", "gpu_selection", "provisioner"]


def provisioner(config: ProviderConfig) -> Provisioner:
    """The registry's entry point for key ``runpod``: REST v2 (``runpod_v2.py``; v1 is retired on
    2026-11-15), or v1 where the base URL ends in ``/v1`` or the ``api_version`` option (the
    ``deploy_runpod_api`` setting) is ``v1``. A base URL naming a version decides."""
    base = (config.base_url or "").rstrip("/")
    version = "v1" if base.endswith("/v1") else "v2" if base.endswith("/v2") \
        else config.credentials.get("api_version") or "v2"
    return RunPodProvisioner(config) if version == "v1" else RunPodV2Provisioner(config)
