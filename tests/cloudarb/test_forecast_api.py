"""The forecasts API: filters, horizon/quantile selection, 404s, 422s naming fields, roles, isolation,
usage, and a policy's demand opt-in driving its GPU requirement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store
from cloudarb.forecasts.history import usage_histories
from cloudarb.forecasts.keys import demand_key, price_key
from forecasting.models.state import ARRIVALS, END_STATE
from tests.cloudarb.test_forecast_helpers import STABLE, VOLATILE, add_offer, step_usage_points, usage_points
from tests.support import Tenant, small_request, wait_for

LEVELS = ["0.05", "0.1", "0.5", "0.9", "0.95"]


def stored(ctx: Context, series_key: str, *, kind: str = "price", org: str | None = None, offer_key: str | None = None,
           workload_id: str | None = None, level: float = 1.0, horizon: int = 24) -> None:
    """A stored forecast whose quantile q path is ``level * (1 + q)`` at every step."""
    origin = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    paths = {
        "timestamps": [(origin + timedelta(hours=i)).isoformat() for i in range(horizon)],
        "point": [level * 1.5] * horizon,
        "quantiles": {q: [level * (1 + float(q))] * horizon for q in LEVELS},
        "scenarios": [[level * 1.5] * horizon for _ in range(3)],
        "flags": [],
        "last": level,
        "skill": {"rule": "beat last value by 10% MAE, sign test p<0.1", "origins": ["2026-01-01T00:00:00+00:00"] * 4,
                  "steps": [{"step": i + 1, "served": "lag_ridge" if i < 2 else "last_value", "candidate": "lag_ridge",
                             "n_origins": 4, "wins": 4 if i < 2 else 1, "losses": 0 if i < 2 else 3,
                             "p_value": 0.06 if i < 2 else 0.9, "candidate_mae": 0.1, "last_value_mae": 0.2,
                             "skill": i < 2} for i in range(horizon)],
                  "has_skill": True, "reason": "lag_ridge served at steps 1-2", "step_shaped": False,
                  "interval_scale": 1.2, "backtest_coverage": 0.8, "interval_level": 0.8, "interval_read_at": 0.85},
    }
    backtest = {"horizon": horizon, "season_length": 24, "origins": ["2026-01-01T00:00:00+00:00"] * 4,
                "selected": "lag_ridge", "notes": [],
                "metrics": {"lag_ridge": {"mase": 0.7, "smape": 3.0, "coverage": 0.8},
                            "last_value": {"mase": 1.0, "smape": 4.0, "coverage": 0.7}}}
    with ctx.db.session() as session:
        store.save_forecast(session, store.NewForecast(
            series_key=series_key, kind=kind, organization_id=org, offer_key=offer_key, workload_id=workload_id,
            origin=origin, step="h", horizon=horizon, model="lag_ridge", fallback_reason=None, paths=paths,
            backtest=backtest), keep=3)
        store.add_version(session, organization_id=org, series_key=series_key, kind=kind, model="lag_ridge",
                          params={}, metrics={"mase": 0.7}, data_hash="h", trained_at=utcnow(), make_champion=True,
                          decision="no champion yet")


@pytest.fixture()
def market(ctx: Context) -> None:
    add_offer(ctx, STABLE, price=2.0, spot=False)
    add_offer(ctx, VOLATILE, price=1.6, spot=True, provider="other", region="r2")
    stored(ctx, price_key(STABLE), offer_key=STABLE, level=2.0)
    stored(ctx, price_key(VOLATILE), offer_key=VOLATILE, level=1.6)


def test_list_filters_horizon_and_quantiles(client: TestClient, tenant: Tenant, market: None) -> None:
    h = tenant.headers("viewer")
    page = client.get("/forecasts", params={"gpu_model": "h100 sxm"}, headers=h).json()
    assert page["total"] == 2 and {f["offer_key"] for f in page["items"]} == {STABLE, VOLATILE}
    spot = client.get("/forecasts", params={"spot": "true"}, headers=h).json()["items"]
    assert [f["offer_key"] for f in spot] == [VOLATILE] and spot[0]["provider"] == "other"
    by_provider = client.get("/forecasts", params={"provider": "acme"}, headers=h).json()["items"]
    assert [f["series_key"] for f in by_provider] == [price_key(STABLE)]
    assert client.get("/forecasts", params={"region": "r9"}, headers=h).json()["total"] == 0

    one = client.get("/forecasts", params={"series": price_key(VOLATILE), "horizon": 6, "quantiles": [0.9, 0.1]},
                     headers=h).json()["items"][0]
    assert len(one["point"]) == len(one["timestamps"]) == 6 and one["horizon"] == 6
    assert set(one["quantiles"]) == {"0.1", "0.9"} and one["quantiles"]["0.9"][0] == pytest.approx(1.6 * 1.9)
    assert one["scenarios"] is None and one["backtest"]["selected"] == "lag_ridge"
    assert one["backtest"]["mase"] == 0.7 and one["backtest"]["n_origins"] == 4
    skill = one["skill"]
    assert skill["has_skill"] and skill["n_origins"] == 4 and skill["interval_scale"] == 1.2
    assert [s["served"] for s in skill["steps"][:3]] == ["lag_ridge", "lag_ridge", "last_value"]
    full = client.get("/forecasts", params={"series": price_key(VOLATILE), "scenarios": "true"}, headers=h).json()
    assert len(full["items"][0]["scenarios"]) == 3 and len(full["items"][0]["quantiles"]) == 5


def test_unknown_series_is_404_and_bad_parameters_are_422(client: TestClient, tenant: Tenant, market: None) -> None:
    h = tenant.headers("viewer")
    r = client.get("/forecasts", params={"series": "price:nope"}, headers=h)
    assert r.status_code == 404 and "price:nope" in r.json()["error"]["message"]
    assert client.get("/forecasts/price:nope/backtest", headers=h).status_code == 404
    cases = [
        ({"series": price_key(STABLE), "quantiles": 0.42}, "quantiles"),
        ({"quantiles": 1.5}, "quantiles"),
        ({"series": price_key(STABLE), "horizon": 48}, "horizon"),
        ({"horizon": 0}, "horizon"),
        ({"kind": "weather"}, "kind"),
        ({"spot": "maybe"}, "spot"),
    ]
    for params, field in cases:
        r = client.get("/forecasts", params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["field"].startswith(field), (params, r.json())
    stored_levels = client.get("/forecasts", params={"series": price_key(STABLE), "quantiles": 0.42}, headers=h)
    assert "0.05, 0.1, 0.5, 0.9, 0.95" in stored_levels.json()["error"]["message"]


def test_backtest_shows_metrics_and_versions(client: TestClient, tenant: Tenant, market: None) -> None:
    r = client.get(f"/forecasts/{price_key(VOLATILE)}/backtest", headers=tenant.headers("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["backtest"]["metrics"]["last_value"]["mase"] == 1.0
    assert body["champion"]["model"] == "lag_ridge" and body["versions"][0]["metrics"] == {"mase": 0.7}


def test_refresh_needs_an_editor_and_valid_body(client: TestClient, tenant: Tenant) -> None:
    assert client.post("/forecasts/refresh", json={}, headers=tenant.headers("viewer")).status_code == 403
    r = client.post("/forecasts/refresh", json={"kind": "weather"}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["error"]["field"] == "kind"
    r = client.post("/forecasts/refresh", json={"kind": "demand"}, headers=tenant.headers())
    assert r.status_code == 202 and r.headers["Location"] == f"/jobs/{r.json()['job_id']}"
    job = wait_for(lambda: (j := client.get(r.json()["status_url"], headers=tenant.headers()).json())["status"]
                   not in ("queued", "running") and j)
    assert job["status"] == "finished" and job["kind"] == "forecast" and job["target_id"] == "demand"


def test_demand_series_are_private_to_their_organization(client: TestClient, ctx: Context, tenant: Tenant,
                                                         other_tenant: Tenant) -> None:
    stored(ctx, demand_key("train"), kind="demand", org=tenant.org_id, workload_id="train", level=8.0)
    key = demand_key("train")
    assert client.get("/forecasts", params={"series": key}, headers=tenant.headers("viewer")).status_code == 200
    assert client.get(f"/forecasts/{key}/backtest", headers=tenant.headers("viewer")).status_code == 200
    other = other_tenant.headers("admin")
    r = client.get("/forecasts", params={"series": key}, headers=other)
    assert r.status_code == 404
    assert client.get("/forecasts", params={"kind": "demand"}, headers=other).json()["total"] == 0
    r_bt = client.get(f"/forecasts/{key}/backtest", headers=other)
    missing = client.get("/forecasts/demand:none/backtest", headers=other)
    assert r_bt.status_code == missing.status_code == 404
    assert r_bt.text.replace("train", "none") == missing.text


def test_usage_validation(client: TestClient, tenant: Tenant) -> None:
    naive = {"points": [{"workload_id": "w", "hour": "2026-07-01T10:00:00", "gpu_hours": 1}]}
    r = client.post("/forecasts/usage", json=naive, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["error"]["field"] == "points.0.hour"
    neg = {"points": [{"workload_id": "w", "hour": "2026-07-01T10:00:00Z", "gpu_hours": -1}]}
    assert client.post("/forecasts/usage", json=neg, headers=tenant.headers()).json()["error"]["field"] == \
        "points.0.gpu_hours"
    assert client.post("/forecasts/usage", json={"points": []}, headers=tenant.headers()).status_code == 422
    ok = {"points": [{"workload_id": "w", "hour": "2026-07-01T10:42:00Z", "gpu_hours": 3}]}
    assert client.post("/forecasts/usage", json=ok, headers=tenant.headers("viewer")).status_code == 403
    assert client.post("/forecasts/usage", json=ok, headers=tenant.headers()).json() == {"stored": 1}
    assert client.post("/forecasts/usage", json=ok, headers=tenant.headers()).json() == {"stored": 1}
    for field in ("gpus_at_end", "gpus_started"):
        bad = {"points": [{**ok["points"][0], field: -2}]}
        r = client.post("/forecasts/usage", json=bad, headers=tenant.headers())
        assert r.status_code == 422 and r.json()["error"]["field"] == f"points.0.{field}"


@pytest.mark.parametrize("ctx", [{"forecast_demand_candidates": ["last_state", "state_arrivals"]}], indirect=True)
def test_usage_with_scheduler_readings_lets_the_state_models_compete(client: TestClient, ctx: Context,
                                                                   tenant: Tenant) -> None:
    h = tenant.headers()
    steps = step_usage_points("steps")
    plain = [{k: v for k, v in p.items() if k not in ("gpus_at_end", "gpus_started")}
             for p in step_usage_points("plain")]
    assert client.post("/forecasts/usage", json={"points": steps + plain}, headers=h).json()["stored"] == 960
    with ctx.db.session() as session:
        series = {u.workload_id: u.series for u in usage_histories(
            session, organization_id=tenant.org_id, now=utcnow(), history_hours=24 * 30, min_points=48)}
    assert set(series["steps"].covariates) == {END_STATE, ARRIVALS} and series["plain"].covariates == {}
    assert series["steps"].covariates[END_STATE][-1] == steps[-1]["gpus_at_end"]

    job = client.post("/forecasts/refresh", json={"kind": "demand", "full_refit": True}, headers=h).json()
    done = wait_for(lambda: (j := client.get(job["status_url"], headers=h).json())["status"]
                    not in ("queued", "running") and j, timeout=90)
    assert done["status"] == "finished", done
    got = {w: client.get("/forecasts", params={"series": demand_key(w)}, headers=h).json()["items"][0]
           for w in ("steps", "plain")}
    # at the midnight origin the state is exact for the whole next day, the hour's mean is not
    assert got["steps"]["model"] in ("last_state", "state_arrivals")
    assert got["steps"]["point"][:24] == pytest.approx([steps[-1]["gpus_at_end"]] * 24)
    assert got["plain"]["model"] in ("last_value", "seasonal_naive")


def _policy(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> str:
    r = client.post("/policies", json={"name": "hourly", "request": body, "interval_s": 3600},
                    headers=tenant.headers())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize("ctx", [{"forecast_demand_candidates": ["lag_ridge"]}], indirect=True)
def test_policy_uses_the_demand_upper_quantile_when_opted_in(client: TestClient, ctx: Context,
                                                             tenant: Tenant) -> None:
    request = small_request(workloads=[{"id": "serve", "gpus_min": 2, "workload_type": "inference"}],
                            constraints={})
    policy_id = _policy(client, tenant, request)
    h = tenant.headers()
    r = client.post(f"/forecasts/demand-policies/{policy_id}", params={"quantile": 0.42}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "quantile"
    r = client.post(f"/forecasts/demand-policies/{policy_id}", params={"horizon_hours": 500}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "horizon_hours"
    r = client.post(f"/forecasts/demand-policies/{policy_id}", params={"quantile": 0.9, "horizon_hours": 24},
                    headers=h)
    assert r.status_code == 200 and r.json()["quantile"] == 0.9

    assert client.post("/forecasts/usage", json={"points": usage_points("serve")}, headers=h).json()["stored"] == 240
    job = client.post("/forecasts/refresh", json={"kind": "demand", "full_refit": True}, headers=h).json()
    done = wait_for(lambda: (j := client.get(job["status_url"], headers=h).json())["status"]
                    not in ("queued", "running") and j, timeout=90)
    assert done["status"] == "finished", done
    fc = client.get("/forecasts", params={"series": demand_key("serve"), "quantiles": 0.9}, headers=h).json()
    # a whole day ahead, so the midday peak is in the window whatever the hour the test runs at
    upper = max(fc["items"][0]["quantiles"]["0.9"][:24])
    assert upper > 12, "the forecast follows the usage history (8 to 16 GPUs)"

    run = client.post(f"/policies/{policy_id}/run", headers=h).json()
    result = wait_for(lambda: (o := client.get(f"/optimize/{run['id']}", headers=h).json())["status"]
                      not in ("queued", "running") and o)
    assert result["status"] == "finished", result
    bound = result["result"]["demand_bounds"]["serve"]
    assert bound["applied"] and bound["gpus_min"] == int(-(-upper // 1)) and bound["stated_gpus_min"] == 2
    assert result["result"]["totals"]["gpus"] >= bound["gpus_min"]

    # opting out restores the stated requirement
    assert client.delete(f"/forecasts/demand-policies/{policy_id}", headers=h).status_code == 200
    assert client.get(f"/forecasts/demand-policies/{policy_id}", headers=h).status_code == 404
