"""Migrations upgrade from empty and downgrade cleanly, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from cloudarb.db import migrate
from cloudarb.db.models import Base
from tests.support import PG_URL


@pytest.fixture()
def pg_url() -> Iterator[str]:
    name = f"cloudarb_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def roundtrip(url: str) -> None:
    migrate.upgrade(url)
    assert migrate.current(url) is not None
    assert tables(url) >= set(Base.metadata.tables), "every model table exists after upgrade"
    migrate.downgrade(url, "base")
    assert tables(url) == set()
    migrate.upgrade(url)
    assert tables(url) >= set(Base.metadata.tables)


def test_sqlite_roundtrip(tmp_path: Path) -> None:
    roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_roundtrip(pg_url: str) -> None:
    roundtrip(pg_url)


@pytest.mark.postgres
def test_price_ticks_time_series_on_postgres(pg_url: str) -> None:
    """A hypertable with TimescaleDB; otherwise a plain table with its time index."""
    migrate.upgrade(pg_url)
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            has_ts = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname='timescaledb'")).first()
            if has_ts:
                row = conn.execute(text(
                    "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name='price_ticks'"
                )).first()
                assert row is not None
            else:
                idx = {i["name"] for i in inspect(conn).get_indexes("price_ticks")}
                assert "ix_price_ticks_observed_at" in idx
                pk = inspect(conn).get_pk_constraint("price_ticks")["constrained_columns"]
                assert pk == ["offer_key", "observed_at"]
    finally:
        engine.dispose()


def test_models_match_migrations(tmp_path: Path) -> None:
    """Autogenerate finds nothing to add: the migrations describe exactly the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'd.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
