"""The deploy commands as a user runs them (a subprocess, embedded mode) against moto's EC2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.fakes.moto import MotoServer, moto_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_deploy_watch_list_show_done_and_costs_from_the_cli(tmp_path: Path, seeded_template: Path,
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
    opt_id = json.loads(r.stdout)["optimization"]["id"]

    r = run("deploy", opt_id, "--lifetime", "30h")
    assert r.returncode == 1 and "override" in r.stderr and "Traceback" not in r.stderr
    r = run("deploy", opt_id, "--lifetime", "2h", "--json")
    assert r.returncode == 0, r.stderr
    dep = json.loads(r.stdout)
    assert dep["status"] == "running" and [i["state"] for i in dep["instances"]] == ["running"]
    assert "creating" in r.stderr and "running" in r.stderr  # the live view of the steps
    key_file = tmp_path / ".ssh" / f"cloudarb-{dep['id'][:8]}"
    assert key_file.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    listed = run("deployments", "list")
    assert listed.returncode == 0 and dep["id"] in listed.stdout and "running" in listed.stdout
    extended = run("deployments", "extend", dep["id"], "--by", "20h")
    assert extended.returncode == 1 and "maximum lifetime" in extended.stderr
    done = run("deployments", "done", dep["id"], "--json")
    assert done.returncode == 0, done.stderr
    ended = json.loads(done.stdout)
    assert ended["status"] == "ended" and [i["state"] for i in ended["instances"]] == ["terminated"]
    summary = run("costs", "summary", "--json")
    assert summary.returncode == 0 and json.loads(summary.stdout)["live_instances"] == 0
    by_provider = run("costs", "--by", "provider")
    assert by_provider.returncode == 0 and "total" in by_provider.stdout
    assert run("costs", "--by", "colour").returncode == 1
