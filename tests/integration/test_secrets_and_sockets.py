"""Secrets never reach a server's log (access log on), WebSocket credentials travel by header or
subprotocol, refusals are the documented close codes, login is throttled, and WebSocket URLs do not
echo the Host header."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from cloudarb.config import Settings
from cloudarb.context import Context
from tests.integration.conftest import env_for
from tests.reliability.stack import Process, free_port, wait_until
from tests.support import PASSWORD, Tenant, small_request


@pytest.fixture(scope="module")
def tenant(prod_ctx: Context) -> Tenant:
    return Tenant(prod_ctx, f"Secrets {uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def logged_api(prod_ctx: Context, prod_settings: Settings,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    proc = Process([sys.executable, "-m", "uvicorn", "cloudarb.api.app:create_app", "--factory", "--host",
                    "127.0.0.1", "--port", str(port), "--log-level", "info"],
                   env_for(prod_settings) | {"CLOUDARB_LOG_LEVEL": "INFO"}, log)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(up, 90), "the API server did not start"
    yield base, log
    proc.stop()


def ws_close(url: str, **kwargs: object) -> int | None:
    try:
        with connect(url, open_timeout=10, **kwargs) as ws:  # type: ignore[arg-type]
            for _ in ws:
                pass
    except ConnectionClosedError as exc:
        return exc.rcvd.code if exc.rcvd else None
    return 1000


def test_no_secret_in_the_server_log(logged_api: tuple[str, Path], tenant: Tenant) -> None:
    base, log = logged_api
    ws = base.replace("http", "ws", 1)
    key = tenant.keys["editor"]
    with httpx.Client(base_url=base, timeout=30) as c:
        tokens = c.post("/auth/login", json={"email": tenant.email, "password": PASSWORD}).json()
        refreshed = c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json()
        created = c.post("/auth/api-keys", json={"name": "logged", "role": "viewer"},
                         headers={"X-API-Key": tenant.keys["admin"]}).json()
        job = c.post("/optimize", json=small_request(), headers={"X-API-Key": key}).json()
        c.delete(f"/jobs/{job['job_id']}", headers={"X-API-Key": key})  # terminal: its stream ends
        c.get("/offers", params={"token": key})  # a careless client's query string
    secrets = [key, created["key"], tokens["access_token"], tokens["refresh_token"], refreshed["access_token"]]
    url = f"{ws}/ws/jobs/{job['job_id']}"
    # header, subprotocol, and the old query string all authenticate; wrong ones are 4401, unknown 4404
    assert ws_close(url, additional_headers={"X-API-Key": key}) == 1000
    assert ws_close(url, subprotocols=["cloudarb.bearer", tokens["access_token"]]) == 1000
    assert ws_close(f"{url}?token={key}") == 1000
    assert ws_close(url, additional_headers={"X-API-Key": "ca_wrong"}) == 4401
    assert ws_close(url) == 4401
    assert ws_close(f"{ws}/ws/jobs/nope", additional_headers={"X-API-Key": key}) == 4404
    text = log.read_text()
    assert "[redacted]" in text, "the query-string token was logged, redacted"
    leaked = [s[:12] for s in secrets if s in text]
    assert leaked == [], f"secrets in the server log: {leaked}"


def test_login_is_throttled_per_account(logged_api: tuple[str, Path], tenant: Tenant) -> None:
    base, _ = logged_api
    with httpx.Client(base_url=base, timeout=30) as c:
        codes = [c.post("/auth/login", json={"email": tenant.email, "password": f"wrong-{i}"}).status_code
                 for i in range(25)]  # fixed one-minute windows: 25 attempts put 13 in one of at most two
    assert codes[0] == 401 and 429 in codes, str(codes)
    assert set(codes[:codes.index(429)]) == {401}


def test_websocket_url_ignores_the_host_header(logged_api: tuple[str, Path], tenant: Tenant) -> None:
    base, _ = logged_api
    r = httpx.post(f"{base}/optimize", json=small_request(),
                   headers={**tenant.headers(), "Host": "evil.example"})
    assert r.status_code == 202
    assert "evil.example" not in r.json()["websocket_url"]
