"""Turn a stored request and the current offers (and what forecasts say about them) into an
``optimizer.Problem``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from cloudarb.config import Settings
from cloudarb.db.models import Offer as OfferRow
from cloudarb.forecasts.feed import Feed
from cloudarb.ingest.schedule import freshness_limits
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage.offers import OfferFilter
from optimizer.schemas import CurrentLine, Offer, Problem, Workload


def offer_filter(req: OptimizeRequest, settings: Settings) -> OfferFilter:
    scope = req.offers
    return OfferFilter(
        providers=scope.providers,
        regions=scope.regions,
        spot=None if scope.include_spot else False,
        max_age=timedelta(seconds=scope.max_age_s) if scope.max_age_s else None,
        max_age_by_provider=freshness_limits(settings) if scope.fresh_only else {},
    )


def to_offer(row: OfferRow, feed: Feed | None = None) -> Offer:
    """One optimizer offer; with a feed, its forecast price scenarios/periods and its interruption rate
    (a rate the provider stated wins over the model's)."""
    feed = feed or Feed()
    rate = row.interruption_rate_per_hour
    return Offer(
        id=row.offer_key,
        provider=row.provider,
        region=row.region,
        zone=row.zone or None,
        instance_type=row.instance_type,
        gpu_model=row.gpu_model,
        gpus_per_instance=row.gpu_count,
        vram_gb_per_gpu=row.vram_gb,
        vcpus=row.vcpus,
        ram_gb=row.ram_gb,
        spot=row.spot,
        price_per_hour=row.price_per_hour,
        available_instances=row.available_instances,
        interruption_rate_per_hour=rate if rate is not None else feed.rates.get(row.offer_key),
        reliability=row.reliability,
        price_scenarios=feed.scenarios.get(row.offer_key),
        price_per_period=feed.periods.get(row.offer_key),
    )


def with_performance(workloads: Sequence[Workload], feed: Feed | None) -> list[Workload]:
    """Workloads that give no performance table get the feed's fitted one for their type."""
    if feed is None or not feed.performance:
        return list(workloads)
    return [
        w.model_copy(update={"performance": feed.performance[w.workload_type]})
        if w.performance is None and feed.performance.get(w.workload_type) else w
        for w in workloads
    ]


def build_problem(
    req: OptimizeRequest, rows: Sequence[OfferRow], *, current: Sequence[CurrentLine] = (), feed: Feed | None = None
) -> Problem:
    c = req.constraints
    return Problem(
        offers=[to_offer(r, feed) for r in rows],
        workloads=with_performance(req.workloads, feed),
        budget_per_hour=c.budget_per_hour,
        max_provider_share=c.max_provider_share,
        max_region_share=c.max_region_share,
        max_spot_share=c.max_spot_share,
        inference_on_demand_floor=c.inference_on_demand_floor,
        horizon_hours=req.horizon_hours,
        risk_tolerance=req.risk_tolerance,
        objective=req.objective,
        weights=req.weights,
        current_allocation=list(current),
    )
