"""`cloudarb templates ...` against a real server on loopback and embedded (tables and --json)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudarb.cli.main import app
from cloudarb.config import get_settings
from cloudarb.context import Context
from tests.nodes.live import serve
from tests.support import Tenant

ADD = ["templates", "add", "team-nb", "--image", "registry.example.com/team/nb:1", "--port", "8888/tcp:jupyter",
       "--port", "22", "--command", "jupyter lab --ip=0.0.0.0", "--env", "HF_HOME=/workspace/hf",
       "--health", "http:8888/api", "--title", "Team notebook"]


def _runner(base: list[str]) -> Callable[..., str]:
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, *base], env={"COLUMNS": "200"})
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    return run


def _exercise(call: Callable[..., str]) -> None:
    listed = json.loads(call("templates", "list", "--json"))
    assert {"cuda-base", "vllm-openai"} <= {t["name"] for t in listed}
    assert "cuda-base" in call("templates", "list")
    made = json.loads(call(*ADD, "--json"))
    assert made["owner"] == "organization" and made["command"] == ["jupyter", "lab", "--ip=0.0.0.0"]
    assert made["ports"] == [{"container_port": 8888, "protocol": "tcp", "name": "jupyter"},
                             {"container_port": 22, "protocol": "tcp", "name": ""}]
    assert made["health_check"]["port"] == 8888 and made["env"] == {"HF_HOME": "/workspace/hf"}
    shown = call("templates", "show", "team-nb")
    assert "registry.example.com/team/nb:1" in shown and "HF_HOME=/workspace/hf" in shown
    edited = json.loads(call("templates", "edit", "team-nb", "--image", "registry.example.com/team/nb:2",
                             "--json"))
    assert edited["image"].endswith(":2") and edited["title"] == "Team notebook"
    bad = call("templates", "edit", "team-nb", "--port", "22", code=1)
    assert "health_check" in bad  # the health check's port would be gone
    assert "catalog" in call("templates", "edit", "cuda-base", "--title", "x", code=1)
    refused = call("templates", "remove", "cuda-base", code=1)
    assert "catalog" in refused
    policy = json.loads(call("templates", "policy", "--allow", "team-nb", "--no-custom-images", "--json"))
    assert policy["allowed_templates"] == ["team-nb"] and policy["custom_images_effective"] is False
    assert json.loads(call("templates", "list", "--allowed", "--json"))[0]["name"] == "team-nb"
    unknown = call("templates", "policy", "--allow", "nope", code=1)
    assert "allowed_templates[0]" in unknown
    reset = json.loads(call("templates", "policy", "--allow-all", "--server-default-images", "--json"))
    assert reset["allowed_templates"] is None and reset["custom_images"] is None
    assert "removed" in call("templates", "remove", "team-nb")
    assert "not found" in call("templates", "show", "team-nb", code=1)


def test_templates_commands_against_a_server(ctx: Context, tenant: Tenant) -> None:
    with serve(ctx) as url:
        run = _runner(["--server", url, "--api-key", tenant.keys["admin"]])
        _exercise(run)


@pytest.fixture()
def embedded(tmp_path: Path, nodes_template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    shutil.copy(nodes_template, tmp_path / "cloudarb.db")
    for key in ("CLOUDARB_SERVER", "CLOUDARB_API_KEY", "CLOUDARB_REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDARB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLOUDARB_DATABASE_URL", f"sqlite:///{tmp_path / 'cloudarb.db'}")
    monkeypatch.setenv("CLOUDARB_SEED_SNAPSHOT", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_templates_commands_embedded(embedded: None) -> None:
    run = _runner([])
    _exercise(run)
