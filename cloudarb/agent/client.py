"""The agent's side of the wire contract (``cloudarb.agent.protocol``): register, heartbeat, progress.

Plain httpx; the node's own credential goes in ``Authorization: Bearer``. A 401/403 is an
``AuthRejected`` (the join token or the node credential is no longer valid: retrying cannot help);
other failures are ``ControlPlaneError`` and the loop retries them at the next heartbeat.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from cloudarb.agent.protocol import (
    API_PREFIX,
    CommandProgress,
    Heartbeat,
    HeartbeatReply,
    RegisterRequest,
    RegisterResponse,
)


class ControlPlaneError(RuntimeError):
    """The control plane could not be reached or answered with an error."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthRejected(ControlPlaneError):
    """The control plane refused the join token or the node credential."""


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("detail"):
            return str(body["detail"])
    return str(body)[:300]


class ControlPlaneClient:
    """Calls ``/agent/v1`` on the control plane at ``server``."""

    def __init__(self, server: str, *, node_token: str | None = None, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self.node_token = node_token
        self._http = httpx.Client(base_url=self.server + API_PREFIX, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: BaseModel, *, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.node_token}"} if auth and self.node_token else {}
        try:
            response = self._http.post(path, content=body.model_dump_json(), headers={
                **headers, "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise ControlPlaneError(f"control plane {self.server} not reachable: {exc}") from exc
        if response.status_code in (401, 403):
            raise AuthRejected(f"{path}: {_detail(response)}", status=response.status_code)
        if response.status_code >= 300:
            raise ControlPlaneError(f"{path}: HTTP {response.status_code}: {_detail(response)}",
                                    status=response.status_code)
        return response

    def register(self, request: RegisterRequest) -> RegisterResponse:
        response = self._post("/register", request, auth=False)
        try:
            registered = RegisterResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise ControlPlaneError(f"/register answered an unexpected body: {exc}") from exc
        self.node_token = registered.node_token
        return registered

    def heartbeat(self, heartbeat: Heartbeat) -> HeartbeatReply:
        response = self._post("/heartbeat", heartbeat)
        try:
            return HeartbeatReply.model_validate_json(response.content)
        except ValidationError as exc:
            raise ControlPlaneError(f"/heartbeat answered an unexpected body: {exc}") from exc

    def progress(self, command_id: str, progress: CommandProgress) -> None:
        self._post(f"/commands/{command_id}/progress", progress)
