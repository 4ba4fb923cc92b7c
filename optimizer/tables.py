"""Column-oriented views of a Problem: numpy arrays for offers, workloads and their compatibility.

Everything downstream (presolve, the model, baselines, the validator's fast paths) works on these
arrays so that no step loops over offers x workloads in Python. Loops here run over workloads or
over unique names only, never over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optimizer.errors import InvalidProblemError
from optimizer.performance import canonical_model, relative_throughput
from optimizer.schemas import Offer, Problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Compatibility filters in the order the diagnosis reports them.
FILTERS: tuple[str, ...] = (
    "gpus_per_node",
    "vram",
    "gpu_model",
    "provider",
    "region",
    "spot",
    "reliability",
    "launch",
)


@dataclass(frozen=True)
class OfferTable:
    """One entry per offer of the problem, in problem order."""

    ids: list[str]
    provider: IntArray  # index into providers
    providers: list[str]
    place: IntArray  # index into places: (provider, region) pairs
    places: list[tuple[str, str]]
    model: IntArray  # index into models (canonical keys)
    models: list[str]
    gpus: IntArray
    vram: FloatArray
    spot: BoolArray
    price: FloatArray  # effective USD per instance-hour
    rate: FloatArray  # interruptions per hour
    cap: FloatArray  # instances available (inf = unlimited)
    egress: FloatArray
    reliability: FloatArray
    scenarios: FloatArray | None  # (S, O) USD per instance-hour
    periods: FloatArray | None  # (T, O) USD per instance-hour
    region_key: IntArray  # index into spots: placement at region scope (see placement_keys)
    zone_key: IntArray  # index into spots: placement at zone scope
    spots: list[str]  # placement names, e.g. 'aws/us-east-1 on-demand'
    launch_p: FloatArray  # launch success probability (1 where not stated)
    launch: FloatArray  # expected cost of refused launches, USD per instance-hour (see launch_costs)
    pool: IntArray  # index into pools, -1 for an offer in no capacity pool
    pools: list[str]  # capacity pool names
    pool_gpus: FloatArray  # GPUs of each pool

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class WorkloadTable:
    ids: list[str]
    lo: FloatArray  # gpus_min
    hi: FloatArray  # gpus_max, or gpus_min rounded up to the coarsest usable instance
    hi_given: BoolArray
    node: IntArray
    min_vram: FloatArray
    inference: BoolArray
    spot_ok: BoolArray
    lost_hours: FloatArray  # work lost per interruption = checkpoint interval / 2
    priority: FloatArray
    data_gb: FloatArray
    scope: IntArray  # placement scope: 0 free to spread, 1 one region, 2 one zone
    need_var: BoolArray  # the GPUs it needs are its usable GPUs (else gpus_min)

    @property
    def n(self) -> int:
        return len(self.ids)


def _index(values: list[str]) -> tuple[IntArray, list[str]]:
    uniq, inv = np.unique(np.asarray(values, dtype=object), return_inverse=True)
    return inv.astype(np.int64), [str(v) for v in uniq]


def offer_table(problem: Problem) -> OfferTable:
    offers = problem.offers
    n = len(offers)
    provider, providers = _index([o.provider for o in offers])
    place_keys = [f"{o.provider}\x1f{o.region}" for o in offers]
    place, place_names = _index(place_keys)
    places = [(k.split("\x1f")[0], k.split("\x1f")[1]) for k in place_names]
    model, models = _index([canonical_model(o.gpu_model) for o in offers])
    price = np.array([o.price_per_hour for o in offers], dtype=np.float64)
    if problem.use_committed_prices:
        committed = np.array(
            [o.committed_price_per_hour if o.committed_price_per_hour is not None else np.inf for o in offers]
        )
        price = np.minimum(price, committed)
    spot = np.array([o.spot for o in offers], dtype=bool)
    rate = np.array(
        [
            o.interruption_rate_per_hour
            if o.interruption_rate_per_hour is not None
            else (problem.default_spot_interruption_rate_per_hour if o.spot else 0.0)
            for o in offers
        ],
        dtype=np.float64,
    )
    cap = np.array([offer_capacity(problem, o) for o in offers], dtype=np.float64)
    gpus = np.array([o.gpus_per_instance for o in offers], dtype=np.int64)
    pool_names = sorted({o.capacity_pool for o in offers if o.capacity_pool is not None})
    pool_index = {name: i for i, name in enumerate(pool_names)}
    pool = np.array([-1 if o.capacity_pool is None else pool_index[o.capacity_pool] for o in offers], dtype=np.int64)
    pool_gpus = np.array([float(problem.capacity_pools[name]) for name in pool_names], dtype=np.float64)
    if len(pool_names):
        # An offer never rents more instances than its pool holds whole.
        pooled = pool >= 0
        cap[pooled] = np.minimum(cap[pooled], np.floor(pool_gpus[pool[pooled]] / gpus[pooled]))
    launch_p = np.array([1.0 if o.launch_success_probability is None else o.launch_success_probability
                         for o in offers], dtype=np.float64)
    region_names, zone_names = placement_keys(offers)
    spot_idx, spots_all = _index(region_names + zone_names)
    return OfferTable(
        ids=[o.id for o in offers],
        provider=provider,
        providers=providers,
        place=place,
        places=places,
        model=model,
        models=models,
        gpus=gpus,
        vram=np.array([o.vram_gb_per_gpu for o in offers], dtype=np.float64),
        spot=spot,
        price=price,
        rate=rate,
        cap=cap,
        egress=np.array([o.egress_usd_per_gb for o in offers], dtype=np.float64),
        reliability=np.array([1.0 if o.reliability is None else o.reliability for o in offers]),
        scenarios=_vectors(problem, "price_scenarios", price, n),
        periods=_vectors(problem, "price_per_period", price, n),
        region_key=spot_idx[:n],
        zone_key=spot_idx[n:],
        spots=spots_all,
        launch_p=launch_p,
        launch=launch_costs(problem, price, launch_p, rate),
        pool=pool,
        pools=pool_names,
        pool_gpus=pool_gpus,
    )


def launch_costs(problem: Problem, price: FloatArray, p: FloatArray, rate: FloatArray) -> FloatArray:
    """Expected cost of refused launches per instance-hour of each offer.

    A launch request succeeds with probability p, independently, so a line waits through (1 - p) / p
    refused requests on average before it runs, each costing ``launch_retry_hours`` of the line's price
    (the work waits, valued as interruptions value lost work). A line launches once per horizon and once
    more after every interruption, so per instance-hour: price x h x (1 - p) / p x (1 / H + rate).
    At a one-hour horizon without interruptions price + this is price / p. An offer with p = 0 never
    launches (the compatibility filter removes it); its term is 0 here to keep the arrays finite."""
    h = problem.launch_retry_hours
    out = np.zeros(len(price))
    ok = (p > 0) & (p < 1)
    if h <= 0 or not ok.any():
        return out
    out[ok] = price[ok] * h * (1.0 - p[ok]) / p[ok] * (1.0 / problem.horizon_hours + rate[ok])
    return out


def offer_capacity(problem: Problem, o: Offer) -> float:
    """Instances an offer can rent out: what it states, else one machine for a listing, else the
    problem's default for pools (inf only when that default is None)."""
    if o.available_instances is not None:
        return float(o.available_instances)
    if o.capacity_kind == "listing":
        return 1.0
    return np.inf if problem.default_available_instances is None else float(problem.default_available_instances)


def placement_keys(offers: list[Offer]) -> tuple[list[str], list[str]]:
    """(region-scope key, zone-scope key) of each offer: the set of offers whose instances can form one
    multi-node workload. A region-scope placement is one provider, seller, region and spot/on-demand kind;
    a zone-scope one also one zone. A listing (one machine) without a zone, and any offer without a zone at
    zone scope, is a placement of its own: nothing says its instances sit near another offer's."""
    region: list[str] = []
    zone: list[str] = []
    for o in offers:
        kind = "spot" if o.spot else "on-demand"
        where = f"{o.provider}/{o.seller}" if o.seller else o.provider
        own = f"{where}/{o.region} offer {o.id} {kind}"
        if o.capacity_kind == "listing" and not o.zone:
            region.append(own)
        else:
            region.append(f"{where}/{o.region} {kind}")
        zone.append(f"{where}/{o.region}/{o.zone} {kind}" if o.zone else own)
    return region, zone


def _vectors(problem: Problem, field: str, price: FloatArray, n: int) -> FloatArray | None:
    """Stack per-offer vectors into (K, O); offers without one repeat their price."""
    lists = [getattr(o, field) for o in problem.offers]
    lengths = {len(v) for v in lists if v}
    if not lengths:
        return None
    if len(lengths) > 1:
        raise InvalidProblemError(f"every offer's {field} must have the same length, got {sorted(lengths)}", field=field)
    k = lengths.pop()
    out = np.repeat(price[None, :], k, axis=0)
    rows = [i for i, v in enumerate(lists) if v]
    out[:, rows] = np.array([lists[i] for i in rows], dtype=np.float64).T
    return out


def workload_table(problem: Problem, offers: OfferTable) -> WorkloadTable:
    ws = problem.workloads
    node = np.array([w.gpus_per_node for w in ws], dtype=np.int64)
    lo = np.array([w.gpus_min for w in ws], dtype=np.float64)
    hi_given = np.array([w.gpus_max is not None for w in ws], dtype=bool)
    # Without gpus_max, allow the smallest overshoot any minimal cover can need: one instance less a GPU.
    largest = float(offers.gpus.max()) if offers.n else 1.0
    hi = np.array([float(w.gpus_max) if w.gpus_max is not None else np.nan for w in ws])
    hi = np.where(hi_given, hi, lo + largest - 1.0)
    return WorkloadTable(
        ids=[w.id for w in ws],
        lo=lo,
        hi=hi,
        hi_given=hi_given,
        node=node,
        min_vram=np.array([w.min_vram_gb for w in ws], dtype=np.float64),
        inference=np.array([w.workload_type == "inference" for w in ws], dtype=bool),
        spot_ok=np.array([w.spot_tolerant for w in ws], dtype=bool),
        lost_hours=np.array([w.checkpoint_interval_hours / 2.0 for w in ws], dtype=np.float64),
        priority=np.array([float(w.priority) for w in ws], dtype=np.float64),
        data_gb=np.array([w.data_size_gb for w in ws], dtype=np.float64),
        scope=np.array([0 if not w.placed else (2 if w.placement == "same_zone" else 1) for w in ws], dtype=np.int64),
        need_var=np.array([w.variable_need for w in ws], dtype=bool),
    )


def model_performance(problem: Problem, offers: OfferTable) -> FloatArray:
    """(W, M) relative throughput per GPU; 0 where a workload may not use a model."""
    out = np.zeros((len(problem.workloads), len(offers.models)), dtype=np.float64)
    for i, w in enumerate(problem.workloads):
        if w.performance is not None:
            given = {canonical_model(k): v for k, v in w.performance.items()}
            out[i] = [given.get(m, 0.0) for m in offers.models]
        else:
            out[i] = [relative_throughput(m, w.workload_type, problem.gpu_figures) for m in offers.models]
        if w.allowed_gpu_models is not None:
            allowed = {canonical_model(m) for m in w.allowed_gpu_models}
            out[i] *= np.isin(np.asarray(offers.models, dtype=object), list(allowed))
    return out


def _name_mask(problem: Problem, offers: OfferTable, kind: str) -> BoolArray:
    """(W, K) allowed-and-not-denied mask over providers (kind='provider') or places ('region')."""
    if kind == "provider":
        names = [np.asarray(offers.providers, dtype=object)]
    else:
        provs = np.asarray([p for p, _ in offers.places], dtype=object)
        regs = np.asarray([r for _, r in offers.places], dtype=object)
        names = [regs, np.asarray([f"{p}/{r}" for p, r in offers.places], dtype=object), provs]
    size = len(names[0])
    out = np.ones((len(problem.workloads), size), dtype=bool)
    for i, w in enumerate(problem.workloads):
        allowed = w.allowed_providers if kind == "provider" else w.allowed_regions
        denied = w.denied_providers if kind == "provider" else w.denied_regions
        if allowed is not None:
            out[i] = np.isin(names[0], allowed) | (kind == "region" and np.isin(names[1], allowed))
        if denied:
            out[i] &= ~(np.isin(names[0], denied) | (kind == "region" and np.isin(names[1], denied)))
    return out


@dataclass(frozen=True)
class Compatibility:
    """Per-filter masks, each (rows, cols); ``ok`` is their conjunction with a usable GPU model."""

    masks: dict[str, BoolArray]
    perf: FloatArray  # relative throughput per GPU, (rows, cols)

    @property
    def ok(self) -> BoolArray:
        out = self.perf > 0
        for m in self.masks.values():
            out = out & m
        return out


@dataclass(frozen=True)
class CompatLookup:
    """Small per-workload lookup tables (over models, providers, places) from which any block of the
    (workload, offer) compatibility matrix is computed by fancy indexing."""

    problem: Problem
    offers: OfferTable
    workloads: WorkloadTable
    perf_by_model: FloatArray  # (W, M)
    provider_ok: BoolArray  # (W, K)
    place_ok: BoolArray  # (W, P)

    @classmethod
    def build(cls, problem: Problem, offers: OfferTable, workloads: WorkloadTable) -> CompatLookup:
        return cls(
            problem=problem,
            offers=offers,
            workloads=workloads,
            perf_by_model=model_performance(problem, offers),
            provider_ok=_name_mask(problem, offers, "provider"),
            place_ok=_name_mask(problem, offers, "region"),
        )

    def signatures(self) -> tuple[IntArray, IntArray]:
        """(signature of each workload, one workload per signature): workloads with the same
        signature have the same compatibility row and the same usable GPUs on every offer (same
        node size, VRAM floor, throughput table, provider, place and spot filters), so the
        (workload, offer) work can be done once per signature; fleets have far fewer signatures
        than workloads."""
        w = self.workloads
        key = np.column_stack([w.node, w.min_vram, w.spot_ok, self.perf_by_model, self.provider_ok, self.place_ok])
        _, first, sig = np.unique(key.astype(np.float64), axis=0, return_index=True, return_inverse=True)
        return sig.ravel().astype(np.int64), first.astype(np.int64)

    def block(self, rows: IntArray, cols: IntArray) -> Compatibility:
        o, w = self.offers, self.workloads
        g = o.gpus[cols]
        masks = {
            "gpus_per_node": g[None, :] >= w.node[rows][:, None],
            "vram": o.vram[cols][None, :] >= w.min_vram[rows][:, None],
            "gpu_model": self.perf_by_model[np.ix_(rows, o.model[cols])] > 0,
            "provider": self.provider_ok[np.ix_(rows, o.provider[cols])],
            "region": self.place_ok[np.ix_(rows, o.place[cols])],
            "spot": ~o.spot[cols][None, :] | w.spot_ok[rows][:, None],
            "reliability": np.broadcast_to(
                o.reliability[cols][None, :] >= self.problem.min_reliability, (len(rows), len(cols))
            ),
            "launch": np.broadcast_to(
                ((o.launch_p[cols] > 0) & (o.launch_p[cols] >= self.problem.min_launch_success_probability))[None, :],
                (len(rows), len(cols)),
            ),
        }
        return Compatibility(masks=masks, perf=self.perf_by_model[np.ix_(rows, o.model[cols])])


def usable_gpus(node: IntArray, gpus: IntArray) -> IntArray:
    """GPUs of one instance a workload can use: whole nodes of ``node`` GPUs that fit on it."""
    return (gpus // node) * node


def data_is_local(problem: Problem, offers: OfferTable) -> BoolArray:
    """(W, P) True where a workload's data already sits at a place (no egress to move it)."""
    names = np.asarray([r for _, r in offers.places], dtype=object)
    provs = np.asarray([p for p, _ in offers.places], dtype=object)
    joined = np.asarray([f"{p}/{r}" for p, r in offers.places], dtype=object)
    out = np.ones((len(problem.workloads), len(offers.places)), dtype=bool)
    for i, w in enumerate(problem.workloads):
        if w.data_location is not None and w.data_size_gb > 0:
            loc = w.data_location
            out[i] = (names == loc) | (provs == loc) | (joined == loc)
    return out


def group_starts(sorted_keys: np.ndarray) -> IntArray:
    """For a sorted key array, the index where each element's run of equal keys starts (O(n))."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.maximum.accumulate(np.where(new, np.arange(n), 0))
