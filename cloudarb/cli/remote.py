"""Talking to a CloudArb server: HTTP calls and the WebSocket progress stream."""

from __future__ import annotations

import json
from typing import Any

import httpx


class RemoteError(Exception):
    """The server answered with an error (its message is shown to the user as is)."""


class Client:
    def __init__(self, server: str, *, api_key: str | None = None, token: str | None = None) -> None:
        self.server = server.rstrip("/")
        self.credential = api_key or token
        headers = {"X-API-Key": api_key} if api_key else {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=30)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.server}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
                raise RemoteError(f"{resp.status_code} {err['code']}: {err['message']}")
            except (ValueError, KeyError, TypeError):
                raise RemoteError(f"{resp.status_code}: {resp.text[:300]}") from None
        return resp.json() if resp.content else None

    def ws_events(self, job_id: str, on_event: Any) -> dict[str, Any] | None:
        """Follow a job's WebSocket stream, calling ``on_event`` for each event; returns the last one."""
        from websockets.exceptions import ConnectionClosedError, InvalidHandshake
        from websockets.sync.client import connect

        url = self.server.replace("http", "ws", 1) + f"/ws/jobs/{job_id}"
        # the credential goes in a header, never in the URL (where access logs would keep it)
        headers = {"Authorization": f"Bearer {self.credential}"} if self.credential else None
        last = None
        try:
            with connect(url, open_timeout=10, additional_headers=headers) as ws:
                for message in ws:
                    last = json.loads(message)
                    on_event(last)
        except ConnectionClosedError as exc:
            received = exc.rcvd
            if received is not None and received.code in (4401, 4404):
                what = "not allowed" if received.code == 4401 else "not found"
                raise RemoteError(f"{received.code} {what}: {received.reason}") from None
            raise RemoteError(f"the event stream ended early: {exc}") from None
        except (OSError, InvalidHandshake) as exc:
            raise RemoteError(f"cannot open the event stream: {exc}") from None
        return last
