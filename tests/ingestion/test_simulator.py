"""The seeded market simulator: determinism, shape, cycles, volatility, capacity drops, list steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from ingestion.rows import QUOTE_COLUMNS
from ingestion.schemas import PriceQuote
from ingestion.simulator import CAPACITY_CODES, MarketConfig, MarketSimulator, TickBatch

T0 = datetime(2026, 7, 6, tzinfo=UTC)  # a Monday


def _offer(provider: str = "gcp", spot: bool = True, price: float = 2.0, region: str = "r1") -> PriceQuote:
    return PriceQuote(provider=provider, region=region, instance_type="x", gpu_model="L4", gpu_count=1,
                      vram_gb=24, spot=spot, price_per_hour=price, observed_at=T0)


def _one(offers: list[PriceQuote], **cfg: object) -> TickBatch:
    config = MarketConfig(**{"start": T0, "end": T0 + timedelta(days=14), "step": timedelta(minutes=30), **cfg})
    batches = list(MarketSimulator(offers, config=config).batches())
    assert len(batches) == 1
    return batches[0]


def test_shape_and_timestamps() -> None:
    offers = [_offer(), _offer(spot=False), _offer(provider="vast", spot=False)]
    batch = _one(offers)
    steps = 14 * 48
    assert len(batch) == 3 * steps
    assert np.array_equal(np.bincount(batch.offer_index), [steps] * 3)
    first = batch.observed_at[batch.offer_index == 0]
    assert first[0] == np.datetime64("2026-07-06T00:00:00")
    assert np.all(np.diff(first.astype(np.int64)) == 1800)
    assert np.all(batch.price_per_hour > 0)


def test_deterministic_per_seed() -> None:
    offers = [_offer(), _offer(provider="runpod", spot=False)]
    a, b, c = _one(offers, seed=7), _one(offers, seed=7), _one(offers, seed=8)
    assert np.array_equal(a.price_per_hour, b.price_per_hour) and np.array_equal(a.capacity, b.capacity)
    assert not np.array_equal(a.price_per_hour, c.price_per_hour)


def test_list_prices_only_step() -> None:
    batch = _one([_offer(spot=False)], capacity_drops_per_day=0, list_changes_per_year=0)
    assert np.all(batch.price_per_hour == 2.0) and np.all(batch.capacity == 0)
    stepped = _one([_offer(spot=False)], capacity_drops_per_day=0, list_changes_per_year=200, seed=3)
    levels = np.unique(stepped.price_per_hour)
    assert 2 <= len(levels) < 40  # a few step changes, not noise


def test_diurnal_and_weekly_cycles() -> None:
    offers = [_offer(region=f"r{i}") for i in range(40)]
    batch = _one(offers, spot_volatility=0.0, capacity_drops_per_day=0, list_changes_per_year=0,
                 diurnal_amplitude=0.1, weekly_amplitude=0.0)
    prices = batch.price_per_hour.reshape(40, -1)
    log_dev = np.log(prices / 2.0)
    assert log_dev.max() == pytest.approx(0.1, abs=0.01) and log_dev.min() == pytest.approx(-0.1, abs=0.01)
    day_profile = log_dev[0, :48]
    assert np.ptp(day_profile) > 0.18  # one full daily swing

    weekly = _one(offers, spot_volatility=0.0, capacity_drops_per_day=0, list_changes_per_year=0,
                  diurnal_amplitude=0.0, weekly_amplitude=0.05)
    wp = np.log(weekly.price_per_hour.reshape(40, -1) / 2.0)
    assert wp.min() == pytest.approx(-0.05, abs=1e-5) and wp.max() == pytest.approx(0.02, abs=1e-5)
    assert (wp < 0).mean() == pytest.approx(2 / 7, abs=0.02)


def test_spot_volatility_is_mean_reverting() -> None:
    offers = [_offer(region=f"r{i}") for i in range(50)]
    batch = _one(offers, diurnal_amplitude=0, weekly_amplitude=0, capacity_drops_per_day=0, list_changes_per_year=0,
                 spot_volatility=0.1, reversion_half_life_h=6, seed=11)
    logp = np.log(batch.price_per_hour.reshape(50, -1) / 2.0)
    assert np.std(logp) == pytest.approx(0.1, rel=0.15)
    assert abs(np.mean(logp)) < 0.03
    lag1 = np.corrcoef(logp[:, :-1].ravel(), logp[:, 1:].ravel())[0, 1]
    assert lag1 == pytest.approx(0.5 ** (0.5 / 6), abs=0.03)


def test_capacity_drops_make_offers_unavailable_and_spot_jump() -> None:
    offers = [_offer(region=f"r{i}") for i in range(30)]
    calm = _one(offers, capacity_drops_per_day=0)
    assert not np.any(calm.capacity == 2)
    rough = _one(offers, capacity_drops_per_day=2, capacity_drop_mean_h=3, seed=5, spot_volatility=0.0,
                 diurnal_amplitude=0, weekly_amplitude=0, list_changes_per_year=0, drop_price_jump=0.3)
    share = np.mean(rough.capacity == 2)
    assert 0.05 < share < 0.6
    prices = rough.price_per_hour
    assert np.allclose(prices[rough.capacity == 2], 2.0 * np.exp(0.3))
    assert np.allclose(prices[rough.capacity != 2], 2.0)


def test_rows_and_quotes() -> None:
    sim = MarketSimulator([_offer(), _offer(spot=False)],
                          config=MarketConfig(start=T0, end=T0 + timedelta(hours=2), step=timedelta(minutes=15)))
    rows = list(sim.rows())
    assert len(rows) == sim.tick_count == 16
    assert all(len(r) == len(QUOTE_COLUMNS) for r in rows)
    quotes = list(sim.quotes())
    assert quotes[0].observed_at == T0 and quotes[1].observed_at == T0 + timedelta(minutes=15)
    assert {q.capacity for q in quotes} <= set(CAPACITY_CODES)
    assert quotes[0].offer_key == _offer().offer_key  # same offer identity as its base quote


def test_chunks_cover_all_offers() -> None:
    offers = [_offer(region=f"r{i}") for i in range(5)]
    config = MarketConfig(start=T0, end=T0 + timedelta(hours=1), offers_per_chunk=2)
    batches = list(MarketSimulator(offers, config=config).batches())
    assert [len(b) for b in batches] == [24, 24, 12]
    assert np.array_equal(np.unique(np.concatenate([b.offer_index for b in batches])), np.arange(5))


def test_config_validation() -> None:
    with pytest.raises(ValidationError):
        MarketConfig(start=T0, end=T0)
    with pytest.raises(ValidationError):
        MarketConfig(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
    with pytest.raises(ValueError):
        MarketSimulator([], config=MarketConfig())
