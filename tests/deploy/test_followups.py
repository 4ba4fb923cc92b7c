# ruff: noqa: F811  (fixtures are imported from tests/deploy/fakes/fixtures.py and used as parameters)
"""Deploy follow-ups found by the other features' tests: the embedded mode on SQLite (one writer),
the ledger right after teardown, the launch tags, and instances that bill only once they run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.models_deploy import CostEntry
from cloudarb.db.types import utcnow
from cloudarb.deploy.providers import lambda_, registry
from tests.deploy.fakes.env import Sleeps
from tests.deploy.fakes.fixtures import lambda_config, lambda_fake, lambda_server  # noqa: F401
from tests.deploy.fakes.lambda_cloud import INSTANCE_TYPES, REGIONS
from tests.deploy.fakes.server import FakeServer
from tests.deploy.memory_provider import Faults, MemoryProvider
from tests.support import Tenant, wait_for

FAST = {"deploy_boot_poll_s": 0.05}
FAST_UNPROBED = {**FAST, "deploy_reachability_check": False}  # the fake's addresses do not answer SSH


@pytest.fixture()
def booting() -> Iterator[MemoryProvider]:
    """The in-memory provider as ``lambda``, its instances pending for three reads (a real boot)."""
    provider = MemoryProvider("lambda", clock=utcnow, faults=Faults(boot_reads=3))
    with registry.use("lambda", lambda config: provider):
        yield provider


def _offer(ctx: Context) -> str:
    with ctx.db.session() as session:
        key = session.scalars(select(Offer.offer_key).where(Offer.provider == "lambda", Offer.gpu_count == 1)
                              .order_by(Offer.price_per_hour)).first()
    assert key is not None
    return key


def _settled(client: TestClient, tenant: Tenant, dep_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/deployments/{dep_id}", headers=tenant.headers()).json()
        return body if body["status"] in statuses else None

    return wait_for(done, timeout=8)  # type: ignore[no-any-return]  # a locked write alone waits 10 s


def _deploy_then_done(client: TestClient, ctx: Context, tenant: Tenant) -> dict[str, Any]:
    """Deploy the cheapest offer the Lambda fake's catalog has, wait for it to run, mark it done and
    wait for the end; the ended deployment, its one instance terminated."""
    with ctx.db.session() as session:
        offer = session.scalars(select(Offer.offer_key).where(
            Offer.provider == "lambda", Offer.instance_type.in_(list(INSTANCE_TYPES)), Offer.region.in_(REGIONS))
            .order_by(Offer.price_per_hour)).first()
    assert offer is not None
    r = client.post(f"/offers/{offer}/deploy", json={"lifetime_hours": 1}, headers=tenant.headers())
    assert r.status_code == 202, r.text
    dep = _settled(client, tenant, r.json()["id"], ("running", "partial", "failed"))
    assert dep["status"] == "running", (dep["attempts"], [i["last_error"] for i in dep["instances"]])
    assert client.post(f"/deployments/{dep['id']}/done", headers=tenant.headers()).status_code == 202
    ended = _settled(client, tenant, dep["id"], ("ended",))
    assert [i["state"] for i in ended["instances"]] == ["terminated"]
    return ended


@pytest.mark.parametrize("ctx", [FAST], indirect=True)
def test_embedded_deploy_through_boot_and_done_never_locks_sqlite(
        client: TestClient, ctx: Context, tenant: Tenant, booting: MemoryProvider,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    _deploy_then_done(client, ctx, tenant)
    assert booting.live() == []
    locked = [rec.getMessage() for rec in caplog.records if "locked" in rec.getMessage()
              or (rec.exc_text and "locked" in rec.exc_text)]
    assert locked == []


@pytest.mark.parametrize("ctx", [FAST], indirect=True)
def test_the_ledger_holds_the_final_amount_as_soon_as_an_instance_ends(
        client: TestClient, ctx: Context, tenant: Tenant, booting: MemoryProvider) -> None:
    r = client.post(f"/offers/{_offer(ctx)}/deploy", json={"lifetime_hours": 1}, headers=tenant.headers())
    dep = _settled(client, tenant, r.json()["id"], ("running", "partial", "failed"))
    # running, before any metering pass: the report includes what accrued (the first minute is the
    # provider's 60 s minimum, so both reads agree exactly)
    running = client.get("/costs?by=provider", headers=tenant.headers()).json()
    assert running["total"] == pytest.approx(dep["cost_so_far"], abs=1e-6) and running["total"] > 0
    assert running["items"][0]["instances"] == 1
    assert client.post(f"/deployments/{dep['id']}/done", headers=tenant.headers()).status_code == 202
    ended = _settled(client, tenant, dep["id"], ("ended",))
    # no metering pass ran: the teardown itself booked the run up to its proven end
    assert ended["cost_so_far"] > 0
    costs = client.get("/costs?by=deployment", headers=tenant.headers()).json()
    assert costs["total"] == pytest.approx(ended["cost_so_far"], abs=1e-6)
    summary = client.get("/costs/summary", headers=tenant.headers()).json()
    assert summary["month_to_date"] == pytest.approx(ended["cost_so_far"], abs=1e-6)
    with ctx.db.session() as session:
        entries = session.scalar(select(func.count()).select_from(CostEntry))
    assert entries == 1


@pytest.fixture()
def lambda_http(lambda_fake: FakeServer) -> Iterator[FakeServer]:
    """The Lambda Cloud fake on loopback under the key ``lambda`` (its instances boot for a read)."""
    with registry.use("lambda", lambda config: lambda_.provisioner(lambda_config(lambda_fake, Sleeps()))):
        yield lambda_fake


@pytest.mark.parametrize("ctx", [FAST_UNPROBED], indirect=True)
def test_embedded_deploy_and_done_against_the_lambda_fake_never_locks_sqlite(
        client: TestClient, ctx: Context, tenant: Tenant, lambda_http: FakeServer,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    ended = _deploy_then_done(client, ctx, tenant)
    assert [i for i in lambda_http.instances() if i["status"] != "terminated"] == []
    assert not [rec for rec in caplog.records if "locked" in rec.getMessage() or "locked" in (rec.exc_text or "")]
    costs = client.get("/costs", headers=tenant.headers()).json()
    assert costs["total"] == pytest.approx(ended["cost_so_far"], abs=1e-6) and costs["total"] > 0
