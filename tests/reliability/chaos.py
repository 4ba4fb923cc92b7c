"""Fault scenarios over a private stack: jobs are submitted through the API while a fault strikes, then
every accepted job must reach a terminal status within the reaper's bound and every acknowledged
write must be stored. Each scenario returns its figures (used by the tests and scripts/chaos_jobs.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from tests.reliability.stack import Stack, wait_until

TERMINAL = {"finished", "infeasible", "failed", "canceled"}
REQUEST = {
    "name": "chaos",
    "workloads": [{"id": "serve", "gpus_min": 2, "min_vram_gb": 24, "workload_type": "inference"}],
    "time_limit_s": 2,
}


@dataclass
class Figures:
    fault: str
    accepted: int = 0
    refused_503: int = 0
    server_errors: int = 0
    other: dict[str, int] = field(default_factory=dict)
    stuck: int = 0
    missing_writes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    settle_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bound_s(stack: Stack) -> float:
    """How long after the fault's end every accepted job must be terminal: the reaper notices a lost
    queued job after JOB_LOST_AFTER_S and a dead worker's job after JOB_STALE_AFTER_S, each attempt
    then runs (a solve of at most SOLVE_TIME_LIMIT_S), for at most JOB_MAX_ATTEMPTS attempts; plus a
    worker's start-up (preloading) when the fault killed it."""
    v = stack.values
    per_attempt = float(v["JOB_STALE_AFTER_S"]) + float(v["JOB_LOST_AFTER_S"]) + float(v["SOLVE_TIME_LIMIT_S"]) + 5
    return 60 + per_attempt * int(v["JOB_MAX_ATTEMPTS"])


def run(stack: Stack, fault: str, inject: Callable[[], None], *, jobs: int = 12, key: str | None = None) -> Figures:
    """Submit optimizations (one every 0.25 s) before, during and after ``inject``."""
    key = key or stack.api_key(f"chaos-{fault}")
    figures = Figures(fault)
    accepted: list[dict[str, Any]] = []
    lock = threading.Lock()

    recovered = threading.Event()

    def submit_all() -> None:
        """``jobs`` submissions, then as many as the fault lasts, then a third of ``jobs`` more after
        the fault has ended (so acceptance after recovery is measured too)."""
        after = 0
        with httpx.Client(base_url=stack.base, headers={"X-API-Key": key}, timeout=30) as client:
            for n in range(jobs * 20):
                if n >= jobs and recovered.is_set():
                    after += 1
                    if after > jobs // 3:
                        break
                try:
                    r = client.post("/optimize", json=REQUEST)
                except httpx.HTTPError:
                    code = "transport"
                else:
                    code = str(r.status_code)
                    if r.status_code == 202:
                        with lock:
                            accepted.append(r.json())
                with lock:
                    if code == "503":
                        figures.refused_503 += 1
                    elif code.startswith("5"):
                        figures.server_errors += 1
                    elif code != "202":
                        figures.other[code] = figures.other.get(code, 0) + 1
                time.sleep(0.25)

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    time.sleep(jobs * 0.25 / 3)
    inject()
    recovered.set()
    submitter.join()
    started = time.monotonic()
    job_ids = [a["job_id"] for a in accepted]

    def settled() -> bool:
        try:
            statuses = stack.job_statuses(job_ids)
        except Exception:  # noqa: BLE001 - the database may still be coming back
            return False
        return len(statuses) == len(job_ids) and all(s in TERMINAL for s in statuses.values())

    wait_until(settled, bound_s(stack), 0.5)
    figures.settle_s = round(time.monotonic() - started, 1)
    statuses = stack.job_statuses(job_ids)
    figures.accepted = len(accepted)
    figures.stuck = sum(1 for j in job_ids if statuses.get(j) not in TERMINAL)
    for s in statuses.values():
        figures.statuses[s] = figures.statuses.get(s, 0) + 1
    stored = stack.stored_optimizations([a["id"] for a in accepted])
    figures.missing_writes = sum(1 for a in accepted if a["id"] not in stored) + len(job_ids) - len(statuses)
    return figures


def redis_restarted_empty(stack: Stack) -> Figures:
    return run(stack, "redis_restarted_empty", lambda: stack.redis.restart_empty(down_s=2.0))


def postgres_stopped_and_restarted(stack: Stack) -> Figures:
    def inject() -> None:
        stack.pg.stop()
        time.sleep(3.0)
        stack.pg.start()

    return run(stack, "postgres_stopped_and_restarted", inject)


def worker_killed(stack: Stack) -> Figures:
    """Kill the worker (and its work horse) mid-flow; a fresh one takes over, as a supervisor would."""

    def inject() -> None:
        victim = stack.workers[-1]
        victim.kill()
        stack.start_worker()

    return run(stack, "worker_killed", inject)


SCENARIOS: dict[str, Callable[[Stack], Figures]] = {
    "redis_restarted_empty": redis_restarted_empty,
    "postgres_stopped_and_restarted": postgres_stopped_and_restarted,
    "worker_killed": worker_killed,
}
