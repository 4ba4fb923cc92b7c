"""/metrics of a real app on a seeded database: every metric the rules and the dashboard use is there,
the business gauges are right, missing tables leave their families empty, the token guards it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from cloudarb.context import Context
from cloudarb.db.models import AllocationLine, OptimizationResult, Policy
from cloudarb.db.models_nodes import Node
from cloudarb.db.types import utcnow
from tests.support import Tenant, small_request, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = {"Authorization": "Bearer scrape-token-for-tests"}
NAME = re.compile(r"\b(cloudarb_[a-z0-9_]+)")
RECORDED = re.compile(r"\b(cloudarb:[a-z0-9_:]+)")


def exposed_names(body: str) -> set[str]:
    """Every sample name the exposition can carry, samples or not (a family with no rows yet)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(body):
        names.update(s.name for s in family.samples)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def rule_exprs() -> tuple[list[str], set[str]]:
    exprs: list[str] = []
    recorded: set[str] = set()
    for path in (ROOT / "monitoring" / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                exprs.append(rule["expr"])
                if "record" in rule:
                    recorded.add(rule["record"])
    return exprs, recorded


def panel_exprs() -> list[str]:
    def walk(panels: list[dict[str, Any]]) -> list[str]:
        found: list[str] = []
        for panel in panels:
            found += [t["expr"] for t in panel.get("targets", [])]
            found += walk(panel.get("panels", []))
        return found

    out: list[str] = []
    for path in (ROOT / "monitoring" / "grafana" / "dashboards").glob("*.json"):
        out += walk(json.loads(path.read_text())["panels"])
    return out


def seed_business(ctx: Context, tenant: Tenant, optimization_id: str) -> None:
    with ctx.db.session() as session:
        session.add(Policy(organization_id=tenant.org_id, name="nightly", request=small_request(),
                           keep_threshold_pct=5.0, next_run_at=utcnow() + timedelta(hours=1),
                           current_optimization_id=optimization_id))
        session.add(Node(organization_id=tenant.org_id, name="gpu-box-1", hostname="gpu-box-1", token_hash="0" * 64))


def run_optimization(client: TestClient, tenant: Tenant) -> str:
    opt_id: str = client.post("/optimize", json=small_request(), headers=tenant.headers()).json()["id"]
    wait_for(lambda: client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()["status"] == "finished")
    return opt_id


def test_every_metric_of_the_rules_and_panels_exists(ops_client: TestClient, ops_ctx: Context) -> None:
    tenant = Tenant(ops_ctx, "Ops")
    seed_business(ops_ctx, tenant, run_optimization(ops_client, tenant))
    body = ops_client.get("/metrics", headers=TOKEN).text
    exposed = exposed_names(body)
    exprs, recorded = rule_exprs()
    panels = panel_exprs()
    assert len(panels) >= 20
    used = {name for expr in exprs + panels for name in NAME.findall(expr)}
    missing = sorted(used - exposed)
    assert not missing, f"used in rules or panels but not in /metrics: {missing}"
    undefined = sorted({n for expr in exprs + panels for n in RECORDED.findall(expr)} - recorded)
    assert not undefined, f"recorded series used but never recorded: {undefined}"


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_business_gauges_match_storage(ops_client: TestClient, ops_ctx: Context) -> None:
    tenant = Tenant(ops_ctx, "Ops")
    opt_id = run_optimization(ops_client, tenant)
    seed_business(ops_ctx, tenant, opt_id)
    with ops_ctx.db.session() as session:
        lines = session.query(AllocationLine).filter_by(optimization_id=opt_id).all()
        result = session.get(OptimizationResult, opt_id)
        assert result is not None
        savings = {s["baseline"]: s["savings_per_hour"] for s in result.summary["savings"]
                   if s.get("savings_per_hour") is not None}
    by_provider: dict[str, float] = {}
    for line in lines:
        by_provider[line.provider] = by_provider.get(line.provider, 0.0) + line.hourly_cost
    got = samples(ops_client.get("/metrics", headers=TOKEN).text)
    for provider, cost in by_provider.items():
        assert got[("cloudarb_allocated_dollars_per_hour", (("provider", provider),))] == pytest.approx(cost)
    assert savings, "the example optimization computes savings against its baselines"
    for baseline, value in savings.items():
        assert got[("cloudarb_savings_dollars_per_hour", (("baseline", baseline),))] == pytest.approx(value)
    assert got[("cloudarb_nodes", (("status", "healthy"),))] == 1
    assert got[("cloudarb_workers", (("queue", "cloudarb"),))] == 1
    assert got[("cloudarb_job_oldest_seconds", (("status", "running"),))] == 0


def test_unfinished_jobs_are_counted_with_their_age(ops_client: TestClient, ops_ctx: Context) -> None:
    tenant = Tenant(ops_ctx, "Ops")
    with ops_ctx.db.session() as session:
        session.execute(text(
            "INSERT INTO job_runs (id, organization_id, kind, function, target_id, status, attempts, max_attempts, "
            "cancel_requested, created_at, started_at) VALUES ('j1', :org, 'optimize', 'x.y', 't', 'running', 1, 3, "
            "0, :created, :started)"), {"org": tenant.org_id, "created": (utcnow() - timedelta(hours=1)).replace(
                tzinfo=None), "started": (utcnow() - timedelta(minutes=30)).replace(tzinfo=None)})
    got = samples(ops_client.get("/metrics", headers=TOKEN).text)
    assert got[("cloudarb_jobs_active", (("kind", "optimize"), ("status", "running")))] == 1
    assert got[("cloudarb_job_oldest_seconds", (("status", "running"),))] == pytest.approx(1800, abs=30)


def test_a_missing_table_leaves_its_families_empty(ops_client: TestClient, ops_ctx: Context) -> None:
    with ops_ctx.db.session() as session:
        session.execute(text("DROP TABLE node_gpu_assignments"))
        session.execute(text("DROP TABLE node_commands"))
        session.execute(text("DROP TABLE node_placements"))
    answer = ops_client.get("/metrics", headers=TOKEN)
    assert answer.status_code == 200
    assert "# TYPE cloudarb_placements gauge" in answer.text
    assert "cloudarb_placements{" not in answer.text
    assert "# TYPE cloudarb_nodes gauge" in answer.text


def test_metrics_need_the_token_or_an_admin(ops_client: TestClient, ops_ctx: Context) -> None:
    tenant = Tenant(ops_ctx, "Ops")
    assert ops_client.get("/metrics").status_code == 401
    assert ops_client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ops_client.get("/metrics", headers=tenant.headers("viewer")).status_code == 403
    assert ops_client.get("/metrics", headers=TOKEN).status_code == 200


def test_deploy_gauges_match_the_instance_rows_and_ledger(ops_client: TestClient, ops_ctx: Context) -> None:
    from cloudarb.db.models_deploy import Budget, CostEntry, DeployAlert, DeployInstance

    tenant = Tenant(ops_ctx, "Ops")
    now = utcnow()
    hour = timedelta(hours=1)

    def instance(key: str, provider: str, state: str, price: float, **extra: Any) -> DeployInstance:
        return DeployInstance(key=key, provider=provider, state=state, price_per_hour=price,
                              organization_id=tenant.org_id, **extra)

    with ops_ctx.db.session() as session:
        rows = [
            instance("k1", "lambda", "running", 2.5, billing_started_at=now - hour, expires_at=now + hour),
            instance("k2", "lambda", "running", 1.5, billing_started_at=now - hour, expires_at=now - hour),
            instance("k3", "runpod", "leaked", 0.8, billing_started_at=now - hour),
            instance("orphan:vast:77", "vast", "created", 0.4, billing_started_at=now),
            instance("k5", "lambda", "terminated", 9.0, billing_started_at=now - 2 * hour,
                     billing_stopped_at=now - hour, expires_at=now - 2 * hour),
        ]
        session.add_all(rows)
        session.flush()
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        session.add_all([
            CostEntry(instance_id=rows[0].id, organization_id=tenant.org_id, period_start=now - hour, period_end=now,
                      seconds=3600, billed_seconds=3600, rate=2.5, amount=2.5),
            CostEntry(instance_id=rows[2].id, organization_id=tenant.org_id, period_start=now - hour, period_end=now,
                      seconds=3600, billed_seconds=3600, rate=0.8, amount=0.8),
            # last month's spend counts toward no figure of this month
            CostEntry(instance_id=rows[4].id, organization_id=tenant.org_id, period_start=start - 2 * hour,
                      period_end=start - hour, seconds=3600, billed_seconds=3600, rate=9.0, amount=9.0),
            Budget(organization_id=tenant.org_id, monthly_limit=10.0, thresholds=[0.5, 0.8]),
            DeployAlert(organization_id=tenant.org_id, kind="orphan", dedupe="orphan:vast:default:77", message="m",
                        details={}),
        ])
    got = samples(ops_client.get("/metrics", headers=TOKEN).text)
    assert got[("cloudarb_instances", (("provider", "lambda"), ("state", "running")))] == 2
    assert got[("cloudarb_instances", (("provider", "runpod"), ("state", "leaked")))] == 1
    assert ("cloudarb_instances", (("provider", "lambda"), ("state", "terminated"))) not in got
    assert got[("cloudarb_instance_dollars_per_hour", (("provider", "lambda"),))] == pytest.approx(4.0)
    assert got[("cloudarb_instances_past_expiry", (("provider", "lambda"),))] == 1
    assert got[("cloudarb_orphan_instances", (("provider", "vast"),))] == 1
    assert got[("cloudarb_spend_dollars_month", (("provider", "lambda"),))] == pytest.approx(2.5)
    assert got[("cloudarb_spend_dollars_month", (("provider", "runpod"),))] == pytest.approx(0.8)
    assert got[("cloudarb_budget_used_ratio", (("organization", tenant.org_id),))] == pytest.approx(0.33)
    assert got[("cloudarb_deploy_alerts_last_hour", (("kind", "orphan"),))] == 1
