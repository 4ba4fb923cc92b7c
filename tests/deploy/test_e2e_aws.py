"""End to end on AWS's API shape: an optimization of the example fleet restricted to ``aws`` deploys
against moto's EC2 server (reached through ``AWS_ENDPOINT_URL_EC2``, as a person would point it at
moto by hand), the instances carry CloudArb's tags, ``done`` removes every one of them with proof,
and the costs add up."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloudarb.context import Context
from cloudarb.db.models_deploy import DeployInstance
from cloudarb.db.types import utcnow
from cloudarb.deploy import invariants
from cloudarb.deploy.metering import meter
from tests.deploy.fakes.moto import MotoServer, moto_server  # noqa: F401
from tests.support import Tenant, wait_for

ROOT = Path(__file__).resolve().parents[2]
NO_PROBE = {"deploy_reachability_check": False, "aws_ami": "ami-0a1b2c3d4e5f60718"}  # moto: no reachable addresses, no DLAMI


@pytest.fixture()
def moto_ec2(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: F811
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield lambda region: boto3.client("ec2", region_name=region, endpoint_url=moto_server.url)


def _instances(ec2: Any, regions: set[str]) -> list[dict[str, Any]]:
    out = []
    for region in regions:
        for page in ec2(region).get_paginator("describe_instances").paginate():
            for res in page["Reservations"]:
                out.extend(res["Instances"])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("ctx", [NO_PROBE], indirect=True)
def test_example_fleet_on_aws_deploys_tags_tears_down_with_proof_and_costs_add_up(
        client: TestClient, ctx: Context, tenant: Tenant, moto_ec2: Any) -> None:
    fleet = json.loads((ROOT / "examples" / "fleet.json").read_text())
    fleet["offers"] = {"providers": ["aws"]}
    fleet["constraints"] = {"max_spot_share": 0.8}  # one provider: no provider share, no budget cap
    r = client.post("/optimize", json=fleet, headers=tenant.headers())
    assert r.status_code == 202, r.text
    opt_id = r.json()["id"]
    opt = wait_for(lambda: (b := client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json())
                   ["status"] in ("finished", "failed", "infeasible") and b, timeout=120)
    assert opt["status"] == "finished", opt.get("error") or opt["result"]
    r = client.post(f"/optimize/{opt_id}/deploy", json={"lifetime_hours": 2}, headers=tenant.headers())
    assert r.status_code == 202, r.text
    dep_id = r.json()["id"]
    dep = wait_for(lambda: (b := client.get(f"/deployments/{dep_id}", headers=tenant.headers()).json())
                   ["status"] in ("running", "partial", "failed") and b, timeout=300)
    assert dep["status"] == "running", [(i["state"], i["last_error"]) for i in dep["instances"]]
    rows = dep["instances"]
    regions = {i["region"] for i in rows}
    live = [i for i in _instances(moto_ec2, regions) if i["State"]["Name"] != "terminated"]
    tags = {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])} for i in live}
    assert sorted(t["cloudarb:key"] for t in tags.values()) == sorted(i["key"] for i in rows)
    assert all(t["cloudarb:key"].startswith("cloudarb-") and "cloudarb:expires-at" in t for t in tags.values())
    allocation = client.get(f"/optimize/{opt_id}/allocations", headers=tenant.headers()).json()
    assert sum(i["gpu_count"] for i in rows) == sum(a["gpus"] for a in allocation)  # exactly what was chosen

    assert client.post(f"/deployments/{dep_id}/done", headers=tenant.headers()).status_code == 202
    ended = wait_for(lambda: (b := client.get(f"/deployments/{dep_id}", headers=tenant.headers()).json())
                     ["status"] == "ended" and b, timeout=300)
    assert {i["state"] for i in ended["instances"]} == {"terminated"}
    states = {i["InstanceId"]: i["State"]["Name"] for i in _instances(moto_ec2, regions)}
    assert set(states.values()) == {"terminated"}, states  # the provider's own proof, not our word

    with ctx.db.session() as session:
        meter(session, utcnow())
        problems = invariants.check(session, provider="aws", prefix=rows[0]["key"].rsplit("-", 4)[0] + "-",
                                    present=[])
    assert {k: v for k, v in problems.items() if v} == {}
    with ctx.db.session() as session:  # what each instance ran, from its billing start to the proof of its end
        spans = [(r.price_per_hour, (r.billing_stopped_at - r.billing_started_at).total_seconds())
                 for r in session.scalars(select(DeployInstance).where(DeployInstance.deployment_id == dep_id))
                 if r.billing_started_at and r.billing_stopped_at]
    assert len(spans) == len(rows)
    expected = sum(rate * max(60, math.ceil(seconds)) / 3600 for rate, seconds in spans)  # EC2: per second, 60 s min
    costs = client.get("/costs?by=deployment", headers=tenant.headers()).json()
    assert costs["items"][0]["key"] == dep_id
    assert client.get("/alerts", headers=tenant.headers()).json() == []  # nothing orphaned, leaked or lost
    assert costs["total"] == pytest.approx(expected, abs=1e-4)
    assert costs["total"] >= sum(i["price_per_hour"] * 60 / 3600 for i in rows) - 1e-6
    by_gpu = client.get("/costs?by=gpu", headers=tenant.headers()).json()
    assert by_gpu["total"] == pytest.approx(costs["total"], abs=1e-5)
