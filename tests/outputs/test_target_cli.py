"""``cloudarb deploy OPT --via terraform|kubernetes`` as a user runs it (a subprocess, embedded mode): the
deployment is listed with its target, shown with its hook runs and addresses, and ``done`` ends it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from cloudarb.cli.local import local_org
from cloudarb.context import build_context
from tests.outputs.receivers import FakeKubeAPI
from tests.outputs.support import store_fleet
from tests.support import make_settings

ROOT = Path(__file__).resolve().parents[2]
HOOK = textwrap.dedent('''
    import json, os, pathlib
    print(f"terraform {os.environ['CLOUDARB_TERRAFORM_ACTION']} ok")
    if os.environ["CLOUDARB_TERRAFORM_ACTION"] == "apply":
        pathlib.Path(os.environ["CLOUDARB_TERRAFORM_OUTPUTS"]).write_text(json.dumps(
            {"aws_public_ips": {"sensitive": False, "type": "x", "value": {"l0": ["192.0.2.10"]}}}))
''')


def test_deploy_via_terraform_and_kubernetes_from_the_cli(tmp_path: Path, seeded_template: Path) -> None:
    db = tmp_path / "cloudarb.db"
    shutil.copy(seeded_template, db)
    ctx = build_context(make_settings(database_url=f"sqlite:///{db}", data_dir=tmp_path))
    with ctx.db.session() as session:
        opt = store_fleet(session, local_org(ctx))
    ctx.close()
    (tmp_path / "hook.py").write_text(HOOK)
    with FakeKubeAPI() as api:
        (tmp_path / "kubeconfig").write_text(api.kubeconfig())
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
        env.update(CLOUDARB_DATA_DIR=str(tmp_path), CLOUDARB_DATABASE_URL=f"sqlite:///{db}",
                   CLOUDARB_HOOKS_COMMANDS="true", CLOUDARB_DEPLOY_KUBECONFIG=str(tmp_path / "kubeconfig"),
                   PYTHONPATH=str(ROOT), COLUMNS="200", HOME=str(tmp_path))

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "cloudarb", *args], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=240)

        r = run("hooks", "add", "tf", "--command", f"{sys.executable} {tmp_path / 'hook.py'}", "-e", "terraform.*")
        assert r.returncode == 0, r.stderr
        r = run("deploy", opt, "--via", "terraform", "--var", "aws_key_name=team", "--json")
        assert r.returncode == 0, r.stderr
        tf = json.loads(r.stdout)
        assert tf["target"] == "terraform" and tf["status"] == "partial"
        assert tf["details"]["addresses"] == [{"output": "aws_public_ips.l0[0]", "address": "192.0.2.10"}]
        assert "terraform apply ok" in tf["details"]["runs"][0]["output"] and "hook" in r.stderr
        r = run("deploy", opt, "--via", "kubernetes", "--namespace", "ml", "--json")
        assert r.returncode == 0, r.stderr
        k8s = json.loads(r.stdout)
        assert k8s["target"] == "kubernetes" and k8s["status"] == "running" and len(api.objects) >= 2
        listed = run("deployments", "list")
        assert listed.returncode == 0 and "terraform" in listed.stdout and "kubernetes" in listed.stdout
        shown = run("deployments", "show", tf["id"])
        assert shown.returncode == 0 and "192.0.2.10" in shown.stdout and "exit 0" in shown.stdout
        longer = run("deployments", "extend", k8s["id"], "--by", "2h", "--json")
        assert longer.returncode == 0, longer.stderr
        expires = json.loads(longer.stdout)["expires_at"]
        assert expires > k8s["expires_at"] and "expiry" in longer.stderr  # the job's steps, followed live
        notes = [o["metadata"]["annotations"]["cloudarb.io/expires-at"] for o in api.objects.values()
                 if o["kind"] in ("Job", "Deployment")]
        assert notes and all(n == expires[:19] + "Z" for n in notes), (notes, expires)
        for dep in (tf, k8s):
            done = run("deployments", "done", dep["id"], "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["status"] == "ended"
        assert api.objects == {}
