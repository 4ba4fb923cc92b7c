"""`cloudarb deployments show`'s instance table: a health column for local placements (what the node's
agent last reported, with the failure's reason) and pause figures for stopped instances, each column only
where some instance has the figure; the rows are built from the API's own instance model."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from cloudarb.cli.deploy import instances_table, pause_cell
from cloudarb.deploy.views import InstanceOut

AT = datetime(2026, 12, 7, 7, 41, 2, tzinfo=UTC)


def _instance(n: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        id=f"i{n}", line=0, replica=n, attempt=0, key=f"k{n}", provider="local", offer_key="local:h1:a100",
        region="lab", instance_type="a100x1", gpu_model="A100", gpu_count=1, spot=False, price_per_hour=1.25,
        reported_rate=None, state="running", provider_id=f"h1/c{n}", address="10.0.0.5", ssh_port=None,
        ssh_command=None, expires_at=AT, state_at=AT, last_error=None, end_reason=None, destroy_attempts=0,
        cost_so_far=0.5)
    base.update(extra)
    return InstanceOut(**base).model_dump(mode="json")


def _render(instances: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(instances_table(instances))
    return out.getvalue()


def test_health_and_pause_columns() -> None:
    rows = [_instance(0, health="healthy", healthy_since=AT),
            _instance(1, health="unhealthy", health_detail="GET http://127.0.0.1:8080/healthz answered HTTP 500"),
            _instance(2, state="stopped", paused_since=AT, paused_seconds=200.0),
            _instance(3, paused_seconds=3725.0, desired_state="stopped")]
    text = _render(rows)
    header = text.splitlines()[1]
    assert "health" in header and "paused" in header
    assert "healthy since 07:41:02" in text
    assert "unhealthy: GET http://127.0.0.1:8080/healthz answered HTTP 500" in text
    assert "since 07:41:02, 3m20s so far" in text
    assert "1h02m" in text and "running -> stopped" in text


def test_columns_only_where_some_instance_has_the_figure() -> None:
    header = _render([_instance(0), _instance(1)]).splitlines()[1]
    assert "health" not in header and "paused" not in header
    assert "paused" in _render([_instance(0), _instance(1, paused_seconds=5.0)]).splitlines()[1]
    assert "health" in _render([_instance(0, health="starting"), _instance(1)]).splitlines()[1]


def test_pause_cell() -> None:
    assert pause_cell({"paused_seconds": 0.0}) == "-"
    assert pause_cell({"paused_seconds": 59.6}) == "1m00s"
    assert pause_cell({"paused_since": "2026-12-07T07:41:02Z", "paused_seconds": 0.0}) == "since 07:41:02, 0m00s so far"
