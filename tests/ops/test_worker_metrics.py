"""A real `cloudarb worker` (RQ on Redis, a work horse forked per job): its /metrics counts the jobs
its horses ran, in one file per worker, and its heartbeat file stays fresh."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cloudarb.api.app import create_app
from cloudarb.context import build_context
from tests.reliability.stack import Process
from tests.support import REDIS_URL, Tenant, make_settings, small_request, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def total(body: str, name: str, **labels: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(body) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_worker_metrics_count_jobs_of_its_work_horses(tmp_path: Path, ops_template: Path) -> None:
    from tests.ops.test_telemetry import free_port

    db = tmp_path / "cloudarb.db"
    shutil.copy(ops_template, db)
    queue = f"cloudarb-ops-{uuid.uuid4().hex[:8]}"
    settings = make_settings(database_url=f"sqlite:///{db}", data_dir=tmp_path, redis_url=REDIS_URL, queue_name=queue)
    port = free_port()
    heartbeat = tmp_path / "alive"
    metrics_dir = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")} | {
        "CLOUDARB_DATABASE_URL": settings.database_url, "CLOUDARB_REDIS_URL": REDIS_URL,
        "CLOUDARB_QUEUE_NAME": queue, "CLOUDARB_DATA_DIR": str(tmp_path), "CLOUDARB_LOG_LEVEL": "INFO",
        "CLOUDARB_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "CLOUDARB_METRICS_TOKEN": "worker-scrape", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONPATH": str(ROOT)}
    worker = Process([sys.executable, "-m", "cloudarb", "worker", "--no-scheduler", "--metrics-port", str(port),
                      "--heartbeat-file", str(heartbeat)], env, tmp_path / "worker.log")
    ctx = build_context(settings)
    try:
        tenant = Tenant(ctx, "Ops")
        with TestClient(create_app(ctx=ctx, scheduler=False)) as client:
            answers = [client.post("/optimize", json=small_request(), headers=tenant.headers()).json()
                       for _ in range(2)]
            ids = [a["id"] for a in answers]

            def all_finished() -> bool:
                return all(client.get(f"/optimize/{o}", headers=tenant.headers()).json()["status"] == "finished"
                           for o in ids)

            wait_for(all_finished, timeout=180, interval=0.2)
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer worker-scrape"})
        assert scrape.status_code == 200
        assert total(scrape.text, "cloudarb_jobs_total", kind="optimize", outcome="finished") == 2
        assert total(scrape.text, "cloudarb_solve_seconds_count") == 2
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 401
        horse_files = [p.name for p in metrics_dir.iterdir() if "horse" in p.name]
        assert sorted(n.split("_")[0] for n in horse_files) == ["counter", "histogram"], horse_files
        assert heartbeat.exists()
        lines = [line for line in (tmp_path / "worker.log").read_text().splitlines() if line.strip()]
        assert lines and all(line.startswith("{") for line in lines), lines[:5]  # one format, JSON
        records = [json.loads(line) for line in lines]
        # a line logged inside a job (the solver's, in the work horse) names the job
        assert {r.get("job_id") for r in records if r["logger"].startswith("optimizer")} & {a["job_id"] for a in answers}
    finally:
        worker.stop()
        ctx.close()
