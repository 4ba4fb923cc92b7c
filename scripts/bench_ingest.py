"""Ingest benchmark, printing JSON: tick write throughput into PostgreSQL and /prices/history latency.

What it does, in a fresh PostgreSQL database of its own (dropped at the end unless --keep):
1. migrates it (TimescaleDB objects when the extension is installed there, plain ones otherwise)
   and writes the bundled real price snapshot as the current offers (`write_quotes`);
2. generates ``--ticks`` price ticks with the seeded market simulator (ingestion.simulator), for every
   snapshot offer over ``--days`` days (the step between ticks of one offer follows from the two),
   and writes them through the production write path `cloudarb.ingest.bulk.write_tick_lines`
   (COPY into a staging table, INSERT ... ON CONFLICT DO NOTHING into price_ticks, and the hourly
   aggregate), one transaction per batch; a second pass re-writes one batch to show it adds nothing;
3. times ``GET /prices/history`` for one offer over the last 30 days at hourly buckets through the
   real ASGI app (in-process client, so no network hop; a JWT bearer token, as the dashboard sends),
   ``--queries`` times after 5 warm-up requests, and reports p50/p95.

4. with --lag-runs N (default 20): end-to-end lag in embedded mode (SQLite, in-process jobs and
   events): a local HTTP server plays Lambda's instance-types API with a new H100 price each run; the
   clock starts when the server has sent its response and stops when the change arrives on /ws/prices
   and when /offers shows it (refresh triggered through POST /providers/lambda/refresh).

"write_ticks_per_s" is ticks / wall time of the write phase (``--writers`` connections in parallel, each
formatting its COPY text and writing its own offers); "end_to_end" also counts simulating the ticks. With --timescale-url (a server with the extension) the write is measured
there too; without it that figure reads "not available". The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import threading
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from cloudarb.bootstrap import snapshot_path  # noqa: E402
from cloudarb.db import migrate  # noqa: E402
from cloudarb.db.engine import Database  # noqa: E402
from cloudarb.ingest import bulk  # noqa: E402
from ingestion.catalogs import load_snapshot  # noqa: E402
from ingestion.schemas import PriceQuote  # noqa: E402
from ingestion.simulator import MarketConfig, MarketSimulator, TickBatch  # noqa: E402

DEFAULT_URL = os.environ.get("CLOUDARB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def batch_text(batch: TickBatch, keys: np.ndarray) -> str:
    """COPY text of one simulator batch, formatted column-wise (pandas' C CSV writer)."""
    frame = pd.DataFrame(
        {
            "offer_key": keys[batch.offer_index],
            "observed_at": np.datetime_as_string(batch.observed_at, unit="s"),
            "price": batch.price_per_hour,
            "avail": np.where(batch.capacity == 2, "0", "\\N"),
        }
    )
    frame["observed_at"] = frame["observed_at"] + "+00"
    out = io.StringIO()
    frame.to_csv(out, sep="\t", header=False, index=False, lineterminator="\n")
    return out.getvalue()


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
    db: Database, offers: list[PriceQuote], ticks: int, days: float, seed: int, batch_ticks: int = 100_000,
    writers: int = 2,
) -> dict[str, Any]:
    keys = np.array([o.offer_key for o in offers], dtype=object)
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
    # works offer-major, so simulate everything, then write in time order, batch_ticks at a time.
    # With several writers, each takes a disjoint set of offers (as one refresh job per provider
    # would), so writers never contend for the same rows.
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
    totals = {"written": 0, "inserted": 0, "db_s": 0.0}
    lock = threading.Lock()
    first: list[str] = []

    def writer(part: int) -> None:
        mine = np.flatnonzero(merged.offer_index % writers == part)
        for lo in range(0, len(mine), batch_ticks):
            idx = mine[lo : lo + batch_ticks]
            batch = TickBatch(merged.offer_index[idx], merged.observed_at[idx], merged.price_per_hour[idx],
                              merged.capacity[idx])
            chunk = batch_text(batch, keys)
            t0 = time.perf_counter()
            with db.session() as session:
                n = bulk.write_tick_lines(session, [chunk])
            with lock:
                totals["db_s"] += time.perf_counter() - t0
                totals["inserted"] += n
                totals["written"] += len(batch)
                if not first:
                    first.append(chunk)

    write_began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(writer, range(writers)))
    write_wall_s = time.perf_counter() - write_began
    written, inserted, db_s = int(totals["written"]), int(totals["inserted"]), float(totals["db_s"])
    first_text = first[0]
    total_s = time.perf_counter() - began
    t0 = time.perf_counter()
    with db.session() as session:
        again = bulk.write_tick_lines(session, [first_text])
    rewrite_s = time.perf_counter() - t0
    return {
        "ticks": written,
        "inserted": inserted,
        "step_s": step_s,
        "span_days": round(step_s * steps / 86400, 2),
        "writers": writers,
        "simulate_seconds": round(simulate_s, 2),
        "write_wall_seconds": round(write_wall_s, 2),
        "write_ticks_per_s": round(written / write_wall_s),
        "db_call_seconds_summed": round(db_s, 2),
        "end_to_end_seconds": round(total_s, 2),
        "end_to_end_ticks_per_s": round(written / total_s),
        "rewrite_batch_ticks": first_text.count("\n"),
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
        user = accounts.create_user(session, organization_id=org.id, email="bench@example.com",
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
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
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


def end_to_end_lag(runs: int) -> dict[str, Any]:
    import tempfile

    from fastapi.testclient import TestClient

    from cloudarb.api.app import create_app
    from cloudarb.config import Settings
    from cloudarb.context import build_context
    from cloudarb.storage import accounts

    recorded = ROOT / "tests" / "ingestion" / "recorded" / "lambda" / "instance_types.json"
    stub = _LambdaStub(json.loads(recorded.read_text()))
    tmp = Path(tempfile.mkdtemp(prefix="cloudarb-lag-"))
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp / 'lag.db'}", data_dir=tmp,
                        secret_key="bench-" + "x" * 40, lambda_api_key="bench",
                        ingest_base_urls={"lambda": stub.url}, ingest_retry_attempts=1)
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

    def p95(values: list[float]) -> float:
        values = sorted(values)
        return round(values[max(0, math.ceil(0.95 * len(values)) - 1)] * 1000, 1)

    return {
        "mode": "embedded (SQLite, in-process jobs and events)",
        "runs": len(ws_lag),
        "ws_prices_p50_ms": round(statistics.median(ws_lag) * 1000, 1),
        "ws_prices_p95_ms": p95(ws_lag),
        "offers_visible_p95_ms": p95(offers_lag),
    }


def timescale_available(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first()
            return row is not None
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
        result: dict[str, Any] = {"timescaledb": bulk.uses_timescale(db.sessionmaker())}
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
    parser.add_argument("--batch-ticks", type=int, default=100_000, help="Ticks per write transaction.")
    parser.add_argument("--writers", type=int, default=2, help="Parallel writer connections (one per core).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch databases.")
    parser.add_argument("--lag-runs", type=int, default=20, help="End-to-end lag samples (0 = skip).")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "ticks_requested": args.ticks,
        "generated_by": "ingestion.simulator.MarketSimulator over the bundled snapshot's offers (seeded)",
        "cpu_count": os.cpu_count(),
    }
    if args.lag_runs:
        out["end_to_end_lag"] = end_to_end_lag(args.lag_runs)
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
