"""Embedded-mode fixtures: a SQLite file per test (copied from a seeded template), in-process jobs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudarb.api.app import create_app
from cloudarb.context import Context, build_context
from tests.support import Tenant, make_settings


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database holding the bundled snapshot; each test gets a copy."""
    d = tmp_path_factory.mktemp("template")
    settings = make_settings(database_url=f"sqlite:///{d / 'cloudarb.db'}", data_dir=d)
    ctx = build_context(settings)
    ctx.close()
    return d / "cloudarb.db"


@pytest.fixture()
def ctx(tmp_path: Path, seeded_template: Path, request: pytest.FixtureRequest) -> Iterator[Context]:
    db = tmp_path / "cloudarb.db"
    shutil.copy(seeded_template, db)
    overrides = getattr(request, "param", {})
    settings = make_settings(database_url=f"sqlite:///{db}", data_dir=tmp_path, **overrides)
    context = build_context(settings)
    yield context
    context.close()


@pytest.fixture()
def client(ctx: Context) -> Iterator[TestClient]:
    app = create_app(ctx=ctx)
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def tenant(ctx: Context) -> Tenant:
    return Tenant(ctx, "Acme")


@pytest.fixture()
def other_tenant(ctx: Context) -> Tenant:
    return Tenant(ctx, "Globex")
