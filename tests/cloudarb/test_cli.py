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
    assert savings["single_provider_on_demand"]["savings_per_hour"] >= 0


def test_optimize_prints_a_table(run) -> None:  # type: ignore[no-untyped-def]
    r = run("optimize", "examples/fleet.json")
    assert r.returncode == 0, r.stderr
    assert "Allocation" in r.stdout and "Savings vs single_provider_on_demand" in r.stdout


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
