"""`cloudarb nodes ...` against a real server on loopback (tables and --json)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cloudarb.cli.main import app
from cloudarb.context import Context
from tests.nodes.helpers import place, register_node
from tests.nodes.live import serve
from tests.support import Tenant


def test_nodes_commands(ctx: Context, tenant: Tenant) -> None:
    runner = CliRunner()
    reg = register_node(ctx, tenant.org_id, name="box1", gpus=1)
    running, _ = place(ctx, tenant.org_id, reg.node_id, "k-a")
    waiting, _ = place(ctx, tenant.org_id, reg.node_id, "k-b")
    with serve(ctx) as url:
        base = ["--server", url, "--api-key", tenant.keys["admin"]]

        def run(*args: str) -> str:
            result = runner.invoke(app, [*args, *base], env={"COLUMNS": "200"})
            assert result.exit_code == 0, result.output
            return result.output

        listed = json.loads(run("nodes", "list", "--json"))
        assert [(n["name"], n["gpus_free"]) for n in listed] == [("box1", 0)]
        assert "box1" in run("nodes", "list") and "0/1" in run("nodes", "list")
        shown = json.loads(run("nodes", "show", "box1", "--json"))
        assert shown["gpus"][0]["placement_id"] == running
        assert "H100 SXM" in run("nodes", "show", reg.node_id)
        queue = json.loads(run("nodes", "queue", "--json"))
        assert [(q["id"], q["position"]) for q in queue] == [(waiting, 1), (running, None)]
        token = json.loads(run("nodes", "join-token", "--name", "box2", "--price", "0.5", "--json"))
        assert token["join_token"].startswith("cajoin_") and token["node_name"] == "box2"
        priced = json.loads(run("nodes", "pricing", "box1", "--model", "H100 SXM=0.9", "--json"))
        assert priced["model_prices"] == {"H100 SXM": 0.9}
        assert json.loads(run("nodes", "drain", "box1", "--json"))["drained"] is True
        assert json.loads(run("nodes", "undrain", "box1", "--json"))["drained"] is False
        assert "destroyed" in run("nodes", "queue", "--cancel", waiting)
        assert "shown once" in run("nodes", "credentials", running)
        again = runner.invoke(app, ["nodes", "credentials", running, *base])
        assert again.exit_code == 1 and "shown already" in again.output
        bad = runner.invoke(app, ["nodes", "pricing", "box1", "--model", "nonsense", *base])
        assert bad.exit_code == 1 and "MODEL=PRICE" in bad.output
        busy = runner.invoke(app, ["nodes", "remove", "box1", *base])
        assert busy.exit_code == 1 and "live placement" in busy.output and "Traceback" not in busy.output
        missing = runner.invoke(app, ["nodes", "show", "nowhere", *base])
        assert missing.exit_code == 1 and "no node 'nowhere'" in missing.output
