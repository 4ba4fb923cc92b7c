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
    """Tables, views and materialized views: on TimescaleDB ``price_ticks_hourly`` is a continuous
    aggregate (a view), elsewhere a table."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        names = set(found.get_table_names()) | set(found.get_view_names())
        if engine.dialect.name == "postgresql":
            names |= set(found.get_materialized_view_names())
        return names - {"alembic_version"}
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
    """A hypertable with TimescaleDB; otherwise a plain table keyed by (series id, time), no other index."""
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
                assert "ix_price_ticks_observed_at" not in idx  # 0004: the primary key serves every query
                pk = inspect(conn).get_pk_constraint("price_ticks")["constrained_columns"]
                assert pk == ["series_id", "observed_at"]
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


def series_ids_roundtrip(url: str) -> None:
    """0004 moves ticks and hourly rows from offer keys to series ids and back, losing nothing."""
    migrate.upgrade(url, "0003")
    engine = create_engine(url)
    ticks = [("kb", "2025-01-01 10:05:00", 2.0, 3), ("kb", "2025-01-01 10:45:00", 1.0, None),
             ("ka", "2025-01-01 11:00:00", 5.0, None)]
    hourly = [("kb", "2025-01-01 10:00:00", 2.0, 2.0, 1.0, 1.0, "2025-01-01 10:05:00", "2025-01-01 10:45:00", 2),
              ("ka", "2025-01-01 11:00:00", 5.0, 5.0, 5.0, 5.0, "2025-01-01 11:00:00", "2025-01-01 11:00:00", 1)]
    tick_sql = "SELECT {k}, observed_at, price_per_hour, available_instances FROM price_ticks {j} ORDER BY 1, 2"
    hourly_sql = "SELECT {k}, bucket, open, high, low, close, ticks FROM price_ticks_hourly {j} ORDER BY 1, 2"
    by_key = {"k": "offer_key", "j": ""}
    try:
        with engine.begin() as conn:
            for k, ts, p, a in ticks:
                conn.execute(text("INSERT INTO price_ticks VALUES (:k, :ts, :p, :a)"),
                             {"k": k, "ts": ts, "p": p, "a": a})
            for k, b, o, h, lo, c, oa, ca, n in hourly:
                conn.execute(text("INSERT INTO price_ticks_hourly (offer_key, bucket, open, high, low, close, "
                                  "open_at, close_at, ticks) VALUES (:k, :b, :o, :h, :lo, :c, :oa, :ca, :n)"),
                             {"k": k, "b": b, "o": o, "h": h, "lo": lo, "c": c, "oa": oa, "ca": ca, "n": n})
        with engine.connect() as conn:
            before_ticks = conn.execute(text(tick_sql.format(**by_key))).all()
            before_hourly = conn.execute(text(hourly_sql.format(**by_key))).all()
        migrate.upgrade(url, "0004")
        joined = {"k": "s.offer_key", "j": "JOIN price_series s ON s.id = series_id"}
        with engine.connect() as conn:
            assert conn.execute(text(tick_sql.format(**joined))).all() == before_ticks
            assert conn.execute(text(hourly_sql.format(**joined))).all() == before_hourly
            series = conn.execute(text("SELECT offer_key, id FROM price_series ORDER BY id")).all()
            assert [k for k, _ in series] == ["ka", "kb"]
            assert "ix_price_ticks_observed_at" not in {i["name"] for i in inspect(conn).get_indexes("price_ticks")}
        migrate.downgrade(url, "0003")
        with engine.connect() as conn:
            assert conn.execute(text(tick_sql.format(**by_key))).all() == before_ticks
            assert conn.execute(text(hourly_sql.format(**by_key))).all() == before_hourly
            assert "ix_price_ticks_observed_at" in {i["name"] for i in inspect(conn).get_indexes("price_ticks")}
        assert "price_series" not in tables(url)
        migrate.upgrade(url)
    finally:
        engine.dispose()


def test_series_ids_migration_on_sqlite(tmp_path: Path) -> None:
    series_ids_roundtrip(f"sqlite:///{tmp_path / 's.db'}")


@pytest.mark.postgres
def test_series_ids_migration_on_postgres(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            if migrate.timescaledb_usable(conn):
                pytest.skip("the hourly rows are a continuous aggregate there (no rows to insert by hand)")
    finally:
        engine.dispose()
    series_ids_roundtrip(pg_url)


def seller_roundtrip(url: str) -> None:
    """0007 adds the seller columns and renames legacy GPU names; downgrade drops and renames back."""
    migrate.upgrade(url, "0006")
    engine = create_engine(url)
    insert = text("INSERT INTO offers (offer_key, provider, region, zone, instance_type, gpu_model, gpu_model_raw, "
                  "gpu_model_known, gpu_count, vram_gb, spot, price_per_hour, price_per_gpu_hour, capacity, "
                  "observed_at, first_seen_at) VALUES (:k, 'gcp', 'r', '', 'i', :m, '', true, 1, 40, false, 1, 1, "
                  "'unknown', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    models = "SELECT offer_key, gpu_model FROM offers ORDER BY 1"
    try:
        with engine.begin() as conn:
            for key, model in (("a", "A100 40GB"), ("b", "V100"), ("c", "H100 SXM")):
                conn.execute(insert, {"k": key, "m": model})
        migrate.upgrade(url, "0007")
        with engine.connect() as conn:
            assert conn.execute(text(models)).all() == [("a", "A100 40GB SXM"), ("b", "V100 16GB"), ("c", "H100 SXM")]
            assert conn.execute(text("SELECT DISTINCT seller FROM offers")).all() == [("",)]
            assert "seller" in {c["name"] for c in inspect(conn).get_columns("allocation_lines")}
        migrate.downgrade(url, "0006")
        with engine.connect() as conn:
            assert conn.execute(text(models)).all() == [("a", "A100 40GB"), ("b", "V100"), ("c", "H100 SXM")]
            assert "seller" not in {c["name"] for c in inspect(conn).get_columns("offers")}
            assert "seller" not in {c["name"] for c in inspect(conn).get_columns("allocation_lines")}
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.HEAD
    finally:
        engine.dispose()


def test_seller_migration_on_sqlite(tmp_path: Path) -> None:
    seller_roundtrip(f"sqlite:///{tmp_path / 'v.db'}")


@pytest.mark.postgres
def test_seller_migration_on_postgres(pg_url: str) -> None:
    seller_roundtrip(pg_url)


def test_launch_success_migration_on_sqlite(tmp_path: Path) -> None:
    """0018 adds allocation_lines.launch_success_probability (nullable: lines stored before it read None);
    downgrade drops it. (The line names no optimization: the test's own connection does not enforce foreign
    keys, the migrations' does, so it goes before the downgrade copies the table.)"""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    migrate.upgrade(url, "0017")
    engine = create_engine(url)
    columns = "SELECT workload_id, launch_success_probability FROM allocation_lines"
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO allocation_lines (optimization_id, workload_id, offer_key, provider, "
                              "seller, region, instance_type, gpu_model, instances, gpus, hourly_cost, spot) "
                              "VALUES ('o', 'w', 'k', 'aws', '', 'r', 'i', 'A100 40GB SXM', 1, 1, 1.5, true)"))
        migrate.upgrade(url, "0018")
        assert migrate.current(url) == "0018" == migrate.HEAD
        with engine.begin() as conn:
            assert conn.execute(text(columns)).all() == [("w", None)]
            conn.execute(text("UPDATE allocation_lines SET launch_success_probability = 0.7"))
            assert conn.execute(text(columns)).all() == [("w", 0.7)]
            conn.execute(text("DELETE FROM allocation_lines"))
        migrate.downgrade(url, "0017")
        with engine.connect() as conn:
            assert "launch_success_probability" not in {c["name"] for c in inspect(conn).get_columns("allocation_lines")}
    finally:
        engine.dispose()
