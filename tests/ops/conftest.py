"""Fixtures of the operations tests: a seeded embedded installation (SQLite copy per test)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudarb.api.app import create_app
from cloudarb.context import Context, build_context
from tests.support import make_settings


@pytest.fixture(scope="session")
def ops_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ops-template")
    ctx = build_context(make_settings(database_url=f"sqlite:///{d / 'cloudarb.db'}", data_dir=d))
    ctx.close()
    return d / "cloudarb.db"


@pytest.fixture()
def ops_ctx(tmp_path: Path, ops_template: Path) -> Iterator[Context]:
    db = tmp_path / "cloudarb.db"
    shutil.copy(ops_template, db)
    ctx = build_context(make_settings(database_url=f"sqlite:///{db}", data_dir=tmp_path,
                                      metrics_token="scrape-token-for-tests"))
    yield ctx
    ctx.close()


@pytest.fixture()
def ops_client(ops_ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx=ops_ctx)) as client:
        yield client
