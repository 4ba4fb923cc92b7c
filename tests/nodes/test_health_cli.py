"""The health check's options on the command line (`cloudarb templates add --health ...`), and the
nodes table's health cell."""

from __future__ import annotations

import json

from cloudarb.cli.nodes import health_cell
from tests.nodes.test_templates_cli import _runner, embedded  # noqa: F401  (the fixture)


def test_health_options_reach_the_template(embedded: None) -> None:  # noqa: F811
    run = _runner([])
    made = json.loads(run("templates", "add", "web", "--image", "localhost/web:1", "--port", "8080",
                          "--health", "http:8080/healthz,grace=600,interval=5,failures=2,probe-timeout=3,restart",
                          "--json"))
    assert made["health_check"] == {"kind": "http", "port": 8080, "path": "/healthz", "interval_s": 5.0,
                                    "timeout_s": 600.0, "probe_timeout_s": 3.0, "failures": 2,
                                    "restart_on_unhealthy": True}
    assert "http:8080/healthz, restart" in run("templates", "list")
    tcp = json.loads(run("templates", "edit", "web", "--health", "tcp:8080", "--json"))
    assert tcp["health_check"]["restart_on_unhealthy"] is False and tcp["health_check"]["failures"] == 3
    assert "grace=S" in run("templates", "edit", "web", "--health", "tcp:8080,often=1", code=1)
    assert "http:PORT" in run("templates", "edit", "web", "--health", "tcp:8080/x", code=1)


def test_health_cell() -> None:
    assert health_cell({"health": None}) == "-"
    assert health_cell({"health": "healthy", "healthy_since": "2026-12-07T07:41:02Z"}) == "healthy since 07:41:02"
    assert health_cell({"health": "unhealthy", "health_detail": "GET http://127.0.0.1:1/ answered HTTP 500"}) == (
        "unhealthy: GET http://127.0.0.1:1/ answered HTTP 500")
    assert health_cell({"health": "starting", "health_detail": ""}) == "starting"
