"""A stateful fake of RunPod's REST API v1 (``runpod/docs`` ``api-reference/openapi.json``).

Paths under ``/v1``: ``POST /pods`` (201 Pod; 400 "Invalid input." for a body outside
PodCreateInput: unknown gpuTypeIds, cloudType not SECURE|COMMUNITY, name over 191, no imageName),
``GET /pods`` (bare array, not paged; ``name``, ``desiredStatus`` and ``id`` filters), ``GET
/pods/{podId}`` (404 ``{"message": "Pod not found"}``), ``DELETE /pods/{podId}`` (204, 404 when
missing), ``POST /pods/{podId}/stop|start``. Auth: ``Authorization: Bearer <key>``, else 401
``{"message": ...}`` (UnauthorizedError). Errors are ``{"message": ...}`` as the v1 docs show.

A new pod is ``desiredStatus: RUNNING`` with no ``publicIp``/``portMappings`` for ``boot_reads``
reads, then gets an address. A deleted pod is gone (404) after ``destroy_linger_calls`` reads during
which it still shows as RUNNING (the delete was accepted but has not taken effect).

Fault operations: ``create``, ``list``, ``get``, ``destroy``, ``stop``, ``start``. Named errors:
``no_capacity`` (the message RunPod's GraphQL API documents for it), ``quota`` (a balance refusal:
RunPod requires one hour of credits to deploy; the exact v1 wording is not documented),
``auth``, ``rate_limit``, ``server_error``.
"""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from cloudarb.deploy.providers.runpod import GPU_TYPE_IDS
from tests.deploy.fakes.server import FakeApp, Fault, Handler, Request, Response

API_KEY = "runpod-test-key"
NO_CAPACITY = ("There are no longer any instances available with the requested specifications. "
               "Please refresh and try again.")
PRICES = {"SECURE": 0.69, "COMMUNITY": 0.44}
_MESSAGES = {
    "no_capacity": (400, NO_CAPACITY),
    "quota": (400, "Insufficient balance: deploying this pod needs at least one hour of credits."),
    "auth": (401, "Unauthorized"),
    "invalid": (400, "Invalid input."),
    "not_found": (404, "Pod not found"),
    "server_error": (500, "Something went wrong. Please try again later or contact support."),
}


def _message(name: str, text: str | None = None) -> Response:
    status, default = _MESSAGES[name]
    return Response(status, {"message": text or default})


class RunPodFake(FakeApp):
    SETTINGS = {**FakeApp.SETTINGS, "boot_reads": 1}

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.pods: dict[str, dict[str, Any]] = {}
        self._reads: dict[str, int] = {}
        self._deleted: dict[str, int] = {}
        self._ports = itertools.count(10_000)
        super().__init__()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/pods", self.create),
            ("GET", "/v1/pods", self.list_pods),
            ("GET", r"/v1/pods/(?P<id>[^/]+)", self.get_pod),
            ("DELETE", r"/v1/pods/(?P<id>[^/]+)", self.delete_pod),
            ("POST", r"/v1/pods/(?P<id>[^/]+)/(?P<action>stop|start)", self.stop_start),
        ]

    def authorized(self, request: Request) -> bool:
        return request.header("authorization") == f"Bearer {self.api_key}"

    def error_response(self, name: str, fault: Fault) -> Response:
        if name == "rate_limit":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return Response(429, {"message": "Too many requests"}, headers)
        return _message(name)

    def reset_state(self) -> None:
        self.pods.clear()
        self._reads.clear()
        self._deleted.clear()

    def state(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.pods.values()]

    # -- reads -------------------------------------------------------------------------------------
    def _read(self, pod_id: str) -> dict[str, Any] | None:
        pod = self.pods.get(pod_id)
        if pod is None:
            return None
        if pod_id in self._deleted:
            if self._deleted[pod_id] <= 0:
                del self.pods[pod_id]
                del self._deleted[pod_id]
                return None
            self._deleted[pod_id] -= 1
        elif pod["desiredStatus"] == "RUNNING" and pod["publicIp"] is None:
            self._reads[pod_id] = self._reads.get(pod_id, 0) + 1
            if self._reads[pod_id] > int(self.settings["boot_reads"]):
                pod["publicIp"] = f"203.0.113.{len(self._reads) % 250 + 2}"
                pod["portMappings"] = {p.split("/")[0]: next(self._ports) for p in pod["ports"]
                                       if p.endswith("/tcp")}
                pod["lastStartedAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return dict(pod)

    def list_pods(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            visible = self.listed(list(self.pods))
            out = []
            for pod_id in list(self.pods):
                if pod_id not in visible:
                    continue
                pod = self._read(pod_id)
                if pod is None:
                    continue
                if request.param("name") not in (None, pod["name"]):
                    continue
                if request.param("desiredStatus") not in (None, pod["desiredStatus"]):
                    continue
                if request.param("id") not in (None, pod["id"]):
                    continue
                out.append(pod)
            return Response(200, out)

        return self.call("list", action)

    def get_pod(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            pod = self._read(match["id"])
            return Response(200, pod) if pod else _message("not_found")

        return self.call("get", action)

    # -- writes ------------------------------------------------------------------------------------
    def create(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        if not self._valid(body):
            return _message("invalid")

        def action() -> Response:
            pod_id = uuid.uuid4().hex[:14]
            cloud = body.get("cloudType", "SECURE")
            count = int(body.get("gpuCount", 1))
            rate = round(PRICES[cloud] * count * (0.6 if body.get("interruptible") else 1.0), 4)
            gpu_id = body["gpuTypeIds"][0]
            self.pods[pod_id] = {
                "id": pod_id,
                "name": body.get("name", "my pod"),
                "image": body["imageName"],
                "desiredStatus": "RUNNING",
                "costPerHr": rate,
                "adjustedCostPerHr": rate,
                "interruptible": bool(body.get("interruptible", False)),
                "gpu": {"id": gpu_id, "count": count, "displayName": gpu_id.removeprefix("NVIDIA ")},
                "machineId": uuid.uuid4().hex[:12],
                "containerDiskInGb": int(body.get("containerDiskInGb", 50)),
                "volumeInGb": int(body.get("volumeInGb", 20)),
                "memoryInGb": 62,
                "vcpuCount": 16,
                "env": dict(body.get("env") or {}),
                "ports": list(body.get("ports") or ["8888/http", "22/tcp"]),
                "portMappings": {},
                "publicIp": None,
                "lastStatusChange": "Rented by User",
                "locked": False,
            }
            self.born(pod_id)
            return Response(201, dict(self.pods[pod_id]))

        return self.call("create", action)

    @staticmethod
    def _valid(body: Any) -> bool:
        if not isinstance(body, dict) or not isinstance(body.get("imageName"), str):
            return False
        gpus = body.get("gpuTypeIds")
        if not isinstance(gpus, list) or not gpus or any(g not in GPU_TYPE_IDS for g in gpus):
            return False
        if body.get("cloudType", "SECURE") not in ("SECURE", "COMMUNITY"):
            return False
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 191:
            return False
        ports = body.get("ports", [])
        return isinstance(ports, list) and all(re.fullmatch(r"\d+/(http|tcp)", str(p)) for p in ports)

    def delete_pod(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            pod_id = match["id"]
            if pod_id not in self.pods:
                return _message("not_found")
            self._deleted.setdefault(pod_id, int(self.settings["destroy_linger_calls"]))
            return Response(204)

        return self.call("destroy", action)

    def stop_start(self, request: Request, match: re.Match[str]) -> Response:
        def action() -> Response:
            pod = self.pods.get(match["id"])
            if pod is None or match["id"] in self._deleted:
                return Response(400, {"message": "Invalid Pod ID."})
            pod["desiredStatus"] = "EXITED" if match["action"] == "stop" else "RUNNING"
            return Response(200, dict(pod))

        return self.call(match["action"], action)
