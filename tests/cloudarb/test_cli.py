"""The command line, run as a user runs it: a subprocess on the embedded defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def run(tmp_path: Path, seeded_template: Path):  # type: ignore[no-untyped-def]
    import shutil

    shutil.copy(seeded_template, tmp_path / "cloudarb.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDARB_")}
    env.update(CLOUDARB_DATA_DIR=str(tmp_path), CLOUDARB_DATABASE_URL=f"sqlite:///{tmp_path / 'cloudarb.db'}",
               PYTHONPATH=str(ROOT), COLUMNS="200")

    def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cloudarb", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=240)

    return _run


def test_optimize_example_fleet_in_process(run) -> None:  # type: ignore[no-untyped-def]
    r = run("optimize", "examples/fleet.json", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["optimization"]["status"] == "finished"
    gpus: dict[str, int] = {}
    for line in out["allocations"]:
        gpus[line["workload_id"]] = gpus.get(line["workload_id"], 0) + line["gpus"]
    assert gpus["llm-pretrain"] >= 32 and gpus["batch-embeddings"] >= 16
    savings = {s["baseline"]: s for s in out["optimization"]["result"]["savings"]}
    # One provider cannot meet the example's 75% provider-share cap: its price is shown, no saving claimed.
    single = savings["single_provider_on_demand"]
    assert single["violated"] == ["provider_share"] and single["savings_per_hour"] is None
    assert all(s["savings_per_hour"] >= 0 for s in savings.values() if s["honours_constraints"])


def test_optimize_prints_a_table(run) -> None:  # type: ignore[no-untyped-def]
    r = run("optimize", "examples/fleet.json")
    assert r.returncode == 0, r.stderr
    assert "Allocation" in r.stdout and "Savings vs single_provider_on_demand" in r.stdout
    # a baseline whose plan breaks a hard constraint states no saving (never "0.0%")
    line = next(x for x in r.stdout.splitlines() if "Savings vs single_provider_on_demand" in x)
    assert "none stated" in line and "provider_share" in line and "%" not in line


@pytest.mark.parametrize("content,needle", [
    (None, "cannot read"),
    ("{oops", "not valid JSON"),
    ('{"workloads": [{"id": "a", "gpus_min": -1}]}', "workloads.0.gpus_min"),
])
def test_bad_input_is_a_clear_error(run, tmp_path: Path, content: str | None, needle: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "req.json"
    if content is not None:
        path.write_text(content)
    r = run("optimize", str(path))
    assert r.returncode != 0
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout


def test_offers_with_filters(run) -> None:  # type: ignore[no-untyped-def]
    r = run("offers", "--gpu", "H100 SXM", "--spot", "--limit", "5", "--json")
    assert r.returncode == 0, r.stderr
    page = json.loads(r.stdout)
    assert len(page["items"]) == 5 and page["total"] > 5
    prices = [o["price_per_gpu_hour"] for o in page["items"]]
    assert prices == sorted(prices)
    assert all(o["gpu_model"] == "H100 SXM" and o["spot"] for o in page["items"])
    table = run("offers", "--provider", "lambda", "--limit", "3")
    assert table.returncode == 0 and "lambda" in table.stdout
    bad = run("offers", "--sort", "password")
    assert bad.returncode != 0 and "--sort" in bad.stderr and "Traceback" not in bad.stderr


def test_first_admin_needs_a_real_password(run) -> None:  # type: ignore[no-untyped-def]
    short = run("admin", "create-admin", "--org", "acme", "--email", "a@acme.example", "--password-stdin",
                stdin="short\n")
    assert short.returncode != 0 and "12 characters" in short.stderr
    ok = run("admin", "create-admin", "--org", "acme", "--email", "a@acme.example", "--password-stdin",
             stdin="a very long passphrase\n")
    assert ok.returncode == 0, ok.stderr
    again = run("admin", "create-admin", "--org", "acme", "--email", "a@acme.example", "--password-stdin",
                stdin="a very long passphrase\n")
    assert again.returncode != 0 and "already exists" in again.stderr


def test_db_upgrade_and_seed(run) -> None:  # type: ignore[no-untyped-def]
    r = run("db", "upgrade")
    assert r.returncode == 0 and "revision" in r.stdout
    r = run("db", "seed")
    assert r.returncode == 0 and "already present" in r.stdout


SHARED = ROOT.parent / "shared" / "data" / "prices"


def test_offers_resolve_names_and_refuse_unknown_ones(run) -> None:  # type: ignore[no-untyped-def]
    r = run("offers", "--gpu", "a100", "--limit", "50", "--json")
    assert r.returncode == 0, r.stderr
    models = {o["gpu_model"] for o in json.loads(r.stdout)["items"]}
    assert models and all(m.startswith("A100") for m in models)
    r = run("offers", "--gpu", "H100:8", "--limit", "20", "--json")
    assert all(o["gpu_count"] >= 8 for o in json.loads(r.stdout)["items"])
    bad = run("offers", "--gpu", "h1000")
    assert bad.returncode == 1 and "--gpu: unknown GPU 'h1000'" in bad.stderr
    assert "unknown GPU 'h1000'" in bad.stderr and "H100" in bad.stderr and "Traceback" not in bad.stderr


def test_gpus_command(run) -> None:  # type: ignore[no-untyped-def]
    r = run("gpus", "--gpu", "h100", "--json")
    assert r.returncode == 0, r.stderr
    names = {g["name"] for g in json.loads(r.stdout)["items"]}
    assert names == {"H100 SXM", "H100 PCIe", "H100 NVL"}
    table = run("gpus")
    assert table.returncode == 0 and "H100 SXM" in table.stdout and "days old" in table.stderr


YAML_FLEET = """\
name: yaml fleet
workloads:
  - id: train
    gpus_min: 8
    gpus_per_node: 8
    allowed_gpu_models: [a100]
  - id: serve
    gpus_min: 2
    allowed_gpu_models: ["L4"]
    workload_type: inference
constraints:
  budget_per_hour: 500
"""


def test_yaml_request_file_with_names_people_type(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML_FLEET)
    r = run("optimize", str(path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["optimization"]["status"] == "finished"
    assert out["optimization"]["request"]["workloads"][0]["allowed_gpu_models"][0].startswith("A100")
    assert {ln["gpu_model"][:4] for ln in out["allocations"] if ln["workload_id"] == "train"} == {"A100"}


def test_original_shape_yaml_and_infeasible_exit_status(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "original.yml"
    path.write_text("gpu_type: h100\nmin_count: 64\nconstraints:\n"
                    "  - {name: budget, type: budget, operator: '<=', value: 1}\n")
    r = run("optimize", str(path), "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    assert json.loads(r.stdout)["optimization"]["status"] == "infeasible"
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("workloads: [{id: a, gpus_min: 1, allowed_gpu_models: [rtx9999]}]\n")
    r = run("optimize", str(unknown))
    assert r.returncode == 1 and "workloads.0.allowed_gpu_models" in r.stderr and "Traceback" not in r.stderr


def test_schema_and_version(run) -> None:  # type: ignore[no-untyped-def]
    r = run("schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    assert {"OptimizeRequest", "OriginalOptimizeRequest"} <= set(schema["$defs"])
    assert "pareto_points" in schema["$defs"]["OptimizeRequest"]["properties"]
    v = run("--version")
    assert v.returncode == 0 and v.stdout.startswith("cloudarb ")


SHADEFORM_EXCERPT = """\
InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice
lambdalabs_A100_sxm4x8,A100,8,240,1800,14.32,us-east-1,A100,
hyperstack_H100x8-NVLINK,H100,8,192,1800,19.2,canada-1,H100,
massedcompute_A100x1,A100,1,12,64,0.0,us-central,A100,
"""


def test_catalog_import_dry_run_json_then_store(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "shadeform.csv"
    path.write_text(SHADEFORM_EXCERPT)
    r = run("catalog", "import", str(path), "--format", "shadeform", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dry_run"] and out["summary"]["stored"] == 0 and out["summary"]["rows_read"] == 3
    offers = {o["seller"]: o for o in out["offers"]}
    assert set(offers) == {"lambdalabs", "hyperstack"}
    assert (offers["hyperstack"]["gpu_model"], offers["hyperstack"]["gpus_per_instance"]) == ("H100 SXM", 8)
    assert offers["lambdalabs"]["price_per_gpu_hour"] == pytest.approx(14.32 / 8)
    assert [q["reason"] for q in out["quarantined"]] == ["no price"]
    before = json.loads(run("offers", "--provider", "shadeform", "--json").stdout)["total"]
    assert before == 0, "a dry run stores nothing"
    table = run("catalog", "import", str(path), "--format", "shadeform", "--dry-run")
    assert "would store" in table.stdout and "no price" in table.stdout
    stored = run("catalog", "import", str(path), "--format", "shadeform", "--json")
    assert json.loads(stored.stdout)["summary"]["stored"] == 2
    one = json.loads(run("offers", "--provider", "shadeform:hyperstack", "--json").stdout)
    assert [o["seller"] for o in one["items"]] == ["hyperstack"]


@pytest.mark.skipif(not (SHARED / "skypilot_v8_aws_p_family_gpu_vms.csv").exists(), reason="shared data absent")
def test_catalog_import_of_a_real_catalog(run) -> None:  # type: ignore[no-untyped-def]
    r = run("catalog", "import", str(SHARED / "skypilot_v8_aws_p_family_gpu_vms.csv"), "--format", "aws",
            "--provider", "aws", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["summary"]["rows_read"] == 208 and out["summary"]["offers"] == 369
    assert out["summary"]["quarantined_by_reason"] == {"no price": 4}
    p4d = [o for o in out["offers"] if o["instance_type"] == "p4d.24xlarge"]
    assert p4d and all(o["gpu_model"] == "A100 40GB SXM" and o["memory_gb_per_gpu"] == 40 for o in p4d)
    bad = run("catalog", "import", str(SHARED / "skypilot_v8_aws_p_family_gpu_vms.csv"), "--format", "nope")
    assert bad.returncode == 1 and "known: lambda" in bad.stderr and "Traceback" not in bad.stderr
