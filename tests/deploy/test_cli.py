"""The deploy commands as a user runs them (a subprocess, embedded mode) against moto's EC2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deploy.cli_support import aws_cli, optimize_on_aws
from tests.deploy.fakes.moto import MotoServer, moto_server  # noqa: F401


@pytest.mark.slow
def test_deploy_watch_list_show_done_and_costs_from_the_cli(tmp_path: Path, seeded_template: Path,
                                                            moto_server: MotoServer) -> None:  # noqa: F811
    run = aws_cli(tmp_path, seeded_template, moto_server)
    opt_id = optimize_on_aws(run, tmp_path)

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
