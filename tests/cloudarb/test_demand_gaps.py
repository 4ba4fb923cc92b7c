"""Demand forecasts in policy runs: the hours since the usage data ended are a gap, never zero demand.
A forecast is read from the current hour on; one whose data ended longer ago than the allowed gap is
not applied, with the reason."""

from __future__ import annotations

from datetime import timedelta

from cloudarb.context import Context
from cloudarb.db.models import Policy
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store
from cloudarb.forecasts.demand import apply_demand_bounds
from cloudarb.schemas import OptimizeRequest
from tests.support import Tenant, small_request

REQUEST = {"workloads": [{"id": "serve", "gpus_min": 2, "workload_type": "inference"}]}


def _policy_with_forecast(ctx: Context, tenant: Tenant, *, origin_hours_ago: int, path: list[float]) -> str:
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    with ctx.db.session() as session:
        policy = Policy(organization_id=tenant.org_id, name="demand", request=small_request(), interval_s=3600,
                        keep_threshold_pct=5.0, next_run_at=now + timedelta(hours=1))
        session.add(policy)
        session.flush()
        store.set_demand_policy(session, organization_id=tenant.org_id, policy_id=policy.id, quantile=0.9,
                                horizon_hours=6)
        store.save_forecast(session, store.NewForecast(
            series_key="demand:serve", kind="demand", organization_id=tenant.org_id, workload_id="serve",
            origin=now - timedelta(hours=origin_hours_ago), step="h", horizon=len(path), model="test",
            fallback_reason=None, paths={"point": path, "quantiles": {"0.9": path}}, backtest=None,
        ), keep=5)
        return policy.id


def _apply(ctx: Context, tenant: Tenant, policy_id: str) -> tuple[OptimizeRequest, dict[str, object]]:
    with ctx.db.session() as session:
        request, applied = apply_demand_bounds(session, ctx.settings, organization_id=tenant.org_id,
                                               policy_id=policy_id, request=OptimizeRequest.model_validate(REQUEST))
    return request, applied["serve"]  # type: ignore[return-value]


def test_a_forecast_whose_data_ended_a_day_ago_is_refused_with_the_reason(ctx: Context, tenant: Tenant) -> None:
    policy_id = _policy_with_forecast(ctx, tenant, origin_hours_ago=23, path=[0.0] * 23 + [9.0] * 24)
    request, applied = _apply(ctx, tenant, policy_id)
    assert applied["applied"] is False and applied["gap_hours"] == 23
    assert "gap" in str(applied["reason"]) and "not zero demand" in str(applied["reason"])
    assert request.workloads[0].gpus_min == 2, "the stated requirement holds"


def test_a_recent_forecast_is_read_from_the_current_hour(ctx: Context, tenant: Tenant) -> None:
    # the first two steps are hours already past; only the hours from now on size the workload
    policy_id = _policy_with_forecast(ctx, tenant, origin_hours_ago=2, path=[50.0, 50.0] + [3.2] * 30)
    request, applied = _apply(ctx, tenant, policy_id)
    assert applied["applied"] is True
    assert request.workloads[0].gpus_min == 4
