"""End to end: a forecast job on stored price history produces scenarios that change an
optimization's risk term (its CVaR, and so the choice between a cheap volatile spot offer and a
stable on-demand one)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.cloudarb.test_forecast_helpers import STABLE, VOLATILE, seed_prices
from tests.support import Tenant, wait_for

REQUEST: dict[str, Any] = {
    "name": "risk-aware",
    "workloads": [{"id": "train", "gpus_min": 4, "workload_type": "training", "spot_tolerant": True}],
    "objective": "weighted",
    "weights": {"cost": 1.0, "risk": 5.0},
    "risk_tolerance": 0.0,
    "offers": {"providers": ["acme"]},
    "time_limit_s": 10,
}


def optimize(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    r = client.post("/optimize", json=body, headers=tenant.headers())
    assert r.status_code == 202, r.text
    opt_id = r.json()["id"]
    out = wait_for(lambda: (o := client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json())["status"]
                   not in ("queued", "running") and o)
    assert out["status"] == "finished", out
    lines = client.get(f"/optimize/{opt_id}/allocations", headers=tenant.headers()).json()
    return out["result"], lines


@pytest.mark.parametrize("ctx", [{"forecast_workers": 2}], indirect=True)
def test_forecast_job_scenarios_change_the_risk_term(client: TestClient, ctx: Any, tenant: Tenant) -> None:
    seed_prices(ctx)

    before, lines = optimize(client, tenant, REQUEST)
    assert before["risk"]["cvar_cost_per_hour"] is None, "no forecast yet: no price scenarios"
    assert {ln["offer_key"] for ln in lines} == {VOLATILE}, "without scenarios the cheaper spot offer wins"

    r = client.post("/forecasts/refresh", json={"kind": "price", "full_refit": True}, headers=tenant.headers())
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["websocket_url"].endswith(f"/ws/jobs/{job['job_id']}")
    done = wait_for(lambda: (j := client.get(job["status_url"], headers=tenant.headers()).json())["status"]
                    not in ("queued", "running") and j, timeout=90)
    assert done["status"] == "finished", done

    after, lines = optimize(client, tenant, REQUEST)
    cvar = after["risk"]["cvar_cost_per_hour"]
    assert cvar is not None and cvar > 0, "the stored scenarios now feed the CVaR term"
    assert {ln["offer_key"] for ln in lines} == {STABLE}, "the volatile offer's price tail now outweighs its discount"

    # with cost alone the cheap offer still wins, but its CVaR (from the scenarios) exceeds its mean cost
    cheap, lines = optimize(client, tenant, {**REQUEST, "objective": "cost"})
    assert {ln["offer_key"] for ln in lines} == {VOLATILE}
    assert cheap["risk"]["cvar_cost_per_hour"] > cheap["totals"]["cost_per_hour"]
