"""RunPod provisioning through REST API v2 (``runpod/docs`` ``api-reference-v2/openapi.json``, server
``https://api.runpod.io``, ``Authorization: Bearer``), the successor RunPod's documentation names for
REST v1 (v1 is retired on 2026-11-15). The default of ``runpod.provisioner``; v1 only when the
``deploy_runpod_api`` setting is ``v1`` or the base URL ends in ``/v1``.

Differences from v1 that change behaviour here:
- ``POST /v2/pods`` takes a nested body: ``name``, ``image``, ``gpu: {id, count}``, ``cloud``
  SECURE|COMMUNITY, ``disk``, ``ports``, ``env``, ``dataCenterIds``, ``startSsh``. There is no
  interruptible (spot) field, so this module declares ``spot=False``; the core moves a spot line to
  its next offer (``Unsupported``) without calling it, and a spot create here raises the same.
- ``GET /v2/pods`` answers ``{"pods": [...]}`` and has no name filter: the key is matched client
  side (``list_filter=False``). A terminated pod leaves the list; ``GET /v2/pods/{id}`` 404 (or
  status ``TERMINATED``) is the proof of absence. ``DELETE /v2/pods/{id}`` -> 204, 404 = gone.
- Stop/start: ``POST /v2/pods/{id}/action {"action": "stop"|"start"}``.
- Errors are RFC 9457 ``application/problem+json`` ``{title, status, detail, errors[]}``; 429 carries
  ``Retry-After`` (seconds), honoured by the shared helper. The capacity and balance wording is not
  documented: ``detail`` is matched as in v1.
- SSH: the line's public key rides in ``env.PUBLIC_KEY`` (``startSsh`` injects the account's keys
  only when the request sets none), and ``ssh.direct`` gives the address once ``22/tcp`` is mapped.
- The billed rate is ``cost`` (USD per hour; 0 when exited).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cloudarb.deploy.errors import ProviderUnavailable
from cloudarb.deploy.providers._http import RestClient
from cloudarb.deploy.providers._runpod_common import CAPABILITIES as V1_CAPABILITIES
from cloudarb.deploy.providers._runpod_common import KEY, PodsBase, launch_parts, translate
from cloudarb.deploy.providers.base import (
    LaunchSpec,
    ProviderConfig,
    RemoteInstance,
    RemoteState,
)

DEFAULT_BASE_URL = "https://api.runpod.io/v2"

CAPABILITIES = replace(V1_CAPABILITIES, spot=False, list_filter=False)
"""v1's, less spot (no interruptible pods) and the name filter (the key is matched client side)."""

_STATES = {
    "PROVISIONING": RemoteState.PENDING,
    "STARTING": RemoteState.PENDING,
    "RUNNING": RemoteState.RUNNING,
    "EXITED": RemoteState.STOPPED,
    "ERROR": RemoteState.UNKNOWN,
    "TERMINATED": RemoteState.TERMINATED,
}


class RunPodV2Provisioner(PodsBase):
    """RunPod pods named by their key, through REST v2."""

    key = KEY
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig) -> None:
        self._rest = RestClient(provider=KEY, config=config, default_base_url=DEFAULT_BASE_URL, translate=translate)

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        gpu_id, cloud, ports, env = launch_parts(spec, spot=False)
        body: dict[str, Any] = {
            "name": spec.key,
            "image": spec.image,
            "gpu": {"id": gpu_id, "count": spec.gpu_count},
            "cloud": cloud,
            "disk": spec.disk_gb,
            "ports": ports,
            "env": env,
            "startSsh": True,
        }
        if spec.region:
            body["dataCenterIds"] = [spec.region]
        return self._post_pod(body)

    def stop(self, provider_id: str) -> None:
        self._rest.request("POST", f"/pods/{provider_id}/action", json_body={"action": "stop"}, accept=(200, 204))

    def start(self, provider_id: str) -> None:
        self._rest.request("POST", f"/pods/{provider_id}/action", json_body={"action": "start"}, accept=(200, 204))

    def _pods(self, name: str | None) -> list[RemoteInstance]:
        # v2 has no name filter: the caller matches the key (``list_filter=False``)
        response = self._rest.request("GET", "/pods", accept=(200,))
        body = self._rest.json(response)
        pods = body.get("pods") if isinstance(body, dict) else None
        if not isinstance(pods, list):
            raise ProviderUnavailable("runpod: pod list without 'pods'", provider=KEY)
        return [self._instance(p) for p in pods if isinstance(p, dict)]

    @staticmethod
    def _instance(pod: dict[str, Any]) -> RemoteInstance:
        status = str(pod.get("status") or "")
        ssh = pod.get("ssh")
        direct = ssh.get("direct") if isinstance(ssh, dict) else None
        if not isinstance(direct, dict):
            direct = None
        cost = pod.get("cost")
        return RemoteInstance(
            provider_id=str(pod.get("id", "")),
            key=str(pod.get("name") or ""),
            state=_STATES.get(status, RemoteState.UNKNOWN),
            raw_state=status,
            address=str(direct["host"]) if direct and direct.get("host") else None,
            ssh_port=int(direct["port"]) if direct and isinstance(direct.get("port"), int) else None,
            hourly_rate=float(cost) if isinstance(cost, int | float) else None,
        )
