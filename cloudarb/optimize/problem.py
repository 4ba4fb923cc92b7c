"""Turn a stored request and the current offers (and what forecasts say about them) into an
``optimizer.Problem``.

Sellers inside a marketplace are providers of their own to the solver: an offer of provider
``shadeform`` sold by ``lambdalabs`` is provider ``shadeform:lambdalabs`` in the problem, so shares,
placement and a workload's allowed/denied providers can name either the marketplace (every seller in
it) or one seller (``provider:seller``). Allocation lines are split back when stored.

The sizes a team host offers of one GPU label share its free GPUs as one capacity pool
(``cloudarb.optimize.offers.capacity_pools``), so a 4-GPU host is never rented as more than 4 GPUs across
its sizes. The feed's launch success share (traces and our fleet's refused launches) becomes each
spot offer's ``launch_success_probability``: the optimizer prices the refused launches into the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from cloudarb.config import Settings
from cloudarb.forecasts.feed import Feed
from cloudarb.ingest.schedule import freshness_limits
from cloudarb.optimize.offers import SELLER_SEP, capacity_pools
from cloudarb.optimize.offers import to_offer as quote_to_offer
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage.offers import OfferFields, OfferFilter
from ingestion.gpu_specs import GPU_MODELS
from optimizer.schemas import CapacityKind, CurrentLine, GpuFigures, Offer, Problem, Workload


def offer_filter(req: OptimizeRequest, settings: Settings) -> OfferFilter:
    scope = req.offers
    return OfferFilter(
        providers=scope.providers,
        regions=scope.regions,
        spot=None if scope.include_spot else False,
        max_age=timedelta(seconds=scope.max_age_s) if scope.max_age_s else None,
        max_age_by_provider=freshness_limits(settings) if scope.fresh_only else {},
    )


def to_offer(
    row: OfferFields, feed: Feed | None = None, *, capacity_kinds: dict[str, CapacityKind] | None = None,
    capacity_pool: str | None = None,
) -> Offer:
    """One optimizer offer (the one conversion, ``cloudarb.optimize.offers.to_offer``); with a feed, its
    forecast price scenarios/periods, its interruption rate (a rate the provider stated wins over the
    model's) and its launch success share."""
    feed = feed or Feed()
    rate = row.interruption_rate_per_hour
    return quote_to_offer(
        row,
        capacity_kinds=capacity_kinds,
        interruption_rate=rate if rate is not None else feed.rates.get(row.offer_key),
        price_scenarios=feed.scenarios.get(row.offer_key),
        price_per_period=feed.periods.get(row.offer_key),
        launch_success=feed.launch_success.get(row.offer_key),
        capacity_pool=capacity_pool,
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


def _expand(names: Iterable[str], present: Iterable[str]) -> list[str]:
    """Provider names -> solver provider ids: a marketplace's name also means each of its sellers."""
    ids = sorted(set(present))
    out: list[str] = []
    for name in names:
        key = name.lower()
        out.append(key)
        if SELLER_SEP not in key:
            out.extend(i for i in ids if i.startswith(key + SELLER_SEP))
    return list(dict.fromkeys(out))


def with_sellers(workloads: Sequence[Workload], provider_ids: Iterable[str]) -> list[Workload]:
    """Workloads whose allowed/denied providers name marketplaces expanded to their sellers."""
    ids = set(provider_ids)
    if not any(SELLER_SEP in i for i in ids):
        return list(workloads)
    result = []
    for w in workloads:
        update: dict[str, object] = {"denied_providers": _expand(w.denied_providers, ids)}
        if w.allowed_providers is not None:
            update["allowed_providers"] = _expand(w.allowed_providers, ids)
        result.append(w.model_copy(update=update))
    return result


def gpu_figures(models: Iterable[str]) -> dict[str, GpuFigures]:
    """Data-sheet figures from the GPU identity table, for the models the offers hold."""
    figures: dict[str, GpuFigures] = {}
    for name in set(models):
        spec = GPU_MODELS.get(name)
        if spec is not None and spec.fp16_tflops and spec.memory_bandwidth_gbs:
            figures[name] = GpuFigures(fp16_tflops=spec.fp16_tflops, memory_bandwidth_gbps=spec.memory_bandwidth_gbs)
    return figures


def build_problem(
    req: OptimizeRequest,
    rows: Sequence[OfferFields],
    *,
    current: Sequence[CurrentLine] = (),
    feed: Feed | None = None,
    settings: Settings | None = None,
) -> Problem:
    c = req.constraints
    kinds = dict(settings.offer_capacity_kinds) if settings is not None else None
    pool_of, pools = capacity_pools(rows)
    offers = [to_offer(r, feed, capacity_kinds=kinds, capacity_pool=pool_of.get(r.offer_key)) for r in rows]
    default_instances = settings.offer_default_available_instances if settings is not None else 16
    return Problem(
        offers=offers,
        workloads=with_sellers(with_performance(req.workloads, feed), (o.provider for o in offers)),
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
        default_available_instances=default_instances,
        pareto_points=req.pareto_points,
        gpu_figures=gpu_figures(o.gpu_model for o in offers),
        capacity_pools=pools,
        min_launch_success_probability=c.min_launch_success_probability,
    )
