#!/usr/bin/env python3
"""How fast a job starts: from ``POST /optimize`` to the solver's first phase, and the CLI's wall time.

Three measurements, printed as one JSON document:

* ``rq``: a real API server and a ``cloudarb worker`` (RQ on Redis, a work horse forked per job)
  against PostgreSQL. Each trial POSTs the example fleet, waits for the job to end, then reads the
  job's stored events: the time from the POST to the first solver phase (the first progress event
  after ``building``), and the steps in between (queued, running, loading, building).
* ``embedded``: the same against ``cloudarb serve`` on SQLite with in-process jobs.
* ``cli``: ``cloudarb optimize examples/fleet.json`` (embedded) wall time, the first run (creates
  the database, loads the snapshot) and the warm runs apart.

Trials run one after another on an idle queue, so the figures are start-up latency, not queueing.

    scripts/bench_jobs.py --trials 20 --cli-runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import httpx  # noqa: E402
from bench_api import FLEET, free_port, pct, prepare, stop  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

SETUP_PHASES = {"loading", "building", "demand"}


def stamp(ts: str) -> float:
    when = datetime.fromisoformat(ts)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def one_trial(client: httpx.Client) -> dict[str, float]:
    started = time.time()
    accepted = client.post("/optimize", json=FLEET).json()
    job_id = accepted["job_id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    events = client.get(f"/jobs/{job_id}/events").json()
    events = events["items"] if isinstance(events, dict) else events
    at: dict[str, float] = {}
    for e in events:
        t = stamp(e["ts"]) - started
        if e["type"] == "status":
            at.setdefault(e["status"], t)
        elif e.get("phase") in SETUP_PHASES:
            at.setdefault(e["phase"], t)
        else:
            at.setdefault("solver", t)
    return at


def summarise(trials: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"trials": len(trials)}
    for step in ("queued", "running", "loading", "building", "solver", "finished"):
        values = [t[step] * 1000 for t in trials if step in t]
        if values:
            out[f"post_to_{step}_ms"] = {"p50": round(statistics.median(values), 1), "p95": round(pct(values, 95), 1),
                                         "max": round(max(values), 1)}
    return out


def serve_and_measure(mode: str, trials: int, pg_url: str, redis_url: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"cloudarb-bench-jobs-{mode}-"))
    env, dropdb = prepare("production" if mode == "rq" else "embedded", workdir, pg_url, redis_url)
    key = subprocess.run([sys.executable, "-m", "cloudarb", "admin", "create-api-key", "--org", "bench",
                          "--name", "bench", "--role", "editor"], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "cloudarb", "serve", "--port", str(port)], env=env, cwd=ROOT,
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if mode == "rq":
        procs.append(subprocess.Popen([sys.executable, "-m", "cloudarb", "worker"], env=env, cwd=ROOT,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
            for _ in range(300):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            one_trial(client)  # the first job also waits for the worker to finish starting (preloading)
            results = [one_trial(client) for _ in range(trials)]
    finally:
        stop(procs)
        if dropdb:
            admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{dropdb}" WITH (FORCE)'))
            admin.dispose()
    return summarise(results)


def cli_runs(runs: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="cloudarb-bench-cli-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(CLOUDARB_DATA_DIR=str(workdir), CLOUDARB_DATABASE_URL=f"sqlite:///{workdir / 'cloudarb.db'}")
    cloudarb = Path(sys.executable).with_name("cloudarb")
    command = [str(cloudarb)] if cloudarb.exists() else [sys.executable, "-m", "cloudarb"]
    walls = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run([*command, "optimize", "examples/fleet.json", "--json"], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"cloudarb optimize failed: {done.stderr[-2000:]}")
    warm = walls[1:]
    return {"first_run_s": round(walls[0], 2), "runs": len(warm), "wall_s": {
        "p50": round(statistics.median(warm), 2), "p95": round(pct(warm, 95), 2), "max": round(max(warm), 2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20, help="jobs per server mode")
    ap.add_argument("--cli-runs", type=int, default=5, help="warm CLI runs (after one first run)")
    ap.add_argument("--only", choices=["rq", "embedded", "cli"], action="append",
                    help="run only these measurements (repeatable)")
    ap.add_argument("--pg-url", default=os.environ.get("CLOUDARB_TEST_PG_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--redis-url", default=os.environ.get("CLOUDARB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = ap.parse_args()
    wanted = args.only or ["rq", "embedded", "cli"]
    out: dict[str, Any] = {"benchmark": "jobs", "fleet": "examples/fleet.json", "cores": os.cpu_count(),
                           "at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "load_avg_1m_start": round(os.getloadavg()[0], 2)}
    for mode in ("rq", "embedded"):
        if mode in wanted:
            print(f"bench_jobs: {mode}, {args.trials} trials", file=sys.stderr, flush=True)
            out[mode] = serve_and_measure(mode, args.trials, args.pg_url, args.redis_url)
    if "cli" in wanted:
        print(f"bench_jobs: cli, 1 + {args.cli_runs} runs", file=sys.stderr, flush=True)
        out["cli"] = cli_runs(args.cli_runs)
    out["load_avg_1m_end"] = round(os.getloadavg()[0], 2)  # figures on a shared machine: compare like with like
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
