"""Control-plane benchmark for the team's own hosts, printing JSON.

On a PostgreSQL database of its own (``CLOUDARB_TEST_PG_URL``'s server; dropped at the end):
1. registers ``--nodes`` hosts of ``--gpus`` GPUs each (join token, GPUs, offers) and times it;
2. times a heartbeat of a busy node (host report, every GPU held by a running container that the
   report lists, the reply's commands), the path every agent takes every interval;
3. times placements racing for one node: ``--racers`` threads create a placement each at once; the
   invariant (every GPU held at most once; exactly ``--gpus`` assigned, the rest queued) is checked and
   reported with the wall time of the race;
4. times draining a queue: destroying a running placement and starting the next queued one.
Reports p50/p95/max per measure.

Usage: PYTHONPATH=. .venv/bin/python scripts/bench_nodes.py [--nodes 20] [--gpus 8] [--racers 16] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from cloudarb.agent.protocol import ContainerReport, GpuReport, Heartbeat, HostReport, RegisterRequest  # noqa: E402
from cloudarb.config import NodesSettings  # noqa: E402
from cloudarb.db import migrate  # noqa: E402
from cloudarb.db.engine import Database  # noqa: E402
from cloudarb.db.models_nodes import GpuAssignment, Node, Placement  # noqa: E402
from cloudarb.nodes import agents, placements, service  # noqa: E402
from cloudarb.nodes.placements import PlacementRequest  # noqa: E402
from cloudarb.storage import accounts  # noqa: E402

PG_URL = os.environ.get("CLOUDARB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SETTINGS = NodesSettings()


def host(name: str, gpus: int) -> HostReport:
    return HostReport(hostname=name, cpus=64, memory_mib=512 * 1024, gpus=[
        GpuReport(index=i, uuid=f"GPU-{name}-{i}", name="NVIDIA H100 80GB HBM3", memory_total_mib=81559,
                  mig_mode="disabled") for i in range(gpus)])


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def register(db: Database, org: str, name: str, gpus: int) -> str:
    with db.session() as session:
        token = service.create_join_token(session, SETTINGS, organization_id=org, actor="bench", node_name=name,
                                          site="", price_per_gpu_hour=1.0, ttl_s=None).secret
    with db.session() as session:
        return agents.register(session, SETTINGS, RegisterRequest(join_token=token, host=host(name, gpus))).node.id


def place(db: Database, org: str, node_id: str, key: str) -> str:
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        return placements.create(session, SETTINGS, PlacementRequest(
            organization_id=org, node=node, gpu_label="H100 SXM", instance_key=key, image="img")).placement.id


def run_all(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    with db.session() as session:
        org = accounts.get_or_create_org(session, name="bench").id
    reg = [0.0] * args.nodes
    ids: list[str] = []
    for i in range(args.nodes):
        start = time.perf_counter()
        ids.append(register(db, org, f"n{i}-{uuid.uuid4().hex[:6]}", args.gpus))
        reg[i] = time.perf_counter() - start
    busy = ids[0]
    running = [place(db, org, busy, f"busy-{i}") for i in range(args.gpus)]
    with db.session() as session:
        node = session.get(Node, busy)
        assert node is not None
        for p in session.scalars(select(Placement).where(Placement.id.in_(running))):
            p.state, p.container_id = "running", f"c-{p.id}"
        report = Heartbeat(host=host(node.name, args.gpus), containers=[
            ContainerReport(placement_id=pid, container_id=f"c-{pid}", state="running",
                            gpu_uuids=[f"GPU-{node.name}-{i}"]) for i, pid in enumerate(running)])

    def beat() -> None:
        with db.session() as session:
            n = session.get(Node, busy)
            assert n is not None
            agents.heartbeat(session, SETTINGS, n, report)

    heartbeats = [timed(beat) for _ in range(args.runs)]
    race_node = ids[1] if len(ids) > 1 else register(db, org, f"race-{uuid.uuid4().hex[:6]}", args.gpus)
    barrier = threading.Barrier(args.racers)
    latencies: list[float] = []

    def racer(i: int) -> None:
        barrier.wait()
        latencies.append(timed(lambda: place(db, org, race_node, f"race-{i}")))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(args.racers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    race_wall = time.perf_counter() - start
    with db.session() as session:
        states = list(session.scalars(select(Placement.state).where(Placement.node_id == race_node)))
        held = session.scalar(select(func.count()).select_from(GpuAssignment)
                              .where(GpuAssignment.node_id == race_node)) or 0
        uuids = [u for p in session.scalars(select(Placement).where(Placement.node_id == race_node,
                                                                     Placement.state == "assigned"))
                 for u in p.gpu_uuids]
    drains: list[float] = []
    for _ in range(min(args.runs, args.racers - args.gpus)):
        with db.session() as session:
            victim = session.scalars(select(Placement).where(Placement.node_id == race_node,
                                                             Placement.state == "assigned").limit(1)).first()
            if victim is None:
                break
            started = time.perf_counter()
            placements.end(session, SETTINGS, victim, state="destroyed")
        drains.append(time.perf_counter() - started)
    return {
        "nodes": args.nodes, "gpus_per_node": args.gpus, "racers": args.racers,
        "register": stats(reg), "heartbeat_busy_node": stats(heartbeats),
        "race": {"wall_ms": round(race_wall * 1000, 2), "create": stats(latencies),
                 "assigned": states.count("assigned"), "queued": states.count("queued"), "gpus_held": int(held),
                 "invariant_ok": len(uuids) == len(set(uuids)) == args.gpus == int(held)},
        "destroy_and_start_next": stats(drains) if drains else None,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--racers", type=int, default=16)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    name = f"cloudarb_bench_nodes_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db: Database | None = None
    try:
        migrate.upgrade(url)
        db = Database(url)
        print(json.dumps(run_all(db, args), indent=2))
    finally:
        if db is not None:
            db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
