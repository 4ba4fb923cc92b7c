"""Many series: process pool, cache hits, incremental refits."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from forecasting.parallel import DiskCache, MemoryCache, forecast_many, series_hash
from forecasting.schemas import Series
from forecasting.selection import ForecastConfig

CFG = ForecastConfig(horizon=12, model="ets", n_scenarios=10,
                     model_params={"ets": {"initialization": "heuristic", "brute": False, "calibration_origins": 4}})


def make(i: int, n: int) -> Series:
    rng = np.random.default_rng(i)
    t = np.arange(n)
    y = 20 + i + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, n)
    t0 = datetime(2024, 1, 1)
    return Series(series_id=f"s{i}", timestamps=[t0 + timedelta(hours=int(k)) for k in t], values=list(y), freq="h")


def test_pool_gives_the_same_forecasts_as_serial() -> None:
    batch = [make(i, 24 * 5) for i in range(4)]
    serial = forecast_many(batch, CFG, n_workers=1)
    pooled = forecast_many(batch, CFG, n_workers=2)
    for a, b in zip(serial, pooled):
        assert a.series_id == b.series_id and a.error is None and b.result is not None and a.result is not None
        np.testing.assert_allclose(a.result.point, b.result.point)


def test_cache_hit_then_incremental_refit(tmp_path: Path) -> None:
    for cache in (MemoryCache(), DiskCache(tmp_path / "cache")):
        seen: list[tuple[int, int]] = []
        first = forecast_many([make(1, 24 * 5)], CFG, cache=cache, progress=lambda d, t, seen=seen: seen.append((d, t)))
        assert first[0].cache == "miss" and seen[-1] == (1, 1)
        again = forecast_many([make(1, 24 * 5)], CFG, cache=cache)
        assert again[0].cache == "hit" and again[0].result == first[0].result
        grown = forecast_many([make(1, 24 * 5 + 6)], CFG, cache=cache)
        assert grown[0].cache == "incremental" and grown[0].result is not None
        assert "incremental_refit" in grown[0].result.flags
        assert grown[0].result.origin == first[0].result.origin + timedelta(hours=6)
        full = forecast_many([make(1, 24 * 5 + 12)], CFG, cache=cache, full_refit=True)
        assert full[0].cache == "miss"


def test_changed_history_is_not_treated_as_incremental() -> None:
    cache = MemoryCache()
    forecast_many([make(1, 24 * 5)], CFG, cache=cache)
    other = make(2, 24 * 5 + 6)
    relabeled = Series(series_id="s1", timestamps=other.timestamps, values=other.values, freq="h")
    assert series_hash(relabeled) != series_hash(make(1, 24 * 5 + 6))
    assert forecast_many([relabeled], CFG, cache=cache)[0].cache == "miss"
