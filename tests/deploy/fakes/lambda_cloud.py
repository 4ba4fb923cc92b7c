"""A stateful fake of Lambda Cloud's API v1, in the shapes of its OpenAPI 1.8.3 document.

Paths under ``/api/v1``: ``GET /instances``, ``GET /instances/{id}``, ``POST
/instance-operations/launch``, ``POST /instance-operations/terminate``, ``GET|POST /ssh-keys``,
``GET /instance-types``. Auth: ``Authorization: Bearer <key>``, ``Basic base64(<key>:)`` or
``Basic <key>`` as the spec's security schemes allow; anything else is 401 ``global/invalid-api-key``.
Launch validates what the spec constrains (region code enum, a known instance type, exactly one
registered SSH key name, name <= 64, tag keys ``^[a-z][a-z0-9-:]+$`` <= 55, values <= 128) and answers
400 ``global/invalid-parameters`` otherwise.

Lifecycle: launched instances are ``booting`` for ``boot_reads`` reads, then ``active``; terminate
answers them ``terminating`` and they disappear (GET 404 ``global/object-does-not-exist``) after
``destroy_linger_calls`` further reads. The spec documents no 429 body: the fake's is a bare message.

Fault operations: ``create``, ``list``, ``get``, ``destroy``, ``ssh_keys``. Named errors:
``no_capacity``, ``quota``, ``auth``, ``account_inactive``, ``invalid``, ``rate_limit``,
``server_error``, ``upstream``.
"""

from __future__ import annotations

import base64
import itertools
import re
import uuid
from typing import Any

from tests.deploy.fakes.server import FakeApp, Fault, Handler, Request, Response

API_KEY = "lambda-test-key"

REGIONS = {
    "europe-central-1": "Germany", "asia-south-1": "India", "australia-east-1": "Australia",
    "me-west-1": "Israel", "asia-northeast-1": "Tokyo, Japan", "asia-northeast-2": "Osaka, Japan",
    "us-east-1": "Virginia, USA", "us-west-2": "Arizona, USA", "us-west-1": "California, USA",
    "us-south-1": "Texas, USA", "us-west-3": "Utah, USA", "us-midwest-1": "Illinois, USA",
    "us-east-2": "Washington DC, USA", "us-south-2": "North Texas, USA", "us-south-3": "Central Texas, USA",
    "us-east-3": "Virginia, USA", "us-midwest-2": "Ohio, USA",
}

# name -> (description, gpu_description, price_cents_per_hour, vcpus, memory_gib, storage_gib, gpus)
INSTANCE_TYPES: dict[str, tuple[str, str, int, int, int, int, int]] = {
    "gpu_1x_a10": ("1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 129, 30, 200, 1400, 1),
    "gpu_1x_a100_sxm4": ("1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 199, 30, 200, 512, 1),
    "gpu_1x_h100_pcie": ("1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 26, 200, 1000, 1),
    "gpu_8x_a100_80gb_sxm4": ("8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 240, 1800, 19500, 8),
    "gpu_8x_h100_sxm5": ("8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 208, 1800, 24780, 8),
}

_TAG_KEY = re.compile(r"^[a-z][a-z0-9-:]+$")
_ERRORS: dict[str, tuple[int, str, str, str | None]] = {
    "no_capacity": (400, "instance-operations/launch/insufficient-capacity",
                    "Not enough capacity to fulfill launch request.", None),
    "quota": (400, "global/quota-exceeded", "Quota exceeded.", "Contact Support to increase your quota."),
    "auth": (401, "global/invalid-api-key", "API key was invalid, expired, or deleted.",
             "Check your API key or create a new one, then try again."),
    "account_inactive": (403, "global/account-inactive", "Your account is inactive.",
                         "Make sure you have verified your email address and have a valid payment method."),
    "invalid": (400, "global/invalid-parameters", "Invalid request data.", None),
    "not_found": (404, "global/object-does-not-exist", "Specified instance does not exist.", None),
    "server_error": (500, "global/internal-error", "An internal server error occurred.",
                     "Try again later. Contact Support if the problem persists."),
    "upstream": (503, "provider/internal-unavailable", "The upstream provider is unavailable.", None),
}


def _error(name: str, message: str | None = None) -> Response:
    status, code, default, suggestion = _ERRORS[name]
    error: dict[str, Any] = {"code": code, "message": message or default}
    if suggestion:
        error["suggestion"] = suggestion
    return Response(status, {"error": error})


class LambdaFake(FakeApp):
    SETTINGS = {**FakeApp.SETTINGS, "boot_reads": 1}

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.instances: dict[str, dict[str, Any]] = {}
        self.ssh_keys: dict[str, dict[str, str]] = {}
        self._reads: dict[str, int] = {}
        self._linger: dict[str, int] = {}
        self._ips = itertools.count(2)
        self.user_data: dict[str, str | None] = {}
        super().__init__()

    def routes(self) -> list[tuple[str, str, Handler]]:
        p = "/api/v1"
        return [
            ("GET", p + "/instances", self.list_instances),
            ("GET", p + r"/instances/(?P<id>[^/]+)", self.get_instance),
            ("POST", p + "/instance-operations/launch", self.launch),
            ("POST", p + "/instance-operations/terminate", self.terminate),
            ("GET", p + "/ssh-keys", self.list_keys),
            ("POST", p + "/ssh-keys", self.add_key),
            ("GET", p + "/instance-types", self.instance_types),
        ]

    def authorized(self, request: Request) -> bool:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return value == self.api_key
        if scheme == "Basic":
            try:
                decoded = base64.b64decode(value).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            return value == self.api_key or decoded == f"{self.api_key}:"
        return False

    def error_response(self, name: str, fault: Fault) -> Response:
        if name == "rate_limit":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return Response(429, {"message": "Too many requests"}, headers)
        return _error(name)

    def reset_state(self) -> None:
        self.instances.clear()
        self.ssh_keys.clear()
        self._reads.clear()
        self._linger.clear()
        self.user_data.clear()

    def state(self) -> list[dict[str, Any]]:
        return [{**i, "user_data": self.user_data.get(i["id"])} for i in self.instances.values()]

    # -- reads -------------------------------------------------------------------------------------
    def _read(self, instance_id: str) -> dict[str, Any] | None:
        """One read of an instance: advances booting -> active and a terminating instance's linger."""
        item = self.instances.get(instance_id)
        if item is None:
            return None
        if item["status"] == "terminating":
            left = self._linger.get(instance_id, 0)
            if left <= 0:
                del self.instances[instance_id]
                return None
            self._linger[instance_id] = left - 1
        elif item["status"] == "booting":
            self._reads[instance_id] = self._reads.get(instance_id, 0) + 1
            if self._reads[instance_id] > int(self.settings["boot_reads"]):
                item["status"] = "active"
        return dict(item)

    def list_instances(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            visible = self.listed(list(self.instances))
            items = [self._read(i) for i in list(self.instances) if i in visible]
            return Response(200, {"data": [i for i in items if i is not None]})

        return self.call("list", action)

    def get_instance(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            item = self._read(match["id"])
            return Response(200, {"data": item}) if item else _error("not_found")

        return self.call("get", action)

    # -- writes ------------------------------------------------------------------------------------
    def launch(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        problem = self._launch_problem(body)
        if problem:
            return _error("invalid", problem)

        def action() -> Response:
            instance_id = uuid.uuid4().hex
            name, region = body["instance_type_name"], body["region_name"]
            desc, gpu_desc, cents, vcpus, mem, storage, gpus = INSTANCE_TYPES[name]
            self.instances[instance_id] = {
                "id": instance_id,
                "name": body.get("name"),
                "ip": f"198.51.100.{next(self._ips) % 250 + 2}",
                "private_ip": f"10.0.2.{len(self.instances) % 250 + 2}",
                "status": "booting",
                "ssh_key_names": list(body["ssh_key_names"]),
                "file_system_names": list(body.get("file_system_names") or []),
                "region": {"name": region, "description": REGIONS[region]},
                "instance_type": {
                    "name": name, "description": desc, "gpu_description": gpu_desc,
                    "price_cents_per_hour": cents,
                    "specs": {"vcpus": vcpus, "memory_gib": mem, "storage_gib": storage, "gpus": gpus},
                },
                "hostname": body.get("hostname") or f"ip-{instance_id[:8]}",
                "actions": {a: {"available": True} for a in ("migrate", "rebuild", "restart", "cold_reboot",
                                                             "terminate")},
                "tags": [dict(t) for t in body.get("tags") or []],
            }
            self.user_data[instance_id] = body.get("user_data")
            self.born(instance_id)
            return Response(200, {"data": {"instance_ids": [instance_id]}})

        return self.call("create", action)

    def _launch_problem(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "The request body must be a JSON object."
        if body.get("region_name") not in REGIONS:
            return "region_name: not a valid region code."
        if body.get("instance_type_name") not in INSTANCE_TYPES:
            return "instance_type_name: unknown instance type."
        keys = body.get("ssh_key_names")
        if not isinstance(keys, list) or len(keys) != 1:
            return "ssh_key_names: exactly one SSH key must be specified."
        if keys[0] not in {k["name"] for k in self.ssh_keys.values()}:
            return f"ssh_key_names: no SSH key named {keys[0]!r}."
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 64):
            return "name: at most 64 characters."
        for tag in body.get("tags") or []:
            if not isinstance(tag, dict) or set(tag) != {"key", "value"}:
                return "tags: each tag is {key, value}."
            if not _TAG_KEY.match(str(tag["key"])) or len(tag["key"]) > 55 or len(str(tag["value"])) > 128:
                return f"tags: invalid tag {tag['key']!r}."
        return None

    def terminate(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        ids = body.get("instance_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids:
            return _error("invalid", "instance_ids: required.")

        def action() -> Response:
            if any(i not in self.instances for i in ids):
                return _error("not_found")
            done = []
            for instance_id in ids:
                item = self.instances[instance_id]
                if item["status"] != "terminating":
                    item["status"] = "terminating"
                    self._linger[instance_id] = int(self.settings["destroy_linger_calls"])
                done.append(dict(item))
            return Response(200, {"data": {"terminated_instances": done}})

        return self.call("destroy", action)

    def list_keys(self, request: Request, match: re.Match[str]) -> Response:
        return self.call("ssh_keys", lambda: Response(200, {"data": list(self.ssh_keys.values())}))

    def add_key(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        name = body.get("name") if isinstance(body, dict) else None
        public = body.get("public_key") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not isinstance(public, str) or not public:
            return _error("invalid", "name and public_key are required.")
        if any(k["name"] == name for k in self.ssh_keys.values()):
            return _error("invalid", "An SSH key with this name already exists.")

        def action() -> Response:
            key_id = uuid.uuid4().hex
            self.ssh_keys[key_id] = {"id": key_id, "name": name, "public_key": public}
            return Response(200, {"data": dict(self.ssh_keys[key_id])})

        return self.call("ssh_keys", action)

    def instance_types(self, request: Request, match: re.Match[str]) -> Response:
        data = {
            name: {
                "instance_type": {
                    "name": name, "description": d, "gpu_description": g, "price_cents_per_hour": c,
                    "specs": {"vcpus": v, "memory_gib": m, "storage_gib": s, "gpus": n},
                },
                "regions_with_capacity_available": [{"name": "us-east-1", "description": REGIONS["us-east-1"]}],
            }
            for name, (d, g, c, v, m, s, n) in INSTANCE_TYPES.items()
        }
        return Response(200, {"data": data})
