"""GET /offers says, per spot offer, the served interruption rate and where it came from."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.db.types import utcnow
from tests.forecasts_fleet.test_fleet_feed import Fleet, offer, served
from tests.support import Tenant


def _items(client: TestClient, tenant: Tenant) -> dict[str, dict[str, object]]:
    r = client.get("/offers", params={"provider": "aws", "gpu_type": "V100", "limit": 200},
                   headers=tenant.headers("viewer"))
    assert r.status_code == 200, r.text
    return {i["offer_key"]: i for i in r.json()["items"]}


def test_offers_show_the_served_rate_and_our_fleets_record(ctx: Context, client: TestClient, tenant: Tenant) -> None:
    with ctx.db.session() as session:
        session.add(offer("aws:test:p3-spot"))
        session.add(offer("aws:test:p3-od", spot=False, price=3.06))
    items = _items(client, tenant)
    assert items["aws:test:p3-od"]["risk"] is None, "on-demand offers carry no risk"
    risk = items["aws:test:p3-spot"]["risk"]
    assert isinstance(risk, dict)
    assert risk["interruption_rate_per_hour"] is None and risk["source"].startswith("not computed yet")
    with ctx.db.session() as session:
        rows = [o for o in session.query(type(offer())).filter_by(instance_type="p3.2xlarge", zone="us-east-1a")]
    fleet, now = Fleet(ctx), utcnow()
    fleet.instance(started=now - timedelta(hours=5), interrupted=now - timedelta(hours=1))
    fleet.refused(1)
    f = served(ctx, *rows)  # an optimize job's feed computes and caches the prior
    risk = _items(client, tenant)["aws:test:p3-spot"]["risk"]
    assert isinstance(risk, dict)
    assert risk["interruption_rate_per_hour"] == f.rates["aws:test:p3-spot"]
    assert risk["source"] == "advisor; our fleet: 1 interruption in 4.0 h, 1 of 2 launches got capacity"
    assert (risk["fleet_interruptions"], risk["fleet_exposure_hours"], risk["fleet_launches"],
            risk["fleet_launch_refusals"]) == (1, 4.0, 1, 1)
    assert risk["launch_success"] == f.launch_success["aws:test:p3-spot"]
    assert risk["fleet_mean_time_to_running_s"] == 90.0


def test_an_offer_stating_its_rate_shows_our_fleets_launch_share(ctx: Context, client: TestClient,
                                                                  tenant: Tenant) -> None:
    stated = offer("aws:test:p3-stated")
    stated.interruption_rate_per_hour = 0.02
    with ctx.db.session() as session:
        session.add(stated)
    assert _items(client, tenant)["aws:test:p3-stated"]["risk"]["launch_success"] is None  # type: ignore[index]
    fleet = Fleet(ctx)
    fleet.instance(started=utcnow() - timedelta(hours=2))
    fleet.refused(3)
    risk = _items(client, tenant)["aws:test:p3-stated"]["risk"]
    assert isinstance(risk, dict)
    assert (risk["source"], risk["interruption_rate_per_hour"]) == ("provider", 0.02)
    assert risk["launch_success"] == (1 + 1) / (2 + 4)  # what the optimize job's feed gives the optimizer
