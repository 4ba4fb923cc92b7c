"""Nodes fixtures: an embedded database per test (migrated once, copied), an organization, a node."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudarb.api.app import create_app
from cloudarb.config import NodesSettings
from cloudarb.context import Context, build_context
from tests.nodes.helpers import register_node
from tests.support import Tenant, make_settings


@pytest.fixture(scope="session")
def nodes_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("nodes-template")
    ctx = build_context(make_settings(database_url=f"sqlite:///{d / 'cloudarb.db'}", data_dir=d, seed_snapshot=False))
    ctx.close()
    return d / "cloudarb.db"


@pytest.fixture()
def ctx(tmp_path: Path, nodes_template: Path) -> Iterator[Context]:
    db = tmp_path / "cloudarb.db"
    shutil.copy(nodes_template, db)
    context = build_context(make_settings(database_url=f"sqlite:///{db}", data_dir=tmp_path, seed_snapshot=False,
                                          node_heartbeat_interval_s=1.0))
    yield context
    context.close()


@pytest.fixture()
def settings(ctx: Context) -> NodesSettings:
    return ctx.settings.section(NodesSettings)


@pytest.fixture()
def tenant(ctx: Context) -> Tenant:
    return Tenant(ctx, "Acme")


@pytest.fixture()
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx=ctx, scheduler=False)) as c:
        yield c


@pytest.fixture()
def node_id(ctx: Context, tenant: Tenant) -> str:
    return register_node(ctx, tenant.org_id, name="box1", gpus=2).node_id


@pytest.fixture()
def other(ctx: Context) -> Tenant:
    return Tenant(ctx, "Globex")
