"""`cloudarb deployments stop|start` as a user runs them (a subprocess, embedded mode) against moto's EC2:
the instance is stopped and started at EC2 (its own state read back), a pause is recorded, and a
Lambda-like refusal is covered in test_stop_start_api."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.deploy.fakes.moto import MotoServer, moto_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_stop_and_start_an_ec2_deployment_from_the_cli(tmp_path: Path, seeded_template: Path,
                                                       moto_server: MotoServer) -> None:  # noqa: F811
    moto_server.reset()
    shutil.copy(seeded_template, tmp_path / "cloudarb.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDARB_", "AWS_"))}
    env.update(CLOUDARB_DATA_DIR=str(tmp_path), CLOUDARB_DATABASE_URL=f"sqlite:///{tmp_path / 'cloudarb.db'}",
               CLOUDARB_DEPLOY_REACHABILITY_CHECK="false", CLOUDARB_AWS_AMI="ami-0a1b2c3d4e5f60718",
               AWS_ENDPOINT_URL_EC2=moto_server.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(ROOT), COLUMNS="200", HOME=str(tmp_path))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cloudarb", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=240)

    request = {"workloads": [{"id": "serve", "gpus_min": 1, "min_vram_gb": 16, "workload_type": "inference"}],
               "offers": {"providers": ["aws"], "include_spot": False}}
    (tmp_path / "req.json").write_text(json.dumps(request))
    r = run("optimize", str(tmp_path / "req.json"), "--json")
    assert r.returncode == 0, r.stderr
    r = run("deploy", json.loads(r.stdout)["optimization"]["id"], "--lifetime", "2h", "--json")
    assert r.returncode == 0, r.stderr
    dep = json.loads(r.stdout)
    [inst] = dep["instances"]
    region, _, instance_id = inst["provider_id"].rpartition(":")
    ec2 = boto3.client("ec2", endpoint_url=moto_server.url, region_name=region or inst["region"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")

    def ec2_state() -> str:
        described = ec2.describe_instances(InstanceIds=[instance_id])
        return str(described["Reservations"][0]["Instances"][0]["State"]["Name"])

    stopped = run("deployments", "stop", dep["id"], "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert [i["state"] for i in json.loads(stopped.stdout)["instances"]] == ["stopped"]
    assert "stop" in stopped.stderr  # the live view of the job's steps
    assert ec2_state() in ("stopping", "stopped")
    table = run("deployments", "stop", dep["id"])  # again: nothing to do, the same answer
    assert table.returncode == 0 and "stopped" in table.stdout
    started = run("deployments", "start", dep["id"], "--lines", "0", "--json")
    assert started.returncode == 0, started.stderr
    assert [i["state"] for i in json.loads(started.stdout)["instances"]] == ["running"]
    assert ec2_state() in ("pending", "running")
    wrong = run("deployments", "stop", dep["id"], "--instances", "i-nope")
    assert wrong.returncode == 1 and "i-nope" in wrong.stderr and "Traceback" not in wrong.stderr
    done = run("deployments", "done", dep["id"], "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "ended"

    import sqlite3

    with sqlite3.connect(tmp_path / "cloudarb.db") as db:
        [(pauses, paused_at)] = db.execute("SELECT pauses, paused_at FROM deploy_instances").fetchall()
    assert paused_at is None and len(json.loads(pauses)) == 1
