"""Checked quotes -> optimizer offers: the one conversion used by the app's solves, the benchmarks
and the optimizer tests.

The app converts stored offer rows (``cloudarb.storage.offers.OfferFields``) with the forecast feed's
scenarios and rates (``cloudarb.optimize.problem.to_offer`` calls ``to_offer`` here); scripts and tests
load catalog files through ``ingestion.catalogs.load_catalog`` (the same conventions, quarantine and
GPU table as ``cloudarb db seed`` and ``cloudarb catalog import``) and convert its quotes here.

Sellers inside a marketplace are providers of their own to the solver: an offer of provider
``shadeform`` sold by ``lambdalabs`` is provider ``shadeform:lambdalabs``.

Offers that share GPUs share a capacity pool (``optimizer.schemas.Offer.capacity_pool``): the team's
own hosts (provider ``local``, ``cloudarb.nodes.market``) offer each GPU label of a node in several
sizes, instance types ``<node>/<label>`` and ``<node>/<label>/x<size>``, all drawing on the label's free
GPUs. :func:`capacity_pools` reads the pool back from the instance type (this module may not import
``cloudarb.nodes``; the format is the market's, tested there against this reader): pool
``local:<node>/<label>``, its GPUs the most any of its rows states (available instances x GPUs per
instance; the one-GPU size states every free GPU). The module is light on
purpose (pydantic, the two libraries, the capacity table): a benchmark imports it without the
database or the web stack.

A quote was validated at ingest (``ingestion.schemas.PriceQuote``, whose constraints are those of
``optimizer.schemas.Offer`` or tighter; stored rows are such quotes), so ``to_offer`` builds the
``Offer`` without validating it again: validating the 3,956 offers of the bundled snapshot cost
~0.05 s idle and ~0.10 s under load per optimize job. ``Offer.model_construct`` would cost more than
validation (34 us against 10 us a row, pydantic 2.14: it walks the fields in Python), so the
instance is made as it makes one (``_constructed``). The forecast figures are checked (cheaply);
figures that fail, or ``validate=True``, go through pydantic, whose error names the field.
Offers a user supplies (a ``Problem`` document) never come through here and are validated as ever.
``tests/optimizer/test_offer_construct.py`` proves both ways give equal offers, field for field, on
the whole bundled snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudarb.optimize.capacity import capacity_kind
from ingestion.catalog_report import CATALOG_DATE, SHARED_CATALOGS
from ingestion.catalogs import load_catalog
from optimizer.schemas import CapacityKind, Offer

if TYPE_CHECKING:
    from cloudarb.storage.offers import QuoteFields

SELLER_SEP = ":"
LOCAL = "local"
_SIZED = re.compile(r"/x[1-9]\d*$")


def __getattr__(name: str) -> Any:
    # ``QuoteFields`` lives with the stored rows (``cloudarb.storage.offers``); it is loaded on
    # demand so that importing this module keeps the database layer out of a benchmark.
    if name == "QuoteFields":
        from cloudarb.storage.offers import QuoteFields

        return QuoteFields
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def provider_id(provider: str, seller: str) -> str:
    """The provider as the solver sees it: ``provider:seller`` inside a marketplace."""
    return f"{provider}{SELLER_SEP}{seller}" if seller else provider


def split_provider_id(value: str) -> tuple[str, str]:
    """``provider:seller`` -> (provider, seller); a plain provider -> (provider, '')."""
    provider, _, seller = value.partition(SELLER_SEP)
    return provider, seller


def to_offer(
    row: QuoteFields,
    *,
    capacity_kinds: Mapping[str, CapacityKind] | None = None,
    interruption_rate: float | None = None,
    price_scenarios: list[float] | None = None,
    price_per_period: list[float] | None = None,
    launch_success: float | None = None,
    capacity_pool: str | None = None,
    validate: bool = False,
) -> Offer:
    """One optimizer offer from one quote; its capacity kind from the provider's kind
    (``cloudarb.optimize.capacity``, ``capacity_kinds`` overriding), optional forecast figures (price
    scenarios and periods, interruption rate, launch success probability) and capacity pool.

    The quote's values are not validated again (they were at ingest, see the module docstring);
    ``validate=True`` validates everything, and the forecast figures are checked in any case."""
    # A SQLAlchemy row (``offers_for_problem``) answers an attribute in ~1 us and a key of its
    # mapping in ~0.08 us: reading its 16 columns by key makes the conversion ~4x cheaper.
    mapping = getattr(row, "_mapping", None)
    get: Callable[[str], Any] = mapping.__getitem__ if mapping is not None else partial(getattr, row)
    provider = get("provider")
    seller = get("seller") or ""
    values: dict[str, Any] = {
        "id": get("offer_key"),
        "provider": provider_id(provider, seller),
        "seller": seller or None,
        "region": get("region"),
        "zone": get("zone") or None,
        "instance_type": get("instance_type"),
        "gpu_model": get("gpu_model"),
        "gpus_per_instance": get("gpu_count"),
        "vram_gb_per_gpu": get("vram_gb"),
        "vcpus": get("vcpus"),
        "ram_gb": get("ram_gb"),
        "spot": get("spot"),
        "price_per_hour": get("price_per_hour"),
        "available_instances": get("available_instances"),
        "capacity_kind": capacity_kind(provider, capacity_kinds),
        "interruption_rate_per_hour": interruption_rate,
        "reliability": get("reliability"),
        "price_scenarios": price_scenarios,
        "price_per_period": price_per_period,
        "launch_success_probability": launch_success,
        "capacity_pool": capacity_pool,
    }
    if validate or not _figures_ok(interruption_rate, price_scenarios, price_per_period) or not (
        launch_success is None or (type(launch_success) is float and 0.0 <= launch_success <= 1.0)
    ) or (capacity_pool is not None and not 0 < len(capacity_pool) <= 200):
        return Offer(**values)
    return _constructed(values)


def capacity_pools(rows: Iterable[QuoteFields]) -> tuple[dict[str, str], dict[str, int]]:
    """(offer key -> capacity pool, pool -> GPUs) for the offers that share GPUs: each ``local`` row's
    pool ``local:<node>/<label>`` (its instance type less a ``/x<size>`` suffix), holding the most GPUs
    any of the pool's rows states (available instances x GPUs per instance). A pool none of whose rows
    states its availability is left out (its offers keep their own capacity rule)."""
    of_offer: dict[str, str] = {}
    gpus: dict[str, int] = {}
    for row in rows:
        mapping = getattr(row, "_mapping", None)
        get: Callable[[str], Any] = mapping.__getitem__ if mapping is not None else partial(getattr, row)
        if get("provider") != LOCAL:
            continue
        pool = f"{LOCAL}{SELLER_SEP}{_SIZED.sub('', get('instance_type'))}"
        of_offer[get("offer_key")] = pool
        stated = get("available_instances")
        if stated is not None:
            gpus[pool] = max(gpus.get(pool, 0), int(stated) * int(get("gpu_count")))
    return {key: pool for key, pool in of_offer.items() if pool in gpus}, gpus


_DEFAULTS = {name: f.default for name, f in Offer.model_fields.items()}
_FIELD_ORDER = tuple(Offer.model_fields)


def _figures_ok(rate: float | None, scenarios: list[float] | None, periods: list[float] | None) -> bool:
    """The forecast figures are numbers >= 0 (the feed clamps them; a caller's are checked here)."""
    if rate is not None and not (type(rate) is float and rate >= 0):
        return False
    return all(
        figures is None or (type(figures) is list and all(type(v) is float and v >= 0 for v in figures))
        for figures in (scenarios, periods)
    )


def _constructed(values: dict[str, Any]) -> Offer:
    """An ``Offer`` of checked values, made as ``Offer.model_construct`` makes one (its field dict in
    field order, the fields given as the fields set, no extra or private values) without the Python
    loop over the fields that makes ``model_construct`` slower than validation."""
    offer = Offer.__new__(Offer)
    object.__setattr__(offer, "__dict__", {name: values.get(name, _DEFAULTS[name]) for name in _FIELD_ORDER})
    object.__setattr__(offer, "__pydantic_fields_set__", set(values))
    object.__setattr__(offer, "__pydantic_extra__", None)
    object.__setattr__(offer, "__pydantic_private__", None)
    return offer


def quotes_to_offers(
    quotes: Iterable[QuoteFields], *, capacity_kinds: Mapping[str, CapacityKind] | None = None
) -> list[Offer]:
    return [to_offer(q, capacity_kinds=capacity_kinds) for q in quotes]


def catalog_offers(
    path: str | Path,
    convention: str,
    *,
    observed_at: datetime | date = CATALOG_DATE,
    capacity_kinds: Mapping[str, CapacityKind] | None = None,
) -> list[Offer]:
    """The offers of one catalog file read under its convention by ``ingestion.catalogs.load_catalog``
    (quarantined and skipped rows are not offers)."""
    loaded = load_catalog(Path(path), convention=convention, observed_at=observed_at)
    return quotes_to_offers(loaded.offers, capacity_kinds=capacity_kinds)


def shared_catalog_offers(
    prices_dir: str | Path,
    names: Sequence[str] | None = None,
    *,
    capacity_kinds: Mapping[str, CapacityKind] | None = None,
) -> list[Offer]:
    """Offers of the shared catalogs (``ingestion.catalog_report.SHARED_CATALOGS``) present in
    ``prices_dir``, each under its declared convention; ``names`` picks files (in that order)."""
    conventions = dict(SHARED_CATALOGS)
    picked = list(names) if names is not None else [n for n, _ in SHARED_CATALOGS]
    out: list[Offer] = []
    for name in picked:
        path = Path(prices_dir) / name
        if path.exists():
            out.extend(catalog_offers(path, conventions[name], capacity_kinds=capacity_kinds))
    return out
