"""Ingest on real PostgreSQL (and TimescaleDB where the server has it): COPY write path, idempotence,
the hourly aggregate against raw ticks, history over HTTP, a refresh job with Redis broadcast, and
migration 0002 up/down with backfill."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cloudarb.api.app import create_app
from cloudarb.config import Settings
from cloudarb.context import Context, build_context
from cloudarb.db import migrate
from cloudarb.events.bus import CHANNEL_PREFIX
from cloudarb.ingest import bulk, timescale
from cloudarb.ingest import status as status_store
from cloudarb.ingest.history import HistoryQuery, history
from cloudarb.ingest.submit import REFRESH_FUNCTION
from cloudarb.jobs import store as job_store
from cloudarb.jobs.runtime import execute
from ingestion.schemas import PriceQuote
from tests.ingestion.conftest import RECORDED, ReplayServer, Reply
from tests.support import PG_URL, Tenant

T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=60)
"""Two months back: a back-fill, far outside the continuous aggregate policy's recent window on
TimescaleDB, yet inside the tick retention (400 days), whose policy would drop older chunks mid-run."""


def quotes_for(prefix: str, hours: int, per_hour: int) -> list[PriceQuote]:
    out = []
    for offer in range(3):
        for i in range(hours * per_hour):
            out.append(PriceQuote(
                provider="vast", region=f"{prefix}-r{offer}", instance_type="8x H100", gpu_model="H100 SXM",
                gpu_count=8, vram_gb=80, price_per_hour=10 + offer + ((i * 7) % 11) / 10,
                observed_at=T0 + timedelta(minutes=60 * i / per_hour)))
    return out


def hourly_mismatches(ctx: Context, keys: list[str]) -> list[Any]:
    """Rows where the maintained aggregate differs from one recomputed from raw ticks."""
    sql = text("""
        WITH series AS (SELECT id FROM price_series WHERE offer_key = ANY(:keys)),
        raw AS (
          SELECT series_id, date_bin(INTERVAL '1 hour', observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b,
                 (array_agg(price_per_hour ORDER BY observed_at))[1] AS o, max(price_per_hour) AS h,
                 min(price_per_hour) AS l, (array_agg(price_per_hour ORDER BY observed_at DESC))[1] AS c,
                 count(*) AS n
          FROM price_ticks WHERE series_id IN (SELECT id FROM series) GROUP BY 1, 2)
        SELECT * FROM raw FULL JOIN price_ticks_hourly p ON p.series_id = raw.series_id AND p.bucket = raw.b
        WHERE (p.series_id IN (SELECT id FROM series) OR raw.series_id IS NOT NULL)
          AND (p.series_id IS NULL OR raw.series_id IS NULL OR p.open <> raw.o OR p.high <> raw.h
               OR p.low <> raw.l OR p.close <> raw.c OR p.ticks <> raw.n)
    """)
    with ctx.db.session() as session:
        return list(session.execute(sql, {"keys": keys}).all())


def test_copy_path_is_idempotent_and_keeps_the_aggregate_exact(prod_ctx: Context) -> None:
    quotes = quotes_for("idem", hours=6, per_hour=12)
    keys = sorted({q.offer_key for q in quotes})
    first_half = [q for q in quotes if q.observed_at < T0 + timedelta(hours=3)]
    with prod_ctx.db.session() as session:
        assert bulk.write_quotes(session, first_half).ticks_inserted == len(first_half)  # append fast path
    overlapping = [q for q in quotes if q.observed_at >= T0 + timedelta(hours=2)]
    with prod_ctx.db.session() as session:
        result = bulk.write_quotes(session, overlapping)  # overlaps: the general ON CONFLICT path
    assert result.ticks_inserted == len(quotes) - len(first_half)
    with prod_ctx.db.session() as session:
        again = bulk.write_quotes(session, quotes)
    assert again.ticks_inserted == 0 and again.changes == []
    with prod_ctx.db.session() as session:
        stored = session.execute(text("SELECT count(*) FROM price_ticks t JOIN price_series s ON s.id = t.series_id "
                                      "WHERE s.offer_key = ANY(:k)"),
                                 {"k": keys}).scalar_one()
        current = session.execute(text("SELECT price_per_hour, observed_at FROM offers WHERE offer_key = :k"),
                                  {"k": keys[0]}).one()
    assert stored == len(quotes)
    latest = max((q for q in quotes if q.offer_key == keys[0]), key=lambda q: q.observed_at)
    assert (current[0], current[1]) == (latest.price_per_hour, latest.observed_at)
    assert hourly_mismatches(prod_ctx, keys) == []


def test_duplicate_ticks_inside_one_batch_fall_back_and_count_once(prod_ctx: Context) -> None:
    q = quotes_for("dup", hours=1, per_hour=4)
    with prod_ctx.db.session() as session:
        n = bulk.write_ticks(session, [(x.offer_key, x.observed_at, x.price_per_hour, None) for x in q + q[:3]])
    assert n == len(q)
    assert hourly_mismatches(prod_ctx, sorted({x.offer_key for x in q})) == []


def test_timescale_objects_follow_the_extension(prod_ctx: Context) -> None:
    with prod_ctx.db.session() as session:
        available = migrate.timescaledb_usable(session.connection())
        kind = session.execute(text("SELECT relkind FROM pg_class WHERE relname = 'price_ticks_hourly'")).scalar_one()
    assert timescale.uses_timescale(prod_ctx.db.sessionmaker()) is available
    assert (kind == "v") is available, "a continuous aggregate is a view; the plain path is a table ('r')"
    if available:  # 0015: the refresh policy covers all of history, so a lost ingest refresh is repaired
        with prod_ctx.db.session() as session:
            config = session.execute(text(
                "SELECT config FROM timescaledb_information.jobs WHERE hypertable_name = 'price_ticks_hourly' "
                "AND proc_name = 'policy_refresh_continuous_aggregate'")).scalar_one()
        assert config["start_offset"] is None and config["end_offset"] == "01:00:00"


def test_history_over_http_on_postgresql(prod_ctx: Context) -> None:
    quotes = quotes_for("hist", hours=48, per_hour=6)
    with prod_ctx.db.session() as session:
        bulk.write_quotes(session, quotes)
    key = quotes[0].offer_key
    tenant = Tenant(prod_ctx, f"Hist {uuid.uuid4().hex[:6]}")
    with TestClient(create_app(ctx=prod_ctx, scheduler=False)) as client:
        params = {"offer_key": key, "start": T0.isoformat(), "end": (T0 + timedelta(days=2)).isoformat()}
        hour = client.get("/prices/history", params={**params, "bucket": "hour"}, headers=tenant.headers()).json()
        pts = hour["series"][0]["points"]
        assert len(pts) == 48 and all(p["ticks"] == 6 for p in pts)
        mine = [q.price_per_hour for q in quotes if q.offer_key == key and q.observed_at < T0 + timedelta(hours=1)]
        assert (pts[0]["open"], pts[0]["high"], pts[0]["low"], pts[0]["close"]) == (
            mine[0], max(mine), min(mine), mine[-1])
        with prod_ctx.db.session() as session:  # the server-built JSON says what the generic path says
            generic = history(session, HistoryQuery(offer_key=key, start=T0, end=T0 + timedelta(days=2)))
        assert pts == [{"t": p.t.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": p.open, "high": p.high, "low": p.low,
                        "close": p.close, "ticks": p.ticks} for p in generic[0].points]
        day = client.get("/prices/history", params={**params, "bucket": "day"}, headers=tenant.headers()).json()
        assert [p["ticks"] for p in day["series"][0]["points"]] == [144, 144]
        raw = client.get("/prices/history", params={**params, "bucket": "raw"}, headers=tenant.headers()).json()
        assert len(raw["series"][0]["points"]) == 288
        model = client.get("/prices/history", headers=tenant.headers(), params={
            "gpu_model": "H100 SXM", "provider": "vast", "region": "hist-r2", "start": params["start"],
            "end": params["end"], "bucket": "day"}).json()
        assert [s["region"] for s in model["series"]] == ["hist-r2"]


@pytest.fixture()
def lambda_replay() -> Iterator[ReplayServer]:
    srv = ReplayServer()
    srv.add("GET", "/instance-types", Reply(200, (RECORDED / "lambda" / "instance_types.json").read_text()))
    srv.start()
    yield srv
    srv.stop()


def test_refresh_job_on_postgresql_broadcasts_on_redis(prod_ctx: Context, prod_settings: Settings,
                                                       lambda_replay: ReplayServer) -> None:
    settings = prod_settings.model_copy(update={
        "lambda_api_key": SecretStr("secret"), "ingest_base_urls": {"lambda": lambda_replay.url}, "ingest_retry_attempts": 1})
    ctx = build_context(settings, prepare=False)
    client = redis.Redis.from_url(settings.redis_url or "")
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL_PREFIX + "prices")
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    try:
        tenant = Tenant(ctx, f"Refresh {uuid.uuid4().hex[:6]}")
        with ctx.db.session() as session:
            job = job_store.create_job(session, organization_id=tenant.org_id, kind="ingest",
                                       function=REFRESH_FUNCTION, target_id="lambda", max_attempts=1)
        assert execute(job.id, ctx) == "finished"
        message = None
        for _ in range(20):
            message = pubsub.get_message(timeout=0.5)
            if message and message["type"] == "message":
                break
        assert message is not None and message["type"] == "message"
        events = json.loads(message["data"])["events"]
        assert events and {e["provider"] for e in events} == {"lambda"}
        with ctx.db.session() as session:
            row = status_store.get(session, "lambda")
            assert row is not None and row.state == "ok" and row.offers_count == 5
            stored = session.execute(text("SELECT count(*) FROM price_events WHERE id = ANY(:ids)"),
                                     {"ids": [e["id"] for e in events]}).scalar_one()
        assert stored == len(events)
    finally:
        pubsub.close()
        client.close()
        ctx.close()


def test_migration_0002_backfills_and_downgrades() -> None:
    name = f"cloudarb_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        migrate.upgrade(url, "0001")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO price_ticks (offer_key, observed_at, price_per_hour) VALUES "
                              "('k', :t + INTERVAL '10:05', 2), ('k', :t + INTERVAL '10:45', 1), "
                              "('k', :t + INTERVAL '10:25', 5), ('k', :t + INTERVAL '11:00', 3)"), {"t": T0})
        migrate.upgrade(url)  # through 0004 (series ids), which carries the backfilled rows across
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT open, high, low, close, ticks FROM price_ticks_hourly h "
                                     "JOIN price_series s ON s.id = h.series_id "
                                     "WHERE s.offer_key = 'k' ORDER BY bucket")).all()
        assert [tuple(r) for r in rows] == [(2, 5, 1, 1, 3), (3, 3, 3, 3, 1)]
        migrate.downgrade(url, "0001")
        with engine.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM pg_class WHERE relname IN "
                                     "('price_ticks_hourly', 'provider_status', 'price_events')")).scalar_one()
            ticks = conn.execute(text("SELECT count(*) FROM price_ticks")).scalar_one()
        assert left == 0 and ticks == 4
        migrate.upgrade(url, "0002")
        assert migrate.current(url) == "0002"
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def tick_columns(keys: list[str], rows: list[tuple[int, datetime, float]]) -> Any:
    """Rows (offer index, time, price); a tick reports available instances when its minute is even."""
    import numpy as np

    from cloudarb.ingest import columns

    return columns.TickColumns(
        offer_keys=keys, offer_index=np.array([r[0] for r in rows], dtype=np.int32),
        observed_at=np.array([np.datetime64(r[1].replace(tzinfo=None), "us") for r in rows]),
        price_per_hour=np.array([r[2] for r in rows]),
        available_instances=np.array([2 if r[1].minute % 2 == 0 else columns.NO_INSTANCES for r in rows],
                                     dtype=np.int32),
        capacity=np.zeros(len(rows), dtype=np.int8),
    )


def test_columnar_batches_append_overlap_and_duplicates_keep_the_aggregate_exact(prod_ctx: Context) -> None:
    quotes = quotes_for("cols", hours=1, per_hour=1)
    keys = sorted({q.offer_key for q in quotes})
    with prod_ctx.db.session() as session:
        bulk.write_quotes(session, quotes)
    minutes = [(i % 3, T0 + timedelta(minutes=7 * i), 5 + (i * 13 % 17) / 10) for i in range(3, 120)]
    appended, overlapping = minutes[:60], minutes[40:]
    with prod_ctx.db.session() as session:
        first = bulk.write_tick_columns(session, tick_columns(keys, appended))  # append-only path
    with prod_ctx.db.session() as session:
        second = bulk.write_tick_columns(session, tick_columns(keys, overlapping))  # overlaps: ON CONFLICT
    with prod_ctx.db.session() as session:
        again = bulk.write_tick_columns(session, tick_columns(keys, minutes))
    late = T0 + timedelta(days=3)
    dup = [(0, late, 1.0), (1, late, 2.0), (0, late, 1.0)]  # a duplicate inside one batch
    with prod_ctx.db.session() as session:
        fallback = bulk.write_tick_columns(session, tick_columns(keys, dup))
    assert (first.ticks_inserted, second.ticks_inserted, again.ticks_inserted) == (60, len(minutes) - 60, 0)
    assert fallback.ticks_inserted == 2
    with prod_ctx.db.session() as session:
        current = session.execute(text("SELECT price_per_hour, price_per_gpu_hour, observed_at, available_instances "
                                       "FROM offers WHERE offer_key = ANY(:k) ORDER BY offer_key"),
                                  {"k": keys}).all()
        stored = session.execute(text("SELECT count(*), count(available_instances) FROM price_ticks t "
                                      "JOIN price_series s ON s.id = t.series_id WHERE s.offer_key = ANY(:k)"),
                                 {"k": keys}).one()
    last2 = max((t, p) for i, t, p in minutes if i == 2)
    assert [tuple(r) for r in current] == [(1.0, 1.0 / 8, late, 2), (2.0, 2.0 / 8, late, 2),
                                           (last2[1], last2[1] / 8, last2[0], 2 if last2[0].minute % 2 == 0 else None)]
    assert stored[0] == len(quotes) + len(minutes) + 2
    assert stored[1] == sum(1 for _, t, _ in minutes if t.minute % 2 == 0) + 2
    assert hourly_mismatches(prod_ctx, keys) == []


def test_price_follower_delivers_an_event_that_commits_after_a_higher_id(prod_ctx: Context) -> None:
    """Two refreshes commit out of id order: the follower gets the higher id first, then the lower
    one once its transaction commits, although that one is never broadcast."""
    import anyio

    from cloudarb.ingest import events as price_events
    from cloudarb.ingest.bulk import PriceChange

    def change(region: str) -> PriceChange:
        return PriceChange(offer_key=f"vast/{region}/8x H100/od", provider="vast", region=region,
                           gpu_model="H100 SXM", instance_type="8x H100", spot=False, gpu_count=8,
                           old_price_per_hour=10.0, new_price_per_hour=11.0, observed_at=T0)

    got: list[dict[str, Any]] = []

    async def scenario() -> None:
        async def collect() -> None:
            async for event in price_events.follow(prod_ctx):
                got.append(event)
                if len(got) == 2:
                    return

        async def write() -> None:
            await anyio.sleep(0.5)  # the follower has subscribed and read the last id
            early = prod_ctx.db.sessionmaker()
            try:
                first = await anyio.to_thread.run_sync(price_events.persist, early, [change("late-commit")])
                with prod_ctx.db.session() as session:
                    second = price_events.persist(session, [change("early-commit")])
                price_events.broadcast(prod_ctx, second)
                assert second[0]["id"] > first[0]["id"]
                with anyio.fail_after(5):
                    while not got:
                        await anyio.sleep(0.05)
                await anyio.to_thread.run_sync(early.commit)  # committed, never broadcast
            finally:
                early.close()

        with anyio.fail_after(price_events.GAP_WAIT_S):
            async with anyio.create_task_group() as group:
                group.start_soon(collect)
                group.start_soon(write)

    anyio.run(scenario)
    assert [e["region"] for e in got] == ["early-commit", "late-commit"]
    assert got[1]["id"] < got[0]["id"]


def materialized_hours(ctx: Context, keys: list[str]) -> int:
    """Rows of ``keys`` in the continuous aggregate's materialization hypertable itself (not the
    real-time union, which would aggregate raw ticks past the watermark)."""
    with ctx.db.session() as session:
        schema, table = session.execute(text(
            "SELECT materialization_hypertable_schema, materialization_hypertable_name "
            "FROM timescaledb_information.continuous_aggregates WHERE view_name = 'price_ticks_hourly'")).one()
        ids = [r[0] for r in session.execute(text("SELECT id FROM price_series WHERE offer_key = ANY(:k)"),
                                             {"k": keys})]
        columns = [c[0] for c in session.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"),
            {"s": schema, "t": table})]
        key_column = "series_id" if "series_id" in columns else columns[0]
        return int(session.execute(text(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{key_column}" = ANY(:ids)'), {"ids": ids}).scalar_one())


def test_backfilled_history_is_materialized_on_timescaledb(prod_ctx: Context) -> None:
    """A back-fill (ticks of two months ago, far outside the aggregate policy's recent window) is materialized
    when its transaction commits: the hourly rows exist in the materialization hypertable itself, not
    only in the real-time union, and they equal the raw ticks' aggregate. Plain PostgreSQL keeps the
    hourly table exact by construction (the other tests check it)."""
    if not timescale.uses_timescale(prod_ctx.db.sessionmaker()):
        pytest.skip("TimescaleDB is not used on this server (the plain path keeps a table)")
    q = quotes_for("backfill", hours=6, per_hour=3)
    keys = sorted({x.offer_key for x in q})
    with prod_ctx.db.session() as session:
        bulk.write_quotes(session, q)
    assert materialized_hours(prod_ctx, keys) == len(keys) * 6, "every back-filled hour of every offer"
    assert hourly_mismatches(prod_ctx, keys) == []


def test_backfill_refresh_waits_out_a_concurrent_refresh_on_timescaledb(prod_ctx: Context) -> None:
    """TimescaleDB 2.2x refuses a refresh whose window overlaps one in progress (instead of waiting);
    an ingest's refresh is retried until that one is done, so its hours are still materialized (a lost
    refresh leaves them stale below the watermark for good). The refresh in progress is registered
    the way TimescaleDB registers its own, a row naming a live backend in
    ``continuous_aggs_jobs_refresh_ranges``, held while the ingest commits, then released."""
    import threading
    import time

    if not timescale.uses_timescale(prod_ctx.db.sessionmaker()):
        pytest.skip("TimescaleDB is not used on this server (the plain path keeps a table)")
    q = quotes_for("concurrent", hours=4, per_hour=2)
    keys = sorted({x.offer_key for x in q})
    failures: list[Exception] = []

    def ingest() -> None:
        try:
            with prod_ctx.db.session() as session:
                bulk.write_quotes(session, q)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    with prod_ctx.db.engine.connect() as holder:
        ranges = "_timescaledb_catalog.continuous_aggs_jobs_refresh_ranges"
        if holder.execute(text(f"SELECT to_regclass('{ranges}')")).scalar() is None:
            pytest.skip("this TimescaleDB has no refresh-range registry (older versions wait on a lock instead)")
        mat_id = holder.execute(text("SELECT mat_hypertable_id FROM _timescaledb_catalog.continuous_agg "
                                     "WHERE user_view_name = 'price_ticks_hourly'")).scalar_one()
        pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
        holder.execute(text(f"INSERT INTO {ranges} (materialization_id, start_range, end_range, pid, job_id, "
                            "created_at) VALUES (:m, -9223372036854775000, 9223372036854775000, :pid, 0, now())"),
                       {"m": mat_id, "pid": pid})
        holder.commit()
        writer = threading.Thread(target=ingest)
        writer.start()
        try:
            for _ in range(600):  # the ticks are committed; their refresh is refused meanwhile
                count = holder.execute(text("SELECT count(*) FROM price_ticks t JOIN price_series s "
                                            "ON s.id = t.series_id WHERE s.offer_key = ANY(:k)"), {"k": keys})
                holder.commit()
                if count.scalar_one() == len(q) or not writer.is_alive():
                    break
                time.sleep(0.05)
            time.sleep(0.5)
            held_off = materialized_hours(prod_ctx, keys)
        finally:
            holder.execute(text(f"DELETE FROM {ranges} WHERE pid = :pid"), {"pid": pid})
            holder.commit()
            writer.join(120)
    assert not failures and not writer.is_alive()
    assert held_off == 0, "nothing is materialized while the overlapping refresh is in progress"
    assert materialized_hours(prod_ctx, keys) == len(keys) * 4, "the refresh ran once the other one was done"
    assert hourly_mismatches(prod_ctx, keys) == []


def test_refresh_policy_repairs_a_backfill_whose_refresh_was_lost_on_timescaledb(prod_ctx: Context) -> None:
    """Ticks committed without their after-commit refresh (the process died in between) sit below the
    aggregate's watermark, where the real-time part does not look: the refresh policy (0015: all of
    history, not 3 days) materializes them on its next run."""
    if not timescale.uses_timescale(prod_ctx.db.sessionmaker()):
        pytest.skip("TimescaleDB is not used on this server (the plain path keeps a table)")
    key = f"lost-refresh-{uuid.uuid4().hex[:8]}"
    with prod_ctx.db.engine.begin() as conn:  # bypasses the ingest path, as a crash after commit would
        sid = conn.execute(text("INSERT INTO price_series (offer_key) VALUES (:k) RETURNING id"), {"k": key}).scalar_one()
        conn.execute(text("INSERT INTO price_ticks (series_id, observed_at, price_per_hour) "
                          "SELECT :sid, :t + make_interval(mins => 20 * g), 3 + g FROM generate_series(0, 8) g"),
                     {"sid": sid, "t": T0 - timedelta(days=5)})
    with prod_ctx.db.engine.connect() as conn:
        job = conn.execute(text("SELECT job_id FROM timescaledb_information.jobs WHERE hypertable_name = "
                                "'price_ticks_hourly' AND proc_name = 'policy_refresh_continuous_aggregate'")).scalar_one()
    assert materialized_hours(prod_ctx, [key]) == 0
    with prod_ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CALL run_job({int(job)})"))
    assert materialized_hours(prod_ctx, [key]) == 3
    assert hourly_mismatches(prod_ctx, [key]) == []


def test_timescaledb_available_but_not_preloaded_falls_back_with_a_message() -> None:
    """A server with the extension's files but without ``shared_preload_libraries = 'timescaledb'``
    (``CREATE EXTENSION`` fails there): ``cloudarb db upgrade`` succeeds with plain tables and says why,
    and the hourly path then keeps its own table. Runs where the server is in that state (e.g. a
    PostgreSQL sharing its installation with a TimescaleDB build); skipped elsewhere."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"cloudarb_fb_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            if not migrate.timescaledb_not_preloaded(conn):
                pytest.skip("this server has no timescaledb, or has it preloaded")
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
        root = Path(__file__).resolve().parents[2]
        env.update({"CLOUDARB_DATABASE_URL": url, "PYTHONPATH": str(root)})
        done = subprocess.run([sys.executable, "-m", "cloudarb", "db", "upgrade"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "shared_preload_libraries" in " ".join(done.stderr.split()), done.stderr
        assert migrate.current(url) is not None
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                kinds = dict(conn.execute(text(
                    "SELECT relname, relkind FROM pg_class WHERE relname IN ('price_ticks', 'price_ticks_hourly')")).all())
                installed = conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")).scalar_one()
        finally:
            engine.dispose()
        assert kinds == {"price_ticks": "r", "price_ticks_hourly": "r"} and installed == 0
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
