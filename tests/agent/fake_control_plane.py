"""A small control plane on loopback speaking ``cloudarb.agent.protocol`` (the agent's tests' server).

One-time join tokens, per-node bearer credentials, heartbeats recorded, commands queued per node and
delivered at least once (again at every heartbeat until a final progress state arrives, as a
control plane that never lost a reply would not know it was carried out), progress recorded.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from cloudarb.agent.protocol import (
    API_PREFIX,
    Command,
    CommandProgress,
    Heartbeat,
    HeartbeatReply,
    RegisterRequest,
    RegisterResponse,
)

FINAL = {"running", "stopped", "destroyed", "failed"}


@dataclass
class FakeNode:
    node_id: str
    token: str
    registration: RegisterRequest
    heartbeats: list[Heartbeat] = field(default_factory=list)
    queue: list[Command] = field(default_factory=list)


class FakeControlPlane:
    def __init__(self, *, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.join_tokens: set[str] = set()
        self.nodes: dict[str, FakeNode] = {}
        self.progress: dict[str, list[CommandProgress]] = {}
        self.lock = threading.Lock()
        plane = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None) -> None:
                raw = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    status, body = plane.handle(self.path, self.headers.get("Authorization", ""), raw)
                except ValidationError as exc:
                    status, body = 422, {"detail": str(exc)}
                self._send(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeControlPlane:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- control --------------------------------------------------------------------------------

    def new_join_token(self) -> str:
        token = "join-" + secrets.token_hex(8)
        self.join_tokens.add(token)
        return token

    def send(self, node_id: str, command: Command) -> None:
        with self.lock:
            self.nodes[node_id].queue.append(command)

    def states(self, command_id: str) -> list[str]:
        return [p.state for p in self.progress.get(command_id, [])]

    def last(self, command_id: str) -> CommandProgress:
        return self.progress[command_id][-1]

    def revoke(self, node_id: str) -> None:
        self.nodes[node_id].token = "revoked"

    # -- the protocol ---------------------------------------------------------------------------

    def _node(self, authorization: str) -> FakeNode | None:
        token = authorization.removeprefix("Bearer ").strip()
        return next((n for n in self.nodes.values() if n.token == token and token), None)

    def handle(self, path: str, authorization: str, raw: bytes) -> tuple[int, Any]:
        with self.lock:
            if path == f"{API_PREFIX}/register":
                request = RegisterRequest.model_validate_json(raw)
                if request.join_token not in self.join_tokens:
                    return 401, {"detail": "unknown or used join token"}
                self.join_tokens.discard(request.join_token)
                node = FakeNode("node-" + secrets.token_hex(4), "nt-" + secrets.token_hex(16), request)
                self.nodes[node.node_id] = node
                registered = RegisterResponse(node_id=node.node_id, node_token=node.token,
                                              heartbeat_interval_s=self.interval_s)
                return 200, json.loads(registered.model_dump_json())
            found = self._node(authorization)
            if found is None:
                return 401, {"detail": "bad node credential"}
            node = found
            if path == f"{API_PREFIX}/heartbeat":
                node.heartbeats.append(Heartbeat.model_validate_json(raw))
                node.queue = [c for c in node.queue if not (set(self.states(c.id)) & FINAL)]
                reply = HeartbeatReply(commands=list(node.queue), heartbeat_interval_s=self.interval_s)
                return 200, json.loads(reply.model_dump_json())
            prefix = f"{API_PREFIX}/commands/"
            if path.startswith(prefix) and path.endswith("/progress"):
                command_id = path[len(prefix):-len("/progress")]
                self.progress.setdefault(command_id, []).append(CommandProgress.model_validate_json(raw))
                return 204, None
            return 404, {"detail": "not found"}
