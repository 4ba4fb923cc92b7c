"""Catalog import and seeding keep the hourly price table current, so `/prices/history` answers with
hourly points after an import, on SQLite and PostgreSQL; stores imported into before that are repaired."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from cloudarb.api.app import create_app
from cloudarb.context import Context, build_context
from cloudarb.db.models import PriceSeries, PriceTick, PriceTickHourly
from cloudarb.ingest import catalog_import, hourly, timescale
from ingestion.catalog_result import CatalogLoad
from tests.cloudarb.test_migrations import pg_url  # noqa: F401
from tests.support import Tenant, make_settings

ROOT = Path(__file__).resolve().parents[2]
HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region"
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _csv(path: Path, price: float) -> Path:
    path.write_text(f"{HEADER}\ngpu_8x_h100_sxm5,H100,8,208,1800,{price:.2f},,us-east-1\n"
                    f"gpu_1x_a100_sxm4,A100-80GB,1,30,200,1.29,,us-east-1\n")
    return path


def _import(ctx: Context, path: Path, at: datetime) -> CatalogLoad:
    loaded = catalog_import.load(path, fmt="skypilot", provider="lambda", observed_at=at)
    with ctx.db.session() as session:
        assert catalog_import.store(session, loaded) == 2
    return loaded


def _h100_key(loaded: CatalogLoad) -> str:
    return next(q.offer_key for q in loaded.offers if q.gpu_count == 8)


def _points(client: TestClient, tenant: Tenant, key: str, bucket: str = "hour") -> list[dict[str, Any]]:
    r = client.get("/prices/history", headers=tenant.headers("viewer"), params={
        "offer_key": key, "bucket": bucket, "start": (T0 - timedelta(hours=1)).isoformat(),
        "end": (T0 + timedelta(hours=6)).isoformat()})
    assert r.status_code == 200, r.text
    (series,) = r.json()["series"]
    points: list[dict[str, Any]] = series["points"]
    return points


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    """A fresh store (no snapshot) on each database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cloudarb.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    context = build_context(make_settings(database_url=url, data_dir=tmp_path, seed_snapshot=False))
    yield context
    context.close()


@pytest.fixture()
def api(db_ctx: Context) -> Iterator[tuple[TestClient, Tenant]]:
    tenant = Tenant(db_ctx, "Acme")
    with TestClient(create_app(ctx=db_ctx)) as c:
        yield c, tenant


def test_imported_catalogs_have_hourly_history(db_ctx: Context, api: tuple[TestClient, Tenant],
                                               tmp_path: Path) -> None:
    """Three imports of the 8x H100 box: $20 at 10:00, $22 at 10:20, $21 at 12:00. Hourly: 10:00 opens
    20, closes 22 (2 ticks), 12:00 is 21; daily: one bucket of 3 ticks, low 20, high 22. Importing the
    10:20 file again adds nothing."""
    client, tenant = api
    loaded = _import(db_ctx, _csv(tmp_path / "a.csv", 20.0), T0)
    _import(db_ctx, _csv(tmp_path / "b.csv", 22.0), T0 + timedelta(minutes=20))
    _import(db_ctx, _csv(tmp_path / "c.csv", 21.0), T0 + timedelta(hours=2))
    _import(db_ctx, tmp_path / "b.csv", T0 + timedelta(minutes=20))
    key = _h100_key(loaded)
    points = _points(client, tenant, key)
    assert [(p["t"], p["open"], p["high"], p["low"], p["close"], p["ticks"]) for p in points] == [
        ("2026-11-02T10:00:00Z", 20.0, 22.0, 20.0, 22.0, 2),
        ("2026-11-02T12:00:00Z", 21.0, 21.0, 21.0, 21.0, 1),
    ]
    (day,) = _points(client, tenant, key, "day")
    assert (day["open"], day["high"], day["low"], day["close"], day["ticks"]) == (20.0, 22.0, 20.0, 21.0, 3)
    raw = _points(client, tenant, key, "raw")
    assert [p["close"] for p in raw] == [20.0, 22.0, 21.0]


def test_an_import_repairs_series_stored_without_hourly_rows(db_ctx: Context, api: tuple[TestClient, Tenant],
                                                             tmp_path: Path) -> None:
    """A store whose imports wrote ticks without hourly rows (as before): importing again rebuilds the
    hourly rows of the load's series from every stored tick, not only the new ones."""
    with db_ctx.db.session() as session:
        if timescale.uses_timescale(session):
            pytest.skip("a continuous aggregate derives its rows from the ticks: there is no such store to repair")
    client, tenant = api
    loaded = _import(db_ctx, _csv(tmp_path / "a.csv", 20.0), T0)
    _import(db_ctx, _csv(tmp_path / "b.csv", 22.0), T0 + timedelta(minutes=20))
    with db_ctx.db.session() as session:
        session.execute(delete(PriceTickHourly))
    assert _points(client, tenant, _h100_key(loaded)) == []
    _import(db_ctx, tmp_path / "b.csv", T0 + timedelta(minutes=20))
    (point,) = _points(client, tenant, _h100_key(loaded))
    assert (point["open"], point["close"], point["ticks"]) == (20.0, 22.0, 2)
    with db_ctx.db.session() as session:
        assert hourly.series_without_hourly(session) == []
        assert hourly.backfill(session) == 0


def test_the_seeded_snapshot_has_hourly_rows_and_an_old_seed_is_healed(tmp_path: Path) -> None:
    """The embedded first run seeds the snapshot with one hourly row per tick (each offer has one price);
    a store seeded before (ticks, no hourly rows) gets them back on the next start."""
    url = f"sqlite:///{tmp_path / 'cloudarb.db'}"

    def counts() -> tuple[int, int, int]:
        ctx = build_context(make_settings(database_url=url, data_dir=tmp_path))
        try:
            with ctx.db.session() as session:
                return (session.scalar(select(func.count()).select_from(PriceSeries)) or 0,
                        session.scalar(select(func.count()).select_from(PriceTick)) or 0,
                        session.scalar(select(func.count()).select_from(PriceTickHourly)) or 0)
        finally:
            ctx.close()

    series, ticks, rows = counts()
    assert series == ticks == rows > 3000
    ctx = build_context(make_settings(database_url=url, data_dir=tmp_path))
    with ctx.db.session() as session:
        session.execute(delete(PriceTickHourly))
    ctx.close()
    assert counts() == (series, ticks, rows)


def test_cli_catalog_import_reaches_the_hourly_table(tmp_path: Path) -> None:
    """`cloudarb catalog import FILE --format skypilot --observed-at DATE` on SQLite, then the history."""
    url = f"sqlite:///{tmp_path / 'cloudarb.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(CLOUDARB_DATA_DIR=str(tmp_path), CLOUDARB_DATABASE_URL=url, CLOUDARB_SEED_SNAPSHOT="false",
               PYTHONPATH=str(ROOT))
    path = _csv(tmp_path / "a.csv", 20.0)
    r = subprocess.run([sys.executable, "-m", "cloudarb", "catalog", "import", str(path), "--format", "skypilot",
                        "--provider", "lambda", "--observed-at", T0.date().isoformat(), "--json"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    ctx = build_context(make_settings(database_url=url, data_dir=tmp_path, seed_snapshot=False))
    try:
        tenant = Tenant(ctx, "Acme")
        with TestClient(create_app(ctx=ctx)) as client:
            r = client.get("/prices/history", headers=tenant.headers("viewer"), params={
                "gpu_model": "H100 SXM", "bucket": "hour", "start": "2026-11-01T00:00:00Z",
                "end": "2026-11-03T00:00:00Z"})
        assert r.status_code == 200, r.text
        (series,) = r.json()["series"]
        assert [(p["t"], p["close"], p["ticks"]) for p in series["points"]] == [("2026-11-02T00:00:00Z", 20.0, 1)]
    finally:
        ctx.close()
