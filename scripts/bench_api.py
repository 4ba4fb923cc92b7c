#!/usr/bin/env python3
"""API latency under a loopback load, and the time from POST /optimize to the first WebSocket event.

Starts a real server (uvicorn) and RQ worker against PostgreSQL + Redis (``--mode production``, the
default) or the embedded mode (``--mode embedded``, SQLite + in-process jobs), drives an open-loop
load at a fixed rate (latency is measured from each request's scheduled start, so a slow server
cannot hide queueing), and prints one JSON document.

    scripts/bench_api.py --rate 200 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

GRACE_S = 30.0
QUICK = {"gpu_type": "H100 SXM", "gpu_count": 8, "budget_per_hour": 300}
FLEET = json.loads((ROOT / "examples" / "fleet.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "achieved_rps": round((len(latencies) + errors) / elapsed, 1),
        "p50_ms": round(pct(ms, 50), 2),
        "p95_ms": round(pct(ms, 95), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
    }


async def open_loop(client: httpx.AsyncClient, method: str, path: str, rate: float, duration: float,
                    **kwargs: Any) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    interval = 1.0 / rate
    start = time.perf_counter()
    n = int(rate * duration)
    sem = asyncio.Semaphore(512)

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i * interval
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        async with sem:
            try:
                r = await client.request(method, path, **kwargs)
                ok = r.status_code < 400
            except httpx.HTTPError:
                ok = False
        if ok:
            latencies.append(time.perf_counter() - scheduled)
        else:
            errors += 1

    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=duration + GRACE_S)
    for task in pending:  # still unanswered long after the phase: counted, not waited for
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    result = summary(latencies, errors + len(pending), time.perf_counter() - start)
    result["unanswered_after_grace"] = len(pending)
    return result


async def first_event_times(base: str, key: str, trials: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    first, running, terminal = [], [], []
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
        for _ in range(trials):
            t0 = time.perf_counter()
            r = await client.post("/optimize", json=FLEET)
            accepted = r.json()
            ws_url = base.replace("http", "ws", 1) + f"/ws/jobs/{accepted['job_id']}?token={key}"
            async with connect(ws_url) as ws:
                seen_first = False
                async for message in ws:
                    event = json.loads(message)
                    now = time.perf_counter() - t0
                    if not seen_first:
                        first.append(now)
                        seen_first = True
                    if event.get("type") == "status" and event.get("status") == "running":
                        running.append(now)
                    if event.get("type") == "status" and event.get("terminal"):
                        terminal.append(now)
                        break
    return {
        "trials": trials,
        "post_to_first_event_ms": {"p50": round(statistics.median(first) * 1000, 1),
                                   "p95": round(pct(first, 95) * 1000, 1)},
        "post_to_running_ms": {"p50": round(statistics.median(running) * 1000, 1),
                               "p95": round(pct(running, 95) * 1000, 1)},
        "post_to_result_ms": {"p50": round(statistics.median(terminal) * 1000, 1),
                              "p95": round(pct(terminal, 95) * 1000, 1)},
    }


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is not None:
            continue
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def prepare(mode: str, workdir: Path, pg_url: str, redis_url: str) -> tuple[dict[str, str], str | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(PYTHONPATH=str(ROOT), CLOUDARB_SECRET_KEY="bench-" + "k" * 40, CLOUDARB_LOG_LEVEL="WARNING",
               CLOUDARB_RATE_LIMIT_PER_MINUTE="100000000", CLOUDARB_DATA_DIR=str(workdir))
    dropdb = None
    if mode == "production":
        name = f"cloudarb_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        env["CLOUDARB_DATABASE_URL"] = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        env["CLOUDARB_REDIS_URL"] = redis_url
        env["CLOUDARB_QUEUE_NAME"] = f"bench-{name}"
        dropdb = name
        subprocess.run([sys.executable, "-m", "cloudarb", "db", "upgrade"], env=env, check=True, cwd=ROOT,
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "cloudarb", "db", "seed"], env=env, check=True, cwd=ROOT,
                       capture_output=True)
    else:
        env["CLOUDARB_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"
    return env, dropdb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["production", "embedded"], default="production")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per load phase")
    ap.add_argument("--server-workers", type=int, default=1, help="uvicorn processes (production only)")
    ap.add_argument("--ws-trials", type=int, default=20)
    ap.add_argument("--keep-worker", action="store_true",
                    help="keep the RQ worker solving on this machine during the load phases")
    ap.add_argument("--pg-url", default=os.environ.get("CLOUDARB_TEST_PG_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--redis-url", default=os.environ.get("CLOUDARB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cloudarb-bench-"))
    env, dropdb = prepare(args.mode, workdir, args.pg_url, args.redis_url)
    key = subprocess.run([sys.executable, "-m", "cloudarb", "admin", "create-api-key", "--org", "bench",
                          "--name", "bench", "--role", "editor"], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    port = free_port()
    workers = args.server_workers if args.mode == "production" else 1
    procs = [subprocess.Popen([sys.executable, "-m", "uvicorn", "cloudarb.api.app:create_app", "--factory",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                               "--log-level", "warning", "--no-access-log"],
                              env=env, cwd=ROOT, start_new_session=True)]
    if args.mode == "production":
        procs.append(subprocess.Popen([sys.executable, "-m", "cloudarb", "worker"], env=env, cwd=ROOT,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        def note(msg: str) -> None:
            print(f"bench_api: {msg}", file=sys.stderr, flush=True)

        async def run() -> dict[str, Any]:
            # with an idle queue first: the POST load below leaves a backlog of jobs behind it
            note(f"POST /optimize -> WebSocket events, {args.ws_trials} trials")
            ws = await first_event_times(base, key, args.ws_trials)
            if args.mode == "production" and not args.keep_worker:
                # the workers would run on other machines: keep their solves off the API's two cores
                stop(procs[1:])
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=30,
                                         limits=limits) as client:
                await client.get("/offers")
                note(f"GET /offers at {args.rate}/s for {args.duration}s")
                offers = await open_loop(client, "GET", "/offers", args.rate, args.duration,
                                         params={"gpu_type": "H100 SXM", "limit": 50})
                note(f"POST /optimize/quick-optimize at {args.rate}/s for {args.duration}s")
                posts = await open_loop(client, "POST", "/optimize/quick-optimize", args.rate, args.duration,
                                        json=QUICK)
            return {"get_offers": offers, "post_optimize": posts, "websocket": ws}

        results = asyncio.run(run())
    finally:
        stop(procs)
        if dropdb:
            admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{dropdb}" WITH (FORCE)'))
            admin.dispose()
    print(json.dumps({
        "benchmark": "api",
        "mode": args.mode,
        "rate_rps": args.rate,
        "duration_s": args.duration,
        "server_processes": workers,
        "worker_during_load": bool(args.keep_worker) or args.mode == "embedded",
        "cpus": os.cpu_count(),
        "note": "load generator, server, worker and databases share this machine",
        **results,
    }, indent=2))


if __name__ == "__main__":
    main()
