"""Forecast jobs on SQLite: price and demand forecasts from stored history, progress per series,
idempotent reruns, champion/challenger promotion only on a win, scheduled retraining."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from cloudarb.context import Context
from cloudarb.db.models import ForecastModelVersion, ForecastSchedule, JobEvent, JobRun, StoredForecast
from cloudarb.db.types import utcnow
from cloudarb.forecasts import store, training
from cloudarb.forecasts.keys import price_key
from cloudarb.forecasts.submit import submit_forecast
from cloudarb.forecasts.submit import tick as forecast_tick
from cloudarb.ingest.bulk import write_ticks
from cloudarb.jobs import store as job_store
from forecasting.schemas import BacktestReport, ModelMetrics
from tests.cloudarb.test_forecast_helpers import STABLE, VOLATILE, seed_prices
from tests.support import Tenant, wait_for

FAST = {"forecast_demand_candidates": ["lag_ridge"], "forecast_workers": 2}


def run_job(ctx: Context, job_id: str) -> JobRun:
    def ended() -> JobRun | None:
        with ctx.db.session() as session:
            job = job_store.get_job(session, job_id)
            return job if job is not None and job.status not in job_store.ACTIVE else None

    job: JobRun = wait_for(ended, timeout=90)
    assert job.status == "finished", job.error
    return job


def events(ctx: Context, job_id: str) -> list[dict[str, object]]:
    with ctx.db.session() as session:
        return [e.payload for e in session.scalars(select(JobEvent).where(JobEvent.job_id == job_id)
                                                   .order_by(JobEvent.seq))]


@pytest.mark.parametrize("ctx", [FAST], indirect=True)
def test_price_job_stores_forecasts_and_is_idempotent(ctx: Context, tenant: Tenant) -> None:
    seed_prices(ctx)
    job = submit_forecast(ctx, kind="price", organization_id=tenant.org_id, actor="test", full_refit=True)
    run_job(ctx, job.id)

    fitting = [e for e in events(ctx, job.id) if e.get("phase") == "fitting" and "done" in e]
    assert [e["done"] for e in fitting][-2:] == [1, 2], "one progress event per series fitted"
    assert fitting[-1]["total"] == 2
    with ctx.db.session() as session:
        rows = {f.series_key: f for f in session.scalars(select(StoredForecast))}
        assert set(rows) == {price_key(STABLE), price_key(VOLATILE)}
        vol = rows[price_key(VOLATILE)]
        assert vol.backtest is not None and vol.backtest["selected"] == vol.model
        assert "last_value" in vol.backtest["metrics"], "last value is always backtested"
        # the price skill gate judged the served model against last value, and said so
        skill = vol.paths["skill"]
        assert skill["rule"] and skill["reason"] and len(skill["steps"]) == vol.horizon
        served = {step["served"] for step in skill["steps"]}
        assert served <= {vol.model, "last_value"}
        assert skill["has_skill"] == (served != {"last_value"})
        assert len(vol.paths["scenarios"]) == ctx.settings.forecast_scenarios
        assert len(vol.paths["point"]) == vol.horizon == ctx.settings.forecast_horizon_hours
        assert vol.volatility and vol.volatility > 0.05
        stable = rows[price_key(STABLE)]
        assert stable.fallback and ("flat" in (stable.fallback_reason or "")
                                    or "no skill over last value" in (stable.fallback_reason or ""))
        champion = store.champion(session, organization_id=None, series_key=price_key(VOLATILE))
        assert champion is not None and champion.model == vol.model and vol.model_version_id == champion.id
        origin = vol.origin

    # the same history again, retrained: same origin replaced, no new model version (the same fit)
    again = submit_forecast(ctx, kind="price", organization_id=tenant.org_id, actor="test", full_refit=True)
    run_job(ctx, again.id)
    assert [e for e in events(ctx, again.id) if e.get("phase") == "done"][-1]["cache"] == {"miss": 2}
    # and refreshed: served from the cache of fitted models
    refresh = submit_forecast(ctx, kind="price", organization_id=tenant.org_id, actor="test")
    run_job(ctx, refresh.id)
    assert [e for e in events(ctx, refresh.id) if e.get("phase") == "done"][-1]["cache"] == {"hit": 2}
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(StoredForecast)) == 2
        # one version per series (the skill gate records last value as the flat series' champion);
        # the two later runs on the same history added none
        versions = list(session.scalars(select(ForecastModelVersion)))
        assert sorted(v.model for v in versions) == sorted(["last_value", vol.model]), versions
        latest = store.latest(session, series_key=price_key(VOLATILE), organization_id="x")
        assert latest is not None and latest.origin == origin and latest.backtest is not None

    # one more hour of history: the skill gate judges the series again on the new data (its verdict may
    # change with it; 0.16 s a series against 0.28 s for the old selection backtest), the origin moves on
    nxt = origin.replace(minute=1)
    with ctx.db.session() as session:
        write_ticks(session, [(STABLE, nxt, 2.0, 100), (VOLATILE, nxt, 1.7, 100)])
    grown = submit_forecast(ctx, kind="price", organization_id=tenant.org_id, actor="test")
    run_job(ctx, grown.id)
    cache = [e for e in events(ctx, grown.id) if e.get("phase") == "done"][-1]["cache"]
    assert cache == {"miss": 2}, cache
    with ctx.db.session() as session:
        latest = store.latest(session, series_key=price_key(VOLATILE), organization_id="x")
        assert latest is not None and latest.origin == origin + timedelta(hours=1)
        assert latest.paths["skill"]["origins"] and latest.backtest is not None


def _report(metrics: dict[str, float], selected: str) -> BacktestReport:
    def m(mase: float) -> ModelMetrics:
        return ModelMetrics(mape=1.0, smape=1.0, mase=mase, mae=mase / 10, coverage=0.8, interval_level=0.8,
                            n_origins=4)

    return BacktestReport(series_id="price:k", horizon=24, season_length=24, origins=[utcnow()],
                          metrics={n: m(v) for n, v in metrics.items()}, details=[], selected=selected)


def _item() -> training.Item:
    from forecasting.schemas import Series

    return training.Item(series=Series(series_id="price:k", timestamps=[], values=[], freq="h"), kind="price")


def _judge(session: Any, report: BacktestReport, digest: str, summary: training.BatchSummary) -> tuple[str | None,
                                                                                                       str | None]:
    current = store.champion(session, organization_id=None, series_key="price:k")
    verdict = training.decide(report, current, digest)
    version = training.record(session, _item(), report, current, verdict, digest, None, summary)
    return version, verdict.serve


def test_challenger_replaces_champion_only_if_it_wins(ctx: Context) -> None:
    summary = training.BatchSummary()
    with ctx.db.session() as session:
        first, served = _judge(session, _report({"last_value": 1.0, "ets": 0.9}, "ets"), "h1", summary)
        assert served is None and first is not None
        champ = store.champion(session, organization_id=None, series_key="price:k")
        assert champ is not None and champ.model == "ets" and champ.decision == "no champion yet"
        assert _judge(session, _report({"last_value": 1.0, "ets": 0.9}, "ets"), "h1", summary) == (champ.id, None)

        # challenger lag_ridge scores worse than the champion re-scored on the same backtest: kept
        kept_id, served = _judge(session, _report({"last_value": 1.0, "ets": 0.8, "lag_ridge": 0.85}, "lag_ridge"),
                                 "h2", summary)
        assert kept_id == champ.id and served == "ets"
        assert store.champion(session, organization_id=None, series_key="price:k").model == "ets"

        # now it wins: it becomes champion and the old one steps down; every version keeps its metrics
        new_id, served = _judge(session, _report({"last_value": 1.0, "ets": 0.8, "lag_ridge": 0.6}, "lag_ridge"),
                                "h3", summary)
        assert served is None and new_id != champ.id
        versions = store.versions(session, scope="market", series_key="price:k")
        assert [(v.model, v.is_champion) for v in sorted(versions, key=lambda v: v.trained_at)] == [
            ("ets", False), ("lag_ridge", False), ("lag_ridge", True)]
        assert all(v.metrics["mase"] > 0 for v in versions)
        assert "wins" in next(v for v in versions if v.is_champion).decision
    assert (summary.kept, summary.promoted) == (1, 1)


@pytest.mark.parametrize("ctx", [FAST], indirect=True)
def test_scheduled_retraining_claims_each_slot_once(ctx: Context, tenant: Tenant) -> None:
    now = utcnow()
    assert forecast_tick(ctx, now=now) == [], "a fresh install waits one interval"
    with ctx.db.session() as session:
        for row in session.scalars(select(ForecastSchedule)):
            row.next_run_at = now - timedelta(seconds=1)
    started = forecast_tick(ctx, now=now)
    assert started == ["price:retrain"], "a due retrain takes the slot of the refresh"
    assert forecast_tick(ctx, now=now) == [], "the slot is claimed once"
    with ctx.db.session() as session:
        job = session.scalars(select(JobRun).where(JobRun.kind == "forecast")).one()
        assert job.target_id == "price:full"
    run_job(ctx, job.id)
    later = now + timedelta(seconds=ctx.settings.forecast_refresh_interval_s + 1)
    assert forecast_tick(ctx, now=later) == ["price:refresh"]


def test_price_job_rejects_a_bad_target(ctx: Context, tenant: Tenant) -> None:
    with ctx.db.session() as session:
        job = job_store.create_job(session, organization_id=tenant.org_id, kind="forecast",
                                   function="cloudarb.forecasts.jobs.price_body", target_id="prices", max_attempts=1)
    ctx.queue.enqueue(job.id, job.function)

    def ended() -> JobRun | None:
        with ctx.db.session() as session:
            j = job_store.get_job(session, job.id)
            return j if j is not None and j.status not in job_store.ACTIVE else None

    failed = wait_for(ended, timeout=30)
    assert failed.status == "failed" and "price:full" in (failed.error or "")


def test_the_demand_config_carries_the_holiday_calendar_and_bad_calendars_are_refused() -> None:
    from types import SimpleNamespace

    from pydantic import ValidationError

    from cloudarb.config import Settings
    from cloudarb.forecasts.jobs import config_for

    settings = Settings(forecast_holidays="US-WA", forecast_timezone="America/Los_Angeles")
    cfg = config_for(SimpleNamespace(ctx=SimpleNamespace(settings=settings)), "demand")  # type: ignore[arg-type]
    assert "day_profile" in cfg.candidates
    assert cfg.model_params["day_profile"] == {"holidays": "US-WA", "timezone": "America/Los_Angeles"}
    assert Settings().forecast_holidays is None and "day_profile" in Settings().forecast_demand_candidates
    from forecasting.demand import DEMAND_CONFIG  # the service's default pool is the library's

    assert tuple(Settings().forecast_demand_candidates) == DEMAND_CONFIG.candidates
    for field, value in (("forecast_holidays", "XX"), ("forecast_holidays", "US-XX"),
                         ("forecast_timezone", "Mars/Olympus")):
        with pytest.raises(ValidationError, match=field):
            Settings(**{field: value})
