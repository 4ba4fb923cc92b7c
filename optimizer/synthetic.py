"""Seeded synthetic problems with the structure of the real GPU market, for tests and benchmarks.

What it models (each choice mirrors something visible in the real catalogs in shared/data):

* GPU models with their VRAM and a list price per GPU-hour (roughly the 2025-26 on-demand levels
  seen in the GCP, Lambda and Vast catalogs), so prices are driven by the model first.
* Three kinds of seller. Hyperscalers (aws, gcp, azure): many regions, instances of 1/2/4/8 GPUs
  priced at a premium, spot at 30-45% of on-demand with interruption rates of 0.5-5%/h, capacity
  of a few to tens of instances. GPU clouds (lambda, runpod, nebius, coreweave, crusoe): near list
  price, few regions, on-demand. Marketplaces (vast, tensordock): most of the offers, one host each
  (capacity 1-2), prices scattered around 60-90% of list, interruptible, with a reliability score.
* Workloads: training (multi-node, 8 or 4 GPUs per node, >= 40-80 GB VRAM, some spot-tolerant with a
  checkpoint interval), inference (1 GPU per node, on-demand floor applies), batch (spot-tolerant).
  A fifth of them are restricted to EU regions (data residency), some deny a provider.
* Fleet limits: a provider share cap, a spot share cap, an inference on-demand floor and a budget
  set a little above what a per-workload greedy purchase would cost.
* Optional diurnal per-period prices (spot and marketplace swing, on-demand flat) and joint price
  scenarios (a common market factor times an offer-specific noise, wider for spot).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same arguments give the same problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.schemas import Offer, Problem, Workload

# model, VRAM GB, list USD per GPU-hour
GPUS: tuple[tuple[str, float, float], ...] = (
    ("H200", 141.0, 4.3),
    ("H100 SXM", 80.0, 3.0),
    ("A100-80GB", 80.0, 1.8),
    ("A100-40GB", 40.0, 1.3),
    ("L40S", 48.0, 1.1),
    ("A10G", 24.0, 0.75),
    ("L4", 24.0, 0.6),
    ("T4", 16.0, 0.35),
    ("V100", 16.0, 0.9),
    ("RTX4090", 24.0, 0.45),
    ("RTX5090", 32.0, 0.7),
    ("MI300X", 192.0, 2.6),
)
HYPERSCALERS = ("aws", "gcp", "azure")
CLOUDS = ("lambda", "runpod", "nebius", "coreweave", "crusoe")
MARKETS = ("vast", "tensordock")
US = ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-central-1")
EU = ("eu-west-1", "eu-west-2", "eu-central-1", "eu-north-1")
ASIA = ("asia-east-1", "asia-southeast-1", "asia-northeast-1")
REGIONS = US + EU + ASIA


def _offers(rng: np.random.Generator, n: int, periods: int, scenarios: int) -> list[Offer]:
    kind = rng.choice(3, size=n, p=[0.2, 0.2, 0.6])
    market_factor = rng.lognormal(0.0, 0.12, size=scenarios) if scenarios else None
    out: list[Offer] = []
    for i in range(n):
        k = int(kind[i])
        model, vram, list_price = GPUS[int(rng.integers(len(GPUS)))]
        big = vram >= 80
        shapes = (8,) if big and k == 0 else ((1, 2, 4, 8) if not big else (1, 2, 4, 8, 8, 8))
        gpus = int(rng.choice(shapes))
        if k == 0:
            provider = HYPERSCALERS[int(rng.integers(3))]
            spot = bool(rng.random() < 0.45)
            factor = rng.uniform(1.2, 1.6) * (rng.uniform(0.3, 0.45) if spot else 1.0)
            cap = int(rng.integers(5, 41)) if spot else int(rng.integers(2, 21))
            rate = float(rng.uniform(0.005, 0.05)) if spot else None
            reliability = None
        elif k == 1:
            provider = CLOUDS[int(rng.integers(len(CLOUDS)))]
            spot = provider == "runpod" and bool(rng.random() < 0.3)
            factor = rng.uniform(0.8, 1.1) * (0.6 if spot else 1.0)
            cap = int(rng.integers(1, 17))
            rate = float(rng.uniform(0.02, 0.08)) if spot else None
            reliability = None
        else:
            provider = MARKETS[int(rng.integers(2))]
            spot = bool(rng.random() < 0.5)
            factor = rng.uniform(0.6, 0.9) * rng.lognormal(0.0, 0.15) * (0.8 if spot else 1.0)
            cap = int(rng.integers(1, 3))
            rate = float(rng.uniform(0.01, 0.1)) if spot else None
            reliability = float(rng.uniform(0.85, 0.999))
        region = REGIONS[int(rng.integers(len(REGIONS if k != 1 else US + EU)))]
        price = round(float(list_price * gpus * factor), 4)
        per_period = None
        if periods:
            swing = 0.0 if (k == 0 and not spot) else rng.uniform(0.05, 0.3)
            phase = rng.uniform(0, 2 * np.pi)
            t = np.arange(periods)
            curve = 1 + swing * np.sin(2 * np.pi * t / 24 + phase) + (rng.normal(0, 0.03, periods) if swing else 0)
            per_period = [round(float(v), 4) for v in price * np.maximum(curve, 0.3)]
        scen = None
        if market_factor is not None:
            sigma = 0.25 if spot or k == 2 else 0.04
            scen = [round(float(v), 4) for v in price * market_factor ** (3 if spot else 1) *
                    rng.lognormal(0.0, sigma, size=scenarios)]
        out.append(
            Offer(
                id=f"o{i}",
                provider=provider,
                region=region,
                instance_type=f"{model.lower().replace(' ', '-')}-x{gpus}",
                gpu_model=model,
                gpus_per_instance=gpus,
                vram_gb_per_gpu=vram,
                spot=spot,
                price_per_hour=price,
                price_per_period=per_period,
                price_scenarios=scen,
                available_instances=cap,
                interruption_rate_per_hour=rate,
                reliability=reliability,
            )
        )
    return out


def _workloads(rng: np.random.Generator, n: int, co_located: bool = False) -> list[Workload]:
    """``co_located``: training jobs keep their nodes in one region (not elastic), inference and batch
    are elastic; without it every workload is elastic, as the instances benchmarked before the
    co-location rule existed (same draws either way)."""
    out = []
    for i in range(n):
        r = rng.random()
        eu = rng.random() < 0.2
        deny = [str(rng.choice(HYPERSCALERS + CLOUDS))] if rng.random() < 0.1 else []
        if r < 0.4:
            node = int(rng.choice([4, 8], p=[0.3, 0.7]))
            lo = node * int(rng.choice([1, 2, 4, 8], p=[0.4, 0.3, 0.2, 0.1]))
            w = Workload(id=f"w{i}", workload_type="training", gpus_min=lo,
                         gpus_max=lo if rng.random() < 0.5 else lo + node * int(rng.integers(1, 3)),
                         gpus_per_node=node, min_vram_gb=float(rng.choice([40.0, 80.0])),
                         spot_tolerant=bool(rng.random() < 0.5),
                         checkpoint_interval_hours=float(rng.choice([0.25, 0.5, 1.0, 2.0])),
                         allowed_regions=list(EU) if eu else None, denied_providers=deny,
                         priority=int(rng.integers(1, 4)))
        elif r < 0.75:
            lo = int(rng.integers(1, 9))
            w = Workload(id=f"w{i}", workload_type="inference", gpus_min=lo, gpus_max=lo + int(rng.integers(0, 3)),
                         min_vram_gb=float(rng.choice([16.0, 24.0, 48.0])), spot_tolerant=bool(rng.random() < 0.6),
                         checkpoint_interval_hours=0.1, allowed_regions=list(EU) if eu else None,
                         denied_providers=deny, priority=int(rng.integers(1, 4)))
        else:
            lo = int(rng.integers(1, 17))
            w = Workload(id=f"w{i}", workload_type="batch", gpus_min=lo, gpus_max=None,
                         gpus_per_node=int(rng.choice([1, 2])), min_vram_gb=float(rng.choice([16.0, 24.0])),
                         spot_tolerant=True, checkpoint_interval_hours=float(rng.choice([0.5, 1.0])),
                         allowed_regions=list(EU) if eu else None, denied_providers=deny)
        elastic = not co_located or w.workload_type != "training"
        out.append(w.model_copy(update={"elastic": elastic}))
    return out


def generate(
    n_workloads: int,
    n_offers: int,
    *,
    seed: int = 0,
    periods: int = 0,
    scenarios: int = 0,
    budget_factor: float | None = 1.1,
    max_provider_share: float | None = 0.35,
    max_spot_share: float | None = 0.6,
    inference_on_demand_floor: float = 0.5,
    co_located: bool = False,
) -> Problem:
    """A seeded synthetic problem (``co_located``: see ``_workloads``). The budget (when ``budget_factor`` is set) is that factor times a
    per-workload greedy purchase, which ignores the fleet limits: at benchmark sizes there is ample
    room, but a small instance can come out infeasible (e.g. ``generate(12, 200, seed=3)``: the
    spot cap and inference floors need $49.95/h against a $44.97/h budget), and the solver says so."""
    rng = np.random.default_rng(seed)
    offers = _offers(rng, n_offers, periods, scenarios)
    workloads = _workloads(rng, n_workloads, co_located)
    _ensure_capacity(offers, workloads)
    return _problem(offers, workloads, budget_factor, max_provider_share=max_provider_share,
                    max_spot_share=max_spot_share, inference_on_demand_floor=inference_on_demand_floor,
                    horizon_hours=float(periods) if periods else 1.0, period_hours=1.0)


def generate_on_offers(
    offers: list[Offer],
    n_workloads: int,
    *,
    seed: int = 0,
    default_available_instances: int = 4,
    budget_factor: float | None = 1.1,
    max_provider_share: float | None = 0.5,
    max_spot_share: float | None = 0.6,
    inference_on_demand_floor: float = 0.5,
    co_located: bool = False,
) -> Problem:
    """The generator's workloads and fleet limits over a given (real) offer list, e.g.
    ``cloudarb.optimize.offers.shared_catalog_offers``: data-residency workloads are restricted to the
    offers' European regions (names starting with ``eu``/``europe``); catalogs without capacity get
    ``default_available_instances`` per offer. The provider cap defaults to 50%: the shared catalogs
    hold three sellers, and 35% of the fleet each would force near-equal thirds."""
    rng = np.random.default_rng(seed)
    workloads = _workloads(rng, n_workloads, co_located)
    europe = sorted({o.region for o in offers if o.region.lower().startswith(("eu", "europe"))})
    # No European offer at all: the restriction is dropped rather than made unsatisfiable.
    workloads = [w.model_copy(update={"allowed_regions": europe or None}) if w.allowed_regions else w
                 for w in workloads]
    return _problem(offers, workloads, budget_factor, max_provider_share=max_provider_share,
                    max_spot_share=max_spot_share, inference_on_demand_floor=inference_on_demand_floor,
                    default_available_instances=default_available_instances)


def _problem(offers: list[Offer], workloads: list[Workload], budget_factor: float | None, **limits: Any) -> Problem:
    """The problem with its fleet ``limits``; the hourly budget is ``budget_factor`` x the greedy
    per-workload purchase (None: no budget)."""
    problem = Problem(offers=offers, workloads=workloads, **limits)
    if budget_factor is None:
        return problem
    from optimizer.baselines import greedy_cheapest
    from optimizer.tables import CompatLookup, offer_table, workload_table

    of = offer_table(problem)
    plan = greedy_cheapest(CompatLookup.build(problem, of, workload_table(problem, of)))
    if not plan.ok:
        return problem
    greedy = float(sum(n * of.price[o] for _, o, n in plan.lines))
    return problem.model_copy(update={"budget_per_hour": round(budget_factor * greedy, 2)})


def _ensure_capacity(offers: list[Offer], workloads: list[Workload]) -> None:
    """Scale capacities so each GPU-memory class holds at least three times the demand that needs it."""
    need = sum(w.gpus_min for w in workloads)
    have = sum((o.available_instances or 0) * o.gpus_per_instance for o in offers)
    if have >= 3 * need or have == 0:
        return
    scale = 3 * need / have
    for i, o in enumerate(offers):
        offers[i] = o.model_copy(update={"available_instances": int(np.ceil((o.available_instances or 0) * scale))})
