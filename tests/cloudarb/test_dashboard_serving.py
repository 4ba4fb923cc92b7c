"""The API process serves the built dashboard at / and its API again under /api (the dashboard's base)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudarb.api.app import create_app
from cloudarb.context import Context
from tests.support import Tenant

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture()
def dist(tmp_path: Path) -> Path:
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_text("<!doctype html><title>CloudArb</title><div id=root></div>")
    (d / "assets" / "index-abc123.js").write_text("console.log('dashboard')")
    (d / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the dashboard")
    return d


@pytest.fixture()
def served(ctx: Context, dist: Path) -> Iterator[TestClient]:
    settings = ctx.settings.model_copy(update={"dashboard_dir": dist})
    with TestClient(create_app(settings, ctx=ctx)) as c:
        yield c


def test_index_and_assets_with_their_caching(served: TestClient) -> None:
    index = served.get("/")
    assert index.status_code == 200 and "<div id=root>" in index.text
    assert index.headers["cache-control"] == "no-cache"
    asset = served.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and "dashboard" in asset.text
    assert "immutable" in asset.headers["cache-control"] and "max-age=31536000" in asset.headers["cache-control"]
    assert served.get("/favicon.svg").headers["cache-control"] == "no-cache"
    assert served.get("/assets/missing.js").status_code == 404


def test_unknown_page_paths_fall_back_to_the_dashboard(served: TestClient) -> None:
    page = served.get("/some/screen", headers=HTML)
    assert page.status_code == 200 and "<div id=root>" in page.text
    # a machine client asking for JSON still gets the API's 404
    missing = served.get("/some/screen", headers={"Accept": "application/json"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_no_path_escapes_the_directory(served: TestClient) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        r = served.get(path)
        assert "outside the dashboard" not in r.text, path


def test_api_answers_at_the_root_and_under_api(served: TestClient, ctx: Context) -> None:
    tenant = Tenant(ctx, "Acme")
    root = served.get("/offers", params={"limit": 1}, headers={**tenant.headers(), **HTML})
    prefixed = served.get("/api/offers", params={"limit": 1}, headers=tenant.headers())
    assert root.status_code == prefixed.status_code == 200
    assert root.json()["total"] == prefixed.json()["total"] > 0
    # API routes keep their answers (a page request for an API path is not the dashboard)
    assert served.get("/offers", headers=HTML).status_code == 401
    assert served.put("/policies/x", headers=tenant.headers()).status_code == 405
    assert served.get("/api/nothing-here").status_code == 404


def test_websocket_under_api(served: TestClient, ctx: Context) -> None:
    tenant = Tenant(ctx, "Acme")
    with served.websocket_connect("/api/ws/prices", headers={"X-API-Key": tenant.keys["viewer"]}) as ws:
        ws.close()


def test_not_served_when_switched_off_or_not_built(ctx: Context, dist: Path, tmp_path: Path) -> None:
    off = ctx.settings.model_copy(update={"dashboard_dir": dist, "serve_dashboard": False})
    with TestClient(create_app(off, ctx=ctx)) as c:
        assert c.get("/", headers=HTML).status_code == 404
        assert c.get("/api/health").status_code == 404
    empty = ctx.settings.model_copy(update={"dashboard_dir": tmp_path / "nothing"})
    with TestClient(create_app(empty, ctx=ctx)) as c:
        assert c.get("/", headers=HTML).status_code == 404
