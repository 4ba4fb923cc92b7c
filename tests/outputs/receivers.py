"""Real HTTP servers on loopback for the hook and Kubernetes-apply tests.

``Receiver`` is a webhook endpoint answering a scripted list of status codes (the last one repeats)
and recording every request. ``FakeKubeAPI`` answers the documented Kubernetes API responses for
the calls the apply uses: server-side apply ``PATCH`` on Job, Deployment, PodDisruptionBudget and the
Kueue custom resources, ``201 Created`` with the object the first time and ``200 OK`` after, ``401``
for a wrong bearer token, and ``404`` with a ``Status`` body for a resource the cluster does not serve.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class _Server:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                owner.requests.append(req)
                status, body = owner.answer(req)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PATCH = do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, req: Request) -> tuple[int, Any]:
        raise NotImplementedError

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receiver(_Server):
    def __init__(self, *statuses: int) -> None:
        super().__init__()
        self.statuses = list(statuses) or [200]

    def answer(self, req: Request) -> tuple[int, Any]:
        index = min(len(self.requests) - 1, len(self.statuses) - 1)
        return self.statuses[index], {"received": True}

    def __enter__(self) -> Receiver:
        super().__enter__()
        return self


@dataclass
class FakeKubeAPI(_Server):
    token: str = "test-token"
    served: set[str] = field(default_factory=lambda: {"jobs", "deployments", "poddisruptionbudgets",
                                                      "localqueues", "resourceflavors"})

    def __post_init__(self) -> None:
        super().__init__()
        self.objects: dict[str, dict[str, Any]] = {}

    def answer(self, req: Request) -> tuple[int, Any]:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized",
                         "reason": "Unauthorized", "code": 401}
        resource = req.path.rstrip("/").split("/")[-2]
        if req.method != "PATCH" or resource not in self.served:
            return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                         "message": f"the server could not find the requested resource ({resource})", "code": 404}
        obj = json.loads(req.body)
        created = req.path not in self.objects
        stored = {**obj, "metadata": {**obj["metadata"], "uid": f"uid-{len(self.objects) + 1}",
                                      "managedFields": [{"manager": req.query.get("fieldManager", [""])[0],
                                                         "operation": "Apply"}]}}
        self.objects[req.path] = stored
        return (201 if created else 200), stored

    def __enter__(self) -> FakeKubeAPI:
        super().__enter__()
        return self

    def kubeconfig(self) -> str:
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {"token": self.token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        })
