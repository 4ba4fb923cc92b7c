"""Ingest service on SQLite: recorded provider refresh over a real socket, idempotent writes,
freshness, schedules and backoff, history queries, and the refresh -> /ws/prices -> optimizer path."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cloudarb.api.app import create_app
from cloudarb.context import Context, build_context
from cloudarb.db.models import JobRun, Offer, PriceTick, PriceTickHourly
from cloudarb.db.types import utcnow
from cloudarb.ingest import bulk, schedule
from cloudarb.ingest import status as status_store
from cloudarb.ingest.history import HistoryQuery, history
from cloudarb.storage import offers as offer_store
from ingestion.schemas import PriceQuote
from tests.ingestion.conftest import RECORDED, ReplayServer, Reply
from tests.support import Tenant, make_settings, wait_for

LAMBDA_BODY = (RECORDED / "lambda" / "instance_types.json").read_text()
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def quote(price: float, at: datetime, *, instance: str = "gpu_1x_h100", region: str = "us-east-1",
          provider: str = "lambda") -> PriceQuote:
    return PriceQuote(provider=provider, region=region, instance_type=instance, gpu_model="H100 SXM",
                      gpu_count=1, vram_gb=80, price_per_hour=price, observed_at=at)


def lambda_body(h100_cents: int) -> str:
    data = json.loads(LAMBDA_BODY)
    data["data"]["gpu_1x_h100_sxm5"]["instance_type"]["price_cents_per_hour"] = h100_cents
    return json.dumps(data)


@pytest.fixture()
def replay() -> Iterator[ReplayServer]:
    srv = ReplayServer()
    srv.add("GET", "/instance-types", Reply(200, LAMBDA_BODY))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def lctx(tmp_path: Path, seeded_template: Path, replay: ReplayServer) -> Iterator[Context]:
    """An embedded context whose Lambda provider talks to the replay server, with a key set."""
    db = tmp_path / "cloudarb.db"
    shutil.copy(seeded_template, db)
    settings = make_settings(
        database_url=f"sqlite:///{db}", data_dir=tmp_path, lambda_api_key="secret_lambda_key",
        ingest_base_urls={"lambda": replay.url}, ingest_providers=["lambda", "vast"], ingest_retry_attempts=1,
        scheduler_tick_s=3600,
    )
    context = build_context(settings)
    yield context
    context.close()


def job_done(ctx: Context, job_id: str) -> JobRun | None:
    with ctx.db.session() as session:
        job = session.get(JobRun, job_id)
        return job if job is not None and job.status not in ("queued", "running") else None


# ------------------------------------------------------------------ write path


def test_reingesting_a_snapshot_adds_nothing(ctx: Context) -> None:
    quotes = [quote(2.0 + i / 10, T0 + timedelta(minutes=10 * i)) for i in range(9)]
    quotes += [quote(1.0, T0, instance="other")]
    with ctx.db.session() as session:
        first = bulk.write_quotes(session, quotes)
    with ctx.db.session() as session:
        again = bulk.write_quotes(session, quotes)
        keys = [quotes[0].offer_key, quotes[-1].offer_key]
        ids = offer_store.series_ids(session, keys)
        ticks = session.scalar(select(func.count()).select_from(PriceTick)
                               .where(PriceTick.series_id.in_(ids.values())))
        hourly = session.scalars(select(PriceTickHourly).where(PriceTickHourly.series_id.in_(ids.values()))
                                 .order_by(PriceTickHourly.series_id, PriceTickHourly.bucket)).all()
    assert first.ticks_inserted == 10 and len(first.changes) == 2
    assert again.ticks_inserted == 0 and again.changes == []
    assert ticks == 10
    h100 = [h for h in hourly if h.series_id == ids[quotes[0].offer_key]]
    assert [(h.bucket, h.open, h.high, h.low, h.close, h.ticks) for h in h100] == [
        (T0, 2.0, 2.5, 2.0, 2.5, 6),
        (T0 + timedelta(hours=1), 2.6, 2.8, 2.6, 2.8, 3),
    ]


def test_late_quote_is_history_not_current_and_merges_into_its_hour(ctx: Context) -> None:
    with ctx.db.session() as session:
        bulk.write_quotes(session, [quote(3.0, T0 + timedelta(minutes=30))])
    with ctx.db.session() as session:
        late = bulk.write_quotes(session, [quote(1.0, T0 + timedelta(minutes=5))])
        offer = session.get(Offer, quote(1.0, T0).offer_key)
        series_id = offer_store.series_ids(session, [quote(1.0, T0).offer_key]).popitem()[1]
        hour = session.get(PriceTickHourly, (series_id, T0))
    assert late.changes == [] and late.ticks_inserted == 1
    assert offer is not None and offer.price_per_hour == 3.0
    assert hour is not None and (hour.open, hour.close, hour.low, hour.high, hour.ticks) == (1.0, 3.0, 1.0, 3.0, 2)


def test_stale_offers_are_excluded_per_provider(ctx: Context) -> None:
    now = utcnow()
    with ctx.db.session() as session:
        bulk.write_quotes(session, [quote(2.0, now - timedelta(seconds=20)),
                                    quote(2.0, now - timedelta(seconds=200), instance="old"),
                                    quote(0.5, now - timedelta(seconds=200), provider="vast", instance="v")])
    settings = make_settings(ingest_interval_s={"lambda": 30}, offer_max_age_s={"vast": 300})
    limits = schedule.freshness_limits(settings)
    assert limits["lambda"] == timedelta(seconds=90) and limits["vast"] == timedelta(seconds=300)
    with ctx.db.session() as session:
        rows = offer_store.offers_for_problem(session, filters=offer_store.OfferFilter(
            providers=["lambda", "vast"], max_age_by_provider=limits))
    assert {(r.provider, r.instance_type) for r in rows} == {("lambda", "gpu_1x_h100"), ("vast", "v")}


# ------------------------------------------------------------------ schedules and backoff


def test_delay_grows_exponentially_with_cap_and_jitter() -> None:
    s = make_settings(ingest_jitter_pct=10, ingest_backoff_max_s=500)
    assert schedule.next_delay_s(s, "lambda", failures=0, rand=lambda: 0.0) == 30
    assert schedule.next_delay_s(s, "lambda", failures=0, rand=lambda: 1.0) == pytest.approx(33)
    assert [schedule.next_delay_s(s, "lambda", failures=n, rand=lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [
        60, 120, 240, 480, 500]
    assert schedule.next_delay_s(s, "lambda", failures=1, retry_after_s=400, rand=lambda: 0.0) == 400
    assert schedule.interval_s(s, "aws") == 3600 and schedule.interval_s(s, "vast") == 30


def test_schedule_claims_due_providers_once_and_backs_off(lctx: Context, replay: ReplayServer) -> None:
    now = utcnow()
    started = schedule.tick(lctx, now=now)
    assert sorted(started) == ["lambda", "vast"]
    assert schedule.tick(lctx, now=now) == [], "a claimed slot is not started twice"
    with lctx.db.session() as session:
        jobs = session.scalars(select(JobRun).where(JobRun.kind == "ingest")).all()
    for job in jobs:
        wait_for(lambda j=job: job_done(lctx, j.id), timeout=30)
    with lctx.db.session() as session:
        rows = status_store.all_rows(session)
    lam, vast = rows["lambda"], rows["vast"]
    assert lam.state == "ok" and lam.offers_count == 5 and lam.consecutive_failures == 0
    assert lam.next_run_at is not None and 29 <= (lam.next_run_at - now).total_seconds() <= 40
    # vast has no key: skipped, visibly, and looked at again much later; not counted as a failure
    assert vast.state == "missing_credentials" and "no API key" in (vast.last_error or "")
    assert vast.consecutive_failures == 0 and (vast.next_run_at - now).total_seconds() >= 590  # type: ignore[operator]
    assert rows["aws"].enabled is False and rows["aws"].state == "disabled"

    # the provider starts failing: each failure doubles the wait
    replay.add("GET", "/instance-types", Reply(503, '{"error": {"message": "down"}}'))
    waits = []
    for n in (1, 2):
        due_at = lam.next_run_at if n == 1 else rows["lambda"].next_run_at
        assert schedule.tick(lctx, now=due_at - timedelta(seconds=1)) == []  # type: ignore[operator]
        assert schedule.tick(lctx, now=due_at) == ["lambda"]  # type: ignore[arg-type]
        with lctx.db.session() as session:
            job = session.scalars(select(JobRun).where(JobRun.kind == "ingest", JobRun.target_id == "lambda")
                                  .order_by(JobRun.created_at.desc())).first()
        done = wait_for(lambda j=job: job_done(lctx, j.id), timeout=30)  # type: ignore[union-attr]
        assert done.status == "failed" and "unavailable" in (done.error or "")
        with lctx.db.session() as session:
            rows = status_store.all_rows(session)
        assert rows["lambda"].consecutive_failures == n and rows["lambda"].state == "unavailable"
        waits.append((rows["lambda"].next_run_at - rows["lambda"].last_error_at).total_seconds())  # type: ignore[operator]
    assert 60 <= waits[0] <= 66 and 120 <= waits[1] <= 132
    assert rows["lambda"].last_success_at is not None, "the last success stays visible"


# ------------------------------------------------------------------ API


def test_refresh_api_and_provider_status(lctx: Context, replay: ReplayServer) -> None:
    tenant = Tenant(lctx, "Acme")
    with TestClient(create_app(ctx=lctx, scheduler=False)) as client:
        r = client.post("/providers/nope/refresh", headers=tenant.headers())
        assert r.status_code == 404 and "valid keys: aws, azure" in r.json()["error"]["message"]
        assert client.post("/providers/lambda/refresh", headers=tenant.headers("viewer")).status_code == 403
        r = client.post("/providers/lambda/refresh", headers=tenant.headers())
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["websocket_url"].endswith(f"/ws/jobs/{body['job_id']}")
        wait_for(lambda: job_done(lctx, body["job_id"]))
        assert client.get(f"/jobs/{body['job_id']}", headers=tenant.headers()).json()["status"] == "finished"
        assert replay.seen("/instance-types")[0].headers["Authorization"] == "Bearer secret_lambda_key"

        offers = client.get("/offers", params={"provider": "lambda", "max_age_s": 60},
                            headers=tenant.headers()).json()
        assert offers["total"] == 5 and all(o["age_s"] < 60 for o in offers["items"])
        providers = {p["provider"]: p for p in client.get("/providers", headers=tenant.headers()).json()}
        lam = providers["lambda"]
        assert lam["state"] == "ok" and lam["offers_count"] == 5 and lam["credentials"] == "configured"
        assert lam["lag_s"] < 60 and lam["last_success_at"] and lam["interval_s"] == 30
        assert providers["aws"]["credentials"] == "missing" and providers["aws"]["scheduled"] is False
        assert providers["azure"]["credentials"] == "not needed"

        metrics = client.get("/metrics", headers=tenant.headers("admin")).text
        assert f'cloudarb_provider_offers{{provider="lambda"}} {float(lam["current_offers"])}' in metrics
        assert 'cloudarb_provider_last_success_timestamp_seconds{provider="lambda"}' in metrics
        assert 'cloudarb_provider_lag_seconds{provider="lambda"}' in metrics


def _seed_history(ctx: Context) -> str:
    quotes = [quote(1.0 + (i % 7) / 10, T0 + timedelta(minutes=20 * i)) for i in range(72 * 3)]  # 3 days
    with ctx.db.session() as session:
        bulk.write_quotes(session, quotes)
    return quotes[0].offer_key


def test_history_hour_day_raw(ctx: Context, tenant: Tenant) -> None:
    key = _seed_history(ctx)
    with TestClient(create_app(ctx=ctx, scheduler=False)) as client:
        def get(**params: Any) -> Any:
            return client.get("/prices/history", params=params, headers=tenant.headers("viewer"))

        start, end = T0.isoformat(), (T0 + timedelta(days=3)).isoformat()
        hour = get(offer_key=key, start=start, end=end, bucket="hour").json()
        points = hour["series"][0]["points"]
        assert len(points) == 72 and all(p["ticks"] == 3 for p in points)
        assert points[0] == {"t": "2026-07-01T10:00:00Z", "open": 1.0, "high": 1.2, "low": 1.0, "close": 1.2,
                             "ticks": 3}
        day = get(offer_key=key, start=start, end=end, bucket="day").json()["series"][0]["points"]
        assert [p["ticks"] for p in day] == [42, 72, 72, 30]
        assert day[0]["open"] == 1.0 and day[0]["high"] == 1.6 and day[0]["low"] == 1.0
        raw = get(offer_key=key, start=start, end=(T0 + timedelta(hours=1)).isoformat(), bucket="raw").json()
        assert [p["close"] for p in raw["series"][0]["points"]] == [1.0, 1.1, 1.2]
        by_model = get(gpu_model="h100 sxm", provider="lambda", start=start, end=end).json()
        assert [s["offer_key"] for s in by_model["series"]] == [key]

        assert get(offer_key="0" * 24, start=start, end=end).status_code == 404
        for bad in ({"start": start, "end": end},
                    {"offer_key": key, "gpu_model": "H100 SXM"},
                    {"offer_key": key, "start": end, "end": start},
                    {"offer_key": key, "start": "2026-07-01T00:00:00", "end": end},
                    {"offer_key": key, "start": start, "end": end, "bucket": "minute"},
                    {"offer_key": key, "start": start, "end": (T0 + timedelta(days=30)).isoformat(),
                     "bucket": "raw"}):
            r = get(**bad)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"]["code"] == "invalid" and r.json()["error"]["message"]


def test_history_store_keeps_series_order_and_limits(ctx: Context) -> None:
    key = _seed_history(ctx)
    with ctx.db.session() as session:
        series = history(session, HistoryQuery(offer_key=key, start=T0, end=T0 + timedelta(days=3),
                                               bucket="raw", max_points=5))
    assert len(series[0].points) == 5 and series[0].points[0].t == T0


# ------------------------------------------------------------------ end to end


def _optimize(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    body = {"name": "one h100", "time_limit_s": 10,
            "workloads": [{"id": "w", "gpus_min": 1, "min_vram_gb": 80, "workload_type": "training"}]}
    r = client.post("/optimize", json=body, headers=tenant.headers())
    assert r.status_code == 202, r.text
    opt_id = r.json()["id"]
    wait_for(lambda: client.get(f"/optimize/{opt_id}", headers=tenant.headers()).json()["status"] == "finished")
    lines = client.get(f"/optimize/{opt_id}/allocations", headers=tenant.headers()).json()
    return {"lines": lines, "cost": sum(ln["hourly_cost"] for ln in lines)}


def test_refresh_moves_a_price_to_ws_and_the_next_optimization(lctx: Context, replay: ReplayServer) -> None:
    tenant = Tenant(lctx, "Acme")
    target = quote(1.0, T0, instance="gpu_1x_h100_sxm5", region="us-east-1").offer_key
    with TestClient(create_app(ctx=lctx, scheduler=False)) as client:
        first = client.post("/providers/lambda/refresh", headers=tenant.headers()).json()
        wait_for(lambda: job_done(lctx, first["job_id"]))
        before = _optimize(client, tenant)
        assert target not in {ln["offer_key"] for ln in before["lines"]}

        with lctx.db.session() as session:
            from cloudarb.ingest.events import last_id

            seen = last_id(session)
        replay.add("GET", "/instance-types", Reply(200, lambda_body(1)))  # $0.01/h: the cheapest H100 by far
        url = f"/ws/prices?token={tenant.keys['viewer']}&provider=lambda&gpu_model=H100+SXM&after={seen}"
        with client.websocket_connect(url) as ws:
            r = client.post("/providers/lambda/refresh", headers=tenant.headers())
            assert r.status_code == 202
            events = [ws.receive_json(), ws.receive_json()]
        assert {e["offer_key"] for e in events} == {
            target, quote(1.0, T0, instance="gpu_1x_h100_sxm5", region="us-west-1").offer_key}
        event = next(e for e in events if e["offer_key"] == target)
        assert event["old_price_per_hour"] == 3.29 and event["new_price_per_hour"] == 0.01
        assert event["provider"] == "lambda" and event["change_pct"] < -99

        wait_for(lambda: job_done(lctx, r.json()["job_id"]))
        after = _optimize(client, tenant)
        assert [ln["offer_key"] for ln in after["lines"]][0] in {e["offer_key"] for e in events}
        assert after["cost"] == pytest.approx(0.01) and after["cost"] < before["cost"]


def test_sqlite_migration_backfills_hourly_from_existing_ticks(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from cloudarb.db import migrate

    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:  # SQLAlchemy's SQLite datetime text format, as the app writes it
        conn.execute(text("INSERT INTO price_ticks (offer_key, observed_at, price_per_hour) VALUES "
                          "('k', '2025-01-01 10:05:00.000000', 2), ('k', '2025-01-01 10:45:00.000000', 1), "
                          "('k', '2025-01-01 10:25:00.000000', 5), ('k', '2025-01-01 11:00:00.000000', 3)"))
    migrate.upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT bucket, open, high, low, close, ticks FROM price_ticks_hourly "
                                 "ORDER BY bucket")).all()
    assert [tuple(r) for r in rows] == [("2025-01-01 10:00:00.000000", 2, 5, 1, 1, 3),
                                        ("2025-01-01 11:00:00.000000", 3, 3, 3, 3, 1)]
    migrate.downgrade(url, "0001")
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
    assert not names & {"price_ticks_hourly", "provider_status", "price_events"} and "price_ticks" in names
    engine.dispose()
