"""TensorDock provisioning (API v2): a VM named with the key, listed and matched by name on our side.

Written against TensorDock's v2 documentation (checked with the search tool:
dashboard.tensordock.com/api/docs/getting-started, /instance-creation, /instance-management) and the
community OpenAPI document (api-evangelist/tensordock ``tensordock-instances-api-openapi.yml``):

- Base ``https://dashboard.tensordock.com/api/v2``, ``Authorization: Bearer <token>``; 100 requests
  per minute per organization (HTTP 429 beyond; the rate-limit headers are honoured when sent).
- Create: ``POST /instances`` with a JSON:API envelope ``{"data": {"type": "virtualmachine",
  "attributes": {name, type, image, resources: {vcpu_count, ram_gb, storage_gb (>= 100), gpus:
  {"<v0Name>": {"count": N}}}, location_id | hostnode_id, useDedicatedIp, port_forwards, ssh_key,
  cloud_init}}}``; minimum balance $1; the answer wraps ``{"data": {"type", "id", "name", "status"}}``.
- List: ``GET /instances``. The documents show ``{"data": {"instances": [...]}}``; Cloud GPU Shopper
  found a bare array under ``data`` in live use (``internal/provider/tensordock/client.go``). Both are
  read, as is a list item with or without an ``attributes`` object. There is no paging and no
  filter: the key is the instance ``name``, matched here (``list_filter`` False).
- Get: ``GET /instances/{id}`` answers the instance (flat in the documents, ``{"data": ...}`` in
  live use) and **404 once it is gone** -- the proof of absence. Delete: ``DELETE /instances/{id}``;
  ``POST /instances/{id}/start`` and ``/stop``.
- States (community OpenAPI): starting running stopping stopped deleting deleted error.
- Quirks from live use (Cloud GPU Shopper): ``ssh_key`` is required but does not install the key,
  so cloud-init writes it for root and ``user``; port forwards were ignored while a dedicated IP
  works, so ``useDedicatedIp`` is asked for (every port of the VM is then reachable, SSH on 22);
  ``/locations`` shows stock that fails with ``No available nodes found`` (-> ``NoCapacity``).
- Placement: ``zone`` is the host node ingestion priced (v0 hostnode id) and goes as ``hostnode_id``;
  without one, ``offer_ref`` is taken as a ``location_id``.
- The image is a TensorDock OS image (``ubuntu2204`` by default: ``ubuntu2404`` lacked NVIDIA
  drivers in Cloud GPU Shopper's bug log). A Docker image in ``LaunchSpec.image`` is started by
  cloud-init with ``docker run --gpus all`` where the OS image ships Docker.
- Billing granularity is not documented in any source found: TensorDock prices per hour and Cloud
  GPU Shopper's notes say both "per-hour while running" and "billed by the minute". The capability
  declares one hour (3600 s granularity and minimum), the conservative reading, until TensorDock
  documents a figure.
"""

from __future__ import annotations

import base64
import logging
import re
import shlex
from datetime import datetime
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
from cloudarb.deploy.providers._common import checked_id, live_owned, live_with_key
from cloudarb.deploy.providers._http import RestClient, error_body
from cloudarb.deploy.providers.base import (
    Capabilities,
    LaunchSpec,
    ProviderConfig,
    Provisioner,
    RemoteInstance,
    RemoteState,
)

logger = logging.getLogger(__name__)

KEY = "tensordock"
DEFAULT_BASE_URL = "https://dashboard.tensordock.com/api/v2"
DEFAULT_OS_IMAGE = "ubuntu2204"
MIN_STORAGE_GB = 100

CAPABILITIES = Capabilities(
    spot=False,
    stop_start=True,
    mark="name",
    idempotency_token=False,
    list_filter=False,
    billing_granularity_s=3600,
    billing_minimum_s=3600,
    requests_per_s=100 / 60,
    burst=5,
    listing_lag_s=60.0,
    max_key_length=64,
    provider_ttl=False,
    reports_rate=False,
)

_STATES: dict[str, RemoteState] = {
    "starting": RemoteState.PENDING,
    "running": RemoteState.RUNNING,
    "stopping": RemoteState.RUNNING,  # still billed until it has stopped
    "stopped": RemoteState.STOPPED,
    "stoppeddisassociated": RemoteState.STOPPED,
    "deleting": RemoteState.TERMINATING,
    "deleted": RemoteState.TERMINATED,
    "error": RemoteState.UNKNOWN,
}
_INSTANCE_TYPE = re.compile(r"^(\d+)x (\S+) \((\d+) vCPU, (\d+) GB\)$")
"""The instance types ingestion writes for TensorDock quotes: ``2x <v0Name> (16 vCPU, 64 GB)``."""
_OS_IMAGE = re.compile(r"^[a-z][a-z0-9._-]*$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_NO_CAPACITY = ("no available nodes", "no available", "not enough", "insufficient capacity", "out of stock")
_NO_MONEY = ("balance", "insufficient funds", "credit")


def remote_state(status: str | None) -> RemoteState:
    """The core's state for a TensorDock status word (case-insensitive)."""
    return _STATES.get((status or "").strip().lower(), RemoteState.UNKNOWN)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("detail") or e.get("title") or e) if isinstance(e, dict) else str(e)
                             for e in errors)
        for name in ("error", "message", "detail", "msg"):
            value = body.get(name)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                return _message(value)
    return body if isinstance(body, str) else ""


def classify(text: str, status: int, creates: bool) -> ProvisionError | None:
    """An error kind from TensorDock's words (status < 500) or None for the helper's defaults."""
    lowered = text.lower()
    if status in (401, 403):
        return None
    if creates and any(words in lowered for words in _NO_CAPACITY):
        return NoCapacity(f"tensordock: {text}", provider=KEY)
    if any(words in lowered for words in _NO_MONEY):
        return QuotaExceeded(f"tensordock: {text}", provider=KEY)
    if creates and 400 <= status < 500:
        return InvalidLaunch(f"tensordock: HTTP {status}: {text or 'refused'}", provider=KEY)
    return None


def translate(response: httpx.Response, creates: bool) -> ProvisionError | None:
    if response.status_code >= 500:
        return None  # the helper's CreateUnknown / ProviderUnavailable
    return classify(_message(error_body(response)) or response.text[:200], response.status_code, creates)


def _flatten(item: dict[str, Any]) -> dict[str, Any]:
    """A JSON:API resource (``{"id", "attributes": {...}}``) or a flat object, as one flat dict."""
    attributes = item.get("attributes")
    flat = {k: v for k, v in item.items() if k != "attributes"}
    if isinstance(attributes, dict):
        flat.update(attributes)
    return flat


def _ssh_port(port_forwards: Any) -> int:
    if isinstance(port_forwards, list):
        for pf in port_forwards:
            if isinstance(pf, dict) and str(pf.get("internal_port")) == "22":
                return int(pf.get("external_port") or 22)
    if isinstance(port_forwards, dict) and "22" in {str(k) for k in port_forwards}:
        value = {str(k): v for k, v in port_forwards.items()}["22"]
        return int(value) if str(value).isdigit() else 22
    return 22


def to_remote(raw: dict[str, Any]) -> RemoteInstance:
    """One TensorDock instance object (any of its observed shapes) as a ``RemoteInstance``."""
    item = _flatten(raw)
    status = str(item.get("status") or "")
    address = item.get("ipAddress") or item.get("ip_address")
    rate = item.get("rateHourly", item.get("price_per_hour"))
    created = item.get("createdAt") or item.get("created_at")
    created_at = None
    if isinstance(created, str):
        try:
            created_at = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            created_at = None
    return RemoteInstance(
        provider_id=str(item["id"]),
        key=str(item.get("name") or ""),
        state=remote_state(status),
        raw_state=status,
        address=str(address) if address else None,
        ssh_port=_ssh_port(item.get("portForwards")) if address else None,
        hourly_rate=float(rate) if isinstance(rate, int | float) else None,
        created_at=created_at,
    )


def _items(body: Any) -> list[dict[str, Any]]:
    """The instance list out of ``[...]``, ``{"data": [...]}`` or ``{"data": {"instances": [...]}}``."""
    data = body.get("data") if isinstance(body, dict) else body
    if isinstance(data, dict):
        nested = data.get("attributes")
        data = data.get("instances", nested.get("instances") if isinstance(nested, dict) else None)
    if not isinstance(data, list):
        raise ProviderUnavailable("tensordock: the instance list has an unknown shape", provider=KEY)
    return [i for i in data if isinstance(i, dict) and "id" in i]


def cloud_init(spec: LaunchSpec, public_key: str) -> dict[str, Any]:
    """Cloud-init that installs the key (``ssh_key`` alone does not), the environment, and a container."""
    key64 = base64.b64encode(public_key.strip().encode()).decode()
    commands = []
    for home, owner in (("/root", "root"), ("/home/user", "user")):
        commands.append(
            f"mkdir -p {home}/.ssh && echo {key64} | base64 -d >> {home}/.ssh/authorized_keys && "
            f"chmod 700 {home}/.ssh && chmod 600 {home}/.ssh/authorized_keys && "
            f"(id {owner} >/dev/null 2>&1 && chown -R {owner} {home}/.ssh || true)"
        )
    for name, value in spec.env.items():
        line = base64.b64encode(f"{name}={value}\n".encode()).decode()
        commands.append(f"echo {line} | base64 -d >> /etc/environment")
    if spec.image and not _OS_IMAGE.match(spec.image):
        run = ["docker", "run", "-d", "--restart", "unless-stopped", "--gpus", "all"]
        for name, value in spec.env.items():
            run += ["-e", f"{name}={value}"]
        for port in spec.ports:
            run += ["-p", f"{int(port)}:{int(port)}"]
        run.append(spec.image)
        commands.append(f"command -v docker >/dev/null && {shlex.join(run)} || true")
    return {"runcmd": commands}


class TensorDockProvisioner:
    """``Provisioner`` for TensorDock's v2 API (see the module docstring)."""

    key = KEY
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig) -> None:
        self._http = RestClient(
            provider=KEY, config=config, default_base_url=DEFAULT_BASE_URL, translate=translate
        )

    def close(self) -> None:
        self._http.close()

    def create_body(self, spec: LaunchSpec) -> dict[str, Any]:
        """The JSON:API create document for ``spec``; refuses what TensorDock would refuse."""
        shape = _INSTANCE_TYPE.match(spec.instance_type.strip())
        if shape is None:
            raise InvalidLaunch(
                f"tensordock: instance_type {spec.instance_type!r} is not '<N>x <gpu> (<V> vCPU, <R> GB)'",
                provider=KEY,
            )
        count, gpu, vcpus, ram = int(shape[1]), shape[2], int(shape[3]), int(shape[4])
        if not spec.ssh_public_key:
            raise InvalidLaunch("tensordock: ssh_public_key is required (TensorDock refuses a VM without one)",
                                provider=KEY)
        os_image = spec.image if spec.image and _OS_IMAGE.match(spec.image) else DEFAULT_OS_IMAGE
        attributes: dict[str, Any] = {
            "name": spec.key,
            "type": "virtualmachine",
            "image": os_image,
            "resources": {
                "vcpu_count": vcpus,
                "ram_gb": ram,
                "storage_gb": max(MIN_STORAGE_GB, int(spec.disk_gb)),
                "gpus": {gpu: {"count": count}},
            },
            "useDedicatedIp": True,
            "ssh_key": spec.ssh_public_key,
            "cloud_init": cloud_init(spec, spec.ssh_public_key),
        }
        if spec.zone:
            attributes["hostnode_id"] = spec.zone  # the host node the quote priced (ingestion's zone)
        elif spec.offer_ref:
            attributes["location_id"] = spec.offer_ref
        else:
            raise InvalidLaunch("tensordock: offer_ref (a location id) or zone (a hostnode id) is required",
                                provider=KEY)
        return {"data": {"type": "virtualmachine", "attributes": attributes}}

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        body = self.create_body(spec)
        response = self._http.request("POST", "/instances", json_body=body, creates=True)
        answer = self._http.json(response, creates=True)
        data = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(data, dict) and data.get("id"):
            item = _flatten(data)
            return RemoteInstance(
                provider_id=str(item["id"]),
                key=spec.key,
                state=remote_state(str(item.get("status") or "starting")),
                raw_state=str(item.get("status") or ""),
            )
        # A 2xx without an id: TensorDock sometimes answers errors with 200 (Cloud GPU Shopper).
        text = _message(answer)
        refused = classify(text, 400, True) if text else None
        if refused is not None:
            raise refused
        raise CreateUnknown("tensordock: the create answer carries no instance id", provider=KEY)

    def _list(self) -> list[RemoteInstance]:
        response = self._http.request("GET", "/instances")
        return [to_remote(item) for item in _items(self._http.json(response))]

    def find(self, key: str) -> RemoteInstance | None:
        matches = live_with_key(self._list(), key)
        if len(matches) > 1:
            logger.warning("tensordock: several instances carry one name", extra={"provider": KEY, "key": key})
        return matches[0] if matches else None

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        return live_owned(self._list(), prefix, require_prefix=True)

    def get(self, provider_id: str) -> RemoteInstance | None:
        response = self._http.request("GET", f"/instances/{_id(provider_id)}", accept=(200, 404))
        if response.status_code == 404:
            return None
        body = self._http.json(response)
        item = body.get("data", body) if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise ProviderUnavailable("tensordock: get answered an unreadable instance", provider=KEY)
        return to_remote({"id": provider_id, **item})

    def destroy(self, provider_id: str) -> None:
        self._http.request("DELETE", f"/instances/{_id(provider_id)}", accept=(200, 202, 204, 404))

    def stop(self, provider_id: str) -> None:
        self._http.request("POST", f"/instances/{_id(provider_id)}/stop")

    def start(self, provider_id: str) -> None:
        self._http.request("POST", f"/instances/{_id(provider_id)}/start")


def _id(provider_id: str) -> str:
    return checked_id(provider_id, _ID, provider=KEY, what="an instance id")


def provisioner(config: ProviderConfig) -> Provisioner:
    """The registry's entry point."""
    return TensorDockProvisioner(config)
