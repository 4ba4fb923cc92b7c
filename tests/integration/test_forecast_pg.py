"""Forecasts in production mode: PostgreSQL history, an RQ worker process fitting series in its own
process pool, per-series progress over the WebSocket, stored rows read back by the API server."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from cloudarb.context import Context
from cloudarb.forecasts.keys import price_key
from tests.cloudarb.test_forecast_helpers import STABLE, VOLATILE, seed_prices
from tests.integration.test_production_flow import ws_follow
from tests.support import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def tenant(prod_ctx: Context) -> Tenant:
    return Tenant(prod_ctx, f"Forecast {uuid.uuid4().hex[:6]}")


def test_price_forecast_job_on_postgres_with_a_worker(server: str, prod_ctx: Context, tenant: Tenant,
                                                      start_worker: Any) -> None:
    seed_prices(prod_ctx)
    start_worker()
    r = httpx.post(f"{server}/forecasts/refresh", json={"kind": "price", "full_refit": True},
                   headers=tenant.headers(), timeout=30)
    assert r.status_code == 202, r.text
    events = ws_follow(server, r.json()["job_id"], tenant.keys["viewer"], timeout=120)
    assert events[-1]["status"] == "finished", events[-3:]
    fitted = [e["done"] for e in events if e["type"] == "progress" and e.get("phase") == "fitting" and "done" in e]
    assert fitted and fitted[-1] >= 2 and fitted == sorted(fitted), "one progress event per series fitted"

    page = httpx.get(f"{server}/forecasts", params={"series": [price_key(STABLE), price_key(VOLATILE)]},
                     headers=tenant.headers("viewer")).json()
    assert {f["offer_key"] for f in page["items"]} == {STABLE, VOLATILE}
    volatile = next(f for f in page["items"] if f["offer_key"] == VOLATILE)
    assert volatile["backtest"] is not None and volatile["provider"] == "acme"
    backtest = httpx.get(f"{server}/forecasts/{price_key(VOLATILE)}/backtest", headers=tenant.headers("viewer"))
    assert backtest.status_code == 200
    body = backtest.json()
    assert body["champion"]["model"] == body["backtest"]["selected"]
    assert "last_value" in body["backtest"]["metrics"]
