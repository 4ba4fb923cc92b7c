"""Ingest benchmark, printing JSON: tick write throughput into PostgreSQL and /prices/history latency.

What it does, in a fresh PostgreSQL database of its own (dropped at the end unless --keep):
1. migrates it (TimescaleDB objects when the extension is installed there, plain ones otherwise)
   and writes the bundled real price snapshot as the current offers (`write_quotes`);
2. generates ``--ticks`` price ticks with the seeded market simulator (ingestion.simulator), for every
   snapshot offer over ``--days`` days (the step between ticks of one offer follows from the two),
   and writes them through the production bulk write path `cloudarb.ingest.bulk.write_tick_columns`
   (binary COPY into staging tables, the ticks into price_ticks, the hourly OHLC rows, and each offer's
   current price in ``offers``), one transaction per batch; a second pass re-writes one batch to show
   it adds nothing;
3. times ``GET /prices/history`` for one offer over the last 30 days at hourly buckets through the
   real ASGI app (in-process client, so no network hop; a JWT bearer token, as the dashboard sends),
   ``--queries`` times after 5 warm-up requests, and reports p50/p95.

4. with --lag-runs N (default 20): end-to-end lag in embedded mode (SQLite, in-process jobs and
   events): a local HTTP server plays Lambda's instance-types API with a new H100 price each run; the
   clock starts when the server has sent its response and stops when the change arrives on /ws/prices
   and when /offers shows it (refresh triggered through POST /providers/lambda/refresh); then the
   same in production mode (a scratch PostgreSQL database, Redis pub/sub, the refresh run by a real
   `cloudarb worker` process) unless --redis-url is ''.

"write_ticks_per_s" is ticks / wall time of the write phase (``--writers`` connections in parallel, each
encoding its batches and writing its own offers); "end_to_end" also counts simulating the ticks. The
machine is shared and timings are noisy, so the write phase also reports the load average and the CPU
it used: this process's, and the writer backends' (read from /proc when the server is local; WAL
writer and checkpointer not included). "quiet_estimate_ticks_per_s" = cores the writers can use /
CPU per tick, the rate the same work would reach with the machine to itself. With --timescale-url (a
server with the extension) the write is measured there too; without it that figure reads "not available".
There, "commit_and_hourly_refresh_seconds_summed" includes the continuous aggregate's refresh of the
hours each batch touched (run after its commit), and "timescaledb_maintenance" gives what the
aggregate holds materialized, a catch-up and a forced full refresh, and compressing every chunk older
than the compression policy's 7 days (sizes before and after); the history is timed again afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from cloudarb.bootstrap import snapshot_path  # noqa: E402
from cloudarb.db import migrate  # noqa: E402
from cloudarb.db.engine import Database  # noqa: E402
from cloudarb.ingest import bulk, timescale  # noqa: E402
from cloudarb.ingest.columns import NO_INSTANCES, TickColumns  # noqa: E402
from ingestion.catalogs import load_snapshot  # noqa: E402
from ingestion.schemas import PriceQuote  # noqa: E402
from ingestion.simulator import MarketConfig, MarketSimulator, TickBatch  # noqa: E402

DEFAULT_URL = os.environ.get("CLOUDARB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def batch_columns(batch: TickBatch, keys: list[str]) -> TickColumns:
    """One simulator batch as the write path's columns (no per-tick Python: numpy views and casts)."""
    return TickColumns(
        offer_keys=keys, offer_index=batch.offer_index, observed_at=batch.observed_at,
        price_per_hour=batch.price_per_hour,
        available_instances=np.where(batch.capacity == 2, 0, NO_INSTANCES).astype(np.int32),
        capacity=batch.capacity,
    )


def backend_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a PostgreSQL backend has used, when the server runs on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_database(base_url: str) -> str:
    name = f"cloudarb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def write_ticks(
    db: Database, offers: list[PriceQuote], ticks: int, days: float, seed: int, batch_ticks: int = 250_000,
    writers: int = 2,
) -> dict[str, Any]:
    """Simulate ``ticks`` ticks, then write them through `bulk.write_tick_columns` (see the module doc)."""
    keys = [o.offer_key for o in offers]
    step_s = max(1, math.floor(days * 86400 * len(offers) / ticks))
    # the history starts after the snapshot's own ticks, as live ingestion would continue it
    start = max(o.observed_at for o in offers).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    base = MarketConfig(seed=seed, start=start, end=start + timedelta(hours=1))
    steps = math.ceil(ticks / len(offers))
    end = start + timedelta(seconds=step_s * steps)
    config = base.model_copy(update={"step": timedelta(seconds=step_s), "end": end})
    sim = MarketSimulator(offers, config=config)
    began = time.perf_counter()
    # Live ingestion arrives time-major (each refresh = every offer at one instant); the simulator
    # works offer-major, so simulate everything first (timed apart: the feed, not the store), then
    # write in time order, batch_ticks at a time. With several writers, each takes a disjoint set of
    # offers (as one refresh job per provider would), so writers never contend for the same rows.
    parts = list(sim.batches())
    order = np.concatenate([p.observed_at for p in parts]).astype(np.int64).argsort(kind="stable")
    merged = TickBatch(
        offer_index=np.concatenate([p.offer_index for p in parts])[order],
        observed_at=np.concatenate([p.observed_at for p in parts])[order],
        price_per_hour=np.concatenate([p.price_per_hour for p in parts])[order],
        capacity=np.concatenate([p.capacity for p in parts])[order],
    )
    del parts, order
    simulate_s = time.perf_counter() - began
    totals = {"written": 0, "inserted": 0, "offers_updated": 0, "db_s": 0.0, "commit_s": 0.0}
    backend_cpu: dict[int, list[float]] = {}
    lock = threading.Lock()
    first: list[TickColumns] = []

    def writer(part: int) -> None:
        mine = np.flatnonzero(merged.offer_index % writers == part)
        for lo in range(0, len(mine), batch_ticks):
            idx = mine[lo : lo + batch_ticks]
            cols = batch_columns(TickBatch(merged.offer_index[idx], merged.observed_at[idx],
                                           merged.price_per_hour[idx], merged.capacity[idx]), keys)
            t0 = time.perf_counter()
            with db.session() as session:
                pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                with lock:
                    backend_cpu.setdefault(pid, [backend_cpu_s(pid), 0.0])
                res = bulk.write_tick_columns(session, cols)
                t1 = time.perf_counter()
            with lock:
                backend_cpu[pid][1] = backend_cpu_s(pid)
                totals["db_s"] += time.perf_counter() - t0
                totals["commit_s"] += time.perf_counter() - t1
                totals["inserted"] += res.ticks_inserted
                totals["offers_updated"] += res.offers_updated
                totals["written"] += len(cols)
                if not first:
                    first.append(cols)

    load_before = os.getloadavg()
    cpu_before = time.process_time()
    write_began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(writer, range(writers)))
    write_wall_s = time.perf_counter() - write_began
    client_cpu_s = time.process_time() - cpu_before
    load_after = os.getloadavg()
    server_cpu_s = sum(b - a for a, b in backend_cpu.values())
    written, inserted, db_s = int(totals["written"]), int(totals["inserted"]), float(totals["db_s"])
    total_s = time.perf_counter() - began
    t0 = time.perf_counter()
    with db.session() as session:
        again = bulk.write_tick_columns(session, first[0]).ticks_inserted
    rewrite_s = time.perf_counter() - t0
    cpu_per_tick_us = (client_cpu_s + server_cpu_s) / written * 1e6
    return {
        "ticks": written,
        "inserted": inserted,
        "step_s": step_s,
        "span_days": round(step_s * steps / 86400, 2),
        "writers": writers,
        "simulate_seconds": round(simulate_s, 2),
        "write_wall_seconds": round(write_wall_s, 2),
        "write_ticks_per_s": round(written / write_wall_s),
        "load_average_before_after": [[round(x, 2) for x in load_before], [round(x, 2) for x in load_after]],
        "offers_updated": int(totals["offers_updated"]),
        "client_cpu_seconds": round(client_cpu_s, 2),
        "writer_backends_cpu_seconds": round(server_cpu_s, 2),
        "cpu_us_per_tick": round(cpu_per_tick_us, 2),
        "quiet_estimate_ticks_per_s": round(min(writers, os.cpu_count() or 1) / cpu_per_tick_us * 1e6),
        "db_call_seconds_summed": round(db_s, 2),
        "commit_and_hourly_refresh_seconds_summed": round(float(totals["commit_s"]), 2),
        "end_to_end_seconds": round(total_s, 2),
        "end_to_end_ticks_per_s": round(written / total_s),
        "rewrite_batch_ticks": len(first[0]),
        "rewrite_batch_inserted": again,
        "rewrite_batch_seconds": round(rewrite_s, 3),
        "batch_ticks": batch_ticks,
        "order": "time-major (as live refreshes arrive)",
        "end": end,
    }


def history_latency(url: str, offer_key: str, end: Any, queries: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from cloudarb.api.app import create_app
    from cloudarb.config import Settings
    from cloudarb.context import build_context
    from cloudarb.security import issue_token
    from cloudarb.storage import accounts

    settings = Settings(_env_file=None, database_url=url, secret_key="bench-" + "x" * 40)
    ctx = build_context(settings, prepare=False)
    with ctx.db.session() as session:
        org = accounts.get_or_create_org(session, name="bench")
        user = accounts.create_user(session, organization_id=org.id, email=f"bench-{uuid.uuid4().hex[:8]}@example.com",
                                    password="bench-password-123", role="viewer")
    token = issue_token(settings, user_id=user.id, org_id=org.id, role="viewer", kind="access")
    params = {
        "offer_key": offer_key,
        "start": (end - timedelta(days=30)).isoformat(),
        "end": end.isoformat(),
        "bucket": "hour",
    }
    times: list[float] = []
    points = 0
    with TestClient(create_app(ctx=ctx, scheduler=False)) as client:
        for i in range(queries + 5):
            t0 = time.perf_counter()
            r = client.get("/prices/history", params=params, headers={"Authorization": f"Bearer {token}"})
            elapsed = time.perf_counter() - t0
            if r.status_code != 200:
                raise RuntimeError(f"history failed: {r.status_code} {r.text}")
            if i >= 5:  # warm-up excluded
                times.append(elapsed)
            points = sum(len(s["points"]) for s in r.json()["series"])
    ctx.close()
    times.sort()
    return {
        "queries": len(times),
        "points_per_response": points,
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "p95_ms": round(times[max(0, math.ceil(0.95 * len(times)) - 1)] * 1000, 2),
        "max_ms": round(times[-1] * 1000, 2),
    }


class _LambdaStub:
    """Serves Lambda's documented instance-types shape (the recorded test body) with a settable price,
    and notes when each response was fully sent."""

    def __init__(self, body: dict[str, Any]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.body = body
        self.sent_at: list[float] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                payload = json.dumps(stub.body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                stub.sent_at.append(time.perf_counter())

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def set_cents(self, cents: int) -> None:
        self.body["data"]["gpu_1x_h100_sxm5"]["instance_type"]["price_cents_per_hour"] = cents


def end_to_end_lag(runs: int, *, pg_url: str | None = None, redis_url: str | None = None) -> dict[str, Any]:
    """Embedded mode by default; with ``pg_url`` and ``redis_url``, production mode: a scratch
    PostgreSQL database, events on Redis pub/sub, and the refresh job run by a real ``cloudarb
    worker`` process (RQ, work horse per job) while the API runs in this process."""
    import subprocess
    import tempfile

    from fastapi.testclient import TestClient

    from cloudarb.api.app import create_app
    from cloudarb.config import Settings
    from cloudarb.context import build_context
    from cloudarb.storage import accounts

    recorded = ROOT / "tests" / "ingestion" / "recorded" / "lambda" / "instance_types.json"
    stub = _LambdaStub(json.loads(recorded.read_text()))
    tmp = Path(tempfile.mkdtemp(prefix="cloudarb-lag-"))
    production = pg_url is not None and redis_url is not None
    db_url = create_database(pg_url) if production and pg_url else f"sqlite:///{tmp / 'lag.db'}"
    settings = Settings(_env_file=None, database_url=db_url, data_dir=tmp, redis_url=redis_url if production else None,
                        queue_name=f"bench-lag-{uuid.uuid4().hex[:6]}", secret_key="bench-" + "x" * 40,
                        lambda_api_key="bench", ingest_base_urls={"lambda": stub.url}, ingest_retry_attempts=1)
    worker = None
    if production:
        migrate.upgrade(db_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
        env.update({"CLOUDARB_DATABASE_URL": db_url, "CLOUDARB_REDIS_URL": str(redis_url),
                    "CLOUDARB_QUEUE_NAME": settings.queue_name, "CLOUDARB_SECRET_KEY": "bench-" + "x" * 40,
                    "CLOUDARB_LAMBDA_API_KEY": "bench", "CLOUDARB_INGEST_BASE_URLS": json.dumps({"lambda": stub.url}),
                    "CLOUDARB_INGEST_RETRY_ATTEMPTS": "1", "CLOUDARB_LOG_LEVEL": "WARNING",
                    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
        worker = subprocess.Popen([sys.executable, "-m", "cloudarb", "worker"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ctx = build_context(settings)
    with ctx.db.session() as session:
        org = accounts.get_or_create_org(session, name="lag")
        _, key = accounts.create_api_key(session, organization_id=org.id, name="lag", role="editor", created_by=None)
    ws_lag: list[float] = []
    offers_lag: list[float] = []
    with TestClient(create_app(ctx=ctx, scheduler=False)) as client:
        headers = {"X-API-Key": key}
        with client.websocket_connect(f"/ws/prices?token={key}&provider=lambda&region=us-east-1") as ws:
            for run in range(runs + 1):
                cents = 200 + run
                stub.set_cents(cents)
                client.post("/providers/lambda/refresh", headers=headers)
                while True:
                    event = ws.receive_json()
                    if event["instance_type"] == "gpu_1x_h100_sxm5" and event["new_price_per_hour"] == cents / 100:
                        break
                got_ws = time.perf_counter()
                while True:
                    items = client.get("/offers", params={"provider": "lambda", "region": "us-east-1"},
                                       headers=headers).json()["items"]
                    if any(o["instance_type"] == "gpu_1x_h100_sxm5" and o["price_per_hour"] == cents / 100
                           for o in items):
                        break
                got_offers = time.perf_counter()
                if run:  # the first run warms imports and caches
                    ws_lag.append(got_ws - stub.sent_at[-1])
                    offers_lag.append(got_offers - stub.sent_at[-1])
    ctx.close()
    stub.server.shutdown()
    if worker is not None:
        worker.terminate()
        worker.wait(30)
        drop_database(str(pg_url), db_url)

    def p95(values: list[float]) -> float:
        values = sorted(values)
        return round(values[max(0, math.ceil(0.95 * len(values)) - 1)] * 1000, 1)

    return {
        "mode": "production (PostgreSQL, RQ worker process, Redis pub/sub)" if production
        else "embedded (SQLite, in-process jobs and events)",
        "runs": len(ws_lag),
        "ws_prices_p50_ms": round(statistics.median(ws_lag) * 1000, 1),
        "ws_prices_p95_ms": p95(ws_lag),
        "offers_visible_p95_ms": p95(offers_lag),
    }


def timescale_maintenance(url: str) -> dict[str, Any]:
    """TimescaleDB only: how much of the hourly aggregate the ingest materialized, the cost of a
    catch-up refresh over everything (what is left after the ingests' own refreshes), of a forced full
    re-materialization, and of compressing every chunk past the compression policy's age (7 days),
    with the tick table's size before and after."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    out: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            schema, table = conn.execute(text(
                "SELECT materialization_hypertable_schema, materialization_hypertable_name "
                "FROM timescaledb_information.continuous_aggregates WHERE view_name = 'price_ticks_hourly'")).one()
            out["materialized_hourly_rows"] = conn.execute(text(f'SELECT count(*) FROM "{schema}"."{table}"')).scalar_one()
            for name, force in (("catch_up_refresh_seconds", "false"), ("full_refresh_forced_seconds", "true")):
                t0 = time.perf_counter()
                conn.execute(text("CALL refresh_continuous_aggregate('price_ticks_hourly', NULL, NULL, "
                                  f"force => {force})"))
                out[name] = round(time.perf_counter() - t0, 2)
            size = "SELECT pg_size_pretty(hypertable_size('price_ticks'))"
            out["price_ticks_size_before_compression"] = conn.execute(text(size)).scalar_one()
            chunks = [c for (c,) in conn.execute(text(
                "SELECT c FROM show_chunks('price_ticks', older_than => INTERVAL '7 days') AS c"))]
            t0 = time.perf_counter()
            for chunk in chunks:
                conn.execute(text("SELECT compress_chunk(CAST(:c AS regclass), if_not_compressed => true)"),
                             {"c": chunk})
            out["compressed_chunks"] = len(chunks)
            out["compression_seconds"] = round(time.perf_counter() - t0, 2)
            out["price_ticks_size_after_compression"] = conn.execute(text(size)).scalar_one()
    finally:
        engine.dispose()
    return out


def timescale_available(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            from cloudarb.db.migrate import timescaledb_usable

            return timescaledb_usable(conn)
    finally:
        engine.dispose()


def run_one(base_url: str, args: argparse.Namespace, *, history: bool) -> dict[str, Any]:
    url = create_database(base_url)
    try:
        migrate.upgrade(url)
        db = Database(url)
        offers = load_snapshot(snapshot_path())
        with db.session() as session:
            bulk.write_quotes(session, offers)
        result: dict[str, Any] = {"timescaledb": timescale.uses_timescale(db.sessionmaker())}
        result.update(write_ticks(db, offers, args.ticks, args.days, args.seed, args.batch_ticks,
                                  args.writers))
        end = result.pop("end")
        with db.session() as session:
            result["stored_ticks"] = session.execute(text("SELECT count(*) FROM price_ticks")).scalar_one()
            result["hourly_rows"] = session.execute(text("SELECT count(*) FROM price_ticks_hourly")).scalar_one()
            size = session.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar_one()
            result["database_size"] = size
        db.dispose()
        if history:
            result["history"] = history_latency(url, offers[0].offer_key, end, args.queries)
        if result["timescaledb"]:
            result["timescaledb_maintenance"] = timescale_maintenance(url)
            if history:
                result["history_after_compression"] = history_latency(url, offers[0].offer_key, end, args.queries)
        return result
    finally:
        if not args.keep:
            drop_database(base_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="A PostgreSQL server (a scratch DB is made).")
    parser.add_argument("--timescale-url", default=None, help="A PostgreSQL server with TimescaleDB, if any.")
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=31.0, help="Time span the ticks cover.")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch-ticks", type=int, default=250_000,
                        help="Ticks per write transaction (each writer's; ~100 ticks per offer at the default).")
    parser.add_argument("--writers", type=int, default=2, help="Parallel writer connections (one per core).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch databases.")
    parser.add_argument("--lag-runs", type=int, default=20, help="End-to-end lag samples (0 = skip).")
    parser.add_argument("--redis-url", default=os.environ.get("CLOUDARB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                        help="Redis for the production-mode lag run ('' = embedded mode only).")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "ticks_requested": args.ticks,
        "generated_by": "ingestion.simulator.MarketSimulator over the bundled snapshot's offers (seeded)",
        "cpu_count": os.cpu_count(),
    }
    if args.lag_runs:
        out["end_to_end_lag"] = end_to_end_lag(args.lag_runs)
        if args.redis_url:
            out["end_to_end_lag_production"] = end_to_end_lag(args.lag_runs, pg_url=args.database_url,
                                                              redis_url=args.redis_url)
    plain = run_one(args.database_url, args, history=True)
    out["postgresql"] = plain
    if plain["timescaledb"]:
        out["postgresql_plain"] = "not measured (this server has TimescaleDB installed)"
    ts_url = args.timescale_url or (args.database_url if timescale_available(args.database_url) else None)
    if ts_url is None:
        out["timescaledb"] = "not available (extension not installed on this server)"
    elif not plain["timescaledb"]:
        out["timescaledb"] = run_one(ts_url, args, history=True)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
