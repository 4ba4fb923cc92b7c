"""A stateful fake of RunPod's REST API v2 pods (``runpod/docs`` ``api-reference-v2/openapi.json``).

``POST /v2/pods`` (201 Pod; 422 problem for a body outside CreatePodRequest: no name, no image, an
unknown GPU id, a cloud not SECURE|COMMUNITY, unknown fields), ``GET /v2/pods`` (``{"pods": [...]}``,
no name filter, terminated pods left out), ``GET /v2/pods/{id}`` (404 problem when gone),
``DELETE /v2/pods/{id}`` (204; 404 when missing), ``POST /v2/pods/{id}/action`` (start|stop|...).
Errors are ``application/problem+json`` ``{title, status, detail}``; 429 carries ``Retry-After``
only when the fault gives one. A new pod is ``PROVISIONING`` for ``boot_reads`` reads, then
``RUNNING`` with ``ssh.direct`` set. Fault operations and named errors as in the v1 fake.
"""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from cloudarb.deploy.providers.runpod import GPU_TYPE_IDS
from tests.deploy.fakes.runpod import NO_CAPACITY, PRICES
from tests.deploy.fakes.server import FakeApp, Fault, Handler, Request, Response

API_KEY = "runpod-v2-test-key"
_CREATE_FIELDS = {"name", "image", "gpu", "cpu", "cloud", "dataCenterIds", "globalNetworking", "mounts",
                  "startJupyter", "startSsh", "templateId", "args", "disk", "env", "ports", "registry"}
_PROBLEMS = {
    "no_capacity": (400, "Bad Request", NO_CAPACITY),
    "quota": (400, "Bad Request", "Insufficient balance: deploying this pod needs at least one hour of credits."),
    "auth": (401, "Unauthorized", "missing bearer token"),
    "invalid": (422, "Unprocessable Entity", "Request validation failed."),
    "not_found": (404, "Not Found", "pod not found"),
    "server_error": (500, "Internal Server Error", "internal error"),
    "rate_limit": (429, "Too Many Requests", "rate limit exceeded for the minute window"),
}


def problem(name: str, headers: dict[str, str] | None = None) -> Response:
    status, title, detail = _PROBLEMS[name]
    return Response(status, {"title": title, "status": status, "detail": detail}, headers or {},
                    content_type="application/problem+json")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RunPodV2Fake(FakeApp):
    SETTINGS = {**FakeApp.SETTINGS, "boot_reads": 1}

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.pods: dict[str, dict[str, Any]] = {}
        self._reads: dict[str, int] = {}
        self._deleted: dict[str, int] = {}
        self._ports = itertools.count(20_000)
        super().__init__()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v2/pods", self.create),
            ("GET", "/v2/pods", self.list_pods),
            ("GET", r"/v2/pods/(?P<id>[^/]+)", self.get_pod),
            ("DELETE", r"/v2/pods/(?P<id>[^/]+)", self.delete_pod),
            ("POST", r"/v2/pods/(?P<id>[^/]+)/action", self.action),
        ]

    def authorized(self, request: Request) -> bool:
        return request.header("authorization") == f"Bearer {self.api_key}"

    def error_response(self, name: str, fault: Fault) -> Response:
        return problem(name, {"Retry-After": fault.retry_after} if fault.retry_after is not None else None)

    def reset_state(self) -> None:
        self.pods.clear()
        self._reads.clear()
        self._deleted.clear()

    def state(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.pods.values()]

    def _read(self, pod_id: str) -> dict[str, Any] | None:
        pod = self.pods.get(pod_id)
        if pod is None:
            return None
        if pod_id in self._deleted:
            if self._deleted[pod_id] <= 0:
                del self.pods[pod_id], self._deleted[pod_id]
                return None
            self._deleted[pod_id] -= 1
        elif pod["status"] == "PROVISIONING":
            self._reads[pod_id] = self._reads.get(pod_id, 0) + 1
            if self._reads[pod_id] > int(self.settings["boot_reads"]):
                pod.update(status="RUNNING", startedAt=_now(), actions=["stop", "restart", "terminate"])
                pod["ssh"]["direct"] = {"host": f"203.0.113.{len(self._reads) % 250 + 2}",
                                        "port": next(self._ports), "username": "root",
                                        "command": "ssh root@203.0.113.2"}
        return {**pod, "ssh": dict(pod["ssh"])}

    def list_pods(self, request: Request, match: re.Match[str]) -> Response:
        def act() -> Response:
            visible = self.listed(list(self.pods))
            pods = [self._read(i) for i in list(self.pods) if i in visible]
            return Response(200, {"pods": [p for p in pods if p is not None]})

        return self.call("list", act)

    def get_pod(self, request: Request, match: re.Match[str]) -> Response:
        def act() -> Response:
            pod = self._read(match["id"])
            return Response(200, pod) if pod else problem("not_found")

        return self.call("get", act)

    def create(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        if not self._valid(body):
            return problem("invalid")

        def act() -> Response:
            pod_id = uuid.uuid4().hex[:10]
            gpu = {"id": body["gpu"]["id"], "count": int(body["gpu"].get("count", 1))}
            cloud = body.get("cloud", "SECURE")
            self.pods[pod_id] = {
                "id": pod_id, "name": body["name"], "image": body["image"], "args": body.get("args", ""),
                "disk": int(body.get("disk", 50)), "ports": list(body.get("ports") or []),
                "env": dict(body.get("env") or {}), "registry": None, "status": "PROVISIONING",
                "actions": ["terminate"], "mounts": {}, "gpu": gpu, "cloud": cloud,
                "dataCenterId": (body.get("dataCenterIds") or ["US-TX-3"])[0], "cudaVersion": "12.8",
                "ssh": {"proxy": {"host": "ssh.runpod.io", "port": 22, "username": f"{pod_id}-64411eb2",
                                  "command": f"ssh {pod_id}-64411eb2@ssh.runpod.io"}, "direct": None},
                "template": None, "cost": round(PRICES[cloud] * gpu["count"], 4), "locked": False,
                "globalNetworking": {"enabled": False}, "runtime": None, "createdAt": _now(), "startedAt": None,
            }
            self.born(pod_id)
            return Response(201, dict(self.pods[pod_id]))

        return self.call("create", act)

    @staticmethod
    def _valid(body: Any) -> bool:
        if not isinstance(body, dict) or set(body) - _CREATE_FIELDS:
            return False
        if not isinstance(body.get("name"), str) or not body["name"] or not isinstance(body.get("image"), str):
            return False
        gpu = body.get("gpu")
        if not isinstance(gpu, dict) or gpu.get("id") not in GPU_TYPE_IDS or int(gpu.get("count", 1)) < 1:
            return False
        return body.get("cloud", "SECURE") in ("SECURE", "COMMUNITY")

    def delete_pod(self, request: Request, match: re.Match[str]) -> Response:
        def act() -> Response:
            if match["id"] not in self.pods:
                return problem("not_found")
            self._deleted.setdefault(match["id"], int(self.settings["destroy_linger_calls"]))
            return Response(204)

        return self.call("destroy", act)

    def action(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        name = body.get("action") if isinstance(body, dict) else None
        if name not in ("start", "stop", "restart", "terminate"):
            return problem("invalid")

        def act() -> Response:
            pod = self.pods.get(match["id"])
            if pod is None or match["id"] in self._deleted:
                return problem("not_found")
            if name == "terminate":
                self._deleted.setdefault(match["id"], 0)
                return Response(204)
            pod["status"] = "EXITED" if name == "stop" else "RUNNING"
            pod["cost"] = 0.0 if name == "stop" else round(PRICES[pod["cloud"]] * pod["gpu"]["count"], 4)
            return Response(200, dict(pod))

        return self.call(str(name), act)
