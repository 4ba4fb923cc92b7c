"""Migration 0010 describes exactly the nodes tables, on SQLite and PostgreSQL, and downgrades cleanly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import cloudarb.db.models_nodes as models_nodes
from cloudarb.db import migrate
from cloudarb.db.models import Base
from tests.support import PG_URL

NODE_TABLES = {"nodes", "node_join_tokens", "node_gpus", "node_placements", "node_gpu_assignments", "node_commands",
               "node_templates", "node_template_policies"}


def _diff_for_nodes(url: str) -> list[object]:
    assert models_nodes.Node.__tablename__ == "nodes"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()

    def table_of(entry: object) -> str | None:
        item = entry[0] if isinstance(entry, list) else entry
        for part in item[1:] if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else None
            table = getattr(part, "table", None)
            if table is not None and getattr(table, "name", None) in NODE_TABLES:
                return str(table.name)
            if name in NODE_TABLES:
                return str(name)
            if isinstance(part, str) and part in NODE_TABLES:
                return part
        return None

    return [d for d in diff if table_of(d) is not None]


def test_models_match_migration_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    migrate.upgrade(url)
    assert _diff_for_nodes(url) == []
    migrate.downgrade(url, "0009")
    engine = create_engine(url)
    assert NODE_TABLES.isdisjoint(inspect(engine).get_table_names())
    engine.dispose()


@pytest.fixture()
def pg_url() -> object:
    name = f"cloudarb_nodes_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_models_match_migration_on_postgres(pg_url: str) -> None:
    migrate.upgrade(pg_url)
    assert _diff_for_nodes(pg_url) == []
    migrate.downgrade(pg_url, "0009")
    migrate.upgrade(pg_url)


def test_0013_keeps_catalog_templates_and_drops_own_ones_on_downgrade(tmp_path: Path) -> None:
    _template_rows_survive(f"sqlite:///{tmp_path / 't.db'}")


@pytest.mark.postgres
def test_0013_template_rows_on_postgres(pg_url: str) -> None:
    _template_rows_survive(pg_url)


def _template_rows_survive(url: str) -> None:
    migrate.upgrade(url, "0012")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO node_templates (name, title, image, ports, command, env, health_check, "
                          "organization_ids, builtin, created_at) VALUES ('lab', 'Lab', 'reg/lab:1', '[]', NULL, '{}', "
                          "'{}', '[\"org1\"]', false, '2026-12-01 00:00:00')"))
    migrate.upgrade(url)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT id, scope, organization_id, name, image, organization_ids, description "
                                "FROM node_templates")).one()
        assert row[0] and tuple(row[1:5]) == ("", None, "lab", "reg/lab:1") and row[6] == ""
        assert row[5] in ('["org1"]', ["org1"])  # JSON text on SQLite, JSONB on PostgreSQL
        conn.execute(text("INSERT INTO organizations (id, name, created_at) VALUES ('org1', 'Org', "
                          "'2026-12-01 00:00:00')"))
        for scope in ("", "org1"):  # names are unique per owner: an organization may reuse a catalog name
            conn.execute(text("INSERT INTO node_templates (id, scope, organization_id, name, title, description, "
                              "image, ports, env, health_check, builtin, created_by, created_at, updated_at) VALUES "
                              f"('{scope or 'cat'}x', '{scope}', {repr(scope) if scope else 'NULL'}, 'dup', '', '', "
                              "'reg/d:1', '[]', '{}', '{}', false, '', '2026-12-01', '2026-12-01')"))
        assert conn.execute(text("SELECT count(*) FROM node_templates WHERE name = 'dup'")).scalar() == 2
    migrate.downgrade(url, "0012")
    with engine.begin() as conn:
        assert sorted(conn.execute(text("SELECT name FROM node_templates")).scalars()) == ["dup", "lab"]
    engine.dispose()
