"""Real HTTP servers on loopback for the hook and Kubernetes-apply tests.

``Receiver`` is a webhook endpoint answering a scripted list of status codes (the last one repeats)
and recording every request. ``FakeKubeAPI`` answers the documented Kubernetes API responses for
the calls a Kubernetes deployment uses: server-side apply ``PATCH`` on Job, Deployment, PodDisruptionBudget and
the Kueue custom resources (``201 Created`` with the object the first time and ``200 OK`` after), JSON merge
patches (RFC 7386, ``Content-Type: application/merge-patch+json``: ``200`` with the merged object, ``404`` when
it does not exist; any other patch type ``415``), reads,
foreground deletes and label-selected paged lists, ``401`` for a wrong bearer token, and ``404`` with a
``Status`` body for a resource the cluster does not serve or an object that does not exist.
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

            do_POST = do_PATCH = do_GET = do_DELETE = _handle

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
    """A loopback API server for the calls CloudArb makes, in the documented shapes.

    Server-side apply (``PATCH``), read (``GET`` an object: 404 ``Status`` when absent), delete
    (``DELETE``: with ``propagationPolicy=Foreground`` the object stays with a ``deletionTimestamp``
    for ``linger`` reads, as while the garbage collector removes its pods, then it is gone; 404 when
    absent), and list across namespaces (``GET /apis/<group>/<version>/<plural>`` with a
    ``labelSelector`` of ``key`` or ``key=value`` terms, paged by ``limit`` and ``continue``).
    ``fail_deletes`` answers the next n DELETEs with 500 (an API server in trouble); ``fail_patches_after``
    answers one apply with 500 after storing its object; ``fail_merges`` answers the next n merge patches
    with 500 (without applying them)."""

    token: str = "test-token"
    served: set[str] = field(default_factory=lambda: {"jobs", "deployments", "poddisruptionbudgets",
                                                      "localqueues", "resourceflavors"})
    linger: int = 0
    fail_deletes: int = 0
    fail_merges: int = 0
    fail_patches_after: int = -1
    """Answer the apply with this number (0 = the first) 500 *after* storing the object: an apply that
    happened, reported as failed (the outcome is unknown to the client)."""

    def __post_init__(self) -> None:
        super().__init__()
        self.objects: dict[str, dict[str, Any]] = {}
        self.deleting: dict[str, int] = {}
        self.created = 0

    @staticmethod
    def _status(code: int, reason: str, message: str) -> tuple[int, Any]:
        return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                      "message": message, "code": code}

    def put(self, path: str, obj: dict[str, Any]) -> None:
        """Store an object as if someone had applied it (a test's way to plant one)."""
        self.created += 1
        self.objects[path] = {**obj, "metadata": {**obj["metadata"], "uid": f"uid-{self.created}"}}

    def _selected(self, obj: dict[str, Any], selector: str) -> bool:
        labels = obj["metadata"].get("labels") or {}
        for term in filter(None, selector.split(",")):
            key, eq, value = term.partition("=")
            if key not in labels or (eq and labels[key] != value):
                return False
        return True

    def _list(self, req: Request, group_version: str, plural: str) -> tuple[int, Any]:
        selector = req.query.get("labelSelector", [""])[0]
        limit = int(req.query.get("limit", ["0"])[0] or 0)
        start = int(req.query.get("continue", ["0"])[0] or 0)
        found = [o for p, o in sorted(self.objects.items())
                 if p.startswith(f"/apis/{group_version}/namespaces/") and p.split("/")[-2] == plural
                 and self._selected(o, selector)]
        page = found[start:start + limit] if limit else found[start:]
        more = bool(limit) and start + limit < len(found)
        return 200, {"kind": "List", "apiVersion": group_version, "items": page,
                     "metadata": {"resourceVersion": "1", "continue": str(start + limit) if more else ""}}

    def answer(self, req: Request) -> tuple[int, Any]:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return self._status(401, "Unauthorized", "Unauthorized")
        parts = req.path.rstrip("/").split("/")
        if req.method == "GET" and "namespaces" not in parts and len(parts) == 5 and parts[-1] in self.served:
            return self._list(req, f"{parts[2]}/{parts[3]}", parts[-1])
        resource = parts[-2]
        if resource not in self.served or req.method not in ("PATCH", "GET", "DELETE"):
            return self._status(404, "NotFound", f"the server could not find the requested resource ({resource})")
        name = parts[-1]
        if req.method == "GET":
            if req.path in self.deleting:
                if self.deleting[req.path] <= 0:
                    self.objects.pop(req.path, None)
                    del self.deleting[req.path]
                else:
                    self.deleting[req.path] -= 1
            if req.path not in self.objects:
                return self._status(404, "NotFound", f'{resource} "{name}" not found')
            return 200, self.objects[req.path]
        if req.method == "DELETE":
            if self.fail_deletes > 0:
                self.fail_deletes -= 1
                return self._status(500, "InternalError", "etcdserver: request timed out")
            if req.path not in self.objects:
                return self._status(404, "NotFound", f'{resource} "{name}" not found')
            foreground = req.query.get("propagationPolicy") == ["Foreground"]
            obj = self.objects[req.path]
            if foreground and self.linger > 0:
                meta = {**obj["metadata"], "deletionTimestamp": "2026-12-07T07:00:00Z",
                        "finalizers": ["foregroundDeletion"]}
                self.objects[req.path] = {**obj, "metadata": meta}
                self.deleting.setdefault(req.path, self.linger)
                return 200, self.objects[req.path]
            del self.objects[req.path]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}
        content_type = req.headers.get("content-type", "").split(";")[0].strip()
        if content_type == "application/merge-patch+json":
            return self._merge(req, resource, name)
        if content_type != "application/apply-patch+yaml":
            return self._status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                                f"accepted media types include: application/apply-patch+yaml, "
                                f"application/merge-patch+json (got {content_type!r})")
        obj = json.loads(req.body)
        created = req.path not in self.objects
        if created:
            self.created += 1
        uid = self.objects[req.path]["metadata"]["uid"] if not created else f"uid-{self.created}"
        stored = {**obj, "metadata": {**obj["metadata"], "uid": uid,
                                      "managedFields": [{"manager": req.query.get("fieldManager", [""])[0],
                                                         "operation": "Apply"}]}}
        self.objects[req.path] = stored
        patches = sum(1 for r in self.requests if r.method == "PATCH")
        if patches - 1 == self.fail_patches_after:
            return self._status(500, "InternalError", "etcdserver: leader changed")
        return (201 if created else 200), stored

    def _merge(self, req: Request, resource: str, name: str) -> tuple[int, Any]:
        if self.fail_merges > 0:
            self.fail_merges -= 1
            return self._status(500, "InternalError", "etcdserver: request timed out")
        if req.path not in self.objects:  # an object being deleted can still be patched
            return self._status(404, "NotFound", f'{resource} "{name}" not found')
        self.objects[req.path] = merged(self.objects[req.path], json.loads(req.body))
        return 200, self.objects[req.path]

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


def merged(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out
