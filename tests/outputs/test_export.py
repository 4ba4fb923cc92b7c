"""GET /optimize/{id}/export and `cloudarb export`: the stored example-fleet solution in every format,
as a JSON listing or a zip, line subsets, and 4xx answers that name the field."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.deploy.renderers import FORMATS
from cloudarb.storage import accounts
from tests.outputs.support import GOLDEN, store_fleet
from tests.support import Tenant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def fleet_id(ctx: Context, tenant: Tenant) -> str:
    with ctx.db.session() as session:
        return store_fleet(session, tenant.org_id)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_of_the_example_fleet(client: TestClient, tenant: Tenant, fleet_id: str, fmt: str) -> None:
    r = client.get(f"/optimize/{fleet_id}/export", params={"format": fmt}, headers=tenant.headers("viewer"))
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["format"] == fmt and listing["optimization_id"] == fleet_id
    golden = GOLDEN / fmt
    assert {f["path"]: f["content"] for f in listing["files"]} == {p.name: p.read_text() for p in golden.iterdir()}
    skipped = [(s["line"], s["provider"]) for s in listing["skipped"]]
    assert skipped == ([(1, "lambda"), (2, "lambda")] if fmt == "terraform" else [])


def test_zip_archive_and_a_subset_of_lines(client: TestClient, tenant: Tenant, fleet_id: str) -> None:
    r = client.get(f"/optimize/{fleet_id}/export", params={"format": "terraform", "lines": "0,1", "archive": "zip"},
                   headers=tenant.headers("viewer"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["x-cloudarb-skipped-lines"] == "1"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert sorted(names) == ["terraform/aws.tf.json", "terraform/cloudarb.tf.json", "terraform/variables.tf.json"]
    k8s = client.get(f"/optimize/{fleet_id}/export", params={"format": "kubernetes", "lines": "2"},
                     headers=tenant.headers("viewer")).json()
    assert [f["path"] for f in k8s["files"]] == ["inference-api.yaml"]


def test_lifetime_tags_and_kueue(client: TestClient, tenant: Tenant, fleet_id: str) -> None:
    tf = client.get(f"/optimize/{fleet_id}/export", params={"format": "terraform", "lifetime_hours": 6},
                    headers=tenant.headers("viewer")).json()
    aws = json.loads(next(f["content"] for f in tf["files"] if f["path"] == "aws.tf.json"))
    assert aws["resource"]["aws_instance"]["line_0_llm_pretrain"]["tags"]["cloudarb:expires-at"].endswith("Z")
    k8s = client.get(f"/optimize/{fleet_id}/export", params={"format": "kubernetes", "kueue_cluster_queue": "team-a",
                                                               "namespace": "ml"}, headers=tenant.headers("viewer"))
    assert "kueue.yaml" in [f["path"] for f in k8s.json()["files"]]


@pytest.mark.parametrize("params,status,field", [
    ({"format": "helm"}, 422, "format"),
    ({"format": "csv", "lines": "0,x"}, 422, "lines"),
    ({"format": "csv", "lines": "9"}, 422, "lines"),
    ({"format": "csv", "archive": "tar"}, 422, "archive"),
])
def test_bad_input_names_the_field(client: TestClient, tenant: Tenant, fleet_id: str, params: dict[str, str],
                                   status: int, field: str) -> None:
    r = client.get(f"/optimize/{fleet_id}/export", params=params, headers=tenant.headers("viewer"))
    assert r.status_code == status, r.text
    assert field in json.dumps(r.json()["error"])


def test_other_organizations_and_unfinished_solutions(client: TestClient, ctx: Context, tenant: Tenant,
                                                      other_tenant: Tenant) -> None:
    with ctx.db.session() as session:
        opt = store_fleet(session, tenant.org_id, status="running")
    assert client.get(f"/optimize/{opt}/export", params={"format": "csv"},
                      headers=other_tenant.headers("viewer")).status_code == 404
    r = client.get(f"/optimize/{opt}/export", params={"format": "csv"}, headers=tenant.headers("viewer"))
    assert r.status_code == 409 and "running" in r.json()["error"]["message"]


def test_kubernetes_apply_needs_a_configured_cluster(client: TestClient, tenant: Tenant, fleet_id: str) -> None:
    r = client.post(f"/optimize/{fleet_id}/kubernetes-apply", json={}, headers=tenant.headers("editor"))
    assert r.status_code == 409 and "CLOUDARB_DEPLOY_KUBECONFIG" in r.json()["error"]["message"]


@pytest.mark.slow
def test_cli_export_writes_the_four_formats(tmp_path: Path, seeded_template: Path) -> None:
    db = tmp_path / "cli.db"
    shutil.copy(seeded_template, db)
    from cloudarb.db.engine import Database

    database = Database(f"sqlite:///{db}")
    with database.session() as session:
        org = accounts.get_or_create_org(session, name="local")
        opt = store_fleet(session, org.id)
    database.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(CLOUDARB_DATA_DIR=str(tmp_path), CLOUDARB_DATABASE_URL=f"sqlite:///{db}", PYTHONPATH=str(ROOT),
               COLUMNS="200")
    for fmt in ("terraform", "kubernetes", "skypilot", "dstack"):
        r = subprocess.run([sys.executable, "-m", "cloudarb", "export", opt, "--format", fmt, "-o",
                            str(tmp_path / fmt)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        written = sorted(p.name for p in (tmp_path / fmt).iterdir())
        assert written == sorted(p.name for p in (GOLDEN / fmt).iterdir())
        if fmt == "terraform":
            assert "line 1 (finetune-a100, lambda)" in r.stderr and "line 2 (inference-api, lambda)" in r.stderr
    bad = subprocess.run([sys.executable, "-m", "cloudarb", "export", opt, "--format", "csv", "--lines", "7"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "lines [7] do not exist" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_cli_hooks_add_test_list_deliveries_remove(tmp_path: Path, seeded_template: Path) -> None:
    from tests.outputs.receivers import Receiver

    shutil.copy(seeded_template, tmp_path / "cli.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(CLOUDARB_DATA_DIR=str(tmp_path), CLOUDARB_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
               PYTHONPATH=str(ROOT), COLUMNS="200")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cloudarb", "hooks", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    with Receiver(200) as rx:
        added = run("add", "ops", "--url", rx.url, "-e", "deploy.*", "--json")
        assert added.returncode == 0, added.stderr
        hook = json.loads(added.stdout)
        assert hook["secret"].startswith("whsec_") and hook["events"] == ["deploy.*"]
        tested = run("test", hook["id"], "--json")
        assert tested.returncode == 0, tested.stderr
        assert json.loads(tested.stdout)["status"] == "delivered" and len(rx.requests) == 1
    assert json.loads(run("list", "--json").stdout)[0]["id"] == hook["id"]
    log = json.loads(run("deliveries", "--json").stdout)
    assert log["total"] == 1 and log["items"][0]["event"] == "hook.test"
    refused = run("add", "x", "--command", "true", "-e", "*")
    assert refused.returncode == 1 and "CLOUDARB_HOOKS_COMMANDS" in refused.stderr and "Traceback" not in refused.stderr
    assert run("remove", hook["id"]).returncode == 0
    assert json.loads(run("list", "--json").stdout) == []
