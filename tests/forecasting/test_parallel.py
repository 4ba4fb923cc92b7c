"""Many series: process pool, cache hits, incremental refits."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from forecasting.models.base import ModelForecast
from forecasting.models.baselines import LastValue
from forecasting.models.registry import MODELS
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


class Brittle(LastValue):
    """A model that breaks the way a numeric library's change once broke lag ridge: IndexError
    from ``predict`` itself (outside the base class's translation), on one kind of series only."""

    name = "brittle"

    def predict(self, horizon: int) -> ModelForecast:
        y, _ = self._fitted()
        if np.nanmax(y) > 1000:
            raise IndexError("too many indices for array: array is 0-dimensional")
        return super().predict(horizon)


def test_a_failing_series_gets_last_value_and_a_reason_and_the_batch_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, Brittle.name, Brittle)
    cfg = ForecastConfig(horizon=3, model=Brittle.name, n_scenarios=4)
    bad = make(9, 24 * 5)
    bad = Series(series_id="bad", timestamps=bad.timestamps, values=[v + 5000 for v in bad.values if v is not None],
                 freq="h")
    empty = Series(series_id="empty", timestamps=bad.timestamps[:3], values=[None, None, None], freq="h")
    for workers in (1, 2):
        out = forecast_many([make(1, 24 * 5), bad, make(2, 24 * 5), empty], cfg, n_workers=workers)
        assert [o.series_id for o in out] == ["s1", "bad", "s2", "empty"]
        good = [out[0], out[2]]
        assert all(o.error is None and o.result is not None and o.result.model == Brittle.name for o in good)
        failed = out[1]
        assert failed.result is not None and failed.error is not None and "IndexError" in failed.error
        assert failed.result.model == "last_value" and "forecast_failed" in failed.result.flags
        assert failed.result.fallback_reason is not None and "IndexError" in failed.result.fallback_reason
        assert failed.result.point == pytest.approx([bad.values[-1]] * 3)
        assert out[3].result is None and out[3].error is not None
