"""Per-provider refresh intervals, jitter and backoff, and the scheduler pass that enqueues refreshes.

Default intervals keep prices younger than 60 s where the provider's API allows it:

- lambda, runpod, vast, tensordock: 30 s. One small request each (Lambda instance-types, RunPod's
  GraphQL gpuTypes, Vast's bundle search, TensorDock's host-node list); a 30 s interval plus 10 %
  jitter plus the fetch keeps every price under 60 s old, far inside their rate limits.
- local: 30 s (no network; the registered workstations).
- azure, gcp: 600 s. Catalog APIs that page through hundreds of SKUs per refresh (Azure Retail
  Prices, Cloud Billing Catalog, which has a per-project request quota); the published list prices
  change at most daily, so polling faster would burn quota without fresher information.
- aws: 3600 s. The Price List offer files are tens to hundreds of MB per region and change a few
  times a month; spot prices come from DescribeSpotPriceHistory, which AWS itself updates about
  every 5 minutes. These three cannot honestly be "younger than 60 s".

A failed refresh waits ``interval x 2^failures`` (capped by ``ingest_backoff_max_s``), or longer if
the provider asked (Retry-After). Every wait gets up to ``ingest_jitter_pct`` percent extra, so many
providers (and many schedulers) do not fire in lockstep.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cloudarb.config import Settings
from cloudarb.db.types import utcnow
from cloudarb.ingest import status as status_store
from ingestion.providers import PROVIDERS

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: dict[str, float] = {
    "lambda": 30.0,
    "runpod": 30.0,
    "vast": 30.0,
    "tensordock": 30.0,
    "local": 30.0,
    "azure": 600.0,
    "gcp": 600.0,
    "aws": 3600.0,
}
FALLBACK_INTERVAL_S = 300.0


def interval_s(settings: Settings, provider: str) -> float:
    return float(settings.ingest_interval_s.get(provider, DEFAULT_INTERVAL_S.get(provider, FALLBACK_INTERVAL_S)))


def max_age_s(settings: Settings, provider: str) -> float:
    """Age past which an offer of ``provider`` counts as stale (default: three intervals)."""
    return float(settings.offer_max_age_s.get(provider, 3 * interval_s(settings, provider)))


def freshness_limits(settings: Settings) -> dict[str, timedelta]:
    """Per-provider max ages for ``OfferFilter.max_age_by_provider`` (every registered provider)."""
    return {key: timedelta(seconds=max_age_s(settings, key)) for key in PROVIDERS}


def next_delay_s(
    settings: Settings,
    provider: str,
    *,
    failures: int,
    retry_after_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next refresh after a success (failures=0) or the n-th failure in a row."""
    base = interval_s(settings, provider)
    if failures > 0:
        base = min(base * 2.0**failures, settings.ingest_backoff_max_s)
        if retry_after_s is not None:
            base = max(base, retry_after_s)
    return base * (1.0 + rand() * settings.ingest_jitter_pct / 100.0)


def scheduled_providers(settings: Settings) -> list[str]:
    """The configured providers that exist in the registry (unknown keys are logged and ignored)."""
    keys = []
    for key in settings.ingest_providers:
        if key in PROVIDERS:
            keys.append(key)
        else:
            log.warning("ignoring unknown provider in CLOUDARB_INGEST_PROVIDERS: %s (valid: %s)",
                        key, ", ".join(sorted(PROVIDERS)))
    return keys


def tick(ctx: Context, *, now: datetime | None = None) -> list[str]:
    """Enqueue a refresh for every scheduled provider that is due; returns the providers started.

    Each due slot is claimed with a conditional update that pushes ``next_run_at`` a job timeout
    ahead (a lease), so several schedulers start one refresh per slot, and a refresh whose worker
    died is retried once the lease runs out.
    """
    from cloudarb.ingest.jobs import submit_refresh

    now = now or utcnow()
    keys = scheduled_providers(ctx.settings)
    with ctx.db.session() as session:
        status_store.sync_enabled(session, scheduled=keys, known=sorted(PROVIDERS))
        due = status_store.due(session, now=now)
    started = []
    lease = timedelta(seconds=ctx.settings.job_timeout_s)
    for key in due:
        with ctx.db.session() as session:
            if not status_store.claim(session, provider=key, now=now, lease_until=now + lease):
                continue
        try:
            submit_refresh(ctx, provider=key, actor="scheduler")
            started.append(key)
        except Exception:
            log.exception("could not enqueue a refresh", extra={"provider": key})
    return started

