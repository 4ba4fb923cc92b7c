"""Metrics across processes (prometheus_client's multiprocess files), the worker's metrics server and
the JSON log format."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cloudarb import logs

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import os, sys
from cloudarb import telemetry
n = int(sys.argv[1])
for _ in range(n):
    telemetry.request_done("GET", "/livez", 200, 0.001)
if len(sys.argv) > 2:  # act as a worker: two work horses, one after the other, each runs a job
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            telemetry.become_work_horse()
            telemetry.job_ended("optimize", "finished", 1.5)
            os._exit(0)
        os.waitpid(pid, 0)
"""


def run_writer(directory: Path, n: int, *extra: str) -> int:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", WRITER, str(n), *extra], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return 0


def scrape(directory: Path) -> dict[str, float]:
    code = ("import sys; from prometheus_client import generate_latest; from cloudarb import telemetry; "
            "sys.stdout.write(generate_latest(telemetry.process_registry()).decode())")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(out.stdout):
        for s in family.samples:
            totals[s.name] = totals.get(s.name, 0.0) + s.value
    return totals


def test_counts_of_several_processes_add_up_and_survive_them(tmp_path: Path) -> None:
    run_writer(tmp_path, 7)
    run_writer(tmp_path, 5)
    run_writer(tmp_path, 3, "worker")
    totals = scrape(tmp_path)
    assert totals["cloudarb_http_requests_total"] == 15
    assert totals["cloudarb_http_request_seconds_count"] == 15
    assert totals["cloudarb_jobs_total"] == 2
    assert totals["cloudarb_job_seconds_sum"] == 3.0


def test_work_horses_of_one_worker_share_one_file(tmp_path: Path) -> None:
    run_writer(tmp_path, 1, "worker")
    horse_files = sorted(p.name for p in tmp_path.iterdir() if "horse" in p.name)
    assert len(horse_files) == 2, horse_files  # counter_<ppid>-horse.db and histogram_<ppid>-horse.db
    assert {name.split("_")[0] for name in horse_files} == {"counter", "histogram"}


def test_prepare_dir_starts_fresh_and_removes_dead_processes_dirs(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from cloudarb import telemetry; "
            "print(telemetry.prepare_dir(Path(sys.argv[1]), 'serve'))")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {"PYTHONPATH": str(ROOT)}
    stale = tmp_path / "serve-999999999"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"x")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert Path(out).parent == tmp_path and Path(out).name.startswith("serve-")
    assert not stale.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_metrics_server_wants_the_token() -> None:
    from cloudarb import telemetry

    port = free_port()
    server = telemetry.serve_metrics("127.0.0.1", port, token="s3cret")
    try:
        telemetry.job_ended("ingest", "finished", 0.2)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/livez").json() == {"status": "alive"}
        assert httpx.get(f"{base}/metrics").status_code == 401
        assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        body = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer s3cret"}).text
        assert 'cloudarb_jobs_total{kind="ingest",outcome="finished"}' in body
        assert generate_latest(telemetry.process_registry()).decode().count("cloudarb_jobs_total{") >= 1
    finally:
        server.shutdown()


def test_json_logs_carry_extra_fields_and_bound_ids() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        logs.configure("INFO", stream=stream)
        log = logging.getLogger("cloudarb.test")
        with logs.bound(request="req-1"), logs.bound(job="job-9"):
            log.info("step %s done", "load", extra={"offers": 12, "when": {"a": [1, 2]}})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        logging.getLogger("uvicorn.access").warning("GET /x 200")
    finally:
        for handler in list(root.handlers):
            if handler not in before[0]:
                root.removeHandler(handler)
        root.setLevel(before[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first, second, third = lines
    assert first["msg"] == "step load done" and first["level"] == "info" and first["logger"] == "cloudarb.test"
    assert first["request_id"] == "req-1" and first["job_id"] == "job-9"
    assert first["offers"] == 12 and first["when"] == {"a": [1, 2]}
    assert "request_id" not in second and "ValueError: boom" in second["exc"]
    assert third["logger"] == "uvicorn.access" and third["msg"] == "GET /x 200"


def test_uvicorn_log_config_uses_the_json_formatter() -> None:
    """What uvicorn applies in each server process: the root handler formats with JsonFormatter and
    uvicorn's loggers hand their lines to it (applied to a private manager, not this test run's root)."""
    import importlib

    config = logs.uvicorn_config("warning")
    module, _, name = config["formatters"]["json"]["()"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is logs.JsonFormatter
    assert config["root"] == {"handlers": ["default"], "level": "WARNING"}
    for logger in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][logger] == {"handlers": [], "propagate": True}


def test_the_log_module_is_standard_library_only() -> None:
    """The node agent imports it and installs without the server's packages."""
    import ast

    tree = ast.parse(Path(logs.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_process_stats_cover_each_live_process_of_the_deployment(tmp_path: Path) -> None:
    code = ("import sys, time; from cloudarb import telemetry; telemetry.request_done('GET', '/x', 200, 0.1); "
            "print('ready', flush=True); time.sleep(60)")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        from cloudarb.telemetry import ProcessStats

        families = {f.name: f for f in ProcessStats(str(tmp_path)).collect()}
        assert [s.labels["pid"] for s in families["cloudarb_process_resident_memory_bytes"].samples] == [
            str(child.pid)]
        assert families["cloudarb_process_resident_memory_bytes"].samples[0].value > 1_000_000
        assert families["cloudarb_processes"].samples[0].value == 1
    finally:
        child.kill()
        child.wait()
    gone = {f.name: f for f in ProcessStats(str(tmp_path)).collect()}
    assert gone["cloudarb_processes"].samples[0].value == 0
