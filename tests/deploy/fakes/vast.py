"""A stateful fake of Vast.ai's provisioning API, in the documented shapes (docs.vast.ai
api-reference: create-instance, show-instance, show-instances-v1, destroy-instance, stop-instance,
rate-limits-and-errors; checked with the search tool).

Routes (Bearer auth): ``PUT /api/v0/asks/{ask}/`` -> ``{"success": true, "new_contract": id}``;
``GET /api/v0/instances/{id}/`` -> ``{"instances": {...}}`` or ``{"instances": null}`` once destroyed;
``GET /api/v1/instances/?select_filters=&limit=&after_token=`` -> ``{"success", "instances_found",
"total_instances", "label_counts", "next_token", "instances"}`` (pages of ``page_size``);
``DELETE /api/v0/instances/{id}/`` -> ``{"success": true, "msg": ...}``; ``PUT
/api/v0/instances/{id}/`` ``{"state": "stopped"|"running"}`` or ``{"label": ...}``; ``POST
/api/v0/instances/{id}/ssh/`` ``{"ssh_key": ...}``.

An instance's ``actual_status`` goes null -> ``loading`` -> ``running`` over its first reads.

Named errors (``error`` of a fault): ``offer_gone`` (400 ``no_such_ask``; a fault ``status`` of 410
gives the other observed status), ``no_capacity`` (400 ``unavailable``: Vast documents no capacity
error of its own; this is the refusal ``cancel_unavail`` asks for, its words are ours), ``quota``
(400 ``insufficient_credit``), ``auth`` (401), ``rate_limit`` (429 ``API requests too frequent``,
never a Retry-After header), ``server_error`` (500), ``invalid`` (400 ``invalid_args``).
Extra settings: ``bid_success_false`` (a create answers ``success: false`` *with* its
``new_contract``, as Cloud GPU Shopper saw for interruptible bids), ``gone_asks`` (ask ids that
answer ``no_such_ask``).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cloudarb.deploy.providers.base import LaunchSpec, ProviderConfig
from tests.deploy.fakes.env import ProviderEnv, Sleeps, base_spec
from tests.deploy.fakes.server import FakeApp, FakeServer, Fault, Handler, Request, Response, serving

API_KEY = "vast-test-key"


class VastFake(FakeApp):
    SETTINGS: dict[str, Any] = {**FakeApp.SETTINGS, "bid_success_false": False, "gone_asks": []}

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.instances: dict[int, dict[str, Any]] = {}
        self._next_id = 7_000_001
        self.queries: list[dict[str, list[str]]] = []
        """The query parameters of every v1 listing call (a test checks what the module sends)."""
        super().__init__()

    # -- harness hooks ------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("PUT", r"/api/v0/asks/(\d+)/?", self.create),
            ("GET", r"/api/v1/instances/?", self.list_v1),
            ("GET", r"/api/v0/instances/(\d+)/?", self.show),
            ("DELETE", r"/api/v0/instances/(\d+)/?", self.destroy),
            ("PUT", r"/api/v0/instances/(\d+)/?", self.manage),
            ("POST", r"/api/v0/instances/(\d+)/ssh/?", self.attach_ssh),
        ]

    def authorized(self, request: Request) -> bool:
        return request.header("authorization") == f"Bearer {self.api_key}"

    def error_response(self, name: str, fault: Fault) -> Response:
        bodies: dict[str, tuple[int, Any]] = {
            "offer_gone": (400, {"success": False, "error": "no_such_ask",
                                 "msg": "Instance type no longer available."}),
            "no_capacity": (400, {"success": False, "error": "unavailable",
                                  "msg": "The machine is unavailable for this request."}),
            "quota": (400, {"success": False, "error": "insufficient_credit",
                            "msg": "Your account lacks credit for this rental."}),
            "auth": (401, {"success": False, "error": "auth_error", "msg": "Invalid user key"}),
            "rate_limit": (429, {"detail": "API requests too frequent: endpoint threshold=1.0"}),
            "server_error": (500, {"success": False, "error": "server_error", "msg": "Internal Server Error"}),
            "invalid": (400, {"success": False, "error": "invalid_args", "msg": "invalid image"}),
        }
        if name not in bodies:
            raise ValueError(f"vast fake: unknown error {name!r}")
        status, body = bodies[name]
        return Response(fault.status or status, body)  # Vast sends no Retry-After: never set here

    def not_found(self, request: Request) -> Response:
        return Response(404, {"success": False, "error": "not_found", "msg": f"no route {request.path}"})

    def reset_state(self) -> None:
        self.instances.clear()
        self.queries.clear()

    def state(self) -> list[dict[str, Any]]:
        return [
            {**i, "id": str(i["id"]), "key": i["label"], "live": not i["destroyed"]}
            for i in sorted(self.instances.values(), key=lambda i: int(i["id"]))
        ]

    # -- views --------------------------------------------------------------------------------------
    def _visible(self, inst: dict[str, Any]) -> bool:
        """Shown to reads: live, or destroyed but still lingering (consumes one lingering read)."""
        if not inst["destroyed"]:
            return True
        if inst["linger_left"] > 0:
            inst["linger_left"] -= 1
            return True
        return False

    def _view(self, inst: dict[str, Any]) -> dict[str, Any]:
        reads = inst["reads"]
        inst["reads"] = reads + 1
        if inst["intended_status"] == "stopped":
            actual: str | None = "stopped"
        else:
            actual = [None, "loading"][reads] if reads < 2 else "running"
        return {
            "id": inst["id"],
            "label": inst["label"],
            "actual_status": actual,
            "intended_status": inst["intended_status"],
            "cur_state": "running" if inst["intended_status"] == "running" else "stopped",
            "next_state": inst["intended_status"],
            "image_uuid": inst["image"],
            "image_runtype": inst["runtype"],
            "extra_env": [[k, v] for k, v in inst["env"].items()],
            "onstart": inst["onstart"],
            "status_msg": f"success, {actual or 'provisioning'}",
            "public_ipaddr": "192.0.2.45",
            "ssh_host": f"ssh{inst['id'] % 9}.vast.example",
            "ssh_port": 10000 + inst["id"] % 50000,
            "machine_id": inst["ask_id"] % 1000,
            "disk_space": inst["disk"],
            "dph_total": inst["dph_total"],
            "start_date": inst["start_date"],
            "is_bid": inst["is_bid"],
        }

    # -- operations ---------------------------------------------------------------------------------
    def create(self, request: Request, match: re.Match[str]) -> Response:
        ask_id = int(match.group(1))
        body = request.json() or {}
        if not isinstance(body, dict) or not body.get("image"):
            return Response(400, {"success": False, "error": "invalid_args", "msg": "image is required"})
        if ask_id in set(self.settings["gone_asks"]):
            return self.error_response("offer_gone", Fault(op="create"))

        def action() -> Response:
            instance_id = self._next_id
            self._next_id += 1
            is_bid = "price" in body
            self.instances[instance_id] = {
                "id": instance_id,
                "ask_id": ask_id,
                "label": str(body.get("label") or ""),
                "image": body["image"],
                "runtype": body.get("runtype", "ssh"),
                "disk": float(body.get("disk", 8)),
                "env": dict(body.get("env") or {}),
                "onstart": body.get("onstart"),
                "intended_status": body.get("target_state", "running"),
                "is_bid": is_bid,
                "dph_total": float(body["price"]) if is_bid else 0.25 + (ask_id % 100) / 100,
                "start_date": time.time(),
                "ssh_keys": [],
                "reads": 0,
                "destroyed": False,
                "linger_left": 0,
                "destroy_calls": 0,
            }
            self.born(str(instance_id))
            if self.settings["bid_success_false"]:
                return Response(200, {"success": False, "new_contract": instance_id,
                                      "error": "bid_failed", "msg": "bid could not be confirmed"})
            return Response(200, {"success": True, "new_contract": instance_id})

        return self.call("create", action)

    def show(self, request: Request, match: re.Match[str]) -> Response:
        instance_id = int(match.group(1))

        def action() -> Response:
            inst = self.instances.get(instance_id)
            if inst is None or not self._visible(inst):
                return Response(200, {"instances": None})
            return Response(200, {"instances": self._view(inst)})

        return self.call("get", action)

    def list_v1(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            self.queries.append(request.query)
        try:
            filters = json.loads(request.param("select_filters") or "{}")
            limit = int(request.param("limit") or 25)
            wanted = _label_filter(filters.get("label"))
            after = _decode_token(request.param("after_token"))
        except (ValueError, KeyError, TypeError):
            return Response(400, {"success": False, "error": "invalid_args", "msg": "bad select_filters"})
        if not 1 <= limit <= 25:
            return Response(400, {"success": False, "error": "invalid_args", "msg": "limit must be 1-25"})

        def action() -> Response:
            candidates = [i for i in sorted(self.instances) if wanted is None or self.instances[i]["label"] in wanted]
            visible = self.listed([str(i) for i in candidates])
            shown = [i for i in candidates if str(i) in visible and self._visible(self.instances[i])]
            rest = [i for i in shown if after is None or i > after]
            size = min(limit, int(self.settings["page_size"]))
            page = rest[:size]
            more = len(rest) > size
            counts: dict[str, int] = {}
            for i in shown:
                counts[self.instances[i]["label"]] = counts.get(self.instances[i]["label"], 0) + 1
            return Response(200, {
                "success": True,
                "instances_found": len(page),
                "total_instances": len(shown),
                "label_counts": counts,
                "next_token": _encode_token(page[-1]) if more and page else None,
                "instances": [self._view(self.instances[i]) for i in page],
            })

        return self.call("list", action)

    def destroy(self, request: Request, match: re.Match[str]) -> Response:
        instance_id = int(match.group(1))

        def action() -> Response:
            inst = self.instances.get(instance_id)
            if inst is None:
                return Response(404, {"success": False, "error": "no_such_instance", "msg": "Instance not found"})
            inst["destroy_calls"] += 1
            if not inst["destroyed"]:
                inst["destroyed"] = True
                inst["linger_left"] = int(self.settings["destroy_linger_calls"])
            return Response(200, {"success": True, "msg": "Instance destroyed successfully"})

        return self.call("destroy", action)

    def manage(self, request: Request, match: re.Match[str]) -> Response:
        instance_id = int(match.group(1))
        body = request.json() or {}

        def action() -> Response:
            inst = self.instances.get(instance_id)
            if inst is None or inst["destroyed"]:
                return Response(404, {"success": False, "error": "no_such_instance", "msg": "Instance not found"})
            if body.get("state") in ("stopped", "running"):
                inst["intended_status"] = body["state"]
            elif "label" in body:
                inst["label"] = str(body["label"])
            else:
                return Response(400, {"success": False, "error": "invalid_args", "msg": "nothing to change"})
            return Response(200, {"success": True, "msg": "ok"})

        op = "stop" if body.get("state") == "stopped" else "start" if body.get("state") == "running" else "label"
        return self.call(op, action)

    def attach_ssh(self, request: Request, match: re.Match[str]) -> Response:
        instance_id = int(match.group(1))
        key = (request.json() or {}).get("ssh_key")

        def action() -> Response:
            inst = self.instances.get(instance_id)
            if inst is None or inst["destroyed"]:
                return Response(404, {"success": False, "error": "no_such_instance", "msg": "Instance not found"})
            if not key:
                return Response(400, {"success": False, "error": "invalid_args", "msg": "ssh_key is required"})
            inst["ssh_keys"].append(key)
            return Response(200, {"success": True, "msg": "SSH key attached"})

        return self.call("ssh", action)


def _label_filter(spec: Any) -> set[str] | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        if "eq" in spec:
            return {str(spec["eq"])}
        if "in" in spec:
            return {str(v) for v in spec["in"]}
    raise ValueError(f"unsupported label filter {spec!r}")


def _encode_token(last_id: int) -> str:
    return base64.b64encode(json.dumps({"values": {"id": last_id}}).encode()).decode()


def _decode_token(token: str | None) -> int | None:
    if not token:
        return None
    return int(json.loads(base64.b64decode(token))["values"]["id"])


# -- fixtures for the provider contract test (one server per session, reset per test) ----------------
@pytest.fixture(scope="session")
def vast_server() -> Iterator[FakeServer]:
    with serving(VastFake()) as server:
        yield server


@pytest.fixture()
def vast_fake(vast_server: FakeServer) -> FakeServer:
    vast_server.reset()
    return vast_server


def vast_config(server: FakeServer, sleeps: Sleeps, **overrides: Any) -> ProviderConfig:
    fields: dict[str, Any] = dict(credentials={"api_key": API_KEY}, base_url=server.url, timeout_s=1.0, sleep=sleeps)
    fields.update(overrides)
    return ProviderConfig(**fields)


def vast_spec(key: str, **overrides: Any) -> LaunchSpec:
    return base_spec(key, **{"instance_type": "1x RTX 4090 #4242", "region": "US", "gpu_model": "RTX 4090",
                             "image": "pytorch/pytorch:latest", "offer_ref": "4242", "price_per_hour": 0.42,
                             **overrides})


@pytest.fixture()
def vast_env(vast_fake: FakeServer) -> ProviderEnv:
    from cloudarb.deploy.providers import vast

    sleeps = Sleeps()
    return ProviderEnv("vast", vast.provisioner(vast_config(vast_fake, sleeps)), vast_fake, vast_spec, sleeps)
