"""Terraform deployments through a command hook: a real subprocess (a Python script registered as the
organization's hook) runs in the deployment's working directory with the rendered files; its exit code
and output are recorded on the deployment, ``terraform output -json`` read back for addresses; failures
fail the deployment with the hook's output; teardown runs the destroy hook and ends only on success,
retrying (and alerting) otherwise. With a ``terraform`` binary, a real ``terraform apply`` and
``destroy`` of a ``terraform_data`` configuration (built in: no provider download) proves the runner."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models_deploy import DeployAlert
from cloudarb.db.models_hooks import HookDelivery
from cloudarb.deploy.terraform_apply import parse_outputs, state_clear
from tests.outputs.support import store_fleet
from tests.support import Tenant, wait_for

HOOK = textwrap.dedent('''
    import json, os, pathlib, sys
    here = pathlib.Path.cwd()
    mode = pathlib.Path(sys.argv[1]).read_text().strip() if len(sys.argv) > 1 else "ok"
    record = {"cwd": str(here), "files": sorted(p.name for p in here.iterdir()),
              "env": {k: v for k, v in os.environ.items() if k.startswith("CLOUDARB_")},
              "stdin": json.loads(sys.stdin.read())}
    with open(here / f"seen-{os.environ['CLOUDARB_TERRAFORM_ACTION']}.json", "w") as fh:
        json.dump(record, fh)
    print(f"terraform {os.environ['CLOUDARB_TERRAFORM_ACTION']} in {here}")
    while mode == "wait":  # a long apply: until the test says go
        import time
        time.sleep(0.1)
        mode = pathlib.Path(sys.argv[1]).read_text().strip()
    if mode == "fail":
        print("Error: creating EC2 Instance: InsufficientInstanceCapacity", file=sys.stderr)
        sys.exit(3)
    if os.environ["CLOUDARB_TERRAFORM_ACTION"] == "apply":
        outputs = {"aws_public_ips": {"sensitive": False, "type": "x",
                                      "value": {"llm_pretrain_l0": ["203.0.113.7", "203.0.113.8"]}},
                   "admin_password": {"sensitive": True, "type": "string", "value": "hunter2"}}
        pathlib.Path(os.environ["CLOUDARB_TERRAFORM_OUTPUTS"]).write_text(json.dumps(outputs))
    print("Apply complete!" if os.environ["CLOUDARB_TERRAFORM_ACTION"] == "apply" else "Destroy complete!")
''')

REAL = textwrap.dedent('''
    #!/bin/sh
    # A team's hook: here a probe configuration (terraform_data only) beside the rendered files, whose
    # providers cannot be downloaded on this machine.
    set -e
    mkdir -p probe
    python3 - <<'PY'
    import json, pathlib
    opt = json.loads(pathlib.Path("cloudarb.tf.json").read_text())["locals"]["cloudarb_optimization"]
    pathlib.Path("probe/main.tf.json").write_text(json.dumps({
        "resource": {"terraform_data": {"fleet": {"input": opt}}},
        "output": {"aws_public_ips": {"value": {"line0": ["198.51.100.4"]}},
                   "optimization": {"value": "${terraform_data.fleet.output}"}}}))
    PY
    if [ "$CLOUDARB_TERRAFORM_ACTION" = apply ]; then
      terraform -chdir=probe init -input=false -no-color
      terraform -chdir=probe apply -auto-approve -input=false -no-color
      terraform -chdir=probe output -json > "$CLOUDARB_TERRAFORM_OUTPUTS"
    else
      terraform -chdir=probe destroy -auto-approve -input=false -no-color
    fi
''').lstrip()


def _hook(client: TestClient, tenant: Tenant, argv: list[str], events: list[str]) -> None:
    r = client.post("/hooks", json={"name": "tf", "kind": "command", "command": argv, "events": events,
                                    "timeout_s": 120}, headers=tenant.headers("admin"))
    assert r.status_code == 201, r.text


def _deployment(client: TestClient, tenant: Tenant, dep_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        r = client.get(f"/deployments/{dep_id}", headers=tenant.headers("viewer"))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["status"] in statuses else None

    # Polled twice a second: faster polling over a slow run trips the API's rate limit (600/min), and
    # the 429's body has no status.
    found: dict[str, Any] = wait_for(done, timeout=90, interval=0.5)
    return found


def _submit(client: TestClient, ctx: Context, tenant: Tenant, body: dict[str, Any] | None = None) -> Any:
    with ctx.db.session() as session:
        opt = store_fleet(session, tenant.org_id)
    return client.post(f"/optimize/{opt}/terraform-apply", json=body or {}, headers=tenant.headers("editor"))


@pytest.fixture()
def script(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "hook.py"
    path.write_text(HOOK)
    mode = tmp_path / "mode"
    mode.write_text("ok")
    return path, mode


@pytest.mark.parametrize("ctx", [{"hooks_commands": True}], indirect=True)
def test_the_hook_applies_in_the_working_directory_and_its_run_is_recorded(
    client: TestClient, ctx: Context, tenant: Tenant, script: tuple[Path, Path]
) -> None:
    path, mode = script
    _hook(client, tenant, [sys.executable, str(path), str(mode)], ["terraform.*"])
    r = _submit(client, ctx, tenant, {"variables": {"aws_key_name": "team-key"}})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["skipped_lines"] == [1, 2]  # Lambda lines: no official Terraform provider
    dep = _deployment(client, tenant, accepted["id"], ("running", "partial", "failed"))
    assert dep["status"] == "partial" and dep["target"] == "terraform" and dep["instances"] == []
    details = dep["details"]
    [run] = details["runs"]
    assert run["action"] == "apply" and run["exit_code"] == 0 and "Apply complete!" in run["output"]
    assert details["addresses"] == [{"output": "aws_public_ips.llm_pretrain_l0[0]", "address": "203.0.113.7"},
                                    {"output": "aws_public_ips.llm_pretrain_l0[1]", "address": "203.0.113.8"}]
    assert details["outputs"]["admin_password"] == "(sensitive)" and "not metered" in details["metering"]
    workdir = Path(details["directory"])
    seen = json.loads((workdir / "seen-apply.json").read_text())
    assert seen["cwd"] == str(workdir) and workdir == ctx.settings.data_dir / "terraform" / dep["id"]
    assert {"cloudarb.tf.json", "aws.tf.json", "azure.tf.json", "variables.tf.json",
            "cloudarb.auto.tfvars.json"} <= set(seen["files"])
    assert json.loads((workdir / "cloudarb.auto.tfvars.json").read_text()) == {"aws_key_name": "team-key"}
    assert seen["env"]["CLOUDARB_DEPLOYMENT_ID"] == dep["id"] and seen["env"]["CLOUDARB_TERRAFORM_DIR"] == str(workdir)
    assert seen["env"]["CLOUDARB_EVENT"] == "terraform.apply" and seen["stdin"]["data"]["deployment_id"] == dep["id"]
    assert "cloudarb:expires-at" in (workdir / "aws.tf.json").read_text()
    steps = client.get(f"/jobs/{accepted['job_id']}/events", headers=tenant.headers("viewer")).json()
    hook_steps = [e for e in steps if e.get("phase") == "hook" and e.get("exit_code") is not None]
    assert [e["exit_code"] for e in hook_steps] == [0] and "Apply complete!" in hook_steps[0]["output"]
    with ctx.db.session() as session:
        delivery = session.get(HookDelivery, run["delivery_id"])
        assert delivery is not None and delivery.exit_code == 0 and delivery.subject_id == dep["id"]

    r = client.post(f"/deployments/{dep['id']}/done", headers=tenant.headers("editor"))
    assert r.status_code == 202, r.text
    ended = _deployment(client, tenant, dep["id"], ("ended",))
    assert [r["action"] for r in ended["details"]["runs"]] == ["apply", "destroy"]
    assert json.loads((workdir / "seen-destroy.json").read_text())["env"]["CLOUDARB_EVENT"] == "terraform.destroy"
    listed = client.get("/deployments", headers=tenant.headers("viewer")).json()["items"]
    assert [(d["id"], d["target"]) for d in listed] == [(dep["id"], "terraform")]


@pytest.mark.parametrize("ctx", [{"hooks_commands": True}], indirect=True)
def test_a_failing_apply_fails_the_deployment_with_the_hooks_output(
    client: TestClient, ctx: Context, tenant: Tenant, script: tuple[Path, Path]
) -> None:
    path, mode = script
    mode.write_text("fail")
    _hook(client, tenant, [sys.executable, str(path), str(mode)], ["terraform.apply", "terraform.destroy"])
    accepted = _submit(client, ctx, tenant).json()
    dep = _deployment(client, tenant, accepted["id"], ("running", "partial", "failed"))
    assert dep["status"] == "failed"
    assert "terraform.apply hook 'tf' failed: exit 3" in dep["end_reason"]
    assert "InsufficientInstanceCapacity" in dep["end_reason"]
    [run] = dep["details"]["runs"]
    assert run["exit_code"] == 3 and not run["ok"] and "addresses" not in dep["details"]
    job = client.get(f"/jobs/{accepted['job_id']}", headers=tenant.headers("viewer")).json()
    assert job["status"] == "failed"


@pytest.mark.parametrize("ctx", [{"hooks_commands": True}], indirect=True)
def test_a_failing_destroy_keeps_the_deployment_ending_alerts_and_retries(
    client: TestClient, ctx: Context, tenant: Tenant, script: tuple[Path, Path]
) -> None:
    path, mode = script
    _hook(client, tenant, [sys.executable, str(path), str(mode)], ["terraform.*"])
    accepted = _submit(client, ctx, tenant).json()
    dep = _deployment(client, tenant, accepted["id"], ("partial",))
    mode.write_text("fail")
    client.delete(f"/deployments/{dep['id']}", headers=tenant.headers("editor"))

    def alerted() -> bool:
        with ctx.db.session() as session:
            return session.scalars(select(DeployAlert).where(DeployAlert.dedupe == f"terraform:{dep['id']}")
                                   ).first() is not None

    wait_for(alerted, timeout=60)
    now = client.get(f"/deployments/{dep['id']}", headers=tenant.headers("viewer")).json()
    assert now["status"] == "ending" and now["details"]["runs"][-1]["exit_code"] == 3
    mode.write_text("ok")
    ended = _deployment(client, tenant, dep["id"], ("ended",))
    destroys = [r for r in ended["details"]["runs"] if r["action"] == "destroy"]
    assert len(destroys) >= 2 and destroys[-1]["exit_code"] == 0


@pytest.mark.parametrize("ctx", [{"hooks_commands": True}], indirect=True)
def test_done_during_the_apply_destroys_after_it_never_before(
    client: TestClient, ctx: Context, tenant: Tenant, script: tuple[Path, Path]
) -> None:
    path, mode = script
    mode.write_text("wait")
    _hook(client, tenant, [sys.executable, str(path), str(mode)], ["terraform.*"])
    accepted = _submit(client, ctx, tenant).json()
    seen = ctx.settings.data_dir / "terraform" / accepted["id"] / "seen-apply.json"
    wait_for(seen.exists, timeout=60)  # the apply hook is running
    client.post(f"/deployments/{accepted['id']}/done", headers=tenant.headers("editor"))

    def teardown_waited() -> bool:
        r_events = client.get(f"/jobs/{accepted['job_id']}", headers=tenant.headers("viewer"))
        r_dep = client.get(f"/deployments/{accepted['id']}", headers=tenant.headers("viewer"))
        assert r_events.status_code == 200 and r_dep.status_code == 200, (r_events.text, r_dep.text)
        events, dep = r_events.json(), r_dep.json()
        return dep["job_id"] != accepted["job_id"] and events["status"] == "running" and dep["status"] == "ending"

    wait_for(teardown_waited, timeout=30, interval=0.5)  # two requests a poll: under the rate limit
    mode.write_text("ok")
    ended = _deployment(client, tenant, accepted["id"], ("ended",))
    assert [r["action"] for r in ended["details"]["runs"]] == ["apply", "destroy"]
    assert "nothing was applied" not in (ended["end_reason"] or "")


@pytest.mark.parametrize("ctx", [{"hooks_commands": False}], indirect=True)
def test_refused_when_command_hooks_are_off(client: TestClient, ctx: Context, tenant: Tenant) -> None:
    r = _submit(client, ctx, tenant)
    assert r.status_code == 409 and "CLOUDARB_HOOKS_COMMANDS" in r.text


@pytest.mark.parametrize("ctx", [{"hooks_commands": True}], indirect=True)
def test_refused_without_a_destroy_hook(client: TestClient, ctx: Context, tenant: Tenant,
                                        script: tuple[Path, Path]) -> None:
    path, _ = script
    _hook(client, tenant, [sys.executable, str(path)], ["terraform.apply", "deploy.*"])
    _hook(client, tenant, [sys.executable, str(path)], ["*"])  # '*' does not volunteer a program
    r = _submit(client, ctx, tenant)
    assert r.status_code == 409 and "terraform.destroy" in r.text
    assert client.get("/deployments", headers=tenant.headers("viewer")).json()["total"] == 0


def test_outputs_and_state_are_read_as_terraform_writes_them(tmp_path: Path) -> None:
    outputs, addresses = parse_outputs(json.dumps({
        "ips": {"sensitive": False, "type": ["map", "string"], "value": {"a": "2001:db8::1", "b": "not-an-ip"}},
        "n": {"sensitive": False, "type": "number", "value": 3}}))
    assert outputs == {"ips": {"a": "2001:db8::1", "b": "not-an-ip"}, "n": 3}
    assert addresses == [{"output": "ips.a", "address": "2001:db8::1"}]
    with pytest.raises(ValueError):
        parse_outputs("[]")
    (tmp_path / "terraform.tfstate").write_text(json.dumps({"resources": [
        {"mode": "managed", "type": "aws_instance", "name": "x", "instances": [{}]},
        {"mode": "data", "type": "aws_ami", "name": "y", "instances": [{}]}]}))
    assert state_clear(tmp_path) == (False, f"{tmp_path / 'terraform.tfstate'} still lists aws_instance.x")
    (tmp_path / "terraform.tfstate").write_text(json.dumps({"resources": []}))
    assert state_clear(tmp_path) == (True, "")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on this machine")
@pytest.mark.parametrize("ctx", [{"hooks_commands": True}], indirect=True)
def test_a_real_terraform_apply_and_destroy_through_the_hook(client: TestClient, ctx: Context, tenant: Tenant,
                                                             tmp_path: Path) -> None:
    hook = tmp_path / "tf-hook.sh"
    hook.write_text(REAL)
    hook.chmod(0o755)
    _hook(client, tenant, [str(hook)], ["terraform.*"])
    accepted = _submit(client, ctx, tenant).json()
    dep = _deployment(client, tenant, accepted["id"], ("running", "partial", "failed"))
    assert dep["status"] == "partial", dep["end_reason"]
    [run] = dep["details"]["runs"]
    assert run["exit_code"] == 0 and "Apply complete! Resources: 1 added" in run["output"]
    assert dep["details"]["outputs"]["optimization"] == dep["optimization_id"]
    assert dep["details"]["addresses"] == [{"output": "aws_public_ips.line0[0]", "address": "198.51.100.4"}]
    state = Path(dep["details"]["directory"]) / "probe" / "terraform.tfstate"
    assert state_clear(state.parent)[0] is False  # the stack exists: its state lists terraform_data.fleet
    client.post(f"/deployments/{dep['id']}/done", headers=tenant.headers("editor"))
    ended = _deployment(client, tenant, dep["id"], ("ended",))
    assert "Destroy complete! Resources: 1 destroyed" in ended["details"]["runs"][-1]["output"]
    assert state_clear(state.parent) == (True, "")
