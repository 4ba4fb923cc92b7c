"""`cloudarb deployments stop|start` as a user runs them (a subprocess, embedded mode) against moto's EC2:
the instance is stopped and started at EC2 (its own state read back), a pause is recorded, and a
Lambda-like refusal is covered in test_stop_start_api."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.deploy.cli_support import aws_cli, optimize_on_aws
from tests.deploy.fakes.moto import MotoServer, moto_server  # noqa: F401


@pytest.mark.slow
def test_stop_and_start_an_ec2_deployment_from_the_cli(tmp_path: Path, seeded_template: Path,
                                                       moto_server: MotoServer) -> None:  # noqa: F811
    run = aws_cli(tmp_path, seeded_template, moto_server)
    r = run("deploy", optimize_on_aws(run, tmp_path), "--lifetime", "2h", "--json")
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
