"""Seeding helpers for the forecast tests (no tests here): offers with hourly price history, usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from cloudarb.context import Context
from cloudarb.db.models import Offer
from cloudarb.db.types import utcnow
from cloudarb.ingest.bulk import write_ticks

STABLE = "fcst0stable0000000000000000000001"[:32]
VOLATILE = "fcst0volatile00000000000000000002"[:32]


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def add_offer(ctx: Context, key: str, *, price: float, spot: bool, provider: str = "acme",
              instance_type: str = "gpu1.large", region: str = "r1", observed_at: datetime | None = None) -> None:
    with ctx.db.session() as session:
        session.add(Offer(
            offer_key=key, provider=provider, region=region, zone="", instance_type=instance_type,
            gpu_model="H100 SXM", gpu_model_raw="H100", gpu_model_known=True, gpu_count=1, vram_gb=80.0, vcpus=16,
            ram_gb=128, spot=spot, price_per_hour=price, price_per_gpu_hour=price, capacity="available",
            available_instances=100, observed_at=observed_at or utcnow(),
        ))


def seed_prices(ctx: Context, *, hours: int = 240, seed: int = 7) -> dict[str, float]:
    """Two offers of the same GPU: a stable on-demand one at 2.00 $/h and a cheaper spot one whose
    hourly price swings widely (mean about 1.8 $/h, spikes to 4 $/h). Returns the current prices."""
    rng = np.random.default_rng(seed)
    end = _hour(utcnow())
    stamps = [end - timedelta(hours=hours - 1 - i) for i in range(hours)]
    stable = [2.0] * hours
    volatile = np.clip(1.4 + rng.gamma(0.6, 0.8, size=hours) + 0.3 * np.sin(np.arange(hours) * 2 * np.pi / 24),
                       0.8, 4.5).round(4).tolist()
    volatile[-1] = 1.6
    add_offer(ctx, STABLE, price=stable[-1], spot=False, observed_at=stamps[-1] + timedelta(minutes=1))
    add_offer(ctx, VOLATILE, price=volatile[-1], spot=True, instance_type="gpu1.spot",
              observed_at=stamps[-1] + timedelta(minutes=1))
    ticks = [(STABLE, t + timedelta(minutes=1), p, 100) for t, p in zip(stamps, stable)]
    ticks += [(VOLATILE, t + timedelta(minutes=1), p, 100) for t, p in zip(stamps, volatile)]
    with ctx.db.session() as session:
        write_ticks(session, ticks)
    return {STABLE: stable[-1], VOLATILE: volatile[-1]}


def usage_points(workload: str, *, hours: int = 240, base: float = 8.0) -> list[dict[str, object]]:
    """Daily-cycle GPU usage of one workload: ``base`` GPUs at night, ``base + 8`` at midday."""
    end = _hour(utcnow()) - timedelta(hours=1)
    out = []
    for i in range(hours):
        t = end - timedelta(hours=hours - 1 - i)
        value = base + 8.0 * max(0.0, np.sin((t.hour - 6) * np.pi / 12))
        out.append({"workload_id": workload, "hour": t.isoformat(), "gpu_hours": round(float(value), 3)})
    return out


def step_usage_points(workload: str, *, days: int = 20, seed: int = 3) -> list[dict[str, object]]:
    """Usage whose level jumps once a day, inside the hour before midnight, with the scheduler's
    readings: the hour's GPU-hours mix the old and new level, the end-of-hour state is the new one
    (so at midnight the state is right about the whole next day and the hour's mean is not)."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(4, 40, days + 1).astype(float)
    frac = rng.uniform(0.1, 0.9, days + 1)
    end = _hour(utcnow()).replace(hour=0) - timedelta(hours=1)
    start = end - timedelta(hours=days * 24 - 1)
    out: list[dict[str, object]] = []
    for i in range(days * 24):
        d, h = divmod(i, 24)
        last = h == 23
        mean = frac[d] * levels[d] + (1 - frac[d]) * levels[d + 1] if last else levels[d]
        out.append({"workload_id": workload, "hour": (start + timedelta(hours=i)).isoformat(),
                    "gpu_hours": round(float(mean), 3), "gpus_at_end": float(levels[d + 1] if last else levels[d]),
                    "gpus_started": float(max(0.0, levels[d + 1] - levels[d]) if last else 0.0)})
    return out
