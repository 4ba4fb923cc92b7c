"""Prometheus gauges per pricing provider, read from storage at scrape time (right whichever process
ran the refresh)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cloudarb.db.types import utcnow
from cloudarb.ingest import status as status_store

if TYPE_CHECKING:
    from cloudarb.context import Context


class ProviderCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        with self.ctx.db.session() as session:
            rows = status_store.all_rows(session)
            stats = status_store.offer_stats(session)
        success = GaugeMetricFamily(
            "cloudarb_provider_last_success_timestamp_seconds", "Unix time of the last successful refresh",
            labels=["provider"],
        )
        offers = GaugeMetricFamily("cloudarb_provider_offers", "Offers in the current-offers table",
                                   labels=["provider"])
        lag = GaugeMetricFamily("cloudarb_provider_lag_seconds", "Age of the provider's newest price",
                                labels=["provider"])
        failures = GaugeMetricFamily("cloudarb_provider_consecutive_failures", "Failed refreshes in a row",
                                     labels=["provider"])
        for key in sorted(set(rows) | set(stats)):
            row = rows.get(key)
            count, newest = stats.get(key, (0, None))
            if row is not None and row.last_success_at is not None:
                success.add_metric([key], row.last_success_at.timestamp())
            offers.add_metric([key], count)
            if newest is not None:
                lag.add_metric([key], max(0.0, (now - newest).total_seconds()))
            failures.add_metric([key], row.consecutive_failures if row is not None else 0)
        yield success
        yield offers
        yield lag
        yield failures
