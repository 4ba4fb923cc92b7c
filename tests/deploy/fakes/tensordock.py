"""A stateful fake of TensorDock's v2 instance API, in the documented shapes
(dashboard.tensordock.com/api/docs/instance-creation and /instance-management; the community OpenAPI
api-evangelist/tensordock; checked with the search tool) plus the live quirks Cloud GPU Shopper logged.

Routes (Bearer auth) under ``/api/v2``: ``POST /instances`` (JSON:API envelope; validated: type
``virtualmachine``, name, image, ``storage_gb`` >= 100, at least one GPU, a location or hostnode,
``ssh_key``) -> ``{"data": {"type": "virtualmachine", "id", "name", "status"}}``; ``GET /instances``
-> ``{"data": [...]}`` (the bare array seen live; setting ``list_shape: "documented"`` answers
``{"data": {"instances": [{type, id, attributes}]}}``); ``GET /instances/{id}`` -> the documented flat
object (``type, id, name, status, ipAddress, portForwards``), 404 once deleted; ``DELETE
/instances/{id}`` -> ``{"data": {"type": "success", "attributes": {"message": ...}}}``; ``POST
/instances/{id}/start|stop``. Status: ``starting`` on the first read, then ``running``; a stop shows
``stopping`` once, then ``stopped``; a lingering delete shows ``deleting``.

Named errors: ``no_capacity`` (400 ``No available nodes found``; a fault ``status: 200`` gives the
error-in-a-200 seen live), ``quota`` (400, balance below the $1 minimum), ``auth`` (401),
``rate_limit`` (429, with the fault's ``retry_after`` as Retry-After when given), ``server_error``
(500), ``invalid`` (400). TensorDock's error body shape is not documented; ``{"error": message}`` is
the fake's choice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cloudarb.deploy.providers.base import LaunchSpec, ProviderConfig
from tests.deploy.fakes.env import ProviderEnv, Sleeps, base_spec
from tests.deploy.fakes.server import FakeApp, FakeServer, Fault, Handler, Request, Response, serving

API_TOKEN = "tensordock-test-token"


class TensorDockFake(FakeApp):
    SETTINGS: dict[str, Any] = {**FakeApp.SETTINGS, "list_shape": "bare"}

    def __init__(self, token: str = API_TOKEN) -> None:
        self.token = token
        self.instances: dict[str, dict[str, Any]] = {}
        self._serial = 0
        super().__init__()

    def routes(self) -> list[tuple[str, str, Handler]]:
        uid = r"([A-Za-z0-9-]+)"
        return [
            ("POST", r"/api/v2/instances", self.create),
            ("GET", r"/api/v2/instances", self.list_all),
            ("GET", rf"/api/v2/instances/{uid}", self.show),
            ("DELETE", rf"/api/v2/instances/{uid}", self.delete),
            ("POST", rf"/api/v2/instances/{uid}/(start|stop)", self.power),
        ]

    def authorized(self, request: Request) -> bool:
        return request.header("authorization") == f"Bearer {self.token}"

    def error_response(self, name: str, fault: Fault) -> Response:
        bodies: dict[str, tuple[int, str]] = {
            "no_capacity": (400, "No available nodes found"),
            "quota": (400, "Insufficient balance: a minimum balance of $1 is required"),
            "auth": (401, "Unauthorized"),
            "rate_limit": (429, "Too many requests: 100 requests per minute"),
            "server_error": (500, "Internal server error"),
            "invalid": (400, "Invalid image"),
        }
        if name not in bodies:
            raise ValueError(f"tensordock fake: unknown error {name!r}")
        status, message = bodies[name]
        headers = {"Retry-After": fault.retry_after} if name == "rate_limit" and fault.retry_after else {}
        return Response(fault.status or status, {"error": message}, headers)

    def not_found(self, request: Request) -> Response:
        return Response(404, {"error": "Not found"})

    def reset_state(self) -> None:
        self.instances.clear()

    def state(self) -> list[dict[str, Any]]:
        return [{**i, "key": i["name"], "live": not i["deleted"]} for i in self.instances.values()]

    # -- views --------------------------------------------------------------------------------------
    def _visible(self, inst: dict[str, Any]) -> bool:
        if not inst["deleted"]:
            return True
        if inst["linger_left"] > 0:
            inst["linger_left"] -= 1
            return True
        return False

    def _status(self, inst: dict[str, Any]) -> str:
        if inst["deleted"]:
            return "deleting"
        reads = inst["reads"]
        inst["reads"] = reads + 1
        if inst["power"] == "stopped":
            return "stopping" if reads == inst["stopped_at_read"] else "stopped"
        return "starting" if reads == 0 else "running"

    def _flat(self, inst: dict[str, Any]) -> dict[str, Any]:
        status = self._status(inst)
        return {
            "type": "virtualmachine",
            "id": inst["id"],
            "name": inst["name"],
            "status": status,
            "ipAddress": inst["ip"],
            "portForwards": [{"internal_port": 22, "external_port": 22}],
            "rateHourly": inst["rate"],
        }

    # -- operations ---------------------------------------------------------------------------------
    def create(self, request: Request, match: re.Match[str]) -> Response:
        problem, attributes = _validate(request.json())
        if problem:
            return Response(400, {"error": problem})

        def action() -> Response:
            self._serial += 1
            instance_id = str(uuid.UUID(int=self._serial))
            gpus = attributes["resources"]["gpus"]
            self.instances[instance_id] = {
                "id": instance_id,
                "name": attributes["name"],
                "image": attributes["image"],
                "resources": attributes["resources"],
                "location_id": attributes.get("location_id"),
                "hostnode_id": attributes.get("hostnode_id"),
                "useDedicatedIp": bool(attributes.get("useDedicatedIp")),
                "ssh_key": attributes["ssh_key"],
                "cloud_init": attributes.get("cloud_init"),
                "ip": f"198.51.100.{self._serial % 250 + 1}",
                "rate": round(0.4 * sum(int(g.get("count", 0)) for g in gpus.values()), 4),
                "power": "running",
                "stopped_at_read": -1,
                "reads": 0,
                "deleted": False,
                "linger_left": 0,
                "delete_calls": 0,
            }
            self.born(instance_id)
            return Response(200, {"data": {"type": "virtualmachine", "id": instance_id,
                                           "name": attributes["name"], "status": "starting"}})

        return self.call("create", action)

    def list_all(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            visible = self.listed(list(self.instances))
            shown = [i for i in self.instances.values() if i["id"] in visible and self._visible(i)]
            if self.settings["list_shape"] == "documented":
                items = []
                for inst in shown:
                    flat = self._flat(inst)
                    items.append({"type": "virtualmachine", "id": flat.pop("id"),
                                  "attributes": {k: v for k, v in flat.items() if k != "type"}})
                return Response(200, {"data": {"instances": items}})
            return Response(200, {"data": [self._flat(inst) for inst in shown]})

        return self.call("list", action)

    def show(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            inst = self.instances.get(match.group(1))
            if inst is None or not self._visible(inst):
                return Response(404, {"error": "Instance not found"})
            return Response(200, self._flat(inst))

        return self.call("get", action)

    def delete(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            inst = self.instances.get(match.group(1))
            if inst is None or (inst["deleted"] and inst["linger_left"] <= 0):
                return Response(404, {"error": "Instance not found"})
            inst["delete_calls"] += 1
            if not inst["deleted"]:
                inst["deleted"] = True
                inst["linger_left"] = int(self.settings["destroy_linger_calls"])
            return Response(200, {"data": {"type": "success",
                                           "attributes": {"message": "Instance deleted successfully"}}})

        return self.call("destroy", action)

    def power(self, request: Request, match: re.Match[str]) -> Response:
        instance_id, verb = match.group(1), match.group(2)

        def action() -> Response:
            inst = self.instances.get(instance_id)
            if inst is None or inst["deleted"]:
                return Response(404, {"error": "Instance not found"})
            if verb == "stop":
                inst["power"], inst["stopped_at_read"] = "stopped", inst["reads"]
            else:
                inst["power"], inst["reads"] = "running", 0
            status = "stopping" if verb == "stop" else "starting"
            return Response(200, {"data": {"type": "instance", "id": instance_id, "attributes": {"status": status}}})

        return self.call(verb, action)


def _validate(document: Any) -> tuple[str, dict[str, Any]]:
    """The first problem TensorDock would name in a create document, or "" and its attributes."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or data.get("type") != "virtualmachine":
        return "data.type must be 'virtualmachine'", {}
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        return "data.attributes is required", {}
    resources = attributes.get("resources")
    for name in ("name", "image", "ssh_key"):
        if not attributes.get(name):
            return f"{name} is required", {}
    if not isinstance(resources, dict):
        return "resources is required", {}
    if int(resources.get("storage_gb") or 0) < 100:
        return "Minimum storage is 100GB", {}
    if int(resources.get("vcpu_count") or 0) < 1 or float(resources.get("ram_gb") or 0) <= 0:
        return "vcpu_count and ram_gb are required", {}
    gpus = resources.get("gpus")
    if not isinstance(gpus, dict) or not gpus or any(
        not isinstance(g, dict) or int(g.get("count") or 0) < 1 for g in gpus.values()
    ):
        return "At least one GPU is required for location-based deployment", {}
    if not attributes.get("location_id") and not attributes.get("hostnode_id"):
        return "location_id or hostnode_id is required", {}
    return "", attributes


# -- fixtures for the provider contract test (one server per session, reset per test) ----------------
@pytest.fixture(scope="session")
def tensordock_server() -> Iterator[FakeServer]:
    with serving(TensorDockFake()) as server:
        yield server


@pytest.fixture()
def tensordock_fake(tensordock_server: FakeServer) -> FakeServer:
    tensordock_server.reset()
    return tensordock_server


def tensordock_config(server: FakeServer, sleeps: Sleeps, **overrides: Any) -> ProviderConfig:
    fields: dict[str, Any] = dict(
        credentials={"api_key": API_TOKEN}, base_url=f"{server.url}/api/v2", timeout_s=1.0, sleep=sleeps
    )
    fields.update(overrides)
    return ProviderConfig(**fields)


def tensordock_spec(key: str, **overrides: Any) -> LaunchSpec:
    return base_spec(key, **{"instance_type": "1x geforcertx4090-pcie-24gb (8 vCPU, 32 GB)",
                             "region": "United States-Texas-Austin", "gpu_model": "RTX 4090",
                             "zone": "hostnode-abc", "price_per_hour": 0.5, **overrides})


@pytest.fixture()
def tensordock_env(tensordock_fake: FakeServer) -> ProviderEnv:
    from cloudarb.deploy.providers import tensordock

    sleeps = Sleeps()
    return ProviderEnv("tensordock", tensordock.provisioner(tensordock_config(tensordock_fake, sleeps)),
                       tensordock_fake, tensordock_spec, sleeps)
