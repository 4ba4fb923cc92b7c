"""A seeded GPU market simulator: realistic price ticks for demos, load tests and forecasting tests.

Starting from base offers (e.g. the bundled snapshot), every offer gets one tick per ``step`` over
``[start, end)``. The price model, per offer, on a log scale:

    log p(t) = log p0 + L(t) + [dynamic offers only] D(t) + W(t) + X(t) + S(t)

- L(t): list-price steps. Changes arrive as a Poisson process (``list_changes_per_year``); each
  multiplies the price by exp(N(list_step_mean, list_step_sd)) (cuts are more common than rises).
- D(t): diurnal cycle, amplitude ``diurnal_amplitude``, peaking mid-afternoon in the offer's own
  time zone (a per-offer phase, so regions do not move in lockstep).
- W(t): weekly cycle, weekdays above and weekends ``weekly_amplitude`` below the mean.
- X(t): spot volatility, an AR(1) (discretised Ornstein-Uhlenbeck) process with half-life
  ``reversion_half_life_h`` and stationary sd ``spot_volatility``.
- S(t): capacity drops. Poisson events (``capacity_drops_per_day``), lengths exponential with mean
  ``capacity_drop_mean_h``. During a drop capacity is "unavailable" and dynamic prices rise by
  ``drop_price_jump``; ticks priced more than ``low_capacity_premium`` above their recent level
  report "low" capacity.
Dynamic offers are spot quotes and marketplace providers' quotes (``dynamic_providers``); the
others are list prices that only move in steps (and still lose capacity now and then).

Everything is vectorised over (offers x time) with numpy/scipy, in chunks of offers so memory stays
bounded; results are a deterministic function of (offers, config). Ticks come out as numpy
batches (`TickBatch`), as row tuples in `ingestion.rows.QUOTE_COLUMNS` order (for COPY), or as
PriceQuotes (slow; for small demos).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.signal import lfilter

from ingestion.rows import QUOTE_COLUMNS, RowValue
from ingestion.schemas import Capacity, PriceQuote

CAPACITY_CODES: tuple[Capacity, ...] = ("available", "low", "unavailable")
"""Index = the int8 capacity code in a TickBatch."""


class MarketConfig(BaseModel):
    """Knobs of the simulated market; defaults give a plausible GPU cloud market."""

    model_config = ConfigDict(frozen=True)

    seed: int = 0
    start: datetime = datetime(2026, 7, 1, tzinfo=UTC)
    end: datetime = datetime(2026, 7, 8, tzinfo=UTC)
    step: timedelta = Field(default=timedelta(minutes=5), description="Time between ticks of one offer.")
    diurnal_amplitude: float = Field(default=0.06, ge=0, le=1)
    weekly_amplitude: float = Field(default=0.04, ge=0, le=1)
    spot_volatility: float = Field(default=0.08, ge=0, le=2, description="Stationary sd of log price.")
    reversion_half_life_h: float = Field(default=6.0, gt=0)
    capacity_drops_per_day: float = Field(default=0.3, ge=0)
    capacity_drop_mean_h: float = Field(default=2.0, gt=0)
    drop_price_jump: float = Field(default=0.25, ge=0, description="Log-price rise of dynamic offers in a drop.")
    low_capacity_premium: float = Field(default=0.08, ge=0)
    list_changes_per_year: float = Field(default=2.0, ge=0)
    list_step_mean: float = -0.03
    list_step_sd: float = Field(default=0.06, ge=0)
    dynamic_providers: frozenset[str] = frozenset({"vast", "runpod", "tensordock"})
    offers_per_chunk: int = Field(default=512, ge=1, description="Offers simulated together (memory bound).")

    @model_validator(mode="after")
    def _check_range(self) -> MarketConfig:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.step.total_seconds() < 1:
            raise ValueError("step must be at least one second")
        return self

    @property
    def steps(self) -> int:
        return math.ceil((self.end - self.start) / self.step)


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Ticks of a chunk of offers, offer-major: row i is offer ``offer_index[i]`` at ``observed_at[i]``."""

    offer_index: NDArray[np.int32]
    observed_at: NDArray[np.datetime64]  # datetime64[s], UTC
    price_per_hour: NDArray[np.float64]
    capacity: NDArray[np.int8]  # index into CAPACITY_CODES

    def __len__(self) -> int:
        return int(self.offer_index.shape[0])


class MarketSimulator:
    """Simulate ticks for ``offers`` (their price, GPU, region... are the base of each series)."""

    def __init__(self, offers: Sequence[PriceQuote], *, config: MarketConfig) -> None:
        if not offers:
            raise ValueError("the simulator needs at least one base offer")
        self.offers = list(offers)
        self.config = config

    @property
    def tick_count(self) -> int:
        return len(self.offers) * self.config.steps

    def batches(self) -> Iterator[TickBatch]:
        """All ticks, one batch per chunk of offers (about offers_per_chunk x steps ticks each)."""
        size = self.config.offers_per_chunk
        for first in range(0, len(self.offers), size):
            yield self._simulate(first, self.offers[first : first + size])

    def rows(self) -> Iterator[tuple[RowValue, ...]]:
        """Every tick as a tuple in `QUOTE_COLUMNS` order, ready for COPY / csv.writer."""
        price_at = QUOTE_COLUMNS.index("price_per_hour")
        cap_at = QUOTE_COLUMNS.index("capacity")
        avail_at = QUOTE_COLUMNS.index("available_instances")
        time_at = QUOTE_COLUMNS.index("observed_at")
        templates = [[getattr(offer, c) for c in QUOTE_COLUMNS] for offer in self.offers]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        for batch in self.batches():
            seconds = batch.observed_at.astype(np.int64).tolist()
            for idx, secs, price, cap in zip(
                batch.offer_index.tolist(), seconds, batch.price_per_hour.tolist(), batch.capacity.tolist(),
                strict=True,
            ):
                row = templates[idx].copy()
                row[price_at] = price
                row[cap_at] = CAPACITY_CODES[cap]
                if cap == 2:
                    row[avail_at] = 0
                row[time_at] = epoch + timedelta(seconds=secs)
                yield tuple(row)

    def quotes(self) -> Iterator[PriceQuote]:
        """Every tick as a validated PriceQuote; convenient, but ~100x slower than `rows`."""
        for row in self.rows():
            yield PriceQuote.model_validate(dict(zip(QUOTE_COLUMNS, row, strict=True)))

    def _simulate(self, first: int, offers: list[PriceQuote]) -> TickBatch:
        cfg = self.config
        n, steps = len(offers), cfg.steps
        rng = np.random.default_rng([cfg.seed, first, n])
        step_s = cfg.step.total_seconds()
        t_s = np.arange(steps, dtype=np.float64) * step_s
        start_s = cfg.start.timestamp()

        base = np.log(np.array([max(o.price_per_hour, 1e-6) for o in offers]))
        dynamic = np.array([o.spot or o.provider in cfg.dynamic_providers for o in offers])
        log_p = base[:, None] + self._list_steps(rng, n, steps, step_s)

        hours = (start_s + t_s) / 3600.0
        phase = rng.uniform(0, 24, size=n)[:, None]  # the offer's local time offset
        local_h = hours[None, :] + phase
        diurnal = cfg.diurnal_amplitude * np.sin(2 * np.pi * (local_h - 9.0) / 24.0)  # peak ~15:00
        day = np.floor(local_h / 24.0 + 3.0) % 7  # 1970-01-01 was a Thursday: 0 = Monday
        weekly = np.where(day >= 5, -cfg.weekly_amplitude, cfg.weekly_amplitude * 2 / 5)
        noise = self._ar1(rng, n, steps, step_s)
        dropped = self._capacity_drops(rng, n, steps, step_s)
        moves = diurnal + weekly + noise + cfg.drop_price_jump * dropped
        log_p += np.where(dynamic[:, None], moves, 0.0)

        alpha = 0.05  # exponential moving average of the log price: the "recent level"
        smooth, _ = lfilter([alpha], [1.0, alpha - 1.0], log_p, axis=1, zi=(1 - alpha) * log_p[:, :1])
        capacity = np.zeros((n, steps), dtype=np.int8)
        capacity[dynamic[:, None] & (log_p - smooth > cfg.low_capacity_premium)] = 1
        capacity[dropped] = 2

        times = (np.datetime64(int(start_s), "s") + (t_s.astype(np.int64)).astype("timedelta64[s]"))
        return TickBatch(
            offer_index=np.repeat(np.arange(first, first + n, dtype=np.int32), steps),
            observed_at=np.tile(times, n),
            price_per_hour=np.round(np.exp(log_p), 6).ravel(),
            capacity=capacity.ravel(),
        )

    def _list_steps(self, rng: np.random.Generator, n: int, steps: int, step_s: float) -> NDArray[np.float64]:
        cfg = self.config
        rate = cfg.list_changes_per_year * step_s / (365.0 * 86400.0)
        counts = rng.poisson(rate * steps, size=n)
        total = int(counts.sum())
        jumps = np.zeros((n, steps))
        if total:
            rows = np.repeat(np.arange(n), counts)
            cols = rng.integers(0, steps, size=total)
            np.add.at(jumps, (rows, cols), rng.normal(cfg.list_step_mean, cfg.list_step_sd, size=total))
        return np.cumsum(jumps, axis=1)

    def _ar1(self, rng: np.random.Generator, n: int, steps: int, step_s: float) -> NDArray[np.float64]:
        cfg = self.config
        phi = 0.5 ** (step_s / 3600.0 / cfg.reversion_half_life_h)
        innovation_sd = cfg.spot_volatility * math.sqrt(max(1 - phi * phi, 1e-12))
        shocks = rng.normal(0.0, innovation_sd, size=(n, steps))
        shocks[:, 0] = rng.normal(0.0, cfg.spot_volatility, size=n)  # start in the stationary law
        return np.asarray(lfilter([1.0], [1.0, -phi], shocks, axis=1))

    def _capacity_drops(self, rng: np.random.Generator, n: int, steps: int, step_s: float) -> NDArray[np.bool_]:
        cfg = self.config
        rate = cfg.capacity_drops_per_day * step_s / 86400.0
        counts = rng.poisson(rate * steps, size=n)
        total = int(counts.sum())
        edges = np.zeros((n, steps + 1), dtype=np.int32)
        if total:
            rows = np.repeat(np.arange(n), counts)
            begin = rng.integers(0, steps, size=total)
            length = np.maximum(1, np.round(rng.exponential(cfg.capacity_drop_mean_h * 3600.0 / step_s, total)))
            end = np.minimum(begin + length.astype(np.int64), steps)
            np.add.at(edges, (rows, begin), 1)
            np.add.at(edges, (rows, end), -1)
        return np.cumsum(edges[:, :steps], axis=1) > 0
