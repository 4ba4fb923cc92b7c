"""The CLI as a user runs it (a subprocess, embedded mode on a copy of the seeded database) against moto's
EC2, and the one-workload AWS request both CLI tests optimize."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.deploy.fakes.moto import MotoServer

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., subprocess.CompletedProcess[str]]


def aws_cli(tmp_path: Path, seeded_template: Path, moto: MotoServer) -> Run:
    """A fresh moto, a copy of the seeded database in ``tmp_path`` and a runner of ``cloudarb ARGS``."""
    moto.reset()
    shutil.copy(seeded_template, tmp_path / "cloudarb.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDARB_", "AWS_"))}
    env.update(CLOUDARB_DATA_DIR=str(tmp_path), CLOUDARB_DATABASE_URL=f"sqlite:///{tmp_path / 'cloudarb.db'}",
               CLOUDARB_DEPLOY_REACHABILITY_CHECK="false", CLOUDARB_AWS_AMI="ami-0a1b2c3d4e5f60718",
               AWS_ENDPOINT_URL_EC2=moto.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(ROOT), COLUMNS="200", HOME=str(tmp_path))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cloudarb", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=240)

    return run


def optimize_on_aws(run: Run, tmp_path: Path) -> str:
    """``cloudarb optimize`` of one on-demand inference GPU on AWS; the optimization's id."""
    request = {"workloads": [{"id": "serve", "gpus_min": 1, "min_vram_gb": 16, "workload_type": "inference"}],
               "offers": {"providers": ["aws"], "include_spot": False}}
    (tmp_path / "req.json").write_text(json.dumps(request))
    r = run("optimize", str(tmp_path / "req.json"), "--json")
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["optimization"]["id"])
